//! The HTTP side of a running shoplake process: `/health` and `/metrics` (Prometheus
//! text). What the metrics say is supplied by the caller (`jobs::metrics`), so this
//! module stays at the end of the data flow.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// Produces the `/metrics` body on each scrape.
pub type MetricsFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// A running HTTP endpoint.
pub struct RunningHttp {
    /// Bound address.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn metrics(State(f): State<MetricsFn>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        f().await,
    )
}

/// Serves `/health`, `/metrics` and, given a receiver, `POST /webhooks/tiktok` on `addr`
/// (port 0 picks one).
pub async fn spawn(
    addr: &str,
    metrics_fn: MetricsFn,
    webhooks: Option<Arc<super::webhooks::Webhooks>>,
) -> std::io::Result<RunningHttp> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let mut app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(metrics_fn);
    if let Some(w) = webhooks {
        app = app.merge(
            Router::new()
                .route(
                    "/webhooks/tiktok",
                    axum::routing::post(super::webhooks::receive),
                )
                .with_state(w),
        );
    }
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "http endpoint stopped");
        }
    });
    Ok(RunningHttp { addr, task })
}
