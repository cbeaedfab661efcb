//! The adapter's error type: every refusal becomes an RFC 9457 `application/problem+json`
//! response built from [`keyward_core::Problem`] by keyward-core's [`Reply`], so this adapter
//! and the axum one answer byte-for-byte alike.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use keyward_core::Problem;
use keyward_core::http::Reply;

keyward_core::define_rejection! {
    /// A refused request. Implements [`ResponseError`]: the response is
    /// `application/problem+json` with `Cache-Control: no-store`, `WWW-Authenticate: Bearer` on
    /// 401 and `Retry-After` on 429.
    ///
    /// Return it from handlers (`Result<_, Rejection>`) to answer exactly as keyward does.
    pub struct Rejection;
}

impl Rejection {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        problem_response(self.problem())
    }
}

/// The HTTP response for `problem`: status, `application/problem+json` body, `Cache-Control:
/// no-store`, `WWW-Authenticate: Bearer` on 401 and `Retry-After` on 429.
#[must_use]
pub fn problem_response(problem: &Problem) -> HttpResponse {
    render(Reply::from(problem))
}

/// keyward-core's framework-neutral answer as an actix response.
pub(crate) fn render(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    for (name, value) in reply.headers {
        res.insert_header((name, value));
    }
    res.body(reply.body)
}
