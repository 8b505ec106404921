//! The conformance suite for [`EventIndexStore`]: events found by ID, by index and by query, in
//! log order, and kept across a reopen once flushed. One of the storage conformance suites
//! ([`crate::storage::conformance`], whose harness it takes), kept here beside the trait it
//! checks, above storage. Built only with the feature `conformance`, for tests.

use crate::events::{EventIndexStore, EventSummary, QueryFilter};
use crate::storage::conformance::{run, Harness, Suite};

/// Every test of the suite, by name.
pub fn tests<H: Harness<Store: EventIndexStore>>() -> Suite<H> {
    vec![
        (
            "finds_events_by_id_and_by_index",
            finds_events_by_id_and_by_index::<H>,
        ),
        (
            "answers_queries_in_log_order_page_by_page",
            answers_queries_in_log_order_page_by_page::<H>,
        ),
        (
            "lists_events_with_payloads",
            lists_events_with_payloads::<H>,
        ),
        (
            "keeps_flushed_events_across_reopen",
            keeps_flushed_events_across_reopen::<H>,
        ),
        (
            "an_unflushed_event_is_kept_whole_or_lost_whole",
            an_unflushed_event_is_kept_whole_or_lost_whole::<H>,
        ),
    ]
}

/// Runs every test, each on a fresh harness from `fresh`.
pub fn run_all<H: Harness<Store: EventIndexStore>>(fresh: impl Fn() -> H) {
    run("events", tests::<H>(), fresh);
}

const ACTORS: [&str; 3] = ["alice@example.com", "bob@example.com", "carol@example.com"];
const ACTIONS: [&str; 2] = ["document.read", "document.sign"];
/// The suite's events sit at every third log index (the others are plain leaves).
const SPACING: u64 = 3;

/// The suite's event number `n`, at log index `n · SPACING`.
pub fn event(n: u64) -> EventSummary {
    let time = 1_700_000_000_000_000_000i128 + i128::from(n) * 1_000_000_007;
    EventSummary {
        index: n * SPACING,
        event_id: format!("0190f3a2-{:04x}-7000-8000-{:012x}", n % 0x1_0000, n),
        time_nanos: time,
        received_nanos: time + 5_000,
        actor_id: ACTORS[(n % 3) as usize].to_string(),
        resource_type: "document".to_string(),
        resource_id: format!("doc-{}", n % 10),
        action: ACTIONS[(n % 2) as usize].to_string(),
        has_payload: n.is_multiple_of(4),
    }
}

/// Inserts events `[0, count)` as a log would, each after its entry is durable.
fn insert_all<S: EventIndexStore + ?Sized>(index: &S, count: u64) {
    for n in 0..count {
        let summary = event(n);
        let durable = summary.index + 1;
        index.insert(summary, durable).expect("insert an event");
    }
}

/// Every page of `filter`, followed by cursor, and the events in order.
fn query_all<S: EventIndexStore + ?Sized>(
    index: &S,
    filter: &QueryFilter,
    limit: usize,
) -> Vec<EventSummary> {
    let mut filter = filter.clone();
    let mut found = Vec::new();
    for _ in 0..10_000 {
        let page = index.query(&filter, limit, usize::MAX).expect("query");
        assert!(page.events.len() <= limit, "a page holds at most its limit");
        found.extend(page.events);
        match page.next_after {
            Some(after) => {
                assert!(
                    filter.after.is_none_or(|before| after > before),
                    "a cursor moves forward"
                );
                filter.after = Some(after);
            }
            None => return found,
        }
    }
    panic!("a query did not end in 10,000 pages")
}

fn expected(count: u64, keep: impl Fn(&EventSummary) -> bool) -> Vec<EventSummary> {
    (0..count).map(event).filter(|e| keep(e)).collect()
}

fn finds_events_by_id_and_by_index<H: Harness<Store: EventIndexStore>>(harness: &mut H) {
    let index = harness.open();
    insert_all(&index, 500);
    for n in [0, 1, 2, 99, 250, 499] {
        let summary = event(n);
        assert_eq!(
            index.find(&summary.event_id).expect("find"),
            Some(summary.clone()),
            "event {n} is found by its ID, with every field"
        );
        assert_eq!(
            index.summary(summary.index).expect("summary"),
            Some(summary),
            "event {n} is found by its index"
        );
    }
    assert_eq!(
        index.summary(1).expect("summary"),
        None,
        "an index that holds no event has no summary"
    );
    assert_eq!(
        index
            .find("0190f3a2-ffff-7000-8000-ffffffffffff")
            .expect("find"),
        None
    );
    assert_eq!(index.find("not an event id").expect("find"), None);
}

