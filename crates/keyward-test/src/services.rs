//! The real services tests talk to: PostgreSQL, MariaDB/MySQL and Redis on 127.0.0.1.
//!
//! Each helper probes the service with a short TCP connect. When it does not answer, a developer
//! run skips the test with a loud message on stderr, and a CI run (`CI=true`) fails it: CI must
//! never pass by skipping. Override the addresses with `KEYWARD_TEST_PG_URL`,
//! `KEYWARD_TEST_MYSQL_URL` and `KEYWARD_TEST_REDIS_URL`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Default PostgreSQL URL (trust auth, database `test`).
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Default MariaDB/MySQL URL (root, empty password, database `test`).
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";
/// Default Redis URL.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Whether this is a CI run (`CI` is exactly `true`): unreachable services fail tests there.
#[must_use]
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The PostgreSQL URL when the server answers, `None` (after a loud skip message) when it does
/// not.
///
/// # Panics
/// When the server does not answer and [`ci`] is true.
pub async fn postgres_url() -> Option<String> {
    probe("PostgreSQL", "KEYWARD_TEST_PG_URL", DEFAULT_PG_URL, 5432).await
}

/// The MariaDB/MySQL URL when the server answers, `None` (after a loud skip message) when it
/// does not.
///
/// # Panics
/// When the server does not answer and [`ci`] is true.
pub async fn mysql_url() -> Option<String> {
    probe(
        "MariaDB/MySQL",
        "KEYWARD_TEST_MYSQL_URL",
        DEFAULT_MYSQL_URL,
        3306,
    )
    .await
}

/// The Redis URL when the server answers, `None` (after a loud skip message) when it does not.
///
/// # Panics
/// When the server does not answer and [`ci`] is true.
pub async fn redis_url() -> Option<String> {
    probe("Redis", "KEYWARD_TEST_REDIS_URL", DEFAULT_REDIS_URL, 6379).await
}

/// `host:port` of a URL like `scheme://user:pass@host:port/path?query`.
#[must_use]
pub fn host_port(url: &str, default_port: u16) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        return Some((host.to_owned(), port));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
        None => Some((hostport.to_owned(), default_port)),
    }
}

async fn reachable(host: &str, port: u16) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect((host, port))).await,
        Ok(Ok(_))
    )
}

#[allow(clippy::panic)]
async fn probe(name: &str, env: &str, default: &str, default_port: u16) -> Option<String> {
    let url = std::env::var(env)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    let ok = match host_port(&url, default_port) {
        Some((host, port)) => reachable(&host, port).await,
        None => false,
    };
    if ok {
        return Some(url);
    }
    let shown = redact(&url);
    if ci() {
        panic!(
            "{name} is not reachable at {shown} and CI=true: a CI run must not skip database tests \
             (set {env} to point elsewhere)"
        );
    }
    eprintln!(
        "\n\
         ##################################################################\n\
         ## SKIPPED: {name} is not reachable at {shown}\n\
         ## Start it or set {env}; under CI=true this test FAILS.\n\
         ##################################################################\n"
    );
    None
}

/// The URL with any password replaced, for messages.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or("");
            format!("{scheme}://{name}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            host_port(DEFAULT_PG_URL, 1),
            Some(("127.0.0.1".into(), 5432))
        );
        assert_eq!(
            host_port("redis://127.0.0.1", 6379),
            Some(("127.0.0.1".into(), 6379))
        );
        assert_eq!(
            host_port("mysql://u:p@db.example:3307/x?y=1", 3306),
            Some(("db.example".into(), 3307))
        );
        assert_eq!(
            host_port("postgres://[::1]:5433/t", 5432),
            Some(("::1".into(), 5433))
        );
        assert_eq!(host_port("postgres:///t", 5432), None);
        assert_eq!(host_port("postgres://h:notaport/t", 5432), None);
    }

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact("mysql://root:hunter2@127.0.0.1:3306/test"),
            "mysql://root:***@127.0.0.1:3306/test"
        );
        assert_eq!(redact(DEFAULT_PG_URL), DEFAULT_PG_URL);
    }
}

/// Whether a Redis server answers `PING` at `redis://host:port`.
async fn answers(url: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some((host, port)) = host_port(url, 6379) else {
        return false;
    };
    let ping = async {
        let mut s = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        s.write_all(b"PING\r\n").await?;
        let mut answer = [0u8; 7];
        s.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(&answer == b"+PONG\r\n")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ping).await,
        Ok(Ok(true))
    )
}

/// A free TCP port on 127.0.0.1.
///
/// # Panics
/// When no port can be bound.
#[must_use]
#[allow(clippy::panic, reason = "test support: no port fails the test")]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A `redis-server` child of this test, on its own port, never the shared one. Killed on drop.
#[derive(Debug)]
pub struct RedisChild {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

#[allow(
    clippy::panic,
    reason = "test support: a redis-server that fails fails the test"
)]
impl RedisChild {
    /// Starts one on a free port, or `None` (loudly; a failure under CI) without the binary.
    ///
    /// # Panics
    /// Under `CI=true` when it cannot start.
    pub async fn start(test: &str) -> Option<Self> {
        let mut me = Self {
            port: free_port(),
            child: None,
        };
        match me.spawn().await {
            Ok(()) => Some(me),
            Err(e) => {
                assert!(!ci(), "{test}: cannot start redis-server ({e}) and CI=true");
                eprintln!("######## SKIPPED {test}: cannot start redis-server: {e}");
                None
            }
        }
    }

    /// `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        for _ in 0..200 {
            if answers(&self.url()).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err("redis-server did not answer".into())
    }

    /// Kills the server (like a crash) and waits until the port is closed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: a Redis that accepts connections
    /// but never answers.
    ///
    /// # Panics
    /// When it is not running or `kill` fails.
    pub fn signal(&self, sig: &str) {
        let Some(child) = self.child.as_ref() else {
            panic!("redis-server is not running");
        };
        let pid = child.id().to_string();
        let status = Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(status.success());
    }

    /// Starts it again on the same port.
    ///
    /// # Panics
    /// When it does not answer.
    pub async fn restart(&mut self) {
        if let Err(e) = self.spawn().await {
            panic!("restart redis-server: {e}");
        }
    }
}

impl Drop for RedisChild {
    fn drop(&mut self) {
        self.kill();
    }
}
