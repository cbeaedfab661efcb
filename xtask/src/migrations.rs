//! `cargo xtask migrations [--check] [--table-prefix P] [--out DIR]`: renders the SQL schema of
//! `keyward-sea-orm` from its entities into `migrations/{postgres,sqlite,mysql}/`.
//!
//! It runs `examples/user-xtask`, the ten-line xtask `docs/databases.md` gives users, which calls
//! `keyward_sea_orm::MigrationFiles::run_cli`: one function writes (and `--check`s) the files
//! for this repository and for every application, and CI's `--check` proves that the user's
//! program produces exactly `migrations/`. This binary stays plain `std`.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

struct Options {
    check: bool,
    prefix: String,
    out: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options {
        check: false,
        prefix: String::new(),
        out: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--check" => options.check = true,
            "--table-prefix" => {
                options.prefix = it.next().ok_or("--table-prefix needs a value")?.clone();
            }
            "--out" => options.out = Some(PathBuf::from(it.next().ok_or("--out needs a value")?)),
            "-h" | "--help" => return Ok(None),
            other => {
                return Err(format!(
                    "unknown argument `{other}` (expected --check, --table-prefix P, --out DIR)"
                ));
            }
        }
    }
    Ok(Some(options))
}

fn usage() {
    println!(
        "Usage: cargo xtask migrations [--check] [--table-prefix P] [--out DIR]\n\n\
         Renders the keyward-sea-orm schema into <DIR>/{{postgres,sqlite,mysql}}/*.sql.\n  \
         --check            compare instead of writing; exit 1 when the files differ\n  \
         --table-prefix P   prefix table and index names (default: none)\n  \
         --out DIR          where the files go (default: migrations/, or\n                     \
         target/migrations/<P>/ with a prefix)"
    );
}

/// Runs `cargo xtask migrations`.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some(options) = parse(args)? else {
        usage();
        return Ok(ExitCode::SUCCESS);
    };
    let root = crate::workspace_root();
    let out = options.out.clone().unwrap_or_else(|| {
        if options.prefix.is_empty() {
            root.join("migrations")
        } else {
            root.join("target").join("migrations").join(&options.prefix)
        }
    });
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args([
        "run",
        "--quiet",
        "--package",
        "user-xtask",
        "--",
        "migrations",
        "--dir",
    ]);
    cmd.arg(&out);
    if !options.prefix.is_empty() {
        cmd.args(["--table-prefix", &options.prefix]);
    }
    if options.check {
        cmd.arg("--check");
    }
    let status = cmd
        .status()
        .map_err(|e| format!("could not run examples/user-xtask: {e}"))?;
    if status.success() {
        return Ok(ExitCode::SUCCESS);
    }
    if options.check && status.code() == Some(1) {
        let fix = if options.prefix.is_empty() {
            "cargo xtask migrations".to_owned()
        } else {
            format!("cargo xtask migrations --table-prefix {}", options.prefix)
        };
        eprintln!("Fix: `{fix}`, then commit the result.");
    }
    Ok(ExitCode::FAILURE)
}
