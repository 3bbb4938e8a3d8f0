//! `shoplake retry`: requeue dead jobs.

use anyhow::Result;
use clap::Args;

use super::queue::{QueueArgs, open_queue};
use super::{Cli, app};

/// `shoplake retry` options.
#[derive(Args)]
pub struct RetryArgs {
    /// Job id.
    pub id: Option<String>,
    #[command(flatten)]
    pub queue: QueueArgs,
}

pub async fn run(cli: &Cli, a: &RetryArgs) -> Result<()> {
    let app = app(cli)?;
    let (q, _) = open_queue(&app, &a.queue).await?;
    let n = q.retry(a.id.as_deref()).await?;
    println!("requeued {n} dead job(s)");
    Ok(())
}
