//! RFC 3161 interop of the witness with OpenSSL, both ways, with the real binaries and real
//! HTTP on loopback:
//!
//! - `cairn-witness tsa init` and `tsa serve` answer a request made by `openssl ts -query`;
//!   the reply reads with `openssl ts -reply -text` and verifies with `openssl ts -verify`
//!   against the `root.pem` that `tsa init` wrote, also after a restart (new serial numbers).
//! - OpenSSL acting as the TSA (`openssl ts -reply` behind a small HTTP server in this test,
//!   with a CA and TSA certificates made by `openssl`, RSA-2048 and ECDSA P-256, ESSCertIDv2
//!   and v1): `cairn-witness serve` accepts its tokens, stores and serves them, and they
//!   verify with cairn-spec against the OpenSSL root (and with `openssl ts -verify` again).
//!
//! These tests need the `openssl` binary and fail, saying so, without it (CI installs it).

mod common;

use common::{openssl, openssl_ok, path_str, Running};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::hash::Hash;
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::timestamp::{checkpoint_imprint, verify_token, Expectation, TrustAnchors};
use cairn_spec::witness::format_add_checkpoint_request;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ORIGIN: &str = "example.com/openssl-interop";

/// The text of the line of `openssl ts … -text` output starting with `label`.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        .trim()
}

#[tokio::test]
async fn cairn_tsa_replies_read_and_verify_with_openssl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let tsa_dir = work.join("tsa");
    // The default algorithm is the one OpenSSL verifies.
    let init = Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .args(["tsa", "init", "--name", "Interop TSA", "--dir"])
        .arg(&tsa_dir)
        .output()
        .expect("tsa init runs");
    assert!(
        init.status.success(),
        "tsa init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let root = tsa_dir.join("root.pem");
    let tsa_certificate = tsa_dir.join("tsa.pem");
    std::fs::write(work.join("data.txt"), b"a checkpoint body, say\n").expect("writes");
    let client = reqwest::Client::new();

    let mut serials = Vec::new();
    // Two replies from one run, one after a restart: serial numbers never repeat.
    for run in 0..2 {
        let tsa = Running::start(&[
            "tsa",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            path_str(&tsa_dir),
        ]);
        for request in 0..[2, 1][run] {
            let query = format!("q{run}{request}.tsq");
            let reply = format!("r{run}{request}.tsr");
            openssl_ok(
                work,
                &[
                    "ts", "-query", "-data", "data.txt", "-sha256", "-cert", "-out", &query,
                ],
            );
            let response = client
                .post(format!("{}/", tsa.url))
                .header(header::CONTENT_TYPE.as_str(), "application/timestamp-query")
                .body(std::fs::read(work.join(&query)).expect("query"))
                .send()
                .await
                .expect("the TSA answers");
            assert_eq!(response.status().as_u16(), 200);
            assert_eq!(
                response.headers()[header::CONTENT_TYPE.as_str()],
                "application/timestamp-reply"
            );
            let der = response.bytes().await.expect("body");
            std::fs::write(work.join(&reply), &der).expect("writes");

            let text = openssl_ok(work, &["ts", "-reply", "-in", &reply, "-text"]);
            assert_eq!(field(&text, "Status:"), "Granted.", "{text}");
            assert_eq!(field(&text, "Policy OID:"), "1.3.6.1.4.1.99999.1");
            assert_eq!(field(&text, "Hash Algorithm:"), "sha256");
            let query_text = openssl_ok(work, &["ts", "-query", "-in", &query, "-text"]);
            assert_eq!(field(&text, "Nonce:"), field(&query_text, "Nonce:"));
            serials.push(field(&text, "Serial number:").to_owned());

            for against in [["-data", "data.txt"], ["-queryfile", query.as_str()]] {
                let verified = openssl_ok(
                    work,
                    &[
                        "ts",
                        "-verify",
                        against[0],
                        against[1],
                        "-in",
                        &reply,
                        "-CAfile",
                        path_str(&root),
                        "-untrusted",
                        path_str(&tsa_certificate),
                    ],
                );
                assert!(verified.contains("Verification: OK"), "{verified}");
            }
        }
    }
    let mut distinct = serials.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), serials.len(), "serials {serials:?}");
}

/// `openssl ts -reply` as an HTTP TSA: POST /<section> answers with the reply of that section
/// of `openssl-ts.cnf`.
struct OpensslTsa {
    dir: PathBuf,
    /// `openssl ts -reply` rewrites its serial file: one reply at a time.
    one_at_a_time: tokio::sync::Mutex<()>,
    replies: AtomicUsize,
}

async fn openssl_reply(
    State(tsa): State<Arc<OpensslTsa>>,
    UrlPath(section): UrlPath<String>,
    body: Bytes,
) -> Response {
    let _turn = tsa.one_at_a_time.lock().await;
    let number = tsa.replies.fetch_add(1, Ordering::SeqCst);
    let dir = tsa.dir.clone();
    let query = dir.join(format!("witness-{number}.tsq"));
    let reply = dir.join(format!("witness-{number}.tsr"));
    if std::fs::write(&query, &body).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let output = tokio::task::spawn_blocking({
        let (dir, query, reply) = (dir.clone(), query.clone(), reply.clone());
        move || {
            openssl(
                &dir,
                &[
                    "ts",
                    "-reply",
                    "-config",
                    "openssl-ts.cnf",
                    "-section",
                    &section,
                    "-queryfile",
                    path_str(&query),
                    "-out",
                    path_str(&reply),
                ],
            )
        }
    })
    .await
    .expect("openssl task");
    match (output.status.success(), std::fs::read(&reply)) {
        (true, Ok(der)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/timestamp-reply")],
            der,
        )
            .into_response(),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
            .into_response(),
    }
}

