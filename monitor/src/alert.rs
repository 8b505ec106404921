//! Alerts: what the monitor raises when a log misbehaves, and where it sends them: an error-level
//! log line, a counter in /metrics, and a webhook POST of JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// Two validly signed checkpoints of one origin cannot both be true.
    SplitView,
    /// The log's checkpoint does not carry a valid signature by its key.
    BadSignature,
    /// The log's tiles or entries do not give the root it signed.
    RootMismatch,
    /// A full tile changed after it was verified.
    RewrittenTile,
    /// Tiles or entry bundles that do not decode, entries that do not hash to their tile's
    /// leaf hashes, or (in an event log) leaves that are not valid Cairn audit events.
    CorruptData,
    /// The log's checkpoint is smaller than one it served before.
    CheckpointGoingBack,
    /// The checkpoint did not grow within the configured time.
    StaleLog,
    /// The checkpoint's cosignatures do not satisfy the witness policy.
    WitnessPolicyUnmet,
}

impl AlertKind {
    /// The kebab-case name used in JSON and metrics.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::SplitView => "split-view",
            AlertKind::BadSignature => "bad-signature",
            AlertKind::RootMismatch => "root-mismatch",
            AlertKind::RewrittenTile => "rewritten-tile",
            AlertKind::CorruptData => "corrupt-data",
            AlertKind::CheckpointGoingBack => "checkpoint-going-back",
            AlertKind::StaleLog => "stale-log",
            AlertKind::WitnessPolicyUnmet => "witness-policy-unmet",
        }
    }
}

/// One alert, as posted to the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// What went wrong.
    pub kind: AlertKind,
    /// The log.
    pub origin: String,
    /// A human-readable account.
    pub detail: String,
    /// Where the evidence file was written, if there is one.
    pub evidence: Option<PathBuf>,
}

/// Counters shown in /metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// Adds `by` to a counter (Prometheus name with labels).
    pub fn add(&self, name: &str, by: u64) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *counters.entry(name.to_owned()).or_default() += by;
    }

    /// Sets a gauge.
    pub fn set(&self, name: &str, value: u64) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        counters.insert(name.to_owned(), value);
    }

    /// A counter's value (0 if never touched).
    pub fn get(&self, name: &str) -> u64 {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        counters.get(name).copied().unwrap_or(0)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        counters
            .iter()
            .map(|(name, value)| format!("{name} {value}\n"))
            .collect()
    }
}

/// Where alerts go.
#[derive(Debug)]
pub struct Alerter {
    /// The webhook URL, if any.
    pub webhook: Option<String>,
    client: reqwest::Client,
    /// The counters.
    pub metrics: std::sync::Arc<Metrics>,
    raised: Mutex<Vec<Alert>>,
}

impl Alerter {
    /// An alerter posting to `webhook` (if given) with `client`.
    pub fn new(
        webhook: Option<String>,
        client: reqwest::Client,
        metrics: std::sync::Arc<Metrics>,
    ) -> Alerter {
        Alerter {
            webhook,
            client,
            metrics,
            raised: Mutex::new(Vec::new()),
        }
    }

    /// Raises an alert everywhere it goes.
    pub async fn raise(&self, alert: Alert) {
        tracing::error!(
            kind = alert.kind.name(),
            origin = %alert.origin,
            evidence = ?alert.evidence,
            "{}",
            alert.detail
        );
        self.metrics.add(
            &format!(
                "cairn_monitor_alerts_total{{kind=\"{}\",origin=\"{}\"}}",
                alert.kind.name(),
                alert.origin
            ),
            1,
        );
        if let Some(webhook) = &self.webhook {
            let body = serde_json::to_vec(&alert).expect("alerts serialise");
            let sent = self
                .client
                .post(webhook)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            if let Err(error) = sent {
                tracing::warn!(%error, "webhook POST failed");
                self.metrics.add("cairn_monitor_webhook_failures_total", 1);
            }
        }
        self.raised
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(alert);
    }

    /// Every alert raised so far.
    pub fn raised(&self) -> Vec<Alert> {
        self.raised
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}
