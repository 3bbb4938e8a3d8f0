//! shoplake: the TikTok Shop seller API as an analytical warehouse.
//!
//! # Layout
//! Data flows one way: `api` → `pipeline` → `warehouse` → `models` → `serve`.
//! - [`api`]: signing, OAuth tokens, the one request path (envelope, retries, rate limit)
//!   and the one paginator.
//! - [`sandbox`]: the simulated TikTok Shop API every test and the demo run against.
//! - [`config`]: `shoplake.toml` + `SHOPLAKE_*` env, validated once.
//! - [`region`]: region → currency and time zone (shop-local dates).
//! - [`secret`]: a string type that never prints.
//! - [`bench`]: measured numbers (`shoplake bench`), written to results files.
#![warn(missing_docs)]

pub mod api;
pub mod bench;
pub mod config;
pub mod region;
pub mod sandbox;
pub mod secret;
