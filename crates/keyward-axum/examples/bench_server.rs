//! The server half of `cargo xtask bench`: the same trivial handler unguarded (`GET /plain`),
//! guarded by a `KeywardLayer` that requires the scope itself (`GET /guarded`), and guarded by
//! a `KeywardLayer` with a `RequireScopes` route layer inside it (`GET /guarded-route-scopes`:
//! one axum layer more), over the in-memory store.
//!
//! Prints one line `READY <addr> <api_key>` on stdout once it listens (the key has the scope
//! `bench:read`), then serves until killed. `KEYWARD_BENCH_THREADS` sets the tokio worker
//! threads (default 1, so that the load generator has the other core).

#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    reason = "a benchmark driver"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use keyward_axum::{Gate, KeywardLayer, RequireScopes};
use keyward_core::management::CreateKeyRequest;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::{Keyring, Keyward, ScopeRequirement};

async fn hello() -> &'static str {
    "hello"
}

fn main() {
    let threads = std::env::var("KEYWARD_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let keyward = Keyward::builder(
            Arc::new(MemoryKeyStore::new()),
            Keyring::insecure_test_keyring(),
        )
        .build()
        .expect("keyward");
        let req = CreateKeyRequest {
            name: "bench".into(),
            scopes: vec!["bench:read".into()],
            ..CreateKeyRequest::default()
        };
        let key = keyward.create_key("bench", req).await.expect("key");
        let flusher =
            keyward_axum::spawn_usage_flusher(keyward.clone(), std::time::Duration::from_secs(1));
        let scope = || ScopeRequirement::all_of(["bench:read"]).expect("scope");
        let guarded = Router::new()
            .route("/guarded", get(hello))
            .layer(KeywardLayer::new(
                Gate::new(keyward.clone()).require(scope()),
            ));
        let route_scopes = Router::new()
            .route("/guarded-route-scopes", get(hello))
            .route_layer(RequireScopes::new(scope()))
            .layer(KeywardLayer::new(keyward.clone()));
        let app = Router::new()
            .route("/plain", get(hello))
            .merge(guarded)
            .merge(route_scopes);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        println!("READY {addr} {}", key.api_key.expose_secret());
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
        flusher.shutdown().await;
    });
}
