//! Complete answers (issue 29, spec/docs/completeness.md) over real loopback HTTP: every
//! checkpoint of an events log carries the `cairn-index/v1` root, exports and `proof=true`
//! queries of one value carry a completeness proof that verifies, and one that an event was
//! dropped from does not; a restart replays the index to the same root; a log of raw leaves
//! has no line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cairn_log::config::token_digest_hex;
use cairn_log::events::{EventSettings, Principal, Role};
use cairn_log::sequencer::SequencerConfig;
use cairn_log::server::{RunningServer, ServerSettings};
use cairn_log::storage::Backend;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::completeness::root_from_extensions;
use cairn_spec::export::{
    verify_export_v2, ExportBundleV2, ExportError, ExportTrust, VerifiedExportV2,
};
use cairn_spec::note::{Ed25519Signer, KeyName, Note};
use serde_json::{json, Value};

const ORIGIN: &str = "example.com/complete-log";
const PRODUCER: &str = "producer-token";
const READER: &str = "reader-token";
const ALICE: &str = "alice.complete@example.org";
const BOB: &str = "bob.complete@example.org";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid name"), [29; 32])
}

fn digest(token: &str) -> [u8; 32] {
    let hex = token_digest_hex(token);
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    bytes
}

fn settings(dir: &Path, completeness_index: bool) -> ServerSettings {
    let mut producers = HashMap::new();
    producers.insert(digest(PRODUCER), "billing".to_string());
    let mut principals = HashMap::new();
    principals.insert(
        digest(READER),
        Principal {
            name: "auditor".to_string(),
            role: Role::Reader,
        },
    );
    ServerSettings {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.to_path_buf(),
        storage: Backend::Embedded,
        scaled: None,
        receipt_policy: None,
        objects_dir: None,
        signer: std::sync::Arc::new(signer().into()),
        producers,
        max_leaf_bytes: 65_535,
        max_batch_body_bytes: 1 << 20,
        sequencer: SequencerConfig::default(),
        checkpoint_interval: Duration::from_millis(50),
        witnesses: Vec::new(),
        quorum: 0,
        witness_timeout: Duration::from_secs(2),
        witness_roots: Vec::new(),
        checkpoint_wait: Duration::from_secs(10),
        events: EventSettings {
            principals,
            completeness_index,
            ..EventSettings::default()
        },
        edge: Default::default(),
        access: Default::default(),
        ui: Default::default(),
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(server: &RunningServer) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.addr),
        }
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    async fn submit(&self, actor: &str, action: &str) -> u64 {
        let event = json!({
            "timestamp": "2026-12-07T10:00:00Z",
            "actor": {"id": actor, "type": "user"},
            "action": action,
            "resource": {"type": "invoice", "id": format!("inv-{actor}")},
            "outcome": "success",
        });
        let response = self
            .http
            .post(format!("{}/v1/events", self.base))
            .bearer_auth(PRODUCER)
            .body(event.to_string())
            .send()
            .await
            .expect("request");
        assert!(response.status().is_success(), "{}", response.status());
        let answer: Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("json");
        answer["index"].as_u64().expect("an index")
    }

    async fn wait_published(&self, size: u64) {
        for _ in 0..800 {
            let response = self
                .http
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .expect("request");
            let body: Value = serde_json::from_slice(&response.bytes().await.expect("body"))
                .unwrap_or(Value::Null);
            if body["published_size"].as_u64().unwrap_or(0) >= size {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no checkpoint of size {size} was published");
    }

    /// The index root of the log's latest checkpoint, if it carries one.
    async fn index_root(&self) -> Option<cairn_spec::Hash> {
        let (status, note) = self.get("/checkpoint", READER).await;
        assert_eq!(status, 200);
        let note = Note::parse(&note).expect("a note");
        let checkpoint = Checkpoint::from_note(&note).expect("a checkpoint");
        root_from_extensions(&checkpoint.extensions).expect("a well-formed line")
    }

    async fn export(&self, query: &str) -> ExportBundleV2 {
        let (status, body) = self.get(&format!("/v1/export?{query}"), READER).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        ExportBundleV2::from_json(&body).expect("a bundle")
    }
}

fn verify(bundle: &ExportBundleV2) -> Result<VerifiedExportV2, ExportError> {
    let key = signer().verifier();
    verify_export_v2(bundle, ExportTrust::LogKey(&key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_of_one_value_are_proven_complete_and_a_dropped_event_is_caught() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = RunningServer::start(settings(dir.path(), true))
        .await
        .expect("server starts");
    let client = Client::new(&server);
    let mut last = 0;
    for (actor, action) in [
        (ALICE, "invoice.pay"),
        (BOB, "invoice.read"),
        (ALICE, "invoice.read"),
        (ALICE, "invoice.pay"),
        (BOB, "invoice.pay"),
        (ALICE, "invoice.approve"),
    ] {
        last = client.submit(actor, action).await;
    }
    client.wait_published(last + 1).await;
    assert!(
        client.index_root().await.is_some(),
        "no cairn-index/v1 line"
    );

    // Every event of alice, proven complete.
    let bundle = client.export(&format!("actor={ALICE}")).await;
    let verified = verify(&bundle).expect("the export verifies");
    let complete = verified
        .completeness
        .as_ref()
        .expect("a completeness proof");
    assert_eq!(verified.events.len(), 4);
    assert_eq!((complete.value_checked, complete.keys), (4, 2));
    // The reproduction: drop one event and the bundle no longer verifies.
    let mut dropped = bundle.clone();
    dropped.events.remove(1);
    match verify(&dropped) {
        Err(ExportError::Completeness(reason)) => {
            assert!(reason.contains("leaves out the event"), "{reason}")
        }
        other => panic!("a dropped event must be caught, found {other:?}"),
    }

    // Pages: two of alice's events, then the rest from the cursor; each page is complete in
    // its window, and the windows meet.
    let (status, first) = client
        .get(&format!("/v1/export?actor={ALICE}&limit=2"), READER)
        .await;
    assert_eq!(status, 200);
    let first = ExportBundleV2::from_json(&first).expect("a bundle");
    let first_proof = verify(&first).expect("page 1").completeness.expect("proof");
    assert_eq!(first.events.len(), 2);
    let cursor = format!("i{:016x}", first.events[1].index);
    let second = client
        .export(&format!("actor={ALICE}&cursor={cursor}"))
        .await;
    let second_proof = verify(&second)
        .expect("page 2")
        .completeness
        .expect("proof");
    assert_eq!(second.events.len(), 2);
    assert_eq!(first_proof.to, second_proof.from);

    // One action; a value nobody has, proven absent.
    let actions = client.export("action=invoice.read").await;
    assert_eq!(verify(&actions).expect("verifies").events.len(), 2);
    let nobody = client.export("actor=nobody@example.org").await;
    let proven = verify(&nobody).expect("verifies");
    assert!(proven.events.is_empty() && proven.completeness.is_some());

    // A query with proof=true: the events it lists are its proof's.
    let (status, answer) = client
        .get(&format!("/v1/events?actor={BOB}&proof=true"), READER)
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).expect("json");
    let proof: ExportBundleV2 = serde_json::from_value(answer["proof"].clone()).expect("a bundle");
    let proven = verify(&proof).expect("the query's proof verifies");
    let listed: Vec<u64> = answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["index"].as_u64().expect("index"))
        .collect();
    let in_proof: Vec<u64> = proven.events.iter().map(|event| event.index).collect();
    assert_eq!(listed, in_proof);
    assert_eq!(listed.len(), 2);
    // Two values at once cannot be proven.
    let (status, _) = client
        .get(
            &format!("/v1/events?actor={BOB}&action=invoice.pay&proof=true"),
            READER,
        )
        .await;
    assert_eq!(status, 400);

    // A restart replays the index: an export against the same checkpoint still verifies, so
    // the replayed root is the one the checkpoint carries.
    // The reads above were recorded (self-audit, spec/docs/log-api.md): the root is read
    // once a checkpoint covers the last record, the proof=true query's.
    let recorded = answer["self_audit"]["index"]
        .as_u64()
        .expect("a recorded query");
    client.wait_published(recorded + 1).await;
    let root = client.index_root().await;
    server.shutdown().await.expect("stops");
    let server = RunningServer::start(settings(dir.path(), true))
        .await
        .expect("server starts again");
    let client = Client::new(&server);
    // Compared before the export: the export's self-audit record (spec/docs/log-api.md) is
    // one more event, after which a checkpoint carries a grown root.
    assert_eq!(client.index_root().await, root);
    let again = client.export(&format!("actor={ALICE}")).await;
    assert_eq!(
        verify(&again)
            .expect("verifies after a restart")
            .events
            .len(),
        4
    );
    // And it goes on from there.
    let next = client.submit(ALICE, "invoice.pay").await;
    client.wait_published(next + 1).await;
    let grown = client.export(&format!("actor={ALICE}")).await;
    assert_eq!(verify(&grown).expect("verifies").events.len(), 5);
    server.shutdown().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_the_index_has_no_line_and_exports_as_before() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = RunningServer::start(settings(dir.path(), false))
        .await
        .expect("server starts");
    let client = Client::new(&server);
    let index = client.submit(ALICE, "invoice.pay").await;
    client.wait_published(index + 1).await;
    assert_eq!(client.index_root().await, None);
    let bundle = client.export(&format!("actor={ALICE}")).await;
    let verified = verify(&bundle).expect("verifies");
    assert_eq!(verified.events.len(), 1);
    assert!(verified.completeness.is_none());
    server.shutdown().await.expect("stops");
}

/// The receive time of an exported event.
fn received(event: &cairn_spec::export::ExportedEventV2) -> cairn_spec::time::Instant {
    cairn_spec::completeness::received::received_at(&event.leaf).expect("an event leaf")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_time_range_is_proven_and_the_record_stream_replays_to_the_signed_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = RunningServer::start(settings(dir.path(), true))
        .await
        .expect("server starts");
    let client = Client::new(&server);
    let mut last = 0;
    for action in ["a.one", "a.two", "a.three", "a.four"] {
        last = client.submit(ALICE, action).await;
        last = last.max(client.submit(BOB, action).await);
    }
    client.wait_published(last + 1).await;
    let all = client.export(&format!("actor={ALICE}")).await;
    assert_eq!(all.events.len(), 4);
    // From alice's second event's receive time to just after her third's.
    let (from, to) = (
        received(&all.events[1]),
        cairn_spec::time::Instant::from_unix(
            i64::try_from(received(&all.events[2]).unix_nanos() / 1_000_000_000).expect("fits") + 1,
            0,
        ),
    );
    let query = format!(
        "/v1/events?actor={ALICE}&proof=true&received_from={}&received_to={}",
        from.to_rfc3339(),
        to.to_rfc3339()
    );
    let (status, answer) = client.get(&query, READER).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).expect("json");
    let proof: ExportBundleV2 = serde_json::from_value(answer["proof"].clone()).expect("a bundle");
    let proven = verify(&proof).expect("the range's proof verifies");
    let complete = proven.completeness.as_ref().expect("completeness");
    let (range, inside) = complete.received.as_ref().expect("a time range");
    assert_eq!((range.from, range.to), (from, to));
    // The events were received within seconds: the window is the whole list, and the proof
    // covers the whole tree.
    assert_eq!(
        (range.covers_from, range.covers_to),
        (0, proof_size(&proof))
    );
    let listed: Vec<u64> = answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["index"].as_u64().expect("index"))
        .collect();
    let expected: Vec<u64> = all
        .events
        .iter()
        .filter(|event| from <= received(event) && received(event) < to)
        .map(|event| event.index)
        .collect();
    assert!(expected.len() >= 2, "{expected:?}");
    assert_eq!(&listed, inside);
    assert_eq!(listed, expected);
    // An event dropped from, added to, or moved within the proof fails.
    let mut dropped = proof.clone();
    dropped.events.remove(0);
    assert!(verify(&dropped).is_err());
    let mut added = proof.clone();
    added.events.push(all.events[0].clone());
    assert!(verify(&added).is_err());
    let mut moved = proof.clone();
    moved.events.swap(0, 1);
    assert!(verify(&moved).is_err());
    // One end alone, or a range without proof=true, is refused.
    for bad in [
        format!(
            "/v1/events?actor={ALICE}&proof=true&received_from={}",
            from.to_rfc3339()
        ),
        format!(
            "/v1/events?actor={ALICE}&received_from={}&received_to={}",
            from.to_rfc3339(),
            to.to_rfc3339()
        ),
    ] {
        assert_eq!(client.get(&bad, READER).await.0, 400, "{bad}");
    }

    // The record stream, read in steps, replays to the root the checkpoint carries.
    let root = client.index_root().await.expect("an index line");
    let mut stream = Vec::new();
    loop {
        let (status, bytes) = client
            .get(
                &format!("/v1/index/records?offset={}", stream.len()),
                READER,
            )
            .await;
        assert_eq!(status, 200);
        if bytes.is_empty() {
            break;
        }
        stream.extend(bytes);
    }
    let mut map = cairn_spec::completeness::IndexMap::new();
    let (mut offset, mut marked) = (0, None);
    while let Some((record, length)) =
        cairn_spec::completeness::records::Record::parse(&stream[offset..]).expect("records")
    {
        offset += length;
        match record {
            cairn_spec::completeness::records::Record::Item(item, keys) => {
                for key in keys {
                    map.add(key, item).expect("in order");
                }
            }
            cairn_spec::completeness::records::Record::Mark(_, mark) => {
                assert_eq!(map.root(), mark);
                marked = Some(mark);
            }
        }
    }
    assert_eq!(offset, stream.len());
    assert_eq!(marked, Some(root));
    assert_eq!(client.get("/v1/index/records", PRODUCER).await.0, 403);
    server.shutdown().await.expect("stops");
}

fn proof_size(bundle: &ExportBundleV2) -> u64 {
    let note = Note::parse(bundle.checkpoint.as_bytes()).expect("note");
    Checkpoint::from_note(&note).expect("checkpoint").size
}
