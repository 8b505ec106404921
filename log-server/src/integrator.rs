//! The integrator: grows the Merkle tree (RFC 9162 §2.1) over the durable entries and signs
//! C2SP tlog-checkpoint notes for it.
//!
//! The tree is held as a [`CompactRange`] (its frontier), so extending it reads only the new
//! leaf hashes, never old leaves. Every perfect subtree the new leaves complete whose height is
//! a multiple of 8 is appended to the store's hash level `height / 8`: those levels are exactly
//! the C2SP tlog-tiles tiles, so tiles and proofs are served from them.
//!
//! A checkpoint is signed at most once per interval and only when the tree grew; the stored
//! hashes are synced before the checkpoint that covers them is stored, so a stored checkpoint is
//! always provable after a crash. Checkpoints never go back.
//!
//! The leaf hashes of new entries come from the sequencer, which computed them when the leaves
//! arrived ([`Sequencer::take_durable_leaf_hashes`]): entries are read back from the store only
//! for what that bounded feed dropped, and after a restart.
//!
//! On start the frontier is restored from the stored hash levels: the tree size is the length of
//! level 0, and a level that a crash left shorter than the one below justifies is recomputed
//! from it. Entries beyond the stored tree are integrated again from the store.
//!
//! A failed store call (a full disk, an I/O error) leaves the frontier possibly ahead of the
//! stored levels, so the next run restores it from the store first, exactly as a start does.
//! Runs are retried with growing pauses until one succeeds, whether or not new entries arrive:
//! what was acknowledged is integrated and signed as soon as the store takes writes again.
//!
//! A log shared by several front-ends (the scaled backend) has one integrator at work at a
//! time, the holder of a lease ([`Coordination`]). The holder integrates every entry the store
//! has, whichever front-end sequenced it (the store's entry count, polled every checkpoint
//! interval, not only this process's feed), and on taking the lease learns the stored tree
//! again first, as another may have grown it. Every other front-end follows: it announces the
//! checkpoint stored by the holder, after learning the tiles that checkpoint covers, so that
//! what it serves is whole.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::merkle::CompactRange;
use cairn_spec::Hash;
use parking_lot::Mutex;
use tokio::sync::watch;

pub use crate::storage::{Coordination, StoreHashes};

use crate::key_history::LogSigner;
use crate::sequencer::Sequencer;
use crate::status::Status;
use crate::storage::{
    fold_perfect, justified_hash_count, LogStore, StoreError, StoredCheckpoint, MAX_HASH_LEVEL,
    TILE_HEIGHT,
};

/// Why the integrator could not go on.
#[derive(Debug, thiserror::Error)]
pub enum IntegratorError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored hashes do not form a tree.
    #[error("the stored hashes do not form a tree: {0}")]
    Tree(String),
    /// The checkpoint could not be signed.
    #[error("signing the checkpoint: {0}")]
    Sign(String),
    /// The completeness index could not be brought to the tree.
    #[error("{0}")]
    Index(#[from] crate::completeness::IndexError),
}

/// The integrator's tree: the frontier and how long each stored level is.
pub struct Tree {
    range: CompactRange,
    level_counts: [u64; MAX_HASH_LEVEL as usize + 1],
}

impl Tree {
    /// Restores the tree from `store`'s hash levels, repairing levels a crash left short.
    pub fn restore(store: &dyn LogStore) -> Result<Tree, IntegratorError> {
        let size = store.hash_count(0)?;
        let mut level_counts = [0u64; MAX_HASH_LEVEL as usize + 1];
        level_counts[0] = size;
        for level in 1..=MAX_HASH_LEVEL {
            let mut count = store.hash_count(level)?;
            let justified = justified_hash_count(level, size);
            while count < justified {
                let below = store.read_hashes(level - 1, count << TILE_HEIGHT, 256)?;
                store.append_hashes(level, count, &[fold_perfect(below)])?;
                count += 1;
            }
            level_counts[level as usize] = count;
        }
        let range = CompactRange::from_reader(size, &StoreHashes::new(store))
            .map_err(|error| IntegratorError::Tree(error.to_string()))?;
        Ok(Tree {
            range,
            level_counts,
        })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.range.tree_size()
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        self.range.root()
    }

