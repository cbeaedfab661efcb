//! The test app of the shared HTTP suite's contract (see `keyward_test::http_suite`), in axum.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};
use http::request::Parts;
use keyward_axum::{
    Authenticated, KeywardLayer, ManagementConfig, ManagementOptions, Rejection, RequireScopes,
    management_routes, openapi_route,
};
use keyward_core::{Keyward, ScopeRequirement};

/// The owner resolver in the form users write: an `async fn` that borrows the request across
/// an await.
async fn test_owner(parts: &Parts) -> Result<String, Rejection> {
    let owner = parts.headers.get("x-test-owner");
    std::future::ready(()).await;
    owner
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(Rejection::unauthenticated)
}

/// Builds the suite's app over `keyward`.
pub fn app(keyward: Keyward) -> Router {
    let config = ManagementConfig::new(test_owner)
        .admin(|parts: &Parts| {
            let ok = parts
                .headers
                .get("x-test-admin")
                .is_some_and(|v| v == "yes");
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(Rejection::forbidden("administrator rights are required"))
                }
            }
        })
        .options(
            ManagementOptions::default()
                .admin_list_all(true)
                .admin_batch_create(true)
                .admin_audit(true),
        );
    // The suite's second set of self-service routes, where only API keys manage keys.
    let by_key = ManagementConfig::new(|_: &Parts| {
        std::future::ready(Err::<String, _>(Rejection::unauthenticated()))
    })
    .options(
        ManagementOptions::default()
            .prefix(keyward_test::management_suite::KEY_ROUTES)
            .allow_api_key_callers(true),
    );
    let doc = config.openapi(&keyward);
    let principal = |Authenticated(p): Authenticated| async move { axum::Json(p) };
    let protected = Router::new()
        .route("/protected", get(principal))
        .route_layer(RequireScopes::new(
            ScopeRequirement::all_of(["reports:read"]).expect("scope"),
        ));
    let echo = |Authenticated(p): Authenticated, body: String| async move {
        axum::Json(serde_json::json!({ "principal": p, "body": body }))
    };
    let echo = Router::new()
        .route("/echo", post(echo).put(echo))
        .route_layer(RequireScopes::new(
            ScopeRequirement::all_of(["reports:read"]).expect("scope"),
        ));
    let any = Router::new()
        .route("/any", get(principal))
        .route_layer(RequireScopes::new(
            ScopeRequirement::any_of(["a:x", "b:x"]).expect("scope"),
        ));
    let plain = |caller: Option<Authenticated>| async move { axum::Json(caller.is_some()) };
    // Wired the wrong way round: the layer added last runs first.
    let miswired = Router::new()
        .route("/miswired", get(principal))
        .route_layer(KeywardLayer::new(keyward.clone()))
        .route_layer(RequireScopes::new(
            ScopeRequirement::all_of(["reports:read"]).expect("scope"),
        ));
    Router::new()
        .merge(protected)
        .merge(any)
        .merge(echo)
        .route("/plain", get(plain))
        .layer(KeywardLayer::new(keyward.clone()))
        .merge(miswired)
        .route("/no-layer", get(principal))
        .route("/open", get(|| async { "open" }))
        .merge(management_routes(keyward.clone(), config))
        .merge(management_routes(keyward, by_key))
        .merge(openapi_route("/openapi.json", &doc))
}

/// Serves the app on 127.0.0.1:0 in the background; returns the address.
pub async fn spawn(keyward: Keyward) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = app(keyward);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}
