//! Request signing configuration (AWS Signature Version 4, see `docs/signing.md`).

use std::time::Duration;

use crate::sigv4::VerifyOptions;

/// How this deployment checks signed requests: the engine's one set of signing options. The
/// SigV4 part (region, service, skew) becomes the verifier's [`VerifyOptions`] through
/// [`SigningOptions::verify_options`]; the rest bounds the body adapters buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningOptions {
    /// SigV4 region expected in the credential scope (default `us-east-1`).
    pub region: String,
    /// SigV4 service expected in the credential scope (default `keyward`).
    pub service: String,
    /// Allowed clock skew either way (default 300 s; the boundary is accepted).
    pub max_skew: Duration,
    /// Largest body buffered to verify a signature (default 1 MiB).
    pub max_body_bytes: usize,
    /// Most body frames buffered (default 1024).
    pub max_body_frames: usize,
    /// Longest a signed body may take to arrive once its signer is known (default 30 s):
    /// slower is `408`, so a slow drip cannot hold a buffer open.
    pub max_body_time: Duration,
}

impl Default for SigningOptions {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            service: "keyward".into(),
            max_skew: crate::sigv4::DEFAULT_MAX_SKEW,
            max_body_bytes: 1 << 20,
            max_body_frames: 1024,
            max_body_time: Duration::from_secs(30),
        }
    }
}

impl SigningOptions {
    /// The SigV4 verification options this configuration describes.
    ///
    /// # Errors
    /// [`crate::sigv4::SignatureError`] for a region or service SigV4 cannot carry.
    pub fn verify_options(&self) -> Result<VerifyOptions, crate::sigv4::SignatureError> {
        Ok(VerifyOptions::new(&self.region, &self.service)?.with_max_skew(self.max_skew))
    }
}
