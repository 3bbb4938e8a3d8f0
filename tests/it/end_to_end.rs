//! Sandbox (known seed) → backfill → build → Flight SQL: the marts equal the sandbox's
//! ground truth exactly, and re-running a backfill changes nothing.

use std::collections::BTreeMap;

use crate::helpers::*;
use arrow::array::{RecordBatch, StringArray};
use arrow::util::pretty::pretty_format_batches;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use futures::TryStreamExt;
use shoplake::app::App;
use shoplake::pipeline::convert::parse_decimal;
use shoplake_sandbox as sandbox;

const CLOCK: i64 = sandbox::DEFAULT_CLOCK;

async fn fetch(
    client: &mut FlightSqlServiceClient<tonic::transport::Channel>,
    info: arrow_flight::FlightInfo,
) -> Vec<RecordBatch> {
    assert_eq!(info.endpoint.len(), 1, "one endpoint");
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    client
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

fn dec(s: &str) -> i128 {
    parse_decimal(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// (shop_id, date) → (orders, cancelled, units, gross, net, total) from the truth.
/// Per (shop, day): three counts and three money sums, as the sandbox's truth has them.
type DayTruth = BTreeMap<(String, String), (u64, u64, u64, i128, i128, i128)>;

fn truth_days(truth: &serde_json::Value) -> DayTruth {
    let mut out = BTreeMap::new();
    for s in truth["shops"].as_array().unwrap() {
        for d in s["days"].as_array().unwrap() {
            out.insert(
                (
                    s["shop_id"].as_str().unwrap().to_string(),
                    d["date"].as_str().unwrap().to_string(),
                ),
                (
                    d["orders"].as_u64().unwrap(),
                    d["cancelled_orders"].as_u64().unwrap(),
                    d["units"].as_u64().unwrap(),
                    dec(d["gross_gmv"].as_str().unwrap()),
                    dec(d["net_gmv"].as_str().unwrap()),
                    dec(d["total_amount"].as_str().unwrap()),
                ),
            );
        }
    }
    out
}

async fn marts_over_flight(
    addr: std::net::SocketAddr,
) -> BTreeMap<(String, String), (u64, u64, u64, i128, i128, i128)> {
    let mut c = flight_client(addr).await;
    let info = c
        .execute(
            "select shop_id, cast(order_date as varchar) as d, orders, cancelled_orders, units, \
             cast(gross_gmv as varchar) as g, cast(net_gmv as varchar) as n, cast(total_amount as varchar) as t \
             from marts.gmv_daily order by shop_id, order_date"
                .into(),
            None,
        )
        .await
        .unwrap();
    let b = fetch(&mut c, info).await;
    let cols: Vec<Vec<String>> = [
        "shop_id",
        "d",
        "orders",
        "cancelled_orders",
        "units",
        "g",
        "n",
        "t",
    ]
    .iter()
    .map(|c| strings(&b, c))
    .collect();
    let mut out = BTreeMap::new();
    #[allow(clippy::needless_range_loop)] // one row across parallel column vectors
    for i in 0..cols[0].len() {
        out.insert(
            (cols[0][i].clone(), cols[1][i].clone()),
            (
                cols[2][i].parse().unwrap(),
                cols[3][i].parse().unwrap(),
                cols[4][i].parse().unwrap(),
                dec(&cols[5][i]),
                dec(&cols[6][i]),
                dec(&cols[7][i]),
            ),
        );
    }
    out
}

async fn snapshot(app: &App, table: &str, order: &str) -> String {
    let b = app
        .query(&format!("select * from raw.{table} order by {order}"))
        .await
        .unwrap();
    pretty_format_batches(&b).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_build_serve_equals_ground_truth_and_reruns_change_nothing() {
    let sb = start(small(2, 3000)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sb, dir.path(), None).await;

    let from = CLOCK - 32 * 86_400;
    let sum = backfill_ok(&app, from, CLOCK + 1, None).await;
    assert!(sum.rows > 3000, "landed {} rows", sum.rows);
    build_and_pass_the_data_tests(&app).await;

    // Flight SQL: metadata without a catalog, SqlInfo, and the marts against the truth.
    let server = app.serve("127.0.0.1:0").await.unwrap();
    let mut c = flight_client(server.addr).await;
    flight_metadata_and_sql_info(&mut c).await;
    let shop = flight_schemas_are_plain_utf8(&mut c).await;
    flight_binds_parameters_and_refuses_writes(&mut c, &app, &shop).await;

    let want = truth_days(&truth(&sb).await);
    let got = marts_over_flight(server.addr).await;
    assert_eq!(got.len(), want.len(), "days");
    assert_eq!(
        got, want,
        "marts.gmv_daily equals the sandbox's ground truth"
    );

    // A second backfill of the same range changes nothing.
    let before = raw_snapshots(&app).await;
    let again = backfill_ok(&app, from, CLOCK + 1, None).await;
    assert_eq!(again.changed, 0, "a rerun inserts or updates nothing");
    assert_eq!(again.rows, sum.rows, "the rerun fetched the same rows");
    let after = raw_snapshots(&app).await;
    assert!(before == after, "a rerun changed raw tables");

    // Buyer PII is not landed, not even in _extra; the detail stream landed its fields.
    let b = app
        .query(
            "select count(*) as n from raw.orders \
             where _extra like '%buyer_email%' or _extra like '%phone%' or _extra like '%\"name\"%'",
        )
        .await
        .unwrap();
    assert_eq!(strings(&b, "n"), vec!["0"]);
    let b = app
        .query(
            "select count(*) as n from raw.orders o join raw.order_details d \
             on d._shop_id = o._shop_id and d.id = o.id where d.payment_method_code is not null",
        )
        .await
        .unwrap();
    let n: u64 = strings(&b, "n")[0].parse().unwrap();
    assert!(n >= 3000, "order details for every order: {n}");

    // Writes are refused.
    let err = app
        .query("drop table raw.orders")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.to_lowercase().contains("not supported") || err.contains("DDL"),
        "{err}"
    );
    server.stop().await;
}

/// Builds every model (the core ones among them) and runs the data tests: all pass.
async fn build_and_pass_the_data_tests(app: &App) {
    let built = app.build(None, &Default::default()).await.unwrap();
    let names: Vec<_> = built.iter().map(|b| b.model.as_str()).collect();
    for m in [
        "staging.stg_orders",
        "staging.stg_order_lines",
        "staging.stg_products",
        "marts.gmv_daily",
        "marts.order_status_daily",
        "marts.brand_daily",
        "marts.sku_daily",
    ] {
        assert!(names.contains(&m), "{m} built: {names:?}");
    }
    let tests = app.test(None).await.unwrap();
    let failed: Vec<_> = tests.iter().filter(|t| !t.passed()).collect();
    assert!(failed.is_empty(), "data tests failed: {failed:?}");
    assert!(tests.len() >= 15, "{} tests", tests.len());
}

async fn flight_metadata_and_sql_info(c: &mut FlightSqlServiceClient<tonic::transport::Channel>) {
    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("marts".into()),
            table_name_filter_pattern: Some("gmv%".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let tables = fetch(c, info).await;
    assert_eq!(
        strings(&tables, "table_name"),
        vec!["gmv_daily", "gmv_forecast", "gmv_monthly", "gmv_weekly"]
    );
    let info = c
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas = strings(&fetch(c, info).await, "db_schema_name");
    for s in ["marts", "raw", "staging"] {
        assert!(schemas.contains(&s.to_string()), "{schemas:?}");
    }
    let info = c
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerArrowVersion,
            SqlInfo::FlightSqlServerReadOnly,
            SqlInfo::SqlIdentifierQuoteChar,
        ])
        .await
        .unwrap();
    let ids = strings(&fetch(c, info).await, "info_name");
    assert_eq!(ids, vec!["0", "2", "3", "504"]);
}

/// Partition columns (dictionaries in the plan) and strings reach clients as plain Utf8,
/// and the FlightInfo schema is exactly the stream's schema. Returns a shop id.
async fn flight_schemas_are_plain_utf8(
    c: &mut FlightSqlServiceClient<tonic::transport::Channel>,
) -> String {
    let info = c
        .execute(
            "select _shop_id, _month, id, total_amount from raw.orders limit 5".into(),
            None,
        )
        .await
        .unwrap();
    let announced = arrow::datatypes::Schema::try_from(info.clone()).unwrap();
    let rows = fetch(c, info).await;
    assert_eq!(rows[0].schema().fields(), announced.fields());
    assert_eq!(
        announced.field(0).data_type(),
        &arrow::datatypes::DataType::Utf8
    );
    assert_eq!(
        announced.field(2).data_type(),
        &arrow::datatypes::DataType::Utf8
    );
    strings(&rows, "_shop_id")[0].clone()
}

/// A prepared statement with a bound parameter (stateless handle rewritten by DoPut)
/// answers what a direct query answers; writes are refused over Flight SQL too.
async fn flight_binds_parameters_and_refuses_writes(
    c: &mut FlightSqlServiceClient<tonic::transport::Channel>,
    app: &App,
    shop: &str,
) {
    let mut stmt = c
        .prepare(
            "select count(*) as n from marts.gmv_daily where shop_id = ?".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(stmt.parameter_schema().unwrap().fields().len(), 1);
    let param = RecordBatch::try_from_iter(vec![(
        "$1",
        std::sync::Arc::new(StringArray::from(vec![shop.to_string()])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    stmt.set_parameters(param).unwrap();
    let info = stmt.execute().await.unwrap();
    let bound = strings(&fetch(c, info).await, "n");
    let direct = app
        .query(&format!(
            "select count(*) as n from marts.gmv_daily where shop_id = '{shop}'"
        ))
        .await
        .unwrap();
    assert_eq!(bound, strings(&direct, "n"));
    assert_ne!(bound, vec!["0"]);
    // Read-only over Flight SQL too.
    for sql in [
        "drop table raw.orders",
        "create table marts.x as select 1",
        "set datafusion.execution.batch_size = 1",
    ] {
        let err = c.execute(sql.into(), None).await.unwrap_err().to_string();
        assert!(err.contains("not supported"), "{sql}: {err}");
    }
}

/// The raw tables a rerun must leave alone, printed in key order.
async fn raw_snapshots(app: &App) -> (String, String, String) {
    (
        snapshot(app, "orders", "_shop_id, id").await,
        snapshot(app, "order_line_items", "_shop_id, order_id, id").await,
        snapshot(app, "products", "_shop_id, id").await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_extract_follows_the_clock_and_replaces_updated_orders() {
    let sb = start(small(2, 2000)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = backfilled(&sb, dir.path(), CLOCK - 32 * 86_400, CLOCK + 1).await;
    app.build(None, &Default::default()).await.unwrap();
    // The server runs through the whole test: it must see later builds without a restart.
    let server = app.serve("127.0.0.1:0").await.unwrap();
    let before = marts_over_flight(server.addr).await;

    // The world moves on three days: orders ship, deliver, cancel; update_time moves.
    let advance = 3 * 86_400;
    sb.sandbox.set_clock(CLOCK + advance);
    let sum = extract_ok(&app, CLOCK + advance + 1, None).await;
    assert!(sum.rows > 0, "updates landed");

    app.build(None, &Default::default()).await.unwrap();
    let failed: Vec<_> = app
        .test(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| !t.passed())
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let b = app
        .query("select count(*) as n, count(distinct _shop_id || id) as d from raw.orders")
        .await
        .unwrap();
    let (n, d) = (strings(&b, "n"), strings(&b, "d"));
    assert_eq!(n, d, "no duplicate orders");

    let want = truth_days(&truth(&sb).await);
    let got = marts_over_flight(server.addr).await;
    assert_ne!(got, before, "the running server sees the new build");
    assert_eq!(
        got, want,
        "marts follow the sandbox after an incremental extract"
    );
    // The cursor moved to the end of the sync.
    let st = app.status().await.unwrap();
    let orders: Vec<_> = st.iter().filter(|r| r.stream == "orders").collect();
    assert_eq!(orders.len(), 2);
    for r in orders {
        assert_eq!(r.status, "ok");
        assert!(r.rows > 0);
        assert_eq!(
            r.cursor.as_deref(),
            Some(
                chrono::DateTime::from_timestamp(CLOCK + advance + 1, 0)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    .as_str()
            )
        );
    }
    server.stop().await;
}
