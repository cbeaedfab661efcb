//! A PostgreSQL primary and its streaming standby, made by the test on loopback ports with the
//! machine's own `initdb`, `pg_basebackup` and `pg_ctl` (as the `postgres` user when the test
//! runs as root), stopped and removed on drop. For read-replica tests: the standby's replay can
//! be paused, so that it lags the primary on purpose.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::services::{ci, free_port};

/// A primary and a standby replicating it.
#[derive(Debug)]
pub struct Standby {
    dir: PathBuf,
    bin: PathBuf,
    /// The primary's port on 127.0.0.1.
    pub primary_port: u16,
    /// The standby's port on 127.0.0.1.
    pub standby_port: u16,
}

/// The folder of PostgreSQL's server programs.
fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Whether this process is root (then the servers run as `postgres`, which initdb requires).
fn root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `program` with `args`, as `postgres` when running as root.
fn as_postgres(program: &Path) -> Command {
    if root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs `c`; its standard output, or what went wrong.
fn run(c: &mut Command, what: &str) -> Result<String, String> {
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Standby {
    /// Makes and starts both, with a database `keyward`; `None` (loudly, and a failure under
    /// `CI=true`) when PostgreSQL's server programs are missing or fail.
    ///
    /// # Panics
    /// Under `CI=true` when they cannot start.
    #[must_use]
    #[allow(
        clippy::panic,
        reason = "test support: a standby that fails fails the test"
    )]
    pub fn start(test: &str) -> Option<Self> {
        match Self::make() {
            Ok(s) => Some(s),
            Err(e) => {
                assert!(
                    !ci(),
                    "{test}: cannot start a PostgreSQL standby ({e}) and CI=true"
                );
                eprintln!("######## SKIPPED {test}: cannot start a PostgreSQL standby: {e}");
                None
            }
        }
    }

    fn make() -> Result<Self, String> {
        let bin = server_bin().ok_or("no initdb under /usr/lib/postgresql")?;
        let dir = std::env::temp_dir().join(format!(
            "keyward-standby-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let me = Self {
            bin,
            primary_port: free_port(),
            standby_port: free_port(),
            dir,
        };
        if root() {
            run(Command::new("chown").arg("postgres").arg(&me.dir), "chown")?;
        }
        let primary = me.dir.join("primary");
        run(
            as_postgres(&me.bin.join("initdb"))
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&primary),
            "initdb",
        )?;
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = replica\n\
             max_wal_senders = 4\nfsync = off\nsynchronous_commit = off\nport = {}\n",
            me.dir.display(),
            me.primary_port
        );
        append(&primary.join("postgresql.conf"), &conf)?;
        me.pg_ctl(&primary, "start")?;
        me.sql(me.primary_port, "postgres", "CREATE DATABASE keyward")?;
        let standby = me.dir.join("standby");
        run(
            as_postgres(&me.bin.join("pg_basebackup"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ])
                .args(["-p", &me.primary_port.to_string(), "-D"])
                .arg(&standby),
            "pg_basebackup",
        )?;
        append(
            &standby.join("postgresql.conf"),
            &format!("port = {}\n", me.standby_port),
        )?;
        me.pg_ctl(&standby, "start")?;
        Ok(me)
    }

    fn pg_ctl(&self, data: &Path, action: &str) -> Result<String, String> {
        let log = data.with_extension("log");
        run(
            as_postgres(&self.bin.join("pg_ctl"))
                .args(["-w", "-t", "30", "-m", "immediate", "-D"])
                .arg(data)
                .arg("-l")
                .arg(log)
                .arg(action),
            &format!("pg_ctl {action}"),
        )
    }

    /// The URL of database `keyward` on `port`.
    #[must_use]
    pub fn url(port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/keyward")
    }

    /// Runs `sql` in `database` on the server at `port`; its output, unaligned.
    ///
    /// # Errors
    /// psql's message.
    pub fn sql(&self, port: u16, database: &str, sql: &str) -> Result<String, String> {
        run(
            Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-XAtq",
                    "-v",
                    "ON_ERROR_STOP=1",
                ])
                .args(["-p", &port.to_string(), "-d", database, "-c", sql]),
            "psql",
        )
    }

    /// Pauses (`true`) or resumes the standby's replay of the primary's changes.
    ///
    /// # Errors
    /// psql's message.
    pub fn pause_replay(&self, pause: bool) -> Result<(), String> {
        let f = if pause {
            "pg_wal_replay_pause"
        } else {
            "pg_wal_replay_resume"
        };
        self.sql(self.standby_port, "postgres", &format!("SELECT {f}()"))
            .map(drop)
    }

    /// Waits (up to 30 s) until the standby has replayed everything the primary wrote.
    ///
    /// # Errors
    /// When it has not by then.
    pub fn caught_up(&self) -> Result<(), String> {
        let target = self.sql(self.primary_port, "postgres", "SELECT pg_current_wal_lsn()")?;
        let check = format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn");
        for _ in 0..300 {
            if self.sql(self.standby_port, "postgres", &check)? == "t" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("the standby did not catch up in 30 s".into())
    }
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

impl Drop for Standby {
    fn drop(&mut self) {
        for data in ["standby", "primary"] {
            let _ = self.pg_ctl(&self.dir.join(data), "stop");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
