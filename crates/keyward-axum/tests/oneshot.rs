//! `Router::oneshot` tests of the layer, the extractors and the rejections: credential edge cases
//! without sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::routing::get;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use keyward_axum::{Authenticated, CredentialHeaders, Gate, KeywardLayer, RequireScopes};
use keyward_core::management::CreateKeyRequest;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::{Keyring, Keyward, ScopeRequirement};
use serde_json::Value;
use tower::ServiceExt;

fn keyward() -> Keyward {
    Keyward::builder(
        Arc::new(MemoryKeyStore::new()),
        Keyring::insecure_test_keyring(),
    )
    .build()
    .unwrap()
}

async fn key(kw: &Keyward, scopes: &[&str], ips: &[&str]) -> String {
    let req = CreateKeyRequest {
        name: "t".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ip_allowlist: ips.iter().map(|s| (*s).to_owned()).collect(),
        ..CreateKeyRequest::default()
    };
    kw.create_key("owner-1", req)
        .await
        .unwrap()
        .api_key
        .expose_secret()
        .to_owned()
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

/// Status and raw body of one request, for handlers that answer in plain text.
async fn call_text(app: &Router, req: Request<Body>) -> (StatusCode, axum::body::Bytes) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

fn get_with(name: &str, value: &[u8]) -> Request<Body> {
    Request::get("/p")
        .header(name, HeaderValue::from_bytes(value).unwrap())
        .body(Body::empty())
        .unwrap()
}

fn app(kw: &Keyward, layer: KeywardLayer) -> Router {
    let _ = kw;
    Router::new()
        .route("/p", get(|Authenticated(p): Authenticated| async move { axum::Json(p) }))
        .route(
            "/maybe",
            get(|p: Option<Authenticated>| async move { if p.is_some() { "key" } else { "anonymous" } }),
        )
        .layer(layer)
}

#[tokio::test]
async fn verified_key_reaches_the_handler() {
    let kw = keyward();
    let k = key(&kw, &["a:b"], &[]).await;
    let app = app(&kw, KeywardLayer::new(kw.clone()));
    let (s, _, body) = call(
        &app,
        get_with("authorization", format!("bEaReR {k}").as_bytes()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["owner_id"], "owner-1");
    let (s, _, _) = call(&app, get_with("x-api-key", k.as_bytes())).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn missing_invalid_and_foreign_credentials() {
    let kw = keyward();
    let app = app(&kw, KeywardLayer::new(kw.clone()));
    let (s, h, body) = call(&app, Request::get("/p").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("API_KEY_MISSING"))
    );
    assert_eq!(h["www-authenticate"], "Bearer");
    assert_eq!(h["content-type"], "application/problem+json");
    for (name, value) in [
        ("x-api-key", &b"\xff\xfe"[..]),
        ("x-api-key", b"   "),
        ("x-api-key", b"junk"),
        ("authorization", b"Bearer kw_live_nope"),
        ("authorization", b"Bearer"),
        ("authorization", b"Bearer \xc3\x28"),
    ] {
        let (s, h, body) = call(&app, get_with(name, value)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{name}: {value:?}");
        assert_eq!(body["code"], "API_KEY_INVALID", "{name}: {value:?}");
        assert_eq!(h["www-authenticate"], "Bearer");
    }
    // A JWT is no key: refused by default, passed through anonymously by an optional layer,
    // where the optional extractor sees nobody.
    let jwt = || {
        Request::get("/maybe")
            .header("authorization", "Bearer eyJ.x.y")
            .body(Body::empty())
            .unwrap()
    };
    let (s, _, body) = call(&app, jwt()).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("API_KEY_MISSING"))
    );
    let optional = self::app(&kw, KeywardLayer::new(Gate::new(kw.clone()).optional()));
    let (status, body) = call_text(&optional, jwt()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"anonymous");
}

#[tokio::test]
async fn the_layer_fails_closed_and_checks_its_requirement() {
    let kw = keyward();
    let k = key(&kw, &["a:b"], &[]).await;
    let app = Router::new()
        .route("/open-handler", get(|| async { "ok" }))
        .layer(KeywardLayer::new(kw.clone()));
    let (s, _, body) = call(
        &app,
        Request::get("/open-handler").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("API_KEY_MISSING"))
    );

    let app = Router::new()
        .route("/p", get(|| async { "ok" }))
        .layer(KeywardLayer::new(
            Gate::new(kw.clone()).require(ScopeRequirement::all_of(["c:d"]).unwrap()),
        ));
    let (s, _, body) = call(&app, get_with("x-api-key", k.as_bytes())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["missing_scopes"], serde_json::json!(["c:d"]));
}

