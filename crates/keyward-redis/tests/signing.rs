//! Replay protection across instances: two engines (separate pools, caches and listeners) share
//! one Redis nonce store, so a signed request accepted by one is `SIGNATURE_REPLAYED` on the
//! other, while a request with a fresh signed nonce still passes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use keyward_core::clock::Clock;
use keyward_core::crypto::EncryptionKeyring;
use keyward_core::management::CreateKeyRequest;
use keyward_core::sigv4::{AccessKey, Payload, SignableRequest, Signer};
use keyward_core::{CacheConfig, Keyring, Keyward, ScopeRequirement, VerifyContext, VerifyError};
use keyward_redis::RedisBackend;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// An instance: its own Redis pool and cache, every Redis role, and the shared encryption key.
fn instance(backend: &RedisBackend, clock: Arc<dyn Clock>) -> Keyward {
    let enc = EncryptionKeyring::new(vec![(1, Zeroizing::new(vec![7; 32]))]).unwrap();
    backend
        .wire(Keyward::builder(
            backend.store.clone(),
            Keyring::insecure_test_keyring(),
        ))
        .cache(CacheConfig::default())
        .clock(clock)
        .encryption(enc)
        .build()
        .unwrap()
}

/// `(headers, body)` of a POST signed at `at`, with an optional signed nonce.
fn signed(id: &str, raw: &str, at: OffsetDateTime, nonce: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = vec![("host".into(), b"api.example.com".to_vec())];
    if let Some(n) = nonce {
        headers.push(("x-keyward-nonce".into(), n.as_bytes().to_vec()));
    }
    let view: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = SignableRequest::new("POST", "/v1/jobs", None, &view, Payload::Bytes(b"{}"));
    let out = Signer::new("us-east-1", "keyward")
        .unwrap()
        .sign(&AccessKey::new(id, raw.as_bytes()).unwrap(), &req, at)
        .unwrap();
    let added: Vec<(String, Vec<u8>)> = out
        .headers()
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    headers.extend(added);
    headers
}

async fn verify(k: &Keyward, headers: &[(String, Vec<u8>)]) -> Result<String, VerifyError> {
    let view: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let req = SignableRequest::new("POST", "/v1/jobs", None, &view, Payload::Bytes(b"{}"));
    k.verify_signed(&req, &ScopeRequirement::none(), &VerifyContext::default())
        .await
        .map(|p| p.key_id().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_accepted_by_one_instance_is_replayed_on_another() {
    let test = "a_request_accepted_by_one_instance_is_replayed_on_another";
    let Some(url) = common::shared_redis(test).await else {
        return;
    };
    let prefix = common::unique_prefix();
    let backend_a = RedisBackend::connect(&url, &prefix).unwrap();
    let backend_b = RedisBackend::connect(&url, &prefix).unwrap();
    let clock = common::manual_clock();
    let a = instance(&backend_a, clock.clone());
    let b = instance(&backend_b, clock.clone());

    let created = a
        .create_key(
            "owner",
            CreateKeyRequest {
                name: "signer".into(),
                signing: true,
                ..CreateKeyRequest::default()
            },
        )
        .await
        .unwrap();
    let id = created.key.id.to_string();
    let raw = created.api_key.expose_secret().to_owned();
    let now = clock.now();

    let once = signed(&id, &raw, now, None);
    assert_eq!(verify(&a, &once).await.unwrap(), id, "first use on a");
    assert!(
        matches!(verify(&b, &once).await, Err(VerifyError::SignatureReplayed)),
        "the same request on b is a replay"
    );
    assert!(
        matches!(verify(&a, &once).await, Err(VerifyError::SignatureReplayed)),
        "and on a again"
    );

    // Identical requests are told apart by a signed nonce, on either instance, once each.
    let n1 = signed(&id, &raw, now, Some("job-1"));
    let n2 = signed(&id, &raw, now, Some("job-2"));
    assert_eq!(verify(&b, &n1).await.unwrap(), id);
    assert_eq!(verify(&a, &n2).await.unwrap(), id);
    assert!(matches!(
        verify(&a, &n1).await,
        Err(VerifyError::SignatureReplayed)
    ));

    // A forged signature burns nothing: the genuine request with that nonce still passes after.
    let genuine = signed(&id, &raw, now, Some("job-3"));
    let mut forged = genuine.clone();
    for (name, value) in &mut forged {
        if name == "authorization" {
            let last = value.len() - 1;
            value[last] = if value[last] == b'0' { b'1' } else { b'0' };
        }
    }
    assert!(matches!(
        verify(&b, &forged).await,
        Err(VerifyError::SignatureInvalid)
    ));
    assert_eq!(verify(&a, &genuine).await.unwrap(), id);

    common::cleanup(&url, &prefix).await;
}
