//! The monitor daemon: configuration (TOML), the poll loop over every configured log and peer,
//! and the HTTP port with /healthz, /metrics, /status (the last verdicts and active alerts,
//! [`crate::status`]) and /gossip (GET: the latest verified checkpoint
//! notes, a JSON array; POST: one checkpoint note someone was shown, checked against what the
//! monitor verified and answered 200 consistent, 202 held, 409 split view, 400/404/413 refused).
//! Every error of the port is JSON `{"error": "<code>", "detail": "<what and why>"}` with its
//! status ([`error_answer`]), unknown routes and methods included. The port and the alerts are
//! specified in spec/docs/monitor-api.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cairn_spec::note::Ed25519Verifier;
use cairn_spec::policy::Policy;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::alert::{Alerter, REMINDER_SECS_RANGE};
use crate::fetch::{join, FetchError, Fetcher, MAX_CHECKPOINT_BYTES};
use crate::follow::{FollowError, Follower, GossipOutcome, LogSettings, PollReport};
use crate::metrics::Metrics;
use crate::state::{StateError, StateStore};

/// The most checkpoint notes read from one peer's GET /gossip.
const MAX_GOSSIP_NOTES: usize = 64;

/// The monitor's configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the verified state is kept: `monitor.sqlite` (verified states, progress, evidence
    /// documents), and the verified trees' hashes in `hashes/`.
    pub state_dir: PathBuf,
    /// Where evidence files are written.
    pub evidence_dir: PathBuf,
    /// Address of the HTTP port (`127.0.0.1:8090`); none for no port.
    #[serde(default)]
    pub listen: Option<String>,
    /// Seconds between polls.
    #[serde(default = "default_interval")]
    pub poll_interval_secs: u64,
    /// Per-request timeout, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Webhook to POST alerts to.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Seconds between reminders of an alert that stays active (1 to 86400).
    #[serde(default = "default_reminder")]
    pub alert_reminder_secs: u64,
    /// PEM CA certificates trusted for https:// URLs (logs, witnesses, peers, the webhook)
    /// beside the public roots: a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Peer monitors whose GET /gossip is read each poll.
    #[serde(default)]
    pub peers: Vec<String>,
    /// The logs.
    #[serde(default)]
    pub logs: Vec<LogConfig>,
    /// The HTTP port's edge: timeouts and the connection cap.
    #[serde(default)]
    pub http: HttpSettings,
}

cairn_edge::settings!(
    /// The HTTP port's edge keys (`[http]` in the file, `CAIRN_MONITOR_<KEY>`, `--<key>`).
    pub struct HttpSettings, "CAIRN_MONITOR_"
);

fn default_interval() -> u64 {
    10
}

fn default_timeout() -> u64 {
    10
}

fn default_reminder() -> u64 {
    crate::alert::DEFAULT_REMINDER_SECS
}

/// One log in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Base URL of the log's read API, or `file:///path` of a local directory in the
    /// tlog-tiles layout (a static mirror of the log).
    pub url: String,
    /// The log's vkey.
    pub key: String,
    /// A tlog-policy file the checkpoints must satisfy.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Witness base URLs.
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// Whether leaves are Cairn audit events.
    #[serde(default)]
    pub event_log: bool,
    /// Stale-log alert threshold, seconds.
    #[serde(default)]
    pub stale_after_secs: Option<u64>,
    /// Full tiles fetched again each poll.
    #[serde(default = "default_recheck")]
    pub recheck_tiles: u64,
    /// Fetch and check entry bundles.
    #[serde(default = "default_true")]
    pub check_entries: bool,
    /// A file holding a reader's token, sent to this log's read API only (a log whose entry
    /// bundles are private: cairn-log's `[privacy] public_entries = false`).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

fn default_recheck() -> u64 {
    4
}

fn default_true() -> bool {
    true
}

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key of `[http]` is wrong.
    #[error("config table [http]: {0}")]
    Http(#[from] cairn_edge::SettingsError),
    /// The CA file is unusable.
    #[error("ca_file {path}: {detail}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file could not be read, or its TOML is malformed: the file, and the
    /// line and column of a TOML fault.
    #[error(transparent)]
    File(#[from] cairn_edge::ConfigFileError),
    /// A value is out of its range.
    #[error("config: {key} = {value} is out of range ({range})")]
    Range {
        /// The key.
        key: &'static str,
        /// Its value.
        value: u64,
        /// What it may be.
        range: String,
    },
    /// A key or policy is malformed.
    #[error("log {url}: {detail}")]
    Log {
        /// The log.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The state store failed.
    #[error(transparent)]
    Follow(#[from] FollowError),
    /// The state store could not be opened.
    #[error(transparent)]
    Store(#[from] StateError),
}

/// The largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = cairn_edge::config_file::MAX_CONFIG_FILE_BYTES;

impl Config {
    /// Reads the configuration file `path` (at most [`MAX_CONFIG_BYTES`]) with cairn-edge's
    /// loader: an error names the file, and the line and column of a TOML fault.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Ok(cairn_edge::config_file::load(path, MAX_CONFIG_BYTES)?)
    }

    /// Reads a TOML configuration given as text (errors name it `monitor.toml`).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Ok(cairn_edge::config_file::parse_toml(
            Path::new("monitor.toml"),
            text,
        )?)
    }

    /// The configuration of `cairn-monitor audit`: one log (`url`, its vkey `key`), no port,
    /// witnesses, peers or rechecks, state (and `evidence/`) in `state_dir`; entry bundles
    /// checked unless `tiles_only`.
    pub fn audit(state_dir: PathBuf, url: String, key: String, tiles_only: bool) -> Config {
        Config {
            evidence_dir: state_dir.join("evidence"),
            state_dir,
            listen: None,
            poll_interval_secs: 1,
            timeout_secs: 30,
            webhook: None,
            alert_reminder_secs: default_reminder(),
            ca_file: None,
            peers: Vec::new(),
            logs: vec![LogConfig {
                url,
                key,
                policy: None,
                witnesses: Vec::new(),
                event_log: false,
                stale_after_secs: None,
                recheck_tiles: 0,
                check_entries: !tiles_only,
                token_file: None,
            }],
            http: HttpSettings::default(),
        }
    }
}

