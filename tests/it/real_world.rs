//! The API as production sees it over months (issue: numbers you can trust after real
//! change). Each test switches on one behaviour of the sandbox's `realism` (or drives the
//! lake the way overlapping jobs do) and checks that no row is lost or overwritten:
//!
//! - a cursor never passes a gap: windows landing after a failed one are recorded, `status`
//!   shows the gap and the next run fills it;
//! - search results that lag their writes are caught by the lookback re-read (and lost
//!   without it — the same test shows the loss);
//! - an answer without its list field fails its window instead of wiping a snapshot;
//! - records that change while a list is walked (offset page tokens shift) are not
//!   skipped: the walk goes on from its last record;
//! - of two overlapping fetches, the older one committing last never wins.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::*;
use crate::snapshot_streams::{batch, rows};
use shoplake::api::ApiError;
use shoplake::app::App;
use shoplake::pipeline::extract::Sequence;
use shoplake::pipeline::{PipelineError, Start};
use shoplake::warehouse::Lake;
use shoplake::warehouse::TableRef;
use shoplake::warehouse::delta::{CursorMove, UpsertSpec};
use shoplake_sandbox::realism::Realism;
use shoplake_sandbox::{DEFAULT_CLOCK as CLOCK, SandboxConfig};

const DAY: i64 = 86_400;

