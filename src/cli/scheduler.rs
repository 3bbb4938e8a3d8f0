//! `shoplake scheduler`: only the cron producer, enqueueing jobs for workers elsewhere.

use anyhow::Result;

use super::queue::{QueueArgs, open_app_queue};
use super::{Cli, shutdown_signal};

pub async fn run(cli: &Cli, queue: &QueueArgs) -> Result<()> {
    let (app, q, cfg) = open_app_queue(cli, queue).await?;
    let _http = shoplake::jobs::service::metrics_endpoint(&cfg.http_addr, q.clone(), None).await;
    shoplake::jobs::service::run_scheduler(app, q, cfg, shutdown_signal()).await?;
    Ok(())
}
