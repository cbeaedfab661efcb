//! Command line, environment and `keyward.toml`: parsed with clap, then resolved into
//! [`Settings`] (flag or environment variable, then the config file, then the built-in default).
//!
//! Adding a setting: a field in the matching `*Args` struct (flag + env + help naming the
//! default), the same field in [`FileConfig`], and a line in the matching `resolve` function.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keyward_core::crypto::EncryptionKeyring;
use keyward_core::model::LastUsedStrategy;
use keyward_core::scope::ScopeCatalog;
use keyward_core::signing::SigningConfig;
use keyward_core::sigv4::SignatureError;
use keyward_core::{CacheConfig, KeyFormat, Policy};
use serde::Deserialize;

use crate::error::AppError;

/// Scopes the server itself uses; always grantable, whatever `--allowed-scopes` says.
pub(crate) const ADMIN_SCOPE: &str = "keyward:admin";
/// Scope that lets a key call `POST /v1/verify`.
pub(crate) const VERIFY_SCOPE: &str = "keyward:verify";

/// The default database: a SQLite file in the working directory, created when missing.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://keyward.db?mode=rwc";

/// keyward: API-key authentication server and admin CLI.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the HTTP server (creates and migrates the database on start).
    Serve(Box<ServeArgs>),
    /// Manage keys directly in the database (no server needed).
    Keys(Box<KeysArgs>),
    /// Create or upgrade the database schema, then exit.
    Migrate(MigrateArgs),
    /// Find keyward keys in files and folders (exit 1 when any is found).
    Scan(ScanArgs),
    /// Sign a raw HTTP/1.1 request read on stdin with SigV4 (or print its canonical request or
    /// string to sign), to call a keyward server or debug a signature mismatch.
    Sign(Box<SignArgs>),
}

/// `keyward sign`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("credential").required(true).args(["key", "access_key_id"])))]
pub(crate) struct SignArgs {
    /// A keyward signing key: access key id = its key id, secret = the whole raw key
    #[arg(
        long,
        env = "KEYWARD_SIGN_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) key: Option<SecretArg>,
    /// Any SigV4 access key id (with --secret)
    #[arg(long, requires = "secret", value_name = "ID")]
    pub(crate) access_key_id: Option<String>,
    /// The SigV4 secret for --access-key-id
    #[arg(
        long,
        env = "KEYWARD_SIGN_SECRET",
        hide_env_values = true,
        requires = "access_key_id",
        value_name = "SECRET"
    )]
    pub(crate) secret: Option<SecretArg>,
    /// A session token, signed as X-Amz-Security-Token (other SigV4 services; keyward keys have none)
    #[arg(long, value_name = "TOKEN")]
    pub(crate) session_token: Option<String>,
    /// Signing time, YYYYMMDDTHHMMSSZ or RFC 3339 [default: now]
    #[arg(long, value_name = "TIME")]
    pub(crate) date: Option<String>,
    /// Credential-scope region [default: us-east-1]
    #[arg(long, env = "KEYWARD_SIGV4_REGION", value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// Credential-scope service [default: keyward]
    #[arg(long, env = "KEYWARD_SIGV4_SERVICE", value_name = "SERVICE")]
    pub(crate) service: Option<String>,
    /// Print the canonical request instead of the signed request
    #[arg(long, conflicts_with = "string_to_sign")]
    pub(crate) canonical: bool,
    /// Print the string to sign instead of the signed request
    #[arg(long)]
    pub(crate) string_to_sign: bool,
}

/// Where the keys live.
#[derive(Debug, Clone, Args)]
pub(crate) struct StoreArgs {
    /// Database URL: sqlite://PATH?mode=rwc, postgres://…, mysql://… [default: sqlite://keyward.db?mode=rwc]
    #[arg(
        long,
        env = "KEYWARD_DATABASE_URL",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    pub(crate) database_url: Option<SecretUrl>,
    /// Read settings from this TOML file [default: ./keyward.toml when it exists]
    #[arg(long, env = "KEYWARD_CONFIG", global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
}

