//! The management routes of DESIGN.md §6, written once: the route table, who the caller acts
//! as, each operation's request parsing and its answer. An adapter mounts [`ROUTES`] under
//! each of [`ManagementConfig::paths`](crate::ManagementConfig::paths), and for a request on one of them calls
//! [`ManagementConfig::serve`](crate::ManagementConfig::serve) with the [`Matched`] route, its [`RequestHead`](crate::RequestHead), the body as a
//! stream, and its framework's admin check and owner resolver as futures; it answers with the
//! [`Reply`]. Inside, in order:
//!
//! 1. the [`Actor`]: `self_service_actor` or `admin_actor` (DESIGN.md §11);
//! 2. the head: path key id, query, `If-Match`;
//! 3. the body, through a [`BodyBudget`](crate::BodyBudget), when [`Operation::reads_body`];
//! 4. the operation, and its answer.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST {prefix}` | `201 {api_key, key}`: the raw key, this once, `no-store` |
//! | `GET {prefix}?limit=&cursor=&env=&state=` | `200 {items, next_cursor}` |
//! | `GET {prefix}/{key_id}` | `200 key`; `404` for missing and foreign keys |
//! | `PATCH {prefix}/{key_id}` | `200 key` |
//! | `DELETE {prefix}/{key_id}` | `204`, soft revoke |
//! | `POST {prefix}/{key_id}/rotate` | `201 {api_key, key}`, `no-store` |
//! | `POST {prefix}/{key_id}/credits` `{add}` | `200 key`: its credits topped up (admin) |
//! | `GET {prefix}/{key_id}/events?action=&actor=&since=&until=&cursor=&limit=` | `200 {items, next_cursor}`: the key's audit log, newest first |
//! | `GET {prefix}/{key_id}/usage?from=&to=&granularity=&tag=` | `200` the key's usage analytics: verifications by outcome, in hourly or daily buckets, and by tag |
//! | `GET {prefix}/usage?from=&to=&granularity=&tag=` | `200` the same for every key of the owner |
//! | `{admin_prefix}/owners/{owner_id}{prefix}…`, the same nine | as above, owner from the path |
//! | `GET {admin_prefix}{prefix}?owner_id=&env=&state=&cursor=&limit=` | `200 {items, next_cursor}`: every owner's keys, for administrators |
//! | `POST {admin_prefix}{prefix}/batch` | `201 {items: [{api_key, key}]}`: up to 1,000 keys of any owners, all or none, `no-store` |
//! | `GET {admin_prefix}/audit?owner_id=&key_id=&action=&actor=&since=&until=&cursor=&limit=` | `200 {items, next_cursor}`: every owner's audit log, for administrators |
//!
//! Answers about one key carry its version as `ETag`; `PATCH`, `DELETE` and `rotate` honour
//! `If-Match` (`412`).

#![allow(
    clippy::result_large_err,
    reason = "a Problem is built once per rejected request, on the cold path"
)]

use std::future::Future;

use crate::problem::Problem;
use keyward_core::audit::ActorKind;
use keyward_core::authz::Actor;
use keyward_core::key::KeyId;
use keyward_core::management::{
    AddCreditsRequest, CreateKeyRequest, CreateKeysRequest, EventQuery, KeyQuery, KeyVersion,
    RotateKeyRequest, UpdateKeyRequest, UsageQuery,
};
use keyward_core::{Keyward, Principal};

use super::{
    CredentialHeaders, Reply, if_match, json_body, json_body_or_default, list_query, path_key_id,
};

