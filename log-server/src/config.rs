//! The log server's configuration: one TOML file (`log.toml`), every scalar key overridable by a
//! `CAIRN_LOG_<KEY>` environment variable and a `--<key>` flag (flag > environment > file >
//! default). Producers and witnesses are lists and come from the file.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "/var/lib/cairn-log"
//! storage = "embedded"             # "embedded" (files in data_dir) or "scaled" (PostgreSQL
//!                                  # and a bucket, shared by several front-ends: [postgres] and
//!                                  # [bucket], see config/storage.rs)
//! objects_dir = "/var/www/log"     # optional: the tree as tlog-tiles files for a static server
//! origin = "example.com/audit"
//! key_file = "/etc/cairn/log.key"   # or the key in a PKCS#11 token: [pkcs11] below
//! # key_history_dir = "/etc/cairn/key-history"   # rotations: cairn-log rotate-key (docs/keys.md)
//! max_leaf_bytes = 65535
//! checkpoint_interval_ms = 1000
//! # completeness_index = true   # the event index whose root checkpoints carry (false: raw leaves)
//! # self_audit = true   # record every search, event view and export as an event (cairn.read.*)
//! witness_quorum = 1
//! # witness_ca_file = "/etc/cairn/private-ca.pem"   # for witnesses behind a private CA
//! # receipt_policy = "/etc/cairn/policy.txt"   # ?wait=checkpoint receipts verify under it
//!
//! [[producers]]
//! name = "billing"
//! token_sha256 = "9f86d08...(64 hex digits)"
//!
//! # Principals with a role: producer (writes), reader (queries, exports), admin (erasure,
//! # legal holds). A producer listed above is a principal with role producer.
//! [[principals]]
//! name = "compliance"
//! role = "reader"
//! token_sha256 = "..."
//!
//! # A principal known by its client certificate (mTLS; needs [http] tls_client_ca_file):
//! # the SHA-256 of the certificate, as `openssl x509 -noout -fingerprint -sha256` prints it.
//! [[principals]]
//! name = "payments"
//! role = "producer"
//! client_cert_sha256 = "AB:CD:...(32 bytes)"
//!
//! # Rate limits per principal, answered 429 with Retry-After beyond them; without a default
//! # a principal without its own limit is unlimited.
//! [rate_limits]
//! requests_per_second = 100
//! burst = 200
//! [rate_limits.principals.billing]
//! requests_per_second = 5000
//! burst = 10000
//!
//! # Principals, producers and rate limits are read again on SIGHUP and when this file
//! # changes (checked every config_reload_interval_ms, default 2000); other keys need a restart.
//!
//! # Payload retention: payloads of matching events are erased this long after receipt.
//! [[retention]]
//! action = "session.login"        # and/or resource_type = "..."
//! max_age_seconds = 2592000
//!
//! # Audit events' contents: the key-encryption key, the data subject, public entry bundles
//! # (config/privacy.rs).
//! [privacy]
//! kek_file = "/etc/cairn/events.kek"
//!
//! [[witnesses]]
//! name = "witness.example"
//! url = "https://witness.example"
//! vkey = "witness.example+abcd1234+AQ..."
//! # across the witness's key rotation, its old and new keys (config/witnesses.rs):
//! # vkeys = ["witness.example+abcd1234+AQ...", "witness.example+5e6f7a8b+BK..."]
//!
//! # The web UI (/ui/): the monitor whose GET /status its health panel shows (docs/ui.md).
//! [ui]
//! monitor_url = "http://127.0.0.1:8090"
//!
//! # The HTTP edge (cairn-edge): timeouts and the connection cap; each key also
//! # CAIRN_LOG_<KEY> and --<key>.
//! [http]
//! header_read_timeout_ms = 10000
//! body_read_timeout_ms = 10000
//! body_min_bytes_per_sec = 4096
//! idle_timeout_ms = 5000
//! max_connections = 15000
//! overload_idle_timeout_ms = 250
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_keys::{NoteSigner, Pkcs11Key};
use cairn_spec::note::{Ed25519Signer, KeyName};

use crate::key_history::LogSigner;
use serde::Deserialize;

