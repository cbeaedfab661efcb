//! The bodies of the types every adapter declares, written once. Each adapter declares its own
//! type (so that it can implement its framework's traits on it) with
//! [`define_rejection!`](crate::define_rejection) or
//! [`define_require_scopes!`](crate::define_require_scopes) and adds only the framework part.

/// Declares an adapter's `Rejection`: a refused request carrying a boxed [`Problem`], with the
/// constructors applications use in their owner resolvers and admin checks, accessors,
/// `Debug`, `Display`, `Error`, and conversions from [`Problem`], [`VerifyError`] and
/// [`ServiceError`] (whose outages are logged). For keyward's adapters; not an everyday API.
///
/// [`Problem`]: crate::Problem
/// [`VerifyError`]: crate::VerifyError
/// [`ServiceError`]: crate::ServiceError
#[doc(hidden)]
#[macro_export]
macro_rules! define_rejection {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        $vis struct $name(Box<$crate::Problem>);

        impl $name {
            /// A rejection answering with `problem`.
            #[must_use]
            pub fn new(problem: $crate::Problem) -> Self {
                Self(Box::new(problem))
            }

            /// A rejection of `code` with a human `detail`.
            #[must_use]
            pub fn with_code(code: $crate::ErrorCode, detail: impl Into<String>) -> Self {
                Self::new($crate::Problem::new(code, Some(detail.into())))
            }

            /// `401 API_KEY_MISSING`: no credential.
            #[must_use]
            pub fn missing() -> Self {
                Self::new($crate::Problem::missing())
            }

            /// `401 API_KEY_INVALID`: the one answer for every kind of bad key.
            #[must_use]
            pub fn invalid() -> Self {
                Self::with_code($crate::ErrorCode::ApiKeyInvalid, "the API key is not valid")
            }

            /// `401 OWNER_UNAUTHENTICATED`: the application could not authenticate the caller
            /// (no session, for an owner resolver).
            #[must_use]
            pub fn unauthenticated() -> Self {
                Self::with_code(
                    $crate::ErrorCode::OwnerUnauthenticated,
                    "no owner session: sign in to manage API keys",
                )
            }

            /// `403 FORBIDDEN` with a detail.
            #[must_use]
            pub fn forbidden(detail: impl Into<String>) -> Self {
                Self::with_code($crate::ErrorCode::Forbidden, detail)
            }

            /// `404 API_KEY_NOT_FOUND`.
            #[must_use]
            pub fn not_found() -> Self {
                Self::new($crate::http::key_not_found())
            }

            /// `422 VALIDATION_FAILED` with one field error.
            #[must_use]
            pub fn validation(field: &str, code: &str, message: impl Into<String>) -> Self {
                Self::new($crate::problem::validation(field, code, message))
            }

            /// The stable code, e.g. `API_KEY_INVALID`.
            #[must_use]
            pub fn code(&self) -> $crate::ErrorCode {
                self.0.code
            }

            /// The problem document.
            #[must_use]
            pub fn problem(&self) -> &$crate::Problem {
                &self.0
            }

            /// Consumes the rejection, returning its problem document.
            #[must_use]
            pub fn into_problem(self) -> $crate::Problem {
                *self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("status", &self.0.status)
                    .field("code", &self.0.code)
                    .field("detail", &self.0.detail)
                    .finish_non_exhaustive()
            }
        }

        /// `403 FORBIDDEN: detail`.
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{} {}", self.0.status, self.0.code)?;
                if let Some(d) = &self.0.detail {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
        }

        impl ::std::error::Error for $name {}

        impl From<$crate::Problem> for $name {
            fn from(p: $crate::Problem) -> Self {
                Self::new(p)
            }
        }

        /// Every kind of bad key is the same `API_KEY_INVALID` outside.
        impl From<&$crate::VerifyError> for $name {
            fn from(e: &$crate::VerifyError) -> Self {
                Self::new($crate::Problem::from(e))
            }
        }

        impl From<$crate::VerifyError> for $name {
            fn from(e: $crate::VerifyError) -> Self {
                Self::from(&e)
            }
        }

        /// Store outages and internal errors are logged at `warn`; their detail never reaches
        /// the client.
        impl From<&$crate::ServiceError> for $name {
            fn from(e: &$crate::ServiceError) -> Self {
                Self::new($crate::http::service_problem(e))
            }
        }

        impl From<$crate::ServiceError> for $name {
            fn from(e: $crate::ServiceError) -> Self {
                Self::from(&e)
            }
        }
    };
}

