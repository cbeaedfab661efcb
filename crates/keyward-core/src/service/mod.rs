//! The management operations on [`Keyward`]: create (the raw key is returned once), get, list,
//! update, revoke, rotate. Every call names the actor it acts as; a key of another owner is "not
//! found". What they take and give is [`crate::management`].

use time::OffsetDateTime;

use crate::Keyward;
use crate::audit::{Action, Event};
use crate::authz::{self, Actor};
use crate::clock::micros;
use crate::key::{ApiKey, KeyId};
use crate::model::{Deactivator, KeyRecord, KeyView, Usage};
use crate::scope::ScopeSet;
use crate::store::{Cursor, KeyFilter, MAX_PAGE_SIZE, StoreError, StoreErrorKind};

mod credits;
mod events;
mod usage;
mod validate;

pub(crate) use events::{change_event, created_event, rng_err};

pub(crate) use crate::management::store_err;
use crate::management::{
    CreateKeyRequest, CreateKeysRequest, CreatedKey, CreatedKeys, FieldError, KeyPage, KeyQuery,
    KeyVersion, MAX_BATCH, MAX_TTL_SECONDS, ServiceError, UpdateKeyRequest,
};
use validate::*;

impl Keyward {
    /// Creates a key for `owner_id` as the application itself, that is as an administrator
    /// ([`Actor::admin_for`]). The returned [`CreatedKey`] holds the raw key: the only time it
    /// exists outside its holder. Requests from outside go through [`Keyward::create_key_as`].
    ///
    /// # Errors
    /// [`ServiceError::Validation`] with field detail, [`ServiceError::LimitReached`],
    /// [`ServiceError::Unavailable`].
    pub async fn create_key(
        &self,
        owner_id: &str,
        req: CreateKeyRequest,
    ) -> Result<CreatedKey, ServiceError> {
        self.create_key_as(&Actor::admin_for(owner_id), req).await
    }

