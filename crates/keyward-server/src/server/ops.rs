//! The operational routes: `/healthz`, `/readyz`, `/metrics`, and `/openapi.json` with the
//! server's own routes added to the management document.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_core::ErrorCode;
use keyward_http::Problem;
use serde::Serialize;

use super::{Shared, json, problem};

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Status {
    /// `ok` (live) or `ready`.
    status: &'static str,
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "Alive", body = Status)))]
pub(super) async fn healthz() -> Response {
    json(StatusCode::OK, &Status { status: "ok" })
}

/// `GET /readyz`: the key store (and Redis, when configured) answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    summary = "Readiness: the key store answers",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "The key store or Redis is unreachable, or invalidations are unpublished", body = Problem, content_type = "application/problem+json")))]
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

/// `GET /metrics`: OpenMetrics text for Prometheus.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "OpenMetrics text",
        body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
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

/// The server's own routes, described by utoipa's derives on their handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        super::verify::whoami,
        super::verify::verify,
        super::verify::authz,
        super::deliveries::list,
        super::deliveries::redeliver,
        super::deliveries::endpoints,
        super::deliveries::enable,
        healthz,
        readyz,
        metrics
    ),
    components(schemas(
        keyward_core::Principal,
        super::verify::VerifyRequest,
        super::verify::VerifyResponse,
        Status,
        keyward_core::scope::ScopeMode,
        super::deliveries::DeliveryList,
        super::deliveries::EndpointList,
        super::deliveries::Endpoint,
        keyward_core::webhook::DisabledEndpoint,
        keyward_core::webhook::Delivery,
        keyward_core::webhook::DeliveryStatus,
        keyward_core::webhook::WebhookPayload
    ))
)]
struct ServerApi;

/// What a `--webhook-url` endpoint receives (OpenAPI 3.1 `webhooks`, which utoipa does not
/// model): every audit event, signed per Standard Webhooks (docs/events.md).
fn webhooks() -> serde_json::Value {
    let header = |name: &str, description: &str| {
        serde_json::json!({
            "name": name,
            "in": "header",
            "required": true,
            "description": description,
            "schema": {"type": "string"},
        })
    };
    serde_json::json!({
        "keyEvent": {
            "post": {
                "operationId": "keyEvent",
                "summary": "An audit event (a key change or a notice), posted to every endpoint",
                "description": "At least once: a receiver drops a `webhook-id` it has seen. \
                    An attempt times out after 15 s; a 2xx delivers, `410 Gone` disables the \
                    endpoint until an administrator enables it again, anything else is attempted again after 5 s, 5 min, 30 min, \
                    2 h, 5 h, 10 h and 10 h.",
                "parameters": [
                    header("webhook-id", "The event's id, the same on every attempt"),
                    header("webhook-timestamp", "When the attempt was signed, in seconds since the epoch"),
                    header("webhook-signature", "`v1,<base64 HMAC-SHA256 of id.timestamp.body>` for each secret, space-separated"),
                ],
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/WebhookPayload"}
                    }},
                },
                "responses": {
                    "2XX": {"description": "Delivered"},
                    "410": {"description": "Gone: the endpoint is disabled, for every instance, until enabled again"},
                    "default": {"description": "Not delivered: attempted again later"},
                },
            }
        }
    })
}

/// The management document from core for what this server mounts, merged with the server's
/// own routes. Without signing, the SigV4 scheme is dropped from the server's routes as core
/// drops it from the management routes.
pub(super) fn openapi_document(self_service: bool, kw: &keyward_core::Keyward) -> Bytes {
    let signing = kw.signing_enabled();
    let mut doc = keyward_http::openapi::document(&keyward_http::openapi::Mounted {
        prefix: "/api-keys",
        admin_prefix: "/admin",
        self_service,
        admin: true,
        admin_list_all: true,
        admin_batch_create: true,
        admin_audit: true,
        signing,
        policy: Some(kw.policy()),
    });
    let mut own = <ServerApi as utoipa::OpenApi>::openapi();
    if !signing {
        for item in own.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                if let Some(security) = &mut op.security {
                    security.retain(|r| {
                        serde_json::to_value(r)
                            .ok()
                            .and_then(|v| v.get(keyward_http::openapi::HMAC_SCHEME).map(|_| ()))
                            .is_none()
                    });
                }
            }
        }
    }
    doc.merge(own);
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("webhooks".to_owned(), webhooks());
    }
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}
