//! Cost of keeping the event index (completeness.md): adding each event's items to the map and
//! recomputing the map root once per publish, on a map that already holds a million events.
//!
//! The model: every event carries four keys (actor, action, resource id, resource type) drawn
//! from 50,000 actors, 20 actions, 200,000 resources and 50 resource types; the log publishes
//! every 1,024 events. One iteration is one publish: 1,024 events, 4,096 items, one root.
//! Proofs: making and verifying a key's map proof on that map, and building and verifying the
//! completeness proof of a key with 10,000 events (its whole list, every item checked against
//! the answer), against the floor of any verifier, the list root of its 10,000 items; and the
//! proof of a page of 100 events of a key with 2^20 (a long list).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cairn_spec::completeness::{
    action_key, list_root, CompletenessProof, IndexMap, Item, KeyProof, MapKey,
};
use cairn_spec::Hash;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};

const PREFILL_EVENTS: u64 = 1 << 20;
const PUBLISH_EVENTS: u64 = 1024;

fn key(kind: &str, value: u64) -> MapKey {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update(value.to_be_bytes());
    MapKey(hasher.finalize().into())
}

/// The four keys of event `leaf`, spread as the model says (a cheap mix, not a random source,
/// so that runs compare).
fn keys_of(leaf: u64) -> [MapKey; 4] {
    let mix = leaf.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    [
        key("actor", mix % 50_000),
        action_key(["read", "write", "login", "logout", "delete"][(mix >> 20) as usize % 5]),
        key("resource", (mix >> 8) % 200_000),
        key("type", (mix >> 40) % 50),
    ]
}

fn item(leaf: u64) -> Item {
    Item {
        leaf_index: leaf,
        leaf_hash: Hash::of_leaf(&leaf.to_be_bytes()),
    }
}

/// Adds the events `leaves` as the integrator does (cairn-log `completeness::add_all`): their
/// (key, item) pairs sorted by key, each key's run added in one walk.
fn add_events(map: &mut IndexMap, leaves: std::ops::Range<u64>) {
    let mut pairs: Vec<(MapKey, Item)> = leaves
        .flat_map(|leaf| keys_of(leaf).map(|key| (key, item(leaf))))
        .collect();
    pairs.sort_by_key(|(key, _)| *key);
    let mut items = Vec::new();
    for run in pairs.chunk_by(|a, b| a.0 == b.0) {
        items.clear();
        items.extend(run.iter().map(|(_, item)| *item));
        map.add_run(run[0].0, &items)
            .expect("leaves come in log order");
    }
}

fn prefilled() -> IndexMap {
    let mut map = IndexMap::new();
    let mut leaf = 0;
    while leaf < PREFILL_EVENTS {
        add_events(&mut map, leaf..leaf + PUBLISH_EVENTS);
        leaf += PUBLISH_EVENTS;
    }
    map.root();
    map
}

fn index(c: &mut Criterion) {
    let mut map = prefilled();
    eprintln!(
        "index map: {} keys after {PREFILL_EVENTS} events",
        map.key_count()
    );
    let mut next = PREFILL_EVENTS;
    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Elements(PUBLISH_EVENTS));
    group.bench_function(
        "publish 1024 events (4 keys each) into a 1M-event map",
        |b| {
            b.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    let start = Instant::now();
                    add_events(&mut map, next..next + PUBLISH_EVENTS);
                    black_box(map.root());
                    spent += start.elapsed();
                    next += PUBLISH_EVENTS;
                }
                spent
            })
        },
    );
    group.bench_function(
        "publish 1024 events into a 1M-event map, one walk per item (baseline)",
        |b| {
            b.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    let start = Instant::now();
                    for leaf in next..next + PUBLISH_EVENTS {
                        for key in keys_of(leaf) {
                            map.add(key, item(leaf)).expect("leaves come in log order");
                        }
                    }
                    black_box(map.root());
                    spent += start.elapsed();
                    next += PUBLISH_EVENTS;
                }
                spent
            })
        },
    );
    group.throughput(Throughput::Elements(1));
    let root = map.root();
    let probe = keys_of(12_345)[0];
    group.bench_function("prove a key's list head", |b| {
        b.iter(|| black_box(map.prove(&probe)))
    });
    let proof = map.prove(&probe);
    group.bench_function("verify a key's map proof", |b| {
        b.iter(|| black_box(proof.verify(&probe, &root).expect("valid")))
    });
    group.finish();
}

/// A key with 10,000 events among the million-event map's: its completeness proof over the
/// whole tree, built and verified (with the answer's 10,000 leaf hashes matched).
fn ten_thousand(c: &mut Criterion) {
    let mut map = prefilled();
    let key = key("busy actor", 0);
    let mut list = Vec::with_capacity(10_000);
    let mut size = PREFILL_EVENTS;
    for _ in 0..10_000u64 {
        let item = Item {
            leaf_index: size,
            leaf_hash: Hash::of_leaf(&size.to_be_bytes()),
        };
        map.add(key, item).expect("in order");
        list.push(item);
        size += 1;
    }
    let root = map.root();
    let build = |map: &mut IndexMap| CompletenessProof {
        field: "actor".into(),
        value: "busy actor".into(),
        from: 0,
        to: size,
        keys: vec![KeyProof::build(key, &map.prove(&key), &list, 0, size).expect("builds")],
        received: None,
    };
    let proof = build(&mut map);
    let answer: Vec<(u64, Hash)> = list
        .iter()
        .map(|item| (item.leaf_index, item.leaf_hash))
        .collect();
    let mut group = c.benchmark_group("completeness");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("floor: the list root of 10,000 items", |b| {
        b.iter(|| black_box(list_root(&list)))
    });
    group.bench_function("build the proof of a key with 10,000 events", |b| {
        b.iter(|| black_box(build(&mut map)))
    });
    group.bench_function("verify the proof of a key with 10,000 events", |b| {
        b.iter(|| black_box(proof.verify(&root, size, &answer).expect("complete")))
    });
    group.finish();
}

/// A key with 2^20 events (an `action` of a large log): the proof of a page of 100 of them (a
/// query answer's run and its range proof) is built from the whole list, and verifies in
/// time that does not grow with the list.
fn long_list(c: &mut Criterion) {
    const LONG: u64 = 1 << 20;
    const PAGE: u64 = 100;
    let mut map = IndexMap::new();
    let key = key("busy action", 0);
    let list: Vec<Item> = (0..LONG).map(item).collect();
    map.add_run(key, &list).expect("in order");
    let root = map.root();
    let (from, to) = (LONG / 2, LONG / 2 + PAGE);
    let build = |map: &mut IndexMap| CompletenessProof {
        field: "action".into(),
        value: "busy action".into(),
        from,
        to,
        keys: vec![KeyProof::build(key, &map.prove(&key), &list, from, to).expect("builds")],
        received: None,
    };
    let proof = build(&mut map);
    let answer: Vec<(u64, Hash)> = list[from as usize..to as usize]
        .iter()
        .map(|item| (item.leaf_index, item.leaf_hash))
        .collect();
    let mut group = c.benchmark_group("completeness");
    group.sample_size(10).throughput(Throughput::Elements(PAGE));
    group.bench_function("build the proof of 100 events of a key with 2^20", |b| {
        b.iter(|| black_box(build(&mut map)))
    });
    group.bench_function("verify the proof of 100 events of a key with 2^20", |b| {
        b.iter(|| black_box(proof.verify(&root, LONG, &answer).expect("complete")))
    });
    group.finish();
}

criterion_group!(benches, index, ten_thousand, long_list);
criterion_main!(benches);
