//! Schema drift: the API adds a field, drops an optional one and sends numbers as strings —
//! every value is kept (the unknown field in `_extra`) and the tables otherwise equal a run
//! without drift; one record whose required field is unusable fails only its window, with
//! shop, stream, window, table and column in the error.

use crate::helpers::*;
use shoplake_sandbox::DEFAULT_CLOCK;
use shoplake_sandbox::drift::Drift;

const FROM: i64 = DEFAULT_CLOCK - 31 * 86_400;

async fn count(app: &shoplake::app::App, sql: &str) -> i64 {
    scalar_i64(&app.query(sql).await.unwrap())
}

/// The columns drift does not touch, row by row.
async fn digest(app: &shoplake::app::App) -> String {
    let b = app
        .query(
            "select md5(concat_ws('|', id, status, cast(create_time as varchar), \
             cast(update_time as varchar), cast(sub_total as varchar), currency)) as h \
             from raw.orders order by h",
        )
        .await
        .unwrap();
    arrow::util::pretty::pretty_format_batches(&b)
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drifted_answers_keep_every_value_and_only_an_unusable_record_fails_its_window() {
    let project = project_with_order_window("3days");
    let clean_sb = start(small(2, 2_000)).await;
    let mut cfg = small(2, 2_000);
    cfg.drift = Some(Drift::default());
    let drift_sb = start(cfg).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let logs = capture_warnings();
    let clean = reference_backfill(a.path(), &clean_sb, project.path(), FROM, DEFAULT_CLOCK).await;
    let drifted =
        reference_backfill(b.path(), &drift_sb, project.path(), FROM, DEFAULT_CLOCK).await;
    let total = drift_keeps_every_value(&clean, &drifted, &logs).await;

    // One unusable record: its window fails (named), the rest lands.
    let bad: String = {
        let b = clean
            .query("select id, _shop_id from raw.orders order by create_time limit 1 offset 700")
            .await
            .unwrap();
        arrow::array::cast::as_string_array(
            &arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Utf8).unwrap(),
        )
        .value(0)
        .to_string()
    };
    let (app, bad_sb, _, _dir) = one_failed_window(
        Drift {
            bad_order: Some(bad.clone()),
            ..Drift::default()
        },
        project.path(),
        &[
            "stream orders window 20",
            "table orders column create_time",
            "\"soon\"",
            "shop ",
        ],
    )
    .await;
    let landed = count(&app, "select count(*) from raw.orders").await;
    assert!(landed > 0 && landed < total, "{landed} of {total} landed");
    assert_eq!(
        count(
            &app,
            &format!("select count(*) from raw.orders where id = '{bad}'")
        )
        .await,
        0
    );

    // Bytes that are not UTF-8 in one record: that page cannot be read at all. Its window
    // fails at once (asking again gets the same bytes), named, and the rest lands.
    let (app, utf8_sb, e, _dir2) = one_failed_window(
        Drift {
            bad_utf8_order: Some(bad.clone()),
            ..Drift::default()
        },
        project.path(),
        &[
            "stream orders window 20",
            "shop ",
            "/order/202309/orders/search",
            "not valid UTF-8 at byte",
            "caf\u{FFFD}(",
        ],
    )
    .await;
    assert!(!e.contains("attempts failed"), "not retried: {e}");
    let landed_utf8 = count(&app, "select count(*) from raw.orders").await;
    assert!(
        landed_utf8 > 0 && landed_utf8 < total,
        "{landed_utf8} of {total} landed"
    );
    let status = app.status().await.unwrap();
    let failed: Vec<_> = status
        .iter()
        .filter(|r| r.stream == "orders" && r.last_error.is_some())
        .collect();
    assert_eq!(failed.len(), 1, "one shop's orders failed: {status:?}");
    assert!(
        failed[0]
            .cursor
            .as_deref()
            .is_some_and(|c| c < "2026-11-01"),
        "its cursor stops before the bad window: {:?}",
        failed[0].cursor
    );
    for sb in [clean_sb, drift_sb, bad_sb, utf8_sb] {
        sb.stop().await;
    }
}

/// The drifted run kept every value: one warning for the new field, the known columns
/// equal to the clean run's, the unknown field in `_extra` on every row, the dropped field
/// empty. Returns the clean run's orders.
async fn drift_keeps_every_value(
    clean: &shoplake::app::App,
    drifted: &shoplake::app::App,
    logs: &std::sync::Mutex<Vec<u8>>,
) -> i64 {
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let warned = text
        .lines()
        .filter(|l| l.contains("unknown field kept in _extra") && l.contains("x_promo_badge"))
        .count();
    assert_eq!(
        warned, 1,
        "one warning for the new field over every window and shop:\n{text}"
    );
    let total = count(clean, "select count(*) from raw.orders").await;
    assert!(total > 1_000);
    assert_eq!(
        digest(clean).await,
        digest(drifted).await,
        "every known value kept, numbers sent as strings included"
    );
    assert_eq!(
        count(
            drifted,
            "select count(*) from raw.orders where _extra like '%x_promo_badge%flash_sale%'"
        )
        .await,
        total,
        "the unknown field is in _extra on every row"
    );
    assert!(count(clean, "select count(buyer_message) from raw.orders").await > 0);
    assert_eq!(
        count(drifted, "select count(buyer_message) from raw.orders").await,
        0
    );
    total
}

/// A backfill against a sandbox with `drift` fails exactly one window, its error naming
/// every one of `parts`; returns the app, the sandbox, the error and the data dir.
async fn one_failed_window(
    drift: Drift,
    project: &std::path::Path,
    parts: &[&str],
) -> (
    shoplake::app::App,
    shoplake_sandbox::RunningSandbox,
    String,
    tempfile::TempDir,
) {
    let (app, sb, sum, dir) = backfill_with(drift, project).await;
    assert_eq!(sum.errors.len(), 1, "{:?}", sum.errors);
    let e = sum.errors[0].to_string();
    for part in parts {
        assert!(e.contains(part), "{part} missing from: {e}");
    }
    (app, sb, e, dir)
}

/// A backfill of the orders against a sandbox with `drift`, in a fresh data dir.
async fn backfill_with(
    drift: Drift,
    project: &std::path::Path,
) -> (
    shoplake::app::App,
    shoplake_sandbox::RunningSandbox,
    shoplake::pipeline::extract::RunSummary,
    tempfile::TempDir,
) {
    let mut cfg = small(2, 2_000);
    cfg.drift = Some(drift);
    let sb = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sb, dir.path(), Some(project)).await;
    let sum = app
        .backfill(FROM, DEFAULT_CLOCK, None, Some("orders"))
        .await
        .unwrap();
    (app, sb, sum, dir)
}

#[derive(Clone)]
struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// shoplake's warnings from here on, as text.
fn capture_warnings() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = Buffer(buf.clone());
    tracing_subscriber::fmt()
        .with_env_filter("off,shoplake=warn")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    buf
}
