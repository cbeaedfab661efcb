//! `cargo xtask scale`: what `keyward serve` costs at N keys, the figures of issue 30 in one
//! run. N keys are minted through the bulk path (`keyward keys create --owners-from … --out …`),
//! then `wrk` sends two loads to `GET /v1/whoami`:
//!
//! - **hits**: keys drawn at random from the first 1,000 (all cached after a warm-up second);
//! - **misses**: keys drawn at random from M, against the default cache of 10,000 entries
//!   (at M = 10⁵, about one request in ten finds its key cached).
//!
//! For each: requests per second, p50/p99 latency (wrk), and the server's CPU time per request
//! (`/proc/<pid>/stat`, user + system, over wrk's request count). Then the server's RSS and cache
//! entries, the bytes of one cached key (`keyward-core`'s `cache_bytes` example, not with
//! `--dev`), and the final usage flush: the server runs with `--flush-interval 1h`, so stopping
//! it (SIGTERM) writes the usage of every key the loads used in one flush, timed from the signal
//! to the exit. The tables' size is read before the loads and after that flush.
//!
//! `--baseline BIN` then runs the miss-heavy load on another `keyward` binary (say, a copy of
//! the release binary before a change) serving the same database, alternating with this one
//! for `--rounds R` (3), and prints both and their ratio: the side-by-side figure.
//!
//! SQLite in the run's folder by default; `--database-url postgres://…/keyward_scale…` uses
//! PostgreSQL, dropping and creating that database first (only a name starting
//! `keyward_scale`). Figures are printed, never asserted. Needs `wrk`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::abuse::{Keyward, release_keyward, run_dir, stdout_of, target_dir};
use super::have;

/// The options of `cargo xtask scale`.
struct Scale {
    keys: u64,
    distinct: u64,
    seconds: u64,
    connections: u32,
    database_url: Option<String>,
    dev: bool,
    /// Another `keyward` binary whose miss-heavy load alternates with this one's.
    baseline: Option<PathBuf>,
    /// Rounds of that comparison.
    rounds: u64,
}

fn parse(args: &[String]) -> Result<Scale, String> {
    let mut o = Scale {
        keys: 100_000,
        distinct: 100_000,
        seconds: 10,
        connections: 16,
        database_url: None,
        dev: false,
        baseline: None,
        rounds: 3,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |name: &str, v: String| {
            v.replace('_', "")
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}: not a positive number: {v}"))
        };
        match a.as_str() {
            "--keys" => o.keys = number("--keys", value("--keys")?)?,
            "--distinct" => o.distinct = number("--distinct", value("--distinct")?)?,
            "--seconds" => o.seconds = number("--seconds", value("--seconds")?)?,
            "--connections" => {
                let n = number("--connections", value("--connections")?)?;
                o.connections = u32::try_from(n).map_err(|_| "--connections: too many")?;
            }
            "--database-url" => o.database_url = Some(value("--database-url")?),
            "--dev" => o.dev = true,
            "--baseline" => o.baseline = Some(PathBuf::from(value("--baseline")?)),
            "--rounds" => o.rounds = number("--rounds", value("--rounds")?)?,
            other => {
                return Err(format!(
                    "unknown argument {other} (--keys N --distinct M --seconds S --connections C \
                     --database-url URL --dev --baseline BIN --rounds R)"
                ));
            }
        }
    }
    o.distinct = o.distinct.min(o.keys);
    Ok(o)
}

