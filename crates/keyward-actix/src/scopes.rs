//! [`RequireScopes`]: a route-level wrapper that demands scopes of the authenticated caller.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage};
use futures::future::{Either, LocalBoxFuture, Ready, ready};
use keyward_core::ScopeRequirement;

keyward_core::define_require_scopes! {
    /// Requires scopes of the verified key: wrap routes (after [`crate::KeywardAuth`]) with it.
    /// Without a principal it answers `401 API_KEY_MISSING`; with a principal lacking scopes,
    /// `403 API_KEY_SCOPE_DENIED` listing them.
    pub struct RequireScopes;
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
            required: Arc::clone(&self.requirement),
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
        let verdict = crate::signed::require(&req.extensions(), &self.required);
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
