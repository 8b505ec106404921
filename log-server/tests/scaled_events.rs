//! The events database of the scaled backend, shared in PostgreSQL by every front-end, against
//! a real PostgreSQL (tests/support_pg) and, for the process tests, a real S3 server and real
//! `cairn-log serve` front-ends (tests/support_scaled):
//!
//! - the PostgreSQL events index passes the events conformance suite;
//! - a flush indexes the events that a front-end sequenced and died before indexing, and a
//!   watermark moved by one front-end covers the events of all;
//! - two front-ends that see a subject's first events at once make one data key, a shred
//!   through one is a shred for both, and a front-end with another KEK is refused;
//! - with two front-ends: events submitted to one are found by ID and by actor through the
//!   other, a hold placed through one is in force on the other, a subject shredded through one
//!   cannot be opened through the other, and a front-end killed and restarted loses nothing;
//! - no clear personal value of an event is in PostgreSQL's files, the bucket or the cluster's
//!   directory, before or after a shred.

mod support_events;
mod support_pg;
mod support_s3;
mod support_scaled;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use cairn_log::config::token_digest_hex;
use cairn_log::events::conformance as events_conformance;
use cairn_log::events::postgres::PostgresEventIndex;
use cairn_log::events::postgres::PostgresKeyRows;
use cairn_log::events::privacy::keystore::{DekId, KeyStore};
use cairn_log::events::{EventIndexStore, EventSummary, QueryFilter};
use cairn_log::storage::conformance::Harness;
use cairn_log::storage::postgres::{PostgresConfig, PostgresStore};
use cairn_log::storage::{NewEntry, SequenceStore};
use cairn_spec::event::{EventId, EventInput};
use serde_json::{json, Value};
use support_events::files_holding;
use support_pg::TestPostgres;
use support_scaled::{Cluster, FrontEnd, PATIENCE};

fn config(server: &TestPostgres, schema: &str) -> PostgresConfig {
    let mut config = PostgresConfig::new(server.url());
    config.schema = schema.into();
    config.pool_size = 4;
    config
}

/// The events index of a log in a schema of its own.
struct PostgresEvents {
    config: PostgresConfig,
}

impl Harness for PostgresEvents {
    type Store = PostgresEventIndex;
    fn open(&mut self) -> PostgresEventIndex {
        let store = PostgresStore::open_for_events(self.config.clone()).expect("the pool opens");
        PostgresEventIndex::open(Arc::new(store)).expect("the index opens")
    }
}

#[test]
fn the_postgres_events_index_passes_the_conformance_suite() {
    let server = TestPostgres::start();
    let next = AtomicU64::new(0);
    events_conformance::run_all(|| PostgresEvents {
        config: config(
            &server,
            &format!("events_{}", next.fetch_add(1, Ordering::Relaxed)),
        ),
    });
}

/// An event leaf of `actor` with a payload, as a producer's submission becomes one.
fn event_leaf(actor: &str, n: u64) -> (EventSummary, NewEntry) {
    let json = format!(
        r#"{{"timestamp":"2026-12-07T10:00:00Z","actor":{{"id":"{actor}","type":"user"}},"action":"document.read","resource":{{"type":"document","id":"doc-{n}"}},"outcome":"success","payload":{{"n":{n}}}}}"#
    );
    let input = EventInput::parse(json.as_bytes()).expect("a valid event");
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8] = actor.len() as u8;
    let (leaf, payload) = input
        .into_leaf(
            EventId::new_v4(id),
            cairn_spec::time::Instant::from_unix(1_765_100_000, 0),
            "producer",
        )
        .expect("a leaf");
    let entry = NewEntry::new(leaf.leaf.clone(), None).with_payload(payload);
    // The index is filled in by the caller once the entry has its index.
    (EventSummary::of_leaf(u64::MAX, leaf), entry)
}

