//! `shoplake bench maintain`: what a 15-minute schedule does to the lake over simulated
//! days, and what `maintain` gives back. Orders are extracted every `--every` (products
//! and returns hourly) and `marts.gmv_daily` built once per simulated day, as the
//! scheduler would;
//! then files, bytes and the time of a dashboard query on `raw.orders` and
//! `marts.gmv_daily` are measured before and after `maintain`, side by side in one run.
//! Writes a JSON results file; numbers are for reports, never asserted.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use shoplake::app::App;
use shoplake::config::Config;
use shoplake::models::BuildOptions;
use shoplake::warehouse::maintain::{FileStats, MaintainOptions};

use super::{sandbox_app, spawn_sandbox, write_results};
use crate::cli::sandbox::SizeArgs;

const DAY: i64 = 86_400;

/// The dashboard queries timed on each table: what a Grafana panel over 30 days asks.
const QUERIES: [(&str, &str); 2] = [
    (
        "raw.orders",
        "select _shop_id, date_trunc('day', create_time) as d, count(*), sum(total_amount) from raw.orders group by 1, 2 order by 1, 2",
    ),
    (
        "marts.gmv_daily",
        "select * from marts.gmv_daily order by 1, 2",
    ),
];

/// Bench parameters.
#[derive(Debug, Clone, Args)]
pub struct MaintainBench {
    #[command(flatten)]
    pub size: SizeArgs,
    /// Simulated days of scheduled extracts.
    #[arg(long, default_value_t = 30)]
    pub sim_days: u32,
    /// Time between scheduled order extracts.
    #[arg(long, default_value = "15m", value_parser = shoplake::duration::parse)]
    pub every: Duration,
    /// Runs of each dashboard query (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub query_runs: usize,
    /// Results file.
    #[arg(long, default_value = "bench/results/maintain.json")]
    pub out: PathBuf,
}

/// One table, before or after maintenance.
#[derive(Debug, Serialize)]
pub struct TableState {
    /// Files, bytes, fragmented partitions.
    #[serde(flatten)]
    pub files: FileStats,
    /// Median milliseconds of its dashboard query.
    pub query_ms: f64,
}

/// The results file.
#[derive(Debug, Serialize)]
pub struct MaintainBenchResult {
    /// Shops, orders, days of the sandbox.
    #[serde(flatten)]
    pub size: SizeArgs,
    /// Build profile (`debug` or `release`).
    pub profile: &'static str,
    /// Simulated days and extract interval (seconds).
    pub sim_days: u32,
    /// Seconds between extracts.
    pub every_seconds: u64,
    /// Scheduled extracts run.
    pub extracts: u64,
    /// Wall seconds of the simulated days.
    pub simulate_seconds: f64,
    /// Per table: before maintenance, after it, and after a maintenance once the
    /// retention has passed (vacuum replayed as of 8 days later).
    pub tables: Vec<(String, TableState, TableState, TableState)>,
    /// Wall seconds of `maintain` over every table.
    pub maintain_seconds: f64,
    /// Tables maintained.
    pub tables_maintained: usize,
}

/// The median wall time of `sql`, in milliseconds.
async fn query_ms(app: &App, sql: &str, runs: usize) -> anyhow::Result<f64> {
    let mut ms = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        app.query(sql).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

/// Files and query time of each timed table.
async fn measure(app: &App, runs: usize) -> anyhow::Result<Vec<(String, TableState)>> {
    let dry = MaintainOptions {
        dry_run: true,
        ..Default::default()
    };
    let names: Vec<String> = QUERIES.iter().map(|(t, _)| t.to_string()).collect();
    let reports = app.maintain(&names, &dry).await?;
    let mut out = Vec::new();
    for ((table, sql), r) in QUERIES.iter().zip(reports) {
        out.push((
            table.to_string(),
            TableState {
                files: r.before,
                query_ms: query_ms(app, sql, runs).await?,
            },
        ));
    }
    Ok(out)
}

/// Runs the bench and writes `out`.
pub async fn run_maintain_bench(b: &MaintainBench) -> anyhow::Result<MaintainBenchResult> {
    let (cfg, sb) = spawn_sandbox(&b.size, 0.0).await?;
    let clock = cfg.data.clock;
    let start = clock - i64::from(b.sim_days) * DAY;
    sb.sandbox.set_clock(start);
    let dir = tempfile::tempdir()?;
    let app = sandbox_app(&sb, &cfg, Config::default(), dir.path(), 1000.0).await?;
    let from = clock - (i64::from(b.size.days) + 2) * DAY;
    for pipeline in ["orders", "products", "return_refund"] {
        let sum = app.backfill(from, start + 1, None, Some(pipeline)).await?;
        anyhow::ensure!(sum.errors.is_empty(), "backfill: {:?}", sum.errors);
    }
    let build = BuildOptions::default();
    app.build(Some("+marts.gmv_daily"), &build).await?;

    let t = Instant::now();
    let step = b.every.as_secs().max(60) as i64;
    let mut extracts = 0u64;
    let mut now = start + step;
    while now <= clock {
        sb.sandbox.set_clock(now);
        let mut pipelines = vec!["orders"];
        if now % 3600 < step {
            pipelines.extend(["products", "return_refund"]);
        }
        for p in pipelines {
            let sum = app.extract(now + 1, None, Some(p)).await?;
            anyhow::ensure!(sum.errors.is_empty(), "extract at {now}: {:?}", sum.errors);
            extracts += 1;
        }
        if now % DAY < step {
            app.build(Some("+marts.gmv_daily"), &build).await?;
            tracing::info!(day = (now - start) / DAY, "bench maintain: simulated day");
        }
        now += step;
    }
    let simulate_seconds = t.elapsed().as_secs_f64();

    let before = measure(&app, b.query_runs).await?;
    let t = Instant::now();
    let maintained = app.maintain(&[], &MaintainOptions::default()).await?;
    let maintain_seconds = t.elapsed().as_secs_f64();
    let after = measure(&app, b.query_runs).await?;
    // The files replaced today are only vacuumed once the retention (7 days) has passed:
    // replay a maintenance as of then, without waiting.
    let later = MaintainOptions {
        as_of_ms: Some(chrono::Utc::now().timestamp_millis() + 8 * DAY * 1000),
        ..Default::default()
    };
    app.maintain(&[], &later).await?;
    let vacuumed = measure(&app, b.query_runs).await?;
    Ok(MaintainBenchResult {
        size: b.size.clone(),
        profile: super::profile(),
        sim_days: b.sim_days,
        every_seconds: step as u64,
        extracts,
        simulate_seconds,
        tables: before
            .into_iter()
            .zip(after)
            .zip(vacuumed)
            .map(|(((t, x), (_, y)), (_, z))| (t, x, y, z))
            .collect(),
        maintain_seconds,
        tables_maintained: maintained.len(),
    })
    .and_then(|r| {
        write_results(&b.out, &r)?;
        Ok(r)
    })
}
