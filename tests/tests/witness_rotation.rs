//! A witness rotates its key while the log runs, with the real binaries on loopback: the log's
//! `[[witnesses]]` entry lists the witness's old and new vkeys (`vkeys`), the witness is
//! restarted with the key `cairn-witness rotate-key` made, and the log keeps reaching its quorum
//! of one: checkpoints are published cosigned by the old key, then by the new one. Every receipt,
//! from before and after the switch, verifies with `cairn-monitor verify-receipt` against a
//! policy with the witness's `witness` and `witness-key` lines, and with POST /v1/verify.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{binary, reader_principal, run, DevLog};

/// How long a condition is waited for before the test fails.
const PATIENCE: Duration = Duration::from_secs(90);

const WITNESS_NAME: &str = "witness.e2e.example/w1";

/// A loopback TCP forwarder: the log's `[[witnesses]]` URL points at it, and it forwards each
/// connection to the witness's current address, so the witness can restart on another port.
struct Forwarder {
    url: String,
    target: Arc<Mutex<String>>,
}

impl Forwarder {
    async fn start() -> Forwarder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let target = Arc::new(Mutex::new(String::new()));
        let current = Arc::clone(&target);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = current.lock().expect("the target").clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Forwarder { url, target }
    }

    fn point_at(&self, address: &str) {
        *self.target.lock().expect("the target") = address.to_owned();
    }
}

/// `cairn-witness serve` with a key file, killed when dropped.
struct Witness {
    child: Child,
    address: String,
}

