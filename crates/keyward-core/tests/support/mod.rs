//! Reads the raw requests the SigV4 fixtures hold (`.req` of the AWS suite, `.sreq` of
//! botocore): a request line, headers (a line starting with a space or tab continues the one
//! before, joined by a space), a blank line, the body.
//!
//! A reader for fixtures checked in here, which fails loudly on anything else; the parser for
//! input, with its limits and errors, is `keyward sign`'s (keyward-server `sign/req.rs`).

// Test support: failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    dead_code
)]

/// One fixture request.
pub(crate) struct Fixture {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Fixture {
    /// Reads `raw`, or says which line is not what a fixture holds.
    pub(crate) fn read(raw: &[u8]) -> Result<Self, String> {
        // The head is text; the body is whatever follows the first empty line.
        let mut lines = Vec::new();
        let mut rest = raw;
        loop {
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                lines.push(rest);
                rest = &[];
                break;
            };
            let line = &rest[..end];
            rest = &rest[end + 1..];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string());
        let request_line = text(lines.first().ok_or("no request line")?)?;
        let (method, rest_of_line) = request_line.split_once(' ').ok_or("no target")?;
        let (target, _version) = rest_of_line.rsplit_once(' ').ok_or("no version")?;
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        for line in lines.iter().skip(1).filter(|l| !l.is_empty()) {
            if matches!(line.first(), Some(b' ' | b'\t')) {
                let (_, value) = headers.last_mut().ok_or("a fold before any header")?;
                value.push(b' ');
                value.extend_from_slice(line.trim_ascii());
            } else {
                let colon = line.iter().position(|&b| b == b':').ok_or("no colon")?;
                headers.push((
                    text(&line[..colon])?,
                    line[colon + 1..].trim_ascii().to_vec(),
                ));
            }
        }
        Ok(Self {
            method: method.to_owned(),
            path,
            query,
            headers,
            body: rest.to_vec(),
        })
    }

    pub(crate) fn method(&self) -> &str {
        &self.method
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn header_pairs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }
}
