//! The log's metrics for `GET /metrics`: the figures the log keeps between scrapes, and their
//! exposition, written by the `prometheus-client` crate (through [`cairn_edge::metrics`]) in the
//! Prometheus text format (version 0.0.4).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_edge::metrics::{Exposition, Labels};
use parking_lot::Mutex;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};

use crate::sequencer::{CommitFigures, BATCH_SIZE_BOUNDS, WRITE_SECONDS_BOUNDS};
use crate::status::Readiness;

/// Upper bounds, in seconds, of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// A latency histogram with [`LATENCY_BUCKETS`].
fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// One witness's cosigning attempts.
struct WitnessFigures {
    ok: u64,
    failed: u64,
    seconds: Histogram,
}

/// Counters and gauges of one log server.
pub struct Metrics {
    started: Instant,
    /// Latency by route, then status: looked up by `&str`, so a request allocates nothing.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, Histogram>>>,
    witnesses: Mutex<BTreeMap<String, WitnessFigures>>,
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
    /// Payload retention runs finished (whatever they erased, or if they failed).
    pub retention_runs: Arc<AtomicU64>,
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
            retention_runs: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// What the sequencer and the health checks say at the time of a scrape.
pub struct ScrapeFigures<'a> {
    /// Leaves admitted and not yet durable.
    pub queue_depth: usize,
    /// Durable entries.
    pub durable_size: u64,
    /// Leaves submitted to the sequencer since start.
    pub submitted: u64,
    /// The group commit's figures.
    pub commits: &'a CommitFigures,
    /// The log's readiness.
    pub readiness: &'a Readiness,
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
            .or_insert_with(latency_histogram)
            .observe(elapsed.as_secs_f64());
    }

    /// Records one attempt to get a witness's cosignature.
    pub fn record_witness(&self, witness: &str, ok: bool, elapsed: Duration) {
        let mut witnesses = self.witnesses.lock();
        let entry = witnesses
            .entry(witness.to_string())
            .or_insert_with(|| WitnessFigures {
                ok: 0,
                failed: 0,
                seconds: latency_histogram(),
            });
        if ok {
            entry.ok += 1;
        } else {
            entry.failed += 1;
        }
        entry.seconds.observe(elapsed.as_secs_f64());
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

    /// Adds the log's metrics to `exposition`, with the sequencer's and the health checks'
    /// figures of this scrape.
    pub fn expose(&self, exposition: &mut Exposition, now: &ScrapeFigures<'_>) {
        expose_commits(exposition, now.commits);
        exposition.gauge(
            "cairn_log_ready",
            "Whether the log is ready (1) or not (0), as /readyz says.",
            i64::from(now.readiness.is_ready()),
        );
        exposition.counters(
            "cairn_log_storage_errors_total",
            "Failed storage calls, by component.",
            now.readiness
                .storage_errors
                .iter()
                .map(|(component, errors)| (vec![("component", component.to_string())], *errors))
                .collect(),
        );
        exposition.counter(
            "cairn_log_signing_errors_total",
            "Failed checkpoint signatures (the key in its file or PKCS#11 token).",
            now.readiness.signing_errors,
        );
        exposition.gauge(
            "cairn_log_queue_depth",
            "Leaves admitted and not yet durable.",
            now.queue_depth as u64,
        );
        exposition.gauge(
            "cairn_log_durable_entries",
            "Durable entries.",
            now.durable_size,
        );
        exposition.gauge(
            "cairn_log_submitted_leaves_total",
            "Leaves submitted to the sequencer since start.",
            now.submitted,
        );
        exposition.gauge(
            "cairn_log_tree_size",
            "Size of the latest signed checkpoint.",
            self.tree_size.load(Ordering::Relaxed),
        );
        exposition.gauge(
            "cairn_log_published_size",
            "Size of the latest published checkpoint.",
            self.published_size.load(Ordering::Relaxed),
        );
        let lag = self.publication_lag.load(Ordering::Relaxed);
        if lag != u64::MAX {
            exposition.gauge(
                "cairn_log_publication_lag_entries",
                "Durable entries the checkpoint published in the bucket does not cover.",
                lag,
            );
        }
        exposition.gauge(
            "cairn_log_checkpoint_age_seconds",
            "Seconds since the latest publication (-1: none yet).",
            self.checkpoint_age_seconds(),
        );
        exposition.gauge(
            "cairn_log_publication_failures_total",
            "Rounds in which the witness quorum was not met.",
            self.publication_failures.load(Ordering::Relaxed),
        );
        exposition.counter(
            "cairn_log_retention_runs_total",
            "Payload retention runs finished (whatever they erased, or if they failed).",
            self.retention_runs.load(Ordering::Relaxed),
        );
        self.expose_requests(exposition);
        self.expose_witnesses(exposition);
    }

    /// Seconds since the latest publication, -1 before the first.
    fn checkpoint_age_seconds(&self) -> f64 {
        let published_at = self.published_at_ms.load(Ordering::Relaxed);
        if published_at == 0 {
            return -1.0;
        }
        (self.started.elapsed().as_millis() as f64 - published_at as f64) / 1000.0
    }

    fn expose_requests(&self, exposition: &mut Exposition) {
        let series: Vec<(Labels, Histogram)> = self
            .requests
            .lock()
            .iter()
            .flat_map(|(route, by_status)| {
                by_status.iter().map(move |(status, histogram)| {
                    let labels = vec![("route", route.clone()), ("status", status.to_string())];
                    (labels, histogram.clone())
                })
            })
            .collect();
        exposition.family(
            "cairn_log_request_seconds",
            "HTTP request latency by route and status.",
            series,
        );
    }

    fn expose_witnesses(&self, exposition: &mut Exposition) {
        let witnesses = self.witnesses.lock();
        let mut attempts = Vec::new();
        let mut latency = Vec::new();
        for (name, figures) in witnesses.iter() {
            for (outcome, count) in [("ok", figures.ok), ("failed", figures.failed)] {
                let labels = vec![("witness", name.clone()), ("outcome", outcome.to_string())];
                attempts.push((labels, count));
            }
            latency.push((vec![("witness", name.clone())], figures.seconds.clone()));
        }
        exposition.counters(
            "cairn_log_witness_requests_total",
            "Cosigning attempts by witness and outcome.",
            attempts,
        );
        exposition.family(
            "cairn_log_witness_seconds",
            "Cosigning latency by witness.",
            latency,
        );
    }
}