#[tokio::test]
async fn the_cursor_is_the_end_of_the_contiguous_landed_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(&dir.path().display().to_string()).unwrap();
    let keys: Vec<String> = ["_shop_id", "_month", "id"].map(String::from).to_vec();
    let spec = UpsertSpec {
        keys: &keys,
        partition_by: &["_shop_id", "_month"],
        ..Default::default()
    };
    let mv = |from, to| CursorMove {
        app: "s/A",
        from,
        to,
        origin: Some(0),
    };
    let cursor = || async { lake.txn_version("raw", "things", "s/A").await.unwrap() };
    let land = |id: &'static str, from: i64, to: i64| {
        let (lake, spec) = (&lake, &spec);
        async move {
            lake.table(TableRef::raw("things"))
                .upsert(batch(&[("A", id, id)], id))
                .options(spec.clone())
                .cursor(mv(from, to))
                .await
                .unwrap()
        }
    };
    // Windows [0,10) [10,20) [20,30) [30,40); window 2 fails for a while.
    assert_eq!(land("3", 20, 30).await.cursor, None, "beyond the origin");
    assert_eq!(cursor().await, None);
    // A scheduled run of the same stream, planned from its own start (no cursor yet),
    // does not begin the cursor past the backfill's gap either.
    let scheduled = CursorMove {
        app: "s/A",
        from: 15,
        to: 20,
        origin: Some(15),
    };
    let m = lake
        .table(TableRef::raw("things"))
        .upsert(batch(&[("A", "s", "s")], "s"))
        .options(spec.clone())
        .cursor(scheduled)
        .await
        .unwrap();
    assert_eq!(
        m.cursor, None,
        "a later start waits for the backfill's first window"
    );
    assert_eq!(land("1", 0, 10).await.cursor, Some(10));
    assert_eq!(land("4", 30, 40).await.cursor, None, "beyond the gap");
    assert_eq!(cursor().await, Some(10), "the cursor waits at the gap");
    assert_eq!(
        lake.txn_version("raw", "things", "s/A/landed")
            .await
            .unwrap(),
        Some(40)
    );
    // The gap's window lands: the cursor moves over everything landed beyond it.
    assert_eq!(land("2", 10, 20).await.cursor, Some(40));
    assert_eq!(cursor().await, Some(40));
    // Re-running an old window moves nothing.
    assert_eq!(land("1", 0, 10).await.cursor, None);
    assert_eq!(cursor().await, Some(40));
    assert_eq!(rows(&lake).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_landed_beyond_a_failed_one_show_a_gap_the_next_run_fills() {
    let sb = start(small(1, 1_500)).await;
    let project = project_with_order_window("4days");
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from, to) = (CLOCK - 20 * DAY, CLOCK + 1);
    // Reference: one clean run.
    let a = app_with(&sb, a_dir.path(), Some(project.path()), |_| {}).await;
    backfill_ok(&a, from, to, Some("orders")).await;

    // B: window 2 of the backfill goes dead; windows 1, 3, 4 … land (as queued jobs of
    // one backfill running on several workers would).
    let b = app_with(&sb, b_dir.path(), Some(project.path()), |_| {}).await;
    let ex = b.extractor().unwrap();
    let shop = b.shops(None).unwrap().remove(0);
    let orders = ex.pipelines().get("orders").unwrap().clone();
    let plan = ex
        .plan(&shop.id, &orders, Start::Range(from), to)
        .await
        .unwrap();
    assert!(plan.windows.len() >= 5, "{plan:?}");
    let mut windows = plan.windows.clone();
    let dead = windows.remove(1);
    let sum = ex
        .run_sequences(
            vec![Sequence {
                shop: shop.clone(),
                stream: &orders,
                windows,
                origin: plan.origin,
                lease_lost: Vec::new(),
            }],
            1,
            &|_| {},
        )
        .await;
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);
    assert_eq!(
        ex.cursor(&shop.id, &orders).await.unwrap(),
        Some(dead.from),
        "the cursor stops at the gap"
    );
    let status = b.status().await.unwrap();
    let row = status.iter().find(|r| r.stream == "orders").unwrap();
    assert_eq!(
        row.gap_until.as_deref(),
        Some(rfc3339(plan.windows.last().unwrap().to).as_str()),
        "status shows the gap: {row:?}"
    );

    // The next incremental run starts at the cursor: the gap is filled, the cursor
    // reaches the end, and the table equals the clean run's.
    extract_ok(&b, to, Some("orders")).await;
    assert_eq!(ex.cursor(&shop.id, &orders).await.unwrap(), Some(to));
    let status = b.status().await.unwrap();
    let row = status.iter().find(|r| r.stream == "orders").unwrap();
    assert_eq!(row.gap_until, None, "{row:?}");
    for t in ["orders", "order_line_items"] {
        let (ra, rb) = (table_rows(&a, t).await, table_rows(&b, t).await);
        assert!(!ra.is_empty());
        assert!(ra == rb, "raw.{t}: {} rows vs {}", ra.len(), rb.len());
    }
    sb.stop().await;
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Order id → status in `raw.orders`.
async fn landed_status(app: &App) -> BTreeMap<String, String> {
    let b = app
        .query("select id, status from raw.orders")
        .await
        .unwrap();
    let (ids, st) = (strings(&b, "id"), strings(&b, "status"));
    ids.into_iter().zip(st).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_the_search_index_shows_late_are_caught_by_the_lookback() {
    let lag = Duration::from_secs(2 * 3600);
    let sb = start(SandboxConfig {
        realism: Realism {
            index_lag: Some(lag),
            ..Default::default()
        },
        ..small(1, 5_000)
    })
    .await;
    let later = CLOCK + 12 * 3600;
    // What the search index shows at the end: every order as it was `lag` ago.
    let seen_at = later - lag.as_secs() as i64;
    let want: BTreeMap<String, String> = sb
        .sandbox
        .data
        .orders
        .iter()
        .filter(|o| o.ev.create <= seen_at)
        .map(|o| (o.id.to_string(), o.state_at(seen_at).0.to_string()))
        .collect();
    let mut stale = Vec::new();
    for lookback in ["0s", "3h"] {
        let dir = tempfile::tempdir().unwrap();
        let app = app_with(&sb, dir.path(), None, |c| {
            c.extract.lookback = shoplake::duration::parse(lookback).unwrap();
        })
        .await;
        sb.sandbox.set_clock(CLOCK);
        backfill_ok(&app, CLOCK - 31 * DAY, CLOCK + 1, Some("orders")).await;
        sb.sandbox.set_clock(later);
        extract_ok(&app, later + 1, Some("orders")).await;
        let got = landed_status(&app).await;
        assert_eq!(got.len(), want.len(), "lookback {lookback}: orders");
        stale.push(
            want.iter()
                .filter(|(id, s)| got.get(*id) != Some(s))
                .count(),
        );
    }
    // Without a lookback, orders changed just before the first run's end (still old in the
    // index then) are never read again: their rows stay stale for good.
    assert!(stale[0] > 0, "the lag loses updates without a lookback");
    assert_eq!(stale[1], 0, "a lookback longer than the lag loses none");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_move_while_a_list_is_walked_are_not_skipped() {
    // Ten rows a page and ten minutes of data per follow-up page: over a 31-day walk of
    // ~150 pages the data moves a day on, and orders updated again leave the window
    // behind the walk's offset — each one made a plain offset walk skip an order.
    let sb = start(SandboxConfig {
        realism: Realism {
            shifting_pages: Some(Duration::from_secs(600)),
            ..Default::default()
        },
        ..small(1, 3_000)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // No lookback: the next run must not be what finds a skipped order.
    let app = app_with(&sb, dir.path(), None, |c| {
        c.extract.lookback = std::time::Duration::ZERO
    })
    .await;
    sb.sandbox.set_clock(CLOCK);
    backfill_ok(&app, CLOCK - 31 * DAY, CLOCK + 1, Some("orders")).await;
    let moved = sb.sandbox.view().clock;
    assert!(
        moved > CLOCK + 12 * 3600,
        "the walk moved the data on ({moved})"
    );
    // A second run up to where the data moved: orders updated during the first walk are
    // read here (their new update_time is past the first window).
    let end = moved + 3600;
    sb.sandbox.set_clock(end);
    extract_ok(&app, end + 1, Some("orders")).await;
    // The second run's window ends 2 minutes (settle) before `end + 1`; every order
    // placed by then and not changed since must be landed exactly as it was then.
    let cut = end + 1 - 120;
    let last = sb.sandbox.view().clock;
    let got = landed_status(&app).await;
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    for o in sb.sandbox.data.orders.iter().filter(|o| o.ev.create < cut) {
        let (st, upd) = o.state_at(cut);
        if o.state_at(last).1 != upd {
            continue; // changed after the cut: the lake may hold either state
        }
        match got.get(&o.id.to_string()) {
            None => missing.push(o.id.to_string()),
            Some(s) if s != st => stale.push(o.id.to_string()),
            Some(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "{} orders never landed: {missing:?}",
        missing.len()
    );
    assert!(stale.is_empty(), "{} orders stale: {stale:?}", stale.len());
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_its_list_fails_the_window_and_deletes_nothing() {
    let sb = start(small(2, 500)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&sb, dir.path(), None, |_| {}).await;
    backfill_ok(&app, CLOCK - DAY, CLOCK + 1, Some("warehouses")).await;
    let per_shop = || async {
        key_counts(
            &app.query("select _shop_id, count(*) from raw.warehouses group by _shop_id")
                .await
                .unwrap(),
        )
    };
    let before = per_shop().await;
    assert_eq!(before.len(), 2, "{before:?}");

    // One `{"code":0,"data":{}}` answer: the window fails, the shop keeps its rows.
    sb.sandbox.omit_list_once("/logistics/202309/warehouses");
    let sum = app
        .extract(CLOCK + 2, None, Some("warehouses"))
        .await
        .unwrap();
    assert_eq!(sum.errors.len(), 1, "{:?}", sum.errors);
    assert!(
        matches!(
            &sum.errors[0],
            PipelineError::Window { source, .. }
                if matches!(**source, PipelineError::Api(ApiError::Decode { .. }))
        ) && sum.errors[0]
            .to_string()
            .contains("data.warehouses is missing"),
        "{:?}",
        sum.errors
    );
    assert_eq!(per_shop().await, before);
    // The next run lands normally.
    extract_ok(&app, CLOCK + 3, Some("warehouses")).await;
    assert_eq!(per_shop().await, before);
    sb.stop().await;
}

#[tokio::test]
async fn an_older_fetch_committing_last_never_overwrites_a_newer_one() {
    use arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(&dir.path().display().to_string()).unwrap();
    let keys: Vec<String> = ["_shop_id", "_month", "id"].map(String::from).to_vec();
    let one = |name: &str, fetched_us: i64| {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("_shop_id", DataType::Utf8, false),
            Field::new("_month", DataType::Utf8, false),
            Field::new(
                "_extracted_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]));
        let s = |v: &str| Arc::new(StringArray::from(vec![v.to_string()])) as _;
        RecordBatch::try_new(
            schema,
            vec![
                s("1"),
                s(name),
                s("A"),
                s("2026-11"),
                Arc::new(TimestampMicrosecondArray::from(vec![fetched_us]).with_timezone("UTC")),
            ],
        )
        .unwrap()
    };
    let upsert = |b: RecordBatch, fetched: i64, snapshot: bool| {
        let (lake, keys) = (&lake, &keys);
        async move {
            let spec = UpsertSpec {
                keys,
                partition_by: &["_shop_id", "_month"],
                snapshot_of: snapshot.then_some("A"),
                fetched_at_us: Some(fetched),
                ..Default::default()
            };
            lake.table(TableRef::raw("things"))
                .upsert(b)
                .options(spec)
                .await
                .unwrap()
        }
    };
    let names = || async {
        rows(&lake)
            .await
            .into_iter()
            .map(|(_, _, n)| n)
            .collect::<Vec<_>>()
    };
    // Fetched at 00:05, committed first; the 00:00 fetch of the same listing commits last.
    upsert(one("newer", 5_000_000), 5_000_000, false).await;
    upsert(one("older", 1_000_000), 1_000_000, false).await;
    assert_eq!(names().await, ["newer"]);
    // A snapshot fetched earlier than the stored row neither overwrites nor deletes it.
    let empty = one("x", 0).slice(0, 0);
    upsert(empty, 2_000_000, true).await;
    assert_eq!(names().await, ["newer"]);
    // A later fetch does replace it.
    upsert(one("newest", 9_000_000), 9_000_000, false).await;
    assert_eq!(names().await, ["newest"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_whose_lease_was_lost_stops_before_its_commit() {
    let sb = start(small(1, 300)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&sb, dir.path(), None, |_| {}).await;
    let ex = app.extractor().unwrap();
    let shop = app.shops(None).unwrap().remove(0);
    let orders = ex.pipelines().get("orders").unwrap().clone();
    let plan = ex
        .plan(&shop.id, &orders, Start::Range(CLOCK - 10 * DAY), CLOCK + 1)
        .await
        .unwrap();
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sum = ex
        .run_sequences(
            vec![Sequence {
                shop: shop.clone(),
                stream: &orders,
                windows: plan.windows,
                origin: plan.origin,
                lease_lost: vec![lost],
            }],
            1,
            &|_| {},
        )
        .await;
    assert_eq!(sum.windows, 0);
    assert!(
        // Not a window failure: the window stops before committing, for the job's new
        // owner to run it.
        sum.errors
            .iter()
            .any(|e| matches!(e, PipelineError::LeaseLost)),
        "{:?}",
        sum.errors
    );
    assert!(
        app.lake.open("raw", "orders").await.unwrap().is_none(),
        "nothing was written"
    );
    assert_eq!(ex.cursor(&shop.id, &orders).await.unwrap(), None);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_to_the_schema_is_filled_for_rows_landed_before_it() {
    let mut cfg = small(1, 800);
    cfg.drift = Some(shoplake_sandbox::drift::Drift::default());
    let sb = start(cfg).await;
    let (data, project) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    copy_project(project.path());
    // Release 1 does not know `x_promo_badge`: it lands in `_extra`.
    let v1 = app_with(&sb, data.path(), Some(project.path()), |_| {}).await;
    backfill_ok(&v1, CLOCK - 31 * DAY, CLOCK + 1, Some("orders")).await;
    let in_extra = "select count(*) from raw.orders where _extra like '%x_promo_badge%'";
    let landed = query_i64(&v1, "select count(*) from raw.orders").await;
    assert_eq!(query_i64(&v1, in_extra).await, landed);

    // Release 2 declares it; the lake written by release 1 is upgraded on its next run.
    edit_file(
        &project.path().join("schemas/orders.toml"),
        "columns = [\n",
        "columns = [\n  { name = \"promo_badge_kind\", type = \"string\", path = \"x_promo_badge.kind\", doc = \"Promotion badge.\" },\n  { name = \"promo_badge_level\", type = \"int\", path = \"x_promo_badge.level\", doc = \"Badge level.\" },\n",
        1,
    );
    let v2 = app_with(&sb, data.path(), Some(project.path()), |_| {}).await;
    sb.sandbox.set_clock(CLOCK + DAY);
    extract_ok(&v2, CLOCK + DAY + 1, Some("orders")).await;
    let total = query_i64(&v2, "select count(*) from raw.orders").await;
    assert!(total >= landed);
    assert_eq!(
        query_i64(&v2, "select count(*) from raw.orders where promo_badge_kind = 'flash_sale' and promo_badge_level = 2").await,
        total,
        "every row has the new columns, earlier rows filled from _extra"
    );
    assert_eq!(
        query_i64(&v2, in_extra).await,
        0,
        "and _extra no longer holds it"
    );
    sb.stop().await;
}

/// Child rows `(product, sku, version)` of shop A, month 2026-11.
fn skus(rows: &[(&str, &str, i64)]) -> arrow::array::RecordBatch {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new("product_id", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("product_update_time", DataType::Int64, false),
        Field::new("_shop_id", DataType::Utf8, false),
        Field::new("_month", DataType::Utf8, false),
    ]));
    let s = |f: &dyn Fn(&(&str, &str, i64)) -> String| {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as _
    };
    arrow::array::RecordBatch::try_new(
        schema,
        vec![
            s(&|r| r.0.to_string()),
            s(&|r| r.1.to_string()),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            s(&|_| "A".to_string()),
            s(&|_| "2026-11".to_string()),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn a_parents_children_are_exactly_those_of_its_latest_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(&dir.path().display().to_string()).unwrap();
    let keys: Vec<String> = ["_shop_id", "_month", "product_id", "id"]
        .map(String::from)
        .to_vec();
    let parents = vec!["product_id".to_string()];
    let spec = UpsertSpec {
        keys: &keys,
        version_column: Some("product_update_time"),
        partition_by: &["_shop_id", "_month"],
        parent_keys: &parents,
        ..Default::default()
    };
    let stored = || async {
        let ctx = datafusion::prelude::SessionContext::new();
        let t = lake.open("raw", "skus").await.unwrap().unwrap();
        ctx.register_table("t", t.table_provider().await.unwrap())
            .unwrap();
        let b = ctx
            .sql("select product_id || '/' || id as k from t order by 1")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        strings(&b, "k")
    };
    let up = |rows: &[(&str, &str, i64)]| {
        let (lake, spec, b) = (&lake, &spec, skus(rows));
        async move {
            lake.table(TableRef::raw("skus"))
                .upsert(b)
                .options(spec.clone())
                .await
                .unwrap()
        }
    };
    up(&[("P", "a", 1), ("P", "b", 1), ("P", "c", 1), ("Q", "x", 1)]).await;
    // P's version 2 drops SKU b and adds d; Q is not in the batch and keeps its SKU.
    up(&[("P", "a", 2), ("P", "c", 2), ("P", "d", 2)]).await;
    assert_eq!(stored().await, ["P/a", "P/c", "P/d", "Q/x"]);
    // A stale fetch of version 1 committing late neither brings b back nor drops d.
    up(&[("P", "a", 1), ("P", "b", 1), ("P", "c", 1)]).await;
    assert_eq!(stored().await, ["P/a", "P/c", "P/d", "Q/x"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_in_a_region_the_table_does_not_know_fails_instead_of_using_utc() {
    let sb = start(SandboxConfig {
        realism: Realism {
            unknown_region_shop: Some(1),
            ..Default::default()
        },
        ..small(2, 200)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&sb, dir.path(), None, |_| {}).await;
    let e = app
        .backfill(CLOCK - DAY, CLOCK + 1, None, Some("orders"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("region JP") && e.contains("[api] shops"), "{e}");
    assert!(app.lake.open("raw", "orders").await.unwrap().is_none());
    // Leaving the shop out lands the others.
    let known = app
        .token_store()
        .unwrap()
        .shops()
        .into_iter()
        .find(|s| s.region != shoplake_sandbox::realism::NEW_MARKET)
        .unwrap()
        .cipher;
    let dir2 = tempfile::tempdir().unwrap();
    let app = app_with(&sb, dir2.path(), None, |c| c.api.shops = vec![known]).await;
    backfill_ok(&app, CLOCK - DAY, CLOCK + 1, Some("orders")).await;
    sb.stop().await;
}
