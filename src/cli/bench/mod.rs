//! `shoplake bench …`: one benchmark, its results file and a summary. Each benchmark is in
//! its own module; here are the subcommands and what the benchmarks share. Numbers are for
//! reports, never asserted.

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use shoplake::api::ClientConfig;
use shoplake::api::auth::exchange_and_store;
use shoplake::app::App;
use shoplake::config::Config;
use shoplake_sandbox::{self as sandbox, DEFAULT_AUTH_CODE, RunningSandbox, SandboxConfig};

use super::sandbox::SizeArgs;
use super::{Cli, app, render};

pub mod api;
pub mod build;
pub mod e2e;
pub mod export;
pub mod flight;
pub mod jobs;
pub mod maintain;
pub use api::{ApiBench, run_api_bench};
pub use build::{BuildBench, run_build_bench};
pub use e2e::{E2eBench, run_e2e_bench};
pub use export::{ExportBench, run_export_bench};
pub use flight::{FlightBench, run_flight_bench};
pub use jobs::{JobsBench, run_jobs_bench};
pub use maintain::{MaintainBench, run_maintain_bench};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The demo path (sandbox → backfill → build → test) in a temp dir: timings, rows/s,
    /// peak RSS.
    E2e(E2eBench),
    /// Dashboard query latency (p50/p95) and large-result throughput over Flight SQL,
    /// on the data dir's warehouse (run `shoplake demo --no-serve` first).
    Flight(FlightBench),
    /// SQL models over the demo data: full build with 1 thread and all cores, then after
    /// one more day of orders an incremental build and a full rebuild, side by side.
    Build(BuildBench),
    /// A year-long backfill on the job queue with 1 vs 2 workers against a rate-limited
    /// sandbox: wall time, requests/s, 429s, and the rate limit's floor.
    Jobs(JobsBench),
    /// Client throughput against an in-process sandbox, and sandbox CPU per page.
    Api(ApiBench),
    /// Simulated days of 15-minute extracts, then `maintain`: files, bytes and dashboard
    /// query time of raw.orders and marts.gmv_daily before and after.
    Maintain(MaintainBench),
    /// `shoplake export` of the largest mart in every format, each in its own process:
    /// rows/s and peak RSS beside the RSS of exporting one row (data dir's warehouse).
    Export(ExportBench),
}

/// Runs one benchmark and prints its results.
pub async fn run(cli: &Cli, command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::E2e(b) => render::bench_results(&run_e2e_bench(b).await?, &b.out),
        BenchCommand::Flight(b) => {
            render::bench_results(&run_flight_bench(&app(cli)?, b).await?, &b.out)
        }
        BenchCommand::Build(b) => render::bench_results(&run_build_bench(b).await?, &b.out),
        BenchCommand::Jobs(b) => render::bench_results(&run_jobs_bench(b).await?, &b.out),
        BenchCommand::Api(b) => render::bench_results(&run_api_bench(b).await?, &b.out),
        BenchCommand::Maintain(b) => render::bench_results(&run_maintain_bench(b).await?, &b.out),
        BenchCommand::Export(b) => {
            render::bench_results(&run_export_bench(cli, &app(cli)?, b).await?, &b.out)
        }
    }
}

/// The build profile, for results files: `debug` or `release`.
fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Writes a results file (pretty JSON), creating its directory.
fn write_results(out: &Path, result: &impl Serialize) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, serde_json::to_vec_pretty(result)?)?;
    Ok(())
}

/// An in-process sandbox on a free loopback port with `size`'s data and a limit of `rps`
/// requests/s per endpoint (0: none); and its config.
async fn spawn_sandbox(size: &SizeArgs, rps: f64) -> Result<(SandboxConfig, RunningSandbox)> {
    let mut cfg = SandboxConfig::default();
    cfg.data.shops = size.shops;
    cfg.data.orders = size.orders;
    cfg.data.days = size.days;
    cfg.rps = rps;
    let sb = sandbox::spawn(cfg.clone(), "127.0.0.1:0".parse()?).await?;
    Ok((cfg, sb))
}

/// An app over `config` and the data dir `dir`, its client pointed at the sandbox (at most
/// `max_rps` requests/s per endpoint family) and authorized for its shops.
async fn sandbox_app(
    sb: &RunningSandbox,
    cfg: &SandboxConfig,
    config: Config,
    dir: &Path,
    max_rps: f64,
) -> Result<App> {
    let mut cc = ClientConfig::for_base(&sb.base_url(), &cfg.app_key, &cfg.app_secret)?;
    cc.max_rps = max_rps;
    let app = App::new(config, dir)?.with_client_config(cc);
    exchange_and_store(&app.client()?, DEFAULT_AUTH_CODE).await?;
    Ok(app)
}

/// CPU seconds (user + system) this process has used.
fn process_cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Peak resident set size of this process, in MiB (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
