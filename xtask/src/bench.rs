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
//! Then it runs the criterion benches of the libraries, each of which ends with a ratio report
//! measured in that same run: `core` (verify against its HMAC floor, wrong secret, junk), `sql`
//! (verify on a cache miss against SQLite and PostgreSQL, and with the cache in front), `redis`
//! (verify with the Redis-backed cache, limiter and credits). `--only` picks suites.
//!
//! ```text
//! cargo xtask bench [--only load,abuse,core,sql,redis] [--adapter axum|actix]… [--duration SECS]
//!                   [--connections N] [--rounds N] [--pooled]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod abuse;

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
        if suite != "load" && suite != "abuse" && !CRITERION.iter().any(|(n, _, _)| n == suite) {
            return Err(format!(
                "unknown suite `{suite}` (load, abuse, core, sql, redis)"
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
        o.suites = ["load", "abuse", "core", "sql", "redis"]
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

/// The load run: every adapter's bench server, plain against guarded. Every round is also
/// appended to [`rounds_file`], tagged with the commit, so that `--pooled` can summarise all
/// the runs made of one commit together.
fn load_suite(opts: &Options) -> Result<(), String> {
    let root = crate::workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    let file = rounds_file(&target);
    let commit = commit_id(&root);
    if opts.pooled {
        return pooled(&file, &commit);
    }
    let pin = have("taskset") && cores() >= 2;
    let wrk = have("wrk");
    println!(
        "load: {} · {} connections · {} s per run · {} rounds · pinning: {}",
        if wrk { "wrk" } else { "built-in generator" },
        opts.connections,
        opts.duration,
        opts.rounds,
        if pin {
            "server core 0, load core 1"
        } else {
            "off"
        }
    );
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rows = Vec::new();
    for adapter in &opts.adapters {
        let crate_name = format!("keyward-{adapter}");
        if !root
            .join("crates")
            .join(&crate_name)
            .join("examples/bench_server.rs")
            .exists()
        {
            println!("{adapter}: no examples/bench_server.rs, skipped");
            continue;
        }
        let status = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "-p",
                &crate_name,
                "--example",
                "bench_server",
            ])
            .status()
            .map_err(|e| format!("cargo build: {e}"))?;
        if !status.success() {
            return Err(format!("building {crate_name}'s bench_server failed"));
        }
        let binary = target.join("release/examples/bench_server");
        let mut server = Server::start(&binary, pin)?;
        let result = measure(opts, &server, pin, wrk);
        server.stop();
        let rounds = result?;
        if let Err(e) = record(&file, &commit, run_id, adapter, &rounds) {
            println!("(rounds not recorded in {}: {e})", file.display());
        }
        for m in summarize(&rounds) {
            rows.push((adapter.clone(), m));
        }
    }
    println!(
        "\nrounds recorded in {} (commit {commit}); `cargo xtask bench --only load --pooled` \
         summarises every run of this commit together",
        file.display()
    );
    report(&rows);
    Ok(())
}

/// Prints the table and the verdict on the target.
fn report(rows: &[(String, Measured)]) {
    println!(
        "\n{:<8} {:<14} {:>6} {:>12} {:>14} {:>8} {:>11} {:>11} {:>13} {:>14} {:>9}",
        "adapter",
        "guarded by",
        "rounds",
        "plain req/s",
        "guarded req/s",
        "ratio",
        "95% CI",
        "middle half",
        "plain µs CPU",
        "guarded µs CPU",
        "CPU ratio"
    );
    let mut verdict = Verdict::Shown;
    for (adapter, m) in rows {
        if m.form == GUARDED[0].0 {
            verdict = verdict.min(Verdict::of(m));
        }
        println!(
            "{adapter:<8} {:<14} {:>6} {:>12.0} {:>14.0} {:>8.3} {:>11} {:>11} {:>13.2} {:>14.2} {:>9.3}",
            m.form,
            m.rounds,
            m.plain,
            m.guarded,
            m.ratio,
            format!("{:.2}–{:.2}", m.ratio_ci.0, m.ratio_ci.1),
            format!("{:.2}–{:.2}", m.ratio_q1, m.ratio_q3),
            m.plain_cpu_us,
            m.guarded_cpu_us,
            m.cpu_ratio
        );
    }
    println!(
        "\nguard: the authentication layer checking the scope itself (/guarded); + scope layer: \
         the authentication layer with the framework's scope-requirement layer inside it \
         (/guarded-route-scopes).\n\
         ratio: median over rounds of guarded/plain req/s, every route run once per round (paired, \
         so drift in the machine's speed cancels; the route that goes first rotates); 95% CI: a \
         distribution-free confidence interval for that median (order statistics); middle half: \
         where half of the rounds fell; CPU ratio: the median ratio of the server's CPU time per \
         request (plain/guarded), read from /proc.\n\
         target guarded/plain ≥ {TARGET_RATIO} for the guard: {} (cache hit, in-memory store, \
         trivial handler; figures are for this machine only)",
        match verdict {
            Verdict::Shown => "met, the whole 95% interval above it",
            Verdict::Median => "met at the median, but the 95% interval reaches below it",
            Verdict::Missed => "NOT met",
        }
    );
}

/// How a guard's ratio stands against [`TARGET_RATIO`]; ordered worst first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    /// The median is below the target.
    Missed,
    /// The median meets it; the confidence interval reaches below it.
    Median,
    /// The whole confidence interval is above it.
    Shown,
}

