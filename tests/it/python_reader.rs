//! The raw Delta tables are readable by another Delta implementation: the Python
//! `deltalake` package (delta-rs's Python binding, installed with pip into a venv under
//! target/) reads them with the same rows, partition columns and decimal types.

use crate::helpers::*;
use shoplake::api::auth::exchange_and_store;
use shoplake::app::App;
use shoplake::config::Config;
use shoplake_sandbox as sandbox;

const SCRIPT: &str = r#"
import json, sys
from deltalake import DeltaTable
out = {}
for name in sys.argv[2:]:
    t = DeltaTable(sys.argv[1] + "/" + name)
    tbl = t.to_pyarrow_table()
    out[name] = {
        "rows": tbl.num_rows,
        "partitions": t.metadata().partition_columns,
        "types": {f.name: str(f.type) for f in tbl.schema},
        "shops": sorted(set(tbl.column("_shop_id").to_pylist())),
    }
print(json.dumps(out), flush=True)
# deltalake's background runtime threads can race interpreter teardown and abort the
# process ("terminate called without an active exception") after the work is done;
# leave without teardown once the answer is out. Any error above still exits non-zero.
import os
os._exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_deltalake_reads_the_raw_tables() {
    let py = tokio::task::spawn_blocking(|| python_venv(&["deltalake>=1.0", "pyarrow>=15"]))
        .await
        .unwrap();
    let sb = start(small(2, 800)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(Config::default(), dir.path())
        .unwrap()
        .with_client_config(client_config(&sb));
    exchange_and_store(&app.client().unwrap(), sandbox::DEFAULT_AUTH_CODE)
        .await
        .unwrap();
    let clock = sandbox::DEFAULT_CLOCK;
    backfill_ok(&app, clock - 32 * 86_400, clock + 1, None).await;

    let raw = dir.path().join("lake/raw");
    let tables = ["orders", "order_line_items", "products", "product_skus"];
    let out = std::process::Command::new(&py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&raw)
        .args(tables)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for t in tables {
        let b = app
            .query(&format!("select count(*) as n from raw.{t}"))
            .await
            .unwrap();
        let n = b[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        assert!(n > 0, "{t} has rows");
        assert_eq!(got[t]["rows"].as_i64().unwrap(), n, "{t}: python rows");
        assert_eq!(
            got[t]["partitions"],
            serde_json::json!(["_shop_id", "_month"]),
            "{t}"
        );
        assert_eq!(got[t]["shops"].as_array().unwrap().len(), 2, "{t}");
    }
    assert_eq!(got["orders"]["types"]["total_amount"], "decimal128(38, 6)");
    assert_eq!(
        got["orders"]["types"]["create_time"],
        "timestamp[us, tz=UTC]"
    );
    assert!(
        got["orders"]["types"]["id"]
            .as_str()
            .unwrap()
            .contains("string"),
        "{}",
        got["orders"]["types"]["id"]
    );
}
