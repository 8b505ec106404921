//! The events database beside the log, in `<data_dir>/events`:
//!
//! ```text
//! index/     the events index: summaries and postings by event ID, actor, resource, action
//!            and time, as sorted run files (see [`super::index`]); derived from the log's
//!            leaves, rebuilt from them if lost
//! ```
//!
//! Nothing here is this database's own: everything is derived from the log. Payloads are
//! stored in the log beside their events' leaves ([`crate::storage::NewEntry::with_payload`]),
//! made durable by the same write, and erased in place there; the index reads back the log's
//! entries past its last run on open; legal holds and erasure marks are the log's admin events
//! read back and applied in order on open ([`super::records`]). So a crash between two writes
//! cannot leave this database and the log disagreeing.

use std::path::Path;
use std::sync::Arc;

use cairn_spec::event::{event_limits, AnyEventLeaf, EventId, EventLeaf, IndexedField};
use cairn_spec::jcs::{self, Value};
use sha2::{Digest, Sha256};

use parking_lot::Mutex;

use super::index::{EventIndex, IndexConfig};
pub use super::model::{
    EventIndexStore, EventStoreError, EventSummary, Hold, HoldTarget, InFlightSubmission,
    QueryFilter, QueryPage,
};
use super::privacy::{self, Contents, Privacy, PrivacySettings};
use super::records::{self, RecordEvent, Records};
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
    records: Mutex<Records>,
    index: Box<dyn EventIndexStore>,
    /// The log, which holds the payloads.
    log: Arc<dyn SequenceStore>,
    /// Data keys, encryption of contents records, index tags.
    privacy: Privacy,
    /// The completeness index kept beside this database (held by the server; here weakly, as
    /// it holds this store).
    completeness: std::sync::OnceLock<std::sync::Weak<crate::completeness::CompletenessIndex>>,
}

