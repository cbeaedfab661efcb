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
//! | `/admin/owners/{owner_id}{prefix}…`, the same six routes | as above, owner from the path (with an [`AdminCheck`], or a key holding `keyward:admin`) |
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

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MATCH};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use keyward_core::error::ErrorCode;
use keyward_core::http::{self as kwhttp, DEFAULT_BODY_LIMIT};
use keyward_core::problem::Problem;
use keyward_core::service::{CreateKeyRequest, KeyVersion, RotateKeyRequest, UpdateKeyRequest};
use keyward_core::{Actor, KeyId, Keyward, ScopeRequirement, VerifyContext};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::layer::{ClientIpFn, CredentialHeaders, Outcome, peer_ip, verify_credential};
use crate::rejection::Rejection;

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
    prefix: String,
    self_service: bool,
    owner: Arc<dyn OwnerResolver>,
    admin: Option<Arc<dyn AdminCheck>>,
    allow_api_key_callers: bool,
    body_limit: usize,
    headers: CredentialHeaders,
    client_ip: ClientIpFn,
}

impl fmt::Debug for ManagementConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementConfig")
            .field("prefix", &self.prefix)
            .field("admin", &self.admin.is_some())
            .field("allow_api_key_callers", &self.allow_api_key_callers)
            .field("body_limit", &self.body_limit)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl ManagementConfig {
    /// Routes under `/api-keys` for the owners `owner` resolves; no admin routes; API keys may
    /// not manage keys; bodies up to 64 KiB.
    #[must_use]
    pub fn new(owner: impl OwnerResolver) -> Self {
        Self {
            prefix: "/api-keys".to_owned(),
            self_service: true,
            owner: Arc::new(owner),
            admin: None,
            allow_api_key_callers: false,
            body_limit: DEFAULT_BODY_LIMIT,
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
        config.self_service = false;
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

    /// Mounts the self-service routes under `prefix` (a leading `/`, no trailing one; the
    /// admin routes go under `/admin/owners/{owner_id}{prefix}`).
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        let p = prefix.trim_end_matches('/');
        self.prefix = if p.starts_with('/') {
            p.to_owned()
        } else {
            format!("/{p}")
        };
        self
    }

    /// Mounts the admin routes, guarded by `check`.
    #[must_use]
    pub fn admin(mut self, check: impl AdminCheck) -> Self {
        self.admin = Some(Arc::new(check));
        self
    }

    /// Lets requests that present an API key manage keys (the key is verified first and its
    /// principal is in the extensions for the [`OwnerResolver`]). Off by default: a leaked key
    /// must not mint more keys.
    #[must_use]
    pub fn allow_api_key_callers(mut self, allow: bool) -> Self {
        self.allow_api_key_callers = allow;
        self
    }

    /// Largest request body, in bytes (default 64 KiB).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The credential headers, as configured on the [`crate::KeywardLayer`].
    #[must_use]
    pub fn credential_headers(mut self, headers: CredentialHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// The self-service prefix.
    #[must_use]
    pub fn mount_prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the admin routes are mounted.
    #[must_use]
    pub fn has_admin(&self) -> bool {
        self.admin.is_some()
    }

    /// Whether the self-service routes are mounted (all but [`admin_only`](Self::admin_only)).
    #[must_use]
    pub fn has_self_service(&self) -> bool {
        self.self_service
    }
}

struct Mgmt {
    keyward: Keyward,
    config: ManagementConfig,
}

type Shared = State<Arc<Mgmt>>;

/// A router with the management routes, to `merge` into the application's router (the same
/// name and arguments as keyward-actix's `management_routes`).
pub fn management_routes<S>(keyward: Keyward, config: ManagementConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let prefix = config.prefix.clone();
    let admin = config.admin.is_some();
    let self_service = config.self_service;
    let state = Arc::new(Mgmt { keyward, config });
    let mut router = Router::new();
    if self_service {
        router = mount(router, &prefix, Mount::SelfService);
    }
    if admin {
        router = mount(
            router,
            &format!("/admin/owners/{{owner_id}}{prefix}"),
            Mount::Admin,
        );
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Which set of routes a request came in on: who the actor can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mount {
    /// `{prefix}…`: an owner (or, when allowed, a key caller).
    SelfService,
    /// `/admin/owners/{owner_id}{prefix}…`: an administrator.
    Admin,
}

/// The six management operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    List,
    Get,
    Update,
    Revoke,
    Rotate,
}

/// The six routes under `base`.
fn mount(router: Router<Arc<Mgmt>>, base: &str, at: Mount) -> Router<Arc<Mgmt>> {
    let h = |op: Op| move |State(m): Shared, req: Request| handle(m, req, at, op);
    router
        .route(base, post(h(Op::Create)).get(h(Op::List)))
        .route(
            &format!("{base}/{{key_id}}"),
            get(h(Op::Get)).patch(h(Op::Update)).delete(h(Op::Revoke)),
        )
        .route(&format!("{base}/{{key_id}}/rotate"), post(h(Op::Rotate)))
}

async fn method_not_allowed() -> Response {
    Rejection::from(kwhttp::method_not_allowed()).into_response()
}

/// Refuses API-key callers unless allowed; verifies the key when allowed.
async fn check_caller(m: &Mgmt, parts: &mut Parts) -> Result<(), Rejection> {
    let cfg = &m.config;
    let already = parts.extensions.get::<keyward_core::Principal>().is_some();
    let credential = cfg.headers.extract(&m.keyward, &parts.headers);
    if !already && !credential.is_presented() {
        return Ok(());
    }
    if !cfg.allow_api_key_callers {
        return Err(kwhttp::api_key_management_forbidden().into());
    }
    if already {
        return Ok(());
    }
    let ctx = VerifyContext {
        client_ip: (cfg.client_ip)(&parts.headers, &parts.extensions),
    };
    if let Outcome::Verified(p) =
        verify_credential(credential, &m.keyward, &ScopeRequirement::none(), ctx).await?
    {
        parts.extensions.insert(p);
    }
    Ok(())
}

/// The actor of a self-service request: the verified key when key callers are allowed and one
/// was presented, else the owner the application's resolver names.
async fn owner_actor(m: &Mgmt, parts: &mut Parts) -> Result<Actor, Rejection> {
    check_caller(m, parts).await?;
    if let Some(p) = parts.extensions.get::<keyward_core::Principal>() {
        return Ok(Actor::key(p));
    }
    Ok(Actor::owner(m.config.owner.resolve(parts).await?))
}

/// The actor of an admin request: an administrator of the owner in the path, established by a
/// key holding `keyward:admin` by name or by the application's [`AdminCheck`].
///
/// A key the [`crate::KeywardLayer`] in front verified already (a signed request, say) is not
/// verified again. Otherwise the application's check runs first, so that its own credential (a
/// session, a static token) may ride in a header that also carries API keys; only when it
/// refuses is a presented key verified.
async fn admin_actor(m: &Mgmt, parts: &mut Parts) -> Result<Actor, Rejection> {
    let owner = param(parts, "owner_id").await?;
    let check = async |parts: &Parts| match &m.config.admin {
        Some(check) => check.check(parts).await,
        None => Err(kwhttp::admin_forbidden().into()),
    };
    let key_forbidden = || Rejection::from(kwhttp::api_key_management_forbidden());
    if let Some(p) = parts.extensions.get::<keyward_core::Principal>() {
        if p.is_admin() {
            return Ok(Actor::admin_for(owner));
        }
        if !m.config.allow_api_key_callers {
            return Err(key_forbidden());
        }
        check(parts).await?;
        return Ok(Actor::admin_for(owner));
    }
    let refused = match check(parts).await {
        Ok(()) => return Ok(Actor::admin_for(owner)),
        Err(r) => r,
    };
    let credential = m.config.headers.extract(&m.keyward, &parts.headers);
    if !credential.is_presented() {
        return Err(refused);
    }
    let ctx = VerifyContext {
        client_ip: (m.config.client_ip)(&parts.headers, &parts.extensions),
    };
    match verify_credential(credential, &m.keyward, &ScopeRequirement::none(), ctx).await? {
        Outcome::Verified(p) if p.is_admin() => Ok(Actor::admin_for(owner)),
        Outcome::Verified(_) if !m.config.allow_api_key_callers => Err(key_forbidden()),
        _ => Err(refused),
    }
}

/// Path parameters by name; a path that does not decode names no key.
async fn param(parts: &mut Parts, name: &str) -> Result<String, Rejection> {
    let not_found = || {
        Rejection::from(Problem::new(
            ErrorCode::ApiKeyNotFound,
            Some("API key not found".to_owned()),
        ))
    };
    let Path(params) =
        <Path<Vec<(String, String)>> as FromRequestParts<()>>::from_request_parts(parts, &())
            .await
            .map_err(|_| not_found())?;
    params
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .ok_or_else(not_found)
}

async fn key_id(parts: &mut Parts) -> Result<KeyId, Rejection> {
    let raw = param(parts, "key_id").await?;
    kwhttp::path_key_id(&raw).map_err(Rejection::from)
}

/// How much of an oversize body is read and thrown away before answering `413`, so that a
/// client still sending sees the answer instead of a reset connection. Beyond it the connection
/// is simply closed after the answer.
const DRAIN_LIMIT: usize = 1 << 20;

/// Reads the body within the limit.
async fn read_body(m: &Mgmt, parts: &Parts, body: Body) -> Result<Bytes, Rejection> {
    read_bounded_body(&parts.headers, body, m.config.body_limit).await
}

/// Reads a management request body of at most `limit` bytes: `413` for a `Content-Length` or
/// a body over it (up to 1 MiB of an oversize body is read and dropped first, so that a client
/// still sending sees the answer instead of a reset connection), `400` for a body that cannot
/// be read. The management routes use it, and so can other axum handlers (the standalone server
/// does) that must answer bad bodies exactly as they do.
///
/// # Errors
/// The [`Rejection`] to answer with.
pub async fn read_bounded_body(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let too_large = || Rejection::from(kwhttp::payload_too_large(limit));
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT.max(limit) as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(kwhttp::bad_request("the request body could not be read").into());
        };
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= limit {
                buf.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                return Err(too_large());
            }
        }
    }
    if total > limit {
        Err(too_large())
    } else {
        Ok(Bytes::from(buf))
    }
}

