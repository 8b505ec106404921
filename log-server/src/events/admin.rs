//! The admin actions, which are themselves events: erasure of a payload, legal holds, the
//! retention task's erasures, and the erasure of a data subject (crypto-shredding: its data
//! keys destroyed, [`super::privacy`]).
//!
//! Each is recorded as an event, submitted by the acting principal, *before* it takes effect:
//! the log may hold the record of an erasure that a crash interrupted (it is finished when the
//! events database next opens, [`super::records`]), never an erasure without its record. A
//! hold is in force once its record is logged, for the same reason. Admin actions are
//! serialised, so that a hold and an erasure cannot pass each other.

use std::sync::Arc;

use cairn_spec::event::IndexedField;
use serde_json::json;

use super::privacy::SubjectField;
use super::records::{self, is_reserved};
use super::store::{EventStoreError, Hold, HoldTarget, QueryFilter, MAX_QUERY_LIMIT};
use super::submit::{audit_event, Events, SubmitError, Submitted};

/// Why an admin action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such event (or not sequenced yet).
    #[error("{0}")]
    NotFound(String),
    /// Legal holds block it.
    #[error("the payload of {event_id} is under legal hold: {holds}")]
    Held {
        /// The event.
        event_id: String,
        /// The holds, described.
        holds: String,
    },
    /// Legal holds block the erasure of a data subject.
    #[error("the data subject is under legal hold: {holds}")]
    SubjectHeld {
        /// The holds, described.
        holds: String,
    },
    /// The state does not allow it (a hold already set, ...).
    #[error("{0}")]
    Conflict(String),
    /// Recording the action failed.
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl From<EventStoreError> for AdminError {
    fn from(error: EventStoreError) -> AdminError {
        AdminError::Submit(SubmitError::Store(error))
    }
}

/// The result of the erasure of a data subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shredding {
    /// The subject's key ID (`tag:` and 64 hex digits), which the record names instead of the
    /// subject.
    pub subject_key: String,
    /// How many data keys were destroyed.
    pub data_keys: usize,
    /// The event that records the erasure.
    pub recorded_by: Submitted,
}

/// Most events of one subject examined for holds before its erasure.
const MAX_SUBJECT_EVENTS: usize = 10_000_000;

/// The result of an erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The event whose payload is gone.
    pub event_id: String,
    /// The event that records the erasure.
    pub recorded_by: Submitted,
}

impl Events {
    /// Erases the payload of `event_id` for `admin`, after recording the erasure as an event.
    pub async fn erase_payload(
        self: &Arc<Self>,
        event_id: &str,
        admin: &str,
        reason: Option<&str>,
    ) -> Result<Erasure, AdminError> {
        let _serial = self.admin.lock().await;
        let summary = self
            .store
            .find(event_id)?
            .ok_or_else(|| AdminError::NotFound(format!("no event {event_id}")))?;
        let index = summary.index;
        if is_reserved(&summary.action) {
            return Err(AdminError::Conflict(format!(
                "{event_id} records an admin action ({}): its payload is kept",
                summary.action
            )));
        }
        let holds = self.store.holds_on(&summary)?;
        if !holds.is_empty() {
            return Err(AdminError::Held {
                event_id: event_id.to_string(),
                holds: describe_holds(&holds),
            });
        }
        if !summary.has_payload {
            return Err(AdminError::NotFound(format!(
                "event {event_id} has no payload"
            )));
        }
        // Erased, and marked so: done. Erased without the mark, the erasure was interrupted
        // between the two: it is recorded and done again, which also finishes destroying the
        // bytes if the interruption came before that.
        if self.store.payload(&summary)?.is_none() {
            if let Some(by) = self.store.erasure(event_id)? {
                return Err(AdminError::NotFound(format!(
                    "the payload of {event_id} was already erased (recorded by event {by})"
                )));
            }
        }
        let record_event = audit_event(
            admin,
            records::PAYLOAD_ERASE,
            "event",
            event_id,
            json!({"event_id": event_id, "index": index, "reason": reason}),
        )
        .map_err(|source| SubmitError::Invalid {
            position: 0,
            source,
        })?;
        let recorded_by = self.submit_one(record_event, admin).await?;
        self.store.erase_payload(&summary, &recorded_by.event_id)?;
        Ok(Erasure {
            event_id: event_id.to_string(),
            recorded_by,
        })
    }

