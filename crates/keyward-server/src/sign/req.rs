//! Raw HTTP/1.1 requests in the `.req` format of the AWS SigV4 test suite: what `keyward sign`
//! reads on stdin, and what it writes back signed.
//!
//! Hand-written, not `httparse`: `keyward sign` reproduces the AWS suite byte for byte
//! (`tests/sign.rs`), and httparse 1.10 refuses 2 of its 34 requests: `get-space` (a raw space
//! in the request target) and `get-header-value-multiline` (a folded header line). Measured
//! with a one-off program that handed every `.req` of the suite, with CRLF line ends, to
//! `httparse::Request::parse`.

use keyward_core::sigv4::Limits;

/// Largest raw request read (16 MiB).
pub(crate) const MAX_LEN: usize = 16 * 1024 * 1024;

/// Why a raw request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReqError {
    /// Longer than [`MAX_LEN`].
    #[error("the request is longer than 16 MiB")]
    TooLong,
    /// More header lines, or a longer name or value, than SigV4 verification accepts.
    #[error("too large: {0}")]
    TooLarge(&'static str),
    /// No `METHOD SP target SP HTTP/x.y` line.
    #[error("malformed request line (want `METHOD /path HTTP/1.1`)")]
    RequestLine,
    /// The request line is not UTF-8.
    #[error("the request line is not UTF-8")]
    NotUtf8,
    /// The method is not an HTTP token.
    #[error("malformed method")]
    Method,
    /// The target is not in origin form.
    #[error("the request target does not start with `/`")]
    Target,
    /// The version is not `HTTP/` followed by digits and dots.
    #[error("malformed protocol version")]
    Version,
    /// A header line has no `:`, or a continuation line has no header to continue.
    #[error("malformed header line")]
    HeaderLine,
    /// A header name is not an HTTP token.
    #[error("malformed header name")]
    HeaderName,
}

/// A raw HTTP/1.1 request, as [`parse`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRequest {
    pub(crate) method: String,
    /// The path, before `?`.
    pub(crate) path: String,
    /// The query, after `?`, when the target has one.
    pub(crate) query: Option<String>,
    pub(crate) version: String,
    /// Names as written, values trimmed, folded lines joined by a space.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// Every byte after the blank line that ends the headers.
    pub(crate) body: Vec<u8>,
}

