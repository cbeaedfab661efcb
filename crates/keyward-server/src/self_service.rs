//! The operator's limits for keys that owners create through the self-service routes
//! (DESIGN.md §11): `--self-service-rate-limit`, `--self-service-credits` and
//! `--self-service-max-ttl`, their `KEYWARD_SELF_SERVICE_*` variables and `keyward.toml` keys.
//! Administrators are not bound by them, and owners cannot lift them afterwards.

use keyward_core::model::{Credits, RateLimit, SelfServiceDefaults};

use crate::duration::parse_duration;
use crate::error::AppError;

/// `REQUESTS/WINDOW`, e.g. `100/60s` or `1000/1h`.
///
/// # Errors
/// A human-readable reason.
pub(crate) fn parse_rate_limit(s: &str) -> Result<RateLimit, String> {
    let bad = || format!("expected REQUESTS/WINDOW, e.g. 100/60s (got {s:?})");
    let (n, window) = s.trim().split_once('/').ok_or_else(bad)?;
    let requests: u32 = n.trim().parse().map_err(|_| bad())?;
    let window = parse_duration(window)?;
    let window_seconds = u32::try_from(window.as_secs()).map_err(|_| bad())?;
    if requests == 0 || window_seconds == 0 {
        return Err("requests and window must both be at least 1".into());
    }
    Ok(RateLimit {
        requests,
        window_seconds,
    })
}

/// `LIMIT` (credits in total) or `LIMIT/REFILL`, e.g. `10000/30d`.
///
/// # Errors
/// A human-readable reason.
pub(crate) fn parse_credits(s: &str) -> Result<Credits, String> {
    let bad = || format!("expected CREDITS or CREDITS/REFILL, e.g. 10000/30d (got {s:?})");
    let (n, refill) = match s.trim().split_once('/') {
        Some((n, r)) => (n, Some(r)),
        None => (s.trim(), None),
    };
    let limit: u64 = n.trim().parse().map_err(|_| bad())?;
    let refill_seconds = match refill {
        Some(r) => {
            let d = parse_duration(r)?;
            if d.is_zero() {
                return Err("the refill period must be at least 1s".into());
            }
            Some(d.as_secs())
        }
        None => None,
    };
    Ok(Credits {
        limit,
        refill_seconds,
    })
}

/// The defaults from flags (or variables) first, then the file.
///
/// # Errors
/// A value that does not parse, named with its flag.
pub(crate) fn resolve(
    rate_limit: Option<&str>,
    credits: Option<&str>,
    max_ttl: Option<&str>,
) -> Result<SelfServiceDefaults, AppError> {
    let invalid = |flag: &str, v: &str, e: String| {
        AppError::config(format!("invalid --self-service-{flag} {v:?}: {e}"))
    };
    let rate_limit = rate_limit
        .map(|v| parse_rate_limit(v).map_err(|e| invalid("rate-limit", v, e)))
        .transpose()?;
    let credits = credits
        .map(|v| parse_credits(v).map_err(|e| invalid("credits", v, e)))
        .transpose()?;
    let max_ttl = match max_ttl {
        None => None,
        Some(v) => {
            let d = parse_duration(v).map_err(|e| invalid("max-ttl", v, e))?;
            if d.is_zero() {
                return Err(invalid("max-ttl", v, "must be more than 0s".into()));
            }
            Some(
                time::Duration::try_from(d)
                    .map_err(|_| invalid("max-ttl", v, "too long".into()))?,
            )
        }
    };
    Ok(SelfServiceDefaults {
        rate_limit,
        credits,
        max_ttl,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rate_limits() {
        assert_eq!(
            parse_rate_limit("100/60s").unwrap(),
            RateLimit {
                requests: 100,
                window_seconds: 60
            }
        );
        assert_eq!(parse_rate_limit(" 5 / 1h ").unwrap().window_seconds, 3600);
        for bad in ["100", "0/1s", "5/0s", "x/1s", "5/xs", "/1s", "5/"] {
            assert!(parse_rate_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credits() {
        assert_eq!(
            parse_credits("500").unwrap(),
            Credits {
                limit: 500,
                refill_seconds: None
            }
        );
        assert_eq!(
            parse_credits("10000/30d").unwrap().refill_seconds,
            Some(2_592_000)
        );
        for bad in ["", "x", "5/0s", "5/x", "-1"] {
            assert!(parse_credits(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_and_names_the_flag() {
        let d = resolve(Some("10/1m"), Some("100"), Some("30d")).unwrap();
        assert_eq!(d.rate_limit.unwrap().requests, 10);
        assert_eq!(d.credits.unwrap().limit, 100);
        assert_eq!(d.max_ttl.unwrap().whole_days(), 30);
        assert_eq!(
            resolve(None, None, None).unwrap(),
            SelfServiceDefaults::default()
        );
        let e = resolve(None, None, Some("0s")).unwrap_err().to_string();
        assert!(e.contains("--self-service-max-ttl"), "{e}");
    }
}
