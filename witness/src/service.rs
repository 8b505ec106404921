//! The witness itself, without HTTP: one add-checkpoint request in, a cosignature or a
//! refusal out (C2SP tlog-witness, "add-checkpoint").
//!
//! The decision is `cairn_spec::witness::add_checkpoint`; this module adds what a running
//! witness needs around it: the log keys per origin, one lock per origin so that reading the
//! state, deciding and persisting the new state happen as one step (two concurrent requests
//! could otherwise roll the state back), persistence before the answer, evidence of log
//! misbehaviour, and handing the checkpoint to the anchoring worker.

use crate::anchor::Anchorer;
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::store::{CosignedRecord, Store, StoreError};
use cairn_keys::NoteSigner;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::{Cosignature, CosignatureV1};
use cairn_spec::note::{Ed25519Verifier, NoteVerifier};
use cairn_spec::witness::{
    check_add_checkpoint, AddCheckpointRequest, Cosigned, Refusal, RequestError,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

/// A log the witness witnesses.
pub struct WitnessedLog {
    verifiers: Vec<Ed25519Verifier>,
    /// Serializes the requests of this origin.
    lock: tokio::sync::Mutex<()>,
}

impl WitnessedLog {
    /// A log whose checkpoints must be signed by one of `verifiers`.
    pub fn new(verifiers: Vec<Ed25519Verifier>) -> WitnessedLog {
        WitnessedLog {
            verifiers,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

/// Why an add-checkpoint request got no cosignature.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The protocol refuses it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The witness could not read or persist its state (503 while the storage is unavailable,
    /// else 500; nothing was cosigned).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The witness's key could not sign (a token removed or refusing): 503, nothing was
    /// cosigned or persisted.
    #[error("the witness's key cannot sign now: {0}")]
    Key(String),
}

/// A cosignature issued (its state is persisted).
pub struct Issued {
    /// The 200 response body: the cosignature line.
    pub response_body: String,
    /// Completes when the checkpoint's timestamps are in (or given up), if it is anchored.
    pub anchored: Option<oneshot::Receiver<()>>,
}

/// The witness's cosignature key, in a key file or a PKCS#11 token.
pub type WitnessSigner = Arc<NoteSigner<CosignatureV1>>;

/// A running witness.
pub struct Witness {
    store: Store,
    cosigner: WitnessSigner,
    logs: HashMap<String, WitnessedLog>,
    metrics: Arc<Metrics>,
    anchorer: Option<Anchorer>,
    /// How long the add-checkpoint handler waits for timestamps before answering anyway.
    pub anchor_wait: Duration,
}

impl Witness {
    /// A witness over `store`, cosigning with `cosigner` the checkpoints of `logs` (by origin).
    pub fn new(
        store: Store,
        cosigner: WitnessSigner,
        logs: HashMap<String, WitnessedLog>,
        metrics: Arc<Metrics>,
        anchorer: Option<Anchorer>,
        anchor_wait: Duration,
    ) -> Witness {
        Witness {
            store,
            cosigner,
            logs,
            metrics,
            anchorer,
            anchor_wait,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the witness does its job now ([`crate::health`]).
    pub fn readiness(&self) -> Readiness {
        let anchoring_failure = self.anchorer.as_ref().and_then(Anchorer::failing);
        crate::health::readiness(&self.store, anchoring_failure)
    }

    /// Whether `origin` is a log this witness witnesses.
    pub fn witnesses(&self, origin: &str) -> bool {
        self.logs.contains_key(origin)
    }

    /// Handles one add-checkpoint request body.
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<Issued, AddError> {
        let request = match AddCheckpointRequest::parse(body) {
            Ok(request) => request,
            Err(error) => return Err(self.refused(Refusal::Malformed(error))),
        };
        let origin = request.checkpoint.origin.as_str();
        let Some(log) = self.logs.get(origin) else {
            return Err(self.refused(Refusal::UnknownOrigin {
                origin: origin.to_owned(),
            }));
        };
        let _serialized = log.lock.lock().await;
        let known = self.store.latest(origin)?;
        let now = unix_seconds_now();
        let decision = {
            // `dyn NoteVerifier` is not Sync: keep these references out of the awaits below.
            let keys: Vec<&dyn NoteVerifier> = log
                .verifiers
                .iter()
                .map(|verifier| verifier as &dyn NoteVerifier)
                .collect();
            check_add_checkpoint(
                known.as_ref().map(|record| record.state),
                &request,
                Some(&keys),
                now,
            )
        };
        let cosigned = match decision {
            Ok(new_state) => Cosigned {
                new_state,
                cosignature: self.cosign(&request.checkpoint, now).await?,
            },
            Err(refusal) => {
                if matches!(
                    refusal,
                    Refusal::Fork { .. } | Refusal::InconsistentProof { .. }
                ) {
                    self.keep_evidence(&refusal, origin, body, known.as_ref())
                        .await?;
                }
                return Err(self.refused(refusal));
            }
        };
        let mut note = request.note.clone();
        let cosigned_note = note
            .add_signature(cosigned.cosignature.to_note_signature())
            .and_then(|()| note.to_bytes())
            .map_err(|error| self.refused(Refusal::Malformed(RequestError::Note(error))))?;
        let note_body = request.note.text().as_bytes().to_vec();
        self.store
            .record_cosigned(
                origin,
                &CosignedRecord {
                    state: cosigned.new_state,
                    note: cosigned_note,
                },
                &note_body,
            )
            .await?;
        self.metrics.count_cosigned(origin);
        let anchored = self
            .anchorer
            .as_ref()
            .and_then(|anchorer| anchorer.submit(origin, cosigned.new_state.size, note_body));
        Ok(Issued {
            response_body: cosigned.response_body(),
            anchored,
        })
    }

    /// Cosigns `checkpoint` at `now`: at once with a key file, on a blocking thread with a key
    /// in a token (whose call may block or fail).
    async fn cosign(&self, checkpoint: &Checkpoint, now: u64) -> Result<Cosignature, AddError> {
        let signed = if self.cosigner.is_in_token() {
            let (cosigner, checkpoint) = (Arc::clone(&self.cosigner), checkpoint.clone());
            tokio::task::spawn_blocking(move || cosigner.cosign(&checkpoint, now))
                .await
                .map_err(|error| AddError::Key(format!("the signing task failed: {error}")))?
        } else {
            self.cosigner.cosign(checkpoint, now)
        };
        signed.map_err(|error| {
            self.metrics.count_signing_error();
            tracing::error!(key = %self.cosigner.location(), %error, "cosigning fails");
            AddError::Key(error.to_string())
        })
    }

    fn refused(&self, refusal: Refusal) -> AddError {
        self.metrics.count_refusal(refusal_reason(&refusal));
        tracing::info!(
            status = refusal.http_status(),
            "add-checkpoint refused: {refusal}"
        );
        AddError::Refused(refusal)
    }

    /// A validly signed checkpoint that contradicts what the witness cosigned is proof (a fork)
    /// or strong suspicion (a bad proof) of log misbehaviour: say so loudly and keep it.
    async fn keep_evidence(
        &self,
        refusal: &Refusal,
        origin: &str,
        body: &[u8],
        known: Option<&CosignedRecord>,
    ) -> Result<(), StoreError> {
        let kind = if refusal.is_fork() {
            "fork"
        } else {
            "inconsistent_proof"
        };
        tracing::error!(origin, kind, "log misbehaviour: {refusal}");
        self.metrics.count_misbehaviour(origin);
        let record = serde_json::json!({
            "kind": kind,
            "origin": origin,
            "refusal": refusal.to_string(),
            "received_at": unix_seconds_now(),
            "request": String::from_utf8_lossy(body),
            "cosigned_checkpoint": known.map(|record| String::from_utf8_lossy(&record.note).into_owned()),
        });
        self.store
            .record_evidence(record.to_string().as_bytes())
            .await
    }
}

/// The metric label of a refusal.
pub fn refusal_reason(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::Malformed(_) => "malformed",
        Refusal::UnknownOrigin { .. } => "unknown_origin",
        Refusal::NotSignedByLog { .. } => "not_signed_by_log",
        Refusal::CheckpointGoesBack { .. } => "checkpoint_goes_back",
        Refusal::OldSizeAboveCheckpointSize { .. } => "old_size_above_checkpoint_size",
        Refusal::OldSizeMismatch { .. } => "old_size_mismatch",
        Refusal::BadEmptyTreeRoot { .. } => "bad_empty_tree_root",
        Refusal::ProofFromEmptyTree { .. } => "proof_from_empty_tree",
        Refusal::Fork { .. } => "fork",
        Refusal::InconsistentProof { .. } => "inconsistent_proof",
        Refusal::BadClock { .. } => "bad_clock",
        Refusal::Cosigning(_) => "cosigning_failed",
    }
}

fn unix_seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