    /// Appends leaf hashes and stores the completed subtrees of tile heights. Hashes a level
    /// already holds (left by a crash after a partial sync) are not written twice.
    pub fn extend(
        &mut self,
        store: &dyn LogStore,
        leaf_hashes: &[Hash],
    ) -> Result<(), IntegratorError> {
        let mut per_level: Vec<Vec<(u64, Hash)>> = vec![Vec::new(); MAX_HASH_LEVEL as usize + 1];
        self.range
            .extend_with(leaf_hashes, |node, hash| {
                let height = u32::from(node.height());
                if height % TILE_HEIGHT == 0 && height / TILE_HEIGHT <= u32::from(MAX_HASH_LEVEL) {
                    per_level[(height / TILE_HEIGHT) as usize].push((node.index(), *hash));
                }
            })
            .map_err(|error| IntegratorError::Tree(error.to_string()))?;
        for (level, nodes) in per_level.iter().enumerate() {
            let count = self.level_counts[level];
            let fresh: Vec<Hash> = nodes
                .iter()
                .filter(|(index, _)| *index >= count)
                .map(|(_, hash)| *hash)
                .collect();
            if fresh.is_empty() {
                continue;
            }
            store.append_hashes(level as u8, count, &fresh)?;
            self.level_counts[level] = count + fresh.len() as u64;
        }
        Ok(())
    }
}

/// Configuration of the integrator.
#[derive(Clone, Debug)]
pub struct IntegratorConfig {
    /// The shortest time between two checkpoints.
    pub checkpoint_interval: Duration,
    /// The completeness index whose root every checkpoint carries (an events log); `None`:
    /// checkpoints without extension lines.
    pub index: Option<Arc<crate::completeness::CompletenessIndex>>,
}

impl Default for IntegratorConfig {
    fn default() -> IntegratorConfig {
        IntegratorConfig {
            checkpoint_interval: Duration::from_secs(1),
            index: None,
        }
    }
}

/// The integrator, running as a task. Its checkpoints are announced on [`Integrator::checkpoints`].
pub struct Integrator {
    checkpoints: watch::Receiver<Option<StoredCheckpoint>>,
    status: Arc<Status>,
    signing: Arc<Status>,
    stop: watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<Result<(), IntegratorError>>>>,
}

/// The first pause before a failed run is tried again; doubled after each failure.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(100);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

struct Work {
    store: Arc<dyn LogStore>,
    sequencer: Arc<Sequencer>,
    /// `None` until restored (a start on a failing disk may not restore it at once).
    tree: Mutex<Option<Tree>>,
    /// A run failed: the frontier may be ahead of the stored levels, and is restored first.
    restore_first: AtomicBool,
    status: Arc<Status>,
    signer: LogSigner,
    /// Why signing fails now, if it does (a token removed or refusing), apart from storage.
    signing: Arc<Status>,
    origin: String,
    published: watch::Sender<Option<StoredCheckpoint>>,
    /// Who integrates, for a log shared by several front-ends.
    coordination: Option<Arc<dyn Coordination>>,
    /// The lease token the last run integrated under (`None`: it followed, or never ran).
    lease_token: Mutex<Option<u64>>,
    /// The completeness index, brought to the tree before each checkpoint.
    index: Option<Arc<crate::completeness::CompletenessIndex>>,
}

