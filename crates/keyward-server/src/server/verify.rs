//! The verification routes of a standalone service: `GET /v1/whoami`, `POST /v1/verify` for
//! sidecars, `GET /v1/authz` for nginx `auth_request` and Traefik ForwardAuth.

use std::net::IpAddr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_axum::{Authenticated, Head};
use keyward_core::scope::ScopeMode;
use keyward_core::{ErrorCode, Principal, ScopeRequirement, VerifyContext, VerifyError};
use keyward_http::Problem;
use keyward_http::{self as khttp, BodyBudget, ClientIp, Outcome, RequestHead};
use serde::{Deserialize, Serialize};

use super::{Shared, json, problem};
use crate::config::ForwardedHeaders;

/// `GET /v1/whoami`: the caller's key, verified by keyward-axum's `KeywardLayer` in front.
#[utoipa::path(get, path = "/v1/whoami", operation_id = "whoami", tag = "verify",
    summary = "The principal of the presented key",
    security(("apiKeyAuth" = []), ("apiKeyHmacAuth" = [])),
    responses(
        (status = 200, description = "The key's principal", body = Principal),
        (status = 401, description = "No key, or a bad one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key may not be used from this address", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A signed body over the limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited, out of credits, or throttled", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn whoami(caller: Authenticated) -> Response {
    json(StatusCode::OK, &*caller)
}

/// The body of `POST /v1/verify`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyRequest {
    /// The key to check, as its holder presented it.
    key: String,
    /// Scopes the key must hold.
    #[serde(default)]
    #[schema(schema_with = keyward_http::openapi::scope_list)]
    scopes: Vec<String>,
    /// How the scopes combine (default `all_of`).
    #[serde(default)]
    mode: Option<ScopeMode>,
    /// The address the key's holder called from, for keys with an IP allowlist.
    #[serde(default)]
    #[schema(schema_with = ip_address)]
    client_ip: Option<std::net::IpAddr>,
    /// Tags to count the verification under in the key's usage analytics (`path=/reports`,
    /// `region=eu`): up to 20, each 1–64 characters without control characters.
    #[serde(default)]
    #[schema(schema_with = tag_list)]
    tags: Vec<String>,
    /// The `User-Agent` of the key holder's request, recorded with the key's `last_used_at`, as
    /// `client_ip` is: control characters dropped, cut at 256 bytes.
    #[serde(default)]
    user_agent: Option<String>,
    /// The credits the request spends of a key with credits (default 1; 0 spends none): the
    /// key is refused, `USAGE_EXHAUSTED`, when fewer are left.
    #[serde(default)]
    #[schema(maximum = 1_000_000_000)]
    cost: Option<u64>,
}

/// Up to 20 tags of [`keyward_core::analytics::TAG_PATTERN`].
fn tag_list() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(keyward_core::analytics::TAG_PATTERN)),
        )
        .max_items(Some(keyward_core::analytics::Tags::MAX))
        .build()
        .into()
}

/// An IPv4 or IPv6 address, or null.
fn ip_address() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let string = |f| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    OneOfBuilder::new()
        .item(string(KnownFormat::Ipv4))
        .item(string(KnownFormat::Ipv6))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// The verdict of `POST /v1/verify`.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct VerifyResponse {
    /// Whether the key passed every check.
    valid: bool,
    /// Why not: the code the key's holder would have got.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    /// The scopes the key lacks, for `API_KEY_SCOPE_DENIED`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing_scopes: Vec<String>,
    /// Seconds to wait, for `429` codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    /// The key's principal, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Principal>)]
    key: Option<Principal>,
}

pub(super) fn requirement(scopes: &[String], mode: ScopeMode) -> Result<ScopeRequirement, Problem> {
    let r = match mode {
        ScopeMode::AllOf => ScopeRequirement::all_of(scopes),
        ScopeMode::AnyOf => ScopeRequirement::any_of(scopes),
    };
    r.map_err(|e| keyward_http::problem::validation("scopes", "invalid", e.to_string()))
}

