//! The log server's configuration: one TOML file (`log.toml`), every scalar key overridable by a
//! `CAIRN_LOG_<KEY>` environment variable and a `--<key>` flag (flag > environment > file >
//! default). Producers and witnesses are lists and come from the file.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "/var/lib/cairn-log"
//! storage = "embedded"             # the storage backend; "embedded" (data_dir) is the only one
//! objects_dir = "/var/www/log"     # optional: the tree as tlog-tiles files for a static server
//! origin = "example.com/audit"
//! key_file = "/etc/cairn/log.key"   # or the key in a PKCS#11 token: [pkcs11] below
//! max_leaf_bytes = 65535
//! checkpoint_interval_ms = 1000
//! witness_quorum = 1
//! # witness_ca_file = "/etc/cairn/private-ca.pem"   # for witnesses behind a private CA
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
//! [[witnesses]]
//! name = "witness.example"
//! url = "https://witness.example"
//! vkey = "witness.example+abcd1234+AQ..."
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
use cairn_spec::cosignature::CosignatureVerifier;
use cairn_spec::note::{Ed25519Signer, KeyName};

use crate::server::LogSigner;
use serde::Deserialize;

use crate::events::auth::{Access, Credentials, Principals, Rate, RateLimits, MAX_CREDENTIALS};
use crate::events::{EventSettings, Principal, RetentionRule, Role};
use crate::publisher::Witness;
use crate::sequencer::SequencerConfig;
use crate::server::ServerSettings;
use crate::storage::Backend;

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
    /// The TOML is malformed.
    #[error("{path}: {detail}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
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

/// A witness to ask for cosignatures.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its name in the log's state and metrics.
    pub name: String,
    /// Its base URL.
    pub url: String,
    /// Its cosignature verifier key (C2SP tlog-cosignature vkey).
    pub vkey: String,
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
    /// Storage backend: embedded (files in the data directory) [default: embedded].
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
    /// Milliseconds between retention runs [default: 60000].
    #[arg(long, env = "CAIRN_LOG_MAINTENANCE_INTERVAL_MS")]
    pub maintenance_interval_ms: Option<u64>,
    /// Most events in one POST /v1/events/batch [default: 1000].
    #[arg(long, env = "CAIRN_LOG_MAX_BATCH_EVENTS")]
    pub max_batch_events: Option<usize>,
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
    /// Witnesses (file only).
    #[arg(skip)]
    #[serde(default)]
    pub witnesses: Vec<WitnessConfig>,
    /// The HTTP edge: `[http]` in the file.
    #[command(flatten)]
    #[serde(default)]
    pub http: HttpSettings,
}

cairn_edge::settings!(
    /// The HTTP edge's keys (`[http]` in log.toml, `CAIRN_LOG_<KEY>`, `--<key>`).
    pub struct HttpSettings, "CAIRN_LOG_"
);

macro_rules! overlay {
    ($base:ident, $over:ident, $($field:ident),*) => {
        $( if $over.$field.is_some() { $base.$field = $over.$field.clone(); } )*
    };
}

