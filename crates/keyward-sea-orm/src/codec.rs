//! Converts between [`KeyRecord`] and the row ([`api_key::Model`]), and reads the row.

use keyward_core::digest::{DIGEST_LEN, DigestAlgorithm, KeyDigest};
use keyward_core::model::{
    Credits, Deactivator, IpNet, Lineage, Metadata, RateLimit, SealedSecret, Usage,
};
use keyward_core::store::StoreError;
use keyward_core::{KeyId, KeyRecord, ScopeSet};
use sea_orm::{DbBackend, Value};
use time::OffsetDateTime;

use crate::entity::api_key::{self, Column};
use crate::error::corrupt;

/// `u64` into a `BIGINT`, clamped at `i64::MAX`.
pub(crate) fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(what))
}

fn unsigned32(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what))
}

fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    // Serializing these types (strings, maps of JSON values) cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// An instant as a value to bind on `backend`: what keyward's store binds for every instant,
/// and what an application querying [`crate::entity::api_key`] itself must bind too.
///
/// SQLite keeps instants as text and compares them as text (`expires_at > ?`, the listing
/// cursor, the `updated_at = ?` of an update), so the text must be one fixed form that sorts
/// like the instants it writes. keyward has always written `2026-11-29T20:13:01.123456+00:00`:
/// RFC 3339 in UTC with `+00:00`, the fraction in 0, 3, 6 or 9 digits (chrono's form, which
/// sorts right because `+` sorts before `.` and the digits). sqlx's encoding of `time`, which
/// the entity's `TimeDateTimeWithTimeZone` fields would get, writes `Z` and the shortest
/// fraction instead, under which `…:01Z` sorts after `…:01.5Z` and rows already stored would
/// stop matching `updated_at = ?`; so SQLite gets the text written here. The other backends
/// bind a typed timestamp, in UTC.
#[must_use]
pub fn instant(backend: DbBackend, t: Option<OffsetDateTime>) -> Value {
    let t = t.map(keyward_core::clock::utc);
    match backend {
        DbBackend::Sqlite => Value::String(t.map(sqlite_text)),
        _ => Value::TimeDateTimeWithTimeZone(t),
    }
}

/// [`instant`]'s SQLite text.
pub(crate) fn sqlite_text(t: OffsetDateTime) -> String {
    keyward_core::clock::utc_text(t, "+00:00")
}

/// The management columns and their values (what `update` writes).
pub(crate) fn management_values(r: &KeyRecord, backend: DbBackend) -> Vec<(Column, Value)> {
    let at = |t| instant(backend, t);
    let scopes: Vec<&str> = r.scopes.iter().map(|s| s.as_str()).collect();
    let ips: Vec<String> = r.ip_allowlist.iter().map(ToString::to_string).collect();
    vec![
        (Column::Name, r.name.clone().into()),
        (Column::Description, r.description.clone().into()),
        (Column::Scopes, json_text(&scopes).into()),
        (Column::Metadata, json_text(&r.metadata).into()),
        (Column::IpAllowlist, json_text(&ips).into()),
        (
            Column::RateLimitRequests,
            r.rate_limit.map(|l| i64::from(l.requests)).into(),
        ),
        (
            Column::RateLimitWindowSeconds,
            r.rate_limit.map(|l| i64::from(l.window_seconds)).into(),
        ),
        (
            Column::CreditsLimit,
            r.credits.map(|c| clamp(c.limit)).into(),
        ),
        (
            Column::CreditsRefillSeconds,
            r.credits.and_then(|c| c.refill_seconds).map(clamp).into(),
        ),
        (Column::IsActive, r.is_active.into()),
        (
            Column::DeactivatedBy,
            r.deactivated_by.map(|d| d.as_str().to_owned()).into(),
        ),
        (
            Column::RotatedTo,
            r.rotated_to.map(|k| k.as_str().to_owned()).into(),
        ),
        (Column::NotBefore, at(r.not_before)),
        (Column::ExpiresAt, at(r.expires_at)),
        (Column::UpdatedAt, at(Some(r.updated_at))),
    ]
}

/// The digest columns and their values.
pub(crate) fn digest_values(d: &KeyDigest) -> Vec<(Column, Value)> {
    vec![
        (Column::Digest, d.bytes.to_vec().into()),
        (
            Column::DigestAlgorithm,
            d.algorithm.as_str().to_owned().into(),
        ),
        (Column::PepperVersion, i64::from(d.pepper_version).into()),
    ]
}

