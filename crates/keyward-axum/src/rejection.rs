//! [`Rejection`]: every error this crate answers with, as an RFC 9457 problem document.

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use keyward_core::http::Reply;

keyward_core::define_rejection! {
    /// A refused request: an `application/problem+json` response with keyward's stable `code`,
    /// `Cache-Control: no-store`, `WWW-Authenticate: Bearer` on 401 and `Retry-After` on 429
    /// (keyward-core's [`Reply`] decides them).
    ///
    /// Build one from a [`keyward_core::Problem`], a [`keyward_core::VerifyError`] or a
    /// [`keyward_core::ServiceError`]; applications use the constructors in their
    /// [`crate::OwnerResolver`] and [`crate::AdminCheck`].
    pub struct Rejection;
}

impl Rejection {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        render(Reply::from(self.problem()))
    }
}

/// keyward-core's framework-neutral answer as an axum response.
pub(crate) fn render(reply: Reply) -> Response {
    let mut res = Response::new(axum::body::Body::from(reply.body));
    *res.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(HeaderName::from_static(name), v);
        }
    }
    res
}
