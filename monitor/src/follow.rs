//! The follower of one log: each poll reads the log's checkpoint, checks its signature and the
//! witness policy, grows the verified tree to it from the log's own tiles (`follow/grow.rs`),
//! asks the witnesses what they were shown and checks that against the verified tree
//! (`follow/gossip.rs`), fetches some verified tiles again, and notices a log that stopped
//! growing.
//!
//! What the log did wrong becomes an alert (once each), with a `cairn.evidence/v1` file where
//! the wrong can be proven to others (spec/docs/evidence.md); only the monitor's own failures are
//! errors ([`FollowError`]). What was verified is persisted in the monitor's state file
//! ([`crate::state`], `follow/state.rs`) and the verified tree's hashes in flat files
//! ([`crate::hashes`]), so a restarted monitor resumes, an interrupted growth included. Evidence
//! is committed to the state file before its file is written, so a proof the monitor found is
//! never lost to a full disk or a crash.

mod gossip;
mod grow;
mod state;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cairn_spec::checkpoint::{Checkpoint, SignedCheckpoint};
use cairn_spec::evidence::Evidence;
use cairn_spec::note::Ed25519Verifier;
use cairn_spec::policy::Policy;

use crate::alert::{Alert, AlertKind, Alerter};
use crate::fetch::{FetchError, Fetcher, LogSource, MAX_CHECKPOINT_BYTES};
use crate::hashes::HashFiles;
use crate::names::sanitize;
use crate::state::{write_durably, StateStore, StoredEvidence};

pub use crate::error::{FollowError, StoreError};
pub use crate::names::percent_encode;
pub use state::VerifiedState;

/// How many gossiped checkpoints larger than the verified tree are held until it gets there.
const MAX_PENDING: usize = 64;

/// How many evidence documents wait in memory while the state file cannot take them.
const MAX_UNSAVED_EVIDENCE: usize = 64;

/// One log to follow.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Where the log is read: the base URL of its read API, or `file:///path` of a local
    /// directory in the tlog-tiles layout.
    pub url: String,
    /// The log's verifier key; its name is the origin.
    pub key: Ed25519Verifier,
    /// The witness policy checkpoints must satisfy, if any.
    pub policy: Option<Policy>,
    /// Base URLs of witnesses to ask for `GET /checkpoint/<origin>`.
    pub witnesses: Vec<String>,
    /// Parse every leaf as a Cairn audit event.
    pub event_log: bool,
    /// Alert when the checkpoint does not grow for this many seconds.
    pub stale_after_secs: Option<u64>,
    /// How many verified full tiles to fetch again each poll to catch rewrites.
    pub recheck_tiles: u64,
    /// Fetch and check entry bundles (not only tiles).
    pub check_entries: bool,
}

impl LogSettings {
    /// The log's origin (its key name).
    pub fn origin(&self) -> &str {
        self.key.key_name().as_str()
    }
}

/// What checking a gossiped checkpoint found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipOutcome {
    /// Not a checkpoint validly signed by the log's key (or oversized): refused and counted.
    Refused,
    /// Consistent with the verified tree.
    Consistent,
    /// Larger than the verified tree (or nothing verified yet): held and checked once the
    /// monitor has verified that far.
    Pending,
    /// It conflicts with the verified tree: a split-view alert with evidence was raised.
    SplitView,
}

/// The follower of one log.
pub struct Follower {
    settings: LogSettings,
    /// Where the log's checkpoint and tiles are read.
    source: LogSource,
    /// For witnesses.
    fetcher: Fetcher,
    alerter: Arc<Alerter>,
    store: StateStore,
    hashes: Arc<HashFiles>,
    evidence_dir: PathBuf,
    state: Option<VerifiedState>,
    /// Checkpoints larger than the verified one, to check once the follower gets there.
    pending: Vec<(Vec<u8>, Checkpoint)>,
    /// Raised alerts already reported, to raise each once.
    reported: BTreeSet<String>,
    /// Evidence the state file could not take when it was found, committed at the next poll.
    unsaved_evidence: Vec<StoredEvidence>,
    /// Show a progress line on stderr while growing.
    progress: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

impl Follower {
    /// A follower resuming from the state in `store` and the hash files in `hash_dir`, if any.
    /// A stored state that does not read back is an error, never taken for no state.
    pub fn new(
        settings: LogSettings,
        fetcher: Fetcher,
        alerter: Arc<Alerter>,
        store: &StateStore,
        hash_dir: &Path,
        evidence_dir: PathBuf,
    ) -> Result<Follower, FollowError> {
        let origin = settings.origin().to_owned();
        let source = LogSource::from_url(&settings.url, fetcher.clone())?;
        let hashes = HashFiles::open(hash_dir, &origin).map_err(FollowError::Hashes)?;
        let state = store.verified(&origin)?;
        Ok(Follower {
            settings,
            source,
            fetcher,
            alerter,
            store: store.clone(),
            hashes: Arc::new(hashes),
            evidence_dir,
            state,
            pending: Vec::new(),
            reported: BTreeSet::new(),
            unsaved_evidence: Vec::new(),
            progress: false,
        })
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.settings.origin()
    }

