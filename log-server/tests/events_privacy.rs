//! Privacy by design (issue 27) over real loopback HTTP: events logged as schema 2 leaves
//! (commitments only), their contents encrypted at rest under per-subject data keys, a subject
//! erased by destroying its keys (crypto-shredding) while every proof stays valid, entry
//! bundles for readers only, and a scan of the whole data directory for clear personal values.

mod support_events;

use std::collections::HashMap;
use std::path::Path;

use cairn_log::events::Role;
use cairn_log::server::{RunningServer, ServerSettings};
use cairn_spec::export::{AnyExport, EventContents, ExportTrust};
use cairn_spec::note::Ed25519Signer;
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{self, Receipt};
use serde_json::{json, Value};
use support_events::{files_holding, Client};

const ORIGIN: &str = "example.com/private-log";
const PRODUCER: &str = "producer-token";
const READER: &str = "reader-token";
const ADMIN: &str = "admin-token";

/// Personal values that must never be found in clear on disk (nor in an entry bundle).
const ALICE: &str = "alice.k7q2@example.org";
const ALICE_RESOURCE: &str = "invoice-alice-5521";
const ALICE_IP: &str = "203.0.113.77";
const ALICE_NOTE: &str = "alice-payload-note-3318";
const BOB: &str = "bob.z9w4@example.org";
const BOB_RESOURCE: &str = "invoice-bob-8834";
const BOB_NOTE: &str = "bob-payload-note-6620";

fn signer() -> Ed25519Signer {
    support_events::signer(ORIGIN, 11)
}

fn settings(dir: &Path) -> ServerSettings {
    support_events::settings(
        dir,
        signer(),
        &[(PRODUCER, "billing")],
        &[
            (READER, "auditor", Role::Reader),
            (ADMIN, "root", Role::Admin),
        ],
    )
}

fn policy() -> Policy {
    support_events::policy(&signer())
}

fn alice_event(note: &str) -> Value {
    json!({
        "timestamp": "2026-12-07T10:00:00Z",
        "actor": {"id": ALICE, "type": "user"},
        "action": "invoice.pay",
        "resource": {"type": "invoice", "id": ALICE_RESOURCE},
        "outcome": "success",
        "context": {"ip": ALICE_IP},
        "payload": {"note": note},
    })
}

fn bob_event() -> Value {
    json!({
        "timestamp": "2026-12-07T10:01:00Z",
        "actor": {"id": BOB, "type": "user"},
        "action": "invoice.read",
        "resource": {"type": "invoice", "id": BOB_RESOURCE},
        "outcome": "success",
        "payload": {"note": BOB_NOTE},
    })
}

