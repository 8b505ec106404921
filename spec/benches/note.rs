//! Throughput of the signed-note layer: note parses, note signature verifications, checkpoint
//! opens, cosignature verifications and witness add-checkpoint decisions, each per second.
//!
//! A witness must handle at least 2,000 add-checkpoint requests a second including persistence;
//! the pure decision measured here (parse, log signature check, consistency proof, cosignature)
//! has to be far faster than that.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::note::{Ed25519Verifier, Note, NoteVerifier};
use cairn_spec::witness::{add_checkpoint, AddCheckpointRequest, TreeState};
use common::{consistency_proof, leaf_hashes, log_checkpoint, log_signer, root, witness_cosigner};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

// Go's sumdb/note test note (note_test.go), signed by PeterNeumann and EnochRoot.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

const NOW: u64 = 1_764_000_000;

/// Bare ed25519-dalek operations, measured in the same run so the figures above can be read as
/// ratios on a shared, noisy machine.
fn bench_baseline(criterion: &mut Criterion) {
    use ed25519_dalek::{Signer as _, Verifier as _};
    let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let public = key.verifying_key();
    let message = [7u8; 100];
    let signature = key.sign(&message);
    let mut group = criterion.benchmark_group("baseline");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ed25519_verify", |bencher| {
        bencher.iter(|| {
            public
                .verify(black_box(&message), &signature)
                .expect("valid")
        })
    });
    group.bench_function("ed25519_sign", |bencher| {
        bencher.iter(|| key.sign(black_box(&message)))
    });
    group.finish();
}

fn bench_note(criterion: &mut Criterion) {
    let peter = Ed25519Verifier::from_vkey(PETER_VKEY).expect("Go's vkey");
    let mut group = criterion.benchmark_group("note");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse", |bencher| {
        bencher.iter(|| Note::parse(black_box(GO_NOTE.as_bytes())).expect("parses"))
    });
    let note = Note::parse(GO_NOTE.as_bytes()).expect("parses");
    group.bench_function("verify_one_signature", |bencher| {
        bencher.iter(|| black_box(&note).verify(&[&peter]).expect("verifies"))
    });
    group.finish();
}

fn bench_checkpoint(criterion: &mut Criterion) {
    let log_key = log_signer().verifier();
    let bytes = log_checkpoint(1_000)
        .sign(&log_signer())
        .expect("signs")
        .to_bytes()
        .expect("formats");
    let mut group = criterion.benchmark_group("checkpoint");
    group.throughput(Throughput::Elements(1));
    group.bench_function("open", |bencher| {
        bencher.iter(|| Checkpoint::open(black_box(&bytes), &log_key).expect("opens"))
    });
    group.finish();
}

fn bench_cosignature(criterion: &mut Criterion) {
    let cosigner = witness_cosigner();
    let verifier = cosigner.verifier();
    let checkpoint = log_checkpoint(1_000);
    let line = cosigner
        .cosign(&checkpoint, NOW)
        .expect("cosigns")
        .to_note_signature();
    let mut group = criterion.benchmark_group("cosignature");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify", |bencher| {
        bencher.iter(|| {
            verifier
                .verify_cosignature(black_box(&checkpoint), black_box(&line))
                .expect("verifies")
        })
    });
    group.bench_function("sign", |bencher| {
        bencher.iter(|| {
            cosigner
                .cosign(black_box(&checkpoint), NOW)
                .expect("cosigns")
        })
    });
    group.finish();
}

fn bench_witness(criterion: &mut Criterion) {
    let log_key = log_signer().verifier();
    let keys: [&dyn NoteVerifier; 1] = [&log_key];
    let cosigner = witness_cosigner();
    let (old_size, new_size) = (1_000u64, 1_100u64);
    let leaves = leaf_hashes(new_size);
    let state = Some(TreeState {
        size: old_size,
        root: root(&leaves[..old_size as usize]),
    });
    let note = log_checkpoint(new_size).sign(&log_signer()).expect("signs");
    let request = AddCheckpointRequest::new(note, old_size, consistency_proof(old_size, &leaves))
        .expect("valid request");
    let body = request.to_bytes().expect("formats");
    let mut group = criterion.benchmark_group("witness");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_request", |bencher| {
        bencher.iter(|| AddCheckpointRequest::parse(black_box(&body)).expect("parses"))
    });
    group.bench_function("decide", |bencher| {
        bencher.iter(|| {
            add_checkpoint(state, black_box(&request), Some(&keys), &cosigner, NOW)
                .expect("accepts")
        })
    });
    group.bench_function("parse_and_decide", |bencher| {
        bencher.iter(|| {
            let request = AddCheckpointRequest::parse(black_box(&body)).expect("parses");
            add_checkpoint(state, &request, Some(&keys), &cosigner, NOW)
                .expect("accepts")
                .response_body()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_baseline, bench_note, bench_checkpoint, bench_cosignature, bench_witness
}
criterion_main!(benches);
