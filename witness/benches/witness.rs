//! Witness throughput, against the targets of issue 5 on a 2-core machine:
//!
//! - add-checkpoint for one origin, each request extending the tree by one leaf with a
//!   consistency proof, through the real `Witness` (signature and proof checks, cosigning, the
//!   state committed to disk before the answer): in process, and over HTTP on loopback
//!   (axum server and reqwest client in one process). Target ≥ 2,000 requests/s. Requests of
//!   one origin are serialized by design, so this is one request at a time.
//! - timestamps issued by `cairn-witness tsa` (P-256, the default, and Ed25519): in process
//!   (`Authority::answer`, serial numbers reserved durably) and over HTTP on loopback, one at a
//!   time and 8 in flight. Target ≥ 2,000 timestamps/s.
//!
//! `cargo bench -p cairn-witness --bench witness`

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::CosignatureSigner;
use cairn_spec::hash::Hash;
use cairn_spec::merkle::{consistency_proof, CompactRange};
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::timestamp::{checkpoint_imprint, ObjectIdentifier, TimestampRequest};
use cairn_spec::witness::format_add_checkpoint_request;
use cairn_witness::anchor::AnchorSettings;
use cairn_witness::service::Witness;
use cairn_witness::store::Store;
use cairn_witness::tsa::{self, Authority, KeyAlgorithm};
use cairn_witness::{start_witness, LogSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORIGIN: &str = "example.com/bench-log";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn log_signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [31; 32])
}

/// The add-checkpoint bodies that grow a log from 0 to `count` leaves one leaf at a time:
/// `0 → 1`, `1 → 2`, … each with its consistency proof and the log's signature.
fn growing_requests(count: u64) -> Vec<Vec<u8>> {
    let signer = log_signer();
    let mut range = CompactRange::new();
    let mut stored = Vec::new();
    let mut requests = Vec::with_capacity(count as usize);
    for size in 1..=count {
        range
            .append_with(
                Hash::of_leaf(format!("event {size}").as_bytes()),
                |_, hash| stored.push(*hash),
            )
            .expect("appends");
        let note = Checkpoint {
            origin: ORIGIN.to_owned(),
            size,
            root: range.root(),
            extensions: Vec::new(),
        }
        .sign(&signer)
        .expect("signs");
        let proof = consistency_proof(size - 1, size, &stored).expect("proof");
        requests.push(format_add_checkpoint_request(&note, size - 1, &proof).expect("request"));
    }
    requests
}

/// A fresh witness of the bench log, with no TSA, its database on disk in `dir`.
fn fresh_witness(dir: &std::path::Path) -> Arc<Witness> {
    start_witness(
        Store::open(dir).expect("store"),
        std::sync::Arc::new(
            CosignatureSigner::from_seed(
                KeyName::new("witness.example/bench").expect("name"),
                [32; 32],
            )
            .into(),
        ),
        vec![LogSpec {
            origin: ORIGIN.to_owned(),
            verifiers: vec![log_signer().verifier()],
        }],
        Vec::new(),
        AnchorSettings::default(),
        Duration::from_millis(250),
    )
    .expect("starts")
}

fn add_checkpoint(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("add_checkpoint_one_origin");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("in_process", |b| {
        b.iter_custom(|iterations| {
            let requests = growing_requests(iterations);
            let dir = tempfile::tempdir().expect("tempdir");
            let elapsed = runtime.block_on(async {
                let witness = fresh_witness(dir.path());
                let started = Instant::now();
                for request in &requests {
                    let issued = witness.add_checkpoint(request).await.expect("cosigned");
                    black_box(issued.response_body);
                }
                started.elapsed()
            });
            drop(dir);
            elapsed
        });
    });

    group.bench_function("http_loopback", |b| {
        b.iter_custom(|iterations| {
            let requests = growing_requests(iterations);
            let dir = tempfile::tempdir().expect("tempdir");
            let elapsed = runtime.block_on(async {
                let witness = fresh_witness(dir.path());
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("binds");
                let url = format!(
                    "http://{}/add-checkpoint",
                    listener.local_addr().expect("address")
                );
                let server = tokio::spawn(async move {
                    axum::serve(listener, cairn_witness::http::router(witness)).await
                });
                let client = reqwest::Client::new();
                let started = Instant::now();
                for request in requests {
                    let response = client.post(&url).body(request).send().await.expect("sends");
                    assert_eq!(response.status().as_u16(), 200);
                    black_box(response.bytes().await.expect("body"));
                }
                let elapsed = started.elapsed();
                server.abort();
                elapsed
            });
            drop(dir);
            elapsed
        });
    });
    group.finish();
}

fn timestamps(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("tsa_timestamps");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let policy = ObjectIdentifier::new(tsa::DEFAULT_POLICY).expect("oid");
    let request = TimestampRequest::for_imprint(
        checkpoint_imprint(
            b"example.com/bench-log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        ),
        0x0123_4567_89ab_cdef,
        None,
    )
    .to_der();

    for (name, algorithm) in [
        ("p256", KeyAlgorithm::P256),
        ("ed25519", KeyAlgorithm::Ed25519),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        tsa::init(
            dir.path(),
            "Bench TSA",
            algorithm,
            30,
            &tsa::TsaKeyPlace::File,
        )
        .expect("tsa init");
        let authority = Arc::new(Authority::load(dir.path(), policy, None).expect("loads"));

        group.bench_function(format!("{name}/in_process"), |b| {
            b.iter(|| black_box(authority.answer(black_box(&request)).expect("answers")));
        });

        let (url, server) = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binds");
            let url = format!("http://{}/", listener.local_addr().expect("address"));
            let router = tsa::router(authority.clone());
            (
                url,
                tokio::spawn(async move { axum::serve(listener, router).await }),
            )
        });
        let client = reqwest::Client::new();
        for in_flight in [1usize, 8] {
            group.bench_function(format!("{name}/http_loopback/{in_flight}_in_flight"), |b| {
                b.iter_custom(|iterations| {
                    runtime.block_on(async {
                        let started = Instant::now();
                        let mut workers = tokio::task::JoinSet::new();
                        for worker in 0..in_flight as u64 {
                            let (client, url, request) =
                                (client.clone(), url.clone(), request.clone());
                            let share = iterations / in_flight as u64
                                + u64::from(worker < iterations % in_flight as u64);
                            workers.spawn(async move {
                                for _ in 0..share {
                                    let response = client
                                        .post(&url)
                                        .header("content-type", "application/timestamp-query")
                                        .body(request.clone())
                                        .send()
                                        .await
                                        .expect("sends");
                                    assert_eq!(response.status().as_u16(), 200);
                                    black_box(response.bytes().await.expect("body"));
                                }
                            });
                        }
                        while let Some(done) = workers.join_next().await {
                            done.expect("worker");
                        }
                        started.elapsed()
                    })
                });
            });
        }
        server.abort();
    }
    group.finish();
}

criterion_group!(benches, add_checkpoint, timestamps);
criterion_main!(benches);
