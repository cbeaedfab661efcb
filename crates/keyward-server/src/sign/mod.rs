//! `keyward sign`: SigV4-signs a raw HTTP/1.1 request read on stdin (the `.req` format of the
//! AWS SigV4 test suite: request line, headers, a blank line, the body).
//!
//! Prints the canonical request (`--canonical`), the string to sign (`--string-to-sign`), or
//! the request with `Authorization` and `X-Amz-Date` set (CRLF line ends, ready to send). Every
//! header of the input is signed. Canonical request and string to sign are printed byte for
//! byte, with a final newline only on a terminal, so that they can be compared with a file.

use std::io::{IsTerminal as _, Read as _};

use keyward_core::key::ParsedKey;
use keyward_core::sigv4::SigningOptions;
use keyward_core::sigv4::{AccessKey, Payload, SignableRequest, Signer, parse_amz_date};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::SignArgs;
use crate::error::AppError;
use crate::term::out;

mod req;

/// Runs `keyward sign`.
///
/// # Errors
/// Unreadable or malformed input, a `--key` that is not a keyward key, a bad date, region or
/// service, or a request SigV4 cannot sign (no `Host`, …).
pub(crate) fn run(args: &SignArgs) -> Result<(), AppError> {
    if std::io::stdin().is_terminal() {
        eprintln!(
            "keyward sign: reading a raw HTTP/1.1 request from stdin (request line, headers, a blank line, the body; end with Ctrl-D)"
        );
    }
    let mut input = Vec::new();
    let limit = u64::try_from(req::MAX_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    std::io::stdin()
        .lock()
        .take(limit)
        .read_to_end(&mut input)
        .map_err(|e| AppError::Io(format!("cannot read the request from stdin: {e}")))?;
    if input.is_empty() {
        return Err(AppError::config(
            "no request on stdin: pipe in a raw HTTP/1.1 request (request line, headers, blank line, body)",
        ));
    }
    let output = sign_bytes(args, &input, OffsetDateTime::now_utc())?;
    out(&output)
}

/// Signs `input` as `args` say, `now` being the default signing time; returns what to print.
fn sign_bytes(args: &SignArgs, input: &[u8], now: OffsetDateTime) -> Result<String, AppError> {
    let parsed = req::parse(input)
        .map_err(|e| AppError::config(format!("cannot parse the request on stdin: {e}")))?;
    let (access_key_id, secret) = match (&args.key, &args.access_key_id, &args.secret) {
        (Some(key), _, _) => {
            let raw = key.expose().trim();
            let parsed_key = ParsedKey::parse(raw).map_err(|_| {
                AppError::config(
                    "--key is not a keyward key (use --access-key-id and --secret for other SigV4 credentials)",
                )
            })?;
            (parsed_key.key_id.as_str().to_owned(), raw)
        }
        (None, Some(id), Some(secret)) => (id.trim().to_owned(), secret.expose()),
        _ => {
            return Err(AppError::config(
                "give --key, or --access-key-id with --secret",
            ));
        }
    };
    let mut credentials = AccessKey::new(&access_key_id, secret.as_bytes())
        .map_err(|e| AppError::config(format!("invalid credentials: {e}")))?;
    if let Some(token) = &args.session_token {
        credentials = credentials
            .with_session_token(token)
            .map_err(|e| AppError::config(format!("invalid --session-token: {e}")))?;
    }
    let date = match &args.date {
        None => now,
        Some(d) => parse_date(d)?,
    };
    let defaults = SigningOptions::default();
    let region = args.region.as_deref().unwrap_or(&defaults.region);
    let service = args.service.as_deref().unwrap_or(&defaults.service);
    let signer = Signer::new(region, service).map_err(|e| {
        AppError::config(format!(
            "invalid --region {region:?} or --service {service:?}: {e}"
        ))
    })?;
    let headers = parsed.header_pairs();
    let request = SignableRequest::new(
        &parsed.method,
        &parsed.path,
        parsed.query.as_deref(),
        &headers,
        Payload::Bytes(&parsed.body),
    );
    let signed = signer
        .sign(&credentials, &request, date)
        .map_err(|e| AppError::config(format!("cannot sign the request: {e}")))?;
    let terminal = std::io::stdout().is_terminal();
    let exact = |s: &str| {
        let mut s = s.to_owned();
        if terminal {
            s.push('\n');
        }
        s
    };
    if args.canonical {
        return Ok(exact(signed.canonical_request()));
    }
    if args.string_to_sign {
        return Ok(exact(signed.string_to_sign()));
    }
    let mut set: Vec<(&str, &str)> = signed.headers();
    // A body needs a length on the wire; added after signing, so not signed.
    let length = parsed.body.len().to_string();
    let has_framing = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    });
    if !parsed.body.is_empty() && !has_framing {
        set.push(("Content-Length", &length));
    }
    let bytes = parsed.to_bytes_with(&set);
    String::from_utf8(bytes).map_err(|_| {
        AppError::config("the request is not UTF-8 text; `keyward sign` prints text requests only")
    })
}

/// `YYYYMMDDTHHMMSSZ` or RFC 3339.
fn parse_date(s: &str) -> Result<OffsetDateTime, AppError> {
    let s = s.trim();
    parse_amz_date(s.as_bytes())
        .ok()
        .or_else(|| OffsetDateTime::parse(s, &Rfc3339).ok())
        .ok_or_else(|| {
            AppError::config(format!(
                "invalid --date {s:?}: use YYYYMMDDTHHMMSSZ (20150830T123600Z) or RFC 3339"
            ))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args() -> SignArgs {
        SignArgs {
            key: None,
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret: Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".parse().unwrap()),
            session_token: None,
            date: Some("20150830T123600Z".into()),
            region: Some("us-east-1".into()),
            service: Some("service".into()),
            canonical: false,
            string_to_sign: false,
        }
    }

    #[test]
    fn signs_and_frames_a_body() {
        let out = sign_bytes(
            &args(),
            b"POST /x HTTP/1.1\nHost: example.com\n\nabc",
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert!(out.starts_with("POST /x HTTP/1.1\r\nHost: example.com\r\n"));
        assert!(out.contains("X-Amz-Date: 20150830T123600Z\r\n"));
        assert!(out.contains("Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="));
        assert!(out.ends_with("Content-Length: 3\r\n\r\nabc"));
    }

    #[test]
    fn refusals() {
        let mut a = args();
        a.date = Some("yesterday".into());
        let e = sign_bytes(
            &a,
            b"GET / HTTP/1.1\nHost: h\n\n",
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--date"), "{e}");
        let e = sign_bytes(
            &args(),
            b"GET / HTTP/1.1\nX: y\n\n",
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot sign"), "{e}");
        let mut a = args();
        a.access_key_id = None;
        a.secret = None;
        a.key = Some("kw_live_notakey".parse().unwrap());
        let e = sign_bytes(
            &a,
            b"GET / HTTP/1.1\nHost: h\n\n",
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("notakey"), "{e}");
    }
}
