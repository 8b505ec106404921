//! Alerts: what the monitor raises when a log misbehaves, and where it sends them: an error-level
//! log line, a counter in /metrics, and a webhook POST of JSON.
//!
//! An alert is a state, not an event. It is raised once, when its condition is first seen
//! (`"state": "raised"`), stays active while the condition lasts, with the gauge
//! `cairn_monitor_alerts_active{kind,origin}` counting it and a reminder (`"state": "reminder"`,
//! and an error line) every reminder interval, and ends with a resolved notice
//! (`"state": "resolved"`) when a poll no longer finds it. An alert with evidence is an
//! incident, kept in the monitor's state ([`crate::state::Incident`]): it stays active until an
//! operator acknowledges it, across restarts too.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::clock::unix_now;
use crate::metrics::Metrics;

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
    /// A checkpoint is signed by a key the log's key history revoked at or before its size.
    RevokedKey,
    /// The log's completeness index is not what its leaves and its checkpoints say
    /// (`crate::index_audit`).
    DishonestIndex,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 10] = [
        AlertKind::SplitView,
        AlertKind::BadSignature,
        AlertKind::RootMismatch,
        AlertKind::RewrittenTile,
        AlertKind::CorruptData,
        AlertKind::CheckpointGoingBack,
        AlertKind::StaleLog,
        AlertKind::WitnessPolicyUnmet,
        AlertKind::RevokedKey,
        AlertKind::DishonestIndex,
    ];

    /// The kind of a name as [`AlertKind::name`] gives it.
    pub fn from_name(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

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
            AlertKind::RevokedKey => "revoked-key",
            AlertKind::DishonestIndex => "dishonest-index",
        }
    }
}

/// One alert, as posted to the webhook (with its notice's `state` and times beside).
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
    /// The incident's number in the monitor's state, for an alert with evidence: it stays
    /// active until `cairn-monitor acknowledge` names it.
    pub incident: Option<i64>,
    /// What the alert is about, when one log can have several of its kind at once (the tile
    /// of a `rewritten-tile`); empty otherwise.
    #[serde(skip)]
    pub subject: String,
}

/// Which notice of an alert a webhook POST is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Notice {
    /// First seen.
    Raised,
    /// Still active, one reminder interval after the last notice.
    Reminder,
    /// No longer found (or, for an incident, acknowledged).
    Resolved,
}

/// The webhook's JSON: the alert, which notice this is, and since when it is active.
#[derive(Serialize)]
struct Posted<'a> {
    state: Notice,
    #[serde(flatten)]
    alert: &'a Alert,
    /// Unix seconds when it was raised.
    active_since: u64,
    /// Why it was resolved (resolved notices only).
    #[serde(skip_serializing_if = "Option::is_none")]
    resolution: Option<&'a str>,
}

/// The default interval between reminders of an active alert, seconds (an hour).
pub const DEFAULT_REMINDER_SECS: u64 = 3600;
/// The shortest and the longest reminder interval, seconds (one second, one day).
pub const REMINDER_SECS_RANGE: std::ops::RangeInclusive<u64> = 1..=86_400;

/// An active alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveAlert {
    /// The alert as last seen.
    pub alert: Alert,
    /// Unix seconds when it was raised (or, for an incident, found).
    pub since: u64,
    /// When its last notice was sent (raised or reminder).
    last_notice: std::time::Instant,
}

/// The identity of an active alert: one log, one kind, one incident or subject.
type AlertKey = (String, AlertKind, Option<i64>, String);

fn key_of(alert: &Alert) -> AlertKey {
    (
        alert.origin.clone(),
        alert.kind,
        alert.incident,
        alert.subject.clone(),
    )
}

/// Where alerts go.
#[derive(Debug)]
pub struct Alerter {
    /// The webhook URL, if any.
    pub webhook: Option<String>,
    client: reqwest::Client,
    /// The counters.
    pub metrics: Arc<Metrics>,
    raised: Mutex<Vec<Alert>>,
    active: Mutex<BTreeMap<AlertKey, ActiveAlert>>,
    reminder_interval: Duration,
}

impl Alerter {
    /// An alerter posting to `webhook` (if given) with `client`, reminding of an active alert
    /// every `reminder_interval`.
    pub fn new(
        webhook: Option<String>,
        client: reqwest::Client,
        metrics: Arc<Metrics>,
        reminder_interval: Duration,
    ) -> Alerter {
        Alerter {
            webhook,
            client,
            metrics,
            raised: Mutex::new(Vec::new()),
            active: Mutex::new(BTreeMap::new()),
            reminder_interval,
        }
    }

