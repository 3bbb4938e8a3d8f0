//! shoplake: the TikTok Shop seller API as an analytical warehouse.
//!
//! # Layout
//! Data flows one way: `api` → `pipeline` → `warehouse` → `models` → `serve`. The
//! simulated API (`shoplake-sandbox`), the demo and the benchmarks are not in the library:
//! the first is its own crate, the others live with the binary (`src/cli/`).
//! - [`app`]: wiring of the stages for the CLI (config → client, lake, models, server).
//! - [`files`]: listing project files (pipelines, schemas, models, seeds).
//! - [`api`]: signing, OAuth tokens, the one request path (envelope, retries, rate limit)
//!   and the one paginator.
//! - [`pipeline`]: pipeline/schema specs, the one extract loop, run state.
//! - [`warehouse`]: the Delta lake (one writer) and its DataFusion catalog.
//! - [`models`]: SQL models (`sql/`) → DAG → DataFusion → Delta; data tests.
//! - [`serve`]: Flight SQL over the lake.
//! - [`export`]: a model or query to CSV, JSON, Parquet or xlsx, streamed.
//! - [`config`]: `shoplake.toml` + `SHOPLAKE_*` env, validated once.
//! - [`region`]: region → currency and time zone (shop-local dates; from `shoplake-tiktok`,
//!   shared with the sandbox).
//! - [`secret`]: a string type that never prints.
#![warn(missing_docs)]
#![deny(clippy::print_stdout)]

pub mod api;
pub mod app;
pub mod config;
pub mod duration;
pub mod export;
pub mod files;
pub mod jobs;
pub use shoplake_tiktok::region;
pub mod models;
pub mod pipeline;
pub mod secret;
pub mod serve;
pub mod warehouse;
