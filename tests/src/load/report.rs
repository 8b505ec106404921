//! What a run measured: a [`Recorder`] per connection while it runs (no sharing on the hot
//! path), merged into one [`Report`] at the end, printed as text or as JSON.
//!
//! Every request the run attempted ends in exactly one of: an answer (counted by status code,
//! its latency recorded), a connect error, an I/O error (the connection failed while the request
//! was out), or a timeout. Connections the server closed between requests are reopened and
//! counted, but are not errors: a server may close a keep-alive connection whenever it likes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Status codes are three digits (RFC 9110 §15): one counter per possible code.
const STATUS_SLOTS: usize = 1000;

/// The measurements of one connection, or of several merged.
#[derive(Debug, Clone)]
pub struct Recorder {
    latency_micros: Histogram<u64>,
    status_counts: Vec<u64>,
    /// Answered requests, whatever their status.
    pub answered: u64,
    /// Leaves in requests answered with a 2xx status.
    pub leaves_accepted: u64,
    /// Request body bytes of answered requests.
    pub body_bytes_sent: u64,
    /// Response body bytes received.
    pub body_bytes_received: u64,
    /// Answers that carried `Retry-After`.
    pub retry_after_answers: u64,
    /// Failures, by kind.
    pub errors: Errors,
    /// Connections opened, warm-up included (the first of each connection too).
    pub connections_opened: u64,
    /// Fixed-rate requests whose send time passed the end of the run before they could be sent
    /// (the server was too slow for the rate asked).
    pub unsent: u64,
}

/// Requests that got no answer, by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// The TCP connection or the HTTP handshake failed (or the server closed a connection
    /// before the request could be sent on it).
    pub connect: u64,
    /// The connection failed while the request was sent or its answer read.
    pub io: u64,
    /// No complete answer within the timeout.
    pub timeout: u64,
}

impl Errors {
    /// All failed requests.
    pub fn total(&self) -> u64 {
        self.connect + self.io + self.timeout
    }
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder {
            // Three significant digits, growing as larger latencies arrive.
            latency_micros: Histogram::new(3).expect("3 significant digits is a valid precision"),
            status_counts: vec![0; STATUS_SLOTS],
            answered: 0,
            leaves_accepted: 0,
            body_bytes_sent: 0,
            body_bytes_received: 0,
            retry_after_answers: 0,
            errors: Errors::default(),
            connections_opened: 0,
            unsent: 0,
        }
    }

    /// Records one answered request.
    pub fn record_answer(&mut self, answer: &Answer, latency: Duration, body_bytes_sent: u64) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        // `record` grows the histogram as needed; `saturating_record` would clamp to its
        // current (initially tiny) range instead.
        if self.latency_micros.record(micros).is_err() {
            self.latency_micros.saturating_record(micros);
        }
        let slot = usize::from(answer.status).min(STATUS_SLOTS - 1);
        self.status_counts[slot] += 1;
        self.answered += 1;
        if (200..300).contains(&answer.status) {
            self.leaves_accepted += answer.leaves;
        }
        self.body_bytes_sent += body_bytes_sent;
        self.body_bytes_received += answer.body_bytes;
        self.retry_after_answers += u64::from(answer.retry_after);
    }

    /// Adds another recorder's measurements to this one.
    pub fn merge(&mut self, other: &Recorder) {
        self.latency_micros
            .add(&other.latency_micros)
            .expect("auto-resizing histograms of the same precision always merge");
        for (mine, theirs) in self.status_counts.iter_mut().zip(&other.status_counts) {
            *mine += theirs;
        }
        self.answered += other.answered;
        self.leaves_accepted += other.leaves_accepted;
        self.body_bytes_sent += other.body_bytes_sent;
        self.body_bytes_received += other.body_bytes_received;
        self.retry_after_answers += other.retry_after_answers;
        self.errors.connect += other.errors.connect;
        self.errors.io += other.errors.io;
        self.errors.timeout += other.errors.timeout;
        self.connections_opened += other.connections_opened;
        self.unsent += other.unsent;
    }

    /// Answers by status code.
    pub fn status_counts(&self) -> BTreeMap<u16, u64> {
        (0u16..)
            .zip(&self.status_counts)
            .filter(|(_, count)| **count > 0)
            .map(|(status, count)| (status, *count))
            .collect()
    }

    /// Latency percentiles of the answered requests, if any were.
    pub fn latency(&self) -> Option<LatencySummary> {
        let histogram = &self.latency_micros;
        if histogram.is_empty() {
            return None;
        }
        Some(LatencySummary {
            min: histogram.min(),
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p99_9: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        })
    }
}

/// What came back for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Bytes of the response body.
    pub body_bytes: u64,
    /// Whether the response carried `Retry-After`.
    pub retry_after: bool,
    /// Leaves in the request.
    pub leaves: u64,
}

