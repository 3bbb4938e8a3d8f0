//! `shoplake extract`: incremental sync from each stream's committed cursor.

use anyhow::Result;
use clap::Args;

use shoplake::app::parse_time;

use super::{Cli, app, render};

/// `shoplake extract` options.
#[derive(Args)]
pub struct ExtractArgs {
    /// One shop (id, cipher or name).
    #[arg(long)]
    pub shop: Option<String>,
    /// One pipeline (category) or stream.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// End of the sync (RFC 3339; default: now minus 2 minutes for late updates).
    #[arg(long)]
    pub until: Option<String>,
}

pub async fn run(cli: &Cli, a: &ExtractArgs) -> Result<()> {
    let until = match &a.until {
        Some(u) => parse_time(u)?,
        // The planner keeps the settle margin (`[extract] settle`) from now.
        None => chrono::Utc::now().timestamp(),
    };
    let t = std::time::Instant::now();
    let s = app(cli)?
        .extract(until, a.shop.as_deref(), a.pipeline.as_deref())
        .await?;
    render::run_summary("extract", &s, t.elapsed().as_secs_f64())
}
