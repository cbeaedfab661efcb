//! AWS Signature Version 4 (SigV4) request signing and verification, pure and I/O-free.
//!
//! keyward verifies requests signed exactly as AWS SigV4 signs them for non-S3 services, so any
//! stock SigV4 signer (botocore, the AWS SDKs, `aws4` for Node, `curl --aws-sigv4`) can call a
//! keyward server: the *access key id* is the keyward `key_id` and the *secret access key* is the
//! raw API key. This module holds everything that needs no I/O:
//!
//! * [`SignableRequest`], a borrowed view of a request that an HTTP adapter builds cheaply from
//!   `http::request::Parts` (no dependency on `http` here);
//! * [`canonical_request`], the SigV4 canonical request;
//! * [`Signer`], the client side: request in, headers to set out;
//! * [`Authorization::parse`] and [`verify_signature`], the server side, split so that the engine
//!   can parse the header, look up the secret by [`Authorization::access_key_id`], and then decide
//!   the outcome once.
//!
//! The parts live in one file each: `request` (the view and its payload), `canonical`,
//! `dates`, `keys` (credentials, signing key, string to sign), `signer`, `authorization`,
//! `verifier`, with `errors` and `limits` shared by all. Raw requests in the `.req` format of
//! the AWS test suite are read by `keyward sign` (keyward-server), not here.
//!
//! # The rules, and the choices keyward makes where SigV4 leaves room
//!
//! * **Method**: taken as sent (an RFC 9110 token, at most 32 bytes), not case-folded.
//! * **Path**: the raw path *as received* (still percent-encoded) is normalized — empty segments
//!   (`//`) and `.` segments are removed, `..` removes the previous segment (never above the root),
//!   a trailing `/` is kept when anything is left — and then every byte outside the RFC 3986
//!   unreserved set (`A-Z a-z 0-9 - . _ ~`) is percent-encoded with upper-case hex, `/` excepted.
//!   Because the input is already encoded, `%` itself is encoded again (`%20` becomes `%2520`):
//!   this is the "double encoding" that SigV4 prescribes for every service but S3, and what
//!   botocore and the AWS SDKs produce. Dot segments that are themselves encoded (`%2E`) are not
//!   dot segments. The path must start with `/` (origin form).
//! * **Query**: split on `&` (empty pieces are skipped), each piece split at the first `=` (a
//!   piece without `=` has an empty value). Names and values are percent-decoded — `+` decodes to
//!   a space, as in HTML forms and as curl, `aws4` and the Go SDK treat it — and re-encoded with
//!   the strict RFC 3986 set above. A `%` not followed by two hex digits is refused
//!   ([`SignatureError::MalformedQuery`]). Pairs are sorted by encoded name, then encoded value,
//!   byte-wise, and joined with `&`.
//! * **Headers**: names are lower-cased; each value is trimmed and every run of ASCII whitespace
//!   (space, tab, CR, LF, VT, FF) inside it collapsed to one space; repeated headers are joined
//!   with `,` in the order received. Obsolete line folding is not special-cased here: HTTP
//!   servers reject it, and `keyward sign` replaces a fold by one space. Values of signed
//!   headers must be UTF-8. Only the headers named in `SignedHeaders` take part; all others are
//!   never inspected.
//! * **Payload**: the lower-case hex SHA-256 of the body as received. `UNSIGNED-PAYLOAD` and the
//!   `STREAMING-*` payload modes are **refused** ([`SignatureError::UnsignedPayload`]): keyward
//!   always signs the body, so a signature also proves the body. When `X-Amz-Content-Sha256` is
//!   sent it must equal the hash of the body received.
//! * **Required signed headers**: `host`, and the date header in use — `x-amz-date` when the
//!   request carries one, otherwise `date`. The date is `YYYYMMDD'T'HHMMSS'Z'` (UTC); a `date`
//!   header may instead be an RFC 9110 IMF-fixdate. The credential scope date must be that day.
//! * **Nonce**: when `x-keyward-nonce` ([`NONCE_HEADER`]) is among the *signed* headers, its value
//!   is returned in [`VerifiedSignature::nonce`] and used as the replay key instead of the
//!   signature, which lets a client send the same request twice on purpose. An unsigned nonce is
//!   ignored.
//! * **Clock skew**: the request date must lie within [`DEFAULT_MAX_SKEW`] (300 s) of the server
//!   clock, in either direction; the boundary is accepted.
//! * **Outcome**: decided once. Every structural problem is an invalid signature; the signature
//!   is compared in constant time; only a request whose signature verified can be
//!   [`SignatureErrorKind::Expired`]. Nothing here has side effects: the caller records the
//!   replay key only after `verify_signature` returned `Ok`.
//! * **Limits**: every attacker-controlled length and count is capped ([`Limits`]).
//!
//! # Example
//!
//! ```
//! use keyward_core::sigv4::{
//!     verify_signature, Authorization, AccessKey, Payload, SignableRequest, Signer,
//!     SigningOptions,
//! };
//! use time::macros::datetime;
//!
//! # fn main() -> Result<(), keyward_core::sigv4::SignatureError> {
//! let now = datetime!(2015-08-30 12:36:00 UTC);
//! let body = br#"{"report":"q3"}"#;
//!
//! // Client: sign.
//! let signer = Signer::new("us-east-1", "keyward")?;
//! let credentials = AccessKey::new("AKIDEXAMPLE", b"raw-api-key")?;
//! let headers: &[(&str, &[u8])] = &[("Host", b"api.example.com")];
//! let request = SignableRequest::new("POST", "/reports", Some("year=2025"), headers, Payload::Bytes(body));
//! let signed = signer.sign(&credentials, &request, now)?;
//!
//! // Server: the headers as received, including the ones the signer asked to set.
//! let mut received: Vec<(&str, &[u8])> = headers.to_vec();
//! for (name, value) in signed.headers() {
//!     received.push((name, value.as_bytes()));
//! }
//! let request = SignableRequest::new("POST", "/reports", Some("year=2025"), &received, Payload::Bytes(body));
//! let authorization = Authorization::parse(request.authorization_value()?.unwrap_or_default())?;
//! assert_eq!(authorization.access_key_id(), "AKIDEXAMPLE");
//! // ... look the secret up by access key id, then:
//! let verified = verify_signature(&request, &authorization, b"raw-api-key", &SigningOptions::default(), now)?;
//! assert_eq!(verified.access_key_id(), "AKIDEXAMPLE");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use ring::{digest, hmac};
use subtle::ConstantTimeEq;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The only signing algorithm accepted: `AWS4-HMAC-SHA256`.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Default region of the credential scope on a keyward server: `us-east-1`.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default service of the credential scope on a keyward server: `keyward`.
pub const DEFAULT_SERVICE: &str = "keyward";
/// Default clock-skew window: 300 seconds either way, boundary accepted.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(300);
/// Header that, when signed, carries a client nonce used as the replay key.
pub const NONCE_HEADER: &str = "x-keyward-nonce";
/// The payload marker of unsigned bodies, which keyward refuses.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Hex SHA-256 of the empty body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const SCOPE_TERMINATOR: &str = "aws4_request";
const MAX_METHOD_LEN: usize = 32;
const MAX_ACCESS_KEY_ID_LEN: usize = 128;
const MAX_SCOPE_PART_LEN: usize = 64;
const HEADER_AUTHORIZATION: &str = "authorization";
const HEADER_AMZ_DATE: &str = "x-amz-date";
const HEADER_DATE: &str = "date";
const HEADER_HOST: &str = "host";
const HEADER_CONTENT_SHA256: &str = "x-amz-content-sha256";
const HEADER_SECURITY_TOKEN: &str = "x-amz-security-token";

/// Every byte but the RFC 3986 unreserved characters is percent-encoded.
const ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

mod authorization;
mod canonical;
mod dates;
mod errors;
mod helpers;
mod keys;
mod limits;
mod request;
mod signer;
#[cfg(test)]
mod tests;
mod verifier;

pub use authorization::Authorization;
pub use canonical::canonical_request;
pub use dates::{format_amz_date, parse_amz_date};
pub use errors::{AuthorizationFault, Limit, ScopeField, SignatureError, SignatureErrorKind};
use helpers::*;
pub use keys::{AccessKey, SigningKey};
pub use limits::Limits;
pub use request::{Payload, PayloadHasher, SignableRequest};
pub use signer::{Signer, SigningOutput};
pub use verifier::{SigningOptions, VerifiedSignature, verify_signature};
// The steps the signer, the verifier and the tests share.
use canonical::{
    build_canonical_request, canonical_header_value, check_signed_header_list, push_joined,
};
#[cfg(test)]
use canonical::{push_canonical_query, push_canonical_uri, push_collapsed};
use dates::{is_scope_date, parse_date_header};
use keys::string_to_sign;
use verifier::check_content_sha256;