/// The management operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST {base}`: create a key.
    Create,
    /// `GET {base}`: a page of keys.
    List,
    /// `GET {base}/{key_id}`.
    Get,
    /// `PATCH {base}/{key_id}`.
    Update,
    /// `DELETE {base}/{key_id}`: soft revoke.
    Revoke,
    /// `POST {base}/{key_id}/rotate`.
    Rotate,
    /// `POST {base}/{key_id}/credits`: top up the key's credits.
    Credits,
    /// `POST {admin_prefix}{prefix}/batch`: create up to 1,000 keys of any owners, all or none.
    CreateBatch,
    /// `GET {base}/{key_id}/events`: the key's audit log.
    Events,
    /// `GET {admin_prefix}/audit`: the audit log of every owner's keys.
    Audit,
    /// `GET {base}/{key_id}/usage`: the key's usage analytics.
    Usage,
    /// `GET {base}/usage`: the usage analytics of every key of the owner.
    OwnerUsage,
}

impl Operation {
    /// Whether the operation reads a JSON body.
    #[must_use]
    pub fn reads_body(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Update | Self::Rotate | Self::Credits | Self::CreateBatch
        )
    }
}

/// Which set of routes a request came in on: who the actor can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mount {
    /// `{prefix}…`: an owner (or, when allowed, a key caller), through `self_service_actor`.
    SelfService,
    /// `{admin_prefix}/owners/{owner_id}{prefix}…`: an administrator, through `admin_actor`.
    Admin,
    /// `{admin_prefix}{prefix}…`: an administrator of every owner, through `admin_actor`: the
    /// list of every owner's keys (or of the `?owner_id=` one) when
    /// [`ManagementOptions::admin_list_all`] is on, the batch create when
    /// [`ManagementOptions::admin_batch_create`] is. Mounted with [`Mount::Admin`].
    AdminAll,
    /// `{admin_prefix}/audit`: the audit log of every owner's keys, for an administrator of
    /// every owner, through `admin_actor`, when [`ManagementOptions::admin_audit`] is on.
    /// Mounted with [`Mount::Admin`].
    Audit,
}

/// One management route, relative to its mount's base path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The method, uppercase.
    pub method: &'static str,
    /// The path after the base: `""`, `"/usage"`, `"/{key_id}"`, `"/{key_id}/rotate"`,
    /// `"/{key_id}/events"` or `"/{key_id}/usage"` (the `{name}` template syntax both axum
    /// and actix-web use).
    pub path: &'static str,
    /// What the route does.
    pub operation: Operation,
}

/// The nine routes under each mount's base, grouped by path (`/usage` before `/{key_id}`, for
/// routers that try routes in order).
pub const ROUTES: [Route; 10] = [
    Route {
        method: "POST",
        path: "",
        operation: Operation::Create,
    },
    Route {
        method: "GET",
        path: "",
        operation: Operation::List,
    },
    Route {
        method: "GET",
        path: "/usage",
        operation: Operation::OwnerUsage,
    },
    Route {
        method: "GET",
        path: "/{key_id}",
        operation: Operation::Get,
    },
    Route {
        method: "PATCH",
        path: "/{key_id}",
        operation: Operation::Update,
    },
    Route {
        method: "DELETE",
        path: "/{key_id}",
        operation: Operation::Revoke,
    },
    Route {
        method: "POST",
        path: "/{key_id}/rotate",
        operation: Operation::Rotate,
    },
    Route {
        method: "POST",
        path: "/{key_id}/credits",
        operation: Operation::Credits,
    },
    Route {
        method: "GET",
        path: "/{key_id}/events",
        operation: Operation::Events,
    },
    Route {
        method: "GET",
        path: "/{key_id}/usage",
        operation: Operation::Usage,
    },
];

/// The audit log of every owner, the only route under [`Mount::Audit`]'s base.
pub const AUDIT_ROUTE: Route = Route {
    method: "GET",
    path: "",
    operation: Operation::Audit,
};

/// The batch create, under [`Mount::AdminAll`]'s base.
pub const BATCH_ROUTE: Route = Route {
    method: "POST",
    path: "/batch",
    operation: Operation::CreateBatch,
};

