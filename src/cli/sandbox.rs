//! `shoplake sandbox`: the simulated TikTok Shop API, deterministic from `--seed`. Also the
//! data size options the demo and the benchmarks share.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use tracing::info;

use shoplake_sandbox::{self as sandbox, DataConfig, SandboxConfig};

use super::shutdown_signal;

/// `shoplake sandbox` options.
#[derive(Args)]
pub struct SandboxArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub addr: std::net::SocketAddr,
    /// Seed: the same seed always gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of shops (regions US, GB, ID, TH, VN, MY, SG, PH in turn).
    #[arg(long, default_value_t = 3)]
    pub shops: usize,
    /// Orders over all shops.
    #[arg(long, default_value_t = 100_000)]
    pub orders: usize,
    /// Days of history before the data clock.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Data clock (RFC 3339): the simulated "now"; history ends here.
    #[arg(long, default_value = "2026-11-01T00:00:00Z")]
    pub clock: chrono::DateTime<chrono::Utc>,
    /// App key the sandbox accepts.
    #[arg(long, default_value = sandbox::DEFAULT_APP_KEY)]
    pub app_key: String,
    /// App secret the sandbox verifies signatures with.
    #[arg(long, env = "SHOPLAKE_SANDBOX_APP_SECRET", default_value = sandbox::DEFAULT_APP_SECRET, hide_default_value = true)]
    pub app_secret: String,
    /// Authorization code the token endpoint accepts.
    #[arg(long, default_value = sandbox::DEFAULT_AUTH_CODE)]
    pub auth_code: String,
    /// Access token lifetime, e.g. 30s to exercise refresh.
    #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,
    /// Requests per second per endpoint before HTTP 429 (0 = no limit).
    #[arg(long, default_value_t = 50.0)]
    pub rps: f64,
    /// Share of requests that get a fault (0.0–1.0): a 5xx, a timeout, a 429, a cut-off
    /// body, a page repeating the previous page's tail, or a revoked token.
    #[arg(long, default_value_t = 0.0)]
    pub faults: f64,
    /// Schema drift in Order Search: an unknown field, a dropped optional field, numbers
    /// sent as strings.
    #[arg(long)]
    pub drift: bool,
    /// How long an injected timeout hangs.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub fault_delay: Duration,
}

/// How much data a generated sandbox holds (`shoplake demo`, `bench build`, `bench jobs`;
/// in results files, flattened into them).
#[derive(Args, Clone, Debug, Serialize)]
pub struct SizeArgs {
    /// Shops.
    #[arg(long, default_value_t = 3)]
    pub shops: usize,
    /// Orders over all shops.
    #[arg(long, default_value_t = 100_000)]
    pub orders: usize,
    /// Days of history.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

pub async fn run(a: SandboxArgs) -> Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.faults),
        "--faults must be between 0.0 and 1.0, got {}",
        a.faults
    );
    anyhow::ensure!(a.rps >= 0.0, "--rps must be ≥ 0, got {}", a.rps);
    let addr = a.addr;
    let config = sandbox_config(a);
    let t = std::time::Instant::now();
    let sb = Arc::new(tokio::task::spawn_blocking(move || sandbox::Sandbox::new(config)).await?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    info!(
        addr = %listener.local_addr()?,
        shops = sb.data.shops.len(),
        orders = sb.data.orders.len(),
        products = sb.data.products.len(),
        generated_ms = t.elapsed().as_millis() as u64,
        app_key = %sb.config.app_key,
        auth_code = %sb.config.auth_code,
        "sandbox listening"
    );
    sandbox::serve(sb, listener, shutdown_signal()).await?;
    info!("sandbox stopped");
    Ok(())
}

fn sandbox_config(a: SandboxArgs) -> SandboxConfig {
    SandboxConfig {
        data: DataConfig {
            seed: a.seed,
            shops: a.shops,
            orders: a.orders,
            days: a.days,
            clock: a.clock.timestamp(),
        },
        app_key: a.app_key,
        app_secret: a.app_secret,
        auth_code: a.auth_code,
        token_ttl: a.token_ttl,
        rps: a.rps,
        faults: a.faults,
        fault_delay: a.fault_delay,
        drift: a.drift.then(sandbox::drift::Drift::default),
        ..SandboxConfig::default()
    }
}
