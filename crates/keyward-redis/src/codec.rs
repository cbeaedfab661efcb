//! A [`KeyRecord`] as a Redis hash.
//!
//! Fields are split by who writes them, so every write is a field-level `HSET` inside a small
//! script and no script ever has to parse JSON (Lua's cjson rounds integers above 2^53 and
//! 14 significant digits, which would corrupt microsecond timestamps):
//!
//! | field | content | written by |
//! | --- | --- | --- |
//! | `o` | owner id | create |
//! | `i` | JSON: env, prefix, created_at, sealed secret, rotated_from, lineage | create |
//! | `m` | JSON: name, description, scopes, metadata, allowlist, limits, flags (active, deactivated by, rotated to), validity | create, update |
//! | `u` | updated_at (µs) | create, update, revoke |
//! | `d` | digest `algorithm:pepper_version:base64` | create, set_digest |
//! | `r` | revoked_at (µs), absent until revoked | revoke (`HSETNX`) |
//! | `l` | last_used_at (µs) | record_usage (forward only) |
//! | `lf` | JSON: where the last use came from (client address, user agent), absent if unknown | record_usage (with `l`) |
//! | `n` | request count | record_usage (`HINCRBY`) |
//! | `cp`, `cu` | credit period and credits used in it | record_usage |

use std::collections::HashMap;

use base64::Engine as _;
use keyward_core::clock::{from_unix_micros, unix_micros};
use keyward_core::digest::{DIGEST_LEN, DigestAlgorithm, KeyDigest};
use keyward_core::key::KeyId;
use keyward_core::model::{
    Credits, Deactivator, IpNet, KeyRecord, Lineage, Metadata, RateLimit, SealedSecret, Usage,
};
use keyward_core::scope::ScopeSet;
use keyward_core::store::{StoreError, StoreErrorKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

#[derive(Serialize, Deserialize)]
struct Immutable {
    env: String,
    prefix: String,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<(u32, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotated_from: Option<KeyId>,
    /// The rotation chain's first key and its creation (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lineage: Option<(KeyId, i64)>,
}

#[derive(Serialize, Deserialize)]
struct Management {
    name: String,
    #[serde(default)]
    description: Option<String>,
    scopes: ScopeSet,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    ip_allowlist: Vec<IpNet>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    credits: Option<Credits>,
    is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deactivated_by: Option<Deactivator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotated_to: Option<KeyId>,
    #[serde(default)]
    not_before: Option<i64>,
    #[serde(default)]
    expires_at: Option<i64>,
}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, what)
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| {
        StoreError::new(StoreErrorKind::Other, "cannot encode key record").with_source(e)
    })
}

/// The `m` field of `record`.
pub(crate) fn management_json(record: &KeyRecord) -> Result<String, StoreError> {
    json(&Management {
        name: record.name.clone(),
        description: record.description.clone(),
        scopes: record.scopes.clone(),
        metadata: record.metadata.clone(),
        ip_allowlist: record.ip_allowlist.clone(),
        rate_limit: record.rate_limit,
        credits: record.credits,
        is_active: record.is_active,
        deactivated_by: record.deactivated_by,
        rotated_to: record.rotated_to,
        not_before: record.not_before.map(unix_micros),
        expires_at: record.expires_at.map(unix_micros),
    })
}

/// The `d` field.
pub(crate) fn digest_string(d: &KeyDigest) -> String {
    format!(
        "{}:{}:{}",
        d.algorithm.as_str(),
        d.pepper_version,
        B64.encode(d.bytes)
    )
}

fn parse_digest(s: &str) -> Result<KeyDigest, StoreError> {
    let mut parts = s.splitn(3, ':');
    let (Some(alg), Some(ver), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt("malformed stored digest"));
    };
    let algorithm =
        DigestAlgorithm::from_name(alg).ok_or_else(|| corrupt("unknown digest algorithm"))?;
    let pepper_version = ver
        .parse()
        .map_err(|_| corrupt("malformed pepper version"))?;
    let raw = B64
        .decode(b64)
        .map_err(|_| corrupt("malformed stored digest"))?;
    let bytes: [u8; DIGEST_LEN] = raw
        .try_into()
        .map_err(|_| corrupt("stored digest has the wrong length"))?;
    Ok(KeyDigest {
        algorithm,
        pepper_version,
        bytes,
    })
}

/// Score of an expiry in the owner's live set: microseconds, `+inf` for none.
pub(crate) fn expiry_score(expires_at: Option<OffsetDateTime>) -> String {
    expires_at.map_or_else(|| "+inf".to_owned(), |t| unix_micros(t).to_string())
}

/// The owner-index member: a fixed-width, order-preserving encoding of `created_at` then the
/// key id, so lexicographic order is `(created_at, key_id)` order.
pub(crate) fn index_member(created_at: OffsetDateTime, key_id: &KeyId) -> String {
    // Flip the sign bit: i64 order becomes u64 order.
    let t = unix_micros(created_at).cast_unsigned() ^ (1 << 63);
    format!("{t:020}:{key_id}")
}

/// The `(created_at, key_id)` an index member encodes.
pub(crate) fn parse_member(member: &str) -> Result<(OffsetDateTime, KeyId), StoreError> {
    let bad = || corrupt("malformed owner index entry");
    let (t, id) = member.split_once(':').ok_or_else(bad)?;
    let t: u64 = t.parse().map_err(|_| bad())?;
    let created_at = from_unix_micros((t ^ (1 << 63)).cast_signed()).ok_or_else(bad)?;
    Ok((created_at, id.parse().map_err(|_| bad())?))
}

