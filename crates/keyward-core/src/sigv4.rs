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
//!   the outcome once;
//! * [`parse_http_request`], a parser for raw HTTP/1.1 requests in the `.req` format of the AWS
//!   test suite (used by the tests and by `keyward sign`).
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
//!   servers reject it, and [`parse_http_request`] replaces a fold by one space. Values of signed
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
//!     verify_signature, Authorization, Credentials, Payload, SignableRequest, Signer,
//!     VerifyOptions,
//! };
//! use chrono::{TimeZone, Utc};
//!
//! # fn main() -> Result<(), keyward_core::sigv4::SignatureError> {
//! let now = Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).single().unwrap_or_default();
//! let body = br#"{"report":"q3"}"#;
//!
//! // Client: sign.
//! let signer = Signer::new("us-east-1", "keyward")?;
//! let credentials = Credentials::new("AKIDEXAMPLE", b"raw-api-key")?;
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
//! let verified = verify_signature(&request, &authorization, b"raw-api-key", &VerifyOptions::default(), now)?;
//! assert_eq!(verified.access_key_id(), "AKIDEXAMPLE");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Timelike, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use ring::{digest, hmac};
use subtle::ConstantTimeEq;

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
/// Largest raw request [`parse_http_request`] accepts (16 MiB).
pub const MAX_HTTP_REQUEST_LEN: usize = 16 * 1024 * 1024;

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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a request could not be signed, or a signature not verified.
///
/// Every variant but [`SignatureError::Expired`] means "invalid signature" to a caller
/// ([`SignatureError::kind`]); the variant itself is for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// An input exceeds its length or count limit.
    #[error("{0} exceeds its limit")]
    TooLarge(Limit),
    /// The HTTP method is empty or not an RFC 9110 token.
    #[error("malformed HTTP method")]
    MalformedMethod,
    /// The path does not start with `/`.
    #[error("malformed request path")]
    MalformedPath,
    /// The query string has a `%` not followed by two hex digits.
    #[error("malformed query string")]
    MalformedQuery,
    /// A header name is empty or not an RFC 9110 token.
    #[error("malformed header name")]
    MalformedHeaderName,
    /// The value of the named signed header is not UTF-8 (or, for a session token, not a
    /// visible-ASCII header value).
    #[error("malformed value of header `{0}`")]
    MalformedHeaderValue(String),
    /// The `Authorization` header uses another scheme or algorithm than `AWS4-HMAC-SHA256`.
    #[error("unsupported authorization scheme or algorithm")]
    UnsupportedAlgorithm,
    /// The `Authorization` header is not a well-formed SigV4 header.
    #[error("malformed authorization header: {0}")]
    MalformedAuthorization(AuthorizationFault),
    /// A field of the credential scope does not match the request or the server.
    #[error("credential scope {0} does not match")]
    ScopeMismatch(ScopeField),
    /// Neither `x-amz-date` nor `date` is present.
    #[error("request carries no x-amz-date or date header")]
    MissingDate,
    /// The date header is not a valid timestamp in an accepted format.
    #[error("malformed request date")]
    MalformedDate,
    /// The request carries no `host` header, which must always be signed.
    #[error("request carries no host header")]
    MissingHost,
    /// A header that must be signed (`host`, or the date header in use) is not in
    /// `SignedHeaders`.
    #[error("required header `{0}` is not signed")]
    RequiredHeaderNotSigned(&'static str),
    /// A header named in `SignedHeaders` is absent from the request.
    #[error("signed header `{0}` is absent from the request")]
    SignedHeaderAbsent(String),
    /// The request asks for `UNSIGNED-PAYLOAD` or a `STREAMING-*` payload, which keyward refuses.
    #[error("unsigned or streaming payloads are refused")]
    UnsignedPayload,
    /// `x-amz-content-sha256` is not a lower-case hex SHA-256.
    #[error("malformed x-amz-content-sha256 header")]
    MalformedContentSha256,
    /// `x-amz-content-sha256` does not match the body.
    #[error("x-amz-content-sha256 does not match the body")]
    ContentSha256Mismatch,
    /// The signature does not match the request.
    #[error("signature does not match")]
    SignatureMismatch,
    /// The signature is valid but the request date lies outside the skew window.
    #[error("request date is {offset_seconds} s from the server clock, outside the skew window")]
    Expired {
        /// Request date minus server time, in whole seconds (positive: in the future).
        offset_seconds: i64,
    },
    /// The access key id is empty, too long, or has characters outside `A-Z a-z 0-9 - . _ ~`.
    #[error("invalid access key id")]
    InvalidAccessKeyId,
    /// The region is empty, too long, or has characters outside `A-Z a-z 0-9 - . _`.
    #[error("invalid region")]
    InvalidRegion,
    /// The service is empty, too long, or has characters outside `A-Z a-z 0-9 - . _`.
    #[error("invalid service")]
    InvalidService,
    /// The timestamp cannot be written as `YYYYMMDD'T'HHMMSS'Z'` (year outside 0..=9999).
    #[error("timestamp out of range")]
    TimestampOutOfRange,
    /// A raw HTTP request given to [`parse_http_request`] is malformed.
    #[error("malformed HTTP request: {0}")]
    MalformedHttpRequest(HttpRequestFault),
}

/// What a [`SignatureError`] means to a caller: the two answers a server gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureErrorKind {
    /// Malformed, unverifiable or wrong: `SIGNATURE_INVALID`.
    Invalid,
    /// Correctly signed, but dated outside the skew window: `SIGNATURE_EXPIRED`.
    Expired,
}

