//! The tests of the events database ([`super`]): queries against a brute-force scan, catch-ups
//! cut mid-way, admin events logged before a crash, and older directories refused.
use super::*;
use crate::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use crate::storage::LogStore;
use crate::storage::NewEntry;
use cairn_spec::event::{EventId, EventInput};
use cairn_spec::time::Instant;
use rand::{Rng as _, SeedableRng as _};

fn input(random: &mut rand::rngs::StdRng) -> EventInput {
    let payload = if random.gen_bool(0.5) {
        format!(r#","payload":{{"n":{}}}"#, random.gen_range(0..1000))
    } else {
        String::new()
    };
    let json = format!(
        r#"{{"timestamp":"2026-11-25T{:02}:{:02}:00Z","actor":{{"id":"a{}","type":"user"}},"action":"act{}","resource":{{"type":"t","id":"r{}"}},"outcome":"success"{payload}}}"#,
        random.gen_range(0..24),
        random.gen_range(0..60),
        random.gen_range(0..4),
        random.gen_range(0..3),
        random.gen_range(0..5),
    );
    EventInput::parse(json.as_bytes()).expect("valid")
}

fn config() -> EventStoreConfig {
    EventStoreConfig {
        index: IndexConfig {
            table_events: 37,
            max_runs: 3,
        },
        privacy: None,
    }
}

fn open_log(dir: &Path) -> Arc<dyn LogStore> {
    Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.join("log"))).expect("log"))
}

/// `leaf` appended to `log` at its end, with `payload` beside it.
fn append(log: &dyn LogStore, leaf: &EventLeaf, payload: Option<Vec<u8>>) -> u64 {
    let index = log.entry_count();
    let entry = NewEntry::new(leaf.leaf.clone(), None).with_payload(payload);
    log.append_entries(index, &[entry]).expect("append");
    index
}

fn all_pages(store: &EventStore, filter: &QueryFilter, limit: usize, scan: usize) -> Vec<u64> {
    let mut filter = filter.clone();
    let mut found = Vec::new();
    loop {
        let page = store.query(&filter, limit, scan).expect("query");
        assert!(page.events.len() <= limit);
        found.extend(page.events.iter().map(|e| e.index));
        match page.next_after {
            Some(after) => filter.after = Some(after),
            None => return found,
        }
    }
}

fn filters(random: &mut rand::rngs::StdRng) -> Vec<QueryFilter> {
    let base = Instant::parse_rfc3339("2026-11-25T00:00:00Z")
        .expect("time")
        .unix_nanos();
    let hour = 3_600_000_000_000i128;
    let mut filters = vec![QueryFilter::default()];
    for _ in 0..200 {
        filters.push(QueryFilter {
            actor: random
                .gen_bool(0.4)
                .then(|| format!("a{}", random.gen_range(0..5))),
            resource: random
                .gen_bool(0.4)
                .then(|| format!("r{}", random.gen_range(0..6))),
            action: random
                .gen_bool(0.4)
                .then(|| format!("act{}", random.gen_range(0..4))),
            from_nanos: random
                .gen_bool(0.4)
                .then(|| base + random.gen_range(0..24) * hour),
            to_nanos: random
                .gen_bool(0.4)
                .then(|| base + random.gen_range(0..24) * hour),
            after: random.gen_bool(0.2).then(|| random.gen_range(0..1200)),
            below: random.gen_bool(0.2).then(|| random.gen_range(0..1200)),
        });
    }
    filters
}

/// Every query, paged with random limits and scan budgets, against a brute-force scan;
/// every event found by ID with its payload.
fn check(
    store: &EventStore,
    events: &[(EventSummary, Option<Vec<u8>>)],
    filters: &[QueryFilter],
    random: &mut rand::rngs::StdRng,
) {
    for filter in filters {
        let expected: Vec<u64> = events
            .iter()
            .filter(|(summary, _)| filter.matches(summary))
            .map(|(summary, _)| summary.index)
            .collect();
        let limit = random.gen_range(1..30);
        let scan = random.gen_range(1..200);
        assert_eq!(
            all_pages(store, filter, limit, scan),
            expected,
            "{filter:?}"
        );
    }
    for (summary, payload) in events {
        let found = store.find(&summary.event_id).expect("find").expect("found");
        assert_eq!(found.index, summary.index);
        assert_eq!(
            store.summary(summary.index).expect("read").as_ref(),
            Some(&found)
        );
        assert_eq!(&store.payload(&found).expect("payload"), payload);
    }
}

