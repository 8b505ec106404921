//! The witness's counters, rendered in the Prometheus text exposition format (version 0.0.4)
//! for `GET /metrics`.
//!
//! A handful of labelled counters and one latency histogram per TSA do not justify a metrics
//! framework: a mutex-guarded map per family is enough at the request rates a witness sees.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::health::Readiness;

/// Upper bounds (seconds) of the TSA latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    bucket_counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

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
            let histogram = f.tsa_latency.entry(tsa.to_owned()).or_default();
            let seconds = latency.as_secs_f64();
            for (bound, count) in LATENCY_BUCKETS.iter().zip(&mut histogram.bucket_counts) {
                if seconds <= *bound {
                    *count += 1;
                }
            }
            histogram.count += 1;
            histogram.sum_seconds += seconds;
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
        self.with(|f| {
            let mut out = String::new();
            let _ = writeln!(out, "# HELP cairn_witness_ready Whether the witness is ready (1) or not (0), as /readyz says.");
            let _ = writeln!(out, "# TYPE cairn_witness_ready gauge");
            let _ = writeln!(out, "cairn_witness_ready {}", u8::from(readiness.is_ready()));
            family(&mut out, "cairn_witness_storage_errors_total", "Failed calls to the witness's storage.");
            sample(&mut out, "cairn_witness_storage_errors_total", &[], readiness.storage_errors);
            family(&mut out, "cairn_witness_signing_errors_total", "Cosignatures the witness's key failed to make (a key in a token removed or refusing).");
            sample(&mut out, "cairn_witness_signing_errors_total", &[], f.signing_errors);
            family(&mut out, "cairn_witness_cosigned_total", "Checkpoints cosigned, by log origin.");
            for (origin, count) in &f.cosigned {
                sample(&mut out, "cairn_witness_cosigned_total", &[("origin", origin)], *count);
            }
            family(&mut out, "cairn_witness_refusals_total", "add-checkpoint requests refused, by reason.");
            for (reason, count) in &f.refusals {
                sample(&mut out, "cairn_witness_refusals_total", &[("reason", reason)], *count);
            }
            family(&mut out, "cairn_witness_log_misbehaviour_total", "Validly signed requests that contradict a cosigned checkpoint (forks, bad proofs), kept as evidence.");
            for (origin, count) in &f.misbehaviour {
                sample(&mut out, "cairn_witness_log_misbehaviour_total", &[("origin", origin)], *count);
            }
            family(&mut out, "cairn_witness_tsa_tokens_total", "Timestamp tokens obtained and verified, by TSA.");
            for (tsa, count) in &f.tsa_tokens {
                sample(&mut out, "cairn_witness_tsa_tokens_total", &[("tsa", tsa)], *count);
            }
            family(&mut out, "cairn_witness_tsa_failures_total", "Failed timestamp attempts, by TSA and kind.");
            for ((tsa, kind), count) in &f.tsa_failures {
                sample(&mut out, "cairn_witness_tsa_failures_total", &[("tsa", tsa), ("kind", kind)], *count);
            }
            family(&mut out, "cairn_witness_tsa_given_up_total", "Checkpoints left without a token from a TSA after every retry.");
            for (tsa, count) in &f.tsa_given_up {
                sample(&mut out, "cairn_witness_tsa_given_up_total", &[("tsa", tsa)], *count);
            }
            family(&mut out, "cairn_witness_anchor_queue_full_total", "Checkpoints not anchored because the anchoring queue was full.");
            sample(&mut out, "cairn_witness_anchor_queue_full_total", &[], f.anchor_queue_full);
            let _ = writeln!(out, "# HELP cairn_witness_tsa_latency_seconds Time to obtain and verify a token, by TSA.");
            let _ = writeln!(out, "# TYPE cairn_witness_tsa_latency_seconds histogram");
            for (tsa, histogram) in &f.tsa_latency {
                let tsa = escape(tsa);
                for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.bucket_counts) {
                    let _ = writeln!(out, "cairn_witness_tsa_latency_seconds_bucket{{tsa=\"{tsa}\",le=\"{bound}\"}} {count}");
                }
                let _ = writeln!(out, "cairn_witness_tsa_latency_seconds_bucket{{tsa=\"{tsa}\",le=\"+Inf\"}} {}", histogram.count);
                let _ = writeln!(out, "cairn_witness_tsa_latency_seconds_sum{{tsa=\"{tsa}\"}} {}", histogram.sum_seconds);
                let _ = writeln!(out, "cairn_witness_tsa_latency_seconds_count{{tsa=\"{tsa}\"}} {}", histogram.count);
            }
            out
        })
    }
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    let labels: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
        .collect();
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// Label values escape backslash, double quote and newline (exposition format 0.0.4).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
