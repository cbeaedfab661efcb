//! Unit tests of digests, peppers and the keyring.

use super::*;
use crate::key::{MAX_SECRET_LEN, SECRET_LEN};

fn pepper(b: u8) -> Pepper {
    Pepper::new(vec![b; 32])
}

#[test]
fn peppers_from_text_are_decoded_never_taken_as_bytes() {
    let bytes: Vec<u8> = (0u8..32).collect();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    };
    for text in [
        hex.clone(),
        hex.to_uppercase(),
        b64.clone(),
        format!(" {b64}\n"),
    ] {
        let p = Pepper::from_encoded(&text).map_err(|e| format!("{text}: {e}"));
        assert_eq!(
            p.as_ref().map(Pepper::expose_secret),
            Ok(&bytes[..]),
            "{text}"
        );
    }
    for junk in ["", "   ", "not base64 !!", "é"] {
        assert_eq!(
            Pepper::from_encoded(junk).err(),
            Some(PepperDecodeError),
            "{junk:?}"
        );
    }
}

fn id() -> KeyId {
    "ABCDEFGHIJKL".parse().unwrap()
}

/// 32 distinct bytes, different for each `seed`: a pepper the builder accepts.
fn varied(seed: u8) -> Pepper {
    Pepper::new(
        (0u8..32)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)))
            .collect(),
    )
}

#[test]
fn weak_secrets_are_named() {
    assert_eq!(weakness(&[0; 32]), Some("repeats one byte"));
    assert!(weakness(&b"ab".repeat(16)).is_some());
    assert!(weakness(&b"0123456789".repeat(4)).is_some());
    assert!(weakness(INSECURE_TEST_PEPPER).is_some());
    assert_eq!(weakness(varied(1).expose_secret()), None);
    let random = Pepper::generate().unwrap();
    assert_eq!(weakness(random.expose_secret()), None);
    let err = Keyring::builder().pepper(1, pepper(0)).build().unwrap_err();
    assert!(
        matches!(err, KeyringError::Weak { version: 1, .. }),
        "{err}"
    );
    assert!(
        Keyring::builder()
            .pepper(1, pepper(0))
            .insecure_allow_weak_peppers()
            .build()
            .is_ok()
    );
}

#[test]
fn hmac_input_is_key_id_zero_secret_for_every_secret_length() {
    let d = HmacSha256Digester::new(&pepper(9));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[9; 32]);
    for len in [
        0,
        1,
        31,
        SECRET_LEN,
        33,
        MAX_SECRET_LEN,
        MAX_SECRET_LEN + 1,
        200,
    ] {
        let secret: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(id().as_bytes());
        ctx.update(&[0]);
        ctx.update(&secret);
        assert_eq!(
            d.digest(&id(), &secret).as_slice(),
            ctx.sign().as_ref(),
            "secret of {len} bytes"
        );
    }
}

proptest::proptest! {
    /// Against ring's HMAC, for peppers shorter and longer than a SHA-256 block (a longer
    /// one is hashed first) and secrets that end in every part of a block.
    #[test]
    fn hmac_matches_ring_for_any_pepper_and_secret(
        pepper in proptest::collection::vec(proptest::num::u8::ANY, 0..150),
        secret in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
    ) {
        let ours = HmacSha256Digester::new(&Pepper::new(pepper.clone())).digest(&id(), &secret);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &pepper);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(id().as_bytes());
        ctx.update(&[0]);
        ctx.update(&secret);
        let theirs = ctx.sign();
        proptest::prop_assert_eq!(ours.as_slice(), theirs.as_ref());
    }
}

#[test]
fn digests_equal_sees_every_byte_and_the_length() {
    for len in [0usize, 7, 8, 31, 32, 33, 64] {
        let a: Vec<u8> = (0..len).map(|i| i as u8).collect();
        assert!(digests_equal(&a, &a.clone()));
        for i in 0..len {
            for bit in 0..8 {
                let mut b = a.clone();
                b[i] ^= 1 << bit;
                assert!(!digests_equal(&a, &b), "len {len} byte {i} bit {bit}");
            }
        }
        let mut longer = a.clone();
        longer.push(0);
        assert!(!digests_equal(&a, &longer));
    }
}

#[test]
fn startup_fails_closed() {
    assert_eq!(
        Keyring::builder().build().unwrap_err(),
        KeyringError::Missing
    );
    assert!(matches!(
        Keyring::builder()
            .pepper(1, Pepper::new(vec![1; 31]))
            .build(),
        Err(KeyringError::TooShort {
            version: 1,
            len: 31
        })
    ));
    assert!(matches!(
        Keyring::builder()
            .pepper(1, varied(1))
            .pepper(2, varied(1))
            .build(),
        Err(KeyringError::Reused { version: 2 })
    ));
    assert!(matches!(
        Keyring::builder()
            .pepper(1, varied(1))
            .pepper(1, varied(2))
            .build(),
        Err(KeyringError::DuplicateVersion { version: 1 })
    ));
    assert!(
        Keyring::builder()
            .pepper(1, Pepper::new(vec![1; 4]))
            .insecure_allow_weak_peppers()
            .build()
            .is_ok()
    );
}

#[test]
fn verify_and_lazy_rotation() {
    let old = Keyring::builder().pepper(1, varied(1)).build().unwrap();
    let d = old.digest(&id(), "secret");
    assert_eq!(d.pepper_version, 1);
    assert_eq!(
        old.verify(&id(), "secret", &d),
        DigestMatch::Match { obsolete: false }
    );
    assert_eq!(old.verify(&id(), "secreT", &d), DigestMatch::Mismatch);

    let both = Keyring::builder()
        .pepper(1, varied(1))
        .pepper(2, varied(2))
        .build()
        .unwrap();
    assert_eq!(both.current_version(), 2);
    assert_eq!(
        both.verify(&id(), "secret", &d),
        DigestMatch::Match { obsolete: true }
    );
    let new = both.digest(&id(), "secret");
    assert_eq!(new.pepper_version, 2);
    assert_ne!(new.bytes, d.bytes);

    let only_new = Keyring::builder().pepper(2, varied(2)).build().unwrap();
    assert_eq!(only_new.verify(&id(), "secret", &d), DigestMatch::Mismatch);
}

#[test]
fn blake3_differs_and_verifies() {
    let k = Keyring::builder()
        .pepper_with(1, DigestAlgorithm::Blake3, varied(1))
        .build()
        .unwrap();
    let d = k.digest(&id(), "secret");
    assert_eq!(d.algorithm, DigestAlgorithm::Blake3);
    assert_eq!(
        k.verify(&id(), "secret", &d),
        DigestMatch::Match { obsolete: false }
    );
    let h = Keyring::builder().pepper(1, varied(1)).build().unwrap();
    assert_eq!(h.verify(&id(), "secret", &d), DigestMatch::Mismatch);
}

#[test]
fn debug_never_shows_bytes() {
    let p = Pepper::new(b"super-secret-pepper-bytes-0123456789".to_vec());
    assert!(!format!("{p:?}").contains("super"));
    let k = Keyring::builder().pepper(1, p).build().unwrap();
    let d = k.digest(&id(), "secret");
    let dbg = format!("{d:?} {k:?}");
    assert!(!dbg.contains("super"));
    assert!(!dbg.contains("bytes:"), "{dbg}");
    assert!(!dbg.contains(&format!("{:?}", d.bytes)), "{dbg}");
}
