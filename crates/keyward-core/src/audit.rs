//! The audit log: one append-only [`Event`] for every management action and security-relevant
//! change of a key: who did it ([`EventActor`]), from where ([`Origin`]), to which key and owner,
//! and for a change the fields it changed, old → new. A store writes an event in the same
//! transaction (SQL) or script (Redis) as the change it records ([`crate::KeyStore`]'s writes
//! take it), so that a change without its record cannot happen. No event holds a secret.
//!
//! Events are read newest first, through [`crate::Keyward::list_events`]
//! (`GET /admin/audit`, `GET /api-keys/{key_id}/events`, `keyward audit`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::key::{KeyId, RngError};
use crate::model::KeyRecord;

/// Length of an [`EventId`].
pub const EVENT_ID_LEN: usize = 20;

/// An event's id: 20 base62 characters (119 bits) from the OS CSPRNG. Webhook deliveries carry
/// it, so a receiver can tell a redelivery from a new event.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId([u8; EVENT_ID_LEN]);

impl EventId {
    /// A fresh random id.
    ///
    /// # Errors
    /// [`RngError`] when the OS random source fails.
    pub fn generate() -> Result<Self, RngError> {
        let text = crate::key::random_base62(&mut rand_core::OsRng, EVENT_ID_LEN)?;
        let mut id = [0u8; EVENT_ID_LEN];
        id.copy_from_slice(text.as_bytes());
        Ok(Self(id))
    }