/// Key format and management policy.
#[derive(Debug, Clone, Args)]
pub(crate) struct PolicyArgs {
    /// Key prefix, `[a-z][a-z0-9]{1,15}` [default: kw]
    #[arg(long, env = "KEYWARD_PREFIX", global = true, value_name = "PREFIX")]
    pub(crate) prefix: Option<String>,
    /// Environment marker in keys, `[a-z0-9]{1,8}` [default: live]
    #[arg(long = "env", env = "KEYWARD_ENV", global = true, value_name = "ENV")]
    pub(crate) key_env: Option<String>,
    /// Comma-separated scopes keys may be granted (wildcards allowed); empty = any well-formed scope
    #[arg(
        long,
        env = "KEYWARD_ALLOWED_SCOPES",
        global = true,
        value_name = "SCOPES"
    )]
    pub(crate) allowed_scopes: Option<String>,
    /// Most active (not revoked, not expired) keys per owner; 0 = unlimited [default: 20]
    #[arg(
        long,
        env = "KEYWARD_MAX_KEYS_PER_OWNER",
        global = true,
        value_name = "N"
    )]
    pub(crate) max_keys_per_owner: Option<u32>,
    /// Lifetime of keys created without one: e.g. 365d, 12h, 30m, or none [default: none]
    #[arg(
        long,
        env = "KEYWARD_DEFAULT_TTL",
        global = true,
        value_name = "DURATION"
    )]
    pub(crate) default_ttl: Option<String>,
    /// Rate limit of every key an owner creates through self-service, REQUESTS/WINDOW (e.g. 100/60s) [default: none]
    #[arg(
        long,
        env = "KEYWARD_SELF_SERVICE_RATE_LIMIT",
        global = true,
        value_name = "N/DURATION"
    )]
    pub(crate) self_service_rate_limit: Option<String>,
    /// Credits of every key an owner creates through self-service, N or N/REFILL (e.g. 10000/30d) [default: none]
    #[arg(
        long,
        env = "KEYWARD_SELF_SERVICE_CREDITS",
        global = true,
        value_name = "N[/DURATION]"
    )]
    pub(crate) self_service_credits: Option<String>,
    /// Longest lifetime of a self-service key, also its expiry when none is asked for (e.g. 90d) [default: none]
    #[arg(
        long,
        env = "KEYWARD_SELF_SERVICE_MAX_TTL",
        global = true,
        value_name = "DURATION"
    )]
    pub(crate) self_service_max_ttl: Option<String>,
}

