//! Abuse resistance through the public API: floods of made-up keys cost no store read on
//! repeat, failures are throttled by client address (never by anything the client chose),
//! cache invalidation fails safe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use keyward_core::clock::ManualClock;
use keyward_core::engine::InvalidReason;
use keyward_core::key::KeyFormat;
use keyward_core::management::{CreateKeyRequest, CreatedKey};
use keyward_core::memory::MemoryKeyStore;
use keyward_core::store::{Cursor, InvalidationBus, KeyStore, Page, StoreError, UsageDelta};
use keyward_core::throttle::FailureThrottle;
use keyward_core::{
    Actor, CacheConfig, KeyId, KeyRecord, Keyring, Keyward, ScopeRequirement, VerifyContext,
    VerifyError,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The memory store, counting reads; its `revoke` can be told to fail *after* it wrote, as a
/// cache in front of a store that could not be told does.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryKeyStore,
    gets: AtomicUsize,
    fail_after_revoke: AtomicBool,
}

#[async_trait::async_trait]
impl keyward_core::store::EventStore for Counting {
    async fn events(
        &self,
        filter: &keyward_core::audit::EventFilter<'_>,
        cursor: Option<keyward_core::audit::EventCursor>,
        limit: u32,
    ) -> Result<keyward_core::audit::EventPage, StoreError> {
        self.inner.events(filter, cursor, limit).await
    }
    async fn prune_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.inner.prune_events(before, limit).await
    }
    async fn append(&self, events: &[keyward_core::audit::Event]) -> Result<(), StoreError> {
        self.inner.append(events).await
    }
    async fn usage(
        &self,
        filter: &keyward_core::analytics::UsageFilter<'_>,
    ) -> Result<Vec<keyward_core::analytics::UsageRow>, StoreError> {
        self.inner.usage(filter).await
    }
    async fn prune_usage(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.inner.prune_usage(before, limit).await
    }
}

#[async_trait::async_trait]
impl KeyStore for Counting {
    async fn create(
        &self,
        r: &KeyRecord,
        max: Option<u32>,
        now: OffsetDateTime,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.inner.create(r, max, now, event).await
    }
    async fn create_many(
        &self,
        records: &[&KeyRecord],
        max_per_owner: Option<u32>,
        now: OffsetDateTime,
        events: &[keyward_core::audit::Event],
    ) -> Result<(), StoreError> {
        self.inner
            .create_many(records, max_per_owner, now, events)
            .await
    }
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(id).await
    }
    async fn list(
        &self,
        f: &keyward_core::store::KeyFilter<'_>,
        c: Option<Cursor>,
        l: u32,
    ) -> Result<Page, StoreError> {
        self.inner.list(f, c, l).await
    }
    async fn update(
        &self,
        r: &KeyRecord,
        expected: OffsetDateTime,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.inner.update(r, expected, event).await
    }
    async fn set_digest(
        &self,
        id: &KeyId,
        d: &keyward_core::digest::KeyDigest,
        event: &keyward_core::audit::Event,
    ) -> Result<(), StoreError> {
        self.inner.set_digest(id, d, event).await
    }
    async fn revoke(
        &self,
        id: &KeyId,
        at: OffsetDateTime,
        expected: Option<OffsetDateTime>,
        event: &keyward_core::audit::Event,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let r = self.inner.revoke(id, at, expected, event).await?;
        if self.fail_after_revoke.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(
                "the cache in front could not be told",
            ));
        }
        Ok(r)
    }
    async fn record_usage(
        &self,
        b: &[UsageDelta],
        counts: &[keyward_core::analytics::UsageCount],
    ) -> Result<(), StoreError> {
        self.inner.record_usage(b, counts).await
    }
}

/// A bus that records what it published and can be switched off.
#[derive(Debug, Default)]
struct Bus {
    published: std::sync::Mutex<Vec<KeyId>>,
    down: AtomicBool,
}

#[async_trait::async_trait]
impl InvalidationBus for Bus {
    async fn publish(&self, key_id: &KeyId) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("bus down"));
        }
        self.published.lock().unwrap().push(*key_id);
        Ok(())
    }
}

struct Fixture {
    kw: Keyward,
    store: Arc<Counting>,
    bus: Arc<Bus>,
    clock: Arc<ManualClock>,
}

