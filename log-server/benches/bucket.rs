//! Hash-tile write throughput of the bucket tree to a real S3 server on loopback: `s3s-fs`
//! (installed as `.ci/run` does), started by the bench over a temporary directory.
//!
//! - `sync_full_tiles/<tiles>`: that many full level-0 tiles (256 hashes each) appended and
//!   synced in one `sync_hashes`, each write the store's whole protocol (a GET of the path, a
//!   conditional PUT, a GET to read it back), 16 requests in flight. Throughput is in tiles;
//!   times 256 it is the leaves per second a log can push through level 0 (the levels above
//!   add one tile per 256).
//!
//! Set `TMPDIR` to put the server's directory on another disk.

#[path = "../tests/support_s3/mod.rs"]
mod support_s3;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::storage::bucket::BucketTree;
use cairn_log::storage::{Hash, TreeStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn sync_full_tiles(c: &mut Criterion) {
    let server = support_s3::S3Server::start();
    let tree = BucketTree::open(server.config(), Arc::new(|| u64::MAX)).expect("open");
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("bucket");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for tiles in [16u64, 64] {
        group.throughput(Throughput::Elements(tiles));
        group.bench_with_input(
            BenchmarkId::new("sync_full_tiles", tiles),
            &tiles,
            |b, &tiles| {
                b.iter_custom(|rounds| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..rounds {
                        let start = next.fetch_add(tiles * 256, Ordering::SeqCst);
                        let hashes: Vec<Hash> = (start..start + tiles * 256)
                            .map(|index| Hash::of_leaf(&index.to_le_bytes()))
                            .collect();
                        tree.append_hashes(0, start, &hashes).expect("append");
                        let began = Instant::now();
                        tree.sync_hashes().expect("sync");
                        spent += began.elapsed();
                    }
                    spent
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, sync_full_tiles);
criterion_main!(benches);
