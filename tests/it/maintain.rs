//! `shoplake maintain`: compaction, checkpoints and vacuum keep every row, are safe beside
//! a writer committing at the same time, and leave only the current version's files once
//! the retention has passed.

use crate::helpers::*;
use shoplake::app::App;
use shoplake::warehouse::maintain::{MaintainOptions, MaintainReport};
use shoplake_sandbox::DEFAULT_CLOCK as CLOCK;

const DAY: i64 = 86_400;
const TABLES: [&str; 2] = ["raw.orders", "raw.order_line_items"];

fn report<'a>(reports: &'a [MaintainReport], table: &str) -> &'a MaintainReport {
    reports
        .iter()
        .find(|r| r.table == table)
        .unwrap_or_else(|| panic!("no report for {table}: {reports:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintain_compacts_checkpoints_and_vacuums_without_changing_a_row() {
    let sb = start(small(2, 1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sb, dir.path(), None).await;
    // A backfill, then ten daily extracts: every merge replaces the files of the
    // partitions its changed orders live in, and the replaced files stay in storage.
    sb.sandbox.set_clock(CLOCK - 10 * DAY);
    backfill_ok(&app, CLOCK - 40 * DAY, CLOCK - 10 * DAY + 1, Some("orders")).await;
    for day in (0..10).rev() {
        sb.sandbox.set_clock(CLOCK - day * DAY);
        extract_ok(&app, CLOCK - day * DAY + 1, Some("orders")).await;
    }
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = app_for(&sb, ref_dir.path(), None).await;
    backfill_ok(&reference, CLOCK - 40 * DAY, CLOCK + 1, Some("orders")).await;
    assert_same_rows(&app, &reference, "before maintenance").await;

    a_dry_run_changes_nothing(&app).await;
    maintenance_beside_a_writer_keeps_every_row(&app, &sb, dir.path(), &reference).await;
    vacuum_past_the_retention_leaves_the_current_files(&app, &reference).await;

    // A retention shorter than running readers need is refused.
    let e = app
        .maintain(
            &[],
            &MaintainOptions {
                retention: std::time::Duration::from_secs(60),
                ..Default::default()
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("shorter than"), "{e}");
}

/// Every maintained table reads the same in `app` as in the clean `reference`.
async fn assert_same_rows(app: &App, reference: &App, when: &str) {
    for t in TABLES {
        assert_eq!(
            qualified_rows(app, t).await,
            qualified_rows(reference, t).await,
            "{t} {when}: a row was lost or changed"
        );
    }
}

/// A dry run reports the files and commits nothing.
async fn a_dry_run_changes_nothing(app: &App) {
    let v0 = app.lake.version("raw", "orders").await.unwrap();
    let dry = app
        .maintain(
            &TABLES.map(String::from),
            &MaintainOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let orders = report(&dry, "raw.orders");
    assert_eq!(orders.before, orders.after, "a dry run changes nothing");
    assert!(
        orders.before.stored_files > orders.before.files,
        "ten merges leave the files they replaced in storage: {orders:?}"
    );
    assert_eq!(
        app.lake.version("raw", "orders").await.unwrap(),
        v0,
        "a dry run commits nothing"
    );
}

/// Every table of the lake maintained while a second app re-lands the last ten days (its
/// merges and cursor commits race the compaction's commits).
async fn maintenance_beside_a_writer_keeps_every_row(
    app: &App,
    sb: &shoplake_sandbox::RunningSandbox,
    dir: &std::path::Path,
    reference: &App,
) {
    let writer = app_for(sb, dir, None).await;
    let defaults = MaintainOptions::default();
    let (maintained, rerun) = tokio::join!(
        app.maintain(&[], &defaults),
        writer.backfill(CLOCK - 10 * DAY, CLOCK + 1, None, Some("orders"))
    );
    let maintained = maintained.unwrap();
    let rerun = rerun.unwrap();
    assert!(rerun.errors.is_empty(), "{:?}", rerun.errors);
    for t in TABLES {
        let r = report(&maintained, t);
        assert!(r.checkpoint, "{t}: checkpoint written");
        assert!(
            r.after.files <= r.before.files && r.after.fragmented_partitions == 0,
            "{t}: compaction leaves one file per partition: {r:?}"
        );
        assert_eq!(
            r.vacuumed, 0,
            "{t}: nothing is older than the retention yet"
        );
    }
    eprintln!("{:?}", report(&maintained, "raw.orders"));
    assert_same_rows(app, reference, "after maintenance beside a writer").await;
}

/// Eight days on, the replaced files are past the 7-day retention: vacuum deletes them,
/// only the current version's files stay, and the tables read the same.
async fn vacuum_past_the_retention_leaves_the_current_files(app: &App, reference: &App) {
    let later = shoplake_now_ms() + 8 * DAY * 1000;
    let vacuumed = app
        .maintain(
            &TABLES.map(String::from),
            &MaintainOptions {
                as_of_ms: Some(later),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for t in TABLES {
        let r = report(&vacuumed, t);
        assert!(
            r.vacuumed > 0 && r.after.stored_files == r.after.files,
            "{t}: past the retention, vacuum leaves only the current version's files: {r:?}"
        );
    }
    assert_same_rows(app, reference, "after vacuum").await;
}

fn shoplake_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
