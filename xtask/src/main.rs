//! Project automation for keyward, run as `cargo xtask <command>` (aliased in
//! `.cargo/config.toml`, after matklad's cargo-xtask pattern).
//!
//! Plain `std` only: this binary is built before anything else in CI, so it must compile fast.
//!
//! # Adding a command
//!
//! Create `xtask/src/<name>.rs` with
//!
//! ```text
//! //! What the command does.
//!
//! /// Runs `cargo xtask <name> [args]`.
//! pub(crate) fn run(args: &[String]) -> Result<std::process::ExitCode, String> { … }
//! ```
//!
//! then declare `mod <name>;` below and add its line to `COMMANDS`. A command that `cargo xtask
//! ci` should run gets its step in `ci::steps`.

#![allow(clippy::print_stdout, reason = "xtask is a command-line tool")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod bench;
mod ci;
mod cycles;
mod docs_sh;
mod fuzz;
mod migrations;
mod package;
mod public_api;
mod tidy;

/// A subcommand: its name, a one-line summary, and its entry point.
struct Command {
    name: &'static str,
    about: &'static str,
    run: fn(&[String]) -> Result<ExitCode, String>,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "ci",
        about: "fmt, clippy, tests, docs, migrations check, cargo-deny [--quick] [--skip-deny] [--dry-run]",
        run: ci::run,
    },
    Command {
        name: "tidy",
        about: "source hygiene: module docs, no TODO/FIXME/dbg!, workspace lints",
        run: tidy::run,
    },
    Command {
        name: "migrations",
        about: "generate the SQL migrations under migrations/ [--check]",
        run: migrations::run,
    },
    Command {
        name: "docs-sh",
        about: "run every `sh` block of README.md and docs/ as pasted, check the answers shown [--keep]",
        run: docs_sh::run,
    },
    Command {
        name: "package",
        about: "cargo package of every published crate, each built from its package alone",
        run: package::run,
    },
    Command {
        name: "public-api",
        about: "keyward-core's public API against crates/keyward-core/public-api.txt [--bless]",
        run: public_api::run,
    },
    Command {
        name: "bench",
        about: "load run guarded/plain per adapter, then the criterion suites [--only load,core,sql,redis] [--pooled]",
        run: bench::run,
    },
    Command {
        name: "scale",
        about: "keyward serve at N keys: bulk mint, cache-hit and miss-heavy loads, memory, flush, table [--keys N] [--distinct M] [--seconds S] [--database-url postgres://…/keyward_scale] [--dev] [--baseline BIN [--rounds R]]",
        run: bench::scale::run,
    },
    Command {
        name: "fuzz",
        about: "fuzz what clients control with libFuzzer [--target key|sigv4|scope] [--seconds N] [--build-only] [--json]",
        run: fuzz::run,
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, rest)) = args.split_first() else {
        print_help();
        return ExitCode::from(2);
    };
    if matches!(name.as_str(), "help" | "-h" | "--help") {
        print_help();
        return ExitCode::SUCCESS;
    }
    let Some(command) = COMMANDS.iter().find(|c| c.name == name) else {
        eprintln!("xtask: unknown command `{name}`\n");
        print_help();
        return ExitCode::from(2);
    };
    match (command.run)(rest) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("xtask {}: error: {message}", command.name);
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!("Usage: cargo xtask <command> [args]\n\nCommands:");
    for command in COMMANDS {
        println!("  {:<12}{}", command.name, command.about);
    }
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// Checks that every argument is one of `known` and appears once; returns the flags given.
///
/// # Errors
///
/// An unknown or repeated argument.
pub(crate) fn parse_flags(
    args: &[String],
    known: &[&'static str],
) -> Result<Vec<&'static str>, String> {
    let mut seen: Vec<&'static str> = Vec::new();
    for arg in args {
        let Some(flag) = known.iter().copied().find(|k| k == arg) else {
            return Err(format!(
                "unknown argument `{arg}` (expected: {})",
                known.join(", ")
            ));
        };
        if seen.contains(&flag) {
            return Err(format!("`{flag}` given twice"));
        }
        seen.push(flag);
    }
    Ok(seen)
}