impl SignatureError {
    /// The answer to give the caller.
    #[must_use]
    pub fn kind(&self) -> SignatureErrorKind {
        match self {
            Self::Expired { .. } => SignatureErrorKind::Expired,
            _ => SignatureErrorKind::Invalid,
        }
    }
}

/// Which limit of [`Limits`] (or of [`parse_http_request`]) was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The HTTP method (32 bytes).
    Method,
    /// [`Limits::max_path_len`].
    Path,
    /// [`Limits::max_query_len`].
    Query,
    /// [`Limits::max_query_params`].
    QueryParameters,
    /// [`Limits::max_headers`].
    Headers,
    /// [`Limits::max_header_name_len`].
    HeaderName,
    /// [`Limits::max_header_value_len`].
    HeaderValue,
    /// [`Limits::max_signed_headers`].
    SignedHeaders,
    /// [`Limits::max_authorization_len`].
    Authorization,
    /// [`Limits::max_nonce_len`].
    Nonce,
    /// [`MAX_HTTP_REQUEST_LEN`].
    HttpRequest,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Method => "method",
            Self::Path => "path",
            Self::Query => "query string",
            Self::QueryParameters => "query parameter count",
            Self::Headers => "header count",
            Self::HeaderName => "header name",
            Self::HeaderValue => "header value",
            Self::SignedHeaders => "signed header count",
            Self::Authorization => "authorization header",
            Self::Nonce => "nonce",
            Self::HttpRequest => "raw HTTP request",
        })
    }
}

/// The part of an `Authorization` header that is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthorizationFault {
    /// Not visible ASCII, or not `ALGORITHM SP component, component, component`.
    Syntax,
    /// A component other than `Credential`, `SignedHeaders` or `Signature`.
    UnknownComponent,
    /// A component given twice.
    DuplicateComponent,
    /// No `Credential=` component.
    MissingCredential,
    /// No `SignedHeaders=` component.
    MissingSignedHeaders,
    /// No `Signature=` component.
    MissingSignature,
    /// `Credential` is not `AKID/YYYYMMDD/region/service/aws4_request`.
    Credential,
    /// `SignedHeaders` is not a `;`-separated, strictly sorted list of lower-case header names.
    SignedHeaders,
    /// `Signature` is not 64 lower-case hex digits.
    Signature,
    /// More than one `Authorization` header.
    Multiple,
}

impl fmt::Display for AuthorizationFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "syntax",
            Self::UnknownComponent => "unknown component",
            Self::DuplicateComponent => "duplicate component",
            Self::MissingCredential => "missing Credential",
            Self::MissingSignedHeaders => "missing SignedHeaders",
            Self::MissingSignature => "missing Signature",
            Self::Credential => "bad Credential",
            Self::SignedHeaders => "bad SignedHeaders",
            Self::Signature => "bad Signature",
            Self::Multiple => "more than one Authorization header",
        })
    }
}

/// A field of the credential scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopeField {
    /// The scope date differs from the day of the request date.
    Date,
    /// The scope region differs from the server's region.
    Region,
    /// The scope service differs from the server's service.
    Service,
}

impl fmt::Display for ScopeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Date => "date",
            Self::Region => "region",
            Self::Service => "service",
        })
    }
}

/// The part of a raw HTTP request that [`parse_http_request`] could not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpRequestFault {
    /// The request line is not `METHOD SP target SP HTTP/x.y`.
    RequestLine,
    /// The request line is not UTF-8.
    NotUtf8,
    /// The request target is not in origin form (`/path?query`).
    Target,
    /// The protocol version is not `HTTP/` followed by digits and dots.
    Version,
    /// A header line has no `:`, or a continuation line has no header to continue.
    HeaderLine,
}

impl fmt::Display for HttpRequestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RequestLine => "request line",
            Self::NotUtf8 => "request line is not UTF-8",
            Self::Target => "request target",
            Self::Version => "protocol version",
            Self::HeaderLine => "header line",
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Caps on everything an attacker controls. Build with [`Limits::default`] and adjust fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most headers a request may carry (default 128).
    pub max_headers: usize,
    /// Longest header name (default 128 bytes).
    pub max_header_name_len: usize,
    /// Longest value of one signed header field (default 8 KiB).
    pub max_header_value_len: usize,
    /// Most names in `SignedHeaders` (default 64).
    pub max_signed_headers: usize,
    /// Longest raw path (default 8 KiB).
    pub max_path_len: usize,
    /// Longest raw query string (default 8 KiB).
    pub max_query_len: usize,
    /// Most query parameters (default 256).
    pub max_query_params: usize,
    /// Longest `Authorization` header value (default 8 KiB).
    pub max_authorization_len: usize,
    /// Longest canonical `x-keyward-nonce` value (default 256 bytes).
    pub max_nonce_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_headers: 128,
            max_header_name_len: 128,
            max_header_value_len: 8 * 1024,
            max_signed_headers: 64,
            max_path_len: 8 * 1024,
            max_query_len: 8 * 1024,
            max_query_params: 256,
            max_authorization_len: 8 * 1024,
            max_nonce_len: 256,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request view
// ---------------------------------------------------------------------------------------------

/// The body of a request: the bytes, or their SHA-256 computed by the caller (see
/// [`PayloadHasher`]). On a server the digest must be computed from the body received, never
/// taken from a header.
#[derive(Clone, Copy)]
pub enum Payload<'a> {
    /// The whole body.
    Bytes(&'a [u8]),
    /// SHA-256 of the whole body.
    Sha256([u8; 32]),
}

