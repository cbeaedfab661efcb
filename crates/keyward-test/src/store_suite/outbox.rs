//! The webhook outbox ([`WebhookOutbox`]) of a store that keeps one: events written with their
//! changes are fanned out once per endpoint, claimed under a lease (never twice at once, again
//! when the lease ends), settled, listed and redelivered.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use keyward_core::audit::EventId;
use keyward_core::store::KeyStore;
use keyward_core::webhook::{
    Attempt, DeliveryStatus, DisabledEndpoint, Settlement, WebhookOutbox, endpoint_id,
};

use super::fixtures::{at, event_for, must, record};

/// `keys` and `outbox` are one fresh store that keeps an outbox.
pub async fn case_webhook_outbox(keys: Arc<dyn KeyStore>, outbox: Arc<dyn WebhookOutbox>) {
    let r = record("hooked", at(0, 0));
    let created = event_for(&r);
    must("create", keys.create(&r, None, at(0, 0), &created).await).await;
    let mut renamed = r.clone();
    renamed.name = "renamed".into();
    renamed.updated_at = at(1, 0);
    let updated = event_for(&renamed);
    must(
        "update",
        keys.update(&renamed, r.updated_at, &updated).await,
    )
    .await;

    let endpoints = [
        "https://a.example/h".to_owned(),
        "https://b.example/h".to_owned(),
    ];
    let now = at(10, 0);
    assert_eq!(
        must("fan_out", outbox.fan_out(&endpoints, now, 10).await).await,
        2
    );
    assert_eq!(
        must("fan_out again", outbox.fan_out(&endpoints, now, 10).await).await,
        0,
        "each event is fanned out once"
    );
    // A write the store refuses (here: a stale version) sends nothing.
    let mut refused = renamed.clone();
    refused.name = "refused".into();
    refused.updated_at = at(2, 0);
    assert!(
        keys.update(&refused, r.updated_at, &event_for(&refused))
            .await
            .is_err(),
        "a stale version is refused"
    );
    assert_eq!(
        must("fan_out refused", outbox.fan_out(&endpoints, now, 10).await).await,
        0,
        "no delivery for a change that did not happen"
    );
    let lease = Duration::from_secs(60);
    let first = must("claim", outbox.claim(now, lease, 10).await).await;
    assert_eq!(first.len(), 4, "two events, two endpoints");
    assert!(first.iter().all(|d| d.attempts == 1));
    let events: HashSet<EventId> = first.iter().map(|d| d.event.id).collect();
    assert_eq!(events, HashSet::from([created.id, updated.id]));
    assert_eq!(
        first
            .iter()
            .find(|d| d.event.id == updated.id)
            .unwrap()
            .event,
        updated,
        "the event whole"
    );
    assert!(
        must("claim leased", outbox.claim(now, lease, 10).await)
            .await
            .is_empty(),
        "a leased delivery is not claimed twice"
    );

    let ok = Attempt {
        status: Some(204),
        error: None,
    };
    let bad = Attempt {
        status: Some(500),
        error: Some("HTTP 500".into()),
    };
    let (delivered, retried, failed, stalled) = (&first[0], &first[1], &first[2], &first[3]);
    must(
        "settle",
        outbox
            .settle(&delivered.id, &Settlement::Delivered, &ok, now)
            .await,
    )
    .await;
    let retry_at = at(15, 0);
    must(
        "settle",
        outbox
            .settle(&retried.id, &Settlement::Retry(retry_at), &bad, now)
            .await,
    )
    .await;
    must(
        "settle",
        outbox
            .settle(&failed.id, &Settlement::Failed, &bad, now)
            .await,
    )
    .await;
    assert!(
        must("claim early", outbox.claim(at(14, 0), lease, 10).await)
            .await
            .is_empty()
    );
    // After the lease: the retry, and the one whose attempt never settled (its instance died).
    let second = must("claim", outbox.claim(at(71, 0), lease, 10).await).await;
    let again: HashSet<EventId> = second.iter().map(|d| d.id).collect();
    assert_eq!(again, HashSet::from([retried.id, stalled.id]));
    assert!(second.iter().all(|d| d.attempts == 2));

    let (only, _) = must(
        "deliveries",
        outbox
            .deliveries(Some(DeliveryStatus::Failed), None, 10)
            .await,
    )
    .await;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].id, failed.id);
    assert_eq!(only[0].last_status, Some(500));
    assert_eq!(only[0].last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(only[0].settled_at, Some(now));
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = must("page", outbox.deliveries(None, cursor, 3).await).await;
        all.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(all.len(), 4);

    assert!(must("redeliver", outbox.redeliver(&failed.id, at(80, 0)).await).await);
    assert!(
        !must(
            "redeliver unknown",
            outbox
                .redeliver(&EventId::generate().unwrap(), at(80, 0))
                .await
        )
        .await
    );
    let third = must("claim", outbox.claim(at(80, 0), lease, 10).await).await;
    assert_eq!(third.len(), 1);
    assert_eq!((third[0].id, third[0].attempts), (failed.id, 1));

    // Retention takes the events' deliveries with them, pending or not.
    assert_eq!(
        must("prune", keys.prune_events(at(11, 0), 100).await).await,
        2
    );
    let (left, _) = must("deliveries", outbox.deliveries(None, None, 10).await).await;
    assert!(left.is_empty(), "{left:?}");

    // An endpoint disabled (it answered 410 Gone) stays so, for every instance, until enabled.
    let url = "https://user:pw@gone.example/h?token=t";
    let gone = DisabledEndpoint {
        id: endpoint_id(url),
        endpoint: "https://gone.example/h".into(),
        disabled_at: at(90, 0),
        reason: "410 Gone".into(),
    };
    must("disable", outbox.disable_endpoint(&gone).await).await;
    let again = DisabledEndpoint {
        disabled_at: at(95, 0),
        reason: "again".into(),
        ..gone.clone()
    };
    must("disable again", outbox.disable_endpoint(&again).await).await;
    assert_eq!(
        must("disabled", outbox.disabled_endpoints().await).await,
        vec![gone.clone()],
        "the first time and reason are kept"
    );
    assert!(
        !must(
            "enable other",
            outbox
                .enable_endpoint(&endpoint_id("https://a.example/h"))
                .await
        )
        .await
    );
    assert!(must("enable", outbox.enable_endpoint(&gone.id).await).await);
    assert!(!must("enable twice", outbox.enable_endpoint(&gone.id).await).await);
    assert!(
        must("disabled", outbox.disabled_endpoints().await)
            .await
            .is_empty()
    );
}

