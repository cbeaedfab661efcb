//! [`RequireScopes`]: a route-level wrapper that demands scopes of the authenticated caller.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage};
use futures::future::{Either, LocalBoxFuture, Ready, ready};
use keyward_core::scope::ScopeError;
use keyward_core::{Principal, ScopeRequirement, VerifyError};

use crate::rejection::Rejection;

/// Demands scopes of the caller that [`crate::KeywardAuth`] authenticated. Wrap a `Resource`
/// or `Scope` with it (inside an app wrapped by `KeywardAuth`):
///
/// ```no_run
/// use actix_web::{web, HttpResponse};
/// use keyward_actix::RequireScopes;
///
/// let reports = web::resource("/reports")
///     .wrap(RequireScopes::all_of_static(["reports:read"]))
///     .route(web::get().to(HttpResponse::Ok));
/// ```
///
/// `all_of_static`/`any_of_static` take literals and panic on a malformed one (a bug, found at
/// startup); `all_of`/`any_of` take scopes from input and return a `Result`.
///
/// Without a caller the answer is 401 `API_KEY_MISSING`; with a caller lacking scopes, 403
/// `API_KEY_SCOPE_DENIED` listing them.
#[derive(Debug, Clone)]
pub struct RequireScopes {
    required: Arc<ScopeRequirement>,
}

impl RequireScopes {
    /// Wraps an existing requirement.
    #[must_use]
    pub fn new(required: ScopeRequirement) -> Self {
        Self {
            required: Arc::new(required),
        }
    }

    /// Every one of `scopes` is required.
    ///
    /// # Errors
    /// A [`ScopeError`] when a scope is not well formed.
    pub fn all_of<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Result<Self, ScopeError> {
        ScopeRequirement::all_of(scopes).map(Self::new)
    }

    /// At least one of `scopes` is required.
    ///
    /// # Errors
    /// A [`ScopeError`] when a scope is not well formed.
    pub fn any_of<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Result<Self, ScopeError> {
        ScopeRequirement::any_of(scopes).map(Self::new)
    }

    /// Requires all of `scopes`, written as literals: no `?` where the layer is built.
    ///
    /// # Panics
    /// When a literal is not a well-formed scope (see [`ScopeRequirement::all_of_static`]).
    #[must_use]
    #[track_caller]
    pub fn all_of_static<const N: usize>(scopes: [&'static str; N]) -> Self {
        Self::new(ScopeRequirement::all_of_static(scopes))
    }

    /// Requires at least one of `scopes`, written as literals.
    ///
    /// # Panics
    /// When a literal is not a well-formed scope (see [`ScopeRequirement::any_of_static`]).
    #[must_use]
    #[track_caller]
    pub fn any_of_static<const N: usize>(scopes: [&'static str; N]) -> Self {
        Self::new(ScopeRequirement::any_of_static(scopes))
    }

    /// The requirement.
    #[must_use]
    pub fn requirement(&self) -> &ScopeRequirement {
        &self.required
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireScopes
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireScopesMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireScopesMiddleware {
            service: Rc::new(service),
            required: Arc::clone(&self.required),
        }))
    }
}

/// The per-worker service built by [`RequireScopes`].
pub struct RequireScopesMiddleware<S> {
    service: Rc<S>,
    required: Arc<ScopeRequirement>,
}

impl<S> std::fmt::Debug for RequireScopesMiddleware<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireScopesMiddleware")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

type Respond<B> = Result<ServiceResponse<EitherBody<B>>, Error>;

impl<S, B> Service<ServiceRequest> for RequireScopesMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Either<LocalBoxFuture<'static, Respond<B>>, Ready<Respond<B>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let verdict = match req.extensions().get::<Principal>() {
            None => Err(crate::signed::missing(&req.extensions())),
            Some(p) => self
                .required
                .check(p.scopes())
                .map_err(|missing| Rejection::from(&VerifyError::ScopeDenied { missing })),
        };
        match verdict {
            Ok(()) => {
                let fut = self.service.call(req);
                Either::Left(Box::pin(async move {
                    fut.await.map(ServiceResponse::map_into_left_body)
                }))
            }
            Err(rejection) => {
                tracing::debug!(code = %rejection.problem().code, path = req.path(), "scope requirement not met");
                Either::Right(ready(Ok(req
                    .error_response(rejection)
                    .map_into_right_body())))
            }
        }
    }
}
