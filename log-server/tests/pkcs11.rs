//! The log's checkpoint key inside a PKCS#11 token (SoftHSM2, which `.ci/run` installs): made
//! there by `cairn-log keygen --pkcs11`, used by a running `cairn-log serve`, and its
//! checkpoints verify with the printed vkey alone. When the token stops signing (deleted under
//! the running log), the log keeps sequencing, says on `/readyz` that signing fails, counts the
//! failures in `cairn_log_signing_errors_total`, and signs nothing. Before that, `cairn-log
//! rotate-key --pkcs11` introduces a second key made in the token, and the running log signs
//! each checkpoint with both (the key history's overlap).

#[path = "support/faults.rs"]
#[allow(dead_code)] // this test uses only its HTTP helpers
mod faults;
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use cairn_keys::test_token::TestToken;
use cairn_log::config::token_digest_hex;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::note::Ed25519Verifier;
use faults::{add, status_of, wait_for, Added, PRODUCER};
use support::{free_port, start_with_env};

const ORIGIN: &str = "hsm.cairn.example/log";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_signs_with_a_key_made_in_a_token_and_waits_when_the_token_stops_signing() {
    let token = TestToken::init("cairn-log");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let config = dir.path().join("log.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\norigin = \"{ORIGIN}\"\n\
             witness_quorum = 0\ncheckpoint_interval_ms = 100\nkey_history_dir = {:?}\n\n{}\n\
             [[producers]]\nname = \"hsm\"\ntoken_sha256 = \"{}\"\n",
            dir.path().join("data").display(),
            dir.path().join("key-history"),
            token.config_table("checkpoints"),
            token_digest_hex(PRODUCER),
        ),
    )
    .expect("writes log.toml");

    // The key is made inside the token; only its public half comes out, as a vkey.
    let keygen = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
        .env("SOFTHSM2_CONF", token.conf())
        .args(["keygen", "--origin", ORIGIN, "--pkcs11"])
        .arg(&config)
        .stderr(Stdio::inherit())
        .output()
        .expect("runs cairn-log keygen");
    assert!(keygen.status.success(), "keygen --pkcs11 fails");
    let vkey = String::from_utf8(keygen.stdout).expect("UTF-8");
    let verifier = Ed25519Verifier::from_vkey(vkey.trim()).expect("keygen prints a vkey");
    let again = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
        .env("SOFTHSM2_CONF", token.conf())
        .args(["keygen", "--origin", ORIGIN, "--pkcs11"])
        .arg(&config)
        .output()
        .expect("runs cairn-log keygen");
    assert!(
        !again.status.success(),
        "a second key of the same label is refused"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let http = reqwest::Client::new();
    let (name, conf) = token.env();
    let log = start_with_env(&config, port, &http, &[(name, conf.as_os_str())]).await;
    for number in 0..5 {
        assert!(matches!(add(&http, &log.base, number).await, Added::At(_)));
    }
    // Checkpoints signed in the token verify with the vkey alone.
    let checkpoint_size = || async {
        let text = http
            .get(format!("{}/checkpoint", log.base))
            .send()
            .await
            .expect("the log answers")
            .text()
            .await
            .unwrap_or_default();
        Checkpoint::open(text.as_bytes(), &verifier)
            .ok()
            .map(|opened| opened.checkpoint.size)
    };
    wait_for(
        Duration::from_secs(30),
        "a checkpoint of 5 leaves",
        || async { checkpoint_size().await == Some(5) },
    )
    .await;

    // A second key, made in the token under a label of its own, is introduced from size 5:
    // the running log reads the history and signs with both keys.
    let second_table = dir.path().join("log-2.toml");
    std::fs::write(&second_table, token.config_table("checkpoints-2")).expect("writes");
    let keygen = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
        .env("SOFTHSM2_CONF", token.conf())
        .args(["keygen", "--origin", ORIGIN, "--pkcs11"])
        .arg(&second_table)
        .output()
        .expect("runs cairn-log keygen");
    assert!(
        keygen.status.success(),
        "keygen --pkcs11 of a second key: {}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let second_vkey = String::from_utf8(keygen.stdout).expect("UTF-8");
    let second = Ed25519Verifier::from_vkey(second_vkey.trim()).expect("a vkey");
    let rotate = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
        .env("SOFTHSM2_CONF", token.conf())
        .args(["rotate-key", "--from-size", "5", "--config"])
        .arg(&config)
        .arg("--pkcs11")
        .arg(&second_table)
        .output()
        .expect("runs cairn-log rotate-key");
    let report = String::from_utf8_lossy(&rotate.stdout);
    assert!(
        rotate.status.success() && report.contains(&format!("new key: {}", second_vkey.trim())),
        "rotate-key --pkcs11: {report}{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("key-history"))
            .expect("the history directory")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the directory of private keys is 0700");
    }
    for number in 5..8 {
        assert!(matches!(add(&http, &log.base, number).await, Added::At(_)));
    }
    let signed_by_both = || async {
        let text = http
            .get(format!("{}/checkpoint", log.base))
            .send()
            .await
            .expect("the log answers")
            .text()
            .await
            .unwrap_or_default();
        let first = Checkpoint::open(text.as_bytes(), &verifier).ok()?;
        Checkpoint::open(text.as_bytes(), &second).ok()?;
        Some(first.checkpoint.size)
    };
    // Three leaves and the statement's own leaf.
    wait_for(
        Duration::from_secs(30),
        "a checkpoint of 9 leaves signed by both keys in the token",
        || async { signed_by_both().await == Some(9) },
    )
    .await;

    // The token goes away under the running log.
    token.remove();
    for number in 8..13 {
        assert!(
            matches!(add(&http, &log.base, number).await, Added::At(_)),
            "sequencing goes on while the key cannot sign"
        );
    }
    wait_for(
        Duration::from_secs(30),
        "/readyz to say signing fails",
        || async {
            let (status, body) = status_of(&http, format!("{}/readyz", log.base)).await;
            status == 503 && body.to_string().contains("signing checkpoints fails")
        },
    )
    .await;
    let metrics = http
        .get(format!("{}/metrics", log.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let errors: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("cairn_log_signing_errors_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("cairn_log_signing_errors_total is reported");
    assert!(errors >= 1, "signing failures are counted: {errors}");
    assert_eq!(
        checkpoint_size().await,
        Some(9),
        "nothing is signed without the key"
    );
}