impl Verdict {
    fn of(m: &Measured) -> Self {
        if m.ratio < TARGET_RATIO {
            Self::Missed
        } else if m.ratio_ci.0 < TARGET_RATIO {
            Self::Median
        } else {
            Self::Shown
        }
    }
}

/// The unguarded route of every bench server.
const PLAIN: &str = "/plain";

/// The guarded routes, each measured against [`PLAIN`]: name, path. The target is judged on the
/// first, the guard itself (authentication and the scope check in one layer); the second adds
/// the framework's own scope-requirement layer inside it, which costs axum a boxed service
/// cloned per request.
const GUARDED: [(&str, &str); 2] = [
    ("guard", "/guarded"),
    ("+ scope layer", "/guarded-route-scopes"),
];

/// How many routes each round loads: [`PLAIN`], then every one of [`GUARDED`].
const ROUTES: usize = 1 + GUARDED.len();

/// What one adapter's load run measured for one guarded route.
struct Measured {
    /// Which of [`GUARDED`].
    form: &'static str,
    /// How many paired rounds.
    rounds: usize,
    /// Median plain requests per second.
    plain: f64,
    /// Median guarded requests per second.
    guarded: f64,
    /// Median of the per-round ratios guarded/plain.
    ratio: f64,
    /// A 95 % confidence interval for that median.
    ratio_ci: (f64, f64),
    /// First quartile of the per-round ratios.
    ratio_q1: f64,
    /// Third quartile of the per-round ratios.
    ratio_q3: f64,
    /// Median server CPU time per plain request, in microseconds.
    plain_cpu_us: f64,
    /// Median server CPU time per guarded request, in microseconds.
    guarded_cpu_us: f64,
    /// Median of the per-round ratios of CPU per request, plain/guarded.
    cpu_ratio: f64,
}

/// Round by round, per route ([`PLAIN`] first, then [`GUARDED`]): requests per second and server
/// CPU microseconds per request.
#[derive(Default)]
struct Rounds {
    rps: [Vec<f64>; ROUTES],
    cpu: [Vec<f64>; ROUTES],
}

impl Rounds {
    fn push(&mut self, round: [(f64, f64); ROUTES]) {
        for (i, (r, c)) in round.into_iter().enumerate() {
            self.rps[i].push(r);
            self.cpu[i].push(c);
        }
    }
}

/// The medians, intervals and ratios of `rounds`, one [`Measured`] per guarded route.
fn summarize(rounds: &Rounds) -> Vec<Measured> {
    let plain = median(&mut rounds.rps[0].clone());
    let plain_cpu_us = median(&mut rounds.cpu[0].clone());
    GUARDED
        .iter()
        .enumerate()
        .map(|(i, (form, _))| {
            let g = i + 1;
            let mut ratios: Vec<f64> = rounds.rps[g]
                .iter()
                .zip(&rounds.rps[0])
                .map(|(g, p)| g / p)
                .collect();
            let mut cpu_ratios: Vec<f64> = rounds.cpu[0]
                .iter()
                .zip(&rounds.cpu[g])
                .map(|(p, g)| p / g)
                .collect();
            let (ratio_q1, ratio_q3) = quartiles(&mut ratios);
            Measured {
                form,
                rounds: ratios.len(),
                plain,
                guarded: median(&mut rounds.rps[g].clone()),
                ratio: median(&mut ratios),
                ratio_ci: median_ci(&ratios),
                ratio_q1,
                ratio_q3,
                plain_cpu_us,
                guarded_cpu_us: median(&mut rounds.cpu[g].clone()),
                cpu_ratio: median(&mut cpu_ratios),
            }
        })
        .collect()
}