impl Payload<'_> {
    /// SHA-256 of the body.
    #[must_use]
    pub fn sha256(&self) -> [u8; 32] {
        match self {
            Self::Bytes(bytes) => {
                let mut hasher = PayloadHasher::new();
                hasher.update(bytes);
                hasher.finish()
            }
            Self::Sha256(digest) => *digest,
        }
    }
}

impl fmt::Debug for Payload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(bytes) => f.debug_struct("Bytes").field("len", &bytes.len()).finish(),
            Self::Sha256(digest) => f.debug_tuple("Sha256").field(&hex_lower(digest)).finish(),
        }
    }
}

/// Incremental SHA-256 of a body, for adapters that hash frames as they buffer them.
#[derive(Clone)]
pub struct PayloadHasher(digest::Context);

impl PayloadHasher {
    /// A hasher over no bytes yet.
    #[must_use]
    pub fn new() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }

    /// Feeds more body bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// SHA-256 of everything fed.
    #[must_use]
    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

impl Default for PayloadHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PayloadHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadHasher").finish_non_exhaustive()
    }
}

/// A borrowed view of an HTTP request, as much as SigV4 needs.
///
/// An adapter builds it from `http::request::Parts` without copying header data:
///
/// ```text
/// let headers: Vec<(&str, &[u8])> =
///     parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
/// let request = SignableRequest::new(
///     parts.method.as_str(), parts.uri.path(), parts.uri.query(), &headers, Payload::Bytes(&body));
/// ```
///
/// `path` and `query` must be the raw strings as received, still percent-encoded. Under HTTP/2
/// the `host` must be added from the `:authority` pseudo-header, which `HeaderMap` does not hold.
#[derive(Clone, Copy)]
pub struct SignableRequest<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a [(&'a str, &'a [u8])],
    payload: Payload<'a>,
}

impl<'a> SignableRequest<'a> {
    /// A view of a request. Nothing is checked until it is signed or verified.
    #[must_use]
    pub fn new(
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a [(&'a str, &'a [u8])],
        payload: Payload<'a>,
    ) -> Self {
        Self {
            method,
            path,
            query,
            headers,
            payload,
        }
    }

    /// The method, as given.
    #[must_use]
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The raw path, as given.
    #[must_use]
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The raw query string, without `?`, as given.
    #[must_use]
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// All headers, in order, names as given.
    #[must_use]
    pub fn headers(&self) -> &'a [(&'a str, &'a [u8])] {
        self.headers
    }

    /// The body.
    #[must_use]
    pub fn payload(&self) -> Payload<'a> {
        self.payload
    }

    /// Values of every header named `name` (ASCII case-insensitive), in order.
    pub fn header_values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The value of the `Authorization` header, if there is exactly one.
    ///
    /// # Errors
    ///
    /// [`SignatureError::MalformedAuthorization`] with [`AuthorizationFault::Multiple`] when
    /// the request carries more than one.
    pub fn authorization_value(&self) -> Result<Option<&'a [u8]>, SignatureError> {
        let mut values = self.header_values(HEADER_AUTHORIZATION);
        let first = values.next();
        if values.next().is_some() {
            return Err(SignatureError::MalformedAuthorization(
                AuthorizationFault::Multiple,
            ));
        }
        Ok(first)
    }
}

impl fmt::Debug for SignableRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may hold credentials: names only.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("SignableRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("header_names", &names)
            .field("payload", &self.payload)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical request
// ---------------------------------------------------------------------------------------------

/// The SigV4 canonical request of `request` over `signed_headers`:
///
/// ```text
/// METHOD \n canonical-uri \n canonical-query \n canonical-headers \n signed-headers \n hex(sha256(body))
/// ```
///
/// `signed_headers` must be lower-case header names, strictly ascending, as in the
/// `SignedHeaders` component of an `Authorization` header.
///
/// # Errors
///
/// [`SignatureError::TooLarge`] when an input exceeds `limits`; [`SignatureError::MalformedMethod`],
/// [`SignatureError::MalformedPath`], [`SignatureError::MalformedQuery`];
/// [`SignatureError::MalformedAuthorization`] with [`AuthorizationFault::SignedHeaders`] when
/// `signed_headers` is not a valid list; [`SignatureError::SignedHeaderAbsent`] and
/// [`SignatureError::MalformedHeaderValue`] for a signed header that is missing or not UTF-8.
pub fn canonical_request(
    request: &SignableRequest<'_>,
    signed_headers: &[String],
    limits: &Limits,
) -> Result<String, SignatureError> {
    check_signed_header_list(signed_headers.iter().map(String::as_str), limits)?;
    let payload_hash = hex_lower(&request.payload.sha256());
    build_canonical_request(
        request,
        request.headers,
        signed_headers,
        &payload_hash,
        limits,
    )
}

fn build_canonical_request(
    request: &SignableRequest<'_>,
    headers: &[(&str, &[u8])],
    signed_headers: &[String],
    payload_hash_hex: &str,
    limits: &Limits,
) -> Result<String, SignatureError> {
    if headers.len() > limits.max_headers {
        return Err(SignatureError::TooLarge(Limit::Headers));
    }
    check_method(request.method)?;
    let mut out = String::with_capacity(256 + request.path.len());
    out.push_str(request.method);
    out.push('\n');
    push_canonical_uri(&mut out, request.path, limits)?;
    out.push('\n');
    push_canonical_query(&mut out, request.query, limits)?;
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        push_header_value(&mut out, headers, name, limits)?;
        out.push('\n');
    }
    out.push('\n');
    push_joined(&mut out, signed_headers, ';');
    out.push('\n');
    out.push_str(payload_hash_hex);
    Ok(out)
}

