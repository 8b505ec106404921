//! How events become leaves, and the admin actions that are themselves events.
//!
//! A submission is made durable in two steps, payload first: the payloads and a pending record
//! per event ID are written to the events database and flushed, then the leaves go through the
//! log's sequencer (which makes them durable), then the record gets its index and the indexes
//! their entries (not flushed at once: they are derived from the durable leaf). A crash between
//! the steps leaves either a pending record (a retry with the same event reuses it; the
//! sequencer's idempotency key on the event ID returns the first index) or a logged leaf whose
//! indexes are missing, which the catch-up from the log ([`Events::catch_up`]) writes, because
//! every index is derived from leaves alone.
//!
//! Admin actions (erasure, legal holds) and the retention task's erasures are recorded as
//! events, submitted by the acting principal, *before* they take effect: the log may hold the
//! record of an erasure that a crash interrupted (it is then retried), never an erasure without
//! its record.

use std::collections::HashSet;
use std::sync::Arc;

use cairn_spec::event::{EventError, EventId, EventInput, EventLeaf};
use cairn_spec::time::Instant;
use cairn_spec::Hash;
use serde_json::json;

use super::store::{claim_digest, EventStore, EventStoreError, Hold, HoldTarget};
use crate::sequencer::{Sequencer, SequencerError};
use crate::storage::{IdempotencyKey, LogStore, NewEntry, StoreError};

/// The producer part of the idempotency key every event leaf is sequenced with.
const IDEMPOTENCY_SCOPE: &str = "cairn.events";
/// How many leaves the catch-up reads at once.
const CATCH_UP_CHUNK: u64 = 256;

/// One sequenced event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Its ID.
    pub event_id: String,
    /// Its index in the log.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// Whether this event ID had been submitted before (this is its first index).
    pub duplicate: bool,
}

/// Why events were not logged.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// An event is invalid (`position` in the batch).
    #[error("event {position}: {source}")]
    Invalid {
        /// Position in the submission.
        position: usize,
        /// What is wrong.
        source: EventError,
    },
    /// One event ID twice in one batch.
    #[error("event {position}: event_id {event_id} appears twice in the batch")]
    RepeatedId {
        /// Position of the second one.
        position: usize,
        /// The ID.
        event_id: String,
    },
    /// The events database, or an ID submitted before with another content.
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// The log's store.
    #[error("log store: {0}")]
    Log(#[from] StoreError),
    /// The sequencer.
    #[error(transparent)]
    Sequencer(#[from] SequencerError),
}

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

/// The result of an erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The event whose payload is gone.
    pub event_id: String,
    /// The event that records the erasure.
    pub recorded_by: Submitted,
}

/// Events on one log: the events database, the log's sequencer and store.
pub struct Events {
    /// The events database.
    pub store: EventStore,
    sequencer: Arc<Sequencer>,
    log: Arc<dyn LogStore>,
    /// Serialises admin actions, so that a hold and an erasure cannot pass each other.
    admin: tokio::sync::Mutex<()>,
}

/// The current time as an RFC 3339 instant.
pub fn now() -> Instant {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    Instant::from_unix(seconds, since_epoch.subsec_nanos())
}

/// An event of the server's own, by `principal`.
pub fn audit_event(
    principal: &str,
    action: &str,
    resource_type: &str,
    resource_id: &str,
    payload: serde_json::Value,
) -> Result<EventInput, EventError> {
    let document = json!({
        "timestamp": now().to_rfc3339(),
        "actor": {"id": principal, "type": "principal"},
        "action": action,
        "resource": {"type": resource_type, "id": resource_id},
        "outcome": "success",
        "payload": payload,
        "schema_version": 1,
    });
    EventInput::parse(document.to_string().as_bytes())
}

impl Events {
    /// Events over `store` (the events database), `sequencer` and `log`.
    pub fn new(store: EventStore, sequencer: Arc<Sequencer>, log: Arc<dyn LogStore>) -> Events {
        Events {
            store,
            sequencer,
            log,
            admin: tokio::sync::Mutex::new(()),
        }
    }

