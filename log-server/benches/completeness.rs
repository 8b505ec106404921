//! The cost of keeping the completeness index (issue 29), against submitting the same events,
//! in one run on this machine's disk:
//!
//! - `index/submit_1024`: 1,024 audit events submitted through `Events::submit` (8 tasks,
//!   batches of 128: leaves, contents records, sync, events index) — the baseline for batches;
//! - `index/submit_single_1024`: the same 1,024 events one event a call (8 tasks), as one
//!   event a request submits them — the baseline for single events;
//! - `index/keep_1024`: the index brought over 1,024 new events, as the integrator does before
//!   each checkpoint: their entries and contents records read back from the store, leaves
//!   parsed, four keys an event added to the map, its root recomputed, the index file written
//!   and synced.
//!
//! Before both, `CAIRN_BENCH_EVENTS` events (default 100,000: 1,000 actors, 5,000 resources,
//! 20 actions) are submitted and indexed, so that the map holds tens of thousands of keys.
//! Set `CAIRN_BENCH_DIR` to put the stores on another disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::completeness::CompletenessIndex;
use cairn_log::events::{EventStore, EventStoreConfig, Events};
use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::LogStore;
use cairn_log::{Sequencer, SequencerConfig};
use cairn_spec::event::EventInput;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CHUNK: u64 = 1024;
const TASKS: u64 = 8;

fn mix(number: u64, salt: u64) -> u64 {
    let mut value = number ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

fn event(number: u64) -> EventInput {
    let json = format!(
        r#"{{"timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"user-{}","type":"user"}},"action":"action-{}","resource":{{"type":"invoice","id":"inv-{}"}},"outcome":"success","payload":{{"amount":{number}}},"context":{{"ip":"192.0.2.7"}}}}"#,
        mix(number, 1) % 1000,
        mix(number, 3) % 20,
        mix(number, 2) % 5000,
    );
    EventInput::parse(json.as_bytes()).expect("valid event")
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<dyn LogStore>,
    events: Arc<Events>,
    index: Arc<CompletenessIndex>,
    next: AtomicU64,
}

impl Rig {
    fn new() -> Rig {
        let dir = match std::env::var_os("CAIRN_BENCH_DIR") {
            Some(dir) => tempfile::tempdir_in(dir).expect("bench directory"),
            None => tempfile::tempdir().expect("temporary directory"),
        };
        let store: Arc<dyn LogStore> = Arc::new(
            EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("log"))).expect("open"),
        );
        let sequencer =
            Arc::new(Sequencer::start(store.clone(), SequencerConfig::default()).expect("start"));
        let events_dir = dir.path().join("events");
        let event_store = EventStore::open(&events_dir, EventStoreConfig::default(), store.clone())
            .expect("events");
        let index = CompletenessIndex::open(&events_dir, event_store.clone()).expect("index");
        Rig {
            events: Arc::new(Events::new(event_store, sequencer, store.clone())),
            store,
            index,
            _dir: dir,
            next: AtomicU64::new(0),
        }
    }

    /// Submits `count` events from `TASKS` tasks, `batch` a call; the time it took.
    async fn submit(self: &Arc<Self>, count: u64, batch: u64) -> Duration {
        let started = Instant::now();
        let per_task = count / TASKS;
        let mut handles = Vec::new();
        for _ in 0..TASKS {
            let rig = self.clone();
            handles.push(tokio::spawn(async move {
                let mut left = per_task;
                while left > 0 {
                    let batch = left.min(batch);
                    let first = rig.next.fetch_add(batch, Ordering::Relaxed);
                    let inputs = (first..first + batch).map(event).collect();
                    rig.events.submit(inputs, "bench").await.expect("submit");
                    left -= batch;
                }
            }));
        }
        for handle in handles {
            handle.await.expect("task");
        }
        started.elapsed()
    }

    /// Brings the index to the log's size; the time it took.
    fn keep(&self) -> Duration {
        let started = Instant::now();
        self.index
            .extensions_at(self.store.as_ref(), self.store.entry_count())
            .expect("index");
        started.elapsed()
    }
}

fn index(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rig = Arc::new(Rig::new());
    let preload: u64 = std::env::var("CAIRN_BENCH_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100_000);
    let started = Instant::now();
    runtime.block_on(rig.submit(preload - preload % (TASKS * 128), 128));
    rig.keep();
    eprintln!(
        "preloaded and indexed {} events in {:.1} s ({:?})",
        rig.store.entry_count(),
        started.elapsed().as_secs_f64(),
        rig.index
    );
    let mut group = c.benchmark_group("index");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(CHUNK));
    group.bench_function("submit_1024", |b| {
        b.iter_custom(|rounds| {
            let mut total = Duration::ZERO;
            for _ in 0..rounds {
                total += runtime.block_on(rig.submit(CHUNK, 128));
                rig.keep();
            }
            total
        })
    });
    group.bench_function("submit_single_1024", |b| {
        b.iter_custom(|rounds| {
            let mut total = Duration::ZERO;
            for _ in 0..rounds {
                total += runtime.block_on(rig.submit(CHUNK, 1));
                rig.keep();
            }
            total
        })
    });
    group.bench_function("keep_1024", |b| {
        b.iter_custom(|rounds| {
            let mut total = Duration::ZERO;
            for _ in 0..rounds {
                runtime.block_on(rig.submit(CHUNK, 128));
                total += rig.keep();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, index);
criterion_main!(benches);
