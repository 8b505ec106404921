//! Ed25519 batch verification: Cairn's own [`Ed25519Batch`] against ed25519-dalek's
//! `verify_batch`, and one-at-a-time verification as the baseline, in the same run so that the
//! figures compare on a shared, noisy machine.
//!
//! Two workloads of `n` signatures over distinct messages: by three keys (what a batch of
//! receipts of one log is: the log's checkpoint signature and two witnesses' cosignatures), and
//! by `n` keys (no key shared: the worst case for Cairn's batch, which merges the terms of
//! signatures by one key and checks each new key for a small-order part once). Every iteration
//! starts a fresh batch, so those key checks are counted.
//!
//! `cargo bench -p cairn-spec --bench batch`

use cairn_spec::note::{Ed25519Batch, Ed25519Checker, Ed25519Rules, SingleEd25519};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::Signer as _;

/// `count` signatures over distinct 120-byte messages, by `keys` keys in turn.
struct Workload {
    keys: Vec<ed25519_dalek::VerifyingKey>,
    messages: Vec<Vec<u8>>,
    signatures: Vec<ed25519_dalek::Signature>,
}

fn workload(count: usize, keys: usize) -> Workload {
    let signing: Vec<ed25519_dalek::SigningKey> = (0..keys)
        .map(|index| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
            ed25519_dalek::SigningKey::from_bytes(&seed)
        })
        .collect();
    let mut workload = Workload {
        keys: Vec::with_capacity(count),
        messages: Vec::with_capacity(count),
        signatures: Vec::with_capacity(count),
    };
    for index in 0..count {
        let key = &signing[index % keys];
        let mut message = format!("example.com/log\n{index}\n").into_bytes();
        message.resize(120, b'=');
        workload.signatures.push(key.sign(&message));
        workload.keys.push(key.verifying_key());
        workload.messages.push(message);
    }
    workload
}

fn all_single(workload: &Workload) -> bool {
    let mut single = SingleEd25519;
    workload
        .keys
        .iter()
        .zip(&workload.messages)
        .zip(&workload.signatures)
        .all(|((key, message), signature)| {
            single.check(
                key,
                message,
                &signature.to_bytes(),
                Ed25519Rules::Cofactorless,
            )
        })
}

fn cairn_batch(workload: &Workload) -> bool {
    let mut batch = Ed25519Batch::new();
    let each = workload
        .keys
        .iter()
        .zip(&workload.messages)
        .zip(&workload.signatures)
        .all(|((key, message), signature)| {
            batch.check(
                key,
                message,
                &signature.to_bytes(),
                Ed25519Rules::Cofactorless,
            )
        });
    each && batch.verify_range(0..batch.len())
}

fn dalek_batch(workload: &Workload) -> bool {
    let messages: Vec<&[u8]> = workload.messages.iter().map(Vec::as_slice).collect();
    ed25519_dalek::verify_batch(&messages, &workload.signatures, &workload.keys).is_ok()
}

fn bench_batches(criterion: &mut Criterion) {
    for (name, keys) in [("three_keys", Some(3)), ("a_key_each", None)] {
        let mut group = criterion.benchmark_group(format!("ed25519_{name}"));
        group.sample_size(20);
        group.warm_up_time(std::time::Duration::from_secs(1));
        group.measurement_time(std::time::Duration::from_secs(3));
        for count in [64usize, 512] {
            let workload = workload(count, keys.unwrap_or(count));
            assert!(all_single(&workload) && cairn_batch(&workload) && dalek_batch(&workload));
            group.throughput(Throughput::Elements(count as u64));
            group.bench_with_input(
                BenchmarkId::new("single", count),
                &workload,
                |bencher, w| bencher.iter(|| all_single(black_box(w))),
            );
            group.bench_with_input(BenchmarkId::new("cairn", count), &workload, |bencher, w| {
                bencher.iter(|| cairn_batch(black_box(w)))
            });
            group.bench_with_input(BenchmarkId::new("dalek", count), &workload, |bencher, w| {
                bencher.iter(|| dalek_batch(black_box(w)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_batches);
criterion_main!(benches);