/// The body limit of [`Operation::CreateBatch`] when [`ManagementOptions::body_limit`] is
/// lower: room for 1,000 keys of about a kilobyte each.
pub const BATCH_BODY_LIMIT: usize = 1024 * 1024;

/// Where the management routes are mounted and the framework-neutral rules for their callers;
/// each adapter's `ManagementConfig` holds one beside its owner resolver and admin check.
///
/// ```
/// use keyward_http::{ManagementConfig, ManagementOptions, Rejection};
///
/// let options = ManagementOptions::default()
///     .prefix("keys/")
///     .admin_prefix("/ops")
///     .body_limit(16 * 1024);
/// let nobody = |_: &()| std::future::ready(Err::<String, _>(Rejection::unauthenticated()));
/// let config: ManagementConfig<()> = ManagementConfig::new(nobody).options(options);
/// assert_eq!(config.paths()[0].0, "/keys");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementOptions {
    prefix: String,
    admin_prefix: String,
    pub(crate) allow_api_key_callers: bool,
    admin_list_all: bool,
    admin_batch_create: bool,
    admin_audit: bool,
    pub(crate) body_limit: usize,
    pub(crate) credential_headers: CredentialHeaders,
}

impl Default for ManagementOptions {
    fn default() -> Self {
        Self {
            prefix: "/api-keys".to_owned(),
            admin_prefix: "/admin".to_owned(),
            allow_api_key_callers: false,
            admin_list_all: false,
            admin_batch_create: false,
            admin_audit: false,
            body_limit: super::DEFAULT_BODY_LIMIT,
            credential_headers: CredentialHeaders::default(),
        }
    }
}

/// `/x` from `x`, `/x/` and `/x`.
fn normalize(prefix: &str) -> String {
    let p = prefix.trim_end_matches('/');
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{p}")
    }
}

