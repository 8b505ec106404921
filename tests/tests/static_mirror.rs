//! The published tree as plain files: a copy of the log's `objects_dir`, served by
//! Python's `http.server` (a static server that knows nothing of Cairn), passes `cairn-monitor
//! audit` against the log's key, and serves byte for byte what `cairn-log` serves.
//!
//! Needs the workspace's binaries built beside the test, and `python3` on the `PATH`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_tests::sandbox::{Binaries, Options, Sandbox};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// GETs `url` as the sandbox's auditor (entry bundles need a reader).
async fn get(client: &reqwest::Client, url: &str, token: &str) -> (u16, Vec<u8>) {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_copy_of_the_objects_passes_the_monitors_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::new(dir.path().join("sandbox"));
    options.checkpoint_interval_ms = 100;
    // The sandbox's log inherits this: it publishes the tree as files there.
    let objects = dir.path().join("objects");
    std::env::set_var("CAIRN_LOG_OBJECTS_DIR", &objects);
    let binaries = Binaries::locate().expect("binaries");
    let monitor = binaries.path("cairn-monitor").expect("cairn-monitor");
    let mut sandbox = Sandbox::start(&options, binaries).expect("the sandbox starts");
    let token = sandbox.producer_token().expect("token");
    let auditor = sandbox.auditor_token().expect("auditor token");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let log = sandbox.log_url();

    // Two full tiles, a partial one, and a second checkpoint that grows the partial.
    let leaves = 600u64;
    let body: Vec<u8> = (0..leaves)
        .flat_map(|number| {
            let leaf = format!("mirrored leaf {number}").into_bytes();
            let mut framed = (leaf.len() as u32).to_be_bytes().to_vec();
            framed.extend(leaf);
            framed
        })
        .collect();
    let response = client
        .post(format!("{log}/add-batch"))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .expect("add-batch");
    assert!(response.status().is_success(), "{}", response.status());
    let deadline = Instant::now() + Duration::from_secs(60);
    let checkpoint = loop {
        let written = std::fs::read(objects.join("checkpoint")).unwrap_or_default();
        let size = String::from_utf8_lossy(&written)
            .lines()
            .nth(1)
            .and_then(|line| line.parse::<u64>().ok());
        if size == Some(leaves) {
            break written;
        }
        assert!(
            Instant::now() < deadline,
            "the objects never covered {leaves} leaves"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (_, served) = get(&client, &format!("{log}/checkpoint"), &auditor).await;
    assert_eq!(
        served, checkpoint,
        "the checkpoint object is the served checkpoint"
    );

    let mirror = dir.path().join("mirror");
    copy_dir(&objects, &mirror);
    for path in [
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/88",
        "tile/1/000.p/2",
        "tile/entries/000",
        "tile/entries/002.p/88",
    ] {
        let (status, served) = get(&client, &format!("{log}/{path}"), &auditor).await;
        assert_eq!(status, 200, "{path}");
        let copied = std::fs::read(mirror.join(path)).unwrap_or_else(|_| panic!("{path}"));
        assert_eq!(copied, served, "{path} differs from what cairn-log serves");
    }
    sandbox.stop();

    let port = free_port();
    let server = Server(
        Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(&mirror)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{url}/checkpoint"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the static server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let audit = Command::new(monitor)
        .args([
            "audit",
            "--log",
            &url,
            "--log-key",
            &sandbox.layout().log_vkey,
        ])
        .arg("--state")
        .arg(dir.path().join("audit"))
        .output()
        .expect("cairn-monitor audit");
    let stderr = String::from_utf8_lossy(&audit.stderr);
    assert_eq!(audit.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("600 of 600 leaves"), "{stderr}");
    drop(server);
}