/// Runtime settings of the verification engine.
#[derive(Debug, Clone, Args)]
pub(crate) struct EngineArgs {
    /// How last use is recorded: disabled, immediate, throttled or throttled:300s [default: throttled:300s]
    #[arg(long, env = "KEYWARD_LAST_USED", value_name = "STRATEGY")]
    pub(crate) last_used: Option<String>,
    /// Most key records kept in the in-process cache; 0 disables it [default: 10000]
    #[arg(long, env = "KEYWARD_CACHE_SIZE", value_name = "N")]
    pub(crate) cache_size: Option<usize>,
    /// Longest a cached key record is trusted without a database read [default: 30s]
    #[arg(long, env = "KEYWARD_CACHE_TTL", value_name = "DURATION")]
    pub(crate) cache_ttl: Option<String>,
    /// How long a key id the database did not know is answered unknown without asking again; 0s disables [default: 5s]
    #[arg(long, env = "KEYWARD_UNKNOWN_KEY_TTL", value_name = "DURATION")]
    pub(crate) unknown_key_ttl: Option<String>,
    /// Failed verifications per client address after which its uncached keys get 429, FAILURES/WINDOW or off [default: 50/60s]
    #[arg(long, env = "KEYWARD_FAILURE_THROTTLE", value_name = "N/DURATION")]
    pub(crate) failure_throttle: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// `keyward serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// Database and config file.
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Key format and policy.
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    /// Engine settings.
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:8080]
    #[arg(long, env = "KEYWARD_BIND", value_name = "ADDR")]
    pub(crate) bind: Option<String>,
    /// Redis URL for a shared cache invalidation bus, rate limits and credits across instances
    #[arg(
        long,
        env = "KEYWARD_REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) redis_url: Option<SecretUrl>,
    /// Most requests served at once; more get 503 at once [default: 1024]
    #[arg(long, env = "KEYWARD_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    pub(crate) max_concurrent_requests: Option<usize>,
    /// Longest a request may take, reading its body included; then 408 [default: 30s]
    #[arg(long, env = "KEYWARD_REQUEST_TIMEOUT", value_name = "DURATION")]
    pub(crate) request_timeout: Option<String>,
    /// Where the first start writes the admin key it creates (0600) [default: beside a SQLite database, else ./keyward.admin-key]
    #[arg(long, env = "KEYWARD_ADMIN_KEY_FILE", value_name = "PATH")]
    pub(crate) admin_key_file: Option<PathBuf>,
    /// Enable self-service /api-keys routes; the owner is read from this header, which a trusted proxy must set
    #[arg(long, env = "KEYWARD_OWNER_HEADER", value_name = "NAME")]
    pub(crate) owner_header: Option<String>,
    /// Take the client address (for IP allowlists) from this header, e.g. X-Real-IP or X-Forwarded-For (its last entry); only behind a proxy that sets it
    #[arg(long, env = "KEYWARD_CLIENT_IP_HEADER", value_name = "NAME")]
    pub(crate) client_ip_header: Option<String>,
    /// Log format [default: human]
    #[arg(long, env = "KEYWARD_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
    /// How often batched usage and last-used times are written [default: 10s]
    #[arg(long, env = "KEYWARD_FLUSH_INTERVAL", value_name = "DURATION")]
    pub(crate) flush_interval: Option<String>,
    /// Request signing (SigV4).
    #[command(flatten)]
    pub(crate) signing: SigningArgs,
}

/// The SigV4 credential scope signed requests must use. Signing itself is enabled by
/// `KEYWARD_ENCRYPTION_KEY` (environment only).
#[derive(Debug, Clone, Args)]
pub(crate) struct SigningArgs {
    /// SigV4 region signed requests must name in their credential scope [default: us-east-1]
    #[arg(long, env = "KEYWARD_SIGV4_REGION", value_name = "REGION")]
    pub(crate) sigv4_region: Option<String>,
    /// SigV4 service signed requests must name in their credential scope [default: keyward]
    #[arg(long, env = "KEYWARD_SIGV4_SERVICE", value_name = "SERVICE")]
    pub(crate) sigv4_service: Option<String>,
}

/// `keyward keys …`.
#[derive(Debug, Clone, Args)]
pub(crate) struct KeysArgs {
    /// Database and config file.
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Key format and policy.
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Redis of the running servers: revoke, rotate and changes evict the key from their caches at once
    #[arg(
        long,
        env = "KEYWARD_REDIS_URL",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    pub(crate) redis_url: Option<SecretUrl>,
    /// The key command.
    #[command(subcommand)]
    pub(crate) command: KeysCommand,
}

