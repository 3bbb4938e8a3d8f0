//! The `shoplake` command line: parse, load config, call into the library.

mod cli;

use std::io::Write;
use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use std::sync::Arc;
#[cfg(feature = "sandbox")]
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::info;

#[cfg(feature = "sandbox")]
use cli::demo::DemoSpec;
use shoplake::api::ApiClient;
use shoplake::api::auth::{TokenStore, authorize_url, exchange_and_store};
use shoplake::app::{App, parse_time};
use shoplake::config::Config;
use shoplake::models::{BuildKind, BuildReport, DagNode, TestResult};
use shoplake::pipeline::extract::RunSummary;
#[cfg(feature = "sandbox")]
use shoplake_sandbox::{self as sandbox, DataConfig, SandboxConfig};

/// TikTok Shop seller API → Delta Lake warehouse → Flight SQL.
#[derive(Parser)]
#[command(name = "shoplake", version, about)]
struct Cli {
    /// Config file (default: ./shoplake.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory: lake/, state/, secrets/.
    #[arg(
        long,
        global = true,
        default_value = "./shoplake-data",
        env = "SHOPLAKE_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More logs (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the simulated TikTok Shop API (deterministic from --seed).
    #[cfg(feature = "sandbox")]
    Sandbox(SandboxArgs),
    /// Authorize shops: consent URL, code exchange, token refresh.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Run the whole path on one machine: sandbox → backfill → build → test → Flight SQL.
    #[cfg(feature = "sandbox")]
    Demo(DemoArgs),
    /// Land every window of a date range (re-running it lands identical tables).
    Backfill {
        /// First day (YYYY-MM-DD, UTC) or RFC 3339 time.
        #[arg(long)]
        from: String,
        /// Last day, inclusive (YYYY-MM-DD), or an exclusive RFC 3339 end.
        #[arg(long)]
        to: String,
        /// One shop (id, cipher or name).
        #[arg(long)]
        shop: Option<String>,
        /// One pipeline (category such as `orders`) or stream.
        #[arg(long)]
        pipeline: Option<String>,
        /// Only queue the windows (other `shoplake worker`s run them); with --wait,
        /// follow their progress.
        #[arg(long)]
        enqueue_only: bool,
        /// With --enqueue-only: wait for the windows and show progress.
        #[arg(long)]
        wait: bool,
        /// Run windows that were already done again (default: resume, skipping them).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        queue: QueueArgs,
    },
    /// Scheduler and workers in one process: every stream on its schedule, models rebuilt
    /// after new data, until Ctrl-C / SIGTERM.
    Run {
        #[command(flatten)]
        queue: QueueArgs,
    },
    /// Run queued jobs (start several, on several machines, on one Postgres queue).
    Worker {
        #[command(flatten)]
        queue: QueueArgs,
        /// `/metrics` address (default: [jobs] http_addr; "" for none).
        #[arg(long)]
        http_addr: Option<String>,
    },
    /// Only the cron producer: enqueue jobs from the schedules for workers elsewhere.
    Scheduler {
        #[command(flatten)]
        queue: QueueArgs,
    },
    /// Requeue dead jobs (all, or one by id from `shoplake status`).
    Retry {
        /// Job id.
        id: Option<String>,
        #[command(flatten)]
        queue: QueueArgs,
    },
    /// Incremental sync from each stream's committed cursor.
    Extract {
        /// One shop (id, cipher or name).
        #[arg(long)]
        shop: Option<String>,
        /// One pipeline (category) or stream.
        #[arg(long)]
        pipeline: Option<String>,
        /// End of the sync (RFC 3339; default: now minus 2 minutes for late updates).
        #[arg(long)]
        until: Option<String>,
    },
    /// Per shop and stream: cursor, last run, rows, last error.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Every stream: category, endpoint, kind, tables, schedule.
    Pipelines {
        /// Instead: how many catalog endpoints (pipelines/catalog.tsv) each category
        /// extracts, excludes (with the reason) or misses, and which are missing.
        #[arg(long)]
        coverage: bool,
    },
    /// Build SQL models into Delta tables.
    Build {
        /// MODEL, MODEL+ (and downstream), +MODEL (and upstream); comma-separated.
        #[arg(long)]
        select: Option<String>,
        /// Build nothing: list the DAG (layers, materialization, inputs) and plan every
        /// selected model whose inputs exist.
        #[arg(long)]
        dry_run: bool,
        /// Rebuild incremental models in full (after editing a seed, or to check them).
        #[arg(long)]
        full_refresh: bool,
        /// Models built at once (default: [project] threads, else the number of cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Write a Markdown catalog of every table: columns, types, docs, lineage.
    Docs {
        /// Output file.
        #[arg(long, default_value = "catalog.md")]
        out: PathBuf,
    },
    /// Run the models' data tests.
    Test {
        /// Same syntax as build --select.
        #[arg(long)]
        select: Option<String>,
    },
    /// Run read-only SQL against the lake and print the result.
    Query {
        /// SQL, e.g. "select * from marts.gmv_daily limit 10".
        sql: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Serve the lake over Arrow Flight SQL until Ctrl-C.
    Serve {
        /// Listen address (default: [serve] flight_addr, 127.0.0.1:50051).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Print an argon2 hash of a password read from stdin, for `[[serve.users]]
    /// password_hash` (the password never appears on the command line).
    HashPassword,
    /// Measure performance and write a results file.
    #[cfg(feature = "sandbox")]
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// Where the job queue is and who this process is.
#[derive(Args, Clone, Default)]
struct QueueArgs {
    /// `sqlite` or `postgres://user@host/db` (default: [jobs] backend).
    #[arg(long, env = "SHOPLAKE_JOBS__BACKEND")]
    backend: Option<String>,
    /// Worker name (default: host name and process id).
    #[arg(long)]
    name: Option<String>,
    /// Job slots in this process (default: [jobs] concurrency).
    #[arg(long)]
    concurrency: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[cfg(feature = "sandbox")]
#[derive(Args)]
struct DemoArgs {
    /// Shops.
    #[arg(long, default_value_t = 3)]
    shops: usize,
    /// Orders over all shops.
    #[arg(long, default_value_t = 100_000)]
    orders: usize,
    /// Days of history.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Exit after the build instead of serving Flight SQL.
    #[arg(long)]
    no_serve: bool,
    /// Flight SQL address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: String,
}

#[cfg(feature = "sandbox")]
#[derive(Args)]
struct SandboxArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    addr: std::net::SocketAddr,
    /// Seed: the same seed always gives the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of shops (regions US, GB, ID, TH, VN, MY, SG, PH in turn).
    #[arg(long, default_value_t = 3)]
    shops: usize,
    /// Orders over all shops.
    #[arg(long, default_value_t = 100_000)]
    orders: usize,
    /// Days of history before the data clock.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Data clock (RFC 3339): the simulated "now"; history ends here.
    #[arg(long, default_value = "2026-11-01T00:00:00Z")]
    clock: chrono::DateTime<chrono::Utc>,
    /// App key the sandbox accepts.
    #[arg(long, default_value = sandbox::DEFAULT_APP_KEY)]
    app_key: String,
    /// App secret the sandbox verifies signatures with.
    #[arg(long, env = "SHOPLAKE_SANDBOX_APP_SECRET", default_value = sandbox::DEFAULT_APP_SECRET, hide_default_value = true)]
    app_secret: String,
    /// Authorization code the token endpoint accepts.
    #[arg(long, default_value = sandbox::DEFAULT_AUTH_CODE)]
    auth_code: String,
    /// Access token lifetime, e.g. 30s to exercise refresh.
    #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
    token_ttl: Duration,
    /// Requests per second per endpoint before HTTP 429 (0 = no limit).
    #[arg(long, default_value_t = 50.0)]
    rps: f64,
    /// Share of requests that get a fault (0.0–1.0): a 5xx, a timeout, a 429, a cut-off
    /// body, a page repeating the previous page's tail, or a revoked token.
    #[arg(long, default_value_t = 0.0)]
    faults: f64,
    /// Schema drift in Order Search: an unknown field, a dropped optional field, numbers
    /// sent as strings.
    #[arg(long)]
    drift: bool,
    /// How long an injected timeout hangs.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    fault_delay: Duration,
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Seal every stored token under a new key (secrets/token.key; the previous key is
    /// kept as token.key.old until the next rotation).
    RotateKey,
    /// Print the URL a seller opens to authorize this app.
    Url {
        /// Opaque state echoed back to your redirect.
        #[arg(long, default_value = "shoplake")]
        state: String,
    },
    /// Exchange an authorization code for tokens and store one per authorized shop.
    Exchange {
        /// The auth code from the redirect (the sandbox's is SANDBOX_AUTH_CODE).
        #[arg(long)]
        code: String,
    },
    /// Refresh every stored access token now.
    Refresh,
}

#[cfg(feature = "sandbox")]
#[derive(Subcommand, Clone)]
enum BenchCommand {
    /// The demo path (sandbox → backfill → build → test) in a temp dir: timings, rows/s,
    /// peak RSS.
    E2e {
        /// Orders.
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        /// Shops.
        #[arg(long, default_value_t = 3)]
        shops: usize,
        /// Days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Results file.
        #[arg(long, default_value = "bench/results/e2e.json")]
        out: PathBuf,
    },
    /// Dashboard query latency (p50/p95) and large-result throughput over Flight SQL,
    /// on the data dir's warehouse (run `shoplake demo --no-serve` first).
    Flight {
        /// Runs per dashboard query.
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// The large result to stream.
        #[arg(long, default_value = "select * from raw.order_line_items")]
        large_sql: String,
        /// Results file.
        #[arg(long, default_value = "bench/results/flight.json")]
        out: PathBuf,
    },
    /// SQL models over the demo data: full build with 1 thread and all cores, then after
    /// one more day of orders an incremental build and a full rebuild, side by side.
    Build {
        /// Shops.
        #[arg(long, default_value_t = 3)]
        shops: usize,
        /// Orders over all shops.
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        /// Days of history.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Results file.
        #[arg(long, default_value = "bench/results/build.json")]
        out: PathBuf,
    },
    /// A year-long backfill on the job queue with 1 vs 2 workers against a rate-limited
    /// sandbox: wall time, requests/s, 429s, and the rate limit's floor.
    Jobs {
        /// Shops.
        #[arg(long, default_value_t = 3)]
        shops: usize,
        /// Orders over all shops.
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        /// Days of history.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// The sandbox's limit per endpoint, requests/s (the real API's is about 50).
        #[arg(long, default_value_t = 50.0)]
        api_rps: f64,
        /// The client budget per endpoint family, shared by all workers.
        #[arg(long, default_value_t = 40.0)]
        client_rps: f64,
        /// Worker counts to compare, comma-separated.
        #[arg(long, default_value = "1,2", value_delimiter = ',')]
        workers: Vec<usize>,
        /// Job slots per worker.
        #[arg(long, default_value_t = 4)]
        slots: usize,
        /// Results file.
        #[arg(long, default_value = "bench/results/jobs.json")]
        out: PathBuf,
    },
    /// Client throughput against an in-process sandbox, and sandbox CPU per page.
    Api {
        /// Orders to generate.
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        /// Shops.
        #[arg(long, default_value_t = 3)]
        shops: usize,
        /// Concurrent walks per shop.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        page_size: u32,
        /// Results file.
        #[arg(long, default_value = "bench/results/api.json")]
        out: PathBuf,
    },
}

fn init_logs(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let level = if cli.quiet {
        "warn"
    } else {
        match cli.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    // Our logs at the chosen level; dependencies only when something is wrong (the Delta
    // kernel logs a benign error whenever a table is first created, so it is off unless
    // asked for with SHOPLAKE_LOG).
    let others = if cli.verbose >= 2 { "debug" } else { "warn" };
    let filter = EnvFilter::try_from_env("SHOPLAKE_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{others},shoplake={level},buoyant_kernel=off,deltalake_core::operations::merge=error"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr(Vec::new()));
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A log line on its way to stderr: buffered, then written with every held secret value
/// redacted ([`shoplake::secret::redact`]). tracing-subscriber formats a whole event into
/// one writer, so one line is redacted at a time.
struct RedactingStderr(Vec<u8>);

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingStderr {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        let _ = std::io::stderr().write_all(shoplake::secret::redact(&line).as_bytes());
    }
}

/// Panics are bugs: report one line (redacted) and where, and the backtrace when
/// RUST_BACKTRACE asks for it, instead of the default hook's raw message.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let bt = std::backtrace::Backtrace::capture();
        let bt = match bt.status() {
            std::backtrace::BacktraceStatus::Captured => format!("\n{bt}"),
            _ => String::new(),
        };
        eprintln!(
            "error: internal error at {at}: {} (this is a bug in shoplake; please report it){bt}",
            shoplake::secret::redact(msg)
        );
    }));
}

/// The queue named by `--backend` or `[jobs] backend`, and `[jobs]` with the CLI's overrides.
async fn open_queue(
    app: &App,
    args: &QueueArgs,
) -> Result<(shoplake::jobs::Queue, shoplake::config::JobsConfig)> {
    let mut cfg = app.config.jobs_config()?;
    if let Some(b) = &args.backend {
        cfg.backend = b.clone();
    }
    if let Some(c) = args.concurrency {
        anyhow::ensure!(c > 0, "--concurrency must be at least 1");
        cfg.concurrency = c;
    }
    let q = shoplake::jobs::Queue::open(&cfg.backend, &app.data_dir).await?;
    Ok((q, cfg))
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "shoplake".into())
}

fn default_worker_name() -> String {
    format!("{}-{}", host_name(), std::process::id())
}

fn app(cli: &Cli) -> Result<App> {
    let config = Config::load(cli.config.as_deref())?;
    // Debug builds only: how tests prove a panic report carries no secret.
    #[cfg(debug_assertions)]
    if std::env::var_os("SHOPLAKE_DEBUG_PANIC").is_some() {
        panic!(
            "debug panic holding the app secret {}",
            config.api.app_secret.as_ref().map_or("", |s| s.expose())
        );
    }
    Ok(App::new(config, &cli.data_dir)?)
}

fn print_batches(batches: &[RecordBatch], format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => writeln!(out, "{}", pretty_format_batches(batches)?)?,
        Format::Csv => {
            let mut w = arrow::csv::Writer::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    Ok(())
}

fn summary(what: &str, s: &RunSummary, secs: f64) -> Result<()> {
    println!(
        "{what}: {} windows, {} rows ({} inserted or updated), {} pages in {secs:.1}s ({:.0} rows/s)",
        s.windows,
        s.rows,
        s.changed,
        s.pages,
        s.rows as f64 / secs.max(1e-9)
    );
    if !s.errors.is_empty() {
        for e in &s.errors {
            eprintln!("failed: {e}");
        }
        anyhow::bail!(
            "{} shop/stream sequence(s) failed; their cursors stay at the last landed window, rerun to resume",
            s.errors.len()
        );
    }
    Ok(())
}

fn print_build(reports: &[BuildReport], wall: std::time::Duration) {
    for r in reports {
        let how = match r.kind {
            BuildKind::Incremental => format!("incremental, {} windows", r.windows),
            other => other.to_string(),
        };
        println!(
            "built {:<36} {:>9} rows  {:>6} ms  ({how})",
            r.model, r.rows, r.millis
        );
    }
    println!("{} models in {:.2}s", reports.len(), wall.as_secs_f64());
}

/// Prints the DAG; returns how many models failed to plan.
fn print_dag(nodes: &[DagNode]) -> usize {
    let mut bad = 0;
    for n in nodes {
        let plan = match &n.planned {
            Ok(cols) => format!("ok, {cols} columns"),
            Err(e) if e.starts_with("not planned") => e.clone(),
            Err(e) => {
                bad += 1;
                format!("ERROR {e}")
            }
        };
        println!(
            "layer {}  {:<36} {:<34} <- {}\n          {plan}",
            n.layer,
            n.model,
            n.materialized,
            n.inputs.join(", ")
        );
    }
    let layers = nodes.iter().map(|n| n.layer + 1).max().unwrap_or(0);
    println!("{} models in {layers} layers", nodes.len());
    bad
}

fn print_tests(results: &[TestResult]) -> usize {
    let mut failed = 0;
    for t in results {
        if t.passed() {
            println!("PASS {} {}", t.model, t.test);
        } else {
            failed += 1;
            match &t.error {
                Some(e) => println!("ERROR {} {}: {e}", t.model, t.test),
                None => println!("FAIL {} {}: {} rows", t.model, t.test, t.failures),
            }
        }
    }
    println!("{} tests, {} failed", results.len(), failed);
    failed
}

async fn serve_until_ctrl_c(app: &App, addr: &str) -> Result<()> {
    let server = app.serve(addr).await?;
    println!(
        "Flight SQL listening on grpc://{} (Ctrl-C to stop)",
        server.addr
    );
    shutdown_signal().await;
    server.stop().await;
    Ok(())
}

#[cfg(feature = "sandbox")]
async fn run_demo(cli: &Cli, a: &DemoArgs) -> Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    let spec = DemoSpec {
        shops: a.shops,
        orders: a.orders,
        days: a.days,
        seed: a.seed,
    };
    let t = std::time::Instant::now();
    let (app, sb, r) = cli::demo::run(config, &cli.data_dir, &spec).await?;
    println!(
        "sandbox: {} shops, {} orders, {} days (seed {}) generated in {:.1}s",
        a.shops, a.orders, a.days, a.seed, r.generate_secs
    );
    println!(
        "backfill: {} windows, {} rows, {} API requests in {:.1}s ({:.0} rows/s)",
        r.windows,
        r.rows,
        r.requests,
        r.backfill_secs,
        r.rows as f64 / r.backfill_secs.max(1e-9)
    );
    println!("build: {} models in {:.1}s", r.models, r.build_secs);
    println!(
        "test: {} data tests, {} failed, in {:.1}s",
        r.tests, r.tests_failed, r.test_secs
    );
    println!("total: {:.1}s", t.elapsed().as_secs_f64());
    println!("lake: {}", app.lake.root());
    println!(
        "try: shoplake --data-dir {} query \"select * from marts.gmv_daily order by order_date desc limit 5\"",
        cli.data_dir.display()
    );
    if r.tests_failed > 0 {
        anyhow::bail!(
            "{} data test(s) failed (see the warnings above)",
            r.tests_failed
        );
    }
    if !a.no_serve {
        println!(
            "connect: ADBC/Python `adbc_driver_flightsql.dbapi.connect(\"grpc://{}\")`, DBeaver `jdbc:arrow-flight-sql://{}/?useEncryption=false`",
            a.addr, a.addr
        );
        serve_until_ctrl_c(&app, &a.addr).await?;
    }
    sb.stop().await;
    Ok(())
}

fn client(cli: &Cli) -> Result<ApiClient> {
    let config = Config::load(cli.config.as_deref())?;
    let cc = config.client_config()?;
    let store = TokenStore::open(cli.data_dir.join("secrets").join("tokens"))?;
    Ok(ApiClient::new(cc, Some(Arc::new(store)))?)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(feature = "sandbox")]
async fn run_sandbox(a: SandboxArgs) -> Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.faults),
        "--faults must be between 0.0 and 1.0, got {}",
        a.faults
    );
    anyhow::ensure!(a.rps >= 0.0, "--rps must be ≥ 0, got {}", a.rps);
    let config = SandboxConfig {
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
    };
    let t = std::time::Instant::now();
    let sb = Arc::new(tokio::task::spawn_blocking(move || sandbox::Sandbox::new(config)).await?);
    let listener = tokio::net::TcpListener::bind(a.addr)
        .await
        .with_context(|| format!("binding {}", a.addr))?;
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

