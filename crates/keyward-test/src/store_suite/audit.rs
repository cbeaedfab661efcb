//! The audit log: each write stores its event when, and only when, it changes the key; reads
//! come back newest first, whole, filtered and paged; retention deletes the oldest first.

use std::sync::Arc;

use keyward_core::Actor;
use keyward_core::audit::{
    Action, ActorKind, Event, EventCursor, EventFilter, EventId, Origin, changes, settings,
};
use keyward_core::store::{KeyStore, StoreErrorKind};

use super::fixtures::{at, digest, expect_kind, must, record};

fn ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

async fn read(store: &Arc<dyn KeyStore>, filter: &EventFilter<'_>) -> Vec<Event> {
    let mut all = Vec::new();
    let mut cursor: Option<EventCursor> = None;
    loop {
        let page = must("events", store.events(filter, cursor, 100).await).await;
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
}

/// Create, batch create, update, a stale update, a re-digest, a revoke and a second revoke:
/// six events, in the logs of their keys and of every key, with their actors, origins and
/// changes as written.
pub async fn case_audit_log(store: Arc<dyn KeyStore>) {
    let owner = "audited";
    let r = record(owner, at(0, 0));
    let origin = Origin::new(
        Some("203.0.113.9".parse().unwrap()),
        Some(b"curl/8.5"),
        Some(b"req-1"),
    );
    let by_owner = Actor::owner(owner).with_origin(origin);
    let created = Event::new(Action::KeyCreated, &by_owner, &r, at(0, 0))
        .unwrap()
        .with_changes(settings(&r));
    must(
        "create",
        store.create(&r, Some(5), at(0, 0), &created).await,
    )
    .await;

    let other = record("someone-else", at(0, 5));
    let batch = Event::new(Action::KeyCreated, &Actor::cli(), &other, at(0, 5)).unwrap();
    must(
        "create_many",
        store
            .create_many(&[&other], None, at(0, 5), std::slice::from_ref(&batch))
            .await,
    )
    .await;

    let mut renamed = r.clone();
    renamed.name = "renamed".to_owned();
    renamed.expires_at = Some(at(9_000, 0));
    renamed.updated_at = at(1, 0);
    let admin = Actor::admin().by(ActorKind::Admin, None);
    let updated = Event::new(Action::KeyUpdated, &admin, &renamed, at(1, 0))
        .unwrap()
        .with_changes(changes(&r, &renamed));
    assert_eq!(updated.changes.len(), 2, "{:?}", updated.changes);
    must(
        "update",
        store.update(&renamed, r.updated_at, &updated).await,
    )
    .await;
    // A write the version check refuses records nothing.
    let mut stale = renamed.clone();
    stale.updated_at = at(1, 5);
    let lost = Event::new(Action::KeyUpdated, &admin, &stale, at(1, 5)).unwrap();
    expect_kind(
        "stale update",
        store.update(&stale, r.updated_at, &lost).await,
        StoreErrorKind::Stale,
    );

    let system = Actor::admin().by(ActorKind::System, None);
    let redigested = Event::new(Action::KeyRedigested, &system, &r, at(2, 0)).unwrap();
    must(
        "set_digest",
        store
            .set_digest(&r.key_id, &digest(7, 2), &redigested)
            .await,
    )
    .await;

    let key_caller = Actor::admin().by(ActorKind::AdminKey, Some("AdminKey0001".into()));
    let revoked = Event::new(Action::KeyRevoked, &key_caller, &r, at(3, 0)).unwrap();
    must(
        "revoke",
        store.revoke(&r.key_id, at(3, 0), None, &revoked).await,
    )
    .await;
    // Revoking again changes nothing and records nothing.
    let again = Event::new(Action::KeyRevoked, &key_caller, &r, at(4, 0)).unwrap();
    must(
        "revoke again",
        store.revoke(&r.key_id, at(4, 0), None, &again).await,
    )
    .await;

    let mut of_key = EventFilter::default();
    of_key.key_id = Some(r.key_id);
    let mine = read(&store, &of_key).await;
    assert_eq!(
        mine,
        vec![
            revoked.clone(),
            redigested.clone(),
            updated.clone(),
            created.clone()
        ],
        "the key's log, newest first, whole"
    );

    let everything = read(&store, &EventFilter::default()).await;
    assert_eq!(
        ids(&everything),
        vec![revoked.id, redigested.id, updated.id, batch.id, created.id]
    );
    let mut of_owner = EventFilter::default();
    of_owner.owner_id = Some("someone-else");
    assert_eq!(ids(&read(&store, &of_owner).await), vec![batch.id]);
    let mut of_action = EventFilter::default();
    of_action.action = Some(Action::KeyUpdated);
    assert_eq!(ids(&read(&store, &of_action).await), vec![updated.id]);
    let mut of_actor = EventFilter::default();
    of_actor.actor_kind = Some(ActorKind::Owner);
    of_actor.actor_id = Some(owner);
    assert_eq!(ids(&read(&store, &of_actor).await), vec![created.id]);
    let mut window = EventFilter::default();
    window.since = Some(at(1, 0));
    window.until = Some(at(3, 0));
    assert_eq!(
        ids(&read(&store, &window).await),
        vec![redigested.id, updated.id],
        "since is inclusive, until exclusive"
    );

    // Pages of two walk the log once, in order.
    let mut paged = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = must(
            "page",
            store.events(&EventFilter::default(), cursor, 2).await,
        )
        .await;
        assert!(page.items.len() <= 2);
        paged.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(ids(&paged), ids(&everything));

    // Retention: the oldest first, a batch at a time.
    assert_eq!(
        must("prune", store.prune_events(at(2, 0), 1).await).await,
        1
    );
    assert_eq!(
        must("prune", store.prune_events(at(2, 0), 100).await).await,
        2
    );
    assert_eq!(
        must("prune", store.prune_events(at(2, 0), 100).await).await,
        0
    );
    assert_eq!(
        ids(&read(&store, &EventFilter::default()).await),
        vec![revoked.id, redigested.id]
    );
    assert_eq!(
        ids(&read(&store, &of_key).await),
        vec![revoked.id, redigested.id],
        "pruned from the key's own log too"
    );
}

/// A create the owner cap refuses, and one of a duplicate id, record nothing.
pub async fn case_audit_refused_creates(store: Arc<dyn KeyStore>) {
    let owner = "capped";
    let first = record(owner, at(0, 0));
    let ok = Event::new(Action::KeyCreated, &Actor::admin(), &first, at(0, 0)).unwrap();
    must("create", store.create(&first, Some(1), at(0, 0), &ok).await).await;
    let second = record(owner, at(0, 1));
    let refused = Event::new(Action::KeyCreated, &Actor::admin(), &second, at(0, 1)).unwrap();
    expect_kind(
        "over the cap",
        store.create(&second, Some(1), at(0, 1), &refused).await,
        StoreErrorKind::LimitReached,
    );
    let dup = Event::new(Action::KeyCreated, &Actor::admin(), &first, at(0, 2)).unwrap();
    expect_kind(
        "duplicate",
        store.create(&first, None, at(0, 2), &dup).await,
        StoreErrorKind::Conflict,
    );
    let batch = Event::new(Action::KeyCreated, &Actor::admin(), &second, at(0, 3)).unwrap();
    expect_kind(
        "batch over the cap",
        store
            .create_many(&[&second], Some(1), at(0, 3), std::slice::from_ref(&batch))
            .await,
        StoreErrorKind::LimitReached,
    );
    let mut of_second = EventFilter::default();
    of_second.key_id = Some(second.key_id);
    assert!(read(&store, &of_second).await.is_empty());
    assert_eq!(
        ids(&read(&store, &EventFilter::default()).await),
        vec![ok.id]
    );
}

/// Notices (events without a change) appended twice, by two instances at two instants: the
/// store keeps the first of each id, in the key's log and in the log of every key.
pub async fn case_notices_append_once(store: Arc<dyn KeyStore>) {
    use keyward_core::audit::Change;
    let key = super::fixtures::new_id();
    let notice = |secs, window: &str| {
        Event::notice(
            Action::KeyRateLimited,
            "noticed",
            key,
            at(secs, 0),
            window,
            vec![Change::fact("window_start", serde_json::json!(window))],
        )
    };
    let first = notice(10, "60:1");
    must("append", store.append(std::slice::from_ref(&first)).await).await;
    must("append", store.append(&[notice(11, "60:1")]).await).await;
    must("append", store.append(&[notice(70, "60:2")]).await).await;
    let mut by_key = EventFilter::default();
    by_key.key_id = Some(key);
    let mine = read(&store, &by_key).await;
    assert_eq!(mine.len(), 2, "one per id: {mine:?}");
    assert_eq!(mine[1], first, "the first of an id stays, whole");
    assert_eq!(mine[0].action, Action::KeyRateLimited);
    let mut by_owner = EventFilter::default();
    by_owner.owner_id = Some("noticed");
    assert_eq!(ids(&read(&store, &by_owner).await), ids(&mine));
}