    /// The verified state.
    pub fn state(&self) -> Option<&VerifiedState> {
        self.state.as_ref()
    }

    fn metric(&self, name: &str) {
        self.alerter.metrics.add(
            &format!("{name}{{origin=\"{}\"}}", self.settings.origin()),
            1,
        );
    }

    /// Counts a failed fetch: an oversized body is refused input, the rest is unavailability.
    fn fetch_failed(&self, error: &FetchError, source: &str) {
        match error {
            FetchError::TooLarge { .. } => self.refused(source),
            _ => self.metric("cairn_monitor_fetch_errors_total"),
        }
    }

    /// Counts input refused from `source` (`log`, `witness`, `peer`, `upload`).
    fn refused(&self, source: &str) {
        self.alerter.metrics.add(
            &format!(
                "cairn_monitor_bad_input_total{{source=\"{source}\",origin=\"{}\"}}",
                self.settings.origin()
            ),
            1,
        );
    }

    async fn raise(&mut self, kind: AlertKind, detail: String, evidence: Option<Evidence>) {
        let key = format!("{}:{detail}", kind.name());
        if !self.reported.insert(key) {
            return;
        }
        let path = match evidence {
            Some(evidence) => self.keep_evidence(kind, &evidence),
            None => None,
        };
        self.alerter
            .raise(Alert {
                kind,
                origin: self.settings.origin().to_owned(),
                detail,
                evidence: path,
            })
            .await;
    }

