//! The `/v1` audit-event API over real loopback HTTP: schema errors, roles, idempotency,
//! proofs, queries against a brute-force scan, erasure, holds, retention, export, restarts.

mod support_events;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use cairn_log::events::index::IndexConfig;
use cairn_log::events::{EventSettings, EventStoreConfig, RetentionRule, Role};
use cairn_log::http::ErrorCode;
use cairn_log::server::{RunningServer, ServerSettings};
use cairn_spec::export::{AnyExport, ExportTrust};
use cairn_spec::note::Ed25519Signer;
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{self, Receipt};
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};
use support_events::Client;

const ORIGIN: &str = "example.com/events-log";
const PRODUCER: &str = "producer-token";
const OTHER_PRODUCER: &str = "other-producer-token";
const READER: &str = "reader-token";
const ADMIN: &str = "admin-token";

fn signer() -> Ed25519Signer {
    support_events::signer(ORIGIN, 9)
}

fn settings(dir: &Path, retention: Vec<RetentionRule>) -> ServerSettings {
    let mut settings = support_events::settings(
        dir,
        signer(),
        &[(PRODUCER, "billing")],
        &[
            (OTHER_PRODUCER, "shipping", Role::Producer),
            (READER, "auditor", Role::Reader),
            (ADMIN, "root", Role::Admin),
        ],
    );
    settings.max_leaf_bytes = 8192;
    settings.events = EventSettings {
        principals: std::mem::take(&mut settings.events.principals),
        retention,
        maintenance_interval: Duration::from_millis(100),
        max_batch_events: 100,
        completeness_index: true,
        // Off: these tests compare queries with what they posted and count exact tree
        // sizes; the records of reads are tested in events_self_audit.rs.
        self_audit: false,
        // Small tables, so that runs and merges happen here too.
        store: EventStoreConfig {
            index: IndexConfig {
                table_events: 64,
                max_runs: 4,
            },
            privacy: None,
        },
    };
    settings
}

/// The indices of every event `query` finds, in pages of `limit`.
async fn query_all(client: &Client, query: &str, limit: usize) -> Vec<u64> {
    let events = client.query_all(query, limit, READER).await;
    events
        .iter()
        .map(|e| e["index"].as_u64().expect("index"))
        .collect()
}

fn event(id: Option<&str>, actor: &str, action: &str, resource: &str, payload: Value) -> Value {
    let mut event = json!({
        "timestamp": "2026-11-25T10:00:00Z",
        "actor": {"id": actor, "type": "user"},
        "action": action,
        "resource": {"type": "invoice", "id": resource},
        "outcome": "success",
        "payload": payload,
    });
    if let Some(id) = id {
        event["event_id"] = json!(id);
    }
    event
}

fn policy() -> Policy {
    support_events::policy(&signer())
}

async fn start(dir: &Path, retention: Vec<RetentionRule>) -> RunningServer {
    RunningServer::start(settings(dir, retention))
        .await
        .expect("server starts")
}

/// Checks an error answer: `status`, JSON with `code` (one of the documented codes, with that
/// status) and a detail that names no path of the server's (`dir`, its data directory, or a
/// source file).
async fn refused(response: reqwest::Response, status: u16, code: &str, dir: &Path) {
    let what = format!("{}", response.url());
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{what}"
    );
    let body: Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("a JSON body");
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(
        ErrorCode::ALL
            .iter()
            .any(|known| known.as_str() == code && known.status().as_u16() == status),
        "{code} with {status} is no documented code"
    );
    let detail = body["detail"].as_str().expect("a detail");
    let data_dir = dir.to_str().expect("UTF-8 path");
    assert!(
        !detail.contains(data_dir) && !detail.contains(".rs"),
        "{detail}"
    );
}

/// The methods an `Allow` header lists.
fn allowed(response: &reqwest::Response) -> BTreeSet<String> {
    response.headers()["allow"]
        .to_str()
        .expect("ASCII")
        .split(',')
        .map(|method| method.trim().to_string())
        .collect()
}

