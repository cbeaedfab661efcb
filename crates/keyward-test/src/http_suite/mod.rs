//! One black-box HTTP suite, written once and run over real sockets against every web adapter
//! (axum, actix-web) and every store: DESIGN.md §6 row by row.
//!
//! # The test app contract
//!
//! Each adapter's test builds an app over the [`Keyward`] the suite hands it (see
//! [`suite_keyward`] for its policy), binds it to `127.0.0.1:0` with the peer address available
//! for IP allowlists, serves it in the background and returns the bound address. The app must
//! expose exactly:
//!
//! | route | behaviour |
//! | --- | --- |
//! | management routes under `/api-keys` | the adapter's management routes, default prefix and body limit (64 KiB); the owner resolver reads header `x-test-owner` (absent or empty → `401` problem); API-key callers not allowed |
//! | admin routes `/admin/owners/{owner_id}/api-keys` and `/admin/api-keys` | mounted, the admin check passes when header `x-test-admin` is `yes` (otherwise `403` problem) |
//! | `GET /protected` | requires a verified key with scope `reports:read` (all-of); answers `200` with the `Principal` as JSON (`key_id`, `owner_id`, `scopes`, …) |
//! | `GET /any` | requires any of `a:x`, `b:x`; answers `200` with the `Principal` as JSON |
//! | `POST` and `PUT /echo` | requires a verified key with scope `reports:read` (behind the same authentication as `/protected`); answers `200` with `{"principal": Principal, "body": "<the request body as the handler read it>"}` |
//! | `GET /plain` | behind the adapter's authentication with its defaults and nothing else; the handler takes an optional caller and answers `200` |
//! | `GET /miswired` | as `/protected`, with the scope check wired the wrong way round: outside the authentication, so that it runs first |
//! | `GET /no-layer` | no authentication; the handler extracts the caller as `/protected`'s does |
//! | `GET /open` | no authentication, or the adapter's optional one; answers `200` |
//! | `GET /openapi.json` | `keyward_http::openapi::document` for the self-service and admin routes under `/api-keys`, signing as the engine does, as JSON |
//!
//! AccessKey are `Authorization: Bearer <key>` and `X-API-Key: <key>` (default names), and
//! SigV4-signed requests (`Authorization: AWS4-HMAC-SHA256 …`, DESIGN.md §7): the suite's
//! [`Keyward`] has an [`EncryptionKeyring`] (signing enabled, default region and service, real
//! clock) and a signed-body limit of [`SIGNED_BODY_LIMIT`] bytes. The signing cases create
//! signing keys through the management route with `"signing": true`, sign with the core
//! [`Signer`](keyward_core::sigv4::Signer) or live with botocore ([`crate::stock_signer`]), and need nothing more from the
//! app; `case_signing_disabled` starts a second app over an engine without a keyring.
//!
//! Management bodies over the limit get `413`; the adapter reads and discards an oversize body
//! up to 1 MiB before answering, so that a client still sending sees the `413` rather than a
//! reset connection (the suite sends ~200 KiB, with and without `Content-Length`).
//!
//! # Running it
//!
//! ```text
//! keyward_test::http_suite!(store = make_store, spawn = spawn_app);
//! ```
//!
//! generates one `#[tokio::test]` per case, where `make_store` is `async fn() -> S` with `S`
//! `Arc<dyn KeyStore>` or `Option<Arc<dyn KeyStore>>` (`None` skips, as the store suite) and
//! `spawn_app` is `async fn(Keyward) -> SocketAddr`. Cases use real time with short TTLs and
//! grace periods and poll for the change (no timed assertions); each case uses owners of its own,
//! so a shared database works.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    reason = "test support: a case fails by panicking on a broken expectation"
)]

use std::sync::Arc;
use std::time::Duration;

use keyward_core::crypto::EncryptionKeyring;
use keyward_core::key::KeyId;
use keyward_core::model::Policy;
use keyward_core::scope::ScopeCatalog;
use keyward_core::sigv4::SigningOptions;
use keyward_core::store::{Cursor, KeyStore, Page, StoreError, UsageDelta};
use keyward_core::{KeyRecord, Keyring, Keyward};
use time::OffsetDateTime;

mod app;
mod keys;
mod requests;
mod signed;

pub use app::*;
pub use keys::*;
pub use requests::*;
pub use signed::*;

/// The maximum of keys per owner the suite's policy sets.
pub const MAX_KEYS: usize = 5;

/// What the suite grants from: `reports:*`, `a:x`, `b:x`.
pub const CATALOG: [&str; 3] = ["reports:*", "a:x", "b:x"];

/// The largest body the suite's engine buffers to verify a signed request.
pub const SIGNED_BODY_LIMIT: usize = 8 * 1024;

/// The longest the suite's engine waits for a signed body once its signer is known.
pub const SIGNED_BODY_TIME: Duration = Duration::from_secs(2);

/// A fixed test keyring for sealing signing secrets (never use outside tests).
#[must_use]
pub fn suite_encryption_keyring() -> EncryptionKeyring {
    EncryptionKeyring::new(vec![(1, zeroize::Zeroizing::new(vec![0x5a; 32]))])
        .expect("a 32-byte key is a valid keyring")
}

fn suite_builder(store: Arc<dyn KeyStore>) -> keyward_core::KeywardBuilder {
    let policy = Policy {
        max_keys_per_owner: Some(u32::try_from(MAX_KEYS).unwrap_or(5)),
        catalog: ScopeCatalog::only(CATALOG).expect("catalog scopes are well formed"),
        ..Policy::default()
    };
    Keyward::builder(store, Keyring::insecure_test_keyring()).policy(policy)
}

