//! Key rotation end to end, with the real binaries on loopback: a dev `cairn-log` with a key
//! history directory rotates its key under load (`rotate-key`, then `retire-key`), every
//! receipt fetched before, during and after the overlap verifies with `cairn-monitor
//! verify-receipt --key-history` and with the log's own `POST /v1/verify`, a one-shot
//! `cairn-monitor run` follows across the rotations, and after a second rotation a revoked key's
//! signature raises a `revoked-key` incident with evidence that verifies offline, which fails
//! every later run, once the log has moved past that checkpoint too, until it is acknowledged.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{binary, reader_principal, run, DevLog};

/// How long a condition is waited for before the test fails.
const PATIENCE: Duration = Duration::from_secs(90);

struct Rotating {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    log: DevLog,
    base: String,
    client: reqwest::Client,
    /// A reader's bearer token (for POST /v1/verify).
    reader: String,
}

impl Rotating {
    fn start() -> Rotating {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let history = path.join("key-history");
        let (reader, principal) = reader_principal("auditor");
        // A log of raw leaves: the monitor reads its entry bundles without a token.
        let log = DevLog::start(
            &path,
            &format!("{principal}\n[privacy]\npublic_entries = true\n"),
            &format!(
                "export CAIRN_LOG_KEY_HISTORY_DIR={:?};",
                history.display().to_string()
            ),
        );
        let base = format!("http://{}", log.addr);
        Rotating {
            _dir: dir,
            dir: path,
            log,
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            reader,
        }
    }

    /// Whether the log's `POST /v1/verify` finds the receipt in `file` valid; its answer.
    async fn log_verifies(&self, file: &Path) -> (bool, String) {
        let answer: serde_json::Value = self
            .client
            .post(format!("{}/v1/verify", self.base))
            .bearer_auth(&self.reader)
            .body(std::fs::read(file).expect("the receipt"))
            .send()
            .await
            .expect("the log answers")
            .bytes()
            .await
            .map(|body| serde_json::from_slice(&body).expect("JSON"))
            .expect("a body");
        (answer["valid"] == true, answer.to_string())
    }

    /// Runs a `cairn-log` key history command; its standard output.
    fn history_command(&self, args: &[&str]) -> String {
        run(Command::new(binary("cairn-log"))
            .args(args)
            .arg("--config")
            .arg(self.dir.join("log.toml"))
            .arg("--key-history-dir")
            .arg(self.dir.join("key-history")))
    }

    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    /// The published checkpoint's size and its number of signature lines.
    async fn checkpoint(&self) -> Option<(u64, usize, String)> {
        let (status, body) = self.get("/checkpoint").await;
        if status != 200 {
            return None;
        }
        let text = String::from_utf8(body).expect("text");
        let size = text.lines().nth(1)?.parse().ok()?;
        let signatures = text
            .lines()
            .filter(|line| line.starts_with('\u{2014}'))
            .count();
        Some((size, signatures, text))
    }

