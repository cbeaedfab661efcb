//! `RedisKeyStore` against the shared Redis: the store contract (create with limit, conflict,
//! get, cursor listing, update, set_digest, revoke, usage), one random key prefix per test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use keyward_core::Keyring;
use keyward_core::key::KeyId;
use keyward_core::model::{Credits, KeyRecord, RateLimit, Usage};
use keyward_core::scope::ScopeSet;
use keyward_core::store::{Cursor, KeyStore, StoreErrorKind, UsageDelta};
use keyward_redis::RedisKeyStore;
use keyward_test::store_suite::{event_about, event_for};
use time::{Duration, OffsetDateTime};

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_900_000_000 + secs).unwrap()
        + Duration::nanoseconds(123_456_000)
}

fn record(owner: &str, created: OffsetDateTime) -> KeyRecord {
    let key_id = KeyId::generate().unwrap();
    KeyRecord {
        key_id,
        owner_id: owner.to_owned(),
        name: "test key".into(),
        description: Some("desc".into()),
        env: "live".into(),
        prefix: "kw".into(),
        digest: Keyring::insecure_test_keyring().digest(&key_id, "s3cret"),
        sealed_secret: None,
        scopes: ScopeSet::parse(["reports:read"]).unwrap(),
        metadata: serde_json::json!({"team": "a", "big": 9_007_199_254_740_993_u64})
            .as_object()
            .unwrap()
            .clone(),
        ip_allowlist: vec!["10.0.0.0/8".parse().unwrap()],
        rate_limit: Some(RateLimit {
            requests: 5,
            window_seconds: 60,
        }),
        credits: Some(Credits {
            limit: 10,
            refill_seconds: Some(3600),
        }),
        usage: Usage::default(),
        is_active: true,
        created_at: created,
        updated_at: created,
        not_before: None,
        expires_at: Some(created + Duration::days(30)),
        last_used_at: None,
        last_used_from: None,
        revoked_at: None,
        rotated_from: None,
        rotated_to: None,
        deactivated_by: None,
        lineage: None,
    }
}

async fn setup(test: &str) -> Option<(RedisKeyStore, String, String)> {
    let url = common::shared_redis(test).await?;
    let prefix = common::unique_prefix();
    let store = RedisKeyStore::new(&common::config(&url, &prefix)).unwrap();
    Some((store, url, prefix))
}

