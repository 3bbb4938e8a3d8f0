//! The `shoplake` commands: the clap definitions, [`dispatch`], and one module per command
//! (closely related subcommands share one: `auth …`, `bench …`). Everything that prints
//! tables and summaries is in [`render`]. The demo and the benchmarks run over the sandbox
//! (the `sandbox` feature, on by default).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use shoplake::app::App;
use shoplake::config::Config;

pub mod auth;
pub mod backfill;
#[cfg(feature = "sandbox")]
pub mod bench;
pub mod build;
#[cfg(feature = "sandbox")]
pub mod demo;
#[cfg(feature = "sandbox")]
pub mod demo_command;
pub mod docs;
pub mod export;
pub mod extract;
pub mod hash_password;
pub mod maintain;
pub mod pipelines;
pub mod query;
pub mod queue;
pub mod render;
pub mod retry;
pub mod run;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod scheduler;
pub mod serve;
pub mod status;
pub mod test;
pub mod worker;

use queue::QueueArgs;

/// TikTok Shop seller API → Delta Lake warehouse → Flight SQL.
#[derive(Parser)]
#[command(name = "shoplake", version, about)]
pub struct Cli {
    /// Config file (default: ./shoplake.toml if present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory: lake/, state/, secrets/.
    #[arg(
        long,
        global = true,
        default_value = "./shoplake-data",
        env = "SHOPLAKE_DATA_DIR"
    )]
    pub data_dir: PathBuf,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More logs (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the simulated TikTok Shop API (deterministic from --seed).
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox::SandboxArgs),
    /// Authorize shops: consent URL, code exchange, token refresh.
    Auth {
        #[command(subcommand)]
        command: auth::AuthCommand,
    },
    /// Run the whole path on one machine: sandbox → backfill → build → test → Flight SQL.
    #[cfg(feature = "sandbox")]
    Demo(demo_command::DemoArgs),
    /// Land every window of a date range (re-running it lands identical tables).
    Backfill(backfill::BackfillArgs),
    /// Scheduler and workers in one process: every stream on its schedule, models rebuilt
    /// after new data, until Ctrl-C / SIGTERM.
    Run(QueueArgs),
    /// Run queued jobs (start several, on several machines, on one Postgres queue).
    Worker(worker::WorkerArgs),
    /// Only the cron producer: enqueue jobs from the schedules for workers elsewhere.
    Scheduler(QueueArgs),
    /// Requeue dead jobs (all, or one by id from `shoplake status`).
    Retry(retry::RetryArgs),
    /// Incremental sync from each stream's committed cursor.
    Extract(extract::ExtractArgs),
    /// Per shop and stream: cursor, last run, rows, last error.
    Status(status::StatusArgs),
    /// Every stream: category, endpoint, kind, tables, schedule.
    Pipelines(pipelines::PipelinesArgs),
    /// Build SQL models into Delta tables.
    Build(build::BuildArgs),
    /// Write a Markdown catalog of every table: columns, types, docs, lineage.
    Docs(docs::DocsArgs),
    /// Run the models' data tests.
    Test(test::TestArgs),
    /// Compact small files, write checkpoints and vacuum old files of the lake's tables.
    Maintain(maintain::MaintainArgs),
    /// Run read-only SQL against the lake and print the result.
    Query(query::QueryArgs),
    /// Export a model or a query to CSV, JSON, Parquet or xlsx (streamed).
    Export(export::ExportArgs),
    /// Serve the lake over Arrow Flight SQL until Ctrl-C.
    Serve(serve::ServeArgs),
    /// Print an argon2 hash of a password read from stdin, for `[[serve.users]]
    /// password_hash` (the password never appears on the command line).
    HashPassword,
    /// Measure performance and write a results file.
    #[cfg(feature = "sandbox")]
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

/// Runs the parsed command.
pub async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        #[cfg(feature = "sandbox")]
        Command::Sandbox(a) => sandbox::run(a).await,
        #[cfg(feature = "sandbox")]
        Command::Demo(ref a) => demo_command::run(&cli, a).await,
        Command::Backfill(ref a) => backfill::run(&cli, a).await,
        Command::Run(ref queue) => run::run(&cli, queue).await,
        Command::Worker(ref a) => worker::run(&cli, a).await,
        Command::Scheduler(ref queue) => scheduler::run(&cli, queue).await,
        Command::Retry(ref a) => retry::run(&cli, a).await,
        Command::Extract(ref a) => extract::run(&cli, a).await,
        Command::Status(ref a) => status::run(&cli, a).await,
        Command::Pipelines(ref a) => pipelines::run(&cli, a),
        Command::Build(ref a) => build::run(&cli, a).await,
        Command::Docs(ref a) => docs::run(&cli, a).await,
        Command::Test(ref a) => test::run(&cli, a).await,
        Command::Maintain(ref a) => maintain::run(&cli, a).await,
        Command::Query(ref a) => query::run(&cli, a).await,
        Command::Export(ref a) => export::run(&cli, a).await,
        Command::Serve(ref a) => serve::run(&cli, a).await,
        Command::HashPassword => hash_password::run(),
        Command::Auth { ref command } => auth::run(&cli, command).await,
        #[cfg(feature = "sandbox")]
        Command::Bench { ref command } => bench::run(&cli, command).await,
    }
}

/// The config file named by `--config` (or the default one).
pub fn config(cli: &Cli) -> Result<Config> {
    Ok(Config::load(cli.config.as_deref())?)
}

/// The app over the config and `--data-dir`.
pub fn app(cli: &Cli) -> Result<App> {
    let config = config(cli)?;
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

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
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
