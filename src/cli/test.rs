//! `shoplake test`: run the models' data tests.

use anyhow::Result;
use clap::Args;

use super::{Cli, app, render};

/// `shoplake test` options.
#[derive(Args)]
pub struct TestArgs {
    /// Same syntax as build --select.
    #[arg(long)]
    pub select: Option<String>,
}

pub async fn run(cli: &Cli, a: &TestArgs) -> Result<()> {
    let r = app(cli)?.test(a.select.as_deref()).await?;
    let failed = render::tests(&r);
    anyhow::ensure!(failed == 0, "{failed} data test(s) failed");
    Ok(())
}
