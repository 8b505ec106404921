//! Throughput of audit-event submission (payload and indexes included) and latency of indexed
//! queries, over the embedded store on this machine's disk, without HTTP.
//!
//! - `submit/batch_100`: eight tasks submit batches of 100 events through `Events::submit`
//!   (payloads stored and flushed, leaves sequenced, indexes written and flushed); throughput is
//!   events per second.
//! - `submit/single`: 64 tasks submit one event at a time, like keep-alive connections posting
//!   `/v1/events`.
//! - `query/<kind>`: one page of 100 from an events database of `CAIRN_BENCH_EVENTS` events
//!   (default 1,000,000): by actor, by action, by actor and a time window, and unfiltered.
//!
//! Set `CAIRN_BENCH_DIR` to put the stores on another disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::events::store::QueryFilter;
use cairn_log::events::{EventStore, Events};
use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::LogStore;
use cairn_log::{Sequencer, SequencerConfig};
use cairn_spec::event::{EventId, EventInput};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("CAIRN_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).expect("bench directory"),
        None => tempfile::tempdir().expect("temporary directory"),
    }
}

fn event(number: u64) -> EventInput {
    let json = format!(
        r#"{{"timestamp":"2026-11-25T10:{:02}:{:02}Z","actor":{{"id":"user-{}","type":"user"}},"action":"action-{}","resource":{{"type":"invoice","id":"inv-{}"}},"outcome":"success","payload":{{"amount":{number},"note":"benchmark payload of a few dozen bytes"}},"context":{{"ip":"192.0.2.7"}}}}"#,
        (number / 60) % 60,
        number % 60,
        number % 1000,
        number % 20,
        number % 5000,
    );
    EventInput::parse(json.as_bytes()).expect("valid event")
}

struct Rig {
    _dir: tempfile::TempDir,
    events: Arc<Events>,
    next: AtomicU64,
}

impl Rig {
    fn new() -> Rig {
        let dir = bench_dir();
        let store: Arc<dyn LogStore> = Arc::new(
            EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("log"))).expect("open"),
        );
        let sequencer =
            Arc::new(Sequencer::start(store.clone(), SequencerConfig::default()).expect("start"));
        let event_store = EventStore::open(&dir.path().join("events")).expect("events");
        Rig {
            events: Arc::new(Events::new(event_store, sequencer, store)),
            _dir: dir,
            next: AtomicU64::new(0),
        }
    }
}

fn submit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rig = Arc::new(Rig::new());
    let mut group = c.benchmark_group("submit");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, tasks, batch) in [("batch_100", 8u64, 100u64), ("single", 64, 1)] {
        group.throughput(Throughput::Elements(tasks * batch));
        group.bench_function(name, |b| {
            b.iter_custom(|rounds| {
                let rig = rig.clone();
                runtime.block_on(async move {
                    let started = Instant::now();
                    let mut handles = Vec::new();
                    for _ in 0..tasks {
                        let rig = rig.clone();
                        handles.push(tokio::spawn(async move {
                            for _ in 0..rounds {
                                let first = rig.next.fetch_add(batch, Ordering::Relaxed);
                                let inputs = (first..first + batch).map(event).collect();
                                rig.events.submit(inputs, "bench").await.expect("submit");
                            }
                        }));
                    }
                    for handle in handles {
                        handle.await.expect("task");
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();
}

fn query(c: &mut Criterion) {
    let count: u64 = std::env::var("CAIRN_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = bench_dir();
    let store = EventStore::open(&dir.path().join("events")).expect("events");
    for number in 0..count {
        let (leaf, _) = event(number)
            .into_leaf(
                EventId::new_v4(rand::random()),
                cairn_spec::time::Instant::from_unix(1_764_064_800, 0),
                "bench",
            )
            .expect("leaf");
        store.index_event(number, &leaf).expect("index");
    }
    store.flush_blocking().expect("flush");
    let window = |minute: i128| 1_764_064_800i128 * 1_000_000_000 + minute * 60_000_000_000;
    let cases = [
        (
            "actor",
            QueryFilter {
                actor: Some("user-517".into()),
                ..QueryFilter::default()
            },
        ),
        (
            "action",
            QueryFilter {
                action: Some("action-7".into()),
                after: Some(count / 2),
                ..QueryFilter::default()
            },
        ),
        (
            "actor_and_time",
            QueryFilter {
                actor: Some("user-42".into()),
                from_nanos: Some(window(20)),
                to_nanos: Some(window(40)),
                ..QueryFilter::default()
            },
        ),
        ("all", QueryFilter::default()),
    ];
    let mut group = c.benchmark_group("query");
    for (name, filter) in cases {
        group.bench_function(name, |b| {
            b.iter(|| store.query(&filter, 100, 100_000).expect("query"))
        });
    }
    group.finish();
}

criterion_group!(benches, submit, query);
criterion_main!(benches);
