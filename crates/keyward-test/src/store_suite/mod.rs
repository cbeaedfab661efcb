//! The conformance suite every [`KeyStore`] passes: written once, run for the in-memory store,
//! the SQL store on each database and the Redis store.
//!
//! Each `case_*` function takes a **fresh, empty** store and panics (fails the test) when the
//! store breaks the contract. Run them all with [`run_all`], or generate one `#[tokio::test]` per
//! case with [`crate::store_suite!`]:
//!
//! ```ignore
//! async fn make() -> Option<Arc<dyn KeyStore>> { /* a fresh store, or None to skip */ }
//! keyward_test::store_suite!(make);
//! ```
//!
//! The expected behaviour is the in-memory store's (`keyward_core::memory`): records round-trip
//! exactly (timestamps at microsecond precision), lists are ordered by `(created_at, key_id)`
//! with key ids compared byte-wise, and usage merges by [`keyward_core::memory::apply_usage`].
// A test suite reports failures by panicking; that is its interface.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc
)]

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use keyward_core::store::KeyStore;

mod audit;
mod engine;
mod fixtures;
mod lists;
mod outbox;
mod records;
mod usage;

pub use audit::*;
pub use engine::*;
pub use fixtures::*;
pub use lists::*;
pub use outbox::*;
pub use records::*;
pub use usage::*;

/// What a suite's store factory may return: a store, or `None` to skip (the factory has
/// already said why, loudly; see [`crate::services`]).
pub trait IntoStore {
    /// The store, or `None` to skip.
    fn into_store(self) -> Option<Arc<dyn KeyStore>>;
}

impl IntoStore for Arc<dyn KeyStore> {
    fn into_store(self) -> Option<Arc<dyn KeyStore>> {
        Some(self)
    }
}

impl IntoStore for Option<Arc<dyn KeyStore>> {
    fn into_store(self) -> Option<Arc<dyn KeyStore>> {
        self
    }
}

/// One case of the suite.
pub type Case = fn(Arc<dyn KeyStore>) -> BoxFuture<'static, ()>;

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("round_trip_full", |s| Box::pin(case_round_trip_full(s))),
    ("round_trip_minimal", |s| {
        Box::pin(case_round_trip_minimal(s))
    }),
    ("get_unknown", |s| Box::pin(case_get_unknown(s))),
    ("duplicate_conflict", |s| {
        Box::pin(case_duplicate_conflict(s))
    }),
    ("update", |s| Box::pin(case_update(s))),
    ("update_version_check", |s| {
        Box::pin(case_update_version_check(s))
    }),
    ("set_digest", |s| Box::pin(case_set_digest(s))),
    ("revoke", |s| Box::pin(case_revoke(s))),
    ("revoke_version_check", |s| {
        Box::pin(case_revoke_version_check(s))
    }),
    ("record_usage", |s| Box::pin(case_record_usage(s))),
    ("list_pagination", |s| Box::pin(case_list_pagination(s))),
    ("list_stable_under_inserts", |s| {
        Box::pin(case_list_stable_under_inserts(s))
    }),
    ("max_keys", |s| Box::pin(case_max_keys(s))),
    ("create_many", |s| Box::pin(case_create_many(s))),
    ("concurrent_gets", |s| Box::pin(case_concurrent_gets(s))),
    ("concurrent_limit", |s| Box::pin(case_concurrent_limit(s))),
    ("concurrent_duplicates", |s| {
        Box::pin(case_concurrent_duplicates(s))
    }),
    ("engine_lifecycle", |s| Box::pin(case_engine_lifecycle(s))),
    ("engine_expiry", |s| Box::pin(case_engine_expiry(s))),
    ("engine_env_bound", |s| Box::pin(case_engine_env_bound(s))),
    ("audit_log", |s| Box::pin(case_audit_log(s))),
    ("audit_refused_creates", |s| {
        Box::pin(case_audit_refused_creates(s))
    }),
    ("notices_append_once", |s| {
        Box::pin(case_notices_append_once(s))
    }),
    ("usage_counts", |s| Box::pin(case_usage_counts(s))),
];

/// Runs every case, each on a fresh store from `make`. Stops (returns) when `make` skips.
///
/// # Panics
/// On the first case the store fails, naming it.
pub async fn run_all<F, Fut, S>(mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
    S: IntoStore,
{
    for (name, case) in CASES {
        let Some(store) = make().await.into_store() else {
            eprintln!("store suite: skipped from case {name} on");
            return;
        };
        eprintln!("store suite: case {name} on {store:?}");
        case(store).await;
    }
}

/// Generates one `#[tokio::test]` per suite case in the calling module. `$make` is a function
/// (or closure) `() -> impl Future<Output = S>` where `S` is `Arc<dyn KeyStore>` or
/// `Option<Arc<dyn KeyStore>>` (`None` skips). The caller needs `tokio` as a dev-dependency.
#[macro_export]
macro_rules! store_suite {
    ($make:expr) => {
        $crate::store_suite!(@cases $make;
            case_round_trip_full, case_round_trip_minimal, case_get_unknown,
            case_duplicate_conflict, case_update, case_update_version_check, case_set_digest,
            case_revoke, case_revoke_version_check,
            case_record_usage, case_list_pagination, case_list_stable_under_inserts,
            case_list_filters,
            case_max_keys, case_create_many, case_concurrent_gets, case_concurrent_limit, case_concurrent_duplicates,
            case_engine_lifecycle, case_engine_expiry, case_engine_env_bound,
            case_audit_log, case_audit_refused_creates, case_notices_append_once,
            case_usage_counts);
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = $crate::store_suite::IntoStore::into_store(($make)().await);
                if let Some(store) = store {
                    $crate::store_suite::$case(store).await;
                }
            }
        )*
    };
}

/// The filter of `owner`'s keys, states judged now.
pub(crate) fn of(owner: &str) -> keyward_core::store::KeyFilter<'_> {
    keyward_core::store::KeyFilter::all(time::OffsetDateTime::now_utc()).owner(owner)
}