impl RawRequest {
    /// The headers as borrowed pairs, for `SignableRequest::new`.
    pub(crate) fn header_pairs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }

    /// The request written back, with `set` headers replacing fields of the same name in place
    /// (only the first of several) or appended in order. Lines end in CRLF; a blank line and
    /// the body follow the headers.
    pub(crate) fn to_bytes_with(&self, set: &[(&str, &str)]) -> Vec<u8> {
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
                        header_line(&mut out, n, v.as_bytes());
                    }
                }
                None => header_line(&mut out, name, value),
            }
        }
        for ((name, value), done) in set.iter().zip(&done) {
            if !done {
                header_line(&mut out, name, value.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

fn header_line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Parses a raw HTTP/1.1 request: request line, header lines, a blank line, then the body.
///
/// Lines end in LF or CRLF. The request target may contain spaces (the method ends at the first
/// space, the version starts after the last) and must be in origin form. A line starting with a
/// space or tab continues the previous header (obsolete folding; the fold becomes one space).
/// Header values are trimmed of ASCII whitespace (which SigV4's canonical form drops anyway). The end of input may also end the headers. The body is taken
/// verbatim: no `Content-Length` or chunked decoding. Header counts and lengths are held to
/// SigV4 verification's default [`Limits`], which a request signed here must pass.
pub(crate) fn parse(input: &[u8]) -> Result<RawRequest, ReqError> {
    if input.len() > MAX_LEN {
        return Err(ReqError::TooLong);
    }
    let limits = Limits::default();
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

    let request_line = next_line().ok_or(ReqError::RequestLine)?;
    let request_line = std::str::from_utf8(request_line).map_err(|_| ReqError::NotUtf8)?;
    let (method, rest_of_line) = request_line.split_once(' ').ok_or(ReqError::RequestLine)?;
    let (target, version) = rest_of_line.rsplit_once(' ').ok_or(ReqError::RequestLine)?;
    axum::http::Method::from_bytes(method.as_bytes()).map_err(|_| ReqError::Method)?;
    let version_ok = version
        .strip_prefix("HTTP/")
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    if !version_ok {
        return Err(ReqError::Version);
    }
    if !target.starts_with('/') {
        return Err(ReqError::Target);
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
            let (_, value) = headers.last_mut().ok_or(ReqError::HeaderLine)?;
            value.push(b' ');
            value.extend_from_slice(line.trim_ascii());
            if value.len() > limits.max_header_value_len {
                return Err(ReqError::TooLarge("header value"));
            }
            continue;
        }
        if headers.len() == limits.max_headers {
            return Err(ReqError::TooLarge("header count"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ReqError::HeaderLine)?;
        let name = line.get(..colon).unwrap_or_default();
        let value = line.get(colon + 1..).unwrap_or_default().trim_ascii();
        if name.len() > limits.max_header_name_len {
            return Err(ReqError::TooLarge("header name"));
        }
        if value.len() > limits.max_header_value_len {
            return Err(ReqError::TooLarge("header value"));
        }
        // A valid name is an HTTP token, which is ASCII.
        axum::http::HeaderName::from_bytes(name).map_err(|_| ReqError::HeaderName)?;
        let name = std::str::from_utf8(name).map_err(|_| ReqError::HeaderName)?;
        headers.push((name.to_owned(), value.to_vec()));
    }

    Ok(RawRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        version: version.to_owned(),
        headers,
        body: rest.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_writes_back_and_reparses() {
        let raw =
            b"POST /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nX-Folded: one\r\n  two\r\n\r\nbody\r\nmore";
        let p = parse(raw).unwrap();
        assert_eq!(
            (p.method.as_str(), p.path.as_str(), p.query.as_deref()),
            ("POST", "/a/b", Some("x=1&y"))
        );
        assert_eq!(p.version, "HTTP/1.1");
        assert_eq!(
            p.header_pairs(),
            vec![("Host", &b"h"[..]), ("X-Folded", &b"one two"[..])]
        );
        assert_eq!(p.body, b"body\r\nmore");

        let out = p.to_bytes_with(&[("Host", "h2"), ("Authorization", "AWS4-HMAC-SHA256 x")]);
        let again = parse(&out).unwrap();
        assert_eq!(
            again.header_pairs(),
            vec![
                ("Host", &b"h2"[..]),
                ("X-Folded", &b"one two"[..]),
                ("Authorization", &b"AWS4-HMAC-SHA256 x"[..])
            ]
        );
        assert_eq!(again.body, p.body);
        // A raw space in the target, as in the AWS suite's `get-space`.
        assert_eq!(parse(b"GET /a b/ HTTP/1.1\n").unwrap().path, "/a b/");
    }

    #[test]
    fn refusals() {
        let many: String = (0..200).map(|i| format!("h{i}: v\n")).collect();
        let long_value = format!("GET / HTTP/1.1\nx: {}\n", "v".repeat(20_000));
        for (input, expected) in [
            (&b""[..], ReqError::RequestLine),
            (b"GET /", ReqError::RequestLine),
            (b"GET / FTP/1", ReqError::Version),
            (b"GET x HTTP/1.1", ReqError::Target),
            (b"G(T / HTTP/1.1", ReqError::Method),
            (b"GET /\xff HTTP/1.1", ReqError::NotUtf8),
            (b"GET / HTTP/1.1\n folded", ReqError::HeaderLine),
            (b"GET / HTTP/1.1\nnocolon", ReqError::HeaderLine),
            (b"GET / HTTP/1.1\nBad Name: x", ReqError::HeaderName),
            (
                format!("GET / HTTP/1.1\n{many}").as_bytes(),
                ReqError::TooLarge("header count"),
            ),
            (long_value.as_bytes(), ReqError::TooLarge("header value")),
        ] {
            assert_eq!(
                parse(input),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(parse(&vec![b'a'; MAX_LEN + 1]), Err(ReqError::TooLong));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic sweep; the fuzz target covers sigv4's own parsers.
        // Mostly the bytes that matter to the parser.
        let alphabet = b"GET /?: \t\r\nHTTP/1.x\xff";
        let mut state = 0x2545_f491_u32;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    alphabet[state as usize % alphabet.len()]
                })
                .collect();
            let _ = parse(&bytes);
        }
    }
}
