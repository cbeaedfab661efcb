//! Which headers carry credentials, read with the framework-neutral rules of
//! [`keyward_core::credentials`] (so this adapter and the axum one agree byte for byte):
//! `Authorization: Bearer <key>` with the scheme matched case-insensitively, `X-API-Key: <key>`,
//! Authorization wins when both carry a key, a bearer token that is not a keyward key (a JWT)
//! falls through, non-UTF-8 or blank values are invalid.

use actix_web::http::header::{self, HeaderMap, HeaderName};
use keyward_core::Keyward;
#[doc(inline)]
pub use keyward_core::credentials::{Credential, InvalidCredential};

/// The default name of the API-key header.
pub const DEFAULT_API_KEY_HEADER: HeaderName =
    HeaderName::from_static(keyward_core::credentials::API_KEY_HEADER);

/// Which headers carry credentials. Defaults: `Authorization` and `X-API-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHeaders {
    /// The header read for `Bearer <key>` (and SigV4 signatures).
    pub authorization: HeaderName,
    /// The header whose whole value is a key.
    pub api_key: HeaderName,
}

impl Default for CredentialHeaders {
    fn default() -> Self {
        Self {
            authorization: header::AUTHORIZATION,
            api_key: DEFAULT_API_KEY_HEADER,
        }
    }
}

impl CredentialHeaders {
    /// What `headers` present to `keyward`. Only the first value of each header is read.
    #[must_use]
    pub fn extract<'a>(&self, keyward: &Keyward, headers: &'a HeaderMap) -> Credential<'a> {
        keyward_core::credentials::extract(
            &keyward.policy().format,
            headers
                .get(&self.authorization)
                .map(header::HeaderValue::as_bytes),
            headers
                .get(&self.api_key)
                .map(header::HeaderValue::as_bytes),
        )
    }

    /// Marks every value of the credential headers sensitive, so that `Debug` output and loggers
    /// that honour the flag never show them.
    pub fn mark_sensitive(&self, headers: &mut HeaderMap) {
        for name in [&self.authorization, &self.api_key] {
            if headers.get_all(name).len() > 1 {
                // actix's map has no `get_all_mut`: take every value out and put it back marked.
                let values: Vec<_> = headers.get_all(name).cloned().collect();
                headers.remove(name);
                for mut v in values {
                    v.set_sensitive(true);
                    headers.append(name.clone(), v);
                }
            } else if let Some(v) = headers.get_mut(name) {
                v.set_sensitive(true);
            }
        }
    }
}
