//! Everything the commands print as tables and summaries: query results, run and backfill
//! summaries, the build and test reports, the DAG, `status`, `pipelines`, the demo report
//! and bench results. (The live progress bars are the library's: `indicatif` on stderr.)

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use clap::ValueEnum;

use shoplake::app::StatusRow;
use shoplake::jobs::JobRow;
use shoplake::jobs::backfill::Progress;
use shoplake::models::{BuildKind, BuildReport, DagNode, TestResult};
use shoplake::pipeline::Pipelines;
use shoplake::pipeline::coverage::{Coverage, Endpoint};
use shoplake::pipeline::extract::RunSummary;
use shoplake::warehouse::maintain::MaintainReport;

/// How `query` and `status` print.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Query results as a table, CSV or JSON lines.
pub fn batches(batches: &[RecordBatch], format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => writeln!(out, "{}", pretty_format_batches(batches)?)?,
        Format::Csv => {
            let mut w = arrow::csv::Writer::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    Ok(())
}

/// An extract run's summary; its failed sequences on stderr, and then an error.
pub fn run_summary(what: &str, s: &RunSummary, secs: f64) -> Result<()> {
    println!(
        "{what}: {} windows, {} rows ({} inserted or updated), {} pages in {secs:.1}s ({:.0} rows/s)",
        s.windows,
        s.rows,
        s.changed,
        s.pages,
        s.rows as f64 / secs.max(1e-9)
    );
    if !s.errors.is_empty() {
        for e in &s.errors {
            eprintln!("failed: {e}");
        }
        anyhow::bail!(
            "{} shop/stream sequence(s) failed; their cursors stay at the last landed window, rerun to resume",
            s.errors.len()
        );
    }
    Ok(())
}

/// `backfill --enqueue-only`: what was queued.
pub fn backfill_queued(new: u64, windows: usize, backend: &str) {
    println!(
        "queued {new} new window job(s) of {windows} on {backend}; run `shoplake worker` to process them"
    );
}

/// Where a finished backfill stands.
pub fn backfill_progress(p: &Progress, secs: f64) {
    println!(
        "backfill: {} of {} windows done, {} rows, {} pages in {secs:.1}s ({:.0} rows/s)",
        p.done,
        p.total,
        p.rows,
        p.pages,
        p.rows as f64 / secs.max(1e-9)
    );
}

/// Dead jobs, one line each on stderr.
pub fn dead_jobs(dead: &[JobRow]) {
    for d in dead {
        eprintln!(
            "dead job {} {}: {}",
            d.id,
            d.key.as_deref().unwrap_or("-"),
            d.last_error().unwrap_or_default()
        );
    }
}

/// One line per model built, and the total.
pub fn build_reports(reports: &[BuildReport], wall: std::time::Duration) {
    for r in reports {
        let how = match r.kind {
            BuildKind::Incremental => format!("incremental, {} windows", r.windows),
            other => other.to_string(),
        };
        println!(
            "built {:<36} {:>9} rows  {:>6} ms  ({how})",
            r.model, r.rows, r.millis
        );
    }
    println!("{} models in {:.2}s", reports.len(), wall.as_secs_f64());
}

/// One line per table maintained: files and bytes before and after, and the totals.
pub fn maintain_reports(reports: &[MaintainReport], dry_run: bool) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    for r in reports {
        let what = if dry_run {
            format!(
                "{} partitions to compact, {} files to vacuum",
                r.before.fragmented_partitions, r.vacuumed
            )
        } else {
            format!(
                "compacted {} files into {}, vacuumed {}",
                r.compacted.0, r.compacted.1, r.vacuumed
            )
        };
        println!(
            "{:<40} {:>6} files {:>9.2} MiB -> {:>6} files {:>9.2} MiB  ({what})",
            r.table,
            r.before.files,
            mib(r.before.bytes),
            r.after.files,
            mib(r.after.bytes)
        );
    }
    let sum = |f: fn(&MaintainReport) -> u64| reports.iter().map(f).sum::<u64>();
    println!(
        "{} tables: {} files {:.2} MiB -> {} files {:.2} MiB{}",
        reports.len(),
        sum(|r| r.before.files as u64),
        mib(sum(|r| r.before.bytes)),
        sum(|r| r.after.files as u64),
        mib(sum(|r| r.after.bytes)),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
}

/// Prints the DAG; returns how many models failed to plan.
pub fn dag(nodes: &[DagNode]) -> usize {
    let mut bad = 0;
    for n in nodes {
        let plan = match &n.planned {
            Ok(cols) => format!("ok, {cols} columns"),
            Err(e) if e.starts_with("not planned") => e.clone(),
            Err(e) => {
                bad += 1;
                format!("ERROR {e}")
            }
        };
        println!(
            "layer {}  {:<36} {:<34} <- {}\n          {plan}",
            n.layer,
            n.model,
            n.materialized,
            n.inputs.join(", ")
        );
    }
    let layers = nodes.iter().map(|n| n.layer + 1).max().unwrap_or(0);
    println!("{} models in {layers} layers", nodes.len());
    bad
}

/// One line per data test, and the total; returns how many failed.
pub fn tests(results: &[TestResult]) -> usize {
    let mut failed = 0;
    for t in results {
        if t.passed() {
            println!("PASS {} {}", t.model, t.test);
        } else {
            failed += 1;
            match &t.error {
                Some(e) => println!("ERROR {} {}: {e}", t.model, t.test),
                None => println!("FAIL {} {}: {} rows", t.model, t.test, t.failures),
            }
        }
    }
    println!("{} tests, {} failed", results.len(), failed);
    failed
}

/// `status --format json`: streams, job counts and dead jobs in one document.
pub fn status_json(
    rows: &[StatusRow],
    counts: &BTreeMap<String, u64>,
    dead: &[JobRow],
) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "streams": rows,
            "jobs": counts,
            "dead_jobs": dead.iter().map(|d| serde_json::json!({
                "id": d.id, "key": d.key, "attempts": d.attempts, "last_error": d.last_error(),
            })).collect::<Vec<_>>(),
        }))?
    );
    Ok(())
}

