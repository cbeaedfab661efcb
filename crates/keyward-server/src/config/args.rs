//! The command line as clap parses it: the commands, their flags (each with its environment
//! variable), and the value parsers they use. [`super`] resolves them into settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keyward_core::model::LastUsedStrategy;
use serde::Deserialize;

use crate::duration::parse_duration;

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
    /// Show the audit log, newest first: who created, changed, rotated and revoked which key,
    /// when, from where.
    Audit(AuditArgs),
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

/// `--limits-on-redis-loss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RedisLoss {
    /// Fail closed: 503.
    #[default]
    Closed,
    /// Per-instance rate limits until Redis answers.
    Local,
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
    /// A read replica of --database-url (a PostgreSQL standby): key lookups the cache missed read it first; writes, the owner cap, listings and usage stay on the primary
    #[arg(
        long,
        env = "KEYWARD_DATABASE_READ_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) database_read_url: Option<SecretUrl>,
    /// The longest the read replica may lag: a key that changed is read from the primary for this long [default: 10s]
    #[arg(long, env = "KEYWARD_DATABASE_READ_MAX_LAG", value_name = "DURATION")]
    pub(crate) database_read_max_lag: Option<String>,
    /// While Redis is lost: `closed` answers 503 to rate-limited keys, `local` limits them per instance (n instances admit up to n times a limit); credits always fail closed [default: closed]
    #[arg(long, env = "KEYWARD_LIMITS_ON_REDIS_LOSS", value_name = "POLICY")]
    pub(crate) limits_on_redis_loss: Option<RedisLoss>,
    /// How much of a key's recent traffic one lease of its Redis rate limit or credits covers; 0s asks Redis on every request [default: 100ms]
    #[arg(long, env = "KEYWARD_REDIS_LEASE", value_name = "DURATION")]
    pub(crate) redis_lease: Option<String>,
    /// Most requests served at once; more get 503 at once [default: 1024]
    #[arg(long, env = "KEYWARD_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    pub(crate) max_concurrent_requests: Option<usize>,
    /// Longest a request may take, reading its body included; then 408 [default: 30s]
    #[arg(long, env = "KEYWARD_REQUEST_TIMEOUT", value_name = "DURATION")]
    pub(crate) request_timeout: Option<String>,
    /// Longest wait for a request's headers, and for the next request on an idle keep-alive connection [default: 10s]
    #[arg(long, env = "KEYWARD_HEADER_READ_TIMEOUT", value_name = "DURATION")]
    pub(crate) header_read_timeout: Option<String>,
    /// Most connections open at once (cut to what the open-file limit allows); more are closed at once [default: 10000]
    #[arg(long, env = "KEYWARD_MAX_CONNECTIONS", value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// Most connections open at once from one client address (--trusted-proxy peers are exempt) [default: 256]
    #[arg(long, env = "KEYWARD_MAX_CONNECTIONS_PER_CLIENT", value_name = "N")]
    pub(crate) max_connections_per_client: Option<usize>,
    /// Where the first start writes the admin key it creates (0600) [default: beside a SQLite database, else ./keyward.admin-key]
    #[arg(long, env = "KEYWARD_ADMIN_KEY_FILE", value_name = "PATH")]
    pub(crate) admin_key_file: Option<PathBuf>,
    /// Enable self-service /api-keys routes; the owner is read from this header, which a trusted proxy must set
    #[arg(long, env = "KEYWARD_OWNER_HEADER", value_name = "NAME")]
    pub(crate) owner_header: Option<String>,
    /// Take the client address (for IP allowlists) from this header, e.g. X-Real-IP or X-Forwarded-For (its last entry); only behind a proxy that sets it
    #[arg(long, env = "KEYWARD_CLIENT_IP_HEADER", value_name = "NAME")]
    pub(crate) client_ip_header: Option<String>,
    /// Peers whose --client-ip-header is believed, comma-separated addresses or CIDRs; from others the peer address is the client [default: 127.0.0.0/8,::1]
    #[arg(long, env = "KEYWARD_TRUSTED_PROXY", value_name = "CIDRS")]
    pub(crate) trusted_proxy: Option<String>,
    /// The headers in which the proxy in front names the original request of a signed /v1/authz call: nginx (X-Original-Method, X-Original-URI, X-Forwarded-Host), traefik (X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host), or header names METHOD,URI or METHOD,URI,HOST; without it signed requests are refused there
    #[arg(long, env = "KEYWARD_FORWARDED_HEADERS", value_name = "SET")]
    pub(crate) forwarded_headers: Option<String>,
    /// Log format [default: human]
    #[arg(long, env = "KEYWARD_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
    /// How often batched usage and last-used times are written [default: 10s]
    #[arg(long, env = "KEYWARD_FLUSH_INTERVAL", value_name = "DURATION")]
    pub(crate) flush_interval: Option<String>,
    /// Deliver every audit event to this URL as a Standard Webhooks POST (repeat, or separate with commas); needs KEYWARD_WEBHOOK_SECRET
    #[arg(
        long = "webhook-url",
        env = "KEYWARD_WEBHOOK_URL",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub(crate) webhook_urls: Vec<String>,
    /// The webhook signing secret, whsec_… (repeat, or separate with commas, the newest first, while one rotates); prefer the environment variable
    #[arg(
        long = "webhook-secret",
        env = "KEYWARD_WEBHOOK_SECRET",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "SECRET"
    )]
    pub(crate) webhook_secrets: Vec<SecretArg>,
    /// Let webhook URLs target private, loopback and link-local addresses (refused by default: SSRF)
    #[arg(long, env = "KEYWARD_WEBHOOK_ALLOW_PRIVATE")]
    pub(crate) webhook_allow_private: bool,
    /// How long audit events are kept; older ones are deleted in the background, hourly [default: 365d]
    #[arg(long, env = "KEYWARD_AUDIT_RETENTION", value_name = "DURATION")]
    pub(crate) audit_retention: Option<String>,
    /// Record key.expiring (an audit event, and a webhook) once per key this long before it expires; several, comma-separated (30d,7d,1d), or off [default: 7d]
    #[arg(long, env = "KEYWARD_EXPIRY_NOTICE", value_name = "DURATIONS")]
    pub(crate) expiry_notice: Option<String>,
    /// Record key.credits_low once per key and credit period when its remaining credits fall to this share of its limit (10%), or off [default: 10%]
    #[arg(long, env = "KEYWARD_CREDITS_NOTICE", value_name = "PERCENT")]
    pub(crate) credits_notice: Option<String>,
    /// How long usage analytics are kept (hourly counts by key and outcome); older hours are deleted in the background, hourly [default: 400d]
    #[arg(long, env = "KEYWARD_USAGE_RETENTION", value_name = "DURATION")]
    pub(crate) usage_retention: Option<String>,
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

