//! `shoplake maintain`: compact small files, write checkpoints, vacuum old files.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use shoplake::warehouse::maintain::MaintainOptions;

use super::{Cli, app, render};

/// `shoplake maintain` options.
#[derive(Args)]
pub struct MaintainArgs {
    /// Only these tables (`raw.orders`, `marts.gmv_daily`; repeatable). Default: every
    /// table of the lake.
    #[arg(long = "table")]
    pub tables: Vec<String>,
    /// Files no version younger than this needs are deleted (at least 1h).
    #[arg(long, default_value = "7days", value_parser = shoplake::duration::parse)]
    pub retention: Duration,
    /// Report files and what vacuum would delete; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(cli: &Cli, a: &MaintainArgs) -> Result<()> {
    let opts = MaintainOptions {
        retention: a.retention,
        dry_run: a.dry_run,
        as_of_ms: None,
    };
    let reports = app(cli)?.maintain(&a.tables, &opts).await?;
    render::maintain_reports(&reports, a.dry_run);
    Ok(())
}
