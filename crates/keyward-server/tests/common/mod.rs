//! Shared harness of the end-to-end tests: runs the real `keyward` binary (server and CLI) in a
//! temporary directory and talks to it over HTTP.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// How long a server may take to start before the test gives up (a guard, not an assertion on
/// speed).
const START_GUARD: Duration = Duration::from_secs(60);

/// A database for one test.
#[derive(Debug, Clone)]
pub struct Db {
    pub url: String,
    /// Environment the binary needs for it (a pepper for non-SQLite databases).
    pub env: Vec<(String, String)>,
    pub label: &'static str,
}

impl Db {
    pub fn sqlite(dir: &Path) -> Self {
        let url = format!("sqlite://{}?mode=rwc", dir.join("keyward.db").display());
        Self {
            url,
            env: Vec::new(),
            label: "sqlite",
        }
    }

    /// A fresh PostgreSQL database, or `None` (skipped loudly) when PostgreSQL does not answer
    /// outside CI. Under `CI=true` an unreachable PostgreSQL fails the test.
    pub fn postgres(name: &str) -> Option<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let base = rt.block_on(keyward_test::services::postgres_url())?;
        let db = format!("kwsrv_{name}_{}", std::process::id());
        let run = |sql: &str| {
            let out = Command::new("psql")
                .args([base.as_str(), "-v", "ON_ERROR_STOP=1", "-qtAc", sql])
                .output()
                .expect("psql runs");
            assert!(
                out.status.success(),
                "psql {sql}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&format!("DROP DATABASE IF EXISTS {db}"));
        run(&format!("CREATE DATABASE {db}"));
        let url = match base.rsplit_once('/') {
            Some((head, _)) => format!("{head}/{db}"),
            None => panic!("unexpected PostgreSQL URL"),
        };
        Some(Self::postgres_at(url))
    }

    /// The PostgreSQL database at `url`, with the pepper a non-SQLite database needs.
    pub fn postgres_at(url: String) -> Self {
        let pepper =
            "1:8f3a1c9e5b7d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f13".to_owned();
        Self {
            url,
            env: vec![("KEYWARD_PEPPER".into(), pepper)],
            label: "postgres",
        }
    }

    /// Drops a database made by [`Db::postgres`] while servers may still hold connections.
    pub fn drop_postgres(&self) {
        let (base, db) = self.url.rsplit_once('/').unwrap();
        let out = Command::new("psql")
            .args([
                format!("{base}/postgres").as_str(),
                "-qtAc",
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A fresh MariaDB/MySQL database, or `None` (skipped loudly) outside CI when it does not
    /// answer.
    pub fn mysql(name: &str) -> Option<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let base = rt.block_on(keyward_test::services::mysql_url())?;
        let (host, port) = keyward_test::services::host_port(&base, 3306).unwrap();
        let db = format!("kwsrv_{name}_{}", std::process::id());
        let out = Command::new("mariadb")
            .args([
                "--protocol=tcp",
                "-h",
                &host,
                "-P",
                &port.to_string(),
                "-uroot",
                "-e",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}"
            ))
            .output()
            .expect("the mariadb client runs");
        assert!(
            out.status.success(),
            "mariadb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = match base.rsplit_once('/') {
            Some((head, _)) => format!("{head}/{db}"),
            None => panic!("unexpected MySQL URL"),
        };
        let pepper =
            "1:0f1e2d3c4b5a69788796a5b4c3d2e1f0fedcba98765432100123456789abcdef".to_owned();
        Some(Self {
            url,
            env: vec![("KEYWARD_PEPPER".into(), pepper)],
            label: "mysql",
        })
    }
}

/// A temporary working directory with the database in it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: Db,
}

impl Env {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::sqlite(dir.path());
        Self { dir, db }
    }

