//! Signed requests through the engine: round trip, replay, tampering, skew, key kinds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use keyward_core::clock::ManualClock;
use keyward_core::crypto::EncryptionKeyring;
use keyward_core::engine::InvalidReason;
use keyward_core::management::CreateKeyRequest;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::sigv4::{AccessKey, Payload, SignableRequest, Signer};
use keyward_core::{Keyring, Keyward, ScopeRequirement, VerifyContext, VerifyError};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

fn t0() -> OffsetDateTime {
    datetime!(2026-03-01 12:00:00 UTC)
}

struct Fx {
    kw: Keyward,
    _clock: Arc<ManualClock>,
}

fn fx() -> Fx {
    let clock = Arc::new(ManualClock::new(t0()));
    let enc = EncryptionKeyring::new(vec![(1, Zeroizing::new(vec![9; 32]))]).unwrap();
    let kw = Keyward::builder(
        Arc::new(MemoryKeyStore::new()),
        Keyring::insecure_test_keyring(),
    )
    .clock(clock.clone())
    .encryption(enc)
    .build()
    .unwrap();
    Fx { kw, _clock: clock }
}

async fn signing_key(kw: &Keyward, scopes: &[&str]) -> (String, String) {
    let created = kw
        .create_key(
            "alice",
            CreateKeyRequest {
                name: "signer".into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                signing: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(created.key.signing);
    (
        created.key.id.to_string(),
        created.api_key.expose_secret().to_owned(),
    )
}

/// A signed request as owned parts: headers including the signature.
struct Signed {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Signed {
    fn view<'a>(&'a self, hdrs: &'a mut Vec<(&'a str, &'a [u8])>) -> SignableRequest<'a> {
        hdrs.extend(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
        SignableRequest::new(
            &self.method,
            &self.path,
            self.query.as_deref(),
            hdrs,
            Payload::Bytes(&self.body),
        )
    }
}

fn sign(
    key_id: &str,
    secret: &str,
    at: OffsetDateTime,
    nonce: Option<&str>,
    body: &[u8],
) -> Signed {
    let mut headers: Vec<(String, Vec<u8>)> = vec![("host".into(), b"api.example.com".to_vec())];
    if let Some(n) = nonce {
        headers.push(("x-keyward-nonce".into(), n.as_bytes().to_vec()));
    }
    let borrowed: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = SignableRequest::new(
        "POST",
        "/v1/reports",
        Some("b=2&a=1"),
        &borrowed,
        Payload::Bytes(body),
    );
    let out = Signer::new("us-east-1", "keyward")
        .unwrap()
        .sign(
            &AccessKey::new(key_id, secret.as_bytes()).unwrap(),
            &req,
            at,
        )
        .unwrap();
    let added: Vec<(String, Vec<u8>)> = out
        .headers()
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    headers.extend(added);
    Signed {
        method: "POST".into(),
        path: "/v1/reports".into(),
        query: Some("b=2&a=1".into()),
        headers,
        body: body.to_vec(),
    }
}

async fn check(
    kw: &Keyward,
    s: &Signed,
    need: &ScopeRequirement,
) -> Result<keyward_core::Principal, VerifyError> {
    let mut hdrs = Vec::new();
    let req = s.view(&mut hdrs);
    kw.verify_signed(&req, need, &VerifyContext::default())
        .await
}

#[tokio::test]
async fn sign_verify_and_replay() {
    let f = fx();
    let (id, raw) = signing_key(&f.kw, &["reports:write"]).await;
    let s = sign(&id, &raw, t0(), None, br#"{"x":1}"#);
    let need = ScopeRequirement::all_of(["reports:write"]).unwrap();
    let p = check(&f.kw, &s, &need).await.unwrap();
    assert_eq!(p.owner_id(), "alice");
    assert!(matches!(
        check(&f.kw, &s, &need).await,
        Err(VerifyError::SignatureReplayed)
    ));
    // A signed nonce allows an identical request again.
    let a = sign(&id, &raw, t0(), Some("n-1"), b"{}");
    let b = sign(&id, &raw, t0(), Some("n-2"), b"{}");
    check(&f.kw, &a, &need).await.unwrap();
    check(&f.kw, &b, &need).await.unwrap();
    assert!(matches!(
        check(&f.kw, &a, &need).await,
        Err(VerifyError::SignatureReplayed)
    ));
}

#[tokio::test]
async fn tampering_is_invalid_and_burns_no_nonce() {
    let f = fx();
    let (id, raw) = signing_key(&f.kw, &[]).await;
    let need = ScopeRequirement::none();
    let good = sign(&id, &raw, t0(), None, b"payload");
    let tampers: [fn(&mut Signed); 5] = [
        |s| s.method = "PUT".into(),
        |s| s.path = "/v1/other".into(),
        |s| s.query = Some("a=1&b=3".into()),
        |s| s.body = b"payloaD".to_vec(),
        |s| s.headers[0].1 = b"evil.example.com".to_vec(),
    ];
    for t in tampers {
        let mut bad = sign(&id, &raw, t0(), None, b"payload");
        t(&mut bad);
        assert!(matches!(
            check(&f.kw, &bad, &need).await,
            Err(VerifyError::SignatureInvalid)
        ));
    }
    // None of the failures recorded the genuine signature: it still verifies once.
    check(&f.kw, &good, &need).await.unwrap();
}

#[tokio::test]
async fn skew_window_is_inclusive() {
    let f = fx();
    let (id, raw) = signing_key(&f.kw, &[]).await;
    let need = ScopeRequirement::none();
    for (offset, ok) in [(-300, true), (300, true), (-301, false), (301, false)] {
        let s = sign(
            &id,
            &raw,
            t0() + Duration::seconds(offset),
            Some(&format!("n{offset}")),
            b"",
        );
        let r = check(&f.kw, &s, &need).await;
        if ok {
            r.unwrap();
        } else {
            assert!(
                matches!(r, Err(VerifyError::SignatureExpired)),
                "{offset}: {r:?}"
            );
        }
    }
}

#[tokio::test]
async fn key_kinds_do_not_mix() {
    let f = fx();
    let (id, raw) = signing_key(&f.kw, &[]).await;
    // A signing-only key is refused as a bearer token.
    assert!(matches!(
        f.kw.verify(&raw, &ScopeRequirement::none(), &VerifyContext::default())
            .await,
        Err(VerifyError::Invalid(InvalidReason::SigningOnly))
    ));
    // A bearer key cannot sign: nothing reversible is stored for it.
    let bearer =
        f.kw.create_key(
            "alice",
            CreateKeyRequest {
                name: "b".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let s = sign(
        bearer.key.id.as_str(),
        bearer.api_key.expose_secret(),
        t0(),
        None,
        b"",
    );
    assert!(matches!(
        check(&f.kw, &s, &ScopeRequirement::none()).await,
        Err(VerifyError::SignatureInvalid)
    ));
    // Unknown key ids and wrong secrets are the same answer.
    let other = f.kw.policy().format.generate().unwrap();
    let s = sign(
        other.key_id.as_str(),
        other.api_key.expose_secret(),
        t0(),
        None,
        b"",
    );
    assert!(matches!(
        check(&f.kw, &s, &ScopeRequirement::none()).await,
        Err(VerifyError::SignatureInvalid)
    ));
    let s = sign(&id, other.api_key.expose_secret(), t0(), None, b"");
    assert!(matches!(
        check(&f.kw, &s, &ScopeRequirement::none()).await,
        Err(VerifyError::SignatureInvalid)
    ));
}

#[tokio::test]
async fn scopes_and_revocation_apply_to_signed_requests() {
    let f = fx();
    let (id, raw) = signing_key(&f.kw, &["reports:read"]).await;
    let s = sign(&id, &raw, t0(), Some("a"), b"");
    let need = ScopeRequirement::all_of(["reports:write"]).unwrap();
    assert!(matches!(
        check(&f.kw, &s, &need).await,
        Err(VerifyError::ScopeDenied { .. })
    ));
    f.kw.revoke_key(
        &keyward_core::Actor::admin_for("alice"),
        &id.parse().unwrap(),
        None,
    )
    .await
    .unwrap();
    let s = sign(&id, &raw, t0(), Some("b"), b"");
    assert!(matches!(
        check(&f.kw, &s, &ScopeRequirement::none()).await,
        Err(VerifyError::Invalid(InvalidReason::Revoked))
    ));
}

/// Review: rotating a signing key on an engine without an encryption keyring used to make a
/// bearer successor without a word. It is refused, and nothing changes.
#[tokio::test]
async fn rotating_a_signing_key_without_encryption_is_refused() {
    let store = Arc::new(MemoryKeyStore::new());
    let enc = EncryptionKeyring::new(vec![(1, Zeroizing::new(vec![9; 32]))]).unwrap();
    let with = Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
        .encryption(enc)
        .build()
        .unwrap();
    let (id, _) = signing_key(&with, &[]).await;
    let id: keyward_core::KeyId = id.parse().unwrap();
    let without = Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
        .build()
        .unwrap();
    let r = without
        .rotate_key(
            &keyward_core::Actor::admin(),
            &id,
            keyward_core::management::RotateKeyRequest::default(),
            None,
        )
        .await;
    match r {
        Err(keyward_core::ServiceError::Validation(errors)) => {
            assert_eq!(errors[0].field, "signing", "{errors:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let stored = keyward_core::KeyStore::get(&*store, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.rotated_to, None, "the key was marked rotated");
    assert_eq!(stored.expires_at, None);
}

/// Review finding 3, signed: a signing key of the `test` deployment sharing a store, pepper
/// and encryption key with `live` signs a request that verifies on `test` only. A signed
/// request presents no key head, so the record is held to the deployment's own.
#[tokio::test]
async fn a_signing_key_of_another_environment_is_refused() {
    let store = Arc::new(MemoryKeyStore::new());
    let clock = Arc::new(ManualClock::new(t0()));
    let deployment = |env: &str| {
        let enc = EncryptionKeyring::new(vec![(1, Zeroizing::new(vec![9; 32]))]).unwrap();
        Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
            .policy(keyward_core::Policy {
                format: keyward_core::KeyFormat::new("kw", env).unwrap(),
                ..keyward_core::Policy::default()
            })
            .clock(clock.clone())
            .encryption(enc)
            .build()
            .unwrap()
    };
    let (test, live) = (deployment("test"), deployment("live"));
    let (id, raw) = signing_key(&test, &[]).await;
    let need = ScopeRequirement::none();
    let at_home = sign(&id, &raw, t0(), Some("home"), b"{}");
    check(&test, &at_home, &need).await.unwrap();
    let abroad = sign(&id, &raw, t0(), Some("abroad"), b"{}");
    assert!(matches!(
        check(&live, &abroad, &need).await,
        Err(VerifyError::Invalid(InvalidReason::OtherDeployment))
    ));
}

/// Review finding 7: a signing key, whose secret never crosses the wire, creates signing keys
/// only; a bearer key it minted would shed that protection.
#[tokio::test]
async fn a_signing_key_creates_signing_keys_only() {
    let f = fx();
    let (id, raw) = signing_key(&f.kw, &["reports:write"]).await;
    let signed = sign(&id, &raw, t0(), Some("mint"), b"{}");
    let principal = check(&f.kw, &signed, &ScopeRequirement::none())
        .await
        .unwrap();
    let actor = keyward_core::Actor::key(&principal);
    let bearer =
        f.kw.create_key_as(
            &actor,
            CreateKeyRequest {
                name: "bearer".into(),
                ..Default::default()
            },
        )
        .await;
    match bearer {
        Err(keyward_core::ServiceError::Forbidden(refused)) => {
            assert_eq!(refused[0].field, "signing", "{refused:?}");
        }
        other => panic!("a signing key minted a bearer key: {other:?}"),
    }
    let signing =
        f.kw.create_key_as(
            &actor,
            CreateKeyRequest {
                name: "signer too".into(),
                signing: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(signing.key.signing);
}
