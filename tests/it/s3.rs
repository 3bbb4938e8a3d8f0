//! The lake on S3 (moto's S3 server on loopback): backfill, builds, data tests, `shoplake
//! query`, Flight SQL and maintenance run on it and end equal, row for row, to the same
//! run on local disk; Python `deltalake` and DuckDB read the S3 tables with the same
//! counts; and the store refuses a second commit of one version, the property two Delta
//! writers rely on. Two writers at once and kill -9 inside a commit on S3 are in
//! `concurrency` and `crash`.

use std::collections::BTreeMap;

use deltalake::logstore::object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::helpers::s3::S3Server;
use crate::helpers::*;
use shoplake::app::App;
use shoplake::warehouse::maintain::MaintainOptions;
use shoplake_sandbox::DEFAULT_CLOCK;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_refuses_a_second_commit_of_a_version() {
    let s3 = S3Server::start();
    let uri = s3.bucket("commits");
    let mut config = shoplake::config::Config::default();
    s3.configure(&mut config, &uri);
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(config, dir.path()).unwrap();
    let (store, root) = app.lake.store().unwrap();
    let path = root
        .join("t")
        .join("_delta_log")
        .join("00000000000000000000.json");
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    store
        .put_opts(&path, PutPayload::from_static(b"first"), create())
        .await
        .expect("the first commit of version 0");
    let second = store
        .put_opts(&path, PutPayload::from_static(b"second"), create())
        .await;
    assert!(
        matches!(
            second,
            Err(deltalake::logstore::object_store::Error::AlreadyExists { .. })
        ),
        "a second put-if-absent of one version must fail with AlreadyExists: {second:?}"
    );
    let kept = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&kept[..], b"first", "the first commit was overwritten");
}

/// Row counts of `tables` read by Python `deltalake` from S3, and by DuckDB scanning the
/// same Delta tables (as Arrow datasets: DuckDB's own httpfs/delta extensions download from
/// extensions.duckdb.org, which this machine cannot reach).
const READ_S3: &str = r#"
import json, sys
import duckdb
from deltalake import DeltaTable
endpoint, root = sys.argv[1], sys.argv[2]
opts = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "shoplake-test", "AWS_SECRET_ACCESS_KEY": "shoplake-test-secret"}
out = {}
for name in sys.argv[3:]:
    t = DeltaTable(root + "/" + name.replace(".", "/"), storage_options=opts)
    ds = t.to_pyarrow_dataset()
    out[name] = {
        "deltalake": t.to_pyarrow_table().num_rows,
        "duckdb": duckdb.sql("select count(*) from ds").fetchall()[0][0],
        "version": t.version(),
    }
print(json.dumps(out), flush=True)
import os
os._exit(0)
"#;

/// What the S3 runs extract and build.
const STREAM: &str = "orders";
const MODELS: &str = "+order_status_daily";

