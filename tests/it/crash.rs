//! Crashes: `shoplake backfill` killed with SIGKILL at several points (while fetching,
//! between and during Delta commits), then run again to completion, and `shoplake build`
//! killed mid-build and run again, end with raw tables and marts equal — row for row — to
//! one clean run. Kills inside a commit are aimed: the moment a new data file appears,
//! before the log entry that adds it (proved afterwards by a data file no commit adds).

use std::collections::{BTreeSet, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use deltalake::logstore::object_store::path::Path as StorePath;
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt};
use futures::TryStreamExt;

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

/// The lake of a CLI data dir, read through the same object store shoplake writes with
/// (local disk or S3), and where to watch for a commit's first data file.
struct LakeFiles {
    store: std::sync::Arc<dyn ObjectStore>,
    root: StorePath,
    /// moto's request log: on S3, a data file's PUT is seen here the moment it lands
    /// (listing a bucket is too slow to aim between a commit's data and its log entry).
    put_log: Option<std::path::PathBuf>,
}

impl LakeFiles {
    fn of(dir: &std::path::Path, put_log: Option<std::path::PathBuf>) -> LakeFiles {
        let (store, root) = app_from_dir(dir).lake.store().unwrap();
        LakeFiles {
            store,
            root,
            put_log,
        }
    }

    /// Every object under `schema/`, by path.
    async fn objects(&self, schema: &str) -> Vec<String> {
        let prefix = self.root.clone().join(schema);
        self.store
            .list(Some(&prefix))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap_or_default()
    }

    /// Data files (`*.parquet` outside `_delta_log`) of every table of `schema`.
    async fn data_files(&self, schema: &str) -> BTreeSet<String> {
        self.objects(schema)
            .await
            .into_iter()
            .filter(|p| p.ends_with(".parquet") && !p.contains("/_delta_log/"))
            .collect()
    }

