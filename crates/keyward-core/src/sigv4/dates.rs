//! `X-Amz-Date` and `Date` headers: parsing and formatting.

use super::*;

/// Parses the SigV4 basic ISO 8601 timestamp `YYYYMMDD'T'HHMMSS'Z'` (e.g. `20150830T123600Z`).
///
/// # Errors
///
/// [`SignatureError::MalformedDate`] for anything else, including impossible dates and leap
/// seconds.
pub fn parse_amz_date(value: &[u8]) -> Result<OffsetDateTime, SignatureError> {
    let bad = SignatureError::MalformedDate;
    let [
        y0,
        y1,
        y2,
        y3,
        mo0,
        mo1,
        d0,
        d1,
        b'T',
        h0,
        h1,
        mi0,
        mi1,
        s0,
        s1,
        b'Z',
    ] = *value
    else {
        return Err(bad);
    };
    let year = digits(&[y0, y1, y2, y3]).ok_or(bad.clone())?;
    let month = digits(&[mo0, mo1]).ok_or(bad.clone())?;
    let day = digits(&[d0, d1]).ok_or(bad.clone())?;
    let hour = digits(&[h0, h1]).ok_or(bad.clone())?;
    let minute = digits(&[mi0, mi1]).ok_or(bad.clone())?;
    let second = digits(&[s0, s1]).ok_or(bad.clone())?;
    utc(year, month, day, hour, minute, second).ok_or(bad)
}

/// Formats `timestamp` (truncated to the second) as `YYYYMMDD'T'HHMMSS'Z'`.
///
/// # Errors
///
/// [`SignatureError::TimestampOutOfRange`] when the year is outside 0..=9999.
pub fn format_amz_date(timestamp: OffsetDateTime) -> Result<String, SignatureError> {
    let timestamp = timestamp
        .checked_to_offset(UtcOffset::UTC)
        .ok_or(SignatureError::TimestampOutOfRange)?;
    let year = timestamp.year();
    if !(0..=9999).contains(&year) {
        return Err(SignatureError::TimestampOutOfRange);
    }
    Ok(format!(
        "{year:04}{:02}{:02}T{:02}{:02}{:02}Z",
        u8::from(timestamp.month()),
        timestamp.day(),
        timestamp.hour(),
        timestamp.minute(),
        timestamp.second()
    ))
}

/// Parses a `date` header: the SigV4 basic format, or an RFC 9110 IMF-fixdate
/// (`Sun, 30 Aug 2015 12:36:00 GMT`).
pub(super) fn parse_date_header(value: &[u8]) -> Result<OffsetDateTime, SignatureError> {
    if value.len() == 16 {
        return parse_amz_date(value);
    }
    let bad = SignatureError::MalformedDate;
    let [
        w0,
        w1,
        w2,
        b',',
        b' ',
        d0,
        d1,
        b' ',
        m0,
        m1,
        m2,
        b' ',
        y0,
        y1,
        y2,
        y3,
        b' ',
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
        b' ',
        b'G',
        b'M',
        b'T',
    ] = *value
    else {
        return Err(bad);
    };
    const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let weekday = WEEKDAYS
        .iter()
        .position(|w| **w == [w0, w1, w2])
        .ok_or(bad.clone())?;
    let month = MONTHS
        .iter()
        .position(|m| **m == [m0, m1, m2])
        .ok_or(bad.clone())?;
    let month = u32::try_from(month + 1).map_err(|_| bad.clone())?;
    let day = digits(&[d0, d1]).ok_or(bad.clone())?;
    let year = digits(&[y0, y1, y2, y3]).ok_or(bad.clone())?;
    let hour = digits(&[h0, h1]).ok_or(bad.clone())?;
    let minute = digits(&[mi0, mi1]).ok_or(bad.clone())?;
    let second = digits(&[s0, s1]).ok_or(bad.clone())?;
    let time = utc(year, month, day, hour, minute, second).ok_or(bad.clone())?;
    if usize::from(time.weekday().number_days_from_monday()) != weekday {
        return Err(bad);
    }
    Ok(time)
}

pub(super) fn utc(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<OffsetDateTime> {
    let date = calendar_date(year, month, day)?;
    let time = Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

fn calendar_date(year: u32, month: u32, day: u32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
}

pub(super) fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

pub(super) fn is_scope_date(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 8
        && matches!(
            (digits(bytes.get(0..4).unwrap_or_default()), digits(bytes.get(4..6).unwrap_or_default()), digits(bytes.get(6..8).unwrap_or_default())),
            (Some(y), Some(m), Some(d)) if calendar_date(y, m, d).is_some()
        )
}
