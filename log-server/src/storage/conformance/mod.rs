//! The conformance suites every storage backend passes: the behaviour the sequencer, the
//! integrator, the HTTP API, witnessing and the events API rely on, checked through the traits
//! alone. There is one suite per trait, and one for the rules a [`LogStore`] keeps between its
//! parts:
//!
//! | suite | trait | harness |
//! |---|---|---|
//! | [`sequence`] | [`SequenceStore`] | [`Harness`] |
//! | [`tree`] | [`TreeStore`] | [`TreeHarness`] |
//! | [`state`] | [`StateStore`] | [`StateHarness`] |
//! | [`log`] | [`LogStore`] | [`Harness`] |
//! | [`crate::events::conformance`] | [`EventIndexStore`](crate::events::EventIndexStore) | [`Harness`] |
//!
//! A backend's tests implement the harness (open the same store again and again) and call each
//! suite's `run_all` with a function that makes a harness over a fresh, empty store. Failures
//! panic with a message that names the broken promise. Crash recovery of a particular medium
//! (torn files, damaged pages) cannot be expressed through the traits; each backend tests that
//! itself.
//!
//! Built only with the feature `conformance`, for tests: the server does not carry it.

pub mod log;
pub mod sequence;
pub mod state;
pub mod tree;

use super::{
    Hash, IdempotencyKey, LogStore, NewEntry, SequenceStore, StateStore, StoredCheckpoint,
    TreeStore,
};

/// Opens one backend's store over the same underlying data, again and again.
pub trait Harness {
    /// The backend's store.
    type Store;
    /// Opens the store (the previous instance, if any, has been dropped).
    fn open(&mut self) -> Self::Store;
}

/// A harness for a [`TreeStore`], which may refuse hashes that the entries of its log do not
/// justify.
pub trait TreeHarness: Harness<Store: TreeStore> {
    /// Makes the log that `store` keeps the tree of hold at least `entries` durable entries.
    fn justify(&mut self, store: &Self::Store, entries: u64);
}

/// A harness for a [`StateStore`], which may refuse checkpoints that cover more than is durable.
pub trait StateHarness: Harness<Store: StateStore> {
    /// Makes the log that `store` keeps the state of hold at least `size` durable entries, with
    /// their leaf hashes synced, so that a checkpoint of `size` may be stored.
    fn cover(&mut self, store: &Self::Store, size: u64);
}

/// [`TreeHarness::justify`] for a [`LogStore`]: appends the suite's entries up to `entries`.
pub fn justify_in<S: SequenceStore + ?Sized>(store: &S, entries: u64) {
    let have = store.entry_count();
    if have < entries {
        store
            .append_entries(have, &self::entries(have..entries))
            .expect("appending entries for the tree or state suite");
    }
}

/// [`StateHarness::cover`] for a [`LogStore`]: appends entries up to `size` and stores and
/// syncs their leaf hashes.
pub fn cover_in<S: LogStore + ?Sized>(store: &S, size: u64) {
    justify_in(store, size);
    let have = store.hash_count(0).expect("counting leaf hashes");
    if have < size {
        let leaves: Vec<Hash> = (have..size)
            .map(|index| Hash::of_leaf(&leaf(index)))
            .collect();
        store
            .append_hashes(0, have, &leaves)
            .expect("appending leaf hashes for the state suite");
    }
    store
        .sync_hashes()
        .expect("syncing hashes for the state suite");
}

/// A suite: its tests by name.
pub type Suite<H> = Vec<(&'static str, fn(&mut H))>;

/// Runs `tests`, each on a fresh harness from `fresh`.
pub(crate) fn run<H>(suite: &str, tests: Suite<H>, fresh: impl Fn() -> H) {
    for (name, test) in tests {
        eprintln!("conformance {suite}: {name}");
        test(&mut fresh());
    }
}

/// A leaf of the suites, recognisable by its index.
pub fn leaf(index: u64) -> Vec<u8> {
    format!("conformance leaf {index:08} ")
        .repeat(1 + (index % 5) as usize)
        .into_bytes()
}

pub(crate) fn entries(range: std::ops::Range<u64>) -> Vec<NewEntry> {
    range
        .map(|index| NewEntry::new(leaf(index), None))
        .collect()
}

pub(crate) fn key(producer: &str, key: &str) -> IdempotencyKey {
    IdempotencyKey::new(producer, key).expect("the suite's keys are valid")
}

pub(crate) fn assert_entries<S: SequenceStore + ?Sized>(store: &S, start: u64, count: u64) {
    let read = store
        .read_entries(start, count)
        .expect("reading stored entries");
    assert_eq!(
        read.len() as u64,
        count,
        "read returns exactly the range asked for"
    );
    for (offset, entry) in read.iter().enumerate() {
        let index = start + offset as u64;
        assert_eq!(entry.index, index, "entries come back in index order");
        assert_eq!(
            entry.leaf,
            leaf(index),
            "entry {index} reads back as written"
        );
    }
}

pub(crate) fn hashes(level: u8, range: std::ops::Range<u64>) -> Vec<Hash> {
    range
        .map(|index| Hash::of_leaf(format!("{level}/{index}").as_bytes()))
        .collect()
}

pub(crate) fn checkpoint(size: u64) -> StoredCheckpoint {
    StoredCheckpoint {
        size,
        note: format!("example.com/log\n{size}\nroot\n\n— key signature\n").into_bytes(),
    }
}