impl Work {
    /// [`Work::integrate_and_sign`], restoring the frontier first after a failed run, and
    /// keeping the status. Blocking.
    fn run(&self, durable: u64) -> Result<(), IntegratorError> {
        let result = match &self.coordination {
            None => self.integrate_and_sign(durable),
            Some(coordination) => self.coordinated(coordination.as_ref(), durable),
        };
        match &result {
            Ok(()) => {
                if let Some(reason) = self.status.recovered() {
                    tracing::info!(%reason, "the integrator runs again");
                }
            }
            // The tree is whole: only the signature is missing, and `signing` says why.
            Err(IntegratorError::Sign(_)) => {}
            Err(error) => {
                self.restore_first.store(true, Ordering::Release);
                self.status.failed(Some(error.to_string()));
            }
        }
        result
    }

    /// With a lease: integrates if this process holds it (learning the stored tree again first
    /// when it just took it), follows the holder otherwise. Blocking.
    fn coordinated(
        &self,
        coordination: &dyn Coordination,
        durable: u64,
    ) -> Result<(), IntegratorError> {
        let token = coordination.lease();
        let mut integrated_under = self.lease_token.lock();
        if token.is_none() {
            *integrated_under = None;
            drop(integrated_under);
            return self.follow_stored(coordination);
        }
        if *integrated_under != token {
            // Taking over: the last holder may have grown the tree and stored checkpoints.
            coordination.reload_tree()?;
            self.restore_first.store(true, Ordering::Release);
            let latest = self.store.latest_checkpoint()?;
            self.announce_if_newer(latest);
            *integrated_under = token;
        }
        drop(integrated_under);
        self.integrate_and_sign(durable)
    }

    /// Announces the checkpoint the lease holder stored, if it is newer than the one announced,
    /// once the tiles it covers are known here. Blocking.
    fn follow_stored(&self, coordination: &dyn Coordination) -> Result<(), IntegratorError> {
        // The holder integrates what this process sequenced: the feed is not needed here.
        drop(self.sequencer.take_durable_leaf_hashes());
        let latest = self.store.latest_checkpoint()?;
        let announced = self.published.borrow().as_ref().map(|c| c.size);
        let newer = latest
            .as_ref()
            .is_some_and(|stored| announced.is_none_or(|size| size < stored.size));
        if newer {
            coordination.reload_tree()?;
            self.announce_if_newer(latest);
        }
        Ok(())
    }

    fn announce_if_newer(&self, checkpoint: Option<StoredCheckpoint>) {
        let Some(checkpoint) = checkpoint else {
            return;
        };
        self.published.send_if_modified(|announced| {
            let newer = announced
                .as_ref()
                .is_none_or(|known| known.size < checkpoint.size);
            if newer {
                *announced = Some(checkpoint);
            }
            newer
        });
    }

