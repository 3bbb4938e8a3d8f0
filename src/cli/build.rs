//! `shoplake build`: build the SQL models into Delta tables, or (`--dry-run`) list and plan
//! them.

use anyhow::Result;
use clap::Args;

use super::{Cli, app, render};

/// `shoplake build` options.
#[derive(Args)]
pub struct BuildArgs {
    /// MODEL, MODEL+ (and downstream), +MODEL (and upstream); comma-separated.
    #[arg(long)]
    pub select: Option<String>,
    /// Build nothing: list the DAG (layers, materialization, inputs) and plan every
    /// selected model whose inputs exist.
    #[arg(long)]
    pub dry_run: bool,
    /// Rebuild incremental models in full (after editing a seed, or to check them).
    #[arg(long)]
    pub full_refresh: bool,
    /// Models built at once (default: [project] threads, else the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub async fn run(cli: &Cli, a: &BuildArgs) -> Result<()> {
    let app = app(cli)?;
    if a.dry_run {
        let nodes = app.dry_run(a.select.as_deref()).await?;
        let bad = render::dag(&nodes);
        anyhow::ensure!(bad == 0, "{bad} model(s) do not plan");
        return Ok(());
    }
    let mut opts = app.build_options()?;
    opts.full_refresh = a.full_refresh;
    if let Some(t) = a.threads {
        anyhow::ensure!(t > 0, "--threads must be at least 1");
        opts.threads = t;
    }
    let t = std::time::Instant::now();
    let r = app.build(a.select.as_deref(), &opts).await?;
    render::build_reports(&r, t.elapsed());
    Ok(())
}
