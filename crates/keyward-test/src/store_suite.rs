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

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::future::BoxFuture;
use keyward_core::cache::CacheConfig;
use keyward_core::clock::ManualClock;
use keyward_core::digest::{DigestAlgorithm, KeyDigest};
use keyward_core::engine::{InvalidReason, VerifyError};
use keyward_core::memory::apply_usage;
use keyward_core::model::{
    Credits, Deactivator, IpNet, Lineage, Metadata, RateLimit, SealedSecret, Usage,
};
use keyward_core::service::{CreateKeyRequest, RotateKeyRequest};
use keyward_core::store::{Cursor, KeyStore, StoreError, StoreErrorKind, UsageDelta};
use keyward_core::{
    Actor, KeyId, KeyRecord, Keyring, Keyward, ScopeRequirement, ScopeSet, VerifyContext,
};

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
    ("record_usage", |s| Box::pin(case_record_usage(s))),
    ("list_pagination", |s| Box::pin(case_list_pagination(s))),
    ("list_stable_under_inserts", |s| {
        Box::pin(case_list_stable_under_inserts(s))
    }),
    ("max_keys", |s| Box::pin(case_max_keys(s))),
    ("concurrent_limit", |s| Box::pin(case_concurrent_limit(s))),
    ("concurrent_duplicates", |s| {
        Box::pin(case_concurrent_duplicates(s))
    }),
    ("engine_lifecycle", |s| Box::pin(case_engine_lifecycle(s))),
    ("engine_expiry", |s| Box::pin(case_engine_expiry(s))),
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
            case_revoke,
            case_record_usage, case_list_pagination, case_list_stable_under_inserts,
            case_max_keys, case_concurrent_limit, case_concurrent_duplicates,
            case_engine_lifecycle, case_engine_expiry);
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

/// `2026-03-04T05:06:07Z` plus `secs` seconds and `micros` microseconds.
#[must_use]
pub fn at(secs: i64, micros: u32) -> DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap();
    base + Duration::seconds(secs) + Duration::microseconds(i64::from(micros))
}

fn new_id() -> KeyId {
    KeyId::generate().expect("os random")
}

fn id(s: &str) -> KeyId {
    s.parse().expect("valid key id")
}

/// A digest with recognisable bytes.
#[must_use]
pub fn digest(seed: u8, version: u32) -> KeyDigest {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = seed
            .wrapping_add(u8::try_from(i).unwrap_or(0))
            .wrapping_mul(7);
    }
    bytes[0] = 0;
    KeyDigest {
        algorithm: DigestAlgorithm::HmacSha256,
        pepper_version: version,
        bytes,
    }
}

/// A minimal record: no optional field set, fresh random key id.
#[must_use]
pub fn record(owner: &str, created_at: DateTime<Utc>) -> KeyRecord {
    record_with_id(new_id(), owner, created_at)
}

/// A minimal record with a given id.
#[must_use]
pub fn record_with_id(key_id: KeyId, owner: &str, created_at: DateTime<Utc>) -> KeyRecord {
    KeyRecord {
        key_id,
        owner_id: owner.to_owned(),
        name: "k".to_owned(),
        description: None,
        env: "test".to_owned(),
        prefix: "kw".to_owned(),
        digest: digest(1, 1),
        sealed_secret: None,
        scopes: ScopeSet::new(),
        metadata: Metadata::new(),
        ip_allowlist: Vec::new(),
        rate_limit: None,
        credits: None,
        usage: Usage::default(),
        is_active: true,
        created_at,
        updated_at: created_at,
        not_before: None,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        rotated_from: None,
        rotated_to: None,
        deactivated_by: None,
        lineage: None,
    }
}

