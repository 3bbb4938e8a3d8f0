//! `shoplake bench build`: the SQL models over the demo data — a full build with one
//! thread and with all cores, then, after one more day of orders is extracted, an
//! incremental build and a full rebuild of the same data, side by side in one run. Writes
//! a JSON results file; numbers are for reports, never asserted.
//!
//! The incremental build finds the day's changed windows by the Delta versions its inputs
//! moved through since the full build, as the next scheduled build would.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use shoplake::app::App;
use shoplake::config::Config;
use shoplake::models::{BuildKind, BuildOptions, BuildReport};

use super::{sandbox_app, spawn_sandbox, write_results};
use crate::cli::sandbox::SizeArgs;

/// Bench parameters.
#[derive(Debug, Clone, Args)]
pub struct BuildBench {
    #[command(flatten)]
    pub size: SizeArgs,
    /// Results file.
    #[arg(long, default_value = "bench/results/build.json")]
    pub out: PathBuf,
}

/// One build.
#[derive(Debug, Serialize)]
pub struct BuildRun {
    /// What was built and how.
    pub name: String,
    /// Models built at once.
    pub threads: usize,
    /// Wall seconds.
    pub seconds: f64,
    /// Rows written over all models.
    pub rows_written: usize,
    /// Per model: milliseconds, how it was built, windows rebuilt.
    pub models: BTreeMap<String, (u128, String, usize)>,
}

/// The results file.
#[derive(Debug, Serialize)]
pub struct BuildBenchResult {
    /// Shops, orders, days of the sandbox.
    #[serde(flatten)]
    pub size: SizeArgs,
    /// Rows the backfill landed, and its seconds.
    pub backfill_rows: u64,
    /// Seconds.
    pub backfill_seconds: f64,
    /// Rows the one-day extract landed.
    pub day_rows: u64,
    /// Builds in order.
    pub runs: Vec<BuildRun>,
    /// Full build, 1 thread ÷ all cores.
    pub parallel_speedup: f64,
    /// Full rebuild ÷ incremental build, after the same day of orders.
    pub full_over_incremental: f64,
    /// Every model has the same row count after the incremental build and the full rebuild.
    pub same_row_counts: bool,
}

fn run(name: &str, threads: usize, t: Duration, r: &[BuildReport]) -> BuildRun {
    BuildRun {
        name: name.into(),
        threads,
        seconds: t.as_secs_f64(),
        rows_written: r.iter().map(|b| b.rows).sum(),
        models: r
            .iter()
            .map(|b| (b.model.clone(), (b.millis, b.kind.to_string(), b.windows)))
            .collect(),
    }
}

async fn row_counts(app: &App) -> anyhow::Result<BTreeMap<String, i64>> {
    let ctx = app.session().await?;
    let mut out = BTreeMap::new();
    for m in app.project(&ctx).await?.models {
        let b = app
            .query(&format!("select count(*) from {}", m.qualified()))
            .await?;
        let n = b
            .first()
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .map(|a| a.value(0))
            })
            .unwrap_or(0);
        out.insert(m.qualified(), n);
    }
    Ok(out)
}

/// Runs the bench and writes `out`.
pub async fn run_build_bench(b: &BuildBench) -> anyhow::Result<BuildBenchResult> {
    let (cfg, sb) = spawn_sandbox(&b.size, 0.0).await?;
    let clock = cfg.data.clock;
    sb.sandbox.set_clock(clock - 86_400);
    let dir = tempfile::tempdir()?;
    let app = sandbox_app(&sb, &cfg, Config::default(), dir.path(), 1000.0).await?;

    let t = Instant::now();
    let from = clock - (i64::from(b.size.days) + 2) * 86_400;
    let sum = app.backfill(from, clock - 86_400 + 1, None, None).await?;
    anyhow::ensure!(sum.errors.is_empty(), "backfill: {:?}", sum.errors);
    let backfill_seconds = t.elapsed().as_secs_f64();

    let cores = BuildOptions::default().threads;
    let opts = |threads: usize, full_refresh: bool| BuildOptions {
        threads,
        full_refresh,
    };
    let mut runs = Vec::new();
    for (name, threads) in [("full, 1 thread", 1), ("full, all cores", cores)] {
        let t = Instant::now();
        let r = app.build(None, &opts(threads, true)).await?;
        runs.push(run(name, threads, t.elapsed(), &r));
        tracing::info!(name, seconds = t.elapsed().as_secs_f64(), "bench build");
    }

    sb.sandbox.set_clock(clock);
    let day = app.extract(clock + 1, None, None).await?;
    anyhow::ensure!(day.errors.is_empty(), "extract: {:?}", day.errors);

    let t = Instant::now();
    let r = app.build(None, &opts(cores, false)).await?;
    anyhow::ensure!(
        r.iter().any(|b| b.kind == BuildKind::Incremental),
        "no model was built incrementally"
    );
    runs.push(run("incremental, one more day", cores, t.elapsed(), &r));
    let incremental_counts = row_counts(&app).await?;
    let t = Instant::now();
    let r = app.build(None, &opts(cores, true)).await?;
    runs.push(run("full rebuild, same day", cores, t.elapsed(), &r));
    let full_counts = row_counts(&app).await?;
    sb.stop().await;

    let result = BuildBenchResult {
        size: b.size.clone(),
        backfill_rows: sum.rows,
        backfill_seconds,
        day_rows: day.rows,
        parallel_speedup: runs[0].seconds / runs[1].seconds.max(1e-9),
        full_over_incremental: runs[3].seconds / runs[2].seconds.max(1e-9),
        same_row_counts: incremental_counts == full_counts,
        runs,
    };
    write_results(&b.out, &result)?;
    Ok(result)
}
