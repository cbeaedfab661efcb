//! Usage analytics: counts add up per key, hour, outcome and tag set across flushes; reads sum
//! an owner's keys (or one key) over a range, exactly by owner; retention drops whole hours.

use std::sync::Arc;

use keyward_core::analytics::{Outcome, Tags, UsageCount, UsageFilter, UsageRow};
use keyward_core::store::KeyStore;
use time::{Duration, OffsetDateTime};

use super::fixtures::{at, must, new_id};

fn hour(n: i64) -> OffsetDateTime {
    let base = at(0, 0);
    let start = base.unix_timestamp() - base.unix_timestamp().rem_euclid(3600);
    OffsetDateTime::from_unix_timestamp(start).unwrap() + Duration::hours(n)
}

type Row = (OffsetDateTime, Outcome, Vec<String>, u64);

async fn read(
    store: &Arc<dyn KeyStore>,
    owner: &str,
    key: Option<keyward_core::KeyId>,
    from: i64,
    to: i64,
) -> Vec<Row> {
    let filter = UsageFilter {
        owner_id: owner,
        key_id: key,
        from: hour(from),
        to: hour(to),
    };
    let rows: Vec<UsageRow> = must("usage", store.usage(&filter).await).await;
    let mut rows: Vec<Row> = rows
        .into_iter()
        .map(|r| {
            let tags = r.tags.iter().map(str::to_owned).collect();
            (r.hour, r.outcome, tags, r.count)
        })
        .collect();
    rows.sort();
    rows
}

/// Two flushes of counts for two keys of one owner, another owner's key and a key of an owner
/// whose id differs only in case: reads by owner and by key, by range, and retention.
pub async fn case_usage_counts(store: Arc<dyn KeyStore>) {
    let (k1, k2, other, cased) = (new_id(), new_id(), new_id(), new_id());
    let eu = Tags::new(["region=eu", "path=/r"]).unwrap();
    let count = |key_id, owner: &str, h: i64, outcome, tags: &Tags, count| UsageCount {
        key_id,
        owner_id: owner.into(),
        hour: hour(h),
        outcome,
        tags: tags.clone(),
        count,
    };
    let first = [
        count(k1, "metered", 0, Outcome::Valid, &Tags::NONE, 3),
        count(k1, "metered", 0, Outcome::Valid, &eu, 2),
        count(k1, "metered", 0, Outcome::RateLimited, &Tags::NONE, 1),
        count(k2, "metered", 1, Outcome::Valid, &Tags::NONE, 4),
        count(other, "other", 0, Outcome::Valid, &Tags::NONE, 100),
        count(cased, "METERED", 0, Outcome::Valid, &Tags::NONE, 50),
    ];
    must("record_usage", store.record_usage(&[], &first).await).await;
    let second = [
        count(k1, "metered", 0, Outcome::Valid, &Tags::NONE, 1),
        count(k2, "metered", 0, Outcome::ScopeDenied, &Tags::NONE, 2),
    ];
    must("record_usage", store.record_usage(&[], &second).await).await;

    let tags: Vec<String> = eu.iter().map(str::to_owned).collect();
    let all = read(&store, "metered", None, 0, 48).await;
    assert_eq!(
        all,
        [
            (hour(0), Outcome::Valid, vec![], 4),
            (hour(0), Outcome::Valid, tags.clone(), 2),
            (hour(0), Outcome::ScopeDenied, vec![], 2),
            (hour(0), Outcome::RateLimited, vec![], 1),
            (hour(1), Outcome::Valid, vec![], 4),
        ],
        "the owner's keys summed, no other owner's (not even one differing in case)"
    );
    assert_eq!(
        read(&store, "metered", Some(k1), 0, 48).await,
        [
            (hour(0), Outcome::Valid, vec![], 4),
            (hour(0), Outcome::Valid, tags, 2),
            (hour(0), Outcome::RateLimited, vec![], 1),
        ]
    );
    assert_eq!(
        read(&store, "metered", None, 1, 2).await,
        [(hour(1), Outcome::Valid, vec![], 4)],
        "from is inclusive"
    );
    assert_eq!(
        read(&store, "metered", None, 0, 1).await.len(),
        4,
        "to is exclusive"
    );
    assert!(read(&store, "nobody", None, 0, 48).await.is_empty());
    assert_eq!(read(&store, "METERED", None, 0, 48).await.len(), 1);

    let mut pruned = 0;
    loop {
        let n = must("prune_usage", store.prune_usage(hour(1), 1000).await).await;
        if n == 0 {
            break;
        }
        pruned += n;
    }
    let left = read(&store, "metered", None, 0, 48).await;
    if pruned == 0 {
        // A store whose counts expire by themselves keeps them until then.
        assert_eq!(left, all);
    } else {
        assert_eq!(pruned, 6, "every count of hour 0, of every owner");
        assert_eq!(left, [(hour(1), Outcome::Valid, vec![], 4)]);
    }
}