/// A record with every field set to something a store could get wrong.
#[must_use]
pub fn full_record(owner: &str, created_at: DateTime<Utc>) -> KeyRecord {
    let metadata = serde_json::json!({
        "tier": "gold",
        "n": 42,
        "neg": -7,
        "big": 9_007_199_254_740_993_u64,
        "f": 1.5,
        "nested": {"a": [1, 2, {"b": null}], "empty": {}},
        "unicode": "ünï ☃ \u{1F511}",
        "quote": "it's \"quoted\" \\ back",
        "bool": true
    });
    let serde_json::Value::Object(metadata) = metadata else {
        unreachable!()
    };
    KeyRecord {
        key_id: new_id(),
        owner_id: owner.to_owned(),
        name: "Production ✓ key 'one' \"1\"".to_owned(),
        description: Some("multi\nline; DROP TABLE x; -- ü".to_owned()),
        env: "live".to_owned(),
        prefix: "acme".to_owned(),
        digest: KeyDigest {
            algorithm: DigestAlgorithm::Blake3,
            pepper_version: 7,
            bytes: [0xA5; 32],
        },
        sealed_secret: Some(SealedSecret {
            key_version: 3,
            bytes: (0u8..=60).chain([0, 0xFF, 0]).collect(),
        }),
        scopes: ScopeSet::parse(["reports:read", "reports:*", "admin.x_y-z", "*"]).unwrap(),
        metadata,
        ip_allowlist: ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7", "::1"]
            .iter()
            .map(|s| s.parse::<IpNet>().unwrap())
            .collect(),
        rate_limit: Some(RateLimit {
            requests: 100,
            window_seconds: 60,
        }),
        credits: Some(Credits {
            limit: 1 << 40,
            refill_seconds: Some(86_400),
        }),
        usage: Usage {
            request_count: (1 << 40) + 3,
            credits_used: 3,
            credits_period: 2,
        },
        is_active: false,
        created_at,
        updated_at: created_at + Duration::microseconds(654_321),
        not_before: Some(created_at - Duration::microseconds(1)),
        expires_at: Some(created_at + Duration::days(400) + Duration::microseconds(999_999)),
        last_used_at: Some(created_at + Duration::microseconds(500_000)),
        revoked_at: Some(created_at + Duration::seconds(30) + Duration::microseconds(7)),
        rotated_from: Some(new_id()),
        rotated_to: Some(new_id()),
        deactivated_by: Some(Deactivator::Admin),
        lineage: Some(Lineage {
            root: new_id(),
            started_at: created_at - Duration::days(3) + Duration::microseconds(17),
        }),
    }
}

async fn must<T>(what: &str, r: Result<T, StoreError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected store error {:?}: {e}", e.kind()),
    }
}

