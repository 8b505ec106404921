//! A full disk under the real `cairn-witness`, its state on a small tmpfs of its own:
//! add-checkpoint is refused with 503 `storage_unavailable` and Retry-After (naming no server
//! path) while `/healthz` stays live and `/readyz` says why the witness is not ready; a restart
//! (after kill -9) while the disk is still full starts and answers with the state it had; once
//! space is freed the witness is ready again by itself and cosigns, and its state opens cleanly
//! with the last size it acknowledged, never more, never less.
//!
//! Mounting needs root (CI runs as root). Elsewhere the test says so and does nothing; under
//! `CI=true` a refused mount fails it.

mod common;

use common::{json, keygen, Running, TestLog};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ORIGIN: &str = "example.com/full-disk-log";

/// A tmpfs of a given size, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Some(SmallDisk { dir }),
            _ => None,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system of `path` to the last byte.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler");
    for chunk in [64 << 10, 4 << 10, 1] {
        let bytes = vec![0x5a_u8; chunk];
        while file.write_all(&bytes).is_ok() {}
    }
}

struct Answer {
    status: u16,
    retry_after: bool,
    body: String,
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the witness answers");
    Answer {
        status: response.status().as_u16(),
        retry_after: response.headers().contains_key("retry-after"),
        body: response.text().await.expect("a body"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_cosigning_then_heals_by_itself_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount(4 << 20) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run this test as root, able to mount a tmpfs"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let work = tempfile::tempdir().expect("work dir");
    let key = keygen(work.path(), "witness.example/full-disk");
    let log = TestLog::new(ORIGIN, 40);
    let data_dir = disk.path().join("state");
    let config = common::write_config(work.path(), &data_dir, &key, &log);
    let args = ["serve", "--config", config.to_str().expect("UTF-8")];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let witness = Running::start(&args);
    let url = witness.url.clone();
    let add = |old: u64, size: u64| {
        client
            .post(format!("{url}/add-checkpoint"))
            .body(log.request(old, size))
    };
    assert_eq!(send(add(0, 5)).await.status, 200);

    // The disk fills: nothing is cosigned, the answer says to retry and names no path.
    let filler = disk.path().join("filler");
    fill(&filler);
    let refused = send(add(5, 9)).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.retry_after, "no Retry-After");
    let answer = json(&refused.body);
    assert_eq!(answer["error"], "storage_unavailable", "{}", refused.body);
    assert!(
        !refused.body.contains(&*disk.path().to_string_lossy()) && !refused.body.contains("sqlite"),
        "the answer names a server path: {}",
        refused.body
    );
    assert_eq!(send(client.get(format!("{url}/healthz"))).await.status, 200);
    let readiness = send(client.get(format!("{url}/readyz"))).await;
    assert_eq!(readiness.status, 503, "{}", readiness.body);
    assert!(
        json(&readiness.body)["problems"]
            .to_string()
            .contains("storage"),
        "{}",
        readiness.body
    );
    let metrics = send(client.get(format!("{url}/metrics"))).await.body;
    assert!(metrics.contains("\ncairn_witness_ready 0\n"), "{metrics}");

    // kill -9 and a restart while the disk is still full: it starts, and knows size 5.
    witness.kill();
    let witness = Running::start(&args);
    let url = witness.url.clone();
    let add = |old: u64, size: u64| {
        client
            .post(format!("{url}/add-checkpoint"))
            .body(log.request(old, size))
    };
    let known = send(add(9, 12)).await;
    assert_eq!((known.status, known.body.as_str()), (409, "5\n"));
    assert_eq!(send(add(5, 9)).await.status, 503);

    // Space is freed: the witness probes its storage, is ready again and cosigns, unprompted.
    std::fs::remove_file(&filler).expect("frees the disk");
    let (http, base) = (&client, url.as_str());
    common::wait_until(
        "ready again once space was freed",
        Duration::from_millis(100),
        move || async move {
            let readiness = send(http.get(format!("{base}/readyz"))).await;
            if readiness.status == 200 {
                Ok(())
            } else {
                Err(readiness.body)
            }
        },
    )
    .await;
    assert_eq!(send(add(5, 9)).await.status, 200);
    assert_eq!(send(add(9, 12)).await.status, 200);
    let metrics = send(client.get(format!("{url}/metrics"))).await.body;
    assert!(metrics.contains("\ncairn_witness_ready 1\n"), "{metrics}");
    witness.kill();

    // The state opens cleanly, whole, with the last size acknowledged.
    let check = rusqlite::Connection::open(data_dir.join("witness.sqlite")).expect("opens");
    let integrity: String = check
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("checks");
    assert_eq!(integrity, "ok");
    drop(check);
    let store = cairn_witness::store::Store::open(&data_dir).expect("the store opens");
    let latest = store.latest(ORIGIN).expect("reads").expect("a state");
    assert_eq!(latest.state.size, 12);
    assert!(store.checkpoint_body(ORIGIN, 9).expect("reads").is_some());
}
