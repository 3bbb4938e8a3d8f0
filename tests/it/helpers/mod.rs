//! Shared test helpers: a sandbox on port 0, a client with a temp token store, signed raw
//! requests for gateway tests, and the sandbox's ground truth.
#![allow(dead_code)]

pub mod cells;
pub mod pg;
pub mod s3;

pub use cells::*;

/// The demo the binary runs (`src/cli/demo.rs`), compiled into the tests too: the library
/// holds no simulator, so the demo lives with the binary.
#[path = "../../../src/cli/demo.rs"]
pub mod demo;

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::{Value, json};
use shoplake::api::auth::{ShopInfo, TokenStore, exchange_and_store};
use shoplake::api::paginate::{ParamsIn, pages};
use shoplake::api::retry::RetryPolicy;
use shoplake::api::{ApiClient, ApiRequest, ClientConfig, PageSpec, PageStyle};
use shoplake_sandbox::{self as sandbox, DataConfig, RunningSandbox, SandboxConfig};

pub const KEY: &str = sandbox::DEFAULT_APP_KEY;
pub const SECRET: &str = sandbox::DEFAULT_APP_SECRET;

/// A small sandbox config: `orders` orders over `shops` shops and 30 days, no rate limit.
pub fn small(shops: usize, orders: usize) -> SandboxConfig {
    SandboxConfig {
        data: DataConfig {
            seed: 42,
            shops,
            orders,
            days: 30,
            clock: sandbox::DEFAULT_CLOCK,
        },
        rps: 0.0,
        ..SandboxConfig::default()
    }
}

pub async fn start(cfg: SandboxConfig) -> RunningSandbox {
    sandbox::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox starts")
}

/// Fast retries for tests: 10 attempts, 20 ms base, 1 s cap, 2 s timeout, no client limit.
pub fn client_config(sb: &RunningSandbox) -> ClientConfig {
    let mut c = ClientConfig::for_base(&sb.base_url(), KEY, SECRET).unwrap();
    c.retry = RetryPolicy {
        max_attempts: 10,
        base: Duration::from_millis(20),
        max: Duration::from_secs(1),
    };
    c.timeout = Duration::from_secs(2);
    c.max_rps = 0.0;
    c
}

pub struct Authorized {
    pub client: ApiClient,
    pub shops: Vec<ShopInfo>,
    pub dir: tempfile::TempDir,
}

/// A client with a fresh token store, authorized with the sandbox's demo code.
pub async fn authorize(cfg: ClientConfig) -> Authorized {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(TokenStore::open(dir.path().join("tokens")).unwrap());
    let client = ApiClient::new(cfg, Some(store)).unwrap();
    let shops = exchange_and_store(&client, sandbox::DEFAULT_AUTH_CODE)
        .await
        .expect("code exchange");
    Authorized { client, shops, dir }
}

/// Walks order search for a shop (create_time ASC) and returns every order.
pub async fn list_orders(client: &ApiClient, cipher: &str, page_size: u32) -> Vec<Value> {
    let req = ApiRequest::post("/order/202309/orders/search", &json!({}))
        .shop(cipher)
        .query("sort_field", "create_time")
        .query("sort_order", "ASC");
    let spec = PageSpec {
        request: req,
        style: PageStyle::Token,
        page_size,
        params_in: ParamsIn::Query,
        records: "orders".into(),
    };
    let got: Vec<_> = pages(client.clone(), spec)
        .try_collect()
        .await
        .expect("listing completes");
    got.into_iter().flat_map(|p| p.records).collect()
}

pub fn ids(records: &[Value], field: &str) -> Vec<String> {
    records
        .iter()
        .map(|r| r[field].as_str().expect("string id").to_string())
        .collect()
}

