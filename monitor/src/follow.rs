//! The follower: polls one log's checkpoint, verifies its signature and witness policy, fetches
//! every new level-0 tile and entry bundle, recomputes leaf hashes and the root from them on top
//! of the last verified frontier (which checks consistency and the signed root in one step,
//! never through the log's own proofs), and persists the verified state in sled and the verified
//! tree's hashes in flat files ([`crate::hashes`]).
//!
//! Growing is a pipeline of three stages that overlap: while the tiles of one batch are checked
//! on every core ([`crate::verify`]), the next batch is fetched (over HTTP or from a local
//! directory, [`LogSource`]) and the previous one is written and synced with its progress
//! record, so an interrupted growth resumes from the last batch it committed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cairn_spec::checkpoint::{Checkpoint, SignedCheckpoint};
use cairn_spec::evidence::{prefix_proof, Evidence};
use cairn_spec::merkle::{
    consistency_proof, inclusion_proof, root_from_leaf_hashes, CompactRange, HashReader, NodeId,
};
use cairn_spec::note::Ed25519Verifier;
use cairn_spec::policy::Policy;
use cairn_spec::tiles::{decode_tile, Tile, TILE_WIDTH};
use cairn_spec::Hash;
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertKind, Alerter};
use crate::fetch::{join, FetchError, Fetcher, LogSource, MAX_CHECKPOINT_BYTES, MAX_TILE_BYTES};
use crate::hashes::{migrate_from_sled, HashFiles};
use crate::names::sanitize;
use crate::pipeline::{Commit, Committer, Pipeline, Verified};
use crate::verify::{FetchedTile, VerifiedTile};

pub use crate::error::{FollowError, StoreError};
pub use crate::names::percent_encode;

/// How many gossiped checkpoints larger than the verified tree are held until it gets there.
const MAX_PENDING: usize = 64;
/// How many tiles are fetched, verified and committed together (65,536 leaves): large enough
/// that a commit (two fdatasyncs and a sled flush) and starting the verifier threads are cheap
/// beside it, small enough that the pipeline fills quickly and an interruption loses little.
const BATCH_TILES: u64 = 256;

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

/// What the monitor has verified of one log, persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedState {
    /// The last verified checkpoint note, as served.
    pub note: String,
    /// Its tree size.
    pub size: u64,
    /// Its root.
    pub root: String,
    /// The compact-range frontier of that tree, base64, largest subtree first.
    pub frontier: Vec<String>,
    /// Unix seconds when the size last grew.
    pub grown_at: u64,
    /// The next full tile to fetch again.
    pub recheck_cursor: u64,
}

impl VerifiedState {
    fn range(&self) -> Option<CompactRange> {
        let frontier = self
            .frontier
            .iter()
            .map(|value| Hash::from_base64(value).ok())
            .collect::<Option<Vec<_>>>()?;
        CompactRange::from_frontier(self.size, frontier).ok()
    }

    fn root_hash(&self) -> Option<Hash> {
        Hash::from_base64(&self.root).ok()
    }
}

/// The key of an interrupted growth's progress in the state tree.
const PROGRESS_KEY: &str = "progress";

/// How far an interrupted growth got: the compact range of the leaves hashed from tiles, beyond
/// the verified tree, at a tile boundary.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    size: u64,
    frontier: Vec<String>,
}