/// The `/v1` routes refuse as the tree API does: JSON with a documented code for an unknown
/// path, a method the route lacks, a query string, path or JSON body that does not parse, and a
/// body beyond its limit. A body's content type is not checked: the events are parsed strictly
/// whatever it says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_refusal_is_json_with_a_documented_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let server = start(dir, Vec::new()).await;
    let client = Client::new(&server);
    let (get, post, delete) = (
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
    );

    let nowhere = client
        .response(get.clone(), "/v1/nothing", Some(READER), None)
        .await;
    refused(nowhere, 404, "not_found", dir).await;
    for (method, path, allow) in [
        ("PUT", "/v1/events", "GET,HEAD,POST"),
        ("GET", "/v1/events/batch", "POST"),
        ("POST", "/v1/export", "GET,HEAD"),
        ("PATCH", "/v1/holds", "GET,HEAD,POST,DELETE"),
        ("GET", "/v1/events/x/payload", "DELETE"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = client.response(method, path, Some(ADMIN), None).await;
        let expected: BTreeSet<String> = allow.split(',').map(str::to_string).collect();
        assert_eq!(allowed(&response), expected, "{path}");
        refused(response, 405, "method_not_allowed", dir).await;
    }

    // Query strings and paths that do not parse.
    for path in [
        "/v1/events?colour=red",
        "/v1/events?limit=0",
        "/v1/events?from=yesterday",
        "/v1/export?cursor=%FF",
        "/v1/events/%FF",
        "/v1/events/not-a-uuid/proof",
    ] {
        let response = client.response(get.clone(), path, Some(READER), None).await;
        refused(response, 400, "bad_request", dir).await;
    }
    let erase = "/v1/events/0123abcd-ef45-4678-89ab-cdef01234567/payload?reason=x&colour=red";
    let response = client
        .response(delete.clone(), erase, Some(ADMIN), None)
        .await;
    refused(response, 400, "bad_request", dir).await;
    let wait = client
        .response(
            post.clone(),
            "/v1/events?wait=soon",
            Some(PRODUCER),
            Some(b"{}".to_vec()),
        )
        .await;
    refused(wait, 400, "bad_request", dir).await;

    // JSON bodies that do not parse, or are not what the route takes.
    for (path, body, code) in [
        ("/v1/holds", &b"{\"actor\":"[..], "bad_request"),
        (
            "/v1/holds",
            b"{\"actor\":\"a\",\"colour\":1}",
            "bad_request",
        ),
        ("/v1/holds", b"[]", "bad_request"),
        ("/v1/events", b"{", "invalid_event"),
        ("/v1/events/batch", b"[{", "invalid_event"),
        ("/v1/events/batch", b"{}", "bad_request"),
        ("/v1/events/batch", b"[]", "bad_request"),
    ] {
        let token = if path == "/v1/holds" { ADMIN } else { PRODUCER };
        let response = client
            .response(post.clone(), path, Some(token), Some(body.to_vec()))
            .await;
        refused(response, 400, code, dir).await;
    }
    // Bodies beyond their limits: an event (1 MiB), a hold request (16 KiB), a batch.
    for (path, size) in [
        ("/v1/events", (1 << 20) + 1),
        ("/v1/holds", 16 * 1024 + 1),
        ("/v1/events/batch", (1 << 20) + 1),
        ("/v1/verify", 8 << 20),
    ] {
        let token = match path {
            "/v1/holds" => ADMIN,
            "/v1/verify" => READER,
            _ => PRODUCER,
        };
        let response = client
            .response(post.clone(), path, Some(token), Some(vec![b' '; size]))
            .await;
        refused(response, 413, "too_large", dir).await;
    }
    // Without a token, and with a role that does not allow it.
    let one = event(None, "alice", "invoice.pay", "inv-1", json!(1));
    let body = Some(one.to_string().into_bytes());
    let anonymous = client
        .response(post.clone(), "/v1/events", None, body.clone())
        .await;
    refused(anonymous, 401, "unauthorized", dir).await;
    let reader = client
        .response(post, "/v1/events", Some(READER), body)
        .await;
    refused(reader, 403, "forbidden", dir).await;

    // No content type is needed: nothing above was refused for lacking one.
    let untyped = client
        .http
        .post(format!("{}/v1/events", client.base))
        .bearer_auth(PRODUCER)
        .body(one.to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(untyped.status(), 200);
    assert_eq!(query_all(&client, "", 100).await.len(), 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_events_naming_the_field_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);

    let mut missing_actor = event(None, "alice", "invoice.pay", "inv-1", json!(null));
    missing_actor
        .as_object_mut()
        .expect("object")
        .remove("actor");
    let (status, body) = client.post("/v1/events", PRODUCER, &missing_actor).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().expect("detail").contains("actor"),
        "{body}"
    );

    let mut unknown = event(None, "alice", "invoice.pay", "inv-1", json!(1));
    unknown["colour"] = json!("red");
    let (status, body) = client.post("/v1/events", PRODUCER, &unknown).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().expect("detail").contains("colour"),
        "{body}"
    );

    let mut bad_id = event(
        Some("not-a-uuid"),
        "alice",
        "invoice.pay",
        "inv-1",
        json!(1),
    );
    bad_id["outcome"] = json!("success");
    let (status, body) = client.post("/v1/events", PRODUCER, &bad_id).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("event_id"),
        "{body}"
    );

    let raw_cases: Vec<Vec<u8>> = vec![
        // Duplicate member names.
        br#"{"timestamp":"2026-11-25T10:00:00Z","timestamp":"2026-11-25T10:00:01Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success"}"#.to_vec(),
        // Invalid UTF-8.
        b"{\"timestamp\":\"2026-11-25T10:00:00Z\",\"actor\":{\"id\":\"\xff\",\"type\":\"u\"},\"action\":\"x\",\"resource\":{\"type\":\"t\",\"id\":\"i\"},\"outcome\":\"success\"}".to_vec(),
        // An integer a double cannot hold.
        br#"{"timestamp":"2026-11-25T10:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","payload":{"n":9007199254740993}}"#.to_vec(),
        // Nesting deeper than the limit.
        format!(
            r#"{{"timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"a","type":"u"}},"action":"x","resource":{{"type":"t","id":"i"}},"outcome":"success","payload":{}{}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        )
        .into_bytes(),
        // Not JSON at all, or JSON cut short.
        b"hello".to_vec(),
        b"{\"timestamp\":".to_vec(),
    ];
    for raw in raw_cases {
        let (status, body) = client
            .send(
                reqwest::Method::POST,
                "/v1/events",
                Some(PRODUCER),
                Some(raw),
            )
            .await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_event")),
            "{body}"
        );
    }
    // Too large: over 1 MiB.
    let huge = event(None, "a", "x", "i", json!("x".repeat(1 << 20)));
    let (status, body) = client.post("/v1/events", PRODUCER, &huge).await;
    assert_eq!(
        (status, &body["error"]),
        (413, &json!("too_large")),
        "{body}"
    );

    // A batch with one bad event stores none of them.
    let batch = json!([
        event(None, "alice", "invoice.pay", "inv-1", json!(1)),
        {"timestamp": "yesterday"},
    ]);
    let (status, body) = client.post("/v1/events/batch", PRODUCER, &batch).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_event")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().expect("detail").contains("event 1"),
        "{body}"
    );

    assert!(query_all(&client, "", 100).await.is_empty());
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    let one = event(None, "alice", "invoice.pay", "inv-1", json!({"amount": 5}));

    let (status, _) = client
        .send(
            reqwest::Method::POST,
            "/v1/events",
            None,
            Some(one.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(client.post("/v1/events", "wrong-token", &one).await.0, 401);
    assert_eq!(client.post("/v1/events", READER, &one).await.0, 403);
    assert_eq!(client.post("/v1/events", ADMIN, &one).await.0, 403);
    let (status, answer) = client.post("/v1/events", OTHER_PRODUCER, &one).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["event_id"].as_str().expect("id").to_string();

    assert_eq!(client.get("/v1/events", PRODUCER).await.0, 403);
    assert_eq!(client.get("/v1/events", READER).await.0, 200);
    assert_eq!(client.get("/v1/events", ADMIN).await.0, 200);
    assert_eq!(
        client.get(&format!("/v1/events/{id}"), PRODUCER).await.0,
        403
    );
    assert_eq!(client.get("/v1/export", PRODUCER).await.0, 403);
    let payload_path = format!("/v1/events/{id}/payload");
    assert_eq!(client.delete(&payload_path, PRODUCER, None).await.0, 403);
    assert_eq!(client.delete(&payload_path, READER, None).await.0, 403);
    let hold = json!({"actor": "alice", "reason": "case 1"});
    assert_eq!(client.post("/v1/holds", READER, &hold).await.0, 403);
    assert_eq!(client.post("/v1/holds", PRODUCER, &hold).await.0, 403);
    // The raw leaf API is for producers too, and refuses leaves that pose as events.
    assert_eq!(
        client
            .send(
                reqwest::Method::POST,
                "/add",
                Some(READER),
                Some(b"raw".to_vec())
            )
            .await
            .0,
        403
    );
    let (_, got) = client.get(&format!("/v1/events/{id}"), READER).await;
    let forged = got["leaf"].to_string().into_bytes();
    let (status, body) = client
        .send(reqwest::Method::POST, "/add", Some(PRODUCER), Some(forged))
        .await;
    assert_eq!(status, 400, "{body}");
    // The submitting principal is bound into the leaf.
    assert_eq!(got["event"]["submitted_by"], "shipping");

    // Every principal may ask who it is; no token may not.
    for (token, name, role) in [
        (PRODUCER, "billing", "producer"),
        (READER, "auditor", "reader"),
        (ADMIN, "root", "admin"),
    ] {
        let (status, answer) = client.get("/v1/whoami", token).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, json!({"name": name, "role": role}));
    }
    assert_eq!(client.get("/v1/whoami", "wrong-token").await.0, 401);
    let (status, _) = client
        .send(reqwest::Method::GET, "/v1/whoami", None, None)
        .await;
    assert_eq!(status, 401);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_idempotent_by_event_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    let id = "5f1b8a0e-2c4d-4e6f-8a9b-0c1d2e3f4a5b";
    let first = event(
        Some(id),
        "alice",
        "invoice.pay",
        "inv-1",
        json!({"amount": 5}),
    );
    let (status, answer) = client.post("/v1/events", PRODUCER, &first).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["event_id"], id);
    assert_eq!(answer["duplicate"], false);
    let index = answer["index"].as_u64().expect("index");

    // The same event again (another receive time): the same index.
    let (status, again) = client.post("/v1/events", PRODUCER, &first).await;
    assert_eq!(status, 200);
    assert_eq!(again["index"], index);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["leaf_hash"], answer["leaf_hash"]);
    // The same ID with another body, or from another producer: 409.
    let changed = event(
        Some(id),
        "alice",
        "invoice.pay",
        "inv-1",
        json!({"amount": 6}),
    );
    assert_eq!(client.post("/v1/events", PRODUCER, &changed).await.0, 409);
    assert_eq!(
        client.post("/v1/events", OTHER_PRODUCER, &first).await.0,
        409
    );
    // In a batch, the known event keeps its index, new ones follow.
    let batch = json!([
        first,
        event(None, "bob", "invoice.view", "inv-2", json!(null))
    ]);
    let (status, answer) = client.post("/v1/events/batch", PRODUCER, &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["events"][0]["index"], index);
    assert_eq!(answer["events"][1]["index"], index + 1);
    // One ID twice in one batch is refused.
    let twice = json!([first, first]);
    assert_eq!(
        client.post("/v1/events/batch", PRODUCER, &twice).await.0,
        400
    );
    // A batch over the configured count is refused.
    let many: Vec<Value> = (0..101)
        .map(|_| event(None, "bob", "x", "y", json!(null)))
        .collect();
    assert_eq!(
        client
            .post("/v1/events/batch", PRODUCER, &json!(many))
            .await
            .0,
        413
    );
    assert_eq!(query_all(&client, "", 10).await, vec![index, index + 1]);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_served_proved_and_verified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    let payload = json!({"amount": 12.5, "currency": "EUR", "card": "4111"});
    let (status, answer) = client
        .post(
            "/v1/events?wait=checkpoint",
            PRODUCER,
            &event(None, "alice", "invoice.pay", "inv-7", payload.clone()),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["event_id"].as_str().expect("id").to_string();
    let receipt = Receipt::from_json(answer["receipt"].to_string().as_bytes()).expect("receipt");
    receipt::verify(&receipt, &policy()).expect("the receipt verifies");

    let (status, got) = client.get(&format!("/v1/events/{id}"), READER).await;
    assert_eq!(status, 200);
    assert_eq!(got["index"], answer["index"]);
    assert_eq!(got["schema_version"], 2);
    assert_eq!(got["contents"], "held");
    assert_eq!(got["event"]["payload"], payload);
    assert_eq!(got["event"]["submitted_by"], "billing");
    assert_eq!(got["leaf"]["submitted_by"], "billing");
    assert!(got["event"]["received_at"].is_string());
    assert!(got["leaf"]["commitments"]["payload"].is_string());
    assert!(got["leaf"].get("payload").is_none() && got["leaf"].get("actor").is_none());
    assert_eq!(got["openings"]["payload"]["value"], payload);

    let (status, proof) = client.get(&format!("/v1/events/{id}/proof"), READER).await;
    assert_eq!(status, 200);
    let proof = Receipt::from_json(proof.to_string().as_bytes()).expect("receipt");
    receipt::verify(&proof, &policy()).expect("the proof verifies");
    assert_eq!(proof.leaf_hash, receipt.leaf_hash);

    // /v1/verify: the receipt, the event as served, and tampered forms of both.
    let (_, verdict) = client.post("/v1/verify", READER, &answer["receipt"]).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    let mut bad_receipt = answer["receipt"].clone();
    bad_receipt["index"] = json!(answer["index"].as_u64().expect("index") + 1);
    let (_, verdict) = client.post("/v1/verify", READER, &bad_receipt).await;
    assert_eq!(verdict["valid"], false);
    assert!(verdict["reason"].is_string());
    let (_, verdict) = client.post("/v1/verify", READER, &got).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(
        verdict["opened"],
        json!(["actor", "resource", "payload"]),
        "{verdict}"
    );
    let mut other_payload = got.clone();
    other_payload["openings"]["payload"]["value"]["amount"] = json!(13);
    let (_, verdict) = client.post("/v1/verify", READER, &other_payload).await;
    assert_eq!(verdict["valid"], false);
    assert!(verdict["reason"]
        .as_str()
        .expect("reason")
        .contains("payload"));
    let mut other_event = got.clone();
    other_event["leaf"]["outcome"] = json!("failure");
    let (_, verdict) = client.post("/v1/verify", READER, &other_event).await;
    assert_eq!(verdict["valid"], false);
    let (status, _) = client
        .get("/v1/events/00000000-0000-4000-8000-000000000000", READER)
        .await;
    assert_eq!(status, 404);
    assert_eq!(client.get("/v1/events/nope", READER).await.0, 400);
    server.shutdown().await.expect("shutdown");
}

