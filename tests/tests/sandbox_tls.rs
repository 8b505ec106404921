//! End-to-end: the sandbox with `--tls` (its `Options::tls`): every server over HTTPS with a
//! certificate of the sandbox's own CA, every client given `ca.pem`. A leaf added over HTTPS is
//! cosigned by the witness (the log's witness client over TLS) and timestamped by the TSA (the
//! witness's TSA client over TLS), the monitor verifies it (its fetches over TLS) and answers
//! over HTTPS itself, and no server answers plain HTTP.

use std::time::{Duration, Instant};

use cairn_tests::sandbox::{Binaries, Options, Sandbox};
use serde_json::Value;

const BOUND: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_runs_over_tls_with_the_sandbox_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::new(dir.path().join("sandbox"));
    options.tls = true;
    options.witnesses = 1;
    options.witness_quorum = 1;
    options.checkpoint_interval_ms = 200;
    options.monitor_poll_secs = 1;
    let sandbox = Sandbox::start(&options, Binaries::locate().expect("binaries"))
        .unwrap_or_else(|error| panic!("the sandbox starts: {error}"));
    let ca_path = sandbox.ca_path().expect("a CA with TLS");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_path).expect("ca.pem"))
        .expect("a CA certificate");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client");
    let log = sandbox.log_url();
    assert!(log.starts_with("https://"), "{log}");

    let added = client
        .post(format!("{log}/add?wait=checkpoint"))
        .bearer_auth(sandbox.producer_token().expect("token"))
        .body("a leaf over TLS, cosigned over TLS")
        .send()
        .await
        .expect("POST /add over TLS");
    assert_eq!(added.status(), 200, "{:?}", added.text().await);
    let answer: Value =
        serde_json::from_str(&added.text().await.expect("a body")).expect("a JSON answer");
    let index = answer["index"].as_u64().expect("an index");

    // The witness fetched a timestamp from the TSA over TLS and the log got it from the
    // witness over TLS: the receipt carries it.
    let started = Instant::now();
    loop {
        let receipt = client
            .get(format!("{log}/receipt/{index}"))
            .send()
            .await
            .expect("GET /receipt");
        if receipt.status() == 200 {
            let json: Value =
                serde_json::from_str(&receipt.text().await.expect("a body")).expect("receipt JSON");
            if json["timestamps"].as_array().is_some_and(|t| !t.is_empty()) {
                break;
            }
        }
        assert!(started.elapsed() < BOUND, "no timestamp in the receipt");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The monitor verified the log over TLS, and serves its gossip over TLS.
    let gossip = format!("{}/gossip", sandbox.monitor_url().expect("a monitor"));
    let started = Instant::now();
    loop {
        if let Ok(answer) = client.get(&gossip).send().await {
            let body = answer.text().await.unwrap_or_default();
            if let Ok(notes) = serde_json::from_str::<Vec<String>>(&body) {
                let verified = notes
                    .iter()
                    .filter_map(|note| note.lines().nth(1)?.parse::<u64>().ok())
                    .max();
                if verified.is_some_and(|size| size > index) {
                    break;
                }
            }
        }
        assert!(started.elapsed() < BOUND, "the monitor verified nothing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // No server answers plain HTTP.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let mut urls = vec![log.clone(), sandbox.tsa_url()];
    urls.extend(sandbox.witness_url(0));
    urls.extend(sandbox.monitor_url());
    for url in urls {
        let url = url.replacen("https://", "http://", 1);
        let answer = plain.get(format!("{url}/healthz")).send().await;
        assert!(
            answer.as_ref().map_or(true, |a| a.status() != 200),
            "{url} answered plain HTTP"
        );
    }
}
