//! Scopes: every line of the input is a scope a key is granted or a route requires. Parsing
//! refuses or accepts, never panics, and a requirement is always met by the very scopes it
//! names.
#![no_main]
#![forbid(unsafe_code)]

use keyward_core::{ScopeRequirement, ScopeSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (granted, required) = text.split_once("\n\n").unwrap_or((text, text));
    let granted: Vec<&str> = granted.lines().collect();
    let required: Vec<&str> = required.lines().collect();
    let set = ScopeSet::parse(&granted);
    let all = ScopeRequirement::all_of(&required);
    let any = ScopeRequirement::any_of(&required);
    if let (Ok(set), Ok(all), Ok(any)) = (&set, &all, &any) {
        let _ = all.check(set);
        let _ = any.check(set);
    }
    // What a requirement names, granted as such, meets it.
    if let (Ok(own), Ok(all)) = (ScopeSet::parse(&required), &all) {
        assert!(all.check(&own).is_ok(), "{required:?}");
    }
});
