//! `GET /metrics` over real loopback HTTP: the exposition a strict scraper accepts
//! ([`cairn_edge::metrics::parse`]), with every family spec/docs/monitor-api.md names, of its
//! type, and the figures of a poll and a refused upload in it.

mod common;

use std::sync::Arc;

use cairn_edge::metrics::{parse, ParsedFamily};
use cairn_monitor::daemon::Monitor;
use common::{config, leaves, serve, start, Shared, View, ORIGIN};

/// Every family of the monitor's /metrics, with its type, in the order they are written.
const FAMILIES: [(&str, &str); 10] = [
    ("cairn_monitor_verified_size", "gauge"),
    ("cairn_monitor_alerts_active", "gauge"),
    ("cairn_monitor_alerts_total", "counter"),
    ("cairn_monitor_alert_reminders_total", "counter"),
    ("cairn_monitor_alerts_resolved_total", "counter"),
    ("cairn_monitor_webhook_failures_total", "counter"),
    ("cairn_monitor_bad_input_total", "counter"),
    ("cairn_monitor_fetch_errors_total", "counter"),
    ("cairn_monitor_store_errors_total", "counter"),
    ("cairn_monitor_gossip_checked_total", "counter"),
];

/// The value of the sample of `family` with exactly `labels`.
fn value(families: &[ParsedFamily], family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .iter()
        .find(|found| found.name == family)?
        .samples
        .iter()
        .find(|sample| {
            sample.labels.len() == labels.len()
                && sample
                    .labels
                    .iter()
                    .zip(labels)
                    .all(|((key, value), (want_key, want_value))| {
                        key == want_key && value == want_value
                    })
        })
        .map(|sample| sample.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_has_every_documented_family_of_its_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(300, "honest"));
    let monitor = Arc::new(Monitor::new(&config(&url, dir.path())).expect("monitor"));
    monitor.poll_once().await.expect("polls");
    let port = serve(monitor.router()).await;
    let client = reqwest::Client::new();
    let refused = client
        .post(format!("{port}/gossip"))
        .body(b"garbage\n".to_vec())
        .send()
        .await
        .expect("posts");
    assert_eq!(refused.status().as_u16(), 404);

    let response = client
        .get(format!("{port}/metrics"))
        .send()
        .await
        .expect("gets");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().expect("ASCII")),
        Some(cairn_edge::metrics::CONTENT_TYPE)
    );
    let text = response.text().await.expect("text");
    let families = parse(&text).unwrap_or_else(|why| panic!("{why}\n{text}"));
    let found: Vec<(&str, &str)> = families
        .iter()
        .map(|family| (family.name.as_str(), family.kind.as_str()))
        .collect();
    assert_eq!(found, FAMILIES, "{text}");
    assert!(
        families.iter().all(|family| !family.help.is_empty()),
        "{text}"
    );

    let documented = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../spec/docs/monitor-api.md"
    ))
    .expect("spec/docs/monitor-api.md");
    for (name, _) in FAMILIES {
        assert!(
            documented.contains(&format!("`{name}")),
            "{name} is not in monitor-api.md"
        );
    }

    assert_eq!(
        value(
            &families,
            "cairn_monitor_verified_size",
            &[("origin", ORIGIN)]
        ),
        Some(300.0),
        "{text}"
    );
    assert_eq!(
        value(
            &families,
            "cairn_monitor_bad_input_total",
            &[("source", "upload")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&families, "cairn_monitor_webhook_failures_total", &[]),
        Some(0.0),
        "{text}"
    );
}
