//! The monitor against a test log served over loopback HTTP, honest and dishonest: a forked
//! history shown to a witness, a leaf rewritten inside a verified full tile, a signed root its
//! tiles do not give, a rollback to a different history. Each must raise its alert with evidence
//! that `cairn-monitor verify-evidence` accepts; an honest growing log must raise nothing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use cairn_monitor::alert::AlertKind;
use cairn_monitor::daemon::{Config, LogConfig, Monitor};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::tiles::{encode_entry_bundle, EntryBundle, Tile, TileAppender, TilePath};
use cairn_spec::Hash;

const ORIGIN: &str = "example.com/dishonest";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [42; 32])
}

fn leaf(index: usize, tag: &str) -> Vec<u8> {
    format!("{tag} leaf {index:08} {}", "x".repeat(80)).into_bytes()
}

/// What one view of the log serves: leaves, the tiles they make, and a signed checkpoint.
#[derive(Default, Clone)]
struct View {
    leaves: Vec<Vec<u8>>,
    tiles: HashMap<Tile, Vec<u8>>,
    checkpoint: Vec<u8>,
}

impl View {
    fn of(leaves: Vec<Vec<u8>>) -> View {
        let hashes: Vec<Hash> = leaves.iter().map(|leaf| Hash::of_leaf(leaf)).collect();
        let mut appender = TileAppender::new();
        let mut tiles = HashMap::new();
        // Append in steps so that partial tiles of earlier widths exist too.
        for chunk in hashes.chunks(100) {
            for update in appender.append(chunk).expect("appends") {
                tiles.insert(update.tile, update.data);
            }
        }
        let checkpoint = sign(leaves.len() as u64, appender.root());
        View {
            leaves,
            tiles,
            checkpoint,
        }
    }

    fn root(&self) -> Hash {
        Checkpoint::open(&self.checkpoint, &signer().verifier())
            .expect("opens")
            .checkpoint
            .root
    }

    fn tile(&self, tile: Tile) -> Option<Vec<u8>> {
        let wanted = usize::from(tile.width()) * 32;
        self.tiles
            .iter()
            .filter(|(have, data)| {
                have.level() == tile.level() && have.index() == tile.index() && data.len() >= wanted
            })
            .map(|(_, data)| data[..wanted].to_vec())
            .next()
    }

    fn bundle(&self, bundle: EntryBundle) -> Option<Vec<u8>> {
        let start = usize::try_from(bundle.index()).ok()? * 256;
        let end = start + usize::from(bundle.width());
        encode_entry_bundle(self.leaves.get(start..end)?).ok()
    }
}

fn sign(size: u64, root: Hash) -> Vec<u8> {
    Checkpoint {
        origin: ORIGIN.to_owned(),
        size,
        root,
        extensions: Vec::new(),
    }
    .sign(&signer())
    .expect("signs")
    .to_bytes()
    .expect("encodes")
}

/// The log: the view clients get, and the one shown to the witness.
#[derive(Default)]
struct Log {
    client: View,
    witness: Option<View>,
}

type Shared = Arc<Mutex<Log>>;

async fn serve_checkpoint(State(log): State<Shared>) -> Vec<u8> {
    log.lock().expect("lock").client.checkpoint.clone()
}

async fn serve_witness(
    State(log): State<Shared>,
    UrlPath(_origin): UrlPath<String>,
) -> (StatusCode, Vec<u8>) {
    match &log.lock().expect("lock").witness {
        Some(view) => (StatusCode::OK, view.checkpoint.clone()),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

async fn serve_tile(
    State(log): State<Shared>,
    UrlPath(path): UrlPath<String>,
) -> (StatusCode, Vec<u8>) {
    let log = log.lock().expect("lock");
    let found = match TilePath::parse(&format!("tile/{path}")) {
        Ok(TilePath::Tile(tile)) => log.client.tile(tile),
        Ok(TilePath::EntryBundle(bundle)) => log.client.bundle(bundle),
        Err(_) => None,
    };
    match found {
        Some(data) => (StatusCode::OK, data),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

async fn start(log: Shared) -> String {
    let app = Router::new()
        .route("/checkpoint", get(serve_checkpoint))
        .route("/witness/checkpoint/{*origin}", get(serve_witness))
        .route("/tile/{*path}", get(serve_tile))
        .with_state(log);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn config(url: &str, dir: &Path) -> Config {
    Config {
        state_dir: dir.join("state"),
        evidence_dir: dir.join("evidence"),
        listen: None,
        poll_interval_secs: 1,
        timeout_secs: 5,
        webhook: None,
        peers: Vec::new(),
        logs: vec![LogConfig {
            url: url.to_owned(),
            key: signer().verifier().to_vkey(),
            policy: None,
            witnesses: vec![format!("{url}/witness")],
            event_log: false,
            stale_after_secs: None,
            recheck_tiles: 64,
            check_entries: true,
        }],
    }
}

fn leaves(count: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..count).map(|index| leaf(index, tag)).collect()
}

/// Runs `cairn-monitor verify-evidence` on a file; true if it accepts.
fn cli_accepts(path: &Path) -> bool {
    std::process::Command::new(env!("CARGO_BIN_EXE_cairn-monitor"))
        .arg("verify-evidence")
        .arg(path)
        .arg("--log-key")
        .arg(signer().verifier().to_vkey())
        .output()
        .expect("runs")
        .status
        .success()
}

fn assert_alert_with_evidence(monitor: &Monitor, kind: AlertKind) {
    let alerts = monitor.alerter.raised();
    let alert = alerts
        .iter()
        .find(|alert| alert.kind == kind && alert.evidence.is_some())
        .unwrap_or_else(|| panic!("no {kind:?} alert with evidence among {alerts:#?}"));
    let path = alert.evidence.as_ref().expect("evidence");
    assert!(
        cli_accepts(path),
        "verify-evidence refuses {}",
        path.display()
    );
    let mut bytes = std::fs::read(path).expect("reads");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let tampered = path.with_extension("tampered.json");
    std::fs::write(&tampered, &bytes).expect("writes");
    assert!(
        !cli_accepts(&tampered),
        "verify-evidence accepts a tampered file"
    );
}

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
        let monitor = Monitor::new(&config(&url, dir.path())).expect("monitor");
        monitor.poll_once().await.expect("polls");
        assert_eq!(
            monitor.alerter.raised(),
            Vec::new(),
            "false alarm at size {size}"
        );
        verified = size;
        // Gossip of a checkpoint seen before is no conflict either.
        assert!(
            monitor
                .gossip(&View::of(all[..size / 2 + 1].to_vec()).checkpoint, "upload")
                .await
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
    let monitor = Monitor::new(&config(&url, dir.path())).expect("monitor");
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
    assert!(monitor.gossip(&View::of(other).checkpoint, "upload").await);
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
    assert!(monitor
        .alerter
        .metrics
        .render()
        .contains("cairn_monitor_bad_input_total_upload"));

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
