//! `cargo xtask bench`: what the web adapters' guard costs under load.
//!
//! For each adapter that has a `crates/keyward-<adapter>/examples/bench_server.rs`, builds it in
//! release mode, starts it, and loads `GET /plain` (a trivial handler), `GET /guarded` (the same
//! handler behind the adapter's authentication layer, which also checks a scope, with a valid
//! key: a cache hit) and `GET /guarded-route-scopes` (the same, with the scope checked by the
//! adapter's separate scope-requirement layer instead) from this second process over loopback.
//! Prints requests per second for each and the ratios guarded/unguarded (the target, ≥ 0.85, is
//! judged on `/guarded`).
//!
//! The bench server prints one line `READY <addr> <api_key>` on stdout when it listens. Load
//! comes from `wrk` when it is installed (`apt-get install wrk`), otherwise from a small built-in
//! generator (blocking keep-alive connections, one thread each). On a machine with two or more
//! cores the server is pinned to core 0 and the load to core 1 with `taskset` when available.
//! Each round runs every route back to back (which goes first rotates); each ratio
//! reported is the median of the per-round ratios (a paired estimate: drift in the machine's
//! speed hits both runs of a round alike), with a distribution-free 95 % confidence interval for
//! that median and the middle half of the rounds beside it. The default is 31 rounds of 2 s: on
//! a shared VM single rounds swing by ±20 % and more. The server's CPU time per request, read
//! from `/proc/<pid>/stat`, gives a second ratio. Every round is appended to
//! `target/xtask-bench/load-rounds.csv` with the commit measured, and `--pooled` summarises all
//! the rounds recorded for the current commit as one sample, without measuring.
//!
//! `abuse` ([`abuse`]) floods the `keyward` server over SQLite with made-up keys, one repeated
//! and 200 distinct from one address, against a valid key in the same rounds (target ≥ 0.5).
//!
//! `limits` ([`limits`]) loads the `keyward` server with `--redis-url` through a key with a
//! Redis rate limit and one with Redis credits, neither reached, against a plain key in the same
//! rounds (target ≥ 0.9), and the same with leasing off for comparison.
//!
//! Then it runs the criterion benches of the libraries, each of which ends with a ratio report
//! measured in that same run: `core` (verify against its HMAC floor, wrong secret, junk), `sql`
//! (verify on a cache miss against SQLite and PostgreSQL, and with the cache in front), `redis`
//! (verify with the Redis-backed cache, limiter and credits). `--only` picks suites.
//!
//! ```text
//! cargo xtask bench [--only load,abuse,limits,core,sql,redis] [--adapter axum|actix]… [--duration SECS]
//!                   [--connections N] [--rounds N] [--pooled]
//! ```

use std::process::{Command, ExitCode};

mod abuse;
mod limits;
mod load;
mod rounds;
pub(crate) mod scale;
mod stats;

use load::{cores, have, load_suite, on_core, pinning};
use stats::{median, median_ci};

/// The ratio guarded/unguarded the issue asks for.
const TARGET_RATIO: f64 = 0.85;

/// The criterion suites: name, package, bench target.
const CRITERION: &[(&str, &str, &str)] = &[
    ("core", "keyward-core", "verify"),
    ("sql", "keyward-sea-orm", "verify_sql"),
    ("redis", "keyward-redis", "verify_redis"),
];

#[derive(Clone)]
struct Options {
    suites: Vec<String>,
    adapters: Vec<String>,
    duration: u64,
    connections: u32,
    rounds: u32,
    /// Summarise the rounds recorded for this commit instead of measuring.
    pooled: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        suites: Vec::new(),
        adapters: Vec::new(),
        duration: 2,
        connections: 16,
        // On a shared VM single rounds swing by ±20 % and more: many short paired rounds give a
        // median that two runs agree on far better than a few long ones, and 31 narrow its
        // confidence interval to about ±0.05.
        rounds: 31,
        pooled: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--adapter" => o.adapters.push(value()?.clone()),
            "--only" => o
                .suites
                .extend(value()?.split(',').map(|s| s.trim().to_owned())),
            "--duration" => o.duration = value()?.parse().map_err(|_| "--duration: seconds")?,
            "--connections" => {
                o.connections = value()?.parse().map_err(|_| "--connections: a number")?;
            }
            "--rounds" => o.rounds = value()?.parse().map_err(|_| "--rounds: a number")?,
            "--pooled" => o.pooled = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    for suite in &o.suites {
        if !["load", "abuse", "limits"].contains(&suite.as_str())
            && !CRITERION.iter().any(|(n, _, _)| n == suite)
        {
            return Err(format!(
                "unknown suite `{suite}` (load, abuse, limits, core, sql, redis)"
            ));
        }
    }
    if o.pooled {
        // A summary of recorded load rounds: nothing is measured.
        if o.suites.iter().any(|s| s != "load") {
            return Err("--pooled summarises the load suite only".into());
        }
        o.suites = vec!["load".into()];
    }
    if o.suites.is_empty() {
        o.suites = ["load", "abuse", "limits", "core", "sql", "redis"]
            .map(String::from)
            .to_vec();
    }
    if o.adapters.is_empty() {
        o.adapters = vec!["axum".into(), "actix".into()];
    }
    if o.duration == 0 || o.connections == 0 || o.rounds == 0 {
        return Err("duration, connections and rounds must be at least 1".into());
    }
    Ok(o)
}

/// Runs `cargo xtask bench [args]`.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    let opts = parse(args)?;
    if opts.suites.iter().any(|s| s == "load") {
        load_suite(&opts)?;
    }
    if opts.suites.iter().any(|s| s == "abuse") {
        println!("\n======== abuse: floods of made-up keys against keyward serve");
        abuse::run(&opts)?;
    }
    if opts.suites.iter().any(|s| s == "limits") {
        println!("\n======== limits: Redis rate limits and credits against keyward serve");
        limits::run(&opts)?;
    }
    for (name, package, bench) in CRITERION {
        if !opts.suites.iter().any(|s| s == name) {
            continue;
        }
        println!("\n======== {name}: cargo bench --all-features -p {package} --bench {bench}");
        let status = Command::new(env!("CARGO"))
            .current_dir(crate::workspace_root())
            .args(["bench", "--all-features", "-p", package, "--bench", bench])
            .status()
            .map_err(|e| format!("cargo bench: {e}"))?;
        if !status.success() {
            return Err(format!("the {name} bench ({package}/{bench}) failed"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
