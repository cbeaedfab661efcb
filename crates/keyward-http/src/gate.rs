//! The authentication flow every adapter's middleware runs, written once: [`Gate::authenticate`]
//! takes a [`RequestHead`], the body as a stream and the adapter's timer, and gives the
//! [`Outcome`]; [`Gate::authenticate_now`] settles without waiting what needs no waiting (a
//! cached key, nothing presented), so that the fast path allocates no future.
//!
//! | request presents | [`Outcome`] |
//! | --- | --- |
//! | a valid key | `Pass` with the principal, body unread |
//! | a bad key (any reason), a blank or non-UTF-8 credential header | `Reject(401 API_KEY_INVALID)` |
//! | a valid key lacking the gate's requirement | `Reject(403 API_KEY_SCOPE_DENIED)` |
//! | nothing, or someone else's bearer token (a JWT) | `Reject(401 API_KEY_MISSING)`, or `Pass` without a principal where the gate is [`optional`](Gate::optional) |
//! | a SigV4 signature, signing enabled | the signer settled before the body is read, the body read within the signing bounds and timer, the signature checked: `Pass` with the principal and the body read, or `401 SIGNATURE_*`, `408`, `413`, … |
//! | a SigV4 signature, signing not enabled | `Reject(401 SIGNATURE_INVALID)`, or `Pass` marked `unverified_signature` where the gate is optional |
//! | a store outage | `Reject(503 AUTH_UNAVAILABLE)` |

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_core::Stream;

use crate::credentials::{self, Credential};
use crate::problem::Problem;
use keyward_core::analytics::Tags;
use keyward_core::error::ErrorCode;
use keyward_core::sigv4::{Payload, SignableRequest};
use keyward_core::{Keyward, Principal, ScopeRequirement, VerifyContext, VerifyError};

use super::body::within;
use super::{BodyBudget, ClientIp, CredentialHeaders, RequestHead};

/// What to do with a request, once [`Gate::authenticate`] settled its credential.
#[derive(Debug)]
#[must_use]
pub enum Outcome<B> {
    /// Call the application.
    Pass(Pass<B>),
    /// Answer with this problem.
    Reject(Problem),
}

/// A request [`Gate::authenticate`] passes on to the application.
#[derive(Debug)]
#[must_use]
pub struct Pass<B> {
    /// The verified principal, for the request's extensions; `None` for a request without a
    /// keyward credential.
    pub principal: Option<Principal>,
    /// Whether the request carried a SigV4 signature that nothing could verify (signing is not
    /// enabled): the adapter marks it [`Anonymous::UnverifiedSignature`] ([`Pass::anonymous`]).
    pub unverified_signature: bool,
    /// The body to hand on.
    pub body: Body<B>,
}

/// The body a [`Pass`] hands back to the application.
#[derive(Debug)]
pub enum Body<B> {
    /// The body as the adapter gave it: nothing was read.
    Unread(B),
    /// The whole body, read to verify a signature: the adapter puts these bytes back.
    Read(Vec<u8>),
}

impl<B> Body<B> {
    /// The body to hand on: as given, or rebuilt from the bytes read with `from_bytes`.
    pub fn or_read(self, from_bytes: impl FnOnce(Vec<u8>) -> B) -> B {
        match self {
            Self::Unread(body) => body,
            Self::Read(bytes) => from_bytes(bytes),
        }
    }
}

impl<B> Pass<B> {
    /// The mark to leave in the request's extensions when there is no principal.
    #[must_use]
    pub fn anonymous(&self) -> Option<Anonymous> {
        match (&self.principal, self.unverified_signature) {
            (Some(_), _) => None,
            (None, false) => Some(Anonymous::NoKey),
            (None, true) => Some(Anonymous::UnverifiedSignature),
        }
    }
}

