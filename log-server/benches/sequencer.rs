//! Throughput of the sequencer over the embedded store, on this machine's disk.
//!
//! - `single_leaf/<tasks>`: that many tasks each submit 256-byte leaves one at a time (like
//!   keep-alive HTTP connections posting `/add`); throughput is leaves per second.
//! - `batch_1000/<store>`: eight tasks submit batches of 1000 leaves, into a fresh store and into
//!   one that already holds (and indexes) a million entries: the difference is what dedup costs
//!   once the index no longer fits in the in-memory table.
//! - `dedup_lookup/<kind>`: `find_duplicates` per key on the million-entry store, for keys that
//!   are absent (the Bloom filter answers), present (a run is read and the entry confirmed), and
//!   present once the level-0 hashes exist (confirmed from a 32-byte read).
//!
//! After each measurement the bench prints the leaves per fsync it saw. Set `CAIRN_BENCH_DIR` to
//! put the stores on another disk (default: the system temporary directory).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::{DedupKey, Hash, LogStore, NewEntry, SequenceStore, TreeStore};
use cairn_log::{Sequencer, SequencerConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const LEAF_BYTES: usize = 256;

/// A unique 256-byte leaf.
fn leaf(run: u64, number: u64) -> Vec<u8> {
    let mut bytes = vec![b'.'; LEAF_BYTES];
    bytes[..8].copy_from_slice(&run.to_le_bytes());
    bytes[8..16].copy_from_slice(&number.to_le_bytes());
    bytes
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("CAIRN_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).expect("bench directory"),
        None => tempfile::tempdir().expect("temporary directory"),
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<EmbeddedStore>,
    sequencer: Arc<Sequencer>,
    next_leaf: AtomicU64,
    run: u64,
}

impl Rig {
    fn new(runtime: &tokio::runtime::Runtime, preload: u64) -> Rig {
        let dir = bench_dir();
        let config = EmbeddedConfig::new(dir.path().join("log"));
        if preload > 0 {
            let store = EmbeddedStore::open(config.clone()).expect("open");
            let mut next = 0;
            while next < preload {
                let end = (next + 8192).min(preload);
                let entries: Vec<NewEntry> = (next..end)
                    .map(|number| NewEntry::new(leaf(0, number), None))
                    .collect();
                store.append_entries(next, &entries).expect("preload");
                next = end;
            }
            store.close().expect("close");
        }
        let store = Arc::new(EmbeddedStore::open(config).expect("open"));
        let dyn_store: Arc<dyn LogStore> = store.clone();
        // Started inside the runtime, so that answers go out through its answering task, as
        // in the server.
        let _runtime = runtime.enter();
        let sequencer =
            Arc::new(Sequencer::start(dyn_store, SequencerConfig::default()).expect("start"));
        Rig {
            _dir: dir,
            store,
            sequencer,
            next_leaf: AtomicU64::new(0),
            run: 1,
        }
    }

    fn take_leaves(&self, count: u64) -> u64 {
        self.next_leaf.fetch_add(count, Ordering::Relaxed)
    }

    fn report(&self, name: &str, before: (u64, u64, Duration), elapsed: Duration) {
        let (leaves_before, batches_before, cpu_before) = before;
        let leaves = self.store.entry_count() - leaves_before;
        let batches = self.sequencer.commit_figures().batches - batches_before;
        let cpu = process_cpu().saturating_sub(cpu_before);
        eprintln!(
            "{name}: {leaves} leaves in {batches} fsyncs over {elapsed:.2?}: {:.0} leaves/s, {:.0} fsyncs/s, {:.1} leaves per fsync; {:.2} µs CPU per leaf; dedup memory {} KiB",
            leaves as f64 / elapsed.as_secs_f64(),
            batches as f64 / elapsed.as_secs_f64(),
            leaves as f64 / batches.max(1) as f64,
            cpu.as_secs_f64() * 1e6 / leaves.max(1) as f64,
            self.store.dedup_memory_bytes() / 1024,
        );
    }

    fn mark(&self) -> (u64, u64, Duration) {
        (
            self.store.entry_count(),
            self.sequencer.commit_figures().batches,
            process_cpu(),
        )
    }
}

/// CPU time this process has used (user + system), from `/proc/self/stat`: on a shared
/// machine, CPU per leaf says more than wall-clock throughput. Zero where unavailable.
fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |position: usize| {
        fields
            .get(position)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name; the
    // kernel counts them in USER_HZ, which is 100 on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn single_leaf(criterion: &mut Criterion) {
    let runtime = runtime();
    let mut group = criterion.benchmark_group("single_leaf");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(1));
    for tasks in [64u64, 256] {
        // Made on first use, so that a filtered-out bench costs nothing.
        let mut rig: Option<(Rig, (u64, u64, Duration))> = None;
        let mut total_elapsed = Duration::ZERO;
        group.bench_with_input(
            BenchmarkId::from_parameter(tasks),
            &tasks,
            |bencher, &tasks| {
                let (rig, _) = rig.get_or_insert_with(|| {
                    let rig = Rig::new(&runtime, 0);
                    let before = rig.mark();
                    (rig, before)
                });
                bencher.iter_custom(|iterations| {
                    let per_task = iterations.div_ceil(tasks);
                    let first = rig.take_leaves(per_task * tasks);
                    let started = Instant::now();
                    runtime.block_on(async {
                        let handles: Vec<_> = (0..tasks)
                            .map(|task| {
                                let sequencer = Arc::clone(&rig.sequencer);
                                let run = rig.run;
                                tokio::spawn(async move {
                                    for number in 0..per_task {
                                        let entry = NewEntry::new(
                                            leaf(run, first + task * per_task + number),
                                            None,
                                        );
                                        let answer = sequencer.add(entry).await.expect("sequenced");
                                        assert!(!answer.duplicate);
                                    }
                                })
                            })
                            .collect();
                        for handle in handles {
                            handle.await.expect("task");
                        }
                    });
                    let elapsed = started.elapsed();
                    total_elapsed += elapsed;
                    elapsed
                });
            },
        );
        if let Some((rig, before)) = rig {
            rig.report(&format!("single_leaf/{tasks}"), before, total_elapsed);
            runtime
                .block_on(rig.sequencer.shutdown())
                .expect("shutdown");
        }
    }
    group.finish();
}

fn batch_1000(criterion: &mut Criterion) {
    let runtime = runtime();
    let mut group = criterion.benchmark_group("batch_1000");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(1000));
    for (name, preload) in [("fresh", 0u64), ("indexed_1M", 1_000_000)] {
        let mut rig: Option<(Rig, (u64, u64, Duration))> = None;
        let mut total_elapsed = Duration::ZERO;
        group.bench_function(name, |bencher| {
            let (rig, _) = rig.get_or_insert_with(|| {
                let rig = Rig::new(&runtime, preload);
                let before = rig.mark();
                (rig, before)
            });
            bencher.iter_custom(|iterations| {
                const TASKS: u64 = 8;
                let per_task = iterations.div_ceil(TASKS);
                let first = rig.take_leaves(per_task * TASKS * 1000);
                let started = Instant::now();
                runtime.block_on(async {
                    let handles: Vec<_> = (0..TASKS)
                        .map(|task| {
                            let sequencer = Arc::clone(&rig.sequencer);
                            let run = rig.run;
                            tokio::spawn(async move {
                                for round in 0..per_task {
                                    let base = first + (task * per_task + round) * 1000;
                                    let entries = (base..base + 1000)
                                        .map(|number| NewEntry::new(leaf(run, number), None))
                                        .collect();
                                    let answers =
                                        sequencer.add_batch(entries).await.expect("sequenced");
                                    assert!(answers.iter().all(|answer| !answer.duplicate));
                                }
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await.expect("task");
                    }
                });
                let elapsed = started.elapsed();
                total_elapsed += elapsed;
                elapsed
            });
        });
        if let Some((rig, before)) = rig {
            rig.report(&format!("batch_1000/{name}"), before, total_elapsed);
            runtime
                .block_on(rig.sequencer.shutdown())
                .expect("shutdown");
        }
    }
    group.finish();
}

fn dedup_lookup(criterion: &mut Criterion) {
    let runtime = runtime();
    // Made on first use, so that a filtered-out bench does not build a million-entry store.
    let mut rig: Option<Rig> = None;
    let mut group = criterion.benchmark_group("dedup_lookup");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1000));
    let absent: Vec<Hash> = (0..1000)
        .map(|number| Hash::of_leaf(&leaf(99, number)))
        .collect();
    let present: Vec<Hash> = (0..1000)
        .map(|number| Hash::of_leaf(&leaf(0, number * 997)))
        .collect();
    for (name, hashes) in [("absent", &absent), ("present", &present)] {
        let keys: Vec<DedupKey<'_>> = hashes.iter().map(DedupKey::Leaf).collect();
        group.bench_function(name, |bencher| {
            let rig = rig.get_or_insert_with(|| Rig::new(&runtime, 1_000_000));
            bencher.iter(|| {
                let hits = rig.store.find_duplicates(&keys).expect("lookup");
                assert_eq!(
                    hits.iter().flatten().count(),
                    if name == "present" { 1000 } else { 0 }
                );
            })
        });
    }
    // Once the integrator has written the level-0 hashes, a present leaf is confirmed from them.
    let keys: Vec<DedupKey<'_>> = present.iter().map(DedupKey::Leaf).collect();
    group.bench_function("present_with_level0_hashes", |bencher| {
        let rig = rig.get_or_insert_with(|| Rig::new(&runtime, 1_000_000));
        let mut next = rig.store.hash_count(0).expect("count");
        while next < 1_000_000 {
            let hashes: Vec<Hash> = (next..next + 50_000)
                .map(|number| Hash::of_leaf(&leaf(0, number)))
                .collect();
            rig.store
                .append_hashes(0, next, &hashes)
                .expect("level-0 hashes");
            next += 50_000;
        }
        bencher.iter(|| {
            let hits = rig.store.find_duplicates(&keys).expect("lookup");
            assert_eq!(hits.iter().flatten().count(), 1000);
        })
    });
    group.finish();
    if let Some(rig) = rig {
        eprintln!(
            "dedup_lookup: index memory {} KiB for 1M entries",
            rig.store.dedup_memory_bytes() / 1024
        );
        runtime
            .block_on(rig.sequencer.shutdown())
            .expect("shutdown");
    }
}

criterion_group!(benches, single_leaf, batch_1000, dedup_lookup);
criterion_main!(benches);
