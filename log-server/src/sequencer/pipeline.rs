//! The two threads behind the [`Sequencer`](super::Sequencer): the committer (dedup and index
//! assignment) and the writer (one durable append per batch, then the answers), and the
//! pending batch between them.
//!
//! The committer takes every submission already queued together and asks the store about all
//! of their keys in one lookup: a store across the network (PostgreSQL) costs a round trip a
//! lookup whatever its size, and a lookup per submission capped a front-end at a few thousand
//! single-leaf submissions a second.
//!
//! They are plain threads, not tasks: both block on the store, which may block on the disk or
//! the network, and neither should hold a runtime worker while it does.
//!
//! The writer hands each durable batch's submitters back to the async runtime in one message
//! (to the answering task), rather than completing every submitter's reply itself: a reply
//! completed from outside the runtime wakes it with a system call, and one per submitter was
//! most of what the writer did between two fdatasyncs.
//!
//! When an append fails, the failed batch and every batch numbered after it are refused (their
//! indices followed entries that are not durable), and the writer heals the store
//! ([`SequenceStore::heal`]) with growing pauses until appends are taken again. Meanwhile every
//! new submission is refused at once with [`SequencerError::StorageUnavailable`]. Each failure
//! starts a new *generation*: the committer numbers again from the durable end, and a
//! submission numbered in an older generation is refused instead of written.
//!
//! A store shared by several front-ends ([`SequenceStore::shared_by_front_ends`]) places each
//! batch itself ([`SequenceStore::append_at_end`]): only it knows where the log ends. The
//! committer then numbers entries in a local space of its own, from [`LOCAL_BASE`] up (beyond
//! any real index), so that in-flight dedup and batching work as before, and the writer turns
//! each batch's local numbers into the indices the store gave it before answering. An answer
//! names a local number only for an entry of the batch being written or the one before it
//! (in-flight entries are forgotten once durable), so a few translations are kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

mod writer;

use self::writer::write_batches;
use super::inflight::InFlight;
use super::placement::LOCAL_BASE;
use super::{CommitFigures, LeafHashFeed, Sequenced, SequencerConfig, SequencerError};
use crate::status::Status;
use crate::storage::{DedupKey, DuplicateHit, NewEntry, SequenceStore, StoreError};

/// What the queue carries.
pub enum Message {
    Submit(Submission),
    Shutdown,
}

/// One admitted submission.
pub struct Submission {
    pub entries: Vec<NewEntry>,
    pub reply: oneshot::Sender<Result<Vec<Sequenced>, SequencerError>>,
    pub reservation: Reservation,
}

/// The admission budget: leaves and bytes admitted and not yet answered.
pub struct Budget {
    leaves: AtomicUsize,
    bytes: AtomicUsize,
    max_leaves: usize,
    max_bytes: usize,
}

/// A share of the budget, given back when dropped (after the answer was sent, or with a
/// submission that was never reached).
pub struct Reservation {
    budget: Arc<Budget>,
    leaves: usize,
    bytes: usize,
}

impl Budget {
    pub fn new(max_leaves: usize, max_bytes: usize) -> Budget {
        Budget {
            leaves: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_leaves,
            max_bytes,
        }
    }

    pub fn reserve(
        self: &Arc<Self>,
        leaves: usize,
        bytes: usize,
    ) -> Result<Reservation, SequencerError> {
        let reservation = Reservation {
            budget: Arc::clone(self),
            leaves,
            bytes,
        };
        let pending_leaves = self.leaves.fetch_add(leaves, Ordering::AcqRel) + leaves;
        let pending_bytes = self.bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if pending_leaves > self.max_leaves || pending_bytes > self.max_bytes {
            // Dropping the reservation gives both back.
            return Err(SequencerError::Overloaded {
                pending_leaves: pending_leaves - leaves,
            });
        }
        Ok(reservation)
    }