/// The mark an adapter leaves in a request's extensions when its [`optional`](Gate::optional)
/// gate passed the request on without a principal. Where a key is then required
/// ([`require_scopes`]) the answer is `401`; where neither a principal nor this mark is found,
/// no gate ran, and that is the application's wiring error, not the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anonymous {
    /// No keyward credential: `401 API_KEY_MISSING` where a key is required.
    NoKey,
    /// A SigV4 signature that nothing could verify (signing is not enabled): `401
    /// SIGNATURE_INVALID` where a key is required.
    UnverifiedSignature,
}

/// What to do with a request, once its credential is settled (before any body is read).
#[derive(Debug)]
enum Decision {
    /// Call the application, with the verified principal if there is one.
    Pass(Option<Principal>),
    /// Call the application without a principal, marked: the request carried a SigV4 signature
    /// that nothing could verify (signing is not enabled), so that where a key is required the
    /// answer is `401 SIGNATURE_INVALID` rather than `API_KEY_MISSING`.
    PassUnverifiedSignature,
    /// Answer with this problem.
    Reject(Problem),
    /// A signed request, signing enabled: [`begin_signed`], read the body within
    /// [`keyward_core::sigv4::SigningOptions::max_body_time`], then [`finish_signed`].
    Signed,
}

/// One verification a [`Gate`] settled, for metrics: its outcome (`Ok` or the refusal's
/// code), how long it took, and whether it was answered from the engine's memory. Requests
/// without a credential that pass on are not observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// `Ok(())` for a verified principal, else the code answered.
    pub outcome: Result<(), ErrorCode>,
    /// From the start of the decision to its end (zero for refusals that read nothing).
    pub elapsed: Duration,
    /// Whether it was answered without waiting for a store or Redis: a cached key, or junk
    /// refused before any read ([`Gate::authenticate_now`]). `false`: it waited for one.
    pub cached: bool,
}

/// Receives every [`Observed`] verification of a gate.
pub type Observer = Arc<dyn Fn(Observed) + Send + Sync>;

/// An authentication middleware's settings: the engine, the headers that carry credentials,
/// the scopes it requires itself, whether a request without a keyward credential is refused
/// (the default) or passed on ([`Gate::optional`]), and how the client address is found in the adapter's request type `R` (axum's
/// `Parts`, actix-web's `HttpRequest`).
pub struct Gate<R = ()> {
    keyward: Keyward,
    headers: CredentialHeaders,
    requirement: ScopeRequirement,
    tags: Tags,
    cost: Option<u64>,
    optional: bool,
    observer: Option<Observer>,
    client_ip: Option<ClientIp<R>>,
}

impl<R> Clone for Gate<R> {
    fn clone(&self) -> Self {
        Self {
            keyward: self.keyward.clone(),
            headers: self.headers.clone(),
            requirement: self.requirement.clone(),
            tags: self.tags.clone(),
            cost: self.cost,
            optional: self.optional,
            observer: self.observer.clone(),
            client_ip: self.client_ip.clone(),
        }
    }
}

impl<R> fmt::Debug for Gate<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("headers", &self.headers)
            .field("requirement", &self.requirement)
            .field("tags", &self.tags)
            .field("cost", &self.cost)
            .field("optional", &self.optional)
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

/// A gate with the defaults of [`Gate::new`].
impl<R> From<Keyward> for Gate<R> {
    fn from(keyward: Keyward) -> Self {
        Self::new(keyward)
    }
}

impl<R> Gate<R> {
    /// Verifies with `keyward`: every request must present a valid key (`401` otherwise), of
    /// any scope.
    #[must_use]
    pub fn new(keyward: Keyward) -> Self {
        Self {
            keyward,
            headers: CredentialHeaders::default(),
            requirement: ScopeRequirement::none(),
            tags: Tags::NONE,
            cost: None,
            optional: false,
            observer: None,
            client_ip: None,
        }
    }

