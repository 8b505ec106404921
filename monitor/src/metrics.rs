//! The monitor's figures for `GET /metrics`, and their exposition, written by the
//! `prometheus-client` crate (through [`cairn_edge::metrics`]) in the Prometheus text format
//! (version 0.0.4), as cairn-log's and cairn-witness's are.
//!
//! Each family is a map under one mutex, keyed by its labels: the monitor updates them a few
//! times a poll, so a lock is cheap enough. Every family is written at each scrape, with its
//! `# HELP` and `# TYPE` lines even before its first series, in the order spec/docs/monitor-api.md
//! lists them. The number of series is bounded by the configuration: an `origin` label is only
//! ever a followed log's origin, a `kind` one of the alert kinds, a `source` one of the four
//! input sources.
//!
//! This module depends on nothing else of the crate, so that every module may count in it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use cairn_edge::metrics::{Exposition, Labels};
use prometheus_client::metrics::gauge::ConstGauge;

/// An alert kind's name (`split-view`...) and a log origin.
type KindOrigin = (&'static str, String);

/// The series of every family.
#[derive(Debug, Default)]
struct Families {
    verified_size: BTreeMap<String, u64>,
    alerts_active: BTreeMap<KindOrigin, u64>,
    alerts: BTreeMap<KindOrigin, u64>,
    reminders: BTreeMap<KindOrigin, u64>,
    resolved: BTreeMap<KindOrigin, u64>,
    webhook_failures: u64,
    /// By source, and the origin when the input named a followed log.
    bad_input: BTreeMap<(String, Option<String>), u64>,
    /// By origin; without one for a peer's gossip.
    fetch_errors: BTreeMap<Option<String>, u64>,
    store_errors: BTreeMap<String, u64>,
    gossip_checked: u64,
}

/// The monitor's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

impl Metrics {
    fn with<R>(&self, update: impl FnOnce(&mut Families) -> R) -> R {
        let mut families = self
            .families
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        update(&mut families)
    }

    /// The tree size verified last of `origin`.
    pub fn set_verified_size(&self, origin: &str, size: u64) {
        self.with(|f| f.verified_size.insert(origin.to_owned(), size));
    }

    /// How many alerts of `kind` (its name) are active now for `origin`.
    pub fn set_alerts_active(&self, kind: &'static str, origin: &str, count: u64) {
        self.with(|f| f.alerts_active.insert((kind, origin.to_owned()), count));
    }

    /// One alert of `kind` raised for `origin`.
    pub fn count_alert(&self, kind: &'static str, origin: &str) {
        self.with(|f| *f.alerts.entry((kind, origin.to_owned())).or_default() += 1);
    }

    /// One reminder of an alert of `kind` still active for `origin`.
    pub fn count_reminder(&self, kind: &'static str, origin: &str) {
        self.with(|f| *f.reminders.entry((kind, origin.to_owned())).or_default() += 1);
    }

    /// One alert of `kind` of `origin` resolved.
    pub fn count_resolved(&self, kind: &'static str, origin: &str) {
        self.with(|f| *f.resolved.entry((kind, origin.to_owned())).or_default() += 1);
    }

    /// One notice the webhook did not take.
    pub fn count_webhook_failure(&self) {
        self.with(|f| f.webhook_failures += 1);
    }

    /// One input refused from `source` (`log`, `witness`, `peer`, `upload`), of `origin` when
    /// it named a log the monitor follows.
    pub fn count_bad_input(&self, source: &str, origin: Option<&str>) {
        self.with(|f| {
            *f.bad_input
                .entry((source.to_owned(), origin.map(str::to_owned)))
                .or_default() += 1;
        });
    }

    /// One failed fetch for the log `origin`, or of a peer's gossip (`None`).
    pub fn count_fetch_error(&self, origin: Option<&str>) {
        self.with(|f| *f.fetch_errors.entry(origin.map(str::to_owned)).or_default() += 1);
    }

    /// One failed read or write of the monitor's state for `origin`.
    pub fn count_store_error(&self, origin: &str) {
        self.with(|f| *f.store_errors.entry(origin.to_owned()).or_default() += 1);
    }

    /// One gossiped checkpoint opened with a followed log's key and checked.
    pub fn count_gossip_checked(&self) {
        self.with(|f| f.gossip_checked += 1);
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = Exposition::new();
        self.with(|f| {
            out.family(
                "cairn_monitor_verified_size",
                "The tree size last verified, by log origin.",
                f.verified_size
                    .iter()
                    .map(|(origin, size)| (origin_label(origin), const_gauge(*size)))
                    .collect(),
            );
            out.family(
                "cairn_monitor_alerts_active",
                "Alerts active now, by kind and log origin (0 once resolved; an incident stays \
                 active until acknowledged).",
                f.alerts_active
                    .iter()
                    .map(|(key, count)| (kind_origin(key), const_gauge(*count)))
                    .collect(),
            );
            for (name, help, series) in [
                (
                    "cairn_monitor_alerts_total",
                    "Alerts raised, by kind and log origin.",
                    &f.alerts,
                ),
                (
                    "cairn_monitor_alert_reminders_total",
                    "Reminders of alerts still active, by kind and log origin.",
                    &f.reminders,
                ),
                (
                    "cairn_monitor_alerts_resolved_total",
                    "Alerts resolved, by kind and log origin.",
                    &f.resolved,
                ),
            ] {
                let series = series
                    .iter()
                    .map(|(key, count)| (kind_origin(key), *count))
                    .collect();
                out.counters(name, help, series);
            }
            out.counter(
                "cairn_monitor_webhook_failures_total",
                "Alert notices the webhook did not take (no answer, or not 2xx).",
                f.webhook_failures,
            );
            out.counters(
                "cairn_monitor_bad_input_total",
                "Input refused (malformed, oversized, or not signed by the log's key), by source \
                 (log, witness, peer, upload) and, when it named a followed log, its origin.",
                f.bad_input
                    .iter()
                    .map(|((source, origin), count)| {
                        let mut labels = vec![("source", source.clone())];
                        labels.extend(origin.iter().map(|origin| ("origin", origin.clone())));
                        (labels, *count)
                    })
                    .collect(),
            );
            out.counters(
                "cairn_monitor_fetch_errors_total",
                "Failed fetches, retried at the next poll, by log origin (none for a peer's \
                 gossip).",
                f.fetch_errors
                    .iter()
                    .map(|(origin, count)| {
                        (
                            origin.as_deref().map(origin_label).unwrap_or_default(),
                            *count,
                        )
                    })
                    .collect(),
            );
            out.counters(
                "cairn_monitor_store_errors_total",
                "Failed reads or writes of the monitor's state, by log origin.",
                f.store_errors
                    .iter()
                    .map(|(origin, count)| (origin_label(origin), *count))
                    .collect(),
            );
            out.counter(
                "cairn_monitor_gossip_checked_total",
                "Gossiped checkpoints signed by a followed log's key, checked against its \
                 verified tree.",
                f.gossip_checked,
            );
        });
        out.encode()
    }
}

/// A gauge holding `value` at the scrape.
fn const_gauge(value: u64) -> ConstGauge<u64> {
    ConstGauge::new(value)
}

fn origin_label(origin: &str) -> Labels {
    vec![("origin", origin.to_owned())]
}

fn kind_origin((kind, origin): &KindOrigin) -> Labels {
    vec![("kind", (*kind).to_owned()), ("origin", origin.clone())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_each_series_with_its_labels_escaped() {
        let metrics = Metrics::default();
        metrics.set_verified_size("example.com/\"log\"", 7);
        metrics.set_alerts_active("split-view", "a", 1);
        metrics.count_alert("split-view", "a");
        metrics.count_bad_input("peer", None);
        metrics.count_bad_input("peer", Some("a"));
        metrics.count_bad_input("peer", Some("a"));
        metrics.count_fetch_error(None);
        metrics.count_gossip_checked();
        let text = metrics.render();
        // Every family, its order and type, is checked on the real port (tests/metrics.rs).
        cairn_edge::metrics::parse(&text).expect("a valid exposition");
        for line in [
            "cairn_monitor_verified_size{origin=\"example.com/\\\"log\\\"\"} 7\n",
            "cairn_monitor_alerts_active{kind=\"split-view\",origin=\"a\"} 1\n",
            "cairn_monitor_alerts_total{kind=\"split-view\",origin=\"a\"} 1\n",
            "cairn_monitor_bad_input_total{source=\"peer\"} 1\n",
            "cairn_monitor_bad_input_total{source=\"peer\",origin=\"a\"} 2\n",
            "\ncairn_monitor_fetch_errors_total 1\n",
            "\ncairn_monitor_gossip_checked_total 1\n",
            "\ncairn_monitor_webhook_failures_total 0\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from {text}");
        }
    }
}
