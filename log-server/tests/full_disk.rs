//! A full disk, with the real `cairn-log` binary on a small tmpfs of its own: writes are refused
//! with 503 `storage_unavailable` (naming no server path) while `/healthz` stays live and
//! `/readyz` says why the log is not ready; a restart while the disk is still full starts and
//! serves what was published; once space is freed, writes resume and what was acknowledged is
//! integrated and published, without a restart; nothing acknowledged is lost, and the store
//! opens cleanly afterwards with every acknowledged leaf at its index.
//!
//! Mounting needs root (CI runs as root). Elsewhere the test says so and does nothing; under
//! `CI=true` a refused mount fails it.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_log::config::token_digest_hex;
use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::{SequenceStore, StateStore};
use cairn_spec::merkle::CompactRange;
use cairn_spec::Hash;
use serde_json::Value;
use support::{free_port, start, Log};

const PRODUCER: &str = "full-disk-producer-token";
const ORIGIN: &str = "full-disk.cairn.example/log";

/// A tmpfs of a given size, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Some(SmallDisk { dir }),
            _ => None,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Free bytes.
    fn available(&self) -> u64 {
        let stats = rustix::fs::statvfs(self.path()).expect("statvfs");
        stats.f_bavail * stats.f_frsize
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Kills the log at once, as a crash would.
fn kill(log: Log) {
    drop(log);
}

fn write_config(dir: &Path, data_dir: &Path, port: u16) -> PathBuf {
    let key = support::key(dir, ORIGIN);
    let path = dir.join("log.toml");
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\norigin = \"{ORIGIN}\"\n\
         key_file = \"{}\"\nwitness_quorum = 0\ncheckpoint_interval_ms = 100\n\n\
         [[producers]]\nname = \"filler\"\ntoken_sha256 = \"{}\"\n",
        data_dir.display(),
        key.display(),
        token_digest_hex(PRODUCER),
    );
    std::fs::write(&path, text).expect("write log.toml");
    path
}

async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F)
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
fn leaf(number: u64) -> Vec<u8> {
    let mut leaf = format!("full-disk leaf {number:012} ").into_bytes();
    leaf.resize(2048, b'.' + (number % 40) as u8);
    leaf
}

enum Added {
    At(u64),
    Refused(reqwest::StatusCode, reqwest::header::HeaderMap, Value),
}

async fn add(http: &reqwest::Client, base: &str, number: u64) -> Added {
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

async fn status_of(http: &reqwest::Client, url: String) -> (u16, Value) {
    let response = http.get(url).send().await.expect("the log answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Submits leaves until the log refuses one for its storage; returns the refusal.
async fn fill(
    http: &reqwest::Client,
    base: &str,
    next: &mut u64,
    acknowledged: &mut BTreeMap<u64, u64>,
    disk: &Path,
) -> Value {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the disk never filled"
        );
        let number = *next;
        *next += 1;
        match add(http, base, number).await {
            Added::At(index) => {
                acknowledged.insert(index, number);
            }
            Added::Refused(status, headers, body) => {
                assert_eq!(status.as_u16(), 503, "{body}");
                assert_eq!(body["error"], "storage_unavailable", "{body}");
                assert!(headers.contains_key("retry-after"), "no Retry-After");
                let detail = body["detail"].as_str().expect("a detail");
                assert!(
                    !detail.contains(&*disk.to_string_lossy())
                        && !detail.contains("segments")
                        && !detail.contains(".sqlite"),
                    "the answer names a server path: {detail}"
                );
                return body;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_then_heals_by_itself_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount(40 << 20) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run this test as root, able to mount a tmpfs"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let work = tempfile::tempdir().expect("work dir");
    let data_dir = disk.path().join("data");
    let port = free_port();
    let config = write_config(work.path(), &data_dir, port);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let log = start(&config, port, &http).await;
    let base = log.base.clone();

    // Leave the log a few MiB of its disk, then write until it is full.
    let filler = disk.path().join("filler");
    let keep = 6 << 20;
    let filler_bytes = disk.available().saturating_sub(keep);
    std::fs::write(&filler, vec![0x5au8; filler_bytes as usize]).expect("filler");
    let mut acknowledged = BTreeMap::new();
    let mut next = 0;
    fill(&http, &base, &mut next, &mut acknowledged, disk.path()).await;
    assert!(
        !acknowledged.is_empty(),
        "nothing was written before the disk filled"
    );

    // Live, not ready, and still refusing (at once) while the disk is full.
    assert_eq!(status_of(&http, format!("{base}/healthz")).await.0, 200);
    let (ready, why) = status_of(&http, format!("{base}/readyz")).await;
    assert_eq!(ready, 503, "{why}");
    assert!(why["problems"].to_string().contains("storage"), "{why}");
    assert!(matches!(add(&http, &base, next).await, Added::Refused(..)));
    next += 1;

    // A restart while the disk is still full: it starts, serves its checkpoint, and refuses
    // writes again once it finds the disk full.
    kill(log);
    let log = start(&config, port, &http).await;
    assert_eq!(status_of(&http, format!("{base}/healthz")).await.0, 200);
    let filled_again = fill(&http, &base, &mut next, &mut acknowledged, disk.path()).await;
    assert_eq!(filled_again["error"], "storage_unavailable");

    // Space is freed: writes resume by themselves, and everything acknowledged is published.
    std::fs::remove_file(&filler).expect("free the disk");
    let resumed_at = Instant::now();
    let mut resumed = None;
    while resumed.is_none() {
        assert!(
            resumed_at.elapsed() < Duration::from_secs(60),
            "writes did not resume after space was freed"
        );
        let number = next;
        next += 1;
        if let Added::At(index) = add(&http, &base, number).await {
            acknowledged.insert(index, number);
            resumed = Some(index);
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for _ in 0..50 {
        let number = next;
        next += 1;
        match add(&http, &base, number).await {
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
        || async { status_of(&http, format!("{base}/readyz")).await.0 == 200 },
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
    kill(log);

    // The store opens cleanly: every acknowledged leaf at its index, and the signed checkpoint
    // is the root of the entries it covers.
    let store = EmbeddedStore::open(EmbeddedConfig::new(&data_dir)).expect("the store opens");
    for (&index, &number) in &acknowledged {
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
    let hashes: Vec<Hash> = (0..checkpoint.size)
        .map(|index| {
            store
                .read_entries(index, 1)
                .expect("entry")
                .pop()
                .expect("one")
                .leaf_hash()
        })
        .collect();
    let mut range = CompactRange::new();
    range.extend(&hashes).expect("extend");
    let root = range.root();
    let note = String::from_utf8(checkpoint.note).expect("UTF-8");
    let root_line = note.lines().nth(2).expect("a root line");
    assert_eq!(root_line, root.to_base64(), "the checkpoint's root");
}
