//! The actix test app of the shared HTTP contract, served on a real 127.0.0.1 port.
//!
//! Owner from `x-test-owner`, admin when `x-test-admin: yes`, `/protected` needs
//! `reports:read`, `/any` needs any of `a:x`, `b:x`, `POST`/`PUT /echo` needs `reports:read`
//! and echoes the body, `/plain` needs a key, `/miswired` checks scopes before the key,
//! `/no-layer` extracts a caller no middleware verified, `/open` needs nothing, management under
//! `/api-keys`, admin under `/admin/owners/{owner}/api-keys`.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use keyward_actix::{
    Authenticated, KeywardAuth, ManagementConfig, ManagementOptions, Rejection, RequireScopes,
};
use keyward_core::clock::ManualClock;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::{Keyring, Keyward, Policy, ScopeRequirement};

/// A keyward over the in-memory store with a manual clock.
pub fn memory_keyward(policy: Policy) -> (Keyward, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let kw = Keyward::builder(
        Arc::new(MemoryKeyStore::new()),
        Keyring::insecure_test_keyring(),
    )
    .policy(policy)
    .clock(clock.clone())
    .build()
    .expect("keyward");
    (kw, clock)
}

async fn whoami(caller: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(&caller.0)
}

async fn echo(caller: Authenticated, body: String) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "principal": caller.0, "body": body }))
}

async fn open(caller: Option<Authenticated>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "authenticated": caller.is_some() }))
}

/// The owner resolver in the form users write: an `async fn` that borrows the request (which
/// is not `Send`) across an await.
async fn test_owner(req: &HttpRequest) -> Result<String, Rejection> {
    std::future::ready(()).await;
    req.headers()
        .get("x-test-owner")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(Rejection::unauthenticated)
}

/// Configures the contract's routes on an app: `KeywardAuth` wraps `/protected`, `/any` and
/// `/whoami` (the management routes verify API-key callers themselves).
pub fn configure(keyward: Keyward) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let config = ManagementConfig::new(test_owner)
            .admin(|req: &HttpRequest| {
                let admin = req
                    .headers()
                    .get("x-test-admin")
                    .is_some_and(|v| v.as_bytes() == b"yes");
                std::future::ready(if admin {
                    Ok(())
                } else {
                    Err(Rejection::forbidden("administrator rights are required"))
                })
            })
            .options(
                ManagementOptions::default()
                    .admin_list_all(true)
                    .admin_batch_create(true)
                    .admin_audit(true),
            );
        // The suite's second set of self-service routes, where only API keys manage keys.
        let by_key = ManagementConfig::new(|_: &HttpRequest| {
            std::future::ready(Err::<String, _>(Rejection::unauthenticated()))
        })
        .options(
            ManagementOptions::default()
                .prefix(keyward_test::management_suite::KEY_ROUTES)
                .allow_api_key_callers(true),
        );
        let openapi = keyward_actix::openapi_route("/openapi.json", &config.openapi(&keyward));
        cfg.configure(keyward_actix::management_routes(keyward.clone(), config))
            .configure(keyward_actix::management_routes(keyward.clone(), by_key))
            .service(openapi)
            .service(
                web::resource("/protected")
                    .wrap(RequireScopes::new(
                        ScopeRequirement::all_of(["reports:read"]).expect("scope"),
                    ))
                    .wrap(KeywardAuth::new(keyward.clone()))
                    .route(web::get().to(whoami)),
            )
            .service(
                web::resource("/any")
                    .wrap(RequireScopes::new(
                        ScopeRequirement::any_of(["a:x", "b:x"]).expect("scope"),
                    ))
                    .wrap(KeywardAuth::new(keyward.clone()))
                    .route(web::get().to(whoami)),
            )
            .service(
                web::resource("/echo")
                    .wrap(RequireScopes::new(
                        ScopeRequirement::all_of(["reports:read"]).expect("scope"),
                    ))
                    .wrap(KeywardAuth::new(keyward.clone()))
                    .route(web::post().to(echo))
                    .route(web::put().to(echo)),
            )
            .service(
                web::resource("/whoami")
                    .wrap(KeywardAuth::new(keyward.clone()))
                    .route(web::get().to(whoami)),
            )
            .service(
                web::resource("/plain")
                    .wrap(KeywardAuth::new(keyward.clone()))
                    .route(web::get().to(open)),
            )
            // Wired the wrong way round: actix-web runs the last `wrap` first.
            .service(
                web::resource("/miswired")
                    .wrap(KeywardAuth::new(keyward.clone()))
                    .wrap(RequireScopes::new(
                        ScopeRequirement::all_of(["reports:read"]).expect("scope"),
                    ))
                    .route(web::get().to(whoami)),
            )
            .route("/no-layer", web::get().to(whoami))
            .service(
                web::resource("/open")
                    .wrap(KeywardAuth::new(
                        keyward_actix::Gate::new(keyward).optional(),
                    ))
                    .route(web::get().to(open)),
            );
    }
}

/// Serves the contract app in the background for the shared suite; the server lives until the
/// test process ends.
pub async fn spawn_detached(keyward: Keyward) -> std::net::SocketAddr {
    let server = spawn(keyward);
    let addr = server.addr;
    std::mem::forget(server);
    addr
}

/// A running server; stops on drop.
pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Serves the contract app over `keyward` on 127.0.0.1, port chosen by the OS.
pub fn spawn(keyward: Keyward) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let sys = actix_web::rt::System::new();
        let result = sys.block_on(async move {
            let server = HttpServer::new(move || App::new().configure(configure(keyward.clone())))
                .workers(2)
                .disable_signals()
                .listen(listener)?
                .run();
            let _ = tx.send(server.handle());
            server.await
        });
        if let Err(e) = result {
            eprintln!("test server failed: {e}");
        }
    });
    let handle = rx.recv().expect("server started");
    TestServer {
        base,
        addr,
        handle,
        thread: Some(thread),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
