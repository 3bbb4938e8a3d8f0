//! Faults: a backfill against a sandbox where 20% of requests fail — HTTP 500, timeouts,
//! 429s, bodies cut off halfway, pages that repeat the previous page's tail, access
//! tokens revoked mid-run — lands tables equal, row for row, to a fault-free run.

use std::time::Duration;

use crate::helpers::*;
use shoplake::app::App;
use shoplake::config::Config;
use shoplake_sandbox::{DEFAULT_AUTH_CODE, DEFAULT_CLOCK, RunningSandbox};

async fn backfilled(dir: &std::path::Path, sb: &RunningSandbox) -> App {
    let mut cc = client_config(sb);
    cc.retry.max_attempts = 12;
    cc.timeout = Duration::from_millis(500);
    let app = App::new(Config::default(), dir)
        .unwrap()
        .with_client_config(cc);
    shoplake::api::auth::exchange_and_store(&app.client().unwrap(), DEFAULT_AUTH_CODE)
        .await
        .unwrap();
    backfill_ok(&app, DEFAULT_CLOCK - 32 * 86_400, DEFAULT_CLOCK + 1, None).await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backfill_through_twenty_percent_faults_equals_a_clean_one() {
    let clean_sb = start(small(2, 2_000)).await;
    let mut cfg = small(2, 2_000);
    cfg.faults = 0.2;
    cfg.fault_delay = Duration::from_millis(800); // past the client's 500 ms timeout
    let faulty_sb = start(cfg).await;

    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clean = backfilled(a_dir.path(), &clean_sb).await;
    let faulty = backfilled(b_dir.path(), &faulty_sb).await;

    let stats = faulty_sb.sandbox.stats();
    let faults: u64 = stats.values().map(|s| s.faults).sum();
    let requests: u64 = stats.values().map(|s| s.requests).sum();
    assert!(
        faults * 100 >= requests * 12,
        "{faults} faults in {requests} requests"
    );
    // Calls with a revoked token answer 105002 until the client refreshes; none in a
    // clean run.
    let rejected: u64 = stats.values().map(|s| s.errors).sum();
    assert!(rejected > 0, "no revoked-token answers seen");
    assert_eq!(
        clean_sb
            .sandbox
            .stats()
            .values()
            .map(|s| s.errors)
            .sum::<u64>(),
        0
    );
    for t in raw_tables(&clean) {
        let (ra, rb) = (table_rows(&clean, &t).await, table_rows(&faulty, &t).await);
        assert!(
            !ra.is_empty() || !expect_rows(t.as_ref()),
            "raw.{t} is empty"
        );
        assert_eq!(ra.len(), rb.len(), "raw.{t} row count");
        assert!(ra == rb, "raw.{t} content differs");
    }
    clean_sb.stop().await;
    faulty_sb.stop().await;
}