#[tokio::test]
async fn create_get_round_trip_and_conflict() {
    let Some((store, url, prefix)) = setup("create_get_round_trip_and_conflict").await else {
        return;
    };
    let r = record("owner-{odd}%", t(0));
    store.create(&r, None, t(0), &event_for(&r)).await.unwrap();
    assert_eq!(store.get(&r.key_id).await.unwrap(), Some(r.clone()));
    let err = store
        .create(&r, None, t(0), &event_for(&r))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict);
    assert_eq!(store.get(&KeyId::generate().unwrap()).await.unwrap(), None);
    store.ping().await.unwrap();
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn max_keys_counts_only_live_keys() {
    let Some((store, url, prefix)) = setup("max_keys_counts_only_live_keys").await else {
        return;
    };
    let a = record("o", t(0));
    let mut b = record("o", t(1));
    b.expires_at = Some(t(10));
    store
        .create(&a, Some(2), t(1), &event_for(&a))
        .await
        .unwrap();
    store
        .create(&b, Some(2), t(1), &event_for(&b))
        .await
        .unwrap();
    let c = record("o", t(2));
    assert_eq!(
        store
            .create(&c, Some(2), t(2), &event_for(&c))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::LimitReached
    );
    assert_eq!(
        store.get(&c.key_id).await.unwrap(),
        None,
        "a refused create leaves no record"
    );
    // b expires at t(10): from then on it no longer counts.
    store
        .create(&c, Some(2), t(10), &event_for(&c))
        .await
        .unwrap();
    // Revoking frees a slot too.
    let d = record("o", t(11));
    assert_eq!(
        store
            .create(&d, Some(2), t(11), &event_for(&d))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::LimitReached
    );
    store
        .revoke(&a.key_id, t(11), None, &event_about(&a.key_id))
        .await
        .unwrap();
    store
        .create(&d, Some(2), t(11), &event_for(&d))
        .await
        .unwrap();
    // Another owner is unaffected.
    store
        .create(
            &record("p", t(11)),
            Some(2),
            t(11),
            &event_for(&record("p", t(11))),
        )
        .await
        .unwrap();
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn fifty_concurrent_creates_with_max_five_give_exactly_five() {
    let Some((store, url, prefix)) = setup("fifty_concurrent_creates").await else {
        return;
    };
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .create(
                        &record("busy", t(i)),
                        Some(5),
                        t(100),
                        &event_for(&record("busy", t(i))),
                    )
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e.kind(), StoreErrorKind::LimitReached),
        }
    }
    assert_eq!(ok, 5);
    let page = store
        .list(
            &keyward_core::store::KeyFilter::all(time::OffsetDateTime::now_utc()).owner("busy"),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 5);
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn cursor_listing_is_ordered_and_stable() {
    let Some((store, url, prefix)) = setup("cursor_listing").await else {
        return;
    };
    let mut all = Vec::new();
    // Several keys share a created_at: ties are broken by key id.
    for i in 0..7 {
        let r = record("lister", t(i / 2));
        store.create(&r, None, t(10), &event_for(&r)).await.unwrap();
        all.push(r);
    }
    store
        .create(
            &record("other", t(0)),
            None,
            t(10),
            &event_for(&record("other", t(0))),
        )
        .await
        .unwrap();
    all.sort_by_key(|r| (r.created_at, r.key_id));
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(
                &keyward_core::store::KeyFilter::all(time::OffsetDateTime::now_utc())
                    .owner("lister"),
                cursor,
                3,
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|r| r.key_id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, all.iter().map(|r| r.key_id).collect::<Vec<_>>());
    // A cursor from the middle resumes right after it.
    let page = store
        .list(
            &keyward_core::store::KeyFilter::all(time::OffsetDateTime::now_utc()).owner("lister"),
            Some(Cursor::after(&all[2])),
            100,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);
    assert_eq!(page.items[0].key_id, all[3].key_id);
    assert!(page.next_cursor.is_none());
    assert!(
        store
            .list(
                &keyward_core::store::KeyFilter::all(time::OffsetDateTime::now_utc())
                    .owner("nobody"),
                None,
                10
            )
            .await
            .unwrap()
            .items
            .is_empty()
    );
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn update_changes_management_fields_only() {
    let Some((store, url, prefix)) = setup("update_changes_management_fields_only").await else {
        return;
    };
    let r = record("u", t(0));
    store.create(&r, None, t(0), &event_for(&r)).await.unwrap();
    store
        .record_usage(
            &[UsageDelta {
                key_id: r.key_id,
                last_used_at: Some(t(5)),
                last_used_from: None,
                requests: 3,
                credits: Some((0, 2)),
            }],
            &[],
        )
        .await
        .unwrap();
    let mut changed = r.clone();
    changed.name = "renamed".into();
    changed.scopes = ScopeSet::parse(["a:b", "c:*"]).unwrap();
    changed.is_active = false;
    changed.expires_at = None;
    changed.updated_at = t(6);
    changed.usage.request_count = 999; // ignored
    changed.revoked_at = Some(t(6)); // ignored
    store
        .update(&changed, r.updated_at, &event_for(&changed))
        .await
        .unwrap();
    let got = store.get(&r.key_id).await.unwrap().unwrap();
    assert_eq!(got.name, "renamed");
    assert_eq!(got.scopes, changed.scopes);
    assert!(!got.is_active);
    assert_eq!(got.expires_at, None);
    assert_eq!(got.updated_at, t(6));
    assert_eq!(
        got.usage,
        Usage {
            request_count: 3,
            credits_used: 2,
            credits_period: 0
        }
    );
    assert_eq!(got.last_used_at, Some(t(5)));
    assert_eq!(got.revoked_at, None);
    let missing = record("u", t(0));
    assert_eq!(
        store
            .update(&missing, missing.updated_at, &event_for(&missing))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::NotFound
    );
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn update_extending_an_expired_key_makes_it_count_again() {
    let Some((store, url, prefix)) = setup("update_extending_expired").await else {
        return;
    };
    let mut a = record("x", t(0));
    a.expires_at = Some(t(5));
    store
        .create(&a, Some(1), t(0), &event_for(&a))
        .await
        .unwrap();
    // Expired at t(6): a create prunes it and succeeds.
    let b = record("x", t(6));
    store
        .create(&b, Some(2), t(6), &event_for(&b))
        .await
        .unwrap();
    // Extending a brings it back into the count.
    a.expires_at = None;
    store
        .update(&a, a.updated_at, &event_for(&a))
        .await
        .unwrap();
    let c = record("x", t(7));
    assert_eq!(
        store
            .create(&c, Some(2), t(7), &event_for(&c))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::LimitReached
    );
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn set_digest_and_revoke() {
    let Some((store, url, prefix)) = setup("set_digest_and_revoke").await else {
        return;
    };
    let r = record("r", t(0));
    store.create(&r, None, t(0), &event_for(&r)).await.unwrap();
    let d = Keyring::insecure_test_keyring().digest(&r.key_id, "other");
    store
        .set_digest(&r.key_id, &d, &event_about(&r.key_id))
        .await
        .unwrap();
    assert_eq!(store.get(&r.key_id).await.unwrap().unwrap().digest, d);
    let missing = KeyId::generate().unwrap();
    assert_eq!(
        store
            .set_digest(&missing, &d, &event_about(&missing))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::NotFound
    );

    let revoked = store
        .revoke(&r.key_id, t(3), None, &event_about(&r.key_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t(3)));
    assert_eq!(revoked.updated_at, t(3));
    // The first revocation time is kept.
    let again = store
        .revoke(&r.key_id, t(9), None, &event_about(&r.key_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revoked_at, Some(t(3)));
    assert_eq!(again.updated_at, t(3));
    assert_eq!(
        store
            .revoke(&missing, t(9), None, &event_about(&missing))
            .await
            .unwrap(),
        None
    );
    // Update refuses a revoked key (revocation is final) and does not bring it back into the
    // count.
    assert_eq!(
        store
            .update(&r, t(3), &event_for(&r))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Stale
    );
    assert_eq!(
        store.get(&r.key_id).await.unwrap().unwrap().revoked_at,
        Some(t(3))
    );
    store
        .create(
            &record("r", t(10)),
            Some(1),
            t(10),
            &event_for(&record("r", t(10))),
        )
        .await
        .unwrap();
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn record_usage_follows_the_merge_rule() {
    let Some((store, url, prefix)) = setup("record_usage_follows_the_merge_rule").await else {
        return;
    };
    let r = record("n", t(0));
    store.create(&r, None, t(0), &event_for(&r)).await.unwrap();
    let id = r.key_id;
    let d = |last: Option<i64>, requests, credits| UsageDelta {
        key_id: id,
        last_used_at: last.map(t),
        last_used_from: None,
        requests,
        credits,
    };
    store
        .record_usage(&[d(Some(10), 2, Some((1, 4))), d(None, 0, None)], &[])
        .await
        .unwrap();
    store
        .record_usage(&[d(Some(5), 1, Some((1, 3)))], &[])
        .await
        .unwrap(); // older: time and credits kept
    store
        .record_usage(
            &[
                d(None, 1, Some((0, 50))),
                UsageDelta {
                    key_id: KeyId::generate().unwrap(),
                    last_used_at: None,
                    last_used_from: None,
                    requests: 1,
                    credits: None,
                },
            ],
            &[],
        )
        .await
        .unwrap();
    let got = store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        got.usage,
        Usage {
            request_count: 4,
            credits_used: 4,
            credits_period: 1
        }
    );
    assert_eq!(got.last_used_at, Some(t(10)));
    store
        .record_usage(&[d(Some(11), 0, Some((2, 1)))], &[])
        .await
        .unwrap();
    let got = store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        got.usage,
        Usage {
            request_count: 4,
            credits_used: 1,
            credits_period: 2
        }
    );
    assert_eq!(got.last_used_at, Some(t(11)));
    // A batch larger than one pipeline chunk.
    let many: Vec<_> = (0..600).map(|_| d(None, 1, None)).collect();
    store.record_usage(&many, &[]).await.unwrap();
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().usage.request_count,
        604
    );
    common::cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn prefixes_isolate_applications() {
    let Some((store, url, prefix)) = setup("prefixes_isolate_applications").await else {
        return;
    };
    let other_prefix = common::unique_prefix();
    let other = RedisKeyStore::new(&common::config(&url, &other_prefix)).unwrap();
    let r = record("shared-owner", t(0));
    store
        .create(&r, Some(1), t(0), &event_for(&r))
        .await
        .unwrap();
    assert_eq!(other.get(&r.key_id).await.unwrap(), None);
    other
        .create(
            &record("shared-owner", t(0)),
            Some(1),
            t(0),
            &event_for(&record("shared-owner", t(0))),
        )
        .await
        .unwrap();
    let ids: BTreeSet<_> = store
        .list(
            &keyward_core::store::KeyFilter::all(time::OffsetDateTime::now_utc())
                .owner("shared-owner"),
            None,
            10,
        )
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.key_id)
        .collect();
    assert_eq!(ids, BTreeSet::from([r.key_id]));
    common::cleanup(&url, &prefix).await;
    common::cleanup(&url, &other_prefix).await;
}

#[test]
fn invalid_prefix_and_url_are_refused() {
    assert!(RedisKeyStore::new(&common::config("redis://127.0.0.1:6379", "a{b}")).is_err());
    assert!(RedisKeyStore::new(&common::config("not a url", "kw")).is_err());
}

/// The outbox survives an instance that took an entry and died: another fans it out once the
/// entry has been idle 30 s. An entry whose write never happened (a crash right after staging
/// it) is dropped then, and never delivered.
#[tokio::test]
async fn outbox_entries_outlive_their_instance_and_phantoms_are_dropped() {
    use keyward_core::webhook::WebhookOutbox;
    use redis::AsyncCommands;
    let Some((a, url, prefix)) = setup("outbox_entries_outlive_their_instance").await else {
        return;
    };
    let a = a.with_outbox(true).unwrap();
    let b = RedisKeyStore::new(&common::config(&url, &prefix))
        .unwrap()
        .with_outbox(true)
        .unwrap();
    let endpoints = ["https://a.example/h".to_owned()];
    // Makes the consumer group.
    assert_eq!(a.fan_out(&endpoints, t(0), 10).await.unwrap(), 0);
    let r = record("o", t(0));
    a.create(&r, None, t(0), &event_for(&r)).await.unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!("{{{prefix}:wh}}:out");
    // A write staged and never run: its event is in no key's log.
    let phantom = record("o", t(1));
    let _: String = c
        .xadd(
            &stream,
            "*",
            &[
                ("k", phantom.key_id.to_string()),
                ("m", "00000000000000000000:x|{}".to_owned()),
            ],
        )
        .await
        .unwrap();
    // An instance that read both entries and died before fanning them out.
    let taken: redis::streams::StreamReadReply = c
        .xread_options(
            &[&stream],
            &[">"],
            &redis::streams::StreamReadOptions::default().group("fan", "died"),
        )
        .await
        .unwrap();
    assert_eq!(taken.keys[0].ids.len(), 2);
    assert_eq!(
        b.fan_out(&endpoints, t(2), 10).await.unwrap(),
        0,
        "another instance's entries wait for it"
    );
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    assert_eq!(b.fan_out(&endpoints, t(40), 10).await.unwrap(), 1);
    let claimed = b
        .claim(t(40), std::time::Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event.key_id, Some(r.key_id));
    let left: usize = c.xlen(&stream).await.unwrap();
    assert_eq!(left, 0, "the phantom entry is dropped, not kept");
    assert_eq!(b.fan_out(&endpoints, t(41), 10).await.unwrap(), 0);
    common::cleanup(&url, &prefix).await;
}