    /// Integrates every entry up to `durable` (and any later ones the sequencer already
    /// handed over) and signs a checkpoint if the tree outgrew the last one. Blocking.
    fn integrate_and_sign(&self, durable: u64) -> Result<(), IntegratorError> {
        let mut restored = self.tree.lock();
        if restored.is_none() || self.restore_first.load(Ordering::Acquire) {
            *restored = Some(Tree::restore(self.store.as_ref())?);
            self.restore_first.store(false, Ordering::Release);
        }
        let tree = restored.as_mut().expect("restored just above");
        // Everything in the feed is durable: it was added after its append returned.
        let fed = self.sequencer.take_durable_leaf_hashes();
        let mut durable = durable.max(fed.end());
        if self.coordination.is_some() {
            // Other front-ends append too: the store knows how far the log goes.
            durable = durable.max(self.store.entry_count());
        }
        let read_limit = self.store.limits().max_read_count.max(1);
        while tree.size() < durable {
            let size = tree.size();
            if (fed.first_index..fed.end()).contains(&size) {
                let from = (size - fed.first_index) as usize;
                let until = fed.leaf_hashes.len().min(from + read_limit as usize);
                tree.extend(self.store.as_ref(), &fed.leaf_hashes[from..until])?;
                continue;
            }
            // Before the feed (it dropped these, or they predate this process): read them back.
            let until = if fed.first_index > size {
                fed.first_index.min(durable)
            } else {
                durable
            };
            let count = (until - size).min(read_limit);
            let entries = self.store.read_entries(size, count)?;
            let hashes: Vec<Hash> = entries.iter().map(|entry| entry.leaf_hash()).collect();
            tree.extend(self.store.as_ref(), &hashes)?;
        }
        let last = self.published.borrow().as_ref().map(|c| c.size);
        // A new log signs its empty tree once, so that there is a checkpoint to start from.
        if last.is_some_and(|size| size >= tree.size()) {
            return Ok(());
        }
        let extensions = match &self.index {
            Some(index) => index.extensions_at(self.store.as_ref(), tree.size())?,
            None => Vec::new(),
        };
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size: tree.size(),
            root: tree.root(),
            extensions,
        };
        // May block on a token: this runs on a blocking thread.
        let note = match self.signer.sign_checkpoint(&checkpoint) {
            Ok(note) => {
                if let Some(reason) = self.signing.recovered() {
                    tracing::info!(%reason, "checkpoints are signed again");
                }
                note
            }
            Err(error) => {
                let reason = error.to_string();
                if !self.signing.failed(Some(reason.clone())) {
                    tracing::error!(key = %self.signer.location(), %reason, "signing a checkpoint fails; publication waits, sequencing goes on");
                }
                return Err(IntegratorError::Sign(reason));
            }
        }
        .to_bytes()
        .map_err(|error| IntegratorError::Sign(error.to_string()))?;
        self.store.sync_hashes()?;
        let stored = StoredCheckpoint {
            size: tree.size(),
            note,
        };
        self.store.store_checkpoint(&stored)?;
        tracing::debug!(size = stored.size, "signed a checkpoint");
        self.published.send_replace(Some(stored));
        Ok(())
    }
}

impl Integrator {
    /// Restores the tree from `store` and starts following the entries `sequencer` makes
    /// durable. Signs a first checkpoint at once if the store has none or the tree outgrew it.
    pub async fn start(
        store: Arc<dyn LogStore>,
        sequencer: Arc<Sequencer>,
        signer: LogSigner,
        config: IntegratorConfig,
    ) -> Result<Integrator, IntegratorError> {
        Integrator::start_coordinated(store, sequencer, signer, config, None).await
    }

    /// [`Integrator::start`] for a log shared by several front-ends: it integrates only while
    /// `coordination` says this process holds the lease, follows the holder otherwise, and
    /// looks at the store for new entries every checkpoint interval.
    pub async fn start_coordinated(
        store: Arc<dyn LogStore>,
        sequencer: Arc<Sequencer>,
        signer: LogSigner,
        config: IntegratorConfig,
        coordination: Option<Arc<dyn Coordination>>,
    ) -> Result<Integrator, IntegratorError> {
        let poll = coordination.as_ref().map(|_| config.checkpoint_interval);
        let origin = signer.key_name().as_str().to_string();
        let restore_store = store.clone();
        let (tree, latest) = tokio::task::spawn_blocking(move || {
            let latest = restore_store.latest_checkpoint()?;
            // A start on a full or failing disk serves what it published and restores the tree
            // once the store takes writes again (restoring may write hashes a crash lost).
            let tree = match Tree::restore(restore_store.as_ref()) {
                Ok(tree) => Some(tree),
                Err(IntegratorError::Store(error)) if error.is_unavailable() => {
                    tracing::warn!(%error, "the tree is restored once the store takes writes");
                    None
                }
                Err(error) => return Err(error),
            };
            Ok::<_, IntegratorError>((tree, latest))
        })
        .await
        .map_err(|error| IntegratorError::Tree(format!("restore task failed: {error}")))??;
        let (published, checkpoints) = watch::channel(latest);
        let durable = sequencer.durable_size();
        let status = Arc::new(Status::default());
        let signing = Arc::new(Status::default());
        let work = Arc::new(Work {
            store,
            sequencer,
            tree: Mutex::new(tree),
            restore_first: AtomicBool::new(false),
            status: Arc::clone(&status),
            signer,
            signing: Arc::clone(&signing),
            origin,
            published,
            coordination,
            lease_token: Mutex::new(None),
            index: config.index.clone(),
        });
        let first = *durable.borrow();
        let retry = match run_blocking(&work, first).await {
            Ok(()) => None,
            Err(IntegratorError::Store(error)) if error.is_unavailable() => {
                tracing::error!(%error, "the integrator starts failing; retrying until the store takes writes again");
                Some(FIRST_RETRY_PAUSE)
            }
            // The key is unreachable (a token removed or refusing): serve, sequence, and sign
            // once it answers again.
            Err(IntegratorError::Sign(_)) => Some(FIRST_RETRY_PAUSE),
            Err(error) => return Err(error),
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow(
            work,
            durable,
            stopped,
            config.checkpoint_interval,
            poll,
            retry,
        ));
        Ok(Integrator {
            checkpoints,
            status,
            signing,
            stop,
            task: tokio::sync::Mutex::new(Some(task)),
        })
    }