/// Runs `cargo xtask scale [args]`.
pub(crate) fn run(args: &[String]) -> Result<std::process::ExitCode, String> {
    let o = parse(args)?;
    if !have("wrk") {
        return Err("needs wrk (`apt-get install wrk`)".into());
    }
    let bin = if o.dev {
        target_dir().join("debug/keyward")
    } else {
        release_keyward()?
    };
    if !bin.exists() {
        return Err(format!(
            "{} is missing (build it: cargo build -p keyward-server)",
            bin.display()
        ));
    }
    let dir = run_dir("xtask-scale", "run")?;
    let db = match &o.database_url {
        Some(url) => Db::postgres(url)?,
        None => Db::Sqlite(dir.join("scale.db")),
    };
    // One pepper for the CLI and the server (PostgreSQL has no pepper file), new each run.
    let pepper = random_hex()?;
    let url = db.url();
    let envs = [
        ("KEYWARD_PEPPER", pepper.as_str()),
        ("KEYWARD_DATABASE_URL", url.as_str()),
    ];
    println!(
        "scale: {} keys, {} distinct in the miss-heavy load · {} · {} binary · wrk -t1 -c{} {} s a load",
        o.keys,
        o.distinct,
        db.describe(),
        if o.dev {
            "dev (figures are not the product's)"
        } else {
            "release"
        },
        o.connections,
        o.seconds
    );

    // Mint.
    let per_owner = 10_u64;
    let owners = o.keys.div_ceil(per_owner);
    let owners_file = dir.join("owners.txt");
    let list: String = (0..owners).map(|i| format!("tenant-{i}\n")).collect();
    write(&owners_file, &list)?;
    let keys_file = dir.join("keys.jsonl");
    let started = Instant::now();
    stdout_of(
        Command::new(&bin)
            .current_dir(&dir)
            .envs(envs)
            .args([
                "keys",
                "create",
                "--owners-from",
                "owners.txt",
                "--name",
                "scale",
            ])
            .args([
                "--count",
                &per_owner.to_string(),
                "--max-keys-per-owner",
                "0",
            ])
            .args(["--out", "keys.jsonl", "--json"]),
        "keyward keys create",
    )?;
    let minted = started.elapsed();
    let raw = raw_keys(&keys_file)?;
    println!(
        "mint      {} keys in {:.1} s: {:.0} keys/s (bulk path, 1,000 a transaction)",
        raw.len(),
        minted.as_secs_f64(),
        raw.len() as f64 / minted.as_secs_f64().max(1e-9)
    );
    let hot = dir.join("hot.txt");
    write(&hot, &lines(&raw[..raw.len().min(1000)]))?;
    let cold = dir.join("cold.txt");
    let distinct = usize::try_from(o.distinct).unwrap_or(usize::MAX);
    write(&cold, &lines(&raw[..raw.len().min(distinct)]))?;
    let table_before = db.table_bytes()?;

    // Serve and load.
    let server = Keyward::spawn(
        &bin,
        &dir,
        &["--flush-interval", "1h", "--max-connections", "4096"],
        &envs,
        false,
    )?;
    let pid = server.child.id();
    let hits = load(&server.addr, &dir, &hot, &o, pid)?;
    hits.print("hits", "over 1,000 keys, all cached");
    let before = metrics(&server.addr)?;
    let rss_before = rss(pid)?;
    let misses = load(&server.addr, &dir, &cold, &o, pid)?;
    let after = metrics(&server.addr)?;
    let rss_after = rss(pid)?;
    let looked = (after.hits + after.misses).saturating_sub(before.hits + before.misses);
    let hit_rate = (after.hits - before.hits.min(after.hits)) as f64 / looked.max(1) as f64;
    misses.print(
        "misses",
        &format!(
            "over {distinct} keys, default cache: {:.0} % answered from it",
            hit_rate * 100.0
        ),
    );
    println!(
        "memory    RSS {:.1} → {:.1} MiB over the miss-heavy load: cache {} → {} entries, usage \
         of {} keys pending",
        mib(rss_before),
        mib(rss_after),
        before.entries,
        after.entries,
        after.pending
    );

    if let Some(baseline) = &o.baseline {
        compare(baseline, &server, &dir, &cold, &o, &envs)?;
    }

    if !o.dev {
        // Bytes per cached key, measured alone (the server's RSS above holds pending usage too).
        let text = stdout_of(
            Command::new(env!("CARGO"))
                .current_dir(crate::workspace_root())
                .args(["run", "-q", "--release", "-p", "keyward-core"])
                .args(["--example", "cache_bytes", "--"])
                .arg(o.keys.min(1_000_000).to_string()),
            "the cache_bytes example",
        )?;
        print!("cache     {}", String::from_utf8_lossy(&text));
    }

    // The final flush: every key the loads used.
    let pending = after.pending;
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    let mut server = server;
    let status = server.child.wait().map_err(|e| format!("wait: {e}"))?;
    let flush = stopped.elapsed();
    if !status.success() {
        return Err(format!("keyward serve exited with {status} after SIGTERM"));
    }
    let table_after = db.table_bytes()?;
    println!(
        "flush     usage of {pending} keys at shutdown: {:.2} s (SIGTERM to exit)",
        flush.as_secs_f64()
    );
    println!(
        "table     {:.1} MiB before the loads, {:.1} MiB after the flush ({:+.1} %)",
        mib(table_before),
        mib(table_after),
        (table_after as f64 / table_before.max(1) as f64 - 1.0) * 100.0
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Where the keys are.
enum Db {
    Sqlite(PathBuf),
    Postgres { url: String },
}

impl Db {
    /// A PostgreSQL database for the run, dropped and created afresh. Parameters after `?`
    /// (`?host=/var/run/postgresql` for the Unix socket) apply to the run and to the drop.
    fn postgres(url: &str) -> Result<Self, String> {
        let (base, params) = url.split_once('?').map_or((url, ""), |(b, p)| (b, p));
        let (server, name) = base
            .rsplit_once('/')
            .ok_or_else(|| format!("no database name in {url}"))?;
        let server_db = if params.is_empty() {
            format!("{server}/postgres")
        } else {
            format!("{server}/postgres?{params}")
        };
        if !name.starts_with("keyward_scale")
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(format!(
                "the scale run drops and creates its database: name it keyward_scale… (not {name})"
            ));
        }
        psql(&server_db, &format!("DROP DATABASE IF EXISTS {name}"))?;
        psql(&server_db, &format!("CREATE DATABASE {name}"))?;
        Ok(Self::Postgres {
            url: url.to_owned(),
        })
    }

    fn url(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
            Self::Postgres { url } => url.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Sqlite(_) => "SQLite".to_owned(),
            Self::Postgres { url } => format!("PostgreSQL {url}"),
        }
    }

    /// The keys' size: the database file (checkpointed) for SQLite; for PostgreSQL, the key
    /// and usage tables with their indexes and TOAST.
    fn table_bytes(&self) -> Result<u64, String> {
        match self {
            Self::Sqlite(path) => {
                // Into the database file first: the write-ahead log's size says little.
                stdout_of(
                    Command::new("sqlite3")
                        .arg(path)
                        .arg("PRAGMA wal_checkpoint(TRUNCATE);"),
                    "sqlite3",
                )?;
                std::fs::metadata(path)
                    .map(|m| m.len())
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            Self::Postgres { url } => {
                let text = psql(
                    url,
                    "SELECT pg_total_relation_size('api_keys') \
                     + coalesce(pg_total_relation_size(to_regclass('api_key_usage')), 0)",
                )?;
                text.trim()
                    .parse()
                    .map_err(|_| format!("table size: {text}"))
            }
        }
    }
}

/// Runs `sql` with psql against `url`; its output, unaligned.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = stdout_of(
        Command::new("psql").args([url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql]),
        &format!("psql {sql}"),
    )?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// 32 random bytes from the kernel, hex.