    /// Creates a key as `actor`, for the owner it acts on, by the rules of DESIGN.md §11: an
    /// owner or key caller grants no reserved scope, a key caller no scope it does not hold,
    /// neither sets limits, credits, allowlists or metadata, and their keys get the operator's
    /// self-service defaults ([`crate::model::SelfServiceDefaults`]).
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] naming the refused fields, [`ServiceError::Validation`],
    /// [`ServiceError::LimitReached`], [`ServiceError::Unavailable`].
    pub async fn create_key_as(
        &self,
        actor: &Actor,
        req: CreateKeyRequest,
    ) -> Result<CreatedKey, ServiceError> {
        let cap = self.policy().max_keys_per_owner;
        self.create_capped(actor, req, cap, Action::KeyCreated)
            .await
    }

    /// Creates the first key of `owner_id` as the application itself: only when the owner has
    /// no live key, decided atomically with the insert (the store's owner cap, at one), so that
    /// processes racing to bootstrap an administrator create one key between them. `Ok(None)`
    /// when the owner has a live key already.
    ///
    /// # Errors
    /// As [`Keyward::create_key`].
    pub async fn create_first_key(
        &self,
        owner_id: &str,
        req: CreateKeyRequest,
    ) -> Result<Option<CreatedKey>, ServiceError> {
        let actor = Actor::admin_for(owner_id);
        match self
            .create_capped(&actor, req, Some(1), Action::AdminBootstrapped)
            .await
        {
            Ok(created) => Ok(Some(created)),
            Err(ServiceError::LimitReached(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_capped(
        &self,
        actor: &Actor,
        req: CreateKeyRequest,
        cap: Option<u32>,
        action: Action,
    ) -> Result<CreatedKey, ServiceError> {
        authz::check_actor(actor)?;
        let now = micros(self.now());
        let signing = req.signing;
        let template = self.prepare_create(actor, req, now).await?;
        self.insert_new(actor, action, template, signing, cap, now)
            .await
    }

    /// Creates every key of `batch` as `actor`, an administrator of every owner, or none:
    /// one store write, the per-owner cap checked for the whole batch. Each key is judged as
    /// [`Keyward::create_key`] judges it; a refused field is named `keys[i].field`. The raw keys
    /// are in the answer, in the order asked for, this once.
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] for an actor that is not an administrator of every owner,
    /// [`ServiceError::Validation`] (also for an empty batch or one over [`MAX_BATCH`]),
    /// [`ServiceError::LimitReached`] when the batch would take an owner over the cap,
    /// [`ServiceError::Unavailable`].
    pub async fn create_keys(
        &self,
        actor: &Actor,
        batch: CreateKeysRequest,
    ) -> Result<CreatedKeys, ServiceError> {
        authz::check_actor(actor)?;
        if !actor.is_admin() || actor.owner_id().is_some() {
            return Err(ServiceError::Forbidden(vec![FieldError::new(
                "keys",
                "admin_only",
                "only an administrator of every owner creates keys in batches",
            )]));
        }
        let n = batch.keys.len();
        if n == 0 || n > MAX_BATCH {
            return Err(ServiceError::field(
                "keys",
                "out_of_range",
                format!("between 1 and {MAX_BATCH} keys"),
            ));
        }
        let now = micros(self.now());
        let mut records = Vec::with_capacity(n);
        let mut refused = Vec::new();
        let mut forbidden = false;
        for (i, item) in batch.keys.into_iter().enumerate() {
            let signing = item.key.signing;
            let owner = Actor::admin_for(item.owner_id);
            let prepared = match authz::check_actor(&owner) {
                Ok(()) => self.prepare_create(&owner, item.key, now).await,
                Err(e) => Err(e),
            };
            let errors = match prepared {
                Ok(record) => {
                    records.push((record, signing));
                    continue;
                }
                Err(ServiceError::Validation(errors)) => errors,
                Err(ServiceError::Forbidden(errors)) => {
                    forbidden = true;
                    errors
                }
                Err(ServiceError::NotFound) => vec![FieldError::new(
                    "owner_id",
                    "invalid",
                    "not an owner id keyward accepts",
                )],
                Err(e) => return Err(e),
            };
            refused.extend(errors.into_iter().map(|mut e| {
                e.field = format!("keys[{i}].{}", e.field);
                e
            }));
        }
        if !refused.is_empty() {
            return Err(if forbidden {
                ServiceError::Forbidden(refused)
            } else {
                ServiceError::Validation(refused)
            });
        }
        let cap = self.policy().max_keys_per_owner;
        // A key id collision (62^12 space) is astronomically unlikely; mint again anyway.
        for _ in 0..3 {
            let mut raw = Vec::with_capacity(n);
            let mut events = Vec::with_capacity(n);
            for (record, signing) in &mut records {
                raw.push(self.mint(record, *signing)?);
                events.push(created_event(Action::KeyCreated, actor, record, now)?);
            }
            let stored: Vec<&KeyRecord> = records.iter().map(|(r, _)| r).collect();
            match self.store().create_many(&stored, cap, now, &events).await {
                Ok(()) => {
                    for (record, _) in &records {
                        // Only this instance's list of unknown ids: another instance cannot
                        // have been asked for an id minted just now but by a 62^-12 guess.
                        self.0.cache.invalidate(&record.key_id);
                    }
                    tracing::info!(keys = n, "API keys created in a batch");
                    let items = records
                        .iter()
                        .zip(raw)
                        .map(|((record, _), api_key)| CreatedKey {
                            key: record.view(now),
                            api_key,
                        })
                        .collect();
                    return Ok(CreatedKeys { items });
                }
                Err(e) if e.kind() == StoreErrorKind::Conflict => {}
                Err(e) if e.kind() == StoreErrorKind::LimitReached => {
                    return Err(ServiceError::LimitReached(cap.unwrap_or(0)));
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(ServiceError::Internal(
            "could not allocate unique key ids".into(),
        ))
    }

    /// The record `actor` would create with `req` at `now`, without its key id and secret
    /// (see [`Keyward::mint`]): every rule of creation but the owner's cap.
    async fn prepare_create(
        &self,
        actor: &Actor,
        req: CreateKeyRequest,
        now: OffsetDateTime,
    ) -> Result<KeyRecord, ServiceError> {
        let policy = &self.policy();
        let mut errors = Vec::new();
        // `check_actor` proved it well formed; an admin of every owner names none.
        let Some(owner_id) = actor.owner_id() else {
            return Err(ServiceError::field(
                "owner_id",
                "required",
                "name the owner to create the key for",
            ));
        };
        check_text(&mut errors, "name", &req.name, policy.max_name_len, true);
        if let Some(d) = &req.description {
            check_text(
                &mut errors,
                "description",
                d,
                policy.max_description_len,
                false,
            );
        }
        let scopes = self.validate_scopes(&mut errors, &req.scopes);
        // Who may do what comes before what is well formed: a refusal is the answer even for
        // a body that is also invalid.
        let refusals = authz::create_refusals(actor, &req, &scopes);
        if !refusals.is_empty() {
            return Err(ServiceError::Forbidden(refusals));
        }
        let ip_allowlist = self.validate_ips(&mut errors, &req.ip_allowlist);
        let self_service = (!actor.is_admin()).then_some(&policy.self_service);
        let default_ttl = self_service.and_then(|s| s.max_ttl).or(policy.default_ttl);
        let expires_at = match (req.expires_at, req.ttl_seconds) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    "ttl_seconds",
                    "conflict",
                    "give expires_at or ttl_seconds, not both",
                ));
                None
            }
            (Some(e), None) => Some(micros(e)),
            (None, Some(t)) if t > MAX_TTL_SECONDS => {
                errors.push(FieldError::new(
                    "ttl_seconds",
                    "out_of_range",
                    format!("at most {MAX_TTL_SECONDS} seconds (100 years)"),
                ));
                None
            }
            (None, Some(t)) if t <= 0 => {
                errors.push(FieldError::new(
                    "ttl_seconds",
                    "invalid",
                    "must be positive",
                ));
                None
            }
            (None, Some(t)) => match now.checked_add(time::Duration::seconds(t)) {
                Some(e) => Some(e),
                None => {
                    errors.push(FieldError::new(
                        "ttl_seconds",
                        "out_of_range",
                        "too far in the future",
                    ));
                    None
                }
            },
            (None, None) => default_ttl.map(|d| now.checked_add(d).unwrap_or(crate::clock::LATEST)),
        };
        self.validate_expiry(&mut errors, "expires_at", expires_at, now, now);
        if let Some(max) = self_service.and_then(|s| s.max_ttl) {
            let limit = now.checked_add(max).unwrap_or(crate::clock::LATEST);
            if expires_at.is_none_or(|e| e > limit) {
                errors.push(FieldError::new(
                    "expires_at",
                    "too_far",
                    format!(
                        "self-service keys live at most {} seconds",
                        max.whole_seconds()
                    ),
                ));
            }
        }
        let (mut rate_limit, mut credits) = match self_service {
            Some(s) => (s.rate_limit, s.credits),
            None => (req.rate_limit, req.credits),
        };
        let mut expires_at = expires_at;
        let mut ip_allowlist = ip_allowlist;
        let mut lineage = None;
        if let Some(caller) = self.calling_key(actor).await? {
            let ceiling = authz::Ceiling { caller: &caller };
            rate_limit = ceiling.rate_limit(rate_limit);
            credits = ceiling.credits(credits);
            ip_allowlist.clone_from(&caller.ip_allowlist);
            if caller.rate_limit.is_some() || caller.credits.is_some() {
                lineage = Some(caller.successor_lineage());
            }
            let explicit = req.expires_at.is_some() || req.ttl_seconds.is_some();
            let mut refusals = Vec::new();
            match ceiling.expiry(expires_at, explicit) {
                Ok(e) => expires_at = e,
                Err(refusal) => refusals.push(refusal),
            }
            if caller.is_signing() && !req.signing {
                refusals.push(FieldError::new(
                    "signing",
                    "beyond_caller",
                    "a signing key creates signing keys only",
                ));
            }
            if !refusals.is_empty() {
                return Err(ServiceError::Forbidden(refusals));
            }
        }
        self.validate_limits(&mut errors, rate_limit.as_ref(), credits.as_ref());
        let metadata = req.metadata.unwrap_or_default();
        self.validate_metadata(&mut errors, &metadata);
        if req.signing && self.encryption().is_none() {
            errors.push(FieldError::new(
                "signing",
                "unavailable",
                "request signing is not enabled on this server",
            ));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let template = KeyRecord {
            key_id: KeyId::MIN,
            owner_id: owner_id.to_owned(),
            name: req.name.trim().to_owned(),
            description: req
                .description
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty()),
            env: policy.format.env().to_owned(),
            prefix: policy.format.prefix().to_owned(),
            // Replaced by `mint`: no digest is computed for the template (a slow digest would
            // run twice per key).
            digest: crate::digest::KeyDigest {
                algorithm: crate::digest::DigestAlgorithm::HmacSha256,
                pepper_version: 0,
                bytes: [0; crate::digest::DIGEST_LEN],
            },
            sealed_secret: None,
            scopes,
            metadata,
            ip_allowlist,
            rate_limit,
            credits,
            usage: Usage::default(),
            is_active: true,
            created_at: now,
            updated_at: now,
            not_before: None,
            expires_at,
            last_used_at: None,
            last_used_from: None,
            revoked_at: None,
            rotated_from: None,
            rotated_to: None,
            deactivated_by: None,
            lineage,
        };
        Ok(template)
    }

    /// Gives `record` a fresh key id and secret: sets its id, digest and (for signing keys)
    /// sealed secret, and returns the raw key.
    pub(crate) fn mint(
        &self,
        record: &mut KeyRecord,
        signing: bool,
    ) -> Result<ApiKey, ServiceError> {
        let generated = self
            .generate_key()
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        record.key_id = generated.key_id;
        record.digest = self
            .0
            .keyring
            .digest(&generated.key_id, generated.secret().expose_secret());
        record.sealed_secret = match (signing, self.encryption()) {
            (true, Some(enc)) => Some(
                enc.seal(
                    &generated.key_id,
                    generated.api_key.expose_secret().as_bytes(),
                )
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
            _ => None,
        };
        Ok(generated.api_key.clone())
    }

    /// Generates the secret, digests (and seals) it, and stores the record.
    async fn insert_new(
        &self,
        actor: &Actor,
        action: Action,
        mut record: KeyRecord,
        signing: bool,
        max: Option<u32>,
        now: OffsetDateTime,
    ) -> Result<CreatedKey, ServiceError> {
        // A key id collision (62^12 space) is astronomically unlikely; retry a few times anyway.
        for _ in 0..3 {
            let api_key = self.mint(&mut record, signing)?;
            let event = created_event(action, actor, &record, now)?;
            match self.store().create(&record, max, now, &event).await {
                Ok(()) => {
                    // An instance that answered "unknown" for this id a moment ago forgets it.
                    self.invalidate_everywhere(&record.key_id).await;
                    tracing::info!(key_id = %record.key_id, owner_id = %record.owner_id, "API key created");
                    return Ok(CreatedKey {
                        key: record.view(now),
                        api_key,
                    });
                }
                Err(e) if e.kind() == StoreErrorKind::Conflict => {}
                Err(e) if e.kind() == StoreErrorKind::LimitReached => {
                    return Err(ServiceError::LimitReached(max.unwrap_or(0)));
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(ServiceError::Internal(
            "could not allocate a unique key id".into(),
        ))
    }

    /// The record of the key a key caller acts with, as stored now (its restrictions may have
    /// changed since it was verified); `None` for other actors.
    pub(crate) async fn calling_key(
        &self,
        actor: &Actor,
    ) -> Result<Option<KeyRecord>, ServiceError> {
        let Some(key_id) = actor.key_id() else {
            return Ok(None);
        };
        match self.store().get(key_id).await {
            Ok(Some(r)) if authz::reaches(actor, &r) && r.revoked_at.is_none() => Ok(Some(r)),
            Ok(_) => Err(ServiceError::Forbidden(vec![FieldError::new(
                "key_id",
                "caller_gone",
                "the calling key no longer exists",
            )])),
            Err(e) => Err(store_err(e)),
        }
    }

    /// The key, if `actor` may see it; missing and out-of-reach keys are both `NotFound`.
    pub(crate) async fn fetch(
        &self,
        actor: &Actor,
        key_id: &KeyId,
    ) -> Result<KeyRecord, ServiceError> {
        // No key belongs to an owner id outside the grammar: such a key is not found, as a
        // foreign one is (creating and listing answer `422`).
        if actor
            .owner_id()
            .is_some_and(|o| !authz::is_valid_owner_id(o))
        {
            return Err(ServiceError::NotFound);
        }
        authz::check_actor(actor)?;
        match self.store().get(key_id).await {
            Ok(Some(r)) if authz::reaches(actor, &r) => Ok(r),
            Ok(_) => Err(ServiceError::NotFound),
            Err(e) => Err(store_err(e)),
        }
    }

    /// One key's safe view. Missing and foreign keys are both [`ServiceError::NotFound`].
    ///
    /// # Errors
    /// `NotFound`, `Forbidden` (a reserved owner through self-service), `Unavailable`.
    pub async fn get_key(&self, actor: &Actor, key_id: &KeyId) -> Result<KeyView, ServiceError> {
        let now = self.now();
        Ok(self.fetch(actor, key_id).await?.view(now))
    }

    /// A page of the keys `query` asks for, oldest first: those of the owner `actor` acts on,
    /// or, for an administrator of every owner ([`Actor::admin`]), every key or one owner's.
    /// `limit` defaults to 50 and is capped at 100.
    ///
    /// # Errors
    /// `Validation` for a bad cursor or limit, or an owner other than the actor's own;
    /// `Forbidden`, `Unavailable`.
    pub async fn list_keys(
        &self,
        actor: &Actor,
        query: &KeyQuery,
    ) -> Result<KeyPage, ServiceError> {
        authz::check_actor(actor)?;
        let owner_id = match (actor.owner_id(), query.owner_id.as_deref()) {
            (Some(own), Some(asked)) if own != asked => {
                return Err(ServiceError::field(
                    "owner_id",
                    "not_allowed",
                    "this caller lists only its own owner's keys",
                ));
            }
            (Some(own), _) => Some(own),
            (None, Some(asked)) if !authz::is_valid_owner_id(asked) => {
                return Err(ServiceError::field(
                    "owner_id",
                    "invalid",
                    "not an owner id",
                ));
            }
            (None, asked) => asked,
        };
        let env = query.env.as_deref();
        if env.is_some_and(|e| !crate::key::valid_env(e)) {
            return Err(ServiceError::field(
                "env",
                "invalid",
                "an environment marker is [a-z0-9]{1,8}",
            ));
        }
        let limit = query.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(ServiceError::field(
                "limit",
                "out_of_range",
                format!("1–{MAX_PAGE_SIZE}"),
            ));
        }
        let cursor = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(
                Cursor::decode(c)
                    .map_err(|_| ServiceError::field("cursor", "invalid", "malformed cursor"))?,
            ),
            None => None,
        };
        let now = self.now();
        let mut filter = KeyFilter::all(now);
        filter.owner_id = owner_id;
        filter.env = env;
        filter.state = query.state;
        let page = self
            .0
            .store
            .list(&filter, cursor, limit)
            .await
            .map_err(store_err)?;
        Ok(KeyPage {
            items: page.items.iter().map(|r| r.view(now)).collect(),
            next_cursor: page.next_cursor.map(|c| c.encode()),
        })
    }

    /// Updates the fields `req` names, as `actor` may (DESIGN.md §11): owners and key callers
    /// set name and description, narrow scopes, shorten the expiry, deactivate, and reactivate
    /// what they deactivated; everything else is for administrators. The write is checked
    /// against the version read (and against `if_match` when given), so concurrent updates
    /// never lose each other's fields: without `if_match` a lost race is retried on the fresh
    /// key. A revoked key cannot be changed.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation`, `PreconditionFailed`, `Unavailable`.
    pub async fn update_key(
        &self,
        actor: &Actor,
        key_id: &KeyId,
        req: UpdateKeyRequest,
        if_match: Option<KeyVersion>,
    ) -> Result<KeyView, ServiceError> {
        let mut errors = Vec::new();
        let scopes = req
            .scopes
            .as_ref()
            .map(|s| self.validate_scopes(&mut errors, s));
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let change = |_: &KeyRecord| Ok(req.clone());
        self.update_with(actor, key_id, if_match, scopes.as_ref(), change)
            .await
    }

    /// [`Keyward::update_key`] with the change `change` makes of the key as it is (read
    /// again on each attempt), its scopes already validated as `scopes`.
    pub(crate) async fn update_with(
        &self,
        actor: &Actor,
        key_id: &KeyId,
        if_match: Option<KeyVersion>,
        scopes: Option<&ScopeSet>,
        change: impl Fn(&KeyRecord) -> Result<UpdateKeyRequest, ServiceError>,
    ) -> Result<KeyView, ServiceError> {
        for _ in 0..WRITE_ATTEMPTS {
            let record = self.fetch(actor, key_id).await?;
            let req = change(&record)?;
            let refusals = authz::update_refusals(actor, &req, scopes, &record);
            if !refusals.is_empty() {
                return Err(ServiceError::Forbidden(refusals));
            }
            let (expected, before) = (record.updated_at, record.clone());
            // The request is judged before the precondition: an invalid change is refused as
            // such whatever version it names.
            let updated = self.apply_update(actor, record, &req, scopes)?;
            if if_match.is_some_and(|v| v != KeyVersion::of(&before)) {
                return Err(ServiceError::PreconditionFailed);
            }
            let action = if !before.is_active && updated.is_active {
                Action::KeyReactivated
            } else {
                Action::KeyUpdated
            };
            let event = change_event(action, actor, &before, &updated)?;
            match self.store().update(&updated, expected, &event).await {
                Ok(()) => {
                    self.invalidate_everywhere(key_id).await;
                    tracing::info!(key_id = %key_id, "API key updated");
                    return Ok(updated.view(updated.updated_at));
                }
                Err(e) if e.kind() == StoreErrorKind::Stale && if_match.is_none() => {}
                Err(e) if e.kind() == StoreErrorKind::Stale => {
                    return Err(ServiceError::PreconditionFailed);
                }
                Err(e) => {
                    // The write may have landed before the failure (a cache in front of the
                    // store that could not be told): drop the cached record all the same.
                    self.invalidate_everywhere(key_id).await;
                    return Err(store_err(e));
                }
            }
        }
        Err(contended())
    }

    /// `record` with the fields of `req` applied and validated, `updated_at` moved forward.
    fn apply_update(
        &self,
        actor: &Actor,
        mut record: KeyRecord,
        req: &UpdateKeyRequest,
        scopes: Option<&ScopeSet>,
    ) -> Result<KeyRecord, ServiceError> {
        let now = micros(self.now());
        let policy = &self.policy();
        let mut errors = Vec::new();
        if record.revoked_at.is_some() {
            return Err(ServiceError::StateConflict(
                "a revoked key cannot be changed",
            ));
        }
        if let Some(n) = &req.name {
            check_text(&mut errors, "name", n, policy.max_name_len, true);
            record.name = n.trim().to_owned();
        }
        if let Some(d) = &req.description {
            if let Some(d) = d {
                check_text(
                    &mut errors,
                    "description",
                    d,
                    policy.max_description_len,
                    false,
                );
            }
            record.description = d
                .as_ref()
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty());
        }
        if let Some(s) = scopes {
            record.scopes = s.clone();
        }
        match req.is_active {
            Some(true) => {
                record.is_active = true;
                record.deactivated_by = None;
            }
            Some(false) => {
                // An owner deactivating a key an administrator deactivated keeps it the
                // administrator's: otherwise the owner could reactivate it next.
                if actor.is_admin() {
                    record.deactivated_by = Some(Deactivator::Admin);
                } else if record.is_active {
                    record.deactivated_by = Some(Deactivator::Owner);
                }
                record.is_active = false;
            }
            None => {}
        }
        if let Some(e) = req.expires_at {
            record.expires_at = e.map(micros);
            self.validate_expiry(
                &mut errors,
                "expires_at",
                record.expires_at,
                record.created_at,
                now,
            );
        }
        if let Some(m) = &req.metadata {
            self.validate_metadata(&mut errors, m);
            record.metadata = m.clone();
        }
        if let Some(ips) = &req.ip_allowlist {
            record.ip_allowlist = self.validate_ips(&mut errors, ips);
        }
        if let Some(r) = req.rate_limit {
            record.rate_limit = r;
        }
        if let Some(c) = req.credits {
            record.credits = c;
        }
        self.validate_limits(
            &mut errors,
            record.rate_limit.as_ref(),
            record.credits.as_ref(),
        );
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        record.updated_at = next_version_time(&record, now);
        Ok(record)
    }

    /// Soft-revokes a key; idempotent (the first `revoked_at` is kept). The key fails
    /// verification at once on this instance and, through the bus, on the others.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `PreconditionFailed`, `Unavailable`.
    pub async fn revoke_key(
        &self,
        actor: &Actor,
        key_id: &KeyId,
        if_match: Option<KeyVersion>,
    ) -> Result<KeyView, ServiceError> {
        let now = micros(self.now());
        let record = self.fetch(actor, key_id).await?;
        if if_match.is_some_and(|v| v != KeyVersion::of(&record)) {
            return Err(ServiceError::PreconditionFailed);
        }
        // The version read is checked again by the write itself: a change between the read
        // and the revoke fails the precondition instead of being revoked unseen.
        let expected = if_match.map(|_| record.updated_at);
        let event = Event::new(Action::KeyRevoked, actor, &record, now).map_err(rng_err)?;
        let revoked = self.store().revoke(key_id, now, expected, &event).await;
        // Whatever the store answered, this instance stops trusting its cached record now: a
        // revoke that reached the store but not a cache in front of it must not leave the key
        // working here until the cache TTL ends.
        self.invalidate_everywhere(key_id).await;
        let record = revoked.map_err(store_err)?.ok_or(ServiceError::NotFound)?;
        // Not revoked by this call, and moved on from the version asked for: the check failed.
        if if_match.is_some_and(|v| record.revoked_at != Some(now) && v != KeyVersion::of(&record))
        {
            return Err(ServiceError::PreconditionFailed);
        }
        tracing::info!(key_id = %key_id, "API key revoked");
        Ok(record.view(now))
    }
}

/// How often a management write is tried when another writer keeps winning the race.
pub(crate) const WRITE_ATTEMPTS: usize = 8;

/// The `updated_at` of a write at `now`: strictly after the record's, so that every write makes
/// a new version even within one microsecond.
pub(crate) fn next_version_time(record: &KeyRecord, now: OffsetDateTime) -> OffsetDateTime {
    let after = record
        .updated_at
        .checked_add(time::Duration::microseconds(1))
        .unwrap_or(record.updated_at);
    now.max(after)
}

/// The answer when other writers kept winning the race for `WRITE_ATTEMPTS` tries.
pub(crate) fn contended() -> ServiceError {
    ServiceError::Unavailable(StoreError::unavailable(
        "the key kept changing under concurrent writes; try again",
    ))
}
