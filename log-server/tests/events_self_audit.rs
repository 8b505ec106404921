//! Self-audit of reads over real loopback HTTP: a search, an event view and an export are each
//! recorded as one schema 2 event of the reading principal, named in the answer; an admin finds
//! the record; nobody erases it; what was asked is sealed, not in the leaf; off, nothing is
//! recorded.

mod support_events;

use std::path::Path;

use cairn_log::events::Role;
use cairn_log::server::{RunningServer, ServerSettings};
use serde_json::{json, Value};
use support_events::Client;

const ORIGIN: &str = "example.com/self-audit-log";
const PRODUCER: &str = "producer-token";
const READER: &str = "reader-token";
const ADMIN: &str = "admin-token";
/// A personal value a reader searches for: it must not appear in any leaf in clear.
const ALICE: &str = "alice.m3x8@example.org";

fn settings(dir: &Path, self_audit: bool) -> ServerSettings {
    let mut settings = support_events::settings(
        dir,
        support_events::signer(ORIGIN, 13),
        &[(PRODUCER, "billing")],
        &[
            (READER, "auditor", Role::Reader),
            (ADMIN, "root", Role::Admin),
        ],
    );
    settings.events.self_audit = self_audit;
    settings
}

/// One answer: status, the `Cairn-Self-Audit` header, the body as JSON (`null` if not JSON).
struct Answer {
    status: u16,
    recorded_by: Option<String>,
    body: Value,
}