/// A key state `keys list --state` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ListState {
    /// Usable now.
    Active,
    /// Revoked.
    Revoked,
    /// Deactivated.
    Inactive,
    /// Past its expiry.
    Expired,
    /// Before its start.
    NotYetValid,
}

impl From<ListState> for keyward_core::model::KeyState {
    fn from(s: ListState) -> Self {
        match s {
            ListState::Active => Self::Active,
            ListState::Revoked => Self::Revoked,
            ListState::Inactive => Self::Inactive,
            ListState::Expired => Self::Expired,
            ListState::NotYetValid => Self::NotYetValid,
        }
    }
}

/// How `keys list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ListFormat {
    /// An aligned table.
    Table,
    /// A JSON array of keys.
    Json,
}

/// The key commands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key and print the raw key once; or, with --count or --owners-from, many keys
    /// at once, written with their raw keys to --out.
    #[command(group(clap::ArgGroup::new("owners").required(true).args(["owner", "owners_from"])))]
    Create {
        /// Owner id (a user, team or tenant of your application).
        #[arg(long)]
        owner: Option<String>,
        /// A file of owner ids, one a line: keys for each of them (blank lines and lines
        /// starting with # are skipped).
        #[arg(long, value_name = "FILE")]
        owners_from: Option<std::path::PathBuf>,
        /// Keys to create for each owner. Created 1,000 to a transaction, with progress.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        /// Where to write the new keys (one JSON object a line, raw key included): a new file,
        /// created readable by its owner only. Needed for more than one key.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
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
    /// List keys, oldest first: every key, or those the filters name (with the global --env
    /// or KEYWARD_ENV, only keys of that environment).
    List {
        /// Only this owner's keys.
        #[arg(long)]
        owner: Option<String>,
        /// Only keys in this state now.
        #[arg(long, value_enum)]
        state: Option<ListState>,
        /// At most this many keys (default: all); where more follow, the cursor to pass to
        /// --after is printed on stderr.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
        /// Start after this cursor (from a previous --limit listing).
        #[arg(long)]
        after: Option<String>,
        /// Output format (--json is short for --format json).
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
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
    /// Show usage analytics: a key's verifications (or, with --owner, every key of an owner's)
    /// by outcome, in hourly or daily buckets, each outcome with a sparkline, and by tag.
    Usage(UsageArgs),
    /// Top up a key's credits: its balance moves by --add (negative takes credits away).
    Credits {
        /// The key id.
        key_id: String,
        /// Credits to add, e.g. 1000 or -50.
        #[arg(long, allow_negative_numbers = true)]
        add: i64,
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

/// `keyward keys usage`.
#[derive(Debug, Clone, Args)]
pub(crate) struct UsageArgs {
    /// The key id (or its display form); omit it with --owner.
    #[arg(required_unless_present = "owner")]
    pub(crate) key_id: Option<String>,
    /// Every key of this owner, summed.
    #[arg(long, conflicts_with = "key_id")]
    pub(crate) owner: Option<String>,
    /// From then: RFC 3339, or a duration back from now (24h, 7d) [default: 24h, or 30d
    /// by day]
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Until then: RFC 3339, or a duration back from now [default: now]
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// Bucket size.
    #[arg(long, value_enum, default_value_t = UsageGranularity::Hour)]
    pub(crate) by: UsageGranularity,
    /// Only verifications carrying this tag.
    #[arg(long)]
    pub(crate) tag: Option<String>,
}

/// The bucket size of `keyward keys usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum UsageGranularity {
    /// One bucket an hour.
    Hour,
    /// One bucket a day (UTC).
    Day,
}

/// `keyward audit`.
#[derive(Debug, Clone, Args)]
pub(crate) struct AuditArgs {
    /// Database and config file.
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Only events of this owner's keys.
    #[arg(long)]
    pub(crate) owner: Option<String>,
    /// Only events of this key (its id, or its display form).
    #[arg(long, value_name = "KEY_ID")]
    pub(crate) key: Option<String>,
    /// Only this action: key.created, key.updated, key.revoked, key.rotated, key.reactivated,
    /// key.leaked, key.redigested, admin.bootstrapped.
    #[arg(long)]
    pub(crate) action: Option<String>,
    /// Only this actor: a kind (admin, admin_key, owner, key, cli, application, system),
    /// optionally with its id (owner:alice).
    #[arg(long)]
    pub(crate) actor: Option<String>,
    /// Only events since then: RFC 3339, or a duration back from now (24h, 7d).
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Only events before then: RFC 3339, or a duration back from now.
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// At most this many events, the newest.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
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
    /// Skip files larger than this many bytes (10 MiB)
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024)]
    pub(crate) max_file_size: u64,
}

/// A URL that may carry a password: `Debug` shows it redacted. Dereferences to the full URL.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub(crate) struct SecretUrl(pub(super) String);

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
        write!(f, "{:?}", crate::backend::redact_url(&self.0))
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

/// `HOST:PORT`, `:PORT` or `PORT`.
pub(crate) fn parse_bind(s: &str) -> Result<SocketAddr, String> {
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
