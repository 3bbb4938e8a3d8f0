//! Crashes: `shoplake backfill` killed with SIGKILL at several points (while fetching,
//! between and during Delta commits), then run again to completion, and `shoplake build`
//! killed mid-build and run again, end with raw tables and marts equal — row for row — to
//! one clean run. Kills inside a commit are aimed: the moment a new data file appears,
//! before the log entry that adds it (proved afterwards by a data file no commit adds).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::*;
use shoplake_sandbox::{DEFAULT_CLOCK, SandboxConfig};

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
        // Kept: the kill after `after` of wall-clock time is the kill point under test.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// Data files (`*.parquet`, any depth) of every table under `lake`.
fn data_files(lake: &std::path::Path) -> std::collections::BTreeSet<String> {
    fn walk(p: &std::path::Path, out: &mut std::collections::BTreeSet<String>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "_delta_log") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|x| x == "parquet") {
                out.insert(path.display().to_string());
            }
        }
    }
    let mut out = Default::default();
    walk(lake, &mut out);
    out
}

/// Data files no commit in their table's `_delta_log` adds: written by a commit that
/// never happened.
fn uncommitted(lake: &std::path::Path) -> usize {
    let mut n = 0;
    for table in std::fs::read_dir(lake).into_iter().flatten().flatten() {
        let log = table.path().join("_delta_log");
        let mut added = std::collections::HashSet::new();
        for f in std::fs::read_dir(&log).into_iter().flatten().flatten() {
            if f.path().extension().is_some_and(|x| x == "json") {
                for line in std::fs::read_to_string(f.path())
                    .unwrap_or_default()
                    .lines()
                {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                    if let Some(p) = v["add"]["path"].as_str() {
                        added.insert(p.to_string());
                    }
                }
            }
        }
        // File names are unique (part-…-<uuid>); compare by name, whatever the partition
        // path and its encoding in the log.
        let name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
        let added: std::collections::HashSet<String> = added.iter().map(|a| name(a)).collect();
        n += data_files(&table.path())
            .iter()
            .filter(|f| !added.contains(&name(f)))
            .count();
    }
    n
}

/// Runs `args` and SIGKILLs it the moment a new data file appears under `lake` — after
/// the first file of a commit is written, before the commit that would add it. True if it
/// was killed.
async fn kill_at_first_new_data_file(
    dir: &std::path::Path,
    lake: &std::path::Path,
    args: &[&str],
) -> bool {
    let before = data_files(lake);
    let mut child = shoplake_in(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if data_files(lake).len() > before.len() {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        // Kept: a 1 ms aim (no deadline: the run ends by itself) to land inside a commit.
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn run_ok(dir: &std::path::Path, args: &[&str]) {
    let out = shoplake_in(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills `args` at its first new data file under `lake` until two kills landed inside a
/// commit (or eight tries); returns (kills inside a commit, tries). A kill that left a
/// data file no commit adds landed between writing the data and committing it.
async fn aimed_kills(dir: &std::path::Path, lake: &std::path::Path, args: &[&str]) -> (u32, u32) {
    let (mut mid_commit, mut tries) = (0, 0);
    while mid_commit < 2 && tries < 8 {
        tries += 1;
        let orphans = uncommitted(lake);
        if kill_at_first_new_data_file(dir, lake, args).await && uncommitted(lake) > orphans {
            mid_commit += 1;
        }
    }
    (mid_commit, tries)
}

/// Runs `args` once per kill point in `after_ms`; returns how many runs were still going
/// when killed.
async fn timed_kills(dir: &std::path::Path, args: &[&str], after_ms: &[u64]) -> u32 {
    let mut killed = 0;
    for ms in after_ms {
        if run_and_kill(dir, args, Duration::from_millis(*ms)).await {
            killed += 1;
        }
    }
    killed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_backfills_and_builds_end_equal_to_a_clean_run() {
    let sb = start(SandboxConfig {
        rps: 25.0,
        ..small(2, 2_000)
    })
    .await;
    let project = project_with_order_window("3days");
    let dir = dir_with_config(&format!(
        "[api]\nbase_url = \"{}\"\nmax_rps = 20\n[project]\ndir = \"{}\"\n[jobs]\nheartbeat = \"1s\"\nretry_backoff = \"100ms\"\nhttp_addr = \"\"\n",
        sb.base_url(),
        project.path().display()
    ));
    authorize_cli(dir.path());
    let from = chrono::DateTime::from_timestamp(DEFAULT_CLOCK - 31 * 86_400, 0).unwrap();
    let to = chrono::DateTime::from_timestamp(DEFAULT_CLOCK, 0).unwrap();
    let (from_s, to_s) = (from.to_rfc3339(), to.to_rfc3339());
    let backfill = ["backfill", "--from", &from_s, "--to", &to_s];

    // Kills aimed inside a Delta commit: at the first new data file.
    let lake = dir.path().join("lake").join("raw");
    let (mid_commit, tries) = aimed_kills(dir.path(), &lake, &backfill).await;
    eprintln!("{mid_commit} of {tries} aimed kills landed inside a commit");
    assert!(
        mid_commit >= 1,
        "no kill landed between a commit's data files and its log entry"
    );
    // Kill points from the first requests to late commits.
    let killed = timed_kills(
        dir.path(),
        &backfill,
        &[300, 700, 1_200, 1_800, 2_600, 3_500],
    )
    .await;
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
    let builds_killed = timed_kills(dir.path(), &["build"], &[80, 160, 240, 320]).await;
    assert!(builds_killed >= 1, "every build finished before its kill");
    eprintln!("{builds_killed} builds killed");
    let marts = dir.path().join("lake").join("marts");
    let (build_mid, tries) = aimed_kills(dir.path(), &marts, &["build"]).await;
    eprintln!("{build_mid} of {tries} aimed build kills landed inside a mart's commit");
    assert!(build_mid >= 1, "no build kill landed inside a commit");
    run_ok(dir.path(), &["build"]);
    run_ok(dir.path(), &["test"]);

    // The clean run.
    let (reference, _ref_dir) =
        reference_run(&sb, project.path(), from.timestamp(), to.timestamp()).await;
    reference.build(None, &Default::default()).await.unwrap();
    assert_equal_to_the_clean_run(&reference, &app_from_dir(dir.path())).await;
    sb.stop().await;
}

/// Every raw table and the incremental marts of `crashed` equal the clean run's, row for
/// row (a differing mart's lines are printed).
async fn assert_equal_to_the_clean_run(
    reference: &shoplake::app::App,
    crashed: &shoplake::app::App,
) {
    let mut tables: Vec<String> = raw_tables(reference)
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
            qualified_rows(reference, t).await,
            qualified_rows(crashed, t).await,
        );
        assert!(!a.is_empty() || !expect_rows(t.as_ref()), "{t} is empty");
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
}