/// Latency percentiles in microseconds (three significant digits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// The fastest answer.
    pub min: u64,
    /// The mean.
    pub mean: f64,
    /// The median.
    pub p50: u64,
    /// The 90th percentile.
    pub p90: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The 99.9th percentile.
    pub p99_9: u64,
    /// The slowest answer.
    pub max: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The target, as `http://host:port/path`.
    pub target: String,
    /// `add`, `add-batch`, `events` or `raw`.
    pub mode: &'static str,
    /// Connections the run used.
    pub connections: usize,
    /// The fixed rate asked for, or `None` for a closed loop.
    pub target_rate: Option<f64>,
    /// The warm-up, in seconds, whose requests are not counted.
    pub warmup_seconds: f64,
    /// The measured period, in seconds: from the end of the warm-up to the last answer.
    pub elapsed_seconds: f64,
    /// Requests answered, whatever the status.
    pub requests: u64,
    /// Requests answered per second.
    pub requests_per_second: f64,
    /// Leaves in requests answered with 2xx.
    pub leaves: u64,
    /// Leaves answered with 2xx per second.
    pub leaves_per_second: f64,
    /// Request body bytes of answered requests.
    pub body_bytes_sent: u64,
    /// Request body bytes per second.
    pub body_bytes_per_second: f64,
    /// Response body bytes received.
    pub body_bytes_received: u64,
    /// Latency of answered requests, in microseconds; `None` if nothing was answered.
    pub latency_micros: Option<LatencySummary>,
    /// Answers by status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// Answers that carried `Retry-After`.
    pub retry_after_answers: u64,
    /// Requests that got no answer.
    pub errors: Errors,
    /// Connections opened during the whole run (warm-up included).
    pub connections_opened: u64,
    /// Fixed-rate requests that could not be sent before the end (the server was too slow).
    pub unsent: u64,
}

impl Report {
    /// Summarises the merged measurements of a run.
    pub fn new(identity: RunIdentity, recorder: &Recorder, elapsed: Duration) -> Report {
        // A run always lasts a little; the floor only keeps rates finite for a degenerate one.
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let per_second = |count: u64| count as f64 / seconds;
        Report {
            target: identity.target,
            mode: identity.mode,
            connections: identity.connections,
            target_rate: identity.target_rate,
            warmup_seconds: identity.warmup.as_secs_f64(),
            elapsed_seconds: elapsed.as_secs_f64(),
            requests: recorder.answered,
            requests_per_second: per_second(recorder.answered),
            leaves: recorder.leaves_accepted,
            leaves_per_second: per_second(recorder.leaves_accepted),
            body_bytes_sent: recorder.body_bytes_sent,
            body_bytes_per_second: per_second(recorder.body_bytes_sent),
            body_bytes_received: recorder.body_bytes_received,
            latency_micros: recorder.latency(),
            status_counts: recorder.status_counts(),
            retry_after_answers: recorder.retry_after_answers,
            errors: recorder.errors,
            connections_opened: recorder.connections_opened,
            unsent: recorder.unsent,
        }
    }

    /// Requests answered with this status.
    pub fn status_count(&self, status: u16) -> u64 {
        self.status_counts.get(&status).copied().unwrap_or(0)
    }
}

/// What a report says about the run it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct RunIdentity {
    /// The target, as `http://host:port/path`.
    pub target: String,
    /// The mode name.
    pub mode: &'static str,
    /// Connections.
    pub connections: usize,
    /// The fixed rate, if any.
    pub target_rate: Option<f64>,
    /// The warm-up.
    pub warmup: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pacing = match self.target_rate {
            Some(rate) => format!("fixed rate {}/s", si(rate)),
            None => "closed loop".to_owned(),
        };
        writeln!(
            f,
            "{} {}: {} connections, {pacing}, {:.2} s measured after {:.2} s warm-up",
            self.mode, self.target, self.connections, self.elapsed_seconds, self.warmup_seconds
        )?;
        writeln!(
            f,
            "  requests   {:>12}  {:>10}/s",
            self.requests,
            si(self.requests_per_second)
        )?;
        writeln!(
            f,
            "  leaves     {:>12}  {:>10}/s   (in 2xx answers)",
            self.leaves,
            si(self.leaves_per_second)
        )?;
        writeln!(
            f,
            "  sent       {:>12}  {:>10}B/s (request bodies)",
            format!("{}B", si(self.body_bytes_sent as f64)),
            si(self.body_bytes_per_second)
        )?;
        match &self.latency_micros {
            Some(latency) => writeln!(
                f,
                "  latency    p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
                micros(latency.p50 as f64),
                micros(latency.p90 as f64),
                micros(latency.p99 as f64),
                micros(latency.p99_9 as f64),
                micros(latency.max as f64),
                micros(latency.mean)
            )?,
            None => writeln!(f, "  latency    (no answers)")?,
        }
        let statuses: Vec<String> = self
            .status_counts
            .iter()
            .map(|(status, count)| format!("{status}: {count}"))
            .collect();
        let statuses = if statuses.is_empty() {
            "none".to_owned()
        } else {
            statuses.join(", ")
        };
        writeln!(f, "  status     {statuses}")?;
        if self.retry_after_answers > 0 {
            writeln!(f, "  retry-after answers {}", self.retry_after_answers)?;
        }
        writeln!(
            f,
            "  errors     connect {}, io {}, timeout {}; connections opened {}",
            self.errors.connect, self.errors.io, self.errors.timeout, self.connections_opened
        )?;
        if self.target_rate.is_some() {
            writeln!(
                f,
                "  unsent     {} (scheduled but not sent before the end: the server fell behind)",
                self.unsent
            )?;
        }
        Ok(())
    }
}

