//! keyward on axum: `GET /reports` needs scope `reports:read`; management routes under
//! `/api-keys` (owner from `x-user`: demo only); `GET /health` is public; keys in SQLite
//! `keys.db`. See docs/axum.md.
//! Run: `KEYWARD_PEPPER=$(head -c 32 /dev/urandom | base64) cargo run -p example-axum-app` (PORT=3000)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;
use axum::{Json, Router, routing::get};
use keyward_axum::{Authenticated, KeywardLayer, ManagementConfig, Rejection, RequireScopes};
use keyward_axum::{management_routes, spawn_usage_flusher};
use keyward_core::{Keyring, Keyward, Pepper, ScopeRequirement};
use keyward_sea_orm::SeaOrmKeyStore;

async fn reports(caller: Authenticated) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "owner": caller.owner_id(), "reports": [] }))
}

/// Demo only: read your session or JWT here.
async fn current_user(parts: &Parts) -> Result<String, Rejection> {
    let user = parts.headers.get("x-user").and_then(|v| v.to_str().ok());
    user.map(str::to_owned)
        .ok_or_else(Rejection::unauthenticated)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The pepper must outlive every key: load it from your secret store. The text is decoded
    // (base64 or hex, ≥ 32 bytes), as the keyward server reads KEYWARD_PEPPER.
    let pepper = std::env::var("KEYWARD_PEPPER").map_err(|_| "set KEYWARD_PEPPER (base64)")?;
    let keyring = Keyring::builder()
        .pepper(1, Pepper::from_encoded(&pepper)?)
        .build()?;
    let store = SeaOrmKeyStore::connect("sqlite://keys.db?mode=rwc").await?;
    store.migrate().await?;
    let keyward = Keyward::builder(Arc::new(store), keyring).build()?;
    // Writes batched last-used times every 10 s, and what is left when it is dropped at the
    // end of `main`, after the graceful shutdown.
    let _flusher = spawn_usage_flusher(keyward.clone(), Duration::from_secs(10));

    let app = Router::new()
        .route("/reports", get(reports))
        // `route_layer` covers the routes added before it, and the last one added runs first:
        // the key is verified, then its scopes checked. Public routes go after both.
        .route_layer(RequireScopes::new(ScopeRequirement::all_of_static([
            "reports:read",
        ])))
        .route_layer(KeywardLayer::new(keyward.clone()))
        .route("/health", get(|| async { "ok" }))
        .merge(management_routes(
            keyward.clone(),
            ManagementConfig::new(current_user),
        ));

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what a container runtime sends): stop taking connections and finish the
/// requests in flight.
async fn shutdown_signal() {
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => drop(term.recv().await),
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
