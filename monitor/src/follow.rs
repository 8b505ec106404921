//! The follower of one log: each poll reads the log's checkpoint, checks its signature and the
//! witness policy, grows the verified tree to it from the log's own tiles (`follow/grow.rs`),
//! asks the witnesses what they were shown and checks that against the verified tree
//! (`follow/gossip.rs`), fetches some verified tiles again, and notices a log that stopped
//! growing.
//!
//! What the log did wrong becomes an alert ([`crate::alert`]: raised once, active while it
//! lasts, resolved when a poll no longer finds it), with a `cairn.evidence/v1` file where the
//! wrong can be proven to others (spec/docs/evidence.md). An alert with evidence is an incident,
//! kept in the state and active until an operator acknowledges it (`follow/incidents.rs`). Only the monitor's own
//! failures are errors ([`FollowError`]); each poll says what it verified, or why it did not
//! ([`PollReport`]). What was verified is persisted in the monitor's state file
//! ([`crate::state`], `follow/state.rs`) and the verified tree's hashes in flat files
//! ([`crate::hashes`]), so a restarted monitor resumes, an interrupted growth included. Evidence
//! is committed to the state file before its file is written, so a proof the monitor found is
//! never lost to a full disk or a crash.

mod gossip;
mod grow;
mod incidents;
mod index;
mod keys;
mod state;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_spec::checkpoint::{Checkpoint, SignedCheckpoint};
use cairn_spec::note::Ed25519Verifier;
use cairn_spec::policy::Policy;

use crate::alert::{AlertKind, Alerter};
use crate::clock::unix_now;
use crate::fetch::{FetchError, Fetcher, LogSource, MAX_CHECKPOINT_BYTES};
use crate::hashes::HashFiles;
use crate::state::{StateStore, StoredEvidence};

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
    /// A reader's token for the log's read API, if its entry bundles are private.
    pub token: Option<String>,
}

impl LogSettings {
    /// The log's origin (its key name).
    pub fn origin(&self) -> &str {
        self.key.key_name().as_str()
    }
}

/// What one poll of a log established: the checkpoint it verified, or why it verified none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PollReport {
    /// The log.
    pub origin: String,
    /// The log's checkpoint as this poll verified it; `None` if it verified none.
    pub verified: Option<VerifiedNow>,
    /// Why this poll verified no checkpoint.
    pub problem: Option<String>,
    /// The verified state after the poll (perhaps from an earlier poll, not checked now).
    pub last_verified: Option<LastVerified>,
}

/// The log's checkpoint, verified in this poll.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedNow {
    /// Its tree size.
    pub size: u64,
    /// Its root, base64.
    pub root: String,
    /// The checkpoint note as the log served it.
    pub note: String,
    /// The verified size this poll grew from; `None` when the log's checkpoint was the one
    /// verified before (its signature and root checked again against it).
    pub grown_from: Option<u64>,
}

