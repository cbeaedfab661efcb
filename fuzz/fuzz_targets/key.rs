//! Presented keys and credential headers: whatever bytes a client sends in `Authorization` or
//! `X-API-Key` must parse or be refused, never panic, and a key that parses must say back
//! exactly what it was given.
#![no_main]
#![forbid(unsafe_code)]

use keyward_core::KeyFormat;
use keyward_http::credentials::{self, Credential};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let format = KeyFormat::default();
    // The first byte picks which header carries the rest, so one input reaches every branch.
    let (selector, rest) = data.split_first().unwrap_or((&0, data));
    let (authorization, api_key) = match selector % 3 {
        0 => (Some(rest), None),
        1 => (None, Some(rest)),
        _ => {
            let mid = rest.len() / 2;
            (Some(&rest[..mid]), Some(&rest[mid..]))
        }
    };
    if let Credential::Key(key) = credentials::extract(&format, authorization, api_key) {
        // A credential the extractor calls a key came out of the bytes given.
        assert!(rest.windows(key.len()).any(|w| w == key.as_bytes()));
    }
    if let Ok(text) = std::str::from_utf8(rest)
        && let Ok(parsed) = format.parse(text)
    {
        assert!(text.contains(parsed.key_id.as_str()));
    }
});
