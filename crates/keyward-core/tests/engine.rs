//! Behaviour of the verification engine and the management service through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use keyward_core::clock::ManualClock;
use keyward_core::digest::{DigestAlgorithm, Pepper};
use keyward_core::engine::InvalidReason;
use keyward_core::key::{KeyFormat, ParseError};
use keyward_core::management::{CreateKeyRequest, RotateKeyRequest, UpdateKeyRequest};
use keyward_core::memory::MemoryKeyStore;
use keyward_core::model::{Credits, LastUsedStrategy, RateLimit};
use keyward_core::scope::{ScopeCatalog, ScopeSet};
use keyward_core::store::{Cursor, KeyStore, Page, StoreError, UsageDelta};
use keyward_core::{
    Actor, ErrorCode, KeyId, KeyRecord, Keyring, Keyward, Policy, ScopeRequirement, ServiceError,
    VerifyContext, VerifyError,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// A store wrapper that counts reads and can be switched off.
#[derive(Debug)]
struct Probe {
    inner: MemoryKeyStore,
    gets: AtomicUsize,
    down: AtomicBool,
}

impl Probe {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryKeyStore::new(),
            gets: AtomicUsize::new(0),
            down: AtomicBool::new(false),
        })
    }
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::unavailable("probe store is down"))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl keyward_core::store::EventStore for Probe {
    async fn events(
        &self,
        filter: &keyward_core::audit::EventFilter<'_>,
        cursor: Option<keyward_core::audit::EventCursor>,
        limit: u32,
    ) -> Result<keyward_core::audit::EventPage, StoreError> {
        self.check()?;
        self.inner.events(filter, cursor, limit).await
    }
    async fn prune_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.prune_events(before, limit).await
    }
    async fn append(&self, events: &[keyward_core::audit::Event]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append(events).await
    }
    async fn usage(
        &self,
        filter: &keyward_core::analytics::UsageFilter<'_>,
    ) -> Result<Vec<keyward_core::analytics::UsageRow>, StoreError> {
        self.check()?;
        self.inner.usage(filter).await
    }
    async fn prune_usage(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.inner.prune_usage(before, limit).await
    }
}

#[async_trait::async_trait]
impl KeyStore for Probe {
    async fn create(
        &self,
        r: &KeyRecord,
        max: Option<u32>,
        now: OffsetDateTime,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.create(r, max, now, event).await
    }
    async fn create_many(
        &self,
        records: &[&KeyRecord],
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        events: &[keyward_core::audit::Event],
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner
            .create_many(records, max_per_owner, now, events)
            .await
    }
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.get(id).await
    }
    async fn list(
        &self,
        f: &keyward_core::store::KeyFilter<'_>,
        c: Option<Cursor>,
        l: u32,
    ) -> Result<Page, StoreError> {
        self.check()?;
        self.inner.list(f, c, l).await
    }
    async fn update(
        &self,
        r: &KeyRecord,
        expected: OffsetDateTime,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.update(r, expected, event).await
    }
    async fn set_digest(
        &self,
        id: &KeyId,
        d: &keyward_core::digest::KeyDigest,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_digest(id, d, event).await
    }
    async fn revoke(
        &self,
        id: &KeyId,
        at: OffsetDateTime,
        expected: Option<OffsetDateTime>,
        event: &keyward_core::audit::Event,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.revoke(id, at, expected, event).await
    }
    async fn record_usage(
        &self,
        b: &[UsageDelta],
        counts: &[keyward_core::analytics::UsageCount],
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.record_usage(b, counts).await
    }
}

struct Fixture {
    kw: Keyward,
    store: Arc<Probe>,
    clock: Arc<ManualClock>,
}

/// 32 distinct bytes per `seed`: a pepper the keyring builder accepts.
fn varied_pepper(seed: u8) -> Pepper {
    Pepper::new(
        (0u8..32)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)))
            .collect(),
    )
}

fn t0() -> OffsetDateTime {
    datetime!(2026-01-01 00:00:00 UTC)
}

fn fixture_with(policy: Policy, keyring: Keyring) -> Fixture {
    let store = Probe::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let kw = Keyward::builder(store.clone(), keyring)
        .policy(policy)
        .clock(clock.clone())
        .build()
        .unwrap();
    Fixture { kw, store, clock }
}

fn fixture() -> Fixture {
    fixture_with(Policy::default(), Keyring::insecure_test_keyring())
}

fn req(name: &str, scopes: &[&str]) -> CreateKeyRequest {
    CreateKeyRequest {
        name: name.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

fn none() -> ScopeRequirement {
    ScopeRequirement::none()
}

fn ctx() -> VerifyContext<'static> {
    VerifyContext::default()
}

fn invalid(r: Result<keyward_core::Principal, VerifyError>) -> InvalidReason {
    match r {
        Err(VerifyError::Invalid(reason)) => reason,
        other => panic!("expected invalid, got {other:?}"),
    }
}

/// Flips one character of the secret part, keeping the checksum valid is impossible, so we
/// rebuild a key with a different secret and a correct checksum through the scanner-visible rules.
fn wrong_secret(raw: &str) -> String {
    let (head, tail) = raw.rsplit_once('_').unwrap();
    let secret = &tail[..tail.len() - 6];
    let mut s: Vec<u8> = secret.bytes().collect();
    s[0] = if s[0] == b'A' { b'B' } else { b'A' };
    let body = format!("{head}_{}", String::from_utf8(s).unwrap());
    with_check(&body)
}

fn with_check(body: &str) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut v = u64::from(crc32fast::hash(body.as_bytes()));
    let mut c = [b'0'; 6];
    for slot in c.iter_mut().rev() {
        *slot = B62[(v % 62) as usize];
        v /= 62;
    }
    format!("{body}{}", std::str::from_utf8(&c).unwrap())
}

