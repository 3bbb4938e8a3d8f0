//! Crashes: `shoplake backfill` killed with SIGKILL at several points (while fetching,
//! between and during Delta commits), then run again to completion, and `shoplake build`
//! killed mid-build and run again, end with raw tables and marts equal — row for row — to
//! one clean run.

mod helpers;

use std::process::Stdio;
use std::time::{Duration, Instant};

use helpers::*;
use shoplake::sandbox::{DEFAULT_AUTH_CODE, DEFAULT_CLOCK};

/// Runs `args`, SIGKILLs it after `after` if still running; true if it was killed.
async fn run_and_kill(dir: &std::path::Path, args: &[&str], after: Duration) -> bool {
    let mut child = shoplake_in(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while t.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

fn run_ok(dir: &std::path::Path, args: &[&str]) {
    let out = shoplake_in(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_backfills_and_builds_end_equal_to_a_clean_run() {
    let mut cfg = small(2, 2_000);
    cfg.rps = 25.0;
    let sb = start(cfg).await;
    let project = project_with_order_window("3days");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shoplake.toml"),
        format!(
            "[api]\nbase_url = \"{}\"\nmax_rps = 20\n[project]\ndir = \"{}\"\n[jobs]\nheartbeat = \"1s\"\nretry_backoff = \"100ms\"\nhttp_addr = \"\"\n",
            sb.base_url(),
            project.path().display()
        ),
    )
    .unwrap();
    run_ok(
        dir.path(),
        &["auth", "exchange", "--code", DEFAULT_AUTH_CODE],
    );
    let from = chrono::DateTime::from_timestamp(DEFAULT_CLOCK - 31 * 86_400, 0).unwrap();
    let to = chrono::DateTime::from_timestamp(DEFAULT_CLOCK, 0).unwrap();
    let (from_s, to_s) = (from.to_rfc3339(), to.to_rfc3339());
    let backfill = ["backfill", "--from", &from_s, "--to", &to_s];

    // Kill points from the first requests to late commits.
    let mut killed = 0;
    for ms in [300, 700, 1_200, 1_800, 2_600, 3_500] {
        if run_and_kill(dir.path(), &backfill, Duration::from_millis(ms)).await {
            killed += 1;
        }
    }
    assert!(
        killed >= 3,
        "only {killed} runs were still going when killed"
    );
    let t = Instant::now();
    run_ok(dir.path(), &backfill);
    eprintln!(
        "{killed} backfills killed; the last run took {:?}",
        t.elapsed()
    );
    let mut builds_killed = 0;
    for ms in [80, 160, 240, 320] {
        if run_and_kill(dir.path(), &["build"], Duration::from_millis(ms)).await {
            builds_killed += 1;
        }
    }
    assert!(builds_killed >= 1, "every build finished before its kill");
    eprintln!("{builds_killed} builds killed");
    run_ok(dir.path(), &["build"]);
    run_ok(dir.path(), &["test"]);

    // The clean run.
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = reference_backfill(
        ref_dir.path(),
        &sb,
        project.path(),
        from.timestamp(),
        to.timestamp(),
    )
    .await;
    reference.build(None, false).await.unwrap();

    let crashed = app_from_dir(dir.path());
    let mut tables: Vec<String> = raw_tables(&reference)
        .into_iter()
        .map(|t| format!("raw.{t}"))
        .collect();
    for m in [
        "gmv_daily",
        "order_status_daily",
        "brand_daily",
        "sku_daily",
        "returns_refunds",
        "fulfillment_sla",
    ] {
        tables.push(format!("marts.{m}"));
    }
    for t in &tables {
        let (a, b) = (
            qualified_rows(&reference, t).await,
            qualified_rows(&crashed, t).await,
        );
        assert!(!a.is_empty(), "{t} is empty");
        assert_eq!(a.len(), b.len(), "{t} row count");
        if a != b && t.starts_with("marts.") {
            let q = format!("select * from {t} order by 1, 2, 3");
            let (x, y) = (
                reference.query(&q).await.unwrap(),
                crashed.query(&q).await.unwrap(),
            );
            let (x, y) = (
                arrow::util::pretty::pretty_format_batches(&x)
                    .unwrap()
                    .to_string(),
                arrow::util::pretty::pretty_format_batches(&y)
                    .unwrap()
                    .to_string(),
            );
            for (l1, l2) in x.lines().zip(y.lines()) {
                if l1 != l2 {
                    eprintln!("ref:     {l1}\ncrashed: {l2}");
                }
            }
        }
        assert!(a == b, "{t} content differs");
    }
    sb.stop().await;
}