pub async fn truth(sb: &RunningSandbox) -> Value {
    reqwest::get(format!("{}/__sandbox/truth", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn truth_shop<'a>(truth: &'a Value, cipher: &str) -> &'a Value {
    truth["shops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["shop_cipher"] == cipher)
        .expect("shop in truth")
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Parses a decimal string into minor units with `digits` decimals ("29.99" → 2999).
pub fn minor(s: &str, digits: u32) -> i64 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(
        frac.len() as u32 <= digits,
        "{s} has more than {digits} decimals"
    );
    let frac = format!("{frac:0<width$}", width = digits as usize);
    let neg = int.starts_with('-');
    let v = int.trim_start_matches('-').parse::<i64>().unwrap() * 10i64.pow(digits)
        + if digits > 0 {
            frac.parse::<i64>().unwrap()
        } else {
            0
        };
    if neg { -v } else { v }
}

/// A Python virtual environment under target/ with `packages` installed (pip from PyPI).
/// Created once and reused; panics with a clear message when python3 or PyPI is missing.
pub fn python_venv(packages: &[&str]) -> std::path::PathBuf {
    use std::process::Command;
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-venv");
    // Test processes run in parallel: one at a time creates the venv and installs into it.
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(venv.with_extension("lock")).unwrap();
    lock.lock().expect("lock target/py-venv.lock");
    let py = venv.join("bin/python");
    if !py.exists() {
        let st = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 is needed for the Python client tests (install Python 3.9+)");
        assert!(st.success(), "python3 -m venv {} failed", venv.display());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            let name = p.split(['=', '<', '>', '[']).next().unwrap_or(p);
            !Command::new(&py)
                .args(["-m", "pip", "show", "-q", name])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if !missing.is_empty() {
        let out = Command::new(&py)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(&missing)
            .output()
            .expect("run pip");
        assert!(
            out.status.success(),
            "pip install {missing:?} failed (is PyPI reachable?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    py
}

/// A Flight SQL client connected to `addr` (plaintext).
pub async fn flight_client(
    addr: std::net::SocketAddr,
) -> arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel> {
    let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    arrow_flight::sql::client::FlightSqlServiceClient::new(ch)
}

/// Copies a directory tree (a project's pipelines/, schemas/, sql/ for a modified copy).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A demo run (2 shops, 30 days, `orders` orders, `seed`) in `dir` through the same path
/// as `shoplake demo`: raw tables, marts and seeds built, data tests passed. The sandbox
/// keeps running (for its truth or a second run).
pub async fn demo(
    dir: &std::path::Path,
    orders: usize,
    seed: u64,
) -> (shoplake::app::App, RunningSandbox) {
    let spec = demo::DemoSpec {
        shops: 2,
        orders,
        days: 30,
        seed,
    };
    let (app, sb, report) = demo::run(shoplake::config::Config::default(), dir, &spec)
        .await
        .expect("demo warehouse builds");
    assert_eq!(report.tests_failed, 0, "demo data tests pass");
    (app, sb)
}

/// A small demo warehouse (2 shops, 2,000 orders, 30 days) in `dir`; the sandbox is stopped.
pub async fn demo_warehouse(dir: &std::path::Path) {
    let (_app, sb) = demo(dir, 2_000, 42).await;
    sb.stop().await;
}

/// Serves the lake in `dir` over Flight SQL on port 0 with a config `f` adjusts.
pub async fn serve_with(
    dir: &std::path::Path,
    f: impl FnOnce(&mut shoplake::config::Config),
) -> shoplake::serve::RunningFlight {
    let mut config = shoplake::config::Config::default();
    f(&mut config);
    shoplake::app::App::new(config, dir)
        .unwrap()
        .serve("127.0.0.1:0")
        .await
        .unwrap()
}

/// Fetches the (single) endpoint of a FlightInfo.
pub async fn flight_fetch(
    c: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    info: arrow_flight::FlightInfo,
) -> Result<Vec<arrow::array::RecordBatch>, arrow_flight::error::FlightError> {
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    c.do_get(ticket).await?.try_collect().await
}

/// Runs a statement over Flight SQL and collects its batches.
pub async fn flight_query(
    c: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    sql: &str,
) -> Result<Vec<arrow::array::RecordBatch>, arrow_flight::error::FlightError> {
    let info = c.execute(sql.to_string(), None).await?;
    flight_fetch(c, info).await
}

/// Total rows in `batches`.
/// Column `col` of every batch, cast to text (nulls as empty strings).
pub fn strings(batches: &[arrow::array::RecordBatch], col: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let a = b.column_by_name(col).expect("column");
        let a = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8).unwrap();
        let a = arrow::array::cast::as_string_array(&a);
        out.extend(a.iter().map(|v| v.unwrap_or("").to_string()));
    }
    out
}

pub fn rows(batches: &[arrow::array::RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// The single integer of a one-row, one-column result (`select count(*) …`).
pub fn scalar_i64(batches: &[arrow::array::RecordBatch]) -> i64 {
    let c = arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Int64).unwrap();
    c.as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}

/// A two-column result (key, number) as a map, keys as text (dictionary, view or plain).
pub fn key_counts(
    batches: &[arrow::array::RecordBatch],
) -> std::collections::BTreeMap<String, i64> {
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::DataType;
    let mut out = std::collections::BTreeMap::new();
    for b in batches {
        let k = arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
        let k = k.as_any().downcast_ref::<StringArray>().unwrap();
        let v = arrow::compute::cast(b.column(1), &DataType::Int64).unwrap();
        let v = v.as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            out.insert(k.value(i).to_string(), v.value(i));
        }
    }
    out
}

/// `field` of every shop in the sandbox truth, by shop id.
pub fn truth_per_shop(truth: &Value, field: &str) -> std::collections::BTreeMap<String, i64> {
    truth["shops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let v = field.split('.').fold(s, |v, k| &v[k]);
            (
                s["shop_id"].as_str().unwrap().to_string(),
                v.as_i64().unwrap(),
            )
        })
        .collect()
}

/// Every row of `raw.<table>` as a sorted list of digests, run-specific columns left out.
pub async fn table_rows(app: &shoplake::app::App, table: &str) -> Vec<String> {
    qualified_rows(app, &format!("raw.{table}")).await
}

/// Every row of `schema.table` as a sorted list of digests, run-specific columns left out.
pub async fn qualified_rows(app: &shoplake::app::App, qualified: &str) -> Vec<String> {
    let table = qualified;
    let ctx = app.session().await.unwrap();
    let df = ctx.table(table).await.unwrap();
    let cols: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .filter(|f| !f.name().starts_with("_extracted") && f.name() != "_source_request_id")
        // Float aggregates depend on summation order (file layout): compare them rounded.
        .map(|f| match f.data_type() {
            arrow::datatypes::DataType::Float64 | arrow::datatypes::DataType::Float32 => {
                format!("coalesce(cast(round(\"{}\", 6) as varchar), '∅')", f.name())
            }
            _ => format!("coalesce(cast(\"{}\" as varchar), '∅')", f.name()),
        })
        .collect();
    let sql = format!(
        "select md5(concat_ws('|', {})) as h from {table}",
        cols.join(", ")
    );
    let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let col = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let a = arrow::array::cast::as_string_array(&col);
        out.extend(a.iter().map(|v| v.unwrap_or("").to_string()));
    }
    out.sort();
    out
}

/// Raw tables the sandbox leaves empty for local (not cross-border) shops, which the small
/// test configurations have only (tests/it/products_listing.rs runs a cross-border shop).
pub const EMPTY_FOR_LOCAL_SHOPS: &[&str] = &[
    "global_warehouses",
    "global_products",
    "global_product_details",
    "replicated_products",
];

/// Whether `table` (`t` or `raw.t`) should hold rows after a backfill of local shops.
pub fn expect_rows(table: &str) -> bool {
    !EMPTY_FOR_LOCAL_SHOPS.contains(&table.trim_start_matches("raw."))
}

/// Every raw table the enabled streams land.
pub fn raw_tables(app: &shoplake::app::App) -> Vec<String> {
    let (p, _) = app.pipelines().unwrap();
    p.streams
        .iter()
        .filter(|s| s.enabled)
        .flat_map(|s| s.tables.clone())
        .collect()
}

/// A copy of the project (pipelines/, schemas/, sql/) with orders windows of `size`
/// (e.g. "3days"), so a month is many window jobs.
pub fn project_with_order_window(size: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_project(dir.path());
    edit_file(
        &dir.path().join("pipelines/orders.toml"),
        "size = \"90days\"",
        &format!("size = \"{size}\""),
        1,
    );
    dir
}

/// A copy of the project (pipelines/, schemas/, sql/) under `to`.
pub fn copy_project(to: &std::path::Path) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["pipelines", "schemas", "sql"] {
        copy_dir(&root.join(sub), &to.join(sub));
    }
    to.to_path_buf()
}