    /// Sets a legal hold for `admin`, recorded as an event first.
    pub async fn set_hold(
        self: &Arc<Self>,
        target: HoldTarget,
        reason: &str,
        admin: &str,
    ) -> Result<Hold, AdminError> {
        let _serial = self.admin.lock().await;
        if let Some(existing) = self.store.hold(&target)? {
            return Err(AdminError::Conflict(format!(
                "a hold on {} {} is already set (by {}, event {})",
                target.kind(),
                target.value(),
                existing.set_by,
                existing.event_id
            )));
        }
        let recorded_by = self
            .record_hold_event(records::HOLD_SET, &target, reason, admin)
            .await?;
        let hold = Hold {
            target,
            reason: reason.to_string(),
            set_by: admin.to_string(),
            event_id: recorded_by.event_id,
        };
        self.store.set_hold(&hold)?;
        Ok(hold)
    }

    /// Lifts a legal hold for `admin`, recorded as an event first. Returns the lifting event.
    pub async fn lift_hold(
        self: &Arc<Self>,
        target: HoldTarget,
        reason: &str,
        admin: &str,
    ) -> Result<Submitted, AdminError> {
        let _serial = self.admin.lock().await;
        if self.store.hold(&target)?.is_none() {
            return Err(AdminError::NotFound(format!(
                "no hold on {} {}",
                target.kind(),
                target.value()
            )));
        }
        let recorded_by = self
            .record_hold_event(records::HOLD_LIFT, &target, reason, admin)
            .await?;
        self.store.lift_hold(&target)?;
        Ok(recorded_by)
    }

    /// Erases, for the retention task `principal`, the payloads of `event_ids`, recorded first
    /// as one event listing them. Payloads under hold are skipped. Returns those erased.
    pub async fn erase_expired(
        self: &Arc<Self>,
        event_ids: Vec<String>,
        principal: &str,
        rule: &str,
    ) -> Result<Vec<String>, AdminError> {
        let _serial = self.admin.lock().await;
        let mut erasable = Vec::new();
        for event_id in event_ids {
            let Some(summary) = self.store.find(&event_id)? else {
                continue;
            };
            if !is_reserved(&summary.action)
                && self.store.holds_on(&summary)?.is_empty()
                && self.store.payload(&summary)?.is_some()
            {
                erasable.push(summary);
            }
        }
        if erasable.is_empty() {
            return Ok(Vec::new());
        }
        let record_event = audit_event(
            principal,
            records::RETENTION_ERASE,
            "retention",
            rule,
            json!({"event_ids": erasable.iter().map(|s| &s.event_id).collect::<Vec<_>>(), "rule": rule}),
        )
        .map_err(|source| SubmitError::Invalid {
            position: 0,
            source,
        })?;
        let recorded_by = self.submit_one(record_event, principal).await?;
        for summary in &erasable {
            self.store.erase_payload(summary, &recorded_by.event_id)?;
        }
        Ok(erasable
            .into_iter()
            .map(|summary| summary.event_id)
            .collect())
    }

