//! The suite for [`SequenceStore`]: entries, payloads and the dedup index.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{assert_entries, entries, key, leaf, run, Harness, Suite};
use crate::storage::{
    DedupKey, Hash, IdempotencyKey, NewEntry, SequenceStore, StoreError, StoredPayload,
};

/// Every test of the suite, by name.
pub fn tests<H: Harness<Store: SequenceStore>>() -> Suite<H> {
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
        (
            "readers_see_consistent_prefixes_during_appends",
            readers_see_consistent_prefixes_during_appends::<H>,
        ),
    ]
}

/// Runs every test, each on a fresh harness from `fresh`.
pub fn run_all<H: Harness<Store: SequenceStore>>(fresh: impl Fn() -> H) {
    run("sequence", tests::<H>(), fresh);
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

fn appends_and_reads_back_entries<H: Harness<Store: SequenceStore>>(harness: &mut H) {
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

fn keeps_order_across_many_batches_and_reopens<H: Harness<Store: SequenceStore>>(harness: &mut H) {
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

fn rejects_append_not_at_the_end<H: Harness<Store: SequenceStore>>(harness: &mut H) {
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

fn rejects_reads_out_of_range<H: Harness<Store: SequenceStore>>(harness: &mut H) {
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

fn enforces_limits_and_changes_nothing_on_refusal<H: Harness<Store: SequenceStore>>(
    harness: &mut H,
) {
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

fn finds_duplicates_by_leaf_hash_and_idempotency_key<H: Harness<Store: SequenceStore>>(
    harness: &mut H,
) {
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

fn finds_duplicates_after_reopen<H: Harness<Store: SequenceStore>>(harness: &mut H) {
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

fn keeps_payloads_beside_entries_and_erases_them_in_place<H: Harness<Store: SequenceStore>>(
    harness: &mut H,
) {
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
    assert_entries_with_payloads(&store, 600, |index| payload(index).map(StoredPayload::Held));
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
        assert_entries_with_payloads(store, 600, |index| match index {
            3 | 597 => Some(StoredPayload::Erased),
            _ => payload(index).map(StoredPayload::Held),
        });
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

/// `read_entries_with_payloads` answers, over ranges that start and end anywhere (inside a
/// bundle of 256 and across one), what `read_entries` and `expected` answer for the first
/// `count` entries; past the end it is out of range.
fn assert_entries_with_payloads<S: SequenceStore + ?Sized>(
    store: &S,
    count: u64,
    expected: impl Fn(u64) -> Option<StoredPayload>,
) {
    let most = store.limits().max_read_with_payloads();
    for (start, length) in [(0, count), (1, 2), (250, 80), (count - 7, 7)] {
        let mut at = start;
        while at < start + length {
            let chunk = (start + length - at).min(most);
            let read = store
                .read_entries_with_payloads(at, chunk)
                .expect("read entries with their payloads");
            let entries = store.read_entries(at, chunk).expect("read entries");
            assert_eq!(
                read.len() as u64,
                chunk,
                "entries {at}.. with their payloads"
            );
            for ((entry, payload), alone) in read.iter().zip(&entries) {
                assert_eq!(
                    entry, alone,
                    "entry {} as read_entries reads it",
                    alone.index
                );
                assert_eq!(
                    payload,
                    &expected(entry.index),
                    "the payload of entry {} read with it",
                    entry.index
                );
            }
            at += chunk;
        }
    }
    assert!(
        matches!(
            store.read_entries_with_payloads(count - 2, 5),
            Err(StoreError::OutOfRange { .. })
        ),
        "entries with payloads past the end are out of range"
    );
    let over = store.limits().max_read_with_payloads() + 1;
    assert!(
        matches!(
            store.read_entries_with_payloads(0, over),
            Err(StoreError::LimitExceeded { .. })
        ),
        "a read of {over} entries with their payloads is over the limit"
    );
}

fn readers_see_consistent_prefixes_during_appends<H: Harness<Store: SequenceStore>>(
    harness: &mut H,
) {
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
