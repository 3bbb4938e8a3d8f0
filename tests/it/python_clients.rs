//! Real BI clients over Flight SQL, from Python (a virtual environment under target/,
//! created with pip on first use): ADBC (`adbc-driver-flightsql`, the Go client Grafana's
//! data source uses) and `flightsql-dbapi` with SQLAlchemy (Superset's path), plus the
//! analyst role seen through both. The script is tests/python/bi_clients.py; this test
//! checks what it saw against the warehouse queried in process.

use std::collections::BTreeMap;

use crate::helpers::*;

use shoplake::app::App;
use shoplake::config::{Config, UserEntry};
use shoplake::serve::access::hash_password;

const PACKAGES: &[&str] = &[
    "pyarrow==26.0.1",
    "adbc-driver-manager==1.13.0",
    "adbc-driver-flightsql==1.13.0",
    "flightsql-dbapi==0.2.2",
    "SQLAlchemy==1.4.54",
    "pandas",
];

fn json_counts(v: &serde_json::Value) -> BTreeMap<String, i64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adbc_and_sqlalchemy_read_the_marts_and_roles_hold() {
    let py = python_venv(PACKAGES);
    let dir = tempfile::tempdir().unwrap();
    demo_warehouse(dir.path()).await;

    let mut config = Config::default();
    let user = |name: &str, role: &str, pw: &str| UserEntry {
        name: name.into(),
        role: role.into(),
        password_hash: Some(hash_password(pw)),
        password_env: None,
    };
    config.serve.users = vec![
        user("eng", "engineer", "eng-pw-1"),
        user("ana", "analyst", "ana-pw-2"),
    ];
    let app = App::new(config, dir.path()).unwrap();
    let server = app.serve("127.0.0.1:0").await.unwrap();

    let by_shop = key_counts(
        &app.query("select shop_id, sum(orders) from marts.gmv_daily group by shop_id")
            .await
            .unwrap(),
    );
    let by_status = key_counts(
        &app.query("select status, count(*) from raw.orders group by status")
            .await
            .unwrap(),
    );
    let shop = by_shop.keys().next().unwrap().clone();

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/bi_clients.py");
    let addr = server.addr.to_string();
    let out = tokio::process::Command::new(&py)
        .arg(&script)
        .args([&addr, "eng", "eng-pw-1", "ana", "ana-pw-2", &shop])
        .output()
        .await
        .unwrap();
    server.stop().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bi_clients.py failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();

    // ADBC: numbers equal the warehouse's; metadata and the prepared statement work.
    assert_eq!(json_counts(&seen["adbc_orders_by_shop"]), by_shop);
    assert_eq!(
        seen["adbc_prepared_shop_orders"].as_i64(),
        Some(by_shop[&shop])
    );
    let objects: Vec<&str> = seen["adbc_objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for t in [
        "marts.gmv_daily",
        "marts.sku_daily",
        "raw.orders",
        "seeds.brands",
    ] {
        assert!(objects.contains(&t), "{t} missing from {objects:?}");
    }
    let cols = seen["adbc_gmv_daily_columns"].as_array().unwrap();
    assert!(
        cols.iter().any(|c| c == "net_gmv") && cols.iter().any(|c| c == "order_date"),
        "{cols:?}"
    );

    // SQLAlchemy through flightsql-dbapi: inspector and a GROUP BY.
    assert_eq!(
        seen["sqla_schemas"],
        serde_json::json!(["marts", "raw", "seeds", "staging"])
    );
    assert!(
        seen["sqla_marts_tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "gmv_daily")
    );
    assert_eq!(
        seen["sqla_gmv_daily_columns"],
        seen["adbc_gmv_daily_columns"]
    );
    assert_eq!(json_counts(&seen["sqla_orders_by_status"]), by_status);

    // The analyst: no raw schema in either client, and raw queries are refused.
    assert_eq!(
        seen["analyst_schemas"],
        serde_json::json!(["marts", "seeds"])
    );
    assert_eq!(seen["analyst_raw_tables"], serde_json::json!([]));
    assert_eq!(
        seen["analyst_adbc_schemas"],
        serde_json::json!(["marts", "seeds"])
    );
    let refused = seen["analyst_raw_query"].as_str().unwrap();
    assert!(refused.contains("may not read raw.orders"), "{refused}");
}
