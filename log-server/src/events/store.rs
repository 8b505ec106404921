//! The events database beside the log. Two backends:
//!
//! - embedded ([`EventStore::open`]), in `<data_dir>/events`:
//!
//!   ```text
//!   index/           the events index: summaries and postings by event ID, actor, resource,
//!                    action and time, as sorted run files (see [`super::index`]); derived from
//!                    the log's leaves, rebuilt from them if lost
//!   subjects.sqlite  the data subjects' keys (see [`super::privacy::keystore`])
//!   ```
//!
//! - shared by the front-ends of the scaled backend ([`EventStore::open_shared`]): the index and
//!   the subjects' keys in the log's PostgreSQL schema ([`super::postgres`]); only the KEK file
//!   (by default) is in `<data_dir>/events`.
//!
//! Apart from the subjects' keys, nothing here is this database's own: everything is derived
//! from the log. Payloads are stored in the log beside their events' leaves
//! ([`crate::storage::NewEntry::with_payload`]), made durable by the same write, and erased in
//! place there; the index reads back the log's entries past its watermark on open; legal holds
//! and erasure marks are the log's admin events read back and applied in order
//! ([`super::records`]): on open, and, when the log is shared by several front-ends, again
//! before every read of them, from where the last reading stopped (another front-end may have
//! logged a hold since). So a crash between two writes cannot leave this database and the log
//! disagreeing, and every front-end applies the same records in the same order.

use std::path::Path;
use std::sync::Arc;

use cairn_spec::event::{event_limits, AnyEventLeaf, EventId, EventLeaf, IndexedField};
use cairn_spec::jcs::{self, Value};
use sha2::{Digest, Sha256};

use parking_lot::{Mutex, MutexGuard};

use super::index::{EventIndex, IndexConfig};
pub use super::model::{
    EventIndexStore, EventStoreError, EventSummary, Hold, HoldTarget, InFlightSubmission,
    QueryFilter, QueryPage,
};
use super::postgres::{PostgresEventIndex, PostgresKeyRows};
use super::privacy::keystore::KeyRows;
use super::privacy::{self, Contents, Privacy, PrivacySettings};
use super::records::{self, RecordEvent, Records};
use crate::storage::postgres::{PostgresConfig, PostgresStore};
use crate::storage::{SequenceStore, StoredPayload};

/// Most results of one query page.
pub const MAX_QUERY_LIMIT: usize = 1000;
/// Results of one query page when the caller does not say.
pub const DEFAULT_QUERY_LIMIT: usize = 100;
/// How many log entries the catch-up reads at once.
const CATCH_UP_CHUNK: u64 = 256;

/// How the events database is sized.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventStoreConfig {
    /// The index's table and run sizes.
    pub index: IndexConfig,
    /// The KEK and the subject field; `None`: a KEK made in the events directory, subjects by
    /// actor ([`PrivacySettings::in_dir`]).
    pub privacy: Option<PrivacySettings>,
}

/// The events database.
#[derive(Clone)]
pub struct EventStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Holds and erasure marks, derived from the log's admin events.
    records: Mutex<AppliedRecords>,
    index: Box<dyn EventIndexStore>,
    /// The log, which holds the payloads.
    log: Arc<dyn SequenceStore>,
    /// Data keys, encryption of contents records, index tags.
    privacy: Privacy,
}

/// The records and how far into the log their admin events are applied.
#[derive(Default)]
struct AppliedRecords {
    records: Records,
    /// Every admin event below this log index is applied.
    applied_below: u64,
}

impl EventStore {
    /// Opens the database of a log shared by several front-ends (the scaled backend): the index
    /// and the subjects' keys in the log's PostgreSQL schema (a connection pool of its own, from
    /// `postgres`), the KEK as `config` says (every front-end must have the same: checked). The
    /// index is first brought up to the log's end (the events that a front-end which died
    /// after sequencing them did not index are indexed now). Blocking.
    pub fn open_shared(
        dir: &Path,
        config: EventStoreConfig,
        log: Arc<dyn SequenceStore>,
        postgres: PostgresConfig,
    ) -> Result<EventStore, EventStoreError> {
        let database = Arc::new(PostgresStore::open_for_events(postgres)?);
        let settings = config
            .privacy
            .clone()
            .unwrap_or_else(|| PrivacySettings::in_dir(dir));
        let keys: Box<dyn KeyRows> = Box::new(PostgresKeyRows::new(Arc::clone(&database)));
        let privacy = Privacy::open_with(dir, &settings, Some(keys))?;
        let index = PostgresEventIndex::open(database)?;
        index.flush(log.entry_count())?;
        EventStore::with_index(Box::new(index), log, privacy)
    }

