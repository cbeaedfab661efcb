//! [`ManagementConfig`]: the management routes' options and the application's hooks on them
//! (owner resolver, admin check, client address), generic over the adapter's request type `R`
//! (axum's `Parts`, actix-web's `HttpRequest`), so that each adapter names it and adds nothing.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;

use super::management::{BATCH_BODY_LIMIT, Call, Caller, Matched, Mount, Operation, Route, actor};
use super::{BodyBudget, ManagementOptions, Rejection, Reply, RequestHead};
use keyward_core::audit::Origin;
use keyward_core::{Keyward, Principal, ScopeRequirement, VerifyContext};

/// How an adapter's framework runs the futures of the application's hooks: [`SendHooks`]
/// where handlers must be `Send` (axum), [`LocalHooks`] where they need not be (actix-web,
/// whose request type is not `Send` either).
pub trait HookFutures: 'static {
    /// A hook's future, boxed.
    type Boxed<'a, T: 'a>: Future<Output = Result<T, Rejection>> + 'a;
}

/// Hook futures that must be `Send`.
#[derive(Debug)]
pub enum SendHooks {}

/// Hook futures of any kind.
#[derive(Debug)]
pub enum LocalHooks {}

impl HookFutures for SendHooks {
    type Boxed<'a, T: 'a> = Pin<Box<dyn Future<Output = Result<T, Rejection>> + Send + 'a>>;
}

impl HookFutures for LocalHooks {
    type Boxed<'a, T: 'a> = Pin<Box<dyn Future<Output = Result<T, Rejection>> + 'a>>;
}

