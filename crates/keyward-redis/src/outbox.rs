//! The webhook outbox in Redis ([`WebhookOutbox`]), all under one hash tag `{P:wh}`, so every
//! script below runs on one slot of a cluster.
//!
//! - `{P:wh}:out`, a stream: each event a write records, with its key id, **added before the
//!   write** (a key's record and log live on the key's slot, the outbox on its own; no script
//!   can write both). Fanning out reads it through the consumer group `fan`: each entry goes to
//!   one instance; one whose instance died is claimed again (`XAUTOCLAIM`) after
//!   [`STALE_AFTER`]. An entry is fanned out only once its event is in the key's log, i.e. the
//!   write happened; an entry whose event is still not there after [`STALE_AFTER`] was for a
//!   write that was refused or never ran, and is dropped. So an event is never lost (it is in
//!   the stream before the change can happen) and never sent for a change that did not happen.
//! - `{P:wh}:d:<id>`, one hash per delivery; its id is derived from the event and endpoint, so
//!   an entry fanned out twice (an instance died after fanning it out) makes one delivery.
//! - `{P:wh}:due`, pending deliveries scored by when their next attempt is due (µs). A claim
//!   is a script that moves each due delivery's score to the end of its lease: two instances
//!   claiming at once never take the same one, and one whose instance died is due again when
//!   its lease ends. The schedule is in the sorted set rather than in the consumer group:
//!   a stream cannot hold an entry back until a retry is due, and its idle times follow Redis'
//!   clock, not the caller's.
//! - `{P:wh}:ls` and `{P:wh}:ls:<status>`, the listing (lexicographic members
//!   `<created>:<id>`, as the audit log's), and `{P:wh}:byev`, deliveries scored by their
//!   event's time, for retention.
//! - `{P:wh}:off`, the disabled endpoints: a hash of their JSON by endpoint id.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands, Script};
use keyward_core::audit::{Event, EventCursor, EventId};
use keyward_core::clock::{from_unix_micros, unix_micros};
use keyward_core::key::KeyId;
use keyward_core::store::{StoreError, StoreErrorKind};
use keyward_core::webhook::{
    Attempt, Delivery, DeliveryPage, DeliveryStatus, DisabledEndpoint, Settlement, WebhookOutbox,
};
use time::OffsetDateTime;

use crate::RedisKeyStore;
use crate::config::{Connections, redis_error};
use crate::events::{parse, position};

/// How long an outbox entry may wait for its write, and how long an instance may hold an
/// entry it took before another takes it: far longer than any write's scripts run.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(30);

/// The consumer group that fans the outbox out.
const GROUP: &str = "fan";

/// This instance's part in the outbox: its name in the consumer group.
#[derive(Debug)]
pub(crate) struct Outbox {
    consumer: String,
    group_made: AtomicBool,
}

impl Outbox {
    pub(crate) fn new() -> Result<Arc<Self>, StoreError> {
        let name = EventId::generate().map_err(|e| StoreError::unavailable(e.to_string()))?;
        Ok(Arc::new(Self {
            consumer: format!("c-{name}"),
            group_made: AtomicBool::new(false),
        }))
    }
}

/// Adds the events a write is about to record to the outbox (before the write; see the module
/// docs), in one pipeline.
pub(crate) async fn stage(
    shared: &Connections,
    events: &[(KeyId, &str)],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut c = shared.conn().await?;
    let mut pipe = redis::pipe();
    for (key_id, member) in events {
        pipe.xadd(
            shared.keys.outbox(),
            "*",
            &[("k", key_id.as_str()), ("m", member)],
        )
        .ignore();
    }
    pipe.query_async::<()>(&mut c).await.map_err(redis_error)
}

/// KEYS[1] the delivery, KEYS[2] due, KEYS[3] the listing, KEYS[4] the pending listing,
/// KEYS[5] by event time. ARGV: id, endpoint, event JSON, now (µs), listing member, event time
/// (µs). Makes the delivery unless it exists; 1 when made.
static MAKE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[2], 'v', ARGV[3], 's', 'pending', 'a', 0, 'n', ARGV[4],
  'c', ARGV[4], 'p', ARGV[5], 'w', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[5])
redis.call('ZADD', KEYS[4], 0, ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
return 1
",
    )
});

/// KEYS[1] due, KEYS[2..] the deliveries. ARGV: now (µs), lease end (µs), then the ids in the
/// order of KEYS[2..]. Leases each delivery still due and counts its attempt; returns the ids
/// leased.
static CLAIM: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local out = {}
for i = 2, #KEYS do
  local id = ARGV[i + 1]
  local due = redis.call('ZSCORE', KEYS[1], id)
  if due and tonumber(due) <= now then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    redis.call('HINCRBY', KEYS[i], 'a', 1)
    redis.call('HSET', KEYS[i], 'n', ARGV[2])
    out[#out + 1] = id
  end
end
return out
",
    )
});