/// The follower of one log.
pub struct Follower {
    settings: LogSettings,
    /// Where the log's checkpoint and tiles are read.
    source: LogSource,
    /// For witnesses.
    fetcher: Fetcher,
    alerter: Arc<Alerter>,
    state_tree: sled::Tree,
    hashes: Arc<HashFiles>,
    evidence_dir: PathBuf,
    state: Option<VerifiedState>,
    /// Checkpoints larger than the verified one, to check once the follower gets there.
    pending: Vec<(Vec<u8>, Checkpoint)>,
    /// Raised alerts already reported, to raise each once.
    reported: BTreeSet<String>,
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
    /// A follower resuming from the state in `db` and the hash files in `hash_dir`, if any.
    pub fn new(
        settings: LogSettings,
        fetcher: Fetcher,
        alerter: Arc<Alerter>,
        db: &sled::Db,
        hash_dir: &Path,
        evidence_dir: PathBuf,
    ) -> Result<Follower, FollowError> {
        let origin = settings.origin().to_owned();
        let source = LogSource::from_url(&settings.url, fetcher.clone())?;
        let state_tree = db.open_tree(format!("state/{origin}"))?;
        let hashes = HashFiles::open(hash_dir, &origin).map_err(FollowError::Hashes)?;
        migrate_from_sled(db, &origin, &hashes)?;
        let state = state_tree
            .get("verified")?
            .and_then(|bytes| serde_json::from_slice::<VerifiedState>(&bytes).ok())
            .filter(|state| state.range().is_some() && state.root_hash().is_some());
        Ok(Follower {
            settings,
            source,
            fetcher,
            alerter,
            state_tree,
            hashes: Arc::new(hashes),
            evidence_dir,
            state,
            pending: Vec::new(),
            reported: BTreeSet::new(),
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
            Some(evidence) => match self.write_evidence(kind, &evidence) {
                Ok(path) => Some(path),
                Err(error) => {
                    tracing::error!(%error, "could not write evidence");
                    None
                }
            },
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

    fn write_evidence(&self, kind: AlertKind, evidence: &Evidence) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.evidence_dir)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0);
        let path = self.evidence_dir.join(format!(
            "{}-{}-{nanos}.json",
            sanitize(self.settings.origin()),
            kind.name()
        ));
        std::fs::write(&path, evidence.to_json())?;
        Ok(path)
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

    /// Checks a validly signed checkpoint of at most the verified size against the verified
    /// tree; a conflict is a split view, with evidence.
    async fn check_against_verified(&mut self, note: &[u8], checkpoint: &Checkpoint) -> bool {
        let Some(state) = self.state.clone() else {
            return false;
        };
        let Some(verified_root) = state.root_hash() else {
            return false;
        };
        if checkpoint.size == state.size {
            if checkpoint.root != verified_root {
                let evidence = Evidence::same_size(state.note.as_bytes(), note);
                self.raise(
                    AlertKind::SplitView,
                    format!(
                        "two signed roots for size {}: {} (verified) and {}",
                        state.size, verified_root, checkpoint.root
                    ),
                    Some(evidence),
                )
                .await;
                return true;
            }
            return false;
        }
        if checkpoint.size == 0 || checkpoint.size > state.size {
            return false;
        }
        match self
            .prefix_proof_of_verified(checkpoint.size, &state, verified_root)
            .await
        {
            Ok((prefix_root, proof)) => {
                if prefix_root != checkpoint.root {
                    let evidence = Evidence::not_an_extension(note, state.note.as_bytes(), &proof);
                    self.raise(
                        AlertKind::SplitView,
                        format!(
                            "signed checkpoint of size {} (root {}) is not a prefix of the \
                             verified tree of size {}",
                            checkpoint.size, checkpoint.root, state.size
                        ),
                        Some(evidence),
                    )
                    .await;
                    return true;
                }
                false
            }
            Err(error) => {
                tracing::warn!(%error, "could not read the verified tree's hashes to compare");
                self.metric("cairn_monitor_store_errors_total");
                false
            }
        }
    }

    /// The root of the verified tree's first `old_size` leaves, and the prefix proof that shows
    /// it, from the hashes the monitor stored while verifying (never from the log).
    async fn prefix_proof_of_verified(
        &self,
        old_size: u64,
        state: &VerifiedState,
        _verified_root: Hash,
    ) -> Result<(Hash, Vec<Hash>), String> {
        let store = self.store(state.size);
        let proof =
            consistency_proof(old_size, state.size, &store).map_err(|error| error.to_string())?;
        let subtree = if old_size.is_power_of_two() {
            let node = NodeId::new(old_size.trailing_zeros() as u8, 0).ok_or("node")?;
            Some(
                store
                    .read_hashes(&[node])
                    .map_err(|error| error.to_string())?[0],
            )
        } else {
            None
        };
        let proof = prefix_proof(old_size, &proof, subtree);
        let (prefix_root, _) =
            cairn_spec::evidence::roots_from_prefix_proof(old_size, state.size, &proof)
                .map_err(|error| error.to_string())?;
        Ok((prefix_root, proof))
    }

    fn store(&self, size: u64) -> VerifiedHashes<'_> {
        VerifiedHashes {
            size,
            files: &self.hashes,
        }
    }