/// Declares an adapter's `RequireScopes`: a route-level [`ScopeRequirement`] in an `Arc`, with
/// its constructors (fallible for input, panicking at build for literals) and the check every
/// adapter runs on the request's principal. For keyward's adapters; not an everyday API.
///
/// [`ScopeRequirement`]: crate::ScopeRequirement
#[doc(hidden)]
#[macro_export]
macro_rules! define_require_scopes {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $name {
            requirement: ::std::sync::Arc<$crate::ScopeRequirement>,
        }

        impl $name {
            /// Requires `requirement`.
            #[must_use]
            pub fn new(requirement: $crate::ScopeRequirement) -> Self {
                Self {
                    requirement: ::std::sync::Arc::new(requirement),
                }
            }

            /// Requires every one of `scopes`.
            ///
            /// # Errors
            /// A [`ScopeError`]($crate::scope::ScopeError) for a malformed scope.
            pub fn all_of<I: IntoIterator<Item = S>, S: AsRef<str>>(
                scopes: I,
            ) -> Result<Self, $crate::scope::ScopeError> {
                $crate::ScopeRequirement::all_of(scopes).map(Self::new)
            }

            /// Requires at least one of `scopes`.
            ///
            /// # Errors
            /// A [`ScopeError`]($crate::scope::ScopeError) for a malformed scope.
            pub fn any_of<I: IntoIterator<Item = S>, S: AsRef<str>>(
                scopes: I,
            ) -> Result<Self, $crate::scope::ScopeError> {
                $crate::ScopeRequirement::any_of(scopes).map(Self::new)
            }

            /// Requires all of `scopes`, written as literals: no `?` where the guard is built.
            ///
            /// # Panics
            /// When a literal is not a well-formed scope
            /// ([`ScopeRequirement::all_of_static`]($crate::ScopeRequirement::all_of_static)).
            #[must_use]
            #[track_caller]
            pub fn all_of_static<const N: usize>(scopes: [&'static str; N]) -> Self {
                Self::new($crate::ScopeRequirement::all_of_static(scopes))
            }

            /// Requires at least one of `scopes`, written as literals.
            ///
            /// # Panics
            /// When a literal is not a well-formed scope
            /// ([`ScopeRequirement::any_of_static`]($crate::ScopeRequirement::any_of_static)).
            #[must_use]
            #[track_caller]
            pub fn any_of_static<const N: usize>(scopes: [&'static str; N]) -> Self {
                Self::new($crate::ScopeRequirement::any_of_static(scopes))
            }

            /// The requirement.
            #[must_use]
            pub fn requirement(&self) -> &$crate::ScopeRequirement {
                &self.requirement
            }
        }
    };
}

/// The methods of an adapter's `ManagementConfig` that only set [`ManagementOptions`]
/// (`prefix`, `admin_prefix`, `allow_api_key_callers`, `body_limit`) or read it (`options`,
/// `has_admin`), and set its admin check and credential headers, expanded inside its `impl`
/// block with the adapter's admin-check trait and credential-headers type. The config has the
/// fields `options: ManagementOptions`, `admin: Option<Arc<dyn AdminCheck>>` and `headers`. For
/// keyward's adapters; not an everyday API.
///
/// [`ManagementOptions`]: crate::http::ManagementOptions
#[doc(hidden)]
#[macro_export]
macro_rules! management_config_options {
    ($check:path, $headers:ty) => {
        /// Mounts the admin routes, guarded by `check` (a key holding `keyward:admin` passes
        /// too).
        #[must_use]
        pub fn admin(mut self, check: impl $check) -> Self {
            self.admin = Some(::std::sync::Arc::new(check));
            self
        }

        /// The credential headers, to recognise API-key callers (as configured on the
        /// authentication middleware).
        #[must_use]
        pub fn credential_headers(mut self, headers: $headers) -> Self {
            self.headers = headers;
            self
        }

        /// Mounts the self-service routes under `prefix` (default `/api-keys`; a leading `/` is
        /// added, a trailing one dropped). The admin routes follow it:
        /// `{admin_prefix}/owners/{owner_id}{prefix}`.
        #[must_use]
        pub fn prefix(mut self, prefix: &str) -> Self {
            self.options.set_prefix(prefix);
            self
        }

        /// Mounts the admin routes under `{admin_prefix}/owners/{owner_id}{prefix}` (default
        /// `/admin`).
        #[must_use]
        pub fn admin_prefix(mut self, admin_prefix: &str) -> Self {
            self.options.set_admin_prefix(admin_prefix);
            self
        }

        /// Lets requests that present an API key manage keys: the key is verified first (unless
        /// the authentication middleware did already) and acts for its own owner. Off by
        /// default: a leaked key must not mint more keys.
        #[must_use]
        pub fn allow_api_key_callers(mut self, allow: bool) -> Self {
            self.options.allow_api_key_callers = allow;
            self
        }

        /// Largest accepted request body in bytes (default 64 KiB); larger ones get `413`.
        #[must_use]
        pub fn body_limit(mut self, bytes: usize) -> Self {
            self.options.body_limit = bytes;
            self
        }

        /// Where the routes are mounted, and the rules for their callers.
        #[must_use]
        pub fn options(&self) -> &$crate::http::ManagementOptions {
            &self.options
        }

        /// Whether the admin routes are mounted (an admin check is set).
        #[must_use]
        pub fn has_admin(&self) -> bool {
            self.admin.is_some()
        }
    };
}
