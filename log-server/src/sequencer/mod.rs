//! The sequencer: turns concurrent submissions into durable, ordered entries, many per fsync.
//!
//! ```text
//! submitters ──try_submit──▶ queue ──▶ committer thread ──▶ pending batch ──▶ writer thread
//!  (hash the leaf;                     dedup, assign         (shared, cut      one append =
//!   admission by                       indices               when the writer   one write +
//!   leaves and bytes)                                        is free)          one fdatasync,
//!                                                                              then answer
//! ```
//!
//! - **Admission.** A submission reserves its leaves and bytes against fixed budgets; when they
//!   are spent it fails at once with [`SequencerError::Overloaded`] (HTTP answers 503 with
//!   `Retry-After`), so memory stays bounded however fast requests arrive.
//! - **Dedup before indices.** The committer asks, per entry, the in-flight map (entries not yet
//!   durable, including earlier ones of the same submission) and then the store. The same
//!   idempotency key of the same producer, or else the same leaf hash, returns the first index.
//! - **Pipelined group commit.** The committer appends sequenced entries to the pending batch
//!   while the writer is busy with the previous one; the writer takes everything pending the
//!   moment it is free. A lone request is written at once; requests that arrive during an fsync
//!   form the next batch. No timer is involved: waiting would only add latency, because the
//!   batch grows by itself exactly while the disk is busy. A submission never spans two batches,
//!   and its new entries get consecutive indices in order.
//! - **Durable answers.** Every submitter is answered only after the batch holding its entries
//!   (and every batch before it) is durable. A duplicate is answered after the entry it names.
//! - **Fail closed, heal by itself.** If an append fails, that batch and every batch numbered
//!   after it are refused with [`SequencerError::StorageUnavailable`] (HTTP 503 with
//!   `Retry-After`), and so is every submission while the writer heals the store
//!   ([`SequenceStore::heal`]: what the failed write may have left is undone) with growing
//!   pauses.
//!   Once the fault clears (space freed, the device back), numbering starts again from the
//!   durable end and appends resume, without a restart. Nothing acknowledged is touched.
//! - **Followers.** [`Sequencer::durable_size`] publishes the durable entry count, and
//!   [`Sequencer::take_durable_leaf_hashes`] hands the one follower (the integrator) the leaf
//!   hashes made durable since it last asked, so that it never reads entries back or hashes a
//!   leaf twice. The feed is bounded: a follower that falls further behind reads the gap from
//!   the store.
//! - **Several front-ends.** With a store that they share ([`SequenceStore::shared_by_front_ends`]:
//!   the scaled backend), the store places each batch at the end of the log it has, and the
//!   answers carry the indices it gave; duplicates already durable are found in the store's
//!   dedup index whichever front-end appended them (see `placement.rs`).
//! - **Shutdown** stops admission, commits everything admitted, and returns.

mod inflight;
mod pipeline;
mod placement;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use cairn_spec::Hash;
use tokio::sync::{mpsc, oneshot, watch};

use self::pipeline::{Budget, Message, Pipeline, Submission};
use crate::status::Status;
use crate::storage::{NewEntry, SequenceStore};

/// How the sequencer batches and how much it admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequencerConfig {
    /// Most entries in one durable append.
    pub max_batch_entries: usize,
    /// Most leaf and payload bytes in one durable append.
    pub max_batch_bytes: usize,
    /// Most leaves admitted and not yet answered.
    pub max_pending_leaves: usize,
    /// Most leaf and payload bytes admitted and not yet answered.
    pub max_pending_bytes: usize,
    /// Most leaf hashes held for [`Sequencer::take_durable_leaf_hashes`] between two calls
    /// (32 bytes each); beyond it the oldest are dropped and the follower reads the store.
    pub follower_feed_leaves: usize,
}

impl Default for SequencerConfig {
    fn default() -> SequencerConfig {
        SequencerConfig {
            max_batch_entries: 8192,
            // Twice the largest request body by default: a batch of audit events is stored as
            // leaves, a little longer than the events, and payloads beside them.
            max_batch_bytes: 16 * 1024 * 1024,
            max_pending_leaves: 256 * 1024,
            max_pending_bytes: 256 * 1024 * 1024,
            follower_feed_leaves: 1 << 20,
        }
    }
}

