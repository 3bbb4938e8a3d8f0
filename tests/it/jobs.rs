//! Jobs on the embedded SQLite queue: a backfill split into window jobs lands exactly what
//! one direct run lands (and re-queuing it is a no-op), the cron producer enqueues the
//! right jobs for a given clock and a model build once they landed, a job that keeps
//! failing goes dead after its attempts and `retry` requeues it, and `/metrics` reports it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::helpers::*;
use chrono::{DateTime, TimeZone, Utc};
use shoplake::app::App;
use shoplake::config::Config;
use shoplake::jobs::{self, Job, Producer, Queue, Runtime};
use shoplake::pipeline::{Pipelines, Shop};
use shoplake_sandbox::{DEFAULT_CLOCK, RunningSandbox};
use tokio::sync::watch;

async fn app_in(
    dir: &std::path::Path,
    sb: &RunningSandbox,
    project: &std::path::Path,
    f: impl FnOnce(&mut Config),
) -> Arc<App> {
    let app = app_with(sb, dir, Some(project), |c| {
        c.jobs.retry_backoff = std::time::Duration::from_millis(10);
        f(c);
    })
    .await;
    Arc::new(app)
}

struct Worker {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<jobs::Result<()>>,
    rt: Arc<Runtime>,
}

fn start_worker(app: &Arc<App>, q: &Queue, name: &str) -> Worker {
    let cfg = app.config.jobs_config().unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let rt = Runtime::new(app.clone(), q.clone(), cfg, name.into(), stop_rx).unwrap();
    let (quit_tx, mut quit_rx) = watch::channel(false);
    let handle = tokio::spawn(jobs::worker::work(rt.clone(), stop_tx, async move {
        let _ = quit_rx.wait_for(|v| *v).await;
    }));
    Worker {
        stop: quit_tx,
        handle,
        rt,
    }
}

