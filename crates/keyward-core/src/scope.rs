//! Scopes: `reports:read`, with wildcards `reports:*` and `*` on the key side.
//!
//! A scope is 1–128 characters of `[a-z0-9:._-]`, or such a string ending in `:*`, or `*` alone.
//! A granted scope *covers* a required one when they are equal, when the grant is `*`, or when
//! the grant is `p:*` and the required scope starts with `p:`. Covering is reflexive and
//! transitive. A route asks for all of its scopes (the default) or any one of them.
//!
//! The namespace `keyward:` ([`RESERVED_NAMESPACE`]) is keyward's own (`keyward:admin`, …): a
//! scope in it is covered only by itself, never by a wildcard (`*` and `keyward:*` included), and
//! only an administrator grants it (DESIGN.md §11).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Longest scope accepted.
pub const MAX_SCOPE_LEN: usize = 128;

/// One scope as a regular expression (with [`MAX_SCOPE_LEN`] as its length bound), for
/// OpenAPI documents: exactly what [`Scope`]'s `FromStr` accepts.
pub const SCOPE_PATTERN: &str = r"^(\*|[a-z0-9:._-]+(:\*)?)$";

/// The namespace keyward reserves for its own scopes: granted only by an administrator, only by
/// exact name, and never covered by a wildcard.
pub const RESERVED_NAMESPACE: &str = "keyward:";

/// The scope that makes a key an administrator of keyward's management routes, held by name.
pub const ADMIN_SCOPE: &str = "keyward:admin";

/// Why a scope or scope list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// Empty string.
    #[error("scope is empty")]
    Empty,
    /// Longer than [`MAX_SCOPE_LEN`].
    #[error("scope is longer than {MAX_SCOPE_LEN} characters")]
    TooLong,
    /// A character outside `[a-z0-9:._-]`, or a `*` anywhere but a final `:*` or alone.
    #[error("scope {0:?} has characters outside [a-z0-9:._-] or a misplaced wildcard")]
    Invalid(String),
    /// Scopes that the configured catalog does not allow.
    #[error("scopes not in the catalog: {}", .0.join(", "))]
    NotInCatalog(Vec<String>),
    /// More scopes than allowed on one key.
    #[error("at most {0} scopes per key")]
    TooMany(usize),
}

/// One validated scope.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(Box<str>);

impl Scope {
    /// The scope as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `*` or `p:*`.
    #[must_use]
    pub fn is_wildcard(&self) -> bool {
        self.0.ends_with('*')
    }

