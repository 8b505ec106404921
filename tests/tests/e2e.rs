//! End-to-end: the real binaries (cairn-log, cairn-witness and its TSA, cairn-monitor) as
//! child processes on loopback, started by the same sandbox code as `cairn-sandbox`.
//!
//! They need the workspace's binaries built beside the test (`cargo test --workspace` builds
//! them; `cargo build --workspace --bins` does too). `CAIRN_E2E_CRASH_CYCLES` sets the number of
//! SIGKILL cycles of the crash test (20 by default).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_spec::tiles::{decode_entry_bundle, EntryBundle};
use cairn_tests::sandbox::{Binaries, Options, Sandbox};
use serde_json::Value;

struct Cluster {
    sandbox: Sandbox,
    client: reqwest::Client,
    token: String,
    _dir: tempfile::TempDir,
}

fn cluster(configure: impl FnOnce(&mut Options)) -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::new(dir.path().join("sandbox"));
    options.checkpoint_interval_ms = 200;
    options.monitor_poll_secs = 1;
    configure(&mut options);
    let sandbox = Sandbox::start(&options, Binaries::locate().expect("binaries"))
        .unwrap_or_else(|error| panic!("the sandbox starts: {error}"));
    let token = sandbox.producer_token().expect("token");
    Cluster {
        sandbox,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client"),
        token,
        _dir: dir,
    }
}

/// What a producer needs: the log's URL and its token.
#[derive(Clone)]
struct Producer {
    client: reqwest::Client,
    log: String,
    token: String,
}