impl ManagementOptions {
    /// Mounts the self-service routes under `prefix` (default `/api-keys`; a leading `/` is
    /// added, a trailing one dropped). The admin routes follow it:
    /// `{admin_prefix}/owners/{owner_id}{prefix}`.
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = normalize(prefix);
        self
    }

    /// Mounts the admin routes under `{admin_prefix}/owners/{owner_id}{prefix}` (default
    /// `/admin`).
    #[must_use]
    pub fn admin_prefix(mut self, admin_prefix: &str) -> Self {
        self.admin_prefix = normalize(admin_prefix);
        self
    }

    /// Lets requests that present an API key manage keys: the key is verified first (unless
    /// the authentication middleware did already) and acts for its own owner. Off by default:
    /// a leaked key must not mint more keys.
    #[must_use]
    pub fn allow_api_key_callers(mut self, allow: bool) -> Self {
        self.allow_api_key_callers = allow;
        self
    }

    /// Mounts `GET {admin_prefix}{prefix}` beside the admin routes: every owner's keys, or one
    /// owner's with `?owner_id=`, to a caller the admin check passes (or a key holding
    /// `keyward:admin`). Off by default: the admin check sees no owner in this route's path, so
    /// an application whose administrators are each limited to some owners must not turn it
    /// on unless its check refuses requests without one.
    #[must_use]
    pub fn admin_list_all(mut self, mount: bool) -> Self {
        self.admin_list_all = mount;
        self
    }

    /// Mounts `POST {admin_prefix}{prefix}/batch` beside the admin routes: up to 1,000 keys of
    /// any owners in one call, all created or none, the per-owner cap checked for the whole
    /// batch, to a caller the admin check passes (or a key holding `keyward:admin`). Off by
    /// default, for the reason [`ManagementOptions::admin_list_all`] gives: the admin check
    /// sees no owner in this route's path. Its body may be up to [`BATCH_BODY_LIMIT`] (or the
    /// body limit, if larger).
    #[must_use]
    pub fn admin_batch_create(mut self, mount: bool) -> Self {
        self.admin_batch_create = mount;
        self
    }

    /// Mounts `GET {admin_prefix}/audit` beside the admin routes: the audit log of every
    /// owner's keys (or of the `?owner_id=` one), newest first, to a caller the admin check
    /// passes (or a key holding `keyward:admin`). Off by default, for the reason
    /// [`ManagementOptions::admin_list_all`] gives: the admin check sees no owner in this
    /// route's path. Each key's log is under its own routes, `…/{key_id}/events`, either way.
    #[must_use]
    pub fn admin_audit(mut self, mount: bool) -> Self {
        self.admin_audit = mount;
        self
    }

    /// Largest accepted request body in bytes (default 64 KiB); larger ones get `413`.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The credential headers, to recognise API-key callers (as configured on the
    /// authentication middleware).
    #[must_use]
    pub fn credential_headers(mut self, headers: CredentialHeaders) -> Self {
        self.credential_headers = headers;
        self
    }

    /// The base of the admin routes: `{admin_prefix}/owners/{owner_id}{prefix}`.
    #[must_use]
    pub(crate) fn admin_base(&self) -> String {
        format!("{}/owners/{{owner_id}}{}", self.admin_prefix, self.prefix)
    }

    /// The mounts and their base paths: the self-service one when `self_service` (an owner
    /// resolver is set), the admin one when `admin` (an admin check is set).
    #[must_use]
    pub(crate) fn mounts(&self, self_service: bool, admin: bool) -> Vec<(Mount, String)> {
        let mut mounts = Vec::with_capacity(2);
        if self_service {
            mounts.push((Mount::SelfService, self.prefix.clone()));
        }
        if admin {
            mounts.push((Mount::Admin, self.admin_base()));
            if self.admin_list_all || self.admin_batch_create {
                let all = format!("{}{}", self.admin_prefix, self.prefix);
                mounts.push((Mount::AdminAll, all));
            }
            if self.admin_audit {
                mounts.push((Mount::Audit, format!("{}/audit", self.admin_prefix)));
            }
        }
        mounts
    }

    /// Every path to register, with its mount and its routes (one to three methods): what an
    /// adapter whose router takes one entry per path mounts.
    #[must_use]
    pub(crate) fn paths(
        &self,
        self_service: bool,
        admin: bool,
    ) -> Vec<(String, Mount, Vec<Route>)> {
        let mut paths = Vec::with_capacity(6);
        for (mount, base) in self.mounts(self_service, admin) {
            if mount == Mount::Audit {
                paths.push((base, mount, vec![AUDIT_ROUTE]));
                continue;
            }
            if mount == Mount::AdminAll {
                if self.admin_list_all {
                    let list = ROUTES.iter().filter(|r| r.operation == Operation::List);
                    paths.push((base.clone(), mount, list.copied().collect()));
                }
                if self.admin_batch_create {
                    paths.push((
                        format!("{base}{}", BATCH_ROUTE.path),
                        mount,
                        vec![BATCH_ROUTE],
                    ));
                }
                continue;
            }
            for (i, route) in ROUTES.iter().enumerate() {
                // One entry per path, where it first appears.
                if ROUTES[..i].iter().any(|r| r.path == route.path) {
                    continue;
                }
                let routes = ROUTES.iter().filter(|r| r.path == route.path).copied();
                paths.push((format!("{base}{}", route.path), mount, routes.collect()));
            }
        }
        paths
    }

    /// The OpenAPI document of these mounts, with the SigV4 scheme when `keyward` verifies
    /// signed requests.
    #[cfg(feature = "openapi")]
    #[must_use]
    pub(crate) fn openapi(
        &self,
        self_service: bool,
        admin: bool,
        keyward: &Keyward,
    ) -> crate::openapi::OpenApi {
        crate::openapi::document(&crate::openapi::Mounted {
            prefix: &self.prefix,
            admin_prefix: &self.admin_prefix,
            self_service,
            admin,
            admin_list_all: self.admin_list_all,
            admin_batch_create: self.admin_batch_create,
            admin_audit: self.admin_audit,
            signing: keyward.signing_enabled(),
            policy: Some(keyward.policy()),
        })
    }
}