impl Settings {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        Settings::read_versioned(path).map(|(settings, _)| settings)
    }

    /// Reads a TOML file, and the version read (for [`watch_principals`] to see a change
    /// from).
    pub fn read_versioned(path: &Path) -> Result<(Settings, ConfigVersion), ConfigError> {
        let bytes = read_bounded(path)?;
        let version = ConfigVersion(sha256(&bytes));
        Ok((parse_config(path, bytes)?, version))
    }

    /// `self` with every value `over` sets replacing it.
    pub fn overlay(mut self, over: &Settings) -> Settings {
        overlay!(
            self,
            over,
            listen,
            data_dir,
            storage,
            objects_dir,
            origin,
            key_file,
            max_leaf_bytes,
            max_batch_body_bytes,
            batch_max_entries,
            max_pending_leaves,
            checkpoint_interval_ms,
            witness_quorum,
            witness_timeout_ms,
            witness_ca_file,
            checkpoint_wait_ms,
            maintenance_interval_ms,
            max_batch_events,
            config_reload_interval_ms
        );
        self.http = self.http.overlay(&over.http);
        self
    }

    /// The log's key: the key file, or the key in the `[pkcs11]` token (named after
    /// `origin`), opened.
    fn resolve_signer(&self) -> Result<LogSigner, ConfigError> {
        match (&self.key_file, &self.pkcs11) {
            (Some(path), None) => Ok(Arc::new(NoteSigner::from_key(read_key_file(path)?))),
            (None, Some(table)) => {
                let value = |detail: String| ConfigError::Value {
                    key: "pkcs11",
                    detail,
                };
                let origin = self.origin.as_deref().ok_or_else(|| {
                    value("a key in a token needs `origin`, which names it".into())
                })?;
                let key_name = KeyName::new(origin).map_err(|error| ConfigError::Value {
                    key: "origin",
                    detail: error.to_string(),
                })?;
                let settings = table.settings().map_err(value)?;
                let key = Pkcs11Key::open(&settings).map_err(|error| value(error.to_string()))?;
                Ok(Arc::new(NoteSigner::from_token(key_name, Arc::new(key))))
            }
            (None, None) => Err(ConfigError::Value {
                key: "key_file",
                detail: "is required (or a [pkcs11] table for a key in a token)".into(),
            }),
            (Some(_), Some(_)) => Err(ConfigError::Value {
                key: "key_file",
                detail: "and [pkcs11] name two keys: keep one".into(),
            }),
        }
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
            store: Default::default(),
        };
        let mut witnesses = Vec::new();
        for witness in &self.witnesses {
            let verifier = CosignatureVerifier::from_vkey(&witness.vkey).map_err(|error| {
                ConfigError::Value {
                    key: "witnesses.vkey",
                    detail: format!("of `{}`: {error}", witness.name),
                }
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
            storage: self.storage.unwrap_or_default(),
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
            events,
            edge: self.http.resolve()?,
            access,
        })
    }

    /// How often the configuration file is checked for a change.
    pub fn config_reload_interval(&self) -> Duration {
        Duration::from_millis(self.config_reload_interval_ms.unwrap_or(2000).max(10))
    }

    /// The credentials of every principal and producer, and the rate limits, checked: what a
    /// start and a reload put in service.
    pub fn credentials(&self) -> Result<Credentials, ConfigError> {
        let resolved = self.resolve_principals()?;
        let mut tokens: Vec<([u8; 32], Principal)> = resolved.principals.into_iter().collect();
        for (digest, name) in resolved.producers {
            tokens.push((
                digest,
                Principal {
                    name,
                    role: Role::Producer,
                },
            ));
        }
        Ok(Credentials {
            tokens,
            client_certificates: resolved.access.client_certificates,
            rate_limits: resolved.access.rate_limits,
        })
    }

    fn resolve_principals(&self) -> Result<Resolved, ConfigError> {
        let mut producers = HashMap::new();
        for producer in &self.producers {
            let digest = parse_hex32(&producer.token_sha256).ok_or_else(|| ConfigError::Value {
                key: "producers.token_sha256",
                detail: format!("of `{}` is not 64 hex digits", producer.name),
            })?;
            producers.insert(digest, producer.name.clone());
        }
        let mut principals = HashMap::new();
        let mut client_certificates: Vec<([u8; 32], Principal)> = Vec::new();
        for principal in &self.principals {
            if principal.name.is_empty()
                || principal.name.len() > cairn_spec::event::MAX_PRINCIPAL_BYTES
            {
                return Err(ConfigError::Value {
                    key: "principals.name",
                    detail: format!("`{}` must be 1 to 256 bytes", principal.name),
                });
            }
            let named = Principal {
                name: principal.name.clone(),
                role: principal.role,
            };
            if principal.token_sha256.is_none() && principal.client_cert_sha256.is_none() {
                return Err(ConfigError::Value {
                    key: "principals",
                    detail: format!(
                        "`{}` has neither token_sha256 nor client_cert_sha256",
                        principal.name
                    ),
                });
            }
            if let Some(token) = &principal.token_sha256 {
                let digest = parse_hex32(token).ok_or_else(|| ConfigError::Value {
                    key: "principals.token_sha256",
                    detail: format!("of `{}` is not 64 hex digits", principal.name),
                })?;
                let known = principals.insert(digest, named.clone());
                if known.is_some() || producers.contains_key(&digest) {
                    return Err(ConfigError::Value {
                        key: "principals.token_sha256",
                        detail: format!("of `{}` is another principal's token", principal.name),
                    });
                }
            }
            if let Some(fingerprint) = &principal.client_cert_sha256 {
                let digest = parse_fingerprint(fingerprint).ok_or_else(|| ConfigError::Value {
                    key: "principals.client_cert_sha256",
                    detail: format!(
                        "of `{}` is not a SHA-256 fingerprint (64 hex digits, colons allowed)",
                        principal.name
                    ),
                })?;
                if self.http.tls_client_ca_file.is_none() {
                    return Err(ConfigError::Value {
                        key: "principals.client_cert_sha256",
                        detail: format!(
                            "of `{}` needs [http] tls_client_ca_file: without it no client \
                             presents a certificate",
                            principal.name
                        ),
                    });
                }
                if client_certificates
                    .iter()
                    .any(|(known, _)| *known == digest)
                {
                    return Err(ConfigError::Value {
                        key: "principals.client_cert_sha256",
                        detail: format!(
                            "of `{}` is another principal's certificate",
                            principal.name
                        ),
                    });
                }
                client_certificates.push((digest, named));
            }
        }
        let count = producers.len() + principals.len() + client_certificates.len();
        if count > MAX_CREDENTIALS {
            return Err(ConfigError::Value {
                key: "principals",
                detail: format!(
                    "{count} credentials (tokens and certificates); at most {MAX_CREDENTIALS}"
                ),
            });
        }
        let rate_limits = self.rate_limits.resolve(|name| {
            producers.values().any(|producer| producer == name)
                || principals.values().any(|principal| principal.name == name)
                || client_certificates
                    .iter()
                    .any(|(_, principal)| principal.name == name)
        })?;
        Ok(Resolved {
            producers,
            principals,
            access: Access {
                client_certificates,
                rate_limits,
            },
        })
    }
}

