//! Verification cost against its floor: one HMAC-SHA256 over a key-sized input.
//!
//! Two floors are measured. The issue's: one HMAC-SHA256 over an input the size of a presented
//! key (59 bytes for `kw_live_…`, two SHA-256 blocks after the key pad). And a stricter one: over
//! exactly what verification digests, `key_id ‖ 0 ‖ secret` (45 bytes, one block). Both with
//! ring's HMAC, the reference the target was set against. A third line times the digest
//! verification itself computes (RustCrypto's HMAC, faster than ring's on inputs this short),
//! so that verify/own floor is what the engine adds around its one HMAC.
//!
//! `cargo bench -p keyward-core --bench verify` runs criterion, then prints the ratios
//! (verify/floor, wrong-secret/valid, valid/junk) measured back to back in the same run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    clippy::print_stdout
)]

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use futures::executor::block_on;
use keyward_core::digest::{Digester, HmacSha256Digester};
use keyward_core::key::KeyId;
use keyward_core::management::CreateKeyRequest;
use keyward_core::memory::MemoryKeyStore;
use keyward_core::{KeyFormat, Keyring, Keyward, Pepper, ScopeRequirement, VerifyContext};
use ring::hmac;

struct Setup {
    kw: Keyward,
    valid: String,
    wrong: String,
    junk: String,
    unknown: String,
    floor_key: hmac::Key,
    /// As long as a presented key.
    floor_key_sized: Vec<u8>,
    /// What verification digests.
    floor_digest_input: Vec<u8>,
    /// The digest verification computes, with its key id.
    own: (HmacSha256Digester, KeyId),
    req: ScopeRequirement,
}

/// A fixed pepper of 32 distinct bytes (the keyring refuses patterned ones).
fn bench_pepper() -> Pepper {
    Pepper::new(
        (0u8..32)
            .map(|i| i.wrapping_mul(73).wrapping_add(5))
            .collect(),
    )
}

/// A flood of wrong secrets on one key under Argon2id, from one address: what each attempt costs
/// before the failure throttle trips (an Argon2 run) and after (none). Printed with the ratios.
#[cfg(feature = "argon2")]
fn argon2_flood() {
    use keyward_core::digest::DigestAlgorithm;
    use keyward_core::throttle::FailureThrottle;
    let keyring = Keyring::builder()
        .pepper_with(1, DigestAlgorithm::Argon2id, bench_pepper())
        .build()
        .unwrap();
    let throttle = FailureThrottle::default();
    let kw = Keyward::builder(Arc::new(MemoryKeyStore::new()), keyring)
        .failure_throttle(throttle)
        .build()
        .unwrap();
    let created = block_on(kw.create_key(
        "bench",
        CreateKeyRequest {
            name: "argon2".into(),
            ..Default::default()
        },
    ))
    .unwrap();
    let valid = created.api_key.expose_secret().to_owned();
    let other = KeyFormat::default().generate().unwrap();
    let wrong = rebuild(&valid, other.secret().expose_secret());
    let ctx = VerifyContext::with_ip("192.0.2.1".parse().unwrap());
    let req = ScopeRequirement::none();
    let attempt = || {
        let started = Instant::now();
        let r = block_on(kw.verify(&wrong, &req, &ctx));
        (started.elapsed().as_nanos() as f64, r)
    };
    // An id nobody issued, without a client address (so never throttled): the burn it costs.
    let unknown = KeyFormat::default()
        .generate()
        .unwrap()
        .api_key
        .expose_secret()
        .to_owned();
    let unknown_ns: Vec<f64> = (0..2000)
        .map(|_| {
            let started = Instant::now();
            let r = block_on(kw.verify(&unknown, &req, &VerifyContext::default()));
            assert!(r.is_err());
            started.elapsed().as_nanos() as f64
        })
        .collect();
    let before: Vec<f64> = (0..throttle.max_failures).map(|_| attempt().0).collect();
    let after: Vec<f64> = (0..1000)
        .map(|_| {
            let (t, r) = attempt();
            assert!(
                matches!(r, Err(keyward_core::VerifyError::Throttled { .. })),
                "{r:?}"
            );
            t
        })
        .collect();
    println!(
        "  Argon2id, a flood of wrong secrets from one address: {:.0} µs each for the first {} \
         (an Argon2 run), then {:.2} µs each, throttled (429, no Argon2)",
        median(before) / 1000.0,
        throttle.max_failures,
        median(after) / 1000.0
    );
    println!(
        "  Argon2id, an unknown key id: {:.2} µs (the fast keyed hash is burned, not Argon2)",
        median(unknown_ns) / 1000.0
    );
}

fn setup() -> Setup {
    let keyring = Keyring::builder()
        .pepper(1, bench_pepper())
        .build()
        .unwrap();
    let kw = Keyward::builder(Arc::new(MemoryKeyStore::new()), keyring)
        .build()
        .unwrap();
    let created = block_on(kw.create_key(
        "bench",
        CreateKeyRequest {
            name: "bench".into(),
            scopes: vec!["reports:read".into()],
            ..Default::default()
        },
    ))
    .unwrap();
    let valid = created.api_key.expose_secret().to_owned();
    // Same key id, other secret, valid checksum: reaches the digest compare.
    let other = KeyFormat::default().generate().unwrap();
    let other_raw = other.api_key.expose_secret();
    let wrong = rebuild(&valid, other.secret().expose_secret());
    let mut junk = valid.clone();
    junk.pop();
    junk.push(if valid.ends_with('x') { 'y' } else { 'x' });
    let unknown = other_raw.to_owned();
    let floor_key_sized = vec![b'a'; valid.len()];
    let mut floor_digest_input = Vec::new();
    floor_digest_input.extend_from_slice(created.key.id.as_str().as_bytes());
    floor_digest_input.push(0);
    floor_digest_input.extend_from_slice(&[b'a'; 32]);
    let req = ScopeRequirement::all_of(["reports:read"]).unwrap();
    // Warm the cache.
    block_on(kw.verify(&valid, &req, &VerifyContext::default())).unwrap();
    Setup {
        kw,
        valid,
        wrong,
        junk,
        unknown,
        floor_key: hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]),
        floor_key_sized,
        floor_digest_input,
        own: (
            HmacSha256Digester::new(&Pepper::new(vec![7; 32])),
            created.key.id,
        ),
        req,
    }
}

