//! The access key (id and secret), the derived signing key, and the string to sign.

use super::*;

/// A SigV4 access key id and secret (for keyward: the `key_id` and the raw API key), with an
/// optional STS session token for use with other SigV4 services. `Debug` redacts the secret.
#[derive(Clone, Copy)]
pub struct AccessKey<'a> {
    pub(super) access_key_id: &'a str,
    pub(super) secret: &'a [u8],
    pub(super) session_token: Option<&'a str>,
}

impl<'a> AccessKey<'a> {
    /// The access key `access_key_id` with `secret`.
    ///
    /// # Errors
    ///
    /// [`SignatureError::InvalidAccessKeyId`] unless the id is 1..=128 characters of
    /// `A-Z a-z 0-9 - . _ ~`.
    pub fn new(access_key_id: &'a str, secret: &'a [u8]) -> Result<Self, SignatureError> {
        if !is_access_key_id(access_key_id) {
            return Err(SignatureError::InvalidAccessKeyId);
        }
        Ok(Self {
            access_key_id,
            secret,
            session_token: None,
        })
    }

    /// Adds a session token, sent and signed as `X-Amz-Security-Token` (not used by keyward
    /// keys; for reproducing other SigV4 requests).
    ///
    /// # Errors
    ///
    /// [`SignatureError::MalformedHeaderValue`] unless the token is non-empty visible ASCII.
    pub fn with_session_token(mut self, token: &'a str) -> Result<Self, SignatureError> {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SignatureError::MalformedHeaderValue(
                HEADER_SECURITY_TOKEN.to_owned(),
            ));
        }
        self.session_token = Some(token);
        Ok(self)
    }

    /// The access key id.
    #[must_use]
    pub fn access_key_id(&self) -> &'a str {
        self.access_key_id
    }
}

impl fmt::Debug for AccessKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<redacted>")
            .field("session_token", &self.session_token.map(|_| "<redacted>"))
            .finish()
    }
}

/// The derived SigV4 signing key for one secret, day, region and service:
/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
///
/// It may be cached per key and day. `Debug` redacts it.
#[derive(Clone)]
pub struct SigningKey(hmac::Key);

impl SigningKey {
    /// Derives the key. `scope_date` is `YYYYMMDD`.
    #[must_use]
    pub fn derive(secret: &[u8], scope_date: &str, region: &str, service: &str) -> Self {
        let mut k_secret = zeroize::Zeroizing::new(Vec::with_capacity(4 + secret.len()));
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret);
        let k_date = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &k_secret),
            scope_date.as_bytes(),
        );
        let k_region = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, k_date.as_ref()),
            region.as_bytes(),
        );
        let k_service = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, k_region.as_ref()),
            service.as_bytes(),
        );
        let k_signing = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, k_service.as_ref()),
            SCOPE_TERMINATOR.as_bytes(),
        );
        Self(hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref()))
    }

    /// `HMAC-SHA256(kSigning, string_to_sign)`, the raw signature.
    #[must_use]
    pub fn sign(&self, string_to_sign: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.0, string_to_sign.as_bytes()).as_ref());
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// `AWS4-HMAC-SHA256 \n amz_date \n scope \n hex(sha256(canonical_request))`.
pub(super) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hash = digest::digest(&digest::SHA256, canonical_request.as_bytes());
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex_lower(hash.as_ref())
    )
}
