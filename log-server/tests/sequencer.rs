//! The sequencer over a real embedded store in a temporary directory.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::{
    DedupKey, DuplicateHit, Entry, Hash, IdempotencyKey, LogStore, NewEntry, SequenceStore,
    StoreError, StoreLimits, StoredPayload,
};
use cairn_log::{Sequenced, Sequencer, SequencerConfig, SequencerError};

fn open_store(dir: &std::path::Path) -> Arc<EmbeddedStore> {
    Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir)).expect("open the store"))
}

fn start(store: &Arc<EmbeddedStore>, config: SequencerConfig) -> Arc<Sequencer> {
    let store: Arc<dyn LogStore> = store.clone();
    Arc::new(Sequencer::start(store, config).expect("start the sequencer"))
}

fn leaf(tag: &str, number: u64) -> NewEntry {
    NewEntry::new(format!("{tag} leaf {number}").into_bytes(), None)
}

fn keyed(producer: &str, key: &str, bytes: &[u8]) -> NewEntry {
    NewEntry::new(
        bytes.to_vec(),
        Some(IdempotencyKey::new(producer, key).expect("valid key")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_get_distinct_consecutive_indices_that_match_the_store() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let sequencer = start(&store, SequencerConfig::default());
    let tasks: Vec<_> = (0..3000u64)
        .map(|number| {
            let sequencer = Arc::clone(&sequencer);
            tokio::spawn(async move { (number, sequencer.add(leaf("concurrent", number)).await) })
        })
        .collect();
    let mut by_index = vec![None; 3000];
    for task in tasks {
        let (number, answer) = task.await.expect("task");
        let answer = answer.expect("sequenced");
        assert!(!answer.duplicate);
        assert_eq!(answer.leaf_hash, *leaf("concurrent", number).leaf_hash());
        assert!(
            by_index[answer.index as usize].replace(number).is_none(),
            "index {} given twice",
            answer.index
        );
    }
    assert_eq!(store.entry_count(), 3000, "every answered leaf is durable");
    let entries = store.read_entries(0, 3000).expect("read");
    for (index, entry) in entries.iter().enumerate() {
        let number = by_index[index].expect("every index 0..3000 was handed out");
        assert_eq!(
            entry.leaf,
            leaf("concurrent", number).leaf(),
            "entry {index}"
        );
    }
    assert_eq!(*sequencer.durable_size().borrow(), 3000);
    sequencer.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_return_the_first_index_within_a_batch_in_flight_and_after_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let sequencer = start(&store, SequencerConfig::default());
    let answers = sequencer
        .add_batch(vec![
            leaf("a", 0),
            leaf("b", 0),
            leaf("a", 0),
            leaf("c", 0),
            leaf("b", 0),
        ])
        .await
        .expect("batch");
    let summary: Vec<(u64, bool)> = answers
        .iter()
        .map(|answer| (answer.index, answer.duplicate))
        .collect();
    assert_eq!(
        summary,
        vec![(0, false), (1, false), (0, true), (2, false), (1, true)]
    );
    // Many copies at once, most of them while the first is still in flight.
    let copies: Vec<_> = (0..200)
        .map(|_| {
            let sequencer = Arc::clone(&sequencer);
            tokio::spawn(async move { sequencer.add(leaf("popular", 0)).await.expect("sequenced") })
        })
        .collect();
    let mut indices = HashSet::new();
    let mut firsts = 0;
    for copy in copies {
        let answer = copy.await.expect("task");
        indices.insert(answer.index);
        firsts += usize::from(!answer.duplicate);
    }
    assert_eq!(indices.len(), 1, "every copy got the same index");
    assert_eq!(firsts, 1, "exactly one copy was new");
    assert_eq!(store.entry_count(), 4);
    sequencer.shutdown().await.expect("shutdown");
    drop(sequencer);
    let store =
        Arc::try_unwrap(store).unwrap_or_else(|_| panic!("the sequencer released the store"));
    drop(store);
    let store = open_store(dir.path());
    let sequencer = start(&store, SequencerConfig::default());
    let again = sequencer.add(leaf("b", 0)).await.expect("sequenced");
    assert_eq!(
        (again.index, again.duplicate),
        (1, true),
        "dedup survives a restart"
    );
    let new = sequencer.add(leaf("d", 0)).await.expect("sequenced");
    assert_eq!(
        (new.index, new.duplicate),
        (4, false),
        "numbering continues after a restart"
    );
    sequencer.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_scoped_to_their_producer() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let sequencer = start(&store, SequencerConfig::default());
    let first = sequencer
        .add(keyed("alice", "order-1", b"x"))
        .await
        .expect("sequenced");
    let retry = sequencer
        .add(keyed("alice", "order-1", b"y, changed"))
        .await
        .expect("sequenced");
    assert_eq!(
        retry,
        Sequenced {
            index: first.index,
            leaf_hash: Hash::of_leaf(b"x"),
            duplicate: true
        }
    );
    let other_producer = sequencer
        .add(keyed("bob", "order-1", b"y, changed"))
        .await
        .expect("sequenced");
    assert!(!other_producer.duplicate);
    assert_ne!(other_producer.index, first.index);
    let same_bytes_new_key = sequencer
        .add(keyed("alice", "order-2", b"x"))
        .await
        .expect("sequenced");
    assert_eq!(
        (same_bytes_new_key.index, same_bytes_new_key.duplicate),
        (first.index, true)
    );
    // In one batch: the second use of a key refers to the first.
    let batch = sequencer
        .add_batch(vec![
            keyed("carol", "k", b"one"),
            keyed("carol", "k", b"two"),
        ])
        .await
        .expect("batch");
    assert_eq!(batch[1].index, batch[0].index);
    assert!(batch[1].duplicate);
    assert_eq!(store.entry_count(), 3);
    sequencer.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_submissions_get_consecutive_indices_in_order() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let sequencer = start(&store, SequencerConfig::default());
    let tasks: Vec<_> = (0..30u64)
        .map(|batch| {
            let sequencer = Arc::clone(&sequencer);
            tokio::spawn(async move {
                let entries = (0..100)
                    .map(|number| leaf(&format!("batch {batch}"), number))
                    .collect();
                (batch, sequencer.add_batch(entries).await.expect("batch"))
            })
        })
        .collect();
    for task in tasks {
        let (batch, answers) = task.await.expect("task");
        let first = answers[0].index;
        for (position, answer) in answers.iter().enumerate() {
            assert_eq!(
                answer.index,
                first + position as u64,
                "batch {batch} is consecutive"
            );
        }
        let stored = store.read_entries(first, 100).expect("read");
        for (number, entry) in stored.iter().enumerate() {
            assert_eq!(
                entry.leaf,
                leaf(&format!("batch {batch}"), number as u64).leaf()
            );
        }
    }
    assert_eq!(store.entry_count(), 3000);
    sequencer.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_fails_fast_and_loses_nothing_that_was_accepted() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let config = SequencerConfig {
        max_batch_entries: 16,
        max_batch_bytes: 1 << 20,
        max_pending_leaves: 32,
        max_pending_bytes: 1 << 20,
        follower_feed_leaves: 16,
    };
    let sequencer = start(&store, config);
    let mut accepted = Vec::new();
    let mut overloaded = 0;
    for number in 0..5000u64 {
        let entry = leaf("overload", number);
        match sequencer.try_submit(vec![entry.clone()]) {
            Ok(receiver) => accepted.push((entry, receiver)),
            Err(SequencerError::Overloaded { pending_leaves }) => {
                assert!(pending_leaves <= 32);
                overloaded += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(
        overloaded > 0,
        "a burst far over the budget is refused in part"
    );
    assert!(
        sequencer.pending_leaves() <= 32,
        "the budget bounds what is held"
    );
    let mut indices = HashSet::new();
    for (entry, receiver) in accepted.iter_mut() {
        let answers = receiver.await.expect("answered").expect("sequenced");
        assert_eq!(answers[0].leaf_hash, *entry.leaf_hash());
        indices.insert(answers[0].index);
    }
    assert_eq!(indices.len(), accepted.len());
    assert_eq!(
        store.entry_count(),
        accepted.len() as u64,
        "every accepted leaf and nothing else is stored"
    );
    assert_eq!(
        sequencer.pending_leaves(),
        0,
        "answered submissions give their budget back"
    );
    sequencer.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_commits_everything_accepted_then_refuses() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let sequencer = start(&store, SequencerConfig::default());
    let receivers: Vec<_> = (0..2000u64)
        .map(|number| {
            sequencer
                .try_submit(vec![leaf("drain", number)])
                .expect("admitted")
        })
        .collect();
    sequencer.shutdown().await.expect("shutdown");
    for receiver in receivers {
        receiver
            .await
            .expect("answered before shutdown returned")
            .expect("sequenced");
    }
    assert_eq!(store.entry_count(), 2000);
    assert_eq!(
        sequencer.add(leaf("late", 0)).await,
        Err(SequencerError::ShuttingDown)
    );
    assert_eq!(
        Arc::strong_count(&store),
        1,
        "the pipeline released the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_see_the_durable_size_and_every_leaf_hash() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let sequencer = start(&store, SequencerConfig::default());
    let mut durable = sequencer.durable_size();
    let mut next = 0u64;
    for round in 0..5u64 {
        let tasks: Vec<_> = (0..100u64)
            .map(|number| {
                let sequencer = Arc::clone(&sequencer);
                tokio::spawn(async move {
                    sequencer
                        .add(leaf("follow", round * 100 + number))
                        .await
                        .expect("sequenced")
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        durable
            .wait_for(|&size| size == (round + 1) * 100)
            .await
            .expect("the durable size grows by 100");
        let fed = sequencer.take_durable_leaf_hashes();
        assert_eq!(fed.first_index, next, "the feed goes on where it stopped");
        assert_eq!(
            fed.end(),
            (round + 1) * 100,
            "the feed holds every durable leaf"
        );
        let stored = store
            .read_entries(next, fed.leaf_hashes.len() as u64)
            .expect("read");
        for (hash, entry) in fed.leaf_hashes.iter().zip(&stored) {
            assert_eq!(*hash, entry.leaf_hash());
        }
        next = fed.end();
    }
    sequencer.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_falls_behind_the_feed_is_told_where_it_resumes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let config = SequencerConfig {
        follower_feed_leaves: 50,
        ..SequencerConfig::default()
    };
    let sequencer = start(&store, config);
    for number in 0..200u64 {
        sequencer
            .add(leaf("behind", number))
            .await
            .expect("sequenced");
    }
    let fed = sequencer.take_durable_leaf_hashes();
    assert_eq!(fed.end(), 200, "the feed ends at the durable size");
    assert!(
        fed.leaf_hashes.len() <= 50 && fed.first_index >= 150,
        "at most the capacity is held: {} hashes from {}",
        fed.leaf_hashes.len(),
        fed.first_index
    );
    let stored = store
        .read_entries(fed.first_index, fed.leaf_hashes.len() as u64)
        .expect("read");
    for (hash, entry) in fed.leaf_hashes.iter().zip(&stored) {
        assert_eq!(*hash, entry.leaf_hash());
    }
    assert!(sequencer.take_durable_leaf_hashes().leaf_hashes.is_empty());
    sequencer.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_submissions_that_can_never_fit() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let config = SequencerConfig {
        max_batch_entries: 10,
        ..SequencerConfig::default()
    };
    let sequencer = start(&store, config);
    let huge = NewEntry::new(vec![0; store.limits().max_leaf_bytes as usize + 1], None);
    assert!(matches!(
        sequencer.add(huge).await,
        Err(SequencerError::TooLarge { .. })
    ));
    let many = (0..11).map(|number| leaf("many", number)).collect();
    assert!(matches!(
        sequencer.add_batch(many).await,
        Err(SequencerError::TooLarge { .. })
    ));
    assert_eq!(sequencer.add_batch(Vec::new()).await, Ok(Vec::new()));
    assert_eq!(store.entry_count(), 0);
    sequencer.shutdown().await.expect("shutdown");
}

/// Payloads are made durable with their leaves, and count with them against the batch and
/// admission limits: batches are cut by leaf and payload bytes, or the store would refuse them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_are_stored_beside_their_leaves_and_count_against_the_limits() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_store(dir.path());
    let config = SequencerConfig {
        max_batch_bytes: 256 * 1024,
        ..SequencerConfig::default()
    };
    let sequencer = start(&store, config);
    let payload = |number: u64| format!("payload {number} ").repeat(8 * 1024).into_bytes();
    let huge =
        leaf("huge", 0).with_payload(Some(vec![0; store.limits().max_payload_bytes as usize + 1]));
    assert!(matches!(
        sequencer.add(huge).await,
        Err(SequencerError::TooLarge { what, .. }) if what.contains("payload")
    ));
    let too_much = (0..4)
        .map(|number| leaf("too much", number).with_payload(Some(payload(number))))
        .collect();
    assert!(matches!(
        sequencer.add_batch(too_much).await,
        Err(SequencerError::TooLarge { .. })
    ));
    let submissions: Vec<_> = (0..40u64)
        .map(|number| {
            let sequencer = Arc::clone(&sequencer);
            tokio::spawn(async move {
                let entries = vec![
                    leaf("with payload", number).with_payload(Some(payload(number))),
                    leaf("without", number),
                ];
                (number, sequencer.add_batch(entries).await)
            })
        })
        .collect();
    for submission in submissions {
        let (number, answers) = submission.await.expect("task");
        let answers = answers.expect("sequenced");
        assert_eq!(
            store.read_payload(answers[0].index).expect("read"),
            Some(StoredPayload::Held(payload(number)))
        );
        assert_eq!(store.read_payload(answers[1].index).expect("read"), None);
    }
    assert_eq!(store.entry_count(), 80);
    let payload_bytes: usize = (0..40).map(|number| payload(number).len()).sum();
    let batches = sequencer.commit_figures().batches;
    assert!(
        batches as usize >= payload_bytes.div_ceil(256 * 1024),
        "{payload_bytes} bytes of payloads in {batches} batches of at most 256 KiB"
    );
    sequencer.shutdown().await.expect("shutdown");
}

/// The embedded store with a switch that makes appends fail, as a full or failing disk would.
struct FailingDisk {
    inner: EmbeddedStore,
    broken: AtomicBool,
    heal_attempts: AtomicU64,
}

impl FailingDisk {
    /// The embedded store in `dir`, working until broken.
    fn open(dir: &std::path::Path) -> Arc<FailingDisk> {
        Arc::new(FailingDisk {
            inner: EmbeddedStore::open(EmbeddedConfig::new(dir)).expect("open"),
            broken: AtomicBool::new(false),
            heal_attempts: AtomicU64::new(0),
        })
    }
}

/// Only the sequence: the sequencer needs nothing else.
impl SequenceStore for FailingDisk {
    fn limits(&self) -> &StoreLimits {
        self.inner.limits()
    }
    fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }
    fn append_entries(&self, first_index: u64, entries: &[NewEntry]) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Poisoned(
                "injected: no space left on device".into(),
            ));
        }
        self.inner.append_entries(first_index, entries)
    }
    fn heal(&self) -> Result<(), StoreError> {
        self.heal_attempts.fetch_add(1, Ordering::SeqCst);
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Poisoned("injected: still no space".into()));
        }
        self.inner.heal()
    }
    fn background_failures(&self) -> (Option<String>, u64) {
        self.inner.background_failures()
    }
    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Entry>, StoreError> {
        self.inner.read_entries(start, count)
    }
    fn read_payload(&self, index: u64) -> Result<Option<StoredPayload>, StoreError> {
        self.inner.read_payload(index)
    }
    fn erase_payload(&self, index: u64) -> Result<bool, StoreError> {
        self.inner.erase_payload(index)
    }
    fn find_duplicates(
        &self,
        keys: &[DedupKey<'_>],
    ) -> Result<Vec<Option<DuplicateHit>>, StoreError> {
        self.inner.find_duplicates(keys)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_append_refuses_submissions_until_the_store_heals_then_resumes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = FailingDisk::open(dir.path());
    let dyn_store: Arc<dyn SequenceStore> = store.clone();
    let sequencer = Sequencer::start(dyn_store, SequencerConfig::default()).expect("start");
    sequencer
        .add(leaf("ok", 0))
        .await
        .expect("sequenced while the disk works");
    store.broken.store(true, Ordering::SeqCst);
    assert_eq!(
        sequencer.add(leaf("lost", 0)).await,
        Err(SequencerError::StorageUnavailable)
    );
    // While the store fails, every submission is refused at once, and the writer keeps trying
    // to heal it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.heal_attempts.load(Ordering::SeqCst) < 2 {
        assert_eq!(
            sequencer.add(leaf("meanwhile", 0)).await,
            Err(SequencerError::StorageUnavailable)
        );
        assert!(sequencer.storage_status().failing().is_some());
        assert!(std::time::Instant::now() < deadline, "no heal was tried");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The fault clears: appends resume by themselves, numbered right after the durable entries.
    store.broken.store(false, Ordering::SeqCst);
    let resumed = loop {
        match sequencer.add(leaf("after", 0)).await {
            Ok(sequenced) => break sequenced,
            Err(SequencerError::StorageUnavailable) => {
                assert!(std::time::Instant::now() < deadline, "never healed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    };
    assert_eq!(resumed.index, 1);
    assert!(sequencer.storage_status().failing().is_none());
    assert!(sequencer.storage_status().errors() >= 3);
    // The leaf refused during the fault was never stored: submitted again, it is new.
    let retried = sequencer.add(leaf("lost", 0)).await.expect("retried");
    assert_eq!((retried.index, retried.duplicate), (2, false));
    sequencer.shutdown().await.expect("shutdown");
    assert_eq!(store.entry_count(), 3);
}

/// Appends fail and heal again and again while 16 producers submit into small batches (so
/// that submitters wait for room while a batch fails): every leaf answered with an index is
/// the leaf at that index, no index is answered twice, and nothing refused was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_under_load_never_answer_an_index_that_holds_another_leaf() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = FailingDisk::open(dir.path());
    let dyn_store: Arc<dyn SequenceStore> = store.clone();
    let config = SequencerConfig {
        max_batch_entries: 4,
        ..SequencerConfig::default()
    };
    let sequencer = Arc::new(Sequencer::start(dyn_store, config).expect("start"));
    // The producers go on until the breaker is done, however fast the machine is.
    let done = Arc::new(AtomicBool::new(false));
    let breaker = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        tokio::spawn(async move {
            for _ in 0..6 {
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                store.broken.store(true, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(60)).await;
                store.broken.store(false, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let producers: Vec<_> = (0..16u64)
        .map(|producer| {
            let (sequencer, done) = (Arc::clone(&sequencer), Arc::clone(&done));
            tokio::spawn(async move {
                let mut answered = Vec::new();
                let mut number = 0u64;
                while number < 20 || !done.load(Ordering::SeqCst) {
                    number += 1;
                    let tag = format!("producer {producer}");
                    loop {
                        match sequencer.add(leaf(&tag, number)).await {
                            Ok(sequenced) => {
                                assert!(!sequenced.duplicate, "{tag} {number} was stored before");
                                answered.push((sequenced.index, leaf(&tag, number)));
                                break;
                            }
                            Err(SequencerError::StorageUnavailable) => {
                                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                            }
                            Err(other) => panic!("unexpected {other}"),
                        }
                    }
                }
                answered
            })
        })
        .collect();
    let mut indices = HashSet::new();
    let mut answered = 0u64;
    for producer in producers {
        for (index, entry) in producer.await.expect("producer") {
            assert!(indices.insert(index), "index {index} answered twice");
            let stored = store
                .read_entries(index, 1)
                .expect("read")
                .pop()
                .expect("one");
            assert_eq!(stored.leaf, entry.leaf(), "index {index}");
            answered += 1;
        }
    }
    breaker.await.expect("breaker");
    assert!(
        store.heal_attempts.load(Ordering::SeqCst) > 0,
        "no failure was injected"
    );
    assert_eq!(
        store.entry_count(),
        answered,
        "something refused was stored"
    );
    sequencer.shutdown().await.expect("shutdown");
}
