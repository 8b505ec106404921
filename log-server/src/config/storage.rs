//! The scaled backend's tables in `log.toml`: `[postgres]` (the sequence, the small state,
//! the integrator lease and the events database: the events index and the data subjects' keys,
//! through a second pool of `pool_size` connections) and `[bucket]` (the tree, the entry
//! bundles and the published checkpoint), read only with `storage = "scaled"`. Secrets never
//! come from a flag: the database password is in the url, a file (`password_file`) or an
//! environment variable (`password_env`); the bucket's keys come from environment variables (by
//! default `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`) or a file (`credentials_file`: the
//! access key id on its first line, the secret on its second).
//!
//! ```toml
//! storage = "scaled"
//!
//! [postgres]
//! url = "postgresql://cairn@db.internal:5432/cairn"
//! password_file = "/etc/cairn/postgres-password"   # or password_env = "CAIRN_PG_PASSWORD"
//! schema = "cairn"              # one schema per log
//! pool_size = 8
//! connect_timeout_ms = 5000
//! statement_timeout_ms = 10000
//! lease_term_ms = 5000          # a dead integrator is replaced within about this long
//!
//! [bucket]
//! endpoint = "https://s3.eu-west-1.amazonaws.com"
//! bucket = "audit-log"
//! region = "eu-west-1"
//! prefix = ""                   # keys under this prefix, e.g. "logs/audit"
//! credentials_file = "/etc/cairn/s3-credentials"   # or the two variables below
//! # access_key_id_env = "AWS_ACCESS_KEY_ID"
//! # secret_access_key_env = "AWS_SECRET_ACCESS_KEY"
//! # allow_http = false          # plain http:// is allowed on loopback only, unless set
//! request_timeout_ms = 10000
//! operation_timeout_ms = 30000
//! concurrency = 16
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::storage::bucket::BucketConfig;
use crate::storage::postgres::PostgresConfig;
use crate::storage::scaled::lease::LEASE_TERMS;
use crate::storage::{Backend, StoreLimits};

/// The largest password or credentials file read.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// `[postgres]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// The connection string (libpq's `key=value` form or a `postgresql://` URL).
    pub url: Option<String>,
    /// A file holding the password (one line; mode 0600).
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// The schema of this log's tables [default: cairn].
    pub schema: Option<String>,
    /// Connections of this front-end [default: 8].
    pub pool_size: Option<usize>,
    /// Connecting, and waiting for a pooled connection, ms [default: 5000].
    pub connect_timeout_ms: Option<u64>,
    /// One statement, ms [default: 10000].
    pub statement_timeout_ms: Option<u64>,
    /// The integrator lease's term, ms [default: 5000].
    pub lease_term_ms: Option<u64>,
}

/// `[bucket]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketSettings {
    /// `https://host[:port]` (path-style requests).
    pub endpoint: Option<String>,
    /// The bucket, which must exist.
    pub bucket: Option<String>,
    /// The region requests are signed for [default: us-east-1].
    pub region: Option<String>,
    /// A prefix for every key [default: none].
    pub prefix: Option<String>,
    /// A file: the access key id on the first line, the secret access key on the second.
    pub credentials_file: Option<PathBuf>,
    /// The variable holding the access key id [default: AWS_ACCESS_KEY_ID].
    pub access_key_id_env: Option<String>,
    /// The variable holding the secret access key [default: AWS_SECRET_ACCESS_KEY].
    pub secret_access_key_env: Option<String>,
    /// Allow a plain `http://` endpoint that is not on loopback [default: false].
    pub allow_http: Option<bool>,
    /// One request, ms [default: 10000].
    pub request_timeout_ms: Option<u64>,
    /// One operation with its retries, ms [default: 30000].
    pub operation_timeout_ms: Option<u64>,
    /// Requests in flight at once, 1 to 64 [default: 16].
    pub concurrency: Option<usize>,
}

/// The scaled backend, resolved.
#[derive(Clone, Debug)]
pub struct ScaledSettings {
    /// The database.
    pub postgres: PostgresConfig,
    /// The bucket.
    pub bucket: BucketConfig,
    /// The integrator lease's term.
    pub lease_term: Duration,
}

fn value(key: &'static str, detail: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        key,
        detail: detail.into(),
    }
}

/// Checks that the tables fit `backend` and resolves them for the scaled backend.
pub fn resolve(
    backend: Backend,
    postgres: Option<&PostgresSettings>,
    bucket: Option<&BucketSettings>,
    limits: StoreLimits,
) -> Result<Option<ScaledSettings>, ConfigError> {
    match backend {
        Backend::Embedded => {
            if postgres.is_some() || bucket.is_some() {
                return Err(value(
                    "storage",
                    "is `embedded`, but the file has a [postgres] or [bucket] table, which only \
                     storage = \"scaled\" uses",
                ));
            }
            Ok(None)
        }
        Backend::Scaled => {
            let postgres = postgres.ok_or_else(|| {
                value("postgres", "storage = \"scaled\" needs a [postgres] table")
            })?;
            let bucket = bucket
                .ok_or_else(|| value("bucket", "storage = \"scaled\" needs a [bucket] table"))?;
            let (postgres, lease_term) = resolve_postgres(postgres, limits)?;
            Ok(Some(ScaledSettings {
                postgres,
                bucket: resolve_bucket(bucket)?,
                lease_term,
            }))
        }
    }
}

