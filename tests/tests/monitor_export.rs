//! End-to-end: `cairn-monitor export` and `verify-export` as a new user runs them, against the
//! real `cairn-log` of a sandbox over HTTPS with the sandbox's own CA: `export --ca-file`
//! trusts it (and without it the private certificate is refused), both commands say in words
//! (or in `--json`) what they verified, never a debug structure, the same command run twice
//! refuses to overwrite the bundle with a hint, and the command printed for the next bundle
//! runs as printed.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use cairn_tests::sandbox::{Binaries, Options, Sandbox};
use serde_json::Value;

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Splits a command line as printed (plain words and single-quoted ones).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_over_tls_says_what_it_verified_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::new(dir.path().join("sandbox"));
    options.tls = true;
    options.monitor = false;
    options.witnesses = 1;
    options.witness_quorum = 1;
    options.checkpoint_interval_ms = 200;
    let binaries = Binaries::locate().expect("binaries");
    let monitor = binaries.path("cairn-monitor").expect("cairn-monitor");
    let sandbox = Sandbox::start(&options, binaries)
        .unwrap_or_else(|error| panic!("the sandbox starts: {error}"));
    let ca = sandbox.ca_path().expect("a CA with TLS");
    let log = sandbox.log_url();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca).expect("ca.pem")).expect("a CA"),
        )
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client");
    let token = sandbox.producer_token().expect("token");
    for n in 0..3 {
        let event = serde_json::json!({
            "timestamp": format!("2026-11-25T09:14:0{n}Z"),
            "actor": {"id": "alice@example.com", "type": "user"},
            "action": "invoice.approve",
            "resource": {"type": "invoice", "id": format!("INV-{n}")},
            "outcome": "success",
            "payload": {"amount_cents": 1000 * (n + 1)},
        });
        let response = client
            .post(format!("{log}/v1/events?wait=checkpoint"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
            .await
            .expect("POST /v1/events over TLS");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("alice.json");
    let auditor = sandbox.auditor_token().expect("auditor token");
    let vkey = sandbox.layout().log_vkey.clone();
    let export = |extra: &[&str], out: &Path| {
        Command::new(&monitor)
            .args(["export", "--log", &log, "--log-key", &vkey, "--limit", "2"])
            .args(extra)
            .arg("--out")
            .arg(out)
            .env("CAIRN_TOKEN", &auditor)
            .env_remove("CAIRN_MONITOR_CA_FILE")
            .output()
            .expect("cairn-monitor export runs")
    };
    let ca_arg = ca.display().to_string();

    // Without the CA, the sandbox's certificate is not trusted, and nothing is written.
    let untrusted = export(&[], &out);
    assert_eq!(untrusted.status.code(), Some(1), "{}", text(&untrusted));
    assert!(!out.exists());

    let exported = export(&["--ca-file", &ca_arg], &out);
    let said = String::from_utf8_lossy(&exported.stdout).into_owned();
    assert_eq!(exported.status.code(), Some(0), "{}", text(&exported));
    assert!(
        said.starts_with("the export verifies against the log's key:\n  2 events of log "),
        "{said}"
    );
    assert!(said.contains("2 with all their contents"), "{said}");
    assert!(
        !said.contains("VerifiedExport") && !said.contains("Hash(") && !said.contains('{'),
        "{said}"
    );
    let written = std::fs::read(&out).expect("the bundle");

    // The same command again: refused before anything is fetched, with what to do.
    let again = export(&["--ca-file", &ca_arg], &out);
    let complaint = String::from_utf8_lossy(&again.stderr).into_owned();
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        complaint.contains("exists already") && complaint.contains("another --out"),
        "{complaint}"
    );
    assert!(!complaint.contains("os error"), "{complaint}");
    assert_eq!(std::fs::read(&out).expect("the bundle"), written);

    // The command printed for the next bundle runs as printed, into a file of its own.
    let next = said
        .lines()
        .find_map(|line| line.trim().strip_prefix("cairn-monitor "))
        .unwrap_or_else(|| panic!("no next command in {said}"));
    let words = shell_words(next);
    assert!(words.contains(&"--cursor".to_owned()), "{words:?}");
    assert!(words.contains(&"--ca-file".to_owned()), "{words:?}");
    let next_output = Command::new(&monitor)
        .args(&words)
        .env("CAIRN_TOKEN", &auditor)
        .output()
        .expect("the printed command runs");
    assert_eq!(next_output.status.code(), Some(0), "{}", text(&next_output));
    let next_out = words
        .iter()
        .skip_while(|word| *word != "--out")
        .nth(1)
        .expect("an --out");
    let next_bundle: Value =
        serde_json::from_slice(&std::fs::read(next_out).expect("the next bundle")).expect("JSON");
    assert_eq!(next_bundle["events"].as_array().map(Vec::len), Some(1));

    // verify-export in words and in JSON.
    let policy = sandbox.policy_path();
    let verified = Command::new(&monitor)
        .arg("verify-export")
        .arg(&out)
        .arg("--policy")
        .arg(&policy)
        .output()
        .expect("verify-export runs");
    let said = String::from_utf8_lossy(&verified.stdout).into_owned();
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    assert!(
        said.starts_with("the export verifies against the policy"),
        "{said}"
    );
    assert!(
        !said.contains("VerifiedExport") && !said.contains("Hash("),
        "{said}"
    );
    let verified = Command::new(&monitor)
        .arg("verify-export")
        .arg(&out)
        .args(["--log-key", &vkey, "--json"])
        .output()
        .expect("verify-export runs");
    let verdict: Value = serde_json::from_slice(&verified.stdout).expect("one JSON object");
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["trust"], "log-key", "{verdict}");
    assert_eq!(verdict["events"], 2, "{verdict}");
    // A bundle that does not verify: exit 1, JSON that says so.
    let garbage = work.path().join("garbage.json");
    std::fs::write(&garbage, b"{\"format\":\"cairn.export/v1\"}").expect("writes");
    let refused = Command::new(&monitor)
        .arg("verify-export")
        .arg(&garbage)
        .args(["--log-key", &vkey, "--json"])
        .output()
        .expect("verify-export runs");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let verdict: Value = serde_json::from_slice(&refused.stdout).expect("one JSON object");
    assert_eq!(verdict["ok"], false, "{verdict}");
}
