//! Instants on the wire: RFC 3339, always written in UTC (`…Z`), read with any offset and
//! turned to UTC.
//!
//! `#[serde(with = "crate::rfc3339")]` for an `OffsetDateTime`, `crate::rfc3339::option` for an
//! `Option`, and `crate::rfc3339::double_option` for a PATCH field where `null` clears. Reading
//! never panics: an instant that cannot be written back in UTC (`9999-12-31T23:00:00-05:00`) is
//! an error, like any other malformed date.

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Writes `t` as RFC 3339 in UTC, the fraction in 0, 3, 6 or 9 digits
/// ([`crate::clock::utc_text`]).
pub(crate) fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let utc = crate::clock::utc(*t);
    if !(0..=9999).contains(&utc.year()) {
        return Err(S::Error::custom("instant outside the years 0000-9999"));
    }
    s.serialize_str(&crate::clock::utc_text(utc, "Z"))
}

/// Reads an RFC 3339 instant, in UTC.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).ok_or_else(|| {
        D::Error::custom("expected an RFC 3339 date-time, such as 2030-01-01T00:00:00Z")
    })
}

/// `text` as an RFC 3339 instant in UTC, or `None`; also `None` when the instant falls outside
/// the years 0000–9999 in UTC, which RFC 3339 cannot write back.
pub(crate) fn parse(text: &str) -> Option<OffsetDateTime> {
    let utc = OffsetDateTime::parse(text, &Rfc3339)
        .ok()?
        .checked_to_offset(UtcOffset::UTC)?;
    (0..=9999).contains(&utc.year()).then_some(utc)
}

/// One instant, for the `Option` forms below.
struct Wire(OffsetDateTime);

impl Serialize for Wire {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Wire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(Self)
    }
}

/// `Option<OffsetDateTime>`: `null` is `None`.
pub(crate) mod option {
    use super::{Deserialize, Deserializer, OffsetDateTime, Serializer, Wire};

    /// Writes `null` or the instant.
    #[allow(clippy::ref_option)] // serde's `with` passes `&Option<T>`
    pub(crate) fn serialize<S: Serializer>(
        t: &Option<OffsetDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&Wire(*t)),
            None => s.serialize_none(),
        }
    }

    /// Reads `null` or an instant.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        Ok(Option::<Wire>::deserialize(d)?.map(|w| w.0))
    }
}

/// `Option<Option<OffsetDateTime>>` for PATCH bodies: absent is `None` (with
/// `#[serde(default)]`), `null` is `Some(None)`.
pub(crate) mod double_option {
    use super::{Deserialize, Deserializer, OffsetDateTime, Serializer, Wire};

    /// Writes `null` for both `None` and `Some(None)`, as serde writes a nested `Option`.
    #[allow(clippy::ref_option)] // serde's `with` passes `&Option<T>`
    pub(crate) fn serialize<S: Serializer>(
        t: &Option<Option<OffsetDateTime>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        super::option::serialize(&t.flatten(), s)
    }

    /// Reads a present field: `null` or an instant.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<OffsetDateTime>>, D::Error> {
        Ok(Some(Option::<Wire>::deserialize(d)?.map(|w| w.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct At(#[serde(with = "super")] OffsetDateTime);

    #[test]
    fn instants_are_written_in_utc_and_read_with_any_offset() {
        let at: At = serde_json::from_str(r#""2030-01-01T02:00:00.123456+02:00""#).unwrap();
        assert_eq!(at.0.offset(), UtcOffset::UTC);
        assert_eq!(
            serde_json::to_string(&at).unwrap(),
            r#""2030-01-01T00:00:00.123456Z""#
        );
    }

    #[test]
    fn a_space_may_stand_for_the_t_as_rfc_3339_allows() {
        let at: At = serde_json::from_str(r#""2030-01-01 00:00:00Z""#).unwrap();
        assert_eq!(at.0.unix_timestamp(), 1_893_456_000);
    }

    #[test]
    fn an_instant_past_the_representable_range_in_utc_is_an_error_not_a_panic() {
        for text in [
            r#""9999-12-31T23:00:00-05:00""#,
            r#""0000-01-01T00:00:00+05:00""#,
            r#""2030-01-01T00:00:00""#,
            r#""2030-02-30T00:00:00Z""#,
            r#""tomorrow""#,
            "5",
        ] {
            assert!(serde_json::from_str::<At>(text).is_err(), "{text}");
        }
    }
}
