//! Durations as flags, environment variables and `keyward.toml` give them, for every module
//! that reads one (configuration, the abuse limits, the CLI).

use std::time::Duration;

/// A duration like `90s`, `30m`, `12h`, `365d`, `2w` or a sum `1h30m` (humantime's syntax, whole
/// seconds). A bare number is seconds.
///
/// # Errors
/// A human-readable reason.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let d = humantime::parse_duration(s).map_err(|e| {
        format!("expected a duration like 30s, 15m, 12h, 365d or 1h30m ({e}: {s:?})")
    })?;
    if d.subsec_nanos() != 0 {
        return Err(format!("durations are whole seconds (got {s:?})"));
    }
    if d > Duration::from_secs(100 * 365 * 86_400) {
        return Err("duration too long (at most 100 years)".into());
    }
    Ok(d)
}

/// A short duration that may have a fraction of a second (`100ms`, `1s`, `0s`), at most
/// `max`.
///
/// # Errors
/// A human-readable reason.
pub(crate) fn parse_short_duration(s: &str, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("expected a duration like 100ms, 1s or 0s ({e}: {s:?})"))?;
    if d > max {
        return Err(format!("at most {}", humantime::format_duration(max)));
    }
    Ok(d)
}
