//! The conformance suite every [`LogStore`] backend passes: the behaviour the sequencer, the
//! integrator, the HTTP API and witnessing rely on, checked through the trait alone.
//!
//! A backend's tests implement [`StoreHarness`] (open the same store again and again) and call
//! [`run_all`] with a function that makes a harness over a fresh, empty store. Failures panic
//! with a message that names the broken promise. Crash recovery of a particular medium (torn
//! files, damaged pages) cannot be expressed through the trait; each backend tests that itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{
    DedupKey, Hash, IdempotencyKey, LogStore, NewEntry, StoreError, StoredCheckpoint,
    StoredPayload, MAX_HASH_LEVEL,
};

/// Opens one backend's store over the same underlying data, again and again.
pub trait StoreHarness {
    /// The backend.
    type Store: LogStore;
    /// Opens the store (the previous instance, if any, has been dropped).
    fn open(&mut self) -> Self::Store;
}

/// Every conformance test, by name.
#[allow(clippy::type_complexity)]
pub fn tests<H: StoreHarness>() -> Vec<(&'static str, fn(&mut H))> {
    vec![
        (
            "appends_and_reads_back_entries",
            appends_and_reads_back_entries::<H>,
        ),
        (
            "keeps_order_across_many_batches_and_reopens",
            keeps_order_across_many_batches_and_reopens::<H>,
        ),
        (
            "rejects_append_not_at_the_end",
            rejects_append_not_at_the_end::<H>,
        ),
        (
            "rejects_reads_out_of_range",
            rejects_reads_out_of_range::<H>,
        ),
        (
            "enforces_limits_and_changes_nothing_on_refusal",
            enforces_limits_and_changes_nothing_on_refusal::<H>,
        ),
        (
            "finds_duplicates_by_leaf_hash_and_idempotency_key",
            finds_duplicates_by_leaf_hash_and_idempotency_key::<H>,
        ),
        (
            "finds_duplicates_after_reopen",
            finds_duplicates_after_reopen::<H>,
        ),
        (
            "keeps_payloads_beside_entries_and_erases_them_in_place",
            keeps_payloads_beside_entries_and_erases_them_in_place::<H>,
        ),
        ("stores_hashes_per_level", stores_hashes_per_level::<H>),
        (
            "keeps_synced_hashes_across_reopen",
            keeps_synced_hashes_across_reopen::<H>,
        ),
        ("checkpoints_never_go_back", checkpoints_never_go_back::<H>),
        (
            "witness_sizes_never_go_back",
            witness_sizes_never_go_back::<H>,
        ),
        (
            "keeps_cosignatures_and_timestamp_tokens_per_size",
            keeps_cosignatures_and_timestamp_tokens_per_size::<H>,
        ),
        (
            "readers_see_consistent_prefixes_during_appends",
            readers_see_consistent_prefixes_during_appends::<H>,
        ),
    ]
}

/// Runs every test, each on a fresh harness from `fresh`.
pub fn run_all<H: StoreHarness>(fresh: impl Fn() -> H) {
    for (name, test) in tests::<H>() {
        eprintln!("conformance: {name}");
        test(&mut fresh());
    }
}

/// A leaf of the suite, recognisable by its index.
pub fn leaf(index: u64) -> Vec<u8> {
    format!("conformance leaf {index:08} ")
        .repeat(1 + (index % 5) as usize)
        .into_bytes()
}

fn entries(range: std::ops::Range<u64>) -> Vec<NewEntry> {
    range
        .map(|index| NewEntry::new(leaf(index), None))
        .collect()
}

fn key(producer: &str, key: &str) -> IdempotencyKey {
    IdempotencyKey::new(producer, key).expect("the suite's keys are valid")
}

