//! Topping up a key's credits (`POST …/{key_id}/credits {"add": n}`): a change of the key's
//! credit limit, written and audited as an update (`key.updated`, `credits` old → new), on
//! every instance at once.

use crate::Keyward;
use crate::authz::Actor;
use crate::key::KeyId;
use crate::management::{KeyVersion, ServiceError, UpdateKeyRequest};
use crate::model::{Credits, KeyView};

impl Keyward {
    /// Adds `add` credits to the key's balance (a negative `add` takes them away): its credit
    /// limit moves by `add`, read and written in one conditional step (retried when another
    /// change lands in between, refused with `PreconditionFailed` when `if_match` no longer
    /// holds). Admin only, as every change of credits.
    ///
    /// For a key whose credits refill, the limit is each period's allowance: a top-up would
    /// raise every period's, so it is refused; change the allowance with
    /// [`Keyward::update_key`].
    ///
    /// # Errors
    /// `StateConflict` (`409`: the key has no credits, or refilling ones, the balance would
    /// fall below 0, or the key is revoked), `Forbidden`, `NotFound`, `PreconditionFailed`,
    /// `Store`.
    pub async fn add_credits(
        &self,
        actor: &Actor,
        key_id: &KeyId,
        add: i64,
        if_match: Option<KeyVersion>,
    ) -> Result<KeyView, ServiceError> {
        self.update_with(actor, key_id, if_match, None, |record| {
            let Some(credits) = record.credits else {
                return Err(ServiceError::StateConflict(
                    "the key has no credits to top up",
                ));
            };
            if credits.refill_seconds.is_some() {
                return Err(ServiceError::StateConflict(
                    "the key's credits refill each period: change its allowance with PATCH",
                ));
            }
            let Some(limit) = credits.limit.checked_add_signed(add) else {
                return Err(ServiceError::StateConflict(
                    "the balance would fall below 0 (or pass 2^64 - 1)",
                ));
            };
            Ok(UpdateKeyRequest {
                credits: Some(Some(Credits { limit, ..credits })),
                ..UpdateKeyRequest::default()
            })
        })
        .await
    }
}
