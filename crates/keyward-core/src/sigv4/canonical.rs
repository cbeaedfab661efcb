//! The SigV4 canonical request: method, normalized path, sorted query, signed headers and
//! payload hash.

use super::*;

/// The SigV4 canonical request of `request` over `signed_headers`:
///
/// ```text
/// METHOD \n canonical-uri \n canonical-query \n canonical-headers \n signed-headers \n hex(sha256(body))
/// ```
///
/// `signed_headers` must be lower-case header names, strictly ascending, as in the
/// `SignedHeaders` component of an `Authorization` header.
///
/// # Errors
///
/// [`SignatureError::TooLarge`] when an input exceeds `limits`; [`SignatureError::MalformedMethod`],
/// [`SignatureError::MalformedPath`], [`SignatureError::MalformedQuery`];
/// [`SignatureError::MalformedAuthorization`] with [`AuthorizationFault::SignedHeaders`] when
/// `signed_headers` is not a valid list; [`SignatureError::SignedHeaderAbsent`] and
/// [`SignatureError::MalformedHeaderValue`] for a signed header that is missing or not UTF-8.
pub fn canonical_request(
    request: &SignableRequest<'_>,
    signed_headers: &[String],
    limits: &Limits,
) -> Result<String, SignatureError> {
    check_signed_header_list(signed_headers.iter().map(String::as_str), limits)?;
    let payload_hash = hex_lower(&request.payload.sha256());
    build_canonical_request(
        request,
        request.headers,
        signed_headers,
        &payload_hash,
        limits,
    )
}

pub(super) fn build_canonical_request(
    request: &SignableRequest<'_>,
    headers: &[(&str, &[u8])],
    signed_headers: &[String],
    payload_hash_hex: &str,
    limits: &Limits,
) -> Result<String, SignatureError> {
    if headers.len() > limits.max_headers {
        return Err(SignatureError::TooLarge(Limit::Headers));
    }
    check_method(request.method)?;
    let mut out = String::with_capacity(256 + request.path.len());
    out.push_str(request.method);
    out.push('\n');
    push_canonical_uri(&mut out, request.path, limits)?;
    out.push('\n');
    push_canonical_query(&mut out, request.query, limits)?;
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        push_header_value(&mut out, headers, name, limits)?;
        out.push('\n');
    }
    out.push('\n');
    push_joined(&mut out, signed_headers, ';');
    out.push('\n');
    out.push_str(payload_hash_hex);
    Ok(out)
}

pub(super) fn check_method(method: &str) -> Result<(), SignatureError> {
    if method.len() > MAX_METHOD_LEN {
        return Err(SignatureError::TooLarge(Limit::Method));
    }
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(SignatureError::MalformedMethod);
    }
    Ok(())
}

pub(super) fn push_canonical_uri(
    out: &mut String,
    path: &str,
    limits: &Limits,
) -> Result<(), SignatureError> {
    if path.len() > limits.max_path_len {
        return Err(SignatureError::TooLarge(Limit::Path));
    }
    if !path.starts_with('/') {
        return Err(SignatureError::MalformedPath);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    out.push('/');
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(percent_encode(segment.as_bytes(), ENCODE_SET));
    }
    if !segments.is_empty() && path.ends_with('/') {
        out.push('/');
    }
    Ok(())
}

pub(super) fn push_canonical_query(
    out: &mut String,
    query: Option<&str>,
    limits: &Limits,
) -> Result<(), SignatureError> {
    let Some(query) = query else { return Ok(()) };
    if query.len() > limits.max_query_len {
        return Err(SignatureError::TooLarge(Limit::Query));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        if pairs.len() == limits.max_query_params {
            return Err(SignatureError::TooLarge(Limit::QueryParameters));
        }
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        pairs.push((
            reencode_query_component(name)?,
            reencode_query_component(value)?,
        ));
    }
    pairs.sort_unstable();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    Ok(())
}

/// Percent-decodes (`+` is a space) and re-encodes with the strict RFC 3986 set.
pub(super) fn reencode_query_component(raw: &str) -> Result<String, SignatureError> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(SignatureError::MalformedQuery);
                };
                decoded.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            other => {
                decoded.push(other);
                i += 1;
            }
        }
    }
    Ok(percent_encode(&decoded, ENCODE_SET).collect())
}

/// Appends the canonical value of header `name`: all fields, trimmed, inner whitespace runs
/// collapsed, joined with `,`.
pub(super) fn push_header_value(
    out: &mut String,
    headers: &[(&str, &[u8])],
    name: &str,
    limits: &Limits,
) -> Result<(), SignatureError> {
    let mut found = false;
    for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
        if value.len() > limits.max_header_value_len {
            return Err(SignatureError::TooLarge(Limit::HeaderValue));
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| SignatureError::MalformedHeaderValue(name.to_owned()))?;
        if found {
            out.push(',');
        }
        found = true;
        push_collapsed(out, value);
    }
    if found {
        Ok(())
    } else {
        Err(SignatureError::SignedHeaderAbsent(name.to_owned()))
    }
}

pub(super) fn push_collapsed(out: &mut String, value: &str) {
    let words = value.split([' ', '\t', '\r', '\n', '\x0b', '\x0c']);
    for (i, word) in words.filter(|w| !w.is_empty()).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The canonical (trimmed, collapsed, joined) value of a header, if present and UTF-8.
pub(super) fn canonical_header_value(
    headers: &[(&str, &[u8])],
    name: &str,
    limits: &Limits,
) -> Result<Option<String>, SignatureError> {
    let mut value = String::new();
    match push_header_value(&mut value, headers, name, limits) {
        Ok(()) => Ok(Some(value)),
        Err(SignatureError::SignedHeaderAbsent(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

pub(super) fn push_joined(out: &mut String, items: &[String], sep: char) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push_str(item);
    }
}

pub(super) fn check_signed_header_list<'a>(
    names: impl Iterator<Item = &'a str>,
    limits: &Limits,
) -> Result<(), SignatureError> {
    let bad = SignatureError::MalformedAuthorization(AuthorizationFault::SignedHeaders);
    let mut previous: Option<&str> = None;
    let mut count = 0usize;
    for name in names {
        count += 1;
        if count > limits.max_signed_headers {
            return Err(SignatureError::TooLarge(Limit::SignedHeaders));
        }
        if name.len() > limits.max_header_name_len {
            return Err(SignatureError::TooLarge(Limit::HeaderName));
        }
        let lower_token =
            !name.is_empty() && name.bytes().all(|b| is_tchar(b) && !b.is_ascii_uppercase());
        if !lower_token || previous.is_some_and(|p| p >= name) {
            return Err(bad);
        }
        previous = Some(name);
    }
    if count == 0 {
        return Err(bad);
    }
    Ok(())
}