/// Where the rounds of every run are kept.
fn rounds_file(target: &std::path::Path) -> std::path::PathBuf {
    target.join("xtask-bench").join("load-rounds.csv")
}

/// The commit measured: `git rev-parse --short HEAD`, with `+dirty` when the work tree has
/// changes (runs of a dirty tree may each have measured different code).
fn commit_id(root: &std::path::Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}+dirty") } else { head }
}

/// The header of [`rounds_file`].
const CSV_HEADER: &str =
    "commit,run,adapter,round,plain_rps,plain_cpu_us,guard_rps,guard_cpu_us,scope_rps,scope_cpu_us";

/// Appends one adapter's rounds to `file`.
fn record(
    file: &std::path::Path,
    commit: &str,
    run: u64,
    adapter: &str,
    rounds: &Rounds,
) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let new = !file.exists();
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    if new {
        writeln!(out, "{CSV_HEADER}")?;
    }
    for k in 0..rounds.rps[0].len() {
        write!(out, "{commit},{run},{adapter},{}", k + 1)?;
        for i in 0..ROUTES {
            write!(out, ",{:.1},{:.3}", rounds.rps[i][k], rounds.cpu[i][k])?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Every adapter's rounds recorded for one commit: adapter, runs, rounds.
type Pool = Vec<(String, usize, Rounds)>;

/// Reads the rounds recorded in `file` for `commit`, per adapter, in the order first recorded.
fn read_pool(file: &std::path::Path, commit: &str) -> Result<Pool, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "{}: {e} (run `cargo xtask bench --only load` first)",
            file.display()
        )
    })?;
    let mut pool: Vec<(String, Vec<String>, Rounds)> = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        // commit, run, adapter, round, then req/s and CPU µs per route.
        if f.len() != 4 + 2 * ROUTES || f[0] != commit {
            continue;
        }
        let num = |i: usize| {
            f[i].parse::<f64>()
                .map_err(|_| format!("bad line in {}: {line}", file.display()))
        };
        let mut round = [(0.0, 0.0); ROUTES];
        for (k, slot) in round.iter_mut().enumerate() {
            *slot = (num(4 + 2 * k)?, num(5 + 2 * k)?);
        }
        let i = if let Some(i) = pool.iter().position(|(a, _, _)| a == f[2]) {
            i
        } else {
            pool.push((f[2].to_owned(), Vec::new(), Rounds::default()));
            pool.len() - 1
        };
        let (_, runs, rounds) = &mut pool[i];
        if !runs.iter().any(|r| r == f[1]) {
            runs.push(f[1].to_owned());
        }
        rounds.push(round);
    }
    if pool.is_empty() {
        return Err(format!(
            "{}: no rounds recorded for commit {commit}",
            file.display()
        ));
    }
    Ok(pool
        .into_iter()
        .map(|(adapter, runs, rounds)| (adapter, runs.len(), rounds))
        .collect())
}

/// `--pooled`: every round recorded for `commit`, per adapter, summarised as one run.
fn pooled(file: &std::path::Path, commit: &str) -> Result<(), String> {
    let pool = read_pool(file, commit)?;
    println!(
        "load, pooled: every round recorded for commit {commit} in {}",
        file.display()
    );
    let mut rows = Vec::new();
    for (adapter, runs, rounds) in &pool {
        println!("  {adapter}: {runs} runs, {} rounds", rounds.rps[0].len());
        for m in summarize(rounds) {
            rows.push((adapter.clone(), m));
        }
    }
    report(&rows);
    Ok(())
}

