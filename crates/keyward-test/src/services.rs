//! The real services tests talk to: PostgreSQL, MariaDB/MySQL and Redis on 127.0.0.1.
//!
//! Each helper probes the service with a short TCP connect. When it does not answer, a developer
//! run skips the test with a loud message on stderr, and a CI run (`CI=true`) fails it: CI must
//! never pass by skipping. Override the addresses with `KEYWARD_TEST_PG_URL`,
//! `KEYWARD_TEST_MYSQL_URL` and `KEYWARD_TEST_REDIS_URL`.

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