fn check_method(method: &str) -> Result<(), SignatureError> {
    if method.len() > MAX_METHOD_LEN {
        return Err(SignatureError::TooLarge(Limit::Method));
    }
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(SignatureError::MalformedMethod);
    }
    Ok(())
}

fn push_canonical_uri(out: &mut String, path: &str, limits: &Limits) -> Result<(), SignatureError> {
    if path.len() > limits.max_path_len {
        return Err(SignatureError::TooLarge(Limit::Path));
    }
    if !path.starts_with('/') {
        return Err(SignatureError::MalformedPath);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    out.push('/');
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(percent_encode(segment.as_bytes(), ENCODE_SET));
    }
    if !segments.is_empty() && path.ends_with('/') {
        out.push('/');
    }
    Ok(())
}

fn push_canonical_query(
    out: &mut String,
    query: Option<&str>,
    limits: &Limits,
) -> Result<(), SignatureError> {
    let Some(query) = query else { return Ok(()) };
    if query.len() > limits.max_query_len {
        return Err(SignatureError::TooLarge(Limit::Query));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        if pairs.len() == limits.max_query_params {
            return Err(SignatureError::TooLarge(Limit::QueryParameters));
        }
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        pairs.push((
            reencode_query_component(name)?,
            reencode_query_component(value)?,
        ));
    }
    pairs.sort_unstable();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    Ok(())
}

/// Percent-decodes (`+` is a space) and re-encodes with the strict RFC 3986 set.
fn reencode_query_component(raw: &str) -> Result<String, SignatureError> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(SignatureError::MalformedQuery);
                };
                decoded.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            other => {
                decoded.push(other);
                i += 1;
            }
        }
    }
    Ok(percent_encode(&decoded, ENCODE_SET).collect())
}

/// Appends the canonical value of header `name`: all fields, trimmed, inner whitespace runs
/// collapsed, joined with `,`.
fn push_header_value(
    out: &mut String,
    headers: &[(&str, &[u8])],
    name: &str,
    limits: &Limits,
) -> Result<(), SignatureError> {
    let mut found = false;
    for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
        if value.len() > limits.max_header_value_len {
            return Err(SignatureError::TooLarge(Limit::HeaderValue));
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| SignatureError::MalformedHeaderValue(name.to_owned()))?;
        if found {
            out.push(',');
        }
        found = true;
        push_collapsed(out, value);
    }
    if found {
        Ok(())
    } else {
        Err(SignatureError::SignedHeaderAbsent(name.to_owned()))
    }
}