    /// Whether the scope lies in keyward's [`RESERVED_NAMESPACE`].
    #[must_use]
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with(RESERVED_NAMESPACE)
    }

    /// Whether this (granted) scope covers `required`. A reserved scope is covered only by
    /// itself.
    #[must_use]
    pub fn covers(&self, required: &Scope) -> bool {
        let g = self.as_str();
        if g == required.as_str() {
            return true;
        }
        if required.is_reserved() {
            return false;
        }
        if g == "*" {
            return true;
        }
        match g.strip_suffix('*') {
            // `p:*` covers everything under `p:`, including narrower wildcards.
            Some(stem) => required.as_str().starts_with(stem),
            None => false,
        }
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ScopeError::Empty);
        }
        if s.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        let body = if s == "*" {
            ""
        } else {
            s.strip_suffix(":*").unwrap_or(s)
        };
        let ok_char = |b: u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b':' | b'.' | b'_' | b'-');
        if !body.bytes().all(ok_char) || (s != "*" && body.is_empty()) {
            return Err(ScopeError::Invalid(s.chars().take(MAX_SCOPE_LEN).collect()));
        }
        Ok(Self(s.into()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A sorted, de-duplicated set of scopes. Immutable and shared: a clone is a reference count,
/// so the cache, the principals it hands out and keys with the same grant hold one copy.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ScopeSet(Arc<[Scope]>);

impl Default for ScopeSet {
    fn default() -> Self {
        Self::new()
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de> serde::Deserialize<'de> for ScopeSet {
    /// As stored: the list is taken as it is (a store keeps it normalized).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Scope>::deserialize(d).map(|v| Self(v.into()))
    }
}

impl ScopeSet {
    /// The empty set.
    #[must_use]
    pub fn new() -> Self {
        Self(Arc::from([]))
    }

    /// Parses and normalizes a list of scope strings.
    ///
    /// # Errors
    /// The first [`ScopeError`] met.
    pub fn parse<I, S>(items: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let v = items
            .into_iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_scopes(v))
    }

    /// Builds a set from validated scopes.
    #[must_use]
    pub fn from_scopes(mut v: Vec<Scope>) -> Self {
        v.sort();
        v.dedup();
        Self(v.into())
    }

    /// The scopes, sorted.
    #[must_use]
    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    /// Number of scopes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any scope of the set covers `required`.
    #[must_use]
    pub fn covers(&self, required: &Scope) -> bool {
        self.0.iter().any(|g| g.covers(required))
    }

    /// Whether the set holds `scope` by exact name (how reserved scopes are held).
    #[must_use]
    pub fn holds_exact(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    /// The scopes of `self` that some scope in `bound` covers: what survives downscoping.
    #[must_use]
    pub fn intersect(&self, bound: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| bound.covers(s)).cloned().collect())
    }

    /// Iterates the scopes.
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.0.iter()
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// How a requirement combines its scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScopeMode {
    /// Every scope is needed (the default).
    #[default]
    AllOf,
    /// One of the scopes is enough.
    AnyOf,
}

/// What a route requires of a key. The empty requirement asks only for a valid key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeRequirement {
    mode: ScopeMode,
    scopes: Vec<Scope>,
}

impl ScopeRequirement {
    /// Any valid key.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Every one of `scopes`.
    ///
    /// # Errors
    /// A [`ScopeError`] for a malformed scope.
    pub fn all_of<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Result<Self, ScopeError> {
        Ok(Self {
            mode: ScopeMode::AllOf,
            scopes: ScopeSet::parse(scopes)?.0.to_vec(),
        })
    }

    /// At least one of `scopes`.
    ///
    /// # Errors
    /// A [`ScopeError`] for a malformed scope.
    pub fn any_of<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Result<Self, ScopeError> {
        Ok(Self {
            mode: ScopeMode::AnyOf,
            scopes: ScopeSet::parse(scopes)?.0.to_vec(),
        })
    }

    /// All of `scopes`, written as literals in the program: no `Result` to handle where the
    /// requirement is built (a layer, an actix factory). For scopes from input, use
    /// [`all_of`](Self::all_of).
    ///
    /// # Panics
    /// When a literal is not a well-formed scope: a bug in the program, found the first time
    /// the line runs (at startup, where layers are built), with the scope in the message.
    #[must_use]
    #[track_caller]
    pub fn all_of_static<const N: usize>(scopes: [&'static str; N]) -> Self {
        Self::from_literals(ScopeMode::AllOf, &scopes)
    }

    /// At least one of `scopes`, written as literals (see [`all_of_static`](Self::all_of_static)).
    ///
    /// # Panics
    /// When a literal is not a well-formed scope.
    #[must_use]
    #[track_caller]
    pub fn any_of_static<const N: usize>(scopes: [&'static str; N]) -> Self {
        Self::from_literals(ScopeMode::AnyOf, &scopes)
    }

    #[track_caller]
    #[allow(
        clippy::panic,
        reason = "a malformed scope literal is a bug in the program"
    )]
    fn from_literals(mode: ScopeMode, scopes: &[&'static str]) -> Self {
        match ScopeSet::parse(scopes) {
            Ok(set) => Self {
                mode,
                scopes: set.0.to_vec(),
            },
            Err(e) => panic!("a scope literal is not a well-formed scope: {e}"),
        }
    }

    /// The combination mode.
    #[must_use]
    pub fn mode(&self) -> ScopeMode {
        self.mode
    }

    /// The required scopes.
    #[must_use]
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// Checks `granted` against the requirement.
    ///
    /// # Errors
    /// The scopes that are missing: for all-of those not covered, for any-of all of them.
    pub fn check(&self, granted: &ScopeSet) -> Result<(), Vec<Scope>> {
        if self.scopes.is_empty() {
            return Ok(());
        }
        match self.mode {
            ScopeMode::AllOf if self.scopes.iter().all(|s| granted.covers(s)) => Ok(()),
            ScopeMode::AllOf => Err(self
                .scopes
                .iter()
                .filter(|s| !granted.covers(s))
                .cloned()
                .collect()),
            ScopeMode::AnyOf => {
                if self.scopes.iter().any(|s| granted.covers(s)) {
                    Ok(())
                } else {
                    Err(self.scopes.clone())
                }
            }
        }
    }
}

/// The scopes create and update may grant. `Any` admits every well-formed scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ScopeCatalog {
    /// Every well-formed scope may be granted.
    #[default]
    Any,
    /// Only scopes covered by these entries may be granted (a grant of `p:*` needs `p:*` or `*`
    /// in the catalog).
    Only(ScopeSet),
}

