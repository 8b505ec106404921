//! SIGKILL of the real `cairn-log` binary while producers submit audit events (single and in
//! batches, most with payloads): after every restart each acknowledged event is there, at its
//! index, with its payload; at the end the events index agrees with the log's leaves, read
//! from the store itself with the server stopped.

use std::collections::BTreeMap;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_log::config::token_digest_hex;
use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::SequenceStore;
use cairn_spec::event::AnyEventLeaf;
use serde_json::{json, Value};
use support::{free_port, start, Log};

const PRODUCER: &str = "events-crash-producer-token";
const READER: &str = "events-crash-reader-token";
const TASKS: u64 = 8;

/// What a producer was told: event ID → (index, payload).
type Acknowledged = Arc<Mutex<BTreeMap<String, (u64, Option<Value>)>>>;

/// The log's configuration. Self-audit is off: this test compares the index with every event
/// in the log, and the records of its own queries (tested in events_self_audit.rs) would be
/// logged between the two.
fn config(dir: &Path, port: u16) -> PathBuf {
    let key = support::key(dir, "crash.cairn.example/log");
    let path = dir.join("log.toml");
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\norigin = \"crash.cairn.example/log\"\n\
         key_file = \"{}\"\nwitness_quorum = 0\ncheckpoint_interval_ms = 200\nself_audit = false\n\n\
         [[producers]]\nname = \"crash\"\ntoken_sha256 = \"{}\"\n\n\
         [[principals]]\nname = \"auditor\"\nrole = \"reader\"\ntoken_sha256 = \"{}\"\n",
        dir.join("data").display(),
        key.display(),
        token_digest_hex(PRODUCER),
        token_digest_hex(READER),
    );
    std::fs::write(&path, text).expect("write log.toml");
    path
}

fn event(round: u64, task: u64, number: u64) -> (String, Value, Option<Value>) {
    let id = format!("{round:08x}-{task:04x}-4000-8000-{number:012x}");
    let payload =
        (!number.is_multiple_of(4)).then(|| json!({"round": round, "task": task, "n": number}));
    let mut event = json!({
        "event_id": id,
        "timestamp": "2026-11-25T10:00:00Z",
        "actor": {"id": format!("actor-{task}"), "type": "service"},
        "action": if number.is_multiple_of(2) { "write" } else { "read" },
        "resource": {"type": "document", "id": format!("doc-{}", number % 7)},
        "outcome": "success",
    });
    if let Some(payload) = &payload {
        event["payload"] = payload.clone();
    }
    (id, event, payload)
}

/// Submits until the log stops answering, recording each acknowledged event.
async fn produce(base: String, round: u64, task: u64, acknowledged: Acknowledged) {
    let http = reqwest::Client::new();
    let mut number = 0;
    loop {
        let count = if task.is_multiple_of(2) { 1 } else { 20 };
        let events: Vec<_> = (number..number + count)
            .map(|n| event(round, task, n))
            .collect();
        number += count;
        let (path, body) = if count == 1 {
            ("/v1/events", events[0].1.clone())
        } else {
            (
                "/v1/events/batch",
                Value::Array(events.iter().map(|(_, e, _)| e.clone()).collect()),
            )
        };
        let Ok(response) = http
            .post(format!("{base}{path}"))
            .bearer_auth(PRODUCER)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
        else {
            return;
        };
        if response.status().as_u16() != 200 {
            return;
        }
        let Ok(bytes) = response.bytes().await else {
            return;
        };
        let answer: Value = serde_json::from_slice(&bytes).expect("an answer is JSON");
        let answers = match answer.get("events") {
            Some(list) => list.as_array().cloned().unwrap_or_default(),
            None => vec![answer],
        };
        assert_eq!(answers.len(), events.len(), "one answer per event");
        let mut acknowledged = acknowledged.lock().expect("lock");
        for ((id, _, payload), answer) in events.into_iter().zip(answers) {
            assert_eq!(answer["event_id"], id.as_str());
            let index = answer["index"].as_u64().expect("an index");
            acknowledged.insert(id, (index, payload));
        }
    }
}

/// Every acknowledged event in `ids` is served at its index with its payload, asked by
/// `CHECKERS` readers at once: asked one at a time, the reads were most of this test's time.
async fn check_acknowledged(log: &Log, acknowledged: &Acknowledged, ids: &[String]) {
    const CHECKERS: usize = 8;
    let expected = Arc::new(acknowledged.lock().expect("lock").clone());
    let chunk = ids.len().div_ceil(CHECKERS).max(1);
    let mut checkers = tokio::task::JoinSet::new();
    for part in ids.chunks(chunk) {
        let (base, expected, part) = (log.base.clone(), Arc::clone(&expected), part.to_vec());
        checkers.spawn(async move { check_some(&base, &expected, &part).await });
    }
    while let Some(done) = checkers.join_next().await {
        done.expect("a checker ends without panicking");
    }
}