    /// Opens (or creates) the database in `dir` beside `log`, with the embedded events index,
    /// and indexes the log's entries that the index does not cover yet. Blocking.
    pub fn open(
        dir: &Path,
        config: EventStoreConfig,
        log: Arc<dyn SequenceStore>,
    ) -> Result<EventStore, EventStoreError> {
        for (older, what) in [
            ("db", "the sled database"),
            ("payloads", "the payload log"),
            ("state", "the sled database of holds and erasure marks"),
        ] {
            if dir.join(older).exists() {
                return Err(EventStoreError::Corrupt {
                    what: "events directory",
                    detail: format!(
                        "{} holds {what} of an older cairn-log; move it away (its indexes are \
                         rebuilt from the log, its payloads are not carried over)",
                        dir.display()
                    ),
                });
            }
        }
        let settings = config
            .privacy
            .clone()
            .unwrap_or_else(|| PrivacySettings::in_dir(dir));
        let privacy = Privacy::open(dir, &settings)?;
        let index = EventIndex::open(&dir.join("index"), config.index, log.entry_count())?;
        EventStore::with_index(Box::new(index), log, privacy)
    }

    /// The database over `index`, of any backend, beside `log`: indexes the log's entries from
    /// the index's watermark on, then derives holds and erasure marks from the log. Blocking.
    pub fn with_index(
        index: Box<dyn EventIndexStore>,
        log: Arc<dyn SequenceStore>,
        privacy: Privacy,
    ) -> Result<EventStore, EventStoreError> {
        let watermark = index.watermark();
        let store = EventStore {
            inner: Arc::new(Inner {
                records: Mutex::new(AppliedRecords::default()),
                index,
                log,
                privacy,
            }),
        };
        store.catch_up(watermark)?;
        let size = store.inner.log.entry_count();
        if store.inner.log.shared_by_front_ends() {
            // Other front-ends may have logged events since the catch-up read the end.
            store.inner.index.flush(size)?;
        }
        store.apply_logged(&mut store.inner.records.lock(), size)?;
        Ok(store)
    }

