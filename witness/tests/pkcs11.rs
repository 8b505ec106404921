//! The witness's key inside a PKCS#11 token (SoftHSM2, which `.ci/run` installs): made there by
//! `cairn-witness keygen --pkcs11`, used by a running `cairn-witness serve`, and its
//! cosignatures verify with the printed vkey alone. When the token goes away under the running
//! witness, add-checkpoint answers 503 `key_unavailable` with Retry-After, persists nothing,
//! and counts the failure in `cairn_witness_signing_errors_total`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use cairn_keys::test_token::TestToken;
use cairn_spec::cosignature::CosignatureVerifier;
use cairn_spec::witness::parse_cosignature_response;
use common::TestLog;

const ORIGIN: &str = "example.com/hsm-witnessed-log";
const NAME: &str = "witness.example/hsm";

/// `cairn-witness serve`, killed when dropped.
struct Witness {
    child: Child,
    url: String,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_cosigns_with_a_key_made_in_a_token_and_refuses_with_503_without_it() {
    let token = TestToken::init("cairn-witness");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = TestLog::new(ORIGIN, 20);
    let config = dir.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nkey_name = {NAME:?}\n{}\n{}",
            dir.path().join("state"),
            log.config_table(),
            token.config_table("cosigning"),
        ),
    )
    .expect("writes witness.toml");
    let (variable, conf) = token.env();

    let keygen = Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .env(variable, &conf)
        .args(["keygen", "--name", NAME, "--pkcs11"])
        .arg(&config)
        .output()
        .expect("runs cairn-witness keygen");
    assert!(
        keygen.status.success(),
        "keygen --pkcs11: {}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let verifier =
        CosignatureVerifier::from_vkey(String::from_utf8(keygen.stdout).expect("UTF-8").trim())
            .expect("keygen prints a vkey");

    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .args(["serve", "--config"])
        .arg(&config)
        .env(variable, &conf)
        .env("CAIRN_WITNESS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts cairn-witness");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads its first line");
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("cairn-witness printed {line:?}, not its address"))
        .to_owned();
    let witness = Witness {
        child,
        url: format!("http://{address}"),
    };

    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/add-checkpoint", witness.url))
        .body(log.request(0, 10))
        .send()
        .await
        .expect("the witness answers");
    assert_eq!(response.status(), 200, "the token's key cosigns");
    let body = response.text().await.expect("a body");
    let lines = parse_cosignature_response(body.as_bytes()).expect("a cosignature line");
    let checkpoint = log.checkpoint(10);
    verifier
        .verify_cosignature(&checkpoint, &lines[0])
        .expect("the cosignature verifies with the vkey alone");

    token.remove();
    let response = http
        .post(format!("{}/add-checkpoint", witness.url))
        .body(log.request(10, 15))
        .send()
        .await
        .expect("the witness answers");
    assert_eq!(response.status(), 503, "no key, no cosignature");
    assert!(response.headers().contains_key("retry-after"));
    let body = response.text().await.expect("a body");
    assert!(body.contains("key_unavailable"), "{body}");
    let metrics = http
        .get(format!("{}/metrics", witness.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("cairn_witness_signing_errors_total 1"),
        "{metrics}"
    );
    // Nothing was persisted: the witness still stands at 10, so a request from 10 is taken
    // once a key signs again, and one from 15 is refused as a mismatch.
    let response = http
        .post(format!("{}/add-checkpoint", witness.url))
        .body(log.request(15, 20))
        .send()
        .await
        .expect("the witness answers");
    assert_eq!(
        response.status(),
        409,
        "the failed cosignature moved nothing"
    );
}