impl LogConfig {
    /// The settings the follower needs.
    pub fn settings(&self) -> Result<LogSettings, ConfigError> {
        let problem = |detail: String| ConfigError::Log {
            url: self.url.clone(),
            detail,
        };
        let key = Ed25519Verifier::from_vkey(&self.key)
            .map_err(|error| problem(format!("log key: {error}")))?;
        let policy = match &self.policy {
            Some(path) => {
                let text = std::fs::read(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some(
                    Policy::parse(&text)
                        .map_err(|error| problem(format!("policy {}: {error}", path.display())))?,
                )
            }
            None => None,
        };
        let token = match &self.token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let token = text.trim().to_owned();
                if token.is_empty() || token.len() > 4096 {
                    return Err(problem(format!(
                        "token file {}: 1 to 4096 bytes",
                        path.display()
                    )));
                }
                Some(token)
            }
            None => None,
        };
        Ok(LogSettings {
            token,
            url: self.url.clone(),
            key,
            policy,
            witnesses: self.witnesses.clone(),
            event_log: self.event_log,
            stale_after_secs: self.stale_after_secs,
            recheck_tiles: self.recheck_tiles,
            check_entries: self.check_entries,
        })
    }
}

/// The running monitor: its followers, alerter and HTTP state.
pub struct Monitor {
    followers: Vec<Arc<Mutex<Follower>>>,
    /// Where alerts go.
    pub alerter: Arc<Alerter>,
    fetcher: Fetcher,
    peers: Vec<String>,
    _state: StateStore,
    /// The last verdicts of every log, for `GET /status`.
    pub status: crate::status::StatusBook,
}

