//! The `shoplake` command line: parse, set up logging and panic reports, then dispatch to
//! `src/cli/` (one module per command).

mod cli;

use std::io::Write;

use clap::Parser;

use cli::{Cli, LogFormat};

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
    match rt.block_on(cli::dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the whole cause chain, newlines folded.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {}", shoplake::secret::redact(&msg));
            std::process::ExitCode::FAILURE
        }
    }
}
