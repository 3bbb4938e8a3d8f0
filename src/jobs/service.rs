//! The long-running processes: `shoplake worker` (runs jobs), `shoplake scheduler` (the
//! apalis-cron producer) and `shoplake run` (both, on one machine), each with `/metrics`.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use chrono::{TimeZone, Utc};
use futures::FutureExt;
use tokio::sync::watch;
use tracing::{info, warn};

use super::schedule::Producer;
use super::{JobError, Queue, Result, Runtime, metrics, worker};
use crate::app::App;
use crate::config::JobsConfig;
use crate::serve::http::{self, MetricsFn, RunningHttp};

/// Serves `/metrics` for this process; a busy port is a warning, not a failure (two
/// workers on one machine: give each `--http-addr`).
pub async fn metrics_endpoint(
    addr: &str,
    queue: Queue,
    rt: Option<Arc<Runtime>>,
) -> Option<RunningHttp> {
    if addr.is_empty() {
        return None;
    }
    let hooks = rt.as_ref().and_then(|rt| webhooks(rt, queue.clone()));
    let f: MetricsFn = Arc::new(move || {
        let (queue, rt) = (queue.clone(), rt.clone());
        async move { metrics::render(&queue, rt.as_deref()).await }.boxed()
    });
    match http::spawn(addr, f, hooks).await {
        Ok(h) => {
            info!(addr = %h.addr, "metrics on http://{}/metrics", h.addr);
            Some(h)
        }
        Err(e) => {
            warn!(addr, error = %e, "metrics endpoint not started");
            None
        }
    }
}

/// The stream a webhook event type is news for: its shop's extract runs now instead of at
/// the next scheduled time.
pub fn stream_for_event(kind: i64) -> Option<&'static str> {
    match kind {
        1 | 3 => Some("orders"),
        2 | 12 => Some("returns"),
        4 => Some("packages"),
        5 | 37 => Some("products"),
        _ => None,
    }
}

/// Webhook extracts are coalesced per shop × stream into intervals of this many seconds.
pub const WEBHOOK_COALESCE_SECS: i64 = 60;
/// How many intervals ahead a webhook looks for an extract that has not started yet.
const WEBHOOK_LOOKAHEAD: i64 = 5;
/// The `run` tag of webhook extracts: it keeps their keys apart from the scheduler's,
/// whose `to` also falls on whole minutes (a scheduled run must never be taken for a
/// webhook's, nor the other way round).
pub const WEBHOOK_RUN: &str = "webhook";

