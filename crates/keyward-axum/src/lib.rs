#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod extract;
pub mod layer;
pub mod rejection;
pub mod routes;
pub mod scopes;
pub mod signed;

#[doc(inline)]
pub use crate::extract::Authenticated;
#[doc(inline)]
pub use crate::layer::{CredentialHeaders, KeywardLayer};
#[doc(inline)]
pub use crate::rejection::Rejection;
#[doc(inline)]
pub use crate::routes::{AdminCheck, ManagementConfig, OwnerResolver, management_routes};
#[cfg(feature = "openapi")]
#[doc(inline)]
pub use crate::routes::{openapi_document, openapi_route};
#[doc(inline)]
pub use crate::scopes::RequireScopes;
#[doc(inline)]
/// The background task that flushes batched usage and retries cache invalidations (keyward-core's).
pub use keyward_core::maintenance::spawn_usage_flusher;
