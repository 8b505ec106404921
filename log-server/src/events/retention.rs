//! Payload retention and index catch-up: a background task that, every interval, indexes any
//! event leaf of the log that the live path did not (after a crash), and erases the payloads
//! whose retention has run out, recording what it erased as one event per run and rule.
//!
//! A rule applies to events of one `action`, of one `resource_type`, or both; when several rules
//! apply to an event the shortest retention wins. Payloads under legal hold are kept.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::submit::{now, Events};

/// The principal the retention task records its erasures as.
pub const RETENTION_PRINCIPAL: &str = "cairn-log/retention";
/// Most payloads one retention event lists.
const ERASE_CHUNK: usize = 500;

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

/// One maintenance pass: catch the indexes up with the log, then apply retention. Returns the
/// number of payloads erased.
pub async fn run_once(events: &Arc<Events>, rules: &[RetentionRule]) -> Result<usize, String> {
    let catch_up = events.clone();
    tokio::task::spawn_blocking(move || catch_up.catch_up(catch_up.log_size()))
        .await
        .map_err(|e| format!("catch-up task failed: {e}"))?
        .map_err(|e| format!("catch-up: {e}"))?;
    if rules.is_empty() {
        return Ok(0);
    }
    let now_nanos = now().unix_nanos();
    let mut expired: Vec<Vec<String>> = vec![Vec::new(); rules.len()];
    let mut start: Option<String> = None;
    loop {
        let page = events
            .store
            .held_payloads(start.as_deref(), 1024)
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        for event_id in page {
            if Some(&event_id) == start.as_ref() {
                continue;
            }
            let Some(index) = events
                .store
                .record(&event_id)
                .map_err(|e| e.to_string())?
                .and_then(|record| record.index)
            else {
                continue;
            };
            let Some(summary) = events.store.summary(index).map_err(|e| e.to_string())? else {
                continue;
            };
            let shortest = rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| rule.applies(&summary.action, &summary.resource_type))
                .min_by_key(|(_, rule)| rule.max_age_seconds);
            if let Some((position, rule)) = shortest {
                let age = i128::from(rule.max_age_seconds) * 1_000_000_000;
                if summary.received_nanos + age <= now_nanos {
                    expired[position].push(event_id);
                }
            }
        }
        if start.as_ref() == Some(&last) {
            break;
        }
        start = Some(last);
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

/// Runs [`run_once`] every `interval` until `stop` turns true.
pub async fn run(
    events: Arc<Events>,
    rules: Vec<RetentionRule>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match run_once(&events, &rules).await {
            Ok(0) => {}
            Ok(erased) => tracing::info!(erased, "retention erased expired payloads"),
            Err(error) => tracing::warn!(%error, "events maintenance failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}
