//! End-to-end over TLS with a private CA made in the test by `openssl`: the real `cairn-log`
//! serves HTTPS only ([http] tls_cert_file, tls_key_file), a producer adds a leaf through a
//! client that trusts the CA, `cairn-load --ca-file` drives it over keep-alive TLS connections,
//! and `cairn-monitor audit --ca-file` verifies the log over https:// (and refuses it without
//! the CA).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{binary, run, DevLog};

/// A CA and a certificate for 127.0.0.1 and localhost it issued: `ca.pem`, `server.pem`,
/// `server.key` in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        run(Command::new("openssl").args(args).current_dir(dir));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=cairn e2e CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("writes the extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_over_tls_takes_leaves_and_the_monitor_audits_it_with_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    make_certificates(dir);
    let log = DevLog::start(
        dir,
        &format!(
            // A log of raw leaves: its entry bundles are public, for the audit below.
            "[privacy]\npublic_entries = true\n\n\
             [http]\ntls_cert_file = {cert:?}\ntls_key_file = {key:?}\n",
            cert = dir.join("server.pem").display().to_string(),
            key = dir.join("server.key").display().to_string(),
        ),
        "",
    );
    let (addr, token, vkey) = (log.addr.clone(), log.token.clone(), log.vkey.clone());
    let url = format!("https://{addr}");

    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).expect("ca.pem"))
        .expect("a CA certificate");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client");
    let added = client
        .post(format!("{url}/add?wait=checkpoint"))
        .bearer_auth(&token)
        .body("a leaf over TLS")
        .send()
        .await
        .expect("POST /add over TLS");
    assert_eq!(added.status(), 200, "{:?}", added.text().await);

    // Plain HTTP is not served on the TLS port.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |answer| answer.status() != 200),
        "plain HTTP was answered: {plain:?}"
    );

    let load = run(Command::new(binary("cairn-load")).args([
        "add",
        "--target",
        &url,
        "--ca-file",
        &dir.join("ca.pem").display().to_string(),
        "--token",
        &token,
        "-c",
        "4",
        "--requests",
        "200",
        "--warmup",
        "0s",
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&load).expect("a JSON report");
    assert_eq!(report["requests"], 200, "{report}");
    assert_eq!(report["status_counts"]["200"], 200, "{report}");
    for error in ["connect", "io", "timeout"] {
        assert_eq!(report["errors"][error], 0, "{report}");
    }

    let audit = |with_ca: bool, state: &str| {
        let mut command = Command::new(binary("cairn-monitor"));
        command.args(["audit", "--log", &url, "--log-key", &vkey, "--state"]);
        command.arg(dir.join(state));
        if with_ca {
            command.arg("--ca-file").arg(dir.join("ca.pem"));
        }
        command.output().expect("cairn-monitor runs")
    };
    let trusted = audit(true, "audit-trusted");
    assert!(
        trusted.status.success(),
        "the audit with the CA fails: {}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("verified:"));
    let untrusted = audit(false, "audit-untrusted");
    assert!(
        !untrusted.status.success(),
        "the audit without the CA trusted a private certificate"
    );
    drop(log);
}
