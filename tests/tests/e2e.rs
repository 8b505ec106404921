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

/// The path of a built Cairn binary.
fn binary(name: &str) -> std::path::PathBuf {
    Binaries::locate()
        .and_then(|binaries| binaries.path(name))
        .unwrap_or_else(|error| panic!("{error}"))
}

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
            // The auditor reads entry bundles (a reader's, since they are not public).
            .bearer_auth(self.sandbox.auditor_token().expect("auditor token"))
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
        std::process::Command::new(binary("cairn-monitor"))
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
    let work = tempfile::tempdir().expect("tempdir");
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
        let index = receipt["index"].as_u64().expect("index");
        // The receipt as `?wait=checkpoint` answered it, kept to verify below.
        let path = work.path().join(format!("receipt-{index}.json"));
        std::fs::write(&path, serde_json::to_vec(&receipt).expect("JSON")).expect("writes");
        indices.push(index);
    }
    assert_eq!(indices, vec![0, 1, 2, 3, 4]);

    // The receipts answered by `?wait=checkpoint` verify as they came under the policy the
    // sandbox hands out, timestamps included (the log waited for them): all five in one run...
    let output = cluster.verify_receipt(work.path());
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("5 receipts: 5 verified, 0 did not"),
        "{}",
        text(&output)
    );
    // ... and each alone, saying what it proves.
    for index in indices {
        let path = work.path().join(format!("receipt-{index}.json"));
        let output = cluster.verify_receipt(&path);
        assert!(
            output.status.success(),
            "receipt {index}: {}",
            text(&output)
        );
        let said = String::from_utf8_lossy(&output.stdout);
        for line in [
            "cosigned by witness w1",
            "cosigned by witness w2",
            "timestamped by sandbox-tsa",
        ] {
            assert!(said.contains(line), "the CLI says {line:?}: {said}");
        }

        // The same receipt with the leaf changed no longer verifies.
        let mut json: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("reads")).expect("JSON");
        json["leaf"] = Value::String("cGF5bWVudCA5IGFwcHJvdmVk".to_owned());
        std::fs::write(&path, serde_json::to_vec(&json).expect("JSON")).expect("writes");
        let output = cluster.verify_receipt(&path);
        assert!(
            !output.status.success(),
            "a tampered receipt: {}",
            text(&output)
        );
    }

    // Every component stops cleanly on SIGTERM, as Ctrl-C of cairn-sandbox asks them to.
    let mut cluster = cluster;
    assert_eq!(
        cluster.sandbox.stop(),
        Vec::<String>::new(),
        "unclean stops"
    );
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

