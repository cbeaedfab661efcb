#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod extract;
pub mod head;
pub mod layer;
pub mod rejection;
pub mod routes;
pub mod scopes;

#[cfg(feature = "openapi")]
#[doc(inline)]
pub use crate::routes::openapi_route;
#[doc(inline)]
pub use crate::{
    extract::Authenticated,
    head::Head,
    layer::KeywardLayer,
    rejection::{Rejection, respond},
    routes::{ManagementConfig, ManagementOptions, management_routes},
    scopes::RequireScopes,
};
#[doc(inline)]
/// The background task that flushes batched usage and retries cache invalidations (keyward-core's).
pub use keyward_core::maintenance::spawn_usage_flusher;
#[doc(inline)]
pub use keyward_http::{CredentialHeaders, Gate};