async fn json<T: DeserializeOwned>(m: &Mgmt, parts: &Parts, body: Body) -> Result<T, Rejection> {
    let bytes = read_body(m, parts, body).await?;
    kwhttp::json_body(
        parts.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
        &bytes,
    )
    .map_err(Rejection::from)
}

async fn json_or_default<T: DeserializeOwned + Default>(
    m: &Mgmt,
    parts: &Parts,
    body: Body,
) -> Result<T, Rejection> {
    let bytes = read_body(m, parts, body).await?;
    kwhttp::json_body_or_default(
        parts.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
        &bytes,
    )
    .map_err(Rejection::from)
}

/// A JSON answer; responses carrying a raw key are never cached, responses about one key carry
/// its version as `ETag`.
fn reply<T: Serialize>(
    status: StatusCode,
    value: &T,
    secret: bool,
    version: Option<KeyVersion>,
) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut res = (
                status,
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body,
            )
                .into_response();
            if secret {
                res.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static(kwhttp::NO_STORE));
            }
            if let Some(etag) = version.and_then(|v| HeaderValue::from_str(&v.etag()).ok()) {
                res.headers_mut().insert(ETAG, etag);
            }
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "could not serialize a management response");
            Rejection::from(keyward_core::ServiceError::Internal("serialization".into()))
                .into_response()
        }
    }
}

