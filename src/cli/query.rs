//! `shoplake query`: read-only SQL against the lake.

use anyhow::Result;
use clap::Args;

use super::render::{self, Format};
use super::{Cli, app};

/// `shoplake query` options.
#[derive(Args)]
pub struct QueryArgs {
    /// SQL, e.g. "select * from marts.gmv_daily limit 10".
    pub sql: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(cli: &Cli, a: &QueryArgs) -> Result<()> {
    let batches = app(cli)?.query(&a.sql).await?;
    render::batches(&batches, a.format)
}