fn random_hex() -> Result<String, String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `text` to a file only its owner can read: the run's files hold raw keys.
fn write(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn lines(keys: &[String]) -> String {
    keys.iter().map(|k| format!("{k}\n")).collect()
}

/// The raw keys of the CLI's key file (`"api_key":"…"` on each line).
fn raw_keys(file: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .map(|l| {
            l.split_once("\"api_key\":\"")
                .and_then(|(_, rest)| rest.split('"').next())
                .map(str::to_owned)
                .ok_or_else(|| "a key file line without api_key".to_owned())
        })
        .collect()
}

/// One load's figures.
struct Load {
    rps: f64,
    p50: String,
    p99: String,
    cpu_us: f64,
}

impl Load {
    fn print(&self, name: &str, what: &str) {
        println!(
            "{name:<9} {what}: {:.0} req/s, p50 {}, p99 {}, {:.1} µs of server CPU a request",
            self.rps, self.p50, self.p99, self.cpu_us
        );
    }
}

/// The miss-heavy load on `baseline` (another `keyward` binary, serving the same database)
/// and on this run's server, alternately for the run's rounds: this machine's figures move by
/// ±15 % from one run to the next, so only figures from one sitting compare. Prints each
/// round and the pooled figures (CPU weighted by requests) with their ratio.
fn compare(
    baseline: &Path,
    this: &Keyward,
    dir: &Path,
    cold: &Path,
    o: &Scale,
    envs: &[(&str, &str)],
) -> Result<(), String> {
    let other = Keyward::spawn(
        baseline,
        dir,
        &["--flush-interval", "1h", "--max-connections", "4096"],
        envs,
        false,
    )?;
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..o.rounds {
        theirs.push(load(&other.addr, dir, cold, o, other.child.id())?);
        ours.push(load(&this.addr, dir, cold, o, this.child.id())?);
    }
    let pooled = |loads: &[Load]| {
        let requests: f64 = loads.iter().map(|l| l.rps).sum();
        let cpu: f64 = loads.iter().map(|l| l.cpu_us * l.rps).sum();
        (
            cpu / requests.max(1e-9),
            requests / loads.len().max(1) as f64,
        )
    };
    let rounds = |loads: &[Load]| {
        let each: Vec<String> = loads.iter().map(|l| format!("{:.1}", l.cpu_us)).collect();
        each.join(", ")
    };
    let (their_cpu, their_rps) = pooled(&theirs);
    let (our_cpu, our_rps) = pooled(&ours);
    println!(
        "compare   miss-heavy, {} rounds alternating · baseline {}: {} µs, pooled {:.1} µs, \
         {:.0} req/s · this: {} µs, pooled {:.1} µs, {:.0} req/s · this/baseline CPU {:.2}, \
         req/s {:.2}",
        o.rounds,
        baseline.display(),
        rounds(&theirs),
        their_cpu,
        their_rps,
        rounds(&ours),
        our_cpu,
        our_rps,
        our_cpu / their_cpu.max(1e-9),
        our_rps / their_rps.max(1e-9)
    );
    Ok(())
}

/// A warm-up second, then `wrk` for the run's seconds with keys drawn at random from `keys`;
/// the server's CPU time over the measured part.
fn load(addr: &str, dir: &Path, keys: &Path, o: &Scale, pid: u32) -> Result<Load, String> {
    let script = dir.join(format!(
        "{}.lua",
        keys.file_stem().and_then(|s| s.to_str()).unwrap_or("load")
    ));
    write(
        &script,
        &format!(
            "local keys = {{}}\nfor line in io.lines(\"{}\") do keys[#keys + 1] = line end\n\
             math.randomseed(os.time())\nrequest = function()\n  \
             local k = keys[math.random(#keys)]\n  \
             return wrk.format(\"GET\", nil, {{[\"Authorization\"] = \"Bearer \" .. k}})\nend\n",
            keys.display()
        ),
    )?;
    wrk(addr, &script, 1, o.connections)?;
    let cpu_before = cpu_ticks(pid)?;
    let text = wrk(addr, &script, o.seconds, o.connections)?;
    let ticks = cpu_ticks(pid)?.saturating_sub(cpu_before);
    let requests: f64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no request count in wrk's output:\n{text}"))?;
    let find = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
    };
    Ok(Load {
        rps: find("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{text}"))?,
        p50: find("50%").unwrap_or_default(),
        p99: find("99%").unwrap_or_default(),
        cpu_us: ticks as f64 * 1e6 / clock_ticks()? as f64 / requests.max(1.0),
    })
}

fn wrk(addr: &str, script: &Path, seconds: u64, connections: u32) -> Result<String, String> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["--latency", "-s"])
        .arg(script)
        .arg(format!("http://{addr}/v1/whoami"))
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.contains("Non-2xx") {
        return Err(format!("wrk failed or was refused: {text}"));
    }
    Ok(text)
}

/// The process's user + system CPU time, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    match (field(11), field(12)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => Err(format!("unreadable /proc/{pid}/stat")),
    }
}

fn clock_ticks() -> Result<u64, String> {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .map_err(|e| format!("getconf: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| "getconf CLK_TCK: not a number".to_owned())
}

/// Resident set size in bytes.
fn rss(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmRSS".to_owned())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// What `/metrics` says of the cache and the usage batch.
#[derive(Default)]
struct Metrics {
    hits: u64,
    misses: u64,
    entries: u64,
    pending: u64,
}

fn metrics(addr: &str) -> Result<Metrics, String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("metrics: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("metrics: {e}"))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("metrics: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("metrics: {e}"))?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    Ok(Metrics {
        hits: value("keyward_cache_hits_total "),
        misses: value("keyward_cache_misses_total "),
        entries: value("keyward_cache_entries "),
        pending: value("keyward_usage_pending "),
    })
}
