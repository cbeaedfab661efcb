//! The credential decision every adapter's middleware makes, written once: what a request's
//! [`Credential`] leads to, which of those answers are known without waiting (a cached key,
//! nothing presented), and the steps of a signed request around its body.
//!
//! | request presents | [`Decision`] |
//! | --- | --- |
//! | a valid key | `Pass(Some(principal))` |
//! | a bad key (any reason), a blank or non-UTF-8 credential header | `Reject(401 API_KEY_INVALID)` |
//! | a valid key lacking the gate's requirement | `Reject(403 API_KEY_SCOPE_DENIED)` |
//! | nothing, or someone else's bearer token (a JWT) | `Pass(None)`, or `Reject(401 API_KEY_MISSING)` when required |
//! | a SigV4 signature, signing enabled | `Signed`: [`begin_signed`], feed the body, [`finish_signed`] |
//! | a SigV4 signature, signing not enabled | `PassUnverifiedSignature`, or `Reject(401 SIGNATURE_INVALID)` when required |
//! | a store outage | `Reject(503 AUTH_UNAVAILABLE)` |

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::credentials::{self, Credential};
use crate::error::ErrorCode;
use crate::problem::Problem;
use crate::sigv4::{Payload, SignableRequest};
use crate::{Keyward, Principal, ScopeRequirement, VerifyContext};

use super::BodyBudget;

/// What to do with a request, once its credential is settled.
#[derive(Debug)]
#[must_use]
pub enum Decision {
    /// Call the application, with the verified principal if there is one.
    Pass(Option<Principal>),
    /// Call the application without a principal, marked: the request carried a SigV4 signature
    /// that nothing could verify (signing is not enabled), so that where a key is required the
    /// answer is `401 SIGNATURE_INVALID` rather than `API_KEY_MISSING`.
    PassUnverifiedSignature,
    /// Answer with this problem.
    Reject(Problem),
    /// A signed request, signing enabled: [`begin_signed`], feed the body to the budget within
    /// [`crate::signing::SigningOptions::max_body_time`], then [`finish_signed`].
    Signed,
}

/// One verification a [`Gate`] settled, for metrics: its outcome (`Ok` or the refusal's
/// code) and how long it took. Requests without a credential that pass on are not observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// `Ok(())` for a verified principal, else the code answered.
    pub outcome: Result<(), ErrorCode>,
    /// From the start of the decision to its end (zero for refusals that read nothing).
    pub elapsed: Duration,
}

/// Receives every [`Observed`] verification of a gate.
pub type Observer = Arc<dyn Fn(Observed) + Send + Sync>;

/// An authentication middleware's settings: the engine, the scopes it requires itself, and
/// whether a request without a keyward credential is refused or passed on.
#[derive(Clone)]
pub struct Gate {
    keyward: Keyward,
    requirement: ScopeRequirement,
    required: bool,
    observer: Option<Observer>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("requirement", &self.requirement)
            .field("required", &self.required)
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Verifies with `keyward`, requires nothing, passes on requests without a credential.
    #[must_use]
    pub fn new(keyward: Keyward) -> Self {
        Self {
            keyward,
            requirement: ScopeRequirement::none(),
            required: false,
            observer: None,
        }
    }

