//! What the storage-fault tests (a full disk, failing fsync) share: a log that takes 2 KiB
//! leaves from one producer, the refusal they expect while storage fails, the recovery they
//! expect once it works again, and the check of the store afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_log::config::token_digest_hex;
use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::{SequenceStore, StateStore};
use cairn_spec::merkle::CompactRange;
use cairn_spec::Hash;
use serde_json::Value;

/// The producer's bearer token.
pub const PRODUCER: &str = "storage-fault-producer-token";

/// `dir/log.toml` for a log of `origin` keeping its data in `data_dir`, on `port`: one
/// producer, no witnesses, a checkpoint every 100 ms.
pub fn write_config(dir: &Path, data_dir: &Path, port: u16, origin: &str) -> PathBuf {
    let key = crate::support::key(dir, origin);
    let path = dir.join("log.toml");
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\norigin = \"{origin}\"\n\
         key_file = \"{}\"\nwitness_quorum = 0\ncheckpoint_interval_ms = 100\n\n\
         [[producers]]\nname = \"filler\"\ntoken_sha256 = \"{}\"\n",
        data_dir.display(),
        key.display(),
        token_digest_hex(PRODUCER),
    );
    std::fs::write(&path, text).expect("write log.toml");
    path
}

/// Waits until `check` answers true, at most `limit`.
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A distinct leaf of 2 KiB.
pub fn leaf(number: u64) -> Vec<u8> {
    let mut leaf = format!("storage-fault leaf {number:012} ").into_bytes();
    leaf.resize(2048, b'.' + (number % 40) as u8);
    leaf
}

/// The answer to one `POST /add`.
pub enum Added {
    /// Acknowledged at this index.
    At(u64),
    /// Refused.
    Refused(reqwest::StatusCode, reqwest::header::HeaderMap, Value),
}

/// Submits leaf `number`.
pub async fn add(http: &reqwest::Client, base: &str, number: u64) -> Added {
    let response = http
        .post(format!("{base}/add"))
        .bearer_auth(PRODUCER)
        .body(leaf(number))
        .send()
        .await
        .expect("the log answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body: Value =
        serde_json::from_str(&response.text().await.expect("a body")).expect("a JSON answer");
    if status.is_success() {
        Added::At(body["index"].as_u64().expect("an index"))
    } else {
        Added::Refused(status, headers, body)
    }
}

/// The status and JSON body (or null) of a GET.
pub async fn status_of(http: &reqwest::Client, url: String) -> (u16, Value) {
    let response = http.get(url).send().await.expect("the log answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Checks a refusal for failing storage: 503 `storage_unavailable` with Retry-After, and a
/// detail that names no server path (`data_root` is where the log's files are).
pub fn assert_storage_refusal(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    data_root: &Path,
) {
    assert_eq!(status.as_u16(), 503, "{body}");
    assert_eq!(body["error"], "storage_unavailable", "{body}");
    assert!(headers.contains_key("retry-after"), "no Retry-After");
    let detail = body["detail"].as_str().expect("a detail");
    assert!(
        !detail.contains(&*data_root.to_string_lossy())
            && !detail.contains("segments")
            && !detail.contains(".sqlite"),
        "the answer names a server path: {detail}"
    );
}

/// Once storage works again: writes resume by themselves (within 60 s), 50 more are taken,
/// the log is ready again, a checkpoint covers every acknowledged leaf, and the metrics counted
/// the sequencer's storage errors. Returns the last acknowledged index.
pub async fn resume_and_publish(
    http: &reqwest::Client,
    base: &str,
    next: &mut u64,
    acknowledged: &mut BTreeMap<u64, u64>,
) -> u64 {
    let resumed_at = Instant::now();
    let mut resumed = false;
    while !resumed {
        assert!(
            resumed_at.elapsed() < Duration::from_secs(60),
            "writes did not resume once storage worked again"
        );
        let number = *next;
        *next += 1;
        if let Added::At(index) = add(http, base, number).await {
            acknowledged.insert(index, number);
            resumed = true;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for _ in 0..50 {
        let number = *next;
        *next += 1;
        match add(http, base, number).await {
            Added::At(index) => {
                acknowledged.insert(index, number);
            }
            Added::Refused(status, _, body) => panic!("refused after healing: {status} {body}"),
        }
    }
    let last = *acknowledged.keys().next_back().expect("acknowledged");
    wait_for(
        Duration::from_secs(60),
        "the log to be ready again",
        || async { status_of(http, format!("{base}/readyz")).await.0 == 200 },
    )
    .await;
    wait_for(
        Duration::from_secs(60),
        "a checkpoint that covers every acknowledged leaf",
        || async {
            let text = http
                .get(format!("{base}/checkpoint"))
                .send()
                .await
                .expect("checkpoint")
                .text()
                .await
                .unwrap_or_default();
            text.lines()
                .nth(1)
                .and_then(|size| size.parse::<u64>().ok())
                .is_some_and(|size| size > last)
        },
    )
    .await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("cairn_log_ready 1"), "{metrics}");
    assert!(
        metrics.lines().any(|line| line
            .starts_with("cairn_log_storage_errors_total{component=\"sequencer\"}")
            && !line.ends_with(" 0")),
        "{metrics}"
    );
    last
}

/// The store in `data_dir` opens cleanly (the log is stopped): every acknowledged leaf is at
/// its index, and the signed checkpoint covers `last` and is the root of the entries it covers.
pub fn check_store(data_dir: &Path, acknowledged: &BTreeMap<u64, u64>, last: u64) {
    let store = EmbeddedStore::open(EmbeddedConfig::new(data_dir)).expect("the store opens");
    for (&index, &number) in acknowledged {
        let entry = store
            .read_entries(index, 1)
            .expect("an acknowledged entry")
            .pop()
            .expect("one entry");
        assert_eq!(entry.leaf, leaf(number), "entry {index}");
    }
    let checkpoint = store
        .latest_checkpoint()
        .expect("read")
        .expect("a checkpoint");
    assert!(checkpoint.size > last);
    let hashes: Vec<Hash> = store
        .read_entries(0, checkpoint.size)
        .expect("the entries the checkpoint covers")
        .iter()
        .map(|entry| entry.leaf_hash())
        .collect();
    let mut range = CompactRange::new();
    range.extend(&hashes).expect("extend");
    let note = String::from_utf8(checkpoint.note).expect("UTF-8");
    let root_line = note.lines().nth(2).expect("a root line");
    assert_eq!(root_line, range.root().to_base64(), "the checkpoint's root");
}
