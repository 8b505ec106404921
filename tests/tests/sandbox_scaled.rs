//! `cairn-sandbox --scale`: the sandbox's log as two front-ends on the sandbox's own PostgreSQL
//! and S3 server (s3s-fs), with its witnesses, TSA and monitor; a leaf sent to one front-end
//! gets a receipt the policy accepts, is served by the other, and reaches the bucket.

use std::time::{Duration, Instant};

use cairn_tests::sandbox::{scaled::BUCKET, Binaries, Options, Sandbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaled_sandbox_runs_two_front_ends_of_one_log() {
    // PostgreSQL runs as the postgres user when the tests run as root: it must reach the
    // sandbox's directory.
    let dir = tempfile::Builder::new()
        .prefix("cairn-sandbox-scaled-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let mut options = Options::new(dir.path().join("sandbox"));
    options.checkpoint_interval_ms = 200;
    options.monitor_poll_secs = 1;
    options.scale = 2;
    let sandbox = Sandbox::start(&options, Binaries::locate().expect("binaries"))
        .unwrap_or_else(|error| panic!("the scaled sandbox starts: {error}"));
    let sandbox_dir = sandbox.dir().to_path_buf();
    let names: Vec<String> = sandbox.front_ends().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["log", "log-2"]);
    for component in ["postgres", "s3", "log", "log-2", "monitor"] {
        assert!(sandbox.is_running(component), "{component} runs");
    }
    let token = sandbox.producer_token().expect("token");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let second = format!("http://{}", sandbox.front_ends()[1].1);

    // A leaf sent to the second front-end: its receipt, cosigned by both witnesses.
    let response = http
        .post(format!("{second}/add?wait=checkpoint"))
        .bearer_auth(&token)
        .body("sent to the second front-end")
        .send()
        .await
        .expect("POST /add");
    let status = response.status();
    let receipt = response.text().await.expect("body");
    assert_eq!(status, 200, "{receipt}");
    let receipt_path = sandbox_dir.join("receipt.json");
    std::fs::write(&receipt_path, &receipt).expect("write the receipt");
    let verified = std::process::Command::new(
        Binaries::locate()
            .and_then(|binaries| binaries.path("cairn-monitor"))
            .expect("cairn-monitor"),
    )
    .arg("verify-receipt")
    .arg(&receipt_path)
    .arg("--policy")
    .arg(sandbox.policy_path())
    .output()
    .expect("runs cairn-monitor");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // The first front-end serves it, and the bucket's checkpoint covers it.
    let started = Instant::now();
    loop {
        let checkpoint = http
            .get(format!("{}/checkpoint", sandbox.log_url()))
            .send()
            .await
            .expect("GET /checkpoint")
            .text()
            .await
            .expect("body");
        let in_bucket =
            std::fs::read_to_string(sandbox_dir.join("s3").join(BUCKET).join("checkpoint"))
                .unwrap_or_default();
        let size = |note: &str| note.lines().nth(1).and_then(|l| l.parse::<u64>().ok());
        if size(&checkpoint).is_some_and(|s| s >= 1) && size(&in_bucket).is_some_and(|s| s >= 1) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the leaf did not reach the first front-end and the bucket: {checkpoint} / {in_bucket}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
