//! The stages of a growth that run beside the follower: fetching batches of level-0 tiles
//! ahead, verifying them on every core, and committing what was verified behind.
//!
//! The follower folds each verified batch into its compact range, in order, on its own task;
//! everything else overlaps with that fold and with each other:
//!
//! ```text
//! fetch     k+2.. ─────────▶         (from a directory, several batches at once)
//! verify    k+1 ──────▶            (all cores)
//! fold      k   ─▶                 (the follower)
//! commit    k-1 ──────────────▶    (write, fdatasync, then the progress, one transaction)
//! ```
//!
//! From a directory, several batches are read at once, so that a slow read at the end of one
//! batch does not leave the reads of the next waiting for it: reads of files that are not in the
//! page cache block on the disk, and many in flight are what make the disk fast.
//! A batch is verified as soon as it is fetched and the previous one is verified; commits are
//! queued to one thread that applies them in order, so a slow disk delays only durability, not
//! hashing, until its queue is full.

use std::collections::VecDeque;
use std::sync::Arc;

use cairn_spec::Hash;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::FollowError;
use crate::fetch::{BufferPool, FetchError, Level0Batch, LogSource};
use crate::hashes::HashFiles;
use crate::state::StateStore;
use crate::verify::{verify_batch, FetchedTile, VerifiedTile};
use cairn_spec::merkle::CompactRange;

/// How many verified batches may wait for the disk before the fold waits for it.
const QUEUED_COMMITS: usize = 4;
/// How many batches are read at once from a directory, ahead of the one being verified. Over
/// HTTP one batch is fetched at a time: its [`crate::fetch`] workers keep enough requests in
/// flight, and three batches' worth slowed a loopback audit down in the one run measured.
const FETCH_AHEAD: usize = 3;

/// Awaits a task of the pipeline: a panic in it is resumed here.
pub async fn joined<T>(handle: JoinHandle<T>) -> Result<T, FollowError> {
    match handle.await {
        Ok(value) => Ok(value),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(FollowError::Stopped),
    }
}

/// A verified batch: its tiles as fetched, what checking them found, and why fetching stopped
/// after it, if it did.
pub struct Verified {
    /// The tiles as fetched, in order.
    pub fetched: Vec<FetchedTile>,
    /// What checking them found, or the first problem.
    pub verified: Result<Vec<VerifiedTile>, String>,
    /// Why fetching stopped at the end of this batch.
    pub failure: Option<FetchError>,
}

/// Fetches and verifies the level-0 tiles `first_tile..end_tile` of a tree of `size`, in
/// batches of `batch_tiles`, one batch verified while the next are fetched.
pub struct Pipeline {
    source: LogSource,
    size: u64,
    end_tile: u64,
    batch_tiles: u64,
    entries: bool,
    event_log: bool,
    threads: usize,
    /// The batches being fetched, in order (at most `ahead`).
    fetching: VecDeque<JoinHandle<Level0Batch>>,
    /// How many batches are fetched at once: [`FETCH_AHEAD`] from a directory, 1 over HTTP.
    ahead: usize,
    /// The first tile of the next batch to start fetching.
    next_tile: u64,
    buffers: Arc<BufferPool>,
    /// The batch being verified.
    verifying: Option<JoinHandle<Verified>>,
}

impl Pipeline {
    /// Starts fetching the first batches.
    pub fn start(
        source: LogSource,
        (first_tile, end_tile, size): (u64, u64, u64),
        batch_tiles: u64,
        entries: bool,
        event_log: bool,
    ) -> Pipeline {
        let ahead = match source {
            LogSource::Dir(_) => FETCH_AHEAD,
            LogSource::Http { .. } => 1,
        };
        let mut pipeline = Pipeline {
            source,
            size,
            end_tile,
            batch_tiles,
            entries,
            event_log,
            threads: std::thread::available_parallelism().map_or(2, |count| count.get()),
            ahead,
            fetching: VecDeque::with_capacity(FETCH_AHEAD),
            next_tile: first_tile,
            buffers: Arc::default(),
            verifying: None,
        };
        pipeline.fetch_ahead();
        pipeline
    }

    /// Starts fetching batches until `ahead` are being fetched or none is left.
    fn fetch_ahead(&mut self) {
        while self.fetching.len() < self.ahead && self.next_tile < self.end_tile {
            let (source, size, entries) = (self.source.clone(), self.size, self.entries);
            let buffers = self.buffers.clone();
            let batch = self.next_tile..self.end_tile.min(self.next_tile + self.batch_tiles);
            self.next_tile = batch.end;
            let handle =
                tokio::spawn(
                    async move { source.fetch_level0(batch, size, entries, &buffers).await },
                );
            self.fetching.push_back(handle);
        }
    }

