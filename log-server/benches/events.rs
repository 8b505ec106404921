//! Throughput of audit-event submission (payloads and indexes included) and latency of indexed
//! queries, over the embedded store on this machine's disk, without HTTP (the HTTP figures come
//! from `MODES="events events-batch" tests/bench.sh`).
//!
//! - `submit/batch_100`: eight tasks submit batches of 100 events through `Events::submit`
//!   (leaves and their payloads sequenced and synced, events indexed); throughput is events
//!   per second.
//! - `submit/single`: 64 tasks submit one event at a time, like keep-alive connections posting
//!   `/v1/events`.
//! - `query/<kind>`: one page of 100 from an events index of `CAIRN_BENCH_EVENTS` events
//!   (default 1,000,000) whose timestamps follow the log order with a few seconds of jitter:
//!   by actor (1,000 actors), resource (5,000), action (20), a one-minute and a one-second time
//!   window alone, actor and a 30-minute window, actor and action, and unfiltered; half of the
//!   queries start at a random cursor. Before criterion's means, each kind runs 1,000 random
//!   queries timed one by one and prints p50, p99 and max.
//!
//! Set `CAIRN_BENCH_DIR` to put the stores on another disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::events::store::QueryFilter;
use cairn_log::events::{EventStore, EventStoreConfig, EventSummary, Events};
use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::LogStore;
use cairn_log::{Sequencer, SequencerConfig};
use cairn_spec::event::EventInput;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng as _, SeedableRng as _};

/// 2026-11-25T10:00:00Z.
const BASE_SECONDS: i64 = 1_764_064_800;
const SECOND: i128 = 1_000_000_000;
/// Events are 10 ms apart in the query store (1 M events span 2.8 hours).
const SPACING: i128 = 10_000_000;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("CAIRN_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).expect("bench directory"),
        None => tempfile::tempdir().expect("temporary directory"),
    }
}

/// A well-mixed number of `number` (SplitMix64's finaliser), to pick fields independently.
fn mix(number: u64, salt: u64) -> u64 {
    let mut value = number ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

fn actor(number: u64) -> String {
    format!("user-{}", mix(number, 1) % 1000)
}

fn resource(number: u64) -> String {
    format!("inv-{}", mix(number, 2) % 5000)
}

fn action(number: u64) -> String {
    format!("action-{}", mix(number, 3) % 20)
}

fn event(number: u64) -> EventInput {
    let time = cairn_spec::time::Instant::from_unix(BASE_SECONDS + (number / 100) as i64, 0);
    let json = format!(
        r#"{{"timestamp":"{}","actor":{{"id":"{}","type":"user"}},"action":"{}","resource":{{"type":"invoice","id":"{}"}},"outcome":"success","payload":{{"amount":{number},"note":"benchmark payload of a few dozen bytes"}},"context":{{"ip":"192.0.2.7"}}}}"#,
        time.to_rfc3339(),
        actor(number),
        action(number),
        resource(number),
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
        let event_store = EventStore::open(
            &dir.path().join("events"),
            EventStoreConfig::default(),
            store.clone(),
        )
        .expect("events");
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

/// The summary of query-store event `number`: what a sequenced event leaves in the index.
fn summary(number: u64) -> EventSummary {
    let jitter = (mix(number, 4) % 4000) as i128 - 2000;
    let time = i128::from(BASE_SECONDS) * SECOND + i128::from(number) * SPACING;
    EventSummary {
        index: number,
        event_id: format!("00000000-0000-4000-8000-{number:012}"),
        time_nanos: time + jitter * 1_000_000,
        received_nanos: time + 3 * SECOND,
        actor_id: actor(number),
        resource_type: "invoice".into(),
        resource_id: resource(number),
        action: action(number),
        has_payload: false,
    }
}

type FilterMaker = fn(&mut rand::rngs::StdRng, u64) -> QueryFilter;

fn window(random: &mut rand::rngs::StdRng, count: u64, length: i128) -> (i128, i128) {
    let span = i128::from(count) * SPACING;
    let start = i128::from(BASE_SECONDS) * SECOND + random.gen_range(0..span.max(1));
    (start, start + length)
}

fn cursor(random: &mut rand::rngs::StdRng, count: u64) -> Option<u64> {
    random.gen_bool(0.5).then(|| random.gen_range(0..count))
}

fn query_kinds() -> Vec<(&'static str, FilterMaker)> {
    vec![
        ("actor", |random, count| QueryFilter {
            actor: Some(actor(random.gen())),
            after: cursor(random, count),
            ..QueryFilter::default()
        }),
        ("resource", |random, count| QueryFilter {
            resource: Some(resource(random.gen())),
            after: cursor(random, count),
            ..QueryFilter::default()
        }),
        ("action", |random, count| QueryFilter {
            action: Some(action(random.gen())),
            after: cursor(random, count),
            ..QueryFilter::default()
        }),
        ("time_minute", |random, count| {
            let (from, to) = window(random, count, 60 * SECOND);
            QueryFilter {
                from_nanos: Some(from),
                to_nanos: Some(to),
                ..QueryFilter::default()
            }
        }),
        ("time_second", |random, count| {
            let (from, to) = window(random, count, SECOND);
            QueryFilter {
                from_nanos: Some(from),
                to_nanos: Some(to),
                ..QueryFilter::default()
            }
        }),
        ("actor_and_time", |random, count| {
            let (from, to) = window(random, count, 1800 * SECOND);
            QueryFilter {
                actor: Some(actor(random.gen())),
                from_nanos: Some(from),
                to_nanos: Some(to),
                ..QueryFilter::default()
            }
        }),
        ("actor_and_action", |random, count| QueryFilter {
            actor: Some(actor(random.gen())),
            action: Some(action(random.gen())),
            after: cursor(random, count),
            ..QueryFilter::default()
        }),
        ("all", |random, count| QueryFilter {
            after: cursor(random, count),
            ..QueryFilter::default()
        }),
    ]
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn query(c: &mut Criterion) {
    let count: u64 = std::env::var("CAIRN_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = bench_dir();
    let log: Arc<dyn LogStore> =
        Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("log"))).expect("log"));
    let store = EventStore::open(&dir.path().join("events"), EventStoreConfig::default(), log)
        .expect("events");
    let filling = Instant::now();
    for number in 0..count {
        store
            .index_event(summary(number), number + 1)
            .expect("index");
    }
    store.flush_index(count).expect("flush");
    eprintln!(
        "query store: {count} events indexed and written out in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let mut random = rand::rngs::StdRng::seed_from_u64(2026);
    for (name, make) in query_kinds() {
        let mut times = Vec::with_capacity(1000);
        let mut found = 0;
        for _ in 0..1000 {
            let filter = make(&mut random, count);
            let started = Instant::now();
            let page = store.query(&filter, 100, 100_000).expect("query");
            times.push(started.elapsed());
            found += page.events.len();
        }
        times.sort_unstable();
        eprintln!(
            "query/{name}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over 1000 queries \
             (one page of 100; {:.1} events per page)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.last().expect("1000 times").as_secs_f64() * 1e3,
            found as f64 / 1000.0,
        );
    }
    let mut group = c.benchmark_group("query");
    for (name, make) in query_kinds() {
        group.bench_function(name, |b| {
            b.iter(|| {
                let filter = make(&mut random, count);
                store.query(&filter, 100, 100_000).expect("query")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, submit, query);
criterion_main!(benches);
