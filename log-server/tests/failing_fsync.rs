//! EIO from fsync and fdatasync, with the real `cairn-log` binary: while every sync fails, writes
//! are refused with 503 `storage_unavailable` (naming no server path), `/healthz` stays live and
//! `/readyz` says why the log is not ready; once syncs work again, writes resume and what was
//! acknowledged is integrated and published, without a restart; the store then opens cleanly
//! with every acknowledged leaf at its index.
//!
//! There is no faulty block device here (no dm-flakey), so the fault is injected at the C
//! library's boundary: the test compiles a small shared library with the system's C compiler
//! (the one Rust links with) and starts the log with it in `LD_PRELOAD`. It replaces `fsync` and
//! `fdatasync`: while a trigger file exists they fail with EIO without syncing, as a disk that
//! lost the written pages would; otherwise they call the C library's own. Every durable write
//! of the log (segments, hashes, the dedup index, SQLite's journal and database) goes through
//! them.

#[path = "support/faults.rs"]
mod faults;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use faults::{add, assert_storage_refusal, resume_and_publish, status_of, write_config, Added};
use support::{free_port, start_with_env};

const ORIGIN: &str = "failing-fsync.cairn.example/log";
const TRIGGER: &str = "CAIRN_TEST_FSYNC_TRIGGER";

const FAILING_SYNC_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
    const char *trigger = getenv("CAIRN_TEST_FSYNC_TRIGGER");
    return trigger != NULL && access(trigger, F_OK) == 0;
}

int fsync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    return real(fd);
}
"#;

/// Compiles the failing-sync library into `dir`.
fn failing_sync_library(dir: &Path) -> PathBuf {
    let source = dir.join("failing_sync.c");
    let library = dir.join("libfailing_sync.so");
    std::fs::write(&source, FAILING_SYNC_C).expect("write the C source");
    let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("run the C compiler (cc), which Rust links with");
    assert!(
        output.status.success(),
        "compiling the failing-sync library failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    library
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_fsync_refuses_writes_then_heals_by_itself_and_loses_nothing() {
    let work = tempfile::tempdir().expect("work dir");
    let library = failing_sync_library(work.path());
    let trigger = work.path().join("fail-syncs");
    let data_dir = work.path().join("data");
    let port = free_port();
    let config = write_config(work.path(), &data_dir, port, ORIGIN);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let log = start_with_env(
        &config,
        port,
        &http,
        &[
            ("LD_PRELOAD", library.as_os_str()),
            (TRIGGER, trigger.as_os_str()),
        ],
    )
    .await;
    let base = log.base.clone();

    let mut acknowledged = BTreeMap::new();
    let mut next = 0;
    for _ in 0..200 {
        match add(&http, &base, next).await {
            Added::At(index) => {
                acknowledged.insert(index, next);
            }
            Added::Refused(status, _, body) => panic!("refused before the fault: {status} {body}"),
        }
        next += 1;
    }

    // Every sync fails from now on: the next write is refused, and so is every write after it,
    // while the log stays live and says it is not ready.
    std::fs::write(&trigger, b"").expect("create the trigger");
    let refusal = match add(&http, &base, next).await {
        Added::At(index) => panic!(
            "leaf {next} was acknowledged at {index} while every sync fails: it is not durable"
        ),
        Added::Refused(status, headers, body) => (status, headers, body),
    };
    next += 1;
    let (status, headers, body) = refusal;
    assert_storage_refusal(status, &headers, &body, work.path());
    for _ in 0..5 {
        match add(&http, &base, next).await {
            Added::At(index) => panic!("acknowledged at {index} while every sync fails"),
            Added::Refused(status, headers, body) => {
                assert_storage_refusal(status, &headers, &body, work.path())
            }
        }
        next += 1;
    }
    assert_eq!(status_of(&http, format!("{base}/healthz")).await.0, 200);
    let (ready, why) = status_of(&http, format!("{base}/readyz")).await;
    assert_eq!(ready, 503, "{why}");
    assert!(why["problems"].to_string().contains("storage"), "{why}");

    // Syncs work again: writes resume by themselves, and everything acknowledged is published.
    std::fs::remove_file(&trigger).expect("remove the trigger");
    let last = resume_and_publish(&http, &base, &mut next, &mut acknowledged).await;
    drop(log);

    faults::check_store(&data_dir, &acknowledged, last);
}