    /// Waits for the next batch being fetched, starts fetching more (unless this one stopped
    /// early: the batches after it are then dropped, unused) and starts verifying it.
    async fn verify_next(&mut self) -> Result<Option<JoinHandle<Verified>>, FollowError> {
        let Some(handle) = self.fetching.pop_front() else {
            return Ok(None);
        };
        let Level0Batch { tiles, failure } = joined(handle).await?;
        if failure.is_none() {
            self.fetch_ahead();
        } else {
            self.stop_fetching();
        }
        let (event_log, threads) = (self.event_log, self.threads);
        Ok(Some(tokio::task::spawn_blocking(move || Verified {
            verified: verify_batch(&tiles, event_log, threads),
            fetched: tiles,
            failure,
        })))
    }

    /// Stops fetching: the batches being fetched are not waited for, and none is started.
    fn stop_fetching(&mut self) {
        for handle in self.fetching.drain(..) {
            handle.abort();
        }
        self.next_tile = self.end_tile;
    }

    /// Where buffers of fetched tiles and bundles go back when their bytes are used.
    pub fn buffers(&self) -> &Arc<BufferPool> {
        &self.buffers
    }

    /// The next verified batch, in order; `None` after the last. The batch after it is being
    /// verified already when this returns.
    pub async fn next(&mut self) -> Result<Option<Verified>, FollowError> {
        if self.verifying.is_none() {
            self.verifying = self.verify_next().await?;
        }
        let Some(handle) = self.verifying.take() else {
            return Ok(None);
        };
        let verified = joined(handle).await?;
        if verified.verified.is_ok() {
            self.verifying = self.verify_next().await?;
        }
        Ok(Some(verified))
    }
}

impl Drop for Pipeline {
    /// A growth that stops early (a corrupt batch) fetches nothing more.
    fn drop(&mut self) {
        self.stop_fetching();
    }
}

/// What one verified batch adds to the hash files, and the progress record that names it.
pub struct Commit {
    /// The first leaf of the batch: hashes below it were committed before.
    pub first_leaf: u64,
    /// Level-0 tiles as served (32-byte leaf hashes), each with the index of its first leaf.
    pub tiles: Vec<(u64, Vec<u8>)>,
    /// Roots of the full tiles the batch completed, in tile order without gaps.
    pub tile_roots: Vec<(u64, Hash)>,
    /// The progress to commit once they are synced (the range of the leaves hashed so far), if
    /// the batch ends on a resumable boundary.
    pub progress: Option<CompactRange>,
}

/// The commit stage: one thread applying commits in order.
pub struct Committer {
    sender: mpsc::Sender<Commit>,
    task: JoinHandle<Result<(), FollowError>>,
}

impl Committer {
    /// Starts the commit thread for the hash files and the progress of `origin` in the state
    /// file. Tile buffers go back to `buffers` once written.
    pub fn start(
        hashes: Arc<HashFiles>,
        store: StateStore,
        origin: String,
        buffers: Arc<BufferPool>,
    ) -> Committer {
        let (sender, mut receiver) = mpsc::channel::<Commit>(QUEUED_COMMITS);
        let task = tokio::task::spawn_blocking(move || {
            while let Some(commit) = receiver.blocking_recv() {
                apply(&hashes, &store, &origin, commit, &buffers)?;
            }
            Ok(())
        });
        Committer { sender, task }
    }

    /// Queues a commit; waits while the queue is full. If an earlier commit failed, the stage
    /// has stopped: its error is returned.
    pub async fn send(self, commit: Commit) -> Result<Committer, FollowError> {
        match self.sender.send(commit).await {
            Ok(()) => Ok(self),
            Err(_) => Err(self.finish().await.err().unwrap_or(FollowError::Stopped)),
        }
    }

    /// Waits until every queued commit is applied (durable).
    pub async fn finish(self) -> Result<(), FollowError> {
        drop(self.sender);
        joined(self.task).await?
    }
}

/// Writes a batch's hashes, syncs them, and only then commits the progress record naming them.
fn apply(
    hashes: &HashFiles,
    store: &StateStore,
    origin: &str,
    commit: Commit,
    buffers: &BufferPool,
) -> Result<(), FollowError> {
    for (tile_first_leaf, data) in commit.tiles {
        let skip = commit.first_leaf.saturating_sub(tile_first_leaf);
        let skip = usize::try_from(skip).map_or(data.len(), |skip| (skip * 32).min(data.len()));
        hashes
            .write_leaf_hashes(tile_first_leaf + (skip / 32) as u64, &data[skip..])
            .map_err(FollowError::Hashes)?;
        buffers.give(data);
    }
    if let Some(&(first_tile, _)) = commit.tile_roots.first() {
        let roots: Vec<Hash> = commit.tile_roots.iter().map(|&(_, root)| root).collect();
        hashes
            .write_tile_roots(first_tile, &roots)
            .map_err(FollowError::Hashes)?;
    }
    hashes.sync().map_err(FollowError::Hashes)?;
    if let Some(progress) = commit.progress {
        store.set_progress(origin, &progress)?;
    }
    Ok(())
}
