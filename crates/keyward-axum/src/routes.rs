//! The management routes of DESIGN.md §6, mounted under a configurable prefix:
//!
//! | route | answer |
//! | --- | --- |
//! | `POST {prefix}` | `201 {api_key, key}`: the raw key, this once |
//! | `GET {prefix}?limit=&cursor=` | `200 {items, next_cursor}` |
//! | `GET {prefix}/{key_id}` | `200 key`; `404` for missing and foreign keys |
//! | `PATCH {prefix}/{key_id}` | `200 key` |
//! | `DELETE {prefix}/{key_id}` | `204`, soft revoke |
//! | `POST {prefix}/{key_id}/rotate` | `201 {api_key, key}` |
//! | `{admin_prefix}/owners/{owner_id}{prefix}…` (default `/admin`), the same six routes | as above, owner from the path (with an [`AdminCheck`], or a key holding `keyward:admin`) |
//!
//! The owner of a self-service request comes from the application's [`OwnerResolver`] (its
//! own session or JWT), never from the body. A request that presents an API key is refused
//! (`403`) unless [`ManagementConfig::allow_api_key_callers`] is on; then the key is verified and
//! acts for its own owner ([`Actor::key`]). What each actor may change is decided in
//! keyward-core (DESIGN.md §11): refusals are `403 MANAGEMENT_FORBIDDEN`, a second rotation of
//! a key `409 API_KEY_ALREADY_ROTATED`. Answers about one key carry its version as `ETag`;
//! `PATCH`, `DELETE` and `rotate` honour `If-Match` (`412 PRECONDITION_FAILED`). Answers with a
//! raw key carry `Cache-Control: no-store`.
//!
//! Bodies are read up to a limit (`413` beyond), must be `application/json` (`415`), valid JSON
//! (`400`) of the right shape (`422`, unknown fields included); every error is
//! `application/problem+json`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use http::header::{CONTENT_TYPE, IF_MATCH};
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use keyward_core::http::management::{self, Call, Caller, Mount, Route};
use keyward_core::http::{self as kwhttp, BodyBudget, ManagementOptions, Operation, gate};
use keyward_core::{Actor, Keyward, Principal, ScopeRequirement, VerifyContext};

use crate::layer::{ClientIpFn, CredentialHeaders, peer_ip};
use crate::rejection::{Rejection, render};

/// Resolves the owner of a self-service management request from the application's own
/// authentication (a session cookie, a JWT, a header set by a gateway).
///
/// Closures `Fn(&Parts) -> impl Future<Output = Result<String, Rejection>>` implement it.
#[async_trait::async_trait]
pub trait OwnerResolver: Send + Sync + 'static {
    /// The owner id the request acts for.
    ///
    /// # Errors
    /// A [`Rejection`] to answer with, typically [`Rejection::unauthenticated`].
    async fn resolve(&self, parts: &Parts) -> Result<String, Rejection>;
}

#[async_trait::async_trait]
impl<F, Fut> OwnerResolver for F
where
    F: Fn(&Parts) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, Rejection>> + Send + 'static,
{
    async fn resolve(&self, parts: &Parts) -> Result<String, Rejection> {
        self(parts).await
    }
}

/// Decides whether a request may use the admin routes.
///
/// Closures `Fn(&Parts) -> impl Future<Output = Result<(), Rejection>>` implement it.
#[async_trait::async_trait]
pub trait AdminCheck: Send + Sync + 'static {
    /// `Ok(())` for administrators.
    ///
    /// # Errors
    /// A [`Rejection`] to answer with, typically [`Rejection::forbidden`].
    async fn check(&self, parts: &Parts) -> Result<(), Rejection>;
}

#[async_trait::async_trait]
impl<F, Fut> AdminCheck for F
where
    F: Fn(&Parts) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Rejection>> + Send + 'static,
{
    async fn check(&self, parts: &Parts) -> Result<(), Rejection> {
        self(parts).await
    }
}

/// How the management routes are mounted and who may use them.
#[derive(Clone)]
pub struct ManagementConfig {
    options: ManagementOptions,
    owner: Arc<dyn OwnerResolver>,
    admin: Option<Arc<dyn AdminCheck>>,
    headers: CredentialHeaders,
    client_ip: ClientIpFn,
}

impl fmt::Debug for ManagementConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementConfig")
            .field("options", &self.options)
            .field("admin", &self.admin.is_some())
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl ManagementConfig {
    keyward_core::management_config_options!(AdminCheck, CredentialHeaders);

    /// Routes under `/api-keys` for the owners `owner` resolves; no admin routes; API keys may
    /// not manage keys; bodies up to 64 KiB.
    #[must_use]
    pub fn new(owner: impl OwnerResolver) -> Self {
        Self {
            options: ManagementOptions::default(),
            owner: Arc::new(owner),
            admin: None,
            headers: CredentialHeaders::default(),
            client_ip: Arc::new(peer_ip),
        }
    }

    /// Only the admin routes, guarded by `check` (a key holding `keyward:admin` passes too): for
    /// a service where owners never manage their own keys, such as the standalone server
    /// without `--owner-header`.
    #[must_use]
    pub fn admin_only(check: impl AdminCheck) -> Self {
        let nobody = |_: &Parts| std::future::ready(Err(Rejection::unauthenticated()));
        let mut config = Self::new(nobody).admin(check);
        config.options.set_self_service(false);
        config
    }

    /// The client address IP allowlists are checked against when these routes verify a key
    /// themselves (as on the [`crate::KeywardLayer`]; default: the TCP peer from
    /// `ConnectInfo`).
    #[must_use]
    pub fn client_ip(
        mut self,
        f: impl Fn(&HeaderMap, &http::Extensions) -> Option<std::net::IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.client_ip = Arc::new(f);
        self
    }
}

