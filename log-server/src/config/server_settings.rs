//! What a server needs, resolved from the configuration ([`ServerSettings`]): what
//! [`crate::config`] makes of `log.toml`, the environment and the command line, and what
//! [`crate::server`] starts a log from.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::ScaledSettings;
use crate::events::auth::Access;
use crate::events::EventSettings;
use crate::key_history::LogSigner;
use crate::publisher::Witness;
use crate::sequencer::SequencerConfig;
use crate::storage::Backend;

/// What a server needs, resolved from the configuration.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The store's directory.
    pub data_dir: PathBuf,
    /// The storage backend.
    pub storage: Backend,
    /// The database and bucket of the scaled backend (`None` for the embedded one).
    pub scaled: Option<ScaledSettings>,
    /// Where to publish the tree as C2SP tlog-tiles files, if anywhere.
    pub objects_dir: Option<PathBuf>,
    /// The log's key (named after its origin).
    pub signer: LogSigner,
    /// Producers: SHA-256 of the token → name.
    pub producers: HashMap<[u8; 32], String>,
    /// The largest leaf.
    pub max_leaf_bytes: u32,
    /// The largest /add-batch body.
    pub max_batch_body_bytes: usize,
    /// Sequencer batching and admission.
    pub sequencer: SequencerConfig,
    /// Time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Witnesses.
    pub witnesses: Vec<Witness>,
    /// Witness quorum.
    pub quorum: usize,
    /// Timeout of one witness request.
    pub witness_timeout: Duration,
    /// CA certificates trusted for witnesses' HTTPS beside the public roots.
    pub witness_roots: Vec<reqwest::Certificate>,
    /// Longest `?wait=checkpoint`.
    pub checkpoint_wait: Duration,
    /// The policy a `?wait=checkpoint` receipt must verify under, if one is configured.
    pub receipt_policy: Option<Arc<cairn_spec::policy::Policy>>,
    /// Audit events: principals with roles, retention, limits.
    pub events: EventSettings,
    /// The HTTP edge: timeouts and the connection cap.
    pub edge: cairn_edge::EdgeConfig,
    /// Principals known by client certificates, and rate limits.
    pub access: Access,
    /// The web UI's options: the monitor its health panel reads (`[ui]` in log.toml).
    pub ui: cairn_ui::UiOptions,
}
