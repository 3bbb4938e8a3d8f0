//! `shoplake worker`: run queued jobs until Ctrl-C / SIGTERM.

use anyhow::Result;
use clap::Args;

use super::queue::{QueueArgs, default_worker_name, open_app_queue};
use super::{Cli, shutdown_signal};

/// `shoplake worker` options.
#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// `/metrics` address (default: [jobs] http_addr; "" for none).
    #[arg(long)]
    pub http_addr: Option<String>,
}

pub async fn run(cli: &Cli, a: &WorkerArgs) -> Result<()> {
    let (app, q, cfg) = open_app_queue(cli, &a.queue).await?;
    let name = a.queue.name.clone().unwrap_or_else(default_worker_name);
    let http = a.http_addr.clone().unwrap_or_else(|| cfg.http_addr.clone());
    shoplake::jobs::service::run_worker(app, q, cfg, name, http, shutdown_signal()).await?;
    Ok(())
}
