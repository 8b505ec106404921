//! A full disk, with the real `cairn-log` binary on a small tmpfs of its own: writes are refused
//! with 503 `storage_unavailable` (naming no server path) while `/healthz` stays live and
//! `/readyz` says why the log is not ready; a restart while the disk is still full starts and
//! serves what was published; once space is freed, writes resume and what was acknowledged is
//! integrated and published, without a restart; nothing acknowledged is lost, and the store
//! opens cleanly afterwards with every acknowledged leaf at its index.
//!
//! Mounting needs root (CI runs as root). Elsewhere the test says so and does nothing; under
//! `CI=true` a refused mount fails it.

#[path = "support/faults.rs"]
mod faults;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faults::{add, assert_storage_refusal, resume_and_publish, status_of, write_config, Added};
use serde_json::Value;
use support::{free_port, start, Log};

const ORIGIN: &str = "full-disk.cairn.example/log";

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

    /// Free bytes.
    fn available(&self) -> u64 {
        let stats = rustix::fs::statvfs(self.path()).expect("statvfs");
        stats.f_bavail * stats.f_frsize
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Kills the log at once, as a crash would.
fn kill(log: Log) {
    drop(log);
}

/// Submits leaves until the log refuses one for its storage; returns the refusal.
async fn fill(
    http: &reqwest::Client,
    base: &str,
    next: &mut u64,
    acknowledged: &mut BTreeMap<u64, u64>,
    disk: &Path,
) -> Value {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the disk never filled"
        );
        let number = *next;
        *next += 1;
        match add(http, base, number).await {
            Added::At(index) => {
                acknowledged.insert(index, number);
            }
            Added::Refused(status, headers, body) => {
                assert_storage_refusal(status, &headers, &body, disk);
                return body;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_then_heals_by_itself_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount(40 << 20) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run this test as root, able to mount a tmpfs"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let work = tempfile::tempdir().expect("work dir");
    let data_dir = disk.path().join("data");
    let port = free_port();
    let config = write_config(work.path(), &data_dir, port, ORIGIN);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let log = start(&config, port, &http).await;
    let base = log.base.clone();

    // Leave the log a few MiB of its disk, then write until it is full.
    let filler = disk.path().join("filler");
    let keep = 6 << 20;
    let filler_bytes = disk.available().saturating_sub(keep);
    std::fs::write(&filler, vec![0x5au8; filler_bytes as usize]).expect("filler");
    let mut acknowledged = BTreeMap::new();
    let mut next = 0;
    fill(&http, &base, &mut next, &mut acknowledged, disk.path()).await;
    assert!(
        !acknowledged.is_empty(),
        "nothing was written before the disk filled"
    );

    // Live, not ready, and still refusing (at once) while the disk is full.
    assert_eq!(status_of(&http, format!("{base}/healthz")).await.0, 200);
    let (ready, why) = status_of(&http, format!("{base}/readyz")).await;
    assert_eq!(ready, 503, "{why}");
    assert!(why["problems"].to_string().contains("storage"), "{why}");
    assert!(matches!(add(&http, &base, next).await, Added::Refused(..)));
    next += 1;

    // A restart while the disk is still full: it starts, serves its checkpoint, and refuses
    // writes again once it finds the disk full.
    kill(log);
    let log = start(&config, port, &http).await;
    assert_eq!(status_of(&http, format!("{base}/healthz")).await.0, 200);
    let filled_again = fill(&http, &base, &mut next, &mut acknowledged, disk.path()).await;
    assert_eq!(filled_again["error"], "storage_unavailable");

    // Space is freed: writes resume by themselves, and everything acknowledged is published.
    std::fs::remove_file(&filler).expect("free the disk");
    let last = resume_and_publish(&http, &base, &mut next, &mut acknowledged).await;
    kill(log);

    faults::check_store(&data_dir, &acknowledged, last);
}
