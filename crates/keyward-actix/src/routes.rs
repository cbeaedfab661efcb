//! The management routes of DESIGN.md §6 for actix-web, from keyward-core's route table
//! ([`keyward_core::http::management`]): [`management_routes`] mounts the self-service routes
//! under a prefix (default `/api-keys`; the owner comes from the application's
//! [`OwnerResolver`], never from the body) and, with an [`AdminCheck`], the same six routes
//! under `{admin_prefix}/owners/{owner_id}{prefix}` (default `/admin`) for the owner in the
//! path; the caller must hold `keyward:admin` (a key, by name) or pass the check.
//!
//! Requests that carry an API key are refused (403) unless the application opted in with
//! [`ManagementConfig::allow_api_key_callers`]: a leaked key must not be able to mint more.
//! What each actor may change is decided in keyward-core (DESIGN.md §11): refusals are
//! `403 MANAGEMENT_FORBIDDEN`. Answers about one key carry its version as `ETag`; `PATCH`,
//! `DELETE` and `rotate` honour `If-Match` (`412 PRECONDITION_FAILED`).
//! Every error, including malformed JSON, wrong content type, oversize bodies and bad query
//! strings, is an `application/problem+json` 4xx, never actix's plain-text default.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use keyward_core::http::management::{self, Call, Caller, Mount, ROUTES};
use keyward_core::http::{self as core_http, BodyBudget, ManagementOptions, Operation, gate};
use keyward_core::{Actor, Keyward, Principal, ScopeRequirement, VerifyContext};

use crate::credentials::CredentialHeaders;
use crate::rejection::{Rejection, render};

/// Resolves the owner of a self-service management request from the application's own
/// authentication (a session cookie, a JWT, a header set by a gateway).
///
/// Async closures `Fn(HttpRequest) -> impl Future<Output = Result<String, Rejection>>`
/// implement it (typically answering [`Rejection::unauthenticated`] when nobody is logged in).
#[async_trait::async_trait(?Send)]
pub trait OwnerResolver: Send + Sync + 'static {
    /// The owner id the request acts for.
    ///
    /// # Errors
    /// A [`Rejection`] to answer with, typically [`Rejection::unauthenticated`].
    async fn resolve(&self, req: &HttpRequest) -> Result<String, Rejection>;
}

#[async_trait::async_trait(?Send)]
impl<F, Fut> OwnerResolver for F
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, Rejection>> + 'static,
{
    async fn resolve(&self, req: &HttpRequest) -> Result<String, Rejection> {
        self(req.clone()).await
    }
}

/// Decides whether a request may use the admin routes.
///
/// Async closures `Fn(HttpRequest) -> impl Future<Output = Result<(), Rejection>>` implement it.
#[async_trait::async_trait(?Send)]
pub trait AdminCheck: Send + Sync + 'static {
    /// `Ok(())` for administrators.
    ///
    /// # Errors
    /// A [`Rejection`] to answer with, typically [`Rejection::forbidden`].
    async fn check(&self, req: &HttpRequest) -> Result<(), Rejection>;
}

#[async_trait::async_trait(?Send)]
impl<F, Fut> AdminCheck for F
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Rejection>> + 'static,
{
    async fn check(&self, req: &HttpRequest) -> Result<(), Rejection> {
        self(req.clone()).await
    }
}

#[doc(inline)]
pub use keyward_core::http::DEFAULT_BODY_LIMIT;

/// Finds the client address for keys these routes verify themselves.
type ClientIpFn = dyn Fn(&HttpRequest) -> Option<IpAddr> + Send + Sync;

/// How the management routes are mounted and who may call them.
#[derive(Clone)]
pub struct ManagementConfig {
    options: ManagementOptions,
    headers: CredentialHeaders,
    owner: Arc<dyn OwnerResolver>,
    admin: Option<Arc<dyn AdminCheck>>,
    client_ip: Arc<ClientIpFn>,
}

impl std::fmt::Debug for ManagementConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementConfig")
            .field("options", &self.options)
            .field("headers", &self.headers)
            .field("admin", &self.admin.is_some())
            .finish_non_exhaustive()
    }
}

impl ManagementConfig {
    keyward_core::management_config_options!(AdminCheck, CredentialHeaders);

    /// Routes under `/api-keys`, owners from `owner`, no admin routes, 64 KiB bodies, API-key
    /// callers refused.
    #[must_use]
    pub fn new(owner: impl OwnerResolver) -> Self {
        Self {
            options: ManagementOptions::default(),
            headers: CredentialHeaders::default(),
            owner: Arc::new(owner),
            admin: None,
            client_ip: Arc::new(|req: &HttpRequest| req.peer_addr().map(|a| a.ip())),
        }
    }

    /// Only the admin routes, guarded by `check` (a key holding `keyward:admin` passes too): for
    /// a service where owners never manage their own keys.
    #[must_use]
    pub fn admin_only(check: impl AdminCheck) -> Self {
        let nobody = |_: HttpRequest| std::future::ready(Err(Rejection::unauthenticated()));
        let mut config = Self::new(nobody).admin(check);
        config.options.set_self_service(false);
        config
    }

