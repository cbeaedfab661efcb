//! [`RequireScopes`]: a route-level wrapper that demands scopes of the authenticated caller.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage};
use futures::FutureExt as _;
use futures::future::{Either, Map, Ready, ready};
use keyward_core::ScopeRequirement;

/// Requires scopes of the verified key. actix-web runs the last `.wrap` first, so wrap with it
/// *before* [`crate::KeywardAuth`]:
///
/// ```no_run
/// # fn demo(keyward: keyward_core::Keyward) {
/// use actix_web::App;
/// use keyward_actix::{KeywardAuth, RequireScopes};
/// use keyward_core::ScopeRequirement;
///
/// let app = App::new()
///     .wrap(RequireScopes::new(ScopeRequirement::all_of_static(["reports:read"])))
///     .wrap(KeywardAuth::new(keyward));
/// # }
/// ```
///
/// With a principal lacking scopes it answers `403 API_KEY_SCOPE_DENIED` listing them; behind
/// an optional middleware, without a principal, `401 API_KEY_MISSING`. Wrapped the other way
/// round, it runs before any key is verified: it answers `500 SERVER_MISCONFIGURED` and logs
/// the order to use.
#[derive(Debug, Clone)]
pub struct RequireScopes(Arc<ScopeRequirement>);

impl RequireScopes {
    /// Requires `requirement`.
    #[must_use]
    pub fn new(requirement: ScopeRequirement) -> Self {
        Self(Arc::new(requirement))
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
            required: Arc::clone(&self.0),
        }))
    }
}

/// The per-worker service built by [`RequireScopes`].
#[derive(Debug)]
pub struct RequireScopesMiddleware<S> {
    service: Rc<S>,
    required: Arc<ScopeRequirement>,
}

type Respond<B> = Result<ServiceResponse<EitherBody<B>>, Error>;
type Inner<S, B> = Map<
    <S as Service<ServiceRequest>>::Future,
    fn(Result<ServiceResponse<B>, Error>) -> Respond<B>,
>;

impl<S, B> Service<ServiceRequest> for RequireScopesMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Either<Inner<S, B>, Ready<Respond<B>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let verdict = crate::extract::require(&req.extensions(), &self.required);
        match verdict {
            Ok(()) => Either::Left(self.service.call(req).map(crate::middleware::into_left)),
            Err(error) => {
                let response = req.error_response(error).map_into_right_body();
                Either::Right(ready(Ok(response)))
            }
        }
    }
}
