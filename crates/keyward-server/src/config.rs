//! Command line, environment and `keyward.toml`: parsed with clap, then resolved into
//! [`Settings`] (flag or environment variable, then the config file, then the built-in default).
//!
//! The command line itself (clap's structs and the value parsers) is in [`args`]; this file
//! holds `keyward.toml` ([`FileConfig`]) and the resolution into [`Settings`].
//!
//! Adding a setting: a field in the matching `*Args` struct (flag + env + help naming the
//! default), the same field in [`FileConfig`], and a line in the matching `resolve` function.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward_core::crypto::EncryptionKeyring;
use keyward_core::model::LastUsedStrategy;
use keyward_core::scope::ScopeCatalog;
use keyward_core::sigv4::SignatureError;
use keyward_core::sigv4::SigningOptions;
use keyward_core::{CacheConfig, KeyFormat, Policy};
use serde::Deserialize;

use crate::backend::redact_url;
use crate::duration::parse_duration;
use crate::error::AppError;

/// Scopes the server itself uses; always grantable, whatever `--allowed-scopes` says.
pub(crate) const ADMIN_SCOPE: &str = "keyward:admin";
/// Scope that lets a key call `POST /v1/verify`.
pub(crate) const VERIFY_SCOPE: &str = "keyward:verify";

/// The default database: a SQLite file in the working directory, created when missing.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://keyward.db?mode=rwc";

mod args;
pub(crate) use args::*;

/// `keyward.toml`: every setting a flag has, by the flag's name with `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    database_url: Option<SecretUrl>,
    bind: Option<String>,
    pub(crate) redis_url: Option<SecretUrl>,
    limits_on_redis_loss: Option<RedisLoss>,
    redis_lease: Option<String>,
    database_read_url: Option<SecretUrl>,
    database_read_max_lag: Option<String>,
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
    header_read_timeout: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    owner_header: Option<String>,
    admin_key_file: Option<PathBuf>,
    client_ip_header: Option<String>,
    trusted_proxy: Option<String>,
    forwarded_headers: Option<String>,
    log_format: Option<LogFormat>,
    flush_interval: Option<String>,
    audit_retention: Option<String>,
    usage_retention: Option<String>,
    expiry_notice: Option<String>,
    credits_notice: Option<String>,
    webhook_urls: Option<Vec<String>>,
    webhook_allow_private: Option<bool>,
    sigv4_region: Option<String>,
    sigv4_service: Option<String>,
}

