//! How events become leaves, and the admin actions that are themselves events.
//!
//! A submission is made durable in one step: its leaves go through the log's sequencer, each
//! with its payload beside it ([`NewEntry::with_payload`]), and one write and one `fdatasync`,
//! shared with concurrent submissions, make both durable. The sequencer answers the first
//! index of an event ID it has seen before, by its idempotency key, and stores nothing for it,
//! payload included. Then the events are indexed in memory: the index is derived from the
//! durable leaves, and rebuilt from them after a crash.
//!
//! A client that goes away cannot stop a submission between its leaves and its index entries:
//! once the leaves are handed to the sequencer, what is left (waiting for them to be durable,
//! indexing them) is owned by a guard that, if the request's future is dropped, finishes it in
//! a task of its own. Only a dropped submission pays for that task.
//!
//! Producers' events become schema 2 leaves: personal fields only as salted commitments, their
//! openings sealed in a contents record under the data subject's key ([`super::privacy`]) and
//! stored in the payload slot beside the leaf. A retry of an event ID is compared with what was
//! logged by its clear fields and opened values (the salts differ): the same event gets the
//! logged leaf back, never a new one with fresh salts. The server's own records stay schema 1:
//! their actor is a principal, and what they name of a subject is a tag. The self-audit records
//! of reads are schema 2: what a reader asked for is personal data.
//!
//! Actions under `cairn.` are the server's own (admin actions, [`super::admin`]): producers are
//! refused them.

use std::collections::HashSet;
use std::sync::Arc;

use cairn_spec::event::{
    event_limits, AnyEventLeaf, EventError, EventId, EventInput, EventLeaf, EventLeafV2,
    EventOpenings, EventSalts,
};
use cairn_spec::jcs::Value;
use cairn_spec::time::Instant;
use cairn_spec::Hash;
use serde_json::json;
use tokio::sync::oneshot;

use super::model::InFlightSubmission;
use super::privacy::{Contents, SubjectField, Tags};
use super::records::is_reserved;
use super::store::{claim_digest, EventStore, EventStoreError, EventSummary};
use crate::sequencer::{Sequenced, Sequencer, SequencerError};
use crate::storage::{IdempotencyKey, LogStore, NewEntry, StoreError};

/// The producer part of the idempotency key every event leaf is sequenced with.
const IDEMPOTENCY_SCOPE: &str = "cairn.events";

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
    /// An action reserved for the server's own records, from a producer.
    #[error("event {position}: the action {action:?} is reserved for the server's own records (actions under \"cairn.\")")]
    ReservedAction {
        /// Position in the submission.
        position: usize,
        /// The action.
        action: String,
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

/// One event ready for the sequencer. (Short-lived, one per event of a submission: the size
/// of the schema 2 variant costs less than a box per event.)
#[allow(clippy::large_enum_variant)]
pub(super) enum Prepared {
    /// A schema 1 leaf (the server's own records) and its payload.
    V1 {
        leaf: EventLeaf,
        payload: Option<Vec<u8>>,
    },
    /// A schema 2 leaf, its sealed contents record, and the openings and tags it holds.
    V2 {
        leaf: EventLeafV2,
        record: Vec<u8>,
        openings: EventOpenings,
        tags: Tags,
    },
}

impl Prepared {
    fn event_id(&self) -> &EventId {
        match self {
            Prepared::V1 { leaf, .. } => &leaf.event_id,
            Prepared::V2 { leaf, .. } => &leaf.clear.event_id,
        }
    }

    fn leaf(&self) -> &[u8] {
        match self {
            Prepared::V1 { leaf, .. } => &leaf.leaf,
            Prepared::V2 { leaf, .. } => &leaf.leaf,
        }
    }

    /// Moves the leaf bytes and the payload slot's bytes out.
    fn take_bytes(&mut self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            Prepared::V1 { leaf, payload } => (std::mem::take(&mut leaf.leaf), payload.take()),
            Prepared::V2 { leaf, record, .. } => {
                (std::mem::take(&mut leaf.leaf), Some(std::mem::take(record)))
            }
        }
    }

    fn summary(self, index: u64) -> EventSummary {
        match self {
            Prepared::V1 { leaf, .. } => EventSummary::of_leaf(index, leaf),
            Prepared::V2 { leaf, tags, .. } => EventSummary::of_v2(index, &leaf, Some(&tags)),
        }
    }

    /// What a retry is compared with; `leaf` is the leaf's bytes if moved out.
    fn claim<'a>(&'a self, leaf: &'a [u8]) -> Claim<'a> {
        match self {
            Prepared::V1 { .. } => Claim::V1(leaf),
            Prepared::V2 { leaf, openings, .. } => Claim::V2(leaf, openings),
        }
    }
}

