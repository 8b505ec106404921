//! The witness's counters for `GET /metrics`, and their exposition, written by the
//! `prometheus-client` crate (through [`cairn_edge::metrics`]) in the Prometheus text format
//! (version 0.0.4).
//!
//! A handful of labelled counters and one latency histogram per TSA: a mutex-guarded map per
//! family is enough at the request rates a witness sees.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cairn_edge::metrics::{Exposition, Labels};
use prometheus_client::metrics::histogram::Histogram;

use crate::health::Readiness;

/// Upper bounds (seconds) of the TSA latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Families {
    cosigned: BTreeMap<String, u64>,
    refusals: BTreeMap<&'static str, u64>,
    misbehaviour: BTreeMap<String, u64>,
    tsa_tokens: BTreeMap<String, u64>,
    tsa_failures: BTreeMap<(String, &'static str), u64>,
    tsa_given_up: BTreeMap<String, u64>,
    tsa_latency: BTreeMap<String, Histogram>,
    anchor_queue_full: u64,
    signing_errors: u64,
}

/// The witness's metrics.
#[derive(Default)]
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

    /// One checkpoint of `origin` cosigned.
    pub fn count_cosigned(&self, origin: &str) {
        self.with(|f| *f.cosigned.entry(origin.to_owned()).or_default() += 1);
    }

    /// One cosignature the witness's key failed to make.
    pub fn count_signing_error(&self) {
        self.with(|f| f.signing_errors += 1);
    }

    /// One add-checkpoint request refused, by reason.
    pub fn count_refusal(&self, reason: &'static str) {
        self.with(|f| *f.refusals.entry(reason).or_default() += 1);
    }

    /// One validly signed request of `origin` that proves or suggests misbehaviour.
    pub fn count_misbehaviour(&self, origin: &str) {
        self.with(|f| *f.misbehaviour.entry(origin.to_owned()).or_default() += 1);
    }

    /// One token obtained from `tsa` and verified, after `latency`.
    pub fn observe_tsa_success(&self, tsa: &str, latency: Duration) {
        self.with(|f| {
            *f.tsa_tokens.entry(tsa.to_owned()).or_default() += 1;
            f.tsa_latency
                .entry(tsa.to_owned())
                .or_insert_with(|| Histogram::new(LATENCY_BUCKETS))
                .observe(latency.as_secs_f64());
        });
    }

    /// One failed attempt at `tsa`, by kind (`transport`, `status`, `verify`, `store`).
    pub fn count_tsa_failure(&self, tsa: &str, kind: &'static str) {
        self.with(|f| *f.tsa_failures.entry((tsa.to_owned(), kind)).or_default() += 1);
    }

    /// A checkpoint for which `tsa` gave no token after every retry.
    pub fn count_tsa_given_up(&self, tsa: &str) {
        self.with(|f| *f.tsa_given_up.entry(tsa.to_owned()).or_default() += 1);
    }

    /// A checkpoint not anchored because the anchoring queue was full.
    pub fn count_anchor_queue_full(&self) {
        self.with(|f| f.anchor_queue_full += 1);
    }

    /// The failed attempts at `tsa` so far, all kinds.
    pub fn tsa_failures(&self, tsa: &str) -> u64 {
        self.with(|f| {
            f.tsa_failures
                .iter()
                .filter(|((name, _), _)| name == tsa)
                .map(|(_, count)| count)
                .sum()
        })
    }

    /// The Prometheus text exposition of every metric, with the witness's `readiness` now.
    pub fn render(&self, readiness: &Readiness) -> String {
        let mut out = Exposition::new();
        self.with(|f| {
            out.gauge(
                "cairn_witness_ready",
                "Whether the witness is ready (1) or not (0), as /readyz says.",
                i64::from(readiness.is_ready()),
            );
            out.counter(
                "cairn_witness_storage_errors_total",
                "Failed calls to the witness's storage.",
                readiness.storage_errors,
            );
            out.counter(
                "cairn_witness_signing_errors_total",
                "Cosignatures the witness's key failed to make (a key in a token removed or \
                 refusing).",
                f.signing_errors,
            );
            let labelled = [
                (
                    "cairn_witness_cosigned_total",
                    "Checkpoints cosigned, by log origin.",
                    by("origin", &f.cosigned),
                ),
                (
                    "cairn_witness_refusals_total",
                    "add-checkpoint requests refused, by reason.",
                    by("reason", &f.refusals),
                ),
                (
                    "cairn_witness_log_misbehaviour_total",
                    "Validly signed requests that contradict a cosigned checkpoint (forks, bad \
                     proofs), kept as evidence.",
                    by("origin", &f.misbehaviour),
                ),
                (
                    "cairn_witness_tsa_tokens_total",
                    "Timestamp tokens obtained and verified, by TSA.",
                    by("tsa", &f.tsa_tokens),
                ),
                (
                    "cairn_witness_tsa_failures_total",
                    "Failed timestamp attempts, by TSA and kind.",
                    f.tsa_failures
                        .iter()
                        .map(|((tsa, kind), count)| {
                            (
                                vec![("tsa", tsa.clone()), ("kind", kind.to_string())],
                                *count,
                            )
                        })
                        .collect(),
                ),
                (
                    "cairn_witness_tsa_given_up_total",
                    "Checkpoints left without a token from a TSA after every retry.",
                    by("tsa", &f.tsa_given_up),
                ),
            ];
            for (name, help, series) in labelled {
                out.counters(name, help, series);
            }
            out.counter(
                "cairn_witness_anchor_queue_full_total",
                "Checkpoints not anchored because the anchoring queue was full.",
                f.anchor_queue_full,
            );
            out.family(
                "cairn_witness_tsa_latency_seconds",
                "Time to obtain and verify a token, by TSA.",
                by("tsa", &f.tsa_latency),
            );
        });
        out.encode()
    }
}

/// One series per key of `values`, labelled `label="<key>"`.
fn by<K: ToString, V: Clone>(label: &'static str, values: &BTreeMap<K, V>) -> Vec<(Labels, V)> {
    values
        .iter()
        .map(|(key, value)| (vec![(label, key.to_string())], value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters_and_escapes_label_values() {
        let metrics = Metrics::default();
        metrics.count_cosigned("example.com/\"log\"");
        metrics.count_cosigned("example.com/\"log\"");
        metrics.count_refusal("fork");
        metrics.observe_tsa_success("tsa", Duration::from_millis(20));
        let text = metrics.render(&Readiness {
            problems: vec!["storage refuses writes: disk full".into()],
            storage_errors: 3,
        });
        assert!(text.contains("\ncairn_witness_ready 0\n"), "{text}");
        assert!(
            text.contains("\ncairn_witness_storage_errors_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("cairn_witness_cosigned_total{origin=\"example.com/\\\"log\\\"\"} 2\n")
        );
        assert!(text.contains("cairn_witness_refusals_total{reason=\"fork\"} 1\n"));
        assert!(
            text.contains("cairn_witness_tsa_latency_seconds_bucket{tsa=\"tsa\",le=\"0.025\"} 1\n")
        );
        assert!(
            text.contains("cairn_witness_tsa_latency_seconds_bucket{tsa=\"tsa\",le=\"0.01\"} 0\n")
        );
    }
}
