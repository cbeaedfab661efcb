//! Load rounds: the figures of each round, their summary per guarded route, and the CSV record
//! of every round by commit that `--pooled` reads back.

use std::io::Write as _;
use std::process::Command;

use super::load::{GUARDED, ROUTES, report};
use super::stats::{median, median_ci, quartiles};

/// What one adapter's load run measured for one guarded route.
pub(super) struct Measured {
    /// Which of [`GUARDED`].
    pub(super) form: &'static str,
    /// How many paired rounds.
    pub(super) rounds: usize,
    /// Median plain requests per second.
    pub(super) plain: f64,
    /// Median guarded requests per second.
    pub(super) guarded: f64,
    /// Median of the per-round ratios guarded/plain.
    pub(super) ratio: f64,
    /// A 95 % confidence interval for that median.
    pub(super) ratio_ci: (f64, f64),
    /// First quartile of the per-round ratios.
    pub(super) ratio_q1: f64,
    /// Third quartile of the per-round ratios.
    pub(super) ratio_q3: f64,
    /// Median server CPU time per plain request, in microseconds.
    pub(super) plain_cpu_us: f64,
    /// Median server CPU time per guarded request, in microseconds.
    pub(super) guarded_cpu_us: f64,
    /// Median of the per-round ratios of CPU per request, plain/guarded.
    pub(super) cpu_ratio: f64,
}

/// Round by round, per route ([`PLAIN`](super::load::PLAIN) first, then [`GUARDED`]):
/// requests per second and server CPU microseconds per request.
#[derive(Default)]
pub(super) struct Rounds {
    pub(super) rps: [Vec<f64>; ROUTES],
    pub(super) cpu: [Vec<f64>; ROUTES],
}

impl Rounds {
    pub(super) fn push(&mut self, round: [(f64, f64); ROUTES]) {
        for (i, (r, c)) in round.into_iter().enumerate() {
            self.rps[i].push(r);
            self.cpu[i].push(c);
        }
    }
}

/// The medians, intervals and ratios of `rounds`, one [`Measured`] per guarded route.
pub(super) fn summarize(rounds: &Rounds) -> Vec<Measured> {
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
pub(super) fn rounds_file(target: &std::path::Path) -> std::path::PathBuf {
    target.join("xtask-bench").join("load-rounds.csv")
}

/// The commit measured: `git rev-parse --short HEAD`, with `+dirty` when the work tree has
/// changes (runs of a dirty tree may each have measured different code).
pub(super) fn commit_id(root: &std::path::Path) -> String {
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
pub(super) const CSV_HEADER: &str =
    "commit,run,adapter,round,plain_rps,plain_cpu_us,guard_rps,guard_cpu_us,scope_rps,scope_cpu_us";

/// Appends one adapter's rounds to `file`.
pub(super) fn record(
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
pub(super) type Pool = Vec<(String, usize, Rounds)>;

/// Reads the rounds recorded in `file` for `commit`, per adapter, in the order first recorded.
pub(super) fn read_pool(file: &std::path::Path, commit: &str) -> Result<Pool, String> {
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
pub(super) fn pooled(file: &std::path::Path, commit: &str) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