    /// Logs `inputs`, submitted by `submitted_by`; answers once payloads, leaves and indexes
    /// are durable. All of a batch is validated before anything is stored.
    pub async fn submit(
        &self,
        inputs: Vec<EventInput>,
        submitted_by: &str,
    ) -> Result<Vec<Submitted>, SubmitError> {
        let received_at = now();
        let mut prepared = Vec::with_capacity(inputs.len());
        let mut seen = HashSet::with_capacity(inputs.len());
        for (position, input) in inputs.into_iter().enumerate() {
            let generated = EventId::new_v4(rand::random());
            let (leaf, payload) = input
                .into_leaf(generated, received_at, submitted_by)
                .map_err(|source| SubmitError::Invalid { position, source })?;
            if !seen.insert(leaf.event_id.clone()) {
                return Err(SubmitError::RepeatedId {
                    position,
                    event_id: leaf.event_id.as_str().to_string(),
                });
            }
            prepared.push((leaf, payload));
        }
        // Payloads and pending records first, durably.
        let mut results: Vec<Option<Submitted>> = vec![None; prepared.len()];
        let mut to_sequence: Vec<(usize, EventLeaf)> = Vec::new();
        for (position, (leaf, payload)) in prepared.into_iter().enumerate() {
            let event_id = leaf.event_id.as_str().to_string();
            let claim = claim_digest(&leaf.leaf);
            match self
                .store
                .reserve(&event_id, claim, &leaf.leaf, payload.as_deref())?
            {
                None => to_sequence.push((position, leaf)),
                Some(existing) => match existing.index {
                    Some(index) => {
                        results[position] = Some(Submitted {
                            event_id,
                            index,
                            leaf_hash: Hash::of_leaf(&existing.leaf),
                            duplicate: true,
                        })
                    }
                    // Reserved by an earlier try that did not finish: send its leaf again.
                    None => {
                        let earlier = EventLeaf::parse(&existing.leaf)
                            .map_err(|source| SubmitError::Invalid { position, source })?;
                        to_sequence.push((position, earlier));
                    }
                },
            }
        }
        self.store.flush().await?;
        if !to_sequence.is_empty() {
            let entries = to_sequence
                .iter()
                .map(|(_, leaf)| {
                    let key = IdempotencyKey::new(IDEMPOTENCY_SCOPE, leaf.event_id.as_str())
                        .expect("an event ID is 36 bytes, a valid idempotency key");
                    NewEntry::new(leaf.leaf.clone(), Some(key))
                })
                .collect();
            let answers = self.sequencer.add_batch(entries).await?;
            for ((position, leaf), answer) in to_sequence.iter().zip(answers) {
                self.store.index_event(answer.index, leaf)?;
                results[*position] = Some(Submitted {
                    event_id: leaf.event_id.as_str().to_string(),
                    index: answer.index,
                    leaf_hash: answer.leaf_hash,
                    duplicate: answer.duplicate,
                });
            }
            // No flush here: the record's index and the index entries are derived from the
            // now durable leaf, and a crash that loses them leaves them to the catch-up, which
            // starts below every leaf it has not itself indexed and flushed.
        }
        Ok(results
            .into_iter()
            .map(|result| result.expect("every position was answered or sequenced"))
            .collect())
    }

    /// Indexes every event leaf of the log from where the indexes are known complete up to
    /// `size`, and records the new mark. Blocking.
    pub fn catch_up(&self, size: u64) -> Result<u64, SubmitError> {
        let mut next = self.store.indexed_through()?;
        let mut indexed = 0;
        while next < size {
            let count = (size - next).min(CATCH_UP_CHUNK);
            for (offset, entry) in self.log.read_entries(next, count)?.iter().enumerate() {
                if self.store.index_leaf(next + offset as u64, &entry.leaf)? {
                    indexed += 1;
                }
            }
            next += count;
        }
        self.store.flush_blocking()?;
        self.store.set_indexed_through(size.max(next))?;
        self.store.flush_blocking()?;
        Ok(indexed)
    }

    /// Forgets every derived record and index and rebuilds them from the log's leaves.
    /// Blocking.
    pub fn rebuild_indexes(&self) -> Result<u64, SubmitError> {
        self.store.clear_derived()?;
        self.catch_up(self.log_size())
    }

    /// The number of durable entries in the log (only durable leaves are indexed by the
    /// catch-up: an index entry must never point at a leaf that a crash could still take back).
    pub fn log_size(&self) -> u64 {
        *self.sequencer.durable_size().borrow()
    }

