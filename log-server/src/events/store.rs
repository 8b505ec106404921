//! The events database beside the log (a sled database in `<data_dir>/events`).
//!
//! The log holds each event's leaf; this database holds what the log must not: payloads (which
//! may be erased), and what makes events findable: a record per event ID (its claim digest and
//! index, for idempotency), a summary per index, and secondary indexes by actor, resource and
//! action. Everything but payloads, erasure marks and holds is derived from the log's leaves
//! and can be rebuilt from them ([`EventStore::clear_derived`] + [`EventStore::index_leaf`]).
//!
//! Keys of the secondary indexes are `len(value) (u32 BE) ‖ value ‖ index (u64 BE)`: the
//! length prefix keeps one value from being a prefix of another, the big-endian index keeps
//! each value's events in log order, so a page is one range scan.

use std::path::Path;

use cairn_spec::event::{event_limits, EventLeaf};
use cairn_spec::jcs::{self, Value};
use sha2::{Digest, Sha256};

/// An index of an event record whose leaf is not sequenced yet.
const PENDING: u64 = u64::MAX;
/// Most results of one query page.
pub const MAX_QUERY_LIMIT: usize = 1000;
/// Results of one query page when the caller does not say.
pub const DEFAULT_QUERY_LIMIT: usize = 100;

/// A failure of the events database.
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// sled failed.
    #[error("events database: {0}")]
    Database(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("events database: corrupt {what}: {detail}")]
    Corrupt {
        /// Which kind of value.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The same event ID was submitted before with a different content.
    #[error("event {event_id} was already submitted with a different content")]
    Conflict {
        /// The event ID.
        event_id: String,
    },
}

/// What the store knows about one event ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// SHA-256 of the leaf without `received_at`: what makes two submissions the same event.
    pub claim: [u8; 32],
    /// Its index in the log, once sequenced.
    pub index: Option<u64>,
    /// The leaf.
    pub leaf: Vec<u8>,
}

/// The indexed fields of one logged event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    /// Its index in the log.
    pub index: u64,
    /// `event_id`.
    pub event_id: String,
    /// `timestamp`, in Unix nanoseconds.
    pub time_nanos: i128,
    /// `received_at`, in Unix nanoseconds.
    pub received_nanos: i128,
    /// `actor.id`.
    pub actor_id: String,
    /// `resource.type`.
    pub resource_type: String,
    /// `resource.id`.
    pub resource_id: String,
    /// `action`.
    pub action: String,
}

impl EventSummary {
    /// The summary of `leaf` at `index`.
    pub fn of_leaf(index: u64, leaf: &EventLeaf) -> EventSummary {
        EventSummary {
            index,
            event_id: leaf.event_id.as_str().to_string(),
            time_nanos: leaf.time.unix_nanos(),
            received_nanos: leaf.received_at.unix_nanos(),
            actor_id: leaf.actor_id.clone(),
            resource_type: leaf.resource_type.clone(),
            resource_id: leaf.resource_id.clone(),
            action: leaf.action.clone(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        put_string(&mut out, &self.event_id);
        out.extend_from_slice(&self.time_nanos.to_be_bytes());
        out.extend_from_slice(&self.received_nanos.to_be_bytes());
        for text in [
            &self.actor_id,
            &self.resource_type,
            &self.resource_id,
            &self.action,
        ] {
            put_string(&mut out, text);
        }
        out
    }

    fn decode(index: u64, bytes: &[u8]) -> Result<EventSummary, EventStoreError> {
        let mut reader = Reader {
            bytes,
            what: "summary",
        };
        let event_id = reader.string()?;
        let time_nanos = i128::from_be_bytes(reader.array()?);
        let received_nanos = i128::from_be_bytes(reader.array()?);
        let summary = EventSummary {
            index,
            event_id,
            time_nanos,
            received_nanos,
            actor_id: reader.string()?,
            resource_type: reader.string()?,
            resource_id: reader.string()?,
            action: reader.string()?,
        };
        reader.end()?;
        Ok(summary)
    }
}

/// What a legal hold is on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HoldTarget {
    /// Every event of this `actor.id`.
    Actor(String),
    /// Every event of this `resource.id`.
    Resource(String),
    /// One event.
    Event(String),
}

impl HoldTarget {
    /// `actor`, `resource` or `event_id`.
    pub fn kind(&self) -> &'static str {
        match self {
            HoldTarget::Actor(_) => "actor",
            HoldTarget::Resource(_) => "resource",
            HoldTarget::Event(_) => "event_id",
        }
    }

