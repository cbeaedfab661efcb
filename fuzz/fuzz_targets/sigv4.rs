//! `SigV4`: the `Authorization` header parser, the `X-Amz-Date` parser, and the canonical request
//! built from a request whose method, path, query and headers all come from the input. Each
//! must answer `Ok` or a `SignatureError`, within its limits, and never panic.
#![no_main]
#![forbid(unsafe_code)]

use keyward_core::sigv4::{
    Authorization, Limits, Payload, SignableRequest, canonical_request, parse_amz_date,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_amz_date(data);
    let parsed = Authorization::parse(data);
    // Lines: method, path, query (empty line: none), then `name: value` headers, the last of
    // which is also tried as an `Authorization` value whose signed headers are used.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or_default();
    let path = lines.next().unwrap_or_default();
    let query = lines.next().filter(|q| !q.is_empty());
    let headers: Vec<(&str, &[u8])> = lines
        .map(|l| match l.split_once(':') {
            Some((name, value)) => (name, value.as_bytes()),
            None => (l, &b""[..]),
        })
        .collect();
    let signed_headers: Vec<String> = match (&parsed, headers.last()) {
        (Ok(auth), _) => auth.signed_headers().to_vec(),
        (Err(_), Some((_, value))) => Authorization::parse(value).map_or_else(
            |_| {
                headers
                    .iter()
                    .map(|(n, _)| n.to_ascii_lowercase())
                    .collect()
            },
            |a| a.signed_headers().to_vec(),
        ),
        (Err(_), None) => Vec::new(),
    };
    let request = SignableRequest::new(method, path, query, &headers, Payload::Bytes(data));
    let limits = Limits::default();
    if let Ok(canonical) = canonical_request(&request, &signed_headers, &limits) {
        // The canonical request starts with the method, as given.
        assert!(canonical.starts_with(method));
    }
});
