//! Cases that run the engine over the store: a key's whole life, and expiry.

use std::sync::Arc;

use keyward_core::cache::CacheConfig;
use keyward_core::clock::ManualClock;
use keyward_core::engine::{InvalidReason, VerifyError};
use keyward_core::management::{CreateKeyRequest, RotateKeyRequest};
use keyward_core::model::Metadata;
use keyward_core::store::KeyStore;
use keyward_core::{Actor, Keyring, Keyward, ScopeRequirement, VerifyContext};
use time::{Duration, OffsetDateTime};

use super::*;

pub(crate) fn engine(store: &Arc<dyn KeyStore>, cache: usize) -> Keyward {
    Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
        .cache(CacheConfig {
            capacity: cache,
            ttl: std::time::Duration::from_secs(30),
            ..CacheConfig::default()
        })
        .build()
        .expect("engine")
}

/// Through the full engine, with and without its cache: create → verify → usage flush →
/// rotate (both keys work during the grace) → revoke → verify fails as revoked.
pub async fn case_engine_lifecycle(store: Arc<dyn KeyStore>) {
    for cache in [0, 1000] {
        let kw = engine(&store, cache);
        let owner = format!("engine-owner-{cache}");
        let created = kw
            .create_key(
                &owner,
                CreateKeyRequest {
                    name: "engine".to_owned(),
                    scopes: vec!["reports:read".to_owned()],
                    metadata: Some(Metadata::from_iter([(
                        "plan".to_owned(),
                        serde_json::json!("pro"),
                    )])),
                    ..CreateKeyRequest::default()
                },
            )
            .await
            .expect("create_key");
        let raw = created.api_key.expose_secret().to_owned();
        let key_id = created.key.id;
        let need = ScopeRequirement::all_of(["reports:read"]).unwrap();
        let ctx = VerifyContext::default();

        let p = kw.verify(&raw, &need, &ctx).await.expect("verify");
        assert_eq!(p.key_id(), key_id);
        assert_eq!(p.owner_id(), owner);
        assert_eq!(p.metadata().get("plan"), Some(&serde_json::json!("pro")));
        let denied = kw
            .verify(&raw, &ScopeRequirement::all_of(["admin"]).unwrap(), &ctx)
            .await;
        assert!(matches!(denied, Err(VerifyError::ScopeDenied { .. })));

        kw.flush_usage().await.expect("flush");
        let stored = get(&store, &key_id).await;
        assert!(
            stored.usage.request_count >= 1,
            "usage flushed to the store"
        );

        let rotated = kw
            .rotate_key(
                &Actor::owner(&owner),
                &key_id,
                RotateKeyRequest::default(),
                None,
            )
            .await
            .expect("rotate");
        let new_raw = rotated.api_key.expose_secret().to_owned();
        let new_id = rotated.key.id;
        assert_eq!(
            get(&store, &new_id).await.rotated_from,
            Some(key_id),
            "successor remembers its predecessor"
        );
        assert!(
            get(&store, &key_id).await.expires_at.is_some(),
            "old key expires"
        );
        kw.verify(&new_raw, &need, &ctx)
            .await
            .expect("successor works");
        kw.verify(&raw, &need, &ctx)
            .await
            .expect("old key works during the grace");
        let page = kw
            .list_keys(&Actor::owner(&owner), &Default::default())
            .await
            .expect("list");
        assert_eq!(page.items.len(), 2);

        let view = kw
            .revoke_key(&Actor::owner(&owner), &new_id, None)
            .await
            .expect("revoke");
        assert!(view.revoked_at.is_some());
        let again = kw
            .revoke_key(&Actor::owner(&owner), &new_id, None)
            .await
            .expect("revoke again");
        assert_eq!(again.revoked_at, view.revoked_at, "idempotent");
        assert!(matches!(
            kw.verify(&new_raw, &need, &ctx).await,
            Err(VerifyError::Invalid(InvalidReason::Revoked))
        ));
        kw.verify(&raw, &need, &ctx)
            .await
            .expect("the predecessor is unaffected");
        assert!(
            kw.revoke_key(&Actor::owner("intruder"), &key_id, None)
                .await
                .is_err()
        );
        kw.verify(&raw, &need, &ctx)
            .await
            .expect("another owner cannot revoke it");
    }
}