/// An application's hook on a management request of type `R`: its owner resolver (`T =
/// String`, the owner the request acts for, from the application's session or JWT) or its
/// admin check (`T = ()`). Any `async fn(&R) -> Result<T, Rejection>` is one, and so is a
/// closure `|req: &R| …` returning a future (`Send` with [`SendHooks`]), which may borrow the
/// request.
pub trait Hook<'a, R: 'a, T, K: HookFutures>: Send + Sync {
    /// Calls the hook on `req`.
    fn call(&self, req: &'a R) -> K::Boxed<'a, T>;
}

impl<'a, R: 'a, T: 'a, F, Fut> Hook<'a, R, T, SendHooks> for F
where
    F: Fn(&'a R) -> Fut + Send + Sync,
    Fut: Future<Output = Result<T, Rejection>> + Send + 'a,
{
    fn call(&self, req: &'a R) -> <SendHooks as HookFutures>::Boxed<'a, T> {
        Box::pin(self(req))
    }
}

impl<'a, R: 'a, T: 'a, F, Fut> Hook<'a, R, T, LocalHooks> for F
where
    F: Fn(&'a R) -> Fut + Send + Sync,
    Fut: Future<Output = Result<T, Rejection>> + 'a,
{
    fn call(&self, req: &'a R) -> <LocalHooks as HookFutures>::Boxed<'a, T> {
        Box::pin(self(req))
    }
}

/// A stored hook.
type Stored<R, T, K> = Arc<dyn for<'a> Hook<'a, R, T, K>>;

/// What a [`ClientIp`] calls.
type FindIp<R> = dyn Fn(&R) -> Option<IpAddr> + Send + Sync;

/// Finds the client address IP allowlists are checked against, from a request of type `R`.
pub struct ClientIp<R>(Arc<FindIp<R>>);

impl<R> ClientIp<R> {
    /// Finds it with `f`.
    pub fn new(f: impl Fn(&R) -> Option<IpAddr> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The address of `req`'s client, if known.
    pub fn find(&self, req: &R) -> Option<IpAddr> {
        (self.0)(req)
    }
}

impl<R> Clone for ClientIp<R> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<R> fmt::Debug for ClientIp<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientIp(..)")
    }
}

/// How the management routes are mounted ([`ManagementOptions`]) and who may use them: the
/// self-service routes with an owner resolver, the admin routes with an admin check. `K` is
/// how the adapter runs their futures ([`HookFutures`]).
pub struct ManagementConfig<R, K: HookFutures = SendHooks> {
    options: ManagementOptions,
    owner: Option<Stored<R, String, K>>,
    admin: Option<Stored<R, (), K>>,
    client_ip: Option<ClientIp<R>>,
}

impl<R, K: HookFutures> Clone for ManagementConfig<R, K> {
    fn clone(&self) -> Self {
        Self {
            options: self.options.clone(),
            owner: self.owner.clone(),
            admin: self.admin.clone(),
            client_ip: self.client_ip.clone(),
        }
    }
}

impl<R, K: HookFutures> fmt::Debug for ManagementConfig<R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementConfig")
            .field("options", &self.options)
            .field("self_service", &self.owner.is_some())
            .field("admin", &self.admin.is_some())
            .finish_non_exhaustive()
    }
}

impl<R: 'static, K: HookFutures> ManagementConfig<R, K> {
    /// The self-service routes, for the owners `owner` resolves, with the default
    /// [`ManagementOptions`]; no admin routes.
    #[must_use]
    pub fn new<F>(owner: F) -> Self
    where
        F: for<'a> Hook<'a, R, String, K> + 'static,
    {
        Self {
            owner: Some(Arc::new(owner)),
            ..Self::admin_only_unchecked()
        }
    }

    fn admin_only_unchecked() -> Self {
        Self {
            options: ManagementOptions::default(),
            owner: None,
            admin: None,
            client_ip: None,
        }
    }

    /// Only the admin routes, guarded by `check` (a key holding `keyward:admin` passes too):
    /// for a service where owners never manage their own keys, such as the standalone server
    /// without `--owner-header`.
    #[must_use]
    pub fn admin_only<F>(check: F) -> Self
    where
        F: for<'a> Hook<'a, R, (), K> + 'static,
    {
        Self::admin_only_unchecked().admin(check)
    }

    /// Mounts the admin routes, guarded by `check` (a key holding `keyward:admin` passes too).
    #[must_use]
    pub fn admin<F>(mut self, check: F) -> Self
    where
        F: for<'a> Hook<'a, R, (), K> + 'static,
    {
        self.admin = Some(Arc::new(check));
        self
    }

    /// Where the routes are mounted and the rules for their callers.
    #[must_use]
    pub fn options(mut self, options: ManagementOptions) -> Self {
        self.options = options;
        self
    }

    /// The client address IP allowlists are checked against when these routes verify a key
    /// themselves (as on the authentication middleware; default: the adapter's, the TCP peer).
    #[must_use]
    pub fn client_ip(mut self, f: impl Fn(&R) -> Option<IpAddr> + Send + Sync + 'static) -> Self {
        self.client_ip = Some(ClientIp::new(f));
        self
    }

    /// The client address finder set with [`ManagementConfig::client_ip`], if any.
    #[must_use]
    pub fn client_ip_finder(&self) -> Option<&ClientIp<R>> {
        self.client_ip.as_ref()
    }

    /// Every path to register, with its mount and its routes (one to three methods).
    #[must_use]
    pub fn paths(&self) -> Vec<(String, Mount, Vec<Route>)> {
        let (self_service, admin) = (self.owner.is_some(), self.admin.is_some());
        self.options.paths(self_service, admin)
    }

    /// The mounts and their base paths.
    #[must_use]
    pub fn mounts(&self) -> Vec<(Mount, String)> {
        let (self_service, admin) = (self.owner.is_some(), self.admin.is_some());
        self.options.mounts(self_service, admin)
    }

    /// The OpenAPI document of the routes mounted, with the SigV4 scheme when `keyward`
    /// verifies signed requests.
    #[cfg(feature = "openapi")]
    #[must_use]
    pub fn openapi(&self, keyward: &Keyward) -> crate::openapi::OpenApi {
        let (self_service, admin) = (self.owner.is_some(), self.admin.is_some());
        self.options.openapi(self_service, admin, keyward)
    }

    /// Serves one management request `req` (whose head is `head`) on the matched `route`, end
    /// to end: who the caller acts as (the hooks are called with `req`, and only when the
    /// decision needs them; `verified` is a principal the authentication middleware in front
    /// already verified), the head (path key id, query, `If-Match`), the body when the
    /// operation reads one (a stream of chunks, read within the body limit), the operation,
    /// and the answer.
    pub async fn serve<S, D, E>(
        &self,
        keyward: &Keyward,
        route: Matched<'_>,
        req: &R,
        head: &impl RequestHead,
        verified: Option<&Principal>,
        body: S,
    ) -> Reply
    where
        S: Stream<Item = Result<D, E>>,
        D: AsRef<[u8]>,
        E: fmt::Display,
    {
        let options = &self.options;
        let answer = async {
            let credential = options
                .credential_headers
                .extract(&keyward.policy().format, head);
            let caller = Caller {
                owner_in_path: route.owner_id,
                verified,
                presented: credential.is_presented(),
            };
            let verify = async {
                let ctx = VerifyContext {
                    client_ip: head.client_ip(),
                    tags: keyward_core::analytics::Tags::NONE,
                    user_agent: head.header("user-agent"),
                    cost: None,
                };
                let none = ScopeRequirement::none();
                Ok(super::gate::verify_presented(keyward, credential, &none, &ctx).await?)
            };
            // Lazy: a hook is called only when the decision polls it.
            let check = self
                .admin
                .as_ref()
                .map(|check| async move { check.call(req).await });
            let resolve = async {
                match &self.owner {
                    Some(owner) => owner.call(req).await,
                    None => Err(Rejection::unauthenticated()),
                }
            };
            let origin = Origin::new(
                head.client_ip(),
                head.header("user-agent"),
                head.header("x-request-id"),
            );
            let actor = actor(options, route.mount, caller, check, verify, resolve)
                .await?
                .with_origin(origin);
            let if_match = head.header("if-match");
            let call = Call::parse(route.operation, route.key_id, head.query(), if_match)?;
            let bytes = if route.operation.reads_body() {
                let limit = if route.operation == Operation::CreateBatch {
                    options.body_limit.max(BATCH_BODY_LIMIT)
                } else {
                    options.body_limit
                };
                let budget = BodyBudget::management(limit);
                budget.read(head.header("content-length"), body).await?
            } else {
                Vec::new()
            };
            let content_type = head.header("content-type");
            Ok::<_, Rejection>(call.run(keyward, &actor, content_type, &bytes).await)
        };
        answer.await.unwrap_or_else(Reply::from)
    }
}