    /// The records, with every admin event of the log applied: when the log is shared by
    /// several front-ends, the admin events logged since the last reading (by any of them) are
    /// applied first. Blocking.
    fn records(&self) -> Result<MutexGuard<'_, AppliedRecords>, EventStoreError> {
        let mut applied = self.inner.records.lock();
        if self.inner.log.shared_by_front_ends() {
            let size = self.inner.log.entry_count();
            if size > applied.applied_below {
                // Every event below `size` indexed, whichever front-end logged it.
                self.inner.index.flush(size)?;
                self.apply_logged(&mut applied, size)?;
            }
        }
        Ok(applied)
    }

    /// Reads the log's admin events in `[applied_below, size)` back (the index has them all
    /// after a catch-up or a flush) and applies them in log order; finishes the erasures that a
    /// crash left undone.
    fn apply_logged(&self, applied: &mut AppliedRecords, size: u64) -> Result<(), EventStoreError> {
        let mut logged = Vec::new();
        for action in records::RECORD_ACTIONS {
            let mut filter = QueryFilter {
                action: Some(action.to_string()),
                after: applied.applied_below.checked_sub(1),
                below: Some(size),
                ..QueryFilter::default()
            };
            loop {
                let page = self.query(&filter, MAX_QUERY_LIMIT, MAX_QUERY_LIMIT)?;
                logged.extend(page.events);
                match page.next_after {
                    Some(after) => filter.after = Some(after),
                    None => break,
                }
            }
        }
        logged.sort_by_key(|summary| summary.index);
        let mut unfinished = 0usize;
        for summary in &logged {
            let corrupt = |detail: String| EventStoreError::Corrupt {
                what: "admin record",
                detail: format!(
                    "event {} at index {}: {detail}",
                    summary.event_id, summary.index
                ),
            };
            let entry = self.inner.log.read_entries(summary.index, 1)?;
            let leaf = entry
                .first()
                .and_then(|entry| EventLeaf::parse(&entry.leaf).ok())
                .ok_or_else(|| corrupt("its leaf is not an event".into()))?;
            if leaf.submitted_by != leaf.actor_id || leaf.actor_type != "principal" {
                tracing::warn!(
                    event_id = summary.event_id,
                    index = summary.index,
                    submitted_by = leaf.submitted_by,
                    "an event under a reserved action that the server did not write is ignored"
                );
                continue;
            }
            let payload = self
                .payload(summary)?
                .ok_or_else(|| corrupt("its payload, which records the action, is gone".into()))?;
            let payload: serde_json::Value = serde_json::from_slice(&payload)
                .map_err(|error| corrupt(format!("its payload is not JSON: {error}")))?;
            let done = applied
                .records
                .apply(&RecordEvent {
                    event_id: &summary.event_id,
                    action: &summary.action,
                    actor: &leaf.actor_id,
                    payload: &payload,
                })
                .map_err(corrupt)?;
            // A shredding whose keys a crash left undestroyed is finished.
            unfinished += self.inner.privacy.destroy_keys(&done.shredded_keys)?;
            for event_id in done.erased {
                let Some(target) = self.find(&event_id)? else {
                    continue;
                };
                if target.has_payload && self.inner.log.erase_payload(target.index)? {
                    unfinished += 1;
                }
            }
        }
        applied.applied_below = applied.applied_below.max(size);
        if !logged.is_empty() {
            tracing::info!(
                admin_events = logged.len(),
                finished_erasures = unfinished,
                "holds and erasure marks read back from the log"
            );
        }
        Ok(())
    }

    /// Indexes the event leaves of `[watermark, log size)`.
    fn catch_up(&self, watermark: u64) -> Result<(), EventStoreError> {
        let log = &self.inner.log;
        let size = log.entry_count();
        let mut next = watermark;
        let mut indexed = 0u64;
        while next < size {
            let count = (size - next)
                .min(CATCH_UP_CHUNK)
                .min(log.limits().max_read_with_payloads());
            // Entries and their contents records in one read: a store across the network
            // answers each read with a round trip, and a catch-up reads a whole chunk.
            for (entry, payload) in log.read_entries_with_payloads(next, count)? {
                if entry.leaf.first() != Some(&b'{') {
                    continue;
                }
                let index = entry.index;
                let Some(summary) = summary_of_entry(index, &entry.leaf, || Ok(payload))? else {
                    continue;
                };
                // Every event below `index` is inserted: a table may be cut there.
                self.inner.index.insert(summary, index)?;
                indexed += 1;
            }
            next += count;
        }
        if indexed > 0 {
            tracing::info!(
                from = watermark,
                to = size,
                indexed,
                "events index caught up with the log"
            );
        }
        Ok(())
    }

    /// Registers a submission about to reach the sequencer; `durable_size` is the log's, read
    /// before the call. Refused while the index writer is far behind (so that memory stays
    /// bounded), before anything is stored.
    pub fn begin_submission(
        &self,
        durable_size: u64,
    ) -> Result<InFlightSubmission, EventStoreError> {
        if self.inner.index.overloaded() {
            return Err(EventStoreError::Overloaded);
        }
        Ok(self.inner.index.begin(durable_size))
    }

    /// Indexes a sequenced event; `durable_size` is the log's, read before the call.
    pub fn index_event(
        &self,
        summary: EventSummary,
        durable_size: u64,
    ) -> Result<(), EventStoreError> {
        self.inner.index.insert(summary, durable_size)
    }

    /// Indexes the sequenced events of one submission, in log order, as [`Self::index_event`]
    /// indexes each.
    pub fn index_events(
        &self,
        summaries: Vec<EventSummary>,
        durable_size: u64,
    ) -> Result<(), EventStoreError> {
        self.inner.index.insert_all(summaries, durable_size)
    }

    /// Writes every event below `durable_size` (the log's) out to runs and waits for it.
    pub fn flush_index(&self, durable_size: u64) -> Result<(), EventStoreError> {
        self.inner.index.flush(durable_size)
    }

    /// Writes the whole index out (at shutdown) and stops the background writer; the log's
    /// durable size is `durable_size`.
    pub fn close(&self, durable_size: u64) -> Result<(), EventStoreError> {
        let result = self.flush_index(durable_size);
        self.inner.index.close();
        result
    }

    /// The event with `event_id`, if it is logged and indexed.
    pub fn find(&self, event_id: &str) -> Result<Option<EventSummary>, EventStoreError> {
        self.inner.index.find(event_id)
    }

    /// The event at log index `index`, if an event is there.
    pub fn summary(&self, index: u64) -> Result<Option<EventSummary>, EventStoreError> {
        self.inner.index.summary(index)
    }

    /// One page of events matching `filter`, at most `limit` of them, examining at most
    /// `max_scan` candidates (so that a very selective filter cannot make one request
    /// unbounded: the page may then be short, with a cursor to go on from).
    pub fn query(
        &self,
        filter: &QueryFilter,
        limit: usize,
        max_scan: usize,
    ) -> Result<QueryPage, EventStoreError> {
        self.inner.index.query(filter, limit, max_scan)
    }

    /// Events that were given a payload (erased or not), in log order after `after`.
    pub fn payload_events(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError> {
        self.inner.index.payload_events(after, limit)
    }

    /// The stored canonical payload of the event, unless erased or never given.
    pub fn payload(&self, summary: &EventSummary) -> Result<Option<Vec<u8>>, EventStoreError> {
        if !summary.has_payload {
            return Ok(None);
        }
        match self.inner.log.read_payload(summary.index)? {
            Some(StoredPayload::Held(bytes)) => Ok(Some(bytes)),
            Some(StoredPayload::Erased) => Ok(None),
            None => Err(EventStoreError::Corrupt {
                what: "payload",
                detail: format!(
                    "event {} at {} has a payload hash, and the log no payload beside it",
                    summary.event_id, summary.index
                ),
            }),
        }
    }

    /// The event that recorded the erasure of `event_id`'s payload, if it was erased.
    /// Blocking.
    pub fn erasure(&self, event_id: &str) -> Result<Option<String>, EventStoreError> {
        Ok(self
            .records()?
            .records
            .erasure(event_id)
            .map(str::to_string))
    }

    /// Destroys the payload of the event (its bytes are overwritten and synced), marking it
    /// erased by `erasure_event_id`, which must be logged already. Returns whether its bytes
    /// were there to erase.
    pub fn erase_payload(
        &self,
        summary: &EventSummary,
        erasure_event_id: &str,
    ) -> Result<bool, EventStoreError> {
        if !summary.has_payload {
            return Ok(false);
        }
        let erased = self.inner.log.erase_payload(summary.index)?;
        self.records()?
            .records
            .mark_erased(&summary.event_id, erasure_event_id);
        Ok(erased)
    }

    /// Sets a hold, whose event is logged already; returns false if one was already on that
    /// target (it is left as it was). Blocking.
    pub fn set_hold(&self, hold: &Hold) -> Result<bool, EventStoreError> {
        let mut applied = self.records()?;
        if applied.records.hold(&hold.target) == Some(hold) {
            // Its event was read back from the log just now.
            return Ok(true);
        }
        Ok(applied.records.set_hold(hold.clone()))
    }

    /// The hold on `target`, if any. Blocking.
    pub fn hold(&self, target: &HoldTarget) -> Result<Option<Hold>, EventStoreError> {
        Ok(self.records()?.records.hold(target).cloned())
    }

    /// Lifts the hold on `target`, whose lifting event is logged already; returns it if there
    /// was one. Blocking.
    pub fn lift_hold(&self, target: &HoldTarget) -> Result<Option<Hold>, EventStoreError> {
        let before = self.inner.records.lock().records.hold(target).cloned();
        let mut applied = self.records()?;
        // Read back from the log just now, the lifting event may have lifted it already.
        Ok(applied.records.lift_hold(target).or(before))
    }

    /// Every hold. Blocking.
    pub fn holds(&self) -> Result<Vec<Hold>, EventStoreError> {
        Ok(self.records()?.records.holds())
    }

    /// The holds that cover the event summarised by `summary`: on the event, its actor or its
    /// resource (as the index has them, and, for a schema 1 event, as tags too: holds are
    /// recorded by tag). Blocking.
    pub fn holds_on(&self, summary: &EventSummary) -> Result<Vec<Hold>, EventStoreError> {
        let mut targets = vec![
            HoldTarget::Event(summary.event_id.clone()),
            HoldTarget::Actor(summary.actor_id.clone()),
            HoldTarget::Resource(summary.resource_id.clone()),
        ];
        if !summary.is_tagged() {
            if let Some(tag) = self.tag(IndexedField::ActorId, &summary.actor_id)? {
                targets.push(HoldTarget::Actor(tag));
            }
            if let Some(tag) = self.tag(IndexedField::ResourceId, &summary.resource_id)? {
                targets.push(HoldTarget::Resource(tag));
            }
        }
        let applied = self.records()?;
        Ok(targets
            .iter()
            .filter_map(|target| applied.records.hold(target).cloned())
            .collect())
    }

    /// The encryption, tags and subject keys of the events' contents.
    pub fn privacy(&self) -> &Privacy {
        &self.inner.privacy
    }

    /// The tag form of an identifier in the index of schema 2 events (see
    /// [`Privacy::query_tag`]). Blocking.
    pub fn tag(&self, field: IndexedField, value: &str) -> Result<Option<String>, EventStoreError> {
        self.inner.privacy.query_tag(field, value)
    }

    /// The contents of the schema 2 event `event_id` at `index`: its openings, or erased
    /// (record erased, or its subject's data key destroyed). Blocking.
    pub fn contents(&self, index: u64, event_id: &EventId) -> Result<Contents, EventStoreError> {
        match self.inner.log.read_payload(index)? {
            Some(StoredPayload::Held(bytes)) => self.inner.privacy.open_record(event_id, &bytes),
            Some(StoredPayload::Erased) => Ok(Contents::Erased),
            None => Err(EventStoreError::Corrupt {
                what: "contents record",
                detail: format!(
                    "the schema 2 event {} at {index} has no contents record beside it",
                    event_id.as_str()
                ),
            }),
        }
    }
}