#[tokio::test]
async fn valid_key_yields_principal() {
    let f = fixture();
    let created =
        f.kw.create_key("alice", req("ci", &["reports:read"]))
            .await
            .unwrap();
    let p =
        f.kw.verify(
            created.api_key.expose_secret(),
            &ScopeRequirement::all_of(["reports:read"]).unwrap(),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(p.owner_id(), "alice");
    assert_eq!(p.key_id(), created.key.id);
    assert_eq!(p.scopes(), &ScopeSet::parse(["reports:read"]).unwrap());
}

#[tokio::test]
async fn junk_never_reads_the_store() {
    let f = fixture();
    let created = f.kw.create_key("alice", req("ci", &[])).await.unwrap();
    let raw = created.api_key.expose_secret();
    let mut typo = raw.to_owned();
    typo.pop();
    typo.push(if raw.ends_with('x') { 'y' } else { 'x' });
    let other_env = KeyFormat::new("kw", "test").unwrap().generate().unwrap();
    for (junk, want) in [
        ("", ParseError::Empty),
        ("   ", ParseError::Empty),
        ("Bearer nonsense", ParseError::Malformed),
        (typo.as_str(), ParseError::Checksum),
        (other_env.api_key.expose_secret(), ParseError::WrongEnv),
    ] {
        assert_eq!(
            invalid(f.kw.verify(junk, &none(), &ctx()).await),
            InvalidReason::Parse(want),
            "{junk:?}"
        );
    }
    let huge = "k".repeat(1 << 20);
    assert_eq!(
        invalid(f.kw.verify(&huge, &none(), &ctx()).await),
        InvalidReason::Parse(ParseError::TooLong)
    );
    assert_eq!(f.store.gets.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn state_is_told_only_after_the_secret_matched() {
    let f = fixture();
    let created = f.kw.create_key("alice", req("ci", &[])).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    f.kw.revoke_key(&Actor::admin_for("alice"), &created.key.id, None)
        .await
        .unwrap();
    assert_eq!(
        invalid(f.kw.verify(&wrong_secret(&raw), &none(), &ctx()).await),
        InvalidReason::WrongSecret
    );
    assert_eq!(
        invalid(f.kw.verify(&raw, &none(), &ctx()).await),
        InvalidReason::Revoked
    );
    // One public code for both (keyward-http answers them with one problem document).
    let a = VerifyError::Invalid(InvalidReason::Revoked).code();
    let b = VerifyError::Invalid(InvalidReason::WrongSecret).code();
    assert_eq!((a, b), (ErrorCode::ApiKeyInvalid, ErrorCode::ApiKeyInvalid));
}

#[tokio::test]
async fn unknown_key_id_is_invalid() {
    let f = fixture();
    let k = f.kw.policy().format.generate().unwrap();
    assert_eq!(
        invalid(
            f.kw.verify(k.api_key.expose_secret(), &none(), &ctx())
                .await
        ),
        InvalidReason::Unknown
    );
    assert_eq!(f.store.gets.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn expiry_inactive_and_revocation_take_effect_at_once() {
    let f = fixture();
    let mut r = req("short", &[]);
    r.ttl_seconds = Some(60);
    let created = f.kw.create_key("alice", r).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    f.clock.advance(Duration::seconds(60));
    assert_eq!(
        invalid(f.kw.verify(&raw, &none(), &ctx()).await),
        InvalidReason::Expired
    );

    let created = f.kw.create_key("alice", req("b", &[])).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap(); // now cached
    let upd = UpdateKeyRequest {
        is_active: Some(false),
        ..Default::default()
    };
    f.kw.update_key(&Actor::admin_for("alice"), &created.key.id, upd, None)
        .await
        .unwrap();
    assert_eq!(
        invalid(f.kw.verify(&raw, &none(), &ctx()).await),
        InvalidReason::Inactive
    );
    let upd = UpdateKeyRequest {
        is_active: Some(true),
        ..Default::default()
    };
    f.kw.update_key(&Actor::admin_for("alice"), &created.key.id, upd, None)
        .await
        .unwrap();
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    let first =
        f.kw.revoke_key(&Actor::admin_for("alice"), &created.key.id, None)
            .await
            .unwrap();
    assert_eq!(
        invalid(f.kw.verify(&raw, &none(), &ctx()).await),
        InvalidReason::Revoked
    );
    f.clock.advance(Duration::seconds(10));
    let again =
        f.kw.revoke_key(&Actor::admin_for("alice"), &created.key.id, None)
            .await
            .unwrap();
    assert_eq!(
        first.revoked_at, again.revoked_at,
        "revoke is idempotent and keeps the first time"
    );
}

#[tokio::test]
async fn scopes_all_of_any_of_and_wildcards() {
    let f = fixture();
    let created =
        f.kw.create_key("alice", req("ci", &["reports:*", "users:read"]))
            .await
            .unwrap();
    let raw = created.api_key.expose_secret();
    let all = ScopeRequirement::all_of(["reports:write", "users:read"]).unwrap();
    f.kw.verify(raw, &all, &ctx()).await.unwrap();
    let all = ScopeRequirement::all_of(["reports:write", "users:write", "billing:read"]).unwrap();
    match f.kw.verify(raw, &all, &ctx()).await {
        Err(VerifyError::ScopeDenied { missing }) => {
            let m: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            assert_eq!(m, ["billing:read", "users:write"]);
        }
        other => panic!("{other:?}"),
    }
    let any = ScopeRequirement::any_of(["billing:read", "users:read"]).unwrap();
    f.kw.verify(raw, &any, &ctx()).await.unwrap();
}

#[tokio::test]
async fn ip_allowlist() {
    let f = fixture();
    let mut r = req("ci", &[]);
    r.ip_allowlist = vec!["10.0.0.0/8".into(), "2001:db8::/32".into()];
    let created = f.kw.create_key("alice", r).await.unwrap();
    let raw = created.api_key.expose_secret();
    let at = |ip: &str| VerifyContext::with_ip(ip.parse::<IpAddr>().unwrap());
    f.kw.verify(raw, &none(), &at("10.1.2.3")).await.unwrap();
    f.kw.verify(raw, &none(), &at("::ffff:10.1.2.3"))
        .await
        .unwrap();
    f.kw.verify(raw, &none(), &at("2001:db8::1")).await.unwrap();
    assert!(matches!(
        f.kw.verify(raw, &none(), &at("192.168.1.1")).await,
        Err(VerifyError::IpDenied)
    ));
    // No client address at all: refused as well, and the answer says why.
    let unknown = f.kw.verify(raw, &none(), &ctx()).await.unwrap_err();
    assert!(matches!(unknown, VerifyError::IpUnknown), "{unknown:?}");
    assert_eq!(unknown.code(), ErrorCode::ApiKeyIpDenied);
    assert_eq!(VerifyError::IpDenied.code(), ErrorCode::ApiKeyIpDenied);
}

#[tokio::test]
async fn rate_limit_counts_only_verified_requests() {
    let f = fixture();
    let mut r = req("ci", &[]);
    r.rate_limit = Some(RateLimit {
        requests: 3,
        window_seconds: 60,
    });
    let created = f.kw.create_key("alice", r).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    // An attacker who knows the key id but not the secret burns nothing.
    for _ in 0..10 {
        assert_eq!(
            invalid(f.kw.verify(&wrong_secret(&raw), &none(), &ctx()).await),
            InvalidReason::WrongSecret
        );
    }
    for _ in 0..3 {
        f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    }
    match f.kw.verify(&raw, &none(), &ctx()).await {
        Err(VerifyError::RateLimited { retry_after }) => {
            assert!(retry_after.unwrap() >= std::time::Duration::from_secs(1));
        }
        other => panic!("{other:?}"),
    }
    f.clock.advance(Duration::seconds(20));
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
}

#[tokio::test]
async fn credits_are_consumed_and_refilled() {
    let f = fixture();
    let mut r = req("ci", &[]);
    r.credits = Some(Credits {
        limit: 2,
        refill_seconds: Some(3600),
    });
    let created = f.kw.create_key("alice", r).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    assert!(matches!(
        f.kw.verify(&raw, &none(), &ctx()).await,
        Err(VerifyError::UsageExhausted {
            retry_after: Some(_)
        })
    ));
    f.kw.flush_usage().await.unwrap();
    let view =
        f.kw.get_key(&Actor::admin_for("alice"), &created.key.id)
            .await
            .unwrap();
    assert_eq!(view.usage.credits_used, 2);
    assert_eq!(view.usage.request_count, 2);
    f.clock.advance(Duration::hours(1));
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
}

/// Without a cache every request loads a fresh entry: the counts of entries gone by the flush
/// are kept whatever their number (past the counted list's bound they move to the queue), and
/// each request is counted once.
#[tokio::test]
async fn every_request_is_counted_without_a_cache() {
    let store = Probe::new();
    let kw = Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
        .cache(keyward_core::CacheConfig {
            capacity: 0,
            ..Default::default()
        })
        .build()
        .unwrap();
    let created = kw.create_key("alice", req("uncached", &[])).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    let n = 70_000;
    for _ in 0..n {
        kw.verify(&raw, &none(), &ctx()).await.unwrap();
    }
    kw.flush_usage().await.unwrap();
    let view = kw.get_key(&Actor::admin(), &created.key.id).await.unwrap();
    assert_eq!(view.usage.request_count, n);
}

#[tokio::test]
async fn last_used_is_throttled_and_batched() {
    let f = fixture();
    let created = f.kw.create_key("alice", req("ci", &[])).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    for _ in 0..5 {
        f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    }
    // Nothing written yet: no store write per request.
    let view =
        f.kw.get_key(&Actor::admin(), &created.key.id)
            .await
            .unwrap();
    assert_eq!(view.last_used_at, None);
    assert_eq!(f.kw.flush_usage().await.unwrap(), 1);
    let view =
        f.kw.get_key(&Actor::admin(), &created.key.id)
            .await
            .unwrap();
    assert_eq!(view.last_used_at, Some(t0()));
    assert_eq!(view.usage.request_count, 5);
    f.clock.advance(Duration::seconds(100));
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    f.kw.flush_usage().await.unwrap();
    let view =
        f.kw.get_key(&Actor::admin(), &created.key.id)
            .await
            .unwrap();
    assert_eq!(view.last_used_at, Some(t0()), "within the 300 s throttle");
    f.clock.advance(Duration::seconds(300));
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    f.kw.flush_usage().await.unwrap();
    let view =
        f.kw.get_key(&Actor::admin(), &created.key.id)
            .await
            .unwrap();
    assert_eq!(view.last_used_at, Some(t0() + Duration::seconds(400)));
    assert_eq!(view.usage.request_count, 7);
}

/// A key's last use and count wait in its cache entry until the flush; an entry a management
/// change drops from the cache before then still has both written.
#[tokio::test]
async fn usage_outlives_its_cache_entry() {
    let f = fixture();
    let created = f.kw.create_key("alice", req("ci", &[])).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    let upd = UpdateKeyRequest {
        name: Some("renamed".into()),
        ..Default::default()
    };
    f.kw.update_key(&Actor::admin_for("alice"), &created.key.id, upd, None)
        .await
        .unwrap();
    assert_eq!(f.kw.pending_usage(), 1);
    assert_eq!(f.kw.flush_usage().await.unwrap(), 1);
    let view =
        f.kw.get_key(&Actor::admin(), &created.key.id)
            .await
            .unwrap();
    assert_eq!(view.last_used_at, Some(t0()));
    assert_eq!(view.usage.request_count, 1);
    assert_eq!(f.kw.pending_usage(), 0);
}

#[tokio::test]
async fn immediate_and_disabled_last_used() {
    let policy = Policy {
        last_used: LastUsedStrategy::Immediate,
        ..Policy::default()
    };
    let f = fixture_with(policy, Keyring::insecure_test_keyring());
    let created = f.kw.create_key("alice", req("ci", &[])).await.unwrap();
    f.kw.verify(created.api_key.expose_secret(), &none(), &ctx())
        .await
        .unwrap();
    let view =
        f.kw.get_key(&Actor::admin(), &created.key.id)
            .await
            .unwrap();
    assert_eq!(view.last_used_at, Some(t0()));

    let policy = Policy {
        last_used: LastUsedStrategy::Disabled,
        ..Policy::default()
    };
    let f = fixture_with(policy, Keyring::insecure_test_keyring());
    let created = f.kw.create_key("alice", req("ci", &[])).await.unwrap();
    f.kw.verify(created.api_key.expose_secret(), &none(), &ctx())
        .await
        .unwrap();
    f.kw.flush_usage().await.unwrap();
    let view =
        f.kw.get_key(&Actor::admin(), &created.key.id)
            .await
            .unwrap();
    assert_eq!(view.last_used_at, None);
    assert_eq!(view.usage.request_count, 1);
}

#[tokio::test]
async fn store_outage_fails_closed_and_recovers() {
    let f = fixture();
    let created = f.kw.create_key("alice", req("ci", &[])).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    f.store.down.store(true, Ordering::SeqCst);
    let err = f.kw.verify(&raw, &none(), &ctx()).await.unwrap_err();
    assert!(matches!(err, VerifyError::Unavailable(_)));
    assert_eq!(err.code().status(), 503);
    let err = f.kw.create_key("alice", req("x", &[])).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthUnavailable);
    // Usage that cannot be written stays queued.
    f.store.down.store(false, Ordering::SeqCst);
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    f.store.down.store(true, Ordering::SeqCst);
    assert!(f.kw.flush_usage().await.is_err());
    // The key's last-used time, and its request as a usage count.
    assert_eq!(f.kw.pending_usage(), 2);
    f.store.down.store(false, Ordering::SeqCst);
    assert_eq!(f.kw.flush_usage().await.unwrap(), 1);
}

#[tokio::test]
async fn lazy_redigest_under_new_pepper() {
    let store = Probe::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let old = Keyring::builder()
        .pepper(1, varied_pepper(1))
        .build()
        .unwrap();
    let kw = Keyward::builder(store.clone(), old)
        .clock(clock.clone())
        .build()
        .unwrap();
    let created = kw.create_key("alice", req("ci", &[])).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();

    let both = Keyring::builder()
        .pepper(1, varied_pepper(1))
        .pepper_with(2, DigestAlgorithm::Blake3, varied_pepper(2))
        .build()
        .unwrap();
    let kw2 = Keyward::builder(store.clone(), both)
        .clock(clock.clone())
        .build()
        .unwrap();
    kw2.verify(&raw, &none(), &ctx()).await.unwrap();
    let stored = store.inner.get(&created.key.id).await.unwrap().unwrap();
    assert_eq!(stored.digest.pepper_version, 2);
    assert_eq!(stored.digest.algorithm, DigestAlgorithm::Blake3);

    let only_new = Keyring::builder()
        .pepper_with(2, DigestAlgorithm::Blake3, varied_pepper(2))
        .build()
        .unwrap();
    let kw3 = Keyward::builder(store.clone(), only_new)
        .clock(clock)
        .build()
        .unwrap();
    kw3.verify(&raw, &none(), &ctx()).await.unwrap();
}

#[tokio::test]
async fn fifty_concurrent_creates_with_max_five() {
    let policy = Policy {
        max_keys_per_owner: Some(5),
        ..Policy::default()
    };
    let f = fixture_with(policy, Keyring::insecure_test_keyring());
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let kw = f.kw.clone();
            tokio::spawn(async move { kw.create_key("bob", req(&format!("k{i}"), &[])).await })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(ServiceError::LimitReached(5)) => limited += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, limited), (5, 45));
    // Revoked and expired keys free a slot.
    let page =
        f.kw.list_keys(&Actor::admin_for("bob"), &page(None, None))
            .await
            .unwrap();
    f.kw.revoke_key(&Actor::admin_for("bob"), &page.items[0].id, None)
        .await
        .unwrap();
    f.kw.create_key("bob", req("again", &[])).await.unwrap();
    assert!(matches!(
        f.kw.create_key("bob", req("no", &[])).await,
        Err(ServiceError::LimitReached(5))
    ));
}

#[tokio::test]
async fn validation_is_field_level() {
    let policy = Policy {
        catalog: ScopeCatalog::only(["reports:*"]).unwrap(),
        max_ttl: Some(Duration::days(30)),
        ..Policy::default()
    };
    let f = fixture_with(policy, Keyring::insecure_test_keyring());
    let fields = |e: ServiceError| match e {
        ServiceError::Validation(v) => v
            .into_iter()
            .map(|e| format!("{}:{}", e.field, e.code))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let mut r = req("  ", &["users:read", "Bad Scope"]);
    r.expires_at = Some(t0() - Duration::seconds(1));
    r.ip_allowlist = vec!["not-an-ip".into()];
    r.rate_limit = Some(RateLimit {
        requests: 0,
        window_seconds: 1,
    });
    let got = fields(f.kw.create_key("alice", r).await.unwrap_err());
    assert_eq!(
        got,
        [
            "name:required",
            "scopes:invalid",
            "ip_allowlist:invalid",
            "expires_at:in_past",
            "rate_limit:invalid"
        ]
    );
    let r = req(&"n".repeat(129), &["users:read"]);
    assert_eq!(
        fields(f.kw.create_key("alice", r).await.unwrap_err()),
        [
            "name:too_long",
            "scopes:not_in_catalog",
            "expires_at:too_far"
        ]
    );
    let mut r = req("ok", &["reports:read"]);
    r.ttl_seconds = Some(0);
    assert_eq!(
        fields(f.kw.create_key("alice", r).await.unwrap_err()),
        ["ttl_seconds:invalid", "expires_at:too_far"]
    );
    let mut r = req("ok", &["reports:read"]);
    r.ttl_seconds = Some(3600);
    r.expires_at = Some(t0() + Duration::days(1));
    assert_eq!(
        fields(f.kw.create_key("alice", r).await.unwrap_err())[0],
        "ttl_seconds:conflict"
    );
    let mut r = req("ok", &["reports:read"]);
    r.signing = true;
    assert_eq!(
        fields(f.kw.create_key("alice", r).await.unwrap_err()),
        ["expires_at:too_far", "signing:unavailable"]
    );

    // Update goes through the same scope and expiry checks as create.
    let mut r = req("ok", &["reports:read"]);
    r.ttl_seconds = Some(3600);
    let created = f.kw.create_key("alice", r).await.unwrap();
    let upd = UpdateKeyRequest {
        scopes: Some(vec!["*".into()]),
        ..Default::default()
    };
    assert_eq!(
        fields(
            f.kw.update_key(&Actor::admin_for("alice"), &created.key.id, upd, None)
                .await
                .unwrap_err()
        ),
        ["scopes:not_in_catalog"]
    );
    let upd = UpdateKeyRequest {
        expires_at: Some(None),
        ..Default::default()
    };
    assert_eq!(
        fields(
            f.kw.update_key(&Actor::admin_for("alice"), &created.key.id, upd, None)
                .await
                .unwrap_err()
        ),
        ["expires_at:too_far"]
    );
    let upd = UpdateKeyRequest {
        expires_at: Some(Some(t0() - Duration::hours(1))),
        ..Default::default()
    };
    assert_eq!(
        fields(
            f.kw.update_key(&Actor::admin_for("alice"), &created.key.id, upd, None)
                .await
                .unwrap_err()
        ),
        ["expires_at:in_past"]
    );
}

#[tokio::test]
async fn foreign_keys_are_not_found() {
    let f = fixture();
    let created = f.kw.create_key("alice", req("ci", &[])).await.unwrap();
    let id = created.key.id;
    assert!(matches!(
        f.kw.get_key(&Actor::admin_for("mallory"), &id).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        f.kw.revoke_key(&Actor::admin_for("mallory"), &id, None)
            .await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        f.kw.rotate_key(
            &Actor::admin_for("mallory"),
            &id,
            RotateKeyRequest::default(),
            None
        )
        .await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        f.kw.update_key(
            &Actor::admin_for("mallory"),
            &id,
            UpdateKeyRequest::default(),
            None
        )
        .await,
        Err(ServiceError::NotFound)
    ));
    f.kw.verify(created.api_key.expose_secret(), &none(), &ctx())
        .await
        .unwrap();
    assert_eq!(ServiceError::NotFound.code().status(), 404);
}

#[tokio::test]
async fn rotation_with_grace() {
    let f = fixture();
    let created =
        f.kw.create_key("alice", req("ci", &["reports:read"]))
            .await
            .unwrap();
    let old = created.api_key.expose_secret().to_owned();
    let rotated =
        f.kw.rotate_key(
            &Actor::admin_for("alice"),
            &created.key.id,
            RotateKeyRequest {
                grace_seconds: Some(60),
            },
            None,
        )
        .await
        .unwrap();
    let new = rotated.api_key.expose_secret().to_owned();
    assert_ne!(old, new);
    assert_eq!(rotated.key.rotated_from, Some(created.key.id));
    assert_eq!(rotated.key.scopes, ["reports:read"]);
    f.kw.verify(&old, &none(), &ctx()).await.unwrap();
    f.kw.verify(&new, &none(), &ctx()).await.unwrap();
    f.clock.advance(Duration::seconds(60));
    assert_eq!(
        invalid(f.kw.verify(&old, &none(), &ctx()).await),
        InvalidReason::Expired
    );
    f.kw.verify(&new, &none(), &ctx()).await.unwrap();
    let bad = RotateKeyRequest {
        grace_seconds: Some(-1),
    };
    assert!(matches!(
        f.kw.rotate_key(&Actor::admin_for("alice"), &rotated.key.id, bad, None)
            .await,
        Err(ServiceError::Validation(_))
    ));
}

#[tokio::test]
async fn pagination_walks_every_key_once() {
    let f = fixture();
    let mut made = Vec::new();
    for i in 0..7 {
        f.clock.advance(Duration::milliseconds(1));
        made.push(
            f.kw.create_key("carol", req(&format!("k{i}"), &[]))
                .await
                .unwrap()
                .key
                .id,
        );
    }
    f.kw.create_key("dave", req("other", &[])).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page =
            f.kw.list_keys(
                &Actor::admin_for("carol"),
                &page(cursor.as_deref(), Some(3)),
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|k| k.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, made);
    assert!(matches!(
        f.kw.list_keys(&Actor::admin_for("carol"), &page(Some("%%%"), None))
            .await,
        Err(ServiceError::Validation(_))
    ));
    assert!(matches!(
        f.kw.list_keys(&Actor::admin_for("carol"), &page(None, Some(0)))
            .await,
        Err(ServiceError::Validation(_))
    ));
    assert!(matches!(
        f.kw.list_keys(&Actor::admin_for("carol"), &page(None, Some(101)))
            .await,
        Err(ServiceError::Validation(_))
    ));
}

#[tokio::test]
async fn secrets_never_reach_debug_views_or_errors() {
    let f = fixture();
    let created = f.kw.create_key("alice", req("ci", &[])).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    let secret = &raw[raw.rfind('_').unwrap() + 1..];
    let record = f.store.inner.get(&created.key.id).await.unwrap().unwrap();
    let view_json = serde_json::to_string(&created.key).unwrap();
    let mut texts = vec![
        format!("{created:?}"),
        format!("{record:?}"),
        format!("{:?}", created.key),
        view_json.clone(),
        format!("{:?}", f.kw),
    ];
    for bad in [wrong_secret(&raw), raw.clone()] {
        f.kw.revoke_key(&Actor::admin(), &created.key.id, None)
            .await
            .unwrap();
        let e = f.kw.verify(&bad, &none(), &ctx()).await.unwrap_err();
        texts.push(format!("{e} {e:?}"));
    }
    for t in &texts {
        assert!(!t.contains(&secret[..20]), "secret leaked in {t}");
    }
    assert!(!view_json.contains("digest"));
    // The created response carries the key exactly once.
    let created_json = serde_json::to_string(&created).unwrap();
    assert_eq!(created_json.matches(&raw).count(), 1);
}

#[tokio::test]
async fn cache_serves_hits_without_store_reads_and_is_invalidated() {
    let f = fixture();
    let created = f.kw.create_key("alice", req("ci", &["a:b"])).await.unwrap();
    let raw = created.api_key.expose_secret().to_owned();
    for _ in 0..10 {
        f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    }
    assert_eq!(f.store.gets.load(Ordering::SeqCst), 1);
    // A wrong secret against a cached entry is still refused: the cache never authenticates.
    assert_eq!(
        invalid(f.kw.verify(&wrong_secret(&raw), &none(), &ctx()).await),
        InvalidReason::WrongSecret
    );
    let upd = UpdateKeyRequest {
        scopes: Some(vec![]),
        ..Default::default()
    };
    f.kw.update_key(&Actor::admin_for("alice"), &created.key.id, upd, None)
        .await
        .unwrap();
    let need = ScopeRequirement::all_of(["a:b"]).unwrap();
    assert!(matches!(
        f.kw.verify(&raw, &need, &ctx()).await,
        Err(VerifyError::ScopeDenied { .. })
    ));
}

#[tokio::test]
async fn verify_cached_answers_what_verify_answers_or_defers() {
    let f = fixture();
    let key = |r: CreateKeyRequest| {
        let kw = f.kw.clone();
        async move {
            let c = kw.create_key("alice", r).await.unwrap();
            (c.api_key.expose_secret().to_owned(), c.key.id)
        }
    };
    let (plain, _) = key(req("plain", &["reports:read"])).await;
    let (short, _) = key(CreateKeyRequest {
        ttl_seconds: Some(60),
        ..req("short", &[])
    })
    .await;
    let (fenced, _) = key(CreateKeyRequest {
        ip_allowlist: vec!["10.0.0.0/8".into()],
        ..req("fenced", &[])
    })
    .await;
    let (limited, _) = key(CreateKeyRequest {
        rate_limit: Some(RateLimit {
            requests: 100,
            window_seconds: 60,
        }),
        ..req("limited", &[])
    })
    .await;
    let (revoked, revoked_id) = key(req("revoked", &[])).await;
    let (uncached, _) = key(req("uncached", &[])).await;
    f.kw.revoke_key(&Actor::admin_for("alice"), &revoked_id, None)
        .await
        .unwrap();
    f.clock.advance(Duration::seconds(61));
    // Cache all but `uncached` (a verify caches the record whatever its state).
    for k in [&plain, &short, &fenced, &limited, &revoked] {
        let _ = f.kw.verify(k, &none(), &ctx()).await;
    }

    let reports = ScopeRequirement::all_of(["reports:read"]).unwrap();
    let writes = ScopeRequirement::all_of(["reports:write"]).unwrap();
    let inside = VerifyContext::with_ip([10, 1, 2, 3].into());
    let outside = VerifyContext::with_ip([192, 168, 0, 1].into());
    let answered = [
        (plain.clone(), reports.clone(), ctx()),
        (plain.clone(), writes.clone(), ctx()),
        (wrong_secret(&plain), reports.clone(), ctx()),
        ("junk".to_owned(), none(), ctx()),
        (format!("{plain}x"), none(), ctx()),
        (short.clone(), none(), ctx()),
        (fenced.clone(), none(), inside),
        (fenced.clone(), none(), outside),
        (revoked.clone(), none(), ctx()),
    ];
    for (presented, required, c) in &answered {
        let fast = f.kw.verify_cached(presented, required, c);
        let full = f.kw.verify(presented, required, c).await;
        let fast = fast.unwrap_or_else(|| panic!("{required:?} {c:?} deferred"));
        assert_eq!(format!("{fast:?}"), format!("{full:?}"));
    }
    // Deferred: not cached.
    assert!(f.kw.verify_cached(&uncached, &none(), &ctx()).is_none());
    // A rate limit its limiter settles at once (memory) is answered, each answer spending what
    // `verify` spends: 99 of 100 left after the warm-up, then refused by both.
    for _ in 0..99 {
        let fast = f.kw.verify_cached(&limited, &none(), &ctx());
        assert!(matches!(fast, Some(Ok(_))), "{fast:?}");
    }
    let fast = f.kw.verify_cached(&limited, &none(), &ctx());
    assert!(
        matches!(fast, Some(Err(VerifyError::RateLimited { .. }))),
        "{fast:?}"
    );
    let full = f.kw.verify(&limited, &none(), &ctx()).await;
    assert!(
        matches!(full, Err(VerifyError::RateLimited { .. })),
        "{full:?}"
    );
}

/// A request spends its cost in credits, whole or not at all; a cost of 0 spends nothing and
/// passes even with nothing left.
#[tokio::test]
async fn credits_are_spent_by_the_cost_of_each_request() {
    let f = fixture();
    let created =
        f.kw.create_key(
            "alice",
            CreateKeyRequest {
                credits: Some(keyward_core::model::Credits {
                    limit: 10,
                    refill_seconds: None,
                }),
                ..req("priced", &[])
            },
        )
        .await
        .unwrap();
    let key = created.api_key.expose_secret();
    let at = |cost| ctx().with_cost(cost);
    let outcomes = [
        (4, true),
        (4, true),
        (4, false),
        (2, true),
        (0, true),
        (1, false),
    ];
    for (cost, admitted) in outcomes {
        let got = f.kw.verify(key, &none(), &at(cost)).await;
        match got {
            Ok(_) => assert!(admitted, "cost {cost} admitted"),
            Err(VerifyError::UsageExhausted { .. }) => assert!(!admitted, "cost {cost} refused"),
            Err(e) => panic!("{e:?}"),
        }
    }
    let fast = f.kw.verify_cached(key, &none(), &at(1));
    assert!(
        matches!(fast, Some(Err(VerifyError::UsageExhausted { .. }))),
        "{fast:?}"
    );
}

/// A deterministic generator, for this test only (it is no CSPRNG): the same seed mints the
/// same keys, which is what injecting a `rand_core` source is for.
struct Seeded(u64);

impl rand_core::RngCore for Seeded {
    fn next_u32(&mut self) -> u32 {
        u32::try_from(self.next_u64() >> 32).unwrap()
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u64().to_le_bytes()[7];
        }
    }
}

impl rand_core::CryptoRng for Seeded {}

#[tokio::test]
async fn keys_are_minted_from_the_injected_rng() {
    let engine = |seed: Option<u64>| {
        let b = Keyward::builder(
            Arc::new(keyward_core::memory::MemoryKeyStore::new()),
            Keyring::insecure_test_keyring(),
        );
        match seed {
            Some(s) => b.rng(Seeded(s)),
            None => b,
        }
        .build()
        .unwrap()
    };
    let mint = |kw: Keyward| async move {
        let req = keyward_core::management::CreateKeyRequest {
            name: "k".into(),
            ..Default::default()
        };
        let c = kw.create_key("o", req).await.unwrap();
        (c.key.id.to_string(), c.api_key.expose_secret().to_owned())
    };
    let (a, b) = (mint(engine(Some(7))).await, mint(engine(Some(7))).await);
    assert_eq!(a, b, "the same seed mints the same key");
    assert_ne!(a, mint(engine(Some(8))).await);
    let (c, d) = (mint(engine(None)).await, mint(engine(None)).await);
    assert_ne!(c, d, "the OS source by default");
    // A minted key verifies as any other.
    let kw = engine(Some(9));
    let (_, raw) = mint(kw.clone()).await;
    kw.verify(
        &raw,
        &keyward_core::ScopeRequirement::none(),
        &keyward_core::VerifyContext::default(),
    )
    .await
    .unwrap();
}

/// The OpenAPI schema of a `Principal` names exactly the fields its JSON has.
#[cfg(feature = "openapi")]
#[tokio::test]
async fn the_principal_schema_is_its_json() {
    let kw = Keyward::builder(
        Arc::new(keyward_core::memory::MemoryKeyStore::new()),
        Keyring::insecure_test_keyring(),
    )
    .build()
    .unwrap();
    let created = kw
        .create_key(
            "alice",
            keyward_core::management::CreateKeyRequest {
                name: "k".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let principal = kw
        .verify(
            created.api_key.expose_secret(),
            &ScopeRequirement::none(),
            &VerifyContext::default(),
        )
        .await
        .unwrap();
    let json = serde_json::to_value(&principal).unwrap();
    let schema =
        serde_json::to_value(<keyward_core::Principal as utoipa::PartialSchema>::schema()).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&schema["properties"]), keys(&json));
    assert_eq!(
        <keyward_core::Principal as utoipa::ToSchema>::name(),
        "Principal"
    );
}

/// The list query of one page.
fn page(cursor: Option<&str>, limit: Option<u32>) -> keyward_core::management::KeyQuery {
    keyward_core::management::KeyQuery {
        cursor: cursor.map(str::to_owned),
        limit,
        ..Default::default()
    }
}

/// Usage analytics: each verification of a known key counts once, under its outcome, hour and
/// tags; requests still add to the key's request count; an hour that ends keeps its counts; a
/// flush the store refuses loses none; owners read their own.
#[tokio::test]
async fn verifications_count_by_outcome_hour_and_tag() {
    use keyward_core::analytics::Tags;
    use keyward_core::management::UsageQuery;

    let f = fixture();
    let created =
        f.kw.create_key("alice", req("metered", &["reports:read"]))
            .await
            .unwrap();
    let (id, raw) = (created.key.id, created.api_key.expose_secret().to_owned());
    let billing = ScopeRequirement::all_of(["billing:read"]).unwrap();
    let eu = ctx().tagged(Tags::new(["region=eu"]).unwrap());
    f.clock.advance(Duration::minutes(10));
    for _ in 0..2 {
        f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    }
    f.kw.verify(&raw, &none(), &eu).await.unwrap();
    assert!(f.kw.verify(&raw, &billing, &eu).await.is_err());
    assert!(
        f.kw.verify(&wrong_secret(&raw), &none(), &ctx())
            .await
            .is_err()
    );
    // Another owner's revoked key counts for that owner.
    let bobs = f.kw.create_key("bob", req("x", &[])).await.unwrap();
    f.kw.revoke_key(&Actor::admin(), &bobs.key.id, None)
        .await
        .unwrap();
    let bobs_raw = bobs.api_key.expose_secret().to_owned();
    assert!(f.kw.verify(&bobs_raw, &none(), &ctx()).await.is_err());
    // The next hour: the first one's counts stay in it.
    f.clock.advance(Duration::hours(1));
    f.kw.verify(&raw, &none(), &ctx()).await.unwrap();
    f.store.down.store(true, Ordering::SeqCst);
    assert!(f.kw.flush_usage().await.is_err());
    f.store.down.store(false, Ordering::SeqCst);
    f.kw.flush_usage().await.unwrap();

    let query = UsageQuery {
        from: Some("2026-01-01T00:00:00Z".into()),
        to: Some("2026-01-01T03:00:00Z".into()),
        ..UsageQuery::default()
    };
    let report =
        f.kw.usage(&Actor::owner("alice"), Some(&id), &query)
            .await
            .unwrap();
    let b = &report.buckets;
    assert_eq!(b.len(), 3);
    assert_eq!(
        (
            b[0].outcomes.valid,
            b[0].outcomes.scope_denied,
            b[0].outcomes.invalid
        ),
        (3, 1, 1)
    );
    assert_eq!(b[1].outcomes.valid, 1);
    assert_eq!(report.totals.total(), 6);
    assert_eq!(report.tags.len(), 1);
    assert_eq!(report.tags[0].tag, "region=eu");
    assert_eq!(
        (
            report.tags[0].outcomes.valid,
            report.tags[0].outcomes.scope_denied
        ),
        (1, 1)
    );
    let eu_only = UsageQuery {
        tag: Some("region=eu".into()),
        ..query.clone()
    };
    let report =
        f.kw.usage(&Actor::owner("alice"), Some(&id), &eu_only)
            .await
            .unwrap();
    assert_eq!(report.totals.total(), 2);
    let view = f.kw.get_key(&Actor::admin(), &id).await.unwrap();
    assert_eq!(
        view.usage.request_count, 4,
        "admitted requests, tagged or not"
    );
    // Another owner reads neither the key nor anything of alice's.
    let err =
        f.kw.usage(&Actor::owner("bob"), Some(&id), &query)
            .await
            .unwrap_err();
    assert!(matches!(err, ServiceError::NotFound));
    let bobs =
        f.kw.usage(&Actor::owner("bob"), None, &query)
            .await
            .unwrap();
    assert_eq!((bobs.totals.revoked, bobs.totals.total()), (1, 1));
    // An administrator of every owner names one: the route gives it.
    let err = f.kw.usage(&Actor::admin(), None, &query).await.unwrap_err();
    assert!(matches!(err, ServiceError::Validation(_)));
}

/// The notices: `key.rate_limited` once per key and window, `key.credits_low` once per key and
/// credit period, `key.expiring` once per key and notice period, however many requests, scans
/// or instances notice them; written with the usage flush (the scan: at once).
#[tokio::test]
async fn notices_once_per_window_period_and_expiry() {
    use keyward_core::management::EventQuery;
    let store = Probe::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = || {
        Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
            .clock(clock.clone())
            .credits_notice(50)
            .build()
            .unwrap()
    };
    let (kw, other) = (engine(), engine());
    let limited = kw
        .create_key(
            "alice",
            CreateKeyRequest {
                rate_limit: Some(RateLimit {
                    requests: 1,
                    window_seconds: 60,
                }),
                ..req("limited", &[])
            },
        )
        .await
        .unwrap();
    let metered = kw
        .create_key(
            "alice",
            CreateKeyRequest {
                credits: Some(Credits {
                    limit: 4,
                    refill_seconds: None,
                }),
                ..req("metered", &[])
            },
        )
        .await
        .unwrap();
    let expiring = kw
        .create_key(
            "alice",
            CreateKeyRequest {
                ttl_seconds: Some(2 * 86_400),
                ..req("expiring", &[])
            },
        )
        .await
        .unwrap();
    let (l, m) = (
        limited.api_key.expose_secret().to_owned(),
        metered.api_key.expose_secret().to_owned(),
    );
    for _ in 0..3 {
        let _ = kw.verify(&l, &none(), &ctx()).await;
        let _ = kw.verify(&m, &none(), &ctx()).await;
    }
    clock.advance(Duration::seconds(61));
    kw.verify(&l, &none(), &ctx()).await.unwrap();
    assert!(kw.verify(&l, &none(), &ctx()).await.is_err());
    kw.flush_usage().await.unwrap();

    let periods = [
        std::time::Duration::from_secs(7 * 86_400),
        std::time::Duration::from_secs(86_400),
    ];
    assert_eq!(
        kw.notice_expiring(&periods).await.unwrap(),
        1,
        "the 7-day notice"
    );
    assert_eq!(kw.notice_expiring(&periods).await.unwrap(), 0, "once");
    assert_eq!(
        other.notice_expiring(&periods).await.unwrap(),
        1,
        "another instance sends it too; the store keeps one"
    );
    clock.advance(Duration::hours(36));
    assert_eq!(
        kw.notice_expiring(&periods).await.unwrap(),
        1,
        "the 1-day notice"
    );

    let of = |action: &str| {
        let query = EventQuery {
            action: Some(action.into()),
            ..EventQuery::default()
        };
        let kw = kw.clone();
        async move { kw.list_events(&Actor::admin(), &query).await.unwrap().items }
    };
    let limits = of("key.rate_limited").await;
    assert_eq!(limits.len(), 2, "one per window: {limits:?}");
    assert!(limits.iter().all(|e| e.key_id == Some(limited.key.id)));
    assert_eq!(limits[0].actor.kind, keyward_core::audit::ActorKind::System);
    let low = of("key.credits_low").await;
    assert_eq!(low.len(), 1, "{low:?}");
    let remaining = low[0]
        .changes
        .iter()
        .find(|c| c.field == "credits_remaining")
        .and_then(|c| c.new.clone());
    assert_eq!(remaining, Some(serde_json::json!(2)), "noticed at half");
    let soon = of("key.expiring").await;
    let notice: Vec<_> = soon
        .iter()
        .map(|e| {
            assert_eq!(e.key_id, Some(expiring.key.id));
            e.changes
                .iter()
                .find(|c| c.field == "notice_seconds")
                .and_then(|c| c.new.clone())
        })
        .collect();
    assert_eq!(
        notice,
        [
            Some(serde_json::json!(86_400)),
            Some(serde_json::json!(604_800))
        ],
        "newest first, each once"
    );
}