fn t0() -> OffsetDateTime {
    datetime!(2026-09-01 00:00:00 UTC)
}

fn fixture_with(throttle: FailureThrottle) -> Fixture {
    let store = Arc::new(Counting::default());
    let bus = Arc::new(Bus::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let kw = Keyward::builder(store.clone(), Keyring::insecure_test_keyring())
        .clock(clock.clone())
        .invalidation_bus(bus.clone())
        .failure_throttle(throttle)
        .cache(CacheConfig::default())
        .build()
        .unwrap();
    Fixture {
        kw,
        store,
        bus,
        clock,
    }
}

fn fixture() -> Fixture {
    fixture_with(FailureThrottle::default())
}

/// A well-formed key with a valid checksum and an id nobody issued: anyone can mint these.
fn made_up() -> String {
    KeyFormat::default()
        .generate()
        .unwrap()
        .api_key
        .expose_secret()
        .to_owned()
}

fn from(ip: &str) -> VerifyContext<'static> {
    VerifyContext::with_ip(ip.parse::<IpAddr>().unwrap())
}

/// `body` with its CRC32 check, base62, as the key format computes it.
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

async fn verify(f: &Fixture, key: &str, ctx: &VerifyContext<'_>) -> Result<(), VerifyError> {
    f.kw.verify(key, &ScopeRequirement::none(), ctx)
        .await
        .map(drop)
}