#[test]
fn a_flush_indexes_what_a_front_end_sequenced_and_never_indexed() {
    let server = TestPostgres::start();
    // Two front-ends: each its log connection and its events pool.
    let logs: Vec<PostgresStore> = (0..2)
        .map(|_| PostgresStore::open(config(&server, "shared")).expect("the log opens"))
        .collect();
    let indexes: Vec<PostgresEventIndex> = (0..2)
        .map(|_| {
            let pool = PostgresStore::open_for_events(config(&server, "shared")).expect("pool");
            PostgresEventIndex::open(Arc::new(pool)).expect("index")
        })
        .collect();
    let mut logged = Vec::new();
    for n in 0..300u64 {
        let writer = (n % 2) as usize;
        let (mut summary, entry) = event_leaf(["alice", "bob"][writer], n);
        // Raw leaves between the events.
        let index = logs[writer]
            .append_at_end(&[entry, NewEntry::new(format!("raw {n}").into_bytes(), None)])
            .expect("append");
        summary.index = index;
        // Front-end 1 "dies" after sequencing every fifth of its events, before indexing it.
        if !(writer == 1 && n % 5 == 0) {
            indexes[writer]
                .insert(summary.clone(), index + 1)
                .expect("insert");
        }
        logged.push(summary);
    }
    let end = logs[0].entry_count();
    assert_eq!(end, 600);
    // Front-end 0 moves the watermark: it finds and indexes front-end 1's missing events.
    indexes[0].flush(end).expect("flush");
    assert!(indexes[0].watermark() >= end);
    for summary in &logged {
        for index in &indexes {
            assert_eq!(
                index.find(&summary.event_id).expect("find").as_ref(),
                Some(summary),
                "event {} is indexed, as its front-end would have",
                summary.index
            );
        }
    }
    // An index opened later (a restarted front-end) starts from the moved watermark.
    drop(indexes);
    let pool = PostgresStore::open_for_events(config(&server, "shared")).expect("pool");
    let reopened = PostgresEventIndex::open(Arc::new(pool)).expect("index");
    assert_eq!(reopened.watermark(), end);
    let page = reopened
        .query(
            &QueryFilter {
                actor: Some("bob".into()),
                ..QueryFilter::default()
            },
            1000,
            10_000,
        )
        .expect("query");
    assert_eq!(page.events.len(), 150);
    assert_eq!(page.next_after, None);
    // A selective filter examines at most `max_scan` candidates a page: short pages with a
    // cursor, until the one match (bob's last event) is reached.
    let mut filter = QueryFilter {
        actor: Some("bob".into()),
        resource: Some("doc-299".into()),
        ..QueryFilter::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = reopened.query(&filter, 5, 10).expect("query");
        pages.push(page.events.len());
        match page.next_after {
            Some(after) => filter.after = Some(after),
            None => break,
        }
        assert!(pages.len() < 100, "the cursor moves on");
    }
    assert_eq!(pages[0], 0, "the first 10 of bob's events do not match");
    assert!(
        pages.len() >= 15,
        "150 candidates in pages of at most 10: {pages:?}"
    );
    assert_eq!(pages.iter().sum::<usize>(), 1);
}

fn key_store(server: &TestPostgres, kek: u8) -> Result<KeyStore, String> {
    let pool = PostgresStore::open_for_events(config(server, "keys")).expect("pool");
    KeyStore::with_rows(Box::new(PostgresKeyRows::new(Arc::new(pool))), &[kek; 32])
        .map_err(|error| error.to_string())
}

