//! The operational routes: `/healthz`, `/readyz`, `/metrics`, and `/openapi.json` with the
//! server's own routes added to the management document.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_core::problem::CONTENT_TYPE as PROBLEM_JSON;
use keyward_core::{ErrorCode, Problem};
use serde::Serialize;

use super::{Shared, json, problem};

#[derive(Serialize)]
pub(super) struct Status {
    status: &'static str,
}

pub(super) async fn healthz() -> Response {
    json(StatusCode::OK, &Status { status: "ok" })
}

pub(super) async fn readyz(State(app): State<Shared>) -> Response {
    if app.redis.as_ref().is_some_and(|l| !l.is_subscribed()) {
        return problem(&Problem::new(
            ErrorCode::AuthUnavailable,
            Some("Redis is unreachable".to_owned()),
        ));
    }
    let pending = app.kw.pending_invalidations();
    if pending > 0 {
        // Revocations or changes other instances have not heard of: they may still accept a
        // key this one refuses, until their cache TTL ends.
        return problem(&Problem::new(
            ErrorCode::AuthUnavailable,
            Some(format!(
                "{pending} cache invalidations not yet published to the other instances"
            )),
        ));
    }
    match app.kw.store().ping().await {
        Ok(()) => json(StatusCode::OK, &Status { status: "ready" }),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: key store unreachable");
            problem(&Problem::new(
                ErrorCode::AuthUnavailable,
                Some("the key store is unreachable".to_owned()),
            ))
        }
    }
}

pub(super) async fn metrics(State(app): State<Shared>) -> Response {
    let body = app.metrics.render();
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

pub(super) async fn openapi(State(app): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.openapi.clone(),
    )
        .into_response()
}

/// The management document from core, plus the server's own routes.
pub(super) fn openapi_document(self_service: bool, signing: bool) -> Bytes {
    let doc = keyward_core::openapi::document(&keyward_core::openapi::Mounted {
        prefix: "/api-keys",
        admin_prefix: "/admin",
        self_service,
        admin: true,
        signing,
    });
    let mut v = serde_json::to_value(&doc).unwrap_or_default();
    if let Some(paths) = v
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        let problem = serde_json::json!({
            "description": "Problem document",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        });
        let bearer = if signing {
            serde_json::json!([{"apiKeyAuth": []}, {"apiKeyHmacAuth": []}])
        } else {
            serde_json::json!([{"apiKeyAuth": []}])
        };
        paths.insert("/v1/whoami".into(), serde_json::json!({"get": {
            "operationId": "whoami", "summary": "The principal of the presented key", "tags": ["verify"],
            "security": bearer,
            "responses": {"200": {"description": "The key's principal", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Principal"}}}},
                          "401": problem, "403": problem, "429": problem, "503": problem}}}));
        paths.insert("/v1/verify".into(), serde_json::json!({"post": {
            "operationId": "verifyKey", "summary": "Verify a key for a sidecar (admin credential or a key with keyward:verify)", "tags": ["verify"],
            "security": bearer,
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VerifyRequest"}}}},
            "responses": {"200": {"description": "The verdict", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VerifyResponse"}}}},
                          "400": problem, "401": problem, "403": problem, "415": problem, "422": problem, "503": problem}}}));
        paths.insert("/v1/authz".into(), serde_json::json!({"get": {
            "operationId": "authz", "summary": "Forward-auth check for nginx auth_request and Traefik ForwardAuth", "tags": ["verify"],
            "security": bearer,
            "parameters": [
                {"name": "scope", "in": "query", "required": false, "description": "Required scopes, comma-separated or repeated", "schema": {"type": "string"}},
                {"name": "mode", "in": "query", "required": false, "schema": {"type": "string", "enum": ["all_of", "any_of"]}}],
            "responses": {"204": {"description": "Allowed", "headers": {
                    "X-Keyward-Owner": {"schema": {"type": "string"}},
                    "X-Keyward-Key-Id": {"schema": {"type": "string"}},
                    "X-Keyward-Scopes": {"schema": {"type": "string"}, "description": "comma-separated"}}},
                "401": problem, "403": problem, "422": problem, "429": problem, "503": problem}}}));
        for (path, id, summary) in [
            ("/healthz", "healthz", "Liveness"),
            ("/readyz", "readyz", "Readiness: the key store answers"),
        ] {
            paths.insert(path.into(), serde_json::json!({"get": {"operationId": id, "summary": summary, "tags": ["operations"],
                "responses": {"200": {"description": "OK"}, "503": problem}}}));
        }
        paths.insert("/metrics".into(), serde_json::json!({"get": {"operationId": "metrics", "summary": "Prometheus metrics", "tags": ["operations"],
            "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}}));
    }
    if let Some(schemas) = v
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    {
        schemas.insert("Principal".into(), serde_json::json!({"type": "object", "required": ["key_id", "owner_id", "scopes", "env", "metadata"], "properties": {
            "key_id": {"type": "string"}, "owner_id": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}},
            "env": {"type": "string"}, "metadata": {"type": "object"}}}));
        schemas.insert("VerifyRequest".into(), serde_json::json!({"type": "object", "required": ["key"], "additionalProperties": false, "properties": {
            "key": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}},
            "mode": {"type": "string", "enum": ["all_of", "any_of"]}, "client_ip": {"type": "string"}}}));
        schemas.insert(
            "VerifyResponse".into(),
            serde_json::json!({"type": "object", "required": ["valid"], "properties": {
            "valid": {"type": "boolean"}, "code": {"type": "string"},
            "missing_scopes": {"type": "array", "items": {"type": "string"}},
            "retry_after": {"type": "integer"},
            "key": {"$ref": "#/components/schemas/Principal"}}}),
        );
    }
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}
