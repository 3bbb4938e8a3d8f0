//! The `shoplake` command line: parse, load config, call into the library.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::info;

use shoplake::api::ApiClient;
use shoplake::api::auth::{TokenStore, authorize_url, exchange_and_store};
use shoplake::config::Config;
use shoplake::sandbox::{self, DataConfig, SandboxConfig};

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
    Sandbox(SandboxArgs),
    /// Authorize shops: consent URL, code exchange, token refresh.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Measure performance and write a results file.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

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
    /// Share of requests that fail with a 5xx, a timeout or a 429 (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    faults: f64,
    /// How long an injected timeout hangs.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    fault_delay: Duration,
}

#[derive(Subcommand)]
enum AuthCommand {
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

#[derive(Subcommand)]
enum BenchCommand {
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
    let filter = EnvFilter::try_from_env("SHOPLAKE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},hyper=warn,reqwest=warn,h2=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
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

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logs(&cli);
    match cli.command {
        Command::Sandbox(a) => run_sandbox(a).await,
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
            AuthCommand::Refresh => {
                let c = client(&cli)?;
                let store = c.tokens().context("no token store")?.clone();
                let n = store.refresh_all(&c).await.context("refreshing tokens")?;
                println!("refreshed {n} grant(s)");
                Ok(())
            }
        },
        Command::Bench {
            command:
                BenchCommand::Api {
                    orders,
                    shops,
                    concurrency,
                    page_size,
                    out,
                },
        } => {
            let b = shoplake::bench::ApiBench {
                orders,
                shops,
                concurrency,
                page_size,
                out,
            };
            let r = shoplake::bench::run_api_bench(&b).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            println!("results written to {}", b.out.display());
            Ok(())
        }
    }
}