/// The answer for one submitted leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequenced {
    /// Its index in the log (for a duplicate, the index of the first entry).
    pub index: u64,
    /// The leaf hash of the entry at that index.
    pub leaf_hash: Hash,
    /// Whether the leaf (or its idempotency key) was already in the log.
    pub duplicate: bool,
}

/// Leaf hashes of consecutive durable entries, in index order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableLeafHashes {
    /// Index of the first.
    pub first_index: u64,
    /// The leaf hashes of entries `first_index..`.
    pub leaf_hashes: Vec<Hash>,
}

impl DurableLeafHashes {
    /// The index after the last.
    pub fn end(&self) -> u64 {
        self.first_index + self.leaf_hashes.len() as u64
    }
}

/// The feed behind [`Sequencer::take_durable_leaf_hashes`]: the writer appends each durable
/// batch, the follower takes everything at once. No wake-up is involved: the follower asks when
/// it is ready to integrate.
pub(crate) struct LeafHashFeed {
    held: parking_lot::Mutex<DurableLeafHashes>,
    capacity: usize,
}

impl LeafHashFeed {
    fn new(next_index: u64, capacity: usize) -> LeafHashFeed {
        LeafHashFeed {
            held: parking_lot::Mutex::new(DurableLeafHashes {
                first_index: next_index,
                leaf_hashes: Vec::new(),
            }),
            capacity: capacity.max(1),
        }
    }

    /// Appends the hashes of the durable entries `first_index..`, which follow those appended
    /// before. Past the capacity, what is held is dropped: the follower reads it from the store.
    pub(crate) fn push(&self, first_index: u64, leaf_hashes: impl ExactSizeIterator<Item = Hash>) {
        let mut held = self.held.lock();
        if held.end() != first_index || held.leaf_hashes.len() + leaf_hashes.len() > self.capacity {
            held.first_index = first_index;
            held.leaf_hashes.clear();
        }
        held.leaf_hashes.extend(leaf_hashes);
    }

    fn take(&self) -> DurableLeafHashes {
        let mut held = self.held.lock();
        let first_index = held.end();
        std::mem::replace(
            &mut *held,
            DurableLeafHashes {
                first_index,
                leaf_hashes: Vec::new(),
            },
        )
    }
}

/// Upper bounds of the batch-size histogram buckets, in entries.
pub const BATCH_SIZE_BOUNDS: [u64; 8] = [1, 8, 64, 256, 1024, 4096, 8192, 16384];
/// Upper bounds of the durable-write latency histogram buckets, in seconds.
pub const WRITE_SECONDS_BOUNDS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
];

/// What the durable writes so far looked like: how many, how large, how long (one append with
/// its fdatasync each). Cumulative, for histograms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitFigures {
    /// Durable writes.
    pub batches: u64,
    /// Entries written by them.
    pub entries: u64,
    /// Writes of at most `BATCH_SIZE_BOUNDS[i]` entries (cumulative buckets).
    pub size_buckets: [u64; BATCH_SIZE_BOUNDS.len()],
    /// Writes that took at most `WRITE_SECONDS_BOUNDS[i]` seconds (cumulative buckets).
    pub write_buckets: [u64; WRITE_SECONDS_BOUNDS.len()],
    /// Seconds spent in durable writes.
    pub write_seconds: f64,
}

impl CommitFigures {
    pub(crate) fn record(&mut self, entries: usize, took: std::time::Duration) {
        let seconds = took.as_secs_f64();
        self.batches += 1;
        self.entries += entries as u64;
        self.write_seconds += seconds;
        for (bound, bucket) in BATCH_SIZE_BOUNDS.iter().zip(&mut self.size_buckets) {
            if entries as u64 <= *bound {
                *bucket += 1;
            }
        }
        for (bound, bucket) in WRITE_SECONDS_BOUNDS.iter().zip(&mut self.write_buckets) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
    }
}

