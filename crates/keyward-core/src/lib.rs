#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod analytics;
pub mod audit;
pub mod authz;
pub mod cache;
pub mod clock;
pub mod crypto;
pub mod digest;
pub mod engine;
pub mod error;
mod integral;
pub mod key;
pub mod maintenance;
pub mod management;
pub mod memory;
pub mod model;
mod rfc3339;
mod rotation;
#[cfg(feature = "openapi")]
pub mod schemas;
pub mod scope;
mod service;
pub mod sigv4;
pub mod store;
pub mod throttle;
pub mod webhook;

#[doc(inline)]
pub use crate::authz::Actor;
#[doc(inline)]
pub use crate::cache::CacheConfig;
#[doc(inline)]
pub use crate::digest::{Keyring, Pepper};
#[doc(inline)]
pub use crate::engine::{Keyward, KeywardBuilder, VerifyContext, VerifyError};
#[doc(inline)]
pub use crate::error::ErrorCode;
#[doc(inline)]
pub use crate::key::{ApiKey, KeyFormat, KeyId};
#[doc(inline)]
pub use crate::management::{CreateKeyRequest, CreatedKey, KeyQuery, ServiceError};
#[doc(inline)]
pub use crate::model::{KeyRecord, KeyView, Policy, Principal};
#[doc(inline)]
pub use crate::scope::{Scope, ScopeRequirement, ScopeSet};
#[doc(inline)]
pub use crate::store::{KeyStore, StoreError};