/// Every column but `id`, with its value, for an insert.
pub(crate) fn insert_values(r: &KeyRecord, backend: DbBackend) -> Vec<(Column, Value)> {
    let at = |t| instant(backend, t);
    let mut v = vec![
        (Column::KeyId, r.key_id.as_str().to_owned().into()),
        (Column::OwnerId, r.owner_id.clone().into()),
        (Column::Env, r.env.clone().into()),
        (Column::KeyPrefix, r.prefix.clone().into()),
        (
            Column::SealedSecret,
            r.sealed_secret.as_ref().map(|s| s.bytes.clone()).into(),
        ),
        (
            Column::SealedSecretVersion,
            r.sealed_secret
                .as_ref()
                .map(|s| i64::from(s.key_version))
                .into(),
        ),
        (Column::RequestCount, clamp(r.usage.request_count).into()),
        (Column::CreditsUsed, clamp(r.usage.credits_used).into()),
        (Column::CreditsPeriod, clamp(r.usage.credits_period).into()),
        (Column::CreatedAt, at(Some(r.created_at))),
        (Column::LastUsedAt, at(r.last_used_at)),
        (Column::RevokedAt, at(r.revoked_at)),
        (
            Column::RotatedFrom,
            r.rotated_from.map(|k| k.as_str().to_owned()).into(),
        ),
        (
            Column::LineageRoot,
            r.lineage.map(|l| l.root.as_str().to_owned()).into(),
        ),
        (
            Column::LineageStartedAt,
            at(r.lineage.map(|l| l.started_at)),
        ),
    ];
    v.extend(digest_values(&r.digest));
    v.extend(management_values(r, backend));
    v
}

fn key_id(s: &str, what: &'static str) -> Result<KeyId, StoreError> {
    s.parse().map_err(|_| corrupt(what))
}

/// Reads a key row by position, straight from sqlx: the columns in the order of
/// `Column::iter()`, which is the order the store's `SELECT` lists them in. Measured reason
/// (`cargo xtask scale`, PostgreSQL): sea-orm's reads by name were 11 % of the server's CPU
/// under the miss-heavy load, a column lookup by name each and, for each `NULL` column, an error
/// formatted and thrown away; sqlx decodes each column exactly as sea-orm does underneath.
pub(crate) fn model_from_row<R>(row: &R) -> Result<api_key::Model, sea_orm::sqlx::Error>
where
    R: sea_orm::sqlx::Row,
    usize: sea_orm::sqlx::ColumnIndex<R>,
    for<'r> i64: Decoded<'r, R::Database>,
    for<'r> bool: Decoded<'r, R::Database>,
    for<'r> String: Decoded<'r, R::Database>,
    for<'r> Vec<u8>: Decoded<'r, R::Database>,
    for<'r> OffsetDateTime: Decoded<'r, R::Database>,
{
    Ok(api_key::Model {
        id: row.try_get(Column::Id as usize)?,
        key_id: row.try_get(Column::KeyId as usize)?,
        owner_id: row.try_get(Column::OwnerId as usize)?,
        name: row.try_get(Column::Name as usize)?,
        description: row.try_get(Column::Description as usize)?,
        env: row.try_get(Column::Env as usize)?,
        key_prefix: row.try_get(Column::KeyPrefix as usize)?,
        digest: row.try_get(Column::Digest as usize)?,
        digest_algorithm: row.try_get(Column::DigestAlgorithm as usize)?,
        pepper_version: row.try_get(Column::PepperVersion as usize)?,
        sealed_secret: row.try_get(Column::SealedSecret as usize)?,
        sealed_secret_version: row.try_get(Column::SealedSecretVersion as usize)?,
        scopes: row.try_get(Column::Scopes as usize)?,
        metadata: row.try_get(Column::Metadata as usize)?,
        ip_allowlist: row.try_get(Column::IpAllowlist as usize)?,
        rate_limit_requests: row.try_get(Column::RateLimitRequests as usize)?,
        rate_limit_window_seconds: row.try_get(Column::RateLimitWindowSeconds as usize)?,
        credits_limit: row.try_get(Column::CreditsLimit as usize)?,
        credits_refill_seconds: row.try_get(Column::CreditsRefillSeconds as usize)?,
        request_count: row.try_get(Column::RequestCount as usize)?,
        credits_used: row.try_get(Column::CreditsUsed as usize)?,
        credits_period: row.try_get(Column::CreditsPeriod as usize)?,
        is_active: row.try_get(Column::IsActive as usize)?,
        created_at: row.try_get(Column::CreatedAt as usize)?,
        updated_at: row.try_get(Column::UpdatedAt as usize)?,
        not_before: row.try_get(Column::NotBefore as usize)?,
        expires_at: row.try_get(Column::ExpiresAt as usize)?,
        last_used_at: row.try_get(Column::LastUsedAt as usize)?,
        revoked_at: row.try_get(Column::RevokedAt as usize)?,
        rotated_from: row.try_get(Column::RotatedFrom as usize)?,
        rotated_to: row.try_get(Column::RotatedTo as usize)?,
        deactivated_by: row.try_get(Column::DeactivatedBy as usize)?,
        lineage_root: row.try_get(Column::LineageRoot as usize)?,
        lineage_started_at: row.try_get(Column::LineageStartedAt as usize)?,
    })
}

