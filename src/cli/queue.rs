//! The job queue options the queue commands share (`backfill`, `run`, `worker`,
//! `scheduler`, `retry`; `status` reads the queue too) and how they open it.

use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use shoplake::app::App;
use shoplake::config::JobsConfig;
use shoplake::jobs::Queue;

use super::Cli;

/// Where the job queue is and who this process is.
#[derive(Args, Clone, Default)]
pub struct QueueArgs {
    /// `sqlite` or `postgres://user@host/db` (default: [jobs] backend).
    #[arg(long, env = "SHOPLAKE_JOBS__BACKEND")]
    pub backend: Option<String>,
    /// Worker name (default: host name and process id).
    #[arg(long)]
    pub name: Option<String>,
    /// Job slots in this process (default: [jobs] concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
}

/// The queue named by `--backend` or `[jobs] backend`, and `[jobs]` with the CLI's overrides.
pub async fn open_queue(app: &App, args: &QueueArgs) -> Result<(Queue, JobsConfig)> {
    let mut cfg = app.config.jobs_config()?;
    if let Some(b) = &args.backend {
        cfg.backend = b.clone();
    }
    if let Some(c) = args.concurrency {
        anyhow::ensure!(c > 0, "--concurrency must be at least 1");
        cfg.concurrency = c;
    }
    let q = Queue::open(&cfg.backend, &app.data_dir).await?;
    Ok((q, cfg))
}

/// The app (shared with the job runtimes) and its queue, for the commands that run jobs.
pub async fn open_app_queue(cli: &Cli, args: &QueueArgs) -> Result<(Arc<App>, Queue, JobsConfig)> {
    let app = Arc::new(super::app(cli)?);
    let (q, cfg) = open_queue(&app, args).await?;
    Ok((app, q, cfg))
}

/// This machine's name (`/etc/hostname`), or `shoplake`.
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "shoplake".into())
}

/// `--name` unless given: host name and process id.
pub fn default_worker_name() -> String {
    format!("{}-{}", host_name(), std::process::id())
}
