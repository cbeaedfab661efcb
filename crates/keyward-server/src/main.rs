//! `keyward`: the standalone API-key server and admin CLI.
//!
//! `keyward serve` runs the HTTP server (SQLite `keyward.db` in the working directory by
//! default); `keyward keys …` and `keyward migrate` work on the same database without a server;
//! `keyward scan` finds leaked keys in files; `keyward sign` signs a raw request with SigV4.
//! Every failure prints one `error: …` line and exits
//! non-zero; see `docs/server.md`.

#![forbid(unsafe_code)]

mod abuse;
mod admin;
mod audit;
mod backend;
mod cli;
mod config;
mod duration;
mod encryption;
mod error;
mod metrics;
mod mint;
mod pepper;
mod reencrypt;
mod scan;
mod secret_file;
mod self_service;
mod server;
mod sign;
mod term;
mod usage;
mod webhooks;

use std::process::ExitCode;

/// mimalloc rather than glibc's allocator. Measured reason (`cargo xtask scale`, 10⁵ keys on
/// PostgreSQL, miss-heavy load): glibc's malloc, free and chunk consolidation were 17 % of the
/// server's samples and a miss cost 48 µs of server CPU; with mimalloc, 39 µs
/// (docs/performance.md). The library crates leave the choice to the application.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;
use clap::error::ErrorKind;

use crate::config::{Cli, Command, LogFormat};
use crate::error::AppError;
use crate::pepper::PepperSource;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_exit(&e),
    };
    let result = match cli.command {
        Command::Scan(args) => match scan::run(&args) {
            Ok(scan::Outcome::Clean) => return ExitCode::SUCCESS,
            Ok(scan::Outcome::Found) => return ExitCode::from(1),
            Ok(scan::Outcome::Incomplete) => return ExitCode::from(2),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        Command::Serve(args) => run_serve(*args),
        Command::Keys(args) => {
            init_logging(LogFormat::Human, "warn");
            runtime(false).and_then(|rt| rt.block_on(cli::keys(*args)))
        }
        Command::Audit(args) => {
            init_logging(LogFormat::Human, "warn");
            runtime(false).and_then(|rt| rt.block_on(audit::run(args)))
        }
        Command::Migrate(args) => {
            init_logging(LogFormat::Human, "warn");
            runtime(false).and_then(|rt| rt.block_on(cli::migrate(args)))
        }
        Command::Sign(args) => sign::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version go out as clap renders them; usage errors as one line.
fn clap_exit(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            // clap's first paragraph, on one line: "unexpected argument '--x' found",
            // "the following required arguments were not provided: --owner <OWNER>".
            let rendered = e.render().to_string();
            let first: Vec<&str> = rendered
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let text = first.join(" ");
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            let text = if text.is_empty() {
                "invalid arguments"
            } else {
                text
            };
            eprintln!("error: {text} (see `keyward --help`)");
            ExitCode::from(2)
        }
    }
}

fn run_serve(args: config::ServeArgs) -> Result<(), AppError> {
    let file = config::FileConfig::load(args.store.config.as_deref())?;
    let settings = config::resolve_serve(&args, &file)?;
    init_logging(settings.log_format, "info");
    runtime(true)?.block_on(server::run(settings))
}

fn runtime(multi: bool) -> Result<tokio::runtime::Runtime, AppError> {
    let mut b = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all()
        .build()
        .map_err(|e| AppError::Io(format!("cannot start the async runtime: {e}")))
}

/// Logs to stderr, `RUST_LOG` overriding `default` (for example `RUST_LOG=keyward=debug`).
fn init_logging(format: LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Tells the operator where the pepper came from; loudly when one was generated.
pub(crate) fn warn_pepper(source: &PepperSource) {
    match source {
        PepperSource::Environment => tracing::info!("pepper keyring from KEYWARD_PEPPER"),
        PepperSource::File(p) => tracing::info!(file = %p.display(), "pepper keyring from file"),
        PepperSource::Generated(p) => tracing::warn!(
            file = %p.display(),
            "KEYWARD_PEPPER is not set: generated a new pepper into {} (mode 0600). Back it up, \
             but never in the same backup as the database (one holding both lets its reader test \
             guessed keys offline): without it no existing key verifies. For production set \
             KEYWARD_PEPPER (`openssl rand -base64 32`).",
            p.display()
        ),
        PepperSource::Ephemeral => tracing::warn!(
            "in-memory database without KEYWARD_PEPPER: using a throwaway pepper (keys die with the process)"
        ),
    }
}
