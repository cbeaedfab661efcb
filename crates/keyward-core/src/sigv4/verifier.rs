//! The server side: [`verify_signature`] and its options.

use super::*;

/// What a deployment accepts of signed requests: keyward's one set of signing options. The
/// verifier ([`verify_signature`]) reads the scope, the skew and the parse limits; the engine's
/// adapters bound the body they read with the rest. Defaults: `us-east-1`, `keyward`, 300 s,
/// default [`Limits`], 1 MiB and 1024 frames in 30 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningOptions {
    /// SigV4 region expected in the credential scope (default `us-east-1`).
    pub region: String,
    /// SigV4 service expected in the credential scope (default `keyward`).
    pub service: String,
    /// Allowed clock skew either way (default 300 s; the boundary is accepted).
    pub max_skew: Duration,
    /// Caps on what the `Authorization` header and the signed request may hold.
    pub limits: Limits,
    /// Largest body buffered to verify a signature (default 1 MiB).
    pub max_body_bytes: usize,
    /// Most body frames buffered (default 1024).
    pub max_body_frames: usize,
    /// Longest a signed body may take to arrive once its signer is known (default 30 s):
    /// slower is `408`, so a slow drip cannot hold a buffer open.
    pub max_body_time: Duration,
}

impl SigningOptions {
    /// Expect `region` and `service` in the credential scope, the other options at their
    /// defaults.
    ///
    /// # Errors
    ///
    /// As [`Signer::new`].
    pub fn new(region: &str, service: &str) -> Result<Self, SignatureError> {
        check_scope_names(region, service)?;
        Ok(Self {
            region: region.to_owned(),
            service: service.to_owned(),
            ..Self::default()
        })
    }

    /// Checks the region and service (the engine's builder does, for options built field by
    /// field).
    ///
    /// # Errors
    ///
    /// As [`Signer::new`].
    pub fn check(&self) -> Result<(), SignatureError> {
        check_scope_names(&self.region, &self.service)
    }

    /// Accept request dates at most `max_skew` away from the server clock, either way (the
    /// boundary is accepted).
    #[must_use]
    pub fn with_max_skew(mut self, max_skew: Duration) -> Self {
        self.max_skew = max_skew;
        self
    }

    /// Applies other [`Limits`].
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long a replay key must be remembered: twice the skew window (a request is accepted
    /// from `max_skew` before to `max_skew` after its date), saturating.
    #[must_use]
    pub fn replay_ttl(&self) -> Duration {
        self.max_skew.saturating_mul(2)
    }
}

impl Default for SigningOptions {
    fn default() -> Self {
        Self {
            region: DEFAULT_REGION.to_owned(),
            service: DEFAULT_SERVICE.to_owned(),
            max_skew: DEFAULT_MAX_SKEW,
            limits: Limits::default(),
            max_body_bytes: 1 << 20,
            max_body_frames: 1024,
            max_body_time: Duration::from_secs(30),
        }
    }
}

/// A request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub(super) access_key_id: String,
    pub(super) signed_headers: Vec<String>,
    pub(super) signature: [u8; 32],
    pub(super) nonce: Option<String>,
    pub(super) timestamp: OffsetDateTime,
}

impl VerifiedSignature {
    /// The access key id (keyward `key_id`) that signed.
    #[must_use]
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The signed header names.
    #[must_use]
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// The raw signature.
    #[must_use]
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }

    /// The canonical value of the signed `x-keyward-nonce` header, if it was signed.
    #[must_use]
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The request date.
    #[must_use]
    pub fn timestamp(&self) -> OffsetDateTime {
        self.timestamp
    }

    /// The key to record in the nonce store (for twice the skew window): `sigv4:n:` and the hex
    /// SHA-256 of key id and signed nonce, or else `sigv4:s:` and the hex signature. Fixed
    /// length; no attacker-chosen bytes.
    #[must_use]
    pub fn replay_key(&self) -> String {
        match &self.nonce {
            Some(nonce) => {
                let mut ctx = digest::Context::new(&digest::SHA256);
                ctx.update(self.access_key_id.as_bytes());
                ctx.update(&[0]);
                ctx.update(nonce.as_bytes());
                format!("sigv4:n:{}", hex_lower(ctx.finish().as_ref()))
            }
            None => format!("sigv4:s:{}", hex_lower(&self.signature)),
        }
    }
}

