//! The TikTok Shop API client: one request path for every endpoint.
//!
//! - [`sign`]: HMAC-SHA256 request signing (also used by the sandbox to verify).
//! - [`auth`]: OAuth (authorize URL, code exchange, refresh) and the per-shop token store.
//! - [`client`]: common params, signing, envelope decoding into typed errors, retries with
//!   jittered backoff honouring Retry-After, the client-side rate limiter.
//! - [`paginate`]: the one paginator for `page_token` and `page_number` endpoints.
//! - [`error`]: [`ApiError`] and its predicates.
//! - [`sealed`]: token files encrypted at rest (ChaCha20-Poly1305).

pub mod auth;
pub mod client;
pub mod error;
pub mod paginate;
pub mod rate_limit;
pub mod retry;
pub mod sealed;
pub use shoplake_tiktok::sign;

pub use client::{ApiClient, ApiRequest, ApiResponse, ClientConfig, Credential};
pub use error::{ApiError, Result};
pub use paginate::{Page, PageSpec, PageStyle};
