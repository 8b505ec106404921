//! Receipt verifications per second on one core: cold (every signature, cosignature and
//! timestamp token checked, as for a lone receipt) and warm (many receipts of one checkpoint
//! through a `ReceiptVerifier`, which checks the checkpoint and its tokens once). Target: at
//! least 20,000 receipt verifications a second on one core.
//!
//! The example receipt: a tree of 1,000,000 leaves (a 20-hash inclusion proof), the log's
//! signature, two of three witnesses' cosignatures, one Ed25519 RFC 3161 token.

use std::time::Duration;

use cairn_spec::example::world;
use cairn_spec::receipt::{verify, ReceiptVerifier};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn receipts(criterion: &mut Criterion) {
    let world = world(1 << 20);
    let policy = world.policy("two", true);
    let receipts: Vec<_> = (0..256)
        .map(|index| world.receipt(index * 4000 + 7, &[0, 2]))
        .collect();
    let mut group = criterion.benchmark_group("receipt");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("verify_cold", |bench| {
        let mut next = 0;
        bench.iter(|| {
            next = (next + 1) % receipts.len();
            verify(black_box(&receipts[next]), &policy).expect("valid receipt")
        })
    });
    group.bench_function("verify_warm_same_checkpoint", |bench| {
        let mut verifier = ReceiptVerifier::new(&policy);
        let mut next = 0;
        bench.iter(|| {
            next = (next + 1) % receipts.len();
            verifier
                .verify(black_box(&receipts[next]))
                .expect("valid receipt")
        })
    });
    group.bench_function("parse_json", |bench| {
        let json = receipts[0].to_json();
        bench.iter(|| cairn_spec::receipt::Receipt::from_json(black_box(json.as_bytes())))
    });
    group.finish();
}

criterion_group!(benches, receipts);
criterion_main!(benches);
