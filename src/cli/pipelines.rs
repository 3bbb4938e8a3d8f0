//! `shoplake pipelines`: every stream, or (`--coverage`) how much of the endpoint catalog
//! the pipelines cover.

use anyhow::Result;
use clap::Args;

use shoplake::pipeline::coverage;

use super::{Cli, app, render};

/// `shoplake pipelines` options.
#[derive(Args)]
pub struct PipelinesArgs {
    /// Instead: how many catalog endpoints (pipelines/catalog.tsv) each category
    /// extracts, excludes (with the reason) or misses, and which are missing.
    #[arg(long)]
    pub coverage: bool,
}

pub fn run(cli: &Cli, a: &PipelinesArgs) -> Result<()> {
    let app = app(cli)?;
    let (p, _) = app.pipelines()?;
    if a.coverage {
        let catalog = coverage::load_catalog(&app.project.join("pipelines").join("catalog.tsv"))?;
        let rows = coverage::coverage(&catalog, &p);
        render::coverage(&p, &rows);
    } else {
        render::pipelines(&p);
    }
    Ok(())
}