/// Waits until the monitor's GET /gossip holds a verified checkpoint of at least `size`.
async fn monitor_verified(cluster: &Cluster, size: u64) {
    let url = format!(
        "{}/gossip",
        cluster.sandbox.monitor_url().expect("a monitor")
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = cluster.client.get(&url).send().await {
            let body = response.bytes().await.unwrap_or_default();
            if let Ok(notes) = serde_json::from_slice::<Vec<String>>(&body) {
                let verified = notes
                    .iter()
                    .filter_map(|note| note.lines().nth(1)?.parse::<u64>().ok());
                if verified.max().is_some_and(|verified| verified >= size) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the monitor did not verify size {size} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn evidence_files(cluster: &Cluster) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(cluster.sandbox.evidence_dir()) {
        Ok(entries) => entries.filter_map(|e| Some(e.ok()?.path())).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_stays_quiet_on_an_honest_log_and_proves_a_split_view() {
    let cluster = cluster(|_| {});
    for n in 0..3 {
        let (status, _) = cluster
            .add(format!("honest {n}").as_bytes(), true)
            .await
            .expect("add");
        assert_eq!(status, 200);
    }
    monitor_verified(&cluster, 3).await;
    assert!(
        evidence_files(&cluster).is_empty(),
        "no alarm on an honest log"
    );

    // The same log key signs a second history: a forked log, as a dishonest operator would
    // show it to some producer.
    let dir = cluster.sandbox.dir().to_path_buf();
    let log_config = std::fs::read_to_string(dir.join("log.toml")).expect("log.toml");
    let producers = &log_config[log_config.find("[[producers]]").expect("producers")..];
    let producers = &producers[..producers.find("[[witnesses]]").unwrap_or(producers.len())];
    let fork_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let fork_config = format!(
        "listen = \"{fork_addr}\"\ndata_dir = \"{}\"\norigin = \"{}\"\nkey_file = \"{}\"\n\
         witness_quorum = 0\ncheckpoint_interval_ms = 100\n\n{producers}",
        dir.join("fork-data").display(),
        cluster.sandbox.layout().origin,
        dir.join("log.key").display(),
    );
    std::fs::write(dir.join("fork.toml"), fork_config).expect("fork.toml");
    let fork_out = std::fs::File::create(dir.join("fork.out")).expect("fork.out");
    let mut fork = std::process::Command::new(binary("cairn-log"))
        .args(["serve", "--config"])
        .arg(dir.join("fork.toml"))
        .stdout(fork_out.try_clone().expect("clone"))
        .stderr(fork_out)
        .spawn()
        .expect("the fork starts");
    let forked = Producer {
        client: cluster.client.clone(),
        log: format!("http://{fork_addr}"),
        token: cluster.token.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut added = 0;
    while added < 3 {
        match forked
            .add(format!("forked {added}").as_bytes(), false)
            .await
        {
            Ok((200, _)) => added += 1,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("the fork does not take leaves: {other:?}"),
        }
    }
    let fork_checkpoint = loop {
        let response = cluster
            .client
            .get(format!("http://{fork_addr}/checkpoint"))
            .send()
            .await
            .expect("GET /checkpoint");
        let text = response.text().await.expect("text");
        if text.lines().nth(1) == Some("3") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the fork publishes no checkpoint of size 3"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = fork.kill();
    let _ = fork.wait();

    // A producer who was shown the forked checkpoint hands it to the monitor.
    let gossip = cluster
        .client
        .post(format!(
            "{}/gossip",
            cluster.sandbox.monitor_url().expect("monitor")
        ))
        .body(fork_checkpoint)
        .send()
        .await
        .expect("POST /gossip");
    // 409: two validly signed checkpoints of one log that cannot both be true.
    assert_eq!(gossip.status(), 409, "the monitor calls it a split view");

    let deadline = Instant::now() + Duration::from_secs(30);
    let evidence = loop {
        if let Some(file) = evidence_files(&cluster).into_iter().next() {
            break file;
        }
        assert!(Instant::now() < deadline, "no evidence of the split view");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let output = cluster.monitor(&[
        "verify-evidence",
        evidence.to_str().expect("UTF-8"),
        "--log-key",
        &cluster.sandbox.layout().log_vkey,
    ]);
    assert!(
        output.status.success(),
        "the evidence convinces: {}",
        text(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_export_to_a_bundle_the_cli_verifies_offline() {
    let cluster = cluster(|options| options.monitor = false);
    let log = cluster.sandbox.log_url();
    let mut last_index = 0;
    for (n, actor) in ["alice@example.com", "bob@example.com", "alice@example.com"]
        .iter()
        .enumerate()
    {
        let event = serde_json::json!({
            "timestamp": "2026-11-25T09:14:03.120+01:00",
            "actor": {"id": actor, "type": "user"},
            "action": "invoice.approve",
            "resource": {"type": "invoice", "id": format!("INV-{n}")},
            "outcome": "success",
            "payload": {"amount_cents": 1000 * (n + 1), "currency": "EUR"},
            "schema_version": 1
        });
        let response = cluster
            .client
            .post(format!("{log}/v1/events?wait=checkpoint"))
            .bearer_auth(&cluster.token)
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
            .await
            .expect("POST /v1/events");
        let status = response.status();
        let answer: Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
        assert_eq!(status, 200, "{answer}");
        last_index = answer["index"].as_u64().expect("index");
    }
    // The checkpoint's timestamps are in before the export, so the policy (which wants one)
    // holds.
    cluster.receipt_with_timestamps(last_index, 1).await;

    let work = tempfile::tempdir().expect("tempdir");
    let bundle = work.path().join("alice.export.json");
    let auditor = cluster.sandbox.auditor_token().expect("auditor token");
    let output = std::process::Command::new(binary("cairn-monitor"))
        .args(["export", "--log", &log, "--log-key"])
        .arg(&cluster.sandbox.layout().log_vkey)
        .args(["--actor", "alice@example.com", "--out"])
        .arg(&bundle)
        .env("CAIRN_TOKEN", &auditor)
        .output()
        .expect("cairn-monitor export runs");
    assert!(output.status.success(), "export: {}", text(&output));

    let json: Value =
        serde_json::from_slice(&std::fs::read(&bundle).expect("bundle")).expect("JSON");
    assert_eq!(
        json["events"].as_array().map(Vec::len),
        Some(2),
        "alice's two events"
    );
    let policy = cluster.sandbox.policy_path();
    let verify = |path: &Path| {
        cluster.monitor(&[
            "verify-export",
            path.to_str().expect("UTF-8"),
            "--policy",
            policy.to_str().expect("UTF-8"),
        ])
    };
    let output = verify(&bundle);
    assert!(output.status.success(), "verify-export: {}", text(&output));

    // A payload changed after the fact is caught.
    let mut tampered = json.clone();
    tampered["events"][0]["payload"] =
        Value::String("eyJhbW91bnRfY2VudHMiOjEsImN1cnJlbmN5IjoiRVVSIn0=".to_owned());
    let path = work.path().join("tampered.json");
    std::fs::write(&path, serde_json::to_vec(&tampered).expect("JSON")).expect("writes");
    let output = verify(&path);
    assert!(
        !output.status.success(),
        "a tampered export: {}",
        text(&output)
    );

    // A producer's token does not export.
    let response = cluster
        .client
        .get(format!("{log}/v1/export"))
        .bearer_auth(&cluster.token)
        .send()
        .await
        .expect("GET /v1/export");
    assert_eq!(response.status(), 403);
}
