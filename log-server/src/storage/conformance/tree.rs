//! The suite for [`TreeStore`]: the tree's hashes per tile level.

use super::{hashes, run, Suite, TreeHarness};
use crate::storage::{StoreError, TreeStore, MAX_HASH_LEVEL};

/// Every test of the suite, by name.
pub fn tests<H: TreeHarness>() -> Suite<H> {
    vec![
        ("stores_hashes_per_level", stores_hashes_per_level::<H>),
        (
            "keeps_synced_hashes_across_reopen",
            keeps_synced_hashes_across_reopen::<H>,
        ),
        (
            "a_refused_append_changes_nothing",
            a_refused_append_changes_nothing::<H>,
        ),
    ]
}

/// Runs every test, each on a fresh harness from `fresh`.
pub fn run_all<H: TreeHarness>(fresh: impl Fn() -> H) {
    run("tree", tests::<H>(), fresh);
}

fn stores_hashes_per_level<H: TreeHarness>(harness: &mut H) {
    let store = harness.open();
    harness.justify(&store, 600);
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

fn keeps_synced_hashes_across_reopen<H: TreeHarness>(harness: &mut H) {
    {
        let store = harness.open();
        harness.justify(&store, 512);
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

fn a_refused_append_changes_nothing<H: TreeHarness>(harness: &mut H) {
    let store = harness.open();
    harness.justify(&store, 300);
    store
        .append_hashes(0, 0, &hashes(0, 0..100))
        .expect("level 0");
    for (start, what) in [(99, "overlapping"), (101, "leaving a gap")] {
        assert!(
            matches!(
                store.append_hashes(0, start, &hashes(0, start..start + 5)),
                Err(StoreError::HashesNotAtEnd { .. })
            ),
            "an append {what} the level's end is refused"
        );
    }
    assert_eq!(
        store.hash_count(0).expect("count"),
        100,
        "refused appends add nothing"
    );
    store
        .append_hashes(0, 100, &hashes(0, 100..300))
        .expect("an append at the end still works");
    store.sync_hashes().expect("sync");
    drop(store);
    let store = harness.open();
    assert_eq!(
        store.read_hashes(0, 0, 300).expect("read"),
        hashes(0, 0..300),
        "the level holds exactly what was appended"
    );
}