/// [`STREAM`] over `[from, to)` in four backfills: several commits per table, small files
/// for maintenance to compact.
async fn backfill_in_parts(app: &App, from: i64, to: i64) {
    let step = (to - from) / 4 + 1;
    for start in (from..to).step_by(step as usize) {
        backfill_ok(app, start, (start + step).min(to), Some(STREAM)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_on_s3_equals_one_on_disk_for_every_reader() {
    let s3 = S3Server::start();
    let py = tokio::task::spawn_blocking(|| {
        python_venv(&[
            crate::helpers::s3::MOTO,
            "deltalake>=1.0",
            "pyarrow>=15",
            "duckdb>=1.1",
        ])
    })
    .await
    .unwrap();
    let uri = s3.bucket("lake");
    let sb = start(small(2, 800)).await;
    let (from, to) = (DEFAULT_CLOCK - 32 * 86_400, DEFAULT_CLOCK + 1);

    // The same backfill and build on local disk and on S3: the orders stream and the
    // models over it (moto answers a request in milliseconds, so every stream of the
    // demo would take minutes; the writer and reader paths are the same for all).
    let local_dir = tempfile::tempdir().unwrap();
    let local = app_for(&sb, local_dir.path(), None).await;
    backfill_in_parts(&local, from, to).await;
    local
        .build(Some(MODELS), &Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&sb, dir.path(), None, |c| s3.configure(c, &uri)).await;
    assert!(app.lake.local_dir().is_none());
    let t = std::time::Instant::now();
    backfill_in_parts(&app, from, to).await;
    eprintln!(
        "backfill on S3: {:?}, {} requests",
        t.elapsed(),
        s3.requests()
    );
    let t = std::time::Instant::now();
    app.build(Some(MODELS), &Default::default()).await.unwrap();
    eprintln!("build on S3: {:?}, {} requests", t.elapsed(), s3.requests());
    let failed: Vec<_> = app
        .test(Some(MODELS))
        .await
        .unwrap()
        .into_iter()
        .filter(|t| !t.passed())
        .collect();
    assert!(failed.is_empty(), "data tests on S3: {failed:?}");
    assert!(
        !dir.path().join("lake").exists(),
        "an S3 lake wrote to the data dir"
    );

    let mut tables: Vec<String> = Vec::new();
    for schema in ["raw", "staging", "marts"] {
        for t in local.lake.list_tables(schema).await.unwrap() {
            tables.push(format!("{schema}.{t}"));
        }
    }
    assert!(tables.len() >= 4, "{tables:?}");
    for t in &tables {
        let (a, b) = (
            qualified_rows(&local, t).await,
            qualified_rows(&app, t).await,
        );
        assert!(!a.is_empty() || !expect_rows(t), "{t} is empty");
        assert!(a == b, "{t} differs between disk and S3");
    }
    for schema in ["raw", "staging", "marts"] {
        assert_eq!(
            app.lake.list_tables(schema).await.unwrap(),
            local.lake.list_tables(schema).await.unwrap(),
            "{schema} tables listed on S3"
        );
    }

    // Flight SQL serves the S3 tables (listing and queries).
    let server = app.serve("127.0.0.1:0").await.unwrap();
    let mut c = flight_client(server.addr).await;
    let listed = flight_query(
        &mut c,
        "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'order_status_daily'",
    )
    .await
    .unwrap();
    assert_eq!(
        scalar_i64(&listed),
        1,
        "marts.gmv_daily in information_schema"
    );
    let orders = query_i64(&local, "select count(*) from raw.orders").await;
    let over_flight = flight_query(&mut c, "select count(*) from raw.orders")
        .await
        .unwrap();
    assert_eq!(
        scalar_i64(&over_flight),
        orders,
        "raw.orders over Flight SQL"
    );

    // The CLI with the lake in shoplake.toml: query and status.
    let cli = dir_with_config(&format!(
        "[api]\nbase_url = \"{}\"\n{}[project]\ndir = \"{}\"\n",
        sb.base_url(),
        s3.toml(&uri),
        env!("CARGO_MANIFEST_DIR")
    ));
    authorize_cli(cli.path());
    let out = run_ok(shoplake_in(
        cli.path(),
        &["query", "select count(*) as n from raw.orders"],
    ));
    assert!(out.contains(&orders.to_string()), "shoplake query: {out}");
    let catalog = cli.path().join("catalog.md");
    let docs = run_ok(shoplake_in(
        cli.path(),
        &["docs", "--out", catalog.to_str().unwrap()],
    ));
    assert!(
        docs.contains("catalog.md (") && catalog.exists(),
        "shoplake docs on S3: {docs}"
    );
    let status = run_ok(shoplake_in(cli.path(), &["status"]));
    // The cursors live in the S3 tables' commits: another data dir sees them.
    let cursors = status
        .lines()
        .filter(|l| {
            let mut cols = l.split_whitespace().skip(1);
            cols.next() == Some("orders") && cols.next().is_some_and(|c| c.starts_with("2026-"))
        })
        .count();
    assert_eq!(
        cursors, 2,
        "both shops' orders cursors read from S3: {status}"
    );

    // Python deltalake and DuckDB read the same counts from S3.
    let names = [
        "raw.orders",
        "raw.order_line_items",
        "marts.order_status_daily",
    ];
    let out = std::process::Command::new(&py)
        .args(["-c", READ_S3, &s3.endpoint, &uri])
        .args(names)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python over S3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for t in names {
        let n = query_i64(&app, &format!("select count(*) from {t}")).await;
        assert!(n > 0, "{t} has rows");
        assert_eq!(got[t]["deltalake"].as_i64(), Some(n), "{t}: deltalake rows");
        assert_eq!(got[t]["duckdb"].as_i64(), Some(n), "{t}: duckdb rows");
    }

    // Maintenance on S3: compaction, checkpoint and vacuum keep every row.
    let before: BTreeMap<String, Vec<String>> = {
        let mut m = BTreeMap::new();
        for t in ["raw.orders", "marts.order_status_daily"] {
            m.insert(t.to_string(), qualified_rows(&app, t).await);
        }
        m
    };
    let reports = app
        .maintain(
            &["raw.orders".into(), "marts.order_status_daily".into()],
            &MaintainOptions {
                as_of_ms: Some((chrono::Utc::now().timestamp() + 30 * 86_400) * 1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let orders_report = &reports[0];
    assert!(orders_report.checkpoint, "a checkpoint on S3");
    assert!(
        orders_report.after.files < orders_report.before.files,
        "compaction on S3: {orders_report:?}"
    );
    assert!(
        orders_report.vacuumed > 0,
        "vacuum on S3: {orders_report:?}"
    );
    for (t, rows) in before {
        assert!(qualified_rows(&app, &t).await == rows, "{t} after maintain");
    }
    sb.stop().await;
}

/// `shoplake demo`'s path (every stream backfilled, every model built, the data tests)
/// with the lake on S3, small: three days of one shop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_s3() {
    let s3 = S3Server::start();
    let uri = s3.bucket("demo");
    let mut config = shoplake::config::Config::default();
    s3.configure(&mut config, &uri);
    let dir = tempfile::tempdir().unwrap();
    // One shop, three days: every stream still runs (about 110 windows); on moto each
    // window's commit is ~200 requests (the log replayed on every open), so this is the
    // size a test can afford.
    let spec = demo::DemoSpec {
        shops: 1,
        orders: 150,
        days: 3,
        seed: 7,
    };
    let t = std::time::Instant::now();
    let (app, sb, report) = demo::run(config, dir.path(), &spec)
        .await
        .expect("the demo on S3");
    eprintln!(
        "demo on S3: {:?}, {} requests, {report:?}",
        t.elapsed(),
        s3.requests()
    );
    assert_eq!(report.tests_failed, 0, "data tests on S3");
    assert!(report.rows > 0 && report.windows > 0, "{report:?}");
    let raw = app.lake.list_tables("raw").await.unwrap();
    let marts = app.lake.list_tables("marts").await.unwrap();
    assert!(raw.len() >= 40 && marts.len() >= 15, "{raw:?} {marts:?}");
    // Every order the sandbox holds, per shop, landed in the S3 lake.
    let want = truth_per_shop(&truth(&sb).await, "orders");
    let got =
        key_counts(&query_ok(&app, "select _shop_id, count(*) from raw.orders group by 1").await);
    assert_eq!(
        got, want,
        "orders per shop on S3 against the sandbox's truth"
    );
    sb.stop().await;
}
