//! Checking a request's fields before any store call: text lengths, scopes, addresses,
//! expiry, limits and metadata. Every problem is collected, not just the first.

use time::OffsetDateTime;

use crate::Keyward;
use crate::model::{Credits, IpNet, Metadata, RateLimit};
use crate::scope::{ScopeError, ScopeSet};

use super::*;

pub(super) fn check_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    v: &str,
    max: usize,
    required: bool,
) {
    if required && v.trim().is_empty() {
        errors.push(FieldError::new(field, "required", "must not be empty"));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("at most {max} characters"),
        ));
    } else if v.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "invalid",
            "must not contain control characters",
        ));
    }
}

impl Keyward {
    pub(super) fn validate_scopes(
        &self,
        errors: &mut Vec<FieldError>,
        scopes: &[String],
    ) -> ScopeSet {
        let policy = &self.policy();
        if scopes.len() > policy.max_scopes {
            errors.push(FieldError::new(
                "scopes",
                "too_many",
                format!("at most {} scopes", policy.max_scopes),
            ));
            return ScopeSet::new();
        }
        match ScopeSet::parse(scopes) {
            Ok(set) if set.iter().any(|s| s.is_reserved() && s.is_wildcard()) => {
                errors.push(FieldError::new(
                    "scopes",
                    "reserved_wildcard",
                    "scopes under `keyward:` are granted by exact name only",
                ));
                ScopeSet::new()
            }
            // Reserved scopes are keyward's own, outside the application's catalog; who may
            // grant them is the actor rules' business (`authz`).
            Ok(set) => match policy.catalog.admit(&ScopeSet::from_scopes(
                set.iter().filter(|s| !s.is_reserved()).cloned().collect(),
            )) {
                Ok(()) => set,
                Err(e) => {
                    errors.push(FieldError::new("scopes", "not_in_catalog", e.to_string()));
                    ScopeSet::new()
                }
            },
            Err(e) => {
                let code = match e {
                    ScopeError::TooLong => "too_long",
                    _ => "invalid",
                };
                errors.push(FieldError::new("scopes", code, e.to_string()));
                ScopeSet::new()
            }
        }
    }

    pub(super) fn validate_ips(&self, errors: &mut Vec<FieldError>, ips: &[String]) -> Vec<IpNet> {
        if ips.len() > self.policy().max_ip_entries {
            errors.push(FieldError::new(
                "ip_allowlist",
                "too_many",
                format!("at most {} entries", self.policy().max_ip_entries),
            ));
            return Vec::new();
        }
        let mut out = Vec::with_capacity(ips.len());
        for ip in ips {
            match ip.parse() {
                Ok(net) => out.push(net),
                Err(e) => errors.push(FieldError::new("ip_allowlist", "invalid", format!("{e}"))),
            }
        }
        out
    }

    pub(super) fn validate_expiry(
        &self,
        errors: &mut Vec<FieldError>,
        field: &str,
        expires_at: Option<OffsetDateTime>,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
    ) {
        if let Some(e) = expires_at
            && e <= now
        {
            errors.push(FieldError::new(field, "in_past", "must be in the future"));
            return;
        }
        if let Some(max) = self.policy().max_ttl {
            let limit = created_at.checked_add(max).unwrap_or(crate::clock::LATEST);
            if expires_at.is_none_or(|e| e > limit) {
                errors.push(FieldError::new(
                    field,
                    "too_far",
                    format!("keys may live at most {} seconds", max.whole_seconds()),
                ));
            }
        }
    }

    pub(super) fn validate_limits(
        &self,
        errors: &mut Vec<FieldError>,
        rate: Option<&RateLimit>,
        credits: Option<&Credits>,
    ) {
        if rate.is_some_and(|r| r.requests == 0 || r.window_seconds == 0) {
            errors.push(FieldError::new(
                "rate_limit",
                "invalid",
                "requests and window_seconds must be at least 1",
            ));
        }
        if credits.is_some_and(|c| c.refill_seconds == Some(0)) {
            errors.push(FieldError::new(
                "credits",
                "invalid",
                "refill_seconds must be at least 1",
            ));
        }
        // SQL stores keep them as signed 64-bit integers.
        let too_big = |v: u64| i64::try_from(v).is_err();
        if credits.is_some_and(|c| too_big(c.limit) || c.refill_seconds.is_some_and(too_big)) {
            errors.push(FieldError::new(
                "credits",
                "out_of_range",
                "limit and refill_seconds must be at most 9223372036854775807",
            ));
        }
    }

    pub(super) fn validate_metadata(&self, errors: &mut Vec<FieldError>, m: &Metadata) {
        let size = serde_json::to_vec(m).map_or(usize::MAX, |v| v.len());
        if size > self.policy().max_metadata_bytes {
            errors.push(FieldError::new(
                "metadata",
                "too_large",
                format!("at most {} bytes of JSON", self.policy().max_metadata_bytes),
            ));
        }
    }
}