/// The principals of a configuration, as [`ServerSettings`] holds them.
struct Resolved {
    producers: HashMap<[u8; 32], String>,
    principals: HashMap<[u8; 32], Principal>,
    access: Access,
}

impl RateLimitsConfig {
    /// Checks the limits; `known` tells a configured principal's name.
    fn resolve(&self, known: impl Fn(&str) -> bool) -> Result<RateLimits, ConfigError> {
        let check = |key: &'static str, rate: Rate| {
            if rate.requests_per_second == 0 || rate.burst == Some(0) {
                return Err(ConfigError::Value {
                    key,
                    detail: "requests_per_second and burst must be at least 1".into(),
                });
            }
            Ok(rate)
        };
        let default = match (self.requests_per_second, self.burst) {
            (Some(requests_per_second), burst) => Some(check(
                "rate_limits",
                Rate {
                    requests_per_second,
                    burst,
                },
            )?),
            (None, Some(_)) => {
                return Err(ConfigError::Value {
                    key: "rate_limits.burst",
                    detail: "needs rate_limits.requests_per_second".into(),
                })
            }
            (None, None) => None,
        };
        let mut principals = BTreeMap::new();
        for (name, rate) in &self.principals {
            if !known(name) {
                return Err(ConfigError::Value {
                    key: "rate_limits.principals",
                    detail: format!("`{name}` is not a configured principal or producer"),
                });
            }
            principals.insert(name.clone(), check("rate_limits.principals", *rate)?);
        }
        Ok(RateLimits {
            default,
            principals,
        })
    }
}

/// The largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Which contents of the configuration file were read (their SHA-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigVersion([u8; 32]);

fn parse_config(path: &Path, bytes: Vec<u8>) -> Result<Settings, ConfigError> {
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Toml {
        path: path.to_path_buf(),
        detail: "is not UTF-8".into(),
    })?;
    toml::from_str(&text).map_err(|error| ConfigError::Toml {
        path: path.to_path_buf(),
        detail: error.to_string(),
    })
}