/// All fields of a new record, as `HSET` arguments.
pub(crate) fn encode(record: &KeyRecord) -> Result<Vec<(&'static str, String)>, StoreError> {
    let immutable = json(&Immutable {
        env: record.env.clone(),
        prefix: record.prefix.clone(),
        created_at: unix_micros(record.created_at),
        sealed: record
            .sealed_secret
            .as_ref()
            .map(|s| (s.key_version, B64.encode(&s.bytes))),
        rotated_from: record.rotated_from,
        lineage: record.lineage.map(|l| (l.root, unix_micros(l.started_at))),
    })?;
    let mut fields = vec![
        ("o", record.owner_id.clone()),
        ("i", immutable),
        ("m", management_json(record)?),
        ("u", unix_micros(record.updated_at).to_string()),
        ("d", digest_string(&record.digest)),
        ("n", record.usage.request_count.to_string()),
        ("cp", record.usage.credits_period.to_string()),
        ("cu", record.usage.credits_used.to_string()),
    ];
    if let Some(t) = record.revoked_at {
        fields.push(("r", unix_micros(t).to_string()));
    }
    if let Some(t) = record.last_used_at {
        fields.push(("l", unix_micros(t).to_string()));
    }
    if record.last_used_from.is_some() {
        fields.push(("lf", origin_json(record.last_used_from.as_ref())?));
    }
    Ok(fields)
}

/// Where a use came from as the `lf` field holds it: JSON, or empty for none.
pub(crate) fn origin_json(
    origin: Option<&keyward_core::audit::Origin>,
) -> Result<String, StoreError> {
    origin.map_or(Ok(String::new()), |o| {
        serde_json::to_string(o)
            .map_err(|e| StoreError::new(StoreErrorKind::Other, "origin encoding").with_source(e))
    })
}

fn time(us: i64) -> Result<OffsetDateTime, StoreError> {
    from_unix_micros(us).ok_or_else(|| corrupt("stored time out of range"))
}

fn field<'a>(h: &'a HashMap<String, String>, name: &'static str) -> Result<&'a str, StoreError> {
    h.get(name)
        .map(String::as_str)
        .ok_or_else(|| corrupt("key record field missing"))
}

fn int<T: std::str::FromStr>(
    h: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<T>, StoreError> {
    h.get(name)
        .map(|s| {
            s.parse()
                .map_err(|_| corrupt("malformed key record counter"))
        })
        .transpose()
}

/// Decodes `HGETALL`'s answer; `None` for an empty hash (no such key).
pub(crate) fn decode(
    key_id: KeyId,
    h: &HashMap<String, String>,
) -> Result<Option<KeyRecord>, StoreError> {
    if h.is_empty() {
        return Ok(None);
    }
    let imm: Immutable = serde_json::from_str(field(h, "i")?)
        .map_err(|e| corrupt("malformed key record").with_source(e))?;
    let m: Management = serde_json::from_str(field(h, "m")?)
        .map_err(|e| corrupt("malformed key record").with_source(e))?;
    let sealed_secret = match imm.sealed {
        None => None,
        Some((key_version, b64)) => Some(SealedSecret {
            key_version,
            bytes: B64
                .decode(b64)
                .map_err(|_| corrupt("malformed sealed secret"))?,
        }),
    };
    let opt_time = |name| int::<i64>(h, name)?.map(time).transpose();
    Ok(Some(KeyRecord {
        key_id,
        owner_id: field(h, "o")?.to_owned(),
        name: m.name,
        description: m.description,
        env: imm.env,
        prefix: imm.prefix,
        digest: parse_digest(field(h, "d")?)?,
        sealed_secret,
        scopes: m.scopes,
        metadata: m.metadata,
        ip_allowlist: m.ip_allowlist,
        rate_limit: m.rate_limit,
        credits: m.credits,
        usage: Usage {
            request_count: int(h, "n")?.unwrap_or(0),
            credits_used: int(h, "cu")?.unwrap_or(0),
            credits_period: int(h, "cp")?.unwrap_or(0),
        },
        is_active: m.is_active,
        created_at: time(imm.created_at)?,
        updated_at: time(int(h, "u")?.ok_or_else(|| corrupt("key record field missing"))?)?,
        not_before: m.not_before.map(time).transpose()?,
        expires_at: m.expires_at.map(time).transpose()?,
        last_used_at: opt_time("l")?,
        last_used_from: h
            .get("lf")
            .map(|j| serde_json::from_str(j).map_err(|_| corrupt("malformed last use origin")))
            .transpose()?,
        revoked_at: opt_time("r")?,
        rotated_from: imm.rotated_from,
        rotated_to: m.rotated_to,
        deactivated_by: m.deactivated_by,
        lineage: imm
            .lineage
            .map(|(root, t)| time(t).map(|started_at| Lineage { root, started_at }))
            .transpose()?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_members_sort_like_created_at_then_key_id() {
        let id: KeyId = "AAAAAAAAAAAA".parse().unwrap_or(KeyId::MIN);
        let a = index_member(from_unix_micros(-5).unwrap(), &id);
        let b = index_member(from_unix_micros(3).unwrap(), &KeyId::MIN);
        let c = index_member(from_unix_micros(3).unwrap(), &id);
        assert!(a < b && b < c);
        let at = from_unix_micros(3).unwrap();
        assert_eq!(parse_member(&c).ok(), Some((at, id)));
        let neg = from_unix_micros(-5).unwrap();
        assert_eq!(parse_member(&a).ok().map(|m| m.0), Some(neg));
        assert!(parse_member("x:y").is_err());
    }
}
