//! `shoplake bench jobs`: a year-long backfill for several shops on the job queue with 1,
//! then 2, … workers, against one rate-limited sandbox (the real API's ~50 requests/s per
//! endpoint). Each run starts from an empty lake and queue. Reports wall time, requests/s,
//! 429s, and the floor the rate limit sets (the busiest endpoint's requests ÷ the client's
//! allowed rate), side by side in one results file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use tokio::sync::watch;

use shoplake::config::Config;
use shoplake::jobs::{self, Job, Queue, Runtime};
use shoplake_sandbox::{self as sandbox, RunningSandbox, SandboxConfig};

use super::{sandbox_app, spawn_sandbox, write_results};
use crate::cli::sandbox::SizeArgs;

/// Bench parameters.
#[derive(Debug, Clone, Args)]
pub struct JobsBench {
    #[command(flatten)]
    pub size: SizeArgs,
    /// The sandbox's limit per endpoint, requests/s (the real API's is about 50).
    #[arg(long, default_value_t = 50.0)]
    pub api_rps: f64,
    /// The client budget per endpoint family, shared by all workers.
    #[arg(long, default_value_t = 40.0)]
    pub client_rps: f64,
    /// Worker counts to compare, comma-separated.
    #[arg(long, default_value = "1,2", value_delimiter = ',')]
    pub workers: Vec<usize>,
    /// Job slots per worker.
    #[arg(long, default_value_t = 4)]
    pub slots: usize,
    /// Results file.
    #[arg(long, default_value = "bench/results/jobs.json")]
    pub out: PathBuf,
}

/// One run.
#[derive(Debug, Serialize)]
pub struct JobsRun {
    /// Worker processes (in-process runtimes with their own client and slots).
    pub workers: usize,
    /// Window jobs.
    pub jobs: usize,
    /// Rows landed.
    pub rows: u64,
    /// Wall seconds from the first job to the last.
    pub wall_seconds: f64,
    /// Requests the sandbox received.
    pub requests: u64,
    /// Requests per second.
    pub requests_per_second: f64,
    /// Answered 429 by the sandbox.
    pub rate_limited: u64,
    /// Requests to the busiest endpoint.
    pub busiest_endpoint_requests: u64,
    /// The busiest endpoint's requests ÷ client_rps: no schedule can beat it.
    pub floor_seconds: f64,
    /// wall / floor.
    pub wall_over_floor: f64,
    /// Seconds requests waited on the client and shared rate limits, all workers.
    pub rate_limit_wait_seconds: f64,
    /// Jobs done by each worker.
    pub jobs_per_worker: BTreeMap<String, usize>,
}

/// The results file.
#[derive(Debug, Serialize)]
pub struct JobsBenchResult {
    /// Shops, orders, days of the sandbox.
    #[serde(flatten)]
    pub size: SizeArgs,
    /// Sandbox limit per endpoint.
    pub api_rps: f64,
    /// Client budget per endpoint family.
    pub client_rps: f64,
    /// Job slots per worker.
    pub slots: usize,
    /// Runs, in order.
    pub runs: Vec<JobsRun>,
}

/// Runs the bench and writes `out`.
pub async fn run_jobs_bench(b: &JobsBench) -> anyhow::Result<JobsBenchResult> {
    let (cfg, sb) = spawn_sandbox(&b.size, b.api_rps).await?;
    let mut runs = Vec::new();
    for &n in &b.workers {
        runs.push(run_with(b, &sb, &cfg, n).await?);
    }
    sb.stop().await;
    let result = JobsBenchResult {
        size: b.size.clone(),
        api_rps: b.api_rps,
        client_rps: b.client_rps,
        slots: b.slots,
        runs,
    };
    write_results(&b.out, &result)?;
    Ok(result)
}

/// The whole backfill with `n` workers, on a fresh lake and queue.
async fn run_with(
    b: &JobsBench,
    sb: &RunningSandbox,
    cfg: &SandboxConfig,
    n: usize,
) -> anyhow::Result<JobsRun> {
    let clock = cfg.data.clock;
    let (from, to) = (clock - (b.size.days as i64 + 2) * 86_400, clock + 1);
    let dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.jobs.concurrency = b.slots as u32;
    let app = Arc::new(sandbox_app(sb, cfg, config, dir.path(), b.client_rps).await?);
    let q = Queue::open("sqlite", dir.path()).await?;
    let plan = jobs::backfill::plan(&app, from, to, None, None, "")?;
    let keys: Vec<String> = plan.iter().map(Job::key).collect();
    let before = sb.sandbox.stats();
    let jcfg = app.config.jobs_config()?;
    q.push(&plan, jcfg.max_attempts).await?;
    let t = Instant::now();
    let mut workers = Vec::new();
    for i in 0..n {
        let (stop_tx, stop_rx) = watch::channel(false);
        let rt = Runtime::new(
            app.clone(),
            q.clone(),
            jcfg.clone(),
            format!("bench-w{}", i + 1),
            stop_rx,
        )?;
        let (quit_tx, mut quit_rx) = watch::channel(false);
        let h = tokio::spawn(jobs::worker::work(rt.clone(), stop_tx, async move {
            let _ = quit_rx.wait_for(|v| *v).await;
        }));
        workers.push((rt, quit_tx, h));
    }
    let (p, dead) = jobs::backfill::wait(&q, &keys).await?;
    let wall = t.elapsed().as_secs_f64();
    anyhow::ensure!(dead.is_empty(), "{} jobs died: {:?}", dead.len(), dead[0]);
    let mut waited = 0.0;
    for (rt, quit, h) in workers {
        waited += rt.extractor.client().rate_limit_waited().as_secs_f64();
        let _ = quit.send(true);
        h.await??;
    }
    let after = sb.sandbox.stats();
    let delta = |f: fn(&sandbox::EndpointStats) -> u64| -> BTreeMap<String, u64> {
        after
            .iter()
            .map(|(k, v)| (k.to_string(), f(v) - before.get(k).map_or(0, f)))
            .collect()
    };
    let reqs = delta(|s| s.requests);
    let requests: u64 = reqs.values().sum();
    let busiest = reqs.values().copied().max().unwrap_or(0);
    let floor = busiest as f64 / b.client_rps.max(1e-9);
    let mut per_worker = BTreeMap::new();
    for r in q.by_keys(&keys).await? {
        *per_worker.entry(r.worker.unwrap_or_default()).or_default() += 1;
    }
    let run = JobsRun {
        workers: n,
        jobs: plan.len(),
        rows: p.rows,
        wall_seconds: wall,
        requests,
        requests_per_second: requests as f64 / wall,
        rate_limited: delta(|s| s.rate_limited).values().sum(),
        busiest_endpoint_requests: busiest,
        floor_seconds: floor,
        wall_over_floor: wall / floor.max(1e-9),
        rate_limit_wait_seconds: waited,
        jobs_per_worker: per_worker,
    };
    tracing::info!(?run, "bench run");
    Ok(run)
}