/// `POST /webhooks/tiktok` for a worker: a verified event queues an extract of its
/// shop's stream up to now.
///
/// A burst of events for one shop × stream queues one extract, not one per event. The
/// extract's `to` is rounded up to the end of its [`WEBHOOK_COALESCE_SECS`] interval (the
/// worker clamps a `to` in the future to what has settled), so events within one interval
/// produce the same job key and the queue's idempotency drops the repeats — across worker
/// processes too, as the key lives in the shared queue. An event may join an existing job
/// only while that job has not started: one that is running or done may have read the
/// shop before the event, so the event moves on to the next interval's job (looking up to
/// [`WEBHOOK_LOOKAHEAD`] intervals ahead in one query). So every event is followed by an
/// extract that starts after it arrived, and a steady stream of events costs about one
/// extract per interval. Stateless on purpose: nothing to lose on restart, nothing to
/// share between workers.
fn webhooks(rt: &Runtime, queue: Queue) -> Option<Arc<crate::serve::webhooks::Webhooks>> {
    let cc = rt.app.client_config().ok()?;
    let (pipelines, _) = rt.app.pipelines().ok()?;
    let known: Vec<String> = pipelines.streams.iter().map(|s| s.name.clone()).collect();
    let max_attempts = rt.cfg.max_attempts;
    let sink: crate::serve::webhooks::WebhookSink = Arc::new(move |ev| {
        let (queue, known) = (queue.clone(), known.clone());
        async move {
            let Some(stream) = stream_for_event(ev.kind).filter(|s| known.iter().any(|k| k == s))
            else {
                info!(kind = ev.kind, shop = %ev.shop_id, "webhook event with no stream to refresh");
                return Ok(());
            };
            let job = |to: i64| super::Job::ExtractWindow {
                shop: ev.shop_id.clone(),
                stream: stream.to_string(),
                from: None,
                to,
                run: WEBHOOK_RUN.to_string(),
                origin: None,
            };
            let first = coalesced_to(Utc::now().timestamp());
            let candidates: Vec<super::Job> = (0..WEBHOOK_LOOKAHEAD)
                .map(|i| job(first + i * WEBHOOK_COALESCE_SECS))
                .collect();
            let keys: Vec<String> = candidates.iter().map(super::Job::key).collect();
            let existing = queue.by_keys(&keys).await.map_err(|e| e.to_string())?;
            let row = |key: &str| existing.iter().find(|r| r.key.as_deref() == Some(key));
            // The first interval whose job is absent or still waiting to run. When all of
            // them have started (a long burst, idle workers taking each job at once), the
            // one after; should that one have run too, the next schedule covers the event.
            let pick = candidates
                .into_iter()
                .find(|j| row(&j.key()).is_none_or(not_started))
                .unwrap_or_else(|| job(first + WEBHOOK_LOOKAHEAD * WEBHOOK_COALESCE_SECS));
            if row(&pick.key()).is_some() {
                // Joins an extract that has not started: it will see this event.
                return Ok(());
            }
            queue
                .push(&[pick], max_attempts)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        .boxed()
    });
    Some(crate::serve::webhooks::Webhooks::new(
        &cc.app_key,
        cc.app_secret.clone(),
        sink,
    ))
}

/// The end of the [`WEBHOOK_COALESCE_SECS`] interval holding `now` (strictly after it).
fn coalesced_to(now: i64) -> i64 {
    (now.div_euclid(WEBHOOK_COALESCE_SECS) + 1) * WEBHOOK_COALESCE_SECS
}

/// Whether a queued job has yet to start (or will run again after a failure): what it
/// extracts is read after now.
fn not_started(row: &super::JobRow) -> bool {
    match row.status.as_str() {
        "Pending" | "Queued" => true,
        "Failed" => !row.is_dead(),
        _ => false,
    }
}

/// A worker until `shutdown`.
pub async fn run_worker(
    app: Arc<App>,
    queue: Queue,
    cfg: JobsConfig,
    name: String,
    http_addr: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let rt = Runtime::new(app, queue.clone(), cfg, name.clone(), stop_rx)?;
    let _http = metrics_endpoint(&http_addr, queue, Some(rt.clone())).await;
    info!(worker = %name, backend = rt.queue.kind(), slots = rt.cfg.concurrency, "worker started");
    worker::work(rt, stop_tx, shutdown).await
}

/// The cron producer until `shutdown`: apalis-cron ticks at second 0 of every minute and
/// each tick enqueues what is due ([`Producer::tick`]).
pub async fn run_scheduler(
    app: Arc<App>,
    queue: Queue,
    cfg: JobsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let shops = app.shops(None)?;
    let (pipelines, _) = app.pipelines()?;
    let mut producer = Producer::new(&shops, &pipelines, &cfg.schedule)?;
    producer.maintain = cfg.maintain.clone();
    let producer = Arc::new(producer);
    info!(
        scheduled = producer.len(),
        backend = queue.kind(),
        "scheduler started"
    );
    let every_minute = cron::Schedule::from_str("0 * * * * *").expect("valid cron");
    let ctx = Arc::new((producer, queue, cfg.max_attempts));
    async fn on_tick(
        tick: Tick,
        ctx: Data<Arc<(Arc<Producer>, Queue, u32)>>,
    ) -> std::result::Result<(), BoxDynError> {
        let now = Utc
            .timestamp_opt(tick.get_timestamp() as i64, 0)
            .single()
            .unwrap_or_else(Utc::now);
        let (producer, queue, max_attempts) = &**ctx;
        let r = producer.tick(queue, now, *max_attempts).await?;
        if r.extracts + r.builds + r.maintains > 0 {
            info!(at = %now, extracts = r.extracts, builds = r.builds, maintains = r.maintains, "scheduled");
        }
        Ok(())
    }
    WorkerBuilder::new("shoplake-scheduler")
        .backend(CronScheduler::new(every_minute))
        .data(ctx)
        .build(on_tick)
        .run_until(async move {
            shutdown.await;
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|e| JobError::Backend(format!("scheduler: {e}")))
}

/// Scheduler and worker in one process (`shoplake run`).
pub async fn run_all(
    app: Arc<App>,
    queue: Queue,
    cfg: JobsConfig,
    name: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (tx, rx) = watch::channel(false);
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let http_addr = cfg.http_addr.clone();
    let (a, b) = tokio::join!(
        run_scheduler(app.clone(), queue.clone(), cfg.clone(), wait(rx.clone())),
        run_worker(app, queue, cfg, name, http_addr, wait(rx)),
    );
    a.and(b)
}
