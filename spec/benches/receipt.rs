//! Receipt verifications per second on one core (criterion runs on one thread; nothing here is
//! parallel). Target (issue 3): at least 20,000 receipt verifications a second on one core.
//!
//! Every receipt: a leaf of a tree of about 1,000,000 leaves (a 20-hash inclusion proof), the
//! log's signature, two of three witnesses' cosignatures and one RFC 3161 token whose TSA
//! certificate chains to the policy's root.
//!
//! - `cold_receipts_batch`: 1,024 receipts, each with its own checkpoint (tree sizes differ) and
//!   its own token, through one fresh `ReceiptVerifier::verify_batch`: nothing repeats but the
//!   TSA certificate, whose chain is checked once per verifier. Ed25519 TSA.
//! - `cold_receipts_one_at_a_time`: the same receipts through `ReceiptVerifier::verify`.
//! - `auditor_batch` and `auditor_batch_p256`: 10,000 receipts over 100 checkpoints (a log signs
//!   about one a second; many receipts share one), interleaved, through one fresh verifier's
//!   `verify_batch`; Ed25519 and P-256 TSAs.
//! - `cold_receipts_batch_p256`: as `cold_receipts_batch` with a P-256 TSA (the default of
//!   `cairn-witness tsa init`).
//! - `verify_cold`: the fully cold `verify(receipt, policy)`, which remembers nothing.
//! - `verify_warm_same_checkpoint`, `parse_json`: as before.
//!
//! Run: `cargo bench -p cairn-spec --bench receipt` (or add a filter such as `-- auditor`).

use std::time::Duration;

use cairn_spec::example::{test_tsa_p256, world, World};
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{verify, Receipt, ReceiptVerifier};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const TREE_SIZE: u64 = 1 << 20;
const COLD_RECEIPTS: usize = 1024;
const AUDITOR_RECEIPTS: usize = 10_000;
const AUDITOR_CHECKPOINTS: usize = 100;

/// Receipts each of their own checkpoint: receipt `n` is in the tree of `TREE_SIZE - n` leaves.
fn cold_receipts(world: &World) -> Vec<Receipt> {
    (0..COLD_RECEIPTS)
        .map(|n| {
            let tree_size = TREE_SIZE - n as u64;
            let index = (n * 997 + 7) % tree_size as usize;
            world.receipt_at(index, tree_size, &[0, 2])
        })
        .collect()
}

/// Receipts over a few checkpoints, interleaved: receipt `n` is of checkpoint `n % 100`.
fn auditor_receipts(world: &World) -> Vec<Receipt> {
    let templates: Vec<Receipt> = (0..AUDITOR_CHECKPOINTS)
        .map(|checkpoint| world.receipt_at(0, TREE_SIZE - checkpoint as u64, &[0, 2]))
        .collect();
    (0..AUDITOR_RECEIPTS)
        .map(|n| {
            let template = &templates[n % AUDITOR_CHECKPOINTS];
            let tree_size = TREE_SIZE - (n % AUDITOR_CHECKPOINTS) as u64;
            let index = (n * 7919 + 3) % tree_size as usize;
            Receipt {
                index: index as u64,
                leaf: Some(world.leaves[index].clone()),
                leaf_hash: cairn_spec::hash::Hash::of_leaf(&world.leaves[index]),
                inclusion_proof: cairn_spec::merkle::inclusion_proof(
                    index as u64,
                    tree_size,
                    &world.stored,
                )
                .expect("stored hashes"),
                ..template.clone()
            }
        })
        .collect()
}

fn verify_all_in_batches(policy: &Policy, receipts: &[Receipt]) -> usize {
    let mut verifier = ReceiptVerifier::new(policy);
    let results = verifier.verify_batch(black_box(receipts));
    assert!(results.iter().all(Result::is_ok), "every receipt verifies");
    results.len()
}

fn receipts(criterion: &mut Criterion) {
    let mut world = world(TREE_SIZE as usize);
    let policy = world.policy("two", true);
    let cold = cold_receipts(&world);
    let auditor = auditor_receipts(&world);
    world.tsa = test_tsa_p256(7);
    let policy_p256 = world.policy("two", true);
    let cold_p256 = cold_receipts(&world);
    let auditor_p256 = auditor_receipts(&world);

    let mut group = criterion.benchmark_group("receipt");
    group.measurement_time(Duration::from_secs(5));
    group.sample_size(10);

    group.throughput(Throughput::Elements(COLD_RECEIPTS as u64));
    group.bench_function("cold_receipts_batch", |bench| {
        bench.iter(|| verify_all_in_batches(&policy, &cold))
    });
    group.bench_function("cold_receipts_one_at_a_time", |bench| {
        bench.iter(|| {
            let mut verifier = ReceiptVerifier::new(&policy);
            for receipt in &cold {
                verifier
                    .verify(black_box(receipt))
                    .expect("every receipt verifies");
            }
        })
    });
    group.bench_function("cold_receipts_batch_p256", |bench| {
        bench.iter(|| verify_all_in_batches(&policy_p256, &cold_p256))
    });

    group.throughput(Throughput::Elements(AUDITOR_RECEIPTS as u64));
    group.bench_function("auditor_batch", |bench| {
        bench.iter(|| verify_all_in_batches(&policy, &auditor))
    });
    group.bench_function("auditor_batch_p256", |bench| {
        bench.iter(|| verify_all_in_batches(&policy_p256, &auditor_p256))
    });

    group.sample_size(100);
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_cold", |bench| {
        let mut next = 0;
        bench.iter(|| {
            next = (next + 1) % cold.len();
            verify(black_box(&cold[next]), &policy).expect("valid receipt")
        })
    });
    group.bench_function("verify_cold_p256", |bench| {
        let mut next = 0;
        bench.iter(|| {
            next = (next + 1) % cold_p256.len();
            verify(black_box(&cold_p256[next]), &policy_p256).expect("valid receipt")
        })
    });
    group.bench_function("verify_warm_same_checkpoint", |bench| {
        let mut verifier = ReceiptVerifier::new(&policy);
        let same: Vec<&Receipt> = auditor.iter().step_by(AUDITOR_CHECKPOINTS).collect();
        let mut next = 0;
        bench.iter(|| {
            next = (next + 1) % same.len();
            verifier
                .verify(black_box(same[next]))
                .expect("valid receipt")
        })
    });
    group.bench_function("parse_json", |bench| {
        bench.iter_batched(
            || cold[0].to_json(),
            |json| Receipt::from_json(black_box(json.as_bytes())),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, receipts);
criterion_main!(benches);
