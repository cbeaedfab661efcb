//! Cases about an owner's keys together: pagination, stability under inserts, the maximum, concurrent creates.

use std::sync::Arc;

use keyward_core::store::{Cursor, KeyStore, StoreErrorKind};
use keyward_core::{KeyId, KeyRecord};
use time::Duration;

use super::*;

pub(crate) fn sorted(mut v: Vec<KeyRecord>) -> Vec<KeyRecord> {
    v.sort_by_key(|r| (r.created_at, r.key_id));
    v
}

pub(crate) async fn list_all(store: &Arc<dyn KeyStore>, owner: &str, limit: u32) -> Vec<KeyRecord> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let page = must("list", store.list(&super::of(owner), cursor, limit).await).await;
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
    let page = must("list", store.list(&super::of(owner), None, 16).await).await;
    assert_eq!(page.items.len(), 16);
    assert!(page.next_cursor.is_none(), "no cursor after the last key");
    let page = must("list", store.list(&super::of(owner), None, 15).await).await;
    assert_eq!(page.next_cursor, Some(Cursor::after(&expected[14])));

    // A cursor pointing between stored keys (not at one) still works.
    let c = Cursor {
        created_at: at(0, 6),
        key_id: KeyId::MIN,
    };
    let page = must("list", store.list(&super::of(owner), Some(c), 100).await).await;
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
    let page = must("list", store.list(&super::of("nobody"), None, 10).await).await;
    assert!(page.items.is_empty() && page.next_cursor.is_none());
    let page = must("list", store.list(&super::of(""), None, 10).await).await;
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
    let p1 = must("list", store.list(&super::of(owner), None, 4).await).await;
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
        let p = must("list", store.list(&super::of(owner), Some(c), 4).await).await;
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
        store.create(&k4, Some(3), now, &event_for(&k4)).await,
        StoreErrorKind::LimitReached,
    );
    assert!(
        must("get", store.get(&k4.key_id).await).await.is_none(),
        "refused create stored nothing"
    );
    expect_kind(
        "max 0",
        create_refused(&store, &record("fresh", at(0, 0)), Some(0), now).await,
        StoreErrorKind::LimitReached,
    );
    // A revoked key frees a slot.
    must(
        "revoke",
        store
            .revoke(&k1.key_id, now, None, &event_about(&k1.key_id))
            .await,
    )
    .await;
    create(&store, &k4, Some(3), now).await;
    let k5 = record(owner, at(5, 0));
    expect_kind(
        "after the freed slot is used",
        store.create(&k5, Some(3), now, &event_for(&k5)).await,
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
        store.create(&k5, Some(3), now, &event_for(&k5)).await,
        StoreErrorKind::LimitReached,
    );
    create(&store, &k5, Some(4), now).await; // k2, k3, k4 count: 3 < 4
    // Two seconds later k3 has expired.
    let later = now + Duration::seconds(2);
    let k6 = record(owner, at(8, 0));
    create(&store, &k6, Some(4), later).await; // k2, k4, k5
    expect_kind(
        "full again",
        create_refused(&store, &record(owner, at(9, 0)), Some(4), later).await,
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
            tokio::spawn(async move { store.create(&r, Some(5), now, &event_for(&r)).await })
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
            tokio::spawn(
                async move { store.create(&r, Some(3), now, &event_for(&r)).await.is_ok() },
            )
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
            tokio::spawn(async move { store.create(&r, max, at(0, 0), &event_for(&r)).await })
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

/// Every page of the keys `filter` admits, `limit` at a time.
async fn list_filtered(
    store: &Arc<dyn KeyStore>,
    filter: &keyward_core::store::KeyFilter<'_>,
    limit: u32,
) -> Vec<KeyRecord> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..100_000 {
        let page = must("list", store.list(filter, cursor, limit).await).await;
        assert!(page.items.len() <= usize::try_from(limit).unwrap());
        for r in &page.items {
            assert!(filter.matches(r), "{filter:?} listed {:?}", r.key_id);
        }
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

/// A list filters by owner (or lists every owner's keys), environment and state, as
/// [`KeyRecord::state`] judges it at the filter's instant, across pages.
pub async fn case_list_filters(store: Arc<dyn KeyStore>) {
    let now = time::OffsetDateTime::now_utc();
    let owner = format!("filters-{}", super::new_id());
    let owner = owner.as_str();
    let mk = |secs, env: &str| {
        let mut r = record(owner, at(secs, 0));
        r.env = env.to_owned();
        r
    };
    let (live, test) = (mk(1, "live"), mk(2, "test"));
    let revoked = mk(3, "live");
    let mut inactive = mk(4, "live");
    inactive.is_active = false;
    let mut expired = mk(5, "test");
    expired.expires_at = Some(now - Duration::hours(1));
    let mut later = mk(6, "live");
    later.not_before = Some(now + Duration::days(1));
    later.expires_at = Some(now + Duration::days(2));
    for r in [&live, &test, &revoked, &inactive, &expired, &later] {
        create(&store, r, None, now).await;
    }
    must(
        "revoke",
        store
            .revoke(&revoked.key_id, now, None, &event_about(&revoked.key_id))
            .await,
    )
    .await;
    let ids = |v: Vec<KeyRecord>| -> Vec<KeyId> {
        v.into_iter()
            .filter(|r| r.owner_id == owner)
            .map(|r| r.key_id)
            .collect()
    };
    let all = keyward_core::store::KeyFilter::all(now);
    let mine = all.owner(owner);
    assert_eq!(
        ids(list_filtered(&store, &mine, 2).await),
        [&live, &test, &revoked, &inactive, &expired, &later].map(|r| r.key_id)
    );
    assert_eq!(
        ids(list_filtered(&store, &mine.env("test"), 1).await),
        [test.key_id, expired.key_id]
    );
    use keyward_core::model::KeyState;
    for (state, want) in [
        (KeyState::Active, vec![live.key_id, test.key_id]),
        (KeyState::Revoked, vec![revoked.key_id]),
        (KeyState::Inactive, vec![inactive.key_id]),
        (KeyState::Expired, vec![expired.key_id]),
        (KeyState::NotYetValid, vec![later.key_id]),
    ] {
        assert_eq!(
            ids(list_filtered(&store, &mine.state(state), 1).await),
            want,
            "{state:?}"
        );
    }
    assert_eq!(
        ids(list_filtered(&store, &mine.env("live").state(KeyState::Active), 3).await),
        [live.key_id]
    );
    // Without an owner: every owner's keys, this one's among them, still filtered.
    assert_eq!(
        ids(list_filtered(&store, &all, 100).await),
        [&live, &test, &revoked, &inactive, &expired, &later].map(|r| r.key_id)
    );
    assert_eq!(
        ids(list_filtered(&store, &all.state(KeyState::Revoked), 50).await),
        [revoked.key_id]
    );
    assert_eq!(
        ids(list_filtered(&store, &all.env("test").state(KeyState::Expired), 7).await),
        [expired.key_id]
    );
}

/// A batch create stores every key or none: a duplicate id or an owner pushed over the cap by
/// the batch (keys already stored plus the batch's) refuses all of it; within the cap, every
/// key is stored and listed, several owners in one call.
pub async fn case_create_many(store: Arc<dyn KeyStore>) {
    let now = at(1000, 0);
    let existing = record("batch-a", at(1, 0));
    create(&store, &existing, Some(3), now).await;
    let a2 = record("batch-a", at(2, 0));
    let a3 = record("batch-a", at(3, 0));
    let b1 = record("batch-b", at(2, 0));
    let over = record("batch-a", at(4, 0));
    expect_kind(
        "a batch over batch-a's cap",
        store
            .create_many(
                &[&b1, &a2, &a3, &over],
                Some(3),
                now,
                &events_for(&[&b1, &a2, &a3, &over]),
            )
            .await,
        StoreErrorKind::LimitReached,
    );
    let dup = record_with_id(existing.key_id, "batch-b", at(5, 0));
    expect_kind(
        "a batch with a stored id",
        store
            .create_many(&[&b1, &dup], None, now, &events_for(&[&b1, &dup]))
            .await,
        StoreErrorKind::Conflict,
    );
    for (what, k) in [("b1", &b1), ("a2", &a2), ("over", &over)] {
        assert!(
            must("get", store.get(&k.key_id).await).await.is_none(),
            "a refused batch stored {what}"
        );
    }
    let a_keys = must("list", store.list(&of("batch-a"), None, 10).await).await;
    assert_eq!(a_keys.items.len(), 1, "a refused batch took no slot");
    must(
        "batch within the cap",
        store
            .create_many(
                &[&b1, &a2, &a3],
                Some(3),
                now,
                &events_for(&[&b1, &a2, &a3]),
            )
            .await,
    )
    .await;
    let a_keys = must("list", store.list(&of("batch-a"), None, 10).await).await;
    let ids: Vec<KeyId> = a_keys.items.iter().map(|r| r.key_id).collect();
    assert_eq!(ids, [existing.key_id, a2.key_id, a3.key_id]);
    let got = must("get", store.get(&b1.key_id).await).await;
    assert_eq!(got.as_ref(), Some(&b1), "stored as given");
    expect_kind(
        "batch-a is full",
        store.create(&over, Some(3), now, &event_for(&over)).await,
        StoreErrorKind::LimitReached,
    );
}

/// Many reads at once, of known and unknown ids and the same id several times (a store may
/// read them together): each gets exactly its own key, or none.
pub async fn case_concurrent_gets(store: Arc<dyn KeyStore>) {
    let known: Vec<KeyRecord> = (0..12).map(|i| record("readers", at(i, 0))).collect();
    for r in &known {
        create(&store, r, None, at(100, 0)).await;
    }
    let unknown: Vec<KeyId> = (0..12).map(|_| new_id()).collect();
    let tasks: Vec<_> = (0..240)
        .map(|i| {
            let store = store.clone();
            let (id, want) = if i % 2 == 0 {
                let r = &known[(i / 2) % known.len()];
                (r.key_id, Some(r.clone()))
            } else {
                (unknown[(i / 2) % unknown.len()], None)
            };
            tokio::spawn(async move { (store.get(&id).await, want) })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        let (got, want) = t.expect("task");
        assert_eq!(got.expect("get"), want);
    }
}