#[test]
fn front_ends_make_one_key_per_subject_and_a_shred_through_one_holds_for_all() {
    let server = TestPostgres::start();
    let stores: Vec<Arc<KeyStore>> = (0..2)
        .map(|_| Arc::new(key_store(&server, 7).expect("opens")))
        .collect();
    for round in 0..20u8 {
        let subject = [round; 32];
        let barrier = Arc::new(Barrier::new(4));
        let makers: Vec<_> = (0..4)
            .map(|maker| {
                let (store, barrier) = (stores[maker % 2].clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.find_or_create(&[subject]).expect("made")[0].id
                })
            })
            .collect();
        let ids: Vec<DekId> = makers
            .into_iter()
            .map(|maker| maker.join().expect("thread"))
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
        assert_eq!(stores[1].key_ids(&subject).expect("ids"), vec![ids[0]]);
    }
    let alice = [0u8; 32];
    let key = stores[0].find(&alice).expect("find").expect("made above");
    assert_eq!(stores[1].key(&key.id).expect("key"), Some(key.key));
    // Shredded through front-end 1: gone for front-end 0 at once, which seals no more under it.
    assert_eq!(stores[1].destroy(&[key.id]).expect("destroy"), 1);
    assert_eq!(stores[0].key(&key.id).expect("key"), None);
    assert!(stores[0].find(&alice).expect("find").is_none());
    let again = stores[0].find_or_create(&[alice]).expect("a new key");
    assert_ne!(again[0].id, key.id, "a subject seen again gets a new key");
    assert_eq!(
        stores[1].find(&alice).expect("find").map(|k| k.id),
        Some(again[0].id)
    );
    // A front-end given another KEK is refused.
    let refused = key_store(&server, 8).err().expect("another KEK is refused");
    assert!(refused.contains("kek_file"), "{refused}");
}

// ---- Two real front-ends -------------------------------------------------------------------

const READER: &str = "reader-token-for-the-scaled-events-test";
const ADMIN: &str = "admin-token-for-the-scaled-events-test";
const ALICE: &str = "alice.scaled@example.org";
const BOB: &str = "bob.scaled@example.org";

/// The reader and admin principals, for a front-end's configuration.
fn principals() -> String {
    format!(
        "[[principals]]\nname = \"auditor\"\nrole = \"reader\"\ntoken_sha256 = \"{}\"\n\n\
         [[principals]]\nname = \"root\"\nrole = \"admin\"\ntoken_sha256 = \"{}\"\n",
        token_digest_hex(READER),
        token_digest_hex(ADMIN)
    )
}

fn event(actor: &str, note: &str) -> Value {
    json!({
        "timestamp": "2026-12-07T10:00:00Z",
        "actor": {"id": actor, "type": "user"},
        "action": "invoice.pay",
        "resource": {"type": "invoice", "id": format!("invoice-of-{actor}")},
        "outcome": "success",
        "payload": {"note": note},
    })
}

