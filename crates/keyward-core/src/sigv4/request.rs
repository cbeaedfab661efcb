//! The borrowed view of a request that signing and verification read, and its payload.

use super::*;

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
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) query: Option<&'a str>,
    pub(super) headers: &'a [(&'a str, &'a [u8])],
    pub(super) payload: Payload<'a>,
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