    /// The id of the one event that `parts` name (a notice's action, key and period), the same
    /// on every instance: a store keeps the first event of an id and skips the others
    /// ([`crate::store::EventStore::append`]), so that instances noticing the same thing
    /// record it once.
    #[must_use]
    pub fn derived(parts: &[&str]) -> Self {
        use sha2::Digest as _;
        const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut hash = sha2::Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hash.finalize();
        let mut id = [0u8; EVENT_ID_LEN];
        // A name, not a secret: the slight bias of `% 62` costs nothing but a few of its
        // ~119 bits.
        for (out, byte) in id.iter_mut().zip(digest.iter()) {
            *out = BASE62[usize::from(*byte) % BASE62.len()];
        }
        Self(id)
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only base62 bytes are ever stored (`generate`, `derived`, `from_str`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Not an event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an event id is 20 base62 characters")]
pub struct EventIdError;

impl FromStr for EventId {
    type Err = EventIdError;
    fn from_str(s: &str) -> Result<Self, EventIdError> {
        let bytes: [u8; EVENT_ID_LEN] = s.as_bytes().try_into().map_err(|_| EventIdError)?;
        if !bytes.iter().all(u8::is_ascii_alphanumeric) {
            return Err(EventIdError);
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.as_str())
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What happened. The wire names (`key.created`, …) are stable: webhooks and stored rows use
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum Action {
    /// A key was created (also a rotation's successor, with `rotated_from` among its changes).
    #[serde(rename = "key.created")]
    KeyCreated,
    /// Management fields of a key changed; the changes name them.
    #[serde(rename = "key.updated")]
    KeyUpdated,
    /// A key was revoked.
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    /// A key was rotated: it names its successor and its new expiry.
    #[serde(rename = "key.rotated")]
    KeyRotated,
    /// An inactive key was made active again.
    #[serde(rename = "key.reactivated")]
    KeyReactivated,
    /// A key was reported leaked.
    #[serde(rename = "key.leaked")]
    KeyLeaked,
    /// A key's digest was recomputed under the newest pepper version.
    #[serde(rename = "key.redigested")]
    KeyRedigested,
    /// The first administrator key of a database was created.
    #[serde(rename = "admin.bootstrapped")]
    AdminBootstrapped,
    /// A key expires within a notice period (the `keyward` server's `--expiry-notice`): once
    /// per key, period and expiry. A notice: nothing changed; `changes` carries `expires_at`
    /// and `notice_seconds`.
    #[serde(rename = "key.expiring")]
    KeyExpiring,
    /// A key's credits fell to the notice threshold (`--credits-notice`): once per key and
    /// credit period. A notice; `changes` carries `credits_remaining`, `credits_limit` and
    /// `credits_period`.
    #[serde(rename = "key.credits_low")]
    KeyCreditsLow,
    /// A key's rate limit refused a request: at most once per key and limit window. A notice;
    /// `changes` carries `rate_limit` (`requests` per `window_seconds`) and `window_start`.
    #[serde(rename = "key.rate_limited")]
    KeyRateLimited,
}

impl Action {
    /// Every action.
    pub const ALL: [Self; 11] = [
        Self::KeyCreated,
        Self::KeyUpdated,
        Self::KeyRevoked,
        Self::KeyRotated,
        Self::KeyReactivated,
        Self::KeyLeaked,
        Self::KeyRedigested,
        Self::AdminBootstrapped,
        Self::KeyExpiring,
        Self::KeyCreditsLow,
        Self::KeyRateLimited,
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeyCreated => "key.created",
            Self::KeyUpdated => "key.updated",
            Self::KeyRevoked => "key.revoked",
            Self::KeyRotated => "key.rotated",
            Self::KeyReactivated => "key.reactivated",
            Self::KeyLeaked => "key.leaked",
            Self::KeyRedigested => "key.redigested",
            Self::AdminBootstrapped => "admin.bootstrapped",
            Self::KeyExpiring => "key.expiring",
            Self::KeyCreditsLow => "key.credits_low",
            Self::KeyRateLimited => "key.rate_limited",
        }
    }

    /// The action of a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What kind of caller did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActorKind {
    /// The application's own code, through the library ([`crate::Actor::admin`]).
    Application,
    /// An administrator the admin check let in: in the `keyward` server, the admin token.
    Admin,
    /// A key holding `keyward:admin`; the id is the key's.
    AdminKey,
    /// An owner through self-service; the id is the owner's.
    Owner,
    /// An API key managing its owner's keys; the id is the key's.
    Key,
    /// The `keyward` admin command line.
    Cli,
    /// keyward itself (a lazy re-digest, the clean-up of a failed rotation).
    System,
}

impl ActorKind {
    /// Every kind.
    pub const ALL: [Self; 7] = [
        Self::Application,
        Self::Admin,
        Self::AdminKey,
        Self::Owner,
        Self::Key,
        Self::Cli,
        Self::System,
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Admin => "admin",
            Self::AdminKey => "admin_key",
            Self::Owner => "owner",
            Self::Key => "key",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }

    /// The kind of a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventActor {
    /// What kind of caller.
    #[serde(rename = "type")]
    pub kind: ActorKind,
    /// The owner id or key id, for the kinds that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

pub use crate::model::{MAX_REQUEST_ID, MAX_USER_AGENT, Origin};

/// One field a change set: its value before and after. Values are as the key's safe view
/// ([`crate::KeyView`]) writes them; `metadata` is named without its values (they are the
/// application's data, and audit records are kept long).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    /// The field, as the key's view names it.
    pub field: String,
    /// Its value before; absent when it had none (and for `metadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// Its value after; absent when it has none (and for `metadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl Change {
    /// A fact a notice carries: `field` with the value `value`, nothing before.
    #[must_use]
    pub fn fact(field: &str, value: Value) -> Self {
        Self {
            field: field.to_owned(),
            old: None,
            new: Some(value),
        }
    }
}

/// The fields a change is recorded for, in this order; `metadata` without values.
const TRACKED: [&str; 12] = [
    "name",
    "description",
    "scopes",
    "is_active",
    "not_before",
    "expires_at",
    "rotated_from",
    "rotated_to",
    "ip_allowlist",
    "rate_limit",
    "credits",
    "metadata",
];

/// The fields `after` changed of `before`, old → new.
#[must_use]
pub fn changes(before: &KeyRecord, after: &KeyRecord) -> Vec<Change> {
    let at = after.updated_at;
    let old = fields(before, at);
    diff(&old, &fields(after, at))
}

/// The settings of a new key, as changes from nothing: the fields it has a value for.
#[must_use]
pub fn settings(record: &KeyRecord) -> Vec<Change> {
    let new = fields(record, record.created_at);
    let blank = new
        .iter()
        .map(|(k, v)| {
            let empty = match v {
                Value::Array(_) => Value::Array(Vec::new()),
                Value::Object(_) => Value::Object(serde_json::Map::new()),
                _ => Value::Null,
            };
            (k.clone(), empty)
        })
        .collect();
    diff(&blank, &new)
        .into_iter()
        .map(|mut c| {
            c.old = None;
            c
        })
        .collect()
}

fn fields(record: &KeyRecord, at: OffsetDateTime) -> serde_json::Map<String, Value> {
    match serde_json::to_value(record.view(at)) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

fn diff(old: &serde_json::Map<String, Value>, new: &serde_json::Map<String, Value>) -> Vec<Change> {
    TRACKED
        .iter()
        .filter_map(|field| {
            let (o, n) = (old.get(*field), new.get(*field));
            (o != n).then(|| {
                // `null` is written as nothing, so that the change reads back as written.
                let value =
                    |v: Option<&Value>| v.filter(|v| !v.is_null() && *field != "metadata").cloned();
                Change {
                    field: (*field).to_owned(),
                    old: value(o),
                    new: value(n),
                }
            })
        })
        .collect()
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// The event's id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "Zx81GbWq0LmN4PpT2sKa"))]
    pub id: EventId,
    /// When it happened.
    #[serde(with = "crate::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub action: Action,
    /// Who did it.
    pub actor: EventActor,
    /// The owner of the key.
    pub owner_id: String,
    /// The key (every action has one but `admin.bootstrapped`, which names the key it made).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub key_id: Option<KeyId>,
    /// The fields changed, old → new; for `key.created` the key's settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Where the request came from.
    #[serde(default)]
    pub origin: Origin,
}

impl Event {
    /// A new event of `action` by `actor` on `record` at `at`, with a fresh id.
    ///
    /// # Errors
    /// [`RngError`] when the OS random source fails.
    pub fn new(
        action: Action,
        actor: &crate::Actor,
        record: &KeyRecord,
        at: OffsetDateTime,
    ) -> Result<Self, RngError> {
        Self::about(action, actor, &record.owner_id, record.key_id, at)
    }

    /// A notice (`key.expiring`, `key.credits_low`, `key.rate_limited`) about the key `key_id`
    /// of `owner_id` at `at`, by keyward itself: nothing changed, `facts` say what was noticed.
    /// Its id is derived from the action, the key and `period` (what makes it once: the
    /// notice period, the credit period, the limit window), so that a store keeps one.
    #[must_use]
    pub fn notice(
        action: Action,
        owner_id: &str,
        key_id: KeyId,
        at: OffsetDateTime,
        period: &str,
        facts: Vec<Change>,
    ) -> Self {
        Self {
            id: EventId::derived(&[action.as_str(), key_id.as_str(), period]),
            at,
            action,
            actor: EventActor {
                kind: ActorKind::System,
                id: None,
            },
            owner_id: owner_id.to_owned(),
            key_id: Some(key_id),
            changes: facts,
            origin: Origin::default(),
        }
    }

    /// A new event of `action` by `actor` on the key `key_id` of `owner_id` at `at`, with a
    /// fresh id.
    ///
    /// # Errors
    /// [`RngError`] when the OS random source fails.
    pub fn about(
        action: Action,
        actor: &crate::Actor,
        owner_id: &str,
        key_id: KeyId,
        at: OffsetDateTime,
    ) -> Result<Self, RngError> {
        Ok(Self {
            id: EventId::generate()?,
            at,
            action,
            actor: actor.event_actor(),
            owner_id: owner_id.to_owned(),
            key_id: Some(key_id),
            changes: Vec::new(),
            origin: actor.origin().clone(),
        })
    }

    /// With these changes.
    #[must_use]
    pub fn with_changes(mut self, changes: Vec<Change>) -> Self {
        self.changes = changes;
        self
    }
}

/// A position in the audit log: events are listed newest first, by `(at, id)` descending, and
/// the cursor is the last one returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventCursor {
    /// Time of the last event returned.
    pub at: OffsetDateTime,
    /// Its id.
    pub id: EventId,
}

/// What an event cursor looks like, for the OpenAPI document.
pub const EVENT_CURSOR_PATTERN: &str = r"^([0-9]{1,18}\.[0-9A-Za-z]{20})?$";

impl EventCursor {
    /// The cursor after `event`.
    #[must_use]
    pub fn after(event: &Event) -> Self {
        Self {
            at: event.at,
            id: event.id,
        }
    }

    /// `<at in µs since the epoch>.<id>`.
    #[must_use]
    pub fn encode(&self) -> String {
        format!("{}.{}", crate::clock::unix_micros(self.at), self.id)
    }

    /// Reads [`EventCursor::encode`]'s output; `None` for anything else.
    #[must_use]
    pub fn decode(s: &str) -> Option<Self> {
        let (t, id) = s.split_once('.')?;
        if t.is_empty() || t.len() > 18 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let micros: i64 = t.parse().ok()?;
        Some(Self {
            at: crate::clock::from_unix_micros(micros).unwrap_or(crate::clock::LATEST),
            id: id.parse().ok()?,
        })
    }
}

/// Which events a read returns: built with [`EventFilter::default`] and narrowed; stores read
/// its fields. Bounds are inclusive `since`, exclusive `until`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventFilter<'a> {
    /// Only events of this owner's keys.
    pub owner_id: Option<&'a str>,
    /// Only events of this key.
    pub key_id: Option<KeyId>,
    /// Only this action.
    pub action: Option<Action>,
    /// Only events by this kind of actor.
    pub actor_kind: Option<ActorKind>,
    /// Only events by this actor id (with `actor_kind`).
    pub actor_id: Option<&'a str>,
    /// Only events at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Only events before this instant.
    pub until: Option<OffsetDateTime>,
}

impl EventFilter<'_> {
    /// Whether `event` is one this filter returns: what a store that cannot filter in its
    /// query checks on each event it reads.
    #[must_use]
    pub fn matches(&self, event: &Event) -> bool {
        self.owner_id.is_none_or(|o| event.owner_id == o)
            && self.key_id.is_none_or(|k| event.key_id == Some(k))
            && self.action.is_none_or(|a| event.action == a)
            && self.actor_kind.is_none_or(|k| event.actor.kind == k)
            && self
                .actor_id
                .is_none_or(|i| event.actor.id.as_deref() == Some(i))
            && self.since.is_none_or(|s| event.at >= s)
            && self.until.is_none_or(|u| event.at < u)
    }
}

/// One page of the audit log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventPage {
    /// The events, newest first.
    pub items: Vec<Event>,
    /// Where the next (older) page starts; `None` on the last page.
    pub next_cursor: Option<EventCursor>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_and_cursors_round_trip() {
        let id = EventId::generate().unwrap();
        assert_eq!(id.as_str().parse::<EventId>().unwrap(), id);
        assert!("short".parse::<EventId>().is_err());
        assert!("aaaaaaaaaaaaaaaaaaa-".parse::<EventId>().is_err());
        let c = EventCursor {
            at: crate::clock::from_unix_micros(1_732_876_543_123_456).unwrap(),
            id,
        };
        let re = regex::Regex::new(EVENT_CURSOR_PATTERN).unwrap();
        assert!(re.is_match(&c.encode()));
        assert_eq!(EventCursor::decode(&c.encode()), Some(c));
        for bad in ["", "1", "-1.aaaaaaaaaaaaaaaaaaaa", "1.aaa"] {
            assert_eq!(EventCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_value(a).unwrap(),
                Value::String(a.as_str().into())
            );
        }
        for k in ActorKind::ALL {
            assert_eq!(ActorKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                Value::String(k.as_str().into())
            );
        }
    }

    #[test]
    fn origins_are_cleaned() {
        let long = "a".repeat(MAX_USER_AGENT + 10);
        let o = Origin::new(None, Some(long.as_bytes()), Some(b"req 1"));
        assert_eq!(o.user_agent.unwrap().len(), MAX_USER_AGENT);
        assert_eq!(o.request_id, None, "a space is not visible ASCII");
        let o = Origin::new(None, Some(b"curl/8\r\nX-Forged: 1"), Some(b"abc-123"));
        assert_eq!(o.user_agent.as_deref(), Some("curl/8X-Forged: 1"));
        assert_eq!(o.request_id.as_deref(), Some("abc-123"));
        let o = Origin::new(None, Some("é".repeat(200).as_bytes()), None);
        assert!(o.user_agent.unwrap().len() <= MAX_USER_AGENT);
    }
}
