//! The errors of signing and verification, and what each refers to.

use super::*;

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

/// Which limit of [`Limits`] was exceeded.
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