/// The management route a request matched, with its path parameters.
#[derive(Debug, Clone, Copy)]
pub struct Matched<'a> {
    /// The set of routes it came in on.
    pub mount: Mount,
    /// What it does.
    pub operation: Operation,
    /// The path's `{owner_id}` (admin routes).
    pub owner_id: Option<&'a str>,
    /// The path's `{key_id}` (routes about one key).
    pub key_id: Option<&'a str>,
}

impl<'a> Matched<'a> {
    /// The route of `operation` on `mount`, its path parameters read with `param` (the
    /// framework's lookup by name).
    pub fn new(
        mount: Mount,
        operation: Operation,
        param: impl Fn(&str) -> Option<&'a str>,
    ) -> Self {
        let (owner_id, key_id) = (param("owner_id"), param("key_id"));
        Self {
            mount,
            operation,
            owner_id,
            key_id,
        }
    }
}

/// What is known of a management request's caller before anyone is asked.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Caller<'a> {
    /// The `{owner_id}` of an admin route's path.
    pub owner_in_path: Option<&'a str>,
    /// A principal the authentication middleware in front already verified.
    pub verified: Option<&'a Principal>,
    /// Whether the request presents a keyward credential itself.
    pub presented: bool,
}

/// Who a management request acts as (DESIGN.md §11): `self_service_actor` on
/// [`Mount::SelfService`], `admin_actor` on [`Mount::Admin`]. The futures are the adapter's
/// and are lazy: only those the decision needs are polled.
///
/// # Errors
/// `404` for an admin route without an owner; as the two functions.
pub(crate) async fn actor<E: From<Problem>>(
    options: &ManagementOptions,
    mount: Mount,
    caller: Caller<'_>,
    check: Option<impl Future<Output = Result<(), E>>>,
    verify: impl Future<Output = Result<Option<Principal>, E>>,
    resolve: impl Future<Output = Result<String, E>>,
) -> Result<Actor, E> {
    match mount {
        Mount::SelfService => {
            self_service_actor(options, caller.verified, caller.presented, verify, resolve).await
        }
        Mount::Admin => {
            let owner = caller.owner_in_path.filter(|o| !o.is_empty());
            let owner = owner.ok_or_else(super::key_not_found)?.to_owned();
            admin_actor(options, Some(owner), caller.verified, check, verify).await
        }
        Mount::AdminAll | Mount::Audit => {
            admin_actor(options, None, caller.verified, check, verify).await
        }
    }
}

/// The actor of a self-service request (DESIGN.md §11).
///
/// - `verified`: a principal the authentication middleware in front already verified.
/// - `presented`: whether the request presents a keyward credential itself.
/// - `verify`: verifies that credential (`Ok(None)` when there is none to verify);
///   polled only when a credential was presented and key callers are allowed.
/// - `resolve`: the application's owner resolver; polled only when no key acts.
///
/// # Errors
/// `403 FORBIDDEN` for a key caller when [`ManagementOptions::allow_api_key_callers`] is off;
/// whatever `verify` and `resolve` refuse with.
pub(crate) async fn self_service_actor<E: From<Problem>>(
    options: &ManagementOptions,
    verified: Option<&Principal>,
    presented: bool,
    verify: impl Future<Output = Result<Option<Principal>, E>>,
    resolve: impl Future<Output = Result<String, E>>,
) -> Result<Actor, E> {
    if verified.is_none() && !presented {
        return Ok(Actor::owner(resolve.await?));
    }
    if !options.allow_api_key_callers {
        return Err(super::api_key_management_forbidden().into());
    }
    if let Some(p) = verified {
        return Ok(Actor::key(p));
    }
    match verify.await? {
        Some(p) => Ok(Actor::key(&p)),
        None => Ok(Actor::owner(resolve.await?)),
    }
}

