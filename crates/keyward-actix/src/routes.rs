//! The management routes of DESIGN.md §6 for actix-web, from keyward-core's route table
//! ([`keyward_http::management`]): [`management_routes`] mounts the self-service routes
//! under a prefix (default `/api-keys`; the owner comes from the application's owner resolver,
//! never from the body) and, with an admin check ([`ManagementConfig`]), the same six routes
//! under `{admin_prefix}/owners/{owner_id}{prefix}` (default `/admin`) for the owner in the
//! path, and `GET {admin_prefix}{prefix}` listing every owner's keys; the caller must hold
//! `keyward:admin` (a key, by name) or pass the check.
//!
//! Requests that carry an API key are refused (403) unless the application opted in with
//! [`ManagementOptions::allow_api_key_callers`]: a leaked key must not be able to mint more.
//! What each actor may change is decided in keyward-core (DESIGN.md §11): refusals are
//! `403 MANAGEMENT_FORBIDDEN`. Answers about one key carry its version as `ETag`; `PATCH`,
//! `DELETE` and `rotate` honour `If-Match` (`412 PRECONDITION_FAILED`).
//! Every error, including malformed JSON, wrong content type, oversize bodies and bad query
//! strings, is an `application/problem+json` 4xx, never actix's plain-text default.

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use keyward_core::{Keyward, Principal};
use keyward_http::management::{Matched, Mount, Operation};
use keyward_http::{BodyBudget, method_not_allowed};
#[doc(inline)]
pub use keyward_http::{DEFAULT_BODY_LIMIT, ManagementOptions};

use crate::head::Head;
use crate::rejection::{Rejection, respond};

/// How the management routes are mounted ([`ManagementOptions`]) and who may use them:
/// `ManagementConfig::new(owner)` with the application's owner resolver, an `async
/// fn(&HttpRequest) -> Result<String, Rejection>` or a closure `|req: &HttpRequest| …`
/// returning a future; `.admin(check)` with its admin check, of the same form returning
/// `Result<(), Rejection>`; `.options(...)`; `.client_ip(...)` as on [`crate::KeywardAuth`].
pub type ManagementConfig = keyward_http::ManagementConfig<HttpRequest, keyward_http::LocalHooks>;

/// Mounts the management routes: `App::new().configure(keyward_actix::management_routes(keyward,
/// config))` (the same name and arguments as keyward-axum's `management_routes`).
pub fn management_routes(
    keyward: Keyward,
    config: ManagementConfig,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let (mounts, paths) = (config.mounts(), config.paths());
        let m = Arc::new((keyward, config));
        let not_allowed = || async { respond(method_not_allowed()) };
        for (at, base) in mounts {
            let mut scope = web::scope(&base);
            // The mount's paths, relative to its scope.
            let mine = paths.iter().filter(|(_, mount, _)| *mount == at);
            for (full, _, routes) in mine {
                let path = full.strip_prefix(base.as_str()).unwrap_or(full);
                let mut resource = web::resource(path).default_service(web::to(not_allowed));
                for route in routes {
                    let (m, op) = (Arc::clone(&m), route.operation);
                    let method =
                        Method::from_bytes(route.method.as_bytes()).unwrap_or(Method::POST);
                    let handler = move |req, payload| handle(Arc::clone(&m), req, payload, at, op);
                    resource = resource.route(web::method(method).to(handler));
                }
                scope = scope.service(resource);
            }
            let not_found = || async { respond(Rejection::not_found()) };
            cfg.service(scope.default_service(web::to(not_found)));
        }
    }
}

/// A `GET` resource at `path` serving `document` (from [`ManagementConfig::openapi`](keyward_http::ManagementConfig::openapi)) as JSON.
#[cfg(feature = "openapi")]
#[must_use]
pub fn openapi_route(path: &str, document: &keyward_http::openapi::OpenApi) -> actix_web::Resource {
    let reply = keyward_http::Reply::json(200, document);
    let serve = move || std::future::ready(respond(reply.clone()));
    web::resource(path).route(web::get().to(serve))
}

/// A [`web::JsonConfig`] for the application's own JSON routes that answers like keyward:
/// problem documents for oversize bodies (413), wrong content types (415), malformed JSON
/// (400) and JSON of the wrong shape (422 with the field), instead of actix's plain text.
#[must_use]
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|e, _| crate::rejection::error(json_payload_error(&e)))
}

/// Maps actix's [`actix_web::error::JsonPayloadError`] to the problem keyward would answer.
#[must_use]
pub fn json_payload_error(e: &actix_web::error::JsonPayloadError) -> Rejection {
    use actix_web::error::JsonPayloadError as E;
    Rejection::new(match e {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            keyward_http::payload_too_large(*limit)
        }
        E::ContentType => keyward_http::unsupported_media_type(),
        E::Deserialize(err) => keyward_http::json_error(err),
        _ => BodyBudget::unreadable(),
    })
}

async fn handle(
    m: Arc<(Keyward, ManagementConfig)>,
    req: HttpRequest,
    payload: web::Payload,
    mount: Mount,
    operation: Operation,
) -> HttpResponse {
    let (keyward, cfg) = (&m.0, &m.1);
    let route = Matched::new(mount, operation, |name| req.match_info().get(name));
    let head = Head::new(&req, cfg.client_ip_finder());
    let verified = req.extensions().get::<Principal>().cloned();
    let serve = cfg.serve(keyward, route, &req, &head, verified.as_ref(), payload);
    respond(serve.await)
}