/// User + system CPU time of process `pid`, in seconds (`/proc/<pid>/stat`, fields 14 and 15,
/// in clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it start past the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Plain and guarded load, round by round: each round runs every route once, the order
/// rotating, and each guarded route is compared with the plain run of its own round.
fn measure(opts: &Options, server: &Server, pin: bool, wrk: bool) -> Result<Rounds, String> {
    let load = |path: &str, secs: u64| -> Result<f64, String> {
        let url = format!("http://{}{path}", server.addr);
        if wrk {
            run_wrk(&url, &server.key, opts.connections, secs, pin)
        } else {
            builtin_load(&server.addr, path, &server.key, opts.connections, secs)
        }
    };
    let paths: [&str; ROUTES] =
        std::array::from_fn(|i| if i == 0 { PLAIN } else { GUARDED[i - 1].1 });
    // Warm up (and check that every route answers 200).
    for path in &paths {
        load(path, 1)?;
    }
    let pid = server.child.id();
    // Requests per second and server CPU microseconds per request, for one run.
    let run = |path: &str| -> Result<(f64, f64), String> {
        let before = cpu_seconds(pid);
        let rps = load(path, opts.duration)?;
        let after = cpu_seconds(pid);
        #[allow(clippy::cast_precision_loss, reason = "seconds of load")]
        let requests = rps * opts.duration as f64;
        let cpu_us = match (before, after) {
            (Some(b), Some(a)) if requests > 0.0 => (a - b) * 1e6 / requests,
            _ => f64::NAN,
        };
        Ok((rps, cpu_us))
    };
    let mut rounds = Rounds::default();
    for round in 1..=opts.rounds {
        // Rotate which route goes first, so that none always inherits another's aftermath
        // (closing connections, a slow spell that starts mid-round).
        let mut this = [(0.0, 0.0); ROUTES];
        for k in 0..paths.len() {
            let i = (k + round as usize) % paths.len();
            this[i] = run(paths[i])?;
        }
        let (p, pc) = this[0];
        let mut line = format!("  round {round}: plain {p:.0} req/s ({pc:.2} µs CPU each)");
        for (i, (g, gc)) in this.iter().enumerate().skip(1) {
            line.push_str(&format!(
                ", {} {g:.0} ({gc:.2} µs, ratio {:.3})",
                GUARDED[i - 1].1,
                g / p
            ));
        }
        println!("{line}");
        rounds.push(this);
    }
    Ok(rounds)
}

/// The first and third quartiles (nearest rank): where the middle half of the rounds fell.
fn quartiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => (0.0, 0.0),
        n => (v[n / 4], v[(3 * n) / 4]),
    }
}

/// A distribution-free 95 % confidence interval for the median of `sorted` (ascending): the
/// order statistics `x(j)` and `x(n+1-j)` (1-based), with `j` the largest rank for which
/// `P(B ≤ j-1) ≤ 0.025`, `B ~ Binomial(n, 1/2)`. Below 6 values even the whole range, which is
/// what is given then, covers less than 95 %.
fn median_ci(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    // P(B = i) in log space, so that large n does not underflow 2^-n.
    #[allow(clippy::cast_precision_loss, reason = "round counts are small")]
    let nf = n as f64;
    let mut log_p = -nf * std::f64::consts::LN_2;
    let mut cdf = 0.0;
    // j - 1: the number of values left below the interval.
    let mut below = 0;
    for i in 0..n {
        cdf += log_p.exp(); // P(B ≤ i)
        if cdf > 0.025 {
            break;
        }
        below = i;
        #[allow(clippy::cast_precision_loss, reason = "round counts are small")]
        let (k, left) = (i as f64, (n - i) as f64);
        log_p += left.ln() - (k + 1.0).ln();
    }
    (sorted[below], sorted[n - 1 - below])
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

struct Server {
    child: Child,
    addr: String,
    key: String,
}

impl Server {
    fn start(binary: &std::path::Path, pin: bool) -> Result<Self, String> {
        let mut cmd = on_core(pin.then_some(0), binary);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out)
                .read_line(&mut line)
                .map_err(|e| format!("reading READY: {e}"))?;
        }
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some("READY"), Some(addr), Some(key)) => Ok(Self {
                addr: addr.to_owned(),
                key: key.to_owned(),
                child,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "bench server did not print `READY <addr> <key>` (got {line:?})"
                ))
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `program`, pinned to `core` with `taskset` when one is given (the server on core 0, the load
/// on core 1).
fn on_core(core: Option<u8>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn run_wrk(url: &str, key: &str, connections: u32, secs: u64, pin: bool) -> Result<f64, String> {
    let out = on_core(pin.then_some(1), "wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s")])
        .args(["-H", &format!("Authorization: Bearer {key}"), url])
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        return Err(format!("{url}: errors under load:\n{text}"));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{text}"))
}

