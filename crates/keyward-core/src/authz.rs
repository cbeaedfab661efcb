//! Who may do what with keys (DESIGN.md §11): the [`Actor`] a management call is made by, and
//! the rules the management service applies to it before anything is written. There is no HTTP
//! here: adapters and the server only say who the actor is.
//!
//! | actor | established by | acts on | may |
//! | --- | --- | --- | --- |
//! | admin | the admin token, a key holding `keyward:admin` by name, the application's own code | any owner | everything, including reserved scopes (by exact name) |
//! | owner | the application's owner resolver | its own keys; no owner id starting `keyward` | name, description, narrow scopes, shorten expiry, deactivate, reactivate what it deactivated |
//! | key | a verified key, when the application lets keys manage keys | its owner's keys | as an owner, and grant at most the scopes it holds |

use time::OffsetDateTime;

use crate::audit::{ActorKind, EventActor, Origin};
use crate::key::KeyId;
use crate::management::{CreateKeyRequest, FieldError, ServiceError, UpdateKeyRequest};
use crate::model::{Credits, Deactivator, KeyRecord, Principal, RateLimit};
use crate::scope::{RESERVED_NAMESPACE, ScopeSet};

/// What kind of caller an [`Actor`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// An administrator: the admin token, a key holding `keyward:admin`, or the application's
    /// own code.
    Admin,
    /// An owner managing its own keys (self-service).
    Owner,
    /// A verified API key managing its owner's keys (when the application allows it).
    Key,
}

/// The caller of a management call, as the adapter or server established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    role: Role,
    owner: Option<String>,
    scopes: ScopeSet,
    /// The calling key, for a key caller: its restrictions are the ceiling of what it creates.
    key: Option<KeyId>,
    /// Who the audit log names.
    by: EventActor,
    /// Where the request came from, for the audit log.
    origin: Origin,
}

impl Actor {
    /// An administrator acting on any owner's keys (the admin CLI, the application's own code).
    #[must_use]
    pub fn admin() -> Self {
        Self {
            role: Role::Admin,
            owner: None,
            scopes: ScopeSet::new(),
            key: None,
            by: EventActor {
                kind: ActorKind::Application,
                id: None,
            },
            origin: Origin::default(),
        }
    }

    /// An administrator of every owner at the `keyward` command line: the audit log names it
    /// `cli`.
    #[must_use]
    pub fn cli() -> Self {
        Self::admin().by(ActorKind::Cli, None)
    }

    /// keyward itself, for what it does on its own (a lazy re-digest, undoing a failed
    /// rotation).
    pub(crate) fn system() -> Self {
        Self::admin().by(ActorKind::System, None)
    }

    /// The same actor, named `kind` (with `id`) in the audit log: an adapter says an
    /// administrator came in through the admin check ([`ActorKind::Admin`]) or with a key
    /// holding `keyward:admin` ([`ActorKind::AdminKey`] and its id). It changes nothing of
    /// what the actor may do.
    #[must_use]
    pub fn by(mut self, kind: ActorKind, id: Option<String>) -> Self {
        self.by = EventActor { kind, id };
        self
    }

    /// The same actor, its requests coming from `origin` (recorded in the audit log).
    #[must_use]
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Who the audit log names for this actor.
    #[must_use]
    pub fn event_actor(&self) -> EventActor {
        self.by.clone()
    }

    /// Where the actor's request came from.
    #[must_use]
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// An administrator acting on the keys of `owner_id` (the admin routes
    /// `/admin/owners/{owner_id}/…`): other owners' keys are "not found".
    #[must_use]
    pub fn admin_for(owner_id: impl Into<String>) -> Self {
        Self {
            owner: Some(owner_id.into()),
            ..Self::admin()
        }
    }

    /// An owner managing its own keys, as the application's owner resolver named it.
    #[must_use]
    pub fn owner(owner_id: impl Into<String>) -> Self {
        let owner: String = owner_id.into();
        Self {
            role: Role::Owner,
            by: EventActor {
                kind: ActorKind::Owner,
                id: Some(owner.clone()),
            },
            owner: Some(owner),
            scopes: ScopeSet::new(),
            key: None,
            origin: Origin::default(),
        }
    }

    /// A verified key managing its owner's keys; it grants at most the scopes it holds, and
    /// the keys it creates inherit at most its allowlist, rate limit, credits and expiry.
    #[must_use]
    pub fn key(principal: &Principal) -> Self {
        Self {
            role: Role::Key,
            owner: Some(principal.owner_id().to_owned()),
            scopes: principal.scopes().clone(),
            key: Some(principal.key_id()),
            by: EventActor {
                kind: ActorKind::Key,
                id: Some(principal.key_id().to_string()),
            },
            origin: Origin::default(),
        }
    }

