//! The usage analytics side of the management service: reading a key's or an owner's counts
//! ([`Keyward::usage`]) and their retention ([`Keyward::prune_usage`]).

use time::OffsetDateTime;

use crate::Keyward;
use crate::analytics::{Granularity, Tags, UsageFilter, UsageReport};
use crate::authz::{self, Actor};
use crate::key::KeyId;
use crate::management::{FieldError, ServiceError, UsageQuery, store_err};
use crate::store::StoreError;

/// Most hourly buckets one read spans (31 days).
const MAX_HOURS: i64 = 744;

/// Most daily buckets one read spans.
const MAX_DAYS: i64 = 400;

/// Usage counts a round of [`Keyward::prune_usage`] deletes.
const PRUNE_BATCH: u32 = 1000;

impl Keyward {
    /// Usage analytics: the verifications of `key_id` (or, without one, of every key of the
    /// actor's owner), by outcome, in hourly or daily buckets, with each tag's share. The actor
    /// must be bound to an owner (an administrator of one owner, the owner, a key caller); a
    /// key it cannot reach is [`ServiceError::NotFound`], as the key itself is.
    ///
    /// Counts reach the store with the usage flush, so the current bucket shows what was
    /// flushed of it.
    ///
    /// # Errors
    /// `Validation` naming the bad field (`from`, `to`, `granularity`, `tag`, or `owner_id` for
    /// an actor bound to no owner), `NotFound`, `Forbidden`, `Unavailable`.
    pub async fn usage(
        &self,
        actor: &Actor,
        key_id: Option<&KeyId>,
        query: &UsageQuery,
    ) -> Result<UsageReport, ServiceError> {
        authz::check_actor(actor)?;
        let mut errors = Vec::new();
        let granularity = match query.granularity.as_deref() {
            None | Some("hour") => Granularity::Hour,
            Some("day") => Granularity::Day,
            Some(_) => {
                errors.push(FieldError::new("granularity", "invalid", "hour or day"));
                Granularity::Hour
            }
        };
        let mut instant = |field: &str, text: Option<&str>| {
            text.and_then(|t| {
                let at = crate::rfc3339::parse(t);
                if at.is_none() {
                    errors.push(FieldError::new(field, "invalid", "an RFC 3339 date-time"));
                }
                at
            })
        };
        let from = instant("from", query.from.as_deref());
        let to = instant("to", query.to.as_deref());
        let step = granularity.seconds();
        let max = match granularity {
            Granularity::Hour => MAX_HOURS,
            Granularity::Day => MAX_DAYS,
        };
        let to = ceil(granularity, to.unwrap_or_else(|| self.now()));
        let default_span = match granularity {
            Granularity::Hour => 24,
            Granularity::Day => 30,
        };
        let from = from.map_or_else(
            || {
                to.checked_sub(time::Duration::seconds(step * default_span))
                    .unwrap_or(to)
            },
            |f| granularity.floor(f),
        );
        let buckets = (to - from).whole_seconds() / step;
        if buckets <= 0 {
            errors.push(FieldError::new("from", "out_of_range", "before `to`"));
        } else if buckets > max {
            errors.push(FieldError::new(
                "from",
                "out_of_range",
                format!("at most {max} buckets before `to`"),
            ));
        }
        let tag = query.tag.as_deref();
        if tag.is_some_and(|t| Tags::new([t]).is_err()) {
            errors.push(FieldError::new(
                "tag",
                "invalid",
                format!("1–{} characters without control characters", Tags::MAX_LEN),
            ));
        }
        let Some(owner_id) = actor.owner_id() else {
            errors.push(FieldError::new(
                "owner_id",
                "required",
                "usage is read for one owner",
            ));
            return Err(ServiceError::Validation(errors));
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        if let Some(key_id) = key_id {
            self.fetch(actor, key_id).await?;
        } else if !authz::is_valid_owner_id(owner_id) {
            return Err(ServiceError::NotFound);
        }
        let filter = UsageFilter {
            owner_id,
            key_id: key_id.copied(),
            from,
            to,
        };
        let rows = self.store().usage(&filter).await.map_err(store_err)?;
        Ok(UsageReport::build(granularity, from, to, tag, &rows))
    }

    /// Deletes the usage counts of hours before `before`, in batches, and says how many: usage
    /// retention (the `keyward` server runs it in the background under `--usage-retention`).
    ///
    /// # Errors
    /// The store's, after the batches that succeeded.
    pub async fn prune_usage(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self.store().prune_usage(before, PRUNE_BATCH).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }
}

/// The start of the bucket after the one holding `at`, unless `at` starts one.
fn ceil(granularity: Granularity, at: OffsetDateTime) -> OffsetDateTime {
    let floor = granularity.floor(at);
    if floor == at {
        at
    } else {
        // The last instant `time` knows has no next bucket: the range ends where it ends.
        floor
            .checked_add(time::Duration::seconds(granularity.seconds()))
            .unwrap_or(floor)
    }
}
