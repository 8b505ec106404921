//! The monitor's shell over real loopback HTTP and the real binary: gossip (POST and GET
//! /gossip, peers), witnesses asked by percent-encoded origin, garbage from witnesses, peers and
//! logs refused and counted, webhook alerts, the stale-log alert, one-shot exit status, the
//! resumable `audit`, and tampered receipts refused by `verify-receipt`.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use cairn_monitor::alert::AlertKind;
use cairn_monitor::daemon::Monitor;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::CosignatureSigner;
use cairn_spec::event::{EventId, EventInput};
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{verify, Receipt};
use cairn_spec::tiles::TilePath;
use cairn_spec::time::Instant;
use cairn_spec::Hash;
use common::{
    assert_alert_with_evidence, assert_every_flip_refused, audit_args, config, leaf, leaves,
    run_binary, serve, signer, start, Shared, View, ORIGIN,
};

fn alert_kinds(monitor: &Monitor) -> Vec<AlertKind> {
    monitor
        .alerter
        .raised()
        .iter()
        .map(|alert| alert.kind)
        .collect()
}

fn forged_checkpoint(size: u64) -> Vec<u8> {
    let other = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [1; 32]);
    Checkpoint {
        origin: ORIGIN.to_owned(),
        size,
        root: Hash([9; 32]),
        extensions: Vec::new(),
    }
    .sign(&other)
    .expect("signs")
    .to_bytes()
    .expect("encodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_over_http_checks_uploads_and_serves_what_it_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let honest = View::of(leaves(900, "honest"));
    log.lock().expect("lock").client = honest.clone();
    let monitor = Arc::new(Monitor::new(&config(&url, dir.path())).expect("monitor"));
    monitor.poll_once().await.expect("polls");
    let port = serve(monitor.router()).await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        let request = client.post(format!("{port}/gossip")).body(body);
        async move { request.send().await.expect("posts").status().as_u16() }
    };

    let held = client
        .get(format!("{port}/gossip"))
        .send()
        .await
        .expect("gets")
        .bytes()
        .await
        .expect("body");
    let held: Vec<String> = serde_json::from_slice(&held).expect("a JSON list of notes");
    assert_eq!(
        held,
        vec![String::from_utf8(honest.checkpoint.clone()).expect("UTF-8")]
    );

    assert_eq!(post(View::of(leaves(300, "honest")).checkpoint).await, 200);
    assert_eq!(post(View::of(leaves(1200, "later")).checkpoint).await, 202);
    assert_eq!(post(forged_checkpoint(300)).await, 400);
    assert_eq!(post(b"garbage\n".to_vec()).await, 404);
    assert_eq!(post(vec![b'a'; 100_000]).await, 413);
    assert_eq!(monitor.alerter.raised(), Vec::new());

    let mut other = leaves(600, "honest");
    other[10] = leaf(10, "shown to a producer");
    assert_eq!(post(View::of(other).checkpoint).await, 409);
    assert_alert_with_evidence(&monitor, AlertKind::SplitView);

    let metrics = client
        .get(format!("{port}/metrics"))
        .send()
        .await
        .expect("gets")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            "cairn_monitor_bad_input_total{source=\"upload\",origin=\"example.com/dishonest\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("cairn_monitor_bad_input_total{source=\"upload\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "cairn_monitor_alerts_total{kind=\"split-view\",origin=\"example.com/dishonest\"} 1"
        ),
        "{metrics}"
    );
    // Nothing gossiped entered the verified state.
    assert_eq!(
        monitor.verified_notes().await,
        vec![String::from_utf8(honest.checkpoint).expect("UTF-8")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_of_the_port_is_json_with_its_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(900, "honest"));
    let monitor = Arc::new(Monitor::new(&config(&url, dir.path())).expect("monitor"));
    monitor.poll_once().await.expect("polls");
    let port = serve(monitor.router()).await;
    let client = reqwest::Client::new();
    let mut other = leaves(600, "honest");
    other[10] = leaf(10, "shown to a producer");
    let answers = [
        ("GET", "/no/such/route", Vec::new(), 404, "not_found"),
        ("DELETE", "/gossip", Vec::new(), 405, "method_not_allowed"),
        ("POST", "/healthz", Vec::new(), 405, "method_not_allowed"),
        ("POST", "/gossip", vec![b'a'; 100_000], 413, "too_large"),
        (
            "POST",
            "/gossip",
            forged_checkpoint(300),
            400,
            "not_signed_by_log",
        ),
        (
            "POST",
            "/gossip",
            b"garbage\n".to_vec(),
            404,
            "unknown_origin",
        ),
        (
            "POST",
            "/gossip",
            View::of(other).checkpoint,
            409,
            "split_view",
        ),
    ];
    for (method, path, body, status, code) in answers {
        let response = client
            .request(method.parse().expect("method"), format!("{port}{path}"))
            .body(body)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        let answer: serde_json::Value =
            serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
        assert_eq!(answer["error"], code, "{method} {path}: {answer}");
        assert!(
            !answer["detail"]
                .as_str()
                .expect("a detail")
                .contains(&*dir.path().to_string_lossy()),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_monitor_shown_a_fork_reveals_the_split_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One key, two histories: each monitor is shown one of them.
    let honest_log: Shared = Arc::default();
    let forked_log: Shared = Arc::default();
    honest_log.lock().expect("lock").client = View::of(leaves(700, "honest"));
    let mut forked = leaves(700, "honest");
    forked[500] = leaf(500, "forked");
    forked_log.lock().expect("lock").client = View::of(forked);
    let honest_url = start(honest_log).await;
    let forked_url = start(forked_log).await;

    let peer =
        Arc::new(Monitor::new(&config(&forked_url, &dir.path().join("peer"))).expect("peer"));
    peer.poll_once().await.expect("polls");
    assert_eq!(peer.alerter.raised(), Vec::new());
    let peer_url = serve(peer.router()).await;

    // Peers that serve garbage: not JSON, JSON of bad notes, and an oversized body.
    let garbage_url = serve(
        Router::new()
            .route("/a/gossip", get(|| async { "not json" }))
            .route(
                "/b/gossip",
                get(|| async {
                    axum::Json(vec![
                        "example.com/dishonest\n1\nAAAA\n".to_owned(),
                        String::from_utf8(forged_checkpoint(700)).expect("UTF-8"),
                    ])
                }),
            )
            .route("/c/gossip", get(|| async { vec![b'['; 5 << 20] })),
    )
    .await;

    let mut settings = config(&honest_url, &dir.path().join("monitor"));
    settings.peers = vec![
        format!("{garbage_url}/a"),
        format!("{garbage_url}/b"),
        format!("{garbage_url}/c"),
        peer_url,
    ];
    let monitor = Monitor::new(&settings).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(alert_kinds(&monitor), vec![AlertKind::SplitView]);
    assert_alert_with_evidence(&monitor, AlertKind::SplitView);
    let metrics = monitor.alerter.metrics.render();
    assert!(
        metrics.contains("cairn_monitor_bad_input_total{source=\"peer\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "cairn_monitor_bad_input_total{source=\"peer\",origin=\"example.com/dishonest\"} 2"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_are_asked_by_percent_encoded_origin_and_their_garbage_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let honest = View::of(leaves(400, "honest"));
    log.lock().expect("lock").client = honest.clone();
    let monitor = Monitor::new(&config(&url, dir.path())).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert!(log
        .lock()
        .expect("lock")
        .requests
        .contains(&"/witness/checkpoint/example.com%2Fdishonest".to_owned()));

    let garbage = [
        vec![b'x'; 100_000],
        b"example.com/dishonest\n400\nnot base64\n\n".to_vec(),
        forged_checkpoint(400),
        honest.checkpoint[..honest.checkpoint.len() - 5].to_vec(),
    ];
    for body in &garbage {
        log.lock().expect("lock").witness_garbage = Some(body.clone());
        monitor.poll_once().await.expect("polls");
    }
    assert_eq!(monitor.alerter.raised(), Vec::new());
    let metrics = monitor.alerter.metrics.render();
    assert!(
        metrics.contains(
            "cairn_monitor_bad_input_total{source=\"witness\",origin=\"example.com/dishonest\"} 4"
        ),
        "{metrics}"
    );
    assert_eq!(
        monitor.verified_notes().await,
        vec![String::from_utf8(honest.checkpoint.clone()).expect("UTF-8")]
    );

    // Garbage tiles from the log: refused, counted, raised; the verified state stays put.
    {
        let mut log = log.lock().expect("lock");
        log.witness_garbage = None;
        log.client = View::of(leaves(800, "honest"));
        log.tile_garbage = Some(vec![7; 33]);
    }
    monitor.poll_once().await.expect("polls");
    // The new tiles do not decode (corrupt data), nor does the verified full tile fetched
    // again (rewritten tile).
    assert_eq!(
        alert_kinds(&monitor),
        vec![AlertKind::CorruptData, AlertKind::RewrittenTile]
    );
    assert!(monitor.alerter.metrics.render().contains(
        "cairn_monitor_bad_input_total{source=\"log\",origin=\"example.com/dishonest\"} 2"
    ));
    assert_eq!(
        monitor.verified_notes().await,
        vec![String::from_utf8(honest.checkpoint).expect("UTF-8")]
    );
    // Once the log serves good tiles again, the monitor catches up.
    log.lock().expect("lock").tile_garbage = None;
    monitor.poll_once().await.expect("polls");
    assert!(monitor.verified_notes().await[0].contains("\n800\n"));
}

fn event_leaf(index: usize) -> Vec<u8> {
    let json = format!(
        r#"{{"timestamp":"2026-11-25T09:14:03Z","actor":{{"id":"alice","type":"user"}},
            "action":"invoice.approve","resource":{{"type":"invoice","id":"INV-{index}"}},
            "outcome":"success"}}"#
    );
    let id = u8::try_from(index % 251).expect("small");
    let (leaf, _) = EventInput::parse(json.as_bytes())
        .expect("a valid event")
        .into_leaf(
            EventId::new_v4([id; 16]),
            Instant::from_unix(1_764_058_443, 0),
            "producer:test",
        )
        .expect("a valid principal");
    leaf.leaf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_log_with_a_leaf_that_is_not_an_event_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let mut events: Vec<Vec<u8>> = (0..300).map(event_leaf).collect();
    log.lock().expect("lock").client = View::of(events.clone());
    let mut settings = config(&url, dir.path());
    settings.logs[0].event_log = true;
    let monitor = Monitor::new(&settings).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(monitor.alerter.raised(), Vec::new());
    events.push(b"not an event".to_vec());
    log.lock().expect("lock").client = View::of(events);
    monitor.poll_once().await.expect("polls");
    assert_eq!(alert_kinds(&monitor), vec![AlertKind::CorruptData]);
    assert!(monitor.verified_notes().await[0].contains("\n300\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_short_of_the_witness_quorum_is_raised_and_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let witness = CosignatureSigner::from_seed(KeyName::new("w.example").expect("name"), [5; 32]);
    let policy_path = dir.path().join("policy");
    std::fs::write(
        &policy_path,
        format!(
            "log {}\nwitness w {}\nquorum w\n",
            signer().verifier().to_vkey(),
            witness.verifier().to_vkey()
        ),
    )
    .expect("writes");
    let mut settings = config(&url, dir.path());
    settings.logs[0].policy = Some(policy_path);
    let view = View::of(leaves(300, "honest"));
    log.lock().expect("lock").client = view.clone();
    let monitor = Monitor::new(&settings).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(alert_kinds(&monitor), vec![AlertKind::WitnessPolicyUnmet]);
    assert!(monitor.verified_notes().await.is_empty());

    // Cosigned by the witness, the same checkpoint is followed.
    let checkpoint = Checkpoint::open(&view.checkpoint, &signer().verifier())
        .expect("opens")
        .checkpoint;
    let mut note = checkpoint.sign(&signer()).expect("signs");
    let cosignature = witness.cosign(&checkpoint, 1_764_000_000).expect("cosigns");
    note.add_signature(cosignature.to_note_signature())
        .expect("room");
    log.lock().expect("lock").client.checkpoint = note.to_bytes().expect("encodes");
    monitor.poll_once().await.expect("polls");
    assert_eq!(alert_kinds(&monitor), vec![AlertKind::WitnessPolicyUnmet]);
    assert!(monitor.verified_notes().await[0].contains("\n300\n"));
}

type Received = Arc<Mutex<Vec<serde_json::Value>>>;

async fn receive(
    State(received): State<Received>,
    axum::Json(alert): axum::Json<serde_json::Value>,
) {
    received.lock().expect("lock").push(alert);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_posted_to_the_webhook_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let received: Received = Arc::default();
    let webhook = serve(
        Router::new()
            .route("/hook", post(receive))
            .with_state(received.clone()),
    )
    .await;
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let mut forked = leaves(300, "honest");
    forked[299] = leaf(299, "forked");
    {
        let mut log = log.lock().expect("lock");
        log.client = View::of(leaves(300, "honest"));
        log.witness = Some(View::of(forked));
    }
    let mut settings = config(&url, dir.path());
    settings.webhook = Some(format!("{webhook}/hook"));
    let monitor = Monitor::new(&settings).expect("monitor");
    monitor.poll_once().await.expect("polls");
    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["kind"], "split-view");
    assert_eq!(received[0]["origin"], ORIGIN);
    let evidence = received[0]["evidence"].as_str().expect("evidence path");
    assert!(common::cli_accepts(Path::new(evidence)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_stops_growing_is_raised_stale_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(50, "honest"));
    let mut settings = config(&url, dir.path());
    settings.logs[0].stale_after_secs = Some(1);
    let monitor = Monitor::new(&settings).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(monitor.alerter.raised(), Vec::new());
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    monitor.poll_once().await.expect("polls");
    monitor.poll_once().await.expect("polls");
    assert_eq!(alert_kinds(&monitor), vec![AlertKind::StaleLog]);
    // Growth clears it; the next stall alerts again.
    log.lock().expect("lock").client = View::of(leaves(60, "honest"));
    monitor.poll_once().await.expect("polls");
    assert_eq!(alert_kinds(&monitor), vec![AlertKind::StaleLog]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    monitor.poll_once().await.expect("polls");
    assert_eq!(
        alert_kinds(&monitor),
        vec![AlertKind::StaleLog, AlertKind::StaleLog]
    );
}

fn write_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("monitor.toml");
    let text = format!(
        "state_dir = {state:?}\nevidence_dir = {evidence:?}\n\n[[logs]]\nurl = {url:?}\n\
         key = {key:?}\nwitnesses = [{witness:?}]\n",
        state = dir.join("state"),
        evidence = dir.join("evidence"),
        key = signer().verifier().to_vkey(),
        witness = format!("{url}/witness"),
    );
    std::fs::write(&path, text).expect("writes");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_run_exits_two_on_an_alert_and_zero_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(500, "honest"));
    let path = write_config(dir.path(), &url);
    let args = vec![
        "run".to_owned(),
        "--config".to_owned(),
        path.display().to_string(),
        "--once".to_owned(),
    ];
    let output = run_binary(args.clone()).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut forked = leaves(500, "honest");
    forked[1] = leaf(1, "forked");
    log.lock().expect("lock").witness = Some(View::of(forked));
    let output = run_binary(args).await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("split-view"));
}

/// The level-0 tile indices the log was asked for since the last call.
fn level0_requests(log: &Shared) -> Vec<u64> {
    let mut log = log.lock().expect("lock");
    let indices = log
        .requests
        .iter()
        .filter_map(|path| match TilePath::parse(path.trim_start_matches('/')) {
            Ok(TilePath::Tile(tile)) if tile.level() == 0 => Some(tile.index()),
            _ => None,
        })
        .collect();
    log.requests.clear();
    indices
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_resumes_where_an_interrupted_run_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let all = leaves(150_000, "audited");
    {
        let mut log = log.lock().expect("lock");
        log.client = View::of(all[..140_000].to_vec());
        // Tiles 0 to 529 arrive, the rest do not: the audit commits what it verified of the
        // batch it was in, up to the first tile it could not fetch.
        log.missing_tiles_from = Some(530);
    }
    let args = audit_args(&url, &dir.path().join("audit"));
    let interrupted = run_binary(args.clone()).await;
    assert_eq!(interrupted.status.code(), Some(1));
    assert!(level0_requests(&log).contains(&0));

    log.lock().expect("lock").missing_tiles_from = None;
    let resumed = run_binary(args.clone()).await;
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert!(stderr.contains("140000 of 140000 leaves"), "{stderr}");
    let fetched = level0_requests(&log);
    assert_eq!(fetched.iter().min(), Some(&530), "refetched {fetched:?}");
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("\n140000\n"));

    // A later audit of the grown log fetches only the new leaves' tiles.
    log.lock().expect("lock").client = View::of(all.clone());
    let grown = run_binary(args).await;
    assert_eq!(grown.status.code(), Some(0));
    let fetched = level0_requests(&log);
    assert_eq!(fetched.iter().min(), Some(&(140_000 / 256)), "{fetched:?}");
    assert!(String::from_utf8_lossy(&grown.stdout).contains("\n150000\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_receipt_refuses_a_receipt_with_any_byte_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let world = cairn_spec::example::world(20);
    // Exactly the quorum (2 of 3) cosigns: a signed note ignores signatures by keys its
    // verifier does not know, so a third, unneeded cosignature could have its key name changed
    // without changing what the receipt proves.
    let receipt = world.receipt(7, &[0, 2]);
    // The policy file as a verifier writes it (C2SP tlog-policy plus Cairn's `tsa` line).
    let mut policy_text = format!("log {}\n", world.log.verifier().to_vkey());
    for (index, witness) in world.witnesses.iter().enumerate() {
        policy_text.push_str(&format!(
            "witness w{index} {}\n",
            witness.verifier().to_vkey()
        ));
    }
    policy_text.push_str("group two 2 w0 w1 w2\nquorum two\n");
    policy_text.push_str(&format!(
        "tsa test {}\n",
        base64::engine::general_purpose::STANDARD.encode(&world.tsa.root_der)
    ));
    let policy = Policy::parse(policy_text.as_bytes()).expect("policy");
    let policy_path = dir.path().join("policy");
    std::fs::write(&policy_path, &policy_text).expect("writes");
    let receipt_path = dir.path().join("receipt.json");
    let json = receipt.to_json();
    std::fs::write(&receipt_path, &json).expect("writes");
    let cli = |path: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cairn-monitor"))
            .arg("verify-receipt")
            .arg(path)
            .arg("--policy")
            .arg(&policy_path)
            .output()
            .expect("runs")
            .status
            .success()
    };
    assert!(cli(&receipt_path), "the genuine receipt is refused");
    let tampered_path = dir.path().join("tampered.json");
    assert_every_flip_refused(
        json.as_bytes(),
        "receipt",
        40,
        |tampered| {
            Receipt::from_json(tampered)
                .ok()
                .is_some_and(|receipt| verify(&receipt, &policy).is_ok())
        },
        |tampered| {
            std::fs::write(&tampered_path, tampered).expect("writes");
            cli(&tampered_path)
        },
    );
}
