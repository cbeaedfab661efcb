//! Property tests: key round trips, mutation rejection, total parsing, scope laws.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use keyward_core::key::{KeyFormat, ParsedKey};
use keyward_core::scope::{Scope, ScopeSet};
use proptest::prelude::*;

fn format() -> impl Strategy<Value = KeyFormat> {
    ("[a-z][a-z0-9]{1,15}", "[a-z0-9]{1,8}").prop_map(|(p, e)| KeyFormat::new(&p, &e).unwrap())
}

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-. ";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generate_parse_round_trip(f in format()) {
        let k = f.generate().unwrap();
        let raw = k.api_key.expose_secret();
        let p = f.parse(raw).unwrap();
        prop_assert_eq!(p.key_id, k.key_id);
        prop_assert_eq!(p.prefix, f.prefix());
        prop_assert_eq!(p.env, f.env());
        prop_assert_eq!(p.secret.expose_secret(), k.secret().expose_secret());
    }

    #[test]
    fn every_single_character_mutation_is_rejected(f in format()) {
        let k = f.generate().unwrap();
        let raw = k.api_key.expose_secret().as_bytes().to_vec();
        for i in 0..raw.len() {
            for &c in ALPHABET {
                if c == raw[i] {
                    continue;
                }
                let mut m = raw.clone();
                m[i] = c;
                let s = String::from_utf8(m).unwrap();
                prop_assert!(f.parse(&s).is_err(), "mutation at {} to {:?} accepted", i, c as char);
            }
        }
        // Deleting or inserting a character is rejected too.
        for i in 0..raw.len() {
            let mut m = raw.clone();
            m.remove(i);
            prop_assert!(f.parse(std::str::from_utf8(&m).unwrap()).is_err());
            let mut m = raw.clone();
            m.insert(i, b'a');
            prop_assert!(f.parse(std::str::from_utf8(&m).unwrap()).is_err());
        }
    }

    #[test]
    fn parsing_is_total(s in "\\PC{0,300}") {
        let _ = ParsedKey::parse(&s);
        let _ = s.parse::<Scope>();
    }

    #[test]
    fn parsing_is_total_on_key_shaped_input(s in "[a-z]{1,17}_[a-z0-9]{0,9}_[A-Za-z0-9]{10,14}_[A-Za-z0-9]{30,80}") {
        let _ = ParsedKey::parse(&s);
    }
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        "[a-c]{1,2}(:[a-c]{1,2}){0,2}".prop_map(|s| s.parse().unwrap()),
        "[a-c]{1,2}(:[a-c]{1,2}){0,1}:\\*".prop_map(|s| s.parse().unwrap()),
        Just("*".parse().unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn covers_is_reflexive(a in scope()) {
        prop_assert!(a.covers(&a));
    }

    #[test]
    fn covers_is_transitive(a in scope(), b in scope(), c in scope()) {
        if a.covers(&b) && b.covers(&c) {
            prop_assert!(a.covers(&c));
        }
    }

    #[test]
    fn star_covers_all(a in scope()) {
        prop_assert!("*".parse::<Scope>().unwrap().covers(&a));
    }

    #[test]
    fn concrete_scopes_cover_only_themselves(a in scope(), b in scope()) {
        if !a.is_wildcard() && a.covers(&b) {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn normalization_is_idempotent(v in proptest::collection::vec(scope(), 0..8)) {
        let set = ScopeSet::from_scopes(v.clone());
        let again = ScopeSet::from_scopes(set.as_slice().to_vec());
        prop_assert_eq!(&set, &again);
        for s in &v {
            prop_assert!(set.covers(s));
        }
    }

    #[test]
    fn intersect_only_narrows(key in proptest::collection::vec(scope(), 0..6), bound in proptest::collection::vec(scope(), 0..6)) {
        let key = ScopeSet::from_scopes(key);
        let bound = ScopeSet::from_scopes(bound);
        let eff = key.intersect(&bound);
        for s in eff.iter() {
            prop_assert!(key.covers(s));
            prop_assert!(bound.covers(s));
        }
    }
}