    /// Erases the data subject `subject` for `admin` (crypto-shredding): refused if a legal
    /// hold covers the subject or any of its events; else recorded as an event (naming the
    /// subject's key ID and data keys, never the subject), then its data keys are destroyed.
    /// Every contents record sealed under them is unreadable from then on; every leaf, root
    /// and proof stays valid.
    pub async fn shred_subject(
        self: &Arc<Self>,
        subject: &str,
        admin: &str,
        reason: Option<&str>,
    ) -> Result<Shredding, AdminError> {
        let _serial = self.admin.lock().await;
        let store = self.store.clone();
        let owned = subject.to_string();
        let (keys, subject_key) = tokio::task::spawn_blocking(move || {
            let privacy = store.privacy();
            let (field, target): (_, fn(String) -> HoldTarget) = match privacy.subject_field() {
                SubjectField::Actor => (IndexedField::ActorId, HoldTarget::Actor),
                SubjectField::Resource => (IndexedField::ResourceId, HoldTarget::Resource),
            };
            let keys = privacy.subject_keys(&owned)?;
            let Some(tag) = store.tag(field, &owned)?.filter(|_| !keys.is_empty()) else {
                return Err(AdminError::NotFound(
                    "no data key for this subject: never seen, or erased already".to_string(),
                ));
            };
            let mut holds = Vec::new();
            for target in [target(tag.clone()), target(owned.clone())] {
                holds.extend(store.hold(&target)?);
            }
            let mut filter = match field {
                IndexedField::ActorId => QueryFilter {
                    actor: Some(tag),
                    ..QueryFilter::default()
                },
                _ => QueryFilter {
                    resource: Some(tag),
                    ..QueryFilter::default()
                },
            };
            let mut examined = 0usize;
            loop {
                let page = store.query(&filter, MAX_QUERY_LIMIT, MAX_QUERY_LIMIT)?;
                examined += MAX_QUERY_LIMIT;
                for summary in &page.events {
                    for hold in store.holds_on(summary)? {
                        if !holds.contains(&hold) {
                            holds.push(hold);
                        }
                    }
                }
                match page.next_after {
                    Some(after) if examined < MAX_SUBJECT_EVENTS => filter.after = Some(after),
                    Some(_) => {
                        return Err(AdminError::Conflict(format!(
                            "the subject has more than {MAX_SUBJECT_EVENTS} events to check \
                             for holds"
                        )))
                    }
                    None => break,
                }
            }
            if !holds.is_empty() {
                return Err(AdminError::SubjectHeld {
                    holds: describe_holds(&holds),
                });
            }
            Ok((keys, privacy.subject_text(&owned)))
        })
        .await
        .map_err(|error| AdminError::Conflict(format!("the erasure task failed: {error}")))??;
        let record_event = audit_event(
            admin,
            records::SUBJECT_SHRED,
            "subject",
            &subject_key,
            json!({"subject": subject_key, "data_keys": keys, "reason": reason}),
        )
        .map_err(|source| SubmitError::Invalid {
            position: 0,
            source,
        })?;
        let recorded_by = self.submit_one(record_event, admin).await?;
        let store = self.store.clone();
        let destroyed = keys.clone();
        tokio::task::spawn_blocking(move || store.privacy().destroy_keys(&destroyed))
            .await
            .map_err(|error| AdminError::Conflict(format!("the erasure task failed: {error}")))??;
        Ok(Shredding {
            subject_key,
            data_keys: keys.len(),
            recorded_by,
        })
    }

    async fn record_hold_event(
        self: &Arc<Self>,
        action: &str,
        target: &HoldTarget,
        reason: &str,
        admin: &str,
    ) -> Result<Submitted, AdminError> {
        let event = audit_event(
            admin,
            action,
            "hold",
            &format!("{}:{}", target.kind(), target.value()),
            json!({"kind": target.kind(), "value": target.value(), "reason": reason}),
        )
        .map_err(|source| SubmitError::Invalid {
            position: 0,
            source,
        })?;
        Ok(self.submit_one(event, admin).await?)
    }
}

fn describe_holds(holds: &[Hold]) -> String {
    holds
        .iter()
        .map(|hold| {
            format!(
                "{} {} (set by {}, event {})",
                hold.target.kind(),
                hold.target.value(),
                hold.set_by,
                hold.event_id
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
