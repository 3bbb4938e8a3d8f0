//! shoplake: the TikTok Shop seller API as an analytical warehouse.
//!
//! # Layout
//! Data flows one way: `api` → `pipeline` → `warehouse` → `models` → `serve`.
//! - [`app`]: wiring of the stages for the CLI (config → client, lake, models, server).
//! - [`demo`]: `shoplake demo` (sandbox → backfill → build → test → serve).
//! - [`files`]: listing project files (pipelines, schemas, models, seeds).
//! - [`api`]: signing, OAuth tokens, the one request path (envelope, retries, rate limit)
//!   and the one paginator.
//! - [`pipeline`]: pipeline/schema specs, the one extract loop, run state.
//! - [`warehouse`]: the Delta lake (one writer) and its DataFusion catalog.
//! - [`models`]: SQL models (`sql/`) → DAG → DataFusion → Delta; data tests.
//! - [`sandbox`]: the simulated TikTok Shop API every test and the demo run against.
//! - [`serve`]: Flight SQL over the lake.
//! - [`config`]: `shoplake.toml` + `SHOPLAKE_*` env, validated once.
//! - [`region`]: region → currency and time zone (shop-local dates).
//! - [`secret`]: a string type that never prints.
//! - [`bench`]: measured numbers (`shoplake bench`), written to results files.
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod bench;
pub mod config;
pub mod demo;
pub mod files;
pub mod jobs;
pub mod models;
pub mod pipeline;
pub mod region;
pub mod sandbox;
pub mod secret;
pub mod serve;
pub mod warehouse;