/// Why a submission was not sequenced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SequencerError {
    /// Too much is queued: retry later.
    #[error("the log is overloaded: {pending_leaves} leaves are waiting; retry later")]
    Overloaded {
        /// Leaves admitted and not yet answered.
        pending_leaves: usize,
    },
    /// The submission can never be accepted.
    #[error("{what} is {found}, the limit is {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// The sequencer is shutting down.
    #[error("the log is shutting down")]
    ShuttingDown,
    /// The storage is failing for now (a full disk, an I/O error): nothing of this submission
    /// was stored; the log heals by itself and a retry later succeeds.
    #[error("the log's storage is unavailable; nothing was stored; retry later")]
    StorageUnavailable,
    /// The store failed in a way retrying does not mend.
    #[error("the log's storage failed: {0}")]
    StoreFailed(String),
    /// The configuration cannot work.
    #[error("bad sequencer configuration: {0}")]
    BadConfig(String),
}

/// The sequencer. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Sequencer {
    queue: mpsc::UnboundedSender<Message>,
    budget: Arc<Budget>,
    closed: AtomicBool,
    durable: watch::Receiver<u64>,
    feed: Arc<LeafHashFeed>,
    finished: tokio::sync::Mutex<Option<oneshot::Receiver<Result<(), SequencerError>>>>,
    config: SequencerConfig,
    max_leaf_bytes: usize,
    max_payload_bytes: usize,
    submitted: AtomicU64,
    commits: Arc<parking_lot::Mutex<CommitFigures>>,
    status: Arc<Status>,
}