    /// Erases the payload of `event_id` for `admin`, after recording the erasure as an event.
    pub async fn erase_payload(
        &self,
        event_id: &str,
        admin: &str,
        reason: Option<&str>,
    ) -> Result<Erasure, AdminError> {
        let _serial = self.admin.lock().await;
        let record = self
            .store
            .record(event_id)?
            .ok_or_else(|| AdminError::NotFound(format!("no event {event_id}")))?;
        let index = record.index.ok_or_else(|| {
            AdminError::NotFound(format!("event {event_id} is not sequenced yet"))
        })?;
        let summary = self.store.summary(index)?.ok_or_else(|| {
            AdminError::NotFound(format!("event {event_id} at {index} is not indexed yet"))
        })?;
        let holds = self.store.holds_on(&summary)?;
        if !holds.is_empty() {
            return Err(AdminError::Held {
                event_id: event_id.to_string(),
                holds: describe_holds(&holds),
            });
        }
        if self.store.payload(event_id)?.is_none() {
            return Err(AdminError::NotFound(
                match self.store.erasure(event_id)? {
                    Some(by) => format!(
                        "the payload of {event_id} was already erased (recorded by event {by})"
                    ),
                    None => format!("event {event_id} has no payload"),
                },
            ));
        }
        let record_event = audit_event(
            admin,
            "cairn.payload.erase",
            "event",
            event_id,
            json!({"event_id": event_id, "index": index, "reason": reason}),
        )
        .map_err(|source| SubmitError::Invalid {
            position: 0,
            source,
        })?;
        let recorded_by = self.submit_one(record_event, admin).await?;
        self.store.erase_payload(event_id, &recorded_by.event_id)?;
        self.store.flush().await?;
        Ok(Erasure {
            event_id: event_id.to_string(),
            recorded_by,
        })
    }

    /// Sets a legal hold for `admin`, recorded as an event first.
    pub async fn set_hold(
        &self,
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
            .record_hold_event("cairn.hold.set", &target, reason, admin)
            .await?;
        let hold = Hold {
            target,
            reason: reason.to_string(),
            set_by: admin.to_string(),
            event_id: recorded_by.event_id,
        };
        self.store.set_hold(&hold)?;
        self.store.flush().await?;
        Ok(hold)
    }

    /// Lifts a legal hold for `admin`, recorded as an event first. Returns the lifting event.
    pub async fn lift_hold(
        &self,
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
            .record_hold_event("cairn.hold.lift", &target, reason, admin)
            .await?;
        self.store.lift_hold(&target)?;
        self.store.flush().await?;
        Ok(recorded_by)
    }

    /// Erases, for the retention task `principal`, the payloads of `event_ids`, recorded first
    /// as one event listing them. Payloads under hold are skipped. Returns those erased.
    pub async fn erase_expired(
        &self,
        event_ids: Vec<String>,
        principal: &str,
        rule: &str,
    ) -> Result<Vec<String>, AdminError> {
        let _serial = self.admin.lock().await;
        let mut erasable = Vec::new();
        for event_id in event_ids {
            let Some(index) = self.store.record(&event_id)?.and_then(|r| r.index) else {
                continue;
            };
            let Some(summary) = self.store.summary(index)? else {
                continue;
            };
            if self.store.holds_on(&summary)?.is_empty() && self.store.payload(&event_id)?.is_some()
            {
                erasable.push(event_id);
            }
        }
        if erasable.is_empty() {
            return Ok(erasable);
        }
        let record_event = audit_event(
            principal,
            "cairn.retention.erase",
            "retention",
            rule,
            json!({"event_ids": erasable, "rule": rule}),
        )
        .map_err(|source| SubmitError::Invalid {
            position: 0,
            source,
        })?;
        let recorded_by = self.submit_one(record_event, principal).await?;
        for event_id in &erasable {
            self.store.erase_payload(event_id, &recorded_by.event_id)?;
        }
        self.store.flush().await?;
        Ok(erasable)
    }

    async fn record_hold_event(
        &self,
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

    async fn submit_one(
        &self,
        event: EventInput,
        principal: &str,
    ) -> Result<Submitted, SubmitError> {
        let mut answers = self.submit(vec![event], principal).await?;
        answers.pop().ok_or_else(|| {
            SubmitError::Sequencer(SequencerError::StoreFailed(
                "an event was answered with nothing".into(),
            ))
        })
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
