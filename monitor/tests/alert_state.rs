//! Alerts are a state, not an event: over a real loopback webhook receiver, an alert is posted
//! once as `raised`, again as a `reminder` every `alert_reminder_secs` while it lasts, and as
//! `resolved` when a poll no longer finds it (or, for an incident, once an operator
//! acknowledged it); the gauge `cairn_monitor_alerts_active{kind,origin}` follows it, and
//! incidents stay active across a restart. The reminder interval is bounded.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use cairn_monitor::alert::AlertKind;
use cairn_monitor::daemon::{Config, Monitor};
use cairn_monitor::follow::GossipOutcome;
use cairn_monitor::state::StateStore;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::Hash;
use common::{config, leaf, leaves, serve, start, Shared, View, ORIGIN};
use serde_json::Value;

type Received = Arc<Mutex<Vec<Value>>>;

async fn receive(State(received): State<Received>, axum::Json(notice): axum::Json<Value>) {
    received.lock().expect("lock").push(notice);
}

/// A webhook receiver on loopback; its URL and what it received.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let url = serve(
        Router::new()
            .route("/hook", post(receive))
            .with_state(received.clone()),
    )
    .await;
    (format!("{url}/hook"), received)
}

/// The notices received for `kind`, as their `state`s in order.
fn notices(received: &Received, kind: &str) -> Vec<String> {
    received
        .lock()
        .expect("lock")
        .iter()
        .filter(|notice| notice["kind"] == kind)
        .map(|notice| notice["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn gauge(monitor: &Monitor, kind: &str) -> Option<u64> {
    let name = format!("cairn_monitor_alerts_active{{kind=\"{kind}\",origin=\"{ORIGIN}\"}} ");
    monitor
        .alerter
        .metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&name)?.parse().ok())
}

fn forged_checkpoint(size: u64) -> Vec<u8> {
    let other = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [3; 32]);
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