/// A count with an SI prefix: `1.23 k`, `45.6 M`.
fn si(value: f64) -> String {
    let prefixes = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, prefix) in prefixes {
        if value.abs() >= scale {
            return format!("{:.2} {prefix}", value / scale);
        }
    }
    format!("{value:.1} ")
}

/// A latency given in microseconds, in the unit that reads best.
fn micros(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} s", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.2} ms", value / 1e3)
    } else {
        format!("{value:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Answer {
        Answer {
            status,
            body_bytes: 10,
            retry_after: status == 503,
            leaves: 2,
        }
    }

    #[test]
    fn counts_answers_by_status_and_leaves_only_for_success() {
        let mut recorder = Recorder::new();
        recorder.record_answer(&answer(200), Duration::from_micros(100), 64);
        recorder.record_answer(&answer(200), Duration::from_micros(300), 64);
        recorder.record_answer(&answer(503), Duration::from_micros(50), 64);
        assert_eq!(
            recorder.status_counts(),
            BTreeMap::from([(200, 2), (503, 1)])
        );
        assert_eq!(recorder.answered, 3);
        assert_eq!(recorder.leaves_accepted, 4);
        assert_eq!(recorder.body_bytes_sent, 192);
        assert_eq!(recorder.body_bytes_received, 30);
        assert_eq!(recorder.retry_after_answers, 1);
        let latency = recorder.latency().expect("answers were recorded");
        assert_eq!(latency.min, 50);
        assert_eq!(latency.p50, 100);
        assert!((300..=301).contains(&latency.max), "{}", latency.max);
    }

    #[test]
    fn merging_adds_everything() {
        let mut first = Recorder::new();
        first.record_answer(&answer(200), Duration::from_millis(1), 1);
        first.errors.io = 2;
        first.connections_opened = 1;
        let mut second = Recorder::new();
        second.record_answer(&answer(429), Duration::from_secs(30), 1);
        second.errors.timeout = 1;
        second.connections_opened = 3;
        second.unsent = 5;
        first.merge(&second);
        assert_eq!(first.status_counts(), BTreeMap::from([(200, 1), (429, 1)]));
        assert_eq!(
            first.errors,
            Errors {
                connect: 0,
                io: 2,
                timeout: 1
            }
        );
        assert_eq!(first.connections_opened, 4);
        assert_eq!(first.unsent, 5);
        let latency = first.latency().expect("answers were recorded");
        assert!(latency.max >= 30_000_000, "{}", latency.max);
    }

    #[test]
    fn a_run_without_answers_has_no_latency() {
        assert_eq!(Recorder::new().latency(), None);
    }

    #[test]
    fn reports_rates_over_the_measured_period() {
        let mut recorder = Recorder::new();
        for _ in 0..50 {
            recorder.record_answer(&answer(200), Duration::from_micros(10), 100);
        }
        let identity = RunIdentity {
            target: "http://127.0.0.1:1/add".into(),
            mode: "add",
            connections: 2,
            target_rate: None,
            warmup: Duration::ZERO,
        };
        let report = Report::new(identity, &recorder, Duration::from_millis(500));
        assert_eq!(report.requests_per_second, 100.0);
        assert_eq!(report.leaves_per_second, 200.0);
        assert_eq!(report.body_bytes_per_second, 10_000.0);
        assert_eq!(report.status_count(200), 50);
        assert_eq!(report.status_count(404), 0);
        let text = report.to_string();
        assert!(text.contains("closed loop"), "{text}");
        assert!(text.contains("200: 50"), "{text}");
        let json = serde_json::to_value(&report).expect("reports serialise");
        assert_eq!(json["requests"], 50);
        assert_eq!(json["status_counts"]["200"], 50);
    }
}