    /// The held actor, resource or event ID.
    pub fn value(&self) -> &str {
        match self {
            HoldTarget::Actor(value) | HoldTarget::Resource(value) | HoldTarget::Event(value) => {
                value
            }
        }
    }

    fn key(&self) -> Vec<u8> {
        let tag = match self {
            HoldTarget::Actor(_) => b'a',
            HoldTarget::Resource(_) => b'r',
            HoldTarget::Event(_) => b'e',
        };
        let mut key = vec![tag];
        key.extend_from_slice(self.value().as_bytes());
        key
    }

    fn from_key(key: &[u8]) -> Result<HoldTarget, EventStoreError> {
        let corrupt = |detail: &str| EventStoreError::Corrupt {
            what: "hold key",
            detail: detail.to_string(),
        };
        let (&tag, value) = key.split_first().ok_or_else(|| corrupt("empty"))?;
        let value = String::from_utf8(value.to_vec()).map_err(|_| corrupt("not UTF-8"))?;
        match tag {
            b'a' => Ok(HoldTarget::Actor(value)),
            b'r' => Ok(HoldTarget::Resource(value)),
            b'e' => Ok(HoldTarget::Event(value)),
            _ => Err(corrupt("unknown kind")),
        }
    }
}

/// A legal hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// What it holds.
    pub target: HoldTarget,
    /// Why (free text from the admin).
    pub reason: String,
    /// The admin that set it.
    pub set_by: String,
    /// The event that recorded it.
    pub event_id: String,
}

impl Hold {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for text in [&self.reason, &self.set_by, &self.event_id] {
            put_string(&mut out, text);
        }
        out
    }

    fn decode(target: HoldTarget, bytes: &[u8]) -> Result<Hold, EventStoreError> {
        let mut reader = Reader {
            bytes,
            what: "hold",
        };
        let hold = Hold {
            target,
            reason: reader.string()?,
            set_by: reader.string()?,
            event_id: reader.string()?,
        };
        reader.end()?;
        Ok(hold)
    }
}

/// A query over the indexes. Results come in log order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryFilter {
    /// Only events of this `actor.id`.
    pub actor: Option<String>,
    /// Only events of this `resource.id`.
    pub resource: Option<String>,
    /// Only events with this `action`.
    pub action: Option<String>,
    /// Only events whose `timestamp` is at or after this (Unix nanoseconds).
    pub from_nanos: Option<i128>,
    /// Only events whose `timestamp` is before this (Unix nanoseconds).
    pub to_nanos: Option<i128>,
    /// Only events after this index (the cursor).
    pub after: Option<u64>,
    /// Only events below this index (a tree size).
    pub below: Option<u64>,
}