/// Reads the principals, producers and rate limits of `path` again (with `flags` laid over the
/// file, as at start) and puts them in service, on each of `hangups` (SIGHUP) and whenever the
/// file's contents change (checked every `interval`), until the task is aborted. A file that
/// does not load is reported once per change, in the log and in `/metrics`, and the principals
/// in service stay. Without a file, a SIGHUP is only noted. `file` is the path and the version
/// of it in service.
pub async fn watch_principals(
    file: Option<(PathBuf, ConfigVersion)>,
    flags: Settings,
    principals: Arc<Principals>,
    interval: Duration,
    mut hangups: tokio::signal::unix::Signal,
) {
    let Some((path, loaded)) = file else {
        while hangups.recv().await.is_some() {
            tracing::warn!("SIGHUP: there is no configuration file (--config) to read again");
        }
        return;
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = Some(loaded.0);
    loop {
        let hangup = tokio::select! {
            received = hangups.recv() => match received {
                Some(()) => true,
                None => return,
            },
            _ = ticks.tick() => false,
        };
        let (path, flags, principals) = (path.clone(), flags.clone(), principals.clone());
        let known = seen;
        // File reads and SHA-256: off the runtime's workers.
        let read = tokio::task::spawn_blocking(move || {
            let bytes = read_bounded(&path);
            let digest = bytes.as_ref().ok().map(|bytes| sha256(bytes));
            if !hangup && digest == known {
                return digest;
            }
            let why = if hangup { "SIGHUP" } else { "the file changed" };
            let loaded = bytes.and_then(|bytes| {
                parse_config(&path, bytes).and_then(|file| file.overlay(&flags).credentials())
            });
            match loaded {
                Ok(credentials) => {
                    principals.replace(&credentials);
                    tracing::info!(
                        reason = why,
                        credentials =
                            credentials.tokens.len() + credentials.client_certificates.len(),
                        "principals reloaded from {}",
                        path.display()
                    );
                }
                Err(error) => {
                    principals.reload_failed();
                    tracing::error!(
                        reason = why,
                        %error,
                        "the configuration does not load; the principals loaded before stay in \
                         service"
                    );
                }
            }
            digest
        });
        match read.await {
            Ok(digest) => seen = digest,
            Err(error) => tracing::error!(%error, "the configuration reload task failed"),
        }
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let length = std::fs::metadata(path).map_err(read)?.len();
    if length > MAX_CONFIG_BYTES {
        return Err(ConfigError::Toml {
            path: path.to_path_buf(),
            detail: format!("is {length} bytes; a configuration is at most {MAX_CONFIG_BYTES}"),
        });
    }
    std::fs::read(path).map_err(read)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// A SHA-256 fingerprint: 64 hex digits in either case, the pairs optionally separated by
/// colons (`openssl x509 -noout -fingerprint -sha256`, after its `sha256 Fingerprint=`).
fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let text = text
        .split_once('=')
        .filter(|(label, _)| label.to_ascii_lowercase().contains("fingerprint"))
        .map_or(text, |(_, value)| value);
    if text.contains(':') {
        let pairs: Vec<&str> = text.split(':').collect();
        if pairs.len() != 32 || pairs.iter().any(|pair| pair.len() != 2) {
            return None;
        }
        parse_hex32(&pairs.concat())
    } else {
        parse_hex32(text)
    }
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

/// Lowercase hex of SHA-256 of `token`: what `producers.token_sha256` holds.
pub fn token_digest_hex(token: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Reads the signing key, refusing a file that group or others may read.
pub fn read_key_file(path: &Path) -> Result<Ed25519Signer, ConfigError> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::LooseKeyMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    if metadata.len() > 8192 {
        return Err(ConfigError::Value {
            key: "key_file",
            detail: format!("{} is {} bytes, not a key", path.display(), metadata.len()),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ed25519Signer::from_skey(text.trim()).map_err(|error| ConfigError::Value {
        key: "key_file",
        detail: format!("{}: {error}", path.display()),
    })
}

/// Makes a new signing key for `origin` inside the token that the `[pkcs11]` table of the
/// configuration file `config` names, and returns its vkey.
pub fn new_token_key(origin: &str, config: &Path) -> Result<String, ConfigError> {
    let name = KeyName::new(origin).map_err(|error| ConfigError::Value {
        key: "origin",
        detail: error.to_string(),
    })?;
    let settings = Settings::from_file(config)?;
    let table = settings.pkcs11.ok_or_else(|| ConfigError::Value {
        key: "pkcs11",
        detail: format!("{} has no [pkcs11] table", config.display()),
    })?;
    let value = |detail: String| ConfigError::Value {
        key: "pkcs11",
        detail,
    };
    let key = Pkcs11Key::generate(&table.settings().map_err(value)?)
        .map_err(|error| value(error.to_string()))?;
    let signer = NoteSigner::<cairn_spec::note::PlainEd25519>::from_token(name, Arc::new(key));
    Ok(signer.verifier().to_vkey())
}

/// Writes a new signing key for `origin` to `path` with mode 0600 (refusing to overwrite) and
/// returns its vkey.
pub fn write_new_key(origin: &str, path: &Path) -> Result<String, ConfigError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = cairn_spec::note::KeyName::new(origin).map_err(|error| ConfigError::Value {
        key: "origin",
        detail: error.to_string(),
    })?;
    let signer = Ed25519Signer::generate(name, &mut rand::rngs::OsRng).map_err(|error| {
        ConfigError::Value {
            key: "origin",
            detail: error.to_string(),
        }
    })?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    file.write_all(format!("{}\n", signer.to_skey()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(signer.verifier().to_vkey())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn settings(text: &str) -> Settings {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn reads_fingerprints_as_openssl_prints_them() {
        let plain = parse_fingerprint(DIGEST).expect("plain hex");
        let colons: Vec<String> = DIGEST
            .as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
            .collect();
        let openssl = format!("sha256 Fingerprint={}", colons.join(":"));
        assert_eq!(parse_fingerprint(&openssl), Some(plain));
        assert_eq!(parse_fingerprint(&colons.join(":")), Some(plain));
        for bad in ["", "AB:CD", &DIGEST[1..], &format!("+{}", &DIGEST[1..])] {
            assert_eq!(parse_fingerprint(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn principals_by_certificate_need_a_client_ca() {
        let text = format!(
            "[[principals]]\nname = \"payments\"\nrole = \"producer\"\n\
             client_cert_sha256 = \"{DIGEST}\"\n"
        );
        let error = settings(&text).credentials().expect_err("no client CA");
        assert!(error.to_string().contains("tls_client_ca_file"), "{error}");
        let with_ca = format!("{text}\n[http]\ntls_client_ca_file = \"/ca.pem\"\n");
        let credentials = settings(&with_ca).credentials().expect("valid");
        assert_eq!(credentials.client_certificates.len(), 1);
        assert!(credentials.tokens.is_empty());
        let neither = "[[principals]]\nname = \"x\"\nrole = \"reader\"\n";
        assert!(settings(neither).credentials().is_err());
    }

    #[test]
    fn rate_limits_name_configured_principals_and_are_positive() {
        let producer = format!("[[producers]]\nname = \"billing\"\ntoken_sha256 = \"{DIGEST}\"\n");
        let good = format!(
            "{producer}[rate_limits]\nrequests_per_second = 10\n\
             [rate_limits.principals.billing]\nrequests_per_second = 100\nburst = 500\n"
        );
        let limits = settings(&good).credentials().expect("valid").rate_limits;
        assert_eq!(
            limits.default.map(|rate| rate.requests_per_second),
            Some(10)
        );
        assert_eq!(limits.principals["billing"].burst, Some(500));
        for bad in [
            format!("{producer}[rate_limits.principals.biling]\nrequests_per_second = 1\n"),
            format!("{producer}[rate_limits]\nrequests_per_second = 0\n"),
            format!("{producer}[rate_limits]\nburst = 5\n"),
            format!("{producer}[rate_limits]\nrequests_per_second = 5\nburst = 0\n"),
        ] {
            assert!(settings(&bad).credentials().is_err(), "{bad}");
        }
    }
}