    pub fn pending_leaves(&self) -> usize {
        self.leaves.load(Ordering::Relaxed)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.leaves.fetch_sub(self.leaves, Ordering::AcqRel);
        self.budget.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A submitter waiting for its batch to be durable.
pub(super) struct Waiter {
    reply: oneshot::Sender<Result<Vec<Sequenced>, SequencerError>>,
    pub(super) answers: Vec<Sequenced>,
    reservation: Reservation,
}

/// What a batch's submitters hear: durable, or why not.
type Answer = Result<(), SequencerError>;

impl Waiter {
    /// Gives the budget back, then answers: a submitter that hears its answer may submit
    /// again at once and must find its share free.
    fn answer(self, answer: Answer) {
        let Waiter {
            reply,
            answers,
            reservation,
        } = self;
        drop(reservation);
        let _ = reply.send(answer.map(|()| answers));
    }
}

/// The most submissions numbered after one dedup lookup (besides the batch's entry limit).
const MAX_GROUP_SUBMISSIONS: usize = 4096;

/// The answer for submissions refused while the store fails: 503 with Retry-After, or 500 if
/// the store says its data is damaged. Names no file: the server's log has the whole error.
fn refusal(error: &StoreError) -> SequencerError {
    if error.kind() == crate::storage::FailureKind::Corrupt {
        SequencerError::StoreFailed("the log's storage reports damaged data".into())
    } else {
        SequencerError::StorageUnavailable
    }
}

/// Who completes the replies of a durable batch.
enum Answerer {
    /// The writer thread itself (no runtime was running when the sequencer started).
    Writer,
    /// A task on the runtime: one wake-up for a whole batch.
    Task(mpsc::UnboundedSender<(Vec<Waiter>, Answer)>),
}

impl Answerer {
    /// Starts the answering task on the current runtime, if there is one.
    fn start() -> Answerer {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Answerer::Writer;
        };
        let (sender, mut receiver) = mpsc::unbounded_channel::<(Vec<Waiter>, Answer)>();
        runtime.spawn(async move {
            while let Some((waiters, answer)) = receiver.recv().await {
                answer_all(waiters, &answer);
            }
        });
        Answerer::Task(sender)
    }

    fn answer(&self, waiters: Vec<Waiter>, answer: Answer) {
        match self {
            Answerer::Writer => answer_all(waiters, &answer),
            // If the runtime is gone, so is the task: answer here instead.
            Answerer::Task(sender) => {
                if let Err(mpsc::error::SendError((waiters, answer))) =
                    sender.send((waiters, answer))
                {
                    answer_all(waiters, &answer);
                }
            }
        }
    }
}

fn answer_all(waiters: Vec<Waiter>, answer: &Answer) {
    for waiter in waiters {
        waiter.answer(answer.clone());
    }
}

/// The batch the committer fills and the writer takes.
struct Pending {
    /// Index of `entries[0]` (and of the next entry when empty).
    first_index: u64,
    entries: Vec<NewEntry>,
    /// The vector of the batch written last, emptied and handed back with its capacity, so that
    /// a batch of thousands of entries is not copied again at every doubling of a fresh one.
    recycled: Vec<NewEntry>,
    bytes: usize,
    waiters: Vec<Waiter>,
    /// No more submissions will come.
    closed: bool,
    /// Bumped when the numbering starts again from the durable end (after a failed append):
    /// entries numbered in an older generation are never written.
    generation: u64,
}

struct Shared {
    pending: Mutex<Pending>,
    /// The writer waits here for work.
    ready: Condvar,
    /// The committer waits here for room.
    room: Condvar,
    /// Entries below this are durable (and answered for by the store).
    durable: AtomicU64,
    /// Set while appends fail, until the store is healed.
    status: Arc<Status>,
    /// The answer for submissions while appends fail.
    refusal: Mutex<Option<SequencerError>>,
    /// `pending.generation` and whether `refusal` is set, readable without locks (written
    /// under the pending lock), so that the committer's checks per submission cost two atomic
    /// loads while nothing fails. A submission numbered in an older generation is caught when
    /// it joins the batch, under the lock.
    generation: AtomicU64,
    refusing: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// What a submission refused now hears.
    fn refusal_now(&self) -> SequencerError {
        self.refusal
            .lock()
            .clone()
            .unwrap_or(SequencerError::StorageUnavailable)
    }
}

/// Starts the two threads.
pub struct Pipeline;

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        store: Arc<dyn SequenceStore>,
        config: SequencerConfig,
        status: Arc<Status>,
        commits: Arc<Mutex<CommitFigures>>,
        queue: mpsc::UnboundedReceiver<Message>,
        durable_sender: watch::Sender<u64>,
        feed: Arc<LeafHashFeed>,
        finished: oneshot::Sender<Result<(), SequencerError>>,
    ) -> std::io::Result<()> {
        let next_index = if store.shared_by_front_ends() {
            LOCAL_BASE
        } else {
            store.entry_count()
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                first_index: next_index,
                entries: Vec::new(),
                recycled: Vec::new(),
                bytes: 0,
                waiters: Vec::new(),
                closed: false,
                generation: 0,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            durable: AtomicU64::new(next_index),
            status,
            refusal: Mutex::new(None),
            generation: AtomicU64::new(0),
            refusing: std::sync::atomic::AtomicBool::new(false),
        });
        let answerer = Answerer::start();
        let writer = {
            let (store, shared) = (Arc::clone(&store), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("cairn-seq-writer".into())
                .spawn(move || {
                    crate::os::become_batch_thread();
                    write_batches(store, &shared, &commits, durable_sender, &feed, &answerer)
                })?
        };
        std::thread::Builder::new()
            .name("cairn-seq-commit".into())
            .spawn(move || {
                crate::os::become_batch_thread();
                let committer = Committer {
                    store,
                    in_flight: InFlight::new(2 * config.max_batch_entries),
                    config,
                    shared,
                    next_index,
                    generation: 0,
                };
                let result = committer.run(queue, writer);
                let _ = finished.send(result);
            })?;
        Ok(())
    }
}