impl Monitor {
    /// Opens the state and builds a follower per log.
    pub fn new(config: &Config) -> Result<Monitor, ConfigError> {
        if !REMINDER_SECS_RANGE.contains(&config.alert_reminder_secs) {
            return Err(ConfigError::Range {
                key: "alert_reminder_secs",
                value: config.alert_reminder_secs,
                range: format!(
                    "{} to {}",
                    REMINDER_SECS_RANGE.start(),
                    REMINDER_SECS_RANGE.end()
                ),
            });
        }
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let fetcher = match &config.ca_file {
            Some(path) => {
                let problem = |detail: String| ConfigError::Ca {
                    path: path.clone(),
                    detail,
                };
                let pem =
                    cairn_edge::read_ca_pem(path).map_err(|error| problem(error.to_string()))?;
                let roots = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|error| problem(error.to_string()))?;
                Fetcher::with_roots(timeout, &roots).map_err(|error| problem(error.to_string()))?
            }
            None => Fetcher::new(timeout),
        };
        let metrics = Arc::new(Metrics::default());
        let alerter = Arc::new(Alerter::new(
            config.webhook.clone(),
            fetcher.client().clone(),
            metrics,
            Duration::from_secs(config.alert_reminder_secs),
        ));
        let state = StateStore::open(&config.state_dir)?;
        let mut followers = Vec::new();
        for log in &config.logs {
            let follower = Follower::new(
                log.settings()?,
                fetcher.clone(),
                alerter.clone(),
                &state,
                &config.state_dir.join("hashes"),
                config.evidence_dir.clone(),
            )?;
            followers.push(Arc::new(Mutex::new(follower)));
        }
        Ok(Monitor {
            followers,
            alerter,
            fetcher,
            peers: config.peers.clone(),
            _state: state,
            status: crate::status::StatusBook::default(),
        })
    }

    /// One poll of every log, then the peers' gossip, then reminders of the alerts still
    /// active; what each log's poll verified, or why it did not.
    pub async fn poll_once(&self) -> Result<Vec<PollReport>, FollowError> {
        let mut reports = Vec::with_capacity(self.followers.len());
        for follower in &self.followers {
            reports.push(follower.lock().await.poll().await?);
        }
        for peer in &self.peers {
            let url = join(peer, "gossip");
            let limit = MAX_GOSSIP_NOTES * MAX_CHECKPOINT_BYTES;
            let body = match self.fetcher.get(&url, limit).await {
                Ok(body) => body,
                Err(FetchError::TooLarge { .. }) => {
                    self.alerter.metrics.count_bad_input("peer", None);
                    continue;
                }
                Err(error) => {
                    tracing::debug!(%error, "peer gossip fetch failed");
                    self.alerter.metrics.count_fetch_error(None);
                    continue;
                }
            };
            let Ok(notes) = serde_json::from_slice::<Vec<String>>(&body) else {
                self.alerter.metrics.count_bad_input("peer", None);
                continue;
            };
            for note in notes.iter().take(MAX_GOSSIP_NOTES) {
                self.gossip(note.as_bytes(), "peer").await;
            }
        }
        self.alerter.remind().await;
        self.status.record(&reports, &self.alerter);
        Ok(reports)
    }

    /// Hands a gossiped checkpoint to the follower of its origin; `None` (counted) if the
    /// monitor follows no log of that origin.
    pub async fn gossip(&self, note: &[u8], source: &str) -> Option<GossipOutcome> {
        let origin = note
            .split(|byte| *byte == b'\n')
            .next()
            .and_then(|line| std::str::from_utf8(line).ok())
            .unwrap_or_default()
            .to_owned();
        for follower in &self.followers {
            let mut follower = follower.lock().await;
            if follower.origin() == origin {
                return Some(follower.gossip(note, source).await);
            }
        }
        self.alerter.metrics.count_bad_input(source, None);
        None
    }

    /// Shows a progress line on stderr while verifying (for `audit`).
    pub async fn show_progress(&self) {
        for follower in &self.followers {
            follower.lock().await.set_progress(true);
        }
    }

    /// The latest verified checkpoint notes.
    pub async fn verified_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for follower in &self.followers {
            if let Some(state) = follower.lock().await.state() {
                notes.push(state.note.clone());
            }
        }
        notes
    }

    /// The HTTP routes.
    pub fn router(self: &Arc<Monitor>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/metrics",
                get(|State(monitor): State<Arc<Monitor>>| async move {
                    (
                        [(header::CONTENT_TYPE, cairn_edge::metrics::CONTENT_TYPE)],
                        monitor.alerter.metrics.render(),
                    )
                }),
            )
            .route("/gossip", get(get_gossip).post(post_gossip))
            .route(
                "/status",
                get(|State(monitor): State<Arc<Monitor>>| async move {
                    crate::status::answer(&monitor.status, &monitor.alerter)
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(MAX_CHECKPOINT_BYTES))
            .fallback(|| async {
                error_answer(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
            })
            .method_not_allowed_fallback(|| async {
                error_answer(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this endpoint does not take that method",
                )
            })
            .with_state(self.clone())
    }

    /// Serves the HTTP port on `listener` with `edge` until `shutdown` completes, then lets the
    /// requests in flight finish.
    pub async fn serve(
        self: &Arc<Monitor>,
        listener: tokio::net::TcpListener,
        edge: cairn_edge::EdgeConfig,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        cairn_edge::serve(listener, self.router(), edge, shutdown).await;
    }

    /// Polls forever.
    pub async fn run(self: &Arc<Monitor>, interval: Duration) -> Result<(), FollowError> {
        loop {
            self.poll_once().await?;
            tokio::time::sleep(interval).await;
        }
    }
}

async fn get_gossip(State(monitor): State<Arc<Monitor>>) -> axum::Json<Vec<String>> {
    axum::Json(monitor.verified_notes().await)
}

/// An error answer of the port: `{"error": code, "detail": detail}` with `status`.
pub fn error_answer(status: StatusCode, code: &str, detail: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": code, "detail": detail})),
    )
        .into_response()
}

async fn post_gossip(
    State(monitor): State<Arc<Monitor>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            monitor.alerter.metrics.count_bad_input("upload", None);
            return error_answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "a checkpoint note is at most 64 KiB",
            );
        }
        Err(rejection) => {
            return error_answer(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &rejection.body_text(),
            )
        }
    };
    match monitor.gossip(&body, "upload").await {
        None => error_answer(
            StatusCode::NOT_FOUND,
            "unknown_origin",
            "this monitor follows no log of that origin",
        ),
        Some(GossipOutcome::Refused) => error_answer(
            StatusCode::BAD_REQUEST,
            "not_signed_by_log",
            "not a checkpoint signed by the log's key",
        ),
        Some(GossipOutcome::Consistent) => {
            (StatusCode::OK, "consistent with the verified tree\n").into_response()
        }
        Some(GossipOutcome::Pending) => (
            StatusCode::ACCEPTED,
            "held: larger than the verified tree, checked once the monitor gets there\n",
        )
            .into_response(),
        Some(GossipOutcome::SplitView) => error_answer(
            StatusCode::CONFLICT,
            "split_view",
            "it conflicts with the verified tree: an alert was raised with evidence",
        ),
    }
}

/// Binds the HTTP port.
pub async fn bind(address: &str) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