/// What an event claims, to compare with the event logged under its ID.
enum Claim<'a> {
    /// A schema 1 leaf.
    V1(&'a [u8]),
    /// A schema 2 leaf's clear fields, and the openings of its personal fields.
    V2(&'a EventLeafV2, &'a EventOpenings),
}

/// The `id` of an `actor` or `resource` object, and its `type`.
fn id_and_type(value: &Value) -> (&str, &str) {
    let member = |name: &str| match value {
        Value::Object(members) => members
            .iter()
            .find(|(member, _)| member == name)
            .and_then(|(_, value)| match value {
                Value::String(text) => Some(text.as_str()),
                _ => None,
            })
            .unwrap_or(""),
        _ => "",
    };
    (member("id"), member("type"))
}

/// The leaves of a submission handed to the sequencer, and what is left to do once they are
/// durable.
struct Sequencing {
    /// The events, by their position in the submission.
    fresh: Vec<(usize, Prepared)>,
    /// The leaf bytes, shared with the sequencer's entries.
    leaves: Vec<bytes::Bytes>,
    /// Keeps the index from being cut past these events before they are in it.
    in_flight: InFlightSubmission,
}

/// Each event of a submission, by its position: logged now or before, or refused.
type Answers = Vec<(usize, Result<Submitted, SubmitError>)>;

/// The sequencer's answer to a submission of events.
type SequencerAnswer = oneshot::Receiver<Result<Vec<Sequenced>, SequencerError>>;

impl Sequencing {
    /// Indexes the events the sequencer logged and answers each by its position.
    fn finish(
        self,
        events: &Events,
        answer: Result<Result<Vec<Sequenced>, SequencerError>, oneshot::error::RecvError>,
    ) -> Result<Answers, SubmitError> {
        // A dropped answer means that the pipeline stopped before it reached these leaves.
        let answers = answer.unwrap_or(Err(SequencerError::ShuttingDown))?;
        let mut answered = Vec::with_capacity(self.fresh.len());
        let mut summaries = Vec::with_capacity(self.fresh.len());
        let sequenced = self.fresh.into_iter().zip(answers).zip(self.leaves);
        for (((position, prepared), answer), bytes) in sequenced {
            if answer.duplicate {
                // Logged before (by an earlier or a concurrent submission): nothing was stored.
                answered.push((
                    position,
                    events.logged_before(
                        answer.index,
                        prepared.event_id(),
                        &prepared.claim(&bytes),
                    ),
                ));
                continue;
            }
            let summary = prepared.summary(answer.index);
            let event_id = summary.event_id.clone();
            summaries.push(summary);
            answered.push((
                position,
                Ok(Submitted {
                    event_id,
                    index: answer.index,
                    leaf_hash: answer.leaf_hash,
                    duplicate: false,
                }),
            ));
        }
        // All at once: the sequencer gives a submission its own run of increasing indices.
        events.store.index_events(summaries, events.log_size())?;
        drop(self.in_flight);
        Ok(answered)
    }
}

/// Finishes a submission whose request went away while its leaves were in the sequencer: they
/// may become durable after all, and must then be indexed.
struct FinishOnDrop {
    events: Arc<Events>,
    pending: Option<(SequencerAnswer, Sequencing)>,
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        let Some((answer, sequencing)) = self.pending.take() else {
            return;
        };
        let events = Arc::clone(&self.events);
        let finish = move |answer| {
            if let Err(error) = sequencing.finish(&events, answer) {
                tracing::warn!(%error, "a submission whose client went away did not finish");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { finish(answer.await) });
            }
            // Outside a runtime, blocking is allowed: the answer comes from the sequencer's
            // own threads.
            Err(_) => finish(answer.blocking_recv()),
        }
    }
}

