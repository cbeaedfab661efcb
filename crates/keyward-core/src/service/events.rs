//! The audit log's side of the management service: the events each operation writes with its
//! change, and the reads and retention of the log ([`Keyward::list_events`],
//! [`Keyward::prune_events`]).

use time::OffsetDateTime;

use crate::Keyward;
use crate::audit::{self, Action, ActorKind, Event, EventCursor, EventFilter, Origin};
use crate::authz::{self, Actor};
use crate::key::KeyId;
use crate::management::{EventList, EventQuery, FieldError, ServiceError, store_err};
use crate::model::KeyRecord;
use crate::store::{MAX_EVENT_PAGE, StoreError};

/// The event of `action` (`key.created`, `admin.bootstrapped`) creating `record`: its settings
/// as changes from nothing.
pub(crate) fn created_event(
    action: Action,
    actor: &Actor,
    record: &KeyRecord,
    now: OffsetDateTime,
) -> Result<Event, ServiceError> {
    Ok(Event::new(action, actor, record, now)
        .map_err(rng_err)?
        .with_changes(audit::settings(record)))
}

/// The event of `action` by `actor` changing `before` into `after`, at `after.updated_at`.
pub(crate) fn change_event(
    action: Action,
    actor: &Actor,
    before: &KeyRecord,
    after: &KeyRecord,
) -> Result<Event, ServiceError> {
    Ok(Event::new(action, actor, after, after.updated_at)
        .map_err(rng_err)?
        .with_changes(audit::changes(before, after)))
}

pub(crate) fn rng_err(e: crate::key::RngError) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// What an owner (or a key caller) reading its keys' log sees of `event`: the actions of its own
/// side whole, those of the operator's side (administrators, the command line, the application,
/// keyward itself) without the actor's id and origin: an operator's address, user agent and
/// administrator key id are not a tenant's to read.
fn for_owner(event: &mut Event) {
    if !matches!(event.actor.kind, ActorKind::Owner | ActorKind::Key) {
        event.actor.id = None;
        event.origin = Origin::default();
    }
}

/// Events a round of [`Keyward::prune_events`] deletes.
const PRUNE_BATCH: u32 = 1000;

