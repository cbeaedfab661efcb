//! Usage analytics: verification counts per key, per hour, by [`Outcome`] and [`Tags`].
//!
//! Verification counts in memory (a valid request without tags is the atomic add that already
//! counts its requests; other outcomes and tagged requests go to a small sharded map), and the
//! usage flush hands the counts to the store ([`crate::store::KeyStore::record_usage`]) as
//! [`UsageCount`]s, one per key, hour, outcome and tag set, which the store adds to what it
//! holds. Only a key that was found is counted: a made-up key id has no key to count against,
//! and counting it would let anyone fill the store.
//!
//! Reads ([`crate::Keyward::usage`]) sum a key's (or an owner's) counts into hourly or daily
//! buckets ([`UsageReport`]).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::key::KeyId;

/// What a verification of a known key came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Admitted.
    Valid,
    /// A wrong secret, a key of another deployment, or a signing key presented as a bearer.
    Invalid,
    /// The key is revoked.
    Revoked,
    /// The key has expired.
    Expired,
    /// The key is deactivated, or not valid yet.
    Inactive,
    /// The client address is outside the key's allowlist (or unknown).
    IpDenied,
    /// The key lacks a required scope.
    ScopeDenied,
    /// The key's rate limit refused the request.
    RateLimited,
    /// The key's credits are spent.
    UsageExhausted,
    /// A signed request whose signature does not verify.
    SignatureInvalid,
    /// A signed request outside the allowed clock skew.
    SignatureExpired,
    /// A signed request seen before.
    SignatureReplayed,
}

impl Outcome {
    /// Every outcome, in the order reports list them.
    pub const ALL: [Self; 12] = [
        Self::Valid,
        Self::Invalid,
        Self::Revoked,
        Self::Expired,
        Self::Inactive,
        Self::IpDenied,
        Self::ScopeDenied,
        Self::RateLimited,
        Self::UsageExhausted,
        Self::SignatureInvalid,
        Self::SignatureExpired,
        Self::SignatureReplayed,
    ];

    /// The snake-case name (`valid`, `scope_denied`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Inactive => "inactive",
            Self::IpDenied => "ip_denied",
            Self::ScopeDenied => "scope_denied",
            Self::RateLimited => "rate_limited",
            Self::UsageExhausted => "usage_exhausted",
            Self::SignatureInvalid => "signature_invalid",
            Self::SignatureExpired => "signature_expired",
            Self::SignatureReplayed => "signature_replayed",
        }
    }

    /// The outcome named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A count for each [`Outcome`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
#[allow(
    missing_docs,
    reason = "each field is the count of the outcome of its name"
)]
pub struct OutcomeCounts {
    pub valid: u64,
    pub invalid: u64,
    pub revoked: u64,
    pub expired: u64,
    pub inactive: u64,
    pub ip_denied: u64,
    pub scope_denied: u64,
    pub rate_limited: u64,
    pub usage_exhausted: u64,
    pub signature_invalid: u64,
    pub signature_expired: u64,
    pub signature_replayed: u64,
}

impl OutcomeCounts {
    fn slot(&mut self, outcome: Outcome) -> &mut u64 {
        match outcome {
            Outcome::Valid => &mut self.valid,
            Outcome::Invalid => &mut self.invalid,
            Outcome::Revoked => &mut self.revoked,
            Outcome::Expired => &mut self.expired,
            Outcome::Inactive => &mut self.inactive,
            Outcome::IpDenied => &mut self.ip_denied,
            Outcome::ScopeDenied => &mut self.scope_denied,
            Outcome::RateLimited => &mut self.rate_limited,
            Outcome::UsageExhausted => &mut self.usage_exhausted,
            Outcome::SignatureInvalid => &mut self.signature_invalid,
            Outcome::SignatureExpired => &mut self.signature_expired,
            Outcome::SignatureReplayed => &mut self.signature_replayed,
        }
    }

    /// The count of `outcome`.
    #[must_use]
    pub fn get(&self, outcome: Outcome) -> u64 {
        *self.clone().slot(outcome)
    }