fn if_match(parts: &Parts) -> Result<Option<KeyVersion>, Rejection> {
    kwhttp::if_match(parts.headers.get(IF_MATCH).map(HeaderValue::as_bytes))
        .map_err(Rejection::from)
}

async fn handle(m: Arc<Mgmt>, req: Request, at: Mount, op: Op) -> Response {
    let answer = async {
        let (mut parts, body) = req.into_parts();
        let actor = match at {
            Mount::SelfService => owner_actor(&m, &mut parts).await?,
            Mount::Admin => admin_actor(&m, &mut parts).await?,
        };
        let kw = &m.keyward;
        Ok(match op {
            Op::Create => {
                let body: CreateKeyRequest = json(&m, &parts, body).await?;
                let created = kw.create_key_as(&actor, body).await?;
                let version = KeyVersion::of_view(&created.key);
                reply(StatusCode::CREATED, &created, true, Some(version))
            }
            Op::List => {
                let (cursor, limit) = kwhttp::list_query(parts.uri.query())?;
                let page = kw.list_keys(&actor, cursor.as_deref(), limit).await?;
                reply(StatusCode::OK, &page, false, None)
            }
            Op::Get => {
                let view = kw.get_key(&actor, &key_id(&mut parts).await?).await?;
                let version = KeyVersion::of_view(&view);
                reply(StatusCode::OK, &view, false, Some(version))
            }
            Op::Update => {
                let id = key_id(&mut parts).await?;
                let expected = if_match(&parts)?;
                let body: UpdateKeyRequest = json(&m, &parts, body).await?;
                let view = kw.update_key(&actor, &id, body, expected).await?;
                let version = KeyVersion::of_view(&view);
                reply(StatusCode::OK, &view, false, Some(version))
            }
            Op::Revoke => {
                let id = key_id(&mut parts).await?;
                kw.revoke_key(&actor, &id, if_match(&parts)?).await?;
                StatusCode::NO_CONTENT.into_response()
            }
            Op::Rotate => {
                let id = key_id(&mut parts).await?;
                let expected = if_match(&parts)?;
                let body: RotateKeyRequest = json_or_default(&m, &parts, body).await?;
                let created = kw.rotate_key(&actor, &id, body, expected).await?;
                let version = KeyVersion::of_view(&created.key);
                reply(StatusCode::CREATED, &created, true, Some(version))
            }
        })
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
    let body = axum::body::Bytes::from(serde_json::to_vec(document).unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not serialize the OpenAPI document");
        b"{}".to_vec()
    }));
    Router::new().route(
        path,
        get(move || {
            let body = body.clone();
            async move {
                (
                    [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                    body,
                )
            }
        }),
    )
}

/// The OpenAPI document of the routes `config` mounts, with the SigV4 scheme when `keyward`
/// verifies signed requests.
#[cfg(feature = "openapi")]
#[must_use]
pub fn openapi_document(config: &ManagementConfig, keyward: &Keyward) -> utoipa::openapi::OpenApi {
    keyward_core::openapi::document(&keyward_core::openapi::Mounted {
        prefix: &config.prefix,
        self_service: config.self_service,
        admin: config.admin.is_some(),
        signing: keyward.signing_enabled(),
    })
}
