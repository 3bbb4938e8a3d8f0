//! The model runner: incremental builds rebuild only the changed windows and equal a full
//! rebuild; an edited model is rebuilt in full; a failing model skips only what is
//! downstream of it; independent models build at the same time; custom SQL tests report
//! their failing rows; `docs` catalogs every table.

use std::collections::BTreeMap;

use crate::helpers::*;
use shoplake::app::App;
use shoplake::models::{BuildKind, BuildOptions, BuildReport};
use shoplake_sandbox as sandbox;

const CLOCK: i64 = sandbox::DEFAULT_CLOCK;
const DAY: i64 = 86_400;

fn exact() -> BuildOptions {
    BuildOptions::default()
}

fn by_model(r: &[BuildReport]) -> BTreeMap<String, BuildReport> {
    r.iter().map(|b| (b.model.clone(), b.clone())).collect()
}

async fn all_models(app: &App) -> BTreeMap<String, Vec<String>> {
    let ctx = app.session().await.unwrap();
    let mut out = BTreeMap::new();
    for m in app.project(&ctx).await.unwrap().models {
        out.insert(m.qualified(), qualified_rows(app, &m.qualified()).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_builds_rebuild_changed_windows_and_equal_a_full_rebuild() {
    // 120 days: orders keep changing status for about three weeks after they are placed,
    // so a day of activity touches the recent windows and leaves the older ones alone.
    let mut cfg = small(2, 3000);
    cfg.data.days = 120;
    let sb = start(cfg).await;
    sb.sandbox.set_clock(CLOCK - 2 * DAY);
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sb, dir.path(), None).await;
    backfill_ok(&app, CLOCK - 122 * DAY, CLOCK - 2 * DAY + 1, None).await;
    let first = by_model(&app.build(None, &exact()).await.unwrap());
    let incremental: Vec<String> = first
        .keys()
        .filter(|m| {
            [
                "marts.gmv_daily",
                "marts.hourly_sales",
                "marts.order_status_daily",
                "marts.brand_daily",
                "marts.sku_daily",
                "marts.fulfillment_sla",
            ]
            .contains(&m.as_str())
        })
        .cloned()
        .collect();
    assert_eq!(incremental.len(), 6, "{:?}", first.keys());
    for m in &incremental {
        assert_eq!(first[m].kind, BuildKind::Full, "{m}: first build is full");
    }

    // Nothing new landed: every incremental model is up to date and writes nothing.
    let again = by_model(&app.build(None, &exact()).await.unwrap());
    for m in &incremental {
        assert_eq!(again[m].kind, BuildKind::UpToDate, "{m}: nothing changed");
        assert_eq!(again[m].version, -1, "{m}: no commit");
    }

    // Two more days of orders (and of status changes to older ones), one at a time.
    for day in [1, 0] {
        let clock = CLOCK - day * DAY;
        sb.sandbox.set_clock(clock);
        extract_ok(&app, clock + 1, None).await;
        let built = by_model(&app.build(None, &exact()).await.unwrap());
        for m in &incremental {
            let b = &built[m];
            assert_eq!(b.kind, BuildKind::Incremental, "{m} after a day");
            let total: usize = first[m].rows;
            assert!(b.windows > 0, "{m}: a day of orders changes windows");
            assert!(
                b.windows * 2 < total,
                "{m}: rebuilt {} windows for {} rows — not incremental",
                b.windows,
                total
            );
        }
    }

    // A window that fetched long before the last build and committed after it: its rows
    // carry an `_extracted_at` an hour older than anything the build read, but they land
    // in a newer Delta version, so the next incremental build still rebuilds their
    // windows (with fetch-time tracking and its 10-minute lookback it did not).
    late_commit_of_an_old_fetch(&app).await;
    let built = by_model(&app.build(None, &exact()).await.unwrap());
    for m in ["marts.order_status_daily", "marts.gmv_daily"] {
        assert_eq!(
            built[m].kind,
            BuildKind::Incremental,
            "{m} after a late commit"
        );
        assert!(built[m].windows >= 1, "{m}: the late commit's window");
    }

    // The incremental result equals a full rebuild, row for row, for every model.
    let incremental_rows = all_models(&app).await;
    let full = app
        .build(
            None,
            &BuildOptions {
                full_refresh: true,
                ..exact()
            },
        )
        .await
        .unwrap();
    assert!(full.iter().all(|b| b.kind == BuildKind::Full));
    let full_rows = all_models(&app).await;
    for (m, rows) in &full_rows {
        assert!(
            !rows.is_empty() || m.contains("slow_movers"),
            "{m} is empty"
        );
        assert_eq!(
            &incremental_rows[m], rows,
            "{m}: incremental ≠ full rebuild"
        );
    }
}

/// Cancels one paid order in `raw.orders` the way a slow window would: a newer version of
/// the row, stamped as fetched an hour before the newest row the lake holds.
async fn late_commit_of_an_old_fetch(app: &App) {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::compute::cast;
    use arrow::datatypes::DataType;
    let rows = app
        .query("select * from raw.orders where status = 'COMPLETED' order by id limit 1")
        .await
        .unwrap();
    let b = rows
        .iter()
        .find(|b| b.num_rows() == 1)
        .expect("a completed order");
    let schema = b.schema();
    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
    let shifted = |name: &str, by: i64| -> ArrayRef {
        let i = schema.index_of(name).unwrap();
        let t = schema.field(i).data_type().clone();
        let v = cast(&cols[i], &DataType::Int64).unwrap();
        let v = v.as_any().downcast_ref::<Int64Array>().unwrap();
        let v = Int64Array::from_iter_values(v.values().iter().map(|x| x + by));
        cast(&v, &t).unwrap()
    };
    let newest = query_i64(
        app,
        "select cast(max(_extracted_at) as bigint) from raw.orders",
    )
    .await;
    let (status, update, fetched) = (
        schema.index_of("status").unwrap(),
        shifted("update_time", 1),
        shifted("_extracted_at", 0),
    );
    let fetched_i = schema.index_of("_extracted_at").unwrap();
    let old = cast(&fetched, &DataType::Int64).unwrap();
    let old = old.as_any().downcast_ref::<Int64Array>().unwrap().value(0);
    let hour_before_newest = shifted("_extracted_at", newest - old - 3_600_000_000);
    cols[status] = cast(
        &StringArray::from(vec!["CANCELLED"]),
        schema.field(status).data_type(),
    )
    .unwrap();
    cols[schema.index_of("update_time").unwrap()] = update;
    cols[fetched_i] = hour_before_newest;
    let batch = arrow::array::RecordBatch::try_new(schema.clone(), cols).unwrap();
    let keys: Vec<String> = ["_shop_id", "_month", "id"].map(String::from).to_vec();
    let spec = shoplake::warehouse::UpsertSpec {
        keys: &keys,
        version_column: Some("update_time"),
        partition_by: &["_shop_id", "_month"],
        ..Default::default()
    };
    let w = app
        .lake
        .table(shoplake::warehouse::TableRef::raw("orders"))
        .upsert(batch)
        .options(spec)
        .await
        .unwrap();
    assert_eq!(w.updated, 1, "the late window replaced the order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_failures_parallelism_sql_tests_and_docs() {
    let sb = start(small(2, 1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let project = copy_project(&dir.path().join("project"));
    let app = app_for(&sb, &dir.path().join("data"), Some(&project)).await;
    backfill_ok(&app, CLOCK - 32 * DAY, CLOCK + 1, None).await;
    independent_models_build_at_the_same_time(&app).await;
    edited_models_rebuild_in_full(&app, &project).await;
    a_failing_model_skips_only_what_is_downstream(&app, &project).await;
    sql_tests_count_failing_rows_and_name_broken_files(&app, &project).await;
    docs_catalog_every_table(&app).await;
}

async fn independent_models_build_at_the_same_time(app: &App) {
    // Independent models build at the same time with 2 threads, never with 1.
    let overlaps = |r: &[BuildReport]| {
        let mut n = 0;
        for (i, a) in r.iter().enumerate() {
            for b in &r[i + 1..] {
                n += usize::from(a.span.0 < b.span.1 && b.span.0 < a.span.1);
            }
        }
        n
    };
    let one = app
        .build(
            None,
            &BuildOptions {
                threads: 1,
                ..exact()
            },
        )
        .await
        .unwrap();
    assert_eq!(overlaps(&one), 0, "one thread: one model at a time");
    let two = app
        .build(
            None,
            &BuildOptions {
                threads: 2,
                full_refresh: true,
            },
        )
        .await
        .unwrap();
    assert!(
        overlaps(&two) > 0,
        "two threads: independent models overlap"
    );
    // Dependencies still come first.
    let at: BTreeMap<&str, &BuildReport> = two.iter().map(|b| (b.model.as_str(), b)).collect();
    assert!(at["staging.stg_orders"].span.1 <= at["marts.gmv_daily"].span.0);
    assert!(at["marts.gmv_daily"].span.1 <= at["marts.gmv_weekly"].span.0);
}

async fn edited_models_rebuild_in_full(app: &App, project: &std::path::Path) {
    // Editing an incremental model rebuilds it in full; its neighbours stay incremental.
    let gmv = project.join("sql/marts/gmv_daily.sql");
    let mut sql = std::fs::read_to_string(&gmv).unwrap();
    sql.push_str("\n-- edited: a new comment is a new model version\n");
    std::fs::write(&gmv, &sql).unwrap();
    let built = by_model(&app.build(None, &exact()).await.unwrap());
    assert_eq!(built["marts.gmv_daily"].kind, BuildKind::Full);
    assert_eq!(built["marts.hourly_sales"].kind, BuildKind::UpToDate);
    // Editing a model upstream rebuilds the incremental models below it in full: their
    // stored windows were computed by the old SQL.
    let stg = project.join("sql/staging/stg_orders.sql");
    let mut sql = std::fs::read_to_string(&stg).unwrap();
    sql.push_str("\n-- edited upstream\n");
    std::fs::write(&stg, &sql).unwrap();
    let built = by_model(&app.build(None, &exact()).await.unwrap());
    assert_eq!(built["marts.gmv_daily"].kind, BuildKind::Full);
    assert_eq!(built["marts.hourly_sales"].kind, BuildKind::Full);
    let built = by_model(&app.build(None, &exact()).await.unwrap());
    assert_eq!(built["marts.gmv_daily"].kind, BuildKind::UpToDate);
}

async fn a_failing_model_skips_only_what_is_downstream(app: &App, project: &std::path::Path) {
    // A model that fails skips what is downstream of it, and only that.
    let returns = project.join("sql/staging/stg_returns.sql");
    let good = std::fs::read_to_string(&returns).unwrap();
    std::fs::write(
        &returns,
        good.replace("    return_type,", "    no_such_column,"),
    )
    .unwrap();
    let err = app.build(None, &exact()).await.unwrap_err().to_string();
    assert!(err.contains("stg_returns.sql"), "{err}");
    assert!(err.contains("skipped downstream: "), "{err}");
    let skipped = err.split("skipped downstream: ").nth(1).unwrap();
    for m in [
        "marts.gmv_daily",
        "marts.returns_refunds",
        "marts.kpi_summary",
        "marts.gmv_forecast",
    ] {
        assert!(skipped.contains(m), "{m} should be skipped: {err}");
    }
    for m in [
        "marts.hourly_sales",
        "marts.brand_daily",
        "marts.finance_daily",
    ] {
        assert!(!skipped.contains(m), "{m} does not read stg_returns: {err}");
    }
    assert!(err.contains("built: "), "{err}");
    std::fs::write(&returns, &good).unwrap();
}

async fn sql_tests_count_failing_rows_and_name_broken_files(app: &App, project: &std::path::Path) {
    // Custom SQL tests: failing rows are counted, a broken one names its file and line.
    std::fs::write(
        project.join("sql/tests/days_with_orders.sql"),
        "-- every day of gmv_daily, to see failures counted\nselect shop_id, order_date\nfrom marts.gmv_daily\n",
    )
    .unwrap();
    std::fs::write(
        project.join("sql/tests/broken.sql"),
        "-- a broken test\nselect\n  nope\nfrom marts.gmv_daily\n",
    )
    .unwrap();
    app.build(None, &exact()).await.unwrap();
    let days = scalar_i64(
        &app.query("select count(*) from marts.gmv_daily")
            .await
            .unwrap(),
    );
    let results = app.test(None).await.unwrap();
    let find = |name: &str| {
        results
            .iter()
            .find(|t| t.model == name)
            .unwrap_or_else(|| panic!("{name} ran"))
    };
    let t = find("tests.days_with_orders");
    assert_eq!(t.failures as i64, days);
    assert_eq!(t.test, "every day of gmv_daily, to see failures counted");
    let t = find("tests.broken");
    let e = t.error.as_deref().unwrap();
    assert!(e.contains("broken.sql:3"), "{e}");
    for name in [
        "tests.gmv_equals_order_lines",
        "tests.brand_and_sku_sum_to_gmv",
        "tests.periods_sum_days",
        "tests.settlements_match_transactions",
    ] {
        assert!(find(name).passed(), "{name}: {:?}", find(name));
    }
    // --select keeps the SQL tests reading the selected models only.
    let selected = app.test(Some("finance_daily")).await.unwrap();
    assert!(
        selected
            .iter()
            .any(|t| t.model == "tests.settlements_match_transactions")
    );
    assert!(
        !selected
            .iter()
            .any(|t| t.model == "tests.gmv_equals_order_lines")
    );
}

async fn docs_catalog_every_table(app: &App) {
    // docs: every table, its columns with types and docs, and lineage.
    let md = app.docs().await.unwrap();
    let ctx = app.session().await.unwrap();
    for m in app.project(&ctx).await.unwrap().models {
        assert!(
            md.contains(&format!("\n## {}\n", m.qualified())),
            "{} in docs",
            m.qualified()
        );
    }
    for t in raw_tables(app) {
        assert!(md.contains(&format!("\n## raw.{t}\n")), "raw.{t} in docs");
    }
    assert!(
        md.contains("| orders | Int64 | orders placed that day (any status) |"),
        "column docs"
    );
    assert!(
        md.contains("| create_date | Date32 | Shop-local date the order was placed. |"),
        "raw column docs"
    );
    assert!(md.contains("- read by: marts.affiliate_commissions, marts.anomalies_daily, marts.gmv_forecast, marts.gmv_monthly, marts.gmv_weekly, marts.kpi_summary"));
    assert!(
        md.contains("  staging.stg_orders --> marts.gmv_daily"),
        "lineage graph"
    );
}