    fn active_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<AlertKey, ActiveAlert>> {
        self.active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Sets the gauge of `kind` for `origin` to the number of its active alerts.
    fn gauge(&self, active: &BTreeMap<AlertKey, ActiveAlert>, origin: &str, kind: AlertKind) {
        let count = active
            .keys()
            .filter(|(o, k, _, _)| o == origin && *k == kind)
            .count();
        self.metrics
            .set_alerts_active(kind.name(), origin, count as u64);
    }

    /// Raises an alert everywhere it goes, unless it is active already (then only its detail
    /// and evidence are brought up to date); true if it was raised now.
    pub async fn raise(&self, alert: Alert) -> bool {
        {
            let mut active = self.active_map();
            if let Some(known) = active.get_mut(&key_of(&alert)) {
                known.alert = alert;
                return false;
            }
            active.insert(
                key_of(&alert),
                ActiveAlert {
                    alert: alert.clone(),
                    since: unix_now(),
                    last_notice: std::time::Instant::now(),
                },
            );
            self.gauge(&active, &alert.origin, alert.kind);
        }
        tracing::error!(
            kind = alert.kind.name(),
            origin = %alert.origin,
            incident = alert.incident,
            evidence = ?alert.evidence,
            "{}",
            alert.detail
        );
        self.metrics.count_alert(alert.kind.name(), &alert.origin);
        self.post(Notice::Raised, &alert, unix_now(), None).await;
        self.raised
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(alert);
        true
    }

    /// Makes an incident found before this process started active again, without a new
    /// notice (it was raised when it was found); reminders follow at the interval.
    pub fn restore(&self, alert: Alert, since: u64) {
        let mut active = self.active_map();
        if active.contains_key(&key_of(&alert)) {
            return;
        }
        tracing::error!(
            kind = alert.kind.name(),
            origin = %alert.origin,
            incident = alert.incident,
            evidence = ?alert.evidence,
            "standing incident, not acknowledged: {}",
            alert.detail
        );
        active.insert(
            key_of(&alert),
            ActiveAlert {
                since,
                alert: alert.clone(),
                last_notice: std::time::Instant::now(),
            },
        );
        self.gauge(&active, &alert.origin, alert.kind);
    }

    /// Ends the active alerts of `origin` for which `ended` gives a reason, each with a
    /// resolved notice that says it; returns them.
    pub async fn resolve(
        &self,
        origin: &str,
        ended: impl Fn(&Alert) -> Option<String>,
    ) -> Vec<Alert> {
        let resolved: Vec<(ActiveAlert, String)> = {
            let mut active = self.active_map();
            let keys: Vec<(AlertKey, String)> = active
                .iter()
                .filter(|((o, ..), _)| o == origin)
                .filter_map(|(key, value)| Some((key.clone(), ended(&value.alert)?)))
                .collect();
            let resolved: Vec<_> = keys
                .into_iter()
                .filter_map(|(key, why)| Some((active.remove(&key)?, why)))
                .collect();
            for (ended, _) in &resolved {
                self.gauge(&active, origin, ended.alert.kind);
            }
            resolved
        };
        for (ended, why) in &resolved {
            tracing::info!(
                kind = ended.alert.kind.name(),
                origin = %ended.alert.origin,
                incident = ended.alert.incident,
                active_secs = unix_now().saturating_sub(ended.since),
                "resolved ({why}): {}",
                ended.alert.detail
            );
            self.metrics.count_resolved(ended.alert.kind.name(), origin);
            self.post(Notice::Resolved, &ended.alert, ended.since, Some(why))
                .await;
        }
        resolved.into_iter().map(|(ended, _)| ended.alert).collect()
    }

    /// Reminds of every alert active for a reminder interval since its last notice: an
    /// error line and, with a webhook, a reminder POST.
    pub async fn remind(&self) {
        let due: Vec<ActiveAlert> = {
            let mut active = self.active_map();
            active
                .values_mut()
                .filter(|value| value.last_notice.elapsed() >= self.reminder_interval)
                .map(|value| {
                    value.last_notice = std::time::Instant::now();
                    value.clone()
                })
                .collect()
        };
        for reminded in due {
            let active_secs = unix_now().saturating_sub(reminded.since);
            tracing::error!(
                kind = reminded.alert.kind.name(),
                origin = %reminded.alert.origin,
                incident = reminded.alert.incident,
                evidence = ?reminded.alert.evidence,
                active_secs,
                "still active: {}",
                reminded.alert.detail
            );
            self.metrics
                .count_reminder(reminded.alert.kind.name(), &reminded.alert.origin);
            self.post(Notice::Reminder, &reminded.alert, reminded.since, None)
                .await;
        }
    }

    /// POSTs one notice to the webhook, if there is one; a failure is counted and logged.
    async fn post(&self, state: Notice, alert: &Alert, since: u64, resolution: Option<&str>) {
        let Some(webhook) = &self.webhook else {
            return;
        };
        let body = serde_json::to_vec(&Posted {
            state,
            alert,
            active_since: since,
            resolution,
        })
        .expect("alerts serialise");
        let sent = self
            .client
            .post(webhook)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if let Err(error) = sent {
            tracing::warn!(%error, "webhook POST failed");
            self.metrics.count_webhook_failure();
        }
    }

    /// Every alert raised so far by this process (not reminders, not restored incidents).
    pub fn raised(&self) -> Vec<Alert> {
        self.raised
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// The alerts active now, of `origin` or of every log.
    pub fn active(&self, origin: Option<&str>) -> Vec<ActiveAlert> {
        self.active_map()
            .values()
            .filter(|value| origin.is_none_or(|origin| value.alert.origin == origin))
            .cloned()
            .collect()
    }
}