#[test]
fn paged_queries_equal_a_brute_force_scan_through_runs_merges_reopen_and_rebuild() {
    let dir = tempfile::tempdir().expect("dir");
    let log = open_log(dir.path());
    let events_dir = dir.path().join("events");
    let mut random = rand::rngs::StdRng::seed_from_u64(7);
    let filters = filters(&mut random);
    let mut events = Vec::new();
    {
        let store = EventStore::open(&events_dir, config(), log.clone()).expect("open");
        for round in 0..400 {
            // Raw leaves between events leave gaps in the indices.
            for _ in 0..random.gen_range(0..3) {
                let raw = format!("raw {round} {}", random.gen::<u64>()).into_bytes();
                log.append_entries(log.entry_count(), &[NewEntry::new(raw, None)])
                    .expect("append");
            }
            let event = input(&mut random);
            let (leaf, payload) = leaf_of(event, "p", &mut random);
            let ticket = store
                .begin_submission(log.entry_count())
                .expect("not overloaded");
            let index = append(log.as_ref(), &leaf, payload.clone());
            let summary = EventSummary::of_leaf(index, leaf);
            store
                .index_event(summary.clone(), log.entry_count())
                .expect("index");
            drop(ticket);
            events.push((summary, payload));
            if round % 97 == 0 {
                check(&store, &events, &filters[..20], &mut random);
            }
        }
        check(&store, &events, &filters, &mut random);
        store.close(log.entry_count()).expect("close");
    }
    // Reopened: everything is in runs.
    let store = EventStore::open(&events_dir, config(), log.clone()).expect("reopen");
    check(&store, &events, &filters, &mut random);
    drop(store);
    // The index deleted: rebuilt from the log, payloads still beside their leaves.
    std::fs::remove_dir_all(events_dir.join("index")).expect("delete the index");
    let store = EventStore::open(&events_dir, config(), log.clone()).expect("rebuild");
    check(&store, &events, &filters, &mut random);
}

/// A catch-up that fills a table cuts it mid-way, writes that run out, and the process dies
/// with the rest in memory: the next catch-up indexes the rest, every payload found.
#[test]
fn a_catch_up_that_cuts_a_table_is_finished_by_the_next_one() {
    let dir = tempfile::tempdir().expect("dir");
    let log = open_log(dir.path());
    let events_dir = dir.path().join("events");
    let mut random = rand::rngs::StdRng::seed_from_u64(11);
    let events = 60; // a table of 37, cut during the first catch-up
    let mut expected = Vec::new();
    for n in 0..events {
        let json = format!(
            r#"{{"timestamp":"2026-11-25T00:00:00Z","actor":{{"id":"a","type":"user"}},"action":"act","resource":{{"type":"t","id":"r"}},"outcome":"success","payload":{{"n":{n}}}}}"#
        );
        let input = EventInput::parse(json.as_bytes()).expect("valid");
        let (leaf, payload) = leaf_of(input, "p", &mut random);
        append(log.as_ref(), &leaf, payload.clone());
        expected.push((leaf.event_id.as_str().to_string(), payload));
    }
    {
        let _store = EventStore::open(&events_dir, config(), log.clone()).expect("first catch-up");
        let index_dir = events_dir.join("index");
        let written = (0..500).any(|_| {
            let runs = std::fs::read_dir(&index_dir)
                .expect("index dir")
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().ends_with(".evr"));
            if !runs {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            runs
        });
        assert!(written, "the cut table was written out");
    }
    let store = EventStore::open(&events_dir, config(), log).expect("second catch-up");
    for (id, payload) in &expected {
        let found = store.find(id).expect("find").expect("indexed");
        assert_eq!(&store.payload(&found).expect("payload"), payload, "{id}");
    }
}

/// An admin event as the server records it: by `admin`, who is also its actor.
fn admin_event(
    admin: &str,
    action: &str,
    resource: (&str, &str),
    details: serde_json::Value,
    random: &mut rand::rngs::StdRng,
) -> (EventLeaf, Option<Vec<u8>>) {
    let input = crate::events::submit::audit_event(admin, action, resource.0, resource.1, details)
        .expect("valid");
    leaf_of(input, admin, random)
}