/// The key commands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key; prints the raw key once.
    Create {
        /// Owner id (a user, team or tenant of your application).
        #[arg(long)]
        owner: String,
        /// Human name of the key.
        #[arg(long)]
        name: String,
        /// A scope to grant (repeat, or separate with commas).
        #[arg(long = "scope", value_delimiter = ',')]
        scopes: Vec<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// Lifetime from now, e.g. 30d, 12h.
        #[arg(long, conflicts_with = "expires_at")]
        ttl: Option<String>,
        /// Absolute expiry, RFC 3339 (2027-01-31T00:00:00Z).
        #[arg(long)]
        expires_at: Option<String>,
        /// A signing key (SigV4; refused as a bearer token). Needs KEYWARD_ENCRYPTION_KEY.
        #[arg(long)]
        signing: bool,
    },
    /// Re-seal every signing secret under the current KEYWARD_ENCRYPTION_KEY version (after a
    /// rotation; the old key must still be in KEYWARD_ENCRYPTION_KEY_PREVIOUS).
    ReEncrypt,
    /// List an owner's keys.
    List {
        /// Owner id.
        #[arg(long)]
        owner: String,
    },
    /// Show one key.
    Show {
        /// The key id (the 12 characters after `prefix_env_`).
        key_id: String,
    },
    /// Revoke a key (at once, for good).
    Revoke {
        /// The key id.
        key_id: String,
    },
    /// Issue a successor; the old key keeps working for the grace period.
    Rotate {
        /// The key id.
        key_id: String,
        /// How long the old key keeps working, e.g. 1h, 0s [default: 1h]
        #[arg(long)]
        grace: Option<String>,
    },
}

/// `keyward migrate`.
#[derive(Debug, Clone, Args)]
pub(crate) struct MigrateArgs {
    /// Database and config file.
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print the SQL of every migration for this database instead of applying it (for your own migration tool); touches no database
    #[arg(long, value_enum, value_name = "DIALECT")]
    pub(crate) print_sql: Option<SqlDialect>,
    /// With --print-sql: prefix every table and index name
    #[arg(long, requires = "print_sql", value_name = "PREFIX")]
    pub(crate) table_prefix: Option<String>,
}

/// A SQL dialect for `keyward migrate --print-sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SqlDialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    /// SQLite.
    Sqlite,
}

/// `keyward scan`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ScanArgs {
    /// Files and folders to scan.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Print findings as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub(crate) progress: bool,
    /// Skip files larger than this many bytes [default: 10 MiB]
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024)]
    pub(crate) max_file_size: u64,
}

/// `keyward.toml`: every setting a flag has, by the flag's name with `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    database_url: Option<SecretUrl>,
    bind: Option<String>,
    pub(crate) redis_url: Option<SecretUrl>,
    prefix: Option<String>,
    env: Option<String>,
    allowed_scopes: Option<Vec<String>>,
    max_keys_per_owner: Option<u32>,
    default_ttl: Option<String>,
    self_service_rate_limit: Option<String>,
    self_service_credits: Option<String>,
    self_service_max_ttl: Option<String>,
    last_used: Option<String>,
    cache_size: Option<usize>,
    cache_ttl: Option<String>,
    unknown_key_ttl: Option<String>,
    failure_throttle: Option<String>,
    max_concurrent_requests: Option<usize>,
    request_timeout: Option<String>,
    owner_header: Option<String>,
    admin_key_file: Option<PathBuf>,
    client_ip_header: Option<String>,
    log_format: Option<LogFormat>,
    flush_interval: Option<String>,
    sigv4_region: Option<String>,
    sigv4_service: Option<String>,
}

impl FileConfig {
    /// Reads `--config`, or `./keyward.toml` when it exists.
    ///
    /// # Errors
    /// An unreadable or invalid file.
    pub(crate) fn load(explicit: Option<&Path>) -> Result<Self, AppError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("keyward.toml");
                if !p.is_file() {
                    return Ok(Self::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            AppError::config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_owned();
            AppError::config(format!("invalid config file {}: {msg}", path.display()))
        })
    }
}

/// A URL that may carry a password: `Debug` shows it redacted. Dereferences to the full URL.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub(crate) struct SecretUrl(String);

impl std::str::FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::ops::Deref for SecretUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

/// A secret given on the command line or in the environment: `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretArg(zeroize::Zeroizing<String>);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(zeroize::Zeroizing::new(s.to_owned())))
    }
}

