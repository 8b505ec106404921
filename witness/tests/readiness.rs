//! The real `cairn-witness` binary: `/healthz` (live) apart from `/readyz` (ready), readiness
//! lost while timestamping fails and regained at the next token, `cairn_witness_ready`, and
//! every error answered in JSON with its status (the witness's and its TSA's), naming no
//! server path.

mod common;

use common::{json, keygen, Running, TestLog};
use std::time::{Duration, Instant};

const ORIGIN: &str = "example.com/readiness-log";

async fn get(client: &reqwest::Client, url: String) -> (u16, String) {
    let response = client.get(url).send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn post(client: &reqwest::Client, url: String, body: Vec<u8>) -> (u16, String) {
    let response = client.post(url).body(body).send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.local_addr().expect("address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_lost_while_timestamping_fails_and_regained_at_the_next_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "witness.example/ready");
    let tsa_dir = dir.path().join("tsa");
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .args(["tsa", "init", "--name", "Readiness TSA", "--dir"])
        .arg(&tsa_dir)
        .output()
        .expect("tsa init runs");
    assert!(init.status.success(), "tsa init: {init:?}");
    // The TSA's port: nothing answers there until the TSA is started below.
    let tsa_port = free_port();
    let log = TestLog::new(ORIGIN, 20);
    let config = dir.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nkey_file = {key:?}\n{}\n[[tsa]]\nname = \"tsa-1\"\n\
             url = \"http://127.0.0.1:{tsa_port}/\"\ntrust_anchor = {:?}\n",
            dir.path().join("state"),
            log.config_table(),
            tsa_dir.join("root.pem"),
        ),
    )
    .expect("writes the config");
    let witness = Running::start(&[
        "serve",
        "--config",
        config.to_str().expect("UTF-8"),
        "--tsa-timeout-ms",
        "500",
        "--tsa-initial-backoff-ms",
        "100",
        "--tsa-max-attempts",
        "4",
        "--anchor-wait-ms",
        "0",
    ]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let url = &witness.url;

    let (status, body) = get(&client, format!("{url}/healthz")).await;
    assert_eq!((status, json(&body)["status"].clone()), (200, "ok".into()));
    let (status, body) = get(&client, format!("{url}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body),
        serde_json::json!({"status": "ready", "problems": []})
    );

    // A cosignature while the TSA is down: given at once, and timestamping starts failing.
    let cosigned_at = Instant::now();
    let (status, body) = post(&client, format!("{url}/add-checkpoint"), log.request(0, 5)).await;
    assert_eq!(status, 200, "{body}");
    let http = &client;
    let not_ready = common::wait_until(
        "not ready once timestamping fails",
        Duration::from_millis(200),
        move || async move {
            let (status, body) = get(http, format!("{url}/readyz")).await;
            if status == 503 {
                return Ok(json(&body));
            }
            assert_eq!(status, 200, "{body}");
            Err(body)
        },
    )
    .await;
    // Not before every TSA failed for the grace (10 s here): one failed attempt is no outage.
    assert!(
        cosigned_at.elapsed() >= Duration::from_secs(9),
        "not ready after {:?}",
        cosigned_at.elapsed()
    );
    assert_eq!(not_ready["status"], "not_ready");
    let problems = not_ready["problems"].to_string();
    assert!(
        problems.contains("timestamping fails") && problems.contains("tsa-1"),
        "{problems}"
    );
    let (_, metrics) = get(&client, format!("{url}/metrics")).await;
    assert!(metrics.contains("\ncairn_witness_ready 0\n"), "{metrics}");
    // Still live, and still cosigning.
    assert_eq!(get(&client, format!("{url}/healthz")).await.0, 200);

    // The TSA comes up; the next checkpoint gets its token, and the witness is ready again.
    let _tsa = Running::start(&[
        "tsa",
        "serve",
        "--dir",
        tsa_dir.to_str().expect("UTF-8"),
        "--listen",
        &format!("127.0.0.1:{tsa_port}"),
    ]);
    let (status, body) = post(&client, format!("{url}/add-checkpoint"), log.request(5, 9)).await;
    assert_eq!(status, 200, "{body}");
    common::wait_until(
        "ready again at the next token",
        Duration::from_millis(200),
        move || async move {
            let (status, body) = get(http, format!("{url}/readyz")).await;
            if status == 200 {
                assert_eq!(json(&body)["status"], "ready");
                return Ok(());
            }
            Err(body)
        },
    )
    .await;
    let (status, body) = get(&client, format!("{url}/timestamps/{ORIGIN}/9")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["tokens"][0]["tsa"], "tsa-1");
    let (_, metrics) = get(&client, format!("{url}/metrics")).await;
    assert!(metrics.contains("\ncairn_witness_ready 1\n"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_with_its_status_and_names_no_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "witness.example/errors");
    let log = TestLog::new(ORIGIN, 10);
    let data_dir = dir.path().join("state");
    let config = common::write_config(dir.path(), &data_dir, &key, &log);
    let witness = Running::start(&["serve", "--config", config.to_str().expect("UTF-8")]);
    let url = &witness.url;
    let client = reqwest::Client::new();
    assert_eq!(
        post(&client, format!("{url}/add-checkpoint"), log.request(0, 4))
            .await
            .0,
        200
    );

    let other = TestLog::new("example.com/other", 4);
    let answers = [
        ("GET", "/no/such/route", Vec::new(), 404, "not_found"),
        (
            "GET",
            "/add-checkpoint",
            Vec::new(),
            405,
            "method_not_allowed",
        ),
        ("POST", "/healthz", Vec::new(), 405, "method_not_allowed"),
        ("DELETE", "/metrics", Vec::new(), 405, "method_not_allowed"),
        (
            "POST",
            "/add-checkpoint",
            vec![b'a'; cairn_spec::witness::MAX_REQUEST_SIZE + 1],
            413,
            "too_large",
        ),
        (
            "POST",
            "/add-checkpoint",
            b"hello".to_vec(),
            400,
            "malformed",
        ),
        (
            "POST",
            "/add-checkpoint",
            other.request(0, 4),
            404,
            "unknown_origin",
        ),
        (
            "GET",
            "/checkpoint/example.com%2Fother",
            Vec::new(),
            404,
            "unknown_origin",
        ),
        ("GET", "/checkpoint/%FF%FE", Vec::new(), 400, "bad_request"),
        (
            "GET",
            &format!("/timestamps/{ORIGIN}/03"),
            Vec::new(),
            400,
            "bad_request",
        ),
        (
            "GET",
            &format!("/timestamps/{ORIGIN}/3"),
            Vec::new(),
            404,
            "not_cosigned",
        ),
    ];
    for (method, path, body, status, code) in answers {
        let response = client
            .request(method.parse().expect("method"), format!("{url}{path}"))
            .body(body)
            .send()
            .await
            .expect("answers");
        let got = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("body");
        assert_eq!(got, status, "{method} {path}: {text}");
        assert_eq!(content_type, "application/json", "{method} {path}");
        let answer = json(&text);
        assert_eq!(answer["error"], code, "{method} {path}: {text}");
        assert!(answer["detail"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty()));
        assert!(
            !text.contains(&*dir.path().to_string_lossy()) && !text.contains("sqlite"),
            "{method} {path} names a server path: {text}"
        );
    }
    // The protocol's own answer stays as C2SP tlog-witness has it.
    let response = client
        .post(format!("{url}/add-checkpoint"))
        .body(log.request(2, 8))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 409);
    assert_eq!(response.headers()["content-type"], "text/x.tlog.size");
    assert_eq!(response.text().await.expect("body"), "4\n");

    // The TSA: what is not a timestamp query at all is answered in JSON too.
    let tsa_dir = dir.path().join("tsa");
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .args(["tsa", "init", "--name", "Errors TSA", "--dir"])
        .arg(&tsa_dir)
        .output()
        .expect("tsa init runs");
    assert!(init.status.success());
    let tsa = Running::start(&["tsa", "serve", "--dir", tsa_dir.to_str().expect("UTF-8")]);
    for (method, body, status, code) in [
        ("GET", Vec::new(), 405, "method_not_allowed"),
        (
            "POST",
            vec![0x30; cairn_spec::timestamp::MAX_REQUEST_SIZE + 1],
            413,
            "too_large",
        ),
    ] {
        let response = client
            .request(method.parse().expect("method"), format!("{}/", tsa.url))
            .body(body)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), status, "TSA {method}");
        assert_eq!(json(&response.text().await.expect("body"))["error"], code);
    }
}