/// A column type sqlx decodes from a row of `DB`.
pub(crate) trait Decoded<'r, DB: sea_orm::sqlx::Database>:
    sea_orm::sqlx::Decode<'r, DB> + sea_orm::sqlx::Type<DB>
{
}

impl<'r, DB: sea_orm::sqlx::Database, T> Decoded<'r, DB> for T where
    T: sea_orm::sqlx::Decode<'r, DB> + sea_orm::sqlx::Type<DB>
{
}

/// Decodes a row.
///
/// # Errors
/// `Corrupt` when a column holds something keyward never writes.
/// A record of a row of the store's `SELECT` ([`KeyRow`]): the key, and where
/// its last use came from (an address that does not parse is dropped).
pub(crate) fn decode_row((m, addr, agent): KeyRow) -> Result<KeyRecord, StoreError> {
    let mut record = decode(m)?;
    let client_addr = addr.and_then(|a| a.parse().ok());
    if client_addr.is_some() || agent.is_some() {
        record.last_used_from = Some(keyward_core::audit::Origin {
            client_addr,
            user_agent: agent,
            request_id: None,
        });
    }
    Ok(record)
}

pub(crate) fn decode(m: api_key::Model) -> Result<KeyRecord, StoreError> {
    let bytes: [u8; DIGEST_LEN] = m
        .digest
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("digest length"))?;
    let algorithm =
        DigestAlgorithm::from_name(&m.digest_algorithm).ok_or(corrupt("digest algorithm"))?;
    let digest = KeyDigest {
        algorithm,
        pepper_version: unsigned32(m.pepper_version, "pepper version")?,
        bytes,
    };
    let sealed_secret = match (m.sealed_secret, m.sealed_secret_version) {
        (Some(bytes), Some(v)) => Some(SealedSecret {
            key_version: unsigned32(v, "sealed secret version")?,
            bytes,
        }),
        (None, None) => None,
        _ => return Err(corrupt("sealed secret without version")),
    };
    let scopes: Vec<String> = serde_json::from_str(&m.scopes).map_err(|_| corrupt("scopes"))?;
    let scopes = ScopeSet::parse(scopes).map_err(|_| corrupt("scopes"))?;
    let metadata: Metadata = serde_json::from_str(&m.metadata).map_err(|_| corrupt("metadata"))?;
    let ips: Vec<String> =
        serde_json::from_str(&m.ip_allowlist).map_err(|_| corrupt("ip allowlist"))?;
    let ip_allowlist = ips
        .iter()
        .map(|s| s.parse::<IpNet>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| corrupt("ip allowlist"))?;
    let rate_limit = match (m.rate_limit_requests, m.rate_limit_window_seconds) {
        (Some(r), Some(w)) => Some(RateLimit {
            requests: unsigned32(r, "rate limit")?,
            window_seconds: unsigned32(w, "rate limit")?,
        }),
        (None, None) => None,
        _ => return Err(corrupt("rate limit half set")),
    };
    let credits = match m.credits_limit {
        Some(l) => Some(Credits {
            limit: unsigned(l, "credits")?,
            refill_seconds: m
                .credits_refill_seconds
                .map(|r| unsigned(r, "credits refill"))
                .transpose()?,
        }),
        None => None,
    };
    Ok(KeyRecord {
        key_id: key_id(&m.key_id, "key id")?,
        owner_id: m.owner_id,
        name: m.name,
        description: m.description,
        env: m.env,
        prefix: m.key_prefix,
        digest,
        sealed_secret,
        scopes,
        metadata,
        ip_allowlist,
        rate_limit,
        credits,
        usage: Usage {
            request_count: unsigned(m.request_count, "request count")?,
            credits_used: unsigned(m.credits_used, "credits used")?,
            credits_period: unsigned(m.credits_period, "credits period")?,
        },
        is_active: m.is_active,
        created_at: m.created_at,
        updated_at: m.updated_at,
        not_before: m.not_before,
        expires_at: m.expires_at,
        last_used_at: m.last_used_at,
        last_used_from: None,
        revoked_at: m.revoked_at,
        rotated_from: m
            .rotated_from
            .as_deref()
            .map(|s| key_id(s, "rotated_from"))
            .transpose()?,
        rotated_to: m
            .rotated_to
            .as_deref()
            .map(|s| key_id(s, "rotated_to"))
            .transpose()?,
        deactivated_by: m
            .deactivated_by
            .as_deref()
            .map(|s| Deactivator::parse(s).ok_or(corrupt("deactivated_by")))
            .transpose()?,
        lineage: match (m.lineage_root, m.lineage_started_at) {
            (Some(root), Some(started_at)) => Some(Lineage {
                root: key_id(&root, "lineage_root")?,
                started_at,
            }),
            (None, None) => None,
            _ => return Err(corrupt("lineage half set")),
        },
    })
}

