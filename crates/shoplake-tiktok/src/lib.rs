//! What the shoplake client and its sandbox share of the TikTok Shop API, and nothing
//! else: the sandbox never reaches into the client's internals, and the client never links
//! the simulator.
//!
//! - [`sign`]: HMAC-SHA256 request and webhook signing (the client signs, the sandbox
//!   verifies, with the same function).
//! - [`region`]: region → currency, minor units and time zone (shop-local dates).
//! - [`SANDBOX_APP_KEY`] / [`SANDBOX_APP_SECRET`]: the credentials the sandbox accepts and
//!   the client's config defaults to.
#![warn(missing_docs)]

pub mod region;
pub mod sign;

/// App key the sandbox accepts (the config default, so `shoplake demo` needs no setup).
pub const SANDBOX_APP_KEY: &str = "sandbox_app_key";
/// App secret the sandbox accepts by default.
pub const SANDBOX_APP_SECRET: &str = "sandbox_app_secret";
