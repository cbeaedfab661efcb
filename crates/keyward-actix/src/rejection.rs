//! keyward-core's [`Rejection`] and [`Reply`] as actix-web responses, so that this adapter and
//! the axum one answer byte-for-byte alike.

use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::{Error, HttpResponse};
#[doc(inline)]
pub use keyward_http::Rejection;
use keyward_http::Reply;

/// keyward-core's framework-neutral answer (a [`Reply`], a [`Rejection`], a
/// [`keyward_http::Problem`]) as an actix-web response.
pub fn respond(reply: impl Into<Reply>) -> HttpResponse {
    let reply = reply.into();
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    for (name, value) in reply.headers {
        res.insert_header((name, value));
    }
    res.body(reply.body)
}

/// `rejection` as an actix-web [`Error`] answering with its problem document: the error type
/// of this crate's extractors, for handlers that use `?` on keyward's results.
#[must_use]
pub fn error(rejection: Rejection) -> Error {
    let response = respond(&rejection);
    InternalError::from_response(rejection, response).into()
}