/// Verifies the SigV4 signature of `request` under `secret`, the secret of
/// [`Authorization::access_key_id`], at server time `now`.
///
/// The caller parses `authorization` first (from [`SignableRequest::authorization_value`]),
/// looks the secret up by its access key id, then calls this once; the outcome is decided here
/// and nothing is recorded. For an unknown key id, call it with a dummy secret so that unknown
/// ids and wrong secrets cost the same, and answer invalid either way. Record
/// [`VerifiedSignature::replay_key`] only after `Ok`.
///
/// Checks, in order: limits; scope region and service; `host` and the date header signed; the
/// date well-formed and on the scope day; `x-keyward-nonce`, if signed, within its limit;
/// `X-Amz-Content-Sha256`, if sent, equal to the body's hash; the canonical request; the
/// signature, in constant time; and last, the date within the skew window.
///
/// # Errors
///
/// [`SignatureError::Expired`] (kind [`SignatureErrorKind::Expired`]) when, and only when, the
/// signature is valid but the date is outside the window; every other variant is
/// [`SignatureErrorKind::Invalid`].
pub fn verify_signature(
    request: &SignableRequest<'_>,
    authorization: &Authorization,
    secret: &[u8],
    options: &SigningOptions,
    now: OffsetDateTime,
) -> Result<VerifiedSignature, SignatureError> {
    let limits = &options.limits;
    if request.headers.len() > limits.max_headers {
        return Err(SignatureError::TooLarge(Limit::Headers));
    }
    // The list was checked when parsed, perhaps under other limits: check again, it is cheap.
    check_signed_header_list(
        authorization.signed_headers.iter().map(String::as_str),
        limits,
    )?;
    if authorization.region != options.region {
        return Err(SignatureError::ScopeMismatch(ScopeField::Region));
    }
    if authorization.service != options.service {
        return Err(SignatureError::ScopeMismatch(ScopeField::Service));
    }
    if !authorization.is_signed(HEADER_HOST) {
        return Err(SignatureError::RequiredHeaderNotSigned(HEADER_HOST));
    }

    // The date: x-amz-date when present, else date; whichever is used must be signed.
    let mut amz_dates = request.header_values(HEADER_AMZ_DATE);
    let timestamp = if let Some(value) = amz_dates.next() {
        if !authorization.is_signed(HEADER_AMZ_DATE) {
            return Err(SignatureError::RequiredHeaderNotSigned(HEADER_AMZ_DATE));
        }
        if amz_dates.next().is_some() {
            return Err(SignatureError::MalformedDate);
        }
        parse_amz_date(trim_ows(value))?
    } else {
        let mut dates = request.header_values(HEADER_DATE);
        let value = dates.next().ok_or(SignatureError::MissingDate)?;
        if !authorization.is_signed(HEADER_DATE) {
            return Err(SignatureError::RequiredHeaderNotSigned(HEADER_DATE));
        }
        if dates.next().is_some() {
            return Err(SignatureError::MalformedDate);
        }
        parse_date_header(trim_ows(value))?
    };
    let amz_date = format_amz_date(timestamp)?;
    let scope_date = amz_date.get(..8).unwrap_or_default();
    if authorization.scope_date != scope_date {
        return Err(SignatureError::ScopeMismatch(ScopeField::Date));
    }

    let nonce = if authorization.is_signed(NONCE_HEADER) {
        let nonce = canonical_header_value(request.headers, NONCE_HEADER, limits)?
            .ok_or_else(|| SignatureError::SignedHeaderAbsent(NONCE_HEADER.to_owned()))?;
        if nonce.len() > limits.max_nonce_len {
            return Err(SignatureError::TooLarge(Limit::Nonce));
        }
        Some(nonce)
    } else {
        None
    };

    let payload_sha256 = request.payload.sha256();
    for value in request.header_values(HEADER_CONTENT_SHA256) {
        check_content_sha256(value, &payload_sha256)?;
    }

    let canonical = build_canonical_request(
        request,
        request.headers,
        &authorization.signed_headers,
        &hex_lower(&payload_sha256),
        limits,
    )?;
    let scope = format!(
        "{scope_date}/{}/{}/{SCOPE_TERMINATOR}",
        options.region, options.service
    );
    let string_to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let key = SigningKey::derive(secret, scope_date, &options.region, &options.service);
    let expected = key.sign(&string_to_sign);
    if !bool::from(expected.ct_eq(&authorization.signature)) {
        return Err(SignatureError::SignatureMismatch);
    }

    // Only an authentic request learns that it is stale.
    let max_skew = time::Duration::try_from(options.max_skew).unwrap_or(time::Duration::MAX);
    let offset = timestamp - now;
    if offset > max_skew || offset < -max_skew {
        return Err(SignatureError::Expired {
            offset_seconds: offset.whole_seconds(),
        });
    }

    Ok(VerifiedSignature {
        access_key_id: authorization.access_key_id.clone(),
        signed_headers: authorization.signed_headers.clone(),
        signature: authorization.signature,
        nonce,
        timestamp,
    })
}

pub(super) fn check_content_sha256(
    value: &[u8],
    payload_sha256: &[u8; 32],
) -> Result<(), SignatureError> {
    let value = trim_ows(value);
    if value == UNSIGNED_PAYLOAD.as_bytes() || value.starts_with(b"STREAMING-") {
        return Err(SignatureError::UnsignedPayload);
    }
    let claimed = std::str::from_utf8(value)
        .ok()
        .and_then(decode_hex32)
        .ok_or(SignatureError::MalformedContentSha256)?;
    if claimed != *payload_sha256 {
        return Err(SignatureError::ContentSha256Mismatch);
    }
    Ok(())
}