impl SecretArg {
    /// The secret itself.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Resolved store settings.
#[derive(Debug, Clone)]
pub(crate) struct StoreSettings {
    /// The database URL.
    pub(crate) database_url: SecretUrl,
}

/// Resolved `serve` settings. New sections (request signing, …) are added as fields.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Database.
    pub(crate) store: StoreSettings,
    /// Management policy and key format.
    pub(crate) policy: Policy,
    /// Cache sizing.
    pub(crate) cache: CacheConfig,
    /// Listen address.
    pub(crate) bind: SocketAddr,
    /// Redis, if any.
    pub(crate) redis_url: Option<SecretUrl>,
    /// Trusted owner header for self-service routes.
    pub(crate) owner_header: Option<axum::http::HeaderName>,
    /// Where the bootstrapped admin key is written (`None`: the default place).
    pub(crate) admin_key_file: Option<PathBuf>,
    /// Failure throttling by client address.
    pub(crate) throttle: keyward_core::throttle::FailureThrottle,
    /// Most requests in flight.
    pub(crate) max_concurrent_requests: usize,
    /// Deadline of one request, body included.
    pub(crate) request_timeout: Duration,
    /// Trusted header carrying the client address.
    pub(crate) client_ip_header: Option<axum::http::HeaderName>,
    /// Log format.
    pub(crate) log_format: LogFormat,
    /// Usage flush period.
    pub(crate) flush_interval: Duration,
    /// SigV4 region, service and bounds of signed requests.
    pub(crate) signing: SigningConfig,
    /// Seals the secrets of signing keys; `None` disables request signing.
    pub(crate) encryption: Option<EncryptionKeyring>,
}

/// Resolves the store settings.
///
/// # Errors
/// A URL of no supported database.
pub(crate) fn resolve_store(
    args: &StoreArgs,
    file: &FileConfig,
) -> Result<StoreSettings, AppError> {
    let database_url = args
        .database_url
        .clone()
        .or_else(|| file.database_url.clone())
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| SecretUrl(DEFAULT_DATABASE_URL.to_owned()));
    crate::backend::kind_of(&database_url)?;
    Ok(StoreSettings { database_url })
}

/// Resolves the policy (format, catalog, limits, TTL) and the last-used strategy.
///
/// # Errors
/// A bad prefix, env, scope list or duration.
pub(crate) fn resolve_policy(
    args: &PolicyArgs,
    last_used: Option<&str>,
    file: &FileConfig,
) -> Result<Policy, AppError> {
    let prefix = args
        .prefix
        .clone()
        .or_else(|| file.prefix.clone())
        .unwrap_or_else(|| "kw".into());
    let env = args
        .key_env
        .clone()
        .or_else(|| file.env.clone())
        .unwrap_or_else(|| "live".into());
    let format = KeyFormat::new(&prefix, &env).map_err(|e| {
        AppError::config(format!("invalid --prefix {prefix:?} or --env {env:?}: {e}"))
    })?;
    let scopes: Vec<String> = match (&args.allowed_scopes, &file.allowed_scopes) {
        (Some(s), _) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        (None, Some(v)) => v.clone(),
        (None, None) => Vec::new(),
    };
    let catalog = if scopes.is_empty() {
        ScopeCatalog::Any
    } else {
        let mut all = scopes;
        all.push(ADMIN_SCOPE.into());
        all.push(VERIFY_SCOPE.into());
        ScopeCatalog::only(&all)
            .map_err(|e| AppError::config(format!("invalid --allowed-scopes: {e}")))?
    };
    let max = args
        .max_keys_per_owner
        .or(file.max_keys_per_owner)
        .unwrap_or(20);
    let default_ttl = match args.default_ttl.as_deref().or(file.default_ttl.as_deref()) {
        None => None,
        Some(s) => parse_optional_duration(s)
            .map_err(|e| AppError::config(format!("invalid --default-ttl {s:?}: {e}")))?,
    };
    let default_ttl = match default_ttl {
        None => None,
        Some(d) => Some(
            chrono::Duration::from_std(d)
                .map_err(|_| AppError::config("invalid --default-ttl: too long".to_owned()))?,
        ),
    };
    let last_used = match last_used.or(file.last_used.as_deref()) {
        None => LastUsedStrategy::default(),
        Some(s) => parse_last_used(s)
            .map_err(|e| AppError::config(format!("invalid --last-used {s:?}: {e}")))?,
    };
    let self_service = crate::self_service::resolve(
        args.self_service_rate_limit
            .as_deref()
            .or(file.self_service_rate_limit.as_deref()),
        args.self_service_credits
            .as_deref()
            .or(file.self_service_credits.as_deref()),
        args.self_service_max_ttl
            .as_deref()
            .or(file.self_service_max_ttl.as_deref()),
    )?;
    Ok(Policy {
        format,
        catalog,
        max_keys_per_owner: (max > 0).then_some(max),
        default_ttl,
        last_used,
        self_service,
        ..Policy::default()
    })
}