/// Events on one log: the events database, the log's sequencer and store.
pub struct Events {
    /// The events database.
    pub store: EventStore,
    sequencer: Arc<Sequencer>,
    log: Arc<dyn LogStore>,
    /// Serialises admin actions, so that a hold and an erasure cannot pass each other.
    pub(super) admin: tokio::sync::Mutex<()>,
    /// Whether reads are recorded as events ([`super::self_audit`]).
    pub(super) self_audit: bool,
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
            self_audit: true,
        }
    }

    /// `self` recording reads (searches, event views, exports) as events or not
    /// ([`super::self_audit`]); on by default.
    pub fn with_self_audit(mut self, on: bool) -> Events {
        self.self_audit = on;
        self
    }

    /// Logs `inputs`, submitted by `submitted_by`; answers once leaves and payloads are
    /// durable (and the events indexed). All of a batch is validated before anything is
    /// stored; event IDs logged before are answered with their first index (or refused if the
    /// content differs) without storing anything.
    pub async fn submit(
        self: &Arc<Self>,
        inputs: Vec<EventInput>,
        submitted_by: &str,
    ) -> Result<Vec<Submitted>, SubmitError> {
        if let Some((position, input)) = inputs
            .iter()
            .enumerate()
            .find(|(_, input)| is_reserved(&input.action))
        {
            return Err(SubmitError::ReservedAction {
                position,
                action: input.action.clone(),
            });
        }
        let prepared = self.prepare_v2(inputs, submitted_by).await?;
        self.submit_prepared(prepared).await
    }

    /// Schema 2 leaves of `inputs` with their sealed contents records: the data keys of their
    /// subjects are found (or made, durably, before any leaf that needs them is sequenced).
    async fn prepare_v2(
        self: &Arc<Self>,
        inputs: Vec<EventInput>,
        submitted_by: &str,
    ) -> Result<Vec<Prepared>, SubmitError> {
        let received_at = now();
        let privacy = self.store.privacy();
        let subjects: Vec<String> = inputs
            .iter()
            .map(|input| {
                let of = match privacy.subject_field() {
                    SubjectField::Actor => &input.actor,
                    SubjectField::Resource => &input.resource,
                };
                id_and_type(of).0.to_string()
            })
            .collect();
        let names: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let keys = if let Some(keys) = privacy.cached_keys(&names) {
            keys
        } else {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || {
                let names: Vec<&str> = subjects.iter().map(String::as_str).collect();
                store.privacy().keys_for(&names)
            })
            .await
            .map_err(|error| {
                SubmitError::Sequencer(SequencerError::StoreFailed(format!(
                    "the subject key task failed: {error}"
                )))
            })??
        };
        let max_record = self.log.limits().max_payload_bytes as usize;
        let batch = inputs.len() > 1;
        let mut seen = HashSet::with_capacity(if batch { inputs.len() } else { 0 });
        let mut prepared = Vec::with_capacity(inputs.len());
        for ((position, mut input), key) in inputs.into_iter().enumerate().zip(keys) {
            let (actor_id, _) = id_and_type(&input.actor);
            let (resource_id, resource_type) = id_and_type(&input.resource);
            let tags = privacy.tags(actor_id, resource_type, resource_id, &key);
            let event_id = input
                .event_id
                .take()
                .unwrap_or_else(|| EventId::new_v4(rand::random()));
            let salts = EventSalts::from_random(rand::random());
            let (leaf, openings) = input
                .into_leaf_v2(event_id, received_at, submitted_by, &salts)
                .map_err(|source| SubmitError::Invalid { position, source })?;
            let record = privacy.seal(&leaf.clear.event_id, &openings, &key, &tags);
            if record.len() > max_record {
                return Err(SubmitError::Invalid {
                    position,
                    source: EventError::Invalid {
                        field: "event".into(),
                        reason: format!(
                            "its personal fields take {} bytes sealed, the limit is {max_record}",
                            record.len()
                        ),
                    },
                });
            }
            if batch && !seen.insert(leaf.clear.event_id.clone()) {
                return Err(SubmitError::RepeatedId {
                    position,
                    event_id: leaf.clear.event_id.as_str().to_string(),
                });
            }
            prepared.push(Prepared::V2 {
                leaf,
                record,
                openings,
                tags,
            });
        }
        Ok(prepared)
    }

    /// Schema 2 leaves of the server's own (no check of reserved actions): the self-audit
    /// records of reads ([`super::self_audit`]), whose personal fields hold what was asked.
    pub(super) async fn submit_own_v2(
        self: &Arc<Self>,
        input: EventInput,
        principal: &str,
    ) -> Result<Submitted, SubmitError> {
        let prepared = self.prepare_v2(vec![input], principal).await?;
        let mut answers = self.submit_prepared(prepared).await?;
        answers.pop().ok_or_else(|| {
            SubmitError::Sequencer(SequencerError::StoreFailed(
                "an event was answered with nothing".into(),
            ))
        })
    }

    /// Schema 1 leaves, for the server's own records (no check of reserved actions).
    async fn submit_any(
        self: &Arc<Self>,
        inputs: Vec<EventInput>,
        submitted_by: &str,
    ) -> Result<Vec<Submitted>, SubmitError> {
        let received_at = now();
        let mut prepared = Vec::with_capacity(inputs.len());
        // One event alone cannot repeat an ID: the set is for batches.
        let batch = inputs.len() > 1;
        let mut seen = HashSet::with_capacity(if batch { inputs.len() } else { 0 });
        for (position, mut input) in inputs.into_iter().enumerate() {
            let event_id = input
                .event_id
                .take()
                .unwrap_or_else(|| EventId::new_v4(rand::random()));
            let (leaf, payload) = input
                .into_leaf(event_id, received_at, submitted_by)
                .map_err(|source| SubmitError::Invalid { position, source })?;
            let limit = event_limits().max_bytes;
            if payload.as_ref().is_some_and(|bytes| bytes.len() > limit) {
                return Err(SubmitError::Invalid {
                    position,
                    source: EventError::Invalid {
                        field: "payload".into(),
                        reason: format!("its canonical form is larger than {limit} bytes"),
                    },
                });
            }
            if batch && !seen.insert(leaf.event_id.clone()) {
                return Err(SubmitError::RepeatedId {
                    position,
                    event_id: leaf.event_id.as_str().to_string(),
                });
            }
            prepared.push(Prepared::V1 { leaf, payload });
        }
        self.submit_prepared(prepared).await
    }

    async fn submit_prepared(
        self: &Arc<Self>,
        prepared: Vec<Prepared>,
    ) -> Result<Vec<Submitted>, SubmitError> {
        let mut results: Vec<Option<Submitted>> = vec![None; prepared.len()];
        let mut fresh = Vec::with_capacity(prepared.len());
        // The sequencer answers an event logged before, or a conflict, and stores nothing for
        // it. In a batch, the IDs are looked up first, so that a conflict refuses the whole
        // batch before anything of it is stored.
        let batch = prepared.len() > 1;
        for (position, event) in prepared.into_iter().enumerate() {
            let existing = if batch {
                self.store.find(event.event_id().as_str())?
            } else {
                None
            };
            match existing {
                Some(existing) => {
                    results[position] = Some(self.logged_before(
                        existing.index,
                        event.event_id(),
                        &event.claim(event.leaf()),
                    )?);
                }
                None => fresh.push((position, event)),
            }
        }
        if !fresh.is_empty() {
            let mut conflict = None;
            for (position, answer) in self.sequence(fresh).await? {
                match answer {
                    Ok(submitted) => results[position] = Some(submitted),
                    Err(error) => {
                        conflict.get_or_insert(error);
                    }
                }
            }
            // The other events of the batch are logged: a retry gets them back as duplicates.
            if let Some(error) = conflict {
                return Err(error);
            }
        }
        Ok(results
            .into_iter()
            .map(|result| result.expect("every position was answered or sequenced"))
            .collect())
    }

    /// Sequences the leaves of `fresh` with their payloads and indexes the new ones; answers
    /// each event by its position. An event ID logged before (or by a concurrent submission)
    /// comes back as that event (or a conflict).
    async fn sequence(
        self: &Arc<Self>,
        fresh: Vec<(usize, Prepared)>,
    ) -> Result<Answers, SubmitError> {
        let in_flight = self.store.begin_submission(self.log_size())?;
        let mut entries = Vec::with_capacity(fresh.len());
        let mut leaves = Vec::with_capacity(fresh.len());
        let mut events = Vec::with_capacity(fresh.len());
        for (position, mut event) in fresh {
            // The leaf bytes move into a shared buffer, which the sequencer's entry holds too.
            let (leaf, payload) = event.take_bytes();
            let bytes = bytes::Bytes::from(leaf);
            let key = IdempotencyKey::new(IDEMPOTENCY_SCOPE, event.event_id().as_str())
                .expect("an event ID is 36 bytes, a valid idempotency key");
            entries.push(NewEntry::new(bytes.clone(), Some(key)).with_payload(payload));
            leaves.push(bytes);
            events.push((position, event));
        }
        let answer = self.sequencer.try_submit(entries)?;
        let mut guard = FinishOnDrop {
            events: Arc::clone(self),
            pending: Some((
                answer,
                Sequencing {
                    fresh: events,
                    leaves,
                    in_flight,
                },
            )),
        };
        let (answer, _) = guard.pending.as_mut().expect("set above");
        let answers = answer.await;
        let (_, sequencing) = guard.pending.take().expect("set above");
        sequencing.finish(self, answers)
    }

    /// The answer for `claim`, whose `event_id` is logged at `index` already: that event if it
    /// is the same claim (a retry), a conflict if not.
    fn logged_before(
        &self,
        index: u64,
        event_id: &EventId,
        claim: &Claim<'_>,
    ) -> Result<Submitted, SubmitError> {
        let logged = self
            .log
            .read_entries(index, 1)?
            .pop()
            .ok_or_else(|| {
                SubmitError::Sequencer(SequencerError::StoreFailed(format!(
                    "the store returned no entry at {index}"
                )))
            })?
            .leaf;
        if !self.same_claim(index, &logged, claim)? {
            return Err(SubmitError::Store(EventStoreError::Conflict {
                event_id: event_id.as_str().to_string(),
            }));
        }
        Ok(Submitted {
            event_id: event_id.as_str().to_string(),
            index,
            leaf_hash: Hash::of_leaf(&logged),
            duplicate: true,
        })
    }

    /// Whether `claim` is the event logged at `index` as `logged`: for schema 1, the leaves
    /// but `received_at`; for schema 2, the clear fields but `received_at` and the opened
    /// values (the salts are drawn per submission). An event whose contents were erased is
    /// compared by its clear fields. A schema 2 claim is never the same as a schema 1 leaf
    /// logged before the log wrote schema 2.
    fn same_claim(
        &self,
        index: u64,
        logged: &[u8],
        claim: &Claim<'_>,
    ) -> Result<bool, SubmitError> {
        match claim {
            Claim::V1(leaf) => Ok(claim_digest(logged) == claim_digest(leaf)),
            Claim::V2(leaf, openings) => {
                let Ok(AnyEventLeaf::V2(old)) = AnyEventLeaf::parse(logged) else {
                    return Ok(false);
                };
                let (new, old_clear) = (&leaf.clear, &old.clear);
                if (
                    &new.event_id,
                    &new.timestamp,
                    &new.submitted_by,
                    &new.action,
                    &new.outcome,
                ) != (
                    &old_clear.event_id,
                    &old_clear.timestamp,
                    &old_clear.submitted_by,
                    &old_clear.action,
                    &old_clear.outcome,
                ) {
                    return Ok(false);
                }
                Ok(match self.store.contents(index, &old_clear.event_id)? {
                    Contents::Erased => true,
                    Contents::Held(stored) => cairn_spec::event::PersonalField::ALL
                        .into_iter()
                        .all(|field| {
                            openings.get(field).map(|o| &o.value)
                                == stored.get(field).map(|o| &o.value)
                        }),
                })
            }
        }
    }

    /// The number of durable entries in the log.
    pub fn log_size(&self) -> u64 {
        *self.sequencer.durable_size().borrow()
    }

    /// Logs one event of the server's own, by `principal`.
    pub(super) async fn submit_one(
        self: &Arc<Self>,
        event: EventInput,
        principal: &str,
    ) -> Result<Submitted, SubmitError> {
        let mut answers = self.submit_any(vec![event], principal).await?;
        answers.pop().ok_or_else(|| {
            SubmitError::Sequencer(SequencerError::StoreFailed(
                "an event was answered with nothing".into(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;
    use std::task::Poll;
    use std::time::Duration;

    use super::*;
    use crate::events::EventStoreConfig;
    use crate::sequencer::SequencerConfig;
    use crate::storage::embedded::{EmbeddedConfig, EmbeddedStore};

    fn event(id: &str, payload: bool) -> EventInput {
        let payload = if payload { r#","payload":{"n":1}"# } else { "" };
        let json = format!(
            r#"{{"event_id":"{id}","timestamp":"2026-12-06T00:00:00Z","actor":{{"id":"a","type":"user"}},"action":"act","resource":{{"type":"t","id":"r"}},"outcome":"success"{payload}}}"#
        );
        EventInput::parse(json.as_bytes()).expect("valid")
    }

    /// A log, its sequencer and its events in `dir`.
    fn events_in(dir: &std::path::Path) -> (Arc<dyn LogStore>, Arc<Sequencer>, Arc<Events>) {
        let log: Arc<dyn LogStore> =
            Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.join("log"))).expect("log"));
        let sequencer =
            Arc::new(Sequencer::start(log.clone(), SequencerConfig::default()).expect("start"));
        let store = EventStore::open(
            &dir.join("events"),
            EventStoreConfig::default(),
            log.clone(),
        )
        .expect("events");
        let events = Arc::new(Events::new(store, Arc::clone(&sequencer), log.clone()));
        (log, sequencer, events)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn producers_are_refused_the_actions_of_the_servers_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sequencer, events) = events_in(dir.path());
        let forged = EventInput::parse(
            br#"{"timestamp":"2026-12-06T00:00:00Z","actor":{"id":"p","type":"principal"},"action":"cairn.hold.set","resource":{"type":"hold","id":"actor:x"},"outcome":"success","payload":{"kind":"actor","value":"x","reason":"r"}}"#,
        )
        .expect("valid");
        let refused = events
            .submit(
                vec![event("0b5e7c1a-3d2f-4e8b-9a6c-1f0e2d3c4b5a", false), forged],
                "p",
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(SubmitError::ReservedAction { position: 1, .. })
            ),
            "{refused:?}"
        );
        assert_eq!(log.entry_count(), 0, "nothing of the batch was stored");
        sequencer.shutdown().await.expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_submission_dropped_while_sequenced_is_still_indexed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_log, sequencer, events) = events_in(dir.path());
        let (plain, with_payload) = (
            "0b5e7c1a-3d2f-4e8b-9a6c-1f0e2d3c4b5a",
            "1c6f8d2b-4e3a-4f9c-8b7d-2a1f3e4d5c6b",
        );
        // The subject's data key is made first: then a submission waits only on the sequencer.
        events.store.privacy().keys_for(&["a"]).expect("a data key");
        for (id, payload) in [(plain, false), (with_payload, true)] {
            // Polled until it waits for the sequencer, then dropped, as when the connection of
            // its request goes away.
            let inputs = vec![event(id, payload)];
            let mut submission = Box::pin(events.submit(inputs, "p"));
            let first_poll =
                std::future::poll_fn(|context| Poll::Ready(submission.as_mut().poll(context)))
                    .await;
            assert!(first_poll.is_pending(), "{id} was answered at once");
            drop(submission);
        }
        // The leaves in the sequencer become durable all the same, and are indexed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for (index, id) in [plain, with_payload].into_iter().enumerate() {
            let summary = loop {
                if let Some(summary) = events.store.find(id).expect("find") {
                    break summary;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the dropped submission of {id} was never indexed"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            assert_eq!(summary.index, index as u64);
        }
        // Retries are answered as the events logged before, payloads and all.
        for (id, payload) in [(plain, false), (with_payload, true)] {
            let retried = events
                .submit(vec![event(id, payload)], "p")
                .await
                .expect("retry");
            assert!(retried[0].duplicate);
            let summary = events.store.find(id).expect("find").expect("indexed");
            assert_eq!(summary.index, retried[0].index);
            let event_id = EventId::parse(id).expect("an event ID");
            match events
                .store
                .contents(summary.index, &event_id)
                .expect("contents")
            {
                Contents::Held(openings) => assert_eq!(openings.payload.is_some(), payload),
                Contents::Erased => panic!("the contents of {id} are gone"),
            }
        }
        sequencer.shutdown().await.expect("shutdown");
    }
}
