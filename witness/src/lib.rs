//! cairn-witness: an independent party that cosigns a log's checkpoints only when they are
//! consistent with everything it cosigned before (C2SP tlog-witness, tlog-cosignature), and
//! anchors each cosigned checkpoint in time with RFC 3161 timestamps. It also carries a small
//! RFC 3161 timestamp authority (`cairn-witness tsa`).
//!
//! - [`store`]: the durable per-origin state, tokens and evidence (SQLite, committed before a cosignature leaves).
//! - [`service`]: add-checkpoint around `cairn_spec::witness::add_checkpoint`.
//! - [`anchor`]: the background timestamping of cosigned checkpoints.
//! - [`health`]: liveness and readiness (`/healthz`, `/readyz`).
//! - [`http`]: the HTTP API (`spec/docs/witness-api.md`), every error in JSON.
//! - [`config`], [`keys`]: configuration and key files; [`key_history`]: the witness's key
//!   history and `rotate-key`.
//! - [`metrics`]: Prometheus text metrics.
//! - [`tsa`]: the timestamp authority.

#![forbid(unsafe_code)]

pub mod anchor;
pub mod config;
pub mod health;
pub mod http;
pub mod key_history;
pub mod keys;
pub mod metrics;
pub mod service;
pub mod store;
pub mod tsa;

use anchor::{AnchorSettings, Anchorer, TsaEndpoint};
use cairn_spec::note::Ed25519Verifier;
use metrics::Metrics;
use service::{Witness, WitnessSigner, WitnessedLog};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::Store;

/// A witnessed log: origin and verifier keys.
#[derive(Clone, Debug)]
pub struct LogSpec {
    /// Its origin.
    pub origin: String,
    /// Its keys.
    pub verifiers: Vec<Ed25519Verifier>,
}

/// Why the witness could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The HTTP client for TSAs.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Two entries for one origin.
    #[error("log {0:?} is configured twice")]
    DuplicateLog(String),
}

/// How often a failing store is probed for whether it takes writes again.
const STORAGE_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the anchoring worker, and the storage probe, on the current runtime.
pub fn start_witness(
    store: Store,
    cosigner: WitnessSigner,
    logs: Vec<LogSpec>,
    tsas: Vec<TsaEndpoint>,
    anchor_settings: AnchorSettings,
    anchor_wait: Duration,
) -> Result<Arc<Witness>, StartError> {
    let mut witnessed = HashMap::new();
    for log in logs {
        if witnessed
            .insert(log.origin.clone(), WitnessedLog::new(log.verifiers))
            .is_some()
        {
            return Err(StartError::DuplicateLog(log.origin));
        }
    }
    let metrics = Arc::new(Metrics::default());
    let anchorer = Anchorer::start(store.clone(), metrics.clone(), tsas, anchor_settings)?;
    tokio::spawn(probe_while_failing(store.clone()));
    Ok(Arc::new(Witness::new(
        store,
        cosigner,
        witnessed,
        metrics,
        anchorer,
        anchor_wait,
    )))
}

/// While the store fails, probes it with one small write a second, so that the witness says it
/// is ready again once the fault clears even if no log writes to it meanwhile. Ends when the
/// last handle to the store is gone.
async fn probe_while_failing(store: Store) {
    let store = store.downgrade();
    loop {
        tokio::time::sleep(STORAGE_PROBE_INTERVAL).await;
        let Some(store) = store.upgrade() else {
            return;
        };
        if store.failing().is_some() {
            // A probe that fails keeps the store failing; the next one tries again.
            let _ = store.probe().await;
        }
    }
}