/// Replaces `from` by `to` in `file`, which must hold it exactly `count` times.
pub fn edit_file(file: &std::path::Path, from: &str, to: &str, count: usize) {
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(
        text.matches(from).count(),
        count,
        "{}: `{from}`",
        file.display()
    );
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// An app over `sb` with its data in `dir` (and its own project copy when given), its
/// shops authorized.
pub async fn app_for(
    sb: &RunningSandbox,
    dir: &std::path::Path,
    project: Option<&std::path::Path>,
) -> shoplake::app::App {
    app_with(sb, dir, project, |_| {}).await
}

/// [`app_for`] with the config changed by `f` first.
pub async fn app_with(
    sb: &RunningSandbox,
    dir: &std::path::Path,
    project: Option<&std::path::Path>,
    f: impl FnOnce(&mut shoplake::config::Config),
) -> shoplake::app::App {
    let mut config = shoplake::config::Config::default();
    config.project.dir = project.map(std::path::Path::to_path_buf);
    f(&mut config);
    let app = shoplake::app::App::new(config, dir)
        .unwrap()
        .with_client_config(client_config(sb));
    exchange_and_store(&app.client().unwrap(), sandbox::DEFAULT_AUTH_CODE)
        .await
        .unwrap();
    app
}

/// `shoplake --config <dir>/shoplake.toml --data-dir <dir> ARGS`, with no job backend
/// from the environment.
pub fn shoplake_in(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_shoplake"));
    c.arg("--config")
        .arg(dir.join("shoplake.toml"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("SHOPLAKE_JOBS__BACKEND");
    c
}

/// A data dir whose `shoplake.toml` is `config` (for the binary and [`app_from_dir`]).
pub fn dir_with_config(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shoplake.toml"), config).unwrap();
    dir
}

/// `shoplake auth exchange` with the sandbox's code, through the binary; it must succeed.
pub fn authorize_cli(dir: &std::path::Path) {
    run_ok(shoplake_in(
        dir,
        &["auth", "exchange", "--code", sandbox::DEFAULT_AUTH_CODE],
    ));
}

/// One clean, direct backfill of `[from, to)` from `sb` into `dir` with `project`: the
/// reference other runs are compared with.
pub async fn reference_backfill(
    dir: &std::path::Path,
    sb: &RunningSandbox,
    project: &std::path::Path,
    from: i64,
    to: i64,
) -> shoplake::app::App {
    let app = app_for(sb, dir, Some(project)).await;
    backfill_ok(&app, from, to, None).await;
    app
}

/// [`reference_backfill`] into a data dir of its own, returned with the app.
pub async fn reference_run(
    sb: &RunningSandbox,
    project: &std::path::Path,
    from: i64,
    to: i64,
) -> (shoplake::app::App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = reference_backfill(dir.path(), sb, project, from, to).await;
    (app, dir)
}

/// An app over `sb` with its data in `dir` (the shipped project), `[from, to)` backfilled.
pub async fn backfilled(
    sb: &RunningSandbox,
    dir: &std::path::Path,
    from: i64,
    to: i64,
) -> shoplake::app::App {
    let app = app_for(sb, dir, None).await;
    backfill_ok(&app, from, to, None).await;
    app
}

/// Backfills `[from, to)` of `pipeline` (every pipeline when `None`); a failed window fails
/// the test.
pub async fn backfill_ok(
    app: &shoplake::app::App,
    from: i64,
    to: i64,
    pipeline: Option<&str>,
) -> shoplake::pipeline::extract::RunSummary {
    let sum = app.backfill(from, to, None, pipeline).await.unwrap();
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);
    sum
}

/// Extracts from the cursors up to `until` for `pipeline` (every pipeline when `None`); a
/// failed window fails the test.
pub async fn extract_ok(
    app: &shoplake::app::App,
    until: i64,
    pipeline: Option<&str>,
) -> shoplake::pipeline::extract::RunSummary {
    let sum = app.extract(until, None, pipeline).await.unwrap();
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);
    sum
}

/// Asserts that every raw table `lake` lands holds as many rows as in `reference`, and some
/// (unless the seed leaves it empty).
pub async fn assert_same_raw_counts(lake: &shoplake::app::App, reference: &shoplake::app::App) {
    for t in raw_tables(lake) {
        let sql = format!("select count(*) from raw.{t}");
        let (n_lake, n_ref) = (
            query_i64(lake, &sql).await,
            query_i64(reference, &sql).await,
        );
        assert_eq!(n_lake, n_ref, "raw.{t} rows");
        assert!(n_ref > 0 || !expect_rows(t.as_ref()), "raw.{t} is empty");
    }
}

/// The app over an existing data dir configured by `<dir>/shoplake.toml`.
pub fn app_from_dir(dir: &std::path::Path) -> shoplake::app::App {
    let config = shoplake::config::Config::load(Some(&dir.join("shoplake.toml"))).unwrap();
    shoplake::app::App::new(config, dir).unwrap()
}

/// Backfills the seed's whole history (the truth's `history_start` to its clock) for each
/// pipeline (a category or stream) in turn; a failed window fails the test.
pub async fn backfill_history(app: &shoplake::app::App, truth: &Value, pipelines: &[&str]) {
    let (from, clock) = (
        truth["history_start"].as_i64().unwrap(),
        truth["clock"].as_i64().unwrap(),
    );
    for p in pipelines {
        let sum = app.backfill(from, clock + 1, None, Some(p)).await.unwrap();
        assert!(sum.errors.is_empty(), "{p}: {:?}", sum.errors);
    }
}

/// Asserts that every raw table in `tables` holds, per shop, the rows the sandbox's truth
/// (`tables.<table>`) says, and that the seed has rows for each (unless listed in
/// `may_be_empty`). Returns each table's total.
pub async fn assert_tables_match_truth(
    app: &shoplake::app::App,
    truth: &Value,
    tables: &[&str],
    may_be_empty: &[&str],
) -> Vec<(String, i64)> {
    let mut totals = Vec::new();
    for table in tables {
        assert!(
            truth["shops"][0]["tables"].get(*table).is_some(),
            "raw.{table}: the sandbox's truth has no count for it"
        );
        let want: std::collections::BTreeMap<_, _> =
            truth_per_shop(truth, &format!("tables.{table}"))
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect();
        let got = query_key_counts(
            app,
            &format!("select _shop_id, count(*) from raw.{table} group by _shop_id"),
        )
        .await;
        assert_eq!(got, want, "raw.{table}: rows per shop vs the sandbox");
        if !may_be_empty.contains(table) {
            assert!(!want.is_empty(), "raw.{table}: the seed has rows");
        }
        totals.push((table.to_string(), want.values().sum()));
    }
    totals
}

/// The batches a query returns; a failing query names itself.
pub async fn query_ok(app: &shoplake::app::App, sql: &str) -> Vec<arrow::array::RecordBatch> {
    app.query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The single integer a query returns (`select count(*) …`); a failing query names itself.
pub async fn query_i64(app: &shoplake::app::App, sql: &str) -> i64 {
    scalar_i64(&query_ok(app, sql).await)
}

/// [`key_counts`] of a query's (key, number) rows; a failing query names itself.
pub async fn query_key_counts(
    app: &shoplake::app::App,
    sql: &str,
) -> std::collections::BTreeMap<String, i64> {
    key_counts(&query_ok(app, sql).await)
}

/// Asserts that `sql` (shop id, count) counts per shop what the truth's `field` says, and
/// that the seed has some in every shop.
pub async fn assert_counts_per_shop(
    app: &shoplake::app::App,
    truth: &Value,
    field: &str,
    sql: &str,
) {
    let want = truth_per_shop(truth, field);
    assert!(
        want.values().all(|n| *n > 0),
        "{field}: the seed has some in every shop: {want:?}"
    );
    let got = query_key_counts(app, sql).await;
    assert_eq!(got, want, "{field} per shop vs the truth\n{sql}");
}

/// The error an API call fails with, as text; the call must fail.
pub async fn api_error(client: &ApiClient, req: &ApiRequest) -> String {
    client.send(req).await.unwrap_err().to_string()
}

/// The body of a GET of `url`, as text.
pub async fn http_text(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// A Flight SQL user with an argon2 hash of `password`.
pub fn user(name: &str, role: &str, password: &str) -> shoplake::config::UserEntry {
    shoplake::config::UserEntry {
        name: name.into(),
        role: role.into(),
        password_hash: Some(shoplake::serve::access::hash_password(password)),
        password_env: None,
    }
}

/// Asserts that each `(what, sql)` counts no rows (each query returns the rows breaking
/// `what`).
pub async fn assert_none_break(app: &shoplake::app::App, checks: &[(&str, &str)]) {
    for (what, sql) in checks {
        let n = query_i64(app, sql).await;
        assert_eq!(n, 0, "{what}: {n} rows break it\n{sql}");
    }
}

/// Runs `c`, asserting success; stdout and stderr together.
pub fn run_ok(mut c: std::process::Command) -> String {
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// A `shoplake worker` process named `name` over the config and data in `dir`.
pub fn worker_process(dir: &std::path::Path, name: &str) -> std::process::Child {
    shoplake_in(dir, &["worker", "--name", name, "--http-addr", ""])
        .env("SHOPLAKE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The extract jobs of `q`.
pub async fn extract_jobs(q: &shoplake::jobs::Queue) -> Vec<shoplake::jobs::JobRow> {
    q.jobs("extract/").await.unwrap()
}

/// Calls `f` until it returns `Some` (then that value) or `secs` seconds have passed
/// (then `None`).
pub async fn poll_for<T>(secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        // The poll interval, not a wait for anything.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to `secs`) until `f` returns `Some`, and returns that value.
pub async fn poll<T>(what: &str, secs: u64, f: impl AsyncFnMut() -> Option<T>) -> T {
    poll_for(secs, f)
        .await
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Waits (up to `secs`) until `cond` holds.
pub async fn wait_for(what: &str, secs: u64, mut cond: impl AsyncFnMut() -> bool) {
    poll(what, secs, async || cond().await.then_some(())).await
}

/// Waits (up to `secs`) until `f` holds for the queue's extract jobs.
pub async fn until(
    q: &shoplake::jobs::Queue,
    what: &str,
    secs: u64,
    f: impl Fn(&[shoplake::jobs::JobRow]) -> bool,
) {
    let held = poll_for(secs, async || f(&extract_jobs(q).await).then_some(())).await;
    if held.is_none() {
        panic!(
            "timed out waiting for {what}: {:?}",
            q.counts().await.unwrap()
        );
    }
}

/// A child process's exit status once it has exited, waiting up to `secs`.
pub async fn exited(
    child: &mut std::process::Child,
    what: &str,
    secs: u64,
) -> std::process::ExitStatus {
    poll(what, secs, async || child.try_wait().unwrap()).await
}

/// Jobs `worker` is running.
pub fn running_by<'a>(
    js: &'a [shoplake::jobs::JobRow],
    worker: &str,
) -> impl Iterator<Item = &'a shoplake::jobs::JobRow> {
    js.iter()
        .filter(move |j| j.status == "Running" && j.worker.as_deref() == Some(worker))
}

/// Stops a worker process with SIGTERM and waits for it; it must exit 0.
pub fn stop_process(mut w: std::process::Child) {
    unsafe { libc::kill(w.id() as i32, libc::SIGTERM) };
    let status = w.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0: {status:?}");
}

/// What a run extracts, builds and compares (the concurrency and crash tests on local disk
/// and on S3).
pub struct Scope {
    pub orders: usize,
    /// `--pipeline`; `None`: every stream.
    pub pipeline: Option<&'static str>,
    /// `--select`; `None`: every model.
    pub models: Option<&'static str>,
    /// Marts compared with the clean run (with every raw table).
    pub marts: &'static [&'static str],
}