/// KEYS[1] the delivery, KEYS[2] due, KEYS[3..5] the pending, delivered and failed listings.
/// ARGV: id, `delivered`|`retry`|`failed`, retry time (µs), now (µs), last status (empty for
/// none), last error (empty for none).
static SETTLE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[5] == '' then redis.call('HDEL', KEYS[1], 'ls') else redis.call('HSET', KEYS[1], 'ls', ARGV[5]) end
if ARGV[6] == '' then redis.call('HDEL', KEYS[1], 'le') else redis.call('HSET', KEYS[1], 'le', ARGV[6]) end
if ARGV[2] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[1], 'n', ARGV[3])
  return 1
end
local p = redis.call('HGET', KEYS[1], 'p')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 's', ARGV[2], 't', ARGV[4])
redis.call('ZREM', KEYS[3], p)
if ARGV[2] == 'delivered' then redis.call('ZADD', KEYS[4], 0, p) else redis.call('ZADD', KEYS[5], 0, p) end
return 1
",
    )
});

/// KEYS[1] the delivery, KEYS[2] due, KEYS[3..5] the pending, delivered and failed listings.
/// ARGV: id, now (µs). Makes the delivery pending again, due now, its attempts from zero.
static REDELIVER: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local p = redis.call('HGET', KEYS[1], 'p')
redis.call('ZREM', KEYS[4], p)
redis.call('ZREM', KEYS[5], p)
redis.call('ZADD', KEYS[3], 0, p)
redis.call('HSET', KEYS[1], 's', 'pending', 'a', 0, 'n', ARGV[2])
redis.call('HDEL', KEYS[1], 't')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
",
    )
});

/// KEYS[1] by event time, KEYS[2] due, KEYS[3..6] the listing and the three by status,
/// KEYS[7..] the deliveries. ARGV: their ids. Deletes them from everything.
static PRUNE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
for i = 7, #KEYS do
  local id = ARGV[i - 6]
  local p = redis.call('HGET', KEYS[i], 'p')
  if p then
    for j = 3, 6 do redis.call('ZREM', KEYS[j], p) end
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('DEL', KEYS[i])
end
return #KEYS - 6
",
    )
});

const STATUSES: [DeliveryStatus; 3] = [
    DeliveryStatus::Pending,
    DeliveryStatus::Delivered,
    DeliveryStatus::Failed,
];

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("webhook delivery: {what}"))
}

fn instant(h: &HashMap<String, String>, field: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    h.get(field)
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .and_then(from_unix_micros)
                .ok_or_else(|| corrupt(field))
        })
        .transpose()
}

fn decode(id: EventId, h: &HashMap<String, String>) -> Result<Option<Delivery>, StoreError> {
    let Some(json) = h.get("v") else {
        return Ok(None);
    };
    let event: Event = serde_json::from_str(json).map_err(|_| corrupt("event"))?;
    let at = |f| instant(h, f)?.ok_or_else(|| corrupt(f));
    Ok(Some(Delivery {
        id,
        endpoint: h.get("e").cloned().ok_or_else(|| corrupt("endpoint"))?,
        event,
        status: h
            .get("s")
            .and_then(|s| DeliveryStatus::parse(s))
            .ok_or_else(|| corrupt("status"))?,
        attempts: h.get("a").and_then(|a| a.parse().ok()).unwrap_or(0),
        next_attempt_at: at("n")?,
        last_status: h.get("ls").and_then(|s| s.parse().ok()),
        last_error: h.get("le").cloned(),
        created_at: at("c")?,
        settled_at: instant(h, "t")?,
    }))
}