/// `POST /v1/verify`: checks the key in the body for a sidecar. The caller (the admin token,
/// or a key holding `keyward:verify` or `keyward:admin`) was authenticated in front of it.
#[utoipa::path(post, path = "/v1/verify", operation_id = "verifyKey", tag = "verify",
    summary = "Verify a key for a sidecar (admin credential or a key with keyward:verify)",
    security(("apiKeyAuth" = []), ("apiKeyHmacAuth" = [])),
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The verdict", body = VerifyResponse),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No caller credential, or a bad one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller lacks keyward:verify", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body exceeds the limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller's own key is limited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn verify(State(app): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: VerifyRequest = match read_json(&parts.headers, body).await {
        Ok(b) => b,
        Err(p) => return problem(&p),
    };
    let need = match requirement(&body.scopes, body.mode.unwrap_or_default()) {
        Ok(n) => n,
        Err(p) => return problem(&p),
    };
    if body.cost.is_some_and(|c| c > MAX_COST) {
        return problem(&cost_too_high());
    }
    // The key under test was presented to the caller, not to us: its holder's address is what
    // the caller says it is (keys with an allowlist fail without one).
    let tags = match keyward_core::analytics::Tags::new(&body.tags) {
        Ok(t) => t,
        Err(e) => {
            return problem(&keyward_http::problem::validation(
                "tags",
                "invalid",
                e.to_string(),
            ));
        }
    };
    let ctx = VerifyContext {
        client_ip: body.client_ip,
        tags,
        user_agent: body.user_agent.as_deref().map(str::as_bytes),
        cost: body.cost,
    };
    // Counted as every verification is: through the gate's observer, as a cache hit when
    // the engine answers without waiting.
    let started = app.gate.start();
    let (r, cached) = match app.kw.verify_cached(&body.key, &need, &ctx) {
        Some(r) => (r, true),
        None => (app.kw.verify(&body.key, &need, &ctx).await, false),
    };
    let outcome = r.as_ref().map(|_| ()).map_err(VerifyError::code);
    app.gate.report(started, outcome, cached);
    match r {
        Ok(p) => json(
            StatusCode::OK,
            &VerifyResponse {
                valid: true,
                code: None,
                missing_scopes: Vec::new(),
                retry_after: None,
                key: Some(p),
            },
        ),
        Err(e @ VerifyError::Unavailable(_)) => problem(&Problem::from(&e)),
        Err(e) => {
            let p = Problem::from(&e);
            json(
                StatusCode::OK,
                &VerifyResponse {
                    valid: false,
                    code: Some(e.code().as_str()),
                    missing_scopes: p.missing_scopes,
                    retry_after: p.retry_after,
                    key: None,
                },
            )
        }
    }
}

/// The largest cost one request may name: far beyond any price, well inside what every JSON
/// client reads exactly.
const MAX_COST: u64 = 1_000_000_000;

/// `cost` above [`MAX_COST`]: `422`.
fn cost_too_high() -> Problem {
    keyward_http::problem::validation("cost", "invalid", "a whole number from 0 to 1000000000")
}

/// `scope` (comma-separated or repeated), `mode` and `cost` from a query string.
pub(super) fn authz_query(q: Option<&str>) -> Result<(ScopeRequirement, Option<u64>), Problem> {
    let mut scopes = Vec::new();
    let mut mode = ScopeMode::AllOf;
    let mut cost = None;
    // `application/x-www-form-urlencoded`, as nginx and Traefik pass the query on: `+` is a
    // space, and a malformed or non-UTF-8 escape decodes to text no scope can match (422).
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "scope" | "scopes" => scopes.extend(
                v.split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            "mode" => {
                mode = match v.as_ref() {
                    "all_of" => ScopeMode::AllOf,
                    "any_of" => ScopeMode::AnyOf,
                    _ => {
                        return Err(keyward_http::problem::validation(
                            "mode",
                            "invalid",
                            "all_of or any_of",
                        ));
                    }
                }
            }
            "cost" => {
                let n = v.parse::<u64>().map_err(|_| cost_too_high())?;
                if n > MAX_COST {
                    return Err(cost_too_high());
                }
                cost = Some(n);
            }
            _ => {}
        }
    }
    Ok((requirement(&scopes, mode)?, cost))
}