use crate::events::auth::{Access, Credentials, Rate, RateLimits, MAX_CREDENTIALS};
use crate::events::{EventSettings, Principal, RetentionRule, Role};
use crate::publisher::Witness;
use crate::sequencer::SequencerConfig;
use crate::storage::Backend;

mod access;
mod file;
mod keys;
mod privacy;
mod server_settings;
mod storage;
mod witnesses;

pub use access::token_digest_hex;
use access::Resolved;
pub use file::{watch_principals, ConfigVersion};
pub use keys::{new_token_key, open_token_key, read_key_file, write_new_key, KEY_READERS};
pub use server_settings::ServerSettings;
pub use storage::{BucketSettings, PostgresSettings, ScaledSettings};
pub use witnesses::{WitnessConfig, WitnessKeys, MAX_KEYS_PER_WITNESS};

/// The largest leaf: C2SP tlog-tiles entry bundles prefix each entry with a u16 length.
pub const MAX_LEAF_BYTES: u32 = 65535;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The configuration file (or the receipt policy) could not be read, or its TOML is
    /// malformed: the file, and the line and column of a TOML fault.
    #[error(transparent)]
    File(#[from] cairn_edge::ConfigFileError),
    /// A key of `[http]` is wrong.
    #[error("configuration table `[http]`: {0}")]
    Http(#[from] cairn_edge::SettingsError),
    /// A value is missing or wrong.
    #[error("configuration key `{key}`: {detail}")]
    Value {
        /// The key.
        key: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The key file's mode lets others read it.
    #[error("the key file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)")]
    LooseKeyMode {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
}

/// A producer allowed to add leaves.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerConfig {
    /// Its name (part of its idempotency keys).
    pub name: String,
    /// SHA-256 of its bearer token, 64 hex digits.
    pub token_sha256: String,
}

/// A principal: a bearer token's or a client certificate's holder, and its role.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    /// Its name (bound into the events it submits as `submitted_by`).
    pub name: String,
    /// `producer`, `reader` or `admin`.
    pub role: Role,
    /// SHA-256 of its bearer token, 64 hex digits.
    pub token_sha256: Option<String>,
    /// SHA-256 of its client certificate's DER encoding: 64 hex digits, or 32 pairs separated
    /// by colons as `openssl x509 -fingerprint -sha256` prints them.
    pub client_cert_sha256: Option<String>,
}

/// `[rate_limits]`: a limit for every principal and some principals' own.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Requests a second of a principal without its own limit [default: unlimited].
    pub requests_per_second: Option<u32>,
    /// Requests at once after a quiet spell [default: requests_per_second].
    pub burst: Option<u32>,
    /// Limits by principal name.
    #[serde(default)]
    pub principals: BTreeMap<String, Rate>,
}

