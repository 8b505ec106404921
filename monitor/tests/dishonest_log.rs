//! The monitor against a test log served over loopback HTTP, honest and dishonest: a forked
//! history shown to a witness, a leaf rewritten inside a verified full tile, a signed root its
//! tiles do not give, a rollback to a different history. Each must raise its alert with evidence
//! that `cairn-monitor verify-evidence` accepts (and refuses with any byte flipped); an honest
//! growing log must raise nothing.

mod common;

use std::sync::Arc;

use cairn_monitor::alert::AlertKind;
use cairn_monitor::daemon::Monitor;
use cairn_monitor::follow::GossipOutcome;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::Hash;
use common::{
    assert_alert_with_evidence, config, leaf, leaves, reopen, sign, start, Shared, View, ORIGIN,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_growing_log_raises_nothing_and_restart_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let all = leaves(3000, "honest");
    let mut verified = 0;
    for size in [1, 2, 255, 256, 257, 700, 1024, 1500] {
        {
            let mut log = log.lock().expect("lock");
            log.client = View::of(all[..size].to_vec());
            log.witness = Some(log.client.clone());
        }
        let monitor = reopen(&config(&url, dir.path())).await;
        monitor.poll_once().await.expect("polls");
        assert_eq!(
            monitor.alerter.raised(),
            Vec::new(),
            "false alarm at size {size}"
        );
        verified = size;
        // Gossip of a checkpoint seen before is no conflict either.
        assert_eq!(
            monitor
                .gossip(&View::of(all[..size / 2 + 1].to_vec()).checkpoint, "upload")
                .await,
            Some(GossipOutcome::Consistent)
        );
        assert_eq!(
            monitor.alerter.raised(),
            Vec::new(),
            "false alarm on gossip at {size}"
        );
        let notes = monitor.verified_notes().await;
        assert!(
            notes[0].contains(&format!("\n{size}\n")),
            "resumed state: {notes:?}"
        );
    }
    assert_eq!(verified, 1500);
    // Growing further from persisted state, several polls in one process.
    let monitor = reopen(&config(&url, dir.path())).await;
    for size in [1600, 2048, 2049, 3000] {
        log.lock().expect("lock").client = View::of(all[..size].to_vec());
        monitor.poll_once().await.expect("polls");
    }
    assert_eq!(monitor.alerter.raised(), Vec::new());
    assert!(monitor
        .alerter
        .metrics
        .render()
        .contains("cairn_monitor_verified_size{origin=\"example.com/dishonest\"} 3000"));

    // A long run: 60 polls of irregular growth to 24 000 leaves, the witness one step behind,
    // older checkpoints gossiped, every full tile fetched again over the run.
    let all = leaves(24_000, "honest");
    let mut previous = View::of(all[..3000].to_vec());
    let mut seen = vec![previous.checkpoint.clone()];
    let mut size = 3000;
    for step in 0..60usize {
        size = if step == 59 {
            all.len()
        } else {
            (size + 1 + (step * 7919) % 700).min(all.len())
        };
        let view = View::of(all[..size].to_vec());
        {
            let mut log = log.lock().expect("lock");
            log.client = view.clone();
            log.witness = Some(previous);
        }
        monitor.poll_once().await.expect("polls");
        let old = &seen[(step * 31) % seen.len()];
        assert_eq!(
            monitor.gossip(old, "upload").await,
            Some(GossipOutcome::Consistent)
        );
        seen.push(view.checkpoint.clone());
        previous = view;
    }
    assert_eq!(size, 24_000);
    assert_eq!(
        monitor.alerter.raised(),
        Vec::new(),
        "false alarm in the long run"
    );
    assert!(monitor
        .alerter
        .metrics
        .render()
        .contains("cairn_monitor_verified_size{origin=\"example.com/dishonest\"} 24000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_history_shown_to_a_witness_is_a_split_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let mut forked = leaves(600, "honest");
    forked[599] = leaf(599, "forked");
    {
        let mut log = log.lock().expect("lock");
        log.client = View::of(leaves(600, "honest"));
        log.witness = Some(View::of(forked));
    }
    let monitor = Monitor::new(&config(&url, dir.path())).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_alert_with_evidence(&monitor, AlertKind::SplitView);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_smaller_checkpoint_of_another_history_is_a_split_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(900, "honest"));
    let monitor = Monitor::new(&config(&url, dir.path())).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(monitor.alerter.raised(), Vec::new());
    let mut other = leaves(512, "honest");
    other[3] = leaf(3, "other");
    assert_eq!(
        monitor.gossip(&View::of(other).checkpoint, "upload").await,
        Some(GossipOutcome::SplitView)
    );
    assert_alert_with_evidence(&monitor, AlertKind::SplitView);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_rewritten_inside_a_verified_full_tile_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let honest = View::of(leaves(800, "honest"));
    log.lock().expect("lock").client = honest.clone();
    let monitor = Monitor::new(&config(&url, dir.path())).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(monitor.alerter.raised(), Vec::new());
    let mut rewritten = leaves(800, "honest");
    rewritten[300] = leaf(300, "rewritten");
    let mut view = View::of(rewritten);
    view.checkpoint = honest.checkpoint.clone();
    log.lock().expect("lock").client = view;
    monitor.poll_once().await.expect("polls");
    assert_alert_with_evidence(&monitor, AlertKind::RewrittenTile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_root_that_tiles_do_not_give_is_a_root_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(300, "honest"));
    let monitor = Monitor::new(&config(&url, dir.path())).expect("monitor");
    monitor.poll_once().await.expect("polls");
    let mut lying = View::of(leaves(700, "honest"));
    let mut other = leaves(700, "honest");
    other[650] = leaf(650, "other");
    lying.checkpoint = sign(700, View::of(other).root());
    log.lock().expect("lock").client = lying;
    monitor.poll_once().await.expect("polls");
    assert_alert_with_evidence(&monitor, AlertKind::RootMismatch);
    let notes = monitor.verified_notes().await;
    assert!(
        notes[0].contains("\n300\n"),
        "a bad checkpoint entered the verified state: {notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_to_another_history_is_raised_with_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(1000, "honest"));
    let monitor = Monitor::new(&config(&url, dir.path())).expect("monitor");
    monitor.poll_once().await.expect("polls");
    let mut rolled = leaves(400, "honest");
    rolled[399] = leaf(399, "rolled-back");
    log.lock().expect("lock").client = View::of(rolled);
    monitor.poll_once().await.expect("polls");
    let kinds: Vec<AlertKind> = monitor
        .alerter
        .raised()
        .iter()
        .map(|alert| alert.kind)
        .collect();
    assert!(kinds.contains(&AlertKind::CheckpointGoingBack), "{kinds:?}");
    assert_alert_with_evidence(&monitor, AlertKind::SplitView);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_log_and_uploaders_is_refused_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(300, "honest"));
    let monitor = Monitor::new(&config(&url, dir.path())).expect("monitor");
    monitor.poll_once().await.expect("polls");
    for garbage in [
        b"".to_vec(),
        b"example.com/dishonest\n".to_vec(),
        vec![0xff; 100_000],
        View::of(leaves(300, "x")).checkpoint[..50].to_vec(),
    ] {
        monitor.gossip(&garbage, "upload").await;
    }
    let other = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [1; 32]);
    let forged = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 300,
        root: Hash([9; 32]),
        extensions: Vec::new(),
    }
    .sign(&other)
    .expect("signs")
    .to_bytes()
    .expect("encodes");
    monitor.gossip(&forged, "upload").await;
    assert_eq!(monitor.alerter.raised(), Vec::new());
    assert!(monitor.alerter.metrics.render().contains(
        "cairn_monitor_bad_input_total{source=\"upload\",origin=\"example.com/dishonest\"} 3"
    ));
    // The empty note and the 100 kB of 0xff name no origin this monitor follows.
    assert!(monitor
        .alerter
        .metrics
        .render()
        .contains("cairn_monitor_bad_input_total{source=\"upload\"} 2"));

    // A log serving a checkpoint signed by another key is a bad signature; state is unchanged.
    log.lock().expect("lock").client.checkpoint = forged;
    monitor.poll_once().await.expect("polls");
    let kinds: Vec<AlertKind> = monitor
        .alerter
        .raised()
        .iter()
        .map(|alert| alert.kind)
        .collect();
    assert_eq!(kinds, vec![AlertKind::BadSignature]);
    assert!(monitor.verified_notes().await[0].contains("\n300\n"));
}