/// The request a forward-auth call stands for, to check a signature against: the method, path
/// and query the proxy names in the headers `--forwarded-headers` names, and the host it names
/// (else `Host`). The other headers are the call's own: the proxy forwards the client's.
///
/// Exactly the configured set is read, never another (a client adds the headers its proxy
/// does not set, and the proxy passes them on: review finding 2), and each must be there
/// once; without a configured set a signed request cannot be checked here and is refused.
pub(super) fn original_request(
    parts: &Parts,
    set: Option<&ForwardedHeaders>,
) -> Result<Parts, Problem> {
    let refused = |detail: String| Problem::new(ErrorCode::SignatureInvalid, Some(detail));
    let Some(set) = set else {
        return Err(refused(
            "signed requests are not accepted on /v1/authz: the server names no proxy headers \
             (--forwarded-headers)"
                .to_owned(),
        ));
    };
    let one = |name: &HeaderName| {
        let mut values = parts.headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| refused(format!("the forwarded {name} is malformed"))),
            (None, _) => Err(refused(format!("the proxy sent no {name}"))),
            (Some(_), Some(_)) => Err(refused(format!("{name} is sent more than once"))),
        }
    };
    let method = axum::http::Method::from_bytes(one(&set.method)?.as_bytes())
        .map_err(|_| refused(format!("the forwarded {} is malformed", set.method)))?;
    let uri = Some(one(&set.uri)?)
        .filter(|u| u.starts_with('/'))
        .and_then(|u| u.parse::<axum::http::Uri>().ok())
        .ok_or_else(|| refused(format!("the forwarded {} is malformed", set.uri)))?;
    let mut headers = parts.headers.clone();
    if let Some(name) = &set.host {
        let host = HeaderValue::from_str(one(name)?)
            .map_err(|_| refused(format!("the forwarded {name} is malformed")))?;
        headers.insert(header::HOST, host);
    }
    let mut builder = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .version(parts.version);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    builder
        .body(())
        .map(|r| r.into_parts().0)
        .map_err(|_| refused("the forwarded request is malformed".to_owned()))
}

/// The head `/v1/authz` checks: the call's own headers (the proxy forwards the client's), its
/// client address; for a signed request, the request the proxy describes
/// ([`original_request`]), built the first time the signature needs it.
struct AuthzHead<'a> {
    call: &'a Parts,
    set: Option<&'a ForwardedHeaders>,
    client_ip: Option<&'a ClientIp<Parts>>,
    original: OnceLock<Result<Parts, Problem>>,
}

impl AuthzHead<'_> {
    /// The request the signature covers; the call itself until a signature needs it, or when
    /// the proxy did not describe it (then [`RequestHead::signable`] refuses first).
    fn target(&self) -> &Parts {
        let original = self.original.get().and_then(|o| o.as_ref().ok());
        original.unwrap_or(self.call)
    }
}

impl RequestHead for AuthzHead<'_> {
    fn method(&self) -> &str {
        self.target().method.as_str()
    }

    fn path(&self) -> &str {
        self.target().uri.path()
    }

    fn query(&self) -> Option<&str> {
        self.target().uri.query()
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.call.headers.get(name).map(HeaderValue::as_bytes)
    }

    fn headers(&self) -> Vec<(&str, &[u8])> {
        let all = self.target().headers.iter();
        all.map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
    }

    fn authority(&self) -> Option<&str> {
        None
    }

    fn client_ip(&self) -> Option<IpAddr> {
        Head::new(self.call, self.client_ip).client_ip()
    }

    fn signable(&self) -> Result<(), Problem> {
        let original = self
            .original
            .get_or_init(|| original_request(self.call, self.set));
        original.as_ref().map(|_| ()).map_err(Clone::clone)
    }
}

