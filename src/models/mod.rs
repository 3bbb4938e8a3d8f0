//! SQL models: every `.sql` file under `sql/staging/` and `sql/marts/` is one model named
//! after its file (`staging.stg_order_lines`, `marts.gmv_daily`). A leading comment block
//! documents it and holds its config:
//!
//! ```sql
//! -- materialized: table
//! -- partition_by: shop_id
//! -- tests: not_null(shop_id), unique(shop_id, order_date)
//! -- tests: accepted_values(currency, ['USD', 'GBP'])
//! ```
//!
//! Dependencies are the tables a query references (resolved by DataFusion's parser, CTEs
//! excluded); models run in topological order and each lands as a Delta table through the
//! warehouse's one writer. A SQL error names the file and line.
//!
//! - [`dag`]: loading, config, dependencies, order, selection.
//! - [`run`]: building models (independent ones in parallel) and running data tests.
//! - [`docs`]: the Markdown catalog of every table.
//! - [`incremental`]: rebuilding only the windows whose inputs changed.

pub mod dag;
pub mod docs;
pub mod incremental;
pub mod run;

pub use dag::{DataTest, Materialized, Model, ModelConfig, Project, SqlTest};
pub use run::{BuildKind, BuildOptions, BuildReport, DagNode, TestResult, build, dry_run, test};

/// Model errors name the file (and line when known).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// SQL that does not parse or plan.
    #[error("{file}:{line}: {message}")]
    Sql {
        /// Model file.
        file: String,
        /// 1-based line (the first line when unknown).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Invalid config comment, unknown selection, cycle …
    #[error("{file}: {message}")]
    Config {
        /// File (or `sql/`).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Execution failed.
    #[error("model {model}: {message}")]
    Run {
        /// Model.
        model: String,
        /// What failed.
        message: String,
    },
    /// Several models failed (the message lists them and what was skipped).
    #[error("{failed} model(s) failed: {message}")]
    Failed {
        /// Models that failed.
        failed: usize,
        /// Each failure; the models skipped downstream.
        message: String,
    },
    /// Writing the result failed.
    #[error(transparent)]
    Warehouse(#[from] crate::warehouse::WarehouseError),
}

/// Result with [`ModelError`].
pub type Result<T> = std::result::Result<T, ModelError>;