impl Producer {
    async fn add(&self, leaf: &[u8], wait: bool) -> Result<(u16, Value), reqwest::Error> {
        let url = format!(
            "{}/add{}",
            self.log,
            if wait { "?wait=checkpoint" } else { "" }
        );
        let response = self
            .client
            .post(url)
            .bearer_auth(&self.token)
            .body(leaf.to_vec())
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

impl Cluster {
    async fn add(&self, leaf: &[u8], wait: bool) -> Result<(u16, Value), reqwest::Error> {
        self.producer().add(leaf, wait).await
    }

    fn producer(&self) -> Producer {
        Producer {
            client: self.client.clone(),
            log: self.sandbox.log_url(),
            token: self.token.clone(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .client
            .get(format!("{}{path}", self.sandbox.log_url()))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    /// The latest checkpoint's size, and its text.
    async fn checkpoint(&self) -> Option<(u64, String)> {
        let (status, body) = self.get("/checkpoint").await;
        if status != 200 {
            return None;
        }
        let text = String::from_utf8(body).expect("checkpoint is text");
        let size = text.lines().nth(1)?.parse().ok()?;
        Some((size, text))
    }

    /// Waits until the published checkpoint reaches `size` and `accept` agrees.
    async fn checkpoint_reaching(&self, size: u64, accept: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((published, text)) = self.checkpoint().await {
                if published >= size && accept(&text) {
                    return text;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no checkpoint of size {size} as wanted within 60 s; latest {:?}",
                self.checkpoint().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The receipt of `index` once it carries `tokens` timestamp tokens.
    async fn receipt_with_timestamps(&self, index: u64, tokens: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(&format!("/receipt/{index}")).await;
            if status == 200 {
                let json: Value = serde_json::from_slice(&body).expect("receipt JSON");
                let have = json["timestamps"].as_array().map_or(0, Vec::len);
                if have >= tokens {
                    return body;
                }
            }
            assert!(
                Instant::now() < deadline,
                "receipt {index} has no {tokens} timestamps within 60 s (last status {status})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every leaf of the log up to `size`, read back from its entry bundles.
    async fn leaves(&self, size: u64) -> Vec<Vec<u8>> {
        let mut leaves = Vec::new();
        for index in 0..size.div_ceil(256) {
            let width = u16::try_from((size - index * 256).min(256)).expect("≤ 256");
            let bundle = EntryBundle::new(index, width).expect("bundle");
            let (status, data) = self.get(&format!("/{}", bundle.path())).await;
            assert_eq!(status, 200, "GET /{}", bundle.path());
            let entries = decode_entry_bundle(bundle, &data).expect("a valid entry bundle");
            leaves.extend(entries.into_iter().map(<[u8]>::to_vec));
        }
        leaves
    }

    fn monitor(&self, args: &[&str]) -> Output {
        let binary = Binaries::locate()
            .and_then(|b| b.path("cairn-monitor"))
            .expect("cairn-monitor is built");
        std::process::Command::new(binary)
            .args(args)
            .output()
            .expect("cairn-monitor runs")
    }

    fn verify_receipt(&self, receipt: &Path) -> Output {
        let policy = self.sandbox.policy_path();
        self.monitor(&[
            "verify-receipt",
            receipt.to_str().expect("UTF-8 path"),
            "--policy",
            policy.to_str().expect("UTF-8 path"),
        ])
    }
}

fn cosigned_by(checkpoint: &str, witnesses: &[&str]) -> bool {
    witnesses.iter().all(|name| {
        checkpoint
            .lines()
            .any(|line| line.starts_with(&format!("— sandbox.cairn.example/{name} ")))
    })
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaves_go_in_and_receipts_that_the_cli_verifies_come_out() {
    let cluster = cluster(|_| {});
    let mut indices = Vec::new();
    for n in 0..5 {
        let leaf = format!("payment {n} approved by alice");
        let (status, receipt) = cluster.add(leaf.as_bytes(), true).await.expect("add");
        assert_eq!(status, 200, "{receipt}");
        let checkpoint = receipt["checkpoint"].as_str().expect("checkpoint");
        assert!(
            cosigned_by(checkpoint, &["witness-1", "witness-2"]),
            "both witnesses cosigned: {checkpoint}"
        );
        indices.push(receipt["index"].as_u64().expect("index"));
    }
    assert_eq!(indices, vec![0, 1, 2, 3, 4]);

    let work = tempfile::tempdir().expect("tempdir");
    for index in indices {
        let receipt = cluster.receipt_with_timestamps(index, 1).await;
        let path = work.path().join(format!("receipt-{index}.json"));
        std::fs::write(&path, &receipt).expect("writes");
        let output = cluster.verify_receipt(&path);
        assert!(
            output.status.success(),
            "receipt {index}: {}",
            text(&output)
        );

        // The same receipt with the leaf changed no longer verifies.
        let mut json: Value = serde_json::from_slice(&receipt).expect("JSON");
        json["leaf"] = Value::String("cGF5bWVudCA5IGFwcHJvdmVk".to_owned());
        std::fs::write(&path, serde_json::to_vec(&json).expect("JSON")).expect("writes");
        let output = cluster.verify_receipt(&path);
        assert!(
            !output.status.success(),
            "a tampered receipt: {}",
            text(&output)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_that_is_down_delays_nothing_and_cosigns_again_when_back() {
    let mut cluster = cluster(|options| {
        options.witness_quorum = 1;
        options.monitor = false;
    });
    let (status, _) = cluster.add(b"before", true).await.expect("add");
    assert_eq!(status, 200);
    let stopped = cluster.sandbox.stop_component("witness-2").expect("stops");
    assert!(stopped, "witness-2 exits cleanly on SIGTERM");

    // One of two witnesses is enough: the leaf is published, cosigned by witness-1 alone.
    let (status, receipt) = cluster
        .add(b"while witness-2 is down", true)
        .await
        .expect("add");
    assert_eq!(status, 200, "{receipt}");
    let checkpoint = receipt["checkpoint"].as_str().expect("checkpoint");
    assert!(cosigned_by(checkpoint, &["witness-1"]), "{checkpoint}");

    // Back up, witness-2 is brought up to date from the size it last cosigned.
    cluster
        .sandbox
        .start_component("witness-2")
        .expect("restarts");
    let (status, _) = cluster.add(b"after", false).await.expect("add");
    assert_eq!(status, 200);
    cluster
        .checkpoint_reaching(3, |text| cosigned_by(text, &["witness-1", "witness-2"]))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_restarts_with_its_whole_history() {
    let mut cluster = cluster(|options| options.monitor = false);
    let mut leaves = Vec::new();
    for n in 0..10 {
        let leaf = format!("event {n}").into_bytes();
        let (status, answer) = cluster.add(&leaf, false).await.expect("add");
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["index"].as_u64(), Some(n));
        leaves.push(leaf);
    }
    let before = cluster.checkpoint_reaching(10, |_| true).await;

    assert!(
        cluster.sandbox.stop_component("log").expect("stops"),
        "clean exit"
    );
    cluster.sandbox.start_component("log").expect("restarts");

    let (size, after) = cluster
        .checkpoint()
        .await
        .expect("a checkpoint after restart");
    assert_eq!(size, 10);
    assert_eq!(
        after.lines().nth(2),
        before.lines().nth(2),
        "the same root after the restart"
    );
    let (status, answer) = cluster.add(b"event 10", false).await.expect("add");
    assert_eq!(status, 200);
    assert_eq!(answer["index"].as_u64(), Some(10), "numbering goes on");
    // Re-submitting an old leaf gives its first index: the dedup index survived too.
    let (status, answer) = cluster.add(b"event 3", false).await.expect("add");
    assert_eq!(status, 200);
    assert_eq!(answer["index"].as_u64(), Some(3));

    cluster.checkpoint_reaching(11, |_| true).await;
    leaves.push(b"event 10".to_vec());
    assert_eq!(cluster.leaves(11).await, leaves);
}

/// A producer's view of the load: what the log acknowledged, index → leaf.
type Acknowledged = Arc<Mutex<BTreeMap<u64, Vec<u8>>>>;

async fn produce(
    producer: Producer,
    acked: Acknowledged,
    tag: String,
    stop: Arc<tokio::sync::Notify>,
) {
    for sequence in 0u64.. {
        let leaf = format!("{tag} seq {sequence}").into_bytes();
        let add = producer.add(&leaf, false);
        let result = tokio::select! {
            result = add => result,
            () = stop.notified() => return,
        };
        match result {
            Ok((200, answer)) => {
                let index = answer["index"]
                    .as_u64()
                    .expect("an acknowledged leaf has an index");
                let earlier = acked.lock().expect("lock").insert(index, leaf);
                assert!(earlier.is_none(), "index {index} acknowledged twice");
            }
            // The log died under this request: not acknowledged, so nothing is promised.
            Ok(_) | Err(_) => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_log_under_load_loses_no_acknowledged_leaf() {
    let cycles: u64 = std::env::var("CAIRN_E2E_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut cluster = cluster(|options| {
        options.witnesses = 1;
        options.witness_quorum = 0;
        options.monitor = false;
    });
    let acked: Acknowledged = Arc::default();
    for cycle in 0..cycles {
        let stop = Arc::new(tokio::sync::Notify::new());
        let producers: Vec<_> = (0..16)
            .map(|producer| {
                tokio::spawn(produce(
                    cluster.producer(),
                    Arc::clone(&acked),
                    format!("cycle {cycle} producer {producer}"),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        // Vary the moment of the kill: between 50 and 350 ms of load.
        tokio::time::sleep(Duration::from_millis(50 + (cycle * 97) % 300)).await;
        cluster.sandbox.kill_component("log").expect("SIGKILL");
        stop.notify_waiters();
        for producer in producers {
            producer
                .await
                .expect("a producer task ends without panicking");
        }
        cluster.sandbox.start_component("log").expect("restarts");
    }

    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() as u64 >= cycles,
        "the load got through between kills: {} acknowledged",
        acked.len()
    );
    let highest = *acked.keys().next_back().expect("some acknowledged");
    let (size, _) = cluster.checkpoint().await.expect("checkpoint");
    let size = size.max(highest + 1);
    cluster.checkpoint_reaching(size, |_| true).await;
    let leaves = cluster.leaves(size).await;
    for (index, leaf) in &acked {
        assert_eq!(
            leaves.get(*index as usize),
            Some(leaf),
            "acknowledged leaf {index} is in the log at its index"
        );
    }
    eprintln!(
        "{cycles} SIGKILL cycles, {} acknowledged leaves, log size {size}: none lost",
        acked.len()
    );
}
