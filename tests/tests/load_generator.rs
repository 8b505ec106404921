//! The load generator against real servers on loopback: what it reports must be what the server
//! saw, its pacing must hold, and misbehaving servers must be reported, never fatal.
//!
//! These are behaviour checks, not benchmarks: what they assert holds on a machine of any speed
//! and load (no window of how many requests a busy machine manages in a second); each run lasts
//! about a second at most.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::time::Instant;

use cairn_tests::load::framing::{decode_batch, BatchLimits};
use cairn_tests::load::{run, LeafKind, LoadConfig, Pacing, Target, Workload};

/// What a test server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    leaves: Mutex<HashSet<Vec<u8>>>,
    arrivals: Mutex<Vec<Instant>>,
    actors: Mutex<HashSet<String>>,
}

impl Seen {
    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn spawn_server(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn config_for(addr: SocketAddr, workload: Workload) -> LoadConfig {
    let target = Target::parse(&format!("http://{addr}"), false).expect("loopback target");
    let mut config = LoadConfig::new(target, workload);
    config.duration = Duration::from_secs(5);
    config.timeout = Duration::from_secs(2);
    config
}

fn unique_leaves(leaf_size: usize) -> Workload {
    Workload::Add {
        leaf_size,
        leaf_kind: LeafKind::Unique,
    }
}

/// A log-like server: `/add` stores the leaf, `/add-batch` the framed leaves, `/slow` holds each
/// request for 10 ms; every request is counted with its arrival time and concurrency.
async fn spawn_counting_server() -> (SocketAddr, Arc<Seen>) {
    async fn track<F: std::future::Future<Output = Response>>(seen: &Seen, work: F) -> Response {
        seen.requests.fetch_add(1, Ordering::SeqCst);
        seen.arrivals
            .lock()
            .expect("arrivals lock")
            .push(Instant::now());
        let now_in_flight = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.max_in_flight
            .fetch_max(now_in_flight, Ordering::SeqCst);
        let response = work.await;
        seen.in_flight.fetch_sub(1, Ordering::SeqCst);
        response
    }
    async fn add(State(seen): State<Arc<Seen>>, body: Bytes) -> Response {
        track(&seen.clone(), async move {
            seen.leaves
                .lock()
                .expect("leaves lock")
                .insert(body.to_vec());
            r#"{"index":0,"leaf_hash":""}"#.into_response()
        })
        .await
    }
    async fn add_batch(State(seen): State<Arc<Seen>>, body: Bytes) -> Response {
        track(&seen.clone(), async move {
            let limits = BatchLimits {
                max_leaves: 1000,
                max_leaf_bytes: 1 << 16,
            };
            match decode_batch(&body, limits) {
                Ok(leaves) => {
                    let mut seen_leaves = seen.leaves.lock().expect("leaves lock");
                    for leaf in &leaves {
                        seen_leaves.insert(leaf.to_vec());
                    }
                    format!(r#"{{"index":0,"count":{}}}"#, leaves.len()).into_response()
                }
                Err(error) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
            }
        })
        .await
    }
    async fn slow(State(seen): State<Arc<Seen>>) -> Response {
        track(&seen, async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            StatusCode::OK.into_response()
        })
        .await
    }
    let seen = Arc::new(Seen::default());
    let router = Router::new()
        .route("/add", post(add))
        .route("/add-batch", post(add_batch))
        .route("/slow", post(slow))
        .with_state(seen.clone());
    (spawn_server(router).await, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_match_what_the_server_saw() {
    let (addr, seen) = spawn_counting_server().await;
    let mut config = config_for(addr, unique_leaves(64));
    config.connections = 4;
    config.max_requests = Some(200);

    let report = run(config).await.expect("run");

    assert_eq!(seen.requests(), 200);
    assert_eq!(report.requests, 200);
    assert_eq!(report.status_count(200), 200);
    assert_eq!(report.leaves, 200);
    assert_eq!(report.body_bytes_sent, 200 * 64);
    assert_eq!(report.errors.total(), 0);
    assert_eq!(
        report.connections_opened, 4,
        "keep-alive connections are reused"
    );
    let leaves = seen.leaves.lock().expect("leaves lock");
    assert_eq!(leaves.len(), 200, "every leaf is unique");
    assert!(leaves.iter().all(|leaf| leaf.len() == 64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_spread_over_every_target() {
    let servers = [
        spawn_counting_server().await,
        spawn_counting_server().await,
        spawn_counting_server().await,
    ];
    let mut config = config_for(servers[0].0, unique_leaves(32));
    config.also_targets = servers[1..]
        .iter()
        .map(|(addr, _)| Target::parse(&format!("http://{addr}"), false).expect("loopback"))
        .collect();
    config.connections = 6;
    config.duration = Duration::from_secs(1);

    let report = run(config).await.expect("run");

    assert_eq!(report.connections_opened, 6);
    let total: u64 = servers.iter().map(|(_, seen)| seen.requests()).sum();
    assert_eq!(total, report.requests);
    for (addr, seen) in &servers {
        assert!(seen.requests() > 0, "{addr} got no request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_arrive_framed_and_their_leaves_are_counted() {
    let (addr, seen) = spawn_counting_server().await;
    let mut config = config_for(
        addr,
        Workload::AddBatch {
            leaf_size: 32,
            leaves_per_batch: 10,
            leaf_kind: LeafKind::Unique,
        },
    );
    config.connections = 2;
    config.max_requests = Some(20);

    let report = run(config).await.expect("run");

    assert_eq!(
        report.status_count(200),
        20,
        "the server decoded every batch"
    );
    assert_eq!(report.leaves, 200);
    assert_eq!(seen.leaves.lock().expect("leaves lock").len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_requests_are_sent_but_not_counted() {
    let (addr, seen) = spawn_counting_server().await;
    let mut config = config_for(addr, unique_leaves(16));
    config.connections = 2;
    config.warmup = Duration::from_millis(100);
    config.max_requests = Some(50);

    let report = run(config).await.expect("run");

    assert_eq!(report.requests, 50);
    assert!(
        seen.requests() > 50,
        "the server saw only {} requests: no warm-up",
        seen.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_keeps_at_most_one_request_in_flight_per_connection() {
    let (addr, seen) = spawn_counting_server().await;
    let mut config = config_for(addr, unique_leaves(16));
    config.path = "/slow".into();
    config.connections = 4;
    config.duration = Duration::from_millis(300);

    let report = run(config).await.expect("run");

    assert_eq!(
        seen.max_in_flight.load(Ordering::SeqCst),
        4,
        "all 4 connections were busy at once, and never more"
    );
    assert_eq!(report.requests, seen.requests());
    let latency = report.latency_micros.expect("answers");
    assert!(latency.p50 >= 10_000, "the server holds each request 10 ms");
}

/// The fixed rate holds whatever the machine's load: every slot of the run is sent, failed or
/// reported unsent (never dropped), and no request leaves before its slot is due (the k-th
/// arrival is at least k slots after the start, less the one millisecond a connection may send
/// early). How many of them a busy machine manages in time is not asserted: that is a
/// benchmark's question, not a behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_holds_the_rate_and_spreads_requests_over_the_run() {
    const RATE: f64 = 200.0;
    let (addr, seen) = spawn_counting_server().await;
    let mut config = config_for(addr, unique_leaves(16));
    config.connections = 4;
    config.pacing = Pacing::FixedRate {
        requests_per_second: RATE,
    };
    config.duration = Duration::from_secs(1);
    let started = Instant::now();

    let report = run(config).await.expect("run");

    assert_eq!(
        report.requests + report.errors.total() + report.unsent,
        200,
        "every slot of 1 s at 200/s is answered, failed or reported unsent: {report}"
    );
    assert_eq!(report.requests, seen.requests());
    assert!(
        report.requests_per_second <= RATE * 1.05,
        "reported {} requests/s, above the rate",
        report.requests_per_second
    );
    let mut arrivals = seen.arrivals.lock().expect("arrivals lock").clone();
    arrivals.sort();
    let slot = Duration::from_secs_f64(1.0 / RATE);
    let early = Duration::from_millis(1);
    for (k, arrival) in arrivals.iter().enumerate() {
        let due = started + slot * k as u32;
        assert!(
            *arrival + early >= due,
            "request {k} of {} arrived {:?} after the start, before its slot",
            arrivals.len(),
            *arrival - started
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_against_a_slow_server_counts_the_waiting_and_the_unsent() {
    let (addr, seen) = spawn_counting_server().await;
    let mut config = config_for(addr, unique_leaves(16));
    config.path = "/slow".into();
    config.connections = 1;
    // One request due every 2 ms, each held 10 ms by the server: the connection falls behind
    // at once and never catches up.
    config.pacing = Pacing::FixedRate {
        requests_per_second: 500.0,
    };
    config.duration = Duration::from_millis(200);

    let report = run(config).await.expect("run");

    assert_eq!(
        report.requests + report.errors.total() + report.unsent,
        100,
        "every scheduled request is answered, failed or reported unsent: {report}"
    );
    assert!(report.unsent >= 50, "{report}");
    assert_eq!(report.requests, seen.requests());
    let latency = report.latency_micros.expect("answers");
    assert!(
        latency.p50 >= 40_000,
        "latency counts from when a request was due, not from when it could be sent: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_answers_by_status_code_and_leaves_only_when_accepted() {
    let served = Arc::new(AtomicU64::new(0));
    let router = Router::new()
        .route(
            "/add",
            post(|State(served): State<Arc<AtomicU64>>| async move {
                if served.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "1")],
                    )
                        .into_response()
                } else {
                    StatusCode::OK.into_response()
                }
            }),
        )
        .with_state(served);
    let addr = spawn_server(router).await;
    let mut config = config_for(addr, unique_leaves(16));
    config.max_requests = Some(90);

    let report = run(config).await.expect("run");

    assert_eq!(report.status_count(200), 60);
    assert_eq!(report.status_count(503), 30);
    assert_eq!(report.retry_after_answers, 30);
    assert_eq!(report.leaves, 60);
    assert_eq!(report.errors.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_the_bearer_token_and_varied_actors() {
    let actors = Arc::new(Seen::default());
    let router = Router::new()
        .route(
            "/v1/events",
            post(
                |State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes| async move {
                    if headers.get(header::AUTHORIZATION).map(|v| v.as_bytes())
                        != Some(b"Bearer t0k3n")
                    {
                        return StatusCode::UNAUTHORIZED;
                    }
                    if headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes())
                        != Some(b"application/json")
                    {
                        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
                    }
                    match serde_json::from_slice::<serde_json::Value>(&body) {
                        Ok(event) if event["actor"]["id"].is_string() => {
                            seen.actors
                                .lock()
                                .expect("actors lock")
                                .insert(event["actor"]["id"].to_string());
                            StatusCode::OK
                        }
                        _ => StatusCode::BAD_REQUEST,
                    }
                },
            ),
        )
        .with_state(actors.clone());
    let addr = spawn_server(router).await;
    let mut config = config_for(addr, Workload::Events);
    config.connections = 2;
    config.max_requests = Some(100);
    config.bearer_token = Some("t0k3n".into());

    let report = run(config.clone()).await.expect("run");
    assert_eq!(report.status_count(200), 100, "{report}");
    assert!(actors.actors.lock().expect("actors lock").len() > 20);

    config.bearer_token = Some("wrong".into());
    let report = run(config).await.expect("run");
    assert_eq!(report.status_count(401), 100);
    assert_eq!(report.leaves, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_every_connection_is_followed_not_fatal() {
    // A large answer: the whole body must still be read after the server hangs up.
    const ANSWER_BYTES: usize = 100_000;
    let router = Router::new().route(
        "/add",
        post(|| async { ([(header::CONNECTION, "close")], vec![b'a'; ANSWER_BYTES]) }),
    );
    let addr = spawn_server(router).await;
    let mut config = config_for(addr, unique_leaves(16));
    config.connections = 2;
    config.max_requests = Some(30);

    let report = run(config).await.expect("run");

    assert_eq!(report.status_count(200), 30);
    assert_eq!(report.errors.total(), 0, "{report}");
    assert_eq!(report.body_bytes_received, 30 * ANSWER_BYTES as u64);
    assert!(
        report.connections_opened >= 30,
        "one connection per request, opened {}",
        report.connections_opened
    );
}

/// A TCP server that reads what arrives and then closes the connection without answering.
async fn spawn_hanging_up_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_up_without_answering_gives_io_errors() {
    let addr = spawn_hanging_up_server().await;
    let mut config = config_for(addr, unique_leaves(16));
    config.connections = 2;
    config.max_requests = Some(20);

    let report = run(config).await.expect("run");

    assert_eq!(report.requests, 0);
    assert_eq!(report.latency_micros, None);
    assert_eq!(report.errors.io, 20, "{report}");
    assert_eq!(report.errors.total(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_gives_timeouts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            holder.lock().expect("held lock").push(socket);
        }
    });
    let mut config = config_for(addr, unique_leaves(16));
    config.connections = 2;
    config.timeout = Duration::from_millis(100);
    config.max_requests = Some(4);

    let report = run(config).await.expect("run");

    assert_eq!(report.errors.timeout, 4, "{report}");
    assert_eq!(report.requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_connect_error_and_the_run_still_ends() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    let mut config = config_for(addr, unique_leaves(16));
    config.max_requests = Some(5);

    let report = run(config).await.expect("run");

    assert_eq!(report.errors.connect, 5, "{report}");
    assert_eq!(report.connections_opened, 0);
}
