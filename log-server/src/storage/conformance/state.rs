//! The suite for [`StateStore`]: checkpoints, witness progress, cosignatures and timestamp
//! tokens.

use super::{checkpoint, run, StateHarness, Suite};
use crate::storage::{StateStore, StoreError, MAX_ATTACHMENT_BYTES};

/// Every test of the suite, by name.
pub fn tests<H: StateHarness>() -> Suite<H> {
    vec![
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
            "refused_writes_leave_the_old_values_whole",
            refused_writes_leave_the_old_values_whole::<H>,
        ),
    ]
}

/// Runs every test, each on a fresh harness from `fresh`.
pub fn run_all<H: StateHarness>(fresh: impl Fn() -> H) {
    run("state", tests::<H>(), fresh);
}

fn checkpoints_never_go_back<H: StateHarness>(harness: &mut H) {
    {
        let store = harness.open();
        assert_eq!(store.latest_checkpoint().expect("read"), None);
        harness.cover(&store, 10);
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
        harness.cover(&store, 20);
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

fn witness_sizes_never_go_back<H: StateHarness>(harness: &mut H) {
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

fn keeps_cosignatures_and_timestamp_tokens_per_size<H: StateHarness>(harness: &mut H) {
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
        let too_big = vec![0; MAX_ATTACHMENT_BYTES + 1];
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

fn refused_writes_leave_the_old_values_whole<H: StateHarness>(harness: &mut H) {
    let store = harness.open();
    harness.cover(&store, 30);
    let mut signed = checkpoint(30);
    signed
        .note
        .extend_from_slice(b"- witness.example cosignature\n");
    store.store_checkpoint(&signed).expect("size 30");
    store.set_witness_size("w", 30).expect("witness at 30");
    let oversized = crate::storage::StoredCheckpoint {
        size: 30,
        note: vec![b'x'; crate::storage::MAX_CHECKPOINT_BYTES + 1],
    };
    for refused in [checkpoint(29), oversized] {
        assert!(
            store.store_checkpoint(&refused).is_err(),
            "a checkpoint going back or over the size limit is refused"
        );
    }
    assert!(store.set_witness_size("w", 29).is_err());
    assert!(store.set_witness_size(&"w".repeat(10_000), 40).is_err());
    drop(store);
    let store = harness.open();
    assert_eq!(
        store.latest_checkpoint().expect("read"),
        Some(signed),
        "the stored checkpoint is whole after refusals and a reopen"
    );
    assert_eq!(store.witness_size("w").expect("read"), Some(30));
}
