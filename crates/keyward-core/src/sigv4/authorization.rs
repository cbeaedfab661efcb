//! The `Authorization: AWS4-HMAC-SHA256 …` header, parsed and printed.

use super::*;

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
///
/// Components may come in any order, separated by `,` with optional spaces or tabs; each must
/// appear exactly once. `Display` writes the canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub(super) access_key_id: String,
    pub(super) scope_date: String,
    pub(super) region: String,
    pub(super) service: String,
    pub(super) signed_headers: Vec<String>,
    pub(super) signature: [u8; 32],
}

impl Authorization {
    /// Whether `value` announces the SigV4 scheme (starts with `AWS4-HMAC-SHA256` and a space),
    /// so that an adapter can tell it from `Bearer`.
    #[must_use]
    pub fn is_sigv4(value: &[u8]) -> bool {
        value
            .strip_prefix(ALGORITHM.as_bytes())
            .is_some_and(|rest| matches!(rest.first(), Some(b' ' | b'\t')))
    }

    /// Parses a header value with the default [`Limits`].
    ///
    /// # Errors
    ///
    /// As [`Authorization::parse_with_limits`].
    pub fn parse(value: &[u8]) -> Result<Self, SignatureError> {
        Self::parse_with_limits(value, &Limits::default())
    }

    /// Parses a header value. Total: any bytes give a value or a typed error, in linear time.
    ///
    /// # Errors
    ///
    /// [`SignatureError::TooLarge`] past [`Limits::max_authorization_len`] or
    /// [`Limits::max_signed_headers`]; [`SignatureError::UnsupportedAlgorithm`] for another
    /// scheme; [`SignatureError::MalformedAuthorization`] for anything malformed.
    pub fn parse_with_limits(value: &[u8], limits: &Limits) -> Result<Self, SignatureError> {
        use AuthorizationFault as F;
        let malformed = SignatureError::MalformedAuthorization;
        if value.len() > limits.max_authorization_len {
            return Err(SignatureError::TooLarge(Limit::Authorization));
        }
        let value = std::str::from_utf8(value).map_err(|_| malformed(F::Syntax))?;
        if !value
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
        {
            return Err(malformed(F::Syntax));
        }
        let value = value.trim_matches(is_ows);
        let (algorithm, rest) = value.split_once(is_ows).unwrap_or((value, ""));
        if algorithm != ALGORITHM {
            return Err(SignatureError::UnsupportedAlgorithm);
        }

        let (mut credential, mut signed, mut signature) = (None, None, None);
        for component in rest.split(',') {
            let component = component.trim_matches(is_ows);
            let (name, val) = component.split_once('=').ok_or(malformed(F::Syntax))?;
            let slot = match name {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ if name.is_empty() => return Err(malformed(F::Syntax)),
                _ => return Err(malformed(F::UnknownComponent)),
            };
            if slot.replace(val).is_some() {
                return Err(malformed(F::DuplicateComponent));
            }
        }
        let credential = credential.ok_or(malformed(F::MissingCredential))?;
        let signed = signed.ok_or(malformed(F::MissingSignedHeaders))?;
        let signature = signature.ok_or(malformed(F::MissingSignature))?;

        let mut parts = credential.split('/');
        let (Some(akid), Some(date), Some(region), Some(service), Some(terminator), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed(F::Credential));
        };
        if !is_access_key_id(akid)
            || !is_scope_date(date)
            || !is_scope_name(region)
            || !is_scope_name(service)
            || terminator != SCOPE_TERMINATOR
        {
            return Err(malformed(F::Credential));
        }

        check_signed_header_list(signed.split(';'), limits)?;
        let signature = decode_hex32(signature).ok_or(malformed(F::Signature))?;

        Ok(Self {
            access_key_id: akid.to_owned(),
            scope_date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers: signed.split(';').map(str::to_owned).collect(),
            signature,
        })
    }

    /// The access key id: for keyward, the `key_id` to look the secret up by.
    #[must_use]
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The scope date, `YYYYMMDD`.
    #[must_use]
    pub fn scope_date(&self) -> &str {
        &self.scope_date
    }

    /// The scope region.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The scope service.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The signed header names, lower-case and strictly ascending.
    #[must_use]
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// The raw signature.
    #[must_use]
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }

    pub(super) fn is_signed(&self, name: &str) -> bool {
        self.signed_headers
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }
}

impl FromStr for Authorization {
    type Err = SignatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ALGORITHM} Credential={}/{}/{}/{}/{SCOPE_TERMINATOR}, SignedHeaders={}, Signature={}",
            self.access_key_id,
            self.scope_date,
            self.region,
            self.service,
            self.signed_headers.join(";"),
            hex_lower(&self.signature)
        )
    }
}