    /// The calling key, for a key caller.
    pub(crate) fn key_id(&self) -> Option<&KeyId> {
        self.key.as_ref()
    }

    /// What kind of caller this is.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The owner whose keys the actor acts on; `None` for an administrator of every owner.
    #[must_use]
    pub fn owner_id(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// Whether the actor is an administrator.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The longest owner id, in bytes.
pub const MAX_OWNER_ID_LEN: usize = 255;

/// The grammar of an owner id, as a regular expression: a letter or digit, then letters,
/// digits and `. _ : @ + / = | ~ -`, at most [`MAX_OWNER_ID_LEN`] in all. User ids, emails,
/// UUIDs, `org:42`, `auth0|5f7c…` fit. No whitespace, no comma, no quote, nothing outside
/// ASCII: an owner id travels in headers (`X-Keyward-Owner`, an owner header a proxy sets),
/// and every HTTP parser must read the same id from it (review finding 4: ` alice` and `alice `
/// were distinct owners in the stores, and one upstream after header trimming).
pub const OWNER_ID_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._:@+/=|~-]{0,254}$";

/// Whether `owner_id` follows [`OWNER_ID_PATTERN`]. Every management call checks it, whoever
/// the actor is and whatever path (admin route, owner resolver, CLI) named the owner.
#[must_use]
pub fn is_valid_owner_id(owner_id: &str) -> bool {
    let b = owner_id.as_bytes();
    (1..=MAX_OWNER_ID_LEN).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"._:@+/=|~-".contains(&c))
}

/// Whether `owner_id` is reserved for keyward itself (`keyward-admin`, …): such owners are never
/// acted on through self-service.
#[must_use]
pub(crate) fn is_reserved_owner(owner_id: &str) -> bool {
    owner_id.starts_with("keyward")
}

fn forbidden(field: &str, code: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(field, code, message)
}

/// Refuses an owner id outside [`OWNER_ID_PATTERN`], and a non-admin actor on a reserved one.
pub(crate) fn check_actor(actor: &Actor) -> Result<(), ServiceError> {
    if let Some(owner) = actor.owner_id()
        && !is_valid_owner_id(owner)
    {
        return Err(ServiceError::Validation(vec![FieldError::new(
            "owner_id",
            "invalid",
            format!(
                "1–{MAX_OWNER_ID_LEN} of A-Z a-z 0-9 . _ : @ + / = | ~ -, starting with a letter or digit"
            ),
        )]));
    }
    match actor.owner_id() {
        Some(owner) if !actor.is_admin() && is_reserved_owner(owner) => {
            Err(ServiceError::Forbidden(vec![forbidden(
                "owner_id",
                "reserved_owner",
                "owner ids starting with `keyward` are managed by administrators only",
            )]))
        }
        _ => Ok(()),
    }
}

/// Whether `record` is within the actor's reach: its owner's keys, or any key for an admin of
/// every owner.
pub(crate) fn reaches(actor: &Actor, record: &KeyRecord) -> bool {
    actor.owner_id().is_none_or(|o| o == record.owner_id)
}

/// The refusals for granting `requested`: reserved scopes by a non-admin, scopes a key caller
/// does not hold, and (on update, `current` given) scopes a non-admin would widen to.
fn scope_refusals(actor: &Actor, requested: &ScopeSet, current: Option<&ScopeSet>) -> Vec<String> {
    let mut refused = Vec::new();
    if actor.is_admin() {
        return refused;
    }
    for scope in requested.iter() {
        let held_now = current.is_some_and(|c| c.covers(scope));
        let ok = if scope.is_reserved() {
            // Only an existing grant by name survives a non-admin update (narrowing).
            current.is_some_and(|c| c.holds_exact(scope.as_str()))
        } else {
            current.is_none() || held_now
        };
        let within_caller = actor.role != Role::Key || actor.scopes.covers(scope);
        if !ok || !within_caller {
            refused.push(scope.as_str().to_owned());
        }
    }
    refused
}

fn scope_error(actor: &Actor, refused: &[String], update: bool) -> FieldError {
    let why = if refused.iter().any(|s| s.starts_with(RESERVED_NAMESPACE)) {
        format!("scopes under `{RESERVED_NAMESPACE}` are granted by administrators only")
    } else if actor.role == Role::Key {
        "a key grants at most the scopes it holds".to_owned()
    } else if update {
        "owners may only narrow a key's scopes".to_owned()
    } else {
        "these scopes may not be granted by this caller".to_owned()
    };
    forbidden(
        "scopes",
        "not_grantable",
        format!("{why}: {}", refused.join(", ")),
    )
}

fn admin_only(field: &str) -> FieldError {
    forbidden(
        field,
        "admin_only",
        format!("only administrators set or change `{field}`"),
    )
}

