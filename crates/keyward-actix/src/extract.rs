//! [`Authenticated`]: the `FromRequest` extractor for the caller's [`Principal`].

use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures::future::{Ready, ready};
use keyward_core::{Principal, ScopeRequirement, VerifyError};

use crate::rejection::Rejection;

/// The verified caller, put into the request by [`crate::KeywardAuth`].
///
/// Extracting it fails with 401 `API_KEY_MISSING` (a problem document) when the request was
/// not authenticated by an API key. Use `Option<Authenticated>` on routes where a key is
/// optional.
///
/// ```no_run
/// use keyward_actix::Authenticated;
///
/// async fn whoami(caller: Authenticated) -> String {
///     caller.owner_id().to_owned()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl Authenticated {
    /// The principal.
    #[must_use]
    pub fn into_inner(self) -> Principal {
        self.0
    }

    /// Checks `required` against the caller's scopes, for handlers that decide scopes at run
    /// time.
    ///
    /// # Errors
    /// 403 `API_KEY_SCOPE_DENIED` listing the missing scopes.
    pub fn require(&self, required: &ScopeRequirement) -> Result<(), Rejection> {
        required
            .check(self.0.scopes())
            .map_err(|missing| Rejection::from(&VerifyError::ScopeDenied { missing }))
    }
}

impl Deref for Authenticated {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for Authenticated {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .map(Self)
                .ok_or_else(|| crate::signed::missing(&req.extensions())),
        )
    }
}
