//! Integers in JSON bodies as JSON Schema reads them: `5` and `5.0` are the same integer
//! (JSON Schema 2020-12 §6.1.1 counts a number with a zero fractional part as an integer, and
//! so does every OpenAPI client that generates bodies from the document). serde_json alone
//! refuses `5.0` for an integer field; these `deserialize_with` helpers accept it, and still
//! refuse `5.5`, out-of-range values and anything that is not a number.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// The largest magnitude an `f64` holds exactly as an integer (2^53).
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

fn integral<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    number(&n).ok_or_else(|| D::Error::custom(format!("invalid type: {n}, expected an integer")))
}

fn number(n: &serde_json::Number) -> Option<i128> {
    if let Some(v) = n.as_i64() {
        return Some(v.into());
    }
    if let Some(v) = n.as_u64() {
        return Some(v.into());
    }
    let f = n.as_f64()?;
    #[allow(
        clippy::cast_possible_truncation,
        reason = "integral and within 2^53: the cast is exact"
    )]
    (f.fract() == 0.0 && f.abs() <= EXACT_F64).then_some(f as i128)
}

fn fit<T: TryFrom<i128>, E: serde::de::Error>(v: i128) -> Result<T, E> {
    T::try_from(v).map_err(|_| E::custom(format!("integer {v} out of range")))
}

/// A `u32`, `5.0` included.
pub(crate) fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    fit(integral(d)?)
}

/// A `u64`, `5.0` included.
pub(crate) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    fit(integral(d)?)
}

/// An `i64`, `-5.0` included.
pub(crate) fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    fit(integral(d)?)
}

/// An optional integer (`null` is `None`), `5.0` included.
fn opt<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(|n| {
            number(&n)
                .ok_or_else(|| D::Error::custom(format!("invalid type: {n}, expected an integer")))
                .and_then(fit)
        })
        .transpose()
}

/// An optional `u64` (`null` is `None`), `5.0` included.
pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    opt(d)
}

/// An optional `i64` (`null` is `None`), `5.0` included.
pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    opt(d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct T {
        #[serde(deserialize_with = "super::u32")]
        a: u32,
        #[serde(default, deserialize_with = "super::opt_i64")]
        b: Option<i64>,
    }

    fn parse(s: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn integral_numbers_in_any_spelling() {
        assert_eq!(parse(r#"{"a": 5}"#).unwrap(), T { a: 5, b: None });
        assert_eq!(
            parse(r#"{"a": 5.0, "b": -3.0}"#).unwrap(),
            T { a: 5, b: Some(-3) }
        );
        assert_eq!(
            parse(r#"{"a": 5e2, "b": null}"#).unwrap(),
            T { a: 500, b: None }
        );
        for bad in [
            r#"{"a": 5.5}"#,
            r#"{"a": -1}"#,
            r#"{"a": 4294967296}"#,
            r#"{"a": "5"}"#,
            r#"{"a": 1e300}"#,
            r#"{"a": 1, "b": 0.5}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.is_data(), "{bad}: {e}");
        }
    }
}