/// The verified state's checkpoint, in short.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LastVerified {
    /// Its tree size.
    pub size: u64,
    /// Its root, base64.
    pub root: String,
    /// Unix seconds when the verified size last grew.
    pub grown_at: u64,
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
    /// The alerts without evidence found in this poll (kind and subject): the others of this
    /// log end with it.
    observed: BTreeSet<(AlertKind, String)>,
    /// The verified full tiles fetched again in this poll and found unchanged.
    rechecked: BTreeSet<String>,
    /// Evidence the state file could not take when it was found, committed at the next poll.
    unsaved_evidence: Vec<StoredEvidence>,
    /// Show a progress line on stderr while growing.
    progress: bool,
    /// The log's keys: the pinned one and its verified key history (`follow/keys.rs`).
    keys: crate::key_history::LogKeys,
    /// The revoked keys' signatures found (alert subject → detail), raised at every poll.
    compromises: std::collections::BTreeMap<String, String>,
    /// The audit of the log's completeness index (`follow/index.rs`).
    index_audit: index::IndexAuditState,
    /// The size and index root of the checkpoint verified before this process started.
    index_seed: Option<(u64, cairn_spec::Hash)>,
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
        let source = LogSource::from_url(
            &settings.url,
            fetcher.clone().with_bearer(settings.token.clone()),
        )?;
        let hashes = HashFiles::open(hash_dir, &origin).map_err(FollowError::Hashes)?;
        let state = store.verified(&origin)?;
        let keys = crate::key_history::LogKeys::pinned(&settings.key).map_err(FollowError::Keys)?;
        let index_seed = state
            .as_ref()
            .and_then(|state| index::index_root_of(state.note.as_bytes()));
        Ok(Follower {
            index_audit: index::IndexAuditState::default(),
            index_seed,
            keys,
            compromises: std::collections::BTreeMap::new(),
            settings,
            source,
            fetcher,
            alerter,
            store: store.clone(),
            hashes: Arc::new(hashes),
            evidence_dir,
            state,
            pending: Vec::new(),
            observed: BTreeSet::new(),
            rechecked: BTreeSet::new(),
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

    /// Counts a failed read or write of the state.
    fn store_failed(&self) {
        self.alerter
            .metrics
            .count_store_error(self.settings.origin());
    }

    /// Counts a failed fetch: an oversized body is refused input, the rest is unavailability.
    fn fetch_failed(&self, error: &FetchError, source: &str) {
        match error {
            FetchError::TooLarge { .. } => self.refused(source),
            _ => self
                .alerter
                .metrics
                .count_fetch_error(Some(self.settings.origin())),
        }
    }

    /// Counts input refused from `source` (`log`, `witness`, `peer`, `upload`).
    fn refused(&self, source: &str) {
        self.alerter
            .metrics
            .count_bad_input(source, Some(self.settings.origin()));
    }

    /// Opens a checkpoint from anyone with the log's key; `None` (counted) if it does not open.
    fn open(&self, note: &[u8], source: &str) -> Option<SignedCheckpoint> {
        if note.len() > MAX_CHECKPOINT_BYTES {
            self.refused(source);
            return None;
        }
        match self.keys.open(note) {
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
            let valid = signed.verification.unverified.iter().any(|signature| {
                // Any of the witness's keys (across its rotation, the old and the new).
                witness.keys().any(|key| {
                    signature.key_name == *key.key_name()
                        && signature.key_id == key.key_id()
                        && key
                            .verify_cosignature(&signed.checkpoint, signature)
                            .is_ok()
                })
            });
            if valid {
                cosigned.insert(witness.name.clone());
            }
        }
        let met = policy.quorum_met(&cosigned);
        Some((cosigned, met))
    }

    /// One poll of the log: checkpoint, witnesses, new tiles, rewrites, staleness. Alerts are
    /// raised through the alerter; the report says which checkpoint this poll verified, or why
    /// it verified none. The error is only for the monitor's own storage.
    pub async fn poll(&mut self) -> Result<PollReport, FollowError> {
        self.observed.clear();
        self.rechecked.clear();
        self.retry_evidence();
        self.refresh_incidents().await;
        let note = match self.source.get("checkpoint", MAX_CHECKPOINT_BYTES).await {
            Ok(note) => note,
            Err(error) => {
                tracing::warn!(%error, "log checkpoint fetch failed");
                self.fetch_failed(&error, "log");
                // Nothing was checked: the alerts found before stay as they are.
                return Ok(self.report(Err(format!(
                    "the log's checkpoint could not be fetched: {error}"
                ))));
            }
        };
        self.check_keys(&note).await;
        let outcome = match self.keys.open(&note) {
            Err(error) => {
                self.refused("log");
                let detail = format!("log checkpoint does not verify: {error}");
                self.raise(AlertKind::BadSignature, detail.clone(), None)
                    .await;
                Err(detail)
            }
            Ok(signed) => self.follow_log_checkpoint(note, signed).await?,
        };
        if outcome.is_ok() {
            self.audit_index().await;
        }
        self.gather_witnesses().await;
        self.recheck_tiles().await;
        self.check_stale().await;
        self.resolve_unobserved().await;
        Ok(self.report(outcome))
    }

    /// The report of a poll that verified `outcome` (or why not).
    fn report(&self, outcome: Result<VerifiedNow, String>) -> PollReport {
        let (verified, problem) = match outcome {
            Ok(verified) => (Some(verified), None),
            Err(problem) => (None, Some(problem)),
        };
        PollReport {
            origin: self.settings.origin().to_owned(),
            verified,
            problem,
            last_verified: self.state.as_ref().map(|state| LastVerified {
                size: state.size,
                root: state.root.clone(),
                grown_at: state.grown_at,
            }),
        }
    }

    /// What this poll verified of the log's checkpoint, or why it did not.
    async fn follow_log_checkpoint(
        &mut self,
        note: Vec<u8>,
        signed: SignedCheckpoint,
    ) -> Result<Result<VerifiedNow, String>, FollowError> {
        if let Some((cosigned, false)) = self.cosigners(&signed) {
            let detail = format!(
                "checkpoint of size {} is cosigned by {cosigned:?}, short of the policy quorum",
                signed.checkpoint.size
            );
            self.raise(AlertKind::WitnessPolicyUnmet, detail.clone(), None)
                .await;
            // Not followed, but still a statement the log signed: one that conflicts with the
            // verified tree is a split view all the same.
            let verified_size = self.state.as_ref().map_or(0, |state| state.size);
            if self.state.is_some() && signed.checkpoint.size <= verified_size {
                self.check_against_verified(&note, &signed.checkpoint).await;
            }
            return Ok(Err(detail));
        }
        let checkpoint = signed.checkpoint;
        let verified_size = self.state.as_ref().map_or(0, |state| state.size);
        if self.state.is_some() && checkpoint.size < verified_size {
            let detail = format!(
                "log went back from size {verified_size} to {}",
                checkpoint.size
            );
            self.raise(AlertKind::CheckpointGoingBack, detail.clone(), None)
                .await;
            self.check_against_verified(&note, &checkpoint).await;
            return Ok(Err(detail));
        }
        if self.state.is_some() && checkpoint.size == verified_size {
            if self.check_against_verified(&note, &checkpoint).await {
                return Ok(Err(format!(
                    "the log's checkpoint of size {} has another root than the one verified \
                     before: a split view",
                    checkpoint.size
                )));
            }
            return Ok(Ok(VerifiedNow {
                size: checkpoint.size,
                root: checkpoint.root.to_base64(),
                note: String::from_utf8_lossy(&note).into_owned(),
                grown_from: None,
            }));
        }
        let from = verified_size;
        match self.grow(note, checkpoint).await? {
            Err(problem) => Ok(Err(problem)),
            Ok(()) => {
                let state = self
                    .state
                    .as_ref()
                    .expect("a growth that ends verified a state");
                Ok(Ok(VerifiedNow {
                    size: state.size,
                    root: state.root.clone(),
                    note: state.note.clone(),
                    grown_from: Some(from),
                }))
            }
        }
    }

    async fn check_stale(&mut self) {
        let (Some(limit), Some(state)) = (self.settings.stale_after_secs, self.state.as_ref())
        else {
            return;
        };
        let idle = unix_now().saturating_sub(state.grown_at);
        if idle > limit {
            let detail = format!(
                "checkpoint stuck at size {} for {idle} s (limit {limit} s)",
                state.size
            );
            // Active while the log is stuck; growth resolves it, and a new stall raises it
            // again.
            self.raise(AlertKind::StaleLog, detail, None).await;
        }
    }
}