    /// Where an interrupted growth stopped, if it can be resumed towards a tree of `size`: the
    /// compact range of the leaves hashed from tiles so far. Those leaves are not verified yet
    /// (no signed root covers them until the growth ends), which is why this is kept apart from
    /// the verified state.
    fn resumable_progress(&self, size: u64) -> Option<CompactRange> {
        let verified_size = self.state.as_ref().map_or(0, |state| state.size);
        let bytes = self.state_tree.get(PROGRESS_KEY).ok()??;
        let progress: Progress = serde_json::from_slice(&bytes).ok()?;
        let usable = progress.size > verified_size
            && progress.size <= size
            && progress.size.is_multiple_of(u64::from(TILE_WIDTH));
        if !usable {
            return None;
        }
        let frontier = progress
            .frontier
            .iter()
            .map(|value| Hash::from_base64(value).ok())
            .collect::<Option<Vec<_>>>()?;
        CompactRange::from_frontier(progress.size, frontier).ok()
    }

    /// The progress record of a range that ends on a tile boundary, as committed.
    fn progress_record(range: &CompactRange) -> Vec<u8> {
        let progress = Progress {
            size: range.tree_size(),
            frontier: range.frontier().iter().map(Hash::to_base64).collect(),
        };
        serde_json::to_vec(&progress).expect("progress serialises")
    }

    /// Shows `done` of `total` leaves, and the rate since the growth started at `from`.
    fn show_progress(&self, (from, done, total): (u64, u64, u64), started: std::time::Instant) {
        if !self.progress {
            return;
        }
        let seconds = started.elapsed().as_secs_f64().max(1e-3);
        let percent = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        eprint!(
            "\r{}: {done} of {total} leaves ({percent:.1}%), {:.2} M leaves/s   ",
            self.settings.origin(),
            (done - from) as f64 / seconds / 1e6
        );
        if done >= total {
            eprintln!();
        }
    }

    /// Shows a progress line on stderr while growing (for `audit`).
    pub fn set_progress(&mut self, progress: bool) {
        self.progress = progress;
    }