struct Mgmt {
    keyward: Keyward,
    config: ManagementConfig,
}

/// A router with the management routes, to `merge` into the application's router (the same
/// name and arguments as keyward-actix's `management_routes`).
pub fn management_routes<S>(keyward: Keyward, config: ManagementConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let paths = config.options.paths(config.has_admin());
    let state = Arc::new(Mgmt { keyward, config });
    let mut router = Router::new();
    for (path, at, routes) in paths {
        let mut methods = MethodRouter::new();
        for Route {
            method,
            operation: op,
            ..
        } in routes
        {
            // The table's methods are all standard: the conversion cannot fail.
            let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::POST);
            let filter = MethodFilter::try_from(method).unwrap_or(MethodFilter::POST);
            methods = methods.on(filter, move |State(m): State<Arc<Mgmt>>, req: Request| {
                handle(m, req, at, op)
            });
        }
        router = router.route(&path, methods);
    }
    router
        .method_not_allowed_fallback(|| async {
            Rejection::from(kwhttp::method_not_allowed()).into_response()
        })
        .with_state(state)
}

/// What [`actor`] answers.
type ActorResult = Result<Actor, Rejection>;

/// Who the request acts as (keyward-core decides; the futures are this framework's), `owner`
/// being the path's `owner_id` (admin routes only).
async fn actor(m: &Mgmt, parts: &Parts, at: Mount, owner: Option<&str>) -> ActorResult {
    let cfg = &m.config;
    let credential = cfg.headers.extract(&m.keyward, &parts.headers);
    let caller = Caller {
        owner_in_path: owner,
        verified: parts.extensions.get::<Principal>(),
        presented: credential.is_presented(),
    };
    let verify = async {
        let client_ip = (cfg.client_ip)(&parts.headers, &parts.extensions);
        let ctx = VerifyContext { client_ip };
        Ok(gate::verify_presented(&m.keyward, credential, &ScopeRequirement::none(), &ctx).await?)
    };
    let check = cfg.admin.as_ref().map(|c| c.check(parts));
    let resolve = cfg.owner.resolve(parts);
    management::actor(&cfg.options, at, caller, check, verify, resolve).await
}

/// Reads a request body of at most `limit` bytes with the management routes' rules: `413` for
/// a `Content-Length` or a body over it (up to 1 MiB of an oversize body is read and dropped
/// first, so that a client still sending sees the answer instead of a reset connection), `400`
/// for a body that cannot be read. Other axum handlers (the standalone server's) use it to
/// answer bad bodies exactly as these routes do.
///
/// # Errors
/// The [`Rejection`] to answer with.
pub async fn read_bounded_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let bytes = crate::signed::buffer(headers, body, BodyBudget::management(limit)).await;
    bytes.map(Bytes::from)
}

async fn handle(m: Arc<Mgmt>, req: Request, at: Mount, op: Operation) -> Response {
    let answer = async {
        let (mut parts, body) = req.into_parts();
        // The path parameters (`owner_id`, `key_id`), read once; a path that does not decode
        // has none.
        let params = Path::<HashMap<String, String>>::from_request_parts(&mut parts, &()).await;
        let params = params.map_or_else(|_| HashMap::new(), |Path(p)| p);
        let param = |name| params.get(name).map(String::as_str);
        let actor = actor(&m, &parts, at, param("owner_id")).await?;
        let header = |name| parts.headers.get(name).map(HeaderValue::as_bytes);
        let call = Call::parse(op, param("key_id"), parts.uri.query(), header(IF_MATCH))?;
        let bytes = if op.reads_body() {
            read_bounded_body(&parts.headers, body, m.config.options.body_limit).await?
        } else {
            Bytes::new()
        };
        Ok(render(
            call.run(&m.keyward, &actor, header(CONTENT_TYPE), &bytes)
                .await,
        ))
    };
    answer
        .await
        .unwrap_or_else(|r: Rejection| r.into_response())
}

/// A router serving `document` (from [`openapi_document`]) as JSON at `path`.
#[cfg(feature = "openapi")]
pub fn openapi_route<S>(path: &str, document: &utoipa::openapi::OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let reply = kwhttp::Reply::json(200, document);
    Router::new().route(
        path,
        axum::routing::get(move || async move { render(reply.clone()) }),
    )
}

/// The OpenAPI document of the routes `config` mounts, with the SigV4 scheme when `keyward`
/// verifies signed requests.
#[cfg(feature = "openapi")]
#[must_use]
pub fn openapi_document(config: &ManagementConfig, keyward: &Keyward) -> utoipa::openapi::OpenApi {
    config.options.openapi(config.has_admin(), keyward)
}