fn expect_kind<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>, kind: StoreErrorKind) {
    match r {
        Ok(v) => panic!("{what}: expected {kind:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(e.kind(), kind, "{what}: wrong error kind ({e})"),
    }
}

async fn get(store: &Arc<dyn KeyStore>, key_id: &KeyId) -> KeyRecord {
    must("get", store.get(key_id).await)
        .await
        .unwrap_or_else(|| panic!("key {key_id} should exist"))
}

async fn create(store: &Arc<dyn KeyStore>, r: &KeyRecord, max: Option<u32>, now: DateTime<Utc>) {
    must("create", store.create(r, max, now).await).await;
}

/// Every field of a fully populated record survives create → get, at microsecond precision.
pub async fn case_round_trip_full(store: Arc<dyn KeyStore>) {
    let r = full_record("tenant/ü:42 with spaces", at(0, 123_456));
    create(&store, &r, None, at(0, 0)).await;
    assert_eq!(get(&store, &r.key_id).await, r);

    // A second full record with a long owner id and an exact-second timestamp.
    let mut r2 = full_record(&"o".repeat(255), at(1, 0));
    r2.is_active = true;
    r2.revoked_at = None;
    r2.sealed_secret = Some(SealedSecret {
        key_version: u32::MAX,
        bytes: vec![0; 1],
    });
    r2.digest.pepper_version = u32::MAX;
    r2.rate_limit = Some(RateLimit {
        requests: u32::MAX,
        window_seconds: u32::MAX,
    });
    r2.credits = Some(Credits {
        limit: 0,
        refill_seconds: None,
    });
    create(&store, &r2, Some(10), at(1, 0)).await;
    assert_eq!(get(&store, &r2.key_id).await, r2);
    assert_eq!(get(&store, &r.key_id).await, r, "first record unchanged");
}

/// A record with no optional field set round-trips; empty collections stay empty.
pub async fn case_round_trip_minimal(store: Arc<dyn KeyStore>) {
    let r = record("owner-min", at(5, 1));
    create(&store, &r, None, at(5, 1)).await;
    assert_eq!(get(&store, &r.key_id).await, r);
}

/// Unknown ids are `Ok(None)`, empty store or not.
pub async fn case_get_unknown(store: Arc<dyn KeyStore>) {
    assert!(must("get", store.get(&new_id()).await).await.is_none());
    let r = record("owner-u", at(0, 0));
    create(&store, &r, None, at(0, 0)).await;
    assert!(must("get", store.get(&new_id()).await).await.is_none());
    assert!(must("get", store.get(&KeyId::MIN).await).await.is_none());
}

/// A second create with the same key id is a `Conflict`, whatever the owner or limit, and the
/// stored record stays as it was.
pub async fn case_duplicate_conflict(store: Arc<dyn KeyStore>) {
    let r = record("owner-d", at(0, 0));
    create(&store, &r, None, at(0, 0)).await;
    let mut dup = record_with_id(r.key_id, "someone-else", at(9, 9));
    dup.name = "dup".to_owned();
    expect_kind(
        "duplicate create",
        store.create(&dup, None, at(9, 9)).await,
        StoreErrorKind::Conflict,
    );
    expect_kind(
        "duplicate create with limit",
        store.create(&dup, Some(100), at(9, 9)).await,
        StoreErrorKind::Conflict,
    );
    expect_kind(
        "duplicate create, same owner",
        store.create(&r, Some(100), at(9, 9)).await,
        StoreErrorKind::Conflict,
    );
    assert_eq!(get(&store, &r.key_id).await, r);
    let page = must("list", store.list_by_owner("someone-else", None, 10).await).await;
    assert!(
        page.items.is_empty(),
        "the refused duplicate must not be listed"
    );
}

/// `update` writes the management fields and leaves usage, `last_used_at`, `revoked_at` and the
/// digest alone. Unknown ids are `NotFound`.
pub async fn case_update(store: Arc<dyn KeyStore>) {
    let mut r = full_record("owner-up", at(0, 10));
    r.revoked_at = None;
    create(&store, &r, None, at(0, 10)).await;
    let before = get(&store, &r.key_id).await;

    let mut changed = before.clone();
    changed.name = "renamed".to_owned();
    changed.description = None;
    changed.scopes = ScopeSet::parse(["billing:write"]).unwrap();
    changed.metadata = Metadata::new();
    changed
        .metadata
        .insert("v".to_owned(), serde_json::json!(2));
    changed.ip_allowlist = Vec::new();
    changed.rate_limit = None;
    changed.credits = Some(Credits {
        limit: 5,
        refill_seconds: None,
    });
    changed.is_active = !before.is_active;
    changed.not_before = None;
    changed.expires_at = Some(at(7_000, 1));
    changed.updated_at = at(60, 999_999);
    // Fields update must not touch:
    changed.usage = Usage::default();
    changed.last_used_at = None;
    changed.revoked_at = None;
    changed.digest = digest(9, 9);
    changed.rotated_to = None;
    changed.deactivated_by = Some(Deactivator::Owner);
    must("update", store.update(&changed, before.updated_at).await).await;

    let mut expected = changed.clone();
    expected.usage = before.usage;
    expected.last_used_at = before.last_used_at;
    expected.revoked_at = before.revoked_at;
    expected.digest = before.digest.clone();
    assert_eq!(get(&store, &r.key_id).await, expected);

    // And back: description and limits set again.
    let mut again = expected.clone();
    again.description = Some("back".to_owned());
    again.rate_limit = Some(RateLimit {
        requests: 1,
        window_seconds: 1,
    });
    again.ip_allowlist = vec!["127.0.0.1".parse().unwrap()];
    again.not_before = Some(at(1, 1));
    again.expires_at = None;
    again.credits = None;
    again.rotated_to = Some(new_id());
    again.deactivated_by = None;
    again.updated_at = at(61, 0);
    must("update", store.update(&again, expected.updated_at).await).await;
    assert_eq!(get(&store, &r.key_id).await, again);

    let ghost = record("owner-up", at(0, 0));
    expect_kind(
        "update unknown",
        store.update(&ghost, ghost.updated_at).await,
        StoreErrorKind::NotFound,
    );
    assert!(must("get", store.get(&ghost.key_id).await).await.is_none());
}

/// `update` is a version check: it writes only when the stored `updated_at` is the one the
/// writer read and the key is not revoked, else `Stale`; concurrent read-modify-write loops that
/// retry on `Stale` lose no write.
pub async fn case_update_version_check(store: Arc<dyn KeyStore>) {
    let r = record("owner-ver", at(0, 1));
    create(&store, &r, None, at(0, 1)).await;

    let mut first = r.clone();
    first.name = "first".to_owned();
    first.updated_at = at(1, 0);
    let mut second = r.clone();
    second.name = "second".to_owned();
    second.updated_at = at(1, 0);
    must("first update", store.update(&first, r.updated_at).await).await;
    expect_kind(
        "an update from the same stale read",
        store.update(&second, r.updated_at).await,
        StoreErrorKind::Stale,
    );
    assert_eq!(get(&store, &r.key_id).await.name, "first");

    must("revoke", store.revoke(&r.key_id, at(2, 0)).await).await;
    let fresh = get(&store, &r.key_id).await;
    let mut after = fresh.clone();
    after.is_active = false;
    after.updated_at = at(3, 0);
    expect_kind(
        "an update of a revoked key",
        store.update(&after, fresh.updated_at).await,
        StoreErrorKind::Stale,
    );
    assert!(get(&store, &r.key_id).await.revoked_at.is_some());

    // Eight writers, each adding its own metadata field, retrying on Stale: all eight land.
    let r = record("owner-ver", at(10, 1));
    create(&store, &r, None, at(10, 1)).await;
    let writers: Vec<_> = (0..8u32)
        .map(|i| {
            let store = Arc::clone(&store);
            let key_id = r.key_id;
            tokio::spawn(async move {
                for attempt in 0..200 {
                    let mut current = store.get(&key_id).await.unwrap().unwrap();
                    let expected = current.updated_at;
                    current
                        .metadata
                        .insert(format!("w{i}"), serde_json::json!(attempt));
                    current.updated_at = expected + Duration::microseconds(1);
                    match store.update(&current, expected).await {
                        Ok(()) => return,
                        Err(e) if e.kind() == StoreErrorKind::Stale => {
                            tokio::task::yield_now().await;
                        }
                        Err(e) => panic!("writer {i}: {e}"),
                    }
                }
                panic!("writer {i} never won the race");
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer task");
    }
    let done = get(&store, &r.key_id).await;
    for i in 0..8 {
        assert!(
            done.metadata.contains_key(&format!("w{i}")),
            "writer {i}'s field was lost: {:?}",
            done.metadata
        );
    }
}

/// `set_digest` replaces the digest and nothing else. Unknown ids are `NotFound`.
pub async fn case_set_digest(store: Arc<dyn KeyStore>) {
    let r = full_record("owner-sd", at(0, 0));
    create(&store, &r, None, at(0, 0)).await;
    let mut d = digest(42, 2);
    d.algorithm = DigestAlgorithm::HmacSha256;
    must("set_digest", store.set_digest(&r.key_id, &d).await).await;
    let mut expected = r.clone();
    expected.digest = d;
    assert_eq!(get(&store, &r.key_id).await, expected);
    expect_kind(
        "set_digest unknown",
        store.set_digest(&new_id(), &digest(1, 1)).await,
        StoreErrorKind::NotFound,
    );
}

/// Revocation sets `revoked_at` once; later revocations keep the first time. Unknown ids give
/// `None`.
pub async fn case_revoke(store: Arc<dyn KeyStore>) {
    let r = record("owner-rv", at(0, 0));
    let other = record("owner-rv", at(0, 1));
    create(&store, &r, None, at(0, 0)).await;
    create(&store, &other, None, at(0, 1)).await;

    let first = must("revoke", store.revoke(&r.key_id, at(10, 123_457)).await)
        .await
        .expect("revoke of an existing key returns it");
    assert_eq!(first.revoked_at, Some(at(10, 123_457)));
    assert_eq!(first.key_id, r.key_id);
    assert_eq!(first, get(&store, &r.key_id).await, "returned = stored");

    let second = must("revoke again", store.revoke(&r.key_id, at(20, 0)).await)
        .await
        .expect("still there");
    assert_eq!(second.revoked_at, Some(at(10, 123_457)), "first time kept");
    assert_eq!(second, first);
    assert_eq!(get(&store, &r.key_id).await, first);

    assert!(
        must("revoke unknown", store.revoke(&new_id(), at(1, 0)).await)
            .await
            .is_none()
    );
    assert_eq!(
        get(&store, &other.key_id).await,
        other,
        "other keys untouched"
    );
}

/// Usage deltas merge exactly as `keyward_core::memory::apply_usage` says.
pub async fn case_record_usage(store: Arc<dyn KeyStore>) {
    let mut r = record("owner-us", at(0, 0));
    r.credits = Some(Credits {
        limit: 10,
        refill_seconds: Some(60),
    });
    let bystander = record("owner-us", at(0, 1));
    create(&store, &r, None, at(0, 0)).await;
    create(&store, &bystander, None, at(0, 1)).await;
    let mut expected = r.clone();

    let d = |requests, last: Option<DateTime<Utc>>, credits| UsageDelta {
        key_id: r.key_id,
        last_used_at: last,
        requests,
        credits,
    };
    let batches: Vec<Vec<UsageDelta>> = vec![
        vec![],
        vec![d(3, Some(at(50, 1)), Some((0, 3)))],
        // Older time and lower count: neither moves back.
        vec![d(2, Some(at(40, 0)), Some((0, 2)))],
        // Same period, higher count.
        vec![d(0, None, Some((0, 7)))],
        // A new period starts over.
        vec![d(1, None, Some((1, 1)))],
        // An older period is ignored.
        vec![d(1, Some(at(60, 0)), Some((0, 9)))],
        // Several deltas for one key in one batch, and an unknown key (skipped).
        vec![
            d(5, Some(at(70, 999_999)), Some((1, 2))),
            UsageDelta {
                key_id: new_id(),
                last_used_at: Some(at(99, 0)),
                requests: 9,
                credits: Some((5, 5)),
            },
            d(1, Some(at(65, 0)), Some((1, 3))),
        ],
        vec![d(u64::from(u32::MAX), Some(at(70, 999_999)), None)],
    ];
    for (i, batch) in batches.iter().enumerate() {
        must("record_usage", store.record_usage(batch).await).await;
        for delta in batch {
            if delta.key_id == r.key_id {
                apply_usage(&mut expected, delta);
            }
        }
        assert_eq!(
            get(&store, &r.key_id).await,
            expected,
            "after usage batch {i}"
        );
    }
    assert_eq!(expected.usage.request_count, 13 + u64::from(u32::MAX));
    assert_eq!(expected.last_used_at, Some(at(70, 999_999)));
    assert_eq!(
        (expected.usage.credits_period, expected.usage.credits_used),
        (1, 3)
    );
    assert_eq!(
        get(&store, &bystander.key_id).await,
        bystander,
        "other keys untouched"
    );
}

fn sorted(mut v: Vec<KeyRecord>) -> Vec<KeyRecord> {
    v.sort_by_key(|r| (r.created_at, r.key_id));
    v
}

async fn list_all(store: &Arc<dyn KeyStore>, owner: &str, limit: u32) -> Vec<KeyRecord> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let page = must("list", store.list_by_owner(owner, cursor, limit).await).await;
        assert!(
            page.items.len() <= usize::try_from(limit).unwrap(),
            "page larger than the limit"
        );
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

/// Lists are ordered by `(created_at, key_id)` (key ids byte-wise, so `A` < `a`), pages follow
/// the cursor, the last page has no cursor, and owners are isolated exactly (no prefix or case
/// folding).
pub async fn case_list_pagination(store: Arc<dyn KeyStore>) {
    let owner = "alice";
    let mut mine = Vec::new();
    // Ties on created_at, with ids that sort differently under a case-insensitive collation.
    for s in [
        "aaaaaaaaaaaa",
        "AAAAAAAAAAAA",
        "Baaaaaaaaaaa",
        "baaaaaaaaaaa",
        "0aaaaaaaaaaa",
        "zzzzzzzzzzzz",
        "Zzzzzzzzzzzz",
    ] {
        mine.push(record_with_id(id(s), owner, at(0, 0)));
    }
    // Sub-second values of every width, and whole seconds.
    for (s, us) in [
        (0, 500_000),
        (0, 5),
        (0, 50),
        (1, 0),
        (1, 123_456),
        (1, 123),
        (2, 999_999),
        (-1, 999_999),
        (3600, 100_000),
    ] {
        mine.push(record(owner, at(s, us)));
    }
    let mut others = Vec::new();
    for o in ["bob", "alice2", "ALICE", "alic", "alice "] {
        for us in [0, 1, 2] {
            others.push(record(o, at(0, us)));
        }
    }
    // Insert in an order unrelated to the listing order.
    let mut all: Vec<&KeyRecord> = mine.iter().chain(others.iter()).collect();
    all.sort_by_key(|r| r.key_id.as_str().chars().rev().collect::<String>());
    for r in all {
        create(&store, r, None, at(0, 0)).await;
    }
    let expected = sorted(mine.clone());

    for limit in [1, 3, 4, 16, 17, 100] {
        assert_eq!(
            list_all(&store, owner, limit).await,
            expected,
            "listing with page size {limit}"
        );
    }
    // Exact multiple of the page size: the last full page has no cursor.
    let page = must("list", store.list_by_owner(owner, None, 16).await).await;
    assert_eq!(page.items.len(), 16);
    assert!(page.next_cursor.is_none(), "no cursor after the last key");
    let page = must("list", store.list_by_owner(owner, None, 15).await).await;
    assert_eq!(page.next_cursor, Some(Cursor::after(&expected[14])));

    // A cursor pointing between stored keys (not at one) still works.
    let c = Cursor {
        created_at: at(0, 6),
        key_id: KeyId::MIN,
    };
    let page = must("list", store.list_by_owner(owner, Some(c), 100).await).await;
    let tail: Vec<KeyRecord> = expected
        .iter()
        .filter(|r| (r.created_at, r.key_id) > (c.created_at, c.key_id))
        .cloned()
        .collect();
    assert_eq!(page.items, tail);

    for o in ["bob", "alice2", "ALICE", "alic", "alice "] {
        let want = sorted(others.iter().filter(|r| r.owner_id == o).cloned().collect());
        assert_eq!(list_all(&store, o, 2).await, want, "owner {o:?} isolated");
    }
    let page = must("list", store.list_by_owner("nobody", None, 10).await).await;
    assert!(page.items.is_empty() && page.next_cursor.is_none());
    let page = must("list", store.list_by_owner("", None, 10).await).await;
    assert!(page.items.is_empty());
}

/// Keys inserted between pages never shift the listing: one created before the cursor is not
/// seen by the remaining pages, one created after the last is.
pub async fn case_list_stable_under_inserts(store: Arc<dyn KeyStore>) {
    let owner = "paging";
    let mut mine: Vec<KeyRecord> = (0..10).map(|i| record(owner, at(i, 0))).collect();
    for r in &mine {
        create(&store, r, None, at(0, 0)).await;
    }
    let expected = sorted(mine.clone());
    let p1 = must("list", store.list_by_owner(owner, None, 4).await).await;
    assert_eq!(p1.items, expected[..4]);
    let early = record(owner, at(-100, 0));
    let tie_before = record_with_id(KeyId::MIN, owner, expected[2].created_at);
    let late = record(owner, at(1000, 0));
    for r in [&early, &tie_before, &late] {
        create(&store, r, None, at(0, 0)).await;
    }
    let mut rest = Vec::new();
    let mut cursor = p1.next_cursor;
    while let Some(c) = cursor {
        let p = must("list", store.list_by_owner(owner, Some(c), 4).await).await;
        rest.extend(p.items);
        cursor = p.next_cursor;
    }
    let mut want: Vec<KeyRecord> = expected[4..].to_vec();
    want.push(late.clone());
    assert_eq!(rest, want, "pages after the cursor");
    mine.extend([early, tie_before, late]);
    assert_eq!(list_all(&store, owner, 5).await, sorted(mine));
}

/// The max-keys check counts keys that are neither revoked nor expired at `now` (inactive keys
/// count), and a refused create stores nothing.
pub async fn case_max_keys(store: Arc<dyn KeyStore>) {
    let owner = "limited";
    let now = at(1000, 0);
    let k1 = record(owner, at(1, 0));
    let mut k2 = record(owner, at(2, 0));
    k2.is_active = false;
    let mut k3 = record(owner, at(3, 0));
    k3.expires_at = Some(now + Duration::seconds(1));
    for k in [&k1, &k2, &k3] {
        create(&store, k, Some(3), now).await;
    }
    let k4 = record(owner, at(4, 0));
    expect_kind(
        "fourth key",
        store.create(&k4, Some(3), now).await,
        StoreErrorKind::LimitReached,
    );
    assert!(
        must("get", store.get(&k4.key_id).await).await.is_none(),
        "refused create stored nothing"
    );
    expect_kind(
        "max 0",
        store.create(&record("fresh", at(0, 0)), Some(0), now).await,
        StoreErrorKind::LimitReached,
    );
    // A revoked key frees a slot.
    must("revoke", store.revoke(&k1.key_id, now).await).await;
    create(&store, &k4, Some(3), now).await;
    let k5 = record(owner, at(5, 0));
    expect_kind(
        "after the freed slot is used",
        store.create(&k5, Some(3), now).await,
        StoreErrorKind::LimitReached,
    );
    // Expired keys (including one expiring exactly now) don't count; unlimited creates pass.
    let mut gone = record(owner, at(6, 0));
    gone.expires_at = Some(now - Duration::microseconds(1));
    let mut edge = record(owner, at(7, 0));
    edge.expires_at = Some(now);
    create(&store, &gone, None, now).await;
    create(&store, &edge, None, now).await;
    expect_kind(
        "expired keys don't free more than they hold",
        store.create(&k5, Some(3), now).await,
        StoreErrorKind::LimitReached,
    );
    create(&store, &k5, Some(4), now).await; // k2, k3, k4 count: 3 < 4
    // Two seconds later k3 has expired.
    let later = now + Duration::seconds(2);
    let k6 = record(owner, at(8, 0));
    create(&store, &k6, Some(4), later).await; // k2, k4, k5
    expect_kind(
        "full again",
        store.create(&record(owner, at(9, 0)), Some(4), later).await,
        StoreErrorKind::LimitReached,
    );
    // Other owners are unaffected.
    create(&store, &record("limited-2", at(0, 0)), Some(1), now).await;
    create(&store, &record("LIMITED", at(0, 0)), Some(1), now).await;
    assert_eq!(list_all(&store, owner, 100).await.len(), 8);
}

/// 50 concurrent creates for one owner with a maximum of 5: exactly 5 succeed, 45 are refused
/// with `LimitReached`, and 5 keys are stored.
pub async fn case_concurrent_limit(store: Arc<dyn KeyStore>) {
    let owner = "racer";
    let now = at(100, 0);
    let records: Vec<KeyRecord> = (0..50).map(|i| record(owner, at(i, 0))).collect();
    let tasks: Vec<_> = records
        .iter()
        .cloned()
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move { store.create(&r, Some(5), now).await })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for t in futures::future::join_all(tasks).await {
        match t.expect("task") {
            Ok(()) => ok += 1,
            Err(e) if e.kind() == StoreErrorKind::LimitReached => limited += 1,
            Err(e) => panic!("concurrent create: unexpected {:?}: {e}", e.kind()),
        }
    }
    assert_eq!((ok, limited), (5, 45), "exactly 5 creates succeed");
    assert_eq!(list_all(&store, owner, 100).await.len(), 5);
    // Another owner racing at the same time is independent.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let owner = if i % 2 == 0 { "racer-a" } else { "racer-b" };
            let r = record(owner, at(i, 0));
            tokio::spawn(async move { store.create(&r, Some(3), now).await.is_ok() })
        })
        .collect();
    let n = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(true)))
        .count();
    assert_eq!(n, 6, "3 per owner");
}

