//! keyward-core's [`Rejection`] and [`Reply`] as axum responses.

use axum::response::Response;
use http::{HeaderName, HeaderValue, StatusCode};
#[doc(inline)]
pub use keyward_http::Rejection;
use keyward_http::Reply;

/// keyward-core's framework-neutral answer (a [`Reply`], a [`Rejection`], a
/// [`keyward_http::Problem`]) as an axum response: the error type of this crate's extractors
/// and layers.
pub fn respond(reply: impl Into<Reply>) -> Response {
    let reply = reply.into();
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