/// `input` as a leaf submitted by `submitted_by`, with a random event ID.
fn leaf_of(
    input: EventInput,
    submitted_by: &str,
    random: &mut rand::rngs::StdRng,
) -> (EventLeaf, Option<Vec<u8>>) {
    input
        .into_leaf(
            EventId::new_v4(random.gen()),
            Instant::from_unix(1_764_000_000, 0),
            submitted_by,
        )
        .expect("leaf")
}

/// The crash windows of admin actions: each action's event is logged, and the process dies
/// before the action took effect (the hold never set, the payload never erased). Opening
/// puts the hold in force and finishes the erasure; a record the server did not write is
/// ignored.
#[test]
fn admin_events_logged_before_a_crash_take_effect_at_open() {
    use crate::events::records::{HOLD_LIFT, HOLD_SET, PAYLOAD_ERASE};
    let dir = tempfile::tempdir().expect("dir");
    let log = open_log(dir.path());
    let events_dir = dir.path().join("events");
    let mut random = rand::rngs::StdRng::seed_from_u64(23);
    let json = r#"{"timestamp":"2026-11-25T00:00:00Z","actor":{"id":"a","type":"user"},"action":"read","resource":{"type":"t","id":"r"},"outcome":"success","payload":{"secret":1}}"#;
    let input = EventInput::parse(json.as_bytes()).expect("valid");
    let (target, payload) = leaf_of(input, "p", &mut random);
    let target_id = target.event_id.as_str().to_string();
    let target_index = append(log.as_ref(), &target, payload);
    let (erase, payload) = admin_event(
        "root",
        PAYLOAD_ERASE,
        ("event", &target_id),
        serde_json::json!({"event_id": target_id, "index": target_index, "reason": "gdpr"}),
        &mut random,
    );
    let erase_id = erase.event_id.as_str().to_string();
    append(log.as_ref(), &erase, payload);
    for (action, value) in [(HOLD_SET, "a"), (HOLD_SET, "c"), (HOLD_LIFT, "c")] {
        let (hold, payload) = admin_event(
            "root",
            action,
            ("hold", &format!("actor:{value}")),
            serde_json::json!({"kind": "actor", "value": value, "reason": "case 7"}),
            &mut random,
        );
        append(log.as_ref(), &hold, payload);
    }
    // A producer's event under a reserved action (refused at submission since; an older
    // log could hold one): its principal is not its actor.
    let (forged, payload) = admin_event(
        "root",
        HOLD_SET,
        ("hold", "actor:b"),
        serde_json::json!({"kind": "actor", "value": "b", "reason": "forged"}),
        &mut random,
    );
    let forged = EventLeaf::parse(
        &String::from_utf8(forged.leaf)
            .expect("UTF-8")
            .replace(r#""submitted_by":"root""#, r#""submitted_by":"p""#)
            .into_bytes(),
    )
    .expect("a leaf");
    append(log.as_ref(), &forged, payload);

    let store = EventStore::open(&events_dir, config(), log.clone()).expect("open");
    let hold = store
        .hold(&HoldTarget::Actor("a".into()))
        .expect("read")
        .expect("the logged hold is in force");
    assert_eq!(
        (hold.set_by.as_str(), hold.reason.as_str()),
        ("root", "case 7")
    );
    let hold = |value: &str| store.hold(&HoldTarget::Actor(value.into())).expect("read");
    assert_eq!(hold("c"), None, "lifted");
    assert_eq!(hold("b"), None, "forged");
    assert_eq!(store.erasure(&target_id).expect("read"), Some(erase_id));
    assert_eq!(
        log.read_payload(target_index).expect("read"),
        Some(StoredPayload::Erased),
        "the erasure is finished"
    );
    drop(store);
    // And again: the same state, nothing to finish.
    let store = EventStore::open(&events_dir, config(), log.clone()).expect("reopen");
    assert_eq!(store.holds().expect("read").len(), 1);
}

#[test]
fn refuses_the_events_directory_of_an_older_version() {
    let dir = tempfile::tempdir().expect("dir");
    let log = open_log(dir.path());
    let events_dir = dir.path().join("events");
    std::fs::create_dir_all(events_dir.join("payloads")).expect("an older payload log");
    match EventStore::open(&events_dir, config(), log) {
        Err(EventStoreError::Corrupt { detail, .. }) => {
            assert!(detail.contains("payload log"), "{detail}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("an older payload log was ignored"),
    }
}
