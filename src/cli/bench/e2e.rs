//! `shoplake bench e2e`: the demo path (sandbox → backfill → build → test) in a fresh temp
//! data dir, with phase timings, rows/s and peak RSS.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::{peak_rss_mib, process_cpu_seconds, profile, write_results};
use crate::cli::demo::{self, DemoSpec};

/// Bench parameters.
#[derive(Debug, Clone, Args)]
pub struct E2eBench {
    /// Orders.
    #[arg(long, default_value_t = 100_000)]
    pub orders: usize,
    /// Shops.
    #[arg(long, default_value_t = 3)]
    pub shops: usize,
    /// Days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Results file.
    #[arg(long, default_value = "bench/results/e2e.json")]
    pub out: PathBuf,
}

/// Runs the demo path with seed 42 and writes `out`.
pub async fn run_e2e_bench(b: &E2eBench) -> Result<serde_json::Value> {
    let spec = DemoSpec {
        shops: b.shops,
        orders: b.orders,
        days: b.days,
        seed: 42,
    };
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    let (_app, sb, r) = demo::run(shoplake::config::Config::default(), dir.path(), &spec).await?;
    let total = t.elapsed().as_secs_f64();
    sb.stop().await;
    let result = json!({
        "spec": spec,
        "phases": r,
        "total_seconds": total,
        "rows_per_second_backfill": r.rows as f64 / r.backfill_secs.max(1e-9),
        "orders_per_second_backfill": spec.orders as f64 / r.backfill_secs.max(1e-9),
        "peak_rss_mib": peak_rss_mib(),
        "process_cpu_seconds": process_cpu_seconds(),
        "profile": profile(),
    });
    write_results(&b.out, &result)?;
    Ok(result)
}