    /// Counts every verification this gate makes under `tags` in the key's usage analytics
    /// ([`keyward_core::analytics`]): the route, a plan, a region. None by default.
    #[must_use]
    pub fn tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Spends `cost` credits of a key with credits for every request through this gate (a
    /// route's price; one by default, 0 spends none): `429 USAGE_EXHAUSTED` when fewer are
    /// left.
    #[must_use]
    pub fn cost(mut self, cost: u64) -> Self {
        self.cost = Some(cost);
        self
    }

    /// Finds the client address for IP allowlists with `f` (default: the adapter's, the TCP
    /// peer). Behind a proxy, read a forwarded header here — only one the proxy sets, and only
    /// when the peer is the proxy; answer [`VerifyContext::UNKNOWN_CLIENT`] when it is missing
    /// or malformed, never the proxy's own address.
    #[must_use]
    pub fn client_ip(mut self, f: impl Fn(&R) -> Option<IpAddr> + Send + Sync + 'static) -> Self {
        self.client_ip = Some(ClientIp::new(f));
        self
    }

    /// The client address finder set with [`Gate::client_ip`], if any.
    #[must_use]
    pub fn client_ip_finder(&self) -> Option<&ClientIp<R>> {
        self.client_ip.as_ref()
    }

    /// Calls `observer` with the outcome and duration of every verification this gate settles
    /// (a service's metrics; requests without a credential that pass on are not observed).
    /// Without one, nothing is timed.
    #[must_use]
    pub fn observe(mut self, observer: impl Fn(Observed) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Reads credentials from `headers` (default: `authorization` and `x-api-key`).
    #[must_use]
    pub fn credential_headers(mut self, headers: CredentialHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// The headers that carry credentials.
    #[must_use]
    pub fn headers(&self) -> &CredentialHeaders {
        &self.headers
    }

    /// The start of a decision, when someone observes it.
    #[must_use]
    pub fn start(&self) -> Option<Instant> {
        self.observer.as_ref().map(|_| Instant::now())
    }

    /// Reports an outcome begun at `started` ([`Gate::start`]) to the observer, `cached` when
    /// it was answered without waiting ([`Observed::cached`]): for a service that verifies a
    /// key outside the flow (a sidecar's `/v1/verify`) and counts it as every other
    /// verification.
    pub fn report(&self, started: Option<Instant>, outcome: Result<(), ErrorCode>, cached: bool) {
        if let Some(observer) = &self.observer {
            let elapsed = started.map(|t| t.elapsed()).unwrap_or_default();
            observer(Observed {
                outcome,
                elapsed,
                cached,
            });
        }
    }

    /// Checks `requirement` during verification, in the engine's order: scopes before the
    /// key's rate limit and credits are charged. A gate that requires scopes is never
    /// [`optional`](Gate::optional).
    #[must_use]
    pub fn require(mut self, requirement: ScopeRequirement) -> Self {
        self.requirement = requirement;
        self
    }

    /// Passes on a request that presents no keyward credential (nothing, or someone else's
    /// bearer token), without a principal, instead of answering `401 API_KEY_MISSING`: for
    /// routes that serve anonymous callers too, where the `Option<Authenticated>` extractor
    /// tells the two apart. A bad key is still refused. Ignored when the gate requires scopes
    /// ([`Gate::require`]).
    #[must_use]
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Whether a request without a keyward credential is refused: unless the gate is optional
    /// and requires no scopes.
    fn required(&self) -> bool {
        !self.optional || !self.requirement.scopes().is_empty()
    }

    /// The engine.
    #[must_use]
    pub fn keyward(&self) -> &Keyward {
        &self.keyward
    }

    /// The scopes this gate requires.
    #[must_use]
    pub fn requirement(&self) -> &ScopeRequirement {
        &self.requirement
    }

    /// The outcome, when it needs no waiting: nothing presented (a pass for an optional gate,
    /// `401 API_KEY_MISSING` otherwise), or a key the engine settles from its cache. `None`: call [`Gate::authenticate`]. The client
    /// address is only asked for keys.
    pub fn authenticate_now(
        &self,
        head: &impl RequestHead,
    ) -> Option<Result<Option<Principal>, Problem>> {
        match self.headers.extract(&self.keyward.policy().format, head) {
            Credential::None | Credential::NotOurs if !self.required() => Some(Ok(None)),
            // Required, and nothing to verify: refused without a read, reported as such.
            Credential::None | Credential::NotOurs => {
                let started = self.start();
                let problem = Problem::missing();
                self.report(started, Err(problem.code), true);
                Some(Err(problem))
            }
            Credential::Key(key) => {
                let ctx = VerifyContext {
                    client_ip: head.client_ip(),
                    tags: self.tags.clone(),
                    user_agent: head.header("user-agent"),
                    cost: self.cost,
                };
                let started = self.start();
                let settled = self.keyward.verify_cached(key, &self.requirement, &ctx)?;
                let outcome = settled.as_ref().map(|_| ()).map_err(VerifyError::code);
                self.report(started, outcome, true);
                Some(settled.map(Some).map_err(|e| {
                    credentials::log_rejected_key(&e, key);
                    Problem::from(&e)
                }))
            }
            _ => None,
        }
    }

    /// Authenticates a request: its credential from `head`, verified against the store where
    /// needed; for a signed request, `body` is turned into a stream with `stream` and read
    /// within the signing bounds, bounded in time by the future `sleep` gives for
    /// [`keyward_core::sigv4::SigningOptions::max_body_time`] (the adapter's runtime timer). Every
    /// settled verification is reported to the observer.
    pub async fn authenticate<B, S, D, E, T>(
        &self,
        head: &impl RequestHead,
        body: B,
        stream: impl FnOnce(B) -> S,
        sleep: impl FnOnce(Duration) -> T,
    ) -> Outcome<B>
    where
        S: Stream<Item = Result<D, E>>,
        D: AsRef<[u8]>,
        E: fmt::Display,
        T: Future<Output = ()>,
    {
        let started = self.start();
        let ctx = VerifyContext {
            client_ip: head.client_ip(),
            tags: self.tags.clone(),
            user_agent: head.header("user-agent"),
            cost: self.cost,
        };
        let credential = self.headers.extract(&self.keyward.policy().format, head);
        let pass = |principal, unverified_signature, body| {
            Outcome::Pass(Pass {
                principal,
                unverified_signature,
                body,
            })
        };
        let outcome = match self.decide(credential, &ctx).await {
            Decision::Pass(p) => pass(p, false, Body::Unread(body)),
            Decision::PassUnverifiedSignature => pass(None, true, Body::Unread(body)),
            Decision::Reject(p) => Outcome::Reject(p),
            // Boxed: the buffering state stays out of every bearer request's future.
            Decision::Signed => {
                match Box::pin(self.signed(head, stream(body), sleep, &ctx)).await {
                    Ok((p, bytes)) => pass(Some(p), false, Body::Read(bytes)),
                    Err(p) => Outcome::Reject(p),
                }
            }
        };
        match &outcome {
            Outcome::Pass(p) if p.principal.is_some() => self.report(started, Ok(()), false),
            Outcome::Reject(p) => self.report(started, Err(p.code), false),
            Outcome::Pass(_) => {}
        }
        outcome
    }

    /// A signed request, signing enabled: who signed is settled before one byte of the body
    /// is read; a body that is too large, too slow or unreadable counts against the address.
    async fn signed<S, D, E, T>(
        &self,
        head: &impl RequestHead,
        body: S,
        sleep: impl FnOnce(Duration) -> T,
        ctx: &VerifyContext<'_>,
    ) -> Result<(Principal, Vec<u8>), Problem>
    where
        S: Stream<Item = Result<D, E>>,
        D: AsRef<[u8]>,
        E: fmt::Display,
        T: Future<Output = ()>,
    {
        head.signable()?;
        let authorization = head.header(&self.headers.authorization).unwrap_or(b"");
        let budget = begin_signed(&self.keyward, authorization, ctx).await?;
        let time = self.keyward.signing_config().max_body_time;
        let read = budget.read(head.header("content-length"), body);
        let bytes = match within(sleep(time), read).await {
            Some(Ok(bytes)) => bytes,
            failed => {
                self.keyward.signed_body_failed(ctx).await;
                return Err(failed.map_or_else(signed_body_timeout, |r| {
                    r.err().unwrap_or_else(signed_body_timeout)
                }));
            }
        };
        let signed = SignedHead::new(
            head.method(),
            head.path(),
            head.query(),
            head.headers(),
            head.authority(),
        );
        let principal =
            finish_signed(&self.keyward, &signed, &bytes, &self.requirement, ctx).await?;
        Ok((principal, bytes))
    }

    /// The decision, verifying a key against the store where needed. Never waits for a body:
    /// a signed request is [`Decision::Signed`].
    async fn decide(&self, credential: Credential<'_>, ctx: &VerifyContext<'_>) -> Decision {
        match credential {
            Credential::Signed(_) if self.keyward.signing_enabled() => Decision::Signed,
            Credential::Signed(_) if self.required() => {
                log_signing_disabled();
                Decision::Reject(signing_disabled())
            }
            Credential::Signed(_) => Decision::PassUnverifiedSignature,
            Credential::None | Credential::NotOurs if self.required() => {
                Decision::Reject(Problem::missing())
            }
            other => match verify_presented(&self.keyward, other, &self.requirement, ctx).await {
                Ok(p) => Decision::Pass(p),
                Err(problem) => Decision::Reject(problem),
            },
        }
    }
}

/// Verifies a presented bearer key (logging why it was refused, never the secret). `Ok(None)`
/// for no keyward credential and for a signature (signed requests need their body).
///
/// # Errors
/// The problem to answer with: `401 API_KEY_INVALID` for every bad key and unreadable header,
/// the engine's `403`, `429` and `503`.
pub(crate) async fn verify_presented(
    keyward: &Keyward,
    credential: Credential<'_>,
    requirement: &ScopeRequirement,
    ctx: &VerifyContext<'_>,
) -> Result<Option<Principal>, Problem> {
    match credential {
        Credential::None | Credential::NotOurs | Credential::Signed(_) => Ok(None),
        Credential::Invalid(reason) => {
            credentials::log_unusable(reason);
            Err(Problem::new(
                ErrorCode::ApiKeyInvalid,
                Some("the API key is not valid".to_owned()),
            ))
        }
        Credential::Key(key) => match keyward.verify(key, requirement, ctx).await {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                credentials::log_rejected_key(&e, key);
                Err(Problem::from(&e))
            }
        },
    }
}

fn log_signing_disabled() {
    tracing::debug!(
        code = "SIGNATURE_INVALID",
        "signed request, but signing is not enabled"
    );
}

/// `401 SIGNATURE_INVALID` for a signed request reaching an engine without signing enabled: no
/// key can have signed it.
#[must_use]
pub(crate) fn signing_disabled() -> Problem {
    Problem::new(
        ErrorCode::SignatureInvalid,
        Some("signed requests are not enabled".to_owned()),
    )
}

/// `408`: the signed request's body did not arrive within
/// [`keyward_core::sigv4::SigningOptions::max_body_time`].
#[must_use]
fn signed_body_timeout() -> Problem {
    super::request_timeout("the signed request's body did not arrive in time")
}

/// The first step of a signed request: settles who signed before one byte of the body is read
/// ([`Keyward::precheck_signed`]), and gives the budget to read the body with.
///
/// # Errors
/// `401 SIGNATURE_INVALID` when signing is not enabled or the signer is unknown, `429` for a
/// throttled address, `503` for an outage.
async fn begin_signed(
    keyward: &Keyward,
    authorization: &[u8],
    ctx: &VerifyContext<'_>,
) -> Result<BodyBudget, Problem> {
    if !keyward.signing_enabled() {
        log_signing_disabled();
        return Err(signing_disabled());
    }
    if let Err(e) = keyward.precheck_signed(authorization, ctx).await {
        tracing::debug!(reason = e.reason(), code = %e.code(), "signed request refused before its body");
        return Err(Problem::from(&e));
    }
    Ok(BodyBudget::signed(keyward.signing_config()))
}

/// The head of a signed request as received: method, path and query (before any prefix was
/// stripped by routing), and every header.
#[derive(Debug)]
struct SignedHead<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: Vec<(&'a str, &'a [u8])>,
}

impl<'a> SignedHead<'a> {
    /// The head. `authority` is the request target's authority (`:authority` under HTTP/2),
    /// signed as `host` when no `host` header was sent; pass `None` for HTTP/1, where `host`
    /// is a header.
    #[must_use]
    fn new(
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        authority: Option<&'a str>,
    ) -> Self {
        let mut headers: Vec<_> = headers.into_iter().collect();
        if let Some(a) = authority
            && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            headers.push(("host", a.as_bytes()));
        }
        Self {
            method,
            path,
            query,
            headers,
        }
    }
}

