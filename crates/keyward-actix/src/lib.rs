#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod credentials;
pub mod extract;
pub mod middleware;
pub mod rejection;
pub mod routes;
pub mod scopes;
mod signed;

#[doc(inline)]
pub use crate::credentials::CredentialHeaders;
#[doc(inline)]
pub use crate::extract::Authenticated;
#[doc(inline)]
pub use crate::middleware::KeywardAuth;
#[doc(inline)]
pub use crate::rejection::Rejection;
#[doc(inline)]
pub use crate::routes::{
    AdminCheck, ManagementConfig, OwnerResolver, json_config, management_routes,
};
#[cfg(feature = "openapi")]
#[doc(inline)]
pub use crate::routes::{openapi_document, openapi_route};
#[doc(inline)]
pub use crate::scopes::RequireScopes;
#[doc(inline)]
/// The background task that flushes batched usage and retries cache invalidations (keyward-core's).
pub use keyward_core::maintenance::spawn_usage_flusher;