/// The leaves of an entry bundle (each a 2-byte big-endian length and its bytes).
fn leaves_of(bundle: &[u8]) -> Vec<Vec<u8>> {
    let mut leaves = Vec::new();
    let mut rest = bundle;
    while rest.len() >= 2 {
        let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        assert!(rest.len() >= 2 + length, "a truncated bundle");
        leaves.push(rest[2..2 + length].to_vec());
        rest = &rest[2 + length..];
    }
    assert!(rest.is_empty(), "a truncated bundle");
    leaves
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shredded_subject_is_erased_everywhere_and_every_proof_still_verifies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = RunningServer::start(settings(dir.path()))
        .await
        .expect("server starts");
    let client = Client::new(&server);

    // Two events of alice, one of bob.
    let mut alice_ids = Vec::new();
    for note in [ALICE_NOTE, "alice-second-note"] {
        let (status, answer) = client
            .post("/v1/events", PRODUCER, &alice_event(note))
            .await;
        assert_eq!(status, 200, "{answer}");
        alice_ids.push(answer["event_id"].as_str().expect("id").to_string());
    }
    let (status, bob) = client
        .post("/v1/events?wait=checkpoint", PRODUCER, &bob_event())
        .await;
    assert_eq!(status, 200, "{bob}");
    let bob_id = bob["event_id"].as_str().expect("id").to_string();
    client.wait_published(3).await;

    // A retry of an event ID gets the logged leaf back; another content is a conflict.
    let mut first = alice_event(ALICE_NOTE);
    first["event_id"] = json!(alice_ids[0]);
    let (status, retried) = client.post("/v1/events", PRODUCER, &first).await;
    assert_eq!(
        (status, &retried["duplicate"]),
        (200, &json!(true)),
        "{retried}"
    );
    assert_eq!(retried["index"], 0);
    let mut changed = first.clone();
    changed["payload"]["note"] = json!("another note");
    let (status, _) = client.post("/v1/events", PRODUCER, &changed).await;
    assert_eq!(status, 409, "a different content under the same ID");

    // The public read API: checkpoints and hash tiles, not the entry bundles.
    let (status, _) = client
        .send_bytes(reqwest::Method::GET, "/tile/0/000.p/3", None, None)
        .await;
    assert_eq!(status, 200);
    let (status, refused) = client
        .json(reqwest::Method::GET, "/tile/entries/000.p/3", None, None)
        .await;
    assert_eq!((status, &refused["error"]), (401, &json!("unauthorized")));
    let (status, bundle) = client
        .send_bytes(
            reqwest::Method::GET,
            "/tile/entries/000.p/3",
            Some(READER),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let leaves = leaves_of(&bundle);
    assert_eq!(leaves.len(), 3);
    for leaf in &leaves {
        let text = String::from_utf8(leaf.clone()).expect("UTF-8");
        assert!(text.contains("\"commitments\""), "{text}");
        for value in [ALICE, ALICE_RESOURCE, ALICE_IP, ALICE_NOTE, BOB, BOB_NOTE] {
            assert!(!text.contains(value), "{value} in the leaf {text}");
        }
    }

    // A reader sees the contents, and checks them against the leaf.
    let (status, shown) = client
        .get(&format!("/v1/events/{}", alice_ids[0]), READER)
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["schema_version"], 2);
    assert_eq!(shown["contents"], "held");
    assert_eq!(shown["event"]["actor"]["id"], ALICE);
    assert_eq!(shown["event"]["context"]["ip"], ALICE_IP);
    let (_, verdict) = client.post("/v1/verify", READER, &shown).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(
        verdict["opened"],
        json!(["actor", "resource", "context", "payload"])
    );
    let mut forged = shown.clone();
    forged["openings"]["actor"]["value"]["id"] = json!("mallory");
    let (_, verdict) = client.post("/v1/verify", READER, &forged).await;
    assert_eq!(verdict["valid"], false, "{verdict}");
    let by_actor = client.query_all(&format!("actor={ALICE}"), 2, READER).await;
    assert_eq!(by_actor.len(), 2);
    assert!(by_actor.iter().all(|event| event["actor"] == ALICE));
    let (status, receipt_before) = client
        .get(&format!("/v1/events/{}/proof", alice_ids[0]), READER)
        .await;
    assert_eq!(status, 200);
    let receipt_before =
        Receipt::from_json(receipt_before.to_string().as_bytes()).expect("a receipt");

    // A legal hold on the subject blocks its erasure until lifted.
    let hold = json!({"actor": ALICE, "reason": "case 12"});
    let (status, set) = client.post("/v1/holds", ADMIN, &hold).await;
    assert_eq!(status, 201, "{set}");
    assert!(set["actor"].as_str().expect("tag").starts_with("tag:"));
    let path = format!("/v1/subjects/{ALICE}?reason=gdpr");
    let (status, held) = client.delete(&path, ADMIN, None).await;
    assert_eq!((status, &held["error"]), (409, &json!("held")), "{held}");
    assert_eq!(client.delete(&path, READER, None).await.0, 403);
    let (status, _) = client.delete("/v1/holds", ADMIN, Some(&hold)).await;
    assert_eq!(status, 200);
    let (status, shredded) = client.delete(&path, ADMIN, None).await;
    assert_eq!(status, 200, "{shredded}");
    assert_eq!(shredded["data_keys_destroyed"], 1);
    let recorded_by = shredded["recorded_by"]["event_id"]
        .as_str()
        .expect("record")
        .to_string();
    assert_eq!(client.delete(&path, ADMIN, None).await.0, 404, "done once");

    // The shredding is an audit event that names no subject in clear.
    let (_, record) = client
        .get(&format!("/v1/events/{recorded_by}"), READER)
        .await;
    assert_eq!(record["event"]["action"], "cairn.subject.shred");
    assert!(!record.to_string().contains(ALICE));

    // A reader sees commitments only for alice's events; bob's are intact.
    for id in &alice_ids {
        let (status, shown) = client.get(&format!("/v1/events/{id}"), READER).await;
        assert_eq!(status, 200);
        assert_eq!(shown["contents"], "erased", "{shown}");
        assert_eq!(shown["event"], Value::Null);
        assert!(shown["leaf"]["commitments"]["actor"].is_string());
    }
    assert!(client
        .query_all(&format!("actor={ALICE}"), 2, READER)
        .await
        .is_empty());
    let (_, shown) = client.get(&format!("/v1/events/{bob_id}"), READER).await;
    assert_eq!(shown["event"]["payload"]["note"], BOB_NOTE);

    // Every receipt still verifies, the one taken before and one taken after.
    receipt::verify(&receipt_before, &policy()).expect("the receipt taken before verifies");
    let (status, receipt_after) = client
        .get(&format!("/v1/events/{}/proof", alice_ids[0]), READER)
        .await;
    assert_eq!(status, 200);
    let receipt_after =
        Receipt::from_json(receipt_after.to_string().as_bytes()).expect("a receipt");
    receipt::verify(&receipt_after, &policy()).expect("the receipt taken after verifies");
    assert_eq!(receipt_after.leaf_hash, receipt_before.leaf_hash);

    // The export says which events were erased, and verifies offline.
    client.wait_published(6).await;
    let (status, export) = client
        .send_bytes(reqwest::Method::GET, "/v1/export", Some(READER), None)
        .await;
    assert_eq!(status, 200);
    let verified = AnyExport::from_json(&export)
        .expect("a bundle")
        .verify(ExportTrust::Policy(&policy()))
        .expect("verifies");
    let said: HashMap<String, String> = verified
        .events
        .iter()
        .map(|event| (event.event_id.as_str().to_string(), event.to_string()))
        .collect();
    for id in &alice_ids {
        assert!(
            said[id].ends_with("committed, contents erased"),
            "{}",
            said[id]
        );
    }
    assert!(said[&bob_id].ends_with("verified with contents"));
    assert!(verified.events.iter().any(|event| matches!(
        &event.contents,
        EventContents::Committed(contents) if contents.is_complete()
    )));
    server.shutdown().await.expect("shutdown");

    // Nothing of alice is left in clear anywhere, and nothing of bob outside the encrypted
    // contents records.
    let found = files_holding(
        dir.path(),
        &[
            ALICE,
            ALICE_RESOURCE,
            ALICE_IP,
            ALICE_NOTE,
            "alice-second-note",
            BOB,
            BOB_RESOURCE,
            BOB_NOTE,
        ],
    );
    assert!(found.is_empty(), "clear personal values on disk: {found:?}");

    // After a restart, and with the index rebuilt from the log: alice stays erased, bob is
    // found by his actor.
    std::fs::remove_dir_all(dir.path().join("events/index")).expect("drop the index");
    let server = RunningServer::start(settings(dir.path()))
        .await
        .expect("server restarts");
    let client = Client::new(&server);
    let by_bob = client.query_all(&format!("actor={BOB}"), 2, READER).await;
    assert_eq!(by_bob.len(), 1);
    assert_eq!(by_bob[0]["resource"], BOB_RESOURCE);
    let (_, shown) = client
        .get(&format!("/v1/events/{}", alice_ids[1]), READER)
        .await;
    assert_eq!(shown["contents"], "erased");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_bundles_are_public_only_when_configured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut public = settings(dir.path());
    public.events.store.privacy = Some(cairn_log::events::privacy::PrivacySettings {
        public_entries: true,
        ..cairn_log::events::privacy::PrivacySettings::in_dir(&dir.path().join("events"))
    });
    let server = RunningServer::start(public).await.expect("server starts");
    let client = Client::new(&server);
    let (status, _) = client
        .send_bytes(
            reqwest::Method::POST,
            "/add",
            Some(PRODUCER),
            Some(json!("a raw leaf").to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 200);
    client.wait_published(1).await;
    let (status, bundle) = client
        .send_bytes(reqwest::Method::GET, "/tile/entries/000.p/1", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(leaves_of(&bundle)[0], b"\"a raw leaf\"".to_vec());
    server.shutdown().await.expect("shutdown");
}
