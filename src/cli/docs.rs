//! `shoplake docs`: write a Markdown catalog of every table.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{Cli, app};

/// `shoplake docs` options.
#[derive(Args)]
pub struct DocsArgs {
    /// Output file.
    #[arg(long, default_value = "catalog.md")]
    pub out: PathBuf,
}

pub async fn run(cli: &Cli, a: &DocsArgs) -> Result<()> {
    let md = app(cli)?.docs().await?;
    std::fs::write(&a.out, &md).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "wrote {} ({} tables, {} KiB)",
        a.out.display(),
        md.matches("\n## ").count() - 2,
        md.len() / 1024
    );
    Ok(())
}