struct Committer {
    store: Arc<dyn SequenceStore>,
    config: SequencerConfig,
    shared: Arc<Shared>,
    in_flight: InFlight,
    next_index: u64,
    /// The numbering generation `next_index` belongs to.
    generation: u64,
}

impl Committer {
    fn run(
        mut self,
        mut queue: mpsc::UnboundedReceiver<Message>,
        writer: JoinHandle<()>,
    ) -> Result<(), SequencerError> {
        let mut shutting_down = false;
        while !shutting_down {
            let Some(Message::Submit(first)) = queue.blocking_recv() else {
                break;
            };
            // Whatever else is already queued joins it, so that one dedup lookup in the store
            // covers them all: a store across the network answers a lookup of one leaf and of
            // thousands in about the same time.
            let mut leaves = first.entries.len();
            let mut group = vec![first];
            while leaves < self.config.max_batch_entries && group.len() < MAX_GROUP_SUBMISSIONS {
                match queue.try_recv() {
                    Ok(Message::Submit(next)) => {
                        leaves += next.entries.len();
                        group.push(next);
                    }
                    Ok(Message::Shutdown) => {
                        shutting_down = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
        // Submissions that raced with shutdown are dropped with the queue: their submitters
        // hear ShuttingDown and their reservations are given back.
        drop(queue);
        self.shared.pending.lock().closed = true;
        self.shared.ready.notify_one();
        if writer.join().is_err() {
            return Err(SequencerError::StoreFailed(
                "the writer thread panicked".into(),
            ));
        }
        match self.shared.status.failing() {
            Some(reason) => Err(SequencerError::StoreFailed(reason)),
            None => Ok(()),
        }
    }

    /// Deduplicates and numbers a group of submissions taken from the queue together, and
    /// adds each to the pending batch in turn.
    fn commit(&mut self, group: Vec<Submission>) {
        if self.shared.generation.load(Ordering::Acquire) != self.generation {
            // The numbering started again after a failed append: nothing numbered before is
            // in flight any more.
            let pending = self.shared.pending.lock();
            self.generation = pending.generation;
            self.next_index = pending.first_index + pending.entries.len() as u64;
            self.in_flight.clear();
        }
        if self.shared.refusing.load(Ordering::Acquire) {
            for submission in group {
                let _ = submission.reply.send(Err(self.shared.refusal_now()));
            }
            return;
        }
        // Entries are forgotten only here, before the lookup: an entry in flight when the
        // store was asked stays known until the whole group is numbered.
        self.in_flight
            .forget_below(self.shared.durable.load(Ordering::Acquire));
        let stored = match self.stored_duplicates(group.iter().flat_map(|s| &s.entries)) {
            Ok(stored) => stored,
            Err(error) => {
                // A failed lookup changes nothing: these submissions alone are refused.
                self.shared.status.failed(None);
                tracing::warn!(%error, submissions = group.len(), "a dedup lookup failed; the submissions are refused");
                for submission in group {
                    let _ = submission.reply.send(Err(refusal(&error)));
                }
                return;
            }
        };
        for submission in group {
            self.enqueue(submission, &stored);
        }
    }

    /// Numbers one submission (against what is in flight, then what the store had) and adds it
    /// to the pending batch, waiting for room.
    fn enqueue(&mut self, submission: Submission, stored: &HashMap<[u8; 32], DuplicateHit>) {
        let Submission {
            entries,
            reply,
            reservation,
        } = submission;
        let (answers, new_entries) = self.sequence(entries, stored);
        let new_bytes: usize = new_entries.iter().map(NewEntry::stored_bytes).sum();
        let mut pending = self.shared.pending.lock();
        while !pending.entries.is_empty()
            && (pending.entries.len() + new_entries.len() > self.config.max_batch_entries
                || pending.bytes + new_bytes > self.config.max_batch_bytes)
        {
            self.shared.room.wait(&mut pending);
        }
        // Checked after any wait for room, which a failed append ends by emptying the batch.
        if pending.generation != self.generation {
            // An append failed while this was numbered: its indices may not follow the durable
            // entries. Refused; the next submission is numbered afresh.
            drop(pending);
            let _ = reply.send(Err(self.shared.refusal_now()));
            return;
        }
        debug_assert_eq!(
            pending.first_index + pending.entries.len() as u64 + new_entries.len() as u64,
            self.next_index,
            "indices are assigned in the order entries are written"
        );
        pending.entries.extend(new_entries);
        pending.bytes += new_bytes;
        pending.waiters.push(Waiter {
            reply,
            answers,
            reservation,
        });
        drop(pending);
        self.shared.ready.notify_one();
    }

    /// Deduplicates one submission's entries against what is in flight and then `stored` (what
    /// the store had of its group's keys), and numbers the new ones. Returns the answers (in order) and
    /// the entries to append: the submission's own vector, emptied only of its duplicates (most
    /// submissions have none, and then no entry is moved).
    fn sequence(
        &mut self,
        mut entries: Vec<NewEntry>,
        stored: &HashMap<[u8; 32], DuplicateHit>,
    ) -> (Vec<Sequenced>, Vec<NewEntry>) {
        let mut answers = Vec::with_capacity(entries.len());
        for entry in &entries {
            let known = |digest: &[u8; 32]| {
                self.in_flight
                    .get(digest)
                    .or_else(|| stored.get(digest).map(|hit| (hit.index, hit.leaf_hash)))
            };
            let first = entry
                .idempotency()
                .and_then(|key| known(key.digest()))
                .or_else(|| known(entry.leaf_hash().as_bytes()));
            if let Some((index, leaf_hash)) = first {
                answers.push(Sequenced {
                    index,
                    leaf_hash,
                    duplicate: true,
                });
                continue;
            }
            let index = self.next_index;
            self.next_index += 1;
            let leaf_hash = *entry.leaf_hash();
            self.in_flight.insert(leaf_hash.0, index, leaf_hash);
            if let Some(key) = entry.idempotency() {
                self.in_flight.insert(*key.digest(), index, leaf_hash);
            }
            answers.push(Sequenced {
                index,
                leaf_hash,
                duplicate: false,
            });
        }
        if answers.iter().any(|answer| answer.duplicate) {
            let mut fresh = answers.iter().map(|answer| !answer.duplicate);
            entries.retain(|_| fresh.next().unwrap_or(false));
        }
        (answers, entries)
    }

    /// What the store knows of the keys that are not in flight. In-flight entries are looked up
    /// first, so an entry that becomes durable meanwhile is still found: it leaves the in-flight
    /// map only after the store has it.
    fn stored_duplicates<'e>(
        &self,
        entries: impl Iterator<Item = &'e NewEntry>,
    ) -> Result<HashMap<[u8; 32], DuplicateHit>, StoreError> {
        let mut lookups = Vec::new();
        for entry in entries {
            if let Some(key) = entry.idempotency() {
                if self.in_flight.get(key.digest()).is_none() {
                    lookups.push(DedupKey::Idempotency(key));
                }
            }
            if self.in_flight.get(entry.leaf_hash().as_bytes()).is_none() {
                lookups.push(DedupKey::Leaf(entry.leaf_hash()));
            }
        }
        if lookups.is_empty() {
            return Ok(HashMap::new());
        }
        let hits = self.store.find_duplicates(&lookups)?;
        Ok(lookups
            .iter()
            .zip(hits)
            .filter_map(|(key, hit)| hit.map(|hit| (*key.digest(), hit)))
            .collect())
    }
}
