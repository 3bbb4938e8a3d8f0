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

/// `POST /webhooks/tiktok` for a worker: a verified event queues an extract of its
/// shop's stream up to now.
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
            let job = super::Job::ExtractWindow {
                shop: ev.shop_id.clone(),
                stream: stream.to_string(),
                from: None,
                to: Utc::now().timestamp(),
                run: String::new(),
            };
            queue
                .push(&[job], max_attempts)
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
    let producer = Arc::new(Producer::new(&shops, &pipelines, &cfg.schedule)?);
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
        if r.extracts + r.builds > 0 {
            info!(at = %now, extracts = r.extracts, builds = r.builds, "scheduled");
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