impl FileConfig {
    /// `webhook_urls` of the file (none when absent).
    pub(crate) fn webhook_urls(&self) -> &[String] {
        self.webhook_urls.as_deref().unwrap_or_default()
    }

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
    /// What rate limits do while Redis is lost.
    pub(crate) limits_on_redis_loss: keyward_redis::OnRedisLoss,
    /// How much of a key's traffic one Redis lease covers.
    pub(crate) redis_lease: Duration,
    /// A read replica of the database, and how far it may lag.
    pub(crate) read_replica: Option<(SecretUrl, Duration)>,
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
    /// Longest wait for headers (and on an idle connection), and the connection caps.
    pub(crate) header_read_timeout: Duration,
    /// Most connections open at once.
    pub(crate) max_connections: usize,
    /// Most connections open at once from one client address.
    pub(crate) max_connections_per_client: usize,
    /// Trusted header carrying the client address.
    pub(crate) client_ip_header: Option<axum::http::HeaderName>,
    /// The peers whose `client_ip_header` is believed.
    pub(crate) trusted_proxies: Vec<keyward_core::model::IpNet>,
    /// Where the proxy names the original request of a signed `/v1/authz` call.
    pub(crate) forwarded_headers: Option<ForwardedHeaders>,
    /// Log format.
    pub(crate) log_format: LogFormat,
    /// Usage flush period.
    pub(crate) flush_interval: Duration,
    /// How long audit events are kept.
    pub(crate) audit_retention: Duration,
    /// How long usage analytics are kept.
    pub(crate) usage_retention: Duration,
    /// How long before expiry `key.expiring` is noticed (none: off).
    pub(crate) expiry_notice: Vec<Duration>,
    /// The share of a key's credits left at which `key.credits_low` is noticed (0: off).
    pub(crate) credits_notice: u8,
    /// Lifecycle webhooks, when a URL is configured.
    pub(crate) webhooks: Option<crate::webhooks::WebhookSettings>,
    /// SigV4 region, service and bounds of signed requests.
    pub(crate) signing: SigningOptions,
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
            time::Duration::try_from(d)
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
    let request_timeout = positive_duration(
        "--request-timeout",
        args.request_timeout
            .as_deref()
            .or(file.request_timeout.as_deref()),
        crate::abuse::DEFAULT_REQUEST_TIMEOUT,
    )?;
    let header_read_timeout = positive_duration(
        "--header-read-timeout",
        args.header_read_timeout
            .as_deref()
            .or(file.header_read_timeout.as_deref()),
        crate::abuse::DEFAULT_HEADER_READ_TIMEOUT,
    )?;
    let max_connections = args
        .max_connections
        .or(file.max_connections)
        .unwrap_or(crate::abuse::DEFAULT_MAX_CONNECTIONS);
    let max_connections_per_client = args
        .max_connections_per_client
        .or(file.max_connections_per_client)
        .unwrap_or(crate::abuse::DEFAULT_MAX_CONNECTIONS_PER_CLIENT);
    if max_connections == 0 || max_connections_per_client == 0 {
        return Err(AppError::config(
            "invalid --max-connections or --max-connections-per-client 0: allow at least one"
                .to_owned(),
        ));
    }
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
    let redis_lease = match args.redis_lease.as_deref().or(file.redis_lease.as_deref()) {
        None => keyward_redis::Leasing::default().horizon,
        Some(s) => crate::duration::parse_short_duration(s, Duration::from_secs(60))
            .map_err(|e| AppError::config(format!("invalid --redis-lease {s:?}: {e}")))?,
    };
    let read_replica = match args
        .database_read_url
        .clone()
        .or_else(|| file.database_read_url.clone())
        .filter(|u| !u.trim().is_empty())
    {
        None => None,
        Some(url) => {
            let lag = args
                .database_read_max_lag
                .as_deref()
                .or(file.database_read_max_lag.as_deref())
                .map_or(Ok(Duration::from_secs(10)), parse_duration)
                .map_err(|e| AppError::config(format!("invalid --database-read-max-lag: {e}")))?;
            Some((url, lag))
        }
    };
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
    let trusted = args
        .trusted_proxy
        .clone()
        .or_else(|| file.trusted_proxy.clone())
        .unwrap_or_else(|| DEFAULT_TRUSTED_PROXIES.to_owned());
    let trusted_proxies = trusted
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<keyward_core::model::IpNet>()
                .map_err(|e| AppError::config(format!("invalid --trusted-proxy {s:?}: {}", e.0)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let forwarded_headers = match args
        .forwarded_headers
        .clone()
        .or_else(|| file.forwarded_headers.clone())
        .filter(|s| !s.trim().is_empty())
    {
        None => None,
        Some(s) => Some(
            ForwardedHeaders::parse(&s)
                .map_err(|e| AppError::config(format!("invalid --forwarded-headers {s:?}: {e}")))?,
        ),
    };
    let log_format = args
        .log_format
        .or(file.log_format)
        .unwrap_or(LogFormat::Human);
    let flush_interval = positive_duration(
        "--flush-interval",
        args.flush_interval
            .as_deref()
            .or(file.flush_interval.as_deref()),
        Duration::from_secs(10),
    )?;
    let audit_retention = positive_duration(
        "--audit-retention",
        args.audit_retention
            .as_deref()
            .or(file.audit_retention.as_deref()),
        Duration::from_secs(365 * 24 * 3600),
    )?;
    let usage_retention = positive_duration(
        "--usage-retention",
        args.usage_retention
            .as_deref()
            .or(file.usage_retention.as_deref()),
        Duration::from_secs(400 * 24 * 3600),
    )?;
    let expiry_notice = expiry_notice(
        args.expiry_notice
            .as_deref()
            .or(file.expiry_notice.as_deref())
            .unwrap_or("7d"),
    )?;
    let credits_notice = credits_notice(
        args.credits_notice
            .as_deref()
            .or(file.credits_notice.as_deref())
            .unwrap_or("10%"),
    )?;
    let webhook_urls = if args.webhook_urls.is_empty() {
        file.webhook_urls.clone().unwrap_or_default()
    } else {
        args.webhook_urls.clone()
    };
    let secrets: Vec<String> = args
        .webhook_secrets
        .iter()
        .map(|s| s.expose().to_owned())
        .collect();
    let webhooks = crate::webhooks::WebhookSettings::new(
        webhook_urls,
        &secrets,
        args.webhook_allow_private || file.webhook_allow_private.unwrap_or(false),
    )?;
    let signing = resolve_signing(&args.signing, file)?;
    let encryption = crate::encryption::keyring_from_env()?;
    Ok(Settings {
        store,
        policy,
        cache,
        bind,
        redis_url,
        limits_on_redis_loss: match args
            .limits_on_redis_loss
            .or(file.limits_on_redis_loss)
            .unwrap_or_default()
        {
            RedisLoss::Closed => keyward_redis::OnRedisLoss::FailClosed,
            RedisLoss::Local => keyward_redis::OnRedisLoss::LocalLimits,
        },
        redis_lease,
        read_replica,
        owner_header,
        admin_key_file: args
            .admin_key_file
            .clone()
            .or_else(|| file.admin_key_file.clone()),
        throttle,
        max_concurrent_requests,
        request_timeout,
        header_read_timeout,
        max_connections,
        max_connections_per_client,
        client_ip_header,
        trusted_proxies,
        forwarded_headers,
        log_format,
        flush_interval,
        audit_retention,
        usage_retention,
        expiry_notice,
        credits_notice,
        webhooks,
        signing,
        encryption,
    })
}

/// `--expiry-notice`: durations separated by commas (`30d,7d,1d`), or `off`.
fn expiry_notice(text: &str) -> Result<Vec<Duration>, AppError> {
    if text.trim() == "off" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|d| positive_duration("--expiry-notice", Some(d.trim()), Duration::ZERO))
        .collect()
}

/// `--credits-notice`: a percentage 1–100 (`10%`, or `10`), or `off`.
fn credits_notice(text: &str) -> Result<u8, AppError> {
    let text = text.trim();
    if text == "off" {
        return Ok(0);
    }
    text.trim_end_matches('%')
        .parse::<u8>()
        .ok()
        .filter(|p| (1..=100).contains(p))
        .ok_or_else(|| {
            AppError::config(format!(
                "invalid --credits-notice {text:?}: a percentage from 1% to 100%, or off"
            ))
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
) -> Result<SigningOptions, AppError> {
    let mut config = SigningOptions::default();
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
    match config.check() {
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

/// A duration flag that must be more than zero: `value`, or `default` when it is not given.
fn positive_duration(
    flag: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, AppError> {
    match value.map(parse_duration) {
        None => Ok(default),
        Some(Ok(d)) if !d.is_zero() => Ok(d),
        Some(Ok(_)) => Err(AppError::config(format!(
            "invalid {flag} {:?}: must be more than 0s",
            value.unwrap_or_default()
        ))),
        Some(Err(e)) => Err(AppError::config(format!(
            "invalid {flag} {:?}: {e}",
            value.unwrap_or_default()
        ))),
    }
}

/// The peers whose client-address header is believed by default: a proxy on the same host.
pub(crate) const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.0/8,::1";

/// The headers a forward-auth proxy names the original request in (`--forwarded-headers`):
/// exactly these are read, never another set (review finding 2: a client adds the headers a
/// proxy does not set, and the proxy passes them on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForwardedHeaders {
    /// The original method.
    pub(crate) method: axum::http::HeaderName,
    /// The original path and query.
    pub(crate) uri: axum::http::HeaderName,
    /// The original host, if the proxy names it (else `Host`).
    pub(crate) host: Option<axum::http::HeaderName>,
}

impl ForwardedHeaders {
    /// `nginx`, `traefik`, or `METHOD,URI[,HOST]` header names.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let names: Vec<&str> = match s.trim().to_ascii_lowercase().as_str() {
            "nginx" => vec!["x-original-method", "x-original-uri", "x-forwarded-host"],
            "traefik" => vec!["x-forwarded-method", "x-forwarded-uri", "x-forwarded-host"],
            _ => s.split(',').map(str::trim).collect(),
        };
        let name = |n: &str| {
            axum::http::HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| format!("{n:?} is not a header name"))
        };
        match names.as_slice() {
            [m, u] => Ok(Self {
                method: name(m)?,
                uri: name(u)?,
                host: None,
            }),
            [m, u, h] => Ok(Self {
                method: name(m)?,
                uri: name(u)?,
                host: Some(name(h)?),
            }),
            _ => Err("expected nginx, traefik, or METHOD,URI[,HOST] header names".to_owned()),
        }
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
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        assert_eq!(
            parse_duration(" 1h 30m ").unwrap(),
            Duration::from_secs(5400)
        );
        assert!(parse_duration("500ms").is_err(), "whole seconds only");
        assert!(parse_duration("101y").is_err(), "at most 100 years");
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
