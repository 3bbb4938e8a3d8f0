//! Unattended work on apalis: extract windows, model builds and data tests as queued jobs,
//! a cron producer that enqueues them from the pipelines' schedules, and workers that run
//! them — in one process on SQLite (`shoplake run`) or as many processes sharing one
//! Postgres queue (`shoplake scheduler` + `shoplake worker`).
//!
//! - [`queue`]: the apalis storage plus the shared rate limit, leases and scheduler state.
//! - [`schedule`]: schedules (`15m`, or cron in the shop's time zone) and the producer that
//!   turns a clock reading into jobs.
//! - [`worker`]: the job handler (it only schedules and calls the pipeline, the model
//!   runner and the tests) and the worker loop with retries and graceful shutdown.
//! - [`metrics`]: Prometheus text for `/metrics`.
//! - [`backfill`]: a date range as one job per shop × stream × window, and its progress.
//! - [`service`]: the `worker`, `scheduler` and `run` processes.
//!
//! Handlers hold no extract logic: a job names a shop, a stream and a window, and
//! [`crate::pipeline::Extractor`] does the rest exactly as `shoplake backfill` would.

pub mod backfill;
pub mod metrics;
pub mod queue;
pub mod schedule;
pub mod service;
pub mod worker;

use serde::{Deserialize, Serialize};

pub use queue::{JobRow, Queue};
pub use schedule::{Producer, Schedule};
pub use worker::Runtime;

/// A unit of queued work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Land `[from, to)` of one stream for one shop (its detail streams ride along).
    /// `from = None`: from the stream's committed cursor (scheduled runs).
    ExtractWindow {
        /// Shop id.
        shop: String,
        /// Top-level stream.
        stream: String,
        /// Start (unix seconds), or the cursor.
        from: Option<i64>,
        /// End (unix seconds, exclusive).
        to: i64,
        /// Distinguishes a forced re-run of a finished window (`--force`); empty otherwise.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        run: String,
        /// Start of the backfill this window belongs to: with no cursor stored, only the
        /// window starting there begins one (a later window landing first is recorded
        /// beyond the gap). `None` for jobs queued before it existed: the window's start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<i64>,
    },
    /// Build models (all when `select` is `None`) after the extracts of `after` landed.
    BuildModels {
        /// `--select` expression.
        select: Option<String>,
        /// The tick or backfill this build follows.
        after: String,
    },
    /// Run data tests after a build.
    RunDataTests {
        /// `--select` expression.
        select: Option<String>,
        /// The tick or backfill.
        after: String,
    },
    /// Compact, checkpoint and vacuum every table (`shoplake maintain`).
    Maintain {
        /// The scheduled time (unix seconds) this maintenance is for.
        at: i64,
    },
}

impl Job {
    /// The idempotency key: the same window (or build) is queued once.
    pub fn key(&self) -> String {
        match self {
            Job::ExtractWindow {
                shop,
                stream,
                from,
                to,
                run,
                ..
            } => {
                let from = from.map_or("cursor".to_string(), |f| f.to_string());
                let run = if run.is_empty() {
                    String::new()
                } else {
                    format!("/{run}")
                };
                format!("extract/{shop}/{stream}/{from}/{to}{run}")
            }
            Job::BuildModels { after, .. } => format!("build/{after}"),
            Job::RunDataTests { after, .. } => format!("test/{after}"),
            Job::Maintain { at } => format!("maintain/{at}"),
        }
    }

    /// `extract`, `build`, `test` or `maintain` (metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            Job::ExtractWindow { .. } => "extract",
            Job::BuildModels { .. } => "build",
            Job::RunDataTests { .. } => "test",
            Job::Maintain { .. } => "maintain",
        }
    }
}

/// What a job did; stored by apalis as the job's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Windows landed (extract).
    pub windows: u64,
    /// Rows fetched and merged, or rows built.
    pub rows: u64,
    /// Pages fetched.
    pub pages: u64,
    /// Models built or tests run.
    pub models: u64,
}

/// Job errors.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The queue database.
    #[error("jobs backend: {0}")]
    Backend(String),
    /// The job itself.
    #[error("{0}")]
    Job(String),
    /// A window of the job's extract failed (the cursor stays before it).
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    /// App wiring (config, lake, shops).
    #[error(transparent)]
    App(#[from] crate::app::AppError),
}

/// Result with [`JobError`].
pub type Result<T> = std::result::Result<T, JobError>;