/// Retention keeps the newer events and their deliveries, and deletes the older ones with
/// theirs.
pub async fn case_webhook_retention(keys: Arc<dyn KeyStore>, outbox: Arc<dyn WebhookOutbox>) {
    let endpoint = ["https://a.example/h".to_owned()];
    let old = record("retained", at(0, 0));
    must(
        "create",
        keys.create(&old, None, at(0, 0), &event_for(&old)).await,
    )
    .await;
    let new = record("retained", at(50, 0));
    must(
        "create",
        keys.create(&new, None, at(50, 0), &event_for(&new)).await,
    )
    .await;
    must("fan_out", outbox.fan_out(&endpoint, at(60, 0), 10).await).await;
    let claimed = must(
        "claim",
        outbox.claim(at(60, 0), Duration::from_secs(1), 10).await,
    )
    .await;
    let ok = Attempt {
        status: Some(200),
        error: None,
    };
    for d in &claimed {
        must(
            "settle",
            outbox
                .settle(&d.id, &Settlement::Delivered, &ok, at(60, 0))
                .await,
        )
        .await;
    }
    // Events before 10 s go (the old one); deliveries settled and made before 10 s: none.
    assert_eq!(
        must("prune", keys.prune_events(at(10, 0), 100).await).await,
        1
    );
    let (left, _) = must("deliveries", outbox.deliveries(None, None, 10).await).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event.key_id, Some(new.key_id));
    assert_eq!(
        must("prune", keys.prune_events(at(61, 0), 100).await).await,
        1
    );
    let (left, _) = must("deliveries", outbox.deliveries(None, None, 10).await).await;
    assert!(left.is_empty(), "{left:?}");
}

/// Instances claiming at once take different deliveries.
pub async fn case_webhook_claims_are_exclusive(
    keys: Arc<dyn KeyStore>,
    outbox: Arc<dyn WebhookOutbox>,
) {
    for i in 0..20 {
        let r = record("many", at(i, 0));
        must(
            "create",
            keys.create(&r, None, at(i, 0), &event_for(&r)).await,
        )
        .await;
    }
    let endpoint = ["https://a.example/h".to_owned()];
    let now = at(100, 0);
    let mut fanned = 0;
    while fanned < 20 {
        let n = must("fan_out", outbox.fan_out(&endpoint, now, 7).await).await;
        assert!(n > 0);
        fanned += n;
    }
    let claims: Vec<_> = (0..4)
        .map(|_| {
            let outbox = Arc::clone(&outbox);
            tokio::spawn(async move { outbox.claim(now, Duration::from_secs(60), 10).await })
        })
        .collect();
    let mut seen = HashSet::new();
    for c in claims {
        for d in c.await.unwrap().unwrap() {
            assert!(seen.insert(d.id), "claimed twice: {}", d.id);
        }
    }
    let rest = must(
        "claim",
        outbox.claim(now, Duration::from_secs(60), 100).await,
    )
    .await;
    for d in rest {
        assert!(seen.insert(d.id), "claimed twice: {}", d.id);
    }
    assert_eq!(seen.len(), 20);
}