fn rebuild(valid: &str, secret: &str) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let head = &valid[..valid.rfind('_').unwrap()];
    let body = format!("{head}_{secret}");
    let mut v = u64::from(crc32fast::hash(body.as_bytes()));
    let mut c = [b'0'; 6];
    for slot in c.iter_mut().rev() {
        *slot = B62[(v % 62) as usize];
        v /= 62;
    }
    format!("{body}{}", std::str::from_utf8(&c).unwrap())
}

fn floor(s: &Setup) {
    black_box(hmac::sign(&s.floor_key, black_box(&s.floor_key_sized)));
}

fn floor_strict(s: &Setup) {
    black_box(hmac::sign(&s.floor_key, black_box(&s.floor_digest_input)));
}

fn floor_own(s: &Setup) {
    let (digester, key_id) = &s.own;
    black_box(digester.digest(black_box(key_id), black_box(&[b'a'; 32])));
}

/// Verification over the in-memory store completes without waiting, so one poll with a no-op
/// waker measures the engine itself rather than an executor.
fn verify(s: &Setup, key: &str) {
    let ctx = VerifyContext::default();
    let fut = std::pin::pin!(s.kw.verify(black_box(key), &s.req, &ctx));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(r) => {
            let _ = black_box(r);
        }
        std::task::Poll::Pending => unreachable!("in-memory verification never waits"),
    }
}

fn benches(c: &mut Criterion) {
    let s = setup();
    let fmt = KeyFormat::default();
    c.bench_function("floor_hmac_sha256", |b| b.iter(|| floor(&s)));
    c.bench_function("floor_hmac_sha256_digest_input", |b| {
        b.iter(|| floor_strict(&s))
    });
    c.bench_function("floor_own_digest", |b| b.iter(|| floor_own(&s)));
    c.bench_function("parse", |b| {
        b.iter(|| black_box(fmt.parse(black_box(&s.valid)).is_ok()))
    });
    c.bench_function("verify_cache_hit", |b| b.iter(|| verify(&s, &s.valid)));
    c.bench_function("verify_wrong_secret", |b| b.iter(|| verify(&s, &s.wrong)));
    c.bench_function("verify_unknown_id", |b| b.iter(|| verify(&s, &s.unknown)));
    c.bench_function("verify_junk_checksum", |b| b.iter(|| verify(&s, &s.junk)));
}

/// Nanoseconds per call over one batch of `n` calls.
fn batch(n: usize, f: &dyn Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The ratios from interleaved rounds: each round times one batch of every case back to back,
/// so a slow spell of a shared machine lands on all of them; each ratio is the median of its
/// per-round ratios, each time the median of its batches.
fn ratios() {
    let s = setup();
    let (n, rounds) = (20_000, 31);
    let cases: [&dyn Fn(); 7] = [
        &|| floor(&s),
        &|| floor_strict(&s),
        &|| floor_own(&s),
        &|| verify(&s, &s.valid),
        &|| verify(&s, &s.wrong),
        &|| verify(&s, &s.unknown),
        &|| verify(&s, &s.junk),
    ];
    let mut times = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (t, f) in times.iter_mut().zip(cases) {
            t.push(batch(n, f));
        }
    }
    let ratio =
        |a: usize, b: usize| median((0..rounds).map(|r| times[a][r] / times[b][r]).collect());
    let ns: Vec<f64> = times.iter().map(|t| median(t.clone())).collect();
    println!(
        "\nkeyward-core verify ratios (one run, {rounds} interleaved rounds of {n} calls per case):"
    );
    println!(
        "  floor: HMAC-SHA256, key-sized input ({} bytes)          {:8.1} ns",
        s.floor_key_sized.len(),
        ns[0]
    );
    println!(
        "  strict floor: HMAC-SHA256 over key_id|0|secret ({} bytes) {:8.1} ns",
        s.floor_digest_input.len(),
        ns[1]
    );
    println!(
        "  own floor: the digest verify computes (RustCrypto HMAC)  {:8.1} ns",
        ns[2]
    );
    println!(
        "  verify, cache hit       {:8.1} ns   verify/floor        = {:.2} (target <= 1.5)",
        ns[3],
        ratio(3, 0)
    );
    println!(
        "                                        verify/strict floor = {:.2}",
        ratio(3, 1)
    );
    println!(
        "                                        verify/own floor    = {:.2}",
        ratio(3, 2)
    );
    println!(
        "  verify, wrong secret    {:8.1} ns   wrong/valid         = {:.2} (target 0.9..1.1)",
        ns[4],
        ratio(4, 3)
    );
    println!(
        "  verify, unknown key id  {:8.1} ns   unknown/valid       = {:.2}",
        ns[5],
        ratio(5, 3)
    );
    println!(
        "  verify, junk (checksum) {:8.1} ns   valid/junk          = {:.1} (target >= 5)",
        ns[6],
        ratio(3, 6)
    );
    #[cfg(feature = "argon2")]
    argon2_flood();
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    // A profiler run of one benchmark wants that benchmark alone.
    if !std::env::args().any(|a| a == "--profile-time") {
        ratios();
    }
}