impl Sequencer {
    /// Starts the committer and writer threads over `store`, continuing after its last entry.
    pub fn start(
        store: Arc<dyn SequenceStore>,
        config: SequencerConfig,
    ) -> Result<Sequencer, SequencerError> {
        let limits = store.limits().clone();
        let problem = if config.max_batch_entries == 0 || config.max_batch_bytes == 0 {
            Some("batches must allow at least one entry and one byte".to_string())
        } else if config.max_batch_entries as u64 > u64::from(limits.max_batch_entries)
            || config.max_batch_bytes as u64 > limits.max_batch_bytes
        {
            Some(format!(
                "batches of {} entries and {} bytes exceed the store's limits of {} and {}",
                config.max_batch_entries,
                config.max_batch_bytes,
                limits.max_batch_entries,
                limits.max_batch_bytes
            ))
        } else if config.max_pending_leaves < config.max_batch_entries
            || config.max_pending_bytes < config.max_batch_bytes
        {
            Some("the pending budget must hold at least one full batch".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(SequencerError::BadConfig(problem));
        }
        let (queue, receiver) = mpsc::unbounded_channel();
        let budget = Arc::new(Budget::new(
            config.max_pending_leaves,
            config.max_pending_bytes,
        ));
        let (durable_sender, durable) = watch::channel(store.entry_count());
        let feed = Arc::new(LeafHashFeed::new(
            store.entry_count(),
            config.follower_feed_leaves,
        ));
        let (finished_sender, finished) = oneshot::channel();
        let commits = Arc::new(parking_lot::Mutex::new(CommitFigures::default()));
        let status = Arc::new(Status::default());
        Pipeline::start(
            store,
            config.clone(),
            Arc::clone(&status),
            Arc::clone(&commits),
            receiver,
            durable_sender,
            Arc::clone(&feed),
            finished_sender,
        )
        .map_err(|error| {
            SequencerError::StoreFailed(format!("could not start the sequencer threads: {error}"))
        })?;
        Ok(Sequencer {
            queue,
            budget,
            closed: AtomicBool::new(false),
            durable,
            feed,
            finished: tokio::sync::Mutex::new(Some(finished)),
            config,
            max_leaf_bytes: limits.max_leaf_bytes as usize,
            max_payload_bytes: limits.max_payload_bytes as usize,
            submitted: AtomicU64::new(0),
            commits,
            status,
        })
    }

    /// How appends to the store are doing: why they are refused now, if they are, and how many
    /// store calls failed.
    pub fn storage_status(&self) -> &Status {
        &self.status
    }

    /// The durable writes so far: count, sizes and latencies.
    pub fn commit_figures(&self) -> CommitFigures {
        self.commits.lock().clone()
    }

    /// Sequences one entry; answers once it (or the entry it duplicates) is durable.
    pub async fn add(&self, entry: NewEntry) -> Result<Sequenced, SequencerError> {
        let mut answers = self.add_batch(vec![entry]).await?;
        answers.pop().ok_or_else(|| {
            SequencerError::StoreFailed("the sequencer answered a leaf with nothing".into())
        })
    }

    /// Sequences a batch as one unit: its new entries get consecutive indices in order, and
    /// each entry is deduplicated on its own. Answers, in order, once all are durable.
    pub async fn add_batch(
        &self,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<Sequenced>, SequencerError> {
        let receiver = self.try_submit(entries)?;
        match receiver.await {
            Ok(answer) => answer,
            // The pipeline dropped the submission: it stopped before reaching it.
            Err(_) => Err(SequencerError::ShuttingDown),
        }
    }

    /// Admits a submission without waiting for its answer: fails at once if it is too large,
    /// the sequencer is overloaded or shutting down. The receiver yields the answer.
    pub fn try_submit(
        &self,
        entries: Vec<NewEntry>,
    ) -> Result<oneshot::Receiver<Result<Vec<Sequenced>, SequencerError>>, SequencerError> {
        let (reply, receiver) = oneshot::channel();
        if entries.is_empty() {
            // An empty request trivially succeeds; nothing to order.
            let _ = reply.send(Ok(Vec::new()));
            return Ok(receiver);
        }
        let bytes = self.check_size(&entries)?;
        if self.closed.load(Ordering::Acquire) {
            return Err(SequencerError::ShuttingDown);
        }
        let reservation = self.budget.reserve(entries.len(), bytes)?;
        self.submitted
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let submission = Submission {
            entries,
            reply,
            reservation,
        };
        self.queue
            .send(Message::Submit(submission))
            .map_err(|_| SequencerError::ShuttingDown)?;
        Ok(receiver)
    }

    fn check_size(&self, entries: &[NewEntry]) -> Result<usize, SequencerError> {
        if entries.len() > self.config.max_batch_entries {
            return Err(SequencerError::TooLarge {
                what: "leaves in one submission",
                found: entries.len(),
                limit: self.config.max_batch_entries,
            });
        }
        let mut bytes = 0;
        for entry in entries {
            if entry.leaf().len() > self.max_leaf_bytes {
                return Err(SequencerError::TooLarge {
                    what: "leaf size in bytes",
                    found: entry.leaf().len(),
                    limit: self.max_leaf_bytes,
                });
            }
            if let Some(payload) = entry.payload() {
                if payload.len() > self.max_payload_bytes {
                    return Err(SequencerError::TooLarge {
                        what: "payload size in bytes",
                        found: payload.len(),
                        limit: self.max_payload_bytes,
                    });
                }
            }
            bytes += entry.stored_bytes();
        }
        if bytes > self.config.max_batch_bytes {
            return Err(SequencerError::TooLarge {
                what: "leaf and payload bytes in one submission",
                found: bytes,
                limit: self.config.max_batch_bytes,
            });
        }
        Ok(bytes)
    }

    /// The durable entry count, updated after every durable batch.
    pub fn durable_size(&self) -> watch::Receiver<u64> {
        self.durable.clone()
    }

    /// The leaf hashes of the entries made durable since the last call, for the one follower
    /// (the integrator). They start at the previous call's end unless more than
    /// `follower_feed_leaves` came in between: then the oldest were dropped, and `first_index`
    /// says where the ones kept start (the entries before are in the store).
    pub fn take_durable_leaf_hashes(&self) -> DurableLeafHashes {
        self.feed.take()
    }

    /// Leaves admitted and not yet answered.
    pub fn pending_leaves(&self) -> usize {
        self.budget.pending_leaves()
    }

    /// Leaves submitted since start (admitted, duplicates included).
    pub fn submitted_leaves(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }

    /// Stops admitting, commits everything admitted, answers every submitter, and returns when
    /// the pipeline threads have finished (and released the store). Reports a store failure if
    /// one happened.
    pub async fn shutdown(&self) -> Result<(), SequencerError> {
        self.closed.store(true, Ordering::Release);
        let _ = self.queue.send(Message::Shutdown);
        let Some(finished) = self.finished.lock().await.take() else {
            return Ok(());
        };
        finished.await.unwrap_or_else(|_| {
            Err(SequencerError::StoreFailed(
                "the sequencer threads ended without a word".into(),
            ))
        })
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.queue.send(Message::Shutdown);
    }
}
