//! `cairn-log migrate` with real processes: a log that ran on its embedded store is copied into
//! PostgreSQL and a bucket (s3s-fs), the copy is proved, and a front-end of the scaled backend
//! then serves the same checkpoint and goes on from it; the bucket passes `cairn-monitor
//! audit`. A second run finds everything there and copies nothing; the copy of another log
//! into the same target is refused. The log's audit events come along: the data subjects' keys
//! are copied (wrapped under the same KEK), so the scaled front-end opens an event's contents
//! that the embedded log sealed, and finds it by actor.

mod support_pg;
mod support_s3;
mod support_scaled;

use std::process::Command;

use cairn_log::config::token_digest_hex;
use serde_json::{json, Value};
use support_scaled::{Cluster, FrontEnd};

const READER: &str = "reader-token-for-the-migration-test";
const ACTOR: &str = "carol.migrated@example.org";

/// A reader principal, for both logs' configurations.
fn reader() -> String {
    format!(
        "[[principals]]\nname = \"auditor\"\nrole = \"reader\"\ntoken_sha256 = \"{}\"\n",
        token_digest_hex(READER)
    )
}

/// `GET path` on `front_end` as the reader: the status and the JSON answered.
async fn read(cluster: &Cluster, front_end: &FrontEnd, path: &str) -> (u16, Value) {
    let response = cluster
        .http
        .get(format!("{}{path}", front_end.base))
        .bearer_auth(READER)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Submits an audit event of [`ACTOR`] through `front_end`: its ID.
async fn submit_event(cluster: &Cluster, front_end: &FrontEnd, note: &str) -> String {
    let event = json!({
        "timestamp": "2026-12-07T10:00:00Z",
        "actor": {"id": ACTOR, "type": "user"},
        "action": "ledger.close",
        "resource": {"type": "ledger", "id": "ledger-2026"},
        "outcome": "success",
        "payload": {"note": note},
    });
    let response = cluster
        .http
        .post(format!("{}/v1/events", front_end.base))
        .bearer_auth(&cluster.token)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .expect("POST /v1/events");
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    answer["event_id"]
        .as_str()
        .expect("an event ID")
        .to_string()
}

/// The checkpoint note `base` serves.
async fn checkpoint(cluster: &Cluster, base: &str) -> String {
    cluster
        .http
        .get(format!("{base}/checkpoint"))
        .send()
        .await
        .expect("GET /checkpoint")
        .text()
        .await
        .expect("body")
}

/// Runs `cairn-log migrate --from <data_dir> --config <config>`: its output, or its error.
fn migrate(data_dir: &std::path::Path, config: &std::path::Path) -> Result<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
        .args(["migrate", "--from"])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .output()
        .expect("runs cairn-log migrate");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_log_moves_into_postgres_and_a_bucket_with_the_same_tree() {
    let cluster = Cluster::start();

    // A log on one machine: 700 leaves, some named by an idempotency key.
    let (embedded_config, port) = cluster.write_config_with("embedded", false, &reader());
    let mut embedded = cluster.start_log("embedded", &embedded_config, port).await;
    cluster.add(&embedded, b"first", Some("key-1")).await;
    let leaves: Vec<Vec<u8>> = (0..697).map(|n| format!("leaf {n}").into_bytes()).collect();
    cluster.add_batch(&embedded, &leaves).await;
    // Two audit events, their contents sealed under the actor's data key.
    let events = [
        submit_event(&cluster, &embedded, "closed in the old home").await,
        submit_event(&cluster, &embedded, "and audited there").await,
    ];
    cluster.wait_for_checkpoint(&embedded, 700).await;
    // A clean stop signs the final checkpoint.
    embedded.signal("-TERM");
    let status = embedded
        .child
        .take()
        .expect("running")
        .wait()
        .expect("exits");
    assert!(status.success(), "{}", embedded.log());
    let data_dir = cluster.dir.path().join("embedded");

    let (scaled_config, port) = cluster.write_config_with("front", true, &reader());
    let report = migrate(&data_dir, &scaled_config).expect("the migration succeeds");
    assert!(
        report.contains("data subjects' keys: 1 in the target"),
        "{report}"
    );
    assert!(
        report.contains("migrated: 700 entries (700 copied now)"),
        "{report}"
    );
    assert!(
        report.contains("of size 700 carried over and published"),
        "{report}"
    );
    assert!(
        report.contains("proof: the copy's root at size 700"),
        "{report}"
    );

    // The bucket holds the log, audited from its objects alone.
    assert_eq!(cluster.bucket_checkpoint_size(), 700);
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
    let in_bucket = cluster.bucket_leaves();
    assert_eq!(in_bucket[0], b"first");
    assert_eq!(in_bucket[697], b"leaf 696");

    // Again: everything is there and matches; nothing is copied.
    let again = migrate(&data_dir, &scaled_config).expect("a second run succeeds");
    assert!(
        again.contains("700 entries already in the target match"),
        "{again}"
    );
    assert!(again.contains("(0 copied now)"), "{again}");
    assert!(
        again.contains("data subjects' keys: 1 in the target"),
        "{again}"
    );

    // A front-end serves the same signed checkpoint, and goes on from it.
    let front = cluster.start_log("front", &scaled_config, port).await;
    let served = checkpoint(&cluster, &front.base).await;
    let in_bucket_note =
        std::fs::read_to_string(cluster.s3.object_file("checkpoint")).expect("checkpoint");
    assert_eq!(
        served.lines().take(3).collect::<Vec<_>>(),
        in_bucket_note.lines().take(3).collect::<Vec<_>>()
    );
    assert_eq!(
        cluster.add(&front, b"first", Some("key-1")).await,
        (0, true)
    );
    // The events sealed on the old home open here, and are found by their actor.
    for (id, note) in events
        .iter()
        .zip(["closed in the old home", "and audited there"])
    {
        let (status, shown) = read(&cluster, &front, &format!("/v1/events/{id}")).await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["contents"], "held", "{shown}");
        assert_eq!(shown["event"]["actor"]["id"], ACTOR, "{shown}");
        assert_eq!(shown["event"]["payload"]["note"], note, "{shown}");
    }
    let (status, page) = read(&cluster, &front, &format!("/v1/events?actor={ACTOR}")).await;
    assert_eq!(status, 200, "{page}");
    let found: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["event_id"].as_str())
        .collect();
    assert_eq!(found, events.iter().map(String::as_str).collect::<Vec<_>>());
    // Each of those three reads was recorded as a self-audit event (700, 701, 702).
    assert_eq!(
        cluster.add(&front, b"after the move", None).await,
        (703, false)
    );
    cluster.wait_for_bucket(704).await;
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
    // A clean stop gives the lease up.
    let mut front = front;
    front.signal("-TERM");
    front.child.take().expect("running").wait().expect("exits");

    // Another log into the same target is refused, and changes nothing.
    let (other_config, port) = cluster.write_config("other", false);
    let mut other = cluster.start_log("other", &other_config, port).await;
    cluster.add(&other, b"another log", None).await;
    cluster.wait_for_checkpoint(&other, 1).await;
    other.signal("-TERM");
    other.child.take().expect("running").wait().expect("exits");
    let refused = migrate(&cluster.dir.path().join("other"), &scaled_config)
        .expect_err("another log is refused");
    assert!(refused.contains("another log"), "{refused}");
    assert_eq!(cluster.bucket_checkpoint_size(), 704);
}