impl Witness {
    fn start(config: &Path, key_file: &Path) -> Witness {
        let mut child = Command::new(binary("cairn-witness"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--key-file")
            .arg(key_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cairn-witness starts");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("reads its first line");
        let Some(address) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            panic!("cairn-witness printed {line:?}, not its address");
        };
        Witness {
            address: address.to_owned(),
            child,
        }
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The published checkpoint: its size and the key IDs of its signature lines.
async fn checkpoint(client: &reqwest::Client, base: &str) -> Option<(u64, Vec<String>)> {
    let response = client.get(format!("{base}/checkpoint")).send().await.ok()?;
    if response.status() != 200 {
        return None;
    }
    let text = response.text().await.ok()?;
    let note = cairn_spec::note::Note::parse(text.as_bytes()).ok()?;
    let size = text.lines().nth(1)?.parse().ok()?;
    let ids = note
        .signatures()
        .iter()
        .map(|signature| signature.key_id.to_string())
        .collect();
    Some((size, ids))
}

/// Waits for a published checkpoint of at least `size` cosigned by the key `vkey`; its size.
async fn cosigned_by(client: &reqwest::Client, base: &str, size: u64, vkey: &str) -> u64 {
    let key_id = vkey.split('+').nth(1).expect("a vkey has a key ID");
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some((published, ids)) = checkpoint(client, base).await {
            if published >= size && ids.iter().any(|id| id == key_id) {
                return published;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {size} or more cosigned by {vkey}: {:?}",
            checkpoint(client, base).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Adds `count` leaves.
async fn add(client: &reqwest::Client, base: &str, token: &str, count: usize, tag: &str) {
    for index in 0..count {
        let response = client
            .post(format!("{base}/add"))
            .bearer_auth(token)
            .body(format!("{tag} leaf {index}"))
            .send()
            .await
            .expect("the log answers");
        assert!(response.status().is_success(), "{}", response.status());
    }
}

/// Receipts of a few indices below `size`, written as files named after `phase`.
async fn receipts(
    client: &reqwest::Client,
    base: &str,
    dir: &Path,
    phase: &str,
    size: u64,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for index in [0, size / 2, size - 1] {
        let response = client
            .get(format!("{base}/receipt/{index}"))
            .send()
            .await
            .expect("the log answers");
        assert_eq!(response.status(), 200);
        let path = dir.join(format!("receipt-{phase}-{index}.json"));
        std::fs::write(&path, response.bytes().await.expect("a body")).expect("writes");
        files.push(path);
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_rotating_its_key_mid_run_keeps_the_log_at_quorum_and_receipts_verifying() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = temporary.path();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    // The witness's first key, and its second made by rotate-key (with the history statement
    // endorsing it), both before the log starts: the log's entry lists both.
    let old_key = dir.join("witness-old.key");
    let old_vkey = run(Command::new(binary("cairn-witness"))
        .args(["keygen", "--name", WITNESS_NAME, "--out"])
        .arg(&old_key))
    .trim()
    .to_owned();
    let new_key = dir.join("witness-new.key");
    let rotated = run(Command::new(binary("cairn-witness"))
        .args(["rotate-key", "--key-file"])
        .arg(&old_key)
        .arg("--history-dir")
        .arg(dir.join("witness-history"))
        .arg("--new-key-out")
        .arg(&new_key));
    let new_vkey = rotated
        .lines()
        .find_map(|line| line.strip_prefix("new key: "))
        .unwrap_or_else(|| panic!("no new key in {rotated}"))
        .to_owned();

    let log_vkey = DevLog::keygen(dir);
    let witness_config = dir.join("witness.toml");
    std::fs::write(
        &witness_config,
        format!(
            "data_dir = {:?}\n\n[[log]]\norigin = \"e2e.cairn.example/log\"\nvkey = {log_vkey:?}\n",
            dir.join("witness-state")
        ),
    )
    .expect("writes witness.toml");
    let forwarder = Forwarder::start().await;
    let witness = Witness::start(&witness_config, &old_key);
    forwarder.point_at(&witness.address);

    let (reader_token, principal) = reader_principal("auditor");
    let log = DevLog::start_keyed(
        dir,
        log_vkey.clone(),
        &format!(
            "{principal}\n[privacy]\npublic_entries = true\n\n[[witnesses]]\nname = \"w1\"\n\
             url = {:?}\nvkeys = [{old_vkey:?}, {new_vkey:?}]\n",
            forwarder.url
        ),
        "export CAIRN_LOG_WITNESS_QUORUM=1;",
    );
    let base = format!("http://{}", log.addr);

    // Before the switch: published checkpoints are cosigned by the old key.
    add(&client, &base, &log.token, 8, "before").await;
    let before = cosigned_by(&client, &base, 8, &old_vkey).await;
    let mut files = receipts(&client, &base, dir, "before", before).await;

    // The witness restarts with its new key (same state); the log goes on publishing.
    drop(witness);
    let witness = Witness::start(&witness_config, &new_key);
    forwarder.point_at(&witness.address);
    add(&client, &base, &log.token, 8, "after").await;
    let after = cosigned_by(&client, &base, before + 8, &new_vkey).await;
    files.extend(receipts(&client, &base, dir, "after", after).await);

    // Every receipt verifies for a policy that knows both of the witness's keys, and for the
    // log itself; a policy with the old key alone refuses those cosigned by the new one.
    let policy = dir.join("policy.txt");
    std::fs::write(
        &policy,
        format!("log {log_vkey}\nwitness w1 {old_vkey}\nwitness-key w1 {new_vkey}\nquorum w1\n"),
    )
    .expect("writes the policy");
    let old_only = dir.join("old-only.txt");
    std::fs::write(
        &old_only,
        format!("log {log_vkey}\nwitness w1 {old_vkey}\nquorum w1\n"),
    )
    .expect("writes the policy");
    for (phase, file) in files.iter().enumerate().map(|(i, f)| (i / 3, f)) {
        let verify = |policy: &Path| {
            Command::new(binary("cairn-monitor"))
                .arg("verify-receipt")
                .arg(file)
                .arg("--policy")
                .arg(policy)
                .output()
                .expect("cairn-monitor runs")
        };
        let output = verify(&policy);
        assert!(
            output.status.success(),
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            verify(&old_only).status.success(),
            phase == 0,
            "{}: only receipts cosigned by the old key verify without the new one",
            file.display()
        );
        let answer: serde_json::Value = client
            .post(format!("{base}/v1/verify"))
            .bearer_auth(&reader_token)
            .body(std::fs::read(file).expect("the receipt"))
            .send()
            .await
            .expect("the log answers")
            .bytes()
            .await
            .map(|body| serde_json::from_slice(&body).expect("JSON"))
            .expect("a body");
        assert_eq!(answer["valid"], true, "{}: {answer}", file.display());
    }
    drop(witness);
    drop(log);
}
