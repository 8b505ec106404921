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
//! key_file = "/etc/cairn/log.key"
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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_spec::cosignature::CosignatureVerifier;
use cairn_spec::note::Ed25519Signer;
use serde::Deserialize;

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

/// A principal: a bearer token's holder and its role.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    /// Its name (bound into the events it submits as `submitted_by`).
    pub name: String,
    /// `producer`, `reader` or `admin`.
    pub role: Role,
    /// SHA-256 of its bearer token, 64 hex digits.
    pub token_sha256: String,
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
    /// File holding the signing key (PRIVATE+KEY+..., mode 0600).
    #[arg(long, env = "CAIRN_LOG_KEY_FILE")]
    pub key_file: Option<PathBuf>,
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
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Toml {
            path: path.to_path_buf(),
            detail: error.to_string(),
        })
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
            max_batch_events
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
        let key_file = self.key_file.clone().ok_or_else(|| missing("key_file"))?;
        let signer = read_key_file(&key_file)?;
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
        let mut producers = HashMap::new();
        for producer in &self.producers {
            let digest = parse_hex32(&producer.token_sha256).ok_or_else(|| ConfigError::Value {
                key: "producers.token_sha256",
                detail: format!("of `{}` is not 64 hex digits", producer.name),
            })?;
            producers.insert(digest, producer.name.clone());
        }
        let mut principals = HashMap::new();
        for principal in &self.principals {
            let digest =
                parse_hex32(&principal.token_sha256).ok_or_else(|| ConfigError::Value {
                    key: "principals.token_sha256",
                    detail: format!("of `{}` is not 64 hex digits", principal.name),
                })?;
            if principal.name.is_empty()
                || principal.name.len() > cairn_spec::event::MAX_PRINCIPAL_BYTES
            {
                return Err(ConfigError::Value {
                    key: "principals.name",
                    detail: format!("`{}` must be 1 to 256 bytes", principal.name),
                });
            }
            let known = principals.insert(
                digest,
                Principal {
                    name: principal.name.clone(),
                    role: principal.role,
                },
            );
            if known.is_some() || producers.contains_key(&digest) {
                return Err(ConfigError::Value {
                    key: "principals.token_sha256",
                    detail: format!("of `{}` is another principal's token", principal.name),
                });
            }
        }
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
        })
    }
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
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