impl ScopeCatalog {
    /// A catalog limited to `scopes`.
    ///
    /// # Errors
    /// A [`ScopeError`] for a malformed scope.
    pub fn only<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Result<Self, ScopeError> {
        Ok(Self::Only(ScopeSet::parse(scopes)?))
    }

    /// Checks that every scope of `requested` may be granted.
    ///
    /// # Errors
    /// [`ScopeError::NotInCatalog`] listing the refused scopes.
    pub fn admit(&self, requested: &ScopeSet) -> Result<(), ScopeError> {
        match self {
            Self::Any => Ok(()),
            Self::Only(allowed) => {
                let refused: Vec<String> = requested
                    .iter()
                    .filter(|s| !allowed.covers(s))
                    .map(|s| s.as_str().to_owned())
                    .collect();
                if refused.is_empty() {
                    Ok(())
                } else {
                    Err(ScopeError::NotInCatalog(refused))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented pattern (with the length bound) accepts exactly what `FromStr` does.
    #[test]
    fn the_documented_pattern_is_the_parser() {
        let re = regex::Regex::new(SCOPE_PATTERN).unwrap();
        let samples = [
            "*",
            "a",
            "a:*",
            "a::*",
            ":*",
            "",
            "A",
            "a*",
            "a:*:b",
            "**",
            "a b",
            "keyward:admin",
            "reports:read",
            "a-b_c.d:e",
            "é",
            "a:\u{0}",
        ];
        for s in samples
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["x".repeat(129), "x".repeat(128)])
        {
            let by_pattern = re.is_match(&s) && s.len() <= MAX_SCOPE_LEN;
            assert_eq!(s.parse::<Scope>().is_ok(), by_pattern, "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn pattern_and_parser_agree(s in "[a-z:*. A_-]{0,12}") {
            let re = regex::Regex::new(SCOPE_PATTERN).unwrap();
            proptest::prop_assert_eq!(s.parse::<Scope>().is_ok(), re.is_match(&s));
        }
    }

    fn s(x: &str) -> Scope {
        x.parse().unwrap()
    }

    #[test]
    fn static_literals() {
        let r = ScopeRequirement::all_of_static(["reports:read", "a:x"]);
        assert_eq!((r.mode(), r.scopes().len()), (ScopeMode::AllOf, 2));
        let r = ScopeRequirement::any_of_static(["a:x"]);
        assert_eq!(r.mode(), ScopeMode::AnyOf);
    }

    #[test]
    #[should_panic(expected = "a scope literal is not a well-formed scope")]
    fn a_malformed_static_literal_panics() {
        let _ = ScopeRequirement::all_of_static(["BAD SCOPE"]);
    }

    #[test]
    fn parse_rules() {
        for ok in ["reports:read", "a", "*", "reports:*", "a.b-c_d:e", "a:b:*"] {
            assert!(ok.parse::<Scope>().is_ok(), "{ok}");
        }
        for bad in [
            "", "Reports", "a b", "re*", "*:a", ":*", "a:*:b", "**", "é", "a/b",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
        assert_eq!("x".repeat(129).parse::<Scope>(), Err(ScopeError::TooLong));
    }

    #[test]
    fn wildcards_cover() {
        assert!(s("*").covers(&s("anything:at:all")));
        assert!(s("reports:*").covers(&s("reports:read")));
        assert!(s("reports:*").covers(&s("reports:x:y")));
        assert!(!s("reports:*").covers(&s("reports")));
        assert!(!s("reports:*").covers(&s("reportsx:read")));
        assert!(!s("reports:read").covers(&s("reports:*")));
        assert!(s("reports:*").covers(&s("reports:x:*")));
    }

    #[test]
    fn no_wildcard_covers_the_reserved_namespace() {
        for wildcard in ["*", "keyward:*", "keyward:admin:*"] {
            assert!(!s(wildcard).covers(&s("keyward:admin")), "{wildcard}");
            assert!(!s(wildcard).covers(&s("keyward:verify")), "{wildcard}");
        }
        assert!(s("keyward:admin").covers(&s("keyward:admin")));
        assert!(!s("keyward:admin").covers(&s("keyward:verify")));
        let set = ScopeSet::parse(["*", "keyward:verify"]).unwrap();
        assert!(set.holds_exact("keyward:verify"));
        assert!(!set.holds_exact(ADMIN_SCOPE));
        assert!(!set.covers(&s(ADMIN_SCOPE)));
        let need = ScopeRequirement::all_of([ADMIN_SCOPE]).unwrap();
        assert!(need.check(&ScopeSet::parse(["*"]).unwrap()).is_err());
        assert!(need.check(&ScopeSet::parse([ADMIN_SCOPE]).unwrap()).is_ok());
    }

    #[test]
    fn requirements() {
        let granted = ScopeSet::parse(["reports:*", "users:read"]).unwrap();
        let all = ScopeRequirement::all_of(["reports:read", "users:write"]).unwrap();
        assert_eq!(all.check(&granted), Err(vec![s("users:write")]));
        let any = ScopeRequirement::any_of(["billing:read", "users:read"]).unwrap();
        assert_eq!(any.check(&granted), Ok(()));
        let any = ScopeRequirement::any_of(["billing:read"]).unwrap();
        assert_eq!(any.check(&granted), Err(vec![s("billing:read")]));
        assert_eq!(ScopeRequirement::none().check(&ScopeSet::new()), Ok(()));
    }

    #[test]
    fn catalog_bounds_grants() {
        let cat = ScopeCatalog::only(["reports:*", "users:read"]).unwrap();
        assert!(
            cat.admit(&ScopeSet::parse(["reports:read", "users:read"]).unwrap())
                .is_ok()
        );
        assert_eq!(
            cat.admit(&ScopeSet::parse(["*", "users:write"]).unwrap()),
            Err(ScopeError::NotInCatalog(vec![
                "*".into(),
                "users:write".into()
            ]))
        );
        assert!(
            ScopeCatalog::Any
                .admit(&ScopeSet::parse(["*"]).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn intersect_downscopes() {
        let key = ScopeSet::parse(["reports:read", "users:write", "billing:read"]).unwrap();
        let rights = ScopeSet::parse(["reports:*", "billing:read"]).unwrap();
        assert_eq!(
            key.intersect(&rights),
            ScopeSet::parse(["billing:read", "reports:read"]).unwrap()
        );
    }
}
