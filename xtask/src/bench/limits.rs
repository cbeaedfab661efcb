//! `cargo xtask bench --only limits`: what a Redis rate limit and Redis credits cost a cached key
//! on the `keyward` server (SQLite, `--redis-url`), against the same request with a key that
//! has neither, in the same rounds.
//!
//! Three keys are made through the admin API: one plain, one with a rate limit it never reaches
//! (10⁹ a minute), one with credits it never spends (10¹²). Each round loads
//! `GET /v1/whoami` with each of them in turn (the first rotating); the ratio limited/plain is
//! the median of the per-round ratios with a distribution-free 95 % interval. Target: ≥ 0.9
//! (issue 26). The same three loads then run against a server started with `--redis-lease 0s`
//! (a Redis round trip per request, what the limits cost before leasing) for comparison.
//! Redis at 127.0.0.1:6379 or `KEYWARD_TEST_REDIS_URL`; needs `wrk`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use super::abuse::{Keyward, release_keyward, run_dir, script, verdict, wrk};
use super::load::cpu_seconds;
use super::{Options, cores, have, median, pinning};

/// The ratio a limited key must keep against the plain one.
const TARGET: f64 = 0.9;
/// The admin token the benched servers take.
const ADMIN: &str = "bench-admin-token-0123456789";

/// The Redis the servers share.
fn redis_url() -> String {
    std::env::var("KEYWARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `POST path` with a JSON `body` as the admin; the response body.
fn post(addr: &str, path: &str, body: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    if !answer.starts_with("HTTP/1.1 201") {
        return Err(format!("POST {path}: {answer}"));
    }
    Ok(answer)
}

/// Creates a key for `owner` with `extra` JSON fields; the raw key.
fn create(addr: &str, owner: &str, extra: &str) -> Result<String, String> {
    let body = format!("{{\"name\":\"bench\"{extra}}}");
    let answer = post(addr, &format!("/admin/owners/{owner}/api-keys"), &body)?;
    answer
        .split_once("\"api_key\"")
        .and_then(|(_, rest)| rest.split('"').nth(1))
        .map(str::to_owned)
        .ok_or_else(|| format!("no api_key in {answer}"))
}

/// The per-round ratios of one key against the plain one: by requests per second, and by the
/// server's CPU time per request (plain / that key's: the share of its speed a saturated
/// server keeps).
#[derive(Default)]
struct Ratios {
    rate: Vec<f64>,
    cpu: Vec<f64>,
}

/// Rounds of the three keys' loads on `server`: the ratios of the rate-limited key and of the
/// key with credits against the plain one.
fn rounds(
    server: &Keyward,
    scripts: &[&Path; 3],
    opts: &Options,
    pin: bool,
) -> Result<[Ratios; 2], String> {
    let warm = Options {
        duration: 1,
        ..opts.clone()
    };
    for s in scripts {
        wrk(&server.addr, s, &warm, pin)?;
    }
    let pid = server.child.id();
    let mut out = [Ratios::default(), Ratios::default()];
    for round in 1..=opts.rounds {
        let (mut rps, mut cpu) = ([0.0; 3], [0.0; 3]);
        for k in 0..3 {
            let i = (k + round as usize) % 3;
            let before = cpu_seconds(pid).unwrap_or(0.0);
            rps[i] = wrk(&server.addr, scripts[i], opts, pin)?;
            let used = cpu_seconds(pid).unwrap_or(0.0) - before;
            cpu[i] = used / (rps[i] * opts.duration as f64).max(1.0);
        }
        println!(
            "  round {round}: plain {:.0} req/s ({:.1} µs CPU), rate-limited {:.0} ({:.1} µs), \
             credits {:.0} ({:.1} µs)",
            rps[0],
            cpu[0] * 1e6,
            rps[1],
            cpu[1] * 1e6,
            rps[2],
            cpu[2] * 1e6
        );
        for (r, i) in out.iter_mut().zip([1, 2]) {
            r.rate.push(rps[i] / rps[0]);
            r.cpu.push(cpu[0] / cpu[i]);
        }
    }
    Ok(out)
}

/// Runs the limits suite.
pub(super) fn run(opts: &Options) -> Result<(), String> {
    if !have("wrk") {
        println!("limits: needs wrk (`apt-get install wrk`); skipped");
        return Ok(());
    }
    let bin = release_keyward()?;
    let dir = run_dir("xtask-bench", "limits")?;
    let pin = have("taskset") && cores() >= 2;
    let redis = redis_url();
    let db = "sqlite://limits.db?mode=rwc";
    let start = |lease: &str| {
        Keyward::spawn(
            &bin,
            &dir,
            &[
                "--database-url",
                db,
                "--redis-url",
                &redis,
                "--redis-lease",
                lease,
            ],
            &[("KEYWARD_ADMIN_TOKEN", ADMIN)],
            pin,
        )
    };
    let server = start("100ms")?;
    let plain = create(&server.addr, "bench", "")?;
    let limited = create(
        &server.addr,
        "bench",
        ",\"rate_limit\":{\"requests\":1000000000,\"window_seconds\":60}",
    )?;
    let metered = create(
        &server.addr,
        "bench",
        ",\"credits\":{\"limit\":1000000000000}",
    )?;
    let paths = [
        script(&dir, "plain.lua", std::slice::from_ref(&plain))?,
        script(&dir, "limited.lua", std::slice::from_ref(&limited))?,
        script(&dir, "metered.lua", std::slice::from_ref(&metered))?,
    ];
    let scripts = [&*paths[0], &*paths[1], &*paths[2]];
    println!(
        "limits: keyward serve over SQLite with --redis-url · wrk {} connections · {} s per run · \
         {} rounds · pinning: {}",
        opts.connections,
        opts.duration,
        opts.rounds,
        pinning(pin)
    );
    println!("\n1. leased (the default, --redis-lease 100ms)");
    let [mut leased_limit, mut leased_credits] = rounds(&server, &scripts, opts, pin)?;
    drop(server);

    println!("\n2. for comparison, a Redis round trip per request (--redis-lease 0s)");
    let server = start("0s")?;
    let few = Options {
        rounds: (opts.rounds / 3).max(3),
        ..opts.clone()
    };
    let [mut exact_limit, mut exact_credits] = rounds(&server, &scripts, &few, pin)?;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "without leasing: rate-limited / plain {:.3}, credits / plain {:.3} (medians)",
        median(&mut exact_limit.rate),
        median(&mut exact_credits.rate)
    );
    let a = verdict(
        "rate-limited key / plain key",
        &mut leased_limit.rate,
        TARGET,
    );
    let b = verdict(
        "key with credits / plain key",
        &mut leased_credits.rate,
        TARGET,
    );
    println!(
        "by CPU time per request (plain / limited): rate limit {:.3}, credits {:.3} (medians)",
        median(&mut leased_limit.cpu),
        median(&mut leased_credits.cpu)
    );
    if !(a && b) {
        println!("(a target not met: see the rounds above)");
    }
    Ok(())
}