    /// Calls `observer` with every verification this gate settles (a service's metrics).
    /// Without one, nothing is timed.
    pub fn set_observer(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    /// The start of a decision, when someone observes it.
    #[must_use]
    pub fn start(&self) -> Option<Instant> {
        self.observer.as_ref().map(|_| Instant::now())
    }

    /// Reports an outcome begun at `started` ([`Gate::start`]) to the observer; adapters call
    /// it for the signed path, whose steps they drive.
    pub fn observe(&self, started: Option<Instant>, outcome: Result<(), ErrorCode>) {
        if let Some(observer) = &self.observer {
            let elapsed = started.map(|t| t.elapsed()).unwrap_or_default();
            observer(Observed { outcome, elapsed });
        }
    }

    /// [`Gate::observe`] for a result whose error knows its code (an adapter's rejection).
    pub fn observe_result<T, E>(
        &self,
        started: Option<Instant>,
        result: &Result<T, E>,
        code: impl FnOnce(&E) -> ErrorCode,
    ) {
        self.observe(started, result.as_ref().map(|_| ()).map_err(code));
    }

    fn observed(&self, started: Option<Instant>, decision: Decision) -> Decision {
        match &decision {
            Decision::Pass(Some(_)) => self.observe(started, Ok(())),
            Decision::Reject(p) => self.observe(started, Err(p.code)),
            _ => {}
        }
        decision
    }

    /// Checks `requirement` during verification (scopes before limits and credits are charged).
    /// Implies [`Gate::set_required`].
    pub fn set_requirement(&mut self, requirement: ScopeRequirement) {
        self.requirement = requirement;
        self.required = true;
    }

    /// Refuses requests without a keyward credential (`401 API_KEY_MISSING`).
    pub fn set_required(&mut self) {
        self.required = true;
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

    /// The decision, when it needs no waiting: nothing presented (and none required), or a key
    /// the engine settles from its cache. `None`: call [`Gate::decide`]. `ctx` is only built
    /// for keys.
    pub fn decide_now(
        &self,
        credential: Credential<'_>,
        ctx: impl FnOnce() -> VerifyContext,
    ) -> Option<Decision> {
        match credential {
            Credential::None | Credential::NotOurs if !self.required => Some(Decision::Pass(None)),
            Credential::Key(key) => {
                let settled = self.keyward.verify_cached(key, &self.requirement, &ctx())?;
                Some(match settled {
                    Ok(p) => Decision::Pass(Some(p)),
                    Err(e) => {
                        credentials::log_rejected_key(&e, key);
                        Decision::Reject(Problem::from(&e))
                    }
                })
            }
            _ => None,
        }
    }

    /// The decision, verifying a key against the store where needed. Never waits for a body:
    /// a signed request is [`Decision::Signed`].
    pub async fn decide(&self, credential: Credential<'_>, ctx: &VerifyContext) -> Decision {
        let started = self.start();
        let decision = self.decide_unobserved(credential, ctx).await;
        self.observed(started, decision)
    }

    async fn decide_unobserved(&self, credential: Credential<'_>, ctx: &VerifyContext) -> Decision {
        match credential {
            Credential::Signed(_) if self.keyward.signing_enabled() => Decision::Signed,
            Credential::Signed(_) if self.required => {
                log_signing_disabled();
                Decision::Reject(signing_disabled())
            }
            Credential::Signed(_) => Decision::PassUnverifiedSignature,
            Credential::None | Credential::NotOurs if self.required => {
                Decision::Reject(Problem::missing())
            }
            other => match verify_presented(&self.keyward, other, &self.requirement, ctx).await {
                Ok(p) => Decision::Pass(p),
                Err(problem) => Decision::Reject(problem),
            },
        }
    }

    /// [`finish_signed`] with this gate's requirement.
    ///
    /// # Errors
    /// As [`finish_signed`].
    pub async fn finish_signed(
        &self,
        head: &SignedHead<'_>,
        body: &[u8],
        ctx: &VerifyContext,
    ) -> Result<Principal, Problem> {
        finish_signed(&self.keyward, head, body, &self.requirement, ctx).await
    }
}

/// Verifies a presented bearer key (logging why it was refused, never the secret). `Ok(None)`
/// for no keyward credential and for a signature (signed requests need their body: see
/// [`Decision::Signed`]).
///
/// # Errors
/// The problem to answer with: `401 API_KEY_INVALID` for every bad key and unreadable header,
/// the engine's `403`, `429` and `503`.
pub async fn verify_presented(
    keyward: &Keyward,
    credential: Credential<'_>,
    requirement: &ScopeRequirement,
    ctx: &VerifyContext,
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
pub fn signing_disabled() -> Problem {
    Problem::new(
        ErrorCode::SignatureInvalid,
        Some("signed requests are not enabled".to_owned()),
    )
}

/// `408`: the signed request's body did not arrive within
/// [`crate::signing::SigningOptions::max_body_time`].
#[must_use]
pub fn signed_body_timeout() -> Problem {
    super::request_timeout("the signed request's body did not arrive in time")
}

/// The first step of a signed request: settles who signed before one byte of the body is read
/// ([`Keyward::precheck_signed`]), and gives the budget to read the body with. When reading
/// fails (over the budget, too slow, unreadable), call [`Keyward::signed_body_failed`]: it
/// counts against the address.
///
/// # Errors
/// `401 SIGNATURE_INVALID` when signing is not enabled or the signer is unknown, `429` for a
/// throttled address, `503` for an outage.
pub async fn begin_signed(
    keyward: &Keyward,
    authorization: &[u8],
    ctx: &VerifyContext,
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
pub struct SignedHead<'a> {
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
    pub fn new(
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
pub async fn finish_signed(
    keyward: &Keyward,
    head: &SignedHead<'_>,
    body: &[u8],
    requirement: &ScopeRequirement,
    ctx: &VerifyContext,
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
/// extractor) on the principal the middleware left: `401 SIGNATURE_INVALID` for a request
/// whose signature nothing could verify, `401 API_KEY_MISSING` without a principal, `403
/// API_KEY_SCOPE_DENIED` listing what is missing.
///
/// # Errors
/// The problem to answer with.
pub fn require_scopes(
    principal: Option<&Principal>,
    unverified_signature: bool,
    requirement: &ScopeRequirement,
) -> Result<(), Problem> {
    match principal {
        Some(p) => requirement
            .check(p.scopes())
            .map_err(|missing| Problem::from(crate::VerifyError::ScopeDenied { missing })),
        None => Err(no_principal(unverified_signature)),
    }
}

/// The `401` for a request without a verified principal: `SIGNATURE_INVALID` when it carried a
/// signature that nothing could verify, else `API_KEY_MISSING`.
#[must_use]
pub fn no_principal(unverified_signature: bool) -> Problem {
    if unverified_signature {
        signing_disabled()
    } else {
        Problem::missing()
    }
}
