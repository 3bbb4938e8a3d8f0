//! `shoplake status`: per shop and stream, cursor, last run, rows, last error; and the job
//! queue when it can be reached.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;

use shoplake::app::App;
use shoplake::jobs::JobRow;

use super::queue::{QueueArgs, open_queue};
use super::render::{self, Format};
use super::{Cli, app};

/// `shoplake status` options.
#[derive(Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(cli: &Cli, a: &StatusArgs) -> Result<()> {
    let app = app(cli)?;
    let rows = app.status().await?;
    // The queue is reported when it can be reached; the streams either way.
    let (kind, counts, dead) = match queue_state(&app).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("warning: job queue unavailable: {e:#}");
            ("unavailable", Default::default(), Vec::new())
        }
    };
    match a.format {
        Format::Json => render::status_json(&rows, &counts, &dead)?,
        _ => render::status_table(&rows, kind, &counts, &dead),
    }
    Ok(())
}

/// The queue's kind, job counts by status, and dead jobs.
async fn queue_state(app: &App) -> Result<(&'static str, BTreeMap<String, u64>, Vec<JobRow>)> {
    let (q, _) = open_queue(app, &QueueArgs::default()).await?;
    let counts = q.counts().await?;
    let dead = q.dead().await?;
    Ok((q.kind(), counts, dead))
}