fn millis(key: &'static str, found: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
    let ms = found.unwrap_or(default);
    if !(100..=600_000).contains(&ms) {
        return Err(value(key, format!("must be 100 to 600000 ms, found {ms}")));
    }
    Ok(Duration::from_millis(ms))
}

fn resolve_postgres(
    settings: &PostgresSettings,
    limits: StoreLimits,
) -> Result<(PostgresConfig, Duration), ConfigError> {
    let url = settings
        .url
        .clone()
        .ok_or_else(|| value("postgres.url", "is required"))?;
    let mut config = PostgresConfig::new(url);
    config.password = match (&settings.password_file, &settings.password_env) {
        (Some(_), Some(_)) => {
            return Err(value(
                "postgres.password_file",
                "and postgres.password_env are both set: choose one",
            ))
        }
        (Some(path), None) => Some(read_secret_lines(path, "postgres.password_file", 1)?.remove(0)),
        (None, Some(variable)) => Some(std::env::var(variable).map_err(|_| {
            value(
                "postgres.password_env",
                format!("names {variable}, which is not set (or not UTF-8)"),
            )
        })?),
        (None, None) => None,
    };
    if let Some(schema) = &settings.schema {
        config.schema = schema.clone();
    }
    if let Some(pool_size) = settings.pool_size {
        config.pool_size = pool_size;
    }
    config.connect_timeout = millis(
        "postgres.connect_timeout_ms",
        settings.connect_timeout_ms,
        5000,
    )?;
    config.statement_timeout = millis(
        "postgres.statement_timeout_ms",
        settings.statement_timeout_ms,
        10_000,
    )?;
    config.limits = limits;
    let lease_term = Duration::from_millis(settings.lease_term_ms.unwrap_or(5000));
    if !LEASE_TERMS.contains(&lease_term) {
        return Err(value(
            "postgres.lease_term_ms",
            format!(
                "must be {} to {} ms, found {}",
                LEASE_TERMS.start().as_millis(),
                LEASE_TERMS.end().as_millis(),
                lease_term.as_millis()
            ),
        ));
    }
    Ok((config, lease_term))
}

fn resolve_bucket(settings: &BucketSettings) -> Result<BucketConfig, ConfigError> {
    let endpoint = settings
        .endpoint
        .clone()
        .ok_or_else(|| value("bucket.endpoint", "is required"))?;
    let name = settings
        .bucket
        .clone()
        .ok_or_else(|| value("bucket.bucket", "is required"))?;
    let (access_key_id, secret) = match &settings.credentials_file {
        Some(path) => {
            if settings.access_key_id_env.is_some() || settings.secret_access_key_env.is_some() {
                return Err(value(
                    "bucket.credentials_file",
                    "and the *_env keys are both set: choose one",
                ));
            }
            let mut lines = read_secret_lines(path, "bucket.credentials_file", 2)?;
            let secret = lines.remove(1);
            (lines.remove(0), secret)
        }
        None => {
            let read = |key: &'static str, variable: &str| {
                std::env::var(variable).map_err(|_| {
                    value(
                        key,
                        format!("the variable {variable} is not set (or not UTF-8): the bucket's credentials come from it or from credentials_file"),
                    )
                })
            };
            let id_variable = settings
                .access_key_id_env
                .as_deref()
                .unwrap_or("AWS_ACCESS_KEY_ID");
            let secret_variable = settings
                .secret_access_key_env
                .as_deref()
                .unwrap_or("AWS_SECRET_ACCESS_KEY");
            (
                read("bucket.access_key_id_env", id_variable)?,
                read("bucket.secret_access_key_env", secret_variable)?,
            )
        }
    };
    let mut config = BucketConfig::new(endpoint, name, access_key_id, secret);
    if let Some(region) = &settings.region {
        config.region = region.clone();
    }
    if let Some(prefix) = &settings.prefix {
        config.prefix = prefix.clone();
    }
    if let Some(allow_http) = settings.allow_http {
        config.allow_http = allow_http || config.allow_http;
    }
    config.request_timeout = millis(
        "bucket.request_timeout_ms",
        settings.request_timeout_ms,
        10_000,
    )?;
    config.operation_timeout = millis(
        "bucket.operation_timeout_ms",
        settings.operation_timeout_ms,
        30_000,
    )?;
    if let Some(concurrency) = settings.concurrency {
        if !(1..=64).contains(&concurrency) {
            return Err(value(
                "bucket.concurrency",
                format!("must be 1 to 64, found {concurrency}"),
            ));
        }
        config.concurrency = concurrency;
    }
    Ok(config)
}

/// The first `count` non-empty lines of a small secret file that only its owner may read.
fn read_secret_lines(
    path: &Path,
    key: &'static str,
    count: usize,
) -> Result<Vec<String>, ConfigError> {
    use std::os::unix::fs::PermissionsExt as _;
    let read = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(value(
            key,
            format!(
                "{} has mode {mode:o}; it must not be readable by group or others (chmod 600)",
                path.display()
            ),
        ));
    }
    if metadata.len() > MAX_SECRET_FILE_BYTES {
        return Err(value(
            key,
            format!(
                "{} is {} bytes; at most {MAX_SECRET_FILE_BYTES}",
                path.display(),
                metadata.len()
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .take(count)
        .map(str::to_owned)
        .collect();
    if lines.len() < count {
        return Err(value(
            key,
            format!("{} must hold {count} non-empty line(s)", path.display()),
        ));
    }
    Ok(lines)
}