    /// Fetches and verifies the leaves from the verified size to `checkpoint.size`.
    ///
    /// Batches of [`BATCH_TILES`] tiles are fetched ahead and verified on every core
    /// ([`Pipeline`]), folded here into the compact range in order (a few node hashes a tile),
    /// and committed behind ([`Committer`]: hashes written and synced, then the progress record).
    async fn grow(&mut self, note: Vec<u8>, checkpoint: Checkpoint) -> Result<(), FollowError> {
        let verified_range = match &self.state {
            Some(state) => state.range().unwrap_or_default(),
            None => CompactRange::new(),
        };
        let resumed = self.resumable_progress(checkpoint.size);
        let resuming = resumed.is_some();
        let mut range = resumed.unwrap_or_else(|| verified_range.clone());
        let old_range = verified_range;
        let old_note = self.state.as_ref().map(|state| state.note.clone());
        let width = u64::from(TILE_WIDTH);
        let end_tile = checkpoint.size.div_ceil(width);
        // The tiles served from the verified tree on, for evidence: their bytes are in the hash
        // files once committed, but for the first tile's hashes below the verified size.
        let mut served_tiles: Vec<Tile> = Vec::new();
        let mut first_served: Option<(Tile, Vec<u8>)> = None;
        let mut rewritten_partial = None;
        let started = std::time::Instant::now();
        // Evidence of a root mismatch carries every tile from the verified tree on; a growth
        // that is resumed, or too long for one evidence file, cannot carry them.
        let mut keep_tiles = !resuming;
        if resuming {
            tracing::info!(
                from = range.tree_size(),
                to = checkpoint.size,
                origin = self.settings.origin(),
                "resuming an interrupted verification"
            );
        }
        let entries = self.settings.check_entries || self.settings.event_log;
        let from = range.tree_size();
        let first_tile = from / width;
        let mut pipeline = Pipeline::start(
            self.source.clone(),
            (first_tile, end_tile, checkpoint.size),
            BATCH_TILES,
            entries,
            self.settings.event_log,
        );
        let mut committer = Committer::start(
            self.hashes.clone(),
            self.state_tree.clone(),
            PROGRESS_KEY,
            pipeline.buffers().clone(),
        );
        let mut interrupted = None;
        while let Some(Verified {
            fetched,
            verified,
            failure,
        }) = pipeline.next().await?
        {
            let verified = match verified {
                Ok(verified) => verified,
                Err(problem) => {
                    // What was verified before stays committed, to resume from.
                    committer.finish().await?;
                    self.refused("log");
                    self.raise(
                        AlertKind::CorruptData,
                        format!(
                            "log data for size {} is corrupt: {problem}",
                            checkpoint.size
                        ),
                        None,
                    )
                    .await;
                    return Ok(());
                }
            };
            let first_leaf = range.tree_size();
            let mut tiles = Vec::with_capacity(fetched.len());
            let mut tile_roots: Vec<(u64, Hash)> = Vec::new();
            for (
                FetchedTile {
                    tile,
                    data,
                    entries,
                },
                VerifiedTile { subtree },
            ) in fetched.into_iter().zip(verified)
            {
                if let Some(entries) = entries {
                    pipeline.buffers().give(entries);
                }
                let skip =
                    usize::try_from(range.tree_size() - tile.index() * width).expect("below 256");
                match subtree {
                    Some(tile_root) if skip == 0 => {
                        range = append_tile_root(&range, tile_root);
                        tile_roots.push((tile.index(), tile_root));
                    }
                    _ => {
                        let hashes = decode_tile(tile, &data).expect("verified tiles decode");
                        let skip = skip.min(hashes.len());
                        // The first hashes of a tile that was partial were verified before:
                        // they stay as verified; notice if the log now serves others.
                        let stored = self.hashes.leaf_hashes(tile.index() * width, skip).ok();
                        if stored.is_some_and(|stored| stored[..] != hashes[..skip]) {
                            rewritten_partial = Some(tile);
                        }
                        range
                            .extend_with(&hashes[skip..], |node, hash| {
                                if node.height() == 8 {
                                    tile_roots.push((node.index(), *hash));
                                }
                            })
                            .expect("tree size bounded by the checkpoint");
                    }
                }
                if keep_tiles && served_tiles.len() < cairn_spec::evidence::MAX_EVIDENCE_TILES {
                    if skip > 0 {
                        first_served = Some((tile, data.clone()));
                    }
                    served_tiles.push(tile);
                } else {
                    keep_tiles = false;
                    served_tiles.clear();
                }
                tiles.push((tile.index() * width, data));
            }
            // Progress is resumable only at a tile boundary short of the checkpoint.
            let progress = (range.tree_size().is_multiple_of(width)
                && range.tree_size() < checkpoint.size)
                .then(|| Self::progress_record(&range));
            committer = committer
                .send(Commit {
                    first_leaf,
                    tiles,
                    tile_roots,
                    progress,
                })
                .await?;
            self.show_progress((from, range.tree_size(), checkpoint.size), started);
            if failure.is_some() {
                interrupted = failure;
                break;
            }
        }
        committer.finish().await?;
        if let Some(error) = interrupted {
            tracing::warn!(%error, "fetching tiles failed; will retry next poll");
            self.fetch_failed(&error, "log");
            return Ok(());
        }
        if range.root() != checkpoint.root {
            self.state_tree.remove(PROGRESS_KEY)?;
            let old = old_note
                .as_ref()
                .map(|note| (note.as_bytes(), old_range.frontier()));
            // A resumed growth no longer holds the tiles served before the interruption; the
            // next poll starts again from the verified tree and writes the evidence.
            let evidence = if keep_tiles {
                match self.served_tiles(&served_tiles, first_served) {
                    Ok(served) => Some(Evidence::root_mismatch(old, &note, &served)),
                    Err(error) => {
                        tracing::error!(%error, "could not read back the served tiles");
                        None
                    }
                }
            } else {
                None
            };
            let resumed_note = if resuming {
                " (after resuming; the evidence follows from the next poll)"
            } else {
                ""
            };
            self.raise(
                AlertKind::RootMismatch,
                format!(
                    "signed root {} for size {} but the tiles give {}{resumed_note}",
                    checkpoint.root,
                    checkpoint.size,
                    range.root()
                ),
                evidence,
            )
            .await;
            return Ok(());
        }
        if let Some(tile) = rewritten_partial {
            self.raise(
                AlertKind::RewrittenTile,
                format!(
                    "tile {} now serves other hashes for leaves verified before",
                    tile.path()
                ),
                None,
            )
            .await;
        }
        let state = VerifiedState {
            note: String::from_utf8_lossy(&note).into_owned(),
            size: checkpoint.size,
            root: checkpoint.root.to_base64(),
            frontier: range.frontier().iter().map(Hash::to_base64).collect(),
            grown_at: now(),
            recheck_cursor: self.state.as_ref().map_or(0, |state| state.recheck_cursor),
        };
        self.persist(state, true)?;
        self.alerter.metrics.set(
            &format!(
                "cairn_monitor_verified_size{{origin=\"{}\"}}",
                self.settings.origin()
            ),
            checkpoint.size,
        );
        tracing::info!(
            size = checkpoint.size,
            origin = self.settings.origin(),
            "verified"
        );
        self.check_pending().await;
        Ok(())
    }