impl EventStore {
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
                records: Mutex::new(Records::default()),
                index,
                log,
                privacy,
                completeness: std::sync::OnceLock::new(),
            }),
        };
        store.catch_up(watermark)?;
        store.derive_records()?;
        Ok(store)
    }

    /// Reads the log's admin events back (the index has them all after the catch-up) and
    /// applies them in log order; finishes the erasures that a crash left undone.
    fn derive_records(&self) -> Result<(), EventStoreError> {
        let mut logged = Vec::new();
        for action in records::RECORD_ACTIONS {
            let mut filter = QueryFilter {
                action: Some(action.to_string()),
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
            let applied = self
                .inner
                .records
                .lock()
                .apply(&RecordEvent {
                    event_id: &summary.event_id,
                    action: &summary.action,
                    actor: &leaf.actor_id,
                    payload: &payload,
                })
                .map_err(corrupt)?;
            // A shredding whose keys a crash left undestroyed is finished.
            unfinished += self.inner.privacy.destroy_keys(&applied.shredded_keys)?;
            for event_id in applied.erased {
                let Some(target) = self.find(&event_id)? else {
                    continue;
                };
                if target.has_payload && self.inner.log.erase_payload(target.index)? {
                    unfinished += 1;
                }
            }
        }
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
            let count = (size - next).min(CATCH_UP_CHUNK);
            for (offset, entry) in log.read_entries(next, count)?.iter().enumerate() {
                if entry.leaf.first() != Some(&b'{') {
                    continue;
                }
                let index = next + offset as u64;
                let summary = match AnyEventLeaf::parse(&entry.leaf) {
                    Ok(AnyEventLeaf::V1(leaf)) => EventSummary::of_leaf(index, leaf),
                    Ok(AnyEventLeaf::V2(leaf)) => {
                        // The tags are in the contents record's header, readable without a
                        // key; an erased record leaves the event untagged.
                        let tags = match log.read_payload(index)? {
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
                        EventSummary::of_v2(index, &leaf, tags.as_ref())
                    }
                    Err(_) => continue,
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
    pub fn erasure(&self, event_id: &str) -> Result<Option<String>, EventStoreError> {
        Ok(self
            .inner
            .records
            .lock()
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
        self.inner
            .records
            .lock()
            .mark_erased(&summary.event_id, erasure_event_id);
        Ok(erased)
    }

    /// Sets a hold, whose event is logged already; returns false if one was already on that
    /// target (it is left as it was).
    pub fn set_hold(&self, hold: &Hold) -> bool {
        self.inner.records.lock().set_hold(hold.clone())
    }

    /// The hold on `target`, if any.
    pub fn hold(&self, target: &HoldTarget) -> Option<Hold> {
        self.inner.records.lock().hold(target).cloned()
    }

    /// Lifts the hold on `target`, whose lifting event is logged already; returns it if there
    /// was one.
    pub fn lift_hold(&self, target: &HoldTarget) -> Option<Hold> {
        self.inner.records.lock().lift_hold(target)
    }

    /// Every hold.
    pub fn holds(&self) -> Vec<Hold> {
        self.inner.records.lock().holds()
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
        let records = self.inner.records.lock();
        Ok(targets
            .iter()
            .filter_map(|target| records.hold(target).cloned())
            .collect())
    }

    /// Makes `index` the completeness index that answers prove against (once).
    pub fn attach_completeness(&self, index: &Arc<crate::completeness::CompletenessIndex>) {
        let _ = self.inner.completeness.set(Arc::downgrade(index));
    }

    /// The completeness index, if the server keeps one.
    pub fn completeness(&self) -> Option<Arc<crate::completeness::CompletenessIndex>> {
        self.inner
            .completeness
            .get()
            .and_then(std::sync::Weak::upgrade)
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
mod tests {
    use super::*;
    use crate::storage::embedded::{EmbeddedConfig, EmbeddedStore};
    use crate::storage::LogStore;
    use crate::storage::NewEntry;
    use cairn_spec::event::{EventId, EventInput};
    use cairn_spec::time::Instant;
    use rand::{Rng as _, SeedableRng as _};

    fn input(random: &mut rand::rngs::StdRng) -> EventInput {
        let payload = if random.gen_bool(0.5) {
            format!(r#","payload":{{"n":{}}}"#, random.gen_range(0..1000))
        } else {
            String::new()
        };
        let json = format!(
            r#"{{"timestamp":"2026-11-25T{:02}:{:02}:00Z","actor":{{"id":"a{}","type":"user"}},"action":"act{}","resource":{{"type":"t","id":"r{}"}},"outcome":"success"{payload}}}"#,
            random.gen_range(0..24),
            random.gen_range(0..60),
            random.gen_range(0..4),
            random.gen_range(0..3),
            random.gen_range(0..5),
        );
        EventInput::parse(json.as_bytes()).expect("valid")
    }

    fn config() -> EventStoreConfig {
        EventStoreConfig {
            index: IndexConfig {
                table_events: 37,
                max_runs: 3,
            },
            privacy: None,
        }
    }

    fn open_log(dir: &Path) -> Arc<dyn LogStore> {
        Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.join("log"))).expect("log"))
    }

    /// `leaf` appended to `log` at its end, with `payload` beside it.
    fn append(log: &dyn LogStore, leaf: &EventLeaf, payload: Option<Vec<u8>>) -> u64 {
        let index = log.entry_count();
        let entry = NewEntry::new(leaf.leaf.clone(), None).with_payload(payload);
        log.append_entries(index, &[entry]).expect("append");
        index
    }

    fn all_pages(store: &EventStore, filter: &QueryFilter, limit: usize, scan: usize) -> Vec<u64> {
        let mut filter = filter.clone();
        let mut found = Vec::new();
        loop {
            let page = store.query(&filter, limit, scan).expect("query");
            assert!(page.events.len() <= limit);
            found.extend(page.events.iter().map(|e| e.index));
            match page.next_after {
                Some(after) => filter.after = Some(after),
                None => return found,
            }
        }
    }

    fn filters(random: &mut rand::rngs::StdRng) -> Vec<QueryFilter> {
        let base = Instant::parse_rfc3339("2026-11-25T00:00:00Z")
            .expect("time")
            .unix_nanos();
        let hour = 3_600_000_000_000i128;
        let mut filters = vec![QueryFilter::default()];
        for _ in 0..200 {
            filters.push(QueryFilter {
                actor: random
                    .gen_bool(0.4)
                    .then(|| format!("a{}", random.gen_range(0..5))),
                resource: random
                    .gen_bool(0.4)
                    .then(|| format!("r{}", random.gen_range(0..6))),
                action: random
                    .gen_bool(0.4)
                    .then(|| format!("act{}", random.gen_range(0..4))),
                from_nanos: random
                    .gen_bool(0.4)
                    .then(|| base + random.gen_range(0..24) * hour),
                to_nanos: random
                    .gen_bool(0.4)
                    .then(|| base + random.gen_range(0..24) * hour),
                after: random.gen_bool(0.2).then(|| random.gen_range(0..1200)),
                below: random.gen_bool(0.2).then(|| random.gen_range(0..1200)),
            });
        }
        filters
    }

    /// Every query, paged with random limits and scan budgets, against a brute-force scan;
    /// every event found by ID with its payload.
    fn check(
        store: &EventStore,
        events: &[(EventSummary, Option<Vec<u8>>)],
        filters: &[QueryFilter],
        random: &mut rand::rngs::StdRng,
    ) {
        for filter in filters {
            let expected: Vec<u64> = events
                .iter()
                .filter(|(summary, _)| filter.matches(summary))
                .map(|(summary, _)| summary.index)
                .collect();
            let limit = random.gen_range(1..30);
            let scan = random.gen_range(1..200);
            assert_eq!(
                all_pages(store, filter, limit, scan),
                expected,
                "{filter:?}"
            );
        }
        for (summary, payload) in events {
            let found = store.find(&summary.event_id).expect("find").expect("found");
            assert_eq!(found.index, summary.index);
            assert_eq!(
                store.summary(summary.index).expect("read").as_ref(),
                Some(&found)
            );
            assert_eq!(&store.payload(&found).expect("payload"), payload);
        }
    }

    #[test]
    fn paged_queries_equal_a_brute_force_scan_through_runs_merges_reopen_and_rebuild() {
        let dir = tempfile::tempdir().expect("dir");
        let log = open_log(dir.path());
        let events_dir = dir.path().join("events");
        let mut random = rand::rngs::StdRng::seed_from_u64(7);
        let filters = filters(&mut random);
        let mut events = Vec::new();
        {
            let store = EventStore::open(&events_dir, config(), log.clone()).expect("open");
            for round in 0..400 {
                // Raw leaves between events leave gaps in the indices.
                for _ in 0..random.gen_range(0..3) {
                    let raw = format!("raw {round} {}", random.gen::<u64>()).into_bytes();
                    log.append_entries(log.entry_count(), &[NewEntry::new(raw, None)])
                        .expect("append");
                }
                let event = input(&mut random);
                let (leaf, payload) = leaf_of(event, "p", &mut random);
                let ticket = store
                    .begin_submission(log.entry_count())
                    .expect("not overloaded");
                let index = append(log.as_ref(), &leaf, payload.clone());
                let summary = EventSummary::of_leaf(index, leaf);
                store
                    .index_event(summary.clone(), log.entry_count())
                    .expect("index");
                drop(ticket);
                events.push((summary, payload));
                if round % 97 == 0 {
                    check(&store, &events, &filters[..20], &mut random);
                }
            }
            check(&store, &events, &filters, &mut random);
            store.close(log.entry_count()).expect("close");
        }
        // Reopened: everything is in runs.
        let store = EventStore::open(&events_dir, config(), log.clone()).expect("reopen");
        check(&store, &events, &filters, &mut random);
        drop(store);
        // The index deleted: rebuilt from the log, payloads still beside their leaves.
        std::fs::remove_dir_all(events_dir.join("index")).expect("delete the index");
        let store = EventStore::open(&events_dir, config(), log.clone()).expect("rebuild");
        check(&store, &events, &filters, &mut random);
    }

    /// A catch-up that fills a table cuts it mid-way, writes that run out, and the process dies
    /// with the rest in memory: the next catch-up indexes the rest, every payload found.
    #[test]
    fn a_catch_up_that_cuts_a_table_is_finished_by_the_next_one() {
        let dir = tempfile::tempdir().expect("dir");
        let log = open_log(dir.path());
        let events_dir = dir.path().join("events");
        let mut random = rand::rngs::StdRng::seed_from_u64(11);
        let events = 60; // a table of 37, cut during the first catch-up
        let mut expected = Vec::new();
        for n in 0..events {
            let json = format!(
                r#"{{"timestamp":"2026-11-25T00:00:00Z","actor":{{"id":"a","type":"user"}},"action":"act","resource":{{"type":"t","id":"r"}},"outcome":"success","payload":{{"n":{n}}}}}"#
            );
            let input = EventInput::parse(json.as_bytes()).expect("valid");
            let (leaf, payload) = leaf_of(input, "p", &mut random);
            append(log.as_ref(), &leaf, payload.clone());
            expected.push((leaf.event_id.as_str().to_string(), payload));
        }
        {
            let _store =
                EventStore::open(&events_dir, config(), log.clone()).expect("first catch-up");
            let index_dir = events_dir.join("index");
            let written = (0..500).any(|_| {
                let runs = std::fs::read_dir(&index_dir)
                    .expect("index dir")
                    .filter_map(Result::ok)
                    .any(|entry| entry.file_name().to_string_lossy().ends_with(".evr"));
                if !runs {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                runs
            });
            assert!(written, "the cut table was written out");
        }
        let store = EventStore::open(&events_dir, config(), log).expect("second catch-up");
        for (id, payload) in &expected {
            let found = store.find(id).expect("find").expect("indexed");
            assert_eq!(&store.payload(&found).expect("payload"), payload, "{id}");
        }
    }

    /// An admin event as the server records it: by `admin`, who is also its actor.
    fn admin_event(
        admin: &str,
        action: &str,
        resource: (&str, &str),
        details: serde_json::Value,
        random: &mut rand::rngs::StdRng,
    ) -> (EventLeaf, Option<Vec<u8>>) {
        let input =
            crate::events::submit::audit_event(admin, action, resource.0, resource.1, details)
                .expect("valid");
        leaf_of(input, admin, random)
    }

    /// `input` as a leaf submitted by `submitted_by`, with a random event ID.
    fn leaf_of(
        input: EventInput,
        submitted_by: &str,
        random: &mut rand::rngs::StdRng,
    ) -> (EventLeaf, Option<Vec<u8>>) {
        input
            .into_leaf(
                EventId::new_v4(random.gen()),
                Instant::from_unix(1_764_000_000, 0),
                submitted_by,
            )
            .expect("leaf")
    }

    /// The crash windows of admin actions: each action's event is logged, and the process dies
    /// before the action took effect (the hold never set, the payload never erased). Opening
    /// puts the hold in force and finishes the erasure; a record the server did not write is
    /// ignored.
    #[test]
    fn admin_events_logged_before_a_crash_take_effect_at_open() {
        use crate::events::records::{HOLD_LIFT, HOLD_SET, PAYLOAD_ERASE};
        let dir = tempfile::tempdir().expect("dir");
        let log = open_log(dir.path());
        let events_dir = dir.path().join("events");
        let mut random = rand::rngs::StdRng::seed_from_u64(23);
        let json = r#"{"timestamp":"2026-11-25T00:00:00Z","actor":{"id":"a","type":"user"},"action":"read","resource":{"type":"t","id":"r"},"outcome":"success","payload":{"secret":1}}"#;
        let input = EventInput::parse(json.as_bytes()).expect("valid");
        let (target, payload) = leaf_of(input, "p", &mut random);
        let target_id = target.event_id.as_str().to_string();
        let target_index = append(log.as_ref(), &target, payload);
        let (erase, payload) = admin_event(
            "root",
            PAYLOAD_ERASE,
            ("event", &target_id),
            serde_json::json!({"event_id": target_id, "index": target_index, "reason": "gdpr"}),
            &mut random,
        );
        let erase_id = erase.event_id.as_str().to_string();
        append(log.as_ref(), &erase, payload);
        for (action, value) in [(HOLD_SET, "a"), (HOLD_SET, "c"), (HOLD_LIFT, "c")] {
            let (hold, payload) = admin_event(
                "root",
                action,
                ("hold", &format!("actor:{value}")),
                serde_json::json!({"kind": "actor", "value": value, "reason": "case 7"}),
                &mut random,
            );
            append(log.as_ref(), &hold, payload);
        }
        // A producer's event under a reserved action (refused at submission since; an older
        // log could hold one): its principal is not its actor.
        let (forged, payload) = admin_event(
            "root",
            HOLD_SET,
            ("hold", "actor:b"),
            serde_json::json!({"kind": "actor", "value": "b", "reason": "forged"}),
            &mut random,
        );
        let forged = EventLeaf::parse(
            &String::from_utf8(forged.leaf)
                .expect("UTF-8")
                .replace(r#""submitted_by":"root""#, r#""submitted_by":"p""#)
                .into_bytes(),
        )
        .expect("a leaf");
        append(log.as_ref(), &forged, payload);

        let store = EventStore::open(&events_dir, config(), log.clone()).expect("open");
        let hold = store
            .hold(&HoldTarget::Actor("a".into()))
            .expect("the logged hold is in force");
        assert_eq!(
            (hold.set_by.as_str(), hold.reason.as_str()),
            ("root", "case 7")
        );
        assert_eq!(store.hold(&HoldTarget::Actor("c".into())), None, "lifted");
        assert_eq!(store.hold(&HoldTarget::Actor("b".into())), None, "forged");
        assert_eq!(store.erasure(&target_id).expect("read"), Some(erase_id));
        assert_eq!(
            log.read_payload(target_index).expect("read"),
            Some(StoredPayload::Erased),
            "the erasure is finished"
        );
        drop(store);
        // And again: the same state, nothing to finish.
        let store = EventStore::open(&events_dir, config(), log.clone()).expect("reopen");
        assert_eq!(store.holds().len(), 1);
    }

    #[test]
    fn refuses_the_events_directory_of_an_older_version() {
        let dir = tempfile::tempdir().expect("dir");
        let log = open_log(dir.path());
        let events_dir = dir.path().join("events");
        std::fs::create_dir_all(events_dir.join("payloads")).expect("an older payload log");
        match EventStore::open(&events_dir, config(), log) {
            Err(EventStoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("payload log"), "{detail}");
            }
            Err(other) => panic!("expected Corrupt, got {other}"),
            Ok(_) => panic!("an older payload log was ignored"),
        }
    }
}