/// The actor of an admin request: an administrator of `owner` (of every owner without one),
/// established by a key holding `keyward:admin` or by the application's admin check.
///
/// A key the middleware in front verified (`verified`) decides first. Otherwise `check` runs
/// before a presented key is verified, so that the application's own credential (a session, a
/// static token) may ride in a header that also carries API keys; only when it refuses is
/// `verify` polled. Pass `check` as `None` when no admin check is configured.
///
/// # Errors
/// The check's refusal (`403 FORBIDDEN` without a check); `403` for a non-admin key when key
/// callers are not allowed; whatever `verify` refuses with.
pub(crate) async fn admin_actor<E: From<Problem>>(
    options: &ManagementOptions,
    owner: Option<String>,
    verified: Option<&Principal>,
    check: Option<impl Future<Output = Result<(), E>>>,
    verify: impl Future<Output = Result<Option<Principal>, E>>,
) -> Result<Actor, E> {
    let check = async move {
        match check {
            Some(check) => check.await,
            None => Err(super::admin_forbidden().into()),
        }
    };
    let key_forbidden = || E::from(super::api_key_management_forbidden());
    let admin = |owner: Option<String>| owner.map_or_else(Actor::admin, Actor::admin_for);
    // The audit log names who came in: the admin check, or the administrator key.
    let checked = |owner| admin(owner).by(ActorKind::Admin, None);
    let by_key =
        |owner, p: &Principal| admin(owner).by(ActorKind::AdminKey, Some(p.key_id().to_string()));
    if let Some(p) = verified {
        if p.is_admin() {
            return Ok(by_key(owner, p));
        }
        if !options.allow_api_key_callers {
            return Err(key_forbidden());
        }
        check.await?;
        return Ok(checked(owner));
    }
    let refused = match check.await {
        Ok(()) => return Ok(checked(owner)),
        Err(r) => r,
    };
    match verify.await? {
        Some(p) if p.is_admin() => Ok(by_key(owner, &p)),
        Some(_) if !options.allow_api_key_callers => Err(key_forbidden()),
        _ => Err(refused),
    }
}

/// A management request whose head (path, query, `If-Match`) has been parsed.
#[derive(Debug)]
pub(crate) struct Call {
    operation: Operation,
    key_id: Option<KeyId>,
    query: KeyQuery,
    events: EventQuery,
    usage: UsageQuery,
    /// An `If-Match` that names no version keyward issued is [`KeyVersion::UNMATCHABLE`]: the
    /// service answers `412` for it after judging the request, so that an invalid body is
    /// `400`/`422` whatever the precondition says.
    if_match: Option<KeyVersion>,
}

impl Call {
    /// Parses what `operation` reads of the request head: the path's `key_id` (routes under
    /// `/{key_id}`), the query (`List`) and `If-Match` (`Update`, `Revoke`, `Rotate`).
    ///
    /// # Errors
    /// `404` for a key id that cannot name a key, `422` for a bad query. An `If-Match` that
    /// names no version is answered `412` by [`Call::run`], after the request was judged.
    pub(crate) fn parse(
        operation: Operation,
        key_id: Option<&str>,
        query: Option<&str>,
        if_match_header: Option<&[u8]>,
    ) -> Result<Self, Problem> {
        let needs_id = !matches!(
            operation,
            Operation::Create
                | Operation::List
                | Operation::CreateBatch
                | Operation::Audit
                | Operation::OwnerUsage
        );
        let key_id = if needs_id {
            Some(path_key_id(key_id.unwrap_or(""))?)
        } else {
            None
        };
        let (list, events) = match operation {
            Operation::List => (list_query(query)?, EventQuery::default()),
            Operation::Events | Operation::Audit => {
                let mut events = super::events_query(query)?;
                if let Some(id) = &key_id {
                    events.key_id = Some(id.to_string());
                }
                (KeyQuery::default(), events)
            }
            _ => (KeyQuery::default(), EventQuery::default()),
        };
        let usage = if matches!(operation, Operation::Usage | Operation::OwnerUsage) {
            super::usage_query(query)?
        } else {
            UsageQuery::default()
        };
        let if_match = if matches!(
            operation,
            Operation::Update | Operation::Revoke | Operation::Rotate | Operation::Credits
        ) {
            if_match(if_match_header).unwrap_or(Some(KeyVersion::UNMATCHABLE))
        } else {
            None
        };
        Ok(Self {
            operation,
            key_id,
            query: list,
            events,
            usage,
            if_match,
        })
    }

