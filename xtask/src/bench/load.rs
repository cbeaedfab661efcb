//! The load suite: each adapter's bench server built and started, loaded over loopback with
//! `wrk` or the built-in generator, round by round, and the report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::rounds::{Measured, Rounds, commit_id, pooled, record, rounds_file, summarize};
use super::{Options, TARGET_RATIO};

/// The load run: every adapter's bench server, plain against guarded. Every round is also
/// appended to [`rounds_file`], tagged with the commit, so that `--pooled` can summarise all
/// the runs made of one commit together.
pub(super) fn load_suite(opts: &Options) -> Result<(), String> {
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
        pinning(pin)
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
pub(super) fn report(rows: &[(String, Measured)]) {
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
pub(super) enum Verdict {
    /// The median is below the target.
    Missed,
    /// The median meets it; the confidence interval reaches below it.
    Median,
    /// The whole confidence interval is above it.
    Shown,
}

impl Verdict {
    pub(super) fn of(m: &Measured) -> Self {
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
pub(super) const PLAIN: &str = "/plain";

/// The guarded routes, each measured against [`PLAIN`]: name, path. The target is judged on the
/// first, the guard itself (authentication and the scope check in one layer); the second adds
/// the framework's own scope-requirement layer inside it, which costs axum a boxed service
/// cloned per request.
pub(super) const GUARDED: [(&str, &str); 2] = [
    ("guard", "/guarded"),
    ("+ scope layer", "/guarded-route-scopes"),
];

/// How many routes each round loads: [`PLAIN`], then every one of [`GUARDED`].
pub(super) const ROUTES: usize = 1 + GUARDED.len();

/// User + system CPU time of process `pid`, in seconds (`/proc/<pid>/stat`, fields 14 and 15,
/// in clock ticks of 1/100 s on Linux).
pub(super) fn cpu_seconds(pid: u32) -> Option<f64> {
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
pub(super) fn measure(
    opts: &Options,
    server: &Server,
    pin: bool,
    wrk: bool,
) -> Result<Rounds, String> {
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

pub(super) struct Server {
    pub(super) child: Child,
    pub(super) addr: String,
    pub(super) key: String,
}

impl Server {
    pub(super) fn start(binary: &std::path::Path, pin: bool) -> Result<Self, String> {
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

    pub(super) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the runs are pinned, for the banner.
pub(super) fn pinning(pin: bool) -> &'static str {
    if pin {
        "server core 0, load core 1"
    } else {
        "off"
    }
}

pub(super) fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `program`, pinned to `core` with `taskset` when one is given (the server on core 0, the load
/// on core 1).
pub(super) fn on_core(core: Option<u8>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    }
}

pub(super) fn run_wrk(
    url: &str,
    key: &str,
    connections: u32,
    secs: u64,
    pin: bool,
) -> Result<f64, String> {
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
pub(super) fn builtin_load(
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
pub(super) fn read_200(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
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
