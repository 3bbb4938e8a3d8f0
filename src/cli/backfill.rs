//! `shoplake backfill`: queue every window of a date range, run them (here, or on other
//! `shoplake worker`s) and report.

use anyhow::Result;
use clap::Args;
use tracing::info;

use shoplake::app::{App, parse_time};
use shoplake::config::JobsConfig;
use shoplake::jobs::Queue;

use super::queue::{QueueArgs, default_worker_name, open_app_queue};
use super::{Cli, render, shutdown_signal};

/// `shoplake backfill` options.
#[derive(Args)]
pub struct BackfillArgs {
    /// First day (YYYY-MM-DD, UTC) or RFC 3339 time.
    #[arg(long)]
    pub from: String,
    /// Last day, inclusive (YYYY-MM-DD), or an exclusive RFC 3339 end.
    #[arg(long)]
    pub to: String,
    /// One shop (id, cipher or name).
    #[arg(long)]
    pub shop: Option<String>,
    /// One pipeline (category such as `orders`) or stream.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Only queue the windows (other `shoplake worker`s run them); with --wait,
    /// follow their progress.
    #[arg(long)]
    pub enqueue_only: bool,
    /// With --enqueue-only: wait for the windows and show progress.
    #[arg(long)]
    pub wait: bool,
    /// Run windows that were already done again (default: resume, skipping them).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub queue: QueueArgs,
}

pub async fn run(cli: &Cli, a: &BackfillArgs) -> Result<()> {
    let from_t = parse_time(&a.from)?;
    // A plain date as --to means "through that day".
    let to_t = parse_time(&a.to)? + if a.to.len() == 10 { 86_400 } else { 0 };
    let (app, q, cfg) = open_app_queue(cli, &a.queue).await?;
    let (keys, new) = enqueue(&app, &q, &cfg, a, from_t, to_t).await?;
    if a.enqueue_only && !a.wait {
        render::backfill_queued(new, keys.len(), q.kind());
        return Ok(());
    }
    let t = std::time::Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let local = if a.enqueue_only {
        None
    } else {
        let mut rx = stop_rx.clone();
        let stop = async move {
            tokio::select! {
                _ = rx.wait_for(|v| *v) => {},
                _ = shutdown_signal() => {},
            }
        };
        let name = a.queue.name.clone().unwrap_or_else(default_worker_name);
        Some(tokio::spawn(shoplake::jobs::service::run_worker(
            app.clone(),
            q.clone(),
            cfg.clone(),
            name,
            String::new(),
            stop,
        )))
    };
    let waited = tokio::select! {
        r = shoplake::jobs::backfill::wait(&q, &keys) => Some(r),
        _ = shutdown_signal() => None,
    };
    let _ = stop_tx.send(true);
    if let Some(h) = local {
        h.await??;
    }
    let Some(waited) = waited else {
        anyhow::bail!(
            "interrupted: finished windows are kept; run the same backfill again to resume"
        );
    };
    let (p, dead) = waited?;
    render::backfill_progress(&p, t.elapsed().as_secs_f64());
    if !dead.is_empty() {
        render::dead_jobs(&dead);
        anyhow::bail!(
            "{} window(s) failed on every attempt; fix the cause and run `shoplake retry`",
            dead.len()
        );
    }
    Ok(())
}

/// Plans the range's window jobs and queues them; returns their keys and how many were new.
async fn enqueue(
    app: &App,
    q: &Queue,
    cfg: &JobsConfig,
    a: &BackfillArgs,
    from_t: i64,
    to_t: i64,
) -> Result<(Vec<String>, u64)> {
    let run = if a.force {
        format!("force-{}", chrono::Utc::now().timestamp())
    } else {
        String::new()
    };
    let jobs = shoplake::jobs::backfill::plan(
        app,
        from_t,
        to_t,
        a.shop.as_deref(),
        a.pipeline.as_deref(),
        &run,
    )?;
    let keys: Vec<String> = jobs.iter().map(|j| j.key()).collect();
    let new = q.push(&jobs, cfg.max_attempts).await?;
    info!(
        windows = jobs.len(),
        new,
        already_queued = jobs.len() as u64 - new,
        backend = q.kind(),
        "backfill queued"
    );
    Ok((keys, new))
}