/// The last step of a signed request: verifies the signature over the head and the whole body
/// with [`Keyward::verify_signed`].
///
/// # Errors
/// Every refusal of [`Keyward::verify_signed`], as the bearer path answers it.
async fn finish_signed(
    keyward: &Keyward,
    head: &SignedHead<'_>,
    body: &[u8],
    requirement: &ScopeRequirement,
    ctx: &VerifyContext<'_>,
) -> Result<Principal, Problem> {
    let request = SignableRequest::new(
        head.method,
        head.path,
        head.query,
        &head.headers,
        Payload::Bytes(body),
    );
    keyward
        .verify_signed(&request, requirement, ctx)
        .await
        .map_err(|e| {
            tracing::debug!(reason = e.reason(), code = %e.code(), "signed request rejected");
            Problem::from(&e)
        })
}

/// The check of a route-level scope requirement (`RequireScopes`, the `Authenticated`
/// extractor) on what the middleware left in the request: the principal, or the [`Anonymous`]
/// mark of an optional gate (`401 SIGNATURE_INVALID` for a signature nothing could verify,
/// `401 API_KEY_MISSING` for no key); `403 API_KEY_SCOPE_DENIED` listing what is missing.
///
/// Neither found means no authentication middleware ran before the check: the application is
/// wired wrong (in actix-web, say, the last `.wrap` runs first). That is answered `500
/// SERVER_MISCONFIGURED`, and logged once, at `error`, with `wiring`: the adapter's sentence
/// saying which layer goes where.
///
/// # Errors
/// The problem to answer with.
pub fn require_scopes(
    principal: Option<&Principal>,
    anonymous: Option<Anonymous>,
    requirement: &ScopeRequirement,
    wiring: &'static str,
) -> Result<(), super::Rejection> {
    match (principal, anonymous) {
        (Some(p), _) => requirement
            .check(p.scopes())
            .map_err(|missing| keyward_core::VerifyError::ScopeDenied { missing }.into()),
        (None, Some(Anonymous::NoKey)) => Err(Problem::missing().into()),
        (None, Some(Anonymous::UnverifiedSignature)) => Err(signing_disabled().into()),
        (None, None) => Err(miswired(wiring).into()),
    }
}

/// The `500` for a scope check that no authentication middleware ran before, logged once.
fn miswired(wiring: &'static str) -> Problem {
    static LOGGED: std::sync::Once = std::sync::Once::new();
    LOGGED.call_once(|| {
        tracing::error!(
            code = "SERVER_MISCONFIGURED",
            "keyward: a scope check ran on a request no authentication middleware saw, so every \
             request it guards is refused; {wiring}"
        );
    });
    Problem::new(ErrorCode::Misconfigured, None)
}