/// A key row of the store's `SELECT`, with where the key's last use came from (address, user
/// agent), which live in the usage table.
pub(crate) type KeyRow = (api_key::Model, Option<String>, Option<String>);

/// A [`KeyRow`] of a row sea-orm read.
pub(crate) fn key_row(row: &sea_orm::QueryResult) -> Result<KeyRow, sea_orm::DbErr> {
    Ok((
        <api_key::Model as sea_orm::FromQueryResult>::from_query_result(row, "")?,
        row.try_get("", "last_client_addr")?,
        row.try_get("", "last_user_agent")?,
    ))
}

#[cfg(test)]
mod tests {
    use keyward_core::clock::from_unix_micros;

    use super::*;

    fn at(us: i64) -> OffsetDateTime {
        from_unix_micros(us).unwrap()
    }

    #[test]
    fn sqlite_text_is_the_form_keyward_has_always_stored() {
        // Rows written before the move to `time` hold exactly these strings (chrono's
        // `to_rfc3339_opts(AutoSi, false)`, which sqlx wrote for a `DateTime<Utc>`).
        for (us, text) in [
            (1_732_876_543_123_456, "2024-11-29T10:35:43.123456+00:00"),
            (1_732_876_543_000_000, "2024-11-29T10:35:43+00:00"),
            (1_732_876_543_120_000, "2024-11-29T10:35:43.120+00:00"),
            (1_732_876_543_000_001, "2024-11-29T10:35:43.000001+00:00"),
        ] {
            assert_eq!(sqlite_text(at(us)), text);
        }
        let offset =
            at(1_732_876_543_000_000).to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(sqlite_text(offset), "2024-11-29T10:35:43+00:00");
    }

    #[test]
    fn sqlite_text_sorts_like_the_instants() {
        let base = 1_732_876_543_000_000;
        let mut instants: Vec<i64> = [0, 1, 10, 120_000, 123_000, 123_456, 500_000, 999_999]
            .iter()
            .flat_map(|d| [base + d, base + 1_000_000 + d])
            .collect();
        instants.sort_unstable();
        let texts: Vec<String> = instants.iter().map(|&us| sqlite_text(at(us))).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
    }

    #[test]
    fn other_backends_bind_a_typed_instant() {
        let t = at(1_732_876_543_123_456);
        assert_eq!(
            instant(DbBackend::Postgres, Some(t)),
            Value::TimeDateTimeWithTimeZone(Some(t))
        );
        assert_eq!(instant(DbBackend::Sqlite, None), Value::String(None));
    }
}