fn main() -> std::process::ExitCode {
    // Like other Unix tools: `shoplake query … | head` ends quietly when the reader goes
    // away, instead of panicking in println! on a broken pipe.
    // SAFETY: setting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_logs(&cli);
    install_panic_hook();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the whole cause chain, newlines folded.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {}", shoplake::secret::redact(&msg));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        #[cfg(feature = "sandbox")]
        Command::Sandbox(a) => run_sandbox(a).await,
        #[cfg(feature = "sandbox")]
        Command::Demo(ref a) => run_demo(&cli, a).await,
        Command::Backfill {
            ref from,
            ref to,
            ref shop,
            ref pipeline,
            enqueue_only,
            wait,
            force,
            ref queue,
        } => {
            let from_t = parse_time(from)?;
            // A plain date as --to means "through that day".
            let to_t = parse_time(to)? + if to.len() == 10 { 86_400 } else { 0 };
            let app = Arc::new(app(&cli)?);
            let (q, cfg) = open_queue(&app, queue).await?;
            let run = if force {
                format!("force-{}", chrono::Utc::now().timestamp())
            } else {
                String::new()
            };
            let jobs = shoplake::jobs::backfill::plan(
                &app,
                from_t,
                to_t,
                shop.as_deref(),
                pipeline.as_deref(),
                &run,
            )?;
            let keys: Vec<String> = jobs.iter().map(|j| j.key()).collect();
            let new = q.push(&jobs, cfg.max_attempts).await?;
            info!(
                windows = jobs.len(),
                new,
                already_queued = jobs.len() as u64 - new,
                backend = q.kind(),
                "backfill queued"
            );
            if enqueue_only && !wait {
                println!(
                    "queued {new} new window job(s) of {} on {}; run `shoplake worker` to process them",
                    jobs.len(),
                    q.kind()
                );
                return Ok(());
            }
            let t = std::time::Instant::now();
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let local = if enqueue_only {
                None
            } else {
                let mut rx = stop_rx.clone();
                let stop = async move {
                    tokio::select! {
                        _ = rx.wait_for(|v| *v) => {},
                        _ = shutdown_signal() => {},
                    }
                };
                let name = queue.name.clone().unwrap_or_else(default_worker_name);
                Some(tokio::spawn(shoplake::jobs::service::run_worker(
                    app.clone(),
                    q.clone(),
                    cfg.clone(),
                    name,
                    String::new(),
                    stop,
                )))
            };
            let waited = tokio::select! {
                r = shoplake::jobs::backfill::wait(&q, &keys) => Some(r),
                _ = shutdown_signal() => None,
            };
            let _ = stop_tx.send(true);
            if let Some(h) = local {
                h.await??;
            }
            let Some(waited) = waited else {
                anyhow::bail!(
                    "interrupted: finished windows are kept; run the same backfill again to resume"
                );
            };
            let (p, dead) = waited?;
            let secs = t.elapsed().as_secs_f64();
            println!(
                "backfill: {} of {} windows done, {} rows, {} pages in {secs:.1}s ({:.0} rows/s)",
                p.done,
                p.total,
                p.rows,
                p.pages,
                p.rows as f64 / secs.max(1e-9)
            );
            if !dead.is_empty() {
                for d in &dead {
                    eprintln!(
                        "dead job {} {}: {}",
                        d.id,
                        d.key.as_deref().unwrap_or("-"),
                        d.last_error().unwrap_or_default()
                    );
                }
                anyhow::bail!(
                    "{} window(s) failed on every attempt; fix the cause and run `shoplake retry`",
                    dead.len()
                );
            }
            Ok(())
        }
        Command::Run { ref queue } => {
            let app = Arc::new(app(&cli)?);
            let (q, cfg) = open_queue(&app, queue).await?;
            let name = queue
                .name
                .clone()
                .unwrap_or_else(|| format!("{}-run", host_name()));
            shoplake::jobs::service::run_all(app, q, cfg, name, shutdown_signal()).await?;
            Ok(())
        }
        Command::Worker {
            ref queue,
            ref http_addr,
        } => {
            let app = Arc::new(app(&cli)?);
            let (q, cfg) = open_queue(&app, queue).await?;
            let name = queue.name.clone().unwrap_or_else(default_worker_name);
            let http = http_addr.clone().unwrap_or_else(|| cfg.http_addr.clone());
            shoplake::jobs::service::run_worker(app, q, cfg, name, http, shutdown_signal()).await?;
            Ok(())
        }
        Command::Scheduler { ref queue } => {
            let app = Arc::new(app(&cli)?);
            let (q, cfg) = open_queue(&app, queue).await?;
            let _http =
                shoplake::jobs::service::metrics_endpoint(&cfg.http_addr, q.clone(), None).await;
            shoplake::jobs::service::run_scheduler(app, q, cfg, shutdown_signal()).await?;
            Ok(())
        }
        Command::Retry { ref id, ref queue } => {
            let app = app(&cli)?;
            let (q, _) = open_queue(&app, queue).await?;
            let n = q.retry(id.as_deref()).await?;
            println!("requeued {n} dead job(s)");
            Ok(())
        }
        Command::Extract {
            ref shop,
            ref pipeline,
            ref until,
        } => {
            let until = match until {
                Some(u) => parse_time(u)?,
                // The planner keeps the settle margin (`[extract] settle`) from now.
                None => chrono::Utc::now().timestamp(),
            };
            let t = std::time::Instant::now();
            let s = app(&cli)?
                .extract(until, shop.as_deref(), pipeline.as_deref())
                .await?;
            summary("extract", &s, t.elapsed().as_secs_f64())
        }
        Command::Status { format } => {
            let app = app(&cli)?;
            let rows = app.status().await?;
            // The queue is reported when it can be reached; the streams either way.
            let queue = async {
                let (q, _) = open_queue(&app, &QueueArgs::default()).await?;
                let counts = q.counts().await?;
                let dead = q.dead().await?;
                anyhow::Ok((q.kind(), counts, dead))
            }
            .await;
            let (kind, counts, dead) = match queue {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("warning: job queue unavailable: {e:#}");
                    ("unavailable", Default::default(), Vec::new())
                }
            };
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "streams": rows,
                        "jobs": counts,
                        "dead_jobs": dead.iter().map(|d| serde_json::json!({
                            "id": d.id, "key": d.key, "attempts": d.attempts, "last_error": d.last_error(),
                        })).collect::<Vec<_>>(),
                    }))?
                ),
                _ => {
                    println!(
                        "{:<22} {:<16} {:<22} {:<22} {:<7} {:>9}  last error",
                        "shop", "stream", "cursor", "last run", "status", "rows"
                    );
                    for r in rows {
                        // A gap: windows landed beyond the cursor while one before them
                        // has not; the next run starts at the cursor and fills it.
                        let (status, note) = match &r.gap_until {
                            Some(g) => (
                                "gap".to_string(),
                                format!(
                                    "windows landed up to {g} beyond the cursor; the next run fills the gap{}",
                                    r.last_error
                                        .as_deref()
                                        .map(|e| format!("; {e}"))
                                        .unwrap_or_default()
                                ),
                            ),
                            None => (r.status.clone(), r.last_error.clone().unwrap_or_default()),
                        };
                        println!(
                            "{:<22} {:<16} {:<22} {:<22} {:<7} {:>9}  {}",
                            r.shop,
                            r.stream,
                            r.cursor.unwrap_or_else(|| "-".into()),
                            r.last_run.unwrap_or_else(|| "-".into()),
                            status,
                            r.rows,
                            note
                        );
                    }
                    println!(
                        "\njobs ({}): {}",
                        kind,
                        counts
                            .iter()
                            .map(|(k, v)| format!("{v} {k}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    for d in &dead {
                        println!(
                            "dead {} {} after {} attempts: {}",
                            d.id,
                            d.key.as_deref().unwrap_or("-"),
                            d.attempts,
                            d.last_error().unwrap_or_default()
                        );
                    }
                    if !dead.is_empty() {
                        println!("(`shoplake retry` requeues them; `shoplake retry ID` one)");
                    }
                }
            }
            Ok(())
        }
        Command::Pipelines { coverage: true } => {
            let app = app(&cli)?;
            let (p, _) = app.pipelines()?;
            let catalog = shoplake::pipeline::coverage::load_catalog(
                &app.project.join("pipelines").join("catalog.tsv"),
            )?;
            let rows = shoplake::pipeline::coverage::coverage(&catalog, &p);
            println!(
                "{:<22} {:>9} {:>9} {:>8}",
                "category", "extracted", "excluded", "missing"
            );
            let mut total = (0, 0, 0);
            for (c, (x, e, m)) in shoplake::pipeline::coverage::summary(&rows) {
                println!("{c:<22} {x:>9} {e:>9} {m:>8}");
                total = (total.0 + x, total.1 + e, total.2 + m);
            }
            println!(
                "{:<22} {:>9} {:>9} {:>8}",
                "total", total.0, total.1, total.2
            );
            for (e, c) in &rows {
                if let shoplake::pipeline::coverage::Coverage::Extracted(name) = c
                    && p.streams.iter().any(|s| &s.name == name && !s.enabled)
                {
                    println!(
                        "off by default: {:<13} {} {} (stream {name}; enabled = true in its pipeline file)",
                        e.category, e.method, e.path
                    );
                }
                if c == &shoplake::pipeline::coverage::Coverage::Missing {
                    println!(
                        "missing: {:<20} {} {} ({})",
                        e.category, e.method, e.path, e.name
                    );
                }
            }
            Ok(())
        }
        Command::Pipelines { coverage: false } => {
            let (p, _) = app(&cli)?.pipelines()?;
            println!(
                "{:<14} {:<16} {:<12} {:<8} {:<52} tables",
                "category", "stream", "kind", "schedule", "endpoint"
            );
            for s in &p.streams {
                println!(
                    "{:<14} {:<16} {:<12} {:<8} {:<52} {}",
                    s.category,
                    s.name,
                    format!("{:?}", s.kind).to_lowercase(),
                    match (&s.schedule, s.enabled) {
                        (_, false) => "off".to_string(),
                        (Some(x), true) => x.clone(),
                        (None, true) => "parent".into(),
                    },
                    format!("{} {}", s.method, s.path),
                    s.tables.join(", ")
                );
            }
            for n in &p.not_extracted {
                println!("not extracted: {} ({})", n.path, n.reason);
            }
            Ok(())
        }
        Command::Build {
            ref select,
            dry_run,
            full_refresh,
            threads,
        } => {
            let app = app(&cli)?;
            if dry_run {
                let nodes = app.dry_run(select.as_deref()).await?;
                let bad = print_dag(&nodes);
                anyhow::ensure!(bad == 0, "{bad} model(s) do not plan");
                return Ok(());
            }
            let mut opts = app.build_options()?;
            opts.full_refresh = full_refresh;
            if let Some(t) = threads {
                anyhow::ensure!(t > 0, "--threads must be at least 1");
                opts.threads = t;
            }
            let t = std::time::Instant::now();
            let r = app.build(select.as_deref(), &opts).await?;
            print_build(&r, t.elapsed());
            Ok(())
        }
        Command::Docs { ref out } => {
            let md = app(&cli)?.docs().await?;
            std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote {} ({} tables, {} KiB)",
                out.display(),
                md.matches("\n## ").count() - 2,
                md.len() / 1024
            );
            Ok(())
        }
        Command::Test { ref select } => {
            let r = app(&cli)?.test(select.as_deref()).await?;
            let failed = print_tests(&r);
            anyhow::ensure!(failed == 0, "{failed} data test(s) failed");
            Ok(())
        }
        Command::Query { ref sql, format } => {
            let batches = app(&cli)?.query(sql).await?;
            print_batches(&batches, format)
        }
        Command::HashPassword => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            let pw = line.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!pw.is_empty(), "empty password on stdin");
            println!("{}", shoplake::serve::access::hash_password(pw));
            Ok(())
        }
        Command::Serve { ref addr } => {
            let app = app(&cli)?;
            let addr = addr
                .clone()
                .unwrap_or_else(|| app.config.serve.flight_addr.clone());
            serve_until_ctrl_c(&app, &addr).await
        }
        Command::Auth { ref command } => match command {
            AuthCommand::Url { state } => {
                let cc = Config::load(cli.config.as_deref())?.client_config()?;
                println!("{}", authorize_url(&cc.auth_base_url, &cc.app_key, state));
                Ok(())
            }
            AuthCommand::Exchange { code } => {
                let c = client(&cli)?;
                let shops = exchange_and_store(&c, code)
                    .await
                    .context("exchanging the authorization code")?;
                for s in &shops {
                    println!(
                        "authorized shop {} ({}, {}) cipher {}",
                        s.name, s.id, s.region, s.cipher
                    );
                }
                if let Some(store) = c.tokens() {
                    println!("tokens stored in {}", store.dir().display());
                }
                Ok(())
            }
            AuthCommand::RotateKey => {
                let store = TokenStore::open(cli.data_dir.join("secrets").join("tokens"))?;
                let n = store.rotate_key()?;
                println!("sealed {n} token file(s) under a new key");
                Ok(())
            }
            AuthCommand::Refresh => {
                let c = client(&cli)?;
                let store = c.tokens().context("no token store")?.clone();
                let n = store.refresh_all(&c).await.context("refreshing tokens")?;
                println!("refreshed {n} grant(s)");
                Ok(())
            }
        },
        #[cfg(feature = "sandbox")]
        Command::Bench { ref command } => run_bench(&cli, command.clone()).await,
    }
}

