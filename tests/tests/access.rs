//! End-to-end, against the real `cairn-log`: who may write and how fast, changed while it runs.
//!
//! - a `bearer` scheme in lower case is accepted (RFC 7235);
//! - a principal over its rate limit is answered 429 in JSON with `Retry-After`;
//! - a token removed from `log.toml` is refused once the file is seen to change, and one
//!   removed and followed by a SIGHUP at once (the polling of the file is made too slow to
//!   matter there); a file that does not load on SIGHUP leaves the principals in service and
//!   says so in the log and in `/metrics`;
//! - an mTLS producer, known by its certificate's fingerprint, adds a leaf without a token,
//!   while a certificate of the same CA that no principal has is refused 401.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{binary, run, DevLog};

/// A generous bound for a reload to be seen (the file is checked every 2 s by default).
const BOUND: Duration = Duration::from_secs(40);

/// A new principal's token and its `[[principals]]` lines.
fn principal(name: &str, role: &str) -> (String, String) {
    let lines =
        run(Command::new(binary("cairn-log")).args(["token", "--name", name, "--role", role]));
    let token = lines
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .expect("a token line")
        .to_owned();
    let entry = lines
        .lines()
        .skip_while(|line| !line.starts_with("[[principals]]"))
        .map(|line| format!("{line}\n"))
        .collect();
    (token, entry)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client")
}

/// POST /add with `authorization` as the whole header: the status, Retry-After and body.
async fn add(
    client: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut request = client.post(format!("{url}/add")).body("a leaf");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let answer = request.send().await.expect("POST /add");
    let status = answer.status().as_u16();
    let retry_after = answer
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().expect("ASCII").to_owned());
    (status, retry_after, answer.text().await.expect("a body"))
}

/// Replaces `old` with `new` in `dir/log.toml`.
fn edit_config(dir: &Path, old: &str, new: &str) {
    let path = dir.join("log.toml");
    let text = std::fs::read_to_string(&path).expect("reads log.toml");
    assert!(text.contains(old), "log.toml lacks {old:?}");
    std::fs::write(&path, text.replace(old, new)).expect("writes log.toml");
}

