//! A test log served over loopback HTTP, built from cairn-spec: the view its clients get, the
//! view a witness reports (`GET /witness/checkpoint/<origin>`), and knobs for dishonesty and
//! garbage; and the same log written as a local directory in the tlog-tiles layout. Shared by
//! the monitor's integration tests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use cairn_monitor::alert::AlertKind;
use cairn_monitor::daemon::{Config, LogConfig, Monitor};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::evidence::{verify_evidence, Evidence};
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::tiles::{encode_entry_bundle, EntryBundle, Tile, TileAppender, TilePath};
use cairn_spec::Hash;

pub const ORIGIN: &str = "example.com/dishonest";

pub fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [42; 32])
}

pub fn leaf(index: usize, tag: &str) -> Vec<u8> {
    format!("{tag} leaf {index:08} {}", "x".repeat(80)).into_bytes()
}

pub fn leaves(count: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..count).map(|index| leaf(index, tag)).collect()
}

/// What one view of the log serves: leaves, the tiles they make, and a signed checkpoint.
#[derive(Default, Clone)]
pub struct View {
    pub leaves: Vec<Vec<u8>>,
    pub tiles: HashMap<Tile, Vec<u8>>,
    pub checkpoint: Vec<u8>,
}

impl View {
    pub fn of(leaves: Vec<Vec<u8>>) -> View {
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

    pub fn root(&self) -> Hash {
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

/// Writes the log of `leaves` as a static mirror holds it: `checkpoint`, every tile of the tree
/// at its current width, and every entry bundle.
pub fn write_log_dir(leaves: &[Vec<u8>], dir: &Path) {
    let hashes: Vec<Hash> = leaves.iter().map(|leaf| Hash::of_leaf(leaf)).collect();
    let mut appender = TileAppender::new();
    let write = |path: String, data: &[u8]| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, data).expect("writes");
    };
    for update in appender.append(&hashes).expect("appends") {
        write(update.tile.path(), &update.data);
    }
    for (index, chunk) in leaves.chunks(256).enumerate() {
        let bundle = EntryBundle::new(index as u64, chunk.len() as u16).expect("bundle");
        write(bundle.path(), &encode_entry_bundle(chunk).expect("encodes"));
    }
    write(
        "checkpoint".to_owned(),
        &sign(leaves.len() as u64, appender.root()),
    );
}

/// The `file://` URL of a directory.
pub fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

pub fn sign(size: u64, root: Hash) -> Vec<u8> {
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

/// The log: the view clients get, what the witness reports, and misbehaviour knobs.
#[derive(Default)]
pub struct Log {
    pub client: View,
    pub witness: Option<View>,
    /// Served by the witness instead of a checkpoint, when set.
    pub witness_garbage: Option<Vec<u8>>,
    /// Level-0 tiles and bundles from this index on answer 404 (an interrupted fetch).
    pub missing_tiles_from: Option<u64>,
    /// Served instead of every level-0 tile, when set.
    pub tile_garbage: Option<Vec<u8>>,
    /// Every request's path as it arrived (still percent-encoded).
    pub requests: Vec<String>,
}

pub type Shared = Arc<Mutex<Log>>;

pub async fn serve_checkpoint(State(log): State<Shared>) -> Vec<u8> {
    let mut log = log.lock().expect("lock");
    log.requests.push("/checkpoint".to_owned());
    log.client.checkpoint.clone()
}

async fn serve_witness(
    State(log): State<Shared>,
    uri: Uri,
    UrlPath(origin): UrlPath<String>,
) -> (StatusCode, Vec<u8>) {
    let mut log = log.lock().expect("lock");
    log.requests.push(uri.path().to_owned());
    if origin != ORIGIN {
        return (StatusCode::NOT_FOUND, Vec::new());
    }
    if let Some(garbage) = &log.witness_garbage {
        return (StatusCode::OK, garbage.clone());
    }
    match &log.witness {
        Some(view) => (StatusCode::OK, view.checkpoint.clone()),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

pub async fn serve_tile(
    State(log): State<Shared>,
    uri: Uri,
    UrlPath(path): UrlPath<String>,
) -> (StatusCode, Vec<u8>) {
    let mut log = log.lock().expect("lock");
    log.requests.push(uri.path().to_owned());
    let parsed = TilePath::parse(&format!("tile/{path}"));
    let level0_index = match &parsed {
        Ok(TilePath::Tile(tile)) if tile.level() == 0 => Some(tile.index()),
        Ok(TilePath::EntryBundle(bundle)) => Some(bundle.index()),
        _ => None,
    };
    if let (Some(index), Some(from)) = (level0_index, log.missing_tiles_from) {
        if index >= from {
            return (StatusCode::NOT_FOUND, Vec::new());
        }
    }
    let found = match parsed {
        Ok(TilePath::Tile(tile)) if tile.level() == 0 && log.tile_garbage.is_some() => {
            log.tile_garbage.clone()
        }
        Ok(TilePath::Tile(tile)) => log.client.tile(tile),
        Ok(TilePath::EntryBundle(bundle)) => log.client.bundle(bundle),
        Err(_) => None,
    };
    match found {
        Some(data) => (StatusCode::OK, data),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

/// Serves `log` on a loopback port; returns its base URL.
pub async fn start(log: Shared) -> String {
    let app = Router::new()
        .route("/checkpoint", get(serve_checkpoint))
        .route("/witness/checkpoint/{*origin}", get(serve_witness))
        .route("/tile/{*path}", get(serve_tile))
        .with_state(log);
    serve(app).await
}

/// Serves a router on a loopback port; returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

pub fn config(url: &str, dir: &Path) -> Config {
    Config {
        state_dir: dir.join("state"),
        evidence_dir: dir.join("evidence"),
        listen: None,
        poll_interval_secs: 1,
        timeout_secs: 5,
        webhook: None,
        alert_reminder_secs: 3600,
        ca_file: None,
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
            token_file: None,
        }],
        http: Default::default(),
    }
}

/// Opens a monitor on a state directory a dropped monitor just used. Its lock (a `flock`) is
/// released with it, but a process that another test of the same binary spawns at that moment
/// holds a copy of the lock's descriptor between its fork and its exec (close-on-exec closes it
/// only then): so a refusal for the lock is retried for up to 30 s, and anything else fails.
pub async fn reopen(config: &Config) -> Monitor {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match Monitor::new(config) {
            Ok(monitor) => return monitor,
            Err(error)
                if error.to_string().contains("in use by another process")
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(error) => panic!("reopening the monitor: {error}"),
        }
    }
}

/// Runs the `cairn-monitor` binary with `args`, off the runtime's threads.
pub async fn run_binary(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cairn-monitor"))
            .args(&args)
            .output()
            .expect("runs")
    })
    .await
    .expect("joins")
}

/// The arguments of `cairn-monitor audit` of the log at `url` into the state at `state`.
pub fn audit_args(url: &str, state: &Path) -> Vec<String> {
    vec![
        "audit".to_owned(),
        "--log".to_owned(),
        url.to_owned(),
        "--log-key".to_owned(),
        signer().verifier().to_vkey(),
        "--state".to_owned(),
        state.display().to_string(),
    ]
}

/// Runs `cairn-monitor verify-evidence` on a file; true if it accepts.
pub fn cli_accepts(path: &Path) -> bool {
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

/// Flips a bit in every byte of `bytes` in turn: each copy must be refused by `verify`
/// (the library), and a spread of them, at least `cli_samples`, by `cli` (the binary).
pub fn assert_every_flip_refused(
    bytes: &[u8],
    what: &str,
    cli_samples: usize,
    verify: impl Fn(&[u8]) -> bool,
    cli: impl Fn(&[u8]) -> bool,
) {
    for position in 0..bytes.len() {
        let mut tampered = bytes.to_vec();
        tampered[position] ^= 1;
        assert!(
            !verify(&tampered),
            "{what} with byte {position} flipped ({:?}) is accepted",
            char::from(bytes[position])
        );
    }
    let stride = (bytes.len() / cli_samples.max(1)).max(1);
    for position in (0..bytes.len()).step_by(stride) {
        let mut tampered = bytes.to_vec();
        tampered[position] ^= 1;
        assert!(
            !cli(&tampered),
            "the CLI accepts {what} with byte {position} flipped"
        );
    }
}

/// Finds an alert of `kind` with evidence; checks the CLI accepts the file and refuses it
/// with any byte flipped.
pub fn assert_alert_with_evidence(monitor: &Monitor, kind: AlertKind) {
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
    let bytes = std::fs::read(path).expect("reads");
    let key = signer().verifier();
    let tampered_path = path.with_extension("tampered.json");
    assert_every_flip_refused(
        &bytes,
        "evidence",
        40,
        |tampered| {
            Evidence::from_json(tampered)
                .ok()
                .is_some_and(|evidence| verify_evidence(&evidence, &key).is_ok())
        },
        |tampered| {
            std::fs::write(&tampered_path, tampered).expect("writes");
            cli_accepts(&tampered_path)
        },
    );
}
