//! `shoplake backfill` on the queue: one job per shop × stream × window, so a long range
//! for many shops spreads over every worker; re-running the same command resumes (a
//! window already done is not queued again) unless `--force`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{Job, JobRow, Queue, Result};
use crate::app::{App, AppError};
use crate::pipeline::Start;

/// The jobs of a backfill of `[from, to)`: the planner's windows of each shop × stream,
/// one job each, every job carrying the backfill's start as its cursor origin.
pub fn plan(
    app: &App,
    from: i64,
    to: i64,
    shop: Option<&str>,
    pipeline: Option<&str>,
    run: &str,
) -> Result<Vec<Job>> {
    if from >= to {
        return Err(super::JobError::Job(
            "--from must be before --to".to_string(),
        ));
    }
    // The pipeline name is checked before the shops: a typo is named even before any
    // shop is authorized.
    let (pipelines, _) = app.pipelines()?;
    let streams = pipelines
        .select(pipeline)
        .map_err(crate::app::AppError::from)?;
    let shops = app.shops(shop)?;
    let planner = app
        .config
        .extract_options()
        .map_err(AppError::from)?
        .planner;
    let now = chrono::Utc::now().timestamp();
    let mut jobs = Vec::new();
    for s in &shops {
        for st in &streams {
            let plan = planner
                .plan(st, Start::Range(from), to, now)
                .map_err(AppError::from)?;
            let snapshot = st.window().is_none();
            for w in plan.windows {
                jobs.push(Job::ExtractWindow {
                    shop: s.id.clone(),
                    stream: st.name.clone(),
                    // A snapshot is one listing, as of `to`.
                    from: (!snapshot).then_some(w.from),
                    to: w.to,
                    run: run.to_string(),
                    origin: plan.origin,
                });
            }
        }
    }
    Ok(jobs)
}

/// Where a backfill stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Jobs in the backfill.
    pub total: usize,
    /// Done.
    pub done: usize,
    /// Dead (failed on every run).
    pub dead: usize,
    /// Rows landed by the done ones.
    pub rows: u64,
    /// Pages fetched by the done ones.
    pub pages: u64,
}

impl Progress {
    fn of(rows: &[JobRow], total: usize) -> Progress {
        let mut p = Progress {
            total,
            ..Default::default()
        };
        for r in rows {
            if r.status == "Done" {
                p.done += 1;
                if let Some(o) = r.outcome() {
                    p.rows += o.rows;
                    p.pages += o.pages;
                }
            } else if r.is_dead() {
                p.dead += 1;
            }
        }
        p
    }

    /// Every job done or dead.
    pub fn finished(&self) -> bool {
        self.done + self.dead >= self.total
    }
}

/// Polls the queue until every job of `keys` is done or dead, with a progress bar
/// (windows done / total, rows, ETA) on a terminal and a log line every 30 s otherwise.
pub async fn wait(queue: &Queue, keys: &[String]) -> Result<(Progress, Vec<JobRow>)> {
    let pb = if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(keys.len() as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "backfill [{bar:30}] {pos}/{len} windows, {msg}, {elapsed} elapsed, ETA {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut logged = Instant::now();
    loop {
        let rows = queue.by_keys(keys).await?;
        let p = Progress::of(&rows, keys.len());
        pb.set_position((p.done + p.dead) as u64);
        pb.set_message(format!("{} rows, {} dead", p.rows, p.dead));
        if logged.elapsed() > Duration::from_secs(30) {
            tracing::info!(
                done = p.done,
                dead = p.dead,
                total = p.total,
                rows = p.rows,
                elapsed_s = started.elapsed().as_secs(),
                "backfill progress"
            );
            logged = Instant::now();
        }
        if p.finished() {
            pb.finish_and_clear();
            let dead = rows.into_iter().filter(JobRow::is_dead).collect();
            return Ok((p, dead));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