    /// The client address IP allowlists are checked against when these routes verify a key
    /// themselves (as on [`crate::KeywardAuth::client_ip`]; default: the TCP peer).
    #[must_use]
    pub fn client_ip(
        mut self,
        f: impl Fn(&HttpRequest) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.client_ip = Arc::new(f);
        self
    }
}

struct Mgmt {
    keyward: Keyward,
    config: ManagementConfig,
}

/// Mounts the management routes: `App::new().configure(keyward_actix::management_routes(keyward,
/// config))` (the same name and arguments as keyward-axum's `management_routes`).
pub fn management_routes(
    keyward: Keyward,
    config: ManagementConfig,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let mounts = config.options.mounts(config.has_admin());
        let m = Arc::new(Mgmt { keyward, config });
        for (at, base) in mounts {
            let mut scope = web::scope(&base);
            for path in ["", "/{key_id}", "/{key_id}/rotate"] {
                let mut resource = web::resource(path).default_service(web::to(|| async {
                    Err::<HttpResponse, _>(Rejection::new(core_http::method_not_allowed()))
                }));
                for route in ROUTES.iter().filter(|r| r.path == path) {
                    let (m, op) = (Arc::clone(&m), route.operation);
                    let method =
                        Method::from_bytes(route.method.as_bytes()).unwrap_or(Method::POST);
                    resource = resource.route(web::method(method).to(
                        move |req: HttpRequest, payload: web::Payload| {
                            handle(Arc::clone(&m), req, payload, at, op)
                        },
                    ));
                }
                scope = scope.service(resource);
            }
            cfg.service(scope.default_service(web::to(|| async {
                Err::<HttpResponse, _>(Rejection::not_found())
            })));
        }
    }
}

/// The OpenAPI document of the routes `config` mounts, with the SigV4 scheme when `keyward`
/// verifies signed requests (the same name and arguments as keyward-axum's).
#[cfg(feature = "openapi")]
#[must_use]
pub fn openapi_document(
    config: &ManagementConfig,
    keyward: &Keyward,
) -> keyward_core::openapi::OpenApi {
    config.options.openapi(config.has_admin(), keyward)
}

/// A `GET` resource at `path` serving `document` (from [`openapi_document`]) as JSON.
#[cfg(feature = "openapi")]
#[must_use]
pub fn openapi_route(path: &str, document: &keyward_core::openapi::OpenApi) -> actix_web::Resource {
    let reply = core_http::Reply::json(200, document);
    web::resource(path).route(web::get().to(move || {
        let reply = reply.clone();
        async move { render(reply) }
    }))
}

/// A [`web::JsonConfig`] for the application's own JSON routes that answers like keyward:
/// problem documents for oversize bodies (413), wrong content types (415), malformed JSON
/// (400) and JSON of the wrong shape (422 with the field), instead of actix's plain text.
#[must_use]
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|e, _| json_payload_error(&e).into())
}

/// Maps actix's [`actix_web::error::JsonPayloadError`] to the problem keyward would answer.
#[must_use]
pub fn json_payload_error(e: &actix_web::error::JsonPayloadError) -> Rejection {
    use actix_web::error::JsonPayloadError as E;
    Rejection::new(match e {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            core_http::payload_too_large(*limit)
        }
        E::ContentType => core_http::unsupported_media_type(),
        E::Deserialize(err) => core_http::json_error(err),
        _ => BodyBudget::unreadable(),
    })
}

/// Who the request acts as (keyward-core decides; the futures are this framework's).
async fn actor(m: &Mgmt, req: &HttpRequest, at: Mount) -> Result<Actor, Rejection> {
    let cfg = &m.config;
    let credential = cfg.headers.extract(&m.keyward, req.headers());
    let verified = req.extensions().get::<Principal>().cloned();
    let caller = Caller {
        owner_in_path: req.match_info().get("owner_id"),
        verified: verified.as_ref(),
        presented: credential.is_presented(),
    };
    let verify = async {
        let ctx = VerifyContext {
            client_ip: (cfg.client_ip)(req),
        };
        Ok(gate::verify_presented(&m.keyward, credential, &ScopeRequirement::none(), &ctx).await?)
    };
    let check = cfg.admin.as_ref().map(|c| c.check(req));
    let resolve = cfg.owner.resolve(req);
    management::actor(&cfg.options, at, caller, check, verify, resolve).await
}

async fn handle(
    m: Arc<Mgmt>,
    req: HttpRequest,
    payload: web::Payload,
    at: Mount,
    op: Operation,
) -> HttpResponse {
    let answer = async {
        let actor = actor(&m, &req, at).await?;
        let header = |name| req.headers().get(name).map(HeaderValue::as_bytes);
        let query = Some(req.query_string()).filter(|q| !q.is_empty());
        let call = Call::parse(
            op,
            req.match_info().get("key_id"),
            query,
            header(header::IF_MATCH),
        )?;
        let bytes = if op.reads_body() {
            let budget = BodyBudget::management(m.config.options.body_limit);
            crate::signed::read_within(req.headers(), payload, budget).await?
        } else {
            Vec::new()
        };
        Ok::<_, Rejection>(render(
            call.run(&m.keyward, &actor, header(header::CONTENT_TYPE), &bytes)
                .await,
        ))
    };
    answer
        .await
        .unwrap_or_else(|r| actix_web::ResponseError::error_response(&r))
}