    /// Keeps evidence: committed to the state file first, then written to its file in the
    /// evidence directory; returns the file's path once it is written. A file that cannot be
    /// written now is written from the state at the next poll ([`StateStore::export_evidence`]);
    /// evidence the state file cannot take now waits in memory and is committed at the next
    /// poll.
    fn keep_evidence(&mut self, kind: AlertKind, evidence: &Evidence) -> Option<PathBuf> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0);
        let stored = StoredEvidence {
            origin: self.settings.origin().to_owned(),
            kind: kind.name().to_owned(),
            file: format!(
                "{}-{}-{nanos}.json",
                sanitize(self.settings.origin()),
                kind.name()
            ),
            document: evidence.to_json().into_bytes(),
        };
        if let Err(error) = self.store.record_evidence(&stored) {
            tracing::error!(%error, file = stored.file, "could not keep evidence in the state; retrying at the next poll");
            self.metric("cairn_monitor_store_errors_total");
            if self.unsaved_evidence.len() < MAX_UNSAVED_EVIDENCE {
                self.unsaved_evidence.push(stored.clone());
            }
        }
        match write_durably(&self.evidence_dir, &stored.file, &stored.document) {
            Ok(path) => Some(path),
            Err(error) => {
                tracing::error!(%error, file = stored.file, "could not write an evidence file; it is written again from the state");
                None
            }
        }
    }

    /// Commits the evidence the state could not take before, and writes this log's evidence
    /// files that could not be written. A failure waits for the next poll: it does not stop
    /// this one.
    fn retry_evidence(&mut self) {
        while let Some(stored) = self.unsaved_evidence.first() {
            if let Err(error) = self.store.record_evidence(stored) {
                tracing::error!(%error, "evidence still waits for the state file");
                return;
            }
            self.unsaved_evidence.remove(0);
        }
        if let Err(error) = self
            .store
            .export_evidence(self.settings.origin(), &self.evidence_dir)
        {
            tracing::error!(%error, "could not read the kept evidence");
        }
    }

    /// Opens a checkpoint from anyone with the log's key; `None` (counted) if it does not open.
    fn open(&self, note: &[u8], source: &str) -> Option<SignedCheckpoint> {
        if note.len() > MAX_CHECKPOINT_BYTES {
            self.refused(source);
            return None;
        }
        match Checkpoint::open(note, &self.settings.key) {
            Ok(signed) => Some(signed),
            Err(error) => {
                tracing::warn!(%error, source, "refused a checkpoint");
                self.refused(source);
                None
            }
        }
    }

    /// The policy names of the witnesses whose cosignatures verify.
    fn cosigners(&self, signed: &SignedCheckpoint) -> Option<(BTreeSet<String>, bool)> {
        let policy = self.settings.policy.as_ref()?;
        let mut cosigned = BTreeSet::new();
        for witness in &policy.witnesses {
            let valid = signed
                .verification
                .unverified
                .iter()
                .filter(|signature| {
                    signature.key_name == *witness.key.key_name()
                        && signature.key_id == witness.key.key_id()
                })
                .any(|signature| {
                    witness
                        .key
                        .verify_cosignature(&signed.checkpoint, signature)
                        .is_ok()
                });
            if valid {
                cosigned.insert(witness.name.clone());
            }
        }
        let met = policy.quorum_met(&cosigned);
        Some((cosigned, met))
    }

    /// One poll of the log: checkpoint, witnesses, new tiles, rewrites, staleness. Alerts are
    /// raised through the alerter; the error is only for the monitor's own storage.
    pub async fn poll(&mut self) -> Result<(), FollowError> {
        self.retry_evidence();
        let note = match self.source.get("checkpoint", MAX_CHECKPOINT_BYTES).await {
            Ok(note) => note,
            Err(error) => {
                tracing::warn!(%error, "log checkpoint fetch failed");
                self.fetch_failed(&error, "log");
                return Ok(());
            }
        };
        match Checkpoint::open(&note, &self.settings.key) {
            Err(error) => {
                self.refused("log");
                self.raise(
                    AlertKind::BadSignature,
                    format!("log checkpoint does not verify: {error}"),
                    None,
                )
                .await;
            }
            Ok(signed) => self.follow_log_checkpoint(note, signed).await?,
        }
        self.gather_witnesses().await;
        self.recheck_tiles().await;
        self.check_stale().await;
        Ok(())
    }

    async fn follow_log_checkpoint(
        &mut self,
        note: Vec<u8>,
        signed: SignedCheckpoint,
    ) -> Result<(), FollowError> {
        if let Some((cosigned, false)) = self.cosigners(&signed) {
            self.raise(
                AlertKind::WitnessPolicyUnmet,
                format!(
                    "checkpoint of size {} is cosigned by {cosigned:?}, short of the policy quorum",
                    signed.checkpoint.size
                ),
                None,
            )
            .await;
            // Not followed, but still a statement the log signed: one that conflicts with the
            // verified tree is a split view all the same.
            let verified_size = self.state.as_ref().map_or(0, |state| state.size);
            if self.state.is_some() && signed.checkpoint.size <= verified_size {
                self.check_against_verified(&note, &signed.checkpoint).await;
            }
            return Ok(());
        }
        let checkpoint = signed.checkpoint;
        let verified_size = self.state.as_ref().map_or(0, |state| state.size);
        if self.state.is_some() && checkpoint.size < verified_size {
            self.raise(
                AlertKind::CheckpointGoingBack,
                format!(
                    "log went back from size {verified_size} to {}",
                    checkpoint.size
                ),
                None,
            )
            .await;
        }
        if self.state.is_some() && checkpoint.size <= verified_size {
            self.check_against_verified(&note, &checkpoint).await;
            return Ok(());
        }
        self.grow(note, checkpoint).await
    }

    async fn check_stale(&mut self) {
        let (Some(limit), Some(state)) = (self.settings.stale_after_secs, self.state.as_ref())
        else {
            return;
        };
        let idle = now().saturating_sub(state.grown_at);
        if idle > limit {
            let detail = format!(
                "checkpoint stuck at size {} for {idle} s (limit {limit} s)",
                state.size
            );
            // Once per size the log is stuck at: growth followed by a new stall alerts again.
            let stuck_at = format!("stale-log@{}", state.size);
            if self.reported.insert(stuck_at) {
                self.raise(AlertKind::StaleLog, detail, None).await;
            }
        }
    }
}