/// What a create by `actor` may not do. Empty for administrators.
pub(crate) fn create_refusals(
    actor: &Actor,
    req: &CreateKeyRequest,
    scopes: &ScopeSet,
) -> Vec<FieldError> {
    let mut refusals = Vec::new();
    if actor.is_admin() {
        return refusals;
    }
    let refused = scope_refusals(actor, scopes, None);
    if !refused.is_empty() {
        refusals.push(scope_error(actor, &refused, false));
    }
    if req.rate_limit.is_some() {
        refusals.push(admin_only("rate_limit"));
    }
    if req.credits.is_some() {
        refusals.push(admin_only("credits"));
    }
    if !req.ip_allowlist.is_empty() {
        refusals.push(admin_only("ip_allowlist"));
    }
    if req.metadata.as_ref().is_some_and(|m| !m.is_empty()) {
        refusals.push(admin_only("metadata"));
    }
    refusals
}

/// What an update by `actor` of `record` may not do. Empty for administrators. `scopes` is the
/// parsed `scopes` of the request, when it has them.
pub(crate) fn update_refusals(
    actor: &Actor,
    req: &UpdateKeyRequest,
    scopes: Option<&ScopeSet>,
    record: &KeyRecord,
) -> Vec<FieldError> {
    let mut refusals = Vec::new();
    if actor.is_admin() {
        return refusals;
    }
    if let Some(scopes) = scopes {
        let refused = scope_refusals(actor, scopes, Some(&record.scopes));
        if !refused.is_empty() {
            refusals.push(scope_error(actor, &refused, true));
        }
    }
    if let Some(expiry) = req.expires_at
        && extends(record.expires_at, expiry)
    {
        refusals.push(forbidden(
            "expires_at",
            "extending",
            "owners may only shorten a key's lifetime",
        ));
    }
    if req.is_active == Some(true)
        && !record.is_active
        && record.deactivated_by != Some(Deactivator::Owner)
    {
        refusals.push(forbidden(
            "is_active",
            "admin_deactivated",
            "an administrator deactivated this key; only an administrator reactivates it",
        ));
    }
    if req.rate_limit.is_some() {
        refusals.push(admin_only("rate_limit"));
    }
    if req.credits.is_some() {
        refusals.push(admin_only("credits"));
    }
    if req.ip_allowlist.is_some() {
        refusals.push(admin_only("ip_allowlist"));
    }
    if req.metadata.is_some() {
        refusals.push(admin_only("metadata"));
    }
    refusals
}

/// What a rotation by `actor` of `record` may not do: a key caller may only rotate keys whose
/// every scope it holds itself (a successor is a fresh credential with the old key's scopes),
/// and only administrators rotate keys holding reserved scopes. Empty for administrators.
pub(crate) fn rotate_refusals(actor: &Actor, record: &KeyRecord) -> Vec<FieldError> {
    let mut refusals = Vec::new();
    if actor.is_admin() {
        return refusals;
    }
    let reserved: Vec<String> = record
        .scopes
        .iter()
        .filter(|s| s.is_reserved())
        .map(|s| s.as_str().to_owned())
        .collect();
    if !reserved.is_empty() {
        refusals.push(forbidden(
            "key_id",
            "admin_only",
            format!(
                "keys holding `{RESERVED_NAMESPACE}` scopes are rotated by administrators only: {}",
                reserved.join(", ")
            ),
        ));
    }
    if actor.role == Role::Key {
        let wider: Vec<String> = record
            .scopes
            .iter()
            .filter(|s| !s.is_reserved() && !actor.scopes.covers(s))
            .map(|s| s.as_str().to_owned())
            .collect();
        if !wider.is_empty() {
            refusals.push(forbidden(
                "scopes",
                "not_grantable",
                format!(
                    "a key rotates only keys whose scopes it holds: {}",
                    wider.join(", ")
                ),
            ));
        }
    }
    refusals
}

/// What a key `caller` may pass on to a key it creates (review finding 7: a key must not shed
/// its own restrictions by minting a fresh one): its allowlist, the stricter of its rate limit
/// and the defaults, at most its credits, no later expiry than its own, and signing if it
/// signs. A child of a caller with a rate limit or credits counts against the caller's own
/// bucket and counter (its lineage is the caller's, as a rotation successor's is), so that
/// many children are not many budgets.
pub(crate) struct Ceiling<'a> {
    pub(crate) caller: &'a KeyRecord,
}

