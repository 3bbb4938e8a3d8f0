//! Extraction: pipeline specs (`pipelines/*.toml`), raw schemas (`schemas/*.toml`), the one
//! extract loop (stream → pages → typed batches → Delta, cursor in the same commit) and
//! run state for `shoplake status`.
//!
//! - [`spec`]: streams as data.
//! - [`schema`]: raw table schemas.
//! - [`convert`]: JSON records → Arrow batches (`_extra` keeps unknown fields).
//! - [`extract`]: windows, pages, detail calls, commits; backfill and incremental runs.
//! - [`state`]: last run, rows and last error per shop and stream.
//! - [`coverage`]: which catalog endpoints the streams extract, exclude or miss.

pub mod convert;
pub mod coverage;
pub mod extract;
pub mod plan;
pub mod schema;
pub mod spec;
pub mod state;
pub mod upgrade;

pub use extract::{Extractor, Shop, Window, WindowReport};
pub use plan::{Plan, Planner, Start};
pub use spec::{Pipelines, StreamSpec};

/// Pipeline errors carry shop, stream and window.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A pipeline or schema file is invalid.
    #[error("{file}: {message}")]
    Spec {
        /// File.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// `--pipeline` names nothing.
    #[error("unknown pipeline `{name}`; known: {known}")]
    UnknownPipeline {
        /// Given name.
        name: String,
        /// Known categories and streams.
        known: String,
    },
    /// An authorized shop's region is not in the region table.
    #[error(
        "shop {shop} is in region {region}, which shoplake's region table (crates/shoplake-tiktok/src/region.rs) does not know: its local dates and partitions cannot be computed. Add the region (currency, time zone), or leave the shop out with [api] shops"
    )]
    UnknownRegion {
        /// Shop name and id.
        shop: String,
        /// The region code the API reported.
        region: String,
    },
    /// `--shop` names no authorized shop.
    #[error(
        "unknown shop `{name}`; authorized shops: {known} (run `shoplake auth exchange` to add one)"
    )]
    UnknownShop {
        /// Given name.
        name: String,
        /// Known shops.
        known: String,
    },
    /// A window failed; nothing of it was committed and the cursor did not move.
    #[error("shop {shop} stream {stream} window {window}: {source}")]
    Window {
        /// Shop id.
        shop: String,
        /// Stream.
        stream: String,
        /// `from..to` (UTC).
        window: String,
        /// Cause.
        #[source]
        source: Box<PipelineError>,
    },
    /// The API failed (after retries).
    #[error(transparent)]
    Api(#[from] crate::api::ApiError),
    /// A record could not be converted.
    #[error("page {page} (request {request_id}): {source}")]
    Convert {
        /// Page index.
        page: u32,
        /// Request id of the page.
        request_id: String,
        /// Cause.
        source: convert::ConvertError,
    },
    /// Writing to the lake failed.
    #[error(transparent)]
    Warehouse(#[from] crate::warehouse::WarehouseError),
    /// Run state could not be saved.
    #[error("run state {path}: {message}")]
    State {
        /// File.
        path: String,
        /// Why.
        message: String,
    },
    /// The window holds more records than `max_records`; the caller splits it.
    #[error("window holds {total} records, more than max_records {max}")]
    WindowTooLarge {
        /// `total_count` of the first page.
        total: u64,
        /// The stream's `max_records`.
        max: u64,
    },
    /// Invalid arguments (dates out of order …).
    #[error("{0}")]
    Invalid(String),
    /// Shutting down: the window was abandoned before its commit; nothing of it was
    /// written and it runs again later.
    #[error("abandoned before commit: shutting down")]
    Cancelled,
    /// The job's lease expired (another worker may run the same window now): the window
    /// stopped before its commit, nothing of it was written, and the job runs again.
    #[error("abandoned before commit: the job's lease was lost (another worker may hold it)")]
    LeaseLost,
}

impl std::error::Error for convert::ConvertError {}

/// The `*.toml` files of `dir`, sorted; `what` names the directory in errors.
pub(crate) fn toml_files(dir: &std::path::Path, what: &str) -> Result<Vec<std::path::PathBuf>> {
    crate::files::with_extension(dir, "toml").map_err(|e| PipelineError::Spec {
        file: dir.display().to_string(),
        message: format!("cannot read the {what} directory: {e}"),
    })
}

/// Result with [`PipelineError`].
pub type Result<T> = std::result::Result<T, PipelineError>;
