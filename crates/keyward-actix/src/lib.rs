#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod extract;
pub mod head;
pub mod middleware;
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
    middleware::KeywardAuth,
    rejection::{Rejection, error, respond},
    routes::{ManagementConfig, ManagementOptions, json_config, management_routes},
    scopes::RequireScopes,
};
#[doc(inline)]
/// The background task that flushes batched usage and retries cache invalidations (keyward-core's).
pub use keyward_core::maintenance::spawn_usage_flusher;
#[doc(inline)]
pub use keyward_http::{CredentialHeaders, Gate};