impl RedisKeyStore {
    fn outbox_part(&self) -> Result<&Outbox, StoreError> {
        self.outbox.as_deref().ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Other,
                "this Redis store keeps no webhook outbox (RedisKeyStore::with_outbox)",
            )
        })
    }

    /// `script` on the delivery `id`: KEYS the delivery, due, and the pending, delivered and
    /// failed listings (SETTLE and REDELIVER), ARGV starting with the id.
    fn on_delivery<'s>(&self, script: &'s Script, id: &EventId) -> redis::ScriptInvocation<'s> {
        let keys = &self.shared.keys;
        let mut inv = script.key(keys.delivery(id.as_str()));
        inv.key(keys.deliveries_due());
        for s in STATUSES {
            inv.key(keys.deliveries(Some(s)));
        }
        inv.arg(id.as_str());
        inv
    }

    /// The deliveries of `ids`, in their order, skipping those gone.
    async fn load(&self, ids: &[EventId]) -> Result<Vec<Delivery>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.shared.conn().await?;
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.shared.keys.delivery(id.as_str()));
        }
        let hashes: Vec<HashMap<String, String>> =
            pipe.query_async(&mut c).await.map_err(redis_error)?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, h) in ids.iter().zip(&hashes) {
            if let Some(d) = decode(*id, h)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Makes the deliveries of the outbox entry `(key_id, member)` when its event is in the
    /// key's log: `Some(true)`; `Some(false)` when it is not (yet); `None` when the entry is
    /// malformed.
    async fn fan_entry(
        &self,
        fields: &HashMap<String, redis::Value>,
        endpoints: &[String],
        now: OffsetDateTime,
    ) -> Result<Option<bool>, StoreError> {
        let text = |f: &str| -> Option<String> { redis::from_redis_value_ref(fields.get(f)?).ok() };
        let (Some(key_id), Some(member)) =
            (text("k").and_then(|k| k.parse::<KeyId>().ok()), text("m"))
        else {
            return Ok(None);
        };
        let mut c = self.shared.conn().await?;
        let logged: Option<f64> = c
            .zscore(self.shared.keys.key_events(&key_id), &member)
            .await
            .map_err(redis_error)?;
        if logged.is_none() {
            return Ok(Some(false));
        }
        let Ok(event) = parse(&member) else {
            return Ok(None);
        };
        let json = serde_json::to_string(&event).map_err(|_| corrupt("event encoding"))?;
        let keys = &self.shared.keys;
        for endpoint in endpoints {
            let id = EventId::derived(&["delivery", event.id.as_str(), endpoint]);
            let _: i64 = MAKE
                .key(keys.delivery(id.as_str()))
                .key(keys.deliveries_due())
                .key(keys.deliveries(None))
                .key(keys.deliveries(Some(DeliveryStatus::Pending)))
                .key(keys.deliveries_by_event())
                .arg(id.as_str())
                .arg(endpoint)
                .arg(&json)
                .arg(unix_micros(now))
                .arg(position(now, id.as_str()))
                .arg(unix_micros(event.at))
                .invoke_async(&mut c)
                .await
                .map_err(redis_error)?;
        }
        Ok(Some(true))
    }

    /// Deletes up to `limit` deliveries of events before `before` (pending or not), in rounds.
    pub(crate) async fn prune_deliveries(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<(), StoreError> {
        let keys = &self.shared.keys;
        let mut c = self.shared.conn().await?;
        loop {
            let ids: Vec<String> = c
                .zrangebyscore_limit(
                    keys.deliveries_by_event(),
                    "-inf",
                    format!("({}", unix_micros(before)),
                    0,
                    isize::try_from(limit).unwrap_or(isize::MAX),
                )
                .await
                .map_err(redis_error)?;
            if ids.is_empty() {
                return Ok(());
            }
            let mut inv = PRUNE.key(keys.deliveries_by_event());
            inv.key(keys.deliveries_due()).key(keys.deliveries(None));
            for s in STATUSES {
                inv.key(keys.deliveries(Some(s)));
            }
            for id in &ids {
                inv.key(keys.delivery(id)).arg(id);
            }
            let _: i64 = inv.invoke_async(&mut c).await.map_err(redis_error)?;
            if ids.len() < usize::try_from(limit).unwrap_or(usize::MAX) {
                return Ok(());
            }
        }
    }
}

#[async_trait::async_trait]
impl WebhookOutbox for RedisKeyStore {
    async fn fan_out(
        &self,
        endpoints: &[String],
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<usize, StoreError> {
        let part = self.outbox_part()?;
        let stream = self.shared.keys.outbox();
        let mut c = self.shared.conn().await?;
        if !part.group_made.load(Ordering::Relaxed) {
            let made: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut c)
                .await;
            match made {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(redis_error(e)),
            }
            part.group_made.store(true, Ordering::Relaxed);
        }
        // Entries another instance took and never finished, and those waiting for their write
        // since before STALE_AFTER: the last chance for their event to be in its key's log.
        let idle = u64::try_from(STALE_AFTER.as_millis()).unwrap_or(u64::MAX);
        let stale: redis::streams::StreamAutoClaimReply = c
            .xautoclaim_options(
                &stream,
                GROUP,
                &part.consumer,
                idle,
                "0-0",
                redis::streams::StreamAutoClaimOptions::default().count(limit.max(1) as usize),
            )
            .await
            .map_err(redis_error)?;
        let room = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_sub(stale.claimed.len());
        let fresh: Vec<redis::streams::StreamId> = if room == 0 {
            Vec::new()
        } else {
            let reply: Option<redis::streams::StreamReadReply> = c
                .xread_options(
                    &[&stream],
                    &[">"],
                    &redis::streams::StreamReadOptions::default()
                        .group(GROUP, &part.consumer)
                        .count(room),
                )
                .await
                .map_err(redis_error)?;
            reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect()
        };
        let mut fanned = 0;
        let mut done = Vec::new();
        let entries = stale.claimed.iter().map(|e| (e, true));
        for (entry, is_stale) in entries.chain(fresh.iter().map(|e| (e, false))) {
            match self.fan_entry(&entry.map, endpoints, now).await? {
                Some(true) => {
                    fanned += 1;
                    done.push(entry.id.clone());
                }
                // Its write never happened (or was refused), or it cannot be read.
                None => done.push(entry.id.clone()),
                Some(false) if is_stale => done.push(entry.id.clone()),
                Some(false) => {}
            }
        }
        if !done.is_empty() {
            let mut pipe = redis::pipe();
            pipe.xack(&stream, GROUP, &done).ignore();
            pipe.xdel(&stream, &done).ignore();
            pipe.query_async::<()>(&mut c).await.map_err(redis_error)?;
        }
        Ok(fanned)
    }

    async fn claim(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let keys = &self.shared.keys;
        let mut c = self.shared.conn().await?;
        let now_us = unix_micros(now);
        let ids: Vec<String> = c
            .zrangebyscore_limit(
                keys.deliveries_due(),
                "-inf",
                now_us,
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await
            .map_err(redis_error)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
        let mut inv = CLAIM.key(keys.deliveries_due());
        inv.arg(now_us).arg(now_us.saturating_add(lease_us));
        for id in &ids {
            inv.key(keys.delivery(id)).arg(id);
        }
        let leased: Vec<String> = inv.invoke_async(&mut c).await.map_err(redis_error)?;
        let ids = leased
            .iter()
            .map(|s| s.parse::<EventId>().map_err(|_| corrupt("id")))
            .collect::<Result<Vec<_>, _>>()?;
        self.load(&ids).await
    }

    async fn settle(
        &self,
        id: &EventId,
        settlement: &Settlement,
        attempt: &Attempt,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (kind, retry) = match settlement {
            Settlement::Delivered => ("delivered", now),
            Settlement::Retry(at) => ("retry", *at),
            Settlement::Failed => ("failed", now),
        };
        let mut c = self.shared.conn().await?;
        let _: i64 = self
            .on_delivery(&SETTLE, id)
            .arg(kind)
            .arg(unix_micros(retry))
            .arg(unix_micros(now))
            .arg(attempt.status.map(|s| s.to_string()).unwrap_or_default())
            .arg(attempt.kept_error().unwrap_or_default())
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<DeliveryPage, StoreError> {
        let want = usize::try_from(limit).unwrap_or(usize::MAX);
        if want == 0 {
            return Ok((Vec::new(), None));
        }
        let max = cursor.map_or_else(
            || "+".to_owned(),
            |c| format!("({}", position(c.at, c.id.as_str())),
        );
        let mut c = self.shared.conn().await?;
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.shared.keys.deliveries(status))
            .arg(&max)
            .arg("-")
            .arg("BYLEX")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(want.saturating_add(1))
            .query_async(&mut c)
            .await
            .map_err(redis_error)?;
        let more = members.len() > want;
        let ids = members
            .iter()
            .take(want)
            .map(|m| {
                m.rsplit_once(':')
                    .and_then(|(_, id)| id.parse::<EventId>().ok())
                    .ok_or_else(|| corrupt("listing"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let page = self.load(&ids).await?;
        let next = page.last().filter(|_| more).map(|d| EventCursor {
            at: d.created_at,
            id: d.id,
        });
        Ok((page, next))
    }

    async fn redeliver(&self, id: &EventId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut c = self.shared.conn().await?;
        let done: i64 = self
            .on_delivery(&REDELIVER, id)
            .arg(unix_micros(now))
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(done == 1)
    }

    async fn disable_endpoint(&self, endpoint: &DisabledEndpoint) -> Result<(), StoreError> {
        let json = serde_json::to_string(endpoint).map_err(|_| corrupt("endpoint encoding"))?;
        let mut c = self.shared.conn().await?;
        let _: bool = c
            .hset_nx(self.shared.keys.disabled_endpoints(), &endpoint.id, json)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn enable_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        let mut c = self.shared.conn().await?;
        let gone: i64 = c
            .hdel(self.shared.keys.disabled_endpoints(), id)
            .await
            .map_err(redis_error)?;
        Ok(gone == 1)
    }

    async fn disabled_endpoints(&self) -> Result<Vec<DisabledEndpoint>, StoreError> {
        let mut c = self.shared.conn().await?;
        let all: Vec<String> = c
            .hvals(self.shared.keys.disabled_endpoints())
            .await
            .map_err(redis_error)?;
        all.iter()
            .map(|j| serde_json::from_str(j).map_err(|_| corrupt("disabled endpoint")))
            .collect()
    }
}
