//! `shoplake serve`: the lake over Arrow Flight SQL until Ctrl-C, with `/health` and
//! `/metrics` on its HTTP address.

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use shoplake::app::App;
use shoplake::serve::http::MetricsFn;

use super::{Cli, app, shutdown_signal};

/// `shoplake serve` options.
#[derive(Args)]
pub struct ServeArgs {
    /// Listen address (default: [serve] flight_addr, 127.0.0.1:50051).
    #[arg(long)]
    pub addr: Option<String>,
    /// `/health` and `/metrics` address (default: [serve] http_addr, 127.0.0.1:8081; ""
    /// turns them off).
    #[arg(long)]
    pub http_addr: Option<String>,
}

pub async fn run(cli: &Cli, a: &ServeArgs) -> Result<()> {
    let app = app(cli)?;
    let addr = a
        .addr
        .clone()
        .unwrap_or_else(|| app.config.serve.flight_addr.clone());
    let http = a
        .http_addr
        .clone()
        .unwrap_or_else(|| app.config.serve.http_addr.clone());
    serve_until_ctrl_c(&app, &addr, &http).await
}

/// Serves `app`'s lake on `addr` (and `/health`, `/metrics` on `http_addr` unless empty)
/// until Ctrl-C / SIGTERM (also the end of `shoplake demo`).
pub async fn serve_until_ctrl_c(app: &App, addr: &str, http_addr: &str) -> Result<()> {
    let server = app.serve(addr).await?;
    println!(
        "Flight SQL listening on grpc://{} (Ctrl-C to stop)",
        server.addr
    );
    let _http = if http_addr.is_empty() {
        None
    } else {
        let metrics = server.metrics.clone();
        let render: MetricsFn = Arc::new(move || {
            let text = metrics.render();
            Box::pin(async move { text })
        });
        let http = shoplake::serve::http::spawn(http_addr, render, None)
            .await
            .with_context(|| format!("serve.http_addr {http_addr}: cannot listen"))?;
        println!("health and metrics on http://{}/health", http.addr);
        Some(http)
    };
    shutdown_signal().await;
    server.stop().await;
    Ok(())
}