    /// How integration is doing.
    pub fn status(&self) -> Arc<Status> {
        Arc::clone(&self.status)
    }

    /// How signing checkpoints is doing (the key in its file or token), apart from storage.
    pub fn signing_status(&self) -> Arc<Status> {
        Arc::clone(&self.signing)
    }

    /// The latest signed checkpoint, updated as new ones are stored.
    pub fn checkpoints(&self) -> watch::Receiver<Option<StoredCheckpoint>> {
        self.checkpoints.clone()
    }

    /// Integrates everything durable so far, signs a final checkpoint, and stops.
    pub async fn shutdown(&self) -> Result<(), IntegratorError> {
        self.stop.send_replace(true);
        let Some(task) = self.task.lock().await.take() else {
            return Ok(());
        };
        task.await
            .map_err(|error| IntegratorError::Tree(format!("integrator task failed: {error}")))?
    }
}

async fn run_blocking(work: &Arc<Work>, durable: u64) -> Result<(), IntegratorError> {
    let work = work.clone();
    tokio::task::spawn_blocking(move || work.run(durable))
        .await
        .map_err(|error| IntegratorError::Tree(format!("integration task failed: {error}")))?
}

async fn follow(
    work: Arc<Work>,
    mut durable: watch::Receiver<u64>,
    mut stopped: watch::Receiver<bool>,
    interval: Duration,
    // How often to run even when this process sequenced nothing (others may have).
    poll: Option<Duration>,
    // After a failed run: the pause before the next, which comes whether entries arrive or not.
    mut retry: Option<Duration>,
) -> Result<(), IntegratorError> {
    let mut last_run = Instant::now();
    loop {
        match retry {
            None => tokio::select! {
                changed = durable.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                _ = async {
                    match poll {
                        Some(poll) => tokio::time::sleep(poll).await,
                        None => std::future::pending().await,
                    }
                } => {}
                _ = stopped.changed() => break,
            },
            Some(pause) => tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => break,
            },
        }
        let next = last_run + interval;
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = stopped.changed() => break,
        }
        last_run = Instant::now();
        let size = *durable.borrow_and_update();
        match run_blocking(&work, size).await {
            Ok(()) => retry = None,
            Err(error) => {
                let pause =
                    retry.map_or(FIRST_RETRY_PAUSE, |pause| (pause * 2).min(MAX_RETRY_PAUSE));
                // A signing failure was logged where it happened, once per run of them.
                if retry.is_none() && !matches!(error, IntegratorError::Sign(_)) {
                    tracing::error!(%error, "the integrator failed; retrying until the store takes writes again");
                }
                retry = Some(pause);
            }
        }
    }
    let size = *durable.borrow();
    run_blocking(&work, size).await
}