/// The [`Keyward`] every case runs over: default key format (`kw_live_…`), at most
/// [`MAX_KEYS`] keys per owner, scopes limited to [`CATALOG`], signing enabled with
/// [`suite_encryption_keyring`] and signed bodies up to [`SIGNED_BODY_LIMIT`].
#[must_use]
pub fn suite_keyward(store: Arc<dyn KeyStore>) -> Keyward {
    suite_builder(store)
        .encryption(suite_encryption_keyring())
        .signing(SigningOptions {
            max_body_bytes: SIGNED_BODY_LIMIT,
            max_body_time: SIGNED_BODY_TIME,
            ..SigningOptions::default()
        })
        .build()
        .expect("keyward builds")
}

/// As [`suite_keyward`] without an encryption keyring: signing is not enabled.
#[must_use]
pub fn suite_keyward_without_signing(store: Arc<dyn KeyStore>) -> Keyward {
    suite_builder(store).build().expect("keyward builds")
}

/// A store whose every call fails as unreachable: the app built over it must answer `503`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FailingStore;

fn down() -> StoreError {
    StoreError::unavailable("test store is down")
}

#[async_trait::async_trait]
impl keyward_core::store::EventStore for FailingStore {
    async fn events(
        &self,
        _: &keyward_core::audit::EventFilter<'_>,
        _: Option<keyward_core::audit::EventCursor>,
        _: u32,
    ) -> Result<keyward_core::audit::EventPage, StoreError> {
        Err(down())
    }
    async fn prune_events(&self, _: OffsetDateTime, _: u32) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn append(&self, _: &[keyward_core::audit::Event]) -> Result<(), StoreError> {
        Err(down())
    }
    async fn usage(
        &self,
        _: &keyward_core::analytics::UsageFilter<'_>,
    ) -> Result<Vec<keyward_core::analytics::UsageRow>, StoreError> {
        Err(down())
    }
    async fn prune_usage(&self, _: OffsetDateTime, _: u32) -> Result<u64, StoreError> {
        Err(down())
    }
}

#[async_trait::async_trait]
impl KeyStore for FailingStore {
    async fn create(
        &self,
        _: &KeyRecord,
        _: Option<u32>,
        _: OffsetDateTime,
        _: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        Err(down())
    }
    async fn create_many(
        &self,
        _: &[&KeyRecord],
        _: Option<u32>,
        _: OffsetDateTime,
        _: &[keyward_core::audit::Event],
    ) -> Result<(), StoreError> {
        Err(down())
    }
    async fn get(&self, _: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Err(down())
    }
    async fn list(
        &self,
        _: &keyward_core::store::KeyFilter<'_>,
        _: Option<Cursor>,
        _: u32,
    ) -> Result<Page, StoreError> {
        Err(down())
    }
    async fn update(
        &self,
        _: &KeyRecord,
        _: OffsetDateTime,
        _: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        Err(down())
    }
    async fn set_digest(
        &self,
        _: &KeyId,
        _: &keyward_core::digest::KeyDigest,
        _: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        Err(down())
    }
    async fn revoke(
        &self,
        _: &KeyId,
        _: OffsetDateTime,
        _: Option<OffsetDateTime>,
        _: &keyward_core::audit::Event,
    ) -> Result<Option<KeyRecord>, StoreError> {
        Err(down())
    }
    async fn record_usage(
        &self,
        _: &[UsageDelta],
        _: &[keyward_core::analytics::UsageCount],
    ) -> Result<(), StoreError> {
        Err(down())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(down())
    }
}

/// Generates one `#[tokio::test]` per case in the calling module:
///
/// ```text
/// keyward_test::http_suite!(store = make_store, spawn = spawn_app);
/// ```
///
/// `make_store`: `() -> impl Future<Output = S>`, `S` an `Arc<dyn KeyStore>` or
/// `Option<Arc<dyn KeyStore>>` (`None` skips); `spawn_app`: `Fn(Keyward) -> impl
/// Future<Output = SocketAddr>` (see the module docs for the app). The caller needs `tokio` as a
/// dev-dependency.
#[macro_export]
macro_rules! http_suite {
    (store = $make:expr, spawn = $spawn:expr $(,)?) => {
        $crate::http_suite!(@cases $make, $spawn;
            case_create_shows_key_once, case_credential_forms, case_missing_and_open,
            case_fails_closed_and_miswired, case_admin_lists_every_owner,
            case_management_needs_owner_not_key, case_foreign_key_is_404, case_revoke_is_immediate,
            case_scope_denied, case_expired_and_inactive, case_max_keys_concurrent,
            case_rotate_grace, case_pagination, case_validation, case_body_transport_errors,
            case_hostile_input, case_rate_limited, case_admin_routes, case_openapi,
            case_signed_round_trip, case_signed_tampering, case_signed_expired,
            case_signed_replay, case_signed_body_limit, case_signed_refused_before_body,
            case_signed_keys_and_scopes, case_signed_by_botocore);

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn case_signing_disabled() {
            let store = $crate::store_suite::IntoStore::into_store(($make)().await);
            if let Some(store) = store {
                $crate::http_suite::case_signing_disabled(store, $spawn).await;
            }
        }

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn case_store_down() {
            $crate::http_suite::case_store_down($spawn).await;
        }
    };
    (@cases $make:expr, $spawn:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $crate::store_suite::IntoStore::into_store(($make)().await);
                if let Some(store) = store {
                    let app = $crate::http_suite::TestApp::start(store, $spawn).await;
                    $crate::http_suite::$case(app).await;
                }
            }
        )*
    };
}
