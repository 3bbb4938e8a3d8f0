//! `shoplake demo`: the command over [`super::demo`] (which the tests compile on its own):
//! run the whole path, report it, then serve Flight SQL.

use anyhow::Result;
use clap::Args;

use super::demo::DemoSpec;
use super::sandbox::SizeArgs;
use super::serve::serve_until_ctrl_c;
use super::{Cli, config, render};

/// `shoplake demo` options.
#[derive(Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub size: SizeArgs,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Exit after the build instead of serving Flight SQL.
    #[arg(long)]
    pub no_serve: bool,
    /// Flight SQL address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
}

pub async fn run(cli: &Cli, a: &DemoArgs) -> Result<()> {
    let config = config(cli)?;
    let spec = DemoSpec {
        shops: a.size.shops,
        orders: a.size.orders,
        days: a.size.days,
        seed: a.seed,
    };
    let t = std::time::Instant::now();
    let (app, sb, r) = super::demo::run(config, &cli.data_dir, &spec).await?;
    render::demo_report(&spec, &r, t.elapsed().as_secs_f64(), &app, &cli.data_dir);
    if r.tests_failed > 0 {
        anyhow::bail!(
            "{} data test(s) failed (see the warnings above)",
            r.tests_failed
        );
    }
    if !a.no_serve {
        render::demo_connect(&a.addr);
        serve_until_ctrl_c(&app, &a.addr, &app.config.serve.http_addr).await?;
    }
    sb.stop().await;
    Ok(())
}
