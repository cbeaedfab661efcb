//! Rotation (DESIGN.md §11): a key is rotated at most once; rotating a successor ends its
//! predecessor's grace at once, so a rotation chain never has more than two live keys; the
//! successor carries the predecessor's usage, credits and rate-limit budget (they are counted
//! under the chain's first key, [`crate::model::Lineage`]).
//!
//! The old key is marked first, by a version-checked write that names its successor: of two
//! rotations racing on one key exactly one wins that write, the other answers
//! `API_KEY_ALREADY_ROTATED`. The successor is stored next; should that fail, the mark is undone.

use time::OffsetDateTime;

use crate::Keyward;
use crate::audit::{Action, Event};
use crate::authz::{self, Actor};
use crate::clock::micros;
use crate::key::KeyId;
use crate::management::{
    CreatedKey, FieldError, KeyVersion, RotateKeyRequest, ServiceError, store_err,
};
use crate::model::{KeyRecord, KeyState};
use crate::service::{WRITE_ATTEMPTS, change_event, contended, created_event, next_version_time};
use crate::store::StoreErrorKind;

impl Keyward {
    /// Issues a successor with the same name, scopes and settings, and the predecessor's usage,
    /// credits and rate-limit budget; the old key keeps working for the grace period, then
    /// expires. The successor does not count against the owner's limit (the old key is on its
    /// way out). If the old key is itself a successor still in its predecessor's grace, that
    /// grace ends now.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `AlreadyRotated`, `PreconditionFailed`, `Validation` (bad grace,
    /// revoked or expired key), `Unavailable`.
    pub async fn rotate_key(
        &self,
        actor: &Actor,
        key_id: &KeyId,
        req: RotateKeyRequest,
        if_match: Option<KeyVersion>,
    ) -> Result<CreatedKey, ServiceError> {
        let policy = &self.policy();
        let grace = match req.grace_seconds.map(time::Duration::seconds) {
            None => policy.default_rotation_grace,
            Some(d) if d >= time::Duration::ZERO && d <= policy.max_rotation_grace => d,
            Some(_) => {
                return Err(ServiceError::Validation(vec![FieldError::new(
                    "grace_seconds",
                    "out_of_range",
                    format!("0–{} seconds", policy.max_rotation_grace.whole_seconds()),
                )]));
            }
        };
        for _ in 0..WRITE_ATTEMPTS {
            let now = micros(self.now());
            let old = self.fetch(actor, key_id).await?;
            if let Some(successor) = old.rotated_to {
                return Err(ServiceError::AlreadyRotated(successor));
            }
            if if_match.is_some_and(|v| v != KeyVersion::of(&old)) {
                return Err(ServiceError::PreconditionFailed);
            }
            if matches!(old.state(now), KeyState::Revoked | KeyState::Expired) {
                return Err(ServiceError::StateConflict(
                    "revoked or expired keys cannot be rotated",
                ));
            }
            let mut refusals = authz::rotate_refusals(actor, &old);
            // A successor is a fresh raw key with the old key's restrictions: a key caller
            // rotating a less restricted sibling would hold a key without its own.
            if let Some(caller) = self.calling_key(actor).await? {
                refusals.extend(authz::Ceiling { caller: &caller }.wider_in(&old));
            }
            if !refusals.is_empty() {
                return Err(ServiceError::Forbidden(refusals));
            }
            // A signing key's successor seals its secret: without a keyring it would come out a
            // bearer key, silently.
            if old.is_signing() && self.encryption().is_none() {
                return Err(ServiceError::field(
                    "signing",
                    "unavailable",
                    "request signing is not enabled on this server (no encryption key): a \
                     signing key cannot be rotated here",
                ));
            }
            // The predecessor's grace ends first: should anything after fail, the chain has
            // lost a key on its way out, never gained a third live one.
            if let Some(predecessor) = old.rotated_from {
                self.end_grace(actor, &predecessor, now).await?;
            }
            let (mut successor, signing) = successor_of(&old, now, actor.is_admin());
            let api_key = self.mint(&mut successor, signing)?;
            let mut marked = old.clone();
            marked.rotated_to = Some(successor.key_id);
            let dies = now.checked_add(grace).unwrap_or(now);
            if marked.expires_at.is_none_or(|e| e > dies) {
                marked.expires_at = Some(dies);
            }
            marked.updated_at = next_version_time(&old, now);
            let rotated = change_event(Action::KeyRotated, actor, &old, &marked)?;
            match self.store().update(&marked, old.updated_at, &rotated).await {
                Ok(()) => {}
                // Another writer got there first: look again (a rotation shows as
                // `rotated_to`, answered above).
                Err(e) if e.kind() == StoreErrorKind::Stale && if_match.is_none() => continue,
                Err(e) if e.kind() == StoreErrorKind::Stale => {
                    return Err(ServiceError::PreconditionFailed);
                }
                Err(e) => {
                    self.invalidate_everywhere(key_id).await;
                    return Err(store_err(e));
                }
            }
            self.invalidate_everywhere(key_id).await;
            let created = created_event(Action::KeyCreated, actor, &successor, now)?;
            if let Err(e) = self.store().create(&successor, None, now, &created).await {
                self.unmark(&old, &marked).await;
                return Err(match e.kind() {
                    StoreErrorKind::Conflict => {
                        ServiceError::Internal("could not allocate a unique key id".into())
                    }
                    _ => store_err(e),
                });
            }
            // A revoke that landed between the mark and the insert must end the successor too.
            if let Ok(Some(current)) = self.store().get(key_id).await
                && current.revoked_at.is_some()
            {
                if let Ok(event) = Event::new(Action::KeyRevoked, &Actor::system(), &successor, now)
                {
                    let _ = self
                        .store()
                        .revoke(&successor.key_id, now, None, &event)
                        .await;
                }
                self.invalidate_everywhere(&successor.key_id).await;
                return Err(ServiceError::StateConflict(
                    "the key was revoked while it was being rotated",
                ));
            }
            tracing::info!(old = %key_id, new = %successor.key_id, "API key rotated");
            return Ok(CreatedKey {
                key: successor.view(now),
                api_key,
            });
        }
        Err(contended())
    }