/// Through the engine with a manual clock: a key with a TTL stops verifying when it expires.
pub async fn case_engine_expiry(store: Arc<dyn KeyStore>) {
    let clock = Arc::new(ManualClock::new(keyward_core::clock::micros(
        OffsetDateTime::now_utc(),
    )));
    let kw = Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
        .cache(CacheConfig {
            capacity: 0,
            ttl: std::time::Duration::from_secs(30),
            ..CacheConfig::default()
        })
        .clock(clock.clone())
        .build()
        .expect("engine");
    let created = kw
        .create_key(
            "expiring",
            CreateKeyRequest {
                name: "short".to_owned(),
                ttl_seconds: Some(60),
                ..CreateKeyRequest::default()
            },
        )
        .await
        .expect("create");
    let raw = created.api_key.expose_secret().to_owned();
    let ctx = VerifyContext::default();
    kw.verify(&raw, &ScopeRequirement::none(), &ctx)
        .await
        .expect("fresh key");
    clock.advance(Duration::seconds(61));
    assert!(matches!(
        kw.verify(&raw, &ScopeRequirement::none(), &ctx).await,
        Err(VerifyError::Invalid(InvalidReason::Expired))
    ));
}

/// `raw` re-headed as `prefix_env_`, its checksum recomputed: what anyone can do to a key they
/// hold, since the checksum is public (DESIGN.md §2: a filter, never a boundary).
#[must_use]
pub fn reheaded(raw: &str, prefix: &str, env: &str) -> String {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut parts = raw.splitn(3, '_');
    let (_, _, rest) = (parts.next(), parts.next(), parts.next().expect("a key"));
    let body = format!("{prefix}_{env}_{}", &rest[..rest.len() - 6]);
    let crc = crc32fast::hash(body.as_bytes());
    let (mut hi, mut lo) = (crc / (62 * 62 * 62), crc % (62 * 62 * 62));
    let mut check = [b'0'; 6];
    for i in (0..3).rev() {
        check[i] = BASE62[(hi % 62) as usize];
        check[i + 3] = BASE62[(lo % 62) as usize];
        hi /= 62;
        lo /= 62;
    }
    format!("{body}{}", String::from_utf8_lossy(&check))
}

/// Review finding 3: two deployments on one store and pepper, `test` and `live`. A `test` key
/// re-headed `kw_live_…` with its checksum recomputed is invalid on the `live` one, and so is a
/// key re-headed with another prefix: the presented environment and prefix must be the
/// record's, with and without the cache.
pub async fn case_engine_env_bound(store: Arc<dyn KeyStore>) {
    let deployment = |prefix: &str, env: &str| {
        Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
            .policy(keyward_core::model::Policy {
                format: keyward_core::key::KeyFormat::new(prefix, env).expect("format"),
                ..keyward_core::model::Policy::default()
            })
            .build()
            .expect("engine")
    };
    let test = deployment("kw", "test");
    let created = test
        .create_key(
            "env-owner",
            CreateKeyRequest {
                name: "test key".to_owned(),
                ..CreateKeyRequest::default()
            },
        )
        .await
        .expect("create");
    let raw = created.api_key.expose_secret().to_owned();
    let any = ScopeRequirement::none();
    let ctx = VerifyContext::default();
    test.verify(&raw, &any, &ctx).await.expect("at home");
    for (prefix, env) in [("kw", "live"), ("zz", "test")] {
        let foreign = deployment(prefix, env);
        let forged = reheaded(&raw, prefix, env);
        for round in ["store", "cache"] {
            let got = foreign.verify(&forged, &any, &ctx).await;
            assert!(
                matches!(
                    got,
                    Err(VerifyError::Invalid(InvalidReason::OtherDeployment))
                ),
                "{prefix}_{env}_ from the {round}: {got:?}"
            );
            assert!(
                foreign
                    .verify_cached(&forged, &any, &ctx)
                    .is_none_or(|r| r.is_err()),
                "{prefix}_{env}_ answered from the cache"
            );
        }
    }
}