/// `shoplake bench …`: one benchmark, its results file and a summary.
#[cfg(feature = "sandbox")]
async fn run_bench(cli: &Cli, command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::E2e {
            orders,
            shops,
            days,
            out,
        } => {
            let spec = DemoSpec {
                shops,
                orders,
                days,
                seed: 42,
            };
            let r = cli::bench::run_e2e_bench(&spec, &out).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            println!("results written to {}", out.display());
            Ok(())
        }
        BenchCommand::Flight {
            runs,
            ref large_sql,
            ref out,
        } => {
            let b = cli::bench::FlightBench {
                runs,
                large_sql: large_sql.clone(),
                out: out.clone(),
            };
            let r = cli::bench::run_flight_bench(&app(&cli)?, &b).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            println!("results written to {}", b.out.display());
            Ok(())
        }
        BenchCommand::Jobs {
            shops,
            orders,
            days,
            api_rps,
            client_rps,
            ref workers,
            slots,
            ref out,
        } => {
            let b = cli::bench::JobsBench {
                shops,
                orders,
                days,
                api_rps,
                client_rps,
                workers: workers.clone(),
                slots,
                out: out.clone(),
            };
            let r = cli::bench::run_jobs_bench(&b).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            println!("results written to {}", b.out.display());
            Ok(())
        }
        BenchCommand::Build {
            shops,
            orders,
            days,
            ref out,
        } => {
            let b = cli::bench::BuildBench {
                shops,
                orders,
                days,
                out: out.clone(),
            };
            let r = cli::bench::run_build_bench(&b).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            println!("results written to {}", b.out.display());
            Ok(())
        }
        BenchCommand::Api {
            orders,
            shops,
            concurrency,
            page_size,
            out,
        } => {
            let b = cli::bench::ApiBench {
                orders,
                shops,
                concurrency,
                page_size,
                out,
            };
            let r = cli::bench::run_api_bench(&b).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            println!("results written to {}", b.out.display());
            Ok(())
        }
    }
}
