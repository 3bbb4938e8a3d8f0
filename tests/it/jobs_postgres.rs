//! Scale-out on a real Postgres queue (a throwaway server started with initdb/pg_ctl):
//! `shoplake backfill --enqueue-only` queues the windows, `shoplake worker` processes share
//! them — one stopped with SIGTERM mid-run, one killed with SIGKILL mid-job — and the lake
//! ends identical to one direct run: every job done, none run twice except the interrupted
//! ones, no duplicate rows.

use std::time::Duration;

use crate::helpers::*;
use shoplake::jobs::Queue;
use shoplake_sandbox::{DEFAULT_CLOCK, SandboxConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_on_one_postgres_queue_run_every_window_once_and_survive_kills() {
    let pg = pg::Postgres::start();
    // Rate-limited like the real API, so jobs take long enough to be interrupted.
    let sb = start(SandboxConfig {
        rps: 8.0,
        ..small(2, 2_000)
    })
    .await;
    let project = project_with_order_window("3days");
    let dir = dir_with_config(&format!(
        r#"
[api]
base_url = "{}"
max_rps = 6
backoff_base = "50ms"
backoff_max = "1s"

[project]
dir = "{}"

[jobs]
backend = "{}"
concurrency = 2
heartbeat = "1s"
retry_backoff = "200ms"
"#,
        sb.base_url(),
        project.path().display(),
        pg.url
    ));
    authorize_cli(dir.path());
    let from = chrono::DateTime::from_timestamp(DEFAULT_CLOCK - 31 * 86_400, 0).unwrap();
    let to = chrono::DateTime::from_timestamp(DEFAULT_CLOCK, 0).unwrap();
    let (from_s, to_s) = (from.to_rfc3339(), to.to_rfc3339());
    let out = run_ok(shoplake_in(
        dir.path(),
        &[
            "backfill",
            "--from",
            &from_s,
            "--to",
            &to_s,
            "--enqueue-only",
        ],
    ));
    assert!(out.contains("queued"), "{out}");
    let q = Queue::open(&pg.url, dir.path()).await.unwrap();
    the_shared_tables_speak_postgres(&q).await;
    let total = extract_jobs(&q).await.len();
    assert!(total > 20, "{total} window jobs");

    run_workers_through_a_stop_and_a_kill(dir.path(), &q).await;
    every_job_ran_once_but_the_interrupted(&q, total).await;

    // The lake equals one direct run of the same range: nothing lost, nothing doubled.
    let lake = app_from_dir(dir.path());
    let (reference, _ref_dir) =
        reference_run(&sb, project.path(), from.timestamp(), to.timestamp()).await;
    assert_same_raw_counts(&lake, &reference).await;
    let dup = lake
        .query("select count(*) from (select _shop_id, id from raw.orders group by 1, 2 having count(*) > 1)")
        .await
        .unwrap();
    assert_eq!(scalar_i64(&dup), 0, "no duplicate orders");
    sb.stop().await;
}

/// The shared tables speak Postgres too (the same statements as on SQLite).
async fn the_shared_tables_speak_postgres(q: &Queue) {
    q.set("probe", "v1").await.unwrap();
    q.set("probe", "v2").await.unwrap();
    assert_eq!(q.get("probe").await.unwrap().as_deref(), Some("v2"));
    let ttl = Duration::from_secs(60);
    assert_eq!(q.try_lease("probe", 1, "x", ttl).await.unwrap(), Some(0));
    assert_eq!(q.try_lease("probe", 1, "y", ttl).await.unwrap(), None);
    q.renew_lease("probe", 0, "x", ttl).await.unwrap();
    q.release("probe", 0, "x").await.unwrap();
    assert_eq!(q.try_lease("probe", 1, "y", ttl).await.unwrap(), Some(0));
    assert_eq!(
        q.reserve_rate("rate/probe", 10.0, 1.0).await.unwrap(),
        Duration::ZERO
    );
}

/// Worker A is stopped with SIGTERM mid-run; workers B and C share the rest, B is killed
/// mid-job and D takes its place, until every window is done.
async fn run_workers_through_a_stop_and_a_kill(dir: &std::path::Path, q: &Queue) {
    // Worker A: SIGTERM while it runs a job; it stops cleanly and its job is not lost.
    let mut a = worker_process(dir, "wa");
    until(q, "wa running a job", 60, |js| {
        running_by(js, "wa").count() > 0
    })
    .await;
    unsafe { libc::kill(a.id() as i32, libc::SIGTERM) };
    let status = exited(&mut a, "worker A to stop", 30).await;
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    assert_eq!(q.counts().await.unwrap()["dead"], 0);

    // Workers B and C share the rest; B is killed mid-job, D takes its place.
    let mut b = worker_process(dir, "wb");
    let mut c = worker_process(dir, "wc");
    until(q, "wb running a job after some progress", 120, |js| {
        js.iter().filter(|j| j.status == "Done").count() >= 4 && running_by(js, "wb").count() > 0
    })
    .await;
    b.kill().unwrap();
    b.wait().unwrap();
    let mut d = worker_process(dir, "wd");
    until(q, "every window done", 300, |js| {
        js.iter().all(|j| j.is_finished())
    })
    .await;
    for w in [&mut c, &mut d] {
        unsafe { libc::kill(w.id() as i32, libc::SIGTERM) };
        w.wait().unwrap();
    }
}

/// All `total` jobs are done, by more than one worker, and only the interrupted ones ran
/// more than once.
async fn every_job_ran_once_but_the_interrupted(q: &Queue, total: usize) {
    let js = extract_jobs(q).await;
    assert_eq!(js.len(), total);
    for j in &js {
        assert_eq!(j.status, "Done", "{j:?} {:?}", j.last_error());
    }
    let by: std::collections::BTreeSet<_> = js.iter().filter_map(|j| j.worker.clone()).collect();
    assert!(by.len() >= 2, "the work was split: {by:?}");
    // Only interrupted jobs ran more than once: A's and B's, each holding at most its 2
    // slots plus the one job its poller fetched ahead (batch_size 1) when it was stopped.
    // A race between workers would show as more.
    let rerun = js.iter().filter(|j| j.attempts > 1).count();
    let mut per_worker = std::collections::BTreeMap::<String, usize>::new();
    for j in &js {
        *per_worker
            .entry(j.worker.clone().unwrap_or_default())
            .or_default() += 1;
    }
    eprintln!("{total} jobs; done by {per_worker:?}; {rerun} ran more than once");
    let reruns: Vec<_> = js
        .iter()
        .filter(|j| j.attempts > 1)
        .map(|j| (j.key.clone(), j.attempts, j.last_error()))
        .collect();
    assert!(
        rerun <= 2 * (2 + 1),
        "{rerun} jobs ran more than once: {reruns:#?}"
    );
}