/// Concurrent creates of one key id: exactly one wins, the rest are `Conflict`.
pub async fn case_concurrent_duplicates(store: Arc<dyn KeyStore>) {
    let r = record("dups", at(0, 0));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            let mut r = r.clone();
            r.name = format!("copy {i}");
            let max = if i % 2 == 0 { Some(100) } else { None };
            tokio::spawn(async move { store.create(&r, max, at(0, 0)).await })
        })
        .collect();
    let mut ok = 0;
    for t in futures::future::join_all(tasks).await {
        match t.expect("task") {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e.kind(), StoreErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(list_all(&store, "dups", 10).await.len(), 1);
}

fn engine(store: &Arc<dyn KeyStore>, cache: usize) -> Keyward {
    Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
        .cache(CacheConfig {
            capacity: cache,
            ttl: std::time::Duration::from_secs(30),
            ..CacheConfig::default()
        })
        .build()
        .expect("engine")
}

/// Through the full engine, with and without its cache: create → verify → usage flush →
/// rotate (both keys work during the grace) → revoke → verify fails as revoked.
pub async fn case_engine_lifecycle(store: Arc<dyn KeyStore>) {
    for cache in [0, 1000] {
        let kw = engine(&store, cache);
        let owner = format!("engine-owner-{cache}");
        let created = kw
            .create_key(
                &owner,
                CreateKeyRequest {
                    name: "engine".to_owned(),
                    scopes: vec!["reports:read".to_owned()],
                    metadata: Some(Metadata::from_iter([(
                        "plan".to_owned(),
                        serde_json::json!("pro"),
                    )])),
                    ..CreateKeyRequest::default()
                },
            )
            .await
            .expect("create_key");
        let raw = created.api_key.expose_secret().to_owned();
        let key_id = created.key.id;
        let need = ScopeRequirement::all_of(["reports:read"]).unwrap();
        let ctx = VerifyContext::default();

        let p = kw.verify(&raw, &need, &ctx).await.expect("verify");
        assert_eq!(p.key_id(), key_id);
        assert_eq!(p.owner_id(), owner);
        assert_eq!(p.metadata().get("plan"), Some(&serde_json::json!("pro")));
        let denied = kw
            .verify(&raw, &ScopeRequirement::all_of(["admin"]).unwrap(), &ctx)
            .await;
        assert!(matches!(denied, Err(VerifyError::ScopeDenied { .. })));

        kw.flush_usage().await.expect("flush");
        let stored = get(&store, &key_id).await;
        assert!(
            stored.usage.request_count >= 1,
            "usage flushed to the store"
        );

        let rotated = kw
            .rotate_key(
                &Actor::owner(&owner),
                &key_id,
                RotateKeyRequest::default(),
                None,
            )
            .await
            .expect("rotate");
        let new_raw = rotated.api_key.expose_secret().to_owned();
        let new_id = rotated.key.id;
        assert_eq!(
            get(&store, &new_id).await.rotated_from,
            Some(key_id),
            "successor remembers its predecessor"
        );
        assert!(
            get(&store, &key_id).await.expires_at.is_some(),
            "old key expires"
        );
        kw.verify(&new_raw, &need, &ctx)
            .await
            .expect("successor works");
        kw.verify(&raw, &need, &ctx)
            .await
            .expect("old key works during the grace");
        let page = kw
            .list_keys(&Actor::owner(&owner), None, None)
            .await
            .expect("list");
        assert_eq!(page.items.len(), 2);

        let view = kw
            .revoke_key(&Actor::owner(&owner), &new_id, None)
            .await
            .expect("revoke");
        assert!(view.revoked_at.is_some());
        let again = kw
            .revoke_key(&Actor::owner(&owner), &new_id, None)
            .await
            .expect("revoke again");
        assert_eq!(again.revoked_at, view.revoked_at, "idempotent");
        assert!(matches!(
            kw.verify(&new_raw, &need, &ctx).await,
            Err(VerifyError::Invalid(InvalidReason::Revoked))
        ));
        kw.verify(&raw, &need, &ctx)
            .await
            .expect("the predecessor is unaffected");
        assert!(
            kw.revoke_key(&Actor::owner("intruder"), &key_id, None)
                .await
                .is_err()
        );
        kw.verify(&raw, &need, &ctx)
            .await
            .expect("another owner cannot revoke it");
    }
}

/// Through the engine with a manual clock: a key with a TTL stops verifying when it expires.
pub async fn case_engine_expiry(store: Arc<dyn KeyStore>) {
    let clock = Arc::new(ManualClock::new(keyward_core::clock::micros(Utc::now())));
    let kw = Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
        .cache(CacheConfig {
            capacity: 0,
            ttl: std::time::Duration::from_secs(30),
            ..CacheConfig::default()
        })
        .clock(clock.clone())
        .build()
        .expect("engine");
    let created = kw
        .create_key(
            "expiring",
            CreateKeyRequest {
                name: "short".to_owned(),
                ttl_seconds: Some(60),
                ..CreateKeyRequest::default()
            },
        )
        .await
        .expect("create");
    let raw = created.api_key.expose_secret().to_owned();
    let ctx = VerifyContext::default();
    kw.verify(&raw, &ScopeRequirement::none(), &ctx)
        .await
        .expect("fresh key");
    clock.advance(Duration::seconds(61));
    assert!(matches!(
        kw.verify(&raw, &ScopeRequirement::none(), &ctx).await,
        Err(VerifyError::Invalid(InvalidReason::Expired))
    ));
}
