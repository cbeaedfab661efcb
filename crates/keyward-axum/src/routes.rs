//! The management routes of DESIGN.md §6, mounted under a configurable prefix:
//!
//! | route | answer |
//! | --- | --- |
//! | `POST {prefix}` | `201 {api_key, key}`: the raw key, this once |
//! | `GET {prefix}?limit=&cursor=&env=&state=` | `200 {items, next_cursor}` |
//! | `GET {prefix}/{key_id}` | `200 key`; `404` for missing and foreign keys |
//! | `PATCH {prefix}/{key_id}` | `200 key` |
//! | `DELETE {prefix}/{key_id}` | `204`, soft revoke |
//! | `POST {prefix}/{key_id}/rotate` | `201 {api_key, key}` |
//! | `POST {prefix}/{key_id}/credits` `{add}` | `200 key`: credits topped up (admin) |
//! | `{admin_prefix}/owners/{owner_id}{prefix}…` (default `/admin`), the same six routes | as above, owner from the path (with an admin check, or a key holding `keyward:admin`) |
//! | `GET {admin_prefix}{prefix}?owner_id=&env=&state=&limit=&cursor=` | every owner's keys, for administrators |
//!
//! The owner of a self-service request comes from the application's owner resolver (its own
//! session or JWT, [`ManagementConfig`]), never from the body. A request that presents an API key is refused
//! (`403`) unless [`ManagementOptions::allow_api_key_callers`] is on; then the key is verified and
//! acts for its own owner ([`keyward_core::Actor::key`]). What each actor may change is decided in
//! keyward-core (DESIGN.md §11): refusals are `403 MANAGEMENT_FORBIDDEN`, a second rotation of
//! a key `409 API_KEY_ALREADY_ROTATED`. Answers about one key carry its version as `ETag`;
//! `PATCH`, `DELETE` and `rotate` honour `If-Match` (`412 PRECONDITION_FAILED`). Answers with a
//! raw key carry `Cache-Control: no-store`.
//!
//! Bodies are read up to a limit (`413` beyond), must be `application/json` (`415`), valid JSON
//! (`400`) of the right shape (`422`, unknown fields included); every error is
//! `application/problem+json`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter};
use http::request::Parts;
use keyward_core::{Keyward, Principal};
#[doc(inline)]
pub use keyward_http::ManagementOptions;
use keyward_http::management::{Matched, Mount, Operation, Route};

use crate::head::Head;
use crate::rejection::respond;

/// How the management routes are mounted ([`ManagementOptions`]) and who may use them:
/// `ManagementConfig::new(owner)` with the application's owner resolver, an `async fn(&Parts)
/// -> Result<String, Rejection>` or a closure `|parts: &Parts| …` returning a `Send` future;
/// `.admin(check)` with its admin check, of the same form returning `Result<(), Rejection>`;
/// `.options(...)`; `.client_ip(...)` as on the [`crate::KeywardLayer`].
pub type ManagementConfig = keyward_http::ManagementConfig<Parts>;

/// A router with the management routes, to `merge` into the application's router (the same
/// name and arguments as keyward-actix's `management_routes`).
pub fn management_routes<S>(keyward: Keyward, config: ManagementConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let paths = config.paths();
    let state = Arc::new((keyward, config));
    let mut router = Router::new();
    for (path, at, routes) in paths {
        let mut methods = MethodRouter::new();
        for Route {
            method, operation, ..
        } in routes
        {
            // The table's methods are all standard: the conversion cannot fail.
            let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::POST);
            let filter = MethodFilter::try_from(method).unwrap_or(MethodFilter::POST);
            let handler = move |State(m): State<Arc<(Keyward, ManagementConfig)>>, req| {
                handle(m, req, at, operation)
            };
            methods = methods.on(filter, handler);
        }
        router = router.route(&path, methods);
    }
    let not_allowed = || async { respond(keyward_http::method_not_allowed()) };
    router
        .method_not_allowed_fallback(not_allowed)
        .with_state(state)
}

async fn handle(
    m: Arc<(Keyward, ManagementConfig)>,
    req: Request,
    mount: Mount,
    operation: Operation,
) -> Response {
    let (keyward, cfg) = (&m.0, &m.1);
    let (mut parts, body) = req.into_parts();
    // The path parameters (`owner_id`, `key_id`); a path that does not decode has none.
    let params = Path::<HashMap<String, String>>::from_request_parts(&mut parts, &()).await;
    let params = params.map_or_else(|_| HashMap::new(), |Path(p)| p);
    let route = Matched::new(mount, operation, |name| {
        params.get(name).map(String::as_str)
    });
    let head = Head::new(&parts, cfg.client_ip_finder());
    let verified = parts.extensions.get::<Principal>();
    let body = body.into_data_stream();
    respond(
        cfg.serve(keyward, route, &parts, &head, verified, body)
            .await,
    )
}

/// A router serving `document` (from [`ManagementConfig::openapi`](keyward_http::ManagementConfig::openapi)) as JSON at `path`.
#[cfg(feature = "openapi")]
pub fn openapi_route<S>(path: &str, document: &utoipa::openapi::OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let reply = keyward_http::Reply::json(200, document);
    let serve = move || std::future::ready(respond(reply.clone()));
    Router::new().route(path, axum::routing::get(serve))
}