/// `method path` with `token` and a JSON body: the status and the JSON answered.
async fn call(
    cluster: &Cluster,
    front_end: &FrontEnd,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = cluster
        .http
        .request(method, format!("{}{path}", front_end.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Submits `event` through `front_end`: its ID.
async fn submit(cluster: &Cluster, front_end: &FrontEnd, event: &Value) -> String {
    let (status, answer) = call(
        cluster,
        front_end,
        reqwest::Method::POST,
        "/v1/events",
        &cluster.token,
        Some(event),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["event_id"]
        .as_str()
        .expect("an event ID")
        .to_string()
}

/// The events of `actor` through `front_end`, following cursors: their IDs, in log order.
async fn by_actor(cluster: &Cluster, front_end: &FrontEnd, actor: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut cursor = String::new();
    for _ in 0..1000 {
        let (status, page) = call(
            cluster,
            front_end,
            reqwest::Method::GET,
            &format!("/v1/events?limit=3&actor={actor}{cursor}"),
            READER,
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        for event in page["events"].as_array().expect("events") {
            found.push(event["event_id"].as_str().expect("an ID").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return found,
        }
    }
    panic!("a query did not end in 1000 pages");
}

/// `GET /v1/events/{id}` through `front_end`.
async fn shown(cluster: &Cluster, front_end: &FrontEnd, id: &str) -> (u16, Value) {
    call(
        cluster,
        front_end,
        reqwest::Method::GET,
        &format!("/v1/events/{id}"),
        READER,
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_front_ends_share_the_events_database() {
    let cluster = Cluster::start();
    let extra = principals();
    let a = cluster.front_end_with("a", &extra).await;
    let b = cluster.front_end_with("b", &extra).await;

    // Submitted to A, found through B by ID (contents opened under the shared keys) and by actor.
    let mut alice_ids = Vec::new();
    for note in ["first", "second", "third"] {
        alice_ids.push(submit(&cluster, &a, &event(ALICE, note)).await);
    }
    let bob_id = submit(&cluster, &b, &event(BOB, "bob's")).await;
    for id in &alice_ids {
        let (status, event) = shown(&cluster, &b, id).await;
        assert_eq!(status, 200, "{event}");
        assert_eq!(event["contents"], "held", "{event}");
        assert_eq!(event["event"]["actor"]["id"], ALICE);
    }
    assert_eq!(by_actor(&cluster, &b, ALICE).await, alice_ids);
    assert_eq!(by_actor(&cluster, &a, BOB).await, vec![bob_id.clone()]);

    // A hold placed through A is in force on B: listed there, and it refuses the erasure.
    let hold = json!({"actor": ALICE, "reason": "case 24"});
    let (status, set) = call(
        &cluster,
        &a,
        reqwest::Method::POST,
        "/v1/holds",
        ADMIN,
        Some(&hold),
    )
    .await;
    assert_eq!(status, 201, "{set}");
    let (status, listed) = call(
        &cluster,
        &b,
        reqwest::Method::GET,
        "/v1/holds",
        READER,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["holds"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let shred = format!("/v1/subjects/{ALICE}?reason=gdpr");
    let (status, held) = call(&cluster, &b, reqwest::Method::DELETE, &shred, ADMIN, None).await;
    assert_eq!((status, &held["error"]), (409, &json!("held")), "{held}");
    // Lifted through B (which knows the hold), then shredded through B.
    let (status, lifted) = call(
        &cluster,
        &b,
        reqwest::Method::DELETE,
        "/v1/holds",
        ADMIN,
        Some(&hold),
    )
    .await;
    assert_eq!(status, 200, "{lifted}");
    let (status, listed) = call(
        &cluster,
        &a,
        reqwest::Method::GET,
        "/v1/holds",
        READER,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["holds"], json!([]), "lifted for A too");
    let (status, shredded) = call(&cluster, &b, reqwest::Method::DELETE, &shred, ADMIN, None).await;
    assert_eq!(status, 200, "{shredded}");
    assert_eq!(shredded["data_keys_destroyed"], 1);

    // A cannot open what was shredded through B, and finds no events by that actor.
    for id in &alice_ids {
        let (status, event) = shown(&cluster, &a, id).await;
        assert_eq!(status, 200);
        assert_eq!(event["contents"], "erased", "{event}");
        assert_eq!(event["event"], Value::Null);
    }
    assert!(by_actor(&cluster, &a, ALICE).await.is_empty());
    assert_eq!(by_actor(&cluster, &a, BOB).await, vec![bob_id.clone()]);
    let (status, record) = call(&cluster, &b, reqwest::Method::DELETE, &shred, ADMIN, None).await;
    assert_eq!(status, 404, "shredded once, for both: {record}");

    // A is killed and restarted; meanwhile B takes more events. Nothing is lost.
    let mut a = a;
    a.kill_hard();
    let carol = "carol.scaled@example.org";
    let carol_id = submit(&cluster, &b, &event(carol, "while A was down")).await;
    let started = Instant::now();
    let a = cluster.front_end_with("a", &extra).await;
    assert!(started.elapsed() < PATIENCE);
    assert_eq!(by_actor(&cluster, &a, carol).await, vec![carol_id]);
    assert_eq!(by_actor(&cluster, &a, BOB).await, vec![bob_id.clone()]);
    let (_, event) = shown(&cluster, &a, &bob_id).await;
    assert_eq!(event["event"]["payload"]["note"], "bob's", "{event}");
    for id in &alice_ids {
        let (_, event) = shown(&cluster, &a, id).await;
        assert_eq!(event["contents"], "erased", "{event}");
    }
    // A hold set through the restarted A holds on B.
    let hold = json!({"actor": BOB, "reason": "case 25"});
    let (status, _) = call(
        &cluster,
        &a,
        reqwest::Method::POST,
        "/v1/holds",
        ADMIN,
        Some(&hold),
    )
    .await;
    assert_eq!(status, 201);
    let bob_shred = format!("/v1/subjects/{BOB}?reason=gdpr");
    let (status, held) = call(
        &cluster,
        &b,
        reqwest::Method::DELETE,
        &bob_shred,
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 409, "{held}");
    drop(b);
}

/// The scan of issue 27 on the scaled backend: PostgreSQL's files (tables and WAL), the
/// bucket's objects and the cluster's directory (configuration, keys, the front-end's files and
/// its log output) hold no clear personal value of any event, before and after a subject is
/// shredded. The one clear field scanned for as a control (the action) is found in PostgreSQL
/// and in the bucket, so the scan does see what is written there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_clear_personal_value_in_postgres_the_bucket_or_a_front_end() {
    const DAVE: &str = "dave.k2v8@example.org";
    const DAVE_RESOURCE: &str = "contract-dave-6610";
    const DAVE_IP: &str = "198.51.100.47";
    const DAVE_NOTE: &str = "dave-payload-note-2291";
    const ERIN: &str = "erin.p5r1@example.org";
    const ERIN_NOTE: &str = "erin-payload-note-7403";
    const ACTION: &str = "contract.sign-control-5518";
    let cluster = Cluster::start();
    let a = cluster.front_end_with("a", &principals()).await;
    let mut last = 0;
    for (actor, resource, note) in [
        (DAVE, DAVE_RESOURCE, DAVE_NOTE),
        (DAVE, DAVE_RESOURCE, "dave's second"),
        (ERIN, "contract-erin-1200", ERIN_NOTE),
    ] {
        let event = json!({
            "timestamp": "2026-12-07T10:00:00Z",
            "actor": {"id": actor, "type": "user"},
            "action": ACTION,
            "resource": {"type": "contract", "id": resource},
            "outcome": "success",
            "context": {"ip": DAVE_IP},
            "payload": {"note": note},
        });
        let (status, answer) = call(
            &cluster,
            &a,
            reqwest::Method::POST,
            "/v1/events",
            &cluster.token,
            Some(&event),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        last = answer["index"].as_u64().expect("an index");
    }
    // Read back by actor (the keyed index, and a self-audit record of the search), and a
    // hold on a subject: neither may write a personal value in clear.
    assert_eq!(by_actor(&cluster, &a, DAVE).await.len(), 2);
    let hold = json!({"actor": ERIN, "reason": "case 27"});
    let (status, set) = call(
        &cluster,
        &a,
        reqwest::Method::POST,
        "/v1/holds",
        ADMIN,
        Some(&hold),
    )
    .await;
    assert_eq!(status, 201, "{set}");
    let personal = [DAVE, DAVE_RESOURCE, DAVE_IP, DAVE_NOTE, ERIN, ERIN_NOTE];
    // (place, whether the leaves are written there)
    let places = [
        ("PostgreSQL", cluster.pg.dir().to_path_buf(), true),
        ("the bucket", cluster.s3.object_file(""), true),
        ("the cluster", cluster.dir.path().to_path_buf(), false),
    ];
    cluster.wait_for_bucket(last + 1).await;
    for (name, dir, has_leaves) in &places {
        assert_eq!(files_holding(dir, &personal), vec![], "in {name}");
        let control = files_holding(dir, &[ACTION]);
        assert!(!*has_leaves || !control.is_empty(), "the control in {name}");
    }

    let shred = format!("/v1/subjects/{DAVE}?reason=gdpr");
    let (status, shredded) = call(&cluster, &a, reqwest::Method::DELETE, &shred, ADMIN, None).await;
    assert_eq!(status, 200, "{shredded}");
    assert!(by_actor(&cluster, &a, DAVE).await.is_empty());
    let size = cluster.checkpoint_size(&a).await;
    cluster.wait_for_bucket(size).await;
    for (name, dir, _) in &places {
        assert_eq!(
            files_holding(dir, &personal),
            vec![],
            "after the shred, in {name}"
        );
    }
}
