//! Every stream of every pipeline file against the sandbox's ground truth: a backfill of
//! the seed's whole history (2 shops, 2,000 orders, 30 days) lands every raw table the
//! pipelines declare, and each holds, per shop, exactly the rows the sandbox's truth says
//! that endpoint serves for that range. A new
//! stream without a truth entry fails here, so coverage cannot grow untested.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_raw_table_holds_the_sandbox_truth() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(small(2, 2_000)).await;
    let truth = truth(&sb).await;
    let (from, clock) = (
        truth["history_start"].as_i64().unwrap(),
        truth["clock"].as_i64().unwrap(),
    );
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let app = reference_backfill(dir.path(), &sb, project, from, clock + 1).await;
    sb.stop().await;

    let tables = raw_tables(&app);
    assert!(tables.len() >= 32, "{} tables: {tables:?}", tables.len());
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let checked: Vec<String> =
        assert_tables_match_truth(&app, &truth, &names, EMPTY_FOR_LOCAL_SHOPS)
            .await
            .into_iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
    eprintln!("{} tables checked: {}", checked.len(), checked.join(", "));
}