#[derive(Clone, Debug)]
struct Posted {
    index: u64,
    actor: String,
    resource: String,
    action: String,
    seconds: i64,
}

fn brute_force(
    posted: &[Posted],
    actor: Option<&str>,
    resource: Option<&str>,
    action: Option<&str>,
    from: Option<i64>,
    to: Option<i64>,
) -> Vec<u64> {
    posted
        .iter()
        .filter(|p| actor.is_none_or(|a| p.actor == a))
        .filter(|p| resource.is_none_or(|r| p.resource == r))
        .filter(|p| action.is_none_or(|a| p.action == a))
        .filter(|p| from.is_none_or(|f| p.seconds >= f))
        .filter(|p| to.is_none_or(|t| p.seconds < t))
        .map(|p| p.index)
        .collect()
}

fn rfc3339(seconds: i64) -> String {
    cairn_spec::time::Instant::from_unix(seconds, 0).to_rfc3339()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_equal_a_brute_force_scan_and_survive_restart_and_rebuild() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    let mut random = rand::rngs::StdRng::seed_from_u64(0x0ca1_2026);
    let base = 1_764_000_000i64;
    let mut posted = Vec::new();
    for _ in 0..8 {
        let mut batch = Vec::new();
        let mut drafts = Vec::new();
        for _ in 0..50 {
            let draft = Posted {
                index: 0,
                actor: format!("user-{}", random.gen_range(0..5)),
                resource: format!("res-{}", random.gen_range(0..7)),
                action: ["read", "write", "delete", "login"][random.gen_range(0..4)].to_string(),
                seconds: base + random.gen_range(0..86_400),
            };
            let mut one = event(
                None,
                &draft.actor,
                &draft.action,
                &draft.resource,
                json!({"n": 1}),
            );
            one["timestamp"] = json!(rfc3339(draft.seconds));
            batch.push(one);
            drafts.push(draft);
        }
        let (status, answer) = client
            .post("/v1/events/batch", PRODUCER, &json!(batch))
            .await;
        assert_eq!(status, 200, "{answer}");
        for (draft, answer) in drafts
            .iter_mut()
            .zip(answer["events"].as_array().expect("events"))
        {
            draft.index = answer["index"].as_u64().expect("index");
        }
        posted.extend(drafts);
    }
    let mut queries = Vec::new();
    for _ in 0..40 {
        let actor = random
            .gen_bool(0.4)
            .then(|| format!("user-{}", random.gen_range(0..6)));
        let resource = random
            .gen_bool(0.4)
            .then(|| format!("res-{}", random.gen_range(0..8)));
        let action = random.gen_bool(0.4).then(|| {
            ["read", "write", "delete", "login", "none"][random.gen_range(0..5)].to_string()
        });
        let from = random
            .gen_bool(0.3)
            .then(|| base + random.gen_range(0..86_400));
        let to = random
            .gen_bool(0.3)
            .then(|| base + random.gen_range(0..86_400));
        let limit = random.gen_range(1..60);
        queries.push((actor, resource, action, from, to, limit));
    }
    let run = |client: &Client, queries: Vec<_>, posted: Vec<Posted>| {
        let client_base = client.base.clone();
        async move {
            let client = Client {
                http: reqwest::Client::new(),
                base: client_base,
            };
            for (actor, resource, action, from, to, limit) in queries {
                let actor: Option<String> = actor;
                let resource: Option<String> = resource;
                let action: Option<String> = action;
                let mut parts = Vec::new();
                if let Some(a) = &actor {
                    parts.push(format!("actor={a}"));
                }
                if let Some(r) = &resource {
                    parts.push(format!("resource={r}"));
                }
                if let Some(a) = &action {
                    parts.push(format!("action={a}"));
                }
                if let Some(f) = from {
                    parts.push(format!("from={}", rfc3339(f)));
                }
                if let Some(t) = to {
                    parts.push(format!("to={}", rfc3339(t)));
                }
                let query = parts.join("&");
                let found = query_all(&client, &query, limit).await;
                let expected = brute_force(
                    &posted,
                    actor.as_deref(),
                    resource.as_deref(),
                    action.as_deref(),
                    from,
                    to,
                );
                assert_eq!(found, expected, "query {query} limit {limit}");
            }
        }
    };
    run(&client, queries.clone(), posted.clone()).await;
    assert_eq!(client.get("/v1/events?limit=1001", READER).await.0, 400);
    assert_eq!(client.get("/v1/events?cursor=zzz", READER).await.0, 400);
    assert_eq!(client.get("/v1/events?from=yesterday", READER).await.0, 400);
    server.shutdown().await.expect("shutdown");

    // A restart keeps the indexes.
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    run(&client, queries.clone(), posted.clone()).await;
    server.shutdown().await.expect("shutdown");

    // Lost indexes are rebuilt from the log's leaves at start.
    std::fs::remove_dir_all(dir.path().join("events").join("index")).expect("delete the index");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    run(&client, queries, posted).await;
    // The payloads were kept apart from the derived indexes.
    let (_, first) = client.get("/v1/events?limit=1", READER).await;
    let id = first["events"][0]["event_id"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, got) = client.get(&format!("/v1/events/{id}"), READER).await;
    assert_eq!(got["event"]["payload"], json!({"n": 1}));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_keeps_receipts_valid_and_is_recorded_as_an_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    let payload = json!({"name": "Alice Example", "email": "alice@example.com"});
    let (status, answer) = client
        .post(
            "/v1/events?wait=checkpoint",
            PRODUCER,
            &event(None, "alice", "profile.update", "user-1", payload.clone()),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["event_id"].as_str().expect("id").to_string();
    let (_, before) = client.get(&format!("/v1/events/{id}"), READER).await;

    let (status, erased) = client
        .delete(
            &format!("/v1/events/{id}/payload?reason=gdpr-art-17"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200, "{erased}");
    let (_, after) = client.get(&format!("/v1/events/{id}"), READER).await;
    assert_eq!(after["contents"], "erased");
    assert_eq!(after["event"], Value::Null);
    assert_eq!(after["openings"], Value::Null);
    assert_eq!(after["leaf"], before["leaf"]);
    assert_eq!(after["erased_by"], erased["recorded_by"]["event_id"]);

    // The receipt from before the erasure still verifies, offline and by the log, and the
    // erased contents, still held by someone, still open the leaf's commitments.
    let receipt = Receipt::from_json(answer["receipt"].to_string().as_bytes()).expect("receipt");
    receipt::verify(&receipt, &policy()).expect("still valid");
    let (_, verdict) = client.post("/v1/verify", READER, &answer["receipt"]).await;
    assert_eq!(verdict["valid"], true);
    let (_, verdict) = client.post("/v1/verify", READER, &before).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    let erasure_index = erased["recorded_by"]["index"].as_u64().expect("index");
    client.wait_published(erasure_index + 1).await;
    let (status, proof) = client.get(&format!("/v1/events/{id}/proof"), READER).await;
    assert_eq!(status, 200);
    receipt::verify(
        &Receipt::from_json(proof.to_string().as_bytes()).expect("receipt"),
        &policy(),
    )
    .expect("a fresh proof verifies");

    // The erasure is an event, by the admin.
    let (_, recorded) = client
        .get("/v1/events?action=cairn.payload.erase", READER)
        .await;
    let recorded = recorded["events"].as_array().expect("events").clone();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["actor"], "root");
    assert_eq!(recorded[0]["resource"], id.as_str());
    let erasure_id = recorded[0]["event_id"].as_str().expect("id");
    let (_, erasure) = client
        .get(&format!("/v1/events/{erasure_id}"), READER)
        .await;
    assert_eq!(erasure["event"]["submitted_by"], "root");
    assert_eq!(erasure["payload"]["reason"], "gdpr-art-17");
    // Erasing again: nothing is held any more.
    assert_eq!(
        client
            .delete(&format!("/v1/events/{id}/payload"), ADMIN, None)
            .await
            .0,
        404
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_blocks_erasure_until_lifted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    let (_, answer) = client
        .post(
            "/v1/events",
            PRODUCER,
            &event(
                None,
                "mallory",
                "wire.transfer",
                "acct-9",
                json!({"amount": 1e6}),
            ),
        )
        .await;
    let id = answer["event_id"].as_str().expect("id").to_string();
    let erase = format!("/v1/events/{id}/payload");
    for hold in [
        json!({"actor": "mallory", "reason": "case 42"}),
        json!({"resource": "acct-9", "reason": "case 43"}),
        json!({"event_id": id, "reason": "case 44"}),
    ] {
        let (status, set) = client.post("/v1/holds", ADMIN, &hold).await;
        assert_eq!(status, 201, "{set}");
        let (status, again) = client.post("/v1/holds", ADMIN, &hold).await;
        assert_eq!(
            (status, &again["error"]),
            (409, &json!("conflict")),
            "{again}"
        );
        let (status, refused) = client.delete(&erase, ADMIN, None).await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["error"], "held");
        let (_, holds) = client.get("/v1/holds", READER).await;
        assert_eq!(holds["holds"].as_array().expect("holds").len(), 1);
        let (status, lifted) = client.delete("/v1/holds", ADMIN, Some(&hold)).await;
        assert_eq!(status, 200, "{lifted}");
        assert_eq!(client.delete("/v1/holds", ADMIN, Some(&hold)).await.0, 404);
    }
    assert_eq!(
        client
            .post("/v1/holds", ADMIN, &json!({"actor": "a", "resource": "b"}))
            .await
            .0,
        400
    );
    let (status, erased) = client.delete(&erase, ADMIN, None).await;
    assert_eq!(status, 200, "{erased}");
    // Each hold set and lifted is an event by the admin.
    for action in ["cairn.hold.set", "cairn.hold.lift"] {
        let (_, found) = client
            .get(&format!("/v1/events?action={action}"), READER)
            .await;
        let found = found["events"].as_array().expect("events").clone();
        assert_eq!(found.len(), 3, "{action}");
        assert!(found.iter().all(|e| e["actor"] == "root"));
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_erases_expired_payloads_and_records_what_it_erased() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = vec![RetentionRule {
        action: Some("session.heartbeat".into()),
        resource_type: None,
        max_age_seconds: 0,
    }];
    let server = start(dir.path(), rules).await;
    let client = Client::new(&server);
    // bob is under legal hold before his event arrives: his payload stays.
    let (status, _) = client
        .post(
            "/v1/holds",
            ADMIN,
            &json!({"actor": "bob", "reason": "case"}),
        )
        .await;
    assert_eq!(status, 201);
    let mut posted = Vec::new();
    for (actor, action) in [
        ("alice", "session.heartbeat"),
        ("bob", "session.heartbeat"),
        ("alice", "invoice.pay"),
    ] {
        let (status, answer) = client
            .post(
                "/v1/events",
                PRODUCER,
                &event(None, actor, action, "r-1", json!({"ip": "192.0.2.1"})),
            )
            .await;
        assert_eq!(status, 200);
        posted.push(answer["event_id"].as_str().expect("id").to_string());
    }
    let mut erased = false;
    for _ in 0..200 {
        let (_, got) = client
            .get(&format!("/v1/events/{}", posted[0]), READER)
            .await;
        if got["contents"] == "erased" {
            erased = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(erased, "the expired payload was not erased");
    // Two more runs finish (so at least one ran wholly after the erasure): the held and the
    // unexpired payloads stay.
    let seen = retention_runs(&client).await;
    let mut passed = false;
    for _ in 0..2400 {
        if retention_runs(&client).await >= seen + 2 {
            passed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(passed, "no retention run finished after the erasure");
    for kept in &posted[1..] {
        let (_, got) = client.get(&format!("/v1/events/{kept}"), READER).await;
        assert_eq!(got["contents"], "held", "{got}");
    }
    let (_, recorded) = client
        .get("/v1/events?action=cairn.retention.erase", READER)
        .await;
    let recorded = recorded["events"].as_array().expect("events").clone();
    assert_eq!(recorded.len(), 1);
    let record_id = recorded[0]["event_id"].as_str().expect("id");
    let (_, record) = client.get(&format!("/v1/events/{record_id}"), READER).await;
    assert_eq!(record["event"]["submitted_by"], "cairn-log/retention");
    assert_eq!(record["payload"]["event_ids"], json!([posted[0]]));
    server.shutdown().await.expect("shutdown");
}

/// `cairn_log_retention_runs_total` from `GET /metrics`.
async fn retention_runs(client: &Client) -> u64 {
    let (status, text) = client.get_text("/metrics", READER).await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|line| line.strip_prefix("cairn_log_retention_runs_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cairn_log_retention_runs_total in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_verify_offline_and_tampering_is_detected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    let mut ids = Vec::new();
    for i in 0..6 {
        let mut one = event(
            None,
            "carol",
            "invoice.pay",
            &format!("inv-{i}"),
            json!({"i": i}),
        );
        one["timestamp"] = json!(rfc3339(1_764_000_000 + i * 60));
        let (_, answer) = client.post("/v1/events", PRODUCER, &one).await;
        ids.push(answer["event_id"].as_str().expect("id").to_string());
    }
    // One raw leaf between, which an export leaves out.
    client
        .send(
            reqwest::Method::POST,
            "/add",
            Some(PRODUCER),
            Some(b"raw leaf".to_vec()),
        )
        .await;
    let (status, _) = client
        .delete(&format!("/v1/events/{}/payload", ids[2]), ADMIN, None)
        .await;
    assert_eq!(status, 200);
    client.wait_published(8).await;

    let (status, text) = client
        .get_text(
            &format!(
                "/v1/export?actor=carol&from={}&to={}",
                rfc3339(1_764_000_060),
                rfc3339(1_764_000_300)
            ),
            READER,
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let bundle = AnyExport::from_json(text.as_bytes()).expect("a bundle");
    let key = signer().verifier();
    let verified = bundle.verify(ExportTrust::LogKey(&key)).expect("verifies");
    assert_eq!(verified.events.len(), 4);
    let complete = verified
        .events
        .iter()
        .filter(|event| event.contents.is_complete())
        .count();
    assert_eq!(complete, 3, "the erased contents are absent");
    assert!(verified
        .events
        .iter()
        .any(|event| event.to_string().ends_with("committed, contents erased")));
    bundle
        .verify(ExportTrust::Policy(&policy()))
        .expect("verifies with a policy");

    let bytes = text.into_bytes();
    for position in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[position] ^= 0x01;
        let result =
            AnyExport::from_json(&changed).and_then(|b| b.verify(ExportTrust::LogKey(&key)));
        assert!(
            result.is_err(),
            "a flipped byte at {position} went unnoticed"
        );
    }
    // The whole log, in pages.
    let (status, all) = client.get_text("/v1/export?limit=3", READER).await;
    assert_eq!(status, 200);
    assert_eq!(
        match AnyExport::from_json(all.as_bytes()).expect("bundle") {
            AnyExport::V2(bundle) => bundle.events.len(),
            AnyExport::V1(_) => panic!("a cairn.export/v1 bundle"),
        },
        3
    );
    server.shutdown().await.expect("shutdown");
}

/// An audit event's leaf, of either schema, cannot come in through the raw routes: only
/// `POST /v1/events` binds the submitting principal (`submitted_by`), so a raw leaf that is an
/// event would let a producer log an event in another's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_leaves_of_either_schema_are_refused_on_the_raw_routes() {
    use cairn_spec::event::{EventId, EventInput, EventSalts};
    use cairn_spec::time::Instant;

    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new()).await;
    let client = Client::new(&server);
    let input = || {
        EventInput::parse(
            event(None, "alice", "invoice.pay", "inv-9", json!({"amount": 3}))
                .to_string()
                .as_bytes(),
        )
        .expect("a valid event")
    };
    let id = EventId::parse("0b6f3c2e-5d1a-4e8b-9c7d-2a1f0e3d4c5b").expect("an event ID");
    let received = Instant::from_seconds(1_764_064_800);
    let (v1, _) = input()
        .into_leaf(id.clone(), received, "someone-else")
        .expect("a v1 leaf");
    let (v2, _) = input()
        .into_leaf_v2(
            id,
            received,
            "someone-else",
            &EventSalts::from_random([[7; 32]; 4]),
        )
        .expect("a v2 leaf");
    for (schema, leaf) in [("v1", v1.leaf), ("v2", v2.leaf)] {
        let response = client
            .response(
                reqwest::Method::POST,
                "/add",
                Some(PRODUCER),
                Some(leaf.clone()),
            )
            .await;
        assert_eq!(response.status(), 400, "{schema} leaf through /add");
        refused(response, 400, "bad_request", dir.path()).await;
        let mut batch = (leaf.len() as u32).to_be_bytes().to_vec();
        batch.extend_from_slice(&leaf);
        let response = client
            .http
            .post(format!("{}/add-batch", client.base))
            .bearer_auth(PRODUCER)
            .header("content-type", "application/octet-stream")
            .body(batch)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 400, "{schema} leaf through /add-batch");
    }
}
