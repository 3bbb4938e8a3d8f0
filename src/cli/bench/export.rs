//! `shoplake bench export`: `shoplake export` of the largest mart (or `--target`) in every
//! format, each run as its own process so its peak RSS is the export's alone; beside it the
//! same process exporting one row, the floor every export pays (the binary, the runtime, a
//! session over the lake). Streaming shows as a peak near that floor however many rows go
//! out. Runs on the data dir's warehouse (`shoplake demo --no-serve` first).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use shoplake::app::App;
use shoplake::export::Format;

use super::{profile, write_results};
use crate::cli::Cli;

#[derive(Debug, Clone, Args)]
pub struct ExportBench {
    /// What to export (default: the mart with the most rows).
    #[arg(long)]
    pub target: Option<String>,
    #[arg(long, default_value = "bench/results/export.json")]
    pub out: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct ExportRun {
    pub format: String,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub peak_rss_mib: f64,
}

#[derive(Debug, Serialize)]
pub struct ExportBenchResult {
    pub target: String,
    pub rows: u64,
    /// Peak RSS of `shoplake export` writing one row (CSV): the fixed cost.
    pub one_row_peak_rss_mib: f64,
    pub runs: Vec<ExportRun>,
    pub profile: &'static str,
}

/// Rows in `table`.
async fn count_rows(app: &App, table: &str) -> Result<u64> {
    let b = app.query(&format!("select count(*) from {table}")).await?;
    Ok(b.first()
        .map(|b| {
            arrow::array::cast::as_primitive_array::<arrow::datatypes::Int64Type>(b.column(0))
                .value(0) as u64
        })
        .unwrap_or(0))
}

/// The mart with the most rows.
async fn largest_mart(app: &App) -> Result<(String, u64)> {
    let mut best = (String::new(), 0u64);
    for t in app.lake.list_tables("marts").await? {
        let table = format!("marts.{t}");
        let n = count_rows(app, &table).await?;
        if n > best.1 {
            best = (table, n);
        }
    }
    anyhow::ensure!(
        best.1 > 0,
        "no mart has rows: run `shoplake demo --no-serve` first"
    );
    Ok(best)
}

/// Runs `shoplake export ARGS` as a child and returns (seconds, peak RSS MiB).
fn child(cli: &Cli, args: &[&str]) -> Result<(f64, f64)> {
    use std::os::unix::process::ExitStatusExt;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    if let Some(c) = &cli.config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("--data-dir")
        .arg(&cli.data_dir)
        .arg("-q")
        .arg("export")
        .args(args);
    let start = Instant::now();
    let child = cmd.spawn().context("start shoplake export")?;
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; fills the status and rusage we own.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(pid > 0, "wait4: {}", std::io::Error::last_os_error());
    let st = std::process::ExitStatus::from_raw(status);
    anyhow::ensure!(st.success(), "shoplake export {args:?}: {st}");
    // ru_maxrss is in KiB on Linux.
    Ok((secs, ru.ru_maxrss as f64 / 1024.0))
}

pub async fn run_export_bench(cli: &Cli, app: &App, b: &ExportBench) -> Result<ExportBenchResult> {
    let (target, rows) = match &b.target {
        Some(t) => (t.clone(), count_rows(app, t).await?),
        None => largest_mart(app).await?,
    };
    let dir = tempfile::tempdir()?;
    let one = dir.path().join("one.csv");
    let (_, floor) = child(
        cli,
        &[
            &format!("select * from {target} limit 1"),
            "--format",
            "csv",
            "--out",
            path(&one),
        ],
    )?;
    let mut runs = Vec::new();
    for (format, ext) in [
        (Format::Csv, "csv"),
        (Format::Ndjson, "ndjson"),
        (Format::Parquet, "parquet"),
        (Format::Xlsx, "xlsx"),
    ] {
        let file = dir.path().join(format!("export.{ext}"));
        let (seconds, peak) = child(cli, &[&target, "--format", ext, "--out", path(&file)])?;
        let bytes = std::fs::metadata(&file)?.len();
        tracing::info!(?format, rows, seconds, peak, "bench export");
        runs.push(ExportRun {
            format: ext.into(),
            rows,
            bytes,
            seconds,
            rows_per_second: rows as f64 / seconds,
            peak_rss_mib: peak,
        });
    }
    let result = ExportBenchResult {
        target,
        rows,
        one_row_peak_rss_mib: floor,
        runs,
        profile: profile(),
    };
    write_results(&b.out, &result)?;
    Ok(result)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}
