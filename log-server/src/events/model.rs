//! What the events database is made of, apart from how it is kept: an event's indexed
//! summary, queries and their pages, legal holds, the database's errors, and the seam a backend
//! of the events index implements, [`EventIndexStore`].

use cairn_spec::event::{EventLeaf, EventLeafV2};

use super::privacy::{tag_text, Tags, TAG_PREFIX};

use crate::storage::StoreError;

/// A failure of the events database.
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// A file of the index or the log failed, or holds damaged data.
    #[error("events database: {0}")]
    Files(#[from] StoreError),
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
    /// Too many events wait to be written to the index: retry later.
    #[error("the events database is overloaded; retry later")]
    Overloaded,
    /// The database is closing.
    #[error("the events database is closed")]
    Closed,
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
    /// Whether it was given a payload (stored in the log beside its leaf, unless erased).
    pub has_payload: bool,
}

impl EventSummary {
    /// The summary of `leaf` at `index`.
    pub fn of_leaf(index: u64, leaf: EventLeaf) -> EventSummary {
        EventSummary {
            index,
            event_id: leaf.event_id.into_string(),
            time_nanos: leaf.time.unix_nanos(),
            received_nanos: leaf.received_at.unix_nanos(),
            actor_id: leaf.actor_id,
            resource_type: leaf.resource_type,
            resource_id: leaf.resource_id,
            action: leaf.action,
            has_payload: leaf.payload_hash.is_some(),
        }
    }

    /// The summary of the schema 2 `leaf` at `index`, whose contents record carries `tags`
    /// (`None`: the record was erased). The identifiers are the tags (`tag:` and 64 hex
    /// digits), never the values; the contents record beside the leaf counts as its payload.
    pub fn of_v2(index: u64, leaf: &EventLeafV2, tags: Option<&Tags>) -> EventSummary {
        let text = |tag: Option<&[u8; 32]>| tag.map(tag_text).unwrap_or_default();
        EventSummary {
            index,
            event_id: leaf.clear.event_id.as_str().to_string(),
            time_nanos: leaf.time.unix_nanos(),
            received_nanos: leaf.clear.received_at.unix_nanos(),
            actor_id: text(tags.map(|t| &t.actor)),
            resource_type: text(tags.map(|t| &t.resource_type)),
            resource_id: text(tags.map(|t| &t.resource_id)),
            action: leaf.clear.action.clone(),
            has_payload: true,
        }
    }

    /// Whether its identifiers are tags (a schema 2 event), not clear values.
    pub fn is_tagged(&self) -> bool {
        self.actor_id.starts_with(TAG_PREFIX) || self.actor_id.is_empty()
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

/// A submission on its way through the sequencer: while it lives, the index keeps room for the
/// events it will insert (see [`EventIndexStore::begin`]).
pub struct InFlightSubmission(#[allow(dead_code)] Box<dyn Send + Sync>);

impl InFlightSubmission {
    /// A submission kept in flight by `guard`, which the index's backend drops to release it.
    pub fn new(guard: impl Send + Sync + 'static) -> InFlightSubmission {
        InFlightSubmission(Box::new(guard))
    }
}

/// The events index: every logged event's summary by log index and by event ID, and postings
/// by actor, resource, action and time, so that queries answer in log order. It is derived from
/// the log: a backend may lose what it was not asked to make durable, and the events database
/// inserts the log's events again from [`watermark`](EventIndexStore::watermark) on when it
/// opens (holds and erasure marks are derived from the log too, see [`super::records`]).
///
/// Contracts (checked by the events conformance suite):
/// - After [`insert`](EventIndexStore::insert), the event is found by ID, by index and by every
///   query it matches; queries answer in log order, at most `limit` events a page, and a cursor
///   ([`QueryPage::next_after`]) when they stopped before the end.
/// - After [`flush`](EventIndexStore::flush)`(n)`, every event below `n` survives a reopen and
///   the watermark of the reopened index is at least `n`; an event the index lost is lost whole.
///
/// Calls block on the disk or the network; async callers make them off the runtime's workers.
pub trait EventIndexStore: Send + Sync + 'static {
    /// Every event below this log index is indexed durably: after opening, the log's events
    /// from here on are inserted again.
    fn watermark(&self) -> u64;

    /// Registers a submission that will reach the sequencer now: its events get indices at or
    /// after `durable_size` (the log's, read before this call). While the returned guard lives,
    /// the index does not make durable, as complete, a range its events may still land in.
    fn begin(&self, durable_size: u64) -> InFlightSubmission;

    /// Whether the index is too far behind to take more events now (submissions are refused,
    /// to be retried, until it catches up).
    fn overloaded(&self) -> bool;

    /// Adds a sequenced event. `durable_size`, the log's, must have been read before the call.
    fn insert(&self, summary: EventSummary, durable_size: u64) -> Result<(), EventStoreError>;

    /// Adds the sequenced events of one submission, in log order, as [`Self::insert`] adds
    /// each. An index that can add them at once (one lock, one move of what follows them)
    /// says so by overriding this.
    fn insert_all(
        &self,
        summaries: Vec<EventSummary>,
        durable_size: u64,
    ) -> Result<(), EventStoreError> {
        summaries
            .into_iter()
            .try_for_each(|summary| self.insert(summary, durable_size))
    }

    /// Makes every event below `durable_size` (the log's) durable, and waits for it.
    fn flush(&self, durable_size: u64) -> Result<(), EventStoreError>;

    /// Stops background work, after writing out what was handed to it.
    fn close(&self);

    /// The event with `event_id`, if it is indexed.
    fn find(&self, event_id: &str) -> Result<Option<EventSummary>, EventStoreError>;

    /// The event at log index `index`, if an event is there and indexed.
    fn summary(&self, index: u64) -> Result<Option<EventSummary>, EventStoreError>;

    /// One page of events matching `filter`, at most `limit`, examining at most `max_scan`
    /// candidates (the page may then be short, with a cursor to go on from).
    fn query(
        &self,
        filter: &QueryFilter,
        limit: usize,
        max_scan: usize,
    ) -> Result<QueryPage, EventStoreError>;

    /// Events given a payload, in log order after `after`, at most `limit`.
    fn payload_events(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError>;
}