fn settings(url: &str, dir: &std::path::Path, webhook: &str) -> Config {
    let mut settings = config(url, dir);
    settings.webhook = Some(webhook.to_owned());
    settings.alert_reminder_secs = 1;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_raised_once_reminded_while_it_lasts_and_resolved_when_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (webhook, received) = receiver().await;
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(300, "honest"));
    let monitor = Monitor::new(&settings(&url, dir.path(), &webhook)).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_eq!(gauge(&monitor, "bad-signature"), None);

    // The log serves a checkpoint its key did not sign, poll after poll.
    log.lock().expect("lock").client.checkpoint = forged_checkpoint(300);
    monitor.poll_once().await.expect("polls");
    assert_eq!(notices(&received, "bad-signature"), ["raised"]);
    assert_eq!(gauge(&monitor, "bad-signature"), Some(1));
    // Two polls, each twice the reminder interval after the one before: a reminder at each,
    // and at most one a poll (the poll that raised it may have sent one if it was slow).
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(2000)).await;
        monitor.poll_once().await.expect("polls");
    }
    let seen = notices(&received, "bad-signature");
    assert_eq!(seen[0], "raised");
    assert!(
        (3..=4).contains(&seen.len()) && seen[1..].iter().all(|state| state == "reminder"),
        "{seen:?}"
    );
    assert_eq!(gauge(&monitor, "bad-signature"), Some(1));
    assert_eq!(monitor.alerter.raised().len(), 1, "raised once");

    // The log serves its genuine checkpoint again: resolved, once.
    log.lock().expect("lock").client = View::of(leaves(300, "honest"));
    monitor.poll_once().await.expect("polls");
    monitor.poll_once().await.expect("polls");
    let seen = notices(&received, "bad-signature");
    assert_eq!(
        seen.last().map(String::as_str),
        Some("resolved"),
        "{seen:?}"
    );
    assert_eq!(seen.iter().filter(|state| *state == "resolved").count(), 1);
    assert_eq!(gauge(&monitor, "bad-signature"), Some(0));
    let resolved = received
        .lock()
        .expect("lock")
        .iter()
        .rfind(|notice| notice["kind"] == "bad-signature")
        .cloned()
        .expect("a notice");
    assert_eq!(resolved["origin"], ORIGIN);
    assert!(resolved["active_since"].as_u64().is_some(), "{resolved}");
    assert_eq!(resolved["resolution"], "no longer found", "{resolved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_stays_active_across_a_restart_until_it_is_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (webhook, received) = receiver().await;
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(600, "honest"));
    let settings = settings(&url, dir.path(), &webhook);
    let monitor = Monitor::new(&settings).expect("monitor");
    monitor.poll_once().await.expect("polls");
    let mut other = leaves(600, "honest");
    other[7] = leaf(7, "shown to a producer");
    let fork = View::of(other).checkpoint;
    assert_eq!(
        monitor.gossip(&fork, "upload").await,
        Some(GossipOutcome::SplitView)
    );
    // The same fork shown again is the same incident: no new notice, no new evidence.
    assert_eq!(
        monitor.gossip(&fork, "upload").await,
        Some(GossipOutcome::SplitView)
    );
    assert_eq!(notices(&received, "split-view"), ["raised"]);
    let raised = received.lock().expect("lock")[0].clone();
    assert_eq!(raised["incident"], 1, "{raised}");
    assert_eq!(gauge(&monitor, "split-view"), Some(1));
    // The log's own view stays honest, yet the incident stays active, poll after poll.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    monitor.poll_once().await.expect("polls");
    assert_eq!(notices(&received, "split-view"), ["raised", "reminder"]);
    drop(monitor);

    // A restart: the incident is active again at the first poll, without a new raise.
    let monitor = common::reopen(&settings).await;
    monitor.poll_once().await.expect("polls");
    assert_eq!(gauge(&monitor, "split-view"), Some(1));
    assert_eq!(monitor.alerter.raised(), Vec::new());
    let active = monitor.alerter.active(Some(ORIGIN));
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].alert.kind, AlertKind::SplitView);
    assert_eq!(active[0].alert.incident, Some(1));
    let evidence = active[0].alert.evidence.clone().expect("its evidence");
    assert!(common::cli_accepts(&evidence));

    // Acknowledged beside the running monitor: resolved at its next poll, evidence kept.
    StateStore::open_beside(&settings.state_dir)
        .expect("opens beside the monitor")
        .acknowledge(1, "alice", "fork shown by a test key", 1_800_000_000)
        .expect("acknowledges");
    monitor.poll_once().await.expect("polls");
    assert_eq!(gauge(&monitor, "split-view"), Some(0));
    let last = received
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("a notice");
    assert_eq!(last["state"], "resolved", "{last}");
    assert_eq!(
        last["resolution"], "acknowledged by alice: fork shown by a test key",
        "{last}"
    );
    assert!(common::cli_accepts(&evidence));
    // Shown once more, the acknowledged fork is not raised again.
    assert_eq!(
        monitor.gossip(&fork, "upload").await,
        Some(GossipOutcome::SplitView)
    );
    assert_eq!(gauge(&monitor, "split-view"), Some(0));
    assert_eq!(
        std::fs::read_dir(&settings.evidence_dir)
            .expect("evidence dir")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reminder_interval_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (seconds, accepted) in [(0, false), (1, true), (86_400, true), (86_401, false)] {
        let mut settings = config("http://127.0.0.1:9", &dir.path().join(seconds.to_string()));
        settings.alert_reminder_secs = seconds;
        let opened = Monitor::new(&settings);
        assert_eq!(opened.is_ok(), accepted, "alert_reminder_secs = {seconds}");
        if let Err(error) = opened {
            assert!(error.to_string().contains("alert_reminder_secs"), "{error}");
        }
    }
    // The default, from a file that does not name it: an hour.
    let text = format!(
        "state_dir = {:?}\nevidence_dir = {:?}\n",
        dir.path().join("s"),
        dir.path().join("e")
    );
    assert_eq!(
        Config::from_toml(&text)
            .expect("parses")
            .alert_reminder_secs,
        3600
    );
}