/// One thread per keep-alive connection, each sending the request and reading the answer in a
/// loop until the deadline. Every answer must be `200`.
fn builtin_load(
    addr: &str,
    path: &str,
    key: &str,
    connections: u32,
    secs: u64,
) -> Result<f64, String> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\r\n")
            .into_bytes();
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let (request, done, failed, addr) = (
                Arc::clone(&request),
                Arc::clone(&done),
                Arc::clone(&failed),
                addr.to_owned(),
            );
            std::thread::spawn(move || {
                let Ok(mut stream) = TcpStream::connect(&addr) else {
                    failed.store(true, Ordering::Relaxed);
                    return;
                };
                let _ = stream.set_nodelay(true);
                let mut buf = Vec::with_capacity(4096);
                while Instant::now() < deadline {
                    if stream.write_all(&request).is_err() || !read_200(&mut stream, &mut buf) {
                        failed.store(true, Ordering::Relaxed);
                        return;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    if failed.load(Ordering::Relaxed) {
        return Err(format!("{path}: a request failed or did not answer 200"));
    }
    #[allow(
        clippy::cast_precision_loss,
        reason = "request counts are far below 2^52"
    )]
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Reads one response with a `Content-Length` body; `true` when it was a `200`.
fn read_200(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let ok = head.starts_with("http/1.1 200");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(n: usize) -> Vec<f64> {
        #[allow(clippy::cast_precision_loss, reason = "small test sizes")]
        (1..=n).map(|r| r as f64).collect()
    }

    #[test]
    fn median_ci_takes_the_tabulated_ranks() {
        // Ranks of the 95 % interval for the median, from the binomial table: n = 21 → 6..16,
        // n = 31 → 10..22, n = 63 → 24..40.
        assert_eq!(median_ci(&ranks(21)), (6.0, 16.0));
        assert_eq!(median_ci(&ranks(31)), (10.0, 22.0));
        assert_eq!(median_ci(&ranks(63)), (24.0, 40.0));
    }

    #[test]
    fn median_ci_of_few_values_is_the_whole_range() {
        assert_eq!(median_ci(&ranks(5)), (1.0, 5.0));
        assert_eq!(median_ci(&ranks(1)), (1.0, 1.0));
        assert_eq!(median_ci(&[]), (0.0, 0.0));
    }

    #[test]
    fn median_ci_does_not_underflow_for_many_rounds() {
        let (lo, hi) = median_ci(&ranks(2000));
        assert!(
            lo > 900.0 && lo < 1000.0 && hi > 1000.0 && hi < 1100.0,
            "{lo}..{hi}"
        );
    }

    #[test]
    fn recorded_rounds_read_back_pooled() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let file = rounds_file(&dir);
        let mut a = Rounds::default();
        a.push([(100.0, 10.0), (90.0, 11.0), (80.0, 12.0)]);
        let mut b = Rounds::default();
        b.push([(200.0, 5.0), (200.0, 5.0), (100.0, 10.0)]);
        record(&file, "abc", 1, "axum", &a).unwrap();
        record(&file, "other", 2, "axum", &a).unwrap();
        record(&file, "abc", 3, "axum", &b).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().next(), Some(CSV_HEADER));
        assert_eq!(text.lines().count(), 4);
        let pool = read_pool(&file, "abc").unwrap();
        assert_eq!(pool.len(), 1);
        let (adapter, runs, rounds) = &pool[0];
        assert_eq!((adapter.as_str(), *runs), ("axum", 2));
        assert_eq!(rounds.rps[0], [100.0, 200.0]);
        assert_eq!(rounds.cpu[2], [12.0, 10.0]);
        let m = summarize(rounds);
        assert_eq!(m[0].ratio, f64::midpoint(0.9, 1.0));
        assert_eq!(m[1].ratio, f64::midpoint(0.8, 0.5));
        assert!(read_pool(&file, "nothing-recorded").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