async fn create(f: &Fixture) -> CreatedKey {
    f.kw.create_key(
        "alice",
        CreateKeyRequest {
            name: "k".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_repeated_unknown_id_reads_the_store_once() {
    let f = fixture();
    let key = made_up();
    for _ in 0..100 {
        assert!(matches!(
            verify(&f, &key, &VerifyContext::default()).await,
            Err(VerifyError::Invalid(InvalidReason::Unknown))
        ));
    }
    assert_eq!(f.store.gets.load(Ordering::SeqCst), 1);
    // The answer is remembered for a short while only.
    f.clock.advance(Duration::seconds(6));
    verify(&f, &key, &VerifyContext::default())
        .await
        .unwrap_err();
    assert_eq!(f.store.gets.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn creating_a_key_drops_its_id_from_the_unknown_list_everywhere() {
    let f = fixture();
    let created = create(&f).await;
    assert!(
        f.bus.published.lock().unwrap().contains(&created.key.id),
        "a create tells the other instances, which may have answered \"unknown\" for the id"
    );
    f.kw.invalidate_local(&created.key.id);
    verify(
        &f,
        created.api_key.expose_secret(),
        &VerifyContext::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn failures_throttle_the_address_not_its_cached_keys() {
    let f = fixture_with(FailureThrottle {
        max_failures: 20,
        window: std::time::Duration::from_secs(60),
        capacity: 1000,
    });
    let valid = create(&f).await;
    let attacker = from("198.51.100.9");
    // The valid client behind the same address has its key cached.
    verify(&f, valid.api_key.expose_secret(), &attacker)
        .await
        .unwrap();
    for _ in 0..20 {
        assert!(matches!(
            verify(&f, &made_up(), &attacker).await,
            Err(VerifyError::Invalid(InvalidReason::Unknown))
        ));
    }
    let reads = f.store.gets.load(Ordering::SeqCst);
    for _ in 0..200 {
        match verify(&f, &made_up(), &attacker).await {
            Err(e @ VerifyError::Throttled { .. }) => {
                assert_eq!(e.code().status(), 429);
                assert!(e.retry_after().is_some_and(|d| d.as_secs() <= 60));
            }
            other => panic!("expected Throttled, got {other:?}"),
        }
    }
    assert_eq!(
        f.store.gets.load(Ordering::SeqCst),
        reads,
        "a throttled address costs no store read"
    );
    verify(&f, valid.api_key.expose_secret(), &attacker)
        .await
        .expect("a cached key from the same address still verifies");
    // Its cache entry expires mid-flood (30 s): the id is a real key, read again, still valid.
    f.clock.advance(Duration::seconds(31));
    verify(&f, valid.api_key.expose_secret(), &attacker)
        .await
        .expect("a known key from the same address still verifies after its entry expired");
    assert!(matches!(
        verify(&f, &made_up(), &attacker).await,
        Err(VerifyError::Throttled { .. })
    ));
    verify(&f, &made_up(), &from("198.51.100.10"))
        .await
        .expect_err("unknown");
    assert!(
        !matches!(
            verify(&f, &made_up(), &from("198.51.100.10")).await,
            Err(VerifyError::Throttled { .. })
        ),
        "another address is not throttled"
    );
    f.clock.advance(Duration::seconds(30));
    assert!(matches!(
        verify(&f, &made_up(), &attacker).await,
        Err(VerifyError::Invalid(InvalidReason::Unknown))
    ));
}

#[tokio::test]
async fn wrong_secrets_count_and_the_switch_turns_it_off() {
    let f = fixture_with(FailureThrottle {
        max_failures: 3,
        window: std::time::Duration::from_secs(60),
        capacity: 1000,
    });
    let valid = create(&f).await;
    let raw = valid.api_key.expose_secret();
    // Same id and checksum rules, another secret.
    let body = &raw[..raw.len() - 6];
    let mut wrong = body.to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    let wrong = with_check(&wrong);
    let ip = from("203.0.113.5");
    for _ in 0..3 {
        assert!(matches!(
            verify(&f, &wrong, &ip).await,
            Err(VerifyError::Invalid(InvalidReason::WrongSecret))
        ));
    }
    let other = create(&f).await;
    f.kw.clear_cache();
    assert!(matches!(
        verify(&f, other.api_key.expose_secret(), &ip).await,
        Err(VerifyError::Throttled { .. })
    ));

    let off = fixture_with(FailureThrottle::off());
    for _ in 0..100 {
        verify(&off, &made_up(), &ip).await.unwrap_err();
    }
    let k = create(&off).await;
    off.kw.clear_cache();
    verify(&off, k.api_key.expose_secret(), &ip).await.unwrap();
}

#[tokio::test]
async fn a_revoke_drops_the_local_entry_even_when_the_store_call_fails() {
    let f = fixture();
    let k = create(&f).await;
    let ctx = VerifyContext::default();
    verify(&f, k.api_key.expose_secret(), &ctx).await.unwrap();
    f.store.fail_after_revoke.store(true, Ordering::SeqCst);
    f.kw.revoke_key(&Actor::admin(), &k.key.id, None)
        .await
        .expect_err("the store call failed after writing");
    assert!(matches!(
        verify(&f, k.api_key.expose_secret(), &ctx).await,
        Err(VerifyError::Invalid(InvalidReason::Revoked))
    ));
}

#[tokio::test]
async fn unpublished_invalidations_are_kept_and_retried() {
    let f = fixture();
    let k = create(&f).await;
    f.bus.down.store(true, Ordering::SeqCst);
    f.kw.revoke_key(&Actor::admin(), &k.key.id, None)
        .await
        .unwrap();
    assert!(matches!(
        verify(&f, k.api_key.expose_secret(), &VerifyContext::default()).await,
        Err(VerifyError::Invalid(InvalidReason::Revoked))
    ));
    assert_eq!(f.kw.pending_invalidations(), 1);
    assert_eq!(f.kw.retry_invalidations().await, 1, "still down");
    f.bus.down.store(false, Ordering::SeqCst);
    assert_eq!(f.kw.retry_invalidations().await, 0);
    assert_eq!(f.bus.published.lock().unwrap().last(), Some(&k.key.id));
}

/// Under Argon2id, wrong secrets are throttled by address and by key id before Argon2 runs
/// again; the key's holder waits for the window too (the price of the lever).
#[cfg(feature = "argon2")]
#[tokio::test]
async fn argon2_wrong_secrets_stop_before_argon2_runs_again() {
    use keyward_core::digest::{DigestAlgorithm, Pepper};
    let store = Arc::new(Counting::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let pepper = Pepper::new(
        (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect(),
    );
    let kw = Keyward::builder(
        store.clone(),
        Keyring::builder()
            .pepper_with(1, DigestAlgorithm::Argon2id, pepper)
            .build()
            .unwrap(),
    )
    .clock(clock.clone())
    .failure_throttle(FailureThrottle {
        max_failures: 3,
        window: std::time::Duration::from_secs(60),
        capacity: 100,
    })
    .build()
    .unwrap();
    let f = Fixture {
        kw,
        store,
        bus: Arc::new(Bus::default()),
        clock,
    };
    let k = create(&f).await;
    let raw = k.api_key.expose_secret();
    let mut wrong = raw[..raw.len() - 6].to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    let wrong = with_check(&wrong);
    for i in 0..3 {
        // From three addresses: the key id's own count trips.
        let ip = from(&format!("192.0.2.{}", i + 1));
        assert!(matches!(
            verify(&f, &wrong, &ip).await,
            Err(VerifyError::Invalid(InvalidReason::WrongSecret))
        ));
    }
    assert!(matches!(
        verify(&f, &wrong, &from("192.0.2.99")).await,
        Err(VerifyError::Throttled { .. })
    ));
    assert!(
        matches!(
            verify(&f, raw, &from("192.0.2.100")).await,
            Err(VerifyError::Throttled { .. })
        ),
        "the holder waits for the window too"
    );
    f.clock.advance(Duration::seconds(61));
    verify(&f, raw, &from("192.0.2.100")).await.unwrap();
}

/// An address over its failures gets no signed body buffered, even for a known signing key,
/// and bodies that never complete count as failures.
#[tokio::test]
async fn uploads_that_fail_throttle_signed_bodies_of_the_address() {
    let f = fixture_with(FailureThrottle {
        max_failures: 3,
        window: std::time::Duration::from_secs(60),
        capacity: 100,
    });
    let ip = from("192.0.2.50");
    let header = b"AWS4-HMAC-SHA256 Credential=AAAAAAAAAAAA/20260101/us-east-1/keyward/aws4_request, SignedHeaders=host, Signature=00";
    for _ in 0..3 {
        f.kw.signed_body_failed(&ip).await;
    }
    assert!(matches!(
        f.kw.precheck_signed(header, &ip).await,
        Err(VerifyError::Throttled { .. })
    ));
    assert!(matches!(
        f.kw.precheck_signed(header, &from("192.0.2.51")).await,
        Err(VerifyError::SignatureInvalid)
    ));
}

/// The background task every stack runs (`maintenance::spawn_usage_flusher`) retries
/// unpublished invalidations, so a revocation reaches the other instances once the bus is back.
#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_background_round_publishes_what_failed() {
    let f = fixture();
    let k = create(&f).await;
    f.bus.down.store(true, Ordering::SeqCst);
    f.kw.revoke_key(&Actor::admin(), &k.key.id, None)
        .await
        .unwrap();
    assert_eq!(f.kw.maintain().await.invalidations, 1, "bus still down");
    f.bus.down.store(false, Ordering::SeqCst);
    let task = keyward_core::maintenance::spawn_usage_flusher(
        f.kw.clone(),
        std::time::Duration::from_millis(10),
    );
    for _ in 0..200 {
        if f.kw.pending_invalidations() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    task.shutdown().await;
    assert_eq!(f.kw.pending_invalidations(), 0);
    assert_eq!(f.bus.published.lock().unwrap().last(), Some(&k.key.id));
}

/// Review finding 6: a client whose address a server could not read
/// ([`VerifyContext::UNKNOWN_CLIENT`]) passes no IP allowlist, not even one that admits every
/// address, and such clients' failures are throttled together, apart from everyone else.
#[tokio::test]
async fn an_unknown_client_passes_no_allowlist_and_is_throttled_apart() {
    let f = fixture_with(FailureThrottle {
        max_failures: 3,
        window: std::time::Duration::from_secs(60),
        capacity: 1000,
    });
    let open =
        f.kw.create_key(
            "alice",
            CreateKeyRequest {
                name: "anywhere".into(),
                ip_allowlist: vec!["0.0.0.0/0".into(), "::/0".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let unknown = VerifyContext::with_ip(VerifyContext::UNKNOWN_CLIENT);
    assert!(matches!(
        verify(&f, open.api_key.expose_secret(), &unknown).await,
        Err(VerifyError::IpUnknown)
    ));
    verify(&f, open.api_key.expose_secret(), &from("192.0.2.1"))
        .await
        .unwrap();
    for _ in 0..3 {
        let _ = verify(&f, &made_up(), &unknown).await;
    }
    assert!(matches!(
        verify(&f, &made_up(), &unknown).await,
        Err(VerifyError::Throttled { .. })
    ));
    assert!(matches!(
        verify(&f, &made_up(), &from("192.0.2.1")).await,
        Err(VerifyError::Invalid(InvalidReason::Unknown))
    ));
}
