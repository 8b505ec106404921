//! `GET /status` over real loopback HTTP: each poll's verdict on each log, and its active
//! alerts, readable from any origin (CORS), nothing secret in it.

mod common;

use std::sync::Arc;

use cairn_monitor::daemon::Monitor;
use common::{config, leaves, serve, start, Shared, View, ORIGIN};
use serde_json::Value;

async fn status(client: &reqwest::Client, port: &str) -> (Option<String>, Value) {
    let response = client
        .get(format!("{port}/status"))
        .header("origin", "http://ui.example")
        .send()
        .await
        .expect("gets");
    assert_eq!(response.status().as_u16(), 200);
    let cors = response
        .headers()
        .get("access-control-allow-origin")
        .map(|value| value.to_str().expect("ASCII").to_string());
    let body = response.bytes().await.expect("body");
    (cors, serde_json::from_slice(&body).expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_polls_verdict_and_the_active_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(300, "honest"));
    let monitor = Arc::new(Monitor::new(&config(&url, dir.path())).expect("monitor"));
    let port = serve(monitor.router()).await;
    let client = reqwest::Client::new();

    // Before any poll: no log yet.
    let (cors, before) = status(&client, &port).await;
    assert_eq!(cors.as_deref(), Some("*"));
    assert_eq!(before["format"], "cairn.monitor-status/v1");
    assert_eq!(before["logs"], Value::Array(Vec::new()));

    monitor.poll_once().await.expect("polls");
    log.lock().expect("lock").client = View::of(leaves(500, "honest"));
    monitor.poll_once().await.expect("polls");
    // A fork shown to someone: a split view, active until acknowledged.
    let mut other = leaves(400, "honest");
    other[10] = common::leaf(10, "shown to a producer");
    let posted = client
        .post(format!("{port}/gossip"))
        .body(View::of(other).checkpoint)
        .send()
        .await
        .expect("posts");
    assert_eq!(posted.status().as_u16(), 409);
    monitor.poll_once().await.expect("polls");

    let (_, after) = status(&client, &port).await;
    let shown = &after["logs"][0];
    assert_eq!(shown["origin"], ORIGIN);
    let verdicts: Vec<(&str, Option<u64>)> = shown["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|verdict| {
            (
                verdict["verdict"].as_str().expect("a verdict"),
                verdict["size"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("verified", Some(300)),
            ("verified", Some(500)),
            ("alert", Some(500))
        ]
    );
    assert_eq!(shown["last_verified"]["size"], 500);
    assert_eq!(shown["alerts"][0]["kind"], "split-view");
    assert!(shown["alerts"][0]["incident"].is_i64());
    // The evidence file's path (the monitor's disk) is not shown.
    let text = after.to_string();
    assert!(
        !text.contains(dir.path().to_str().expect("UTF-8")),
        "{text}"
    );

    // Read-only: no other method.
    let refused = client
        .post(format!("{port}/status"))
        .send()
        .await
        .expect("posts");
    assert_eq!(refused.status().as_u16(), 405);
}