/// Waits until the token's /add answer is `status`.
async fn wait_for_status(client: &reqwest::Client, url: &str, token: &str, status: u16) {
    let started = Instant::now();
    loop {
        let (answer, _, body) = add(client, url, Some(&format!("Bearer {token}"))).await;
        if answer == status {
            return;
        }
        assert!(
            started.elapsed() < BOUND,
            "still {answer} ({body}) after {BOUND:?}, expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics(client: &reqwest::Client, url: &str) -> String {
    client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a body")
}

fn hangup(log: &DevLog) {
    run(Command::new("kill").args(["-HUP", &log.pid().to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowercase_bearer_rate_limits_and_a_revoked_token_refused_after_a_file_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (limited, limited_entry) = principal("limited", "producer");
    let (revoked, revoked_entry) = principal("revoked", "producer");
    let log = DevLog::start(
        dir,
        &format!(
            "{limited_entry}\n{revoked_entry}\n[rate_limits.principals.limited]\n\
             requests_per_second = 1\nburst = 2\n"
        ),
        "",
    );
    let url = format!("http://{}", log.addr);
    let client = client();

    for scheme in ["Bearer", "bearer", "BEARER"] {
        let (status, _, body) = add(&client, &url, Some(&format!("{scheme} {}", log.token))).await;
        assert_eq!(status, 200, "{scheme}: {body}");
    }

    // A burst of 2 at 1 a second: ten requests in a row meet the limit.
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(add(&client, &url, Some(&format!("Bearer {limited}"))).await);
    }
    assert_eq!(answers[0].0, 200, "{:?}", answers[0]);
    let (_, retry_after, body) = answers
        .iter()
        .find(|(status, _, _)| *status == 429)
        .unwrap_or_else(|| panic!("no 429 in {answers:?}"));
    let seconds: u64 = retry_after
        .as_deref()
        .expect("a Retry-After header")
        .parse()
        .expect("whole seconds");
    assert!((1..=2).contains(&seconds), "Retry-After: {seconds}");
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON error");
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("limited")),
        "{body}"
    );
    // Other principals are not limited.
    let (status, _, body) = add(&client, &url, Some(&format!("Bearer {}", log.token))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        metrics(&client, &url)
            .await
            .contains("cairn_log_rate_limited_total{principal=\"limited\"}"),
        "no rate-limit metric"
    );

    // Revoked by editing the file: refused once the change is seen, without a restart.
    let (status, _, body) = add(&client, &url, Some(&format!("Bearer {revoked}"))).await;
    assert_eq!(status, 200, "{body}");
    edit_config(dir, &revoked_entry, "");
    wait_for_status(&client, &url, &revoked, 401).await;
    let (status, _, body) = add(&client, &url, Some(&format!("Bearer {}", log.token))).await;
    assert_eq!(status, 200, "the remaining producer: {body}");
    assert!(
        metrics(&client, &url)
            .await
            .contains("cairn_log_config_reloads_total{result=\"ok\"} 1"),
        "the reload is not counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_revokes_at_once_and_a_broken_file_keeps_the_principals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (revoked, revoked_entry) = principal("revoked", "reader");
    // The file is checked once an hour here: only SIGHUP reloads within the test.
    let log = DevLog::start(
        dir,
        &revoked_entry,
        "CAIRN_LOG_CONFIG_RELOAD_INTERVAL_MS=3600000",
    );
    let url = format!("http://{}", log.addr);
    let client = client();
    let query = |token: String| {
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .get(format!("{url}/v1/events"))
                .bearer_auth(token)
                .send()
                .await
                .expect("GET /v1/events")
                .status()
                .as_u16()
        }
    };
    assert_eq!(query(revoked.clone()).await, 200);

    // A file that does not parse: the reload fails, says why, and the principals stay.
    edit_config(dir, "[[principals]]", "[[principals]");
    hangup(&log);
    let started = Instant::now();
    while !metrics(&client, &url)
        .await
        .contains("cairn_log_config_reload_failing 1")
    {
        assert!(started.elapsed() < BOUND, "the failed reload is not shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(query(revoked.clone()).await, 200, "the old principals stay");
    let errors = std::fs::read_to_string(dir.join("log.err")).expect("log.err");
    assert!(
        errors.contains("does not load") && errors.contains("log.toml"),
        "{errors}"
    );
    assert!(!errors.contains('\x1b'), "colours in a file: {errors}");

    // Fixed without the principal, then SIGHUP: refused from the reload on.
    edit_config(dir, "[[principals]", "[[principals]]");
    edit_config(dir, &revoked_entry, "");
    hangup(&log);
    let started = Instant::now();
    while query(revoked.clone()).await != 401 {
        assert!(
            started.elapsed() < BOUND,
            "the revoked token is still served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = metrics(&client, &url).await;
    assert!(text.contains("cairn_log_config_reload_failing 0"), "{text}");
    // At least the SIGHUP's reload failed (a slow machine may see one more attempt at the broken
    // file: the count is of attempts, not of SIGHUPs).
    let failed = text
        .lines()
        .find_map(|line| line.strip_prefix("cairn_log_config_reloads_total{result=\"failed\"} "))
        .and_then(|count| count.parse::<u64>().ok());
    assert!(failed.is_some_and(|count| count >= 1), "{text}");
    let (status, _, body) = add(&client, &url, Some(&format!("Bearer {}", log.token))).await;
    assert_eq!(status, 200, "the producer stays: {body}");
}

/// A CA, a server certificate for 127.0.0.1 and two client certificates it issued.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        run(Command::new("openssl").args(args).current_dir(dir));
    };
    let new_key = |name: &str| {
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ]);
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
        "/CN=cairn access CA",
    ]);
    for (name, extensions) in [
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"),
        ("payments", "extendedKeyUsage=clientAuth\n"),
        ("stranger", "extendedKeyUsage=clientAuth\n"),
    ] {
        new_key(name);
        std::fs::write(dir.join(format!("{name}.ext")), extensions).expect("writes");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

/// A client trusting the CA, presenting `name`'s certificate if given.
fn tls_client(dir: &Path, name: Option<&str>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).expect("ca.pem"))
        .expect("a CA certificate");
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(30));
    if let Some(name) = name {
        let mut pem = std::fs::read(dir.join(format!("{name}.pem"))).expect("certificate");
        pem.extend(std::fs::read(dir.join(format!("{name}.key"))).expect("key"));
        builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("an identity"));
    }
    builder.build().expect("a client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_producer_adds_without_a_token_and_an_unmapped_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    make_certificates(dir);
    // The fingerprint as operators get it, colons and all.
    let fingerprint = run(Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(dir.join("payments.pem")));
    let path = |name: &str| dir.join(name).display().to_string();
    let log = DevLog::start(
        dir,
        &format!(
            "[[principals]]\nname = \"payments\"\nrole = \"producer\"\n\
             client_cert_sha256 = {fingerprint:?}\n\n\
             [http]\ntls_cert_file = {cert:?}\ntls_key_file = {key:?}\n\
             tls_client_ca_file = {ca:?}\ntls_client_cert_optional = true\n",
            fingerprint = fingerprint.trim(),
            cert = path("server.pem"),
            key = path("server.key"),
            ca = path("ca.pem"),
        ),
        "",
    );
    let url = format!("https://{}", log.addr);

    let producer = tls_client(dir, Some("payments"));
    let event = serde_json::json!({
        "timestamp": "2026-11-25T10:00:00Z",
        "actor": {"id": "payments", "type": "service"},
        "action": "payment.capture",
        "resource": {"type": "payment", "id": "p-1"},
        "outcome": "success",
        "payload": {"amount": 5},
    });
    let answer = producer
        .post(format!("{url}/add"))
        .body("a leaf from an mTLS producer")
        .send()
        .await
        .expect("POST /add over mTLS");
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    let submitted = producer
        .post(format!("{url}/v1/events"))
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .expect("POST /v1/events over mTLS");
    let status = submitted.status();
    let text = submitted.text().await.expect("a body");
    assert_eq!(status, 200, "{text}");

    // A certificate of the same CA that no principal has: the connection is let in (it
    // verifies), the request is not.
    let stranger = tls_client(dir, Some("stranger"));
    let answer = stranger
        .post(format!("{url}/add"))
        .body("a leaf")
        .send()
        .await
        .expect("POST /add");
    assert_eq!(answer.status(), 401);
    let body: serde_json::Value =
        serde_json::from_str(&answer.text().await.expect("a body")).expect("a JSON error");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("client certificate")),
        "{body}"
    );
    // Without a certificate (allowed on this server), a bearer token still works, and nothing
    // else does.
    let anonymous = tls_client(dir, None);
    let answer = anonymous
        .post(format!("{url}/add"))
        .body("a leaf")
        .send()
        .await
        .expect("POST /add");
    assert_eq!(answer.status(), 401);
    let answer = anonymous
        .post(format!("{url}/add"))
        .bearer_auth(&log.token)
        .body("a leaf")
        .send()
        .await
        .expect("POST /add");
    assert_eq!(answer.status(), 200);
}