/// `GET /v1/authz`: the forward-auth check, with the scopes of the query. keyward-core's
/// [`Gate`](keyward_http::Gate) decides as in the adapters' middleware; a signed request is checked as the client
/// sent it, which the proxy describes in headers ([`original_request`]), and its body is
/// whatever the proxy forwards (with the documented snippets: none).
#[utoipa::path(get, path = "/v1/authz", operation_id = "authz", tag = "verify",
    summary = "Forward-auth check for nginx auth_request and Traefik ForwardAuth",
    security(("apiKeyAuth" = []), ("apiKeyHmacAuth" = [])),
    params(
        ("scope" = Option<String>, Query, description = "Required scopes, separated by commas or spaces (or the parameter repeated)",
            pattern = r"^[, ]*((\*|[a-z0-9:._-]{1,128}|[a-z0-9:._-]{1,126}:\*)([, ]+(\*|[a-z0-9:._-]{1,128}|[a-z0-9:._-]{1,126}:\*))*)?[, ]*$"),
        ("mode" = Option<ScopeMode>, Query, description = "How the scopes combine (default all_of)"),
        ("cost" = Option<u64>, Query, maximum = 1_000_000_000, description = "The credits the request spends of a key with credits (default 1; 0 spends none)")),
    responses(
        (status = 204, description = "Allowed", headers(
            ("X-Keyward-Owner" = String, description = "The key's owner"),
            ("X-Keyward-Key-Id" = String, description = "The key id"),
            ("X-Keyward-Scopes" = String, description = "The key's scopes, comma-separated"))),
        (status = 401, description = "No key, or a bad one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks a scope, or may not be used from this address", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A scope that is not well formed (each as `^(\\*|[a-z0-9:._-]+(:\\*)?)$`, up to 128 characters)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited, out of credits, or throttled", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn authz(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Response {
    let (need, cost) = match authz_query(q.as_deref()) {
        Ok(n) => n,
        Err(p) => return problem(&p),
    };
    let (parts, body) = req.into_parts();
    let mut gate = app.gate.clone().require(need);
    if let Some(cost) = cost {
        gate = gate.cost(cost);
    }
    let head = AuthzHead {
        call: &parts,
        set: app.forwarded.as_ref(),
        client_ip: gate.client_ip_finder(),
        original: OnceLock::new(),
    };
    let outcome = gate.authenticate(&head, body, Body::into_data_stream, tokio::time::sleep);
    let principal = match outcome.await {
        Outcome::Pass(pass) => match pass.principal {
            Some(p) => p,
            // The gate requires a key: this does not happen.
            None => return problem(&Problem::missing()),
        },
        Outcome::Reject(p) => return problem(&p),
    };
    // Ids are checked when keys are created; one stored before the grammar existed that an
    // upstream could read otherwise is refused, never passed on mangled or left out.
    let owner = match HeaderValue::from_str(principal.owner_id()) {
        Ok(v) if keyward_core::authz::is_valid_owner_id(principal.owner_id()) => v,
        _ => {
            tracing::warn!(key_id = %principal.key_id(), "the key's owner id cannot be passed on in X-Keyward-Owner; refused");
            return problem(&Problem::new(ErrorCode::ApiKeyInvalid, None));
        }
    };
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert("x-keyward-owner", owner);
    if let Ok(v) = HeaderValue::from_str(principal.key_id().as_str()) {
        h.insert("x-keyward-key-id", v);
    }
    let scopes: Vec<&str> = principal
        .scopes()
        .iter()
        .map(keyward_core::Scope::as_str)
        .collect();
    if let Ok(v) = HeaderValue::from_str(&scopes.join(",")) {
        h.insert("x-keyward-scopes", v);
    }
    res
}

/// Reads a JSON body of at most [`khttp::DEFAULT_BODY_LIMIT`] bytes, with the bounds and
/// answers of the management routes.
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Problem> {
    let header = |name| headers.get(name).map(HeaderValue::as_bytes);
    let budget = BodyBudget::management(khttp::DEFAULT_BODY_LIMIT);
    let bytes = budget
        .read(header(header::CONTENT_LENGTH), body.into_data_stream())
        .await?;
    khttp::json_body(header(header::CONTENT_TYPE), &bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn authz_queries() {
        let (none, cost) = authz_query(None).unwrap();
        assert!(none.scopes().is_empty());
        assert_eq!(cost, None);
        let (r, cost) = authz_query(Some(
            "scope=reports%3Aread,billing:write&mode=any_of&cost=5",
        ))
        .unwrap();
        assert_eq!(r.scopes().len(), 2);
        assert_eq!(r.mode(), ScopeMode::AnyOf);
        assert_eq!(cost, Some(5));
        assert_eq!(
            authz_query(Some("scope=a:b&scope=c:d"))
                .unwrap()
                .0
                .scopes()
                .len(),
            2
        );
        assert_eq!(authz_query(Some("cost=0")).unwrap().1, Some(0));
        for bad in [
            "cost=-1",
            "cost=1.5",
            "cost=",
            "cost=99999999999999999999999",
        ] {
            assert_eq!(authz_query(Some(bad)).unwrap_err().status, 422, "{bad}");
        }
        assert_eq!(
            authz_query(Some("scope=BAD SCOPE")).unwrap_err().status,
            422
        );
        assert_eq!(authz_query(Some("mode=some")).unwrap_err().status, 422);
        assert_eq!(authz_query(Some("scope=%ff")).unwrap_err().status, 422);
        assert_eq!(authz_query(Some("scope=%4")).unwrap_err().status, 422);
    }
}