/// Resolves everything `serve` needs.
///
/// # Errors
/// Any invalid value, named with its flag.
pub(crate) fn resolve_serve(args: &ServeArgs, file: &FileConfig) -> Result<Settings, AppError> {
    let store = resolve_store(&args.store, file)?;
    let policy = resolve_policy(&args.policy, args.engine.last_used.as_deref(), file)?;
    let mut cache = CacheConfig::default();
    if let Some(n) = args.engine.cache_size.or(file.cache_size) {
        cache.capacity = n;
    }
    if let Some(s) = args
        .engine
        .cache_ttl
        .as_deref()
        .or(file.cache_ttl.as_deref())
    {
        cache.ttl = parse_duration(s)
            .map_err(|e| AppError::config(format!("invalid --cache-ttl {s:?}: {e}")))?;
    }
    if let Some(s) = args
        .engine
        .unknown_key_ttl
        .as_deref()
        .or(file.unknown_key_ttl.as_deref())
    {
        cache.unknown_ttl = parse_duration(s)
            .map_err(|e| AppError::config(format!("invalid --unknown-key-ttl {s:?}: {e}")))?;
    }
    let throttle_s = args
        .engine
        .failure_throttle
        .as_deref()
        .or(file.failure_throttle.as_deref())
        .unwrap_or(crate::abuse::DEFAULT_FAILURE_THROTTLE);
    let throttle = crate::abuse::parse_throttle(throttle_s)
        .map_err(|e| AppError::config(format!("invalid --failure-throttle {throttle_s:?}: {e}")))?;
    let request_timeout = match args
        .request_timeout
        .as_deref()
        .or(file.request_timeout.as_deref())
    {
        None => crate::abuse::DEFAULT_REQUEST_TIMEOUT,
        Some(s) => match parse_duration(s) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                return Err(AppError::config(format!(
                    "invalid --request-timeout {s:?}: must be more than 0s"
                )));
            }
            Err(e) => {
                return Err(AppError::config(format!(
                    "invalid --request-timeout {s:?}: {e}"
                )));
            }
        },
    };
    let max_concurrent_requests = args
        .max_concurrent_requests
        .or(file.max_concurrent_requests)
        .unwrap_or(crate::abuse::DEFAULT_MAX_CONCURRENT);
    if max_concurrent_requests == 0 {
        return Err(AppError::config(
            "invalid --max-concurrent-requests 0: allow at least one request".to_owned(),
        ));
    }
    let bind_s = args
        .bind
        .clone()
        .or_else(|| file.bind.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let bind = parse_bind(&bind_s)
        .map_err(|e| AppError::config(format!("invalid --bind {bind_s:?}: {e}")))?;
    let redis_url = args
        .redis_url
        .clone()
        .or_else(|| file.redis_url.clone())
        .filter(|s| !s.trim().is_empty());
    if let Some(u) = redis_url
        .as_ref()
        .filter(|u| !(u.starts_with("redis://") || u.starts_with("rediss://")))
    {
        return Err(AppError::config(format!(
            "invalid --redis-url {:?}: expected redis://HOST[:PORT][/DB] or rediss://…",
            redact_url(u)
        )));
    }
    let owner_header = match args
        .owner_header
        .clone()
        .or_else(|| file.owner_header.clone())
    {
        None => None,
        Some(h) if h.trim().is_empty() => None,
        Some(h) => Some(
            axum::http::HeaderName::from_bytes(h.trim().as_bytes()).map_err(|_| {
                AppError::config(format!("invalid --owner-header {h:?}: not a header name"))
            })?,
        ),
    };
    let client_ip_header = header_name(
        "--client-ip-header",
        args.client_ip_header
            .clone()
            .or_else(|| file.client_ip_header.clone()),
    )?;
    let log_format = args
        .log_format
        .or(file.log_format)
        .unwrap_or(LogFormat::Human);
    let flush_interval = match args
        .flush_interval
        .as_deref()
        .or(file.flush_interval.as_deref())
    {
        None => Duration::from_secs(10),
        Some(s) => {
            let d = parse_duration(s)
                .map_err(|e| AppError::config(format!("invalid --flush-interval {s:?}: {e}")))?;
            if d.is_zero() {
                return Err(AppError::config(
                    "invalid --flush-interval: must be more than 0s".to_owned(),
                ));
            }
            d
        }
    };
    let signing = resolve_signing(&args.signing, file)?;
    let encryption = crate::encryption::keyring_from_env()?;
    Ok(Settings {
        store,
        policy,
        cache,
        bind,
        redis_url,
        owner_header,
        admin_key_file: args
            .admin_key_file
            .clone()
            .or_else(|| file.admin_key_file.clone()),
        throttle,
        max_concurrent_requests,
        request_timeout,
        client_ip_header,
        log_format,
        flush_interval,
        signing,
        encryption,
    })
}

