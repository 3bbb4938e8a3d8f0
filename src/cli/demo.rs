//! `shoplake demo`: the whole path on one machine — an in-process sandbox, authorization,
//! a backfill of its full history, the model build and data tests — then Flight SQL.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use shoplake::api::ClientConfig;
use shoplake::api::auth::exchange_and_store;
use shoplake::app::{App, AppError, Result};
use shoplake::config::Config;
use shoplake_sandbox::{self as sandbox, DataConfig, RunningSandbox, SandboxConfig};

/// Demo size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DemoSpec {
    /// Shops.
    pub shops: usize,
    /// Orders over all shops.
    pub orders: usize,
    /// Days of history.
    pub days: u32,
    /// Seed.
    pub seed: u64,
}

/// What the demo did, with timings.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Sandbox generation.
    pub generate_secs: f64,
    /// Backfill.
    pub backfill_secs: f64,
    /// Model build.
    pub build_secs: f64,
    /// Data tests.
    pub test_secs: f64,
    /// Rows landed in raw tables.
    pub rows: u64,
    /// Windows landed.
    pub windows: usize,
    /// API requests made.
    pub requests: u64,
    /// Models built.
    pub models: usize,
    /// Data tests run / failed.
    pub tests: usize,
    /// Failed data tests.
    pub tests_failed: usize,
}

/// Starts the sandbox, authorizes, backfills, builds and tests. Returns the app (pointed
/// at the sandbox), the running sandbox and a report.
pub async fn run(
    config: Config,
    data_dir: &Path,
    spec: &DemoSpec,
) -> Result<(App, RunningSandbox, DemoReport)> {
    // A data dir holds one demo dataset: refuse to mix seeds in one lake.
    let marker = data_dir.join("state").join("demo.json");
    if let Ok(b) = std::fs::read(&marker)
        && let Ok(prev) = serde_json::from_slice::<DemoSpec>(&b)
        && &prev != spec
    {
        return Err(AppError::Other(format!(
            "{} holds a demo built with {prev:?}; use another --data-dir for {spec:?} (nothing was changed)",
            data_dir.display()
        )));
    }
    let t = Instant::now();
    let sb_cfg = SandboxConfig {
        data: DataConfig {
            seed: spec.seed,
            shops: spec.shops,
            orders: spec.orders,
            days: spec.days,
            clock: sandbox::DEFAULT_CLOCK,
        },
        // The demo shows the pipeline, not rate limiting: `shoplake bench` measures that.
        rps: 0.0,
        ..SandboxConfig::default()
    };
    let sb = sandbox::spawn(sb_cfg.clone(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| AppError::Other(format!("starting the sandbox: {e}")))?;
    let generate_secs = t.elapsed().as_secs_f64();
    tracing::info!(url = %sb.base_url(), orders = spec.orders, shops = spec.shops, "sandbox up");
    let mut cc = ClientConfig::for_base(&sb.base_url(), &sb_cfg.app_key, &sb_cfg.app_secret)?;
    cc.max_rps = 0.0;
    let app = App::new(config, data_dir)?.with_client_config(cc);
    let client = app.client()?;
    exchange_and_store(&client, &sb_cfg.auth_code).await?;
    std::fs::create_dir_all(marker.parent().expect("state dir"))
        .and_then(|_| std::fs::write(&marker, serde_json::to_vec(spec).expect("spec serializes")))
        .map_err(|e| AppError::Other(format!("{}: {e}", marker.display())))?;

    let t = Instant::now();
    let clock = sandbox::DEFAULT_CLOCK;
    let from = clock - (spec.days as i64 + 2) * 86_400;
    let sum = app.backfill(from, clock + 1, None, None).await?;
    if !sum.errors.is_empty() {
        return Err(AppError::Other(format!(
            "backfill failed: {}",
            sum.errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let backfill_secs = t.elapsed().as_secs_f64();
    let requests = sb.sandbox.stats().values().map(|s| s.requests).sum();

    let t = Instant::now();
    let built = app.build(None, &app.build_options()?).await?;
    let build_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let tests = app.test(None).await?;
    let test_secs = t.elapsed().as_secs_f64();
    let report = DemoReport {
        generate_secs,
        backfill_secs,
        build_secs,
        test_secs,
        rows: sum.rows,
        windows: sum.windows,
        requests,
        models: built.len(),
        tests: tests.len(),
        tests_failed: tests.iter().filter(|t| !t.passed()).count(),
    };
    for t in tests.iter().filter(|t| !t.passed()) {
        tracing::warn!(model = %t.model, test = %t.test, failures = t.failures, error = ?t.error, "data test failed");
    }
    Ok((app, sb, report))
}
