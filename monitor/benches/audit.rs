//! `audit` throughput: a full re-verification (tiles and entry bundles) of a log of 2^20
//! 100-byte leaves served from loopback by a small static server, into a fresh state store.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use cairn_monitor::daemon::{Config, LogConfig, Monitor};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::tiles::{encode_entry_bundle, EntryBundle, TileAppender};
use cairn_spec::Hash;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const LEAVES: usize = 1 << 20;
const ORIGIN: &str = "example.com/bench";

/// Every file of the log by path, as a static file server would hold them.
fn build_files(signer: &Ed25519Signer) -> HashMap<String, Vec<u8>> {
    let leaves: Vec<Vec<u8>> = (0..LEAVES)
        .map(|index| {
            let mut leaf = format!("leaf {index:012} ").into_bytes();
            leaf.resize(100, b'.');
            leaf
        })
        .collect();
    let hashes: Vec<Hash> = leaves.iter().map(|leaf| Hash::of_leaf(leaf)).collect();
    let mut appender = TileAppender::new();
    let mut files = HashMap::new();
    for update in appender.append(&hashes).expect("appends") {
        files.insert(update.tile.path(), update.data);
    }
    for (index, chunk) in leaves.chunks(256).enumerate() {
        let bundle = EntryBundle::new(index as u64, chunk.len() as u16).expect("bundle");
        files.insert(bundle.path(), encode_entry_bundle(chunk).expect("encodes"));
    }
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: LEAVES as u64,
        root: appender.root(),
        extensions: Vec::new(),
    };
    let note = checkpoint
        .sign(signer)
        .expect("signs")
        .to_bytes()
        .expect("encodes");
    files.insert("checkpoint".to_owned(), note);
    files
}

async fn serve(
    State(files): State<Arc<HashMap<String, Vec<u8>>>>,
    Path(path): Path<String>,
) -> (StatusCode, Vec<u8>) {
    match files.get(&path) {
        Some(data) => (StatusCode::OK, data.clone()),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

fn audit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let signer = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [3; 32]);
    let files = Arc::new(build_files(&signer));
    let url = runtime.block_on(async {
        let app = Router::new()
            .route("/{*path}", get(serve))
            .with_state(files);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    });
    let mut group = c.benchmark_group("audit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(LEAVES as u64));
    group.bench_function("loopback_1Mi_leaves_100B", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = Config {
                state_dir: dir.path().join("state"),
                evidence_dir: dir.path().join("evidence"),
                listen: None,
                poll_interval_secs: 1,
                timeout_secs: 30,
                webhook: None,
                peers: Vec::new(),
                logs: vec![LogConfig {
                    url: url.clone(),
                    key: signer.verifier().to_vkey(),
                    policy: None,
                    witnesses: Vec::new(),
                    event_log: false,
                    stale_after_secs: None,
                    recheck_tiles: 0,
                    check_entries: true,
                }],
            };
            runtime.block_on(async {
                let monitor = Monitor::new(&config).expect("monitor");
                monitor.poll_once().await.expect("polls");
                assert!(monitor.alerter.raised().is_empty());
                assert_eq!(monitor.verified_notes().await.len(), 1);
            });
        })
    });
    group.finish();
}

criterion_group!(benches, audit);
criterion_main!(benches);
