//! The monitor reading a log from a local directory in the tlog-tiles layout (`file://`), as a
//! static mirror holds it: an honest log verifies and grows; a flipped byte in a tile or bundle on
//! disk raises the same alert as the same bytes served over HTTP; truncated files are corrupt; a
//! missing tile stops the audit without an alert, and the next one resumes; and an audit killed
//! with SIGKILL resumes from its last committed batch, its hashes intact.

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_monitor::alert::{Alert, AlertKind};
use cairn_monitor::daemon::{Config, Monitor};
use cairn_monitor::follow::GossipOutcome;
use cairn_spec::merkle::root_from_leaves;
use common::{
    assert_alert_with_evidence, audit_args, config, file_url, leaves, reopen, run_binary, sign,
    start, write_log_dir, Shared, View,
};

/// A monitor configuration for the log at `url`, without witnesses.
fn local_config(url: &str, state: &Path) -> Config {
    let mut config = config(url, state);
    config.logs[0].witnesses.clear();
    config
}

fn verified_size(monitor: &Monitor) -> Option<u64> {
    let render = monitor.alerter.metrics.render();
    render
        .lines()
        .find(|line| line.starts_with("cairn_monitor_verified_size"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_local_directory_verifies_and_grows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("log");
    let all = leaves(3000, "honest");
    write_log_dir(&all[..1000], &log_dir);
    let config = local_config(&file_url(&log_dir), &dir.path().join("monitor"));
    let monitor = Monitor::new(&config).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(monitor.alerter.raised(), Vec::new());
    assert_eq!(verified_size(&monitor), Some(1000));

    // The mirror grows; the old partial tiles stay beside the new ones, as they may on disk.
    write_log_dir(&all, &log_dir);
    monitor.poll_once().await.expect("polls");
    assert_eq!(monitor.alerter.raised(), Vec::new());
    assert_eq!(verified_size(&monitor), Some(3000));
    // Gossip is checked against hashes verified in both polls.
    for size in [1, 999, 1000, 1001, 2048, 3000] {
        let note = View::of(all[..size].to_vec()).checkpoint;
        assert_eq!(
            monitor.gossip(&note, "upload").await,
            Some(GossipOutcome::Consistent),
            "size {size}"
        );
    }
    drop(monitor);

    // The CLI audits a directory too.
    let output = run_binary(audit_args(&file_url(&log_dir), &dir.path().join("audit"))).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("3000 of 3000 leaves"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("\n3000\n"));
}

/// The alerts a fresh monitor raises auditing the log at `url`.
async fn alerts_of(url: &str, state: &Path) -> Vec<Alert> {
    let monitor = Monitor::new(&local_config(url, state)).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(verified_size(&monitor), None, "a tampered log was verified");
    monitor.alerter.raised()
}

fn flip(path: &Path, position: usize) {
    let mut bytes = std::fs::read(path).expect("reads");
    bytes[position] ^= 1;
    std::fs::write(path, bytes).expect("writes");
}

/// The kind and detail of each alert (evidence paths differ between monitors).
fn described(alerts: &[Alert]) -> Vec<(AlertKind, String)> {
    alerts
        .iter()
        .map(|alert| (alert.kind, alert.detail.clone()))
        .collect()
}

/// Audits a tampered log served over HTTP (`view` by the test log at `url`) and the same bytes
/// on disk: one corrupt-data alert from each, the same, naming `problem`.
async fn assert_same_corrupt_data(
    (log, url, view): (&Shared, &str, View),
    disk: &Path,
    states: &Path,
    problem: &str,
) {
    log.lock().expect("lock").client = view;
    let over_http = alerts_of(url, &states.join("http")).await;
    let from_disk = alerts_of(&file_url(disk), &states.join("disk")).await;
    assert_eq!(described(&over_http), described(&from_disk));
    assert_eq!(from_disk.len(), 1);
    assert_eq!(from_disk[0].kind, AlertKind::CorruptData);
    assert!(from_disk[0].detail.contains(problem), "{from_disk:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_on_disk_raise_the_same_alerts_as_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let honest = leaves(1000, "honest");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;

    // A byte of leaf 261 (entry 5 of bundle 1: 5 entries of 2 + 101 bytes, its length prefix,
    // then 10 bytes in) flipped in the bundle.
    let bundle_dir = dir.path().join("bundle-log");
    write_log_dir(&honest, &bundle_dir);
    flip(&bundle_dir.join("tile/entries/001"), 5 * 103 + 2 + 10);
    let mut view = View::of(honest.clone());
    view.leaves[261][10] ^= 1;
    assert_same_corrupt_data(
        (&log, &url, view),
        &bundle_dir,
        &dir.path().join("bundle-states"),
        "tile/entries/001: entry 5 hashes to",
    )
    .await;

    // A byte of leaf 257's hash flipped in level-0 tile 1.
    let tile_dir = dir.path().join("tile-log");
    write_log_dir(&honest, &tile_dir);
    flip(&tile_dir.join("tile/0/001"), 40);
    let mut view = View::of(honest.clone());
    for (tile, data) in view.tiles.iter_mut() {
        if tile.level() == 0 && tile.index() == 1 && tile.width() == 256 {
            data[40] ^= 1;
        }
    }
    assert_same_corrupt_data(
        (&log, &url, view),
        &tile_dir,
        &dir.path().join("tile-states"),
        "tile/entries/001: entry 1 hashes to",
    )
    .await;

    // Checking tiles only, the same flipped tile gives another root: a root mismatch, with
    // evidence that stands on its own.
    let mut tiles_only = local_config(&file_url(&tile_dir), &dir.path().join("s5"));
    tiles_only.logs[0].check_entries = false;
    let monitor = Monitor::new(&tiles_only).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(verified_size(&monitor), None);
    assert_alert_with_evidence(&monitor, AlertKind::RootMismatch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_files_on_disk_are_corrupt_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let honest = leaves(700, "honest");
    for (name, path) in [
        ("tile", "tile/0/001"),
        ("bundle", "tile/entries/001"),
        ("partial tile", "tile/0/002.p/188"),
        ("partial bundle", "tile/entries/002.p/188"),
    ] {
        let log_dir = dir.path().join(format!("{name}-log"));
        write_log_dir(&honest, &log_dir);
        let file = log_dir.join(path);
        let length = std::fs::metadata(&file).expect("exists").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .and_then(|file| file.set_len(length - 1))
            .expect("truncates");
        let alerts = alerts_of(&file_url(&log_dir), &dir.path().join(name)).await;
        let kinds: Vec<AlertKind> = alerts.iter().map(|alert| alert.kind).collect();
        assert_eq!(kinds, vec![AlertKind::CorruptData], "{name}: {alerts:?}");
        assert!(alerts[0].detail.contains(path), "{name}: {alerts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tile_stops_the_audit_and_the_next_one_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("log");
    let honest = leaves(200_000, "honest");
    write_log_dir(&honest, &log_dir);
    let missing = log_dir.join("tile/0/300");
    let kept = dir.path().join("kept");
    std::fs::rename(&missing, &kept).expect("moves the tile away");
    let args = audit_args(&file_url(&log_dir), &dir.path().join("audit"));
    let interrupted = run_binary(args.clone()).await;
    let stderr = String::from_utf8_lossy(&interrupted.stderr);
    assert_eq!(interrupted.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tile/0/300"), "{stderr}");
    // Everything before the missing tile was verified and committed.
    assert!(stderr.contains("76800 of 200000"), "{stderr}");

    std::fs::rename(&kept, &missing).expect("puts it back");
    let resumed = run_binary(args).await;
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert!(stderr.contains("from=76800"), "{stderr}");
    assert!(stderr.contains("200000 of 200000 leaves"), "{stderr}");
}

/// Whether the state in `state` holds a committed progress record, read through a read-only
/// connection of its own (the audit's lock on the directory is advisory; SQLite's own lock on
/// the file is waited for). False while the file or its tables do not exist yet.
fn progress_committed(state: &Path) -> bool {
    let path = state.join(cairn_monitor::state::STATE_FILE);
    let Ok(connection) = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return false;
    };
    if connection.busy_timeout(Duration::from_secs(10)).is_err() {
        return false;
    }
    connection
        .query_row("SELECT count(*) FROM progress", [], |row| {
            row.get::<_, i64>(0)
        })
        .is_ok_and(|rows| rows > 0)
}

/// The last "N of M leaves" on an audit's progress line.
fn leaves_done(progress: &str) -> Option<u64> {
    let line = progress.rsplit('\r').find(|line| line.contains(" of "))?;
    let (before, _) = line.split_once(" of ")?;
    before.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_killed_mid_way_resumes_from_its_last_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("log");
    let size = 1usize << 19;
    let honest = leaves(size, "honest");
    write_log_dir(&honest, &log_dir);
    // Where `config` keeps a monitor's state under `dir`, so that a monitor can open it after.
    let state = dir.path().join("state");
    let args = audit_args(&file_url(&log_dir), &state);
    let state_of_first = state.clone();
    // Kill it once its state holds a committed progress record (seen through a connection of
    // the test's own), so that the second run has something to resume from however slowly the
    // first one ran; its stderr is read on meanwhile so that the pipe never fills.
    let progress = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn-monitor"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        let mut stderr = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            stderr.read_to_end(&mut seen).expect("reads");
            String::from_utf8_lossy(&seen).into_owned()
        });
        let deadline = Instant::now() + Duration::from_secs(300);
        while !progress_committed(&state_of_first) {
            let ended = child.try_wait().expect("polls the audit");
            assert!(ended.is_none(), "the audit ended before it was killed");
            assert!(Instant::now() < deadline, "no progress committed in 300 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("waits");
        let seen = reader.join().expect("joins the reader");
        assert!(!status.success(), "{seen}");
        leaves_done(&seen).expect("progress")
    })
    .await
    .expect("joins");
    assert!(progress < size as u64, "killed after the end: {progress}");

    let resumed = run_binary(audit_args(&file_url(&log_dir), &state)).await;
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert!(
        stderr.contains(&format!("{size} of {size} leaves")),
        "{stderr}"
    );

    // The hashes of both runs answer for the tree: gossip of older sizes is consistent.
    let monitor = reopen(&local_config(&file_url(&log_dir), dir.path())).await;
    for old in [1, 32_768 * 3 + 17, 300_001, size] {
        let note = sign(old as u64, root_from_leaves(&honest[..old]));
        assert_eq!(
            monitor.gossip(&note, "upload").await,
            Some(GossipOutcome::Consistent),
            "size {old}"
        );
    }
    assert_eq!(monitor.alerter.raised(), Vec::new());
}