async fn send(client: &Client, method: reqwest::Method, path: &str, token: &str) -> Answer {
    let response = client.response(method, path, Some(token), None).await;
    let status = response.status().as_u16();
    let recorded_by = response
        .headers()
        .get("cairn-self-audit")
        .map(|value| value.to_str().expect("ASCII").to_string());
    let bytes = response.bytes().await.expect("body");
    Answer {
        status,
        recorded_by,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn get(client: &Client, path: &str, token: &str) -> Answer {
    send(client, reqwest::Method::GET, path, token).await
}

/// Logs one event of alice; its index.
async fn log_event(client: &Client) -> u64 {
    let event = json!({
        "timestamp": "2026-12-07T10:00:00Z",
        "actor": {"id": ALICE, "type": "user"},
        "action": "invoice.pay",
        "resource": {"type": "invoice", "id": "invoice-7"},
        "outcome": "success",
        "payload": {"amount": 12},
    });
    let (status, answer) = client.post("/v1/events", PRODUCER, &event).await;
    assert_eq!(status, 200, "{answer}");
    answer["index"].as_u64().expect("an index")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_is_recorded_as_the_readers_event_that_an_admin_finds_and_nobody_erases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = RunningServer::start(settings(dir.path(), true))
        .await
        .expect("server starts");
    let client = Client::new(&server);
    let logged = log_event(&client).await;

    // The reader's search: answered with its events, and with the record that logged it.
    let search = get(
        &client,
        &format!("/v1/events?actor={ALICE}&limit=5"),
        READER,
    )
    .await;
    assert_eq!(search.status, 200, "{}", search.body);
    assert_eq!(search.body["events"][0]["index"], logged);
    let record = search.recorded_by.expect("the header names the record");
    assert_eq!(search.body["self_audit"]["event_id"], record.as_str());
    // One request, one record: the next index after the event.
    assert_eq!(search.body["self_audit"]["index"], logged + 1);

    // An admin finds it by the reader and the action, and reads it in clear.
    let found = get(
        &client,
        "/v1/events?actor=auditor&action=cairn.read.search",
        ADMIN,
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let ids: Vec<&str> = found.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["event_id"].as_str())
        .collect();
    assert_eq!(ids, [record.as_str()]);
    let admin_search = found
        .recorded_by
        .expect("the admin's search is recorded too");
    assert_ne!(admin_search, record);

    let shown = get(&client, &format!("/v1/events/{record}"), ADMIN).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.body["schema_version"], 2);
    let event = &shown.body["event"];
    assert_eq!(event["action"], "cairn.read.search");
    assert_eq!(
        event["actor"],
        json!({"id": "auditor", "type": "principal"})
    );
    assert_eq!(event["submitted_by"], "auditor");
    assert_eq!(
        event["payload"]["asked"],
        json!({"actor": ALICE, "limit": "5"})
    );
    assert_eq!(event["payload"]["answered"], 1);
    // What was asked is personal data: committed in the leaf, never in it in clear.
    let leaf = shown.body["leaf"].to_string();
    assert!(!leaf.contains(ALICE), "{leaf}");
    // Viewing it was recorded in its turn (one record, by the admin).
    let view = shown.recorded_by.expect("the view is recorded");
    let view_event = get(&client, &format!("/v1/events/{view}"), ADMIN).await;
    assert_eq!(view_event.body["event"]["action"], "cairn.read.event");
    assert_eq!(view_event.body["event"]["actor"]["id"], "root");
    assert_eq!(view_event.body["event"]["resource"]["id"], record.as_str());

    // Nobody erases it: a reader may not, and an admin is refused a server record's payload.
    let erase = format!("/v1/events/{record}/payload");
    let by_reader = send(&client, reqwest::Method::DELETE, &erase, READER).await;
    assert_eq!(by_reader.status, 403, "{}", by_reader.body);
    let by_admin = send(&client, reqwest::Method::DELETE, &erase, ADMIN).await;
    assert_eq!(by_admin.status, 409, "{}", by_admin.body);
    let again = get(&client, &format!("/v1/events/{record}"), READER).await;
    assert_eq!(again.body["contents"], "held");
    assert_eq!(again.body["event"]["payload"]["asked"]["actor"], ALICE);

    // And it is proven like any event.
    let index = search.body["self_audit"]["index"].as_u64().expect("index");
    client.wait_published(index + 1).await;
    let proof = get(&client, &format!("/v1/events/{record}/proof"), READER).await;
    assert_eq!(proof.status, 200, "{}", proof.body);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_view_and_an_export_are_each_one_record_and_a_refused_read_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = RunningServer::start(settings(dir.path(), true))
        .await
        .expect("server starts");
    let client = Client::new(&server);
    let logged = log_event(&client).await;
    client.wait_published(logged + 1).await;

    let event_id = {
        let search = get(&client, "/v1/events?action=invoice.pay", READER).await;
        search.body["events"][0]["event_id"]
            .as_str()
            .expect("an event")
            .to_string()
    };
    // logged + 1 is the search's record; the view is the next one.
    let view = get(&client, &format!("/v1/events/{event_id}"), READER).await;
    assert_eq!(view.status, 200, "{}", view.body);
    let view_record = view.recorded_by.expect("recorded");
    let export = get(&client, "/v1/export?action=invoice.pay&proof=false", READER).await;
    assert_eq!(export.status, 200, "{}", export.body);
    let export_record = export.recorded_by.expect("recorded");

    let records = get(&client, "/v1/events?actor=auditor&limit=10", ADMIN)
        .await
        .body;
    let listed: Vec<(u64, &str)> = records["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| {
            (
                event["index"].as_u64().expect("index"),
                event["action"].as_str().expect("action"),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (logged + 1, "cairn.read.search"),
            (logged + 2, "cairn.read.event"),
            (logged + 3, "cairn.read.export"),
        ]
    );
    let export_event = get(&client, &format!("/v1/events/{export_record}"), ADMIN).await;
    assert_eq!(
        export_event.body["event"]["payload"],
        json!({"asked": {"action": "invoice.pay", "proof": "false"}, "answered": 1})
    );
    let view_event = get(&client, &format!("/v1/events/{view_record}"), ADMIN).await;
    assert_eq!(
        view_event.body["event"]["resource"]["id"],
        event_id.as_str()
    );

    // A refused read (a bad query, an unknown event, a producer's token) records nothing.
    let bad = get(&client, "/v1/events?from=yesterday", READER).await;
    assert_eq!(bad.status, 400);
    assert!(bad.recorded_by.is_none());
    let missing = get(
        &client,
        "/v1/events/00000000-0000-4000-8000-000000000000",
        READER,
    )
    .await;
    assert_eq!(missing.status, 404);
    assert!(missing.recorded_by.is_none());
    let producer = get(&client, "/v1/events?action=invoice.pay", PRODUCER).await;
    assert_eq!(producer.status, 403);
    // The admin's listing and two views above were logged + 4 to + 6; nothing since: the
    // next event takes logged + 7.
    assert_eq!(log_event(&client).await, logged + 7);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_self_audit_off_reads_record_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = RunningServer::start(settings(dir.path(), false))
        .await
        .expect("server starts");
    let client = Client::new(&server);
    let logged = log_event(&client).await;
    let search = get(&client, &format!("/v1/events?actor={ALICE}"), READER).await;
    assert_eq!(search.status, 200, "{}", search.body);
    assert!(search.recorded_by.is_none());
    assert_eq!(search.body["self_audit"], Value::Null);
    let event_id = search.body["events"][0]["event_id"].as_str().expect("id");
    let view = get(&client, &format!("/v1/events/{event_id}"), READER).await;
    assert_eq!(view.status, 200);
    assert!(view.recorded_by.is_none());
    assert_eq!(log_event(&client).await, logged + 1);
    server.shutdown().await.expect("shutdown");
}