/// Resolves the SigV4 region and service (flag or environment, then the file, then
/// `us-east-1` / `keyward`).
///
/// # Errors
/// A region or service SigV4 cannot carry.
pub(crate) fn resolve_signing(
    args: &SigningArgs,
    file: &FileConfig,
) -> Result<SigningConfig, AppError> {
    let mut config = SigningConfig::default();
    if let Some(r) = args
        .sigv4_region
        .clone()
        .or_else(|| file.sigv4_region.clone())
    {
        config.region = r.trim().to_owned();
    }
    if let Some(s) = args
        .sigv4_service
        .clone()
        .or_else(|| file.sigv4_service.clone())
    {
        config.service = s.trim().to_owned();
    }
    match config.verify_options() {
        Ok(_) => Ok(config),
        Err(SignatureError::InvalidService) => Err(AppError::config(format!(
            "invalid --sigv4-service {:?}: 1 to 64 of A-Z a-z 0-9 - . _",
            config.service
        ))),
        Err(_) => Err(AppError::config(format!(
            "invalid --sigv4-region {:?}: 1 to 64 of A-Z a-z 0-9 - . _",
            config.region
        ))),
    }
}

fn header_name(
    flag: &str,
    value: Option<String>,
) -> Result<Option<axum::http::HeaderName>, AppError> {
    match value {
        None => Ok(None),
        Some(h) if h.trim().is_empty() => Ok(None),
        Some(h) => axum::http::HeaderName::from_bytes(h.trim().as_bytes())
            .map(Some)
            .map_err(|_| AppError::config(format!("invalid {flag} {h:?}: not a header name"))),
    }
}

/// `HOST:PORT`, `:PORT` or `PORT`.
fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(port) = s.trim_start_matches(':').parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some((host, port)) = s.rsplit_once(':') {
        let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
        if host == "localhost" {
            return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
        }
        return Err(format!(
            "{host:?} is not an IP address (use 0.0.0.0, 127.0.0.1, [::1], …)"
        ));
    }
    Err("expected HOST:PORT, e.g. 127.0.0.1:8080".into())
}