/// Every key of `log.toml`. Scalars are optional here; defaults apply after overrides.
#[derive(Clone, Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CAIRN_LOG_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the log's state.
    #[arg(long, env = "CAIRN_LOG_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage backend: embedded (files in the data directory) or scaled (PostgreSQL and an
    /// S3-compatible bucket, shared by several front-ends; needs the [postgres] and [bucket]
    /// tables of the file) [default: embedded].
    #[arg(long, env = "CAIRN_LOG_STORAGE")]
    pub storage: Option<Backend>,
    /// Directory to publish the tree into as C2SP tlog-tiles files (checkpoint, tiles, entry
    /// bundles), for a static server or a CDN to serve [default: none].
    #[arg(long, env = "CAIRN_LOG_OBJECTS_DIR")]
    pub objects_dir: Option<PathBuf>,
    /// The log's origin (must be the key's name).
    #[arg(long, env = "CAIRN_LOG_ORIGIN")]
    pub origin: Option<String>,
    /// File holding the signing key (PRIVATE+KEY+..., mode 0600); or a `[pkcs11]` table in
    /// the file for a key in a token.
    #[arg(long, env = "CAIRN_LOG_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// The signing key in a PKCS#11 token (file only): module, token_label or slot,
    /// key_label, pin_file or pin_env. The key is named after `origin`.
    #[arg(skip)]
    #[serde(default)]
    pub pkcs11: Option<cairn_keys::Pkcs11Config>,
    /// Directory of the log's key history (spec/docs/key-history.md), written by `rotate-key`,
    /// `retire-key` and `revoke-key`: checkpoints are signed by every held key the history
    /// makes valid at their size [default: none, the one key signs everything].
    #[arg(long, env = "CAIRN_LOG_KEY_HISTORY_DIR")]
    pub key_history_dir: Option<PathBuf>,
    /// Largest leaf in bytes [default and maximum: 65535].
    #[arg(long, env = "CAIRN_LOG_MAX_LEAF_BYTES")]
    pub max_leaf_bytes: Option<u32>,
    /// Largest /add-batch body in bytes [default: 8388608].
    #[arg(long, env = "CAIRN_LOG_MAX_BATCH_BODY_BYTES")]
    pub max_batch_body_bytes: Option<usize>,
    /// Most entries per durable write and per /add-batch [default: 8192].
    #[arg(long, env = "CAIRN_LOG_BATCH_MAX_ENTRIES")]
    pub batch_max_entries: Option<usize>,
    /// Most leaves admitted and not yet durable before 503 [default: 262144].
    #[arg(long, env = "CAIRN_LOG_MAX_PENDING_LEAVES")]
    pub max_pending_leaves: Option<usize>,
    /// Milliseconds between checkpoints [default: 1000].
    #[arg(long, env = "CAIRN_LOG_CHECKPOINT_INTERVAL_MS")]
    pub checkpoint_interval_ms: Option<u64>,
    /// Cosignatures needed to publish (0: none, a dev log) [default: number of witnesses].
    #[arg(long, env = "CAIRN_LOG_WITNESS_QUORUM")]
    pub witness_quorum: Option<usize>,
    /// Timeout of one witness request, ms [default: 5000].
    #[arg(long, env = "CAIRN_LOG_WITNESS_TIMEOUT_MS")]
    pub witness_timeout_ms: Option<u64>,
    /// PEM CA certificates trusted for witnesses' https:// URLs, beside the public roots (a
    /// private CA).
    #[arg(long, env = "CAIRN_LOG_WITNESS_CA_FILE")]
    pub witness_ca_file: Option<PathBuf>,
    /// Longest wait of POST /add?wait=checkpoint, ms [default: 30000].
    #[arg(long, env = "CAIRN_LOG_CHECKPOINT_WAIT_MS")]
    pub checkpoint_wait_ms: Option<u64>,
    /// A tlog-policy file (as handed to verifiers): `?wait=checkpoint` then answers only a
    /// receipt that verifies under it, waiting for the timestamp tokens it needs.
    #[arg(long, env = "CAIRN_LOG_RECEIPT_POLICY")]
    pub receipt_policy: Option<PathBuf>,
    /// Milliseconds between retention runs [default: 60000].
    #[arg(long, env = "CAIRN_LOG_MAINTENANCE_INTERVAL_MS")]
    pub maintenance_interval_ms: Option<u64>,
    /// Most events in one POST /v1/events/batch [default: 1000].
    #[arg(long, env = "CAIRN_LOG_MAX_BATCH_EVENTS")]
    pub max_batch_events: Option<usize>,
    /// Keep the completeness index of audit events and carry its root in every checkpoint
    /// (`false` for a log of raw leaves) [default: true].
    #[arg(long, env = "CAIRN_LOG_COMPLETENESS_INDEX")]
    pub completeness_index: Option<bool>,
    /// Record every search, event view and export of audit events as an event of the reading
    /// principal (`cairn.read.*`), named in the answer's `Cairn-Self-Audit` header
    /// [default: true].
    #[arg(long, env = "CAIRN_LOG_SELF_AUDIT")]
    pub self_audit: Option<bool>,
    /// How often the configuration file is checked for a change, ms; principals, producers and
    /// rate limits are then read again (as on SIGHUP) [default: 2000].
    #[arg(long, env = "CAIRN_LOG_CONFIG_RELOAD_INTERVAL_MS")]
    pub config_reload_interval_ms: Option<u64>,
    /// Rate limits per principal (file only).
    #[arg(skip)]
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    /// Principals with roles (file only).
    #[arg(skip)]
    #[serde(default)]
    pub principals: Vec<PrincipalConfig>,
    /// Payload retention rules (file only).
    #[arg(skip)]
    #[serde(default)]
    pub retention: Vec<RetentionRule>,
    /// Producers (file only).
    #[arg(skip)]
    #[serde(default)]
    pub producers: Vec<ProducerConfig>,
    /// Audit events' privacy: `[privacy]` (file only; config/privacy.rs).
    #[arg(skip)]
    #[serde(default)]
    pub privacy: privacy::PrivacyConfig,
    /// Witnesses (file only).
    #[arg(skip)]
    #[serde(default)]
    pub witnesses: Vec<WitnessConfig>,
    /// The database of `storage = "scaled"` (file only).
    #[arg(skip)]
    #[serde(default)]
    pub postgres: Option<PostgresSettings>,
    /// The bucket of `storage = "scaled"` (file only).
    #[arg(skip)]
    #[serde(default)]
    pub bucket: Option<BucketSettings>,
    /// The web UI: `[ui]` in the file (file only).
    #[arg(skip)]
    #[serde(default)]
    pub ui: UiConfig,
    /// The HTTP edge: `[http]` in the file.
    #[command(flatten)]
    #[serde(default)]
    pub http: HttpSettings,
}

