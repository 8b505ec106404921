//! The suite for [`LogStore`]: the rules between a log's sequence, tree and state, which one
//! backend keeps together.

use super::{checkpoint, entries, hashes, run, Harness, Suite};
use crate::storage::{LogStore, SequenceStore, StateStore, StoreError, TreeStore};

/// Every test of the suite, by name.
pub fn tests<H: Harness<Store: LogStore>>() -> Suite<H> {
    vec![
        (
            "hashes_never_outgrow_the_entries",
            hashes_never_outgrow_the_entries::<H>,
        ),
        (
            "checkpoints_never_cover_more_than_is_durable",
            checkpoints_never_cover_more_than_is_durable::<H>,
        ),
    ]
}

/// Runs every test, each on a fresh harness from `fresh`.
pub fn run_all<H: Harness<Store: LogStore>>(fresh: impl Fn() -> H) {
    run("log", tests::<H>(), fresh);
}

fn hashes_never_outgrow_the_entries<H: Harness<Store: LogStore>>(harness: &mut H) {
    let store = harness.open();
    assert!(
        matches!(
            store.append_hashes(0, 0, &hashes(0, 0..1)),
            Err(StoreError::HashesBeyondEntries { .. })
        ),
        "an empty log justifies no hash"
    );
    store.append_entries(0, &entries(0..600)).expect("append");
    store
        .append_hashes(0, 0, &hashes(0, 0..600))
        .expect("level 0");
    store
        .append_hashes(1, 0, &hashes(1, 0..2))
        .expect("level 1");
    for (level, start, what) in [
        (0, 600, "a leaf hash past the entries"),
        (1, 2, "a third level-1 hash over 600 entries"),
        (2, 0, "a level-2 hash under 65,536 entries"),
    ] {
        assert!(
            matches!(
                store.append_hashes(level, start, &hashes(level, start..start + 1)),
                Err(StoreError::HashesBeyondEntries { .. })
            ),
            "{what} is refused"
        );
    }
    store
        .append_entries(600, &entries(600..768))
        .expect("append");
    store
        .append_hashes(1, 2, &hashes(1, 2..3))
        .expect("768 entries justify a third level-1 hash");
}

fn checkpoints_never_cover_more_than_is_durable<H: Harness<Store: LogStore>>(harness: &mut H) {
    {
        let store = harness.open();
        store.append_entries(0, &entries(0..20)).expect("append");
        store
            .append_hashes(0, 0, &hashes(0, 0..10))
            .expect("hashes");
        let error = store
            .store_checkpoint(&checkpoint(10))
            .expect_err("hashes not synced");
        assert!(
            matches!(error, StoreError::CheckpointAhead { .. }),
            "a checkpoint over unsynced leaf hashes is refused, got {error}"
        );
        store.sync_hashes().expect("sync");
        store.store_checkpoint(&checkpoint(10)).expect("size 10");
        store
            .append_hashes(0, 10, &hashes(0, 10..20))
            .expect("hashes");
        store.sync_hashes().expect("sync");
        let error = store
            .store_checkpoint(&checkpoint(21))
            .expect_err("beyond the entries");
        assert!(
            matches!(error, StoreError::CheckpointAhead { .. }),
            "a checkpoint beyond the durable entries is refused, got {error}"
        );
        store.store_checkpoint(&checkpoint(20)).expect("size 20");
    }
    let store = harness.open();
    assert_eq!(
        store.latest_checkpoint().expect("read"),
        Some(checkpoint(20)),
        "the checkpoint survives reopen"
    );
}
