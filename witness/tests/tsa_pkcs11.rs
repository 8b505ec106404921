//! The TSA's key inside a PKCS#11 token (SoftHSM2, which `.ci/run` installs): `cairn-witness
//! tsa init --pkcs11` makes an ECDSA P-256 key in the token and certifies it, `tsa serve` signs
//! each timestamp in the token (`CKM_ECDSA`), and the replies verify with public material only:
//! `openssl ts -verify` against the root certificate, and cairn-spec's own verifier. A second
//! TSA certifies the same key with `--existing-key`. When the token goes away under the running
//! TSA, a request is answered 503 `key_unavailable` with Retry-After, not with a timestamp;
//! a TSA whose PIN is refused does not start, and says so.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use cairn_keys::test_token::TestToken;
use cairn_spec::timestamp::{verify_response, Expectation, TimestampRequest, TrustAnchors};
use common::{nonce_as_u64, openssl_ok, path_str, Running};

fn witness(args: &[&str], token: &TestToken) -> Output {
    let (variable, conf) = token.env();
    Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .args(args)
        .env(variable, conf)
        .output()
        .expect("runs cairn-witness")
}

/// `cairn-witness tsa init --name NAME --dir DIR --pkcs11 TABLE EXTRA…` on `token`.
fn tsa_init_in_token(
    name: &str,
    dir: &Path,
    table: &Path,
    extra: &[&str],
    token: &TestToken,
) -> Output {
    let mut args = vec![
        "tsa",
        "init",
        "--name",
        name,
        "--dir",
        path_str(dir),
        "--pkcs11",
        path_str(table),
    ];
    args.extend_from_slice(extra);
    witness(&args, token)
}

/// Posts the query file `query` to the TSA; the answer's status and body.
async fn post(client: &reqwest::Client, url: &str, query: &[u8]) -> (u16, Vec<u8>, bool) {
    let response = client
        .post(format!("{url}/"))
        .header("content-type", "application/timestamp-query")
        .body(query.to_vec())
        .send()
        .await
        .expect("the TSA answers");
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    let body = response.bytes().await.expect("a body").to_vec();
    (status, body, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tsa_signs_through_a_key_in_a_token_and_its_replies_verify_with_public_material() {
    let token = TestToken::init("cairn-tsa");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let work = dir.path();
    let table = work.join("tsa-token.toml");
    std::fs::write(&table, token.config_table("timestamping")).expect("writes the table");
    let tsa_dir = work.join("tsa");

    let init = tsa_init_in_token("HSM TSA", &tsa_dir, &table, &[], &token);
    assert!(
        init.status.success(),
        "tsa init --pkcs11: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(tsa_dir.join("tsa-key.toml").is_file());
    assert!(
        !tsa_dir.join("tsa.key").exists(),
        "the TSA's private key is in the token, not in a file"
    );
    // The same label again is refused: a key in service is never shadowed.
    let again = tsa_init_in_token("Again", &work.join("again"), &table, &[], &token);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    // --existing-key certifies the key already in the token.
    let second_dir = work.join("second");
    let second = tsa_init_in_token("Second", &second_dir, &table, &["--existing-key"], &token);
    assert!(
        second.status.success(),
        "tsa init --existing-key: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    let public_key = |dir: &Path| {
        openssl_ok(
            work,
            &[
                "x509",
                "-in",
                path_str(&dir.join("tsa.pem")),
                "-noout",
                "-pubkey",
            ],
        )
    };
    assert_eq!(
        public_key(&tsa_dir),
        public_key(&second_dir),
        "one key, two certificates"
    );

    let (variable, conf) = token.env();
    let tsa = Running::start_with_env(
        &["tsa", "serve", "--dir", path_str(&tsa_dir)],
        &[(variable, conf.as_os_str())],
    );
    let client = reqwest::Client::new();
    std::fs::write(work.join("data.txt"), b"a checkpoint body, say\n").expect("writes");
    let root_pem = std::fs::read_to_string(tsa_dir.join("root.pem")).expect("root.pem");
    let anchors = TrustAnchors::from_pem(&root_pem).expect("the root");
    for round in 0..3 {
        let query = format!("q{round}.tsq");
        let reply = format!("r{round}.tsr");
        openssl_ok(
            work,
            &[
                "ts", "-query", "-data", "data.txt", "-sha256", "-cert", "-out", &query,
            ],
        );
        let query_der = std::fs::read(work.join(&query)).expect("the query");
        let (status, body, _) = post(&client, &tsa.url, &query_der).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        std::fs::write(work.join(&reply), &body).expect("writes the reply");
        let verified = openssl_ok(
            work,
            &[
                "ts",
                "-verify",
                "-queryfile",
                &query,
                "-in",
                &reply,
                "-CAfile",
                path_str(&tsa_dir.join("root.pem")),
                "-untrusted",
                path_str(&tsa_dir.join("tsa.pem")),
            ],
        );
        assert!(verified.contains("Verification: OK"), "{verified}");
        let request = TimestampRequest::from_der(&query_der).expect("the query parses");
        let imprint: [u8; 32] = request.imprint().try_into().expect("a SHA-256 imprint");
        verify_response(
            &body,
            &Expectation {
                imprint,
                nonce: request.nonce().map(nonce_as_u64),
                trust_anchors: Some(&anchors),
            },
        )
        .expect("the reply verifies with cairn-spec against the root");
    }

    // The token goes away under the running TSA: no timestamp, a clear 503.
    token.remove();
    let query_der = std::fs::read(work.join("q0.tsq")).expect("the query");
    let (status, body, retry_after) = post(&client, &tsa.url, &query_der).await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(retry_after, "a 503 says when to retry");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("key_unavailable"), "{body}");
}

#[test]
fn a_tsa_whose_token_refuses_the_pin_does_not_start_and_says_why() {
    let token = TestToken::init("cairn-tsa-pin");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let table = dir.path().join("tsa-token.toml");
    std::fs::write(&table, token.config_table("timestamping")).expect("writes the table");
    let tsa_dir = dir.path().join("tsa");
    let init = tsa_init_in_token("PIN TSA", &tsa_dir, &table, &[], &token);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    // The PIN file now holds another PIN (as after a PIN change the TSA was not told of).
    token.write_pin_file("pin", "999999");
    let serve = witness(
        &[
            "tsa",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            path_str(&tsa_dir),
        ],
        &token,
    );
    assert!(
        !serve.status.success(),
        "a TSA without its key does not serve"
    );
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(stderr.contains("PIN was refused"), "{stderr}");
    // An Ed25519 TSA cannot put its key in a token: refused before anything is made.
    let ed25519 = tsa_init_in_token(
        "Ed TSA",
        &dir.path().join("ed"),
        &table,
        &["--algorithm", "ed25519"],
        &token,
    );
    assert!(!ed25519.status.success());
    let stderr = String::from_utf8_lossy(&ed25519.stderr);
    assert!(stderr.contains("P-256"), "{stderr}");
    assert!(!dir.path().join("ed").exists(), "nothing was made");
}
