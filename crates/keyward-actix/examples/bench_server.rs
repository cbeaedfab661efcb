//! The server half of `cargo xtask bench` for actix-web: the same trivial handler unguarded
//! (`GET /plain`), guarded by a `KeywardAuth` that requires the scope itself (`GET /guarded`),
//! and guarded by `KeywardAuth` with a `RequireScopes` wrapper inside it
//! (`GET /guarded-route-scopes`: one middleware more), over the in-memory store.
//!
//! Prints one line `READY <addr> <api_key>` on stdout once it listens (the key has the scope
//! `bench:read`), then serves until killed. `KEYWARD_BENCH_THREADS` sets the actix worker
//! threads (default 1, so that the load generator has the other core).

#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    reason = "a benchmark driver"
)]

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use keyward_actix::{Gate, KeywardAuth, RequireScopes};
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
    actix_web::rt::System::new().block_on(async move {
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
            keyward_actix::spawn_usage_flusher(keyward.clone(), std::time::Duration::from_secs(1));
        let scope = ScopeRequirement::all_of(["bench:read"]).expect("scope");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let kw = keyward.clone();
        let server = HttpServer::new(move || {
            App::new()
                .route("/plain", web::get().to(hello))
                .service(
                    web::resource("/guarded")
                        .wrap(KeywardAuth::new(
                            Gate::new(kw.clone()).require(scope.clone()),
                        ))
                        .route(web::get().to(hello)),
                )
                .service(
                    web::resource("/guarded-route-scopes")
                        .wrap(RequireScopes::new(scope.clone()))
                        .wrap(KeywardAuth::new(kw.clone()))
                        .route(web::get().to(hello)),
                )
        })
        .workers(threads)
        .listen(listener)
        .expect("listen")
        .run();
        println!("READY {addr} {}", key.api_key.expose_secret());
        let _ = std::io::stdout().flush();
        server.await.expect("serve");
        flusher.shutdown().await;
    });
}