fn answers_queries_in_log_order_page_by_page<H: Harness<Store: EventIndexStore>>(harness: &mut H) {
    let index = harness.open();
    let count = 700;
    insert_all(&index, count);
    let window = (event(100).time_nanos, event(400).time_nanos);
    let cases: Vec<(QueryFilter, Vec<EventSummary>)> = vec![
        (QueryFilter::default(), expected(count, |_| true)),
        (
            QueryFilter {
                actor: Some(ACTORS[1].into()),
                ..QueryFilter::default()
            },
            expected(count, |e| e.actor_id == ACTORS[1]),
        ),
        (
            QueryFilter {
                resource: Some("doc-7".into()),
                action: Some(ACTIONS[1].into()),
                ..QueryFilter::default()
            },
            expected(count, |e| {
                e.resource_id == "doc-7" && e.action == ACTIONS[1]
            }),
        ),
        (
            QueryFilter {
                from_nanos: Some(window.0),
                to_nanos: Some(window.1),
                ..QueryFilter::default()
            },
            expected(count, |e| {
                e.time_nanos >= window.0 && e.time_nanos < window.1
            }),
        ),
        (
            QueryFilter {
                actor: Some(ACTORS[2].into()),
                after: Some(event(200).index),
                below: Some(event(600).index),
                ..QueryFilter::default()
            },
            expected(count, |e| {
                e.actor_id == ACTORS[2] && e.index > event(200).index && e.index < event(600).index
            }),
        ),
        (
            QueryFilter {
                actor: Some("nobody@example.com".into()),
                ..QueryFilter::default()
            },
            Vec::new(),
        ),
    ];
    for (filter, want) in &cases {
        for limit in [1, 7, 1000] {
            assert_eq!(
                &query_all(&index, filter, limit),
                want,
                "{filter:?} in pages of {limit}: every match, in log order, once"
            );
        }
    }
}

fn lists_events_with_payloads<H: Harness<Store: EventIndexStore>>(harness: &mut H) {
    let index = harness.open();
    insert_all(&index, 300);
    let mut after = None;
    let mut found = Vec::new();
    loop {
        let page = index.payload_events(after, 16).expect("payload events");
        assert!(page.events.len() <= 16);
        found.extend(page.events);
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(found, expected(300, |e| e.has_payload));
}

fn keeps_flushed_events_across_reopen<H: Harness<Store: EventIndexStore>>(harness: &mut H) {
    let count = 400;
    let log_size = event(count - 1).index + 1;
    {
        let index = harness.open();
        assert_eq!(index.watermark(), 0, "a new index holds nothing");
        insert_all(&index, count);
        index.flush(log_size).expect("flush");
        index.close();
    }
    let index = harness.open();
    assert!(
        index.watermark() >= log_size,
        "a flushed index reopens past what it flushed ({} < {log_size})",
        index.watermark()
    );
    assert_eq!(
        query_all(&index, &QueryFilter::default(), 1000),
        expected(count, |_| true),
        "every flushed event is there after a reopen"
    );
    let summary = event(count - 1);
    assert_eq!(index.find(&summary.event_id).expect("find"), Some(summary));
}

fn an_unflushed_event_is_kept_whole_or_lost_whole<H: Harness<Store: EventIndexStore>>(
    harness: &mut H,
) {
    let flushed = 200;
    {
        let index = harness.open();
        insert_all(&index, flushed);
        index.flush(event(flushed - 1).index + 1).expect("flush");
        for n in flushed..flushed + 50 {
            let summary = event(n);
            let durable = summary.index + 1;
            index.insert(summary, durable).expect("insert");
        }
        // Dropped without a flush: the backend may or may not have written these.
    }
    let index = harness.open();
    let watermark = index.watermark();
    for n in 0..flushed + 50 {
        let summary = event(n);
        let found = index.summary(summary.index).expect("summary");
        if summary.index < watermark {
            assert_eq!(
                found,
                Some(summary),
                "event {n} below the watermark {watermark} is indexed"
            );
        } else if let Some(found) = found {
            assert_eq!(found, summary, "event {n} is kept whole");
        }
    }
}