    /// Waits for a published checkpoint of at least `size` with `signatures` signature lines.
    async fn checkpoint_with(&self, size: u64, signatures: usize) -> u64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some((published, lines, _)) = self.checkpoint().await {
                if published >= size && lines == signatures {
                    return published;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no checkpoint of size {size} or more with {signatures} signatures: {:?}",
                self.checkpoint().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `GET /key-history` has `statements` statements; returns it.
    async fn history_of(&self, statements: usize) -> Vec<u8> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.get("/key-history").await;
            assert_eq!(status, 200);
            let count = String::from_utf8_lossy(&body)
                .lines()
                .filter(|line| *line == "cairn-key-history/v1")
                .count();
            if count == statements {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "the log serves {count} statements"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Receipts of a few indices below the published size, as files named after `phase`.
    async fn receipts(&self, phase: &str, size: u64) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for index in [0, size / 2, size.saturating_sub(1)] {
            let (status, body) = self.get(&format!("/receipt/{index}")).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let path = self.dir.join(format!("receipt-{phase}-{index}.json"));
            std::fs::write(&path, &body).expect("writes the receipt");
            files.push(path);
        }
        files
    }

    fn monitor_once(&self) -> std::process::Output {
        let config = self.dir.join("monitor.toml");
        if !config.exists() {
            let text = format!(
                "state_dir = {state:?}\nevidence_dir = {evidence:?}\n\n[[logs]]\nurl = {url:?}\n\
                 key = {key:?}\n",
                state = self.dir.join("monitor-state"),
                evidence = self.dir.join("evidence"),
                url = self.base,
                key = self.log.vkey,
            );
            std::fs::write(&config, text).expect("writes monitor.toml");
        }
        Command::new(binary("cairn-monitor"))
            .args(["run", "--once", "--config"])
            .arg(&config)
            .output()
            .expect("cairn-monitor runs")
    }
}

/// `cairn-monitor verify-receipt` of `receipt`, with the history file if given.
fn verify_receipt(policy: &Path, receipt: &Path, history: Option<&Path>) -> (bool, String) {
    let mut command = Command::new(binary("cairn-monitor"));
    command
        .arg("verify-receipt")
        .arg(receipt)
        .arg("--policy")
        .arg(policy);
    if let Some(history) = history {
        command.arg("--key-history").arg(history);
    }
    let output = command.output().expect("cairn-monitor runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn new_key(output: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix("new key: "))
        .unwrap_or_else(|| panic!("no new key in {output}"))
        .to_owned()
}

/// Adds leaves until `stop`; counts them.
async fn load(base: String, token: String, stop: Arc<AtomicBool>) -> u64 {
    let client = reqwest::Client::new();
    let mut added = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let response = client
            .post(format!("{base}/add"))
            .bearer_auth(&token)
            .body(format!("load leaf {added}"))
            .send()
            .await;
        if let Ok(response) = response {
            if response.status().is_success() {
                added += 1;
            }
        }
    }
    added
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_key_rotates_under_load_and_every_receipt_keeps_verifying() {
    let log = Rotating::start();
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(log.base.clone(), log.log.token.clone(), stop.clone()));
    let policy = log.dir.join("policy.txt");
    std::fs::write(&policy, format!("log {}\nquorum none\n", log.log.vkey)).expect("policy");
    let k1 = log.log.vkey.clone();

    // Before any rotation: one key, one signature, an empty history; the monitor follows.
    let before = log.checkpoint_with(20, 1).await;
    assert!(log.history_of(0).await.is_empty());
    let mut receipts = log.receipts("before", before).await;
    let output = log.monitor_once();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Rotation: from the current size on, checkpoints carry both signatures.
    let from = log.checkpoint().await.expect("a checkpoint").0;
    let k2 = new_key(&log.history_command(&["rotate-key", "--from-size", &from.to_string()]));
    let history = log.history_of(1).await;
    let overlap = log.checkpoint_with(from + 10, 2).await;
    receipts.extend(log.receipts("overlap", overlap).await);
    // The statement is a leaf of the log.
    let statement = cairn_spec::key_history::split_statements(&history).expect("splits")[0];
    let leaf_hash = cairn_spec::Hash::of_leaf(statement).to_base64();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let size = log.checkpoint().await.expect("checkpoint").0;
        let query = format!(
            "/proof/inclusion?leaf_hash={}&size={size}",
            leaf_hash
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
        if log.get(&query).await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the statement is never logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = log.monitor_once();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Retirement: past its last size the old key signs no more.
    let last = log.checkpoint().await.expect("a checkpoint").0 + 10;
    log.history_command(&[
        "retire-key",
        "--vkey",
        &k1,
        "--after-size",
        &last.to_string(),
    ]);
    log.history_of(2).await;
    let after = log.checkpoint_with(last + 10, 1).await;
    let (_, _, text) = log.checkpoint().await.expect("checkpoint");
    let k2_id = k2.split('+').nth(1).expect("key ID");
    let note = cairn_spec::note::Note::parse(text.as_bytes()).expect("a note");
    let signer_id = note.signatures()[0].key_id.to_string();
    assert_eq!(
        signer_id, k2_id,
        "after the retirement only the new key signs"
    );
    let after_receipts = log.receipts("after", after).await;
    let output = log.monitor_once();
    assert_eq!(
        output.status.code(),
        Some(0),
        "the monitor follows across the rotation: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Every receipt verifies against the policy that pins the first key, with the history.
    let history_file = log.dir.join("history");
    std::fs::write(&history_file, log.history_of(2).await).expect("history");
    for receipt in receipts.iter().chain(&after_receipts) {
        let (ok, words) = verify_receipt(&policy, receipt, Some(&history_file));
        assert!(ok, "{}: {words}", receipt.display());
    }
    // The log itself takes every receipt, the old key's included, with its key history.
    for receipt in receipts.iter().chain(&after_receipts) {
        let (valid, answer) = log.log_verifies(receipt).await;
        assert!(valid, "{}: {answer}", receipt.display());
    }
    // Without the history, the old key's receipts still verify, the new key's do not.
    for receipt in &receipts {
        assert!(
            verify_receipt(&policy, receipt, None).0,
            "{}",
            receipt.display()
        );
    }
    for receipt in &after_receipts {
        assert!(
            !verify_receipt(&policy, receipt, None).0,
            "{}",
            receipt.display()
        );
    }

    // A second rotation, then the second key is found compromised from the overlap on: the
    // monitor verified a checkpoint it signed there, and raises an alert.
    let from = log.checkpoint().await.expect("a checkpoint").0;
    log.history_command(&["rotate-key", "--from-size", &from.to_string()]);
    log.history_of(3).await;
    let overlap = log.checkpoint_with(from + 5, 2).await;
    let output = log.monitor_once();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The monitor's verified checkpoint is of size `overlap` or more, signed by both keys.
    log.history_command(&[
        "revoke-key",
        "--vkey",
        &k2,
        "--from-size",
        &overlap.to_string(),
    ]);
    log.history_of(4).await;
    let output = log.monitor_once();
    let words = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "an alert: {words}");
    assert!(words.contains("revoked-key"), "{words}");

    // The compromise is an incident, with evidence anyone can check with the pinned key.
    let state = log.dir.join("monitor-state");
    let listed = run(Command::new(binary("cairn-monitor"))
        .args(["incidents", "--json", "--state"])
        .arg(&state));
    let incidents: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    let incident = incidents
        .as_array()
        .expect("an array")
        .iter()
        .find(|incident| incident["kind"] == "revoked-key")
        .unwrap_or_else(|| panic!("no revoked-key incident in {listed}"));
    let evidence = log.dir.join("evidence").join(
        incident["evidence_file"]
            .as_str()
            .expect("an evidence file"),
    );
    let checked = run(Command::new(binary("cairn-monitor"))
        .arg("verify-evidence")
        .arg(&evidence)
        .args(["--log-key", &k1]));
    assert!(checked.contains("revoked"), "{checked}");
    // The log moves on, signed by the third key alone: the monitor's verified checkpoint is no
    // longer the compromised one, and the incident still fails the run.
    let moved = log.checkpoint().await.expect("a checkpoint").0 + 5;
    log.checkpoint_with(moved, 1).await;
    let output = log.monitor_once();
    let words = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(2),
        "the incident stands: {words}"
    );
    assert!(words.contains("revoked-key"), "{words}");
    let id = incident["id"].as_i64().expect("an incident number");
    run(Command::new(binary("cairn-monitor"))
        .args(["acknowledge", "--state"])
        .arg(&state)
        .arg(id.to_string())
        .args(["--reason", "the key was rotated out", "--by", "test"]));
    let output = log.monitor_once();
    assert_eq!(
        output.status.code(),
        Some(0),
        "acknowledged: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    stop.store(true, Ordering::Relaxed);
    let added = loader.await.expect("the load ran");
    assert!(added > 0, "leaves were added under load");
}

#[test]
fn a_rotation_is_refused_without_a_history_dir_or_with_a_foreign_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = DevLog::start(dir.path(), "", "");
    let rotate = |extra: &[&str]| {
        Command::new(binary("cairn-log"))
            .args(["rotate-key", "--from-size", "0", "--config"])
            .arg(dir.path().join("log.toml"))
            .args(extra)
            .env_remove("CAIRN_LOG_KEY_HISTORY_DIR")
            .output()
            .expect("runs")
    };
    let output = rotate(&[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("key_history_dir"));
    // A new key file named after another origin is refused, and nothing is written.
    let other = dir.path().join("other.key");
    run(Command::new(binary("cairn-log"))
        .args(["keygen", "--origin", "other.example/log", "--out"])
        .arg(&other));
    let history = dir.path().join("key-history");
    let output = rotate(&[
        "--key-history-dir",
        &history.display().to_string(),
        "--new-key-file",
        &other.display().to_string(),
    ]);
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!history.join("history").exists());
    drop(log);
}
