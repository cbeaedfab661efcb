//! Review finding 1: what a connection may cost before it has sent a request. The real binary,
//! with hundreds of connections that send half a request and then nothing, from one address;
//! honest requests from another address keep being answered, and every slow connection is
//! closed once `--header-read-timeout` has passed, as is a keep-alive connection left idle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Env, rt};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

const SLOW: usize = 300;
const PER_CLIENT: usize = 50;
/// Long enough for the honest requests to finish well inside it on a loaded CI machine.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A connection from `from` to `to` (both on loopback).
async fn connect(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server has closed `conn`: it reads end-of-stream or a reset within `wait`.
async fn closed(conn: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A response (a 408, say) before the close: read on.
            Ok(Ok(_)) => {}
        }
    }
}

#[test]
fn slow_headers_cost_nobody_else_and_are_closed_after_the_timeout() {
    let env = Env::sqlite();
    let s = env.serve(
        &[
            "--header-read-timeout",
            "5s",
            "--max-connections-per-client",
            &PER_CLIENT.to_string(),
            // Loopback is no proxy here: every address counts against its own cap.
            "--trusted-proxy",
            "192.0.2.1/32",
        ],
        &[],
    );
    let addr: SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    rt().block_on(async {
        let started = Instant::now();
        let mut slow = Vec::with_capacity(SLOW);
        for _ in 0..SLOW {
            let mut c = connect("127.0.0.2", addr).await;
            // Half a request: the header block never ends.
            let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
            slow.push(c);
        }
        // An idle keep-alive connection: one whole request, then nothing.
        let mut idle = connect("127.0.0.3", addr).await;
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        idle.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");

        // Honest requests from another address are answered meanwhile.
        for _ in 0..20 {
            let r = s.http.get(s.url("/healthz")).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "the honest requests took until the timeout: the test proves nothing"
        );
        // The cap: at most PER_CLIENT of the slow connections are still held.
        let mut held = 0;
        for c in &mut slow {
            if !closed(c, Duration::from_millis(5)).await {
                held += 1;
            }
        }
        assert!(
            (1..=PER_CLIENT).contains(&held),
            "{held} slow connections held (cap {PER_CLIENT})"
        );
        // After the timeout, none is.
        tokio::time::sleep(TIMEOUT.saturating_sub(started.elapsed())).await;
        for (i, c) in slow.iter_mut().enumerate() {
            assert!(
                closed(c, Duration::from_secs(3)).await,
                "slow connection {i} still open after the header-read timeout"
            );
        }
        assert!(
            closed(&mut idle, Duration::from_secs(3)).await,
            "an idle keep-alive connection outlived the timeout"
        );
        let r = s.http.get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    });
    let log = s.terminate();
    assert!(log.contains("connection limits"), "{log}");
}