    /// The bytes of `tiles` as served during a growth: the first one's as kept (`first`, when
    /// its first hashes were verified before), the others' as committed to the hash files.
    fn served_tiles(
        &self,
        tiles: &[Tile],
        mut first: Option<(Tile, Vec<u8>)>,
    ) -> std::io::Result<Vec<(Tile, Vec<u8>)>> {
        let width = u64::from(TILE_WIDTH);
        tiles
            .iter()
            .map(|&tile| match first.take_if(|(kept, _)| *kept == tile) {
                Some(kept) => Ok(kept),
                None => self
                    .hashes
                    .leaf_hash_bytes(tile.index() * width, usize::from(tile.width()))
                    .map(|data| (tile, data)),
            })
            .collect()
    }

    /// Commits a verified state (its hashes are already synced), and with it, in one flushed
    /// sled batch, forgets the progress of the growth that led to it when `grown`.
    fn persist(&mut self, state: VerifiedState, grown: bool) -> Result<(), FollowError> {
        let mut batch = sled::Batch::default();
        batch.insert(
            "verified",
            serde_json::to_vec(&state).expect("state serialises"),
        );
        if grown {
            batch.remove(PROGRESS_KEY);
        }
        self.state_tree.apply_batch(batch)?;
        self.state_tree.flush()?;
        self.state = Some(state);
        Ok(())
    }

    /// Asks the witnesses for their latest checkpoints of this origin.
    async fn gather_witnesses(&mut self) {
        let witnesses = self.settings.witnesses.clone();
        for witness in witnesses {
            let url = join(
                &witness,
                &format!("checkpoint/{}", percent_encode(self.settings.origin())),
            );
            match self.fetcher.get(&url, MAX_CHECKPOINT_BYTES).await {
                Ok(note) => {
                    self.gossip(&note, "witness").await;
                }
                Err(error) => {
                    tracing::debug!(%error, "witness fetch failed");
                    self.fetch_failed(&error, "witness");
                }
            }
        }
    }

    /// Checks a checkpoint someone else was shown (a witness, a peer, an uploader) against
    /// the verified tree. It never enters the verified state: only the log's own tiles do.
    pub async fn gossip(&mut self, note: &[u8], source: &str) -> GossipOutcome {
        let Some(signed) = self.open(note, source) else {
            return GossipOutcome::Refused;
        };
        self.alerter
            .metrics
            .add("cairn_monitor_gossip_checked_total", 1);
        let verified_size = self.state.as_ref().map_or(0, |state| state.size);
        if signed.checkpoint.size > verified_size || self.state.is_none() {
            let known = self
                .pending
                .iter()
                .any(|(pending, _)| pending.as_slice() == note);
            if !known && self.pending.len() < MAX_PENDING {
                self.pending.push((note.to_vec(), signed.checkpoint));
            }
            return GossipOutcome::Pending;
        }
        if self.check_against_verified(note, &signed.checkpoint).await {
            GossipOutcome::SplitView
        } else {
            GossipOutcome::Consistent
        }
    }

