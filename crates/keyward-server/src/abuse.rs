//! What keeps one client from costing everyone: failure throttling by client address
//! (`--failure-throttle`), remembered unknown key ids (`--unknown-key-ttl`), a cap on requests
//! in flight (`--max-concurrent-requests`, `503` beyond it) and a deadline for each request,
//! body included (`--request-timeout`, `408`), so slow-drip uploads cannot pin connections or
//! memory; and the defaults of the connection limits the accept loop enforces
//! (`server/listen.rs`). See docs/security.md, "Abuse resistance".

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use keyward_core::throttle::FailureThrottle;
use tokio::sync::Semaphore;

use crate::duration::parse_duration;

/// Default of `--failure-throttle`.
pub(crate) const DEFAULT_FAILURE_THROTTLE: &str = "50/60s";
/// Default of `--max-concurrent-requests`.
pub(crate) const DEFAULT_MAX_CONCURRENT: usize = 1024;
/// Default of `--header-read-timeout`.
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `--max-connections`.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default of `--max-connections-per-client`.
pub(crate) const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;
/// Default of `--request-timeout`.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `FAILURES/WINDOW` (e.g. `50/60s`) or `off`.
///
/// # Errors
/// A human-readable reason.
pub(crate) fn parse_throttle(s: &str) -> Result<FailureThrottle, String> {
    let s = s.trim();
    if matches!(s.to_ascii_lowercase().as_str(), "off" | "none" | "0") {
        return Ok(FailureThrottle::off());
    }
    let bad = || format!("expected FAILURES/WINDOW, e.g. 50/60s, or off (got {s:?})");
    let (n, window) = s.split_once('/').ok_or_else(bad)?;
    let max_failures: u32 = n.trim().parse().map_err(|_| bad())?;
    let window = parse_duration(window)?;
    if max_failures == 0 || window.is_zero() {
        return Err("failures and window must both be at least 1 (or say `off`)".into());
    }
    Ok(FailureThrottle {
        max_failures,
        window,
        ..FailureThrottle::default()
    })
}

/// The limits the middleware below enforces.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl Guard {
    pub(crate) fn new(max_concurrent: usize, timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            timeout,
        }
    }
}

/// Refuses a request beyond `--max-concurrent-requests` at once (`503`, `Retry-After: 1`), and
/// answers `408` when a request, reading its body included, outlives `--request-timeout`.
pub(crate) async fn guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let Ok(_permit) = guard.permits.clone().try_acquire_owned() else {
        return keyward_axum::respond(keyward_http::overloaded());
    };
    match tokio::time::timeout(guard.timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::debug!(timeout = ?guard.timeout, "request timed out");
            let p = keyward_http::request_timeout(
                "the request (with its body) took longer than the server allows",
            );
            let mut res = keyward_axum::respond(p);
            res.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            res
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn throttles() {
        let t = parse_throttle("20/30s").unwrap();
        assert_eq!((t.max_failures, t.window), (20, Duration::from_secs(30)));
        assert_eq!(parse_throttle("off").unwrap().max_failures, 0);
        assert_eq!(
            parse_throttle(DEFAULT_FAILURE_THROTTLE)
                .unwrap()
                .max_failures,
            50
        );
        for bad in ["20", "x/1s", "0/1s", "5/0s", "5/"] {
            assert!(parse_throttle(bad).is_err(), "{bad}");
        }
    }
}
