//! `cargo xtask fuzz`: coverage-guided fuzzing of what clients control, with libFuzzer.
//!
//! The targets live in `fuzz/` (a crate outside the workspace, after cargo-fuzz's layout):
//! `key` (presented keys, `Authorization` and `X-API-Key` values), `sigv4` (the SigV4
//! `Authorization` header, `X-Amz-Date`, canonical requests) and `scope` (scope lists and
//! requirements). Each must answer every input without panicking.
//!
//! No cargo-fuzz and no nightly are needed: the targets are built in release mode with
//! rustc's stable SanitizerCoverage passes (what cargo-fuzz passes, less the address sanitizer,
//! which safe Rust does not need), with debug assertions and overflow checks on, into
//! `target/fuzz`. libFuzzer itself comes from the `libfuzzer-sys` crate (a C++ compiler is
//! needed once, to build it).
//!
//! Each target runs for `--seconds` (default 60), starting from the checked-in seeds in
//! `fuzz/seeds/<target>` and the corpus it grew on earlier runs in `target/fuzz/corpus/<target>`.
//! A crash stops the run with the input saved under `target/fuzz/artifacts/<target>/`; rerun
//! it with `target/fuzz/<host triple>/release/<target> <file>`. libFuzzer's own output goes to
//! `target/fuzz/logs/<target>.log`.
//!
//! ```text
//! cargo xtask fuzz [--target key|sigv4|scope]… [--seconds N] [--build-only] [--json]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Every fuzz target, in `fuzz/Cargo.toml`.
const TARGETS: [&str; 3] = ["key", "sigv4", "scope"];

/// rustc flags for libFuzzer's coverage feedback, as cargo-fuzz sets them (stable options).
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cdebug-assertions",
    "-Coverflow-checks",
    "--cfg=fuzzing",
];

struct Options {
    targets: Vec<String>,
    seconds: u64,
    build_only: bool,
    json: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        targets: Vec::new(),
        seconds: 60,
        build_only: false,
        json: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--target" => {
                let t = value()?;
                if !TARGETS.contains(&t.as_str()) {
                    return Err(format!("unknown target `{t}` ({})", TARGETS.join(", ")));
                }
                o.targets.push(t.clone());
            }
            "--seconds" => {
                o.seconds = value()?
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or("--seconds: a whole number of seconds, at least 1")?;
            }
            "--build-only" => o.build_only = true,
            "--json" => o.json = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.map(String::from).to_vec();
    }
    Ok(o)
}

/// What one target's run found.
struct Outcome {
    target: String,
    /// Inputs executed, from libFuzzer's last status line.
    runs: Option<u64>,
    /// Coverage points reached.
    coverage: Option<u64>,
    /// Inputs in the corpus at the end.
    corpus: usize,
    /// The input that crashed it, if one did.
    crash: Option<PathBuf>,
    seconds: f64,
}