impl QueryFilter {
    /// Whether `summary` passes every condition.
    pub fn matches(&self, summary: &EventSummary) -> bool {
        self.actor.as_ref().is_none_or(|a| *a == summary.actor_id)
            && self
                .resource
                .as_ref()
                .is_none_or(|r| *r == summary.resource_id)
            && self.action.as_ref().is_none_or(|a| *a == summary.action)
            && self
                .from_nanos
                .is_none_or(|from| summary.time_nanos >= from)
            && self.to_nanos.is_none_or(|to| summary.time_nanos < to)
            && self.after.is_none_or(|after| summary.index > after)
            && self.below.is_none_or(|below| summary.index < below)
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPage {
    /// The matching events, in log order.
    pub events: Vec<EventSummary>,
    /// Where the next page starts, if the scan stopped before the end.
    pub next_after: Option<u64>,
}

/// The events database.
#[derive(Clone)]
pub struct EventStore {
    db: sled::Db,
    records: sled::Tree,
    payloads: sled::Tree,
    erased: sled::Tree,
    by_index: sled::Tree,
    by_actor: sled::Tree,
    by_resource: sled::Tree,
    by_action: sled::Tree,
    holds: sled::Tree,
    meta: sled::Tree,
    flushes: std::sync::Arc<FlushGroup>,
}

/// One sled flush for many concurrent submissions (group commit, as the sequencer does for
/// leaves): a submitter whose writes an ongoing or finished flush already covers does not
/// start another.
#[derive(Default)]
struct FlushGroup {
    /// Submitters that finished their writes (each counts itself once, after writing).
    written: std::sync::atomic::AtomicU64,
    /// Every submitter counted at or below this is durable.
    flushed: std::sync::atomic::AtomicU64,
    /// Held by the submitter whose flush runs.
    running: tokio::sync::Mutex<()>,
}

const INDEXED_THROUGH: &[u8] = b"indexed_through";

impl EventStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<EventStore, EventStoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 << 20)
            .open()?;
        Ok(EventStore {
            records: db.open_tree("records")?,
            payloads: db.open_tree("payloads")?,
            erased: db.open_tree("erased")?,
            by_index: db.open_tree("by_index")?,
            by_actor: db.open_tree("by_actor")?,
            by_resource: db.open_tree("by_resource")?,
            by_action: db.open_tree("by_action")?,
            holds: db.open_tree("holds")?,
            meta: db.open_tree("meta")?,
            flushes: std::sync::Arc::default(),
            db,
        })
    }

    /// Makes every write so far durable. Concurrent callers share flushes: one that waits
    /// while another flushes returns at once if that flush began after its writes.
    pub async fn flush(&self) -> Result<(), EventStoreError> {
        use std::sync::atomic::Ordering;
        let group = &self.flushes;
        let mine = group.written.fetch_add(1, Ordering::AcqRel) + 1;
        let _running = group.running.lock().await;
        if group.flushed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        // Every submitter counted so far finished its writes before counting itself, so this
        // flush covers them all.
        let covered = group.written.load(Ordering::Acquire);
        self.db.flush_async().await?;
        group.flushed.store(covered, Ordering::Release);
        Ok(())
    }

    /// Makes every write so far durable, blocking.
    pub fn flush_blocking(&self) -> Result<(), EventStoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// The record of `event_id`.
    pub fn record(&self, event_id: &str) -> Result<Option<EventRecord>, EventStoreError> {
        self.records
            .get(event_id.as_bytes())?
            .map(|bytes| decode_record(&bytes))
            .transpose()
    }

    /// Claims `event_id` for a leaf not yet sequenced, storing its payload. If the ID is
    /// already claimed with the same claim digest, returns that record (a retry); with another,
    /// [`EventStoreError::Conflict`].
    pub fn reserve(
        &self,
        event_id: &str,
        claim: [u8; 32],
        leaf: &[u8],
        payload: Option<&[u8]>,
    ) -> Result<Option<EventRecord>, EventStoreError> {
        let fresh = encode_record(&EventRecord {
            claim,
            index: None,
            leaf: leaf.to_vec(),
        });
        match self.records.compare_and_swap(
            event_id.as_bytes(),
            None as Option<&[u8]>,
            Some(fresh),
        )? {
            Ok(()) => {
                if let Some(payload) = payload {
                    self.payloads.insert(event_id.as_bytes(), payload)?;
                }
                Ok(None)
            }
            Err(existing) => {
                let current = existing.current.ok_or_else(|| EventStoreError::Corrupt {
                    what: "record",
                    detail: "vanished while claimed".into(),
                })?;
                let record = decode_record(&current)?;
                if record.claim != claim {
                    return Err(EventStoreError::Conflict {
                        event_id: event_id.to_string(),
                    });
                }
                Ok(Some(record))
            }
        }
    }

    /// Records that `leaf` is at `index`: its record, summary and secondary index entries.
    /// Idempotent, so the live path and the catch-up from the log may both do it.
    pub fn index_event(&self, index: u64, leaf: &EventLeaf) -> Result<(), EventStoreError> {
        let record = EventRecord {
            claim: claim_digest(&leaf.leaf),
            index: Some(index),
            leaf: leaf.leaf.clone(),
        };
        let event_id = leaf.event_id.as_str().as_bytes();
        self.records.insert(event_id, encode_record(&record))?;
        let summary = EventSummary::of_leaf(index, leaf);
        self.by_index
            .insert(index.to_be_bytes(), summary.encode())?;
        self.by_actor
            .insert(index_key(&summary.actor_id, index), event_id)?;
        self.by_resource
            .insert(index_key(&summary.resource_id, index), event_id)?;
        self.by_action
            .insert(index_key(&summary.action, index), event_id)?;
        Ok(())
    }

    /// Indexes `leaf` at `index` if it is an event leaf; other leaves (raw `/add`) are skipped.
    pub fn index_leaf(&self, index: u64, leaf: &[u8]) -> Result<bool, EventStoreError> {
        if leaf.first() != Some(&b'{') {
            return Ok(false);
        }
        match EventLeaf::parse(leaf) {
            Ok(event) => {
                self.index_event(index, &event)?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Forgets everything derived from the log (records, summaries, indexes), keeping
    /// payloads, erasure marks and holds, so that the log's leaves can rebuild it.
    pub fn clear_derived(&self) -> Result<(), EventStoreError> {
        for tree in [
            &self.records,
            &self.by_index,
            &self.by_actor,
            &self.by_resource,
            &self.by_action,
        ] {
            tree.clear()?;
        }
        self.meta.remove(INDEXED_THROUGH)?;
        Ok(())
    }

    /// Up to where every event leaf of the log is known to be indexed.
    pub fn indexed_through(&self) -> Result<u64, EventStoreError> {
        match self.meta.get(INDEXED_THROUGH)? {
            None => Ok(0),
            Some(bytes) => Ok(u64::from_be_bytes(bytes.as_ref().try_into().map_err(
                |_| EventStoreError::Corrupt {
                    what: "indexed_through",
                    detail: format!("{} bytes, expected 8", bytes.len()),
                },
            )?)),
        }
    }

    /// Sets [`EventStore::indexed_through`].
    pub fn set_indexed_through(&self, size: u64) -> Result<(), EventStoreError> {
        self.meta.insert(INDEXED_THROUGH, &size.to_be_bytes())?;
        Ok(())
    }

    /// The summary of the event at `index`, if an event is there.
    pub fn summary(&self, index: u64) -> Result<Option<EventSummary>, EventStoreError> {
        self.by_index
            .get(index.to_be_bytes())?
            .map(|bytes| EventSummary::decode(index, &bytes))
            .transpose()
    }

    /// The stored canonical payload of `event_id`, unless erased or never given.
    pub fn payload(&self, event_id: &str) -> Result<Option<Vec<u8>>, EventStoreError> {
        Ok(self.payloads.get(event_id.as_bytes())?.map(|v| v.to_vec()))
    }

    /// The event that recorded the erasure of `event_id`'s payload, if it was erased.
    pub fn erasure(&self, event_id: &str) -> Result<Option<String>, EventStoreError> {
        self.erased
            .get(event_id.as_bytes())?
            .map(|bytes| {
                String::from_utf8(bytes.to_vec()).map_err(|_| EventStoreError::Corrupt {
                    what: "erasure mark",
                    detail: "not UTF-8".into(),
                })
            })
            .transpose()
    }

    /// Erases the payload of `event_id`, marking it erased by `erasure_event_id`.
    pub fn erase_payload(
        &self,
        event_id: &str,
        erasure_event_id: &str,
    ) -> Result<bool, EventStoreError> {
        self.erased
            .insert(event_id.as_bytes(), erasure_event_id.as_bytes())?;
        Ok(self.payloads.remove(event_id.as_bytes())?.is_some())
    }

    /// Event IDs whose payloads are still held, in ID order, from `start` on, at most `count`.
    pub fn held_payloads(
        &self,
        start: Option<&str>,
        count: usize,
    ) -> Result<Vec<String>, EventStoreError> {
        let range = match start {
            Some(start) => self.payloads.range(start.as_bytes().to_vec()..),
            None => self.payloads.range::<Vec<u8>, _>(..),
        };
        let mut ids = Vec::new();
        for item in range.keys().take(count) {
            let key = item?;
            ids.push(
                String::from_utf8(key.to_vec()).map_err(|_| EventStoreError::Corrupt {
                    what: "payload key",
                    detail: "not UTF-8".into(),
                })?,
            );
        }
        Ok(ids)
    }

    /// Sets a hold; returns false if one was already on that target (it is left as it was).
    pub fn set_hold(&self, hold: &Hold) -> Result<bool, EventStoreError> {
        Ok(self
            .holds
            .compare_and_swap(
                hold.target.key(),
                None as Option<&[u8]>,
                Some(hold.encode()),
            )?
            .is_ok())
    }

    /// The hold on `target`, if any.
    pub fn hold(&self, target: &HoldTarget) -> Result<Option<Hold>, EventStoreError> {
        self.holds
            .get(target.key())?
            .map(|bytes| Hold::decode(target.clone(), &bytes))
            .transpose()
    }

    /// Lifts the hold on `target`; returns it if there was one.
    pub fn lift_hold(&self, target: &HoldTarget) -> Result<Option<Hold>, EventStoreError> {
        self.holds
            .remove(target.key())?
            .map(|bytes| Hold::decode(target.clone(), &bytes))
            .transpose()
    }

    /// Every hold.
    pub fn holds(&self) -> Result<Vec<Hold>, EventStoreError> {
        let mut holds = Vec::new();
        for item in self.holds.iter() {
            let (key, value) = item?;
            holds.push(Hold::decode(HoldTarget::from_key(&key)?, &value)?);
        }
        Ok(holds)
    }

    /// The holds that cover the event summarised by `summary`.
    pub fn holds_on(&self, summary: &EventSummary) -> Result<Vec<Hold>, EventStoreError> {
        let mut found = Vec::new();
        for target in [
            HoldTarget::Event(summary.event_id.clone()),
            HoldTarget::Actor(summary.actor_id.clone()),
            HoldTarget::Resource(summary.resource_id.clone()),
        ] {
            if let Some(hold) = self.hold(&target)? {
                found.push(hold);
            }
        }
        Ok(found)
    }

    /// One page of events matching `filter`, at most `limit` of them, scanning at most
    /// `max_scan` index entries (so that a very selective filter cannot make one request
    /// unbounded: the page may then be short, with a cursor to go on from).
    pub fn query(
        &self,
        filter: &QueryFilter,
        limit: usize,
        max_scan: usize,
    ) -> Result<QueryPage, EventStoreError> {
        let (tree, prefix) = if let Some(actor) = &filter.actor {
            (&self.by_actor, value_prefix(actor))
        } else if let Some(resource) = &filter.resource {
            (&self.by_resource, value_prefix(resource))
        } else if let Some(action) = &filter.action {
            (&self.by_action, value_prefix(action))
        } else {
            (&self.by_index, Vec::new())
        };
        let first = filter.after.map_or(0, |after| after.saturating_add(1));
        let end = filter.below.unwrap_or(u64::MAX);
        let mut events = Vec::new();
        if first >= end {
            return Ok(QueryPage {
                events,
                next_after: None,
            });
        }
        let mut start_key = prefix.clone();
        start_key.extend_from_slice(&first.to_be_bytes());
        let mut end_key = prefix.clone();
        end_key.extend_from_slice(&end.to_be_bytes());
        let mut scanned = 0;
        for item in tree.range(start_key..end_key) {
            let (key, value) = item?;
            let index_bytes: [u8; 8] =
                key[key.len().saturating_sub(8)..].try_into().map_err(|_| {
                    EventStoreError::Corrupt {
                        what: "index key",
                        detail: format!("{} bytes", key.len()),
                    }
                })?;
            let index = u64::from_be_bytes(index_bytes);
            let summary = if prefix.is_empty() {
                EventSummary::decode(index, &value)?
            } else {
                self.summary(index)?
                    .ok_or_else(|| EventStoreError::Corrupt {
                        what: "secondary index",
                        detail: format!("index {index} has no summary"),
                    })?
            };
            scanned += 1;
            if filter.matches(&summary) {
                events.push(summary);
                if events.len() == limit {
                    return Ok(QueryPage {
                        events,
                        next_after: Some(index),
                    });
                }
            }
            if scanned >= max_scan {
                return Ok(QueryPage {
                    events,
                    next_after: Some(index),
                });
            }
        }
        Ok(QueryPage {
            events,
            next_after: None,
        })
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

fn value_prefix(value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + value.len() + 8);
    put_string(&mut key, value);
    key
}

fn index_key(value: &str, index: u64) -> Vec<u8> {
    let mut key = value_prefix(value);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    let length = u32::try_from(text.len()).expect("event strings are bounded far below 4 GiB");
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn encode_record(record: &EventRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + record.leaf.len());
    out.extend_from_slice(&record.claim);
    out.extend_from_slice(&record.index.unwrap_or(PENDING).to_be_bytes());
    out.extend_from_slice(&record.leaf);
    out
}

fn decode_record(bytes: &[u8]) -> Result<EventRecord, EventStoreError> {
    let mut reader = Reader {
        bytes,
        what: "record",
    };
    let claim = reader.array()?;
    let index = u64::from_be_bytes(reader.array()?);
    Ok(EventRecord {
        claim,
        index: (index != PENDING).then_some(index),
        leaf: reader.bytes.to_vec(),
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Result<&[u8], EventStoreError> {
        if self.bytes.len() < count {
            return Err(EventStoreError::Corrupt {
                what: self.what,
                detail: format!("{count} bytes needed, {} left", self.bytes.len()),
            });
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EventStoreError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    fn string(&mut self) -> Result<String, EventStoreError> {
        let length = u32::from_be_bytes(self.array()?) as usize;
        let what = self.what;
        String::from_utf8(self.take(length)?.to_vec()).map_err(|_| EventStoreError::Corrupt {
            what,
            detail: "a string is not UTF-8".into(),
        })
    }

    fn end(&self) -> Result<(), EventStoreError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(EventStoreError::Corrupt {
                what: self.what,
                detail: format!("{} bytes left over", self.bytes.len()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_spec::event::{EventId, EventInput};
    use cairn_spec::time::Instant;
    use rand::{Rng as _, SeedableRng as _};

    fn leaf(random: &mut rand::rngs::StdRng) -> EventLeaf {
        let json = format!(
            r#"{{"timestamp":"2026-11-25T{:02}:{:02}:00Z","actor":{{"id":"a{}","type":"user"}},"action":"act{}","resource":{{"type":"t","id":"r{}"}},"outcome":"success"}}"#,
            random.gen_range(0..24),
            random.gen_range(0..60),
            random.gen_range(0..4),
            random.gen_range(0..3),
            random.gen_range(0..5),
        );
        EventInput::parse(json.as_bytes())
            .expect("valid")
            .into_leaf(
                EventId::new_v4(random.gen()),
                Instant::from_unix(1_764_000_000, 0),
                "p",
            )
            .expect("leaf")
            .0
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

    #[test]
    fn paged_queries_equal_a_brute_force_scan_before_and_after_a_rebuild() {
        let dir = tempfile::tempdir().expect("dir");
        let store = EventStore::open(dir.path()).expect("open");
        let mut random = rand::rngs::StdRng::seed_from_u64(7);
        let mut leaves = Vec::new();
        // Indices with gaps, as raw leaves between events leave them.
        let mut index = 0;
        for _ in 0..400 {
            index += random.gen_range(1..4);
            let leaf = leaf(&mut random);
            store.index_event(index, &leaf).expect("index");
            leaves.push((index, leaf));
        }
        let mut filters = Vec::new();
        for _ in 0..200 {
            let base = Instant::parse_rfc3339("2026-11-25T00:00:00Z")
                .expect("time")
                .unix_nanos();
            let hour = 3_600_000_000_000i128;
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
                    .gen_bool(0.3)
                    .then(|| base + random.gen_range(0..24) * hour),
                to_nanos: random
                    .gen_bool(0.3)
                    .then(|| base + random.gen_range(0..24) * hour),
                after: random.gen_bool(0.2).then(|| random.gen_range(0..1200)),
                below: random.gen_bool(0.2).then(|| random.gen_range(0..1200)),
            });
        }
        let check = |store: &EventStore, random: &mut rand::rngs::StdRng| {
            for filter in &filters {
                let expected: Vec<u64> = leaves
                    .iter()
                    .map(|(index, leaf)| EventSummary::of_leaf(*index, leaf))
                    .filter(|summary| filter.matches(summary))
                    .map(|summary| summary.index)
                    .collect();
                let limit = random.gen_range(1..30);
                let scan = random.gen_range(1..200);
                assert_eq!(
                    all_pages(store, filter, limit, scan),
                    expected,
                    "{filter:?}"
                );
            }
        };
        check(&store, &mut random);
        store.clear_derived().expect("clear");
        assert!(store
            .query(&QueryFilter::default(), 10, 10)
            .expect("query")
            .events
            .is_empty());
        for (index, leaf) in &leaves {
            assert!(store.index_leaf(*index, &leaf.leaf).expect("index"));
        }
        check(&store, &mut random);
    }

    #[test]
    fn a_claimed_event_id_takes_back_only_the_same_claim() {
        let dir = tempfile::tempdir().expect("dir");
        let store = EventStore::open(dir.path()).expect("open");
        let id = "5f1b8a0e-2c4d-4e6f-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            store.reserve(id, [1; 32], b"{}", Some(b"1")).expect("new"),
            None
        );
        let again = store
            .reserve(id, [1; 32], b"{}", None)
            .expect("same")
            .expect("record");
        assert_eq!(again.index, None);
        assert!(matches!(
            store.reserve(id, [2; 32], b"{}", None),
            Err(EventStoreError::Conflict { .. })
        ));
        assert_eq!(store.payload(id).expect("read"), Some(b"1".to_vec()));
    }

    #[test]
    fn refuses_corrupt_summaries_without_panicking() {
        for bytes in [&b""[..], &[0, 0, 0, 9, b'x'][..], &[0xff; 40][..]] {
            assert!(EventSummary::decode(0, bytes).is_err());
        }
        assert!(decode_record(&[0; 39]).is_err());
    }
}
