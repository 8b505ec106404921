//! Complete answers (issue 29, spec/docs/completeness.md) over real loopback HTTP: every
//! checkpoint of an events log carries the `cairn-index/v1` root, exports and `proof=true`
//! queries of one value carry a completeness proof that verifies, and one that an event was
//! dropped from does not; a restart replays the index to the same root; a log of raw leaves
//! has no line.

mod support_events;

use std::path::Path;

use cairn_log::events::Role;
use cairn_log::server::{RunningServer, ServerSettings};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::completeness::root_from_extensions;
use cairn_spec::export::{
    verify_export_v2, ExportBundleV2, ExportError, ExportTrust, VerifiedExportV2,
};
use cairn_spec::note::{Ed25519Signer, Note};
use serde_json::{json, Value};
use support_events::Client;

const ORIGIN: &str = "example.com/complete-log";
const PRODUCER: &str = "producer-token";
const READER: &str = "reader-token";
const ALICE: &str = "alice.complete@example.org";
const BOB: &str = "bob.complete@example.org";

fn signer() -> Ed25519Signer {
    support_events::signer(ORIGIN, 29)
}

fn settings(dir: &Path, completeness_index: bool) -> ServerSettings {
    let mut settings = support_events::settings(
        dir,
        signer(),
        &[(PRODUCER, "billing")],
        &[(READER, "auditor", Role::Reader)],
    );
    settings.events.completeness_index = completeness_index;
    settings
}

/// Logs one event of `actor`; its index.
async fn submit(client: &Client, actor: &str, action: &str) -> u64 {
    let event = json!({
        "timestamp": "2026-12-07T10:00:00Z",
        "actor": {"id": actor, "type": "user"},
        "action": action,
        "resource": {"type": "invoice", "id": format!("inv-{actor}")},
        "outcome": "success",
    });
    let (status, answer) = client.post("/v1/events", PRODUCER, &event).await;
    assert_eq!(status, 200, "{answer}");
    answer["index"].as_u64().expect("an index")
}

/// The index root of the log's latest checkpoint, if it carries one.
async fn index_root(client: &Client) -> Option<cairn_spec::Hash> {
    let (status, note) = client.get_bytes("/checkpoint", READER).await;
    assert_eq!(status, 200);
    let note = Note::parse(&note).expect("a note");
    let checkpoint = Checkpoint::from_note(&note).expect("a checkpoint");
    root_from_extensions(&checkpoint.extensions).expect("a well-formed line")
}

async fn export(client: &Client, query: &str) -> ExportBundleV2 {
    let (status, body) = client
        .get_bytes(&format!("/v1/export?{query}"), READER)
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    ExportBundleV2::from_json(&body).expect("a bundle")
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
        last = submit(&client, actor, action).await;
    }
    client.wait_published(last + 1).await;
    assert!(
        index_root(&client).await.is_some(),
        "no cairn-index/v1 line"
    );

    // Every event of alice, proven complete.
    let bundle = export(&client, &format!("actor={ALICE}")).await;
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
        .get_bytes(&format!("/v1/export?actor={ALICE}&limit=2"), READER)
        .await;
    assert_eq!(status, 200);
    let first = ExportBundleV2::from_json(&first).expect("a bundle");
    let first_proof = verify(&first).expect("page 1").completeness.expect("proof");
    assert_eq!(first.events.len(), 2);
    let cursor = format!("i{:016x}", first.events[1].index);
    let second = export(&client, &format!("actor={ALICE}&cursor={cursor}")).await;
    let second_proof = verify(&second)
        .expect("page 2")
        .completeness
        .expect("proof");
    assert_eq!(second.events.len(), 2);
    assert_eq!(first_proof.to, second_proof.from);

    // One action; a value nobody has, proven absent.
    let actions = export(&client, "action=invoice.read").await;
    assert_eq!(verify(&actions).expect("verifies").events.len(), 2);
    let nobody = export(&client, "actor=nobody@example.org").await;
    let proven = verify(&nobody).expect("verifies");
    assert!(proven.events.is_empty() && proven.completeness.is_some());

    // A query with proof=true: the events it lists are its proof's.
    let (status, answer) = client
        .get_bytes(&format!("/v1/events?actor={BOB}&proof=true"), READER)
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
        .get_bytes(
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
    let root = index_root(&client).await;
    server.shutdown().await.expect("stops");
    let server = RunningServer::start(settings(dir.path(), true))
        .await
        .expect("server starts again");
    let client = Client::new(&server);
    // Compared before the export: the export's self-audit record (spec/docs/log-api.md) is
    // one more event, after which a checkpoint carries a grown root.
    assert_eq!(index_root(&client).await, root);
    let again = export(&client, &format!("actor={ALICE}")).await;
    assert_eq!(
        verify(&again)
            .expect("verifies after a restart")
            .events
            .len(),
        4
    );
    // And it goes on from there.
    let next = submit(&client, ALICE, "invoice.pay").await;
    client.wait_published(next + 1).await;
    let grown = export(&client, &format!("actor={ALICE}")).await;
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
    let index = submit(&client, ALICE, "invoice.pay").await;
    client.wait_published(index + 1).await;
    assert_eq!(index_root(&client).await, None);
    let bundle = export(&client, &format!("actor={ALICE}")).await;
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
        last = submit(&client, ALICE, action).await;
        last = last.max(submit(&client, BOB, action).await);
    }
    client.wait_published(last + 1).await;
    let all = export(&client, &format!("actor={ALICE}")).await;
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
    let (status, answer) = client.get_bytes(&query, READER).await;
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
        assert_eq!(client.get_bytes(&bad, READER).await.0, 400, "{bad}");
    }

    // The record stream, read in steps, replays to the root the checkpoint carries. The reads
    // above are self-audited, so a newer checkpoint may be signed while the stream is read:
    // the root read first must be one of the stream's marks, each of which is checked against
    // the map replayed up to it.
    let root = index_root(&client).await.expect("an index line");
    let mut stream = Vec::new();
    loop {
        let (status, bytes) = client
            .get_bytes(
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
    let (mut offset, mut marks) = (0, Vec::new());
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
                marks.push(mark);
            }
        }
    }
    assert_eq!(offset, stream.len());
    assert!(
        marks.contains(&root),
        "the checkpoint's index root {root:?} is not among the stream's {} marks",
        marks.len()
    );
    assert_eq!(client.get_bytes("/v1/index/records", PRODUCER).await.0, 403);
    server.shutdown().await.expect("stops");
}

fn proof_size(bundle: &ExportBundleV2) -> u64 {
    let note = Note::parse(bundle.checkpoint.as_bytes()).expect("note");
    Checkpoint::from_note(&note).expect("checkpoint").size
}
