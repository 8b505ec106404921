//! Payload retention: a background task that, every interval, erases the payloads whose
//! retention has run out, recording what it erased as one event per run and rule.
//!
//! A rule applies to events of one `action`, of one `resource_type`, or both; when several rules
//! apply to an event the shortest retention wins. Payloads under legal hold are kept. A schema 2
//! event's `resource.type` is indexed by its tag, which the rule's is compared with; what is
//! erased of it is its contents record (the openings of all its personal fields).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::submit::{now, Events};

/// The principal the retention task records its erasures as.
pub const RETENTION_PRINCIPAL: &str = "cairn-log/retention";
/// Most payloads one retention event lists.
const ERASE_CHUNK: usize = 500;
/// Events read from the index at once.
const PAGE: usize = 1024;

/// How long payloads of some events are kept.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Events with this `action`.
    pub action: Option<String>,
    /// Events with this `resource.type`.
    pub resource_type: Option<String>,
    /// Seconds after `received_at` that the payload is erased.
    pub max_age_seconds: u64,
}

impl RetentionRule {
    fn applies(&self, action: &str, resource_type: &str) -> bool {
        self.action.as_deref().is_none_or(|a| a == action)
            && self
                .resource_type
                .as_deref()
                .is_none_or(|r| r == resource_type)
    }

    fn name(&self) -> String {
        format!(
            "action={} resource_type={} max_age_seconds={}",
            self.action.as_deref().unwrap_or("*"),
            self.resource_type.as_deref().unwrap_or("*"),
            self.max_age_seconds
        )
    }
}

/// One retention pass over every event with a payload, in log order. Returns the number of
/// payloads erased.
pub async fn run_once(events: &Arc<Events>, rules: &[RetentionRule]) -> Result<usize, String> {
    if rules.is_empty() {
        return Ok(0);
    }
    let now_nanos = now().unix_nanos();
    // The rules as they match schema 2 events: by the tag of their resource type.
    let tagged: Vec<RetentionRule> = rules
        .iter()
        .map(|rule| {
            Ok(RetentionRule {
                resource_type: match &rule.resource_type {
                    Some(kind) => events
                        .store
                        .tag(cairn_spec::event::IndexedField::ResourceType, kind)
                        .map_err(|e| e.to_string())?,
                    None => None,
                },
                ..rule.clone()
            })
        })
        .collect::<Result<_, String>>()?;
    let mut expired: Vec<Vec<String>> = vec![Vec::new(); rules.len()];
    let mut after: Option<u64> = None;
    loop {
        let store = events.store.clone();
        let page = tokio::task::spawn_blocking(move || store.payload_events(after, PAGE))
            .await
            .map_err(|e| format!("retention task failed: {e}"))?
            .map_err(|e| e.to_string())?;
        for summary in &page.events {
            let matching = if summary.is_tagged() { &tagged } else { rules };
            let shortest = matching
                .iter()
                .enumerate()
                .filter(|(_, rule)| rule.applies(&summary.action, &summary.resource_type))
                .min_by_key(|(_, rule)| rule.max_age_seconds);
            if let Some((position, rule)) = shortest {
                let age = i128::from(rule.max_age_seconds) * 1_000_000_000;
                if summary.received_nanos + age <= now_nanos
                    && events
                        .store
                        .erasure(&summary.event_id)
                        .map_err(|e| e.to_string())?
                        .is_none()
                {
                    expired[position].push(summary.event_id.clone());
                }
            }
        }
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut erased = 0;
    for (rule, ids) in rules.iter().zip(expired) {
        for chunk in ids.chunks(ERASE_CHUNK) {
            erased += events
                .erase_expired(chunk.to_vec(), RETENTION_PRINCIPAL, &rule.name())
                .await
                .map_err(|e| e.to_string())?
                .len();
        }
    }
    Ok(erased)
}

/// Runs [`run_once`] every `interval` until `stop` turns true, counting each finished run in
/// `runs` (the metric `cairn_log_retention_runs_total`: what shows that a run has passed).
pub async fn run(
    events: Arc<Events>,
    rules: Vec<RetentionRule>,
    interval: Duration,
    runs: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match run_once(&events, &rules).await {
            Ok(0) => {}
            Ok(erased) => tracing::info!(erased, "retention erased expired payloads"),
            Err(error) => tracing::warn!(%error, "payload retention failed"),
        }
        runs.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}
