//! `shoplake bench flight`: latency of the shipped dashboard queries over Flight SQL
//! (p50/p95 of N runs each, client and server in one process on loopback, the query
//! planned and streamed exactly as Grafana's plugin does it: GetFlightInfo then DoGet),
//! and the throughput of one large result streamed to the client.

use std::path::PathBuf;
use std::time::Instant;

use arrow_flight::sql::client::FlightSqlServiceClient;
use clap::Args;
use futures::TryStreamExt;
use serde::Serialize;

use shoplake::app::App;
use shoplake::serve::access::{Credential, User};
use shoplake::serve::{Access, AuditLog, Limits, ServeOptions, all_schemas};

use super::{profile, write_results};

/// Bench parameters.
#[derive(Debug, Clone, Args)]
pub struct FlightBench {
    /// Runs per dashboard query.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// The large result to stream.
    #[arg(long, default_value = "select * from raw.order_line_items")]
    pub large_sql: String,
    /// Results file.
    #[arg(long, default_value = "bench/results/flight.json")]
    pub out: PathBuf,
}

/// One query's latency distribution.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Panel title.
    pub query: String,
    /// Rows returned.
    pub rows: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// The large-result measurement.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// SQL streamed.
    pub sql: String,
    /// Rows received.
    pub rows: usize,
    /// Arrow bytes received (each batch's slice of its buffers).
    pub bytes: usize,
    /// Seconds for the best of 3 runs.
    pub seconds: f64,
    /// Rows per second.
    pub rows_per_second: f64,
    /// MiB per second.
    pub mib_per_second: f64,
}

/// Everything measured.
#[derive(Debug, Serialize)]
pub struct FlightBenchResult {
    /// Runs per query.
    pub runs: usize,
    /// Per dashboard query.
    pub queries: Vec<Latency>,
    /// p95 over all dashboard runs together, ms.
    pub all_p95_ms: f64,
    /// The large result.
    pub large: Throughput,
    /// Build profile.
    pub profile: &'static str,
}

type Client = FlightSqlServiceClient<tonic::transport::Channel>;

async fn run_once(c: &mut Client, sql: &str) -> anyhow::Result<(usize, usize)> {
    let info = c.execute(sql.to_string(), None).await?;
    let ticket = info
        .endpoint
        .first()
        .and_then(|e| e.ticket.clone())
        .ok_or_else(|| anyhow::anyhow!("no ticket for {sql}"))?;
    let batches: Vec<_> = c.do_get(ticket).await?.try_collect().await?;
    Ok((
        batches.iter().map(|b| b.num_rows()).sum(),
        batches
            .iter()
            .map(shoplake::serve::audit::batch_bytes)
            .sum(),
    ))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the bench against `app`'s lake (build the demo first: `shoplake demo --no-serve`).
pub async fn run_flight_bench(app: &App, b: &FlightBench) -> anyhow::Result<FlightBenchResult> {
    let dir = app.project.join("deploy/grafana/dashboards");
    let queries = shoplake::serve::dashboards::grafana_queries(
        &dir,
        "1970-01-01T00:00:00Z",
        "2100-01-01T00:00:00Z",
    )
    .map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        !queries.is_empty(),
        "no dashboard queries in {}",
        dir.display()
    );
    // The server as deployed: an analyst user (role checks, audit) with default limits.
    let password = hex::encode(rand::random::<[u8; 16]>());
    let user = User {
        name: "bench".into(),
        role: "analyst".into(),
        schemas: ["marts", "seeds"].map(String::from).into_iter().collect(),
        credential: Credential::Plain(shoplake::secret::Secret::new(password.clone())),
    };
    let opts = ServeOptions {
        access: Access::new(vec![user], all_schemas()),
        limits: Limits::default(),
        audit: AuditLog::tracing_only(),
        tls: None,
    };
    let server =
        shoplake::serve::spawn(&app.lake, Some(&app.seeds_dir()), "127.0.0.1:0", opts).await?;
    let mut c = connect(server.addr).await?;
    c.handshake("bench", &password).await?;
    let mut out = Vec::new();
    let mut all = Vec::new();
    for q in &queries {
        out.push(latency(&mut c, &q.title, &q.sql, b.runs, &mut all).await?);
    }
    all.sort_by(f64::total_cmp);

    // The large result needs raw access: anonymous server for this part.
    server.stop().await;
    let server = shoplake::serve::spawn(
        &app.lake,
        Some(&app.seeds_dir()),
        "127.0.0.1:0",
        ServeOptions::open(),
    )
    .await?;
    let large = throughput(&mut connect(server.addr).await?, &b.large_sql).await?;
    server.stop().await;
    let result = FlightBenchResult {
        runs: b.runs,
        queries: out,
        all_p95_ms: percentile(&all, 0.95),
        large,
        profile: profile(),
    };
    write_results(&b.out, &result)?;
    Ok(result)
}

/// A Flight SQL client of the server at `addr`.
async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Client> {
    let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    Ok(FlightSqlServiceClient::new(ch))
}

/// One dashboard query: 5 warm-up runs, then `runs` timed ones (their milliseconds also
/// go to `all`).
async fn latency(
    c: &mut Client,
    title: &str,
    sql: &str,
    runs: usize,
    all: &mut Vec<f64>,
) -> anyhow::Result<Latency> {
    let mut rows = 0;
    for _ in 0..5 {
        rows = run_once(c, sql)
            .await
            .map_err(|e| anyhow::anyhow!("{title}: {e} (is the demo warehouse built?)"))?
            .0;
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        run_once(c, sql).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    all.extend_from_slice(&ms);
    ms.sort_by(f64::total_cmp);
    Ok(Latency {
        query: title.to_string(),
        rows,
        p50_ms: percentile(&ms, 0.5),
        p95_ms: percentile(&ms, 0.95),
        max_ms: *ms.last().unwrap_or(&0.0),
    })
}

/// The large result streamed 3 times; the best run counts.
async fn throughput(c: &mut Client, sql: &str) -> anyhow::Result<Throughput> {
    let mut best = f64::MAX;
    let (mut rows, mut bytes) = (0, 0);
    for _ in 0..3 {
        let t = Instant::now();
        (rows, bytes) = run_once(c, sql).await?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(Throughput {
        sql: sql.to_string(),
        rows,
        bytes,
        seconds: best,
        rows_per_second: rows as f64 / best.max(1e-9),
        mib_per_second: bytes as f64 / (1024.0 * 1024.0) / best.max(1e-9),
    })
}
