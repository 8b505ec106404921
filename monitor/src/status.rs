//! `GET /status`: the monitor's last verdicts and its active alerts, as JSON, for a dashboard
//! (the auditor's web UI reads it from another origin, hence CORS).
//!
//! Every poll of a log leaves one verdict in a bounded history ([`MAX_VERDICTS`] a log, kept in
//! memory: a restarted monitor starts a new history; what it verified is in its state):
//! `verified` (this poll verified the log's checkpoint and no alert of the log is active),
//! `alert` (it verified, but an alert is active) or `failed` (it verified nothing, with why).
//! The answer holds nothing secret: origins, sizes, roots and the alerts' kinds and details as
//! the webhook gets them, without the evidence files' paths. It is read-only and the same for
//! everyone, so it answers any origin (`Access-Control-Allow-Origin: *`) without credentials.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use crate::alert::Alerter;
use crate::clock::unix_now;
use crate::follow::{LastVerified, PollReport};

/// Most verdicts kept a log (at the default 10 s poll, a little over an hour).
pub const MAX_VERDICTS: usize = 400;
/// Most characters of a failed poll's reason kept.
const MAX_PROBLEM_CHARS: usize = 300;

/// One poll's verdict on one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Unix seconds when the poll ended.
    pub at: u64,
    /// `verified`, `alert` or `failed`.
    pub verdict: &'static str,
    /// The tree size this poll verified, if it verified one.
    pub size: Option<u64>,
    /// How many alerts of the log were active after the poll.
    pub alerts: usize,
    /// Why the poll verified nothing (cut to 300 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One log's history.
#[derive(Debug, Default)]
struct LogStatus {
    verdicts: VecDeque<Verdict>,
    last_verified: Option<LastVerified>,
}

/// The verdicts of every log, newest last.
#[derive(Debug, Default)]
pub struct StatusBook {
    logs: Mutex<BTreeMap<String, LogStatus>>,
}

impl StatusBook {
    fn logs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LogStatus>> {
        self.logs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Keeps the verdict of each report of one poll, with the alerts active after it.
    pub fn record(&self, reports: &[PollReport], alerter: &Alerter) {
        let at = unix_now();
        let mut logs = self.logs();
        for report in reports {
            let alerts = alerter.active(Some(&report.origin)).len();
            let verdict = match (&report.verified, alerts) {
                (Some(_), 0) => "verified",
                (Some(_), _) => "alert",
                (None, _) => "failed",
            };
            let log = logs.entry(report.origin.clone()).or_default();
            if log.verdicts.len() == MAX_VERDICTS {
                log.verdicts.pop_front();
            }
            log.verdicts.push_back(Verdict {
                at,
                verdict,
                size: report.verified.as_ref().map(|verified| verified.size),
                alerts,
                problem: report
                    .problem
                    .as_ref()
                    .map(|problem| problem.chars().take(MAX_PROBLEM_CHARS).collect()),
            });
            log.last_verified = report.last_verified.clone();
        }
    }

    /// The status document: every log polled so far, with its verdicts and active alerts.
    pub fn document(&self, alerter: &Alerter) -> serde_json::Value {
        let logs = self.logs();
        let mut shown = Vec::with_capacity(logs.len());
        for (origin, log) in logs.iter() {
            let alerts: Vec<serde_json::Value> = alerter
                .active(Some(origin))
                .into_iter()
                .map(|active| {
                    json!({
                        "kind": active.alert.kind,
                        "detail": active.alert.detail,
                        "incident": active.alert.incident,
                        "active_since": active.since,
                    })
                })
                .collect();
            shown.push(json!({
                "origin": origin,
                "last_verified": log.last_verified,
                "verdicts": log.verdicts,
                "alerts": alerts,
            }));
        }
        json!({
            "format": "cairn.monitor-status/v1",
            "now": unix_now(),
            "logs": shown,
        })
    }
}

/// The answer to `GET /status`: the document of `book` with the alerts of `alerter`, readable
/// from any origin and never cached. The daemon's router calls it (this module knows nothing of
/// the daemon, so that the two do not import each other).
pub fn answer(book: &StatusBook, alerter: &Alerter) -> Response {
    let mut response = Json(book.document(alerter)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::alert::{Alert, AlertKind};
    use crate::follow::VerifiedNow;
    use crate::metrics::Metrics;

    fn report(origin: &str, size: Option<u64>) -> PollReport {
        PollReport {
            origin: origin.into(),
            verified: size.map(|size| VerifiedNow {
                size,
                root: "r".into(),
                note: "n".into(),
                grown_from: None,
            }),
            problem: size.is_none().then(|| "x".repeat(1000)),
            last_verified: None,
        }
    }

    #[tokio::test]
    async fn verdicts_are_kept_per_log_within_the_bound() {
        let alerter = Alerter::new(
            None,
            reqwest::Client::new(),
            Arc::new(Metrics::default()),
            std::time::Duration::from_secs(60),
        );
        let book = StatusBook::default();
        for size in 0..(MAX_VERDICTS as u64 + 5) {
            book.record(&[report("a", Some(size))], &alerter);
        }
        book.record(&[report("a", None)], &alerter);
        alerter
            .raise(Alert {
                kind: AlertKind::StaleLog,
                origin: "a".into(),
                detail: "not grown".into(),
                evidence: Some("/secret/path".into()),
                incident: None,
                subject: String::new(),
            })
            .await;
        book.record(&[report("a", Some(7))], &alerter);
        let document = book.document(&alerter);
        let log = &document["logs"][0];
        let verdicts = log["verdicts"].as_array().expect("verdicts");
        assert_eq!(verdicts.len(), MAX_VERDICTS);
        let failed = &verdicts[MAX_VERDICTS - 2];
        assert_eq!(failed["verdict"], "failed");
        assert_eq!(
            failed["problem"].as_str().map(str::len),
            Some(MAX_PROBLEM_CHARS)
        );
        assert_eq!(verdicts[MAX_VERDICTS - 1]["verdict"], "alert");
        assert_eq!(log["alerts"][0]["kind"], "stale-log");
        assert!(!document.to_string().contains("/secret/path"));
    }
}