/// The sections of `make-openssl-tsa.sh`'s config the witness uses, and the names it gives
/// them: RSA and P-256 signers, ESSCertIDv2 with the chain in the token, and ESSCertID v1
/// (SHA-1) with larger digests and the signer's certificate only.
const OPENSSL_SECTIONS: [(&str, &str); 4] = [
    ("openssl-rsa", "tsa_rsa"),
    ("openssl-p256", "tsa_p256"),
    ("openssl-rsa-sha512-ess1", "tsa_rsa_sha512"),
    ("openssl-p256-sha384-ess1", "tsa_p256_sha384"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_accepts_tokens_made_by_openssl_ts_reply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    // A CA and TSA certificates (critical EKU timeStamping) and an `openssl ts` config, made
    // by openssl itself; the script is shared with cairn-spec's own interop tests.
    let openssl_dir = work.join("openssl-tsa");
    openssl_ok(work, &["version"]);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/tests/tsa/make-openssl-tsa.sh");
    let made = Command::new("bash")
        .arg(&script)
        .arg(&openssl_dir)
        .output()
        .expect("runs make-openssl-tsa.sh");
    assert!(
        made.status.success(),
        "make-openssl-tsa.sh: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let root = openssl_dir.join("root.pem");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let tsa_url = format!("http://{}", listener.local_addr().expect("address"));
    let tsa = Arc::new(OpensslTsa {
        dir: openssl_dir.clone(),
        one_at_a_time: tokio::sync::Mutex::new(()),
        replies: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/{section}", post(openssl_reply))
        .with_state(tsa.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serves") });

    let log = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [11; 32]);
    let keygen = Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .args(["keygen", "--name", "witness.example/interop", "--out"])
        .arg(work.join("witness.key"))
        .output()
        .expect("keygen runs");
    assert!(keygen.status.success());
    let mut config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nkey_file = {:?}\n\
         [[log]]\norigin = {ORIGIN:?}\nvkey = {:?}\n",
        work.join("db"),
        work.join("witness.key"),
        log.verifier().to_vkey()
    );
    for (name, section) in OPENSSL_SECTIONS {
        config.push_str(&format!(
            "[[tsa]]\nname = {name:?}\nurl = \"{tsa_url}/{section}\"\ntrust_anchor = {root:?}\n"
        ));
    }
    std::fs::write(work.join("witness.toml"), config).expect("writes");
    let witness = Running::start(&["serve", "--config", path_str(&work.join("witness.toml"))]);

    let note = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 1,
        root: Hash::of_leaf(b"the first event"),
        extensions: Vec::new(),
    }
    .sign(&log)
    .expect("signs");
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/add-checkpoint", witness.url))
        .body(format_add_checkpoint_request(&note, 0, &[]).expect("request"))
        .send()
        .await
        .expect("sends");
    assert_eq!(response.status().as_u16(), 200);

    let (http, base) = (&client, witness.url.as_str());
    let document = common::wait_until(
        "every OpenSSL token",
        Duration::from_millis(50),
        move || async move {
            let (document, text) = common::timestamps(http, base, ORIGIN, 1).await;
            if common::tokens_in(&document) == OPENSSL_SECTIONS.len() {
                Ok(document)
            } else {
                Err(text)
            }
        },
    )
    .await;

    let body = document["checkpoint"].as_str().expect("checkpoint body");
    assert_eq!(body, note.text());
    std::fs::write(work.join("checkpoint.txt"), body).expect("writes");
    let anchors =
        TrustAnchors::from_pem(&std::fs::read_to_string(&root).expect("root")).expect("anchors");
    let mut names = Vec::new();
    for token in document["tokens"].as_array().expect("tokens") {
        let name = token["tsa"].as_str().expect("tsa name");
        let der = base64::engine::general_purpose::STANDARD
            .decode(token["token"].as_str().expect("token"))
            .expect("base64");
        let verified = verify_token(
            &der,
            &Expectation {
                imprint: checkpoint_imprint(body.as_bytes()),
                nonce: None,
                trust_anchors: Some(&anchors),
            },
        )
        .unwrap_or_else(|error| panic!("token of {name} does not verify: {error}"));
        assert_eq!(verified.policy.to_string(), "1.3.6.1.4.1.99999.1");
        assert!(
            verified.signer_subject.contains("OpenSSL Test TSA"),
            "{}",
            verified.signer_subject
        );
        // And OpenSSL agrees that what the witness serves is its token over the checkpoint.
        let file = format!("{name}.tst");
        std::fs::write(work.join(&file), &der).expect("writes");
        let checked = openssl_ok(
            work,
            &[
                "ts",
                "-verify",
                "-token_in",
                "-in",
                &file,
                "-data",
                "checkpoint.txt",
                "-CAfile",
                path_str(&root),
            ],
        );
        assert!(checked.contains("Verification: OK"), "{checked}");
        names.push(name.to_owned());
    }
    names.sort();
    let mut expected: Vec<String> = OPENSSL_SECTIONS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    expected.sort();
    assert_eq!(names, expected);

    let metrics = common::scrape_metrics(&client, &witness.url).await;
    for (name, _) in OPENSSL_SECTIONS {
        assert!(
            metrics.contains(&format!(
                "cairn_witness_tsa_tokens_total{{tsa=\"{name}\"}} 1\n"
            )),
            "{metrics}"
        );
    }
    assert!(
        !metrics.contains("cairn_witness_tsa_failures_total{"),
        "{metrics}"
    );
    assert_eq!(tsa.replies.load(Ordering::SeqCst), OPENSSL_SECTIONS.len());
}
