//! Serving the lake: [`flight_sql`] (Arrow Flight SQL for BI tools and notebooks), with
//! [`access`] (users, roles, tokens), [`limits`] (timeouts, memory, concurrency),
//! [`audit`] (one line per query) and [`error`] (what a call can fail with, and its gRPC
//! code), [`http`] (`/health`, `/metrics`) and [`webhooks`] (TikTok's signed event
//! deliveries).

pub mod access;
pub mod audit;
pub mod dashboards;
pub mod error;
pub mod flight_sql;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod webhooks;

use std::path::PathBuf;

pub use access::{Access, Credential, Principal, User};
pub use audit::AuditLog;
pub use error::ServeError;
pub use flight_sql::{LakeFlightSql, RunningFlight, spawn};
pub use limits::Limits;

/// Certificate and key files (PEM) for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Everything the server needs besides the lake: who may connect, the limits, where the
/// audit log goes, TLS.
#[derive(Debug)]
pub struct ServeOptions {
    /// Users and roles (no users: open, for loopback).
    pub access: Access,
    /// Per-query and server limits.
    pub limits: Limits,
    /// Audit sink.
    pub audit: AuditLog,
    /// TLS, when configured.
    pub tls: Option<TlsFiles>,
}

/// Every schema the server can expose.
pub fn all_schemas() -> Vec<String> {
    let mut v: Vec<String> = crate::warehouse::SCHEMAS
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.push("seeds".into());
    v
}

impl ServeOptions {
    /// No users, default limits, audit to tracing only, no TLS.
    pub fn open() -> ServeOptions {
        ServeOptions {
            access: Access::new(Vec::new(), all_schemas()),
            limits: Limits::default(),
            audit: AuditLog::tracing_only(),
            tls: None,
        }
    }
}
