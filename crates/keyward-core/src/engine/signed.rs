//! Verifying signed requests (AWS SigV4, `docs/signing.md`) with the engine's lookup, limits
//! and replay state; the settings are [`crate::sigv4::SigningOptions`].

use crate::engine::{InvalidReason, Lookup, VerifyError};
use crate::key::KeyId;
use crate::sigv4::{Authorization, SignableRequest, SignatureErrorKind, verify_signature};
use crate::{Keyward, Principal, ScopeRequirement, VerifyContext};

/// A secret no key has, to spend the work of a signature check on unknown key ids.
pub(super) const DUMMY_SECRET: &[u8] =
    b"kw_none_000000000000_00000000000000000000000000000000000000";

impl Keyward {
    /// What a signed request can be refused for before one byte of its body is read: an
    /// `Authorization` header that does not parse, a key id this deployment does not know, a
    /// key that does not sign, an address over its failures ([`crate::throttle`]). Adapters
    /// call it first, so that junk and made-up credentials never make them buffer a body.
    ///
    /// It tells nothing [`Keyward::verify_signed`] would not: what it refuses is
    /// `SIGNATURE_INVALID` (or the throttle's `429`, or `503` when the store is down), and a
    /// key's state is judged only after the signature, by `verify_signed`.
    ///
    /// # Errors
    /// `SignatureInvalid`, `Throttled`, `Unavailable`.
    pub async fn precheck_signed(
        &self,
        authorization: &[u8],
        ctx: &VerifyContext<'_>,
    ) -> Result<(), VerifyError> {
        let now_us = crate::clock::unix_micros(self.0.clock.now());
        // Even for a known signing key: buffering bodies is what an address over its failures
        // (uploads that never finished, among them) may not make this instance do.
        if let Some(wait) = self.0.throttle.refused(ctx.client_ip, now_us) {
            return Err(VerifyError::Throttled {
                retry_after: Some(wait),
            });
        }
        let auth = Authorization::parse_with_limits(authorization, &self.0.signing.limits)
            .map_err(|_| VerifyError::SignatureInvalid)?;
        let key_id: KeyId = auth
            .access_key_id()
            .parse()
            .map_err(|_| VerifyError::SignatureInvalid)?;
        match self.lookup(&key_id, now_us, ctx).await? {
            Lookup::Found(e) if e.is_signing() => Ok(()),
            found => {
                self.count_failure(ctx, now_us).await;
                tracing::debug!(
                    key_id = %key_id,
                    known = matches!(found, Lookup::Found(_)),
                    "signed request for an unknown or bearer-only key, refused before its body"
                );
                Err(VerifyError::SignatureInvalid)
            }
        }
    }

    /// Counts a signed request whose body failed (over the bounds, slower than
    /// [`SigningOptions::max_body_time`], unreadable) against the caller's address, as a failed
    /// verification: an address whose uploads never complete soon has no more bodies buffered
    /// ([`Keyward::precheck_signed`]). Adapters call it when buffering fails.
    ///
    /// [`SigningOptions::max_body_time`]: crate::sigv4::SigningOptions::max_body_time
    pub async fn signed_body_failed(&self, ctx: &VerifyContext<'_>) {
        let now_us = crate::clock::unix_micros(self.0.clock.now());
        self.count_failure(ctx, now_us).await;
    }

    /// Verifies a SigV4-signed request (`Authorization: AWS4-HMAC-SHA256 …`), where the access
    /// key id is the key id and the secret is the raw key.
    ///
    /// The outcome is decided once: header parse → key id shape (no store read for junk) → cache
    /// or store → sealed secret → signature and date (constant-time compare) → state, IP, scopes →
    /// replay check, which records the signature (or signed nonce) only now, after everything
    /// before it passed → limits, credits, usage.
    ///
    /// # Errors
    /// `SignatureInvalid` (any bad signature, unknown or non-signing key), `SignatureExpired`,
    /// `SignatureReplayed`, and the bearer path's state, scope, IP, limit and outage errors.
    pub async fn verify_signed(
        &self,
        request: &SignableRequest<'_>,
        required: &ScopeRequirement,
        ctx: &VerifyContext<'_>,
    ) -> Result<Principal, VerifyError> {
        let options = &self.0.signing;
        let header = match request.authorization_value() {
            Ok(Some(h)) => h,
            Ok(None) => {
                return Err(VerifyError::Invalid(InvalidReason::Parse(
                    crate::key::ParseError::Empty,
                )));
            }
            Err(_) => return Err(VerifyError::SignatureInvalid),
        };
        let auth = Authorization::parse_with_limits(header, &options.limits)
            .map_err(|_| VerifyError::SignatureInvalid)?;
        let key_id: KeyId = auth
            .access_key_id()
            .parse()
            .map_err(|_| VerifyError::SignatureInvalid)?;
        let now = self.0.clock.now();
        let now_us = crate::clock::unix_micros(now);
        let entry = match self.lookup(&key_id, now_us, ctx).await? {
            Lookup::Found(e) => e,
            Lookup::Unknown => {
                let _ = verify_signature(request, &auth, DUMMY_SECRET, options, now);
                self.count_failure(ctx, now_us).await;
                tracing::debug!(key_id = %key_id, "signed request for an unknown key id");
                return Err(VerifyError::SignatureInvalid);
            }
        };
        let secret = match (entry.sealed_secret(), &self.0.encryption) {
            (Some(sealed), Some(enc)) => match enc.open(&key_id, sealed) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(key_id = %key_id, error = %e, "sealed signing secret cannot be opened");
                    return Err(VerifyError::SignatureInvalid);
                }
            },
            (None, _) => {
                let _ = verify_signature(request, &auth, DUMMY_SECRET, options, now);
                self.note_refusal(&entry, &VerifyError::SignatureInvalid, ctx, now_us);
                tracing::debug!(key_id = %key_id, "signed request with a bearer-only key");
                return Err(VerifyError::SignatureInvalid);
            }
            (Some(_), None) => {
                tracing::error!(key_id = %key_id, "signing key presented but no encryption keyring is configured");
                return Err(VerifyError::SignatureInvalid);
            }
        };
        let verified = match verify_signature(request, &auth, &secret, options, now) {
            Ok(v) => v,
            Err(e) if e.kind() == SignatureErrorKind::Expired => {
                self.note_refusal(&entry, &VerifyError::SignatureExpired, ctx, now_us);
                return Err(VerifyError::SignatureExpired);
            }
            Err(_) => {
                self.note_refusal(&entry, &VerifyError::SignatureInvalid, ctx, now_us);
                self.count_failure(ctx, now_us).await;
                return Err(VerifyError::SignatureInvalid);
            }
        };
        drop(secret);
        if !self.issued_here(&entry) {
            tracing::debug!(key_id = %key_id, "signed request with a key of another deployment");
            let e = VerifyError::Invalid(InvalidReason::OtherDeployment);
            self.note_refusal(&entry, &e, ctx, now_us);
            return Err(e);
        }
        let replay_key = verified.replay_key();
        self.admit(
            &entry,
            required,
            ctx,
            crate::clock::unix_micros(now),
            Some(now),
            Some((&replay_key, options.replay_ttl())),
        )
        .await
    }
}
