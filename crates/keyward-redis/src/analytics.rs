//! Usage analytics in Redis: hashes of counts per UTC day, whose fields are
//! `<hour, unix seconds>|<outcome>|<tags JSON>`.
//!
//! - `{P:k:<key_id>}:use:<day>`: the key's counts;
//! - `{P:o:<owner>}:use:<day>`: the owner's, summed over its keys as they are flushed.
//!
//! A flush adds to both with `HINCRBY` in one pipeline (two slots under Redis Cluster, as the
//! key indexes are), and gives each hash a time to live of [`USAGE_TTL`] past its day: counts
//! expire by themselves, and retention has nothing to delete.

use std::collections::HashMap;

use deadpool_redis::redis;
use keyward_core::analytics::{Outcome, Tags, UsageCount, UsageFilter, UsageRow};
use keyward_core::store::{StoreError, StoreErrorKind};
use time::OffsetDateTime;

use crate::config::{Connections, redis_error};

/// How long a day's counts are kept after the day ends: 400 days, the longest daily read.
pub const USAGE_TTL: std::time::Duration = std::time::Duration::from_secs(400 * 86_400);

/// Counts per pipeline.
const CHUNK: usize = 256;

fn day_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(86_400)
}

fn field(c: &UsageCount) -> String {
    format!(
        "{}|{}|{}",
        c.hour.unix_timestamp(),
        c.outcome.as_str(),
        c.tags.to_json()
    )
}

fn corrupt() -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, "malformed usage count")
}

fn parse(field: &str, count: i64) -> Result<UsageRow, StoreError> {
    let mut parts = field.splitn(3, '|');
    let (Some(hour), Some(outcome), Some(tags)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt());
    };
    Ok(UsageRow {
        hour: hour
            .parse::<i64>()
            .ok()
            .and_then(|h| OffsetDateTime::from_unix_timestamp(h).ok())
            .ok_or_else(corrupt)?,
        outcome: Outcome::parse(outcome).ok_or_else(corrupt)?,
        tags: Tags::from_json(tags).ok_or_else(corrupt)?,
        count: u64::try_from(count).map_err(|_| corrupt())?,
    })
}

/// Adds `counts` to the key's and the owner's hashes of their day.
pub(crate) async fn record(shared: &Connections, counts: &[UsageCount]) -> Result<(), StoreError> {
    if counts.is_empty() {
        return Ok(());
    }
    let ttl = i64::try_from(USAGE_TTL.as_secs()).unwrap_or(i64::MAX);
    let mut c = shared.conn().await?;
    for chunk in counts.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for count in chunk {
            let day = day_of(count.hour);
            let expire_at = (day + 1) * 86_400 + ttl;
            let n = i64::try_from(count.count).unwrap_or(i64::MAX);
            let f = field(count);
            for key in [
                shared.keys.key_usage(&count.key_id, day),
                shared.keys.owner_usage(&count.owner_id, day),
            ] {
                pipe.cmd("HINCRBY").arg(&key).arg(&f).arg(n).ignore();
                pipe.cmd("EXPIREAT").arg(&key).arg(expire_at).ignore();
            }
        }
        let () = pipe.query_async(&mut c).await.map_err(redis_error)?;
    }
    Ok(())
}

/// The counts `filter` names, summed for each hour, outcome and tag set.
pub(crate) async fn read(
    shared: &Connections,
    filter: &UsageFilter<'_>,
) -> Result<Vec<UsageRow>, StoreError> {
    let (first, last) = (day_of(filter.from), day_of(filter.to));
    let keys: Vec<String> = (first..=last)
        .map(|day| match filter.key_id {
            Some(k) => shared.keys.key_usage(&k, day),
            None => shared.keys.owner_usage(filter.owner_id, day),
        })
        .collect();
    let mut c = shared.conn().await?;
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("HGETALL").arg(key);
    }
    let days: Vec<HashMap<String, i64>> = pipe.query_async(&mut c).await.map_err(redis_error)?;
    let mut rows = Vec::new();
    for (field, count) in days.iter().flatten() {
        let row = parse(field, *count)?;
        if row.hour >= filter.from && row.hour < filter.to {
            rows.push(row);
        }
    }
    Ok(rows)
}