impl Worker {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(60), self.handle)
            .await
            .expect("worker stops within a minute")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_backfill_lands_what_one_run_lands_and_resumes() {
    let sb = start(small(2, 2_000)).await;
    let project = project_with_order_window("4days");
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from = DEFAULT_CLOCK - 32 * 86_400;
    let to = DEFAULT_CLOCK + 1;

    // A: one direct run.
    let a = app_in(a_dir.path(), &sb, project.path(), |_| {}).await;
    backfill_ok(&a, from, to, None).await;

    // B: the same range as window jobs on the queue, run by a worker.
    let b = app_in(b_dir.path(), &sb, project.path(), |c| {
        c.jobs.concurrency = 3;
    })
    .await;
    let q = Queue::open("sqlite", b_dir.path()).await.unwrap();
    let plan = jobs::backfill::plan(&b, from, to, None, None, "").unwrap();
    let orders_jobs = plan
        .iter()
        .filter(|j| matches!(j, Job::ExtractWindow { stream, .. } if stream == "orders"))
        .count();
    assert_eq!(orders_jobs, 2 * 9, "2 shops × 9 four-day windows of orders");
    let keys: Vec<String> = plan.iter().map(Job::key).collect();
    assert_eq!(
        keys.iter().collect::<BTreeSet<_>>().len(),
        keys.len(),
        "one key per window"
    );
    assert_eq!(q.push(&plan, 3).await.unwrap(), plan.len() as u64);
    assert_eq!(q.push(&plan, 3).await.unwrap(), 0, "queued once");

    let w = start_worker(&b, &q, "w1");
    let http = jobs::service::metrics_endpoint("127.0.0.1:0", q.clone(), Some(w.rt.clone()))
        .await
        .expect("metrics endpoint");
    let (p, dead) = jobs::backfill::wait(&q, &keys).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(p.done, plan.len());
    assert!(p.rows > 2_000, "{p:?}");
    let body = reqwest::get(format!("http://{}/metrics", http.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(&format!("shoplake_jobs{{state=\"done\"}} {}", plan.len())),
        "{body}"
    );
    assert!(
        body.contains("shoplake_jobs_finished_total{kind=\"extract\",outcome=\"ok\"}"),
        "{body}"
    );
    let ok_requests: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("shoplake_api_requests_total{answer=\"ok\"} "))
        .expect("request counter")
        .parse()
        .unwrap();
    assert!(ok_requests >= plan.len() as u64, "{body}");
    assert!(body.contains("shoplake_rows_landed_total{stream=\"orders\"}"));
    assert!(body.contains("shoplake_last_sync_timestamp_seconds{shop="));
    w.stop().await;

    // Same tables, row for row.
    for t in raw_tables(&a) {
        let (ra, rb) = (table_rows(&a, &t).await, table_rows(&b, &t).await);
        assert!(
            !ra.is_empty() || !expect_rows(t.as_ref()),
            "raw.{t} is empty"
        );
        assert_eq!(ra.len(), rb.len(), "raw.{t} row count");
        assert!(ra == rb, "raw.{t} content differs");
    }

    // Resume: re-planning the same backfill queues nothing; --force queues it all again.
    let again = jobs::backfill::plan(&b, from, to, None, None, "").unwrap();
    assert_eq!(q.push(&again, 3).await.unwrap(), 0);
    let forced = jobs::backfill::plan(&b, from, to, None, None, "force-1").unwrap();
    assert_eq!(q.push(&forced, 3).await.unwrap(), plan.len() as u64);
    sb.stop().await;
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn pairs(jobs: &[Job]) -> BTreeSet<(String, String)> {
    jobs.iter()
        .map(|j| match j {
            Job::ExtractWindow { shop, stream, .. } => (shop.clone(), stream.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// (shop, stream) of every stream on schedule `s`.
fn by_schedule(shops: &[Shop], pipelines: &Pipelines, s: &str) -> BTreeSet<(String, String)> {
    shops
        .iter()
        .flat_map(|shop| {
            pipelines
                .streams
                .iter()
                .filter(move |st| st.schedule.as_deref() == Some(s))
                .map(move |st| (shop.id.clone(), st.name.clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_producer_follows_the_clock_and_builds_after_extracts_land() {
    let sb = start(small(2, 600)).await;
    let project = project_with_order_window("4days");
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path(), &sb, project.path(), |c| {
        c.jobs.initial_lookback = std::time::Duration::from_secs(40 * 86_400);
    })
    .await;
    let shops = app.shops(None).unwrap();
    let (pipelines, _) = app.pipelines().unwrap();
    let producer = Producer::new(&shops, &pipelines, &BTreeMap::new()).unwrap();
    due_jobs_follow_the_clock(&shops, &pipelines, &producer);

    // tick(): enqueue once per fire, then a build once those extracts landed. As after
    // an install: backfill first, then the schedule takes over from the cursors.
    let t = at("2026-11-01T00:15:00Z");
    backfill_ok(
        &app,
        DEFAULT_CLOCK - 31 * 86_400,
        DEFAULT_CLOCK - 2 * 86_400,
        None,
    )
    .await;
    let q = Queue::open("sqlite", dir.path()).await.unwrap();
    let r = producer.tick(&q, t, 3).await.unwrap();
    assert_eq!(
        r.extracts as usize,
        by_schedule(&shops, &pipelines, "15m").len()
    );
    assert_eq!(r.builds, 0);
    let r2 = producer.tick(&q, t, 3).await.unwrap();
    assert_eq!(r2.extracts, 0, "the same clock enqueues nothing new");

    let w = start_worker(&app, &q, "w-cron");
    let extract_keys: Vec<String> = producer
        .due(t - chrono::Duration::minutes(1), t)
        .iter()
        .map(Job::key)
        .collect();
    let (p, dead) = jobs::backfill::wait(&q, &extract_keys).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    assert!(p.rows > 0);
    let r3 = producer
        .tick(&q, t + chrono::Duration::minutes(1), 3)
        .await
        .unwrap();
    assert_eq!(r3.builds, 1, "a build once the tick's extracts landed");
    let after = format!("tick-{}", t.timestamp());
    let follow = vec![format!("build/{after}"), format!("test/{after}")];
    // The build enqueues the data tests; wait until both exist and finished.
    let finished = poll("the build and its data tests", 120, async || {
        let rows = q.by_keys(&follow).await.unwrap();
        (rows.len() == 2 && rows.iter().all(|r| r.is_finished())).then_some(rows)
    })
    .await;
    for r in &finished {
        assert_eq!(r.status, "Done", "{r:?} {:?}", r.last_error());
    }
    let gmv = app
        .query("select count(*) from marts.gmv_daily")
        .await
        .unwrap();
    assert!(scalar_i64(&gmv) > 0, "the scheduled build built the marts");
    cursors_move_to_the_fire_time_even_when_quiet(&app, &shops, &pipelines, &q, &producer, t).await;
    maintenance_runs_daily_as_a_job(&shops, &q).await;
    w.stop().await;
    sb.stop().await;
}

/// `[jobs] maintain = "1d"`: the tick that crosses UTC midnight queues one maintenance job
/// (the next tick none), and a worker runs it to the end.
async fn maintenance_runs_daily_as_a_job(shops: &[Shop], q: &Queue) {
    let mut maintainer = Producer::new(shops, &Pipelines::default(), &BTreeMap::new()).unwrap();
    maintainer.maintain = Some("1d".parse().unwrap());
    let r = maintainer
        .tick(q, at("2026-11-02T00:00:30Z"), 3)
        .await
        .unwrap();
    assert_eq!((r.extracts, r.maintains), (0, 1), "{r:?}");
    let again = maintainer
        .tick(q, at("2026-11-02T00:01:30Z"), 3)
        .await
        .unwrap();
    assert_eq!(again.maintains, 0, "one maintenance per fire time");
    let key = format!("maintain/{}", at("2026-11-02T00:00:00Z").timestamp());
    let done = poll("the maintenance job", 180, async || {
        let rows = q.by_keys(std::slice::from_ref(&key)).await.unwrap();
        (rows.len() == 1 && rows[0].is_finished()).then_some(rows)
    })
    .await;
    assert_eq!(done[0].status, "Done", "{:?}", done[0].last_error());
}

/// Which jobs are due at a given clock: the 15-minute and hourly streams, the daily ones
/// at each shop's local midnight, and schedule overrides by stream name.
fn due_jobs_follow_the_clock(shops: &[Shop], pipelines: &Pipelines, producer: &Producer) {
    let scheduled = |s: &str| by_schedule(shops, pipelines, s);
    // 00:15 UTC: only the 15-minute streams; 01:00 UTC: the hourly ones too.
    let t = at("2026-11-01T00:15:00Z");
    let due = producer.due(t - chrono::Duration::minutes(1), t);
    assert_eq!(pairs(&due), scheduled("15m"));
    assert!(!scheduled("15m").is_empty() && !scheduled("1h").is_empty());
    let t1 = at("2026-11-01T01:00:00Z");
    let due = producer.due(t1 - chrono::Duration::minutes(1), t1);
    let want: BTreeSet<_> = scheduled("15m").union(&scheduled("1h")).cloned().collect();
    assert_eq!(pairs(&due), want);
    // Every fire time is the window end: `to` = the clock's minute.
    assert!(
        due.iter().all(
            |j| matches!(j, Job::ExtractWindow { to, from: None, .. } if *to == t1.timestamp())
        )
    );
    // Daily streams fire at each shop's local midnight, one shop at a time.
    let shop = &shops[0];
    let local_midnight = shop
        .tz
        .with_ymd_and_hms(2026, 11, 3, 0, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc);
    let due = producer.due(
        local_midnight - chrono::Duration::minutes(1),
        local_midnight,
    );
    let daily: BTreeSet<_> = scheduled("1d")
        .into_iter()
        .filter(|(s, _)| s == &shop.id)
        .collect();
    assert!(!daily.is_empty());
    assert!(daily.is_subset(&pairs(&due)), "{due:?}");
    if shops[1].tz != shop.tz {
        assert!(
            pairs(&due)
                .iter()
                .all(|(s, st)| s == &shop.id
                    || !scheduled("1d").contains(&(s.clone(), st.clone())))
        );
    }
    // An override by stream name wins; an unknown name is an error naming the key.
    let o: BTreeMap<String, String> = [("orders".to_string(), "5m".to_string())].into();
    let p5 = Producer::new(shops, pipelines, &o).unwrap();
    let t5 = at("2026-11-01T00:05:00Z");
    assert!(
        pairs(&p5.due(t5 - chrono::Duration::minutes(1), t5))
            .iter()
            .any(|(_, s)| s == "orders")
    );
    let bad: BTreeMap<String, String> = [("nope".to_string(), "5m".to_string())].into();
    let e = Producer::new(shops, pipelines, &bad).unwrap_err();
    assert!(e.to_string().contains("jobs.schedule.nope"), "{e}");
}

/// The cursor moved to the fire time `t`, and keeps moving through a quiet window (no
/// records after the sandbox's data clock): the next run does not start further back.
async fn cursors_move_to_the_fire_time_even_when_quiet(
    app: &App,
    shops: &[Shop],
    pipelines: &Pipelines,
    q: &Queue,
    producer: &Producer,
    t: DateTime<Utc>,
) {
    let ex = app.extractor().unwrap();
    let orders = pipelines.get("orders").unwrap();
    for s in shops {
        assert_eq!(ex.cursor(&s.id, orders).await.unwrap(), Some(t.timestamp()));
    }
    let t2 = t + chrono::Duration::minutes(15);
    assert!(producer.tick(q, t2, 3).await.unwrap().extracts > 0);
    let quiet: Vec<String> = producer
        .due(t2 - chrono::Duration::minutes(1), t2)
        .iter()
        .map(Job::key)
        .collect();
    let (p, dead) = jobs::backfill::wait(q, &quiet).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(p.rows, 0, "nothing changed after the data clock");
    for s in shops {
        assert_eq!(
            ex.cursor(&s.id, orders).await.unwrap(),
            Some(t2.timestamp()),
            "an empty window still advances the cursor"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_job_goes_dead_after_its_attempts_and_retry_requeues_it() {
    let sb = start(small(1, 100)).await;
    let project = project_with_order_window("4days");
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path(), &sb, project.path(), |c| {
        c.jobs.max_attempts = 3;
    })
    .await;
    let q = Queue::open("sqlite", dir.path()).await.unwrap();
    let bad = Job::ExtractWindow {
        shop: "no-such-shop".into(),
        stream: "orders".into(),
        from: Some(DEFAULT_CLOCK - 86_400),
        to: DEFAULT_CLOCK,
        run: String::new(),
        origin: None,
    };
    q.push(std::slice::from_ref(&bad), 3).await.unwrap();
    let w = start_worker(&app, &q, "w-dead");
    let (p, dead) = jobs::backfill::wait(&q, &[bad.key()]).await.unwrap();
    assert_eq!((p.done, p.dead), (0, 1));
    assert_eq!(dead[0].attempts, 3, "{:?}", dead[0]);
    let err = dead[0].last_error().unwrap_or_default();
    assert!(
        err.contains("shop no-such-shop stream orders") && err.contains("not an authorized shop"),
        "{err}"
    );
    assert_eq!(q.counts().await.unwrap()["dead"], 1);
    assert_eq!(q.dead().await.unwrap().len(), 1);

    assert_eq!(q.retry(None).await.unwrap(), 1);
    assert_eq!(q.counts().await.unwrap()["dead"], 0, "requeued");
    let (_, dead) = jobs::backfill::wait(&q, &[bad.key()]).await.unwrap();
    assert_eq!(dead.len(), 1, "fails again: still the same cause");
    w.stop().await;
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_cap_holders_and_free_up_on_release_or_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open("sqlite", dir.path()).await.unwrap();
    let ttl = std::time::Duration::from_secs(60);
    assert_eq!(q.try_lease("shop/1", 2, "a", ttl).await.unwrap(), Some(0));
    assert_eq!(q.try_lease("shop/1", 2, "b", ttl).await.unwrap(), Some(1));
    assert_eq!(
        q.try_lease("shop/1", 2, "c", ttl).await.unwrap(),
        None,
        "two at most"
    );
    assert_eq!(
        q.try_lease("shop/2", 2, "c", ttl).await.unwrap(),
        Some(0),
        "per key"
    );
    q.release("shop/1", 0, "a").await.unwrap();
    assert_eq!(q.try_lease("shop/1", 2, "c", ttl).await.unwrap(), Some(0));
    // A holder that stops renewing loses its slot after the ttl.
    let short = std::time::Duration::from_millis(200);
    assert_eq!(
        q.try_lease("family/x", 1, "dead", short).await.unwrap(),
        Some(0)
    );
    assert_eq!(
        q.try_lease("family/x", 1, "live", short).await.unwrap(),
        None
    );
    // Kept: the ttl lapsing on the wall clock is what is under test.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        q.try_lease("family/x", 1, "live", short).await.unwrap(),
        Some(0)
    );
    // The shared rate limit spaces reservations by 1/rps after the burst.
    let waits: Vec<f64> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                q.reserve_rate("rate/f", 10.0, 1.0)
                    .await
                    .unwrap()
                    .as_secs_f64(),
            );
        }
        v
    };
    assert!(waits[0] == 0.0 && waits[1] == 0.0, "{waits:?}");
    assert!(
        (0.05..=0.11).contains(&waits[2]) && (0.15..=0.21).contains(&waits[3]),
        "{waits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_full_history_backfill_lists_each_window_once() {
    let sb = start(small(1, 600)).await;
    let project = tempfile::tempdir().unwrap();
    copy_project(project.path());
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from, to) = (DEFAULT_CLOCK - 60 * 86_400, DEFAULT_CLOCK + 1);
    const SEARCH: &str = "/product/202502/products/search";
    let searches = || sb.sandbox.stats().get(SEARCH).map_or(0, |s| s.requests);

    // The direct run: products start in 2016 (full_history), each window listed once.
    let a = app_in(a_dir.path(), &sb, project.path(), |_| {}).await;
    backfill_ok(&a, from, to, Some("products")).await;

    // The same backfill as queued window jobs lists each window once (a page or two), not
    // again from 2016 in every window (n windows would make ~n²/2 calls).
    let b = app_in(b_dir.path(), &sb, project.path(), |_| {}).await;
    let q = Queue::open("sqlite", b_dir.path()).await.unwrap();
    let plan: Vec<Job> = jobs::backfill::plan(&b, from, to, None, Some("products"), "")
        .unwrap()
        .into_iter()
        .filter(|j| matches!(j, Job::ExtractWindow { stream, .. } if stream == "products"))
        .collect();
    assert!(plan.len() > 10, "windows since 2016: {}", plan.len());
    let keys: Vec<String> = plan.iter().map(Job::key).collect();
    q.push(&plan, 3).await.unwrap();
    let before = searches();
    let w = start_worker(&b, &q, "w-products");
    let (p, dead) = jobs::backfill::wait(&q, &keys).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(p.done, plan.len());
    w.stop().await;
    let calls = (searches() - before) as usize;
    assert!(
        calls >= plan.len() && calls < 2 * plan.len(),
        "{calls} product searches for {} windows",
        plan.len()
    );
    assert!(table_rows(&a, "products").await == table_rows(&b, "products").await);
    sb.stop().await;
}
