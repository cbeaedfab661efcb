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
//! speed hits both runs of a round alike), with the middle half of the rounds beside it. The
//! default, 21 rounds of 2 s, is what it takes on a shared VM for two runs to agree. The server's
//! CPU time per request, read from `/proc/<pid>/stat`, gives a second ratio.
//!
//! Then it runs the criterion benches of the libraries, each of which ends with a ratio report
//! measured in that same run: `core` (verify against its HMAC floor, wrong secret, junk), `sql`
//! (verify on a cache miss against SQLite and PostgreSQL, and with the cache in front), `redis`
//! (verify with the Redis-backed cache, limiter and credits). `--only` picks suites.
//!
//! ```text
//! cargo xtask bench [--only load,core,sql,redis] [--adapter axum|actix]… [--duration SECS]
//!                   [--connections N] [--rounds N]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The ratio guarded/unguarded the issue asks for.
const TARGET_RATIO: f64 = 0.85;

/// The criterion suites: name, package, bench target.
const CRITERION: &[(&str, &str, &str)] = &[
    ("core", "keyward-core", "verify"),
    ("sql", "keyward-sea-orm", "verify_sql"),
    ("redis", "keyward-redis", "verify_redis"),
];

struct Options {
    suites: Vec<String>,
    adapters: Vec<String>,
    duration: u64,
    connections: u32,
    rounds: u32,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        suites: Vec::new(),
        adapters: Vec::new(),
        duration: 2,
        connections: 16,
        // On a shared VM single rounds swing by ±20 %: many short paired rounds give a median
        // that two runs agree on far better than a few long ones.
        rounds: 21,
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
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    for suite in &o.suites {
        if suite != "load" && !CRITERION.iter().any(|(n, _, _)| n == suite) {
            return Err(format!("unknown suite `{suite}` (load, core, sql, redis)"));
        }
    }
    if o.suites.is_empty() {
        o.suites = ["load", "core", "sql", "redis"].map(String::from).to_vec();
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

/// The load run: every adapter's bench server, plain against guarded.
fn load_suite(opts: &Options) -> Result<(), String> {
    let root = crate::workspace_root();
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
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), std::path::PathBuf::from);
        let binary = target.join("release/examples/bench_server");
        let mut server = Server::start(&binary, pin)?;
        let result = measure(opts, &server, pin, wrk);
        server.stop();
        for m in result? {
            rows.push((adapter.clone(), m));
        }
    }
    println!(
        "\n{:<8} {:<14} {:>12} {:>14} {:>8} {:>13} {:>13} {:>13} {:>10}",
        "adapter",
        "guarded by",
        "plain req/s",
        "guarded req/s",
        "ratio",
        "middle half",
        "plain µs CPU",
        "guarded µs CPU",
        "CPU ratio"
    );
    let mut all_met = true;
    for (adapter, m) in &rows {
        if m.form == GUARDED[0].0 {
            all_met &= m.ratio >= TARGET_RATIO;
        }
        println!(
            "{adapter:<8} {:<14} {:>12.0} {:>14.0} {:>8.3} {:>13} {:>13.2} {:>14.2} {:>10.3}",
            m.form,
            m.plain,
            m.guarded,
            m.ratio,
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
         so drift in the machine's speed cancels; the route that goes first rotates), with the \
         middle half of the rounds beside it; CPU ratio: the same for the server's CPU time per \
         request (plain/guarded), read from /proc.\n\
         target guarded/plain ≥ {TARGET_RATIO} for the guard: {} (cache hit, in-memory store, \
         trivial handler; figures are for this machine only)",
        if all_met { "met" } else { "NOT met" }
    );
    Ok(())
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

/// What one adapter's load run measured for one guarded route.
struct Measured {
    /// Which of [`GUARDED`].
    form: &'static str,
    /// Median plain requests per second.
    plain: f64,
    /// Median guarded requests per second.
    guarded: f64,
    /// Median of the per-round ratios guarded/plain.
    ratio: f64,
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
fn measure(opts: &Options, server: &Server, pin: bool, wrk: bool) -> Result<Vec<Measured>, String> {
    let load = |path: &str, secs: u64| -> Result<f64, String> {
        let url = format!("http://{}{path}", server.addr);
        if wrk {
            run_wrk(&url, &server.key, opts.connections, secs, pin)
        } else {
            builtin_load(&server.addr, path, &server.key, opts.connections, secs)
        }
    };
    let paths: Vec<&str> = std::iter::once(PLAIN)
        .chain(GUARDED.iter().map(|(_, path)| *path))
        .collect();
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
    // Per route (plain first): requests per second and CPU µs per request, round by round.
    let mut rps = vec![Vec::new(); paths.len()];
    let mut cpu = vec![Vec::new(); paths.len()];
    for round in 1..=opts.rounds {
        // Rotate which route goes first, so that none always inherits another's aftermath
        // (closing connections, a slow spell that starts mid-round).
        let mut this = vec![(0.0, 0.0); paths.len()];
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
        for (i, (r, c)) in this.into_iter().enumerate() {
            rps[i].push(r);
            cpu[i].push(c);
        }
    }
    let plain = median(&mut rps[0].clone());
    let plain_cpu_us = median(&mut cpu[0].clone());
    let mut out = Vec::new();
    for (i, (form, _)) in GUARDED.iter().enumerate() {
        let g = i + 1;
        let mut ratios: Vec<f64> = rps[g].iter().zip(&rps[0]).map(|(g, p)| g / p).collect();
        let mut cpu_ratios: Vec<f64> = cpu[0].iter().zip(&cpu[g]).map(|(p, g)| p / g).collect();
        let (ratio_q1, ratio_q3) = quartiles(&mut ratios);
        out.push(Measured {
            form,
            plain,
            guarded: median(&mut rps[g].clone()),
            ratio: median(&mut ratios),
            ratio_q1,
            ratio_q3,
            plain_cpu_us,
            guarded_cpu_us: median(&mut cpu[g].clone()),
            cpu_ratio: median(&mut cpu_ratios),
        });
    }
    Ok(out)
}

/// The first and third quartiles (nearest rank): where the middle half of the rounds fell.
fn quartiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => (0.0, 0.0),
        n => (v[n / 4], v[(3 * n) / 4]),
    }
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
        let mut cmd = if pin {
            let mut c = Command::new("taskset");
            c.arg("-c").arg("0").arg(binary);
            c
        } else {
            Command::new(binary)
        };
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

fn run_wrk(url: &str, key: &str, connections: u32, secs: u64, pin: bool) -> Result<f64, String> {
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", "wrk"]);
        c
    } else {
        Command::new("wrk")
    };
    let out = cmd
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