    /// Puts back the old key as it was before a rotation whose successor could not be stored.
    async fn unmark(&self, old: &KeyRecord, marked: &KeyRecord) {
        let mut restored = old.clone();
        restored.updated_at = next_version_time(marked, marked.updated_at);
        let undone = change_event(Action::KeyUpdated, &Actor::system(), marked, &restored);
        let written = match undone {
            Ok(event) => {
                self.store()
                    .update(&restored, marked.updated_at, &event)
                    .await
            }
            Err(e) => Err(crate::store::StoreError::new(
                StoreErrorKind::Other,
                e.to_string(),
            )),
        };
        if let Err(e) = written {
            tracing::error!(key_id = %old.key_id, error = %e, "a failed rotation could not be undone; the key stays marked as rotated");
        }
        self.invalidate_everywhere(&old.key_id).await;
    }

    /// Ends the grace of `key_id` (a predecessor whose successor is being rotated): it expires
    /// now, unless it is gone already.
    async fn end_grace(
        &self,
        actor: &Actor,
        key_id: &KeyId,
        now: OffsetDateTime,
    ) -> Result<(), ServiceError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some(mut record) = self.store().get(key_id).await.map_err(store_err)? else {
                return Ok(());
            };
            if record.revoked_at.is_some() || record.expires_at.is_some_and(|e| e <= now) {
                return Ok(());
            }
            let expected = record.updated_at;
            let before = record.clone();
            record.expires_at = Some(now);
            record.updated_at = next_version_time(&record, now);
            let event = change_event(Action::KeyUpdated, actor, &before, &record)?;
            match self.store().update(&record, expected, &event).await {
                Ok(()) => {
                    self.invalidate_everywhere(key_id).await;
                    return Ok(());
                }
                Err(e) if e.kind() == StoreErrorKind::Stale => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(contended())
    }
}

/// The successor record of `old` (without id and digest yet) and whether it signs. It lives as
/// long as `old` was given to live; for a caller other than an administrator, never past
/// `old`'s own expiry (rotating must not undo an expiry an administrator shortened).
fn successor_of(old: &KeyRecord, now: OffsetDateTime, admin: bool) -> (KeyRecord, bool) {
    let lifetime = old.expires_at.map(|e| e - old.created_at);
    let mut successor = old.clone();
    successor.rotated_from = Some(old.key_id);
    successor.rotated_to = None;
    successor.lineage = Some(old.successor_lineage());
    successor.created_at = now;
    successor.updated_at = now;
    successor.last_used_at = None;
    successor.revoked_at = None;
    successor.expires_at = lifetime.map(|l| now.checked_add(l).unwrap_or(crate::clock::LATEST));
    if !admin && let (Some(s), Some(o)) = (successor.expires_at, old.expires_at) {
        successor.expires_at = Some(s.min(o));
    }
    (successor, old.is_signing())
}