    /// Data files of `schema` no commit in their table's `_delta_log` adds: written by a
    /// commit that never happened.
    async fn uncommitted(&self, schema: &str) -> usize {
        let objects = self.objects(schema).await;
        // File names are unique (part-…-<uuid>); compare by name, whatever the partition
        // path and its encoding in the log.
        let name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
        let mut added = HashSet::new();
        for log in objects
            .iter()
            .filter(|p| p.contains("/_delta_log/") && p.ends_with(".json"))
        {
            let Ok(got) = self.store.get(&StorePath::from(log.as_str())).await else {
                continue;
            };
            let bytes = got.bytes().await.unwrap_or_default();
            for line in String::from_utf8_lossy(&bytes).lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                if let Some(p) = v["add"]["path"].as_str() {
                    added.insert(name(p));
                }
            }
        }
        objects
            .iter()
            .filter(|p| p.ends_with(".parquet") && !p.contains("/_delta_log/"))
            .filter(|p| !added.contains(&name(p)))
            .count()
    }

    /// Length of moto's request log now.
    fn log_len(&self) -> u64 {
        self.put_log
            .as_ref()
            .and_then(|l| std::fs::metadata(l).ok())
            .map_or(0, |m| m.len())
    }

    /// Whether moto logged a PUT of a data file of `schema` past byte `from` of its log.
    fn put_logged_since(&self, schema: &str, from: u64) -> bool {
        use std::io::{Read, Seek};
        let Some(log) = &self.put_log else {
            return false;
        };
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(log) {
            let _ = f.seek(std::io::SeekFrom::Start(from));
            let _ = f.read_to_string(&mut text);
        }
        let needle = format!("/{schema}/");
        text.lines().any(|l| {
            l.contains("\"PUT ")
                && l.contains(&needle)
                && l.contains(".parquet")
                && !l.contains("/_delta_log/")
        })
    }

    /// Runs `args` and SIGKILLs it the moment a new data file of `schema` appears — after
    /// the first file of a commit is written, before the commit that would add it. True
    /// if it was killed.
    async fn kill_at_first_new_data_file(
        &self,
        dir: &std::path::Path,
        schema: &str,
        args: &[&str],
    ) -> bool {
        let (files, log_at) = (self.data_files(schema).await.len(), self.log_len());
        let mut child = shoplake_in(dir, args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            let new_file = if self.put_log.is_some() {
                self.put_logged_since(schema, log_at)
            } else {
                self.data_files(schema).await.len() > files
            };
            if new_file {
                child.kill().unwrap();
                child.wait().unwrap();
                return true;
            }
            // Kept: a 1 ms aim (no deadline: the run ends by itself) to land inside a commit.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Kills `args` at its first new data file of `schema` until two kills landed inside
    /// a commit (or eight tries); returns (kills inside a commit, tries). A kill that left
    /// a data file no commit adds landed between writing the data and committing it.
    async fn aimed_kills(&self, dir: &std::path::Path, schema: &str, args: &[&str]) -> (u32, u32) {
        let (mut mid_commit, mut tries) = (0, 0);
        while mid_commit < 2 && tries < 8 {
            tries += 1;
            let orphans = self.uncommitted(schema).await;
            if self.kill_at_first_new_data_file(dir, schema, args).await
                && self.uncommitted(schema).await > orphans
            {
                mid_commit += 1;
            }
        }
        (mid_commit, tries)
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
    let scope = Scope {
        orders: 2_000,
        pipeline: None,
        models: None,
        marts: &[
            "gmv_daily",
            "order_status_daily",
            "brand_daily",
            "sku_daily",
            "returns_refunds",
            "fulfillment_sla",
        ],
    };
    kill_and_compare(scope, None).await;
}

/// The same with the lake on S3 (moto): a kill between a commit's data files and its log
/// entry leaves orphan objects, never a half commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_runs_on_s3_end_equal_to_a_clean_run() {
    let s3 = crate::helpers::s3::S3Server::start();
    // The orders stream and the models over it (every stream on moto would take minutes;
    // the commit path is the same for all).
    let scope = Scope {
        orders: 600,
        pipeline: Some("orders"),
        models: Some("+order_status_daily"),
        marts: &["order_status_daily"],
    };
    kill_and_compare(scope, Some(&s3)).await;
}

/// Backfills and builds killed (aimed inside commits, and at fixed times), run again to
/// completion, compared with a clean run; the lake on local disk or on `s3`.
async fn kill_and_compare(scope: Scope, s3: Option<&crate::helpers::s3::S3Server>) {
    let sb = start(SandboxConfig {
        rps: 25.0,
        ..small(2, scope.orders)
    })
    .await;
    let project = project_with_order_window("3days");
    let warehouse = s3.map_or_else(String::new, |s3| s3.toml(&s3.bucket("crash")));
    let dir = dir_with_config(&format!(
        "[api]\nbase_url = \"{}\"\nmax_rps = 20\n[project]\ndir = \"{}\"\n[jobs]\nheartbeat = \"1s\"\nretry_backoff = \"100ms\"\nhttp_addr = \"\"\n{warehouse}",
        sb.base_url(),
        project.path().display()
    ));
    let lake = LakeFiles::of(dir.path(), s3.map(|s3| s3.log_path()));
    authorize_cli(dir.path());
    let from = chrono::DateTime::from_timestamp(DEFAULT_CLOCK - 31 * 86_400, 0).unwrap();
    let to = chrono::DateTime::from_timestamp(DEFAULT_CLOCK, 0).unwrap();
    let (from_s, to_s) = (from.to_rfc3339(), to.to_rfc3339());
    let mut backfill = vec!["backfill", "--from", &from_s, "--to", &to_s];
    let mut build = vec!["build"];
    let mut test = vec!["test"];
    if let Some(p) = scope.pipeline {
        backfill.extend(["--pipeline", p]);
    }
    if let Some(m) = scope.models {
        build.extend(["--select", m]);
        test.extend(["--select", m]);
    }

    // Kills aimed inside a Delta commit: at the first new data file.
    let (mid_commit, tries) = lake.aimed_kills(dir.path(), "raw", &backfill).await;
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
    let builds_killed = timed_kills(dir.path(), &build, &[80, 160, 240, 320]).await;
    assert!(builds_killed >= 1, "every build finished before its kill");
    eprintln!("{builds_killed} builds killed");
    // On S3 every aimed try rebuilds in full, so each has a mart commit to be killed in
    // (an up-to-date build writes nothing, and moto's log shows a PUT only once it landed,
    // a few milliseconds before the commit: not every try lands).
    let mut aimed_build = build.clone();
    if s3.is_some() {
        aimed_build.push("--full-refresh");
    }
    let (build_mid, tries) = lake.aimed_kills(dir.path(), "marts", &aimed_build).await;
    eprintln!("{build_mid} of {tries} aimed build kills landed inside a mart's commit");
    assert!(build_mid >= 1, "no build kill landed inside a commit");
    run_ok(dir.path(), &build);
    run_ok(dir.path(), &test);

    // The clean run.
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = app_for(&sb, ref_dir.path(), Some(project.path())).await;
    backfill_ok(&reference, from.timestamp(), to.timestamp(), scope.pipeline).await;
    reference
        .build(scope.models, &Default::default())
        .await
        .unwrap();
    assert_equal_to_the_clean_run(&reference, &app_from_dir(dir.path()), scope.marts).await;
    sb.stop().await;
}

/// Every raw table and the incremental marts of `crashed` equal the clean run's, row for
/// row (a differing mart's lines are printed).
async fn assert_equal_to_the_clean_run(
    reference: &shoplake::app::App,
    crashed: &shoplake::app::App,
    marts: &[&str],
) {
    let mut tables: Vec<String> = reference
        .lake
        .list_tables("raw")
        .await
        .unwrap()
        .into_iter()
        .map(|t| format!("raw.{t}"))
        .collect();
    tables.extend(marts.iter().map(|m| format!("marts.{m}")));
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