impl Ceiling<'_> {
    /// The stricter of two limits in both fields: the fewer requests over the longer window
    /// (the lower average rate alone would let a long window's burst through).
    pub(crate) fn rate_limit(&self, rate: Option<RateLimit>) -> Option<RateLimit> {
        match (self.caller.rate_limit, rate) {
            (Some(c), Some(r)) => Some(RateLimit {
                requests: c.requests.min(r.requests),
                window_seconds: c.window_seconds.max(r.window_seconds),
            }),
            (c, r) => c.or(r),
        }
    }

    pub(crate) fn credits(&self, credits: Option<Credits>) -> Option<Credits> {
        match (self.caller.credits, credits) {
            (Some(c), Some(d)) => Some(Credits {
                limit: c.limit.min(d.limit),
                // A one-time allowance is at most what a refilling one gives; of two refills,
                // the slower.
                refill_seconds: match (c.refill_seconds, d.refill_seconds) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                },
            }),
            (c, d) => c.or(d),
        }
    }

    /// The refusals for a key caller rotating `record`: one per restriction of the caller's
    /// that `record` is without (a wider allowlist, a faster rate limit, more credits, a later
    /// expiry).
    pub(crate) fn wider_in(&self, record: &KeyRecord) -> Vec<FieldError> {
        let caller = self.caller;
        let within_allowlist = caller.ip_allowlist.is_empty()
            || (!record.ip_allowlist.is_empty()
                && record.ip_allowlist.iter().all(|net| {
                    caller
                        .ip_allowlist
                        .iter()
                        .any(|c| c.as_ipnet().contains(&net.as_ipnet()))
                }));
        let within_expiry = match (caller.expires_at, record.expires_at) {
            (Some(c), Some(e)) => e <= c,
            (Some(_), None) => false,
            (None, _) => true,
        };
        [
            ("ip_allowlist", within_allowlist),
            (
                "rate_limit",
                self.rate_limit(record.rate_limit) == record.rate_limit,
            ),
            ("credits", self.credits(record.credits) == record.credits),
            ("expires_at", within_expiry),
        ]
        .into_iter()
        .filter(|(_, within)| !within)
        .map(|(field, _)| {
            forbidden(
                field,
                "beyond_caller",
                format!("a key rotates only keys whose `{field}` is within its own"),
            )
        })
        .collect()
    }

    pub(crate) fn expiry(
        &self,
        wanted: Option<OffsetDateTime>,
        explicit: bool,
    ) -> Result<Option<OffsetDateTime>, FieldError> {
        match (self.caller.expires_at, wanted) {
            (Some(c), w) if w.is_none_or(|w| w > c) => {
                if explicit {
                    Err(forbidden(
                        "expires_at",
                        "beyond_caller",
                        "a key creates keys that expire no later than itself",
                    ))
                } else {
                    Ok(Some(c))
                }
            }
            (_, w) => Ok(w),
        }
    }
}

/// Whether moving the expiry from `current` to `wanted` lengthens the key's life.
fn extends(current: Option<OffsetDateTime>, wanted: Option<OffsetDateTime>) -> bool {
    match (current, wanted) {
        (_, None) => current.is_some(),
        (None, Some(_)) => false,
        (Some(c), Some(w)) => w > c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_id_grammar() {
        for ok in [
            "alice",
            "a",
            "user_2abc",
            "a@b.example",
            "org:42",
            "auth0|5f7c",
            "t/ops",
        ] {
            assert!(is_valid_owner_id(ok), "{ok:?}");
            assert!(check_actor(&Actor::owner(ok)).is_ok(), "{ok:?}");
        }
        let long = "a".repeat(MAX_OWNER_ID_LEN + 1);
        for bad in [
            "",
            " alice",
            "alice ",
            "al ice",
            "alice\t",
            "a,b",
            "a\"b",
            "élise",
            "-x",
            ".x",
            long.as_str(),
        ] {
            assert!(!is_valid_owner_id(bad), "{bad:?}");
            for actor in [Actor::owner(bad), Actor::admin_for(bad)] {
                assert!(
                    matches!(check_actor(&actor), Err(ServiceError::Validation(_))),
                    "{bad:?}"
                );
            }
        }
        assert!(is_valid_owner_id(&long[1..]));
    }

    #[test]
    fn reserved_owners() {
        assert!(is_reserved_owner("keyward-admin"));
        assert!(is_reserved_owner("keyward"));
        assert!(!is_reserved_owner("alice"));
        assert!(check_actor(&Actor::owner("keyward-admin")).is_err());
        assert!(check_actor(&Actor::admin_for("keyward-admin")).is_ok());
        assert!(check_actor(&Actor::owner("alice")).is_ok());
    }

    #[test]
    fn expiry_moves() {
        let t = |s: i64| OffsetDateTime::from_unix_timestamp(s).ok();
        assert!(extends(t(10), None));
        assert!(!extends(None, None));
        assert!(!extends(None, t(10)));
        assert!(extends(t(10), t(11)));
        assert!(!extends(t(10), t(10)));
        assert!(!extends(t(10), t(9)));
    }
}