fn assert_entries<S: LogStore>(store: &S, start: u64, count: u64) {
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

fn appends_and_reads_back_entries<H: StoreHarness>(harness: &mut H) {
    let store = harness.open();
    assert_eq!(store.entry_count(), 0, "a new store is empty");
    store.append_entries(0, &entries(0..3)).expect("append");
    assert_eq!(store.entry_count(), 3);
    let keyed = NewEntry::new(leaf(3), Some(key("producer-a", "request-1")));
    store.append_entries(3, &[keyed]).expect("append");
    assert_entries(&store, 0, 4);
    let read = store.read_entries(3, 1).expect("read");
    assert_eq!(
        read[0].idempotency,
        Some(key("producer-a", "request-1")),
        "idempotency keys are kept"
    );
    assert_eq!(read[0].leaf_hash(), Hash::of_leaf(&leaf(3)));
    assert!(store.read_entries(4, 0).expect("empty read").is_empty());
    store
        .append_entries(4, &[])
        .expect("an empty append is allowed");
    assert_eq!(store.entry_count(), 4, "an empty append adds nothing");
    let big = NewEntry::new(vec![0xA5; store.limits().max_leaf_bytes as usize], None);
    store
        .append_entries(4, std::slice::from_ref(&big))
        .expect("a leaf of the maximum size is accepted");
    assert_eq!(store.read_entries(4, 1).expect("read")[0].leaf, big.leaf());
}

fn keeps_order_across_many_batches_and_reopens<H: StoreHarness>(harness: &mut H) {
    let mut next = 0u64;
    for round in 0..3u64 {
        let store = harness.open();
        assert_eq!(
            store.entry_count(),
            next,
            "reopen {round} keeps every entry"
        );
        for batch in 0..200u64 {
            let size = 1 + (batch * 7 + round) % 23;
            store
                .append_entries(next, &entries(next..next + size))
                .expect("append");
            next += size;
        }
        assert_entries(&store, 0, next);
    }
    let store = harness.open();
    assert_eq!(store.entry_count(), next);
    for start in [0, 1, 255, 256, 257, next / 2, next - 1] {
        let count = (next - start).min(300);
        assert_entries(&store, start, count);
    }
}

fn rejects_append_not_at_the_end<H: StoreHarness>(harness: &mut H) {
    let store = harness.open();
    store.append_entries(0, &entries(0..2)).expect("append");
    for wrong in [0, 1, 3, u64::MAX] {
        let error = store
            .append_entries(wrong, &entries(2..3))
            .expect_err("append not at the end");
        assert!(
            matches!(error, StoreError::NotAtEnd { expected: 2, found } if found == wrong),
            "expected NotAtEnd, got {error}"
        );
    }
    assert_eq!(store.entry_count(), 2, "a refused append adds nothing");
    store
        .append_entries(2, &entries(2..3))
        .expect("append at the end still works");
}

fn rejects_reads_out_of_range<H: StoreHarness>(harness: &mut H) {
    let store = harness.open();
    store.append_entries(0, &entries(0..10)).expect("append");
    for (start, count) in [(0, 11), (10, 1), (9, 2), (u64::MAX, 1), (u64::MAX - 1, 5)] {
        assert!(
            matches!(
                store.read_entries(start, count),
                Err(StoreError::OutOfRange { .. })
            ),
            "reading [{start}, +{count}) of 10 entries must fail with OutOfRange"
        );
    }
}

fn enforces_limits_and_changes_nothing_on_refusal<H: StoreHarness>(harness: &mut H) {
    let store = harness.open();
    let limits = store.limits().clone();
    let too_big = NewEntry::new(vec![1; limits.max_leaf_bytes as usize + 1], None);
    let refused = [
        vec![NewEntry::new(leaf(0), None), too_big],
        (0..u64::from(limits.max_batch_entries) + 1)
            .map(|index| NewEntry::new(index.to_le_bytes().to_vec(), None))
            .collect(),
        {
            let per_leaf = limits.max_leaf_bytes as usize;
            let count = (limits.max_batch_bytes / per_leaf as u64 + 1) as usize;
            (0..count)
                .map(|index| NewEntry::new(vec![index as u8; per_leaf], None))
                .collect()
        },
        vec![NewEntry::new(leaf(0), None).with_payload(Some(vec![
            2;
            limits.max_payload_bytes
                as usize
                + 1
        ]))],
        {
            // Leaves within the batch limit, payloads beside them that take it over.
            let per_payload = limits.max_payload_bytes as usize;
            let count = (limits.max_batch_bytes / per_payload as u64 + 1) as usize;
            (0..count as u64)
                .map(|index| {
                    NewEntry::new(leaf(index), None).with_payload(Some(vec![3; per_payload]))
                })
                .collect()
        },
    ];
    for batch in &refused {
        let error = store.append_entries(0, batch).expect_err("over a limit");
        assert!(
            matches!(error, StoreError::LimitExceeded { .. }),
            "expected LimitExceeded, got {error}"
        );
    }
    assert_eq!(store.entry_count(), 0, "refused appends add nothing");
    assert!(matches!(
        store.read_entries(0, limits.max_read_count + 1),
        Err(StoreError::LimitExceeded { .. })
    ));
    store
        .append_entries(0, &entries(0..1))
        .expect("the store works after refusals");
    drop(store);
    assert_eq!(
        harness.open().entry_count(),
        1,
        "refused appends left nothing on disk"
    );
}

fn finds_duplicates_by_leaf_hash_and_idempotency_key<H: StoreHarness>(harness: &mut H) {
    let store = harness.open();
    let first = NewEntry::new(b"first".to_vec(), Some(key("alice", "k1")));
    let second = NewEntry::new(b"second".to_vec(), None);
    store.append_entries(0, &entries(0..5)).expect("append");
    store
        .append_entries(5, &[first.clone(), second.clone()])
        .expect("append");
    let unseen = Hash::of_leaf(b"never stored");
    let same_key_other_producer = key("bob", "k1");
    let answers = store
        .find_duplicates(&[
            DedupKey::Leaf(first.leaf_hash()),
            DedupKey::Leaf(second.leaf_hash()),
            DedupKey::Idempotency(&key("alice", "k1")),
            DedupKey::Leaf(&unseen),
            DedupKey::Idempotency(&same_key_other_producer),
            DedupKey::Idempotency(&key("alice", "k2")),
            DedupKey::Leaf(&Hash::of_leaf(&leaf(3))),
        ])
        .expect("lookup");
    let indices: Vec<Option<u64>> = answers.iter().map(|hit| hit.map(|hit| hit.index)).collect();
    assert_eq!(
        indices,
        vec![Some(5), Some(6), Some(5), None, None, None, Some(3)]
    );
    assert_eq!(
        answers[2].map(|hit| hit.leaf_hash),
        Some(*first.leaf_hash()),
        "a key hit names the stored leaf"
    );
    assert!(store.find_duplicates(&[]).expect("empty lookup").is_empty());
}

fn finds_duplicates_after_reopen<H: StoreHarness>(harness: &mut H) {
    let total = 5000u64;
    {
        let store = harness.open();
        let mut next = 0;
        while next < total {
            let end = (next + 97).min(total);
            let batch: Vec<NewEntry> = (next..end)
                .map(|index| {
                    NewEntry::new(leaf(index), Some(key("producer", &format!("key-{index}"))))
                })
                .collect();
            store.append_entries(next, &batch).expect("append");
            next = end;
        }
    }
    let store = harness.open();
    let hashes: Vec<Hash> = (0..total)
        .map(|index| Hash::of_leaf(&leaf(index)))
        .collect();
    let keys: Vec<IdempotencyKey> = (0..total)
        .map(|index| key("producer", &format!("key-{index}")))
        .collect();
    let lookups: Vec<DedupKey<'_>> = hashes
        .iter()
        .map(DedupKey::Leaf)
        .chain(keys.iter().map(DedupKey::Idempotency))
        .collect();
    let answers = store.find_duplicates(&lookups).expect("lookup");
    for (position, answer) in answers.iter().enumerate() {
        let index = position as u64 % total;
        assert_eq!(
            answer.map(|hit| hit.index),
            Some(index),
            "lookup {position} after reopen"
        );
    }
    let fresh = Hash::of_leaf(b"fresh");
    assert_eq!(
        store
            .find_duplicates(&[DedupKey::Leaf(&fresh)])
            .expect("lookup"),
        vec![None]
    );
}

/// The payload of the suite's entry `index`, if it has one (one in three has).
fn payload(index: u64) -> Option<Vec<u8>> {
    index.is_multiple_of(3).then(|| {
        format!("payload of {index} ")
            .repeat(1 + (index % 7) as usize)
            .into_bytes()
    })
}

fn entries_with_payloads(range: std::ops::Range<u64>) -> Vec<NewEntry> {
    range
        .map(|index| NewEntry::new(leaf(index), None).with_payload(payload(index)))
        .collect()
}

fn keeps_payloads_beside_entries_and_erases_them_in_place<H: StoreHarness>(harness: &mut H) {
    let store = harness.open();
    store
        .append_entries(0, &entries_with_payloads(0..150))
        .expect("append");
    store
        .append_entries(150, &entries_with_payloads(150..600))
        .expect("append");
    assert_entries(&store, 0, 600);
    for index in 0..600 {
        assert_eq!(
            store.read_payload(index).expect("read a payload"),
            payload(index).map(StoredPayload::Held),
            "the payload of entry {index} reads back as appended"
        );
    }
    assert!(
        matches!(store.read_payload(600), Err(StoreError::OutOfRange { .. })),
        "the payload of an entry that does not exist is out of range"
    );
    assert!(
        store.erase_payload(3).expect("erase"),
        "a held payload is erased"
    );
    assert!(
        !store.erase_payload(3).expect("erase again"),
        "erasing again finds it erased"
    );
    assert!(
        !store.erase_payload(4).expect("erase none"),
        "entry 4 has no payload"
    );
    assert!(store.erase_payload(597).expect("erase"));
    assert!(matches!(
        store.erase_payload(600),
        Err(StoreError::OutOfRange { .. })
    ));
    let check = |store: &H::Store| {
        for index in 0..600 {
            let expected = match index {
                3 | 597 => Some(StoredPayload::Erased),
                _ => payload(index).map(StoredPayload::Held),
            };
            assert_eq!(
                store.read_payload(index).expect("read a payload"),
                expected,
                "entry {index}: only the erased payloads are gone"
            );
        }
        assert_entries(store, 0, 600);
        let hits = store
            .find_duplicates(&[DedupKey::Leaf(&Hash::of_leaf(&leaf(3)))])
            .expect("find");
        assert_eq!(
            hits[0].map(|hit| hit.index),
            Some(3),
            "an erasure leaves the leaf"
        );
    };
    check(&store);
    drop(store);
    let store = harness.open();
    check(&store);
    store
        .append_entries(600, &entries_with_payloads(600..603))
        .expect("append after reopening");
    assert_eq!(
        store.read_payload(600).expect("read"),
        payload(600).map(StoredPayload::Held)
    );
}

fn hashes(level: u8, range: std::ops::Range<u64>) -> Vec<Hash> {
    range
        .map(|index| Hash::of_leaf(format!("{level}/{index}").as_bytes()))
        .collect()
}

fn stores_hashes_per_level<H: StoreHarness>(harness: &mut H) {
    let store = harness.open();
    store.append_entries(0, &entries(0..600)).expect("append");
    store
        .append_hashes(0, 0, &hashes(0, 0..300))
        .expect("level 0");
    store
        .append_hashes(0, 300, &hashes(0, 300..600))
        .expect("level 0 again");
    store
        .append_hashes(1, 0, &hashes(1, 0..2))
        .expect("level 1");
    assert_eq!(store.hash_count(0).expect("count"), 600);
    assert_eq!(store.hash_count(1).expect("count"), 2);
    assert_eq!(store.hash_count(2).expect("count"), 0);
    assert_eq!(
        store.read_hashes(0, 256, 44).expect("read"),
        hashes(0, 256..300),
        "a partial tile's hashes"
    );
    assert_eq!(store.read_hashes(1, 0, 2).expect("read"), hashes(1, 0..2));
    assert!(matches!(
        store.append_hashes(0, 599, &hashes(0, 0..1)),
        Err(StoreError::HashesNotAtEnd { .. })
    ));
    assert!(matches!(
        store.append_hashes(0, 600, &hashes(0, 0..1)),
        Err(StoreError::HashesBeyondEntries { .. })
    ));
    assert!(matches!(
        store.append_hashes(1, 2, &hashes(1, 0..1)),
        Err(StoreError::HashesBeyondEntries { .. })
    ));
    assert!(matches!(
        store.append_hashes(2, 0, &hashes(2, 0..1)),
        Err(StoreError::HashesBeyondEntries { .. })
    ));
    assert!(matches!(
        store.read_hashes(1, 1, 2),
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(matches!(
        store.hash_count(MAX_HASH_LEVEL + 1),
        Err(StoreError::NoSuchLevel { .. })
    ));
    assert!(matches!(
        store.read_hashes(MAX_HASH_LEVEL + 1, 0, 0),
        Err(StoreError::NoSuchLevel { .. })
    ));
}

fn keeps_synced_hashes_across_reopen<H: StoreHarness>(harness: &mut H) {
    {
        let store = harness.open();
        store.append_entries(0, &entries(0..512)).expect("append");
        store
            .append_hashes(0, 0, &hashes(0, 0..512))
            .expect("level 0");
        store
            .append_hashes(1, 0, &hashes(1, 0..2))
            .expect("level 1");
        store.sync_hashes().expect("sync");
    }
    let store = harness.open();
    assert_eq!(
        store.hash_count(0).expect("count"),
        512,
        "synced hashes survive"
    );
    assert_eq!(
        store.read_hashes(0, 0, 512).expect("read"),
        hashes(0, 0..512)
    );
    assert_eq!(store.read_hashes(1, 0, 2).expect("read"), hashes(1, 0..2));
    let unsynced_may_remain = store.hash_count(2).expect("count");
    assert_eq!(unsynced_may_remain, 0);
}

fn checkpoint(size: u64) -> StoredCheckpoint {
    StoredCheckpoint {
        size,
        note: format!("example.com/log\n{size}\nroot\n\n— key signature\n").into_bytes(),
    }
}

fn checkpoints_never_go_back<H: StoreHarness>(harness: &mut H) {
    {
        let store = harness.open();
        assert_eq!(store.latest_checkpoint().expect("read"), None);
        store.append_entries(0, &entries(0..20)).expect("append");
        store
            .append_hashes(0, 0, &hashes(0, 0..10))
            .expect("hashes");
        let error = store
            .store_checkpoint(&checkpoint(10))
            .expect_err("hashes not synced");
        assert!(
            matches!(error, StoreError::CheckpointAhead { .. }),
            "got {error}"
        );
        store.sync_hashes().expect("sync");
        store.store_checkpoint(&checkpoint(0)).expect("size 0");
        store.store_checkpoint(&checkpoint(10)).expect("size 10");
        let error = store
            .store_checkpoint(&checkpoint(9))
            .expect_err("going back");
        assert!(
            matches!(
                error,
                StoreError::CheckpointGoesBack {
                    stored: 10,
                    offered: 9
                }
            ),
            "got {error}"
        );
        let mut same_size = checkpoint(10);
        same_size.note.extend_from_slice(b"another signature\n");
        store
            .store_checkpoint(&same_size)
            .expect("the same size again");
        assert_eq!(store.latest_checkpoint().expect("read"), Some(same_size));
        store
            .append_hashes(0, 10, &hashes(0, 10..20))
            .expect("hashes");
        store.sync_hashes().expect("sync");
        let error = store
            .store_checkpoint(&checkpoint(21))
            .expect_err("beyond the entries");
        assert!(
            matches!(error, StoreError::CheckpointAhead { .. }),
            "got {error}"
        );
        store.store_checkpoint(&checkpoint(20)).expect("size 20");
    }
    let store = harness.open();
    assert_eq!(
        store.latest_checkpoint().expect("read"),
        Some(checkpoint(20)),
        "the checkpoint survives reopen"
    );
    assert!(matches!(
        store.store_checkpoint(&checkpoint(19)),
        Err(StoreError::CheckpointGoesBack { .. })
    ));
}

fn witness_sizes_never_go_back<H: StoreHarness>(harness: &mut H) {
    {
        let store = harness.open();
        assert_eq!(
            store.witness_size("witness.example/w1").expect("read"),
            None
        );
        store
            .set_witness_size("witness.example/w1", 5)
            .expect("set");
        store
            .set_witness_size("witness.example/w2", 9)
            .expect("set");
        store
            .set_witness_size("witness.example/w1", 7)
            .expect("forward");
        store
            .set_witness_size("witness.example/w1", 7)
            .expect("same");
        let error = store
            .set_witness_size("witness.example/w1", 6)
            .expect_err("back");
        assert!(
            matches!(
                error,
                StoreError::WitnessGoesBack {
                    stored: 7,
                    offered: 6,
                    ..
                }
            ),
            "got {error}"
        );
        assert!(matches!(
            store.set_witness_size("", 1),
            Err(StoreError::BadName { .. })
        ));
    }
    let store = harness.open();
    assert_eq!(
        store.witness_size("witness.example/w1").expect("read"),
        Some(7)
    );
    assert_eq!(
        store.witness_size("witness.example/w2").expect("read"),
        Some(9)
    );
}

fn keeps_cosignatures_and_timestamp_tokens_per_size<H: StoreHarness>(harness: &mut H) {
    {
        let store = harness.open();
        store
            .store_cosignature(10, "w2", b"sig-w2-10")
            .expect("store");
        store
            .store_cosignature(10, "w1", b"sig-w1-10")
            .expect("store");
        store
            .store_cosignature(11, "w1", b"sig-w1-11")
            .expect("store");
        store
            .store_cosignature(10, "w1", b"sig-w1-10-again")
            .expect("replace");
        store
            .store_timestamp_token(10, "tsa.example", b"token")
            .expect("store");
        let too_big = vec![0; super::MAX_ATTACHMENT_BYTES + 1];
        assert!(matches!(
            store.store_cosignature(10, "w3", &too_big),
            Err(StoreError::LimitExceeded { .. })
        ));
    }
    let store = harness.open();
    assert_eq!(
        store.cosignatures(10).expect("read"),
        vec![
            ("w1".to_string(), b"sig-w1-10-again".to_vec()),
            ("w2".to_string(), b"sig-w2-10".to_vec())
        ]
    );
    assert_eq!(
        store.cosignatures(11).expect("read"),
        vec![("w1".to_string(), b"sig-w1-11".to_vec())]
    );
    assert!(store.cosignatures(12).expect("read").is_empty());
    assert_eq!(
        store.timestamp_tokens(10).expect("read"),
        vec![("tsa.example".to_string(), b"token".to_vec())]
    );
    assert!(
        store.timestamp_tokens(11).expect("read").is_empty(),
        "tokens and cosignatures are apart"
    );
}

fn readers_see_consistent_prefixes_during_appends<H: StoreHarness>(harness: &mut H) {
    let store = Arc::new(harness.open());
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut checks = 0u64;
            while !done.load(Ordering::Relaxed) || checks == 0 {
                let count = store.entry_count();
                let start = count.saturating_sub(50);
                assert_entries(store.as_ref(), start, count - start);
                checks += 1;
            }
        })
    };
    let mut next = 0;
    for size in (1..150).map(|round| 1 + round % 13) {
        store
            .append_entries(next, &entries(next..next + size))
            .expect("append");
        next += size;
    }
    done.store(true, Ordering::Relaxed);
    reader
        .join()
        .expect("the reader saw only complete, ordered entries");
}