impl Keyward {
    /// A page of the audit log, newest first: the events `actor` reaches, narrowed by `query`.
    /// An administrator of every owner reads every event; an actor bound to an owner (an
    /// administrator of one owner, an owner, a key caller) reads that owner's events only,
    /// and naming a key it cannot reach is [`ServiceError::NotFound`], as for the key itself.
    /// An owner or key caller sees the operator's actions (administrators, the command line,
    /// the application, keyward) without the actor's id and the request's origin.
    ///
    /// # Errors
    /// `Validation` naming the bad field (`key_id`, `action`, `actor`, `since`, `until`,
    /// `cursor`, `limit`, or an owner other than the actor's own), `NotFound`, `Forbidden`,
    /// `Unavailable`.
    pub async fn list_events(
        &self,
        actor: &Actor,
        query: &EventQuery,
    ) -> Result<EventList, ServiceError> {
        authz::check_actor(actor)?;
        let mut errors = Vec::new();
        let key_id = query.key_id.as_deref().and_then(|k| {
            let id = k.parse::<KeyId>().ok();
            if id.is_none() {
                errors.push(FieldError::new("key_id", "invalid", "12 base62 characters"));
            }
            id
        });
        let action = query.action.as_deref().and_then(|a| {
            let parsed = Action::parse(a);
            if parsed.is_none() {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                errors.push(FieldError::new(
                    "action",
                    "invalid",
                    format!("one of {}", names.join(", ")),
                ));
            }
            parsed
        });
        let (actor_kind, actor_id) = match query.actor.as_deref() {
            Some(a) => {
                let (kind, id) = a.split_once(':').map_or((a, None), |(k, i)| (k, Some(i)));
                match ActorKind::parse(kind) {
                    Some(kind) if id != Some("") => (Some(kind), id),
                    _ => {
                        errors.push(FieldError::new(
                            "actor",
                            "invalid",
                            "a kind (admin, admin_key, owner, key, cli, application, system), \
                             optionally followed by `:` and an id",
                        ));
                        (None, None)
                    }
                }
            }
            None => (None, None),
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
        let since = instant("since", query.since.as_deref());
        let until = instant("until", query.until.as_deref());
        let limit = query.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_EVENT_PAGE {
            errors.push(FieldError::new(
                "limit",
                "out_of_range",
                format!("1–{MAX_EVENT_PAGE}"),
            ));
        }
        let cursor = query
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .and_then(|c| {
                let cursor = EventCursor::decode(c);
                if cursor.is_none() {
                    errors.push(FieldError::new("cursor", "invalid", "malformed cursor"));
                }
                cursor
            });
        let owner_id = match (actor.owner_id(), query.owner_id.as_deref()) {
            (Some(own), Some(asked)) if own != asked => {
                errors.push(FieldError::new(
                    "owner_id",
                    "not_allowed",
                    "this caller reads only its own owner's events",
                ));
                None
            }
            (Some(own), _) => Some(own),
            (None, Some(asked)) if !authz::is_valid_owner_id(asked) => {
                errors.push(FieldError::new("owner_id", "invalid", "not an owner id"));
                None
            }
            (None, asked) => asked,
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        // A key outside the actor's reach is not found, as the key itself is.
        if let Some(key_id) = &key_id
            && actor.owner_id().is_some()
        {
            self.fetch(actor, key_id).await?;
        }
        let filter = EventFilter {
            owner_id,
            key_id,
            action,
            actor_kind,
            actor_id,
            since,
            until,
        };
        let page = self
            .store()
            .events(&filter, cursor, limit)
            .await
            .map_err(store_err)?;
        let mut items = page.items;
        if !actor.is_admin() {
            items.iter_mut().for_each(for_owner);
        }
        Ok(EventList {
            items,
            next_cursor: page.next_cursor.map(|c| c.encode()),
        })
    }

    /// Records `key.expiring` for every active key that expires within one of `periods`, under
    /// the shortest that holds it (a key 20 hours from its expiry, with periods of 7 days and
    /// 1 day, gets the 1-day notice): once per key, period and expiry, whichever instance runs
    /// it (the store keeps one of each id, [`crate::store::EventStore::append`]). A rotated key
    /// in its grace period is left out: its successor is what expiry concerns. One scan of
    /// every key, in pages; the `keyward` server runs it hourly under `--expiry-notice`. Says
    /// how many notices this instance had not sent before.
    ///
    /// # Errors
    /// The store's, after the pages that succeeded.
    pub async fn notice_expiring(
        &self,
        periods: &[std::time::Duration],
    ) -> Result<usize, StoreError> {
        let mut periods: Vec<i64> = periods
            .iter()
            .map(|p| i64::try_from(p.as_secs()).unwrap_or(i64::MAX))
            .filter(|p| *p > 0)
            .collect();
        periods.sort_unstable();
        if periods.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let mut filter = crate::store::KeyFilter::all(now);
        filter.state = Some(crate::model::KeyState::Active);
        let (mut cursor, mut sent) = (None, 0);
        loop {
            let page = self
                .store()
                .list(&filter, cursor, crate::store::MAX_PAGE_SIZE)
                .await?;
            let notices: Vec<Event> = page
                .items
                .iter()
                .filter(|r| r.rotated_to.is_none())
                .filter_map(|r| {
                    let expires = r.expires_at?;
                    let left = (expires - now).whole_seconds();
                    let period = *periods.iter().find(|p| left > 0 && left <= **p)?;
                    let facts = vec![
                        audit::Change::fact(
                            "expires_at",
                            crate::clock::utc_text(expires, "Z").into(),
                        ),
                        audit::Change::fact("notice_seconds", period.into()),
                    ];
                    let once = format!("{period}:{}", crate::clock::unix_micros(expires));
                    let notice = Event::notice(
                        Action::KeyExpiring,
                        &r.owner_id,
                        r.key_id,
                        now,
                        &once,
                        facts,
                    );
                    self.0.usage.first_notice(notice.id).then_some(notice)
                })
                .collect();
            if !notices.is_empty() {
                self.store().append(&notices).await?;
                sent += notices.len();
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(sent),
            }
        }
    }

    /// Deletes the events older than `before`, in batches, and says how many: the audit log's
    /// retention (the `keyward` server runs it in the background under `--audit-retention`).
    ///
    /// # Errors
    /// The store's, after the batches that succeeded.
    pub async fn prune_events(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self.store().prune_events(before, PRUNE_BATCH).await?;
            total += n;
            if n < u64::from(PRUNE_BATCH) {
                return Ok(total);
            }
        }
    }
}