/// Runs `cargo xtask fuzz [args]`.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    let opts = parse(args)?;
    let root = crate::workspace_root();
    let target_dir = root.join("target").join("fuzz");
    let host = host_triple()?;
    build(&root, &target_dir, &host, &opts)?;
    // Where cargo puts what it builds for an explicit `--target`.
    let bin_dir = target_dir.join(&host).join("release");
    if opts.build_only {
        if !opts.json {
            println!("fuzz targets built in {}", bin_dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut outcomes = Vec::new();
    for (i, target) in opts.targets.iter().enumerate() {
        if !opts.json {
            println!(
                "[{}/{}] fuzzing `{target}` for {} s …",
                i + 1,
                opts.targets.len(),
                opts.seconds
            );
        }
        let outcome = fuzz_one(&root, &target_dir, &bin_dir, target, opts.seconds)?;
        if !opts.json {
            println!("      {}", describe(&outcome));
        }
        let crashed = outcome.crash.is_some();
        outcomes.push(outcome);
        if crashed {
            break;
        }
    }
    if opts.json {
        println!("{}", to_json(&outcomes));
    }
    Ok(if outcomes.iter().any(|o| o.crash.is_some()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Builds the requested targets with coverage instrumentation.
fn build(root: &Path, target_dir: &Path, host: &str, opts: &Options) -> Result<(), String> {
    if !opts.json {
        println!(
            "building fuzz targets (release, SanitizerCoverage) into {} …",
            target_dir.display()
        );
    }
    let mut cmd = Command::new(env!("CARGO"));
    // An explicit `--target`, so that RUSTFLAGS instrument the targets but not build scripts
    // (which would then need libFuzzer's symbols to link).
    cmd.current_dir(root.join("fuzz"))
        .args(["build", "--release", "--locked", "--target", host])
        .env("CARGO_TARGET_DIR", target_dir)
        .env("RUSTFLAGS", RUSTFLAGS.join(" "))
        // The workspace's rustflags and build settings are not the fuzz crate's.
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    for t in &opts.targets {
        cmd.args(["--bin", t]);
    }
    if opts.json {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cargo build (fuzz): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("building the fuzz targets failed: cargo's message is above (libFuzzer also needs a C++ compiler; a dependency change in keyward-core needs fuzz/Cargo.lock updated: `cargo update --manifest-path fuzz/Cargo.toml -p keyward-core`)".into())
    }
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> Result<String, String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV did not name the host".into())
}

/// Runs one target, built in `bin_dir`, for `seconds`; libFuzzer's output goes to its log file.
fn fuzz_one(
    root: &Path,
    target_dir: &Path,
    bin_dir: &Path,
    target: &str,
    seconds: u64,
) -> Result<Outcome, String> {
    let corpus = target_dir.join("corpus").join(target);
    let artifacts = target_dir.join("artifacts").join(target);
    let logs = target_dir.join("logs");
    for dir in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let before: Vec<PathBuf> = entries(&artifacts);
    let started = Instant::now();
    let status = Command::new(bin_dir.join(target))
        .arg(format!("-max_total_time={seconds}"))
        // Inputs up to 4 KiB: longer than any header keyward accepts.
        .arg("-max_len=4096")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus)
        .arg(root.join("fuzz").join("seeds").join(target))
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|e| format!("running the `{target}` fuzz target: {e}"))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let crash = entries(&artifacts)
        .into_iter()
        .find(|p| !before.contains(p))
        .or_else(|| (!status.success()).then(|| log_path.clone()));
    Ok(Outcome {
        target: target.to_owned(),
        runs: last_stat(&text, "#", '\t'),
        coverage: last_stat(&text, "cov: ", ' '),
        corpus: entries(&corpus).len(),
        crash,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The files in `dir`, sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The number after the last `marker` in libFuzzer's status lines (`#123456 DONE cov: 789 …`).
fn last_stat(log: &str, marker: &str, end: char) -> Option<u64> {
    log.lines()
        .rev()
        .filter(|l| l.starts_with('#'))
        .find_map(|l| {
            let start = l.find(marker)? + marker.len();
            let rest = &l[start..];
            rest.split(end).next()?.parse().ok()
        })
}

fn describe(o: &Outcome) -> String {
    let num = |v: Option<u64>| v.map_or_else(|| "?".into(), |n| n.to_string());
    match &o.crash {
        None => format!(
            "ok: {} inputs in {:.0} s, {} coverage points, corpus {}",
            num(o.runs),
            o.seconds,
            num(o.coverage),
            o.corpus
        ),
        Some(p) => format!(
            "CRASH after {:.0} s: input saved at {} (log in target/fuzz/logs/{}.log)",
            o.seconds,
            p.display(),
            o.target
        ),
    }
}

fn to_json(outcomes: &[Outcome]) -> String {
    let num = |v: Option<u64>| v.map_or_else(|| "null".into(), |n| n.to_string());
    let items: Vec<String> = outcomes
        .iter()
        .map(|o| {
            format!(
                "{{\"target\":\"{}\",\"runs\":{},\"coverage\":{},\"corpus\":{},\"seconds\":{:.1},\"crash\":{}}}",
                o.target,
                num(o.runs),
                num(o.coverage),
                o.corpus,
                o.seconds,
                o.crash.as_ref().map_or_else(
                    || "null".into(),
                    |p| format!("\"{}\"", p.display().to_string().replace('\\', "\\\\").replace('"', "\\\""))
                )
            )
        })
        .collect();
    format!("{{\"targets\":[{}]}}", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_final_status() {
        let log = "INFO: seed\n#2\tINITED cov: 10 ft: 11 corp: 1/1b\n#4096\tpulse  cov: 80 ft: 90\n\
                   #52137\tDONE   cov: 312 ft: 1200 corp: 140/9Kb exec/s: 1700\nDone 52137 runs";
        assert_eq!(last_stat(log, "#", '\t'), Some(52137));
        assert_eq!(last_stat(log, "cov: ", ' '), Some(312));
        assert_eq!(last_stat("no status", "cov: ", ' '), None);
    }

    #[test]
    fn options() {
        let o = parse(&[
            "--target".into(),
            "key".into(),
            "--seconds".into(),
            "5".into(),
        ])
        .unwrap();
        assert_eq!(
            (o.targets, o.seconds, o.build_only),
            (vec!["key".to_owned()], 5, false)
        );
        assert!(parse(&["--target".into(), "nope".into()]).is_err());
        assert!(parse(&["--seconds".into(), "0".into()]).is_err());
        assert_eq!(parse(&[]).unwrap().targets.len(), TARGETS.len());
    }
}
