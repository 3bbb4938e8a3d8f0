//! The lake: Delta tables under one root, addressed as `raw.<stream>`,
//! `staging.<model>`, `marts.<model>`.
//!
//! - [`delta`]: the one writer (upsert with the cursor in the same commit; replace).
//! - [`catalog`]: registers every table in a DataFusion session as catalog `shoplake`.
//! - `store`: the one object store under every read, listing and commit (local disk,
//!   S3, GCS, Azure), with Delta commits made atomic by conditional writes.

pub mod catalog;
pub mod columns;
pub mod delta;
pub mod maintain;
mod store;
pub mod table;

pub use delta::{CursorMove, Lake, UpsertSpec, WriteMetrics};
pub use store::StorageOptions;
pub use table::{Layer, Table, TableRef};

/// The three schemas of the lake.
pub const SCHEMAS: [&str; 3] = ["raw", "staging", "marts"];

/// Warehouse errors name the table.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// A Delta operation failed.
    #[error("delta table {schema}.{table}: {source}")]
    Delta {
        /// Schema.
        schema: String,
        /// Table.
        table: String,
        /// Cause.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// The lake URI is unusable.
    #[error("warehouse uri `{uri}`: {message} (set [warehouse] uri, e.g. `./shoplake-data/lake`)")]
    Uri {
        /// The URI.
        uri: String,
        /// Why.
        message: String,
    },
    /// Arrow error while preparing data.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// DataFusion error while planning or running a read of the lake.
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A write was asked for something it cannot do (a merge without keys).
    #[error("{0}")]
    Invalid(String),
    /// Table maintenance could not run.
    #[error("maintain: {0}")]
    Maintain(String),
    /// Reading or writing a file of the lake's storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A snapshot would delete more of a shop's rows than `[extract] max_snapshot_delete`
    /// allows; nothing was written.
    #[error(
        "{schema}.{table}: the snapshot of shop {shop} would delete {deleting} of its {of} rows, more than max_snapshot_delete = {max}; nothing was written (an incomplete API answer is likelier than a seller removing that much — if the deletion is real, set [extract] max_snapshot_delete = 1 for one run)"
    )]
    SnapshotDeletes {
        /// Schema.
        schema: String,
        /// Table.
        table: String,
        /// Shop id.
        shop: String,
        /// Rows the snapshot would delete.
        deleting: usize,
        /// The shop's stored rows.
        of: usize,
        /// The allowed share.
        max: f64,
    },
}

impl WarehouseError {
    fn delta(schema: &str, table: &str, e: deltalake::DeltaTableError) -> WarehouseError {
        WarehouseError::Delta {
            schema: schema.to_string(),
            table: table.to_string(),
            source: Box::new(e),
        }
    }
}

/// Result with [`WarehouseError`].
pub type Result<T> = std::result::Result<T, WarehouseError>;