/// The summary of the log's entry at `index` with `leaf`, if it is an event (schema 1 or 2):
/// what the events index holds for it, whoever derives it (the front-end that sequenced it, or
/// a catch-up). `payload` reads the entry's payload, which only a schema 2 event needs (its
/// tags are in the contents record's header, readable without a key; an erased record leaves
/// the event untagged).
pub fn summary_of_entry(
    index: u64,
    leaf: &[u8],
    payload: impl FnOnce() -> Result<Option<StoredPayload>, EventStoreError>,
) -> Result<Option<EventSummary>, EventStoreError> {
    if leaf.first() != Some(&b'{') {
        return Ok(None);
    }
    Ok(match AnyEventLeaf::parse(leaf) {
        Ok(AnyEventLeaf::V1(leaf)) => Some(EventSummary::of_leaf(index, leaf)),
        Ok(AnyEventLeaf::V2(leaf)) => {
            let tags = match payload()? {
                Some(StoredPayload::Held(bytes)) => Some(
                    privacy::record::header(&bytes)
                        .map_err(|detail| EventStoreError::Corrupt {
                            what: "contents record",
                            detail: format!("at index {index}: {detail}"),
                        })?
                        .tags,
                ),
                _ => None,
            };
            Some(EventSummary::of_v2(index, &leaf, tags.as_ref()))
        }
        Err(_) => None,
    })
}

/// SHA-256 of the canonical leaf without `received_at`: two submissions of one event ID are the
/// same event exactly when this agrees (the server's receive time differs between retries).
pub fn claim_digest(leaf: &[u8]) -> [u8; 32] {
    let stripped = match jcs::parse(leaf, event_limits()) {
        Ok(Value::Object(members)) => jcs::canonicalize(&Value::Object(
            members
                .into_iter()
                .filter(|(name, _)| name != "received_at")
                .collect(),
        )),
        // Not an event leaf: its bytes are its claim.
        _ => return Sha256::digest(leaf).into(),
    };
    Sha256::digest(stripped.as_bytes()).into()
}

#[cfg(test)]
mod tests;
