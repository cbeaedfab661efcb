//! The webhook deliveries and endpoints, for administrators: `GET /admin/webhooks/deliveries`
//! (the failed ones, say), `POST /admin/webhooks/deliveries/{delivery_id}/redeliver`,
//! `GET /admin/webhooks/endpoints` (which are disabled) and
//! `POST /admin/webhooks/endpoints/{endpoint_id}/enable`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use keyward_core::ErrorCode;
use keyward_core::audit::{EventCursor, EventId};
use keyward_core::webhook::{Delivery, DeliveryStatus, DisabledEndpoint, endpoint_id};
use keyward_http::Problem;
use serde::Serialize;
use time::OffsetDateTime;

use super::{Shared, json, problem};

/// A page of deliveries, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DeliveryList {
    /// The deliveries.
    items: Vec<Delivery>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// The query of the delivery list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "the anchor of the documented query; parsed by hand"
)]
pub(super) struct DeliveryQuery {
    /// Only deliveries in this state
    #[param(inline)]
    status: Option<DeliveryStatus>,
    /// `next_cursor` of the previous page
    #[param(pattern = r"^([0-9]{1,18}\.[0-9A-Za-z]{20})?$")]
    cursor: Option<String>,
    /// Page size, 1–100 (default 50)
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

fn invalid(field: &str, message: &str) -> Response {
    problem(&keyward_http::problem::validation(
        field, "invalid", message,
    ))
}

fn unavailable(e: &keyward_core::StoreError) -> Response {
    tracing::warn!(error = %e, "webhook deliveries unavailable");
    problem(&Problem::new(ErrorCode::AuthUnavailable, None))
}

/// `GET /admin/webhooks/deliveries?status=&cursor=&limit=`.
#[utoipa::path(get, path = "/admin/webhooks/deliveries", operation_id = "listWebhookDeliveries", tag = "admin",
    summary = "Webhook deliveries, newest first: what was delivered, what waits, what failed",
    security(("apiKeyAuth" = [])),
    params(DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 401, description = "No administrator credential, or a bad one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad `status`, `cursor` or `limit`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller's key is limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list(State(app): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let (mut status, mut cursor, mut limit) = (None, None, 50);
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "status" => match DeliveryStatus::parse(&v) {
                Some(s) => status = Some(s),
                None => return invalid("status", "one of pending, delivered, failed"),
            },
            "cursor" if v.is_empty() => {}
            "cursor" => match EventCursor::decode(&v) {
                Some(c) => cursor = Some(c),
                None => return invalid("cursor", "malformed cursor"),
            },
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => limit = n,
                _ => return invalid("limit", "1–100"),
            },
            _ => {}
        }
    }
    match app.outbox.deliveries(status, cursor, limit).await {
        Ok((items, next)) => json(
            StatusCode::OK,
            &DeliveryList {
                items,
                next_cursor: next.map(|c| c.encode()),
            },
        ),
        Err(e) => unavailable(&e),
    }
}

/// `POST /admin/webhooks/deliveries/{delivery_id}/redeliver`.
#[utoipa::path(post, path = "/admin/webhooks/deliveries/{delivery_id}/redeliver", operation_id = "redeliverWebhook", tag = "admin",
    summary = "Attempt a delivery again now, its attempts counted from zero (a failed one, say)",
    security(("apiKeyAuth" = [])),
    params(("delivery_id" = String, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "Pending again: the next round attempts it"),
        (status = 401, description = "No administrator credential, or a bad one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller's key is limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn redeliver(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let not_found = || {
        problem(&Problem::new(
            ErrorCode::NotFound,
            Some("no such delivery".to_owned()),
        ))
    };
    let Ok(id) = id.parse::<EventId>() else {
        return not_found();
    };
    match app.outbox.redeliver(&id, OffsetDateTime::now_utc()).await {
        Ok(true) => axum::response::IntoResponse::into_response(StatusCode::ACCEPTED),
        Ok(false) => not_found(),
        Err(e) => unavailable(&e),
    }
}

/// A webhook endpoint and whether it is posted to.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Endpoint {
    /// How the enable route names it: 32 hex digits of the SHA-256 of its URL.
    id: String,
    /// Its URL without user info, query and fragment.
    endpoint: String,
    /// Whether `--webhook-url` names it (a disabled endpoint since removed from the flags is
    /// listed too, until enabled).
    configured: bool,
    /// `false` once it answered `410 Gone`: nothing is posted to it, by any instance.
    enabled: bool,
    /// When and why it was disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled: Option<DisabledEndpoint>,
}

/// The webhook endpoints.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct EndpointList {
    /// The configured endpoints, then the disabled ones no longer configured.
    items: Vec<Endpoint>,
}

/// `GET /admin/webhooks/endpoints`.
#[utoipa::path(get, path = "/admin/webhooks/endpoints", operation_id = "listWebhookEndpoints", tag = "admin",
    summary = "The webhook endpoints, and which are disabled (they answered 410 Gone)",
    security(("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The endpoints", body = EndpointList),
        (status = 401, description = "No administrator credential, or a bad one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller's key is limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn endpoints(State(app): State<Shared>) -> Response {
    let mut off = match app.outbox.disabled_endpoints().await {
        Ok(off) => off,
        Err(e) => return unavailable(&e),
    };
    let mut items: Vec<Endpoint> = app
        .webhook_endpoints
        .iter()
        .map(|url| {
            let id = endpoint_id(url);
            let gone = off
                .iter()
                .position(|d| d.id == id)
                .map(|i| off.swap_remove(i));
            Endpoint {
                endpoint: keyward_webhooks::shown(url),
                configured: true,
                enabled: gone.is_none(),
                disabled: gone,
                id,
            }
        })
        .collect();
    items.extend(off.into_iter().map(|d| Endpoint {
        id: d.id.clone(),
        endpoint: d.endpoint.clone(),
        configured: false,
        enabled: false,
        disabled: Some(d),
    }));
    json(StatusCode::OK, &EndpointList { items })
}

/// `POST /admin/webhooks/endpoints/{endpoint_id}/enable`.
#[utoipa::path(post, path = "/admin/webhooks/endpoints/{endpoint_id}/enable", operation_id = "enableWebhookEndpoint", tag = "admin",
    summary = "Post to a disabled endpoint again, from every instance (its failed deliveries can be redelivered)",
    security(("apiKeyAuth" = [])),
    params(("endpoint_id" = String, Path, description = "The endpoint's id, as the endpoint list gives it")),
    responses(
        (status = 204, description = "Enabled: the next round posts to it"),
        (status = 401, description = "No administrator credential, or a bad one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such disabled endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller's key is limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn enable(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    match app.outbox.enable_endpoint(&id).await {
        Ok(true) => {
            tracing::info!(endpoint_id = %id, "webhook endpoint enabled again");
            axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT)
        }
        Ok(false) => problem(&Problem::new(
            ErrorCode::NotFound,
            Some("no such disabled endpoint".to_owned()),
        )),
        Err(e) => unavailable(&e),
    }
}