/// `status`: a table of streams, then the queue's job counts and dead jobs.
pub fn status_table(
    rows: &[StatusRow],
    kind: &str,
    counts: &BTreeMap<String, u64>,
    dead: &[JobRow],
) {
    println!(
        "{:<22} {:<16} {:<22} {:<22} {:<7} {:>9}  last error",
        "shop", "stream", "cursor", "last run", "status", "rows"
    );
    for r in rows {
        let (status, note) = status_note(r);
        println!(
            "{:<22} {:<16} {:<22} {:<22} {:<7} {:>9}  {}",
            r.shop,
            r.stream,
            r.cursor.as_deref().unwrap_or("-"),
            r.last_run.as_deref().unwrap_or("-"),
            status,
            r.rows,
            note
        );
    }
    println!(
        "\njobs ({}): {}",
        kind,
        counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for d in dead {
        println!(
            "dead {} {} after {} attempts: {}",
            d.id,
            d.key.as_deref().unwrap_or("-"),
            d.attempts,
            d.last_error().unwrap_or_default()
        );
    }
    if !dead.is_empty() {
        println!("(`shoplake retry` requeues them; `shoplake retry ID` one)");
    }
}

/// A stream's status column and note. A gap: windows landed beyond the cursor while one
/// before them has not; the next run starts at the cursor and fills it.
fn status_note(r: &StatusRow) -> (String, String) {
    match &r.gap_until {
        Some(g) => (
            "gap".to_string(),
            format!(
                "windows landed up to {g} beyond the cursor; the next run fills the gap{}",
                r.last_error
                    .as_deref()
                    .map(|e| format!("; {e}"))
                    .unwrap_or_default()
            ),
        ),
        None => (r.status.clone(), r.last_error.clone().unwrap_or_default()),
    }
}

/// `pipelines`: every stream, then the endpoints deliberately not extracted.
pub fn pipelines(p: &Pipelines) {
    println!(
        "{:<14} {:<16} {:<12} {:<8} {:<52} tables",
        "category", "stream", "kind", "schedule", "endpoint"
    );
    for s in &p.streams {
        println!(
            "{:<14} {:<16} {:<12} {:<8} {:<52} {}",
            s.category,
            s.name,
            s.kind.name(),
            match (&s.schedule, s.enabled) {
                (_, false) => "off".to_string(),
                (Some(x), true) => x.clone(),
                (None, true) => "parent".into(),
            },
            format!("{} {}", s.method, s.path),
            s.tables.join(", ")
        );
    }
    for n in &p.not_extracted {
        println!("not extracted: {} ({})", n.path, n.reason);
    }
}

/// `pipelines --coverage`: per category, then the endpoints off by default and missing.
pub fn coverage(p: &Pipelines, rows: &[(Endpoint, Coverage)]) {
    println!(
        "{:<22} {:>9} {:>9} {:>8}",
        "category", "extracted", "excluded", "missing"
    );
    let mut total = (0, 0, 0);
    for (c, (x, e, m)) in shoplake::pipeline::coverage::summary(rows) {
        println!("{c:<22} {x:>9} {e:>9} {m:>8}");
        total = (total.0 + x, total.1 + e, total.2 + m);
    }
    println!(
        "{:<22} {:>9} {:>9} {:>8}",
        "total", total.0, total.1, total.2
    );
    for (e, c) in rows {
        if let Coverage::Extracted(name) = c
            && p.streams.iter().any(|s| &s.name == name && !s.enabled)
        {
            println!(
                "off by default: {:<13} {} {} (stream {name}; enabled = true in its pipeline file)",
                e.category, e.method, e.path
            );
        }
        if c == &Coverage::Missing {
            println!(
                "missing: {:<20} {} {} ({})",
                e.category, e.method, e.path, e.name
            );
        }
    }
}

/// `demo`: what each phase did and how long it took, and how to query the result.
#[cfg(feature = "sandbox")]
pub fn demo_report(
    spec: &super::demo::DemoSpec,
    r: &super::demo::DemoReport,
    total_secs: f64,
    app: &shoplake::app::App,
    data_dir: &std::path::Path,
) {
    println!(
        "sandbox: {} shops, {} orders, {} days (seed {}) generated in {:.1}s",
        spec.shops, spec.orders, spec.days, spec.seed, r.generate_secs
    );
    println!(
        "backfill: {} windows, {} rows, {} API requests in {:.1}s ({:.0} rows/s)",
        r.windows,
        r.rows,
        r.requests,
        r.backfill_secs,
        r.rows as f64 / r.backfill_secs.max(1e-9)
    );
    println!("build: {} models in {:.1}s", r.models, r.build_secs);
    println!(
        "test: {} data tests, {} failed, in {:.1}s",
        r.tests, r.tests_failed, r.test_secs
    );
    println!("total: {total_secs:.1}s");
    println!("lake: {}", app.lake.root());
    println!(
        "try: shoplake --data-dir {} query \"select * from marts.gmv_daily order by order_date desc limit 5\"",
        data_dir.display()
    );
}

/// `demo`: how to connect to its Flight SQL server.
#[cfg(feature = "sandbox")]
pub fn demo_connect(addr: &str) {
    println!(
        "connect: ADBC/Python `adbc_driver_flightsql.dbapi.connect(\"grpc://{addr}\")`, DBeaver `jdbc:arrow-flight-sql://{addr}/?useEncryption=false`"
    );
}

/// `bench …`: the results (as written to `out`), and where they went.
#[cfg(feature = "sandbox")]
pub fn bench_results(r: &impl serde::Serialize, out: &std::path::Path) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(r)?);
    println!("results written to {}", out.display());
    Ok(())
}
