//! The accept loop: what a connection may cost before it has sent a request.
//!
//! `axum::serve` builds hyper's connection without a timer, so hyper's header-read timeout never
//! applies, and the request cap and deadline of [`crate::abuse`] start only once headers are
//! parsed. A client that opens connections and sends headers a byte at a time (or never) held
//! them, and every descriptor with them, for as long as it liked (review finding 1). Here:
//!
//! - hyper's HTTP/1 connection with a timer: a request's headers must arrive within
//!   `--header-read-timeout`, and since hyper 1.6 the same timer bounds an idle keep-alive
//!   connection waiting for its next request;
//! - at most `--max-connections` open at once, and `--max-connections-per-client` from one
//!   address (an IPv6 /64 is one address, as for the failure throttle; peers in
//!   `--trusted-proxy` count only against the first): a connection over either is closed at
//!   once, before anything is read;
//! - accept errors (`EMFILE` above all) and refused connections are logged once a second with
//!   a count, not each time.
//!
//! The soft open-file limit is raised to the hard one at start-up ([`raise_open_file_limit`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use keyward_core::clock::SampledLog;
use keyward_core::model::IpNet;
use keyward_core::throttle::bucket;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// Descriptors kept for everything but client connections (database pool, Redis, files).
const RESERVED_DESCRIPTORS: u64 = 128;

/// What the accept loop holds connections to.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLimits {
    /// Longest wait for a request's headers, and for the next request on an idle connection.
    pub(crate) header_read_timeout: Duration,
    /// Most connections open at once.
    pub(crate) max_connections: usize,
    /// Most connections open at once from one address outside `trusted`.
    pub(crate) max_per_client: usize,
    /// Peers exempt from the per-client cap (a proxy carries many clients).
    pub(crate) trusted: Vec<IpNet>,
}

/// Raises the soft open-file limit to the hard one, and returns the soft limit in force
/// (`None` where it cannot be read). Logged: an operator who sees a low number raises the hard
/// limit (`LimitNOFILE=` in a systemd unit, `ulimit -Hn`).
pub(crate) fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let (soft, hard) = (limit.current, limit.maximum);
        if soft != hard {
            let raised = Rlimit {
                current: hard,
                maximum: hard,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::info!(from = ?soft, to = ?hard, "raised the open-file limit to the hard limit");
                    return hard.or(Some(u64::MAX));
                }
                Err(e) => {
                    tracing::warn!(soft = ?soft, hard = ?hard, error = %e, "cannot raise the open-file limit")
                }
            }
        }
        soft.or(Some(u64::MAX))
    }
    #[cfg(not(unix))]
    None
}

/// `--max-connections`, cut to what the open-file limit allows (and said so).
pub(crate) fn effective_max_connections(wanted: usize, open_files: Option<u64>) -> usize {
    let Some(files) = open_files else {
        return wanted;
    };
    let room = usize::try_from(files.saturating_sub(RESERVED_DESCRIPTORS))
        .unwrap_or(usize::MAX)
        .max(1);
    if room < wanted {
        tracing::warn!(
            max_connections = room,
            wanted,
            open_file_limit = files,
            "--max-connections cut to what the open-file limit allows"
        );
    }
    wanted.min(room)
}

/// Open connections per client address.
#[derive(Debug, Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// A connection counted against its address until dropped.
struct ClientSlot {
    counts: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    fn claim(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            counts: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes, then lets open
/// requests finish (at most `drain`).
///
/// # Errors
/// None today: accept errors are logged and retried, as a listening server must.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let per_client = Arc::new(PerClient::default());
    let accept_errors = SampledLog::new();
    let refused = SampledLog::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if let Some(times) = accept_errors.note_now() {
                        tracing::warn!(error = %e, times, "accept failed (open-file limit?)");
                    }
                    // Out of descriptors: let closing connections give some back.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let over = |what: &str| {
            if let Some(times) = refused.note_now() {
                tracing::warn!(peer = %peer, times, "connection closed over {what}");
            }
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            over("--max-connections");
            continue;
        };
        let slot = if limits.trusted.iter().any(|n| n.contains(peer.ip())) {
            None
        } else {
            // By the throttle's bucket: one IPv6 /64 is one client, not 2^64 of them.
            match per_client.claim(bucket(peer.ip()), limits.max_per_client) {
                Some(s) => Some(s),
                None => {
                    over("--max-connections-per-client");
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
            let mut req: Request = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "connection closed");
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {drain:?}: closed");
    }
    Ok(())
}
