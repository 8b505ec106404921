//! Throughput of durable appends to the PostgreSQL store, against a PostgreSQL cluster the bench
//! starts for itself (fsync and synchronous_commit on, on this machine's disk; see
//! tests/support_pg).
//!
//! - `append_entries/<batch>x<stores>`: `stores` front-ends (each a `PostgresStore` with its own
//!   pool, on a thread of its own) append batches of `batch` 128-byte leaves through the
//!   trait, each at the end it last saw, retrying at the new end when another got there first.
//! - `append_at_end/<batch>x<stores>`: the same, letting the database place each batch at the
//!   end ([`PostgresStore::append_at_end`]): no lost races, appends wait on the head row.
//!
//! Throughput is leaves per second over all front-ends. Every batch is one transaction, and
//! batches from all front-ends are serialised by the head row's lock, which is held through the
//! commit's WAL flush: the figures for batches of 1 are bounded by the disk's flush latency.

#[path = "../tests/support_pg/mod.rs"]
mod support_pg;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::storage::postgres::{PostgresConfig, PostgresStore};
use cairn_log::storage::{NewEntry, SequenceStore, StoreError};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const LEAF_BYTES: usize = 128;

/// A unique 128-byte leaf.
fn leaf(number: u64) -> Vec<u8> {
    let mut bytes = vec![b'.'; LEAF_BYTES];
    bytes[..8].copy_from_slice(&number.to_le_bytes());
    bytes
}

#[derive(Clone, Copy)]
enum Mode {
    /// `append_entries` at the end last seen, retried on `NotAtEnd`.
    Trait,
    /// `append_at_end`.
    AtEnd,
}

fn append(store: &PostgresStore, entries: &[NewEntry], mode: Mode, retries: &AtomicU64) {
    match mode {
        Mode::AtEnd => {
            store.append_at_end(entries).expect("append");
        }
        Mode::Trait => {
            let mut first = store.entry_count();
            loop {
                match store.append_entries(first, entries) {
                    Ok(()) => return,
                    Err(StoreError::NotAtEnd { expected, .. }) => {
                        retries.fetch_add(1, Ordering::Relaxed);
                        first = expected;
                    }
                    Err(other) => panic!("append: {other}"),
                }
            }
        }
    }
}

fn appends(c: &mut Criterion) {
    let server = support_pg::TestPostgres::start();
    let next_leaf = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("postgres");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (mode, name) in [
        (Mode::Trait, "append_entries"),
        (Mode::AtEnd, "append_at_end"),
    ] {
        for stores in [1usize, 3] {
            let front_ends: Vec<Arc<PostgresStore>> = (0..stores)
                .map(|_| {
                    let mut config = PostgresConfig::new(server.url());
                    config.schema = "bench".into();
                    Arc::new(PostgresStore::open(config).expect("open"))
                })
                .collect();
            for batch in [1u64, 64, 1024] {
                let retries = Arc::new(AtomicU64::new(0));
                let batches = Arc::new(AtomicU64::new(0));
                group.throughput(Throughput::Elements(batch * stores as u64));
                group.bench_function(
                    BenchmarkId::new(name, format!("{batch}x{stores}")),
                    |bencher| {
                        bencher.iter_custom(|iterations| {
                            let started = Instant::now();
                            let threads: Vec<_> = front_ends
                                .iter()
                                .map(|store| {
                                    let (store, next_leaf, retries, batches) = (
                                        Arc::clone(store),
                                        Arc::clone(&next_leaf),
                                        Arc::clone(&retries),
                                        Arc::clone(&batches),
                                    );
                                    std::thread::spawn(move || {
                                        for _ in 0..iterations {
                                            let first =
                                                next_leaf.fetch_add(batch, Ordering::Relaxed);
                                            let entries: Vec<NewEntry> = (first..first + batch)
                                                .map(|number| NewEntry::new(leaf(number), None))
                                                .collect();
                                            append(&store, &entries, mode, &retries);
                                            batches.fetch_add(1, Ordering::Relaxed);
                                        }
                                    })
                                })
                                .collect();
                            for thread in threads {
                                thread.join().expect("a front-end");
                            }
                            started.elapsed()
                        });
                    },
                );
                let batches = batches.load(Ordering::Relaxed).max(1);
                eprintln!(
                    "{name}/{batch}x{stores}: {} lost races per 100 batches",
                    retries.load(Ordering::Relaxed) * 100 / batches
                );
            }
        }
    }
    group.finish();
    let total = PostgresStore::open({
        let mut config = PostgresConfig::new(server.url());
        config.schema = "bench".into();
        config
    })
    .expect("open")
    .entry_count();
    assert_eq!(
        total,
        next_leaf.load(Ordering::Relaxed),
        "every appended leaf is in the log once"
    );
}

criterion_group!(benches, appends);
criterion_main!(benches);
