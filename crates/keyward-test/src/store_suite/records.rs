//! Cases about one record: round trips, unknown ids, duplicates, updates and their version check, digests, revocation, usage.

use std::sync::Arc;

use keyward_core::digest::DigestAlgorithm;
use keyward_core::memory::apply_usage;
use keyward_core::model::{Credits, Deactivator, Metadata, RateLimit, SealedSecret, Usage};
use keyward_core::store::{KeyStore, StoreErrorKind, UsageDelta};
use keyward_core::{KeyId, ScopeSet};
use time::{Duration, OffsetDateTime};

use super::*;

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
        store.create(&dup, None, at(9, 9), &event_for(&dup)).await,
        StoreErrorKind::Conflict,
    );
    expect_kind(
        "duplicate create with limit",
        store
            .create(&dup, Some(100), at(9, 9), &event_for(&dup))
            .await,
        StoreErrorKind::Conflict,
    );
    expect_kind(
        "duplicate create, same owner",
        store.create(&r, Some(100), at(9, 9), &event_for(&r)).await,
        StoreErrorKind::Conflict,
    );
    assert_eq!(get(&store, &r.key_id).await, r);
    let page = must(
        "list",
        store.list(&super::of("someone-else"), None, 10).await,
    )
    .await;
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
    must(
        "update",
        store
            .update(&changed, before.updated_at, &event_for(&changed))
            .await,
    )
    .await;

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
    must(
        "update",
        store
            .update(&again, expected.updated_at, &event_for(&again))
            .await,
    )
    .await;
    assert_eq!(get(&store, &r.key_id).await, again);

    let ghost = record("owner-up", at(0, 0));
    expect_kind(
        "update unknown",
        store
            .update(&ghost, ghost.updated_at, &event_for(&ghost))
            .await,
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
    must(
        "first update",
        store.update(&first, r.updated_at, &event_for(&first)).await,
    )
    .await;
    expect_kind(
        "an update from the same stale read",
        store
            .update(&second, r.updated_at, &event_for(&second))
            .await,
        StoreErrorKind::Stale,
    );
    assert_eq!(get(&store, &r.key_id).await.name, "first");

    must(
        "revoke",
        store
            .revoke(&r.key_id, at(2, 0), None, &event_about(&r.key_id))
            .await,
    )
    .await;
    let fresh = get(&store, &r.key_id).await;
    let mut after = fresh.clone();
    after.is_active = false;
    after.updated_at = at(3, 0);
    expect_kind(
        "an update of a revoked key",
        store
            .update(&after, fresh.updated_at, &event_for(&after))
            .await,
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
                    match store.update(&current, expected, &event_for(&current)).await {
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
    must(
        "set_digest",
        store
            .set_digest(&r.key_id, &d, &event_about(&r.key_id))
            .await,
    )
    .await;
    let mut expected = r.clone();
    expected.digest = d;
    assert_eq!(get(&store, &r.key_id).await, expected);
    expect_kind(
        "set_digest unknown",
        store
            .set_digest(&new_id(), &digest(1, 1), &event_about(&new_id()))
            .await,
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

    let first = must(
        "revoke",
        store
            .revoke(&r.key_id, at(10, 123_457), None, &event_about(&r.key_id))
            .await,
    )
    .await
    .expect("revoke of an existing key returns it");
    assert_eq!(first.revoked_at, Some(at(10, 123_457)));
    assert_eq!(first.key_id, r.key_id);
    assert_eq!(first, get(&store, &r.key_id).await, "returned = stored");

    let second = must(
        "revoke again",
        store
            .revoke(&r.key_id, at(20, 0), None, &event_about(&r.key_id))
            .await,
    )
    .await
    .expect("still there");
    assert_eq!(second.revoked_at, Some(at(10, 123_457)), "first time kept");
    assert_eq!(second, first);
    assert_eq!(get(&store, &r.key_id).await, first);

    assert!(
        must(
            "revoke unknown",
            store
                .revoke(&new_id(), at(1, 0), None, &event_about(&new_id()))
                .await
        )
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
    // Usage the key was created with (a rotation's successor carries its predecessor's):
    // flushes merge with it, whether they are ahead of it or behind.
    r.usage = Usage {
        request_count: 4,
        credits_period: 0,
        credits_used: 4,
    };
    r.last_used_at = Some(at(55, 0));
    let bystander = record("owner-us", at(0, 1));
    create(&store, &r, None, at(0, 0)).await;
    create(&store, &bystander, None, at(0, 1)).await;
    let mut expected = r.clone();

    // Where each use came from goes with its time: the later one is kept.
    let from = |t: OffsetDateTime| keyward_core::audit::Origin {
        client_addr: Some(std::net::IpAddr::from([10, 0, 0, t.second()])),
        user_agent: Some(format!("agent/{} ü", t.unix_timestamp())),
        request_id: None,
    };
    let d = |requests, last: Option<OffsetDateTime>, credits| UsageDelta {
        key_id: r.key_id,
        last_used_at: last,
        last_used_from: last.map(from),
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
                last_used_from: None,
                requests: 9,
                credits: Some((5, 5)),
            },
            d(1, Some(at(65, 0)), Some((1, 3))),
        ],
        vec![d(u64::from(u32::MAX), Some(at(70, 999_999)), None)],
    ];
    for (i, batch) in batches.iter().enumerate() {
        must("record_usage", store.record_usage(batch, &[]).await).await;
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
    assert_eq!(expected.usage.request_count, 17 + u64::from(u32::MAX));
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

/// A revocation with an expected version (`DELETE` with `If-Match`) is one conditional write:
/// while `updated_at` is another, nothing changes; at the expected one, the key is revoked.
pub async fn case_revoke_version_check(store: Arc<dyn KeyStore>) {
    let r = record("owner-rvc", at(0, 0));
    create(&store, &r, None, at(0, 0)).await;
    let stale = must(
        "revoke at a stale version",
        store
            .revoke(&r.key_id, at(5, 0), Some(at(0, 1)), &event_about(&r.key_id))
            .await,
    )
    .await
    .expect("still there");
    assert_eq!(
        stale.revoked_at, None,
        "revoked past a failed version check"
    );
    assert_eq!(get(&store, &r.key_id).await, r, "unchanged");
    let revoked = must(
        "revoke at the current version",
        store
            .revoke(
                &r.key_id,
                at(6, 0),
                Some(r.updated_at),
                &event_about(&r.key_id),
            )
            .await,
    )
    .await
    .expect("still there");
    assert_eq!(revoked.revoked_at, Some(at(6, 0)));
    assert_eq!(revoked.updated_at, at(6, 0));
}