/// `[ui]`: the web UI's options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// The monitor whose `GET /status` the health panel reads (its origin is then allowed by
    /// the page's Content-Security-Policy).
    pub monitor_url: Option<String>,
}

cairn_edge::settings!(
    /// The HTTP edge's keys (`[http]` in log.toml, `CAIRN_LOG_<KEY>`, `--<key>`).
    pub struct HttpSettings, "CAIRN_LOG_"
);

impl Settings {
    /// `self` with every value `over` sets replacing it.
    pub fn overlay(mut self, over: &Settings) -> Settings {
        cairn_edge::overlay!(
            self,
            over,
            listen,
            data_dir,
            storage,
            objects_dir,
            origin,
            key_file,
            key_history_dir,
            max_leaf_bytes,
            max_batch_body_bytes,
            batch_max_entries,
            max_pending_leaves,
            checkpoint_interval_ms,
            witness_quorum,
            witness_timeout_ms,
            witness_ca_file,
            checkpoint_wait_ms,
            receipt_policy,
            maintenance_interval_ms,
            max_batch_events,
            completeness_index,
            self_audit,
            config_reload_interval_ms
        );
        self.http = self.http.overlay(&over.http);
        self
    }

    /// Checks everything and reads the key.
    pub fn resolve(&self) -> Result<ServerSettings, ConfigError> {
        let missing = |key: &'static str| ConfigError::Value {
            key,
            detail: "is required".into(),
        };
        let data_dir = self.data_dir.clone().ok_or_else(|| missing("data_dir"))?;
        let signer = self.resolve_signer()?;
        if let Some(origin) = &self.origin {
            if signer.key_name().as_str() != origin {
                return Err(ConfigError::Value {
                    key: "origin",
                    detail: format!(
                        "is `{origin}` but the key is named `{}`",
                        signer.key_name().as_str()
                    ),
                });
            }
        }
        let max_leaf_bytes = self.max_leaf_bytes.unwrap_or(MAX_LEAF_BYTES);
        if max_leaf_bytes == 0 || max_leaf_bytes > MAX_LEAF_BYTES {
            return Err(ConfigError::Value {
                key: "max_leaf_bytes",
                detail: format!("must be 1 to {MAX_LEAF_BYTES}, found {max_leaf_bytes}"),
            });
        }
        let Resolved {
            producers,
            principals,
            access,
        } = self.resolve_principals()?;
        for rule in &self.retention {
            if rule.action.is_none() && rule.resource_type.is_none() {
                return Err(ConfigError::Value {
                    key: "retention",
                    detail: "a rule names an action, a resource_type or both".into(),
                });
            }
        }
        let max_batch_events = self
            .max_batch_events
            .unwrap_or(crate::events::DEFAULT_MAX_BATCH_EVENTS);
        if max_batch_events == 0 || max_batch_events > 10_000 {
            return Err(ConfigError::Value {
                key: "max_batch_events",
                detail: format!("must be 1 to 10000, found {max_batch_events}"),
            });
        }
        let events = EventSettings {
            principals,
            retention: self.retention.clone(),
            maintenance_interval: Duration::from_millis(
                self.maintenance_interval_ms.unwrap_or(60_000).max(10),
            ),
            max_batch_events,
            store: crate::events::EventStoreConfig {
                privacy: Some(self.privacy.resolve(&data_dir)?),
                ..Default::default()
            },
            completeness_index: self.completeness_index.unwrap_or(true),
            self_audit: self.self_audit.unwrap_or(true),
        };
        let mut witnesses = Vec::new();
        for witness in &self.witnesses {
            let verifier = witness.keys().map_err(|detail| ConfigError::Value {
                key: "witnesses.vkey",
                detail,
            })?;
            witnesses.push(Witness {
                name: witness.name.clone(),
                url: witness.url.trim_end_matches('/').to_string(),
                verifier,
            });
        }
        let witness_roots = match &self.witness_ca_file {
            Some(path) => cairn_edge::read_ca_pem(path)
                .map_err(|error| error.to_string())
                .and_then(|pem| {
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| error.to_string())
                })
                .map_err(|detail| ConfigError::Value {
                    key: "witness_ca_file",
                    detail,
                })?,
            None => Vec::new(),
        };
        let quorum = self.witness_quorum.unwrap_or(witnesses.len());
        if quorum > witnesses.len() {
            return Err(ConfigError::Value {
                key: "witness_quorum",
                detail: format!(
                    "is {quorum} but only {} witnesses are configured",
                    witnesses.len()
                ),
            });
        }
        let storage = self.storage.unwrap_or_default();
        let scaled = storage::resolve(
            storage,
            self.postgres.as_ref(),
            self.bucket.as_ref(),
            crate::storage::StoreLimits {
                max_leaf_bytes,
                ..crate::storage::StoreLimits::default()
            },
        )?;
        let receipt_policy = self.resolve_receipt_policy(signer.key_name().as_str())?;
        let defaults = SequencerConfig::default();
        let max_entries = self.batch_max_entries.unwrap_or(defaults.max_batch_entries);
        let sequencer = SequencerConfig {
            max_batch_entries: max_entries,
            max_pending_leaves: self
                .max_pending_leaves
                .unwrap_or(defaults.max_pending_leaves)
                .max(max_entries),
            ..defaults
        };
        Ok(ServerSettings {
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            storage,
            scaled,
            objects_dir: self.objects_dir.clone(),
            signer,
            producers,
            max_leaf_bytes,
            max_batch_body_bytes: self.max_batch_body_bytes.unwrap_or(8 * 1024 * 1024),
            sequencer,
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms.unwrap_or(1000)),
            witnesses,
            quorum,
            witness_timeout: Duration::from_millis(self.witness_timeout_ms.unwrap_or(5000)),
            witness_roots,
            checkpoint_wait: Duration::from_millis(self.checkpoint_wait_ms.unwrap_or(30_000)),
            receipt_policy,
            events,
            edge: self.http.resolve()?,
            access,
            ui: match &self.ui.monitor_url {
                None => cairn_ui::UiOptions::default(),
                Some(url) => {
                    cairn_ui::UiOptions::with_monitor(url).map_err(|detail| ConfigError::Value {
                        key: "ui.monitor_url",
                        detail,
                    })?
                }
            },
        })
    }

    /// The receipt policy's file, read and parsed; it must name this log.
    fn resolve_receipt_policy(
        &self,
        origin: &str,
    ) -> Result<Option<Arc<cairn_spec::policy::Policy>>, ConfigError> {
        let Some(path) = &self.receipt_policy else {
            return Ok(None);
        };
        let invalid = |detail: String| ConfigError::Value {
            key: "receipt_policy",
            detail: format!("{}: {detail}", path.display()),
        };
        let bytes = cairn_edge::config_file::read_bounded(path, file::MAX_CONFIG_BYTES)?;
        let policy = cairn_spec::policy::Policy::parse(&bytes)
            .map_err(|error| invalid(error.to_string()))?;
        if policy.log(origin).is_none() {
            return Err(invalid(format!(
                "names no log with this log's origin `{origin}`"
            )));
        }
        Ok(Some(Arc::new(policy)))
    }

    /// How often the configuration file is checked for a change.
    pub fn config_reload_interval(&self) -> Duration {
        Duration::from_millis(self.config_reload_interval_ms.unwrap_or(2000).max(10))
    }
}

#[cfg(test)]
mod tests;