    /// Adds `n` to `outcome`'s count (saturating).
    pub fn add(&mut self, outcome: Outcome, n: u64) {
        let slot = self.slot(outcome);
        *slot = slot.saturating_add(n);
    }

    /// Every outcome's count added up.
    #[must_use]
    pub fn total(&self) -> u64 {
        Outcome::ALL
            .iter()
            .fold(0u64, |sum, o| sum.saturating_add(self.get(*o)))
    }
}

/// Why a tag list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// More than [`Tags::MAX`] distinct tags.
    #[error("at most {} tags", Tags::MAX)]
    TooMany,
    /// A tag that is empty, longer than [`Tags::MAX_LEN`] characters, or holds a control
    /// character.
    #[error(
        "a tag is 1–{} characters, none of them a control character",
        Tags::MAX_LEN
    )]
    Invalid,
}

/// The tags a verification carries (`path=/reports`, `region=eu`): a set of up to
/// [`Tags::MAX`] strings of 1–[`Tags::MAX_LEN`] characters without control characters
/// ([`TAG_PATTERN`]), by which usage can be grouped and filtered. Cheap to clone;
/// the empty set allocates nothing.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tags(Option<Arc<str>>);

/// One tag, as a regular expression (ECMA-262 and Python alike): what [`Tags::new`] accepts.
pub const TAG_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]{1,64}$";

/// Between the tags of [`Tags`]' canonical form: a control character, which no tag holds.
const SEPARATOR: char = '\n';

impl Tags {
    /// Most tags in a set.
    pub const MAX: usize = 20;
    /// Longest tag, in characters.
    pub const MAX_LEN: usize = 64;

    /// No tags.
    pub const NONE: Self = Self(None);

    /// The set of `tags` (duplicates dropped, order irrelevant).
    ///
    /// # Errors
    /// [`TagError`] for more than [`Tags::MAX`] distinct tags or a tag that is not 1–64
    /// characters without control characters.
    pub fn new<I, S>(tags: I) -> Result<Self, TagError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = std::collections::BTreeSet::new();
        for tag in tags {
            let tag = tag.as_ref();
            if tag.is_empty()
                || tag.chars().count() > Self::MAX_LEN
                || tag.chars().any(char::is_control)
            {
                return Err(TagError::Invalid);
            }
            set.insert(tag.to_owned());
            if set.len() > Self::MAX {
                return Err(TagError::TooMany);
            }
        }
        if set.is_empty() {
            return Ok(Self::NONE);
        }
        let joined: Vec<String> = set.into_iter().collect();
        Ok(Self(Some(joined.join("\n").into())))
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The tags, in byte order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0
            .as_deref()
            .into_iter()
            .flat_map(|s| s.split(SEPARATOR))
    }

    /// Whether `tag` is one of them.
    #[must_use]
    pub fn contains(&self, tag: &str) -> bool {
        self.iter().any(|t| t == tag)
    }

    /// The set as a JSON array (`[]` for none), as stores keep it.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.iter().collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
    }

    /// The set from [`Tags::to_json`]'s text.
    #[must_use]
    pub fn from_json(text: &str) -> Option<Self> {
        let tags: Vec<String> = serde_json::from_str(text).ok()?;
        Self::new(tags).ok()
    }

    /// A short, fixed-length name of the set, for a store's key: empty for no tags, otherwise
    /// 32 hex digits of its SHA-256.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let Some(joined) = &self.0 else {
            return String::new();
        };
        let digest = sha2::Sha256::digest(joined.as_bytes());
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for Tags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tags = Vec::<String>::deserialize(d)?;
        Self::new(tags).map_err(serde::de::Error::custom)
    }
}

