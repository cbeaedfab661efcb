//! The caps on every attacker-controlled length and count.

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
