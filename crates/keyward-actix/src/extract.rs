//! [`Authenticated`]: the `FromRequest` extractor for the caller's [`Principal`].

use std::ops::Deref;

use actix_web::dev::{Extensions, Payload};
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};
use futures::future::{Ready, ready};
use keyward_core::{Principal, ScopeRequirement};
use keyward_http::{Anonymous, gate};

use crate::rejection::error;

/// The verified caller, put into the request by [`crate::KeywardAuth`]:
///
/// ```no_run
/// use keyward_actix::Authenticated;
///
/// async fn whoami(caller: Authenticated) -> String {
///     caller.owner_id().to_owned()
/// }
/// ```
///
/// Behind an [`optional`](keyward_http::Gate::optional) middleware, extracting it answers `401
/// API_KEY_MISSING` for a request without a key (`401 SIGNATURE_INVALID` for a signature
/// nothing could verify); use `Option<Authenticated>`, which never rejects, where a key is
/// optional. On a route no middleware covers it answers `500 SERVER_MISCONFIGURED` and logs
/// why.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl Authenticated {
    /// The principal.
    #[must_use]
    pub fn into_inner(self) -> Principal {
        self.0
    }

    /// Checks a requirement inside a handler (for scopes that depend on the request).
    ///
    /// # Errors
    /// 403 `API_KEY_SCOPE_DENIED` listing the missing scopes.
    pub fn require(&self, requirement: &ScopeRequirement) -> Result<(), Error> {
        gate::require_scopes(Some(&self.0), None, requirement, WIRING).map_err(error)
    }
}

impl Deref for Authenticated {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// Where the middlewares go, for the log line of a route no [`crate::KeywardAuth`] ran before.
const WIRING: &str = "`KeywardAuth` must run before `RequireScopes` and the `Authenticated` \
    extractor, and actix-web runs the last `.wrap` first: write \
    `.wrap(RequireScopes::new(…)).wrap(KeywardAuth::new(…))`, the scopes first";

/// Checks `requirement` on the principal the middleware left in `ext`.
pub(crate) fn require(ext: &Extensions, requirement: &ScopeRequirement) -> Result<(), Error> {
    let anonymous = ext.get::<Anonymous>().copied();
    gate::require_scopes(ext.get::<Principal>(), anonymous, requirement, WIRING).map_err(error)
}

impl FromRequest for Authenticated {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ext = req.extensions();
        let principal = require(&ext, &ScopeRequirement::none()).map(|()| ext.get().cloned());
        let missing = || error(keyward_http::Rejection::missing());
        ready(principal.and_then(|p| p.map(Self).ok_or_else(missing)))
    }
}