#[tokio::test]
async fn require_scopes_layer() {
    let kw = keyward();
    let k = key(&kw, &["a:b"], &[]).await;
    let app = Router::new()
        .route("/p", get(|| async { "ok" }))
        .route_layer(RequireScopes::new(
            ScopeRequirement::any_of(["x:y", "a:*"]).unwrap(),
        ))
        .route(
            "/q",
            get(|| async { "ok" }).route_layer(RequireScopes::new(
                ScopeRequirement::all_of(["a:b", "c:d"]).unwrap(),
            )),
        )
        .layer(KeywardLayer::new(kw.clone()));
    let (s, _, _) = call(
        &app,
        Request::get("/p")
            .header("x-api-key", &k)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    // any_of(x:y, a:*) is not covered by a key granted only a:b.
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, body) = call(
        &app,
        Request::get("/q")
            .header("x-api-key", &k)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["missing_scopes"], serde_json::json!(["c:d"]));
    let (s, _, body) = call(&app, Request::get("/q").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("API_KEY_MISSING"))
    );
}

#[tokio::test]
async fn custom_header_names() {
    let kw = keyward();
    let k = key(&kw, &[], &[]).await;
    let headers = CredentialHeaders::new("x-auth", "X-Token");
    let app = app(
        &kw,
        KeywardLayer::new(Gate::new(kw.clone()).credential_headers(headers)),
    );
    assert_eq!(
        call(&app, get_with("x-token", k.as_bytes())).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, get_with("x-auth", format!("Bearer {k}").as_bytes()))
            .await
            .0,
        StatusCode::OK
    );
    // The default names are not read any more.
    let (s, _, body) = call(&app, get_with("x-api-key", k.as_bytes())).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("API_KEY_MISSING"))
    );
}

#[tokio::test]
async fn client_ip_comes_from_connect_info() {
    let kw = keyward();
    let k = key(&kw, &[], &["10.0.0.0/8"]).await;
    let inside: SocketAddr = "10.1.2.3:4000".parse().unwrap();
    let outside: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let app_in = app(&kw, KeywardLayer::new(kw.clone())).layer(MockConnectInfo(inside));
    let app_out = app(&kw, KeywardLayer::new(kw.clone())).layer(MockConnectInfo(outside));
    assert_eq!(
        call(&app_in, get_with("x-api-key", k.as_bytes())).await.0,
        StatusCode::OK
    );
    let (s, _, body) = call(&app_out, get_with("x-api-key", k.as_bytes())).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("API_KEY_IP_DENIED"))
    );
    // Without any address, an allowlisted key is refused.
    let (s, _, _) = call(
        &app(&kw, KeywardLayer::new(kw.clone())),
        get_with("x-api-key", k.as_bytes()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn credential_headers_are_marked_sensitive() {
    let kw = keyward();
    let k = key(&kw, &[], &[]).await;
    let app = Router::new()
        .route(
            "/p",
            get(|h: http::HeaderMap| async move {
                let sensitive = h.get("x-api-key").is_some_and(HeaderValue::is_sensitive)
                    && h.get("authorization")
                        .is_some_and(HeaderValue::is_sensitive);
                if sensitive { "sensitive" } else { "exposed" }
            }),
        )
        .layer(KeywardLayer::new(kw.clone()));
    let req = Request::get("/p")
        .header("x-api-key", &k)
        .header("authorization", "Bearer eyJ.x.y")
        .body(Body::empty())
        .unwrap();
    assert_eq!(&call_text(&app, req).await.1[..], b"sensitive");
}

#[tokio::test]
async fn every_value_of_a_repeated_credential_header_is_marked_sensitive() {
    let kw = keyward();
    let app = Router::new()
        .route(
            "/p",
            get(|h: http::HeaderMap| async move {
                let values: Vec<bool> = h
                    .get_all("authorization")
                    .iter()
                    .map(HeaderValue::is_sensitive)
                    .collect();
                format!("{values:?}")
            }),
        )
        .layer(KeywardLayer::new(Gate::new(kw.clone()).optional()));
    let req = Request::get("/p")
        .header("authorization", "Bearer eyJ.x.y")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(Body::empty())
        .unwrap();
    assert_eq!(&call_text(&app, req).await.1[..], b"[true, true]");
}

#[tokio::test]
async fn management_router_in_process() {
    let kw = keyward();
    let app = common::app(kw.clone());
    let req = Request::post("/api-keys")
        .header("x-test-owner", "o")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"name":"n","scopes":["reports:read"]}"#))
        .unwrap();
    let (s, h, body) = call(&app, req).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h["cache-control"], "no-store");
    let raw = body["api_key"].as_str().unwrap().to_owned();
    let req = Request::get("/protected")
        .header("authorization", format!("Bearer {raw}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await.0, StatusCode::OK);
    // Unsupported methods are problems too.
    let req = Request::put("/api-keys")
        .header("x-test-owner", "o")
        .body(Body::empty())
        .unwrap();
    let (s, h, body) = call(&app, req).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
}
