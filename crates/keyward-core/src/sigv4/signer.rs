//! The client side: [`Signer`] turns a request into the headers to set.

use super::*;

/// Signs requests for one region and service (the client side).
///
/// It signs every header of the request except `Authorization` (pass only those you send;
/// `host` is required), and sets `X-Amz-Date` — and, if enabled, `X-Amz-Content-Sha256` — itself.
#[derive(Debug, Clone)]
pub struct Signer {
    pub(super) region: String,
    pub(super) service: String,
    pub(super) content_sha256_header: bool,
    pub(super) limits: Limits,
}

impl Signer {
    /// A signer for `region` and `service` (keyward servers default to `us-east-1` and
    /// `keyward`).
    ///
    /// # Errors
    ///
    /// [`SignatureError::InvalidRegion`] or [`SignatureError::InvalidService`] unless each is
    /// 1..=64 characters of `A-Z a-z 0-9 - . _`.
    pub fn new(region: &str, service: &str) -> Result<Self, SignatureError> {
        check_scope_names(region, service)?;
        Ok(Self {
            region: region.to_owned(),
            service: service.to_owned(),
            content_sha256_header: false,
            limits: Limits::default(),
        })
    }

    /// Also send and sign `X-Amz-Content-Sha256` (off by default; keyward does not need it).
    #[must_use]
    pub fn with_content_sha256_header(mut self, enabled: bool) -> Self {
        self.content_sha256_header = enabled;
        self
    }

    /// Applies other [`Limits`] to the requests signed.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Signs `request` at `timestamp` (truncated to the second).
    ///
    /// The returned headers must be *set* on the request, replacing any existing field of the
    /// same name; the canonical request was built as if they were.
    ///
    /// # Errors
    ///
    /// [`SignatureError::MissingHost`] without a `host` header;
    /// [`SignatureError::MalformedHeaderName`]; [`SignatureError::UnsignedPayload`],
    /// [`SignatureError::MalformedContentSha256`] or [`SignatureError::ContentSha256Mismatch`]
    /// when the request carries an `X-Amz-Content-Sha256` that is not the body's hash;
    /// [`SignatureError::TimestampOutOfRange`]; and the errors of [`canonical_request`].
    pub fn sign(
        &self,
        credentials: &AccessKey<'_>,
        request: &SignableRequest<'_>,
        timestamp: OffsetDateTime,
    ) -> Result<SigningOutput, SignatureError> {
        let limits = &self.limits;
        if request.headers.len() > limits.max_headers {
            return Err(SignatureError::TooLarge(Limit::Headers));
        }
        let amz_date = format_amz_date(timestamp)?;
        let scope_date = amz_date.get(..8).unwrap_or_default();
        let payload_sha256 = request.payload.sha256();
        let payload_hash = hex_lower(&payload_sha256);
        let content_sha256 = self.content_sha256_header.then(|| payload_hash.clone());
        let session_token = credentials.session_token;

        if !self.content_sha256_header {
            for value in request.header_values(HEADER_CONTENT_SHA256) {
                check_content_sha256(value, &payload_sha256)?;
            }
        }

        // The headers as they will be sent: ours replace any of the same name.
        let replaced = |name: &str| {
            name.eq_ignore_ascii_case(HEADER_AUTHORIZATION)
                || name.eq_ignore_ascii_case(HEADER_AMZ_DATE)
                || (content_sha256.is_some() && name.eq_ignore_ascii_case(HEADER_CONTENT_SHA256))
                || (session_token.is_some() && name.eq_ignore_ascii_case(HEADER_SECURITY_TOKEN))
        };
        let mut headers: Vec<(&str, &[u8])> = request
            .headers
            .iter()
            .copied()
            .filter(|(name, _)| !replaced(name))
            .collect();
        headers.push((HEADER_AMZ_DATE, amz_date.as_bytes()));
        if let Some(hash) = &content_sha256 {
            headers.push((HEADER_CONTENT_SHA256, hash.as_bytes()));
        }
        if let Some(token) = session_token {
            headers.push((HEADER_SECURITY_TOKEN, token.as_bytes()));
        }

        let mut signed_headers: Vec<String> = Vec::with_capacity(headers.len());
        for (name, _) in &headers {
            if name.len() > limits.max_header_name_len {
                return Err(SignatureError::TooLarge(Limit::HeaderName));
            }
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return Err(SignatureError::MalformedHeaderName);
            }
            signed_headers.push(name.to_ascii_lowercase());
        }
        signed_headers.sort_unstable();
        signed_headers.dedup();
        if signed_headers
            .binary_search_by(|n| n.as_str().cmp(HEADER_HOST))
            .is_err()
        {
            return Err(SignatureError::MissingHost);
        }
        if signed_headers.len() > limits.max_signed_headers {
            return Err(SignatureError::TooLarge(Limit::SignedHeaders));
        }

        let canonical_request =
            build_canonical_request(request, &headers, &signed_headers, &payload_hash, limits)?;
        let scope = format!(
            "{scope_date}/{}/{}/{SCOPE_TERMINATOR}",
            self.region, self.service
        );
        let string_to_sign = string_to_sign(&amz_date, &scope, &canonical_request);
        let key = SigningKey::derive(credentials.secret, scope_date, &self.region, &self.service);
        let signature = key.sign(&string_to_sign);
        let mut signed_list = String::new();
        push_joined(&mut signed_list, &signed_headers, ';');
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_list}, Signature={}",
            credentials.access_key_id,
            hex_lower(&signature)
        );
        Ok(SigningOutput {
            authorization,
            amz_date,
            content_sha256,
            session_token: session_token.map(str::to_owned),
            canonical_request,
            string_to_sign,
            signature,
            signed_headers,
        })
    }
}

/// What [`Signer::sign`] produced: the headers to set, and the intermediate strings for
/// debugging a mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningOutput {
    pub(super) authorization: String,
    pub(super) amz_date: String,
    pub(super) content_sha256: Option<String>,
    pub(super) session_token: Option<String>,
    pub(super) canonical_request: String,
    pub(super) string_to_sign: String,
    pub(super) signature: [u8; 32],
    pub(super) signed_headers: Vec<String>,
}

impl SigningOutput {
    /// The headers to set, replacing existing fields of the same name, in this order:
    /// `X-Amz-Date`, `X-Amz-Content-Sha256` (if enabled), `X-Amz-Security-Token` (if a session
    /// token was given), `Authorization`.
    #[must_use]
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![("X-Amz-Date", self.amz_date.as_str())];
        if let Some(hash) = &self.content_sha256 {
            headers.push(("X-Amz-Content-Sha256", hash.as_str()));
        }
        if let Some(token) = &self.session_token {
            headers.push(("X-Amz-Security-Token", token.as_str()));
        }
        headers.push(("Authorization", self.authorization.as_str()));
        headers
    }

    /// The `Authorization` header value.
    #[must_use]
    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// The `X-Amz-Date` header value.
    #[must_use]
    pub fn amz_date(&self) -> &str {
        &self.amz_date
    }

    /// The `X-Amz-Content-Sha256` header value, when enabled.
    #[must_use]
    pub fn content_sha256(&self) -> Option<&str> {
        self.content_sha256.as_deref()
    }

    /// The canonical request that was signed.
    #[must_use]
    pub fn canonical_request(&self) -> &str {
        &self.canonical_request
    }

    /// The string to sign.
    #[must_use]
    pub fn string_to_sign(&self) -> &str {
        &self.string_to_sign
    }

    /// The raw signature.
    #[must_use]
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }

    /// The signed header names, lower-case and sorted.
    #[must_use]
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }
}
