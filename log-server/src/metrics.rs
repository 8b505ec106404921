//! The log's metrics, rendered in the Prometheus text exposition format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::health::Readiness;
use crate::sequencer::{CommitFigures, BATCH_SIZE_BOUNDS, WRITE_SECONDS_BOUNDS};

/// Upper bounds, in seconds, of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(self.buckets.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {bucket}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Counters and gauges of one log server.
pub struct Metrics {
    started: Instant,
    /// Latency by route, then status: looked up by `&str`, so a request allocates nothing.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, Histogram>>>,
    witnesses: Mutex<BTreeMap<String, (u64, u64, Histogram)>>,
    tree_size: AtomicU64,
    published_size: AtomicU64,
    published_at_ms: AtomicU64,
    /// Durable entries the bucket's checkpoint does not cover (the scaled backend only;
    /// `u64::MAX` until measured).
    publication_lag: AtomicU64,
    /// Leaves accepted (new or duplicate) through the API.
    pub leaves_added: AtomicU64,
    /// Rounds in which the witness quorum was not met.
    pub publication_failures: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            started: Instant::now(),
            requests: Mutex::new(BTreeMap::new()),
            witnesses: Mutex::new(BTreeMap::new()),
            tree_size: AtomicU64::new(0),
            published_size: AtomicU64::new(0),
            published_at_ms: AtomicU64::new(0),
            publication_lag: AtomicU64::new(u64::MAX),
            leaves_added: AtomicU64::new(0),
            publication_failures: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Records one HTTP request.
    pub fn record_request(&self, route: &str, status: u16, elapsed: Duration) {
        let mut requests = self.requests.lock();
        let by_status = match requests.get_mut(route) {
            Some(by_status) => by_status,
            None => requests.entry(route.to_string()).or_default(),
        };
        by_status
            .entry(status)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// Records one attempt to get a witness's cosignature.
    pub fn record_witness(&self, witness: &str, ok: bool, elapsed: Duration) {
        let mut witnesses = self.witnesses.lock();
        let entry = witnesses.entry(witness.to_string()).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        entry.2.observe(elapsed.as_secs_f64());
    }

    /// Records how many durable entries the bucket's published checkpoint does not cover.
    pub fn set_publication_lag(&self, entries: u64) {
        self.publication_lag
            .store(entries.min(u64::MAX - 1), Ordering::Relaxed);
    }

    /// Records the size of the latest signed checkpoint.
    pub fn set_tree_size(&self, size: u64) {
        self.tree_size.store(size, Ordering::Relaxed);
    }

    /// Records a publication.
    pub fn set_published(&self, size: u64) {
        self.published_size.store(size, Ordering::Relaxed);
        let ms = self.started.elapsed().as_millis() as u64;
        self.published_at_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// The text exposition, with the sequencer's figures passed in.
    pub fn render(
        &self,
        queue_depth: usize,
        durable_size: u64,
        submitted: u64,
        commits: &CommitFigures,
        readiness: &Readiness,
    ) -> String {
        let mut out = String::new();
        render_commits(&mut out, commits);
        let _ = writeln!(
            out,
            "# HELP cairn_log_ready Whether the log is ready (1) or not (0), as /readyz says.\n\
             # TYPE cairn_log_ready gauge\ncairn_log_ready {}",
            u8::from(readiness.is_ready())
        );
        let _ = writeln!(
            out,
            "# HELP cairn_log_storage_errors_total Failed storage calls, by component.\n\
             # TYPE cairn_log_storage_errors_total counter"
        );
        for (component, errors) in readiness.storage_errors {
            let _ = writeln!(
                out,
                "cairn_log_storage_errors_total{{component=\"{component}\"}} {errors}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP cairn_log_signing_errors_total Failed checkpoint signatures (the key in its file or PKCS#11 token).\n\
             # TYPE cairn_log_signing_errors_total counter\ncairn_log_signing_errors_total {}",
            readiness.signing_errors
        );
        let gauge = |out: &mut String, name: &str, help: &str, value: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "cairn_log_queue_depth",
            "Leaves admitted and not yet durable.",
            queue_depth as f64,
        );
        gauge(
            &mut out,
            "cairn_log_durable_entries",
            "Durable entries.",
            durable_size as f64,
        );
        gauge(
            &mut out,
            "cairn_log_submitted_leaves_total",
            "Leaves submitted to the sequencer since start.",
            submitted as f64,
        );
        gauge(
            &mut out,
            "cairn_log_tree_size",
            "Size of the latest signed checkpoint.",
            self.tree_size.load(Ordering::Relaxed) as f64,
        );
        gauge(
            &mut out,
            "cairn_log_published_size",
            "Size of the latest published checkpoint.",
            self.published_size.load(Ordering::Relaxed) as f64,
        );
        let lag = self.publication_lag.load(Ordering::Relaxed);
        if lag != u64::MAX {
            gauge(
                &mut out,
                "cairn_log_publication_lag_entries",
                "Durable entries the checkpoint published in the bucket does not cover.",
                lag as f64,
            );
        }
        let published_at = self.published_at_ms.load(Ordering::Relaxed);
        let age = if published_at == 0 {
            -1.0
        } else {
            (self.started.elapsed().as_millis() as f64 - published_at as f64) / 1000.0
        };
        gauge(
            &mut out,
            "cairn_log_checkpoint_age_seconds",
            "Seconds since the latest publication (-1: none yet).",
            age,
        );
        gauge(
            &mut out,
            "cairn_log_publication_failures_total",
            "Rounds in which the witness quorum was not met.",
            self.publication_failures.load(Ordering::Relaxed) as f64,
        );
        let _ = writeln!(out, "# HELP cairn_log_request_seconds HTTP request latency by route and status.\n# TYPE cairn_log_request_seconds histogram");
        for (route, by_status) in self.requests.lock().iter() {
            for (status, histogram) in by_status {
                histogram.render(
                    &mut out,
                    "cairn_log_request_seconds",
                    &format!("route=\"{route}\",status=\"{status}\""),
                );
            }
        }
        let _ = writeln!(out, "# HELP cairn_log_witness_requests_total Cosigning attempts by witness and outcome.\n# TYPE cairn_log_witness_requests_total counter");
        let witnesses = self.witnesses.lock();
        for (name, (ok, failed, _)) in witnesses.iter() {
            let _ = writeln!(
                out,
                "cairn_log_witness_requests_total{{witness=\"{name}\",outcome=\"ok\"}} {ok}"
            );
            let _ = writeln!(out, "cairn_log_witness_requests_total{{witness=\"{name}\",outcome=\"failed\"}} {failed}");
        }
        let _ = writeln!(out, "# HELP cairn_log_witness_seconds Cosigning latency by witness.\n# TYPE cairn_log_witness_seconds histogram");
        for (name, (_, _, histogram)) in witnesses.iter() {
            histogram.render(
                &mut out,
                "cairn_log_witness_seconds",
                &format!("witness=\"{name}\""),
            );
        }
        out
    }
}

/// The group commit's histograms: entries per durable write, and how long each write (append and
/// fdatasync) took.
fn render_commits(out: &mut String, commits: &CommitFigures) {
    let _ = writeln!(
        out,
        "# HELP cairn_log_batch_entries Entries per durable write (group commit).\n\
         # TYPE cairn_log_batch_entries histogram"
    );
    for (bound, count) in BATCH_SIZE_BOUNDS.iter().zip(&commits.size_buckets) {
        let _ = writeln!(
            out,
            "cairn_log_batch_entries_bucket{{le=\"{bound}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "cairn_log_batch_entries_bucket{{le=\"+Inf\"}} {}\n\
         cairn_log_batch_entries_sum {}\ncairn_log_batch_entries_count {}",
        commits.batches, commits.entries, commits.batches
    );
    let _ = writeln!(
        out,
        "# HELP cairn_log_durable_write_seconds Time of one durable write (append and fdatasync).\n\
         # TYPE cairn_log_durable_write_seconds histogram"
    );
    for (bound, count) in WRITE_SECONDS_BOUNDS.iter().zip(&commits.write_buckets) {
        let _ = writeln!(
            out,
            "cairn_log_durable_write_seconds_bucket{{le=\"{bound}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "cairn_log_durable_write_seconds_bucket{{le=\"+Inf\"}} {}\n\
         cairn_log_durable_write_seconds_sum {}\ncairn_log_durable_write_seconds_count {}",
        commits.batches, commits.write_seconds, commits.batches
    );
}
