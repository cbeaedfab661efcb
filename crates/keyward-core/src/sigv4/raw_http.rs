//! Raw HTTP/1.1 requests in the `.req` format of the AWS test suite, for the tests and `keyward sign`.

use super::*;

/// A raw HTTP/1.1 request, as parsed by [`parse_http_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHttpRequest {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) version: String,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Vec<u8>,
}

impl ParsedHttpRequest {
    /// The method.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The raw path (before `?`).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string (after `?`), if the target has a `?`.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The protocol version, e.g. `HTTP/1.1`.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The headers in order, names as written, values trimmed, folded lines joined by a space.
    #[must_use]
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The body: every byte after the blank line that ends the headers.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The headers as borrowed pairs, for [`SignableRequest::new`].
    #[must_use]
    pub fn header_pairs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }

    /// The request written back, with `set` headers replacing fields of the same name in place
    /// (only the first of several) or appended in order, for `keyward sign`. Lines end in
    /// CRLF; a blank line and the body follow the headers.
    #[must_use]
    pub fn to_bytes_with(&self, set: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.path.as_bytes());
        if let Some(query) = &self.query {
            out.push(b'?');
            out.extend_from_slice(query.as_bytes());
        }
        out.push(b' ');
        out.extend_from_slice(self.version.as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut done = vec![false; set.len()];
        for (name, value) in &self.headers {
            let replacement = set.iter().position(|(n, _)| n.eq_ignore_ascii_case(name));
            match replacement {
                Some(i) if done.get(i).copied().unwrap_or(true) => continue,
                Some(i) => {
                    if let (Some(flag), Some((n, v))) = (done.get_mut(i), set.get(i)) {
                        *flag = true;
                        push_header_line(&mut out, n, v.as_bytes());
                    }
                }
                None => push_header_line(&mut out, name, value),
            }
        }
        for ((name, value), done) in set.iter().zip(&done) {
            if !done {
                push_header_line(&mut out, name, value.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

pub(super) fn push_header_line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Parses a raw HTTP/1.1 request: request line, header lines, a blank line, then the body
/// (the `.req` format of the AWS SigV4 test suite, and the input of `keyward sign`).
///
/// Lines end in LF or CRLF. The request target may contain spaces (the method ends at the first
/// space, the version starts after the last) and must be in origin form. A line starting with a
/// space or tab continues the previous header (obsolete folding; the fold becomes one space).
/// Header values are trimmed. The end of input may also end the headers. The body is taken
/// verbatim: no `Content-Length` or chunked decoding.
///
/// # Errors
///
/// [`SignatureError::TooLarge`] past [`MAX_HTTP_REQUEST_LEN`] or the default [`Limits`] on
/// header count, name and value length; [`SignatureError::MalformedHttpRequest`],
/// [`SignatureError::MalformedMethod`] or [`SignatureError::MalformedHeaderName`] for malformed
/// input.
pub fn parse_http_request(input: &[u8]) -> Result<ParsedHttpRequest, SignatureError> {
    use HttpRequestFault as F;
    let malformed = SignatureError::MalformedHttpRequest;
    let limits = Limits::default();
    if input.len() > MAX_HTTP_REQUEST_LEN {
        return Err(SignatureError::TooLarge(Limit::HttpRequest));
    }
    let mut rest = input;
    let mut next_line = || -> Option<&[u8]> {
        if rest.is_empty() {
            return None;
        }
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i + 1..).unwrap_or_default(),
            ),
            None => (rest, &[][..]),
        };
        rest = tail;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    };

    let request_line = next_line().ok_or(malformed(F::RequestLine))?;
    let request_line = std::str::from_utf8(request_line).map_err(|_| malformed(F::NotUtf8))?;
    let (method, rest_of_line) = request_line
        .split_once(' ')
        .ok_or(malformed(F::RequestLine))?;
    let (target, version) = rest_of_line
        .rsplit_once(' ')
        .ok_or(malformed(F::RequestLine))?;
    check_method(method)?;
    let version_ok = version
        .strip_prefix("HTTP/")
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    if !version_ok {
        return Err(malformed(F::Version));
    }
    if !target.starts_with('/') {
        return Err(malformed(F::Target));
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };

    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(line) = next_line() {
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            let (_, value) = headers.last_mut().ok_or(malformed(F::HeaderLine))?;
            value.push(b' ');
            value.extend_from_slice(trim_ows(line));
            if value.len() > limits.max_header_value_len {
                return Err(SignatureError::TooLarge(Limit::HeaderValue));
            }
            continue;
        }
        if headers.len() == limits.max_headers {
            return Err(SignatureError::TooLarge(Limit::Headers));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(malformed(F::HeaderLine))?;
        let name = line.get(..colon).unwrap_or_default();
        let value = trim_ows(line.get(colon + 1..).unwrap_or_default());
        if name.len() > limits.max_header_name_len {
            return Err(SignatureError::TooLarge(Limit::HeaderName));
        }
        if value.len() > limits.max_header_value_len {
            return Err(SignatureError::TooLarge(Limit::HeaderValue));
        }
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return Err(SignatureError::MalformedHeaderName);
        }
        let name = std::str::from_utf8(name).map_err(|_| SignatureError::MalformedHeaderName)?;
        headers.push((name.to_owned(), value.to_vec()));
    }
    let body = rest.to_vec();

    Ok(ParsedHttpRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        version: version.to_owned(),
        headers,
        body,
    })
}