    pub fn with(db: Db) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            db,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path());
        // Nothing from the developer's or CI's environment leaks into the binary's settings.
        for (k, _) in std::env::vars_os() {
            if k.to_str()
                .is_some_and(|k| k.starts_with("KEYWARD_") || k == "RUST_LOG")
            {
                c.env_remove(&k);
            }
        }
        c.env("KEYWARD_DATABASE_URL", &self.db.url);
        c.envs(self.db.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs the CLI to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.command();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).output().expect("keyward runs")
    }

    /// Runs the CLI and parses its JSON output; panics with stderr when it fails.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        self.cli_json_env(args, &[])
    }

    /// [`Env::cli_json`] with extra environment variables.
    pub fn cli_json_env(&self, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
        let out = self.cli_env(args, env);
        assert!(
            out.status.success(),
            "keyward {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Runs the CLI with `stdin` and returns its stdout; panics with stderr when it fails.
    pub fn cli_stdin(&self, args: &[&str], stdin: &[u8]) -> String {
        use std::io::Write as _;
        let mut c = self.command();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("keyward runs");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "keyward {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts `keyward serve` on a free port.
    pub fn serve(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut c = self.command();
        c.args(["serve", "--bind", "127.0.0.1:0"]);
        if !args.contains(&"--log-format") {
            c.args(["--log-format", "human"]);
        }
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.env("RUST_LOG", "info");
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("keyward serve starts");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let url = line.find("listening on http://").map(|i| {
                    line[i + "listening on ".len()..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect::<String>()
                });
                // Record the line before announcing the address, so that the banner and the
                // start-up logs are all visible once `serve` returns.
                sink.lock().unwrap().push(line);
                if let Some(url) = url {
                    let _ = tx.send(url);
                }
            }
        });
        let base = match rx.recv_timeout(START_GUARD) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not start; stderr:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child: Some(child),
            base,
            lines,
            dir: self.dir.path().to_path_buf(),
            http: reqwest::Client::new(),
        }
    }
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    lines: Arc<Mutex<Vec<String>>>,
    /// The working directory (beside a SQLite database).
    dir: PathBuf,
    pub http: reqwest::Client,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn stderr(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The admin key this start created, if it created one: read from the 0600 key file, after
    /// checking that it reached neither the log stream nor any other output.
    pub fn bootstrap_key(&self) -> Option<String> {
        let log = self.stderr();
        assert!(
            admin_keys_in(&log).is_empty(),
            "the admin key banner went to a stream that is not a terminal"
        );
        if !log.contains("created the admin key") {
            return None;
        }
        let path = self.dir.join("keyward.admin-key");
        let text = std::fs::read_to_string(&path).expect("the admin key file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "the admin key file is for its owner only"
            );
        }
        let key = text.lines().next().unwrap().trim().to_owned();
        assert!(key.starts_with("kw_"), "{text}");
        assert!(!log.contains(&key), "the admin key is in the log");
        Some(key)
    }

    /// Sends SIGTERM and waits for a clean exit; returns all stderr.
    pub fn terminate(mut self) -> String {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        // Give the reader thread the last lines.
        for _ in 0..50 {
            if self.stderr().contains("stopped") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            exit.success(),
            "server exit {exit:?}; stderr:\n{}",
            self.stderr()
        );
        self.stderr()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Lines of `text` holding a keyward admin key in the banner (indented, `kw_live_…`).
pub fn admin_keys_in(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with("kw_live_") && !l.contains(' '))
        .map(str::to_owned)
        .collect()
}

/// A fresh async runtime for a test body.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Asserts a failed run printed exactly one `error: …` line and no panic or backtrace.
pub fn assert_one_line_error(out: &Output, contains: &str) {
    assert!(
        !out.status.success(),
        "expected failure, got {:?}",
        out.status
    );
    let err = String::from_utf8_lossy(&out.stderr);
    // Startup logs may come first; the failure itself is one `error:` line, the last one.
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got:\n{err}");
    let last = lines.last().copied().unwrap_or("");
    assert!(last.starts_with("error: "), "{err}");
    assert!(last.contains(contains), "expected {contains:?} in {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}