/// The group commit's histograms: entries per durable write, and how long each write (append and
/// fdatasync) took. The sequencer keeps them as cumulative buckets; the crate takes each
/// bucket's own count.
fn expose_commits(exposition: &mut Exposition, commits: &CommitFigures) {
    let batch_bounds = BATCH_SIZE_BOUNDS.map(|bound| bound as f64);
    for (name, help, bounds, cumulative, sum) in [
        (
            "cairn_log_batch_entries",
            "Entries per durable write (group commit).",
            &batch_bounds[..],
            &commits.size_buckets[..],
            commits.entries as f64,
        ),
        (
            "cairn_log_durable_write_seconds",
            "Time of one durable write (append and fdatasync).",
            &WRITE_SECONDS_BOUNDS[..],
            &commits.write_buckets[..],
            commits.write_seconds,
        ),
    ] {
        let histogram = Buckets::new(bounds, cumulative, sum, commits.batches);
        exposition.family(name, help, vec![(Vec::new(), histogram)]);
    }
}

/// A histogram counted elsewhere (the sequencer's group commit), encoded by the crate.
#[derive(Debug)]
struct Buckets {
    /// `(upper bound, observations in this bucket alone)`.
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl Buckets {
    /// From cumulative bucket counts, as [`CommitFigures`] keeps them.
    fn new(bounds: &[f64], cumulative: &[u64], sum: f64, count: u64) -> Buckets {
        let mut below = 0;
        let buckets = bounds
            .iter()
            .copied()
            .zip(cumulative)
            .map(|(bound, total)| {
                let own = total.saturating_sub(below);
                below = *total;
                (bound, own)
            })
            .collect();
        Buckets {
            buckets,
            sum,
            count,
        }
    }
}

impl TypedMetric for Buckets {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Buckets {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