    async fn check_pending(&mut self) {
        let verified_size = self.state.as_ref().map_or(0, |state| state.size);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(_, checkpoint)| checkpoint.size <= verified_size);
        self.pending = waiting;
        for (note, checkpoint) in ready {
            self.check_against_verified(&note, &checkpoint).await;
        }
    }

    /// Fetches some verified full tiles again and compares them with what was verified.
    async fn recheck_tiles(&mut self) {
        let Some(state) = self.state.clone() else {
            return;
        };
        let full_tiles = state.size / u64::from(TILE_WIDTH);
        if full_tiles == 0 || self.settings.recheck_tiles == 0 {
            return;
        }
        let mut cursor = state.recheck_cursor % full_tiles;
        for _ in 0..self.settings.recheck_tiles.min(full_tiles) {
            self.recheck_tile(cursor, &state).await;
            cursor = (cursor + 1) % full_tiles;
        }
        let mut state = state;
        state.recheck_cursor = cursor;
        if let Err(error) = self.persist(state, false) {
            tracing::error!(%error, "could not persist the recheck cursor");
        }
    }

    async fn recheck_tile(&mut self, index: u64, state: &VerifiedState) {
        let genuine = match self.hashes.tile_root(index) {
            Ok(genuine) => genuine,
            Err(error) => {
                tracing::warn!(%error, "could not read a verified tile root to recheck");
                self.metric("cairn_monitor_store_errors_total");
                return;
            }
        };
        let tile = Tile::new(0, index, TILE_WIDTH).expect("full tile");
        let data = match self.source.get(&tile.path(), MAX_TILE_BYTES).await {
            Ok(data) => data,
            Err(_) => {
                self.metric("cairn_monitor_fetch_errors_total");
                return;
            }
        };
        let served = decode_tile(tile, &data)
            .map(|hashes| cairn_spec::merkle::root_from_leaf_hashes(&hashes))
            .ok();
        if served.is_none() {
            self.refused("log");
        }
        if served == Some(genuine) {
            return;
        }
        let evidence = match (self.subtree_path(index, state), served) {
            (Some(path), Some(_)) => Some(Evidence::tile_mismatch(
                state.note.as_bytes(),
                tile,
                &data,
                genuine,
                &path,
            )),
            _ => None,
        };
        self.raise(
            AlertKind::RewrittenTile,
            format!("full tile {} changed after it was verified", tile.path()),
            evidence,
        )
        .await;
    }

    /// The path from the subtree of full tile `index` to the verified root, from the stored
    /// hashes: the part of the leaf's inclusion proof above height 8.
    fn subtree_path(&self, index: u64, state: &VerifiedState) -> Option<Vec<Hash>> {
        let proof = inclusion_proof(
            index * u64::from(TILE_WIDTH),
            state.size,
            &self.store(state.size),
        )
        .ok()?;
        Some(proof.get(8..)?.to_vec())
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

/// The hashes of the verified tree as the monitor stored them: every leaf hash and every full
/// tile's subtree root. Nodes above height 8 are folded from those.
struct VerifiedHashes<'a> {
    size: u64,
    files: &'a HashFiles,
}

impl VerifiedHashes<'_> {
    fn node(&self, node: NodeId) -> Result<Hash, StoreError> {
        if node.end_leaf() > self.size {
            return Err(StoreError(format!(
                "node at height {} index {} is outside the verified tree",
                node.height(),
                node.index()
            )));
        }
        let height = u32::from(node.height());
        let stored = if height < 8 {
            let count = 1usize << height;
            self.files
                .leaf_hashes(node.first_leaf(), count)
                .map(|hashes| root_from_leaf_hashes(&hashes))
        } else {
            self.files
                .subtree_of_tiles(node.index() << (height - 8), 1u64 << (height - 8))
        };
        stored.map_err(|error| StoreError(error.to_string()))
    }
}

impl HashReader for VerifiedHashes<'_> {
    type Error = StoreError;
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        nodes.iter().map(|&node| self.node(node)).collect()
    }
}

/// Appends the root of a full level-0 tile to a range that ends on a tile boundary. There the
/// frontier holds only nodes of height 8 or more, so it is also the frontier of the tree whose
/// leaves are the tiles' subtree roots (a node hashes the same way at every height, RFC 9162
/// §2.1.1): append in that tree, and scale back.
fn append_tile_root(range: &CompactRange, tile_root: Hash) -> CompactRange {
    let width = u64::from(TILE_WIDTH);
    let mut tiles =
        CompactRange::from_frontier(range.tree_size() / width, range.frontier().to_vec())
            .expect("a tile-aligned frontier is a frontier of tiles");
    tiles
        .append(tile_root)
        .expect("tree size bounded by the checkpoint");
    CompactRange::from_frontier(tiles.tree_size() * width, tiles.frontier().to_vec())
        .expect("the same frontier, in leaves")
}
