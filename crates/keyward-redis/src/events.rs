//! The audit log in Redis: two sorted sets of the same members, `<time>:<event id>|<event
//! JSON>` (the time as the key indexes write it, so members sort by `(at, id)`).
//!
//! - `{P:k:<key_id>}:ev`, the key's own log, on the record's slot: the script that changes the
//!   record adds the event in the same step, so a change without its record cannot happen.
//! - `{P:all}:ev`, every key's log, written right after the change, as the list of every key
//!   is (a second slot under Redis Cluster): should Redis stop answering between the two, the
//!   event is in the key's log only, and reads about the key still show it.
//!
//! A read about one key reads the key's log; every other read, the log of every key, filtering
//! after reading as the key listing does.

use deadpool_redis::redis::{self, AsyncCommands};
use keyward_core::audit::{Event, EventCursor, EventFilter, EventPage};
use keyward_core::clock::unix_micros;
use keyward_core::store::{StoreError, StoreErrorKind};
use time::OffsetDateTime;

use crate::config::{Connections, redis_error};

/// Batches of the log one page reads at most, when the filter is sparse.
const ROUNDS: usize = 8;

/// The sort prefix of an event at `at` with `id`: `<flipped µs, 20 digits>:<id>`.
pub(crate) fn position(at: OffsetDateTime, id: &str) -> String {
    let t = unix_micros(at).cast_unsigned() ^ (1 << 63);
    format!("{t:020}:{id}")
}

/// The time prefix alone (a bound between instants).
fn time_bound(at: OffsetDateTime) -> String {
    let t = unix_micros(at).cast_unsigned() ^ (1 << 63);
    format!("{t:020}")
}

/// The member of `event` in both logs.
pub(crate) fn member(event: &Event) -> Result<String, StoreError> {
    let json = serde_json::to_string(event)
        .map_err(|e| StoreError::new(StoreErrorKind::Other, "event encoding").with_source(e))?;
    Ok(format!("{}|{json}", position(event.at, event.id.as_str())))
}

pub(crate) fn parse(member: &str) -> Result<Event, StoreError> {
    let (_, json) = member
        .split_once('|')
        .ok_or_else(|| StoreError::new(StoreErrorKind::Corrupt, "malformed audit log entry"))?;
    serde_json::from_str(json)
        .map_err(|e| StoreError::new(StoreErrorKind::Corrupt, "audit log entry").with_source(e))
}

/// Adds `members` to the log of every key (the second step of a write). A failure is logged,
/// not returned: the change and its event in the key's own log are done.
pub(crate) async fn publish(shared: &Connections, members: &[String]) {
    if members.is_empty() {
        return;
    }
    let added: Result<i64, StoreError> = async {
        let mut c = shared.conn().await?;
        let scored: Vec<(i64, &String)> = members.iter().map(|m| (0, m)).collect();
        c.zadd_multiple(shared.keys.all_events(), &scored)
            .await
            .map_err(redis_error)
    }
    .await;
    if let Err(e) = added {
        tracing::warn!(error = %e, events = members.len(), "audit events recorded with their keys but not in the log of every key");
    }
}

/// How long a notice's marker says it was recorded: longer than any limit window, credit
/// period or notice period a notice is once per.
pub(crate) const NOTICE_MARK_TTL: u64 = 400 * 86_400;

/// Adds notices (events without a change) to their keys' logs, each once (a marker by event
/// id, on the key's slot), then those added to the log of every key.
pub(crate) async fn append(shared: &Connections, events: &[Event]) -> Result<(), StoreError> {
    let mut added = Vec::new();
    let mut c = shared.conn().await?;
    for event in events {
        let Some(key_id) = event.key_id else {
            continue;
        };
        let m = member(event)?;
        let new: i64 = crate::scripts::APPEND_EVENT
            .key(shared.keys.notice_mark(&key_id, event.id.as_str()))
            .key(shared.keys.key_events(&key_id))
            .arg(&m)
            .arg(NOTICE_MARK_TTL)
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        if new == 1 {
            added.push(m);
        }
    }
    publish(shared, &added).await;
    Ok(())
}

/// A page of the log, newest first.
pub(crate) async fn list(
    shared: &Connections,
    filter: &EventFilter<'_>,
    cursor: Option<EventCursor>,
    limit: u32,
) -> Result<EventPage, StoreError> {
    let want = usize::try_from(limit).unwrap_or(usize::MAX);
    let log = match filter.key_id {
        Some(k) => shared.keys.key_events(&k),
        None => shared.keys.all_events(),
    };
    let min = filter
        .since
        .map_or_else(|| "-".to_owned(), |s| format!("[{}", time_bound(s)));
    let mut max = match (cursor, filter.until) {
        (Some(c), _) => format!("({}", position(c.at, c.id.as_str())),
        (None, Some(u)) => format!("({}", time_bound(u)),
        (None, None) => "+".to_owned(),
    };
    if want == 0 {
        return Ok(EventPage::default());
    }
    let mut c = shared.conn().await?;
    let mut items = Vec::with_capacity(want.min(64));
    let mut next_cursor = None;
    for _ in 0..ROUNDS {
        let room = want - items.len();
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(&log)
            .arg(&max)
            .arg(&min)
            .arg("BYLEX")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(room.saturating_add(1))
            .query_async(&mut c)
            .await
            .map_err(redis_error)?;
        let has_more = members.len() > room;
        let mut last = None;
        for m in members.iter().take(room) {
            let event = parse(m)?;
            last = Some(EventCursor::after(&event));
            if filter.matches(&event) {
                items.push(event);
            }
        }
        let Some(last) = last.filter(|_| has_more) else {
            return Ok(EventPage {
                items,
                next_cursor: None,
            });
        };
        // The cursor is the last entry examined, so an entry the filter refused can neither
        // end the listing early nor repeat; a sparse filter answers after ROUNDS batches.
        max = format!("({}", position(last.at, last.id.as_str()));
        next_cursor = Some(last);
        if items.len() >= want {
            break;
        }
    }
    Ok(EventPage { items, next_cursor })
}

/// Deletes up to `limit` events older than `before` from both logs, oldest first.
pub(crate) async fn prune(
    shared: &Connections,
    before: OffsetDateTime,
    limit: u32,
) -> Result<u64, StoreError> {
    let mut c = shared.conn().await?;
    let all = shared.keys.all_events();
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&all)
        .arg("-")
        .arg(format!("({}", time_bound(before)))
        .arg("BYLEX")
        .arg("LIMIT")
        .arg(0)
        .arg(limit)
        .query_async(&mut c)
        .await
        .map_err(redis_error)?;
    for m in &members {
        // The key's own log first: should this stop halfway, the entry left in the log of
        // every key is found again by the next round.
        if let Ok(Event {
            key_id: Some(k), ..
        }) = parse(m)
        {
            let _: i64 = c
                .zrem(shared.keys.key_events(&k), m)
                .await
                .map_err(redis_error)?;
        }
        let _: i64 = c.zrem(&all, m).await.map_err(redis_error)?;
    }
    Ok(members.len() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn positions_sort_by_time_then_id() {
        let t = |us: i64| keyward_core::clock::from_unix_micros(us).unwrap();
        let a = position(t(-5), "b");
        let b = position(t(3), "a");
        let c = position(t(3), "b");
        assert!(a < b && b < c);
        assert!(
            format!("{b}|{{}}") > b,
            "an exclusive bound at a position excludes it"
        );
        assert!(time_bound(t(3)) < b && b < time_bound(t(4)));
    }
}
