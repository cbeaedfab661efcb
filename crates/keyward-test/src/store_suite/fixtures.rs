//! Records, digests and times the cases build, and the assertions they share.

use std::sync::Arc;

use keyward_core::audit::{Action, Event};
use keyward_core::digest::{DigestAlgorithm, KeyDigest};
use keyward_core::model::{
    Credits, Deactivator, IpNet, Lineage, Metadata, RateLimit, SealedSecret, Usage,
};
use keyward_core::store::{KeyStore, StoreError, StoreErrorKind};
use keyward_core::{KeyId, KeyRecord, ScopeSet};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// `2026-03-04T05:06:07Z` plus `secs` seconds and `micros` microseconds.
#[must_use]
pub fn at(secs: i64, micros: u32) -> OffsetDateTime {
    let base = datetime!(2026-03-04 05:06:07 UTC);
    base + Duration::seconds(secs) + Duration::microseconds(i64::from(micros))
}

pub(crate) fn new_id() -> KeyId {
    KeyId::generate().expect("os random")
}

pub(crate) fn id(s: &str) -> KeyId {
    s.parse().expect("valid key id")
}

/// An event about `r` (`key.updated`, by the application, at `r.updated_at`): what a case
/// that writes a record directly hands the store with it.
#[must_use]
pub fn event_for(r: &KeyRecord) -> Event {
    Event::new(
        Action::KeyUpdated,
        &keyward_core::Actor::admin(),
        r,
        r.updated_at,
    )
    .expect("os random")
}

/// [`event_for`] each of `records`.
#[must_use]
pub fn events_for(records: &[&KeyRecord]) -> Vec<Event> {
    records.iter().map(|r| event_for(r)).collect()
}

/// An event about the key `key_id` of an owner the case does not name.
#[must_use]
pub fn event_about(key_id: &KeyId) -> Event {
    Event::about(
        Action::KeyUpdated,
        &keyward_core::Actor::admin(),
        "suite-owner",
        *key_id,
        at(0, 0),
    )
    .expect("os random")
}

/// `store.create` of `r`, expected to be refused: its answer.
///
/// # Errors
/// The store's refusal.
pub async fn create_refused(
    store: &Arc<dyn KeyStore>,
    r: &KeyRecord,
    max: Option<u32>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    store.create(r, max, now, &event_for(r)).await
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
pub fn record(owner: &str, created_at: OffsetDateTime) -> KeyRecord {
    record_with_id(new_id(), owner, created_at)
}

/// A minimal record with a given id.
#[must_use]
pub fn record_with_id(key_id: KeyId, owner: &str, created_at: OffsetDateTime) -> KeyRecord {
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
        last_used_from: None,
        revoked_at: None,
        rotated_from: None,
        rotated_to: None,
        deactivated_by: None,
        lineage: None,
    }
}

/// A record with every field set to something a store could get wrong.
#[must_use]
pub fn full_record(owner: &str, created_at: OffsetDateTime) -> KeyRecord {
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
        last_used_from: None,
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

pub(crate) async fn must<T>(what: &str, r: Result<T, StoreError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected store error {:?}: {e}", e.kind()),
    }
}

pub(crate) fn expect_kind<T: std::fmt::Debug>(
    what: &str,
    r: Result<T, StoreError>,
    kind: StoreErrorKind,
) {
    match r {
        Ok(v) => panic!("{what}: expected {kind:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(e.kind(), kind, "{what}: wrong error kind ({e})"),
    }
}

pub(crate) async fn get(store: &Arc<dyn KeyStore>, key_id: &KeyId) -> KeyRecord {
    must("get", store.get(key_id).await)
        .await
        .unwrap_or_else(|| panic!("key {key_id} should exist"))
}

pub(crate) async fn create(
    store: &Arc<dyn KeyStore>,
    r: &KeyRecord,
    max: Option<u32>,
    now: OffsetDateTime,
) {
    must("create", store.create(r, max, now, &event_for(r)).await).await;
}
