//! Terminal output shared by the commands: stdout that tolerates a closed pipe, aligned tables,
//! times, and key ids as an operator types them.

use std::io::Write as _;

use keyward_core::KeyId;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::error::AppError;

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
pub(crate) fn out(text: &str) -> Result<(), AppError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError::Io(format!("cannot write output: {e}"))),
    }
}

/// Parses a key id, also from the display form `kw_live_<id>…`. Never echoes the input (it
/// might be a whole raw key).
///
/// # Errors
/// Anything that holds no key id.
pub(crate) fn parse_key_id(s: &str) -> Result<KeyId, AppError> {
    let s = s.trim().trim_end_matches('…');
    if let Ok(id) = s.parse::<KeyId>() {
        return Ok(id);
    }
    s.split('_')
        .nth(2)
        .and_then(|p| p.parse::<KeyId>().ok())
        .ok_or_else(|| AppError::config("not a key id: expected the 12 characters after `kw_live_` (see `keyward keys list`)"))
}

/// `2026-01-31 12:00:00Z`, or `-`.
pub(crate) fn time(t: Option<OffsetDateTime>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| {
            let utc = keyward_core::clock::utc(t);
            utc.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .unwrap_or_else(|_| utc.to_string())
        },
    )
}

/// An aligned table with a header row; cells are padded by characters, control characters
/// replaced so that a name cannot break the layout.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i < last {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(c.chars().count())
                    + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push('\n');
        s
    };
    let mut s = line(header.to_vec());
    for r in &rows {
        s.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    s
}
