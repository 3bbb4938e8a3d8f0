//! `shoplake run`: scheduler and workers in one process until Ctrl-C / SIGTERM.

use anyhow::Result;

use super::queue::{QueueArgs, host_name, open_app_queue};
use super::{Cli, shutdown_signal};

pub async fn run(cli: &Cli, queue: &QueueArgs) -> Result<()> {
    let (app, q, cfg) = open_app_queue(cli, queue).await?;
    let name = queue
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-run", host_name()));
    shoplake::jobs::service::run_all(app, q, cfg, name, shutdown_signal()).await?;
    Ok(())
}
