//! [`RedisKeyStore`]: a full [`KeyStore`] in Redis.
//!
//! Layout (prefix `P`):
//! - `{P:k:<key_id>}`: the record, a hash (see the codec module). `get` is one `HGETALL`
//!   and never needs the owner.
//! - `{P:o:<owner>}:idx`: the owner's keys, a sorted set whose members sort as
//!   `(created_at, key_id)`; listing is `ZRANGE … BYLEX` after the cursor.
//! - `{P:all}:idx`: every key, as the owners' indexes; listing without an owner reads it.
//! - `{P:o:<owner>}:live`: the owner's keys that count toward the maximum, scored by expiry
//!   (µs, `+inf` for none); revoked keys are removed, expired ones are pruned by the create
//!   script. The max-keys check and the index insert run in one script on this hash tag, so
//!   concurrent creates for one owner are serialized by Redis.
//!
//! Records and owner sets live under different hash tags (so `get` by key id is one read on
//! one slot of a cluster). A create, revoke or update is therefore two single-slot steps, not
//! one transaction; the order is chosen so an interruption only ever errs on the safe side
//! (see `docs/redis.md`, "Cluster trade-off").

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_redis::redis::{self, AsyncCommands};
use keyward_core::analytics::{UsageCount, UsageFilter, UsageRow};
use keyward_core::audit::{Event, EventCursor, EventFilter, EventPage};
use keyward_core::clock::unix_micros;
use keyward_core::digest::KeyDigest;
use keyward_core::key::KeyId;
use keyward_core::model::KeyRecord;
use keyward_core::store::{
    Cursor, EventStore, KeyFilter, KeyStore, MAX_PAGE_SIZE, Page, StoreError, StoreErrorKind,
    UsageDelta,
};
use time::OffsetDateTime;

use crate::codec;
use crate::config::{Connections, RedisConfig, redis_error};
use crate::events;
use crate::scripts;

/// Usage deltas sent per pipeline.
const USAGE_CHUNK: usize = 256;

/// A [`KeyStore`] in Redis. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct RedisKeyStore {
    pub(crate) shared: Connections,
    /// The webhook outbox's part, when this store keeps one.
    pub(crate) outbox: Option<Arc<crate::outbox::Outbox>>,
}