fn push_collapsed(out: &mut String, value: &str) {
    let words = value.split([' ', '\t', '\r', '\n', '\x0b', '\x0c']);
    for (i, word) in words.filter(|w| !w.is_empty()).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The canonical (trimmed, collapsed, joined) value of a header, if present and UTF-8.
fn canonical_header_value(
    headers: &[(&str, &[u8])],
    name: &str,
    limits: &Limits,
) -> Result<Option<String>, SignatureError> {
    let mut value = String::new();
    match push_header_value(&mut value, headers, name, limits) {
        Ok(()) => Ok(Some(value)),
        Err(SignatureError::SignedHeaderAbsent(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

fn push_joined(out: &mut String, items: &[String], sep: char) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push_str(item);
    }
}

fn check_signed_header_list<'a>(
    names: impl Iterator<Item = &'a str>,
    limits: &Limits,
) -> Result<(), SignatureError> {
    let bad = SignatureError::MalformedAuthorization(AuthorizationFault::SignedHeaders);
    let mut previous: Option<&str> = None;
    let mut count = 0usize;
    for name in names {
        count += 1;
        if count > limits.max_signed_headers {
            return Err(SignatureError::TooLarge(Limit::SignedHeaders));
        }
        if name.len() > limits.max_header_name_len {
            return Err(SignatureError::TooLarge(Limit::HeaderName));
        }
        let lower_token =
            !name.is_empty() && name.bytes().all(|b| is_tchar(b) && !b.is_ascii_uppercase());
        if !lower_token || previous.is_some_and(|p| p >= name) {
            return Err(bad);
        }
        previous = Some(name);
    }
    if count == 0 {
        return Err(bad);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

/// Parses the SigV4 basic ISO 8601 timestamp `YYYYMMDD'T'HHMMSS'Z'` (e.g. `20150830T123600Z`).
///
/// # Errors
///
/// [`SignatureError::MalformedDate`] for anything else, including impossible dates and leap
/// seconds.
pub fn parse_amz_date(value: &[u8]) -> Result<DateTime<Utc>, SignatureError> {
    let bad = SignatureError::MalformedDate;
    let [
        y0,
        y1,
        y2,
        y3,
        mo0,
        mo1,
        d0,
        d1,
        b'T',
        h0,
        h1,
        mi0,
        mi1,
        s0,
        s1,
        b'Z',
    ] = *value
    else {
        return Err(bad);
    };
    let year = digits(&[y0, y1, y2, y3]).ok_or(bad.clone())?;
    let month = digits(&[mo0, mo1]).ok_or(bad.clone())?;
    let day = digits(&[d0, d1]).ok_or(bad.clone())?;
    let hour = digits(&[h0, h1]).ok_or(bad.clone())?;
    let minute = digits(&[mi0, mi1]).ok_or(bad.clone())?;
    let second = digits(&[s0, s1]).ok_or(bad.clone())?;
    utc(year, month, day, hour, minute, second).ok_or(bad)
}

/// Formats `timestamp` (truncated to the second) as `YYYYMMDD'T'HHMMSS'Z'`.
///
/// # Errors
///
/// [`SignatureError::TimestampOutOfRange`] when the year is outside 0..=9999.
pub fn format_amz_date(timestamp: DateTime<Utc>) -> Result<String, SignatureError> {
    let year = timestamp.year();
    if !(0..=9999).contains(&year) {
        return Err(SignatureError::TimestampOutOfRange);
    }
    Ok(format!(
        "{year:04}{:02}{:02}T{:02}{:02}{:02}Z",
        timestamp.month(),
        timestamp.day(),
        timestamp.hour(),
        timestamp.minute(),
        timestamp.second()
    ))
}

/// Parses a `date` header: the SigV4 basic format, or an RFC 9110 IMF-fixdate
/// (`Sun, 30 Aug 2015 12:36:00 GMT`).
fn parse_date_header(value: &[u8]) -> Result<DateTime<Utc>, SignatureError> {
    if value.len() == 16 {
        return parse_amz_date(value);
    }
    let bad = SignatureError::MalformedDate;
    let [
        w0,
        w1,
        w2,
        b',',
        b' ',
        d0,
        d1,
        b' ',
        m0,
        m1,
        m2,
        b' ',
        y0,
        y1,
        y2,
        y3,
        b' ',
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
        b' ',
        b'G',
        b'M',
        b'T',
    ] = *value
    else {
        return Err(bad);
    };
    const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let weekday = WEEKDAYS
        .iter()
        .position(|w| **w == [w0, w1, w2])
        .ok_or(bad.clone())?;
    let month = MONTHS
        .iter()
        .position(|m| **m == [m0, m1, m2])
        .ok_or(bad.clone())?;
    let month = u32::try_from(month + 1).map_err(|_| bad.clone())?;
    let day = digits(&[d0, d1]).ok_or(bad.clone())?;
    let year = digits(&[y0, y1, y2, y3]).ok_or(bad.clone())?;
    let hour = digits(&[h0, h1]).ok_or(bad.clone())?;
    let minute = digits(&[mi0, mi1]).ok_or(bad.clone())?;
    let second = digits(&[s0, s1]).ok_or(bad.clone())?;
    let time = utc(year, month, day, hour, minute, second).ok_or(bad.clone())?;
    if time.weekday().num_days_from_monday() as usize != weekday {
        return Err(bad);
    }
    Ok(time)
}

fn utc(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<DateTime<Utc>> {
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let naive = date.and_hms_opt(hour, minute, second)?;
    Some(Utc.from_utc_datetime(&naive))
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn is_scope_date(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 8
        && matches!(
            (digits(bytes.get(0..4).unwrap_or_default()), digits(bytes.get(4..6).unwrap_or_default()), digits(bytes.get(6..8).unwrap_or_default())),
            (Some(y), Some(m), Some(d)) if i32::try_from(y).ok().and_then(|y| NaiveDate::from_ymd_opt(y, m, d)).is_some()
        )
}

// ---------------------------------------------------------------------------------------------
// Keys and signatures
// ---------------------------------------------------------------------------------------------

/// A SigV4 access key id and secret (for keyward: the `key_id` and the raw API key), with an
/// optional STS session token for use with other SigV4 services. `Debug` redacts the secret.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    access_key_id: &'a str,
    secret: &'a [u8],
    session_token: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// Credentials for `access_key_id` and `secret`.
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

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
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
fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hash = digest::digest(&digest::SHA256, canonical_request.as_bytes());
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex_lower(hash.as_ref())
    )
}

// ---------------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------------

/// Signs requests for one region and service (the client side).
///
/// It signs every header of the request except `Authorization` (pass only those you send;
/// `host` is required), and sets `X-Amz-Date` — and, if enabled, `X-Amz-Content-Sha256` — itself.
#[derive(Debug, Clone)]
pub struct Signer {
    region: String,
    service: String,
    content_sha256_header: bool,
    limits: Limits,
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
        credentials: &Credentials<'_>,
        request: &SignableRequest<'_>,
        timestamp: DateTime<Utc>,
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
    authorization: String,
    amz_date: String,
    content_sha256: Option<String>,
    session_token: Option<String>,
    canonical_request: String,
    string_to_sign: String,
    signature: [u8; 32],
    signed_headers: Vec<String>,
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

// ---------------------------------------------------------------------------------------------
// Authorization header
// ---------------------------------------------------------------------------------------------

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
///
/// Components may come in any order, separated by `,` with optional spaces or tabs; each must
/// appear exactly once. `Display` writes the canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: [u8; 32],
}

impl Authorization {
    /// Whether `value` announces the SigV4 scheme (starts with `AWS4-HMAC-SHA256` and a space),
    /// so that an adapter can tell it from `Bearer`.
    #[must_use]
    pub fn is_sigv4(value: &[u8]) -> bool {
        value
            .strip_prefix(ALGORITHM.as_bytes())
            .is_some_and(|rest| matches!(rest.first(), Some(b' ' | b'\t')))
    }

    /// Parses a header value with the default [`Limits`].
    ///
    /// # Errors
    ///
    /// As [`Authorization::parse_with_limits`].
    pub fn parse(value: &[u8]) -> Result<Self, SignatureError> {
        Self::parse_with_limits(value, &Limits::default())
    }

    /// Parses a header value. Total: any bytes give a value or a typed error, in linear time.
    ///
    /// # Errors
    ///
    /// [`SignatureError::TooLarge`] past [`Limits::max_authorization_len`] or
    /// [`Limits::max_signed_headers`]; [`SignatureError::UnsupportedAlgorithm`] for another
    /// scheme; [`SignatureError::MalformedAuthorization`] for anything malformed.
    pub fn parse_with_limits(value: &[u8], limits: &Limits) -> Result<Self, SignatureError> {
        use AuthorizationFault as F;
        let malformed = SignatureError::MalformedAuthorization;
        if value.len() > limits.max_authorization_len {
            return Err(SignatureError::TooLarge(Limit::Authorization));
        }
        let value = std::str::from_utf8(value).map_err(|_| malformed(F::Syntax))?;
        if !value
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
        {
            return Err(malformed(F::Syntax));
        }
        let value = value.trim_matches(is_ows);
        let (algorithm, rest) = value.split_once(is_ows).unwrap_or((value, ""));
        if algorithm != ALGORITHM {
            return Err(SignatureError::UnsupportedAlgorithm);
        }

        let (mut credential, mut signed, mut signature) = (None, None, None);
        for component in rest.split(',') {
            let component = component.trim_matches(is_ows);
            let (name, val) = component.split_once('=').ok_or(malformed(F::Syntax))?;
            let slot = match name {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ if name.is_empty() => return Err(malformed(F::Syntax)),
                _ => return Err(malformed(F::UnknownComponent)),
            };
            if slot.replace(val).is_some() {
                return Err(malformed(F::DuplicateComponent));
            }
        }
        let credential = credential.ok_or(malformed(F::MissingCredential))?;
        let signed = signed.ok_or(malformed(F::MissingSignedHeaders))?;
        let signature = signature.ok_or(malformed(F::MissingSignature))?;

        let mut parts = credential.split('/');
        let (Some(akid), Some(date), Some(region), Some(service), Some(terminator), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed(F::Credential));
        };
        if !is_access_key_id(akid)
            || !is_scope_date(date)
            || !is_scope_name(region)
            || !is_scope_name(service)
            || terminator != SCOPE_TERMINATOR
        {
            return Err(malformed(F::Credential));
        }

        check_signed_header_list(signed.split(';'), limits)?;
        let signature = decode_hex32(signature).ok_or(malformed(F::Signature))?;

        Ok(Self {
            access_key_id: akid.to_owned(),
            scope_date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers: signed.split(';').map(str::to_owned).collect(),
            signature,
        })
    }

    /// The access key id: for keyward, the `key_id` to look the secret up by.
    #[must_use]
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The scope date, `YYYYMMDD`.
    #[must_use]
    pub fn scope_date(&self) -> &str {
        &self.scope_date
    }

    /// The scope region.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The scope service.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The signed header names, lower-case and strictly ascending.
    #[must_use]
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// The raw signature.
    #[must_use]
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }

    fn is_signed(&self, name: &str) -> bool {
        self.signed_headers
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }
}

impl FromStr for Authorization {
    type Err = SignatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ALGORITHM} Credential={}/{}/{}/{}/{SCOPE_TERMINATOR}, SignedHeaders={}, Signature={}",
            self.access_key_id,
            self.scope_date,
            self.region,
            self.service,
            self.signed_headers.join(";"),
            hex_lower(&self.signature)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------------------------

/// What a server expects of signed requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    region: String,
    service: String,
    max_skew: Duration,
    limits: Limits,
}

impl VerifyOptions {
    /// Expect `region` and `service` in the credential scope, with a skew window of
    /// [`DEFAULT_MAX_SKEW`] and default [`Limits`].
    ///
    /// # Errors
    ///
    /// As [`Signer::new`].
    pub fn new(region: &str, service: &str) -> Result<Self, SignatureError> {
        check_scope_names(region, service)?;
        Ok(Self {
            region: region.to_owned(),
            service: service.to_owned(),
            max_skew: DEFAULT_MAX_SKEW,
            limits: Limits::default(),
        })
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

    /// The expected region.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The expected service.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The skew window.
    #[must_use]
    pub fn max_skew(&self) -> Duration {
        self.max_skew
    }

    /// The limits applied.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How long a replay key must be remembered: twice the skew window (a request is accepted
    /// from `max_skew` before to `max_skew` after its date), saturating.
    #[must_use]
    pub fn replay_ttl(&self) -> Duration {
        self.max_skew.saturating_mul(2)
    }
}

impl Default for VerifyOptions {
    /// `us-east-1`, `keyward`, 300 s, default limits.
    fn default() -> Self {
        Self {
            region: DEFAULT_REGION.to_owned(),
            service: DEFAULT_SERVICE.to_owned(),
            max_skew: DEFAULT_MAX_SKEW,
            limits: Limits::default(),
        }
    }
}

/// A request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    access_key_id: String,
    signed_headers: Vec<String>,
    signature: [u8; 32],
    nonce: Option<String>,
    timestamp: DateTime<Utc>,
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
    pub fn timestamp(&self) -> DateTime<Utc> {
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
    options: &VerifyOptions,
    now: DateTime<Utc>,
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
    let max_skew = TimeDelta::from_std(options.max_skew).unwrap_or(TimeDelta::MAX);
    let offset = timestamp.signed_duration_since(now);
    if offset > max_skew || offset < -max_skew {
        return Err(SignatureError::Expired {
            offset_seconds: offset.num_seconds(),
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

fn check_content_sha256(value: &[u8], payload_sha256: &[u8; 32]) -> Result<(), SignatureError> {
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

// ---------------------------------------------------------------------------------------------
// Raw HTTP requests (the `.req` format)
// ---------------------------------------------------------------------------------------------

/// A raw HTTP/1.1 request, as parsed by [`parse_http_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHttpRequest {
    method: String,
    path: String,
    query: Option<String>,
    version: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl ParsedHttpRequest {
    /// The method.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The raw path (before `?`).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string (after `?`), if the target has a `?`.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The protocol version, e.g. `HTTP/1.1`.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The headers in order, names as written, values trimmed, folded lines joined by a space.
    #[must_use]
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The body: every byte after the blank line that ends the headers.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The headers as borrowed pairs, for [`SignableRequest::new`].
    #[must_use]
    pub fn header_pairs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }

    /// The request written back, with `set` headers replacing fields of the same name in place
    /// (only the first of several) or appended in order, for `keyward sign`. Lines end in
    /// CRLF; a blank line and the body follow the headers.
    #[must_use]
    pub fn to_bytes_with(&self, set: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.path.as_bytes());
        if let Some(query) = &self.query {
            out.push(b'?');
            out.extend_from_slice(query.as_bytes());
        }
        out.push(b' ');
        out.extend_from_slice(self.version.as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut done = vec![false; set.len()];
        for (name, value) in &self.headers {
            let replacement = set.iter().position(|(n, _)| n.eq_ignore_ascii_case(name));
            match replacement {
                Some(i) if done.get(i).copied().unwrap_or(true) => continue,
                Some(i) => {
                    if let (Some(flag), Some((n, v))) = (done.get_mut(i), set.get(i)) {
                        *flag = true;
                        push_header_line(&mut out, n, v.as_bytes());
                    }
                }
                None => push_header_line(&mut out, name, value),
            }
        }
        for ((name, value), done) in set.iter().zip(&done) {
            if !done {
                push_header_line(&mut out, name, value.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

fn push_header_line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Parses a raw HTTP/1.1 request: request line, header lines, a blank line, then the body
/// (the `.req` format of the AWS SigV4 test suite, and the input of `keyward sign`).
///
/// Lines end in LF or CRLF. The request target may contain spaces (the method ends at the first
/// space, the version starts after the last) and must be in origin form. A line starting with a
/// space or tab continues the previous header (obsolete folding; the fold becomes one space).
/// Header values are trimmed. The end of input may also end the headers. The body is taken
/// verbatim: no `Content-Length` or chunked decoding.
///
/// # Errors
///
/// [`SignatureError::TooLarge`] past [`MAX_HTTP_REQUEST_LEN`] or the default [`Limits`] on
/// header count, name and value length; [`SignatureError::MalformedHttpRequest`],
/// [`SignatureError::MalformedMethod`] or [`SignatureError::MalformedHeaderName`] for malformed
/// input.
pub fn parse_http_request(input: &[u8]) -> Result<ParsedHttpRequest, SignatureError> {
    use HttpRequestFault as F;
    let malformed = SignatureError::MalformedHttpRequest;
    let limits = Limits::default();
    if input.len() > MAX_HTTP_REQUEST_LEN {
        return Err(SignatureError::TooLarge(Limit::HttpRequest));
    }
    let mut rest = input;
    let mut next_line = || -> Option<&[u8]> {
        if rest.is_empty() {
            return None;
        }
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i + 1..).unwrap_or_default(),
            ),
            None => (rest, &[][..]),
        };
        rest = tail;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    };

    let request_line = next_line().ok_or(malformed(F::RequestLine))?;
    let request_line = std::str::from_utf8(request_line).map_err(|_| malformed(F::NotUtf8))?;
    let (method, rest_of_line) = request_line
        .split_once(' ')
        .ok_or(malformed(F::RequestLine))?;
    let (target, version) = rest_of_line
        .rsplit_once(' ')
        .ok_or(malformed(F::RequestLine))?;
    check_method(method)?;
    let version_ok = version
        .strip_prefix("HTTP/")
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    if !version_ok {
        return Err(malformed(F::Version));
    }
    if !target.starts_with('/') {
        return Err(malformed(F::Target));
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };

    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(line) = next_line() {
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            let (_, value) = headers.last_mut().ok_or(malformed(F::HeaderLine))?;
            value.push(b' ');
            value.extend_from_slice(trim_ows(line));
            if value.len() > limits.max_header_value_len {
                return Err(SignatureError::TooLarge(Limit::HeaderValue));
            }
            continue;
        }
        if headers.len() == limits.max_headers {
            return Err(SignatureError::TooLarge(Limit::Headers));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(malformed(F::HeaderLine))?;
        let name = line.get(..colon).unwrap_or_default();
        let value = trim_ows(line.get(colon + 1..).unwrap_or_default());
        if name.len() > limits.max_header_name_len {
            return Err(SignatureError::TooLarge(Limit::HeaderName));
        }
        if value.len() > limits.max_header_value_len {
            return Err(SignatureError::TooLarge(Limit::HeaderValue));
        }
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return Err(SignatureError::MalformedHeaderName);
        }
        let name = std::str::from_utf8(name).map_err(|_| SignatureError::MalformedHeaderName)?;
        headers.push((name.to_owned(), value.to_vec()));
    }
    let body = rest.to_vec();

    Ok(ParsedHttpRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        version: version.to_owned(),
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

fn is_access_key_id(value: &str) -> bool {
    (1..=MAX_ACCESS_KEY_ID_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn is_scope_name(value: &str) -> bool {
    (1..=MAX_SCOPE_PART_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn check_scope_names(region: &str, service: &str) -> Result<(), SignatureError> {
    if !is_scope_name(region) {
        return Err(SignatureError::InvalidRegion);
    }
    if !is_scope_name(service) {
        return Err(SignatureError::InvalidService);
    }
    Ok(())
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Exactly 64 lower-case hex digits.
fn decode_hex32(value: &str) -> Option<[u8; 32]> {
    let bytes = value.as_bytes();
    if bytes.len() != 64 || bytes.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = *pair else { return None };
        *o = hex_value(hi)? << 4 | hex_value(lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_amz_date(s.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn amz_date_round_trip_and_rejects() {
        let t = at("20150830T123600Z");
        assert_eq!(format_amz_date(t).as_deref(), Ok("20150830T123600Z"));
        for bad in [
            "20150830T123600",
            "20150830t123600Z",
            "20150230T123600Z",
            "20150830T126000Z",
            "20150830T235960Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "",
        ] {
            assert_eq!(
                parse_amz_date(bad.as_bytes()),
                Err(SignatureError::MalformedDate),
                "{bad}"
            );
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_date_header(b"Sun, 30 Aug 2015 12:36:00 GMT"),
            Ok(at("20150830T123600Z"))
        );
        assert_eq!(
            parse_date_header(b"20150830T123600Z"),
            Ok(at("20150830T123600Z"))
        );
        // Wrong weekday.
        assert_eq!(
            parse_date_header(b"Mon, 30 Aug 2015 12:36:00 GMT"),
            Err(SignatureError::MalformedDate)
        );
        assert_eq!(
            parse_date_header(b"Sun, 30 Aug 2015 12:36:00 UTC"),
            Err(SignatureError::MalformedDate)
        );
    }

    #[test]
    fn uri_normalization() {
        let limits = Limits::default();
        let uri = |p: &str| {
            let mut out = String::new();
            push_canonical_uri(&mut out, p, &limits).map(|()| out)
        };
        assert_eq!(uri("/").as_deref(), Ok("/"));
        assert_eq!(uri("//").as_deref(), Ok("/"));
        assert_eq!(uri("//example//").as_deref(), Ok("/example/"));
        assert_eq!(uri("/example1/example2/../..").as_deref(), Ok("/"));
        assert_eq!(uri("/../../a").as_deref(), Ok("/a"));
        assert_eq!(uri("/./example").as_deref(), Ok("/example"));
        assert_eq!(uri("/a%20b/c").as_deref(), Ok("/a%2520b/c"));
        assert_eq!(uri("/%2E%2E/x").as_deref(), Ok("/%252E%252E/x"));
        assert_eq!(uri("/a b/$").as_deref(), Ok("/a%20b/%24"));
        assert_eq!(uri("a"), Err(SignatureError::MalformedPath));
        assert_eq!(uri(""), Err(SignatureError::MalformedPath));
        assert_eq!(uri("*"), Err(SignatureError::MalformedPath));
    }

    #[test]
    fn query_canonicalization() {
        let limits = Limits::default();
        let q = |s: &str| {
            let mut out = String::new();
            push_canonical_query(&mut out, Some(s), &limits).map(|()| out)
        };
        assert_eq!(q("b=2&a=1").as_deref(), Ok("a=1&b=2"));
        assert_eq!(q("a=2&a=1&A=3").as_deref(), Ok("A=3&a=1&a=2"));
        assert_eq!(q("flag&x=").as_deref(), Ok("flag=&x="));
        assert_eq!(q("a=b+c%20d%2be").as_deref(), Ok("a=b%20c%20d%2Be"));
        assert_eq!(q("a=x=y&&").as_deref(), Ok("a=x%3Dy"));
        assert_eq!(q("k=%e1%88%b4").as_deref(), Ok("k=%E1%88%B4"));
        assert_eq!(q("a=%zz"), Err(SignatureError::MalformedQuery));
        assert_eq!(q("a=%4"), Err(SignatureError::MalformedQuery));
        assert_eq!(q("a=%"), Err(SignatureError::MalformedQuery));
        assert_eq!(q("").as_deref(), Ok(""));
    }

    #[test]
    fn header_collapse() {
        let mut out = String::new();
        push_collapsed(&mut out, "  a \t  b   c ");
        assert_eq!(out, "a b c");
    }

    #[test]
    fn signing_key_matches_aws_documentation() {
        // AWS General Reference, "Examples of how to derive a signing key for Signature Version 4":
        // secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
        let key = SigningKey::derive(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        // The documented kSigning is f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d;
        // a key signs as HMAC under those bytes.
        let expected_key = hmac::Key::new(
            hmac::HMAC_SHA256,
            &[
                0xf4, 0x78, 0x0e, 0x2d, 0x9f, 0x65, 0xfa, 0x89, 0x5f, 0x9c, 0x67, 0xb3, 0x2c, 0xe1,
                0xba, 0xf0, 0xb0, 0xd8, 0xa4, 0x35, 0x05, 0xa0, 0x00, 0xa1, 0xa9, 0xe0, 0x90, 0xd4,
                0x14, 0xdb, 0x40, 0x4d,
            ],
        );
        let expected = hmac::sign(&expected_key, b"probe");
        assert_eq!(key.sign("probe").as_slice(), expected.as_ref());
    }

    #[test]
    fn hex_decoding_is_strict() {
        let good = "a".repeat(64);
        assert!(decode_hex32(&good).is_some());
        assert!(decode_hex32(&"A".repeat(64)).is_none());
        assert!(decode_hex32(&"g".repeat(64)).is_none());
        assert!(decode_hex32(&"a".repeat(63)).is_none());
    }
}
