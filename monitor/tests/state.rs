//! The monitor's state file across restarts: evidence of a split view survives a restart and a
//! lost file (it is written again, byte for byte, from the state), a second monitor on the same
//! state is refused, and a state directory of an older sled monitor is refused with its reason
//! by the library and by the real `cairn-monitor` binary, with nothing in it changed.

mod common;

use std::sync::Arc;

use cairn_monitor::alert::AlertKind;
use cairn_monitor::daemon::Monitor;
use cairn_monitor::follow::GossipOutcome;
use cairn_monitor::state::StateStore;
use common::{config, leaf, leaves, reopen, run_binary, start, Shared, View};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_view_evidence_survives_a_restart_and_a_lost_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(900, "honest"));
    let config = config(&url, dir.path());
    let monitor = Monitor::new(&config).expect("monitor");
    monitor.poll_once().await.expect("polls");
    // A second monitor on the same state is refused while the first runs.
    let refused = Monitor::new(&config).err().expect("refused");
    assert!(
        refused.to_string().contains("in use by another process"),
        "{refused}"
    );
    let mut other = leaves(600, "honest");
    other[10] = leaf(10, "shown to a producer");
    assert_eq!(
        monitor.gossip(&View::of(other).checkpoint, "upload").await,
        Some(GossipOutcome::SplitView)
    );
    let alert = monitor
        .alerter
        .raised()
        .into_iter()
        .find(|alert| alert.kind == AlertKind::SplitView)
        .expect("a split-view alert");
    let file = alert.evidence.expect("with evidence");
    let written = std::fs::read(&file).expect("the evidence file");
    drop(monitor);

    // The state holds the document; a file lost meanwhile is written again at the next poll.
    std::fs::remove_file(&file).expect("the file is lost");
    {
        let state = StateStore::open(&config.state_dir).expect("opens");
        let kept = state.evidence().expect("reads");
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].document, written);
        assert_eq!(kept[0].kind, "split-view");
    }
    let monitor = reopen(&config).await;
    assert!(
        monitor.verified_notes().await[0].contains("\n900\n"),
        "the verified state survived"
    );
    monitor.poll_once().await.expect("polls");
    assert_eq!(std::fs::read(&file).expect("written again"), written);
    assert_eq!(monitor.alerter.raised(), Vec::new(), "nothing new to raise");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_directory_of_an_older_sled_monitor_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(state_dir.join("evidence")).expect("makes");
    std::fs::write(state_dir.join("conf"), b"segment_size: 524288\n").expect("writes");
    std::fs::write(state_dir.join("db"), b"sled pages").expect("writes");
    std::fs::write(state_dir.join("evidence/fork.json"), b"{}").expect("writes");
    let before = listing(&state_dir);

    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(300, "honest"));
    let refused = Monitor::new(&config(&url, dir.path()))
        .err()
        .expect("refused");
    let reason = refused.to_string();
    assert!(
        reason.contains("sled") && reason.contains("evidence") && reason.contains("empty"),
        "{reason}"
    );

    // The real binary says the same and exits non-zero.
    let output = run_binary(common::audit_args(&url, &state_dir)).await;
    assert!(!output.status.success(), "audit ran on a sled state");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("holds the sled state"), "{stderr}");
    assert_eq!(listing(&state_dir), before, "nothing was changed");
}

/// The files under `dir` with their contents.
fn listing(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("lists") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .expect("inside")
                    .display()
                    .to_string();
                files.push((name, std::fs::read(&path).expect("reads")));
            }
        }
    }
    files.sort();
    files
}