/// A duration like `90s`, `30m`, `12h`, `365d`, `2w` or a sum `1h30m`. A bare number is seconds.
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
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut saw_unit = false;
    let bad = || format!("expected a duration like 30s, 15m, 12h, 365d (got {s:?})");
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let mult: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "duration too long".to_owned())?;
        saw_unit = true;
    }
    if !num.is_empty() || !saw_unit {
        return Err(bad());
    }
    if total > 100 * 365 * 86_400 {
        return Err("duration too long (at most 100 years)".into());
    }
    Ok(Duration::from_secs(total))
}

/// A duration or `none`/`never`.
///
/// # Errors
/// As [`parse_duration`]; zero is refused.
pub(crate) fn parse_optional_duration(s: &str) -> Result<Option<Duration>, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "none" | "never" | "off" => Ok(None),
        _ => {
            let d = parse_duration(s)?;
            if d.is_zero() {
                return Err("must be more than 0s (use `none` for no default)".into());
            }
            Ok(Some(d))
        }
    }
}

/// `disabled`, `immediate`, `throttled` or `throttled:300s`.
///
/// # Errors
/// A human-readable reason.
pub(crate) fn parse_last_used(s: &str) -> Result<LastUsedStrategy, String> {
    let s = s.trim().to_ascii_lowercase();
    match s.as_str() {
        "disabled" | "off" | "none" => Ok(LastUsedStrategy::Disabled),
        "immediate" => Ok(LastUsedStrategy::Immediate),
        "throttled" => Ok(LastUsedStrategy::default()),
        _ => match s.strip_prefix("throttled:") {
            Some(d) => {
                let d = parse_duration(d)?;
                if d.is_zero() {
                    return Err(
                        "the throttle window must be more than 0s (or use immediate)".into(),
                    );
                }
                Ok(LastUsedStrategy::Throttled(d.as_secs()))
            }
            None => Err("expected disabled, immediate, throttled or throttled:300s".into()),
        },
    }
}

/// A URL with any password replaced, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.chars().take(200).collect();
    };
    let (authority, tail) = rest
        .split_once('/')
        .map_or((rest, None), |(a, t)| (a, Some(t)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let mut out = format!("{scheme}://{authority}");
    if let Some(t) = tail {
        out.push('/');
        out.push_str(t);
    }
    out.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("365d").unwrap(),
            Duration::from_secs(365 * 86_400)
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("12x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5h3").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert_eq!(parse_optional_duration("none").unwrap(), None);
        assert!(parse_optional_duration("0s").is_err());
    }

    #[test]
    fn last_used() {
        assert_eq!(
            parse_last_used("disabled").unwrap(),
            LastUsedStrategy::Disabled
        );
        assert_eq!(
            parse_last_used("immediate").unwrap(),
            LastUsedStrategy::Immediate
        );
        assert_eq!(
            parse_last_used("throttled:300s").unwrap(),
            LastUsedStrategy::Throttled(300)
        );
        assert_eq!(
            parse_last_used("throttled:5m").unwrap(),
            LastUsedStrategy::Throttled(300)
        );
        assert!(parse_last_used("sometimes").is_err());
        assert!(parse_last_used("throttled:0s").is_err());
    }

    #[test]
    fn bind_and_urls() {
        assert_eq!(parse_bind("127.0.0.1:8080").unwrap().port(), 8080);
        assert_eq!(parse_bind(":9000").unwrap().port(), 9000);
        assert_eq!(parse_bind("localhost:1").unwrap().port(), 1);
        assert!(parse_bind("example.com:80").is_err());
        assert!(parse_bind("127.0.0.1:99999").is_err());
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        let u: SecretUrl = "redis://:pw@h:6379".parse().unwrap();
        assert!(!format!("{u:?}").contains("pw"));
        assert_eq!(&*u, "redis://:pw@h:6379");
    }
}