impl RedisKeyStore {
    /// A store with its own pool. Does not connect yet.
    ///
    /// # Errors
    /// `Other` for an invalid URL or prefix.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        Ok(Self {
            shared: Connections::new(config)?,
            outbox: None,
        })
    }

    pub(crate) fn from_shared(shared: Connections) -> Self {
        Self {
            shared,
            outbox: None,
        }
    }

    /// This store, keeping a webhook outbox ([`WebhookOutbox`]) when `on`: every event a write
    /// records is added to the outbox stream before the write, and fanned out once the write
    /// has happened (an entry whose write was refused or never ran is dropped after 30 s).
    /// Costs a write one more round trip.
    ///
    /// # Errors
    /// `Unavailable` when no instance name could be drawn.
    ///
    /// [`WebhookOutbox`]: keyward_core::webhook::WebhookOutbox
    pub fn with_outbox(mut self, on: bool) -> Result<Self, StoreError> {
        self.outbox = if on {
            Some(crate::outbox::Outbox::new()?)
        } else {
            None
        };
        Ok(self)
    }

    /// Adds the events of a write about to run to the outbox, when this store keeps one.
    async fn stage(&self, events: &[(KeyId, &str)]) -> Result<(), StoreError> {
        if self.outbox.is_none() {
            return Ok(());
        }
        crate::outbox::stage(&self.shared, events).await
    }

    /// Runs the second step of a revoke: the key no longer counts toward its owner's maximum.
    async fn unlive(&self, owner: &str, key_id: &KeyId) -> Result<(), StoreError> {
        let mut c = self.shared.conn().await?;
        let _: i64 = c
            .zrem(self.shared.keys.owner_live(owner), key_id.as_str())
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl KeyStore for RedisKeyStore {
    async fn create(
        &self,
        record: &KeyRecord,
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<(), StoreError> {
        let keys = &self.shared.keys;
        let rkey = keys.record(&record.key_id);
        let log = keys.key_events(&record.key_id);
        let fields = codec::encode(record)?;
        let member = events::member(event)?;
        self.stage(&[(record.key_id, &member)]).await?;
        let mut c = self.shared.conn().await?;
        // Step 1: claim the key id, and record the event in the key's log. Nobody holds the
        // secret of this key yet, so a record that step 2 refuses (or that a crash strands)
        // can never be used.
        let mut inv = scripts::CREATE_RECORD.key(&rkey);
        inv.key(&log).arg(&member);
        for (k, v) in &fields {
            inv.arg(*k).arg(v);
        }
        let written: i64 = inv.invoke_async(&mut c).await.map_err(redis_error)?;
        if written == 0 {
            return Err(StoreError::new(
                StoreErrorKind::Conflict,
                "duplicate key id",
            ));
        }
        // Step 2: the max-keys check and the index insert, atomically on the owner's slot.
        let live = record.revoked_at.is_none();
        let claimed: Result<i64, _> = scripts::CLAIM_SLOT
            .key(keys.owner_index(&record.owner_id))
            .key(keys.owner_live(&record.owner_id))
            .arg(codec::index_member(record.created_at, &record.key_id))
            .arg(record.key_id.as_str())
            .arg(unix_micros(now))
            .arg(max_per_owner.map_or(-1, i64::from))
            .arg(if live {
                codec::expiry_score(record.expires_at)
            } else {
                "-inf".to_owned()
            })
            .invoke_async(&mut c)
            .await;
        match claimed {
            Ok(1) => {
                // Step 3: the list of every key. Should it fail, the key works, is listed and
                // counted under its owner, and is missing only from the list of all keys.
                let indexed = codec::index_member(record.created_at, &record.key_id);
                let listed: Result<i64, _> = c.zadd(keys.all_index(), indexed, 0).await;
                if let Err(e) = listed {
                    // The key exists and its secret is about to be handed out: failing here
                    // would make the caller mint a second one.
                    tracing::warn!(key_id = %record.key_id, error = %e, "key created but not added to the list of every key");
                }
                events::publish(&self.shared, std::slice::from_ref(&member)).await;
                Ok(())
            }
            Ok(_) => {
                let _: Result<i64, _> = c.del(&[&rkey, &log]).await;
                Err(StoreError::new(
                    StoreErrorKind::LimitReached,
                    "owner key limit reached",
                ))
            }
            Err(e) => {
                // The script may or may not have run (a timeout after it did). Undo it, owner
                // sets first: should Redis stop answering halfway, what remains is either a
                // complete key (listed, revocable, its secret never handed out) or an
                // unindexed record (invisible and uncounted), never an index entry without
                // a record.
                let idx = keys.owner_index(&record.owner_id);
                let member = codec::index_member(record.created_at, &record.key_id);
                let undone: Result<(), redis::RedisError> = async {
                    let _: i64 = c.zrem(&idx, &member).await?;
                    let _: i64 = c.zrem(keys.all_index(), &member).await?;
                    let _: i64 = c
                        .zrem(keys.owner_live(&record.owner_id), record.key_id.as_str())
                        .await?;
                    let _: i64 = c.del(&[&rkey, &log]).await?;
                    Ok(())
                }
                .await;
                if let Err(undo) = undone {
                    tracing::warn!(key_id = %record.key_id, error = %undo, "could not undo an interrupted create; the key may be listed (revoke it to free the slot)");
                }
                Err(redis_error(e))
            }
        }
    }

    /// Every key id claimed first (a round trip each: nobody holds these secrets yet, so a
    /// claimed record that is then undone was never usable), then each owner's slots in one
    /// script, all or none; a refusal or failure undoes what was claimed.
    async fn create_many(
        &self,
        records: &[&KeyRecord],
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let keys = &self.shared.keys;
        let members = events
            .iter()
            .map(events::member)
            .collect::<Result<Vec<_>, _>>()?;
        let staged: Vec<(KeyId, &str)> = events
            .iter()
            .zip(&members)
            .filter_map(|(e, m)| Some((e.key_id?, m.as_str())))
            .collect();
        self.stage(&staged).await?;
        let mut c = self.shared.conn().await?;
        let mut claimed: Vec<&KeyRecord> = Vec::with_capacity(records.len());
        let mut slotted: Vec<&str> = Vec::new();
        let mut by_owner: std::collections::BTreeMap<&str, Vec<&KeyRecord>> = Default::default();
        for r in records {
            by_owner.entry(r.owner_id.as_str()).or_default().push(r);
        }
        let outcome: Result<Result<(), StoreError>, redis::RedisError> = async {
            for (i, r) in records.iter().enumerate() {
                let fields = codec::encode(r).map_err(|e| {
                    redis::RedisError::from((redis::ErrorKind::Client, "encode", e.to_string()))
                })?;
                let mut inv = scripts::CREATE_RECORD.key(keys.record(&r.key_id));
                inv.key(keys.key_events(&r.key_id))
                    .arg(members.get(i).map_or("", String::as_str));
                for (k, v) in &fields {
                    inv.arg(*k).arg(v);
                }
                let written: i64 = inv.invoke_async(&mut c).await?;
                if written == 0 {
                    return Ok(Err(StoreError::new(
                        StoreErrorKind::Conflict,
                        "duplicate key id",
                    )));
                }
                claimed.push(r);
            }
            for (owner, mine) in &by_owner {
                let mut inv = scripts::CLAIM_SLOTS.key(keys.owner_index(owner));
                inv.key(keys.owner_live(owner))
                    .arg(unix_micros(now))
                    .arg(max_per_owner.map_or(-1, i64::from));
                for r in mine {
                    inv.arg(codec::index_member(r.created_at, &r.key_id))
                        .arg(r.key_id.as_str())
                        .arg(codec::expiry_score(r.expires_at));
                }
                // Listed before the script runs: a timeout after it did is undone too.
                slotted.push(owner);
                let ok: i64 = inv.invoke_async(&mut c).await?;
                if ok != 1 {
                    slotted.pop();
                    return Ok(Err(StoreError::new(
                        StoreErrorKind::LimitReached,
                        "owner key limit reached",
                    )));
                }
            }
            let listed: Vec<(i64, String)> = records
                .iter()
                .map(|r| (0, codec::index_member(r.created_at, &r.key_id)))
                .collect();
            if let Err(e) = c
                .zadd_multiple::<_, _, _, i64>(keys.all_index(), &listed)
                .await
            {
                // As for one key: the keys work and are listed under their owners.
                tracing::warn!(error = %e, "keys created but not added to the list of every key");
            }
            Ok(Ok(()))
        }
        .await;
        let failed = match outcome {
            Ok(Ok(())) => {
                events::publish(&self.shared, &members).await;
                return Ok(());
            }
            Ok(Err(refusal)) => Ok(refusal),
            Err(e) => Err(redis_error(e)),
        };
        // Undo, owner sets first (as `create` does), then the records, on a fresh connection:
        // the one that failed may be broken.
        let undone: Result<(), redis::RedisError> = async {
            let mut c = self.shared.conn().await.map_err(|e| {
                redis::RedisError::from((redis::ErrorKind::Io, "connect", e.to_string()))
            })?;
            for owner in slotted {
                for r in &by_owner[owner] {
                    let member = codec::index_member(r.created_at, &r.key_id);
                    let _: i64 = c.zrem(keys.owner_index(owner), &member).await?;
                    let _: i64 = c.zrem(keys.owner_live(owner), r.key_id.as_str()).await?;
                }
            }
            for r in &claimed {
                let _: i64 = c
                    .del(&[keys.record(&r.key_id), keys.key_events(&r.key_id)])
                    .await?;
            }
            Ok(())
        }
        .await;
        if let Err(undo) = undone {
            tracing::warn!(error = %undo, "could not undo an interrupted batch create; some of its keys may be listed (revoke them to free their slots)");
        }
        match failed {
            Ok(refusal) => Err(refusal),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, key_id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let mut c = self.shared.conn().await?;
        let h: HashMap<String, String> = c
            .hgetall(self.shared.keys.record(key_id))
            .await
            .map_err(redis_error)?;
        codec::decode(*key_id, &h)
    }

    async fn list(
        &self,
        filter: &KeyFilter<'_>,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let limit = limit.min(MAX_PAGE_SIZE);
        let want = usize::try_from(limit).unwrap_or(usize::MAX);
        let index = match filter.owner_id {
            Some(owner) => self.shared.keys.owner_index(owner),
            None => self.shared.keys.all_index(),
        };
        if want == 0 {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let mut c = self.shared.conn().await?;
        let mut items = Vec::with_capacity(want);
        let mut after = cursor;
        // Environment and state are judged on the records read: a sparse filter reads a few
        // batches of the index for one page, at most ROUNDS, then answers what it found with a
        // cursor where it stopped.
        const ROUNDS: usize = 8;
        for _ in 0..ROUNDS {
            let start = match after {
                Some(c) => format!("({}", codec::index_member(c.created_at, &c.key_id)),
                None => "-".to_owned(),
            };
            let room = want - items.len();
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(&index)
                .arg(&start)
                .arg("+")
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(room.saturating_add(1))
                .query_async(&mut c)
                .await
                .map_err(redis_error)?;
            let entries = members
                .iter()
                .map(|m| codec::parse_member(m))
                .collect::<Result<Vec<_>, _>>()?;
            let mut pipe = redis::pipe();
            for (_, id) in &entries {
                pipe.hgetall(self.shared.keys.record(id));
            }
            let hashes: Vec<HashMap<String, String>> = if entries.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut c).await.map_err(redis_error)?
            };
            let has_more = entries.len() > room;
            for (&(_, id), h) in entries.iter().zip(&hashes).take(room) {
                // An index entry without a record was stranded by an interrupted create.
                if let Some(r) = codec::decode(id, h)?
                    && filter.matches(&r)
                {
                    items.push(r);
                }
            }
            if !has_more {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
            // The cursor is the last index entry examined, so an entry without a record (see
            // above) or one the filter refused can neither end the listing early nor repeat.
            after = entries
                .get(room.saturating_sub(1))
                .map(|&(created_at, key_id)| Cursor { created_at, key_id });
            if items.len() >= want {
                break;
            }
        }
        Ok(Page {
            items,
            next_cursor: after,
        })
    }

    async fn update(
        &self,
        record: &KeyRecord,
        expected: OffsetDateTime,
        event: &Event,
    ) -> Result<(), StoreError> {
        let keys = &self.shared.keys;
        let member = events::member(event)?;
        self.stage(&[(record.key_id, &member)]).await?;
        let mut c = self.shared.conn().await?;
        let rkey = keys.record(&record.key_id);
        let answer: Option<(String, i64)> = scripts::UPDATE
            .key(&rkey)
            .key(keys.key_events(&record.key_id))
            .arg(codec::management_json(record)?)
            .arg(unix_micros(record.updated_at))
            .arg(unix_micros(expected))
            .arg(&member)
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        let Some((owner, written)) = answer else {
            return Err(StoreError::new(StoreErrorKind::NotFound, "no such key"));
        };
        if written == 0 {
            return Err(StoreError::new(
                StoreErrorKind::Stale,
                "the key changed since it was read",
            ));
        }
        events::publish(&self.shared, std::slice::from_ref(&member)).await;
        // Step 2: the expiry may have changed; rescore the key in the live set. Past
        // expiries are harmless (the create script prunes them).
        let live = keys.owner_live(&owner);
        let _: i64 = c
            .zadd(
                &live,
                record.key_id.as_str(),
                codec::expiry_score(record.expires_at),
            )
            .await
            .map_err(redis_error)?;
        // A revoke may have run between the two steps: undo the re-add if so.
        let now_revoked: bool = c.hexists(&rkey, "r").await.map_err(redis_error)?;
        if now_revoked {
            let _: i64 = c
                .zrem(&live, record.key_id.as_str())
                .await
                .map_err(redis_error)?;
        }
        Ok(())
    }

    async fn set_digest(
        &self,
        key_id: &KeyId,
        digest: &KeyDigest,
        event: &Event,
    ) -> Result<(), StoreError> {
        let member = events::member(event)?;
        self.stage(&[(*key_id, &member)]).await?;
        let mut c = self.shared.conn().await?;
        let done: i64 = scripts::SET_DIGEST
            .key(self.shared.keys.record(key_id))
            .key(self.shared.keys.key_events(key_id))
            .arg(codec::digest_string(digest))
            .arg(&member)
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        if done == 0 {
            return Err(StoreError::new(StoreErrorKind::NotFound, "no such key"));
        }
        events::publish(&self.shared, std::slice::from_ref(&member)).await;
        Ok(())
    }

    async fn revoke(
        &self,
        key_id: &KeyId,
        at: OffsetDateTime,
        expected: Option<OffsetDateTime>,
        event: &Event,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let member = events::member(event)?;
        self.stage(&[(*key_id, &member)]).await?;
        let (revoked, h): (i64, HashMap<String, String>) = {
            let mut c = self.shared.conn().await?;
            scripts::REVOKE
                .key(self.shared.keys.record(key_id))
                .key(self.shared.keys.key_events(key_id))
                .arg(unix_micros(at))
                .arg(
                    expected
                        .map(|e| unix_micros(e).to_string())
                        .unwrap_or_default(),
                )
                .arg(&member)
                .invoke_async(&mut c)
                .await
                .map_err(redis_error)?
        };
        if revoked == 1 {
            events::publish(&self.shared, std::slice::from_ref(&member)).await;
        }
        let Some(record) = codec::decode(*key_id, &h)? else {
            return Ok(None);
        };
        // Step 2, repeated on every revoke so a retry repairs an interrupted one. Until it
        // runs, the key still counts toward the owner's maximum (the safe direction).
        self.unlive(&record.owner_id, key_id).await?;
        Ok(Some(record))
    }

    async fn record_usage(
        &self,
        batch: &[UsageDelta],
        counts: &[UsageCount],
    ) -> Result<(), StoreError> {
        // Not one transaction (the counts live on other slots): a flush that fails part way is
        // sent again whole, and what it had written counts twice, as a failed chunk of deltas
        // already does. Counts are never lost.
        crate::analytics::record(&self.shared, counts).await?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut c = self.shared.conn().await?;
        // Make sure the script is cached so the pipeline can use EVALSHA.
        let _: String = scripts::RECORD_USAGE
            .prepare_invoke()
            .load_async(&mut c)
            .await
            .map_err(redis_error)?;
        for chunk in batch.chunks(USAGE_CHUNK) {
            let mut pipe = redis::pipe();
            for d in chunk {
                let (period, used) = d.credits.map_or((String::new(), String::new()), |(p, u)| {
                    (p.to_string(), u.to_string())
                });
                pipe.cmd("EVALSHA")
                    .arg(scripts::RECORD_USAGE.get_hash())
                    .arg(1)
                    .arg(self.shared.keys.record(&d.key_id))
                    .arg(d.requests)
                    .arg(
                        d.last_used_at
                            .map_or(String::new(), |t| unix_micros(t).to_string()),
                    )
                    .arg(period)
                    .arg(used)
                    .arg(codec::origin_json(d.last_used_from.as_ref())?)
                    .ignore();
            }
            let () = pipe.query_async(&mut c).await.map_err(redis_error)?;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.shared.conn().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventStore for RedisKeyStore {
    async fn events(
        &self,
        filter: &EventFilter<'_>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<EventPage, StoreError> {
        events::list(&self.shared, filter, cursor, limit).await
    }

    /// The events, and the webhook deliveries of those events.
    async fn prune_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.prune_deliveries(before, limit).await?;
        events::prune(&self.shared, before, limit).await
    }

    async fn append(&self, events: &[Event]) -> Result<(), StoreError> {
        if self.outbox.is_some() {
            let members = events
                .iter()
                .filter_map(|e| Some((e.key_id?, events::member(e))))
                .map(|(k, m)| m.map(|m| (k, m)))
                .collect::<Result<Vec<_>, _>>()?;
            let staged: Vec<(KeyId, &str)> =
                members.iter().map(|(k, m)| (*k, m.as_str())).collect();
            self.stage(&staged).await?;
        }
        events::append(&self.shared, events).await
    }

    async fn usage(&self, filter: &UsageFilter<'_>) -> Result<Vec<UsageRow>, StoreError> {
        crate::analytics::read(&self.shared, filter).await
    }

    /// Counts expire by themselves ([`crate::analytics::USAGE_TTL`]).
    async fn prune_usage(&self, _before: OffsetDateTime, _limit: u32) -> Result<u64, StoreError> {
        Ok(0)
    }
}