/// One count a usage flush writes: verifications of one key in one hour with one outcome and
/// tag set. The store adds `count` to what it holds for the same key, hour, outcome and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    /// The key.
    pub key_id: KeyId,
    /// Its owner, for owner-wide reads.
    pub owner_id: Arc<str>,
    /// The start of the hour (UTC, whole hours).
    pub hour: OffsetDateTime,
    /// The outcome.
    pub outcome: Outcome,
    /// The tags the verifications carried.
    pub tags: Tags,
    /// How many.
    pub count: u64,
}

/// Which counts a read sums: one owner's keys, or one key, over `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageFilter<'a> {
    /// The owner whose keys are summed.
    pub owner_id: &'a str,
    /// Only this key of the owner.
    pub key_id: Option<KeyId>,
    /// The first hour (inclusive).
    pub from: OffsetDateTime,
    /// The end (exclusive).
    pub to: OffsetDateTime,
}

/// Counts of one hour, outcome and tag set, summed over the keys a [`UsageFilter`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// The start of the hour.
    pub hour: OffsetDateTime,
    /// The outcome.
    pub outcome: Outcome,
    /// The tag set.
    pub tags: Tags,
    /// How many.
    pub count: u64,
}

/// The bucket size of a [`UsageReport`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One bucket an hour.
    #[default]
    Hour,
    /// One bucket a day (UTC).
    Day,
}

impl Granularity {
    /// The bucket length in seconds.
    #[must_use]
    pub fn seconds(self) -> i64 {
        match self {
            Self::Hour => 3600,
            Self::Day => 86_400,
        }
    }

    /// The start of the bucket holding `at`.
    #[must_use]
    pub fn floor(self, at: OffsetDateTime) -> OffsetDateTime {
        let s = at.unix_timestamp();
        let start = s - s.rem_euclid(self.seconds());
        OffsetDateTime::from_unix_timestamp(start).unwrap_or(at)
    }
}

/// One bucket of a [`UsageReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageBucket {
    /// The bucket's start.
    #[serde(with = "crate::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub start: OffsetDateTime,
    /// Verifications in it, by outcome.
    pub outcomes: OutcomeCounts,
}

/// One tag's share of a [`UsageReport`]: the verifications that carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TagUsage {
    /// The tag.
    pub tag: String,
    /// Verifications that carried it, by outcome.
    pub outcomes: OutcomeCounts,
}

/// A key's or an owner's verifications over `[from, to)`, by outcome: in every bucket (empty
/// ones too, oldest first), in all, and for each tag seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReport {
    /// The bucket size.
    pub granularity: Granularity,
    /// The first bucket's start.
    #[serde(with = "crate::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub from: OffsetDateTime,
    /// The end of the last bucket.
    #[serde(with = "crate::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub to: OffsetDateTime,
    /// Only verifications carrying this tag, when the read asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Every bucket's counts added up.
    pub totals: OutcomeCounts,
    /// The buckets.
    pub buckets: Vec<UsageBucket>,
    /// Each tag's counts over the whole range, by tag.
    pub tags: Vec<TagUsage>,
}