/// One reader's share of [`check_acknowledged`].
async fn check_some(base: &str, expected: &BTreeMap<String, (u64, Option<Value>)>, ids: &[String]) {
    let http = reqwest::Client::new();
    for id in ids {
        let (index, payload) = &expected[id];
        let response = http
            .get(format!("{base}/v1/events/{id}"))
            .bearer_auth(READER)
            .send()
            .await
            .expect("GET the event");
        assert_eq!(
            response.status().as_u16(),
            200,
            "acknowledged event {id} is gone"
        );
        let got: Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
        assert_eq!(got["index"].as_u64(), Some(*index), "event {id} moved");
        // A schema 2 event: its contents (payload included) are held, opened in `event`.
        assert_eq!(got["contents"], "held", "the contents of {id}");
        assert_eq!(
            got["event"]["payload"],
            payload.clone().unwrap_or(Value::Null),
            "the payload of {id}"
        );
    }
}

/// Every event the index returns for `query`, following cursors, as (index, event ID).
async fn query_all(log: &Log, query: &str) -> Vec<(u64, String)> {
    let http = reqwest::Client::new();
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/v1/events?limit=1000{query}", log.base);
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let response = http
            .get(url)
            .bearer_auth(READER)
            .send()
            .await
            .expect("query");
        let page: Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
        for event in page["events"].as_array().expect("events") {
            found.push((
                event["index"].as_u64().expect("index"),
                event["event_id"].as_str().expect("id").to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return found,
        }
    }
}

fn stop_gracefully(log: &mut Log) {
    let status = Command::new("kill")
        .args(["-TERM", &log.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = log.child.wait().expect("wait for cairn-log");
    assert!(exit.success(), "cairn-log stopped with {exit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_event_load_loses_no_acknowledged_event_or_payload() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let config = config(dir.path(), port);
    let http = reqwest::Client::new();
    let acknowledged: Acknowledged = Arc::default();
    let mut log = start(&config, port, &http).await;
    // Rounds 0–4 end in SIGKILL, round 5 in a clean stop (the index is written out), round 6
    // in SIGKILL again (the catch-up then starts from a run, not from the log's beginning).
    for round in 0..7u64 {
        let before: Vec<String> = acknowledged.lock().expect("lock").keys().cloned().collect();
        let producers: Vec<_> = (0..TASKS)
            .map(|task| {
                tokio::spawn(produce(
                    log.base.clone(),
                    round,
                    task,
                    Arc::clone(&acknowledged),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300 + (round * 431) % 900)).await;
        if round == 5 {
            stop_gracefully(&mut log);
        } else {
            log.child.kill().expect("SIGKILL cairn-log");
            log.child.wait().expect("reap cairn-log");
        }
        for producer in producers {
            producer.await.expect("a producer ends without panicking");
        }
        log = start(&config, port, &http).await;
        let now: Vec<String> = acknowledged.lock().expect("lock").keys().cloned().collect();
        let fresh: Vec<String> = now
            .iter()
            .filter(|id| !before.contains(id))
            .cloned()
            .collect();
        assert!(!fresh.is_empty(), "round {round}: nothing was acknowledged");
        let older: Vec<String> = before.iter().step_by(37).cloned().collect();
        check_acknowledged(&log, &acknowledged, &fresh).await;
        check_acknowledged(&log, &acknowledged, &older).await;
    }
    // Each event's payload was read back after the restart that followed its round; at the
    // end every acknowledged event must still be listed, at the index it was given.
    let indexed = query_all(&log, "").await;
    let listed: BTreeMap<&str, u64> = indexed.iter().map(|(i, id)| (id.as_str(), *i)).collect();
    for (id, (index, _)) in acknowledged.lock().expect("lock").iter() {
        assert_eq!(
            listed.get(id.as_str()),
            Some(index),
            "acknowledged event {id} is not listed at its index"
        );
    }
    let by_actor = query_all(&log, "&actor=actor-3").await;
    stop_gracefully(&mut log);

    // The index against the log itself.
    let store =
        EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("data"))).expect("the store opens");
    let mut logged = Vec::new();
    let mut logged_by_actor = Vec::new();
    let size = store.entry_count();
    let mut next = 0;
    while next < size {
        let count = (size - next).min(1024);
        for (offset, entry) in store
            .read_entries(next, count)
            .expect("read")
            .iter()
            .enumerate()
        {
            if let Ok(leaf) = AnyEventLeaf::parse(&entry.leaf) {
                let id = leaf.event_id().as_str().to_string();
                // Schema 2 leaves hold the actor only as a commitment; the actor of an event
                // this test made is `actor-<task>`, and its ID carries the task (see `event`).
                let task = id
                    .split('-')
                    .nth(1)
                    .and_then(|t| u64::from_str_radix(t, 16).ok());
                let item = (next + offset as u64, id);
                if task == Some(3) {
                    logged_by_actor.push(item.clone());
                }
                logged.push(item);
            }
        }
        next += count;
    }
    assert_eq!(indexed, logged, "the index holds exactly the log's events");
    assert_eq!(
        by_actor, logged_by_actor,
        "the actor index agrees with the log"
    );
    let acknowledged = acknowledged.lock().expect("lock");
    eprintln!(
        "7 rounds (6 SIGKILL): {} events acknowledged, {} in the log of {size} entries",
        acknowledged.len(),
        logged.len()
    );
}