    /// Runs the operation as `actor` with the request's body (empty when the operation reads
    /// none) and its `Content-Type`, and gives the answer: the success reply, or the problem of
    /// a refusal (`415`, `400`, `422` for the body; the service's own).
    pub(crate) async fn run(
        self,
        keyward: &Keyward,
        actor: &Actor,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> Reply {
        self.answer(keyward, actor, content_type, body)
            .await
            .unwrap_or_else(|p| Reply::from(&p))
    }

    async fn answer(
        self,
        keyward: &Keyward,
        actor: &Actor,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> Result<Reply, Problem> {
        let svc = |e: keyward_core::ServiceError| super::reply::service_problem(&e);
        let id = self.key_id.as_ref();
        let id = || id.ok_or_else(super::key_not_found);
        Ok(match self.operation {
            Operation::Create => {
                let req: CreateKeyRequest = json_body(content_type, body)?;
                let created = keyward.create_key_as(actor, req).await.map_err(svc)?;
                let version = KeyVersion::of_view(&created.key);
                Reply::json(201, &created).no_store().etag(version)
            }
            Operation::CreateBatch => {
                let req: CreateKeysRequest = json_body(content_type, body)?;
                let created = keyward.create_keys(actor, req).await.map_err(svc)?;
                Reply::json(201, &created).no_store()
            }
            Operation::List => {
                let page = keyward.list_keys(actor, &self.query).await.map_err(svc)?;
                Reply::json(200, &page)
            }
            Operation::Get => {
                let view = keyward.get_key(actor, id()?).await.map_err(svc)?;
                Reply::json(200, &view).etag(KeyVersion::of_view(&view))
            }
            Operation::Update => {
                let req: UpdateKeyRequest = json_body(content_type, body)?;
                let view = keyward
                    .update_key(actor, id()?, req, self.if_match)
                    .await
                    .map_err(svc)?;
                Reply::json(200, &view).etag(KeyVersion::of_view(&view))
            }
            Operation::Revoke => {
                keyward
                    .revoke_key(actor, id()?, self.if_match)
                    .await
                    .map_err(svc)?;
                Reply::empty(204)
            }
            Operation::Events | Operation::Audit => {
                let page = keyward
                    .list_events(actor, &self.events)
                    .await
                    .map_err(svc)?;
                Reply::json(200, &page)
            }
            Operation::Usage | Operation::OwnerUsage => {
                let report = keyward
                    .usage(actor, self.key_id.as_ref(), &self.usage)
                    .await
                    .map_err(svc)?;
                Reply::json(200, &report)
            }
            Operation::Credits => {
                let req: AddCreditsRequest = json_body(content_type, body)?;
                let view = keyward
                    .add_credits(actor, id()?, req.add, self.if_match)
                    .await
                    .map_err(svc)?;
                Reply::json(200, &view).etag(KeyVersion::of_view(&view))
            }
            Operation::Rotate => {
                let req: RotateKeyRequest = json_body_or_default(content_type, body)?;
                let created = keyward
                    .rotate_key(actor, id()?, req, self.if_match)
                    .await
                    .map_err(svc)?;
                let version = KeyVersion::of_view(&created.key);
                Reply::json(201, &created).no_store().etag(version)
            }
        })
    }
}