impl UsageReport {
    /// Sums `rows` into the buckets of `granularity` over `[from, to)` (both bucket starts),
    /// keeping only rows that carry `tag` when one is given.
    #[must_use]
    pub fn build(
        granularity: Granularity,
        from: OffsetDateTime,
        to: OffsetDateTime,
        tag: Option<&str>,
        rows: &[UsageRow],
    ) -> Self {
        let step = granularity.seconds();
        let (start, end) = (from.unix_timestamp(), to.unix_timestamp());
        let n = usize::try_from((end - start).max(0) / step).unwrap_or(0);
        let mut buckets: Vec<UsageBucket> = (0..n)
            .filter_map(|i| {
                let at = start + step * i64::try_from(i).ok()?;
                Some(UsageBucket {
                    start: OffsetDateTime::from_unix_timestamp(at).ok()?,
                    outcomes: OutcomeCounts::default(),
                })
            })
            .collect();
        let mut totals = OutcomeCounts::default();
        let mut by_tag: std::collections::BTreeMap<&str, OutcomeCounts> = Default::default();
        for row in rows {
            if tag.is_some_and(|t| !row.tags.contains(t)) {
                continue;
            }
            let at = row.hour.unix_timestamp();
            if at < start || at >= end {
                continue;
            }
            if let Some(bucket) = usize::try_from((at - start) / step)
                .ok()
                .and_then(|i| buckets.get_mut(i))
            {
                bucket.outcomes.add(row.outcome, row.count);
            }
            totals.add(row.outcome, row.count);
            for t in row.tags.iter() {
                by_tag.entry(t).or_default().add(row.outcome, row.count);
            }
        }
        Self {
            granularity,
            from,
            to,
            tag: tag.map(str::to_owned),
            totals,
            buckets,
            tags: by_tag
                .into_iter()
                .map(|(tag, outcomes)| TagUsage {
                    tag: tag.to_owned(),
                    outcomes,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_a_bounded_set() {
        let t = Tags::new(["region=eu", "path=/r", "region=eu"]).unwrap();
        assert_eq!(t.iter().collect::<Vec<_>>(), ["path=/r", "region=eu"]);
        assert_eq!(t, Tags::new(["path=/r", "region=eu"]).unwrap());
        assert_eq!(t.to_json(), r#"["path=/r","region=eu"]"#);
        assert_eq!(Tags::from_json(&t.to_json()), Some(t.clone()));
        assert_eq!(t.fingerprint().len(), 32);
        assert_eq!(Tags::NONE.fingerprint(), "");
        assert_eq!(Tags::new(Vec::<String>::new()).unwrap(), Tags::NONE);
        assert_eq!(Tags::new([""]), Err(TagError::Invalid));
        assert_eq!(Tags::new(["a\nb"]), Err(TagError::Invalid));
        assert_eq!(Tags::new(["x".repeat(65)]), Err(TagError::Invalid));
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(Tags::new(&many), Err(TagError::TooMany));
        assert!(Tags::new(&many[..20]).is_ok());
    }

    #[test]
    fn outcomes_round_trip_their_names() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            let mut c = OutcomeCounts::default();
            c.add(o, 3);
            assert_eq!(c.get(o), 3);
            assert_eq!(c.total(), 3);
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json[o.as_str()], 3);
        }
    }

    #[test]
    fn reports_bucket_and_filter_by_tag() {
        let h = |n: i64| {
            OffsetDateTime::from_unix_timestamp(1_800_000_000 - 1_800_000_000 % 86_400 + n * 3600)
                .unwrap()
        };
        let eu = Tags::new(["region=eu"]).unwrap();
        let rows = [
            UsageRow {
                hour: h(0),
                outcome: Outcome::Valid,
                tags: Tags::NONE,
                count: 2,
            },
            UsageRow {
                hour: h(1),
                outcome: Outcome::Valid,
                tags: eu.clone(),
                count: 5,
            },
            UsageRow {
                hour: h(1),
                outcome: Outcome::RateLimited,
                tags: eu,
                count: 1,
            },
            UsageRow {
                hour: h(30),
                outcome: Outcome::Valid,
                tags: Tags::NONE,
                count: 7,
            },
        ];
        let r = UsageReport::build(Granularity::Hour, h(0), h(3), None, &rows);
        assert_eq!(r.buckets.len(), 3);
        assert_eq!(r.buckets[1].outcomes.valid, 5);
        assert_eq!(r.totals.valid, 7);
        assert_eq!(r.totals.rate_limited, 1);
        assert_eq!(r.tags.len(), 1);
        assert_eq!(r.tags[0].outcomes.valid, 5);
        let r = UsageReport::build(Granularity::Hour, h(0), h(3), Some("region=eu"), &rows);
        assert_eq!(r.totals.valid, 5);
        let r = UsageReport::build(Granularity::Day, h(0), h(48), None, &rows);
        assert_eq!(r.buckets.len(), 2);
        assert_eq!(r.buckets[0].outcomes.valid, 7);
        assert_eq!(r.buckets[1].outcomes.valid, 7);
    }
}
