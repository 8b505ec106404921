//! The events index: what makes logged events findable by ID, by index, by actor, resource,
//! action and time. Everything in it is derived from the log's leaves, so none of it is on the
//! durable path of a submission: it can be lost in a crash and is rebuilt from the log.
//!
//! It is a small log-structured merge tree over one key space of six kinds of records per
//! event (`s` summary by index, `i` index by event ID, `a`/`r`/`c` postings by actor, resource
//! and action, `t` postings by time), because per-key inserts into sled cost about 4 µs each
//! and seven of them per event kept submission under 4 k events/s:
//! - a submission inserts its sequenced events into an in-memory table (no I/O);
//! - a full table is frozen and written by a background thread as a sorted run file
//!   ([`run`]), covering a contiguous range of log indices; runs are merged like a binary
//!   counter, so there are about log2(events / table size) of them;
//! - runs name the range of log entries they cover, so on open every entry from the last
//!   run's end on is read back from the log and indexed again.
//!
//! A table is cut at a log index W below which every event leaf is known to be in it: the
//! durable size, lowered to the first index any submission still in flight may get
//! ([`EventIndex::begin`] registers one before it reaches the sequencer).
//!
//! Postings carry the event's time and short hashes of its actor, resource and action, so a
//! query that combines conditions reads only the summaries of likely matches. Queries answer
//! in log order with the last index as cursor: by one posting list (the one estimated
//! shortest), by time (the time postings of a window, sorted back into log order, or for a
//! wide window the summaries with blocks outside the window skipped), or all summaries.

mod run;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use self::run::{id_key, parse_run_file_name, BlockCache, Cursor, Run, RunWriter};
use super::store::{EventStoreError, EventSummary, QueryFilter, QueryPage};
use crate::storage::embedded::files;
use crate::storage::StoreError;

pub(crate) const TAG_ACTOR: u8 = b'a';
pub(crate) const TAG_ACTION: u8 = b'c';
pub(crate) const TAG_ID: u8 = b'i';
pub(crate) const TAG_RESOURCE: u8 = b'r';
pub(crate) const TAG_SUMMARY: u8 = b's';
pub(crate) const TAG_TIME: u8 = b't';
/// Time postings a query gathers and sorts before it scans summaries instead.
const GATHER_LIMIT: usize = 20_000;
/// Time postings in one block, about (8 KiB of 29-byte records).
const TIME_POSTINGS_PER_BLOCK: usize = 280;
/// Tables' worth of events kept in memory before submissions are refused (while a merge of
/// large runs keeps the writer busy, the active table grows past its size).
const MAX_TABLES_IN_MEMORY: usize = 8;

/// How the index is sized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexConfig {
    /// Events in the in-memory table before it is written out as a run.
    pub table_events: usize,
    /// Most runs on disk; beyond, the newest are merged.
    pub max_runs: usize,
}

impl Default for IndexConfig {
    fn default() -> IndexConfig {
        IndexConfig {
            table_events: 32 * 1024,
            max_runs: 12,
        }
    }
}

fn sortable_time(time: i128) -> [u8; 16] {
    ((time as u128) ^ (1 << 127)).to_be_bytes()
}

fn short_hash(text: &str) -> u32 {
    crc32fast::hash(text.as_bytes())
}

fn summary_key(index: u64) -> [u8; 9] {
    let mut key = [TAG_SUMMARY; 9];
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

fn posting_prefix(tag: u8, value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(3 + value.len() + 8);
    key.push(tag);
    key.extend_from_slice(&(value.len() as u16).to_be_bytes());
    key.extend_from_slice(value.as_bytes());
    key
}

fn with_index(mut prefix: Vec<u8>, index: u64) -> Vec<u8> {
    prefix.extend_from_slice(&index.to_be_bytes());
    prefix
}

fn time_key(time: i128) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(TAG_TIME);
    key.extend_from_slice(&sortable_time(time));
    key
}

/// The 128 bits of an event ID in canonical text (lowercase 8-4-4-4-12 hex, as every logged
/// event ID is), the in-memory tables' key: no allocation, and a short hash. Other text has
/// none; such an ID is never in a table (and is looked for in the runs by its text).
fn id_bits(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut bits = 0u128;
    for (at, &byte) in bytes.iter().enumerate() {
        let digit = match byte {
            b'-' if matches!(at, 8 | 13 | 18 | 23) => continue,
            b'0'..=b'9' if !matches!(at, 8 | 13 | 18 | 23) => byte - b'0',
            b'a'..=b'f' if !matches!(at, 8 | 13 | 18 | 23) => byte - b'a' + 10,
            _ => return None,
        };
        bits = bits << 4 | u128::from(digit);
    }
    Some(bits)
}

fn index_at_end(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

fn check_text(what: &'static str, text: &str) -> Result<(), EventStoreError> {
    if text.len() > run::MAX_FIELD_BYTES / 8 {
        return Err(EventStoreError::Corrupt {
            what,
            detail: format!("{} bytes: too long to index", text.len()),
        });
    }
    Ok(())
}

/// The event time a summary record begins with.
pub(crate) fn summary_time(value: &[u8]) -> Option<i128> {
    Some(i128::from_be_bytes(value.get(..16)?.try_into().ok()?))
}

/// The `s` value of a summary: times, whether it has a payload, then the strings.
fn encode_summary(summary: &EventSummary) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + summary.event_id.len() + summary.actor_id.len() * 4);
    out.extend_from_slice(&summary.time_nanos.to_be_bytes());
    out.extend_from_slice(&summary.received_nanos.to_be_bytes());
    out.push(u8::from(summary.has_payload));
    for text in [
        &summary.event_id,
        &summary.actor_id,
        &summary.resource_type,
        &summary.resource_id,
        &summary.action,
    ] {
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out
}

fn decode_summary(index: u64, bytes: &[u8]) -> Result<EventSummary, EventStoreError> {
    let bad = |detail: &str| EventStoreError::Corrupt {
        what: "summary",
        detail: format!("index {index}: {detail}"),
    };
    let mut rest = bytes;
    let mut take = |count: usize| -> Result<&[u8], EventStoreError> {
        if rest.len() < count {
            return Err(bad("truncated"));
        }
        let (head, tail) = rest.split_at(count);
        rest = tail;
        Ok(head)
    };
    let time_nanos = i128::from_be_bytes(take(16)?.try_into().expect("16 bytes"));
    let received_nanos = i128::from_be_bytes(take(16)?.try_into().expect("16 bytes"));
    let has_payload = match take(1)?[0] {
        0 => false,
        1 => true,
        _ => return Err(bad("unknown payload flag")),
    };
    let mut strings = Vec::with_capacity(5);
    for _ in 0..5 {
        let length = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
        let text = String::from_utf8(take(length)?.to_vec()).map_err(|_| bad("not UTF-8"))?;
        strings.push(text);
    }
    if !rest.is_empty() {
        return Err(bad("bytes left over"));
    }
    let mut strings = strings.into_iter();
    let mut next = || strings.next().expect("five strings");
    Ok(EventSummary {
        index,
        event_id: next(),
        time_nanos,
        received_nanos,
        actor_id: next(),
        resource_type: next(),
        resource_id: next(),
        action: next(),
        has_payload,
    })
}

/// (start, key length, value length) of a record in [`Records::arena`].
type Span = (usize, usize, usize);

/// The record kinds in the order of their tags, which begin every key: the records of each
/// kind are sorted apart and written one kind after the other.
const KINDS: [u8; 6] = [
    TAG_ACTOR,
    TAG_ACTION,
    TAG_ID,
    TAG_RESOURCE,
    TAG_SUMMARY,
    TAG_TIME,
];
const _: () = {
    let mut at = 1;
    while at < KINDS.len() {
        assert!(
            KINDS[at - 1] < KINDS[at],
            "KINDS is in the order of the tags"
        );
        at += 1;
    }
};

/// Index records in one buffer, sorted by reference: a table of 32 Ki events makes 192 Ki
/// records, and a pair of vectors for each would be most of the writer's work. They are kept
/// by kind, added in log order: summaries are then in order already, and the postings of one
/// actor, resource or action, or nearby times, come in ordered runs, which a stable sort
/// merges rather than sorting again (a third of the writer's time went to one sort of all).
struct Records {
    arena: Vec<u8>,
    /// The spans of each kind, in the order of [`KINDS`].
    kinds: [Vec<Span>; 6],
}

impl Records {
    /// Room for the records of `events` events.
    fn with_events(events: usize) -> Records {
        Records {
            // About 300 bytes of records an event.
            arena: Vec::with_capacity(events * 320),
            kinds: std::array::from_fn(|_| Vec::with_capacity(events)),
        }
    }

    fn add(&mut self, key: &[&[u8]], value: &[&[u8]]) {
        let start = self.arena.len();
        for part in key {
            self.arena.extend_from_slice(part);
        }
        let key_len = self.arena.len() - start;
        for part in value {
            self.arena.extend_from_slice(part);
        }
        let kind = KINDS
            .iter()
            .position(|tag| *tag == key[0][0])
            .expect("a record of one of the six kinds");
        self.kinds[kind].push((start, key_len, self.arena.len() - start - key_len));
    }

    /// The six records of one event.
    fn add_event(&mut self, summary: &EventSummary) {
        let index = summary.index.to_be_bytes();
        let time = summary.time_nanos.to_be_bytes();
        let hashes = [
            short_hash(&summary.actor_id).to_le_bytes(),
            short_hash(&summary.resource_id).to_le_bytes(),
            short_hash(&summary.action).to_le_bytes(),
        ];
        let inline: [&[u8]; 4] = [&time, &hashes[0], &hashes[1], &hashes[2]];
        self.add(&[&[TAG_SUMMARY], &index], &[&encode_summary(summary)]);
        self.add(&[&[TAG_ID], summary.event_id.as_bytes()], &[&index]);
        for (tag, value) in [
            (TAG_ACTOR, &summary.actor_id),
            (TAG_RESOURCE, &summary.resource_id),
            (TAG_ACTION, &summary.action),
        ] {
            let length = (value.len() as u16).to_be_bytes();
            self.add(&[&[tag], &length, value.as_bytes(), &index], &inline);
        }
        self.add(
            &[&[TAG_TIME], &sortable_time(summary.time_nanos), &index],
            &[],
        );
    }

    fn key(&self, &(start, key_len, _): &Span) -> &[u8] {
        &self.arena[start..start + key_len]
    }

    /// Sorts the records by key and writes them. Each span is sorted with the eight key bytes
    /// after the tag beside it, so that most comparisons are of two integers rather than of
    /// two keys out in the arena (random event IDs sorted that way were a quarter of the
    /// writer's time).
    fn write_sorted(mut self, writer: &mut RunWriter) -> Result<(), EventStoreError> {
        for kind in 0..KINDS.len() {
            let mut spans: Vec<(u64, Span)> = std::mem::take(&mut self.kinds[kind])
                .into_iter()
                .map(|span| (key_prefix(self.key(&span)), span))
                .collect();
            spans.sort_by(|(a_prefix, a), (b_prefix, b)| {
                a_prefix
                    .cmp(b_prefix)
                    .then_with(|| self.key(a).cmp(self.key(b)))
            });
            for (_, span) in &spans {
                let (start, key_len, value_len) = *span;
                let value = &self.arena[start + key_len..start + key_len + value_len];
                writer.push(self.key(span), value)?;
            }
        }
        Ok(())
    }
}

/// Bytes 1 to 8 of `key` (after its tag), big-endian and padded with zeros: two keys of one
/// kind whose prefixes differ are in the order of their prefixes.
fn key_prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let tail = key.get(1..).unwrap_or_default();
    let n = tail.len().min(8);
    bytes[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(bytes)
}

/// Whether the time and hashes a posting carries may match `filter`.
fn posting_may_match(filter: &QueryFilter, inline: &[u8]) -> bool {
    let Some(time) = summary_time(inline) else {
        return true;
    };
    let hash = |at: usize| {
        inline
            .get(at..at + 4)
            .map(|bytes| u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    };
    filter.from_nanos.is_none_or(|from| time >= from)
        && filter.to_nanos.is_none_or(|to| time < to)
        && filter
            .actor
            .as_deref()
            .is_none_or(|actor| hash(16).is_none_or(|h| h == short_hash(actor)))
        && filter
            .resource
            .as_deref()
            .is_none_or(|resource| hash(20).is_none_or(|h| h == short_hash(resource)))
        && filter
            .action
            .as_deref()
            .is_none_or(|action| hash(24).is_none_or(|h| h == short_hash(action)))
}

/// Events of log indices `[start, …)` in memory.
struct Table {
    start: u64,
    events: Summaries,
    /// Log index by event ID (as [`id_bits`]).
    ids: HashMap<u128, u64>,
}

impl Table {
    /// A table from log index `start`, with room for `events` events: a table that grows its
    /// ID map as it fills rehashes it a dozen times (a quarter of an insert's time).
    fn new(start: u64, events: usize) -> Table {
        Table {
            start,
            events: Summaries::default(),
            ids: HashMap::with_capacity(events),
        }
    }
}

/// Event summaries in log order. They arrive nearly in order (each after its batch's durable
/// write), so adding one is a push, or a short move near the end (a B-tree of them allocated
/// and split nodes of large values: 2% of the server's CPU under single-event submissions).
#[derive(Default)]
struct Summaries(Vec<EventSummary>);

/// How far from the end of a table a new summary's place is looked for one by one.
const LATE_SEARCH: usize = 256;

impl Summaries {
    /// Adds `summary`, replacing one at the same index.
    fn insert(&mut self, summary: EventSummary) {
        let index = summary.index;
        // Its place (the first summary not below it) is looked for from the end, where the
        // summaries are in the cache: a binary search over a whole table touches a cold line
        // at each step.
        let tail = self.0.len().saturating_sub(LATE_SEARCH);
        let at = match self.0[tail..].iter().rposition(|known| known.index < index) {
            Some(offset) => tail + offset + 1,
            None => self.0[..tail].partition_point(|known| known.index < index),
        };
        if self.0.get(at).is_some_and(|known| known.index == index) {
            self.0[at] = summary;
        } else {
            self.0.insert(at, summary);
        }
    }

    fn get(&self, index: u64) -> Option<&EventSummary> {
        let at = self
            .0
            .binary_search_by_key(&index, |known| known.index)
            .ok()?;
        self.0.get(at)
    }

    /// The summaries of indices `[low, high)`, in log order.
    fn range(&self, low: u64, high: u64) -> &[EventSummary] {
        let from = self.0.partition_point(|known| known.index < low);
        let to = self.0.partition_point(|known| known.index < high).max(from);
        &self.0[from..to]
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// A table cut at `end`, being written out.
#[derive(Clone)]
struct Frozen {
    table: Arc<RwLock<Table>>,
    end: u64,
}

struct Tables {
    active: Arc<RwLock<Table>>,
    /// Oldest first, contiguous after the runs.
    frozen: Vec<Frozen>,
    /// Contiguous from log index 0, oldest first.
    runs: Vec<Arc<Run>>,
}

#[derive(Default)]
struct InFlight {
    next: u64,
    open: BTreeMap<u64, u64>,
}

#[derive(Default)]
struct WriterState {
    stop: bool,
    failed: Option<String>,
}

struct Shared {
    dir: PathBuf,
    config: IndexConfig,
    hasher: RandomState,
    seed: u64,
    tables: RwLock<Tables>,
    in_flight: Mutex<InFlight>,
    signal: Mutex<WriterState>,
    changed: Condvar,
}

/// The events index.
pub struct EventIndex {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// A submission on its way through the sequencer: while it lives, no table is cut above the
/// first index it may get.
pub struct InFlightSubmission {
    shared: Arc<Shared>,
    ticket: u64,
}

impl Drop for InFlightSubmission {
    fn drop(&mut self) {
        self.shared.in_flight.lock().open.remove(&self.ticket);
    }
}

/// What a query reads: runs, then tables (frozen, then active), in log order.
struct Snapshot {
    runs: Vec<Arc<Run>>,
    tables: Vec<(Arc<RwLock<Table>>, u64)>,
}

/// A page being filled.
struct Page {
    events: Vec<EventSummary>,
    limit: usize,
    max_scan: usize,
    scanned: usize,
    stopped_at: Option<u64>,
}

impl Page {
    /// Counts one examined event (a match if `found`); true when the page is complete.
    fn offer(&mut self, index: u64, found: Option<EventSummary>) -> bool {
        self.scanned += 1;
        if let Some(summary) = found {
            self.events.push(summary);
            if self.events.len() >= self.limit {
                self.stopped_at = Some(index);
                return true;
            }
        }
        if self.scanned >= self.max_scan {
            self.stopped_at = Some(index);
            return true;
        }
        false
    }

    fn finish(self) -> QueryPage {
        QueryPage {
            events: self.events,
            next_after: self.stopped_at,
        }
    }
}

enum Plan {
    Posting(Vec<u8>),
    Time,
    Summaries,
}

impl EventIndex {
    /// Opens the runs in `dir`, keeping those that form a chain from log index 0 and end within
    /// the log's `log_size` (the others, and any that do not open, are deleted: the catch-up
    /// rebuilds what they held). Returns the index and its watermark (entries from there on
    /// must be inserted again).
    pub fn open(
        dir: &Path,
        config: IndexConfig,
        log_size: u64,
    ) -> Result<(EventIndex, u64), EventStoreError> {
        files::ensure_dir(dir)?;
        let hasher = RandomState::new();
        let seed = RandomState::new().hash_one(0x5eed_u64);
        let mut found = Vec::new();
        for item in std::fs::read_dir(dir).map_err(|source| StoreError::io("list", dir, source))? {
            let item = item.map_err(|source| StoreError::io("list", dir, source))?;
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                remove(&path);
            } else if let Some((start, end)) = parse_run_file_name(&name) {
                found.push((start, end, path));
            }
        }
        found.sort_by_key(|(start, end, _)| (*start, std::cmp::Reverse(*end)));
        let mut runs: Vec<Arc<Run>> = Vec::new();
        let mut covered = 0;
        let mut broken = false;
        for (start, end, path) in found {
            if !broken && start == covered && end <= log_size {
                match Run::open(&path, &hasher, seed) {
                    Ok(run) => {
                        covered = end;
                        runs.push(Arc::new(run));
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "dropping an events index run; it is rebuilt from the log");
                        broken = true;
                    }
                }
            } else if start < covered && end <= covered {
                // Merged into a run already kept; a crash came before it was deleted.
            } else {
                broken = true;
                tracing::warn!(path = %path.display(), "dropping an events index run that does not chain");
            }
            remove(&path);
        }
        let watermark = runs.last().map_or(0, |run| run.end);
        let active = Table::new(watermark, config.table_events);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            config,
            hasher,
            seed,
            tables: RwLock::new(Tables {
                active: Arc::new(RwLock::new(active)),
                frozen: Vec::new(),
                runs,
            }),
            in_flight: Mutex::new(InFlight::default()),
            signal: Mutex::new(WriterState::default()),
            changed: Condvar::new(),
        });
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("cairn-events-index".into())
                .spawn(move || {
                    crate::os::become_batch_thread();
                    write_loop(&shared)
                })
                .map_err(|source| StoreError::io("start the index writer for", dir, source))?
        };
        Ok((
            EventIndex {
                shared,
                writer: Mutex::new(Some(writer)),
            },
            watermark,
        ))
    }

    /// Registers a submission that will reach the sequencer now: its events get indices at
    /// or after `durable_size` (read before this call).
    pub fn begin(&self, durable_size: u64) -> InFlightSubmission {
        let mut in_flight = self.shared.in_flight.lock();
        let ticket = in_flight.next;
        in_flight.next += 1;
        in_flight.open.insert(ticket, durable_size);
        InFlightSubmission {
            shared: Arc::clone(&self.shared),
            ticket,
        }
    }

    /// Whether the events in memory (the active and frozen tables) are more than the writer
    /// should be left behind by: then new submissions are refused until it catches up.
    pub fn overloaded(&self) -> bool {
        let tables = self.shared.tables.read();
        let frozen: usize = tables
            .frozen
            .iter()
            .map(|frozen| frozen.table.read().events.len())
            .sum();
        let active = tables.active.read().events.len();
        let limit = self
            .shared
            .config
            .table_events
            .saturating_mul(MAX_TABLES_IN_MEMORY);
        frozen + active > limit
    }

    /// Adds a sequenced event. `durable_size`, the log's, must have been read before the call.
    pub fn insert(&self, summary: EventSummary, durable_size: u64) -> Result<(), EventStoreError> {
        for (what, text) in [
            ("event ID", &summary.event_id),
            ("actor", &summary.actor_id),
            ("resource type", &summary.resource_type),
            ("resource", &summary.resource_id),
            ("action", &summary.action),
        ] {
            check_text(what, text)?;
        }
        let full = {
            let tables = self.shared.tables.read();
            let mut active = tables.active.write();
            if summary.index < active.start {
                // Below the cut: already in a frozen table or a run.
                return Ok(());
            }
            if let Some(id) = id_bits(&summary.event_id) {
                active.ids.insert(id, summary.index);
            }
            active.events.insert(summary);
            active.events.len() >= self.shared.config.table_events
        };
        if full {
            self.cut(durable_size, false);
        }
        Ok(())
    }

    /// Freezes the active table at the highest safe index, for the writer.
    fn cut(&self, durable_size: u64, force: bool) {
        let lowest_in_flight = {
            let in_flight = self.shared.in_flight.lock();
            in_flight.open.values().copied().min().unwrap_or(u64::MAX)
        };
        let cut = durable_size.min(lowest_in_flight);
        {
            let mut tables = self.shared.tables.write();
            if !force && tables.frozen.len() >= 2 {
                return;
            }
            let old = Arc::clone(&tables.active);
            let fresh = {
                let table = old.read();
                if cut <= table.start {
                    return;
                }
                let mut fresh = Table::new(cut, self.shared.config.table_events);
                for summary in table.events.range(cut, u64::MAX) {
                    if let Some(id) = id_bits(&summary.event_id) {
                        fresh.ids.insert(id, summary.index);
                    }
                    fresh.events.insert(summary.clone());
                }
                fresh
            };
            tables.frozen.push(Frozen {
                table: old,
                end: cut,
            });
            tables.active = Arc::new(RwLock::new(fresh));
        }
        let _state = self.shared.signal.lock();
        self.shared.changed.notify_all();
    }

    /// Writes out everything below `durable_size` (the log's) and waits for it (at shutdown,
    /// so that the next open has nothing to catch up).
    pub fn flush(&self, durable_size: u64) -> Result<(), EventStoreError> {
        self.cut(durable_size, true);
        let mut state = self.shared.signal.lock();
        loop {
            if let Some(reason) = &state.failed {
                return Err(EventStoreError::Files(StoreError::Poisoned(reason.clone())));
            }
            if self.shared.tables.read().frozen.is_empty() {
                return Ok(());
            }
            self.shared.changed.wait(&mut state);
        }
    }

    /// Stops the writer (after the frozen tables are written).
    pub fn close(&self) {
        self.shared.signal.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }

    fn snapshot(&self) -> Snapshot {
        let tables = self.shared.tables.read();
        let mut list: Vec<(Arc<RwLock<Table>>, u64)> = tables
            .frozen
            .iter()
            .map(|frozen| (Arc::clone(&frozen.table), frozen.end))
            .collect();
        list.push((Arc::clone(&tables.active), u64::MAX));
        Snapshot {
            runs: tables.runs.clone(),
            tables: list,
        }
    }

    /// The event with `event_id`, if it is indexed.
    pub fn find(&self, event_id: &str) -> Result<Option<EventSummary>, EventStoreError> {
        let snapshot = self.snapshot();
        if let Some(id) = id_bits(event_id) {
            for (table, end) in snapshot.tables.iter().rev() {
                let table = table.read();
                if let Some(index) = table.ids.get(&id).filter(|index| **index < *end) {
                    return Ok(table.events.get(*index).cloned());
                }
            }
        }
        let key = id_key(&self.shared.hasher, event_id.as_bytes());
        let mut id = vec![TAG_ID];
        id.extend_from_slice(event_id.as_bytes());
        let mut cache = BlockCache::default();
        for run in snapshot.runs.iter().rev() {
            if !run.may_hold_id(key) {
                continue;
            }
            if let Some(value) = run.get(&id, &mut cache)? {
                let index = index_at_end(&value).ok_or_else(|| EventStoreError::Corrupt {
                    what: "ID record",
                    detail: format!("{} bytes", value.len()),
                })?;
                return summary_in(run, index, &mut cache);
            }
        }
        Ok(None)
    }

    /// The event at log index `index`, if an event is there and indexed.
    pub fn summary(&self, index: u64) -> Result<Option<EventSummary>, EventStoreError> {
        let snapshot = self.snapshot();
        if let Some(run) = snapshot
            .runs
            .iter()
            .find(|run| run.start <= index && index < run.end)
        {
            return summary_in(run, index, &mut BlockCache::default());
        }
        for (table, end) in &snapshot.tables {
            if index < *end {
                return Ok(table.read().events.get(index).cloned());
            }
        }
        Ok(None)
    }

    /// One page of events matching `filter`, at most `limit`, examining at most `max_scan`
    /// candidates (the page may then be short, with a cursor to go on from).
    pub fn query(
        &self,
        filter: &QueryFilter,
        limit: usize,
        max_scan: usize,
    ) -> Result<QueryPage, EventStoreError> {
        self.scan(filter, &|summary| filter.matches(summary), limit, max_scan)
    }

    /// Events given a payload, in log order after `after`.
    pub fn payload_events(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError> {
        let filter = QueryFilter {
            after,
            ..QueryFilter::default()
        };
        self.scan(
            &filter,
            &|summary| summary.has_payload && filter.matches(summary),
            limit,
            usize::MAX,
        )
    }

    fn scan(
        &self,
        filter: &QueryFilter,
        matches: &dyn Fn(&EventSummary) -> bool,
        limit: usize,
        max_scan: usize,
    ) -> Result<QueryPage, EventStoreError> {
        let first = filter.after.map_or(0, |after| after.saturating_add(1));
        let below = filter.below.unwrap_or(u64::MAX);
        let mut search = Search {
            filter,
            matches,
            page: Page {
                events: Vec::new(),
                limit: limit.max(1),
                max_scan: max_scan.max(1),
                scanned: 0,
                stopped_at: None,
            },
            cache: BlockCache::default(),
        };
        if first >= below {
            return Ok(search.page.finish());
        }
        let snapshot = self.snapshot();
        let plan = plan(filter, &snapshot.runs, first, below);
        for run in &snapshot.runs {
            if run.end <= first || run.start >= below {
                continue;
            }
            let range = (first.max(run.start), below.min(run.end));
            let done = match &plan {
                Plan::Posting(prefix) => search.postings(run, prefix, range)?,
                Plan::Time => search.times(run, range)?,
                Plan::Summaries => search.summaries(run, range)?,
            };
            if done {
                return Ok(search.page.finish());
            }
        }
        let mut low = first;
        for (table, end) in &snapshot.tables {
            let table = table.read();
            let high = below.min(*end);
            if low < high {
                for summary in table.events.range(low, high) {
                    let found = matches(summary).then(|| summary.clone());
                    if search.page.offer(summary.index, found) {
                        return Ok(search.page.finish());
                    }
                }
            }
            low = low.max(*end);
        }
        Ok(search.page.finish())
    }
}

/// The summary of the event at `index` in `run`, if any.
fn summary_in(
    run: &Run,
    index: u64,
    cache: &mut BlockCache,
) -> Result<Option<EventSummary>, EventStoreError> {
    run.get(&summary_key(index), cache)?
        .map(|value| decode_summary(index, &value))
        .transpose()
}

/// One query on its way through the runs: each scan answers whether the page is complete.
struct Search<'q> {
    filter: &'q QueryFilter,
    matches: &'q dyn Fn(&EventSummary) -> bool,
    page: Page,
    cache: BlockCache,
}

impl Search<'_> {
    /// Offers the event at `index` if it matches (`candidate`: its posting may match).
    fn offer_indexed(
        &mut self,
        run: &Run,
        index: u64,
        candidate: bool,
    ) -> Result<bool, EventStoreError> {
        let found = if candidate {
            summary_in(run, index, &mut self.cache)?.filter(|summary| (self.matches)(summary))
        } else {
            None
        };
        Ok(self.page.offer(index, found))
    }

    /// By the posting list under `prefix`, in log order.
    fn postings(
        &mut self,
        run: &Run,
        prefix: &[u8],
        (low, high): (u64, u64),
    ) -> Result<bool, EventStoreError> {
        let mut cursor = Cursor::seek(run, &with_index(prefix.to_vec(), low))?;
        while let Some((key, inline)) = cursor.get() {
            if key.len() != prefix.len() + 8 || !key.starts_with(prefix) {
                break;
            }
            let index = index_at_end(key).expect("8 bytes checked");
            if index >= high {
                break;
            }
            let candidate = posting_may_match(self.filter, inline);
            if self.offer_indexed(run, index, candidate)? {
                return Ok(true);
            }
            cursor.advance()?;
        }
        Ok(false)
    }

    /// By the time postings of the window, sorted back into log order; for a wide window, by
    /// the summaries.
    fn times(&mut self, run: &Run, (low, high): (u64, u64)) -> Result<bool, EventStoreError> {
        let from = time_key(self.filter.from_nanos.unwrap_or(i128::MIN));
        let to = match self.filter.to_nanos {
            Some(to) => time_key(to),
            None => vec![TAG_TIME + 1],
        };
        let mut gathered = Vec::new();
        let mut wide = run.blocks_between(&from, &to) * TIME_POSTINGS_PER_BLOCK > GATHER_LIMIT;
        if !wide {
            let mut cursor = Cursor::seek(run, &from)?;
            while let Some((key, _)) = cursor.get() {
                if key >= to.as_slice() {
                    break;
                }
                let index = index_at_end(key).unwrap_or(u64::MAX);
                if low <= index && index < high {
                    gathered.push(index);
                    if gathered.len() > GATHER_LIMIT {
                        wide = true;
                        break;
                    }
                }
                cursor.advance()?;
            }
        }
        if wide {
            return self.summaries(run, (low, high));
        }
        gathered.sort_unstable();
        for index in gathered {
            if self.offer_indexed(run, index, true)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// By the summaries of `[low, high)` in log order, skipping blocks whose event times lie
    /// outside the filter's window.
    fn summaries(&mut self, run: &Run, (low, high): (u64, u64)) -> Result<bool, EventStoreError> {
        let from = self.filter.from_nanos.unwrap_or(i128::MIN);
        let to = self.filter.to_nanos.unwrap_or(i128::MAX);
        let end_key = summary_key(high);
        let mut number = run.block_of(&summary_key(low));
        while number < run.fences.len() {
            let fence = &run.fences[number];
            if fence.first_key.as_slice() >= end_key.as_slice() {
                break;
            }
            let (earliest, latest) = fence.times;
            if earliest > latest || latest < from || earliest >= to {
                // No summary, or none in the window.
                if fence.first_key.first() > Some(&TAG_SUMMARY) {
                    break;
                }
                number += 1;
                continue;
            }
            let block = self.cache.block(run, number)?;
            for (key, value) in block.records() {
                match key.first() {
                    Some(&TAG_SUMMARY) => {}
                    Some(tag) if *tag > TAG_SUMMARY => return Ok(false),
                    _ => continue,
                }
                let Some(index) = index_at_end(key) else {
                    continue;
                };
                if index < low {
                    continue;
                }
                if index >= high {
                    return Ok(false);
                }
                let time = summary_time(value).unwrap_or(i128::MIN);
                let found = if time >= from && time < to {
                    Some(decode_summary(index, value)?).filter(|summary| (self.matches)(summary))
                } else {
                    None
                };
                if self.page.offer(index, found) {
                    return Ok(true);
                }
            }
            number += 1;
        }
        Ok(false)
    }
}

impl Drop for EventIndex {
    fn drop(&mut self) {
        self.close();
    }
}

/// How to answer `filter`: by the posting list estimated shortest over the runs, by time, or
/// by every summary.
fn plan(filter: &QueryFilter, runs: &[Arc<Run>], first: u64, below: u64) -> Plan {
    let candidates: Vec<Vec<u8>> = [
        (TAG_RESOURCE, &filter.resource),
        (TAG_ACTOR, &filter.actor),
        (TAG_ACTION, &filter.action),
    ]
    .into_iter()
    .filter_map(|(tag, value)| value.as_deref().map(|value| posting_prefix(tag, value)))
    .collect();
    if let Some(best) = candidates.into_iter().min_by_key(|prefix| {
        let (low, high) = (
            with_index(prefix.clone(), first),
            with_index(prefix.clone(), below.saturating_sub(1)),
        );
        runs.iter()
            .map(|run| run.blocks_between(&low, &high))
            .sum::<usize>()
    }) {
        return Plan::Posting(best);
    }
    if filter.from_nanos.is_some() || filter.to_nanos.is_some() {
        Plan::Time
    } else {
        Plan::Summaries
    }
}

fn remove(path: &Path) {
    if let Err(error) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), %error, "could not remove an index file");
    }
}

fn write_loop(shared: &Shared) {
    let mut state = shared.signal.lock();
    loop {
        if state.failed.is_some() {
            return;
        }
        let next = shared.tables.read().frozen.first().cloned();
        let Some(frozen) = next else {
            if state.stop {
                return;
            }
            shared.changed.wait(&mut state);
            continue;
        };
        drop(state);
        let result = write_frozen(shared, &frozen).and_then(|()| merge_runs(shared));
        state = shared.signal.lock();
        if let Err(error) = result {
            tracing::error!(%error, "writing the events index failed; it is rebuilt from the log at the next start");
            state.failed = Some(error.to_string());
        }
        shared.changed.notify_all();
    }
}

fn write_frozen(shared: &Shared, frozen: &Frozen) -> Result<(), EventStoreError> {
    let (records, start) = {
        let table = frozen.table.read();
        let mut records = Records::with_events(table.events.len());
        for summary in table.events.range(table.start, frozen.end) {
            records.add_event(summary);
        }
        (records, table.start)
    };
    let mut writer = RunWriter::create(&shared.dir, start, frozen.end)?;
    records.write_sorted(&mut writer)?;
    let run = Arc::new(writer.finish(&shared.hasher, shared.seed)?);
    let mut tables = shared.tables.write();
    tables.frozen.remove(0);
    tables.runs.push(run);
    Ok(())
}

/// Merges the two newest runs while the older is no larger than the newer, or while there are
/// too many: a binary counter of run sizes.
fn merge_runs(shared: &Shared) -> Result<(), EventStoreError> {
    loop {
        let runs = shared.tables.read().runs.clone();
        let count = runs.len();
        if count < 2
            || (runs[count - 2].records > runs[count - 1].records
                && count <= shared.config.max_runs)
        {
            return Ok(());
        }
        let inputs = &runs[count - 2..];
        let mut writer = RunWriter::create(&shared.dir, inputs[0].start, inputs[1].end)?;
        let mut cursors = inputs
            .iter()
            .map(|run| Cursor::seek(run, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        loop {
            let mut best: Option<usize> = None;
            for (number, cursor) in cursors.iter().enumerate() {
                if let Some((key, _)) = cursor.get() {
                    let better = match best {
                        None => true,
                        Some(b) => cursors[b].get().is_some_and(|(other, _)| key < other),
                    };
                    if better {
                        best = Some(number);
                    }
                }
            }
            let Some(best) = best else { break };
            let (key, value) = cursors[best].get().expect("chosen because it has a record");
            writer.push(key, value)?;
            cursors[best].advance()?;
        }
        drop(cursors);
        let merged = Arc::new(writer.finish(&shared.hasher, shared.seed)?);
        {
            let mut tables = shared.tables.write();
            let count = tables.runs.len();
            tables.runs.truncate(count - 2);
            tables.runs.push(merged);
        }
        for run in inputs {
            remove(&run.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(index: u64, actor: &str, time: i128, payload: bool) -> EventSummary {
        EventSummary {
            index,
            event_id: format!("00000000-0000-4000-8000-{index:012}"),
            time_nanos: time,
            received_nanos: time + 1,
            actor_id: actor.to_string(),
            resource_type: "t".to_string(),
            resource_id: format!("r{}", index % 3),
            action: "act".to_string(),
            has_payload: payload,
        }
    }

    #[test]
    fn key_prefixes_order_keys_as_their_bytes_do() {
        // Short keys, zero bytes and shared beginnings: where the prefix differs it must give
        // the order of the whole key; where it is equal, the keys are compared whole.
        let mut keys: Vec<Vec<u8>> = vec![vec![b'a'], vec![b'a', 0], vec![b'a', 0, 0]];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = 1 + (state % 12) as usize;
            let mut key = vec![b'a'];
            key.extend((0..len).map(|i| [0u8, 1, 0x7f, 0xff][((state >> (2 * i)) & 3) as usize]));
            keys.push(key);
        }
        for a in &keys {
            for b in keys.iter().step_by(7) {
                let (pa, pb) = (key_prefix(a), key_prefix(b));
                if pa != pb {
                    assert_eq!(pa.cmp(&pb), a.cmp(b), "{a:?} {b:?}");
                }
            }
        }
        assert_eq!(key_prefix(b""), 0);
    }

    #[test]
    fn event_ids_are_keyed_by_their_bits_and_nothing_else_has_a_key() {
        let text = "0123abcd-ef45-4678-89ab-cdef01234567";
        assert_eq!(id_bits(text), Some(0x0123abcd_ef45_4678_89ab_cdef01234567));
        let id = cairn_spec::event::EventId::new_v4([0xa5; 16]);
        let bits = id_bits(id.as_str()).expect("a generated ID has bits");
        assert_eq!(format!("{bits:032x}"), id.as_str().replace('-', ""));
        for other in [
            "",
            "0123ABCD-ef45-4678-89ab-cdef01234567",
            "0123abcd-ef45-4678-89ab-cdef0123456",
            "0123abcd-ef45-4678-89ab-cdef012345678",
            "0123abcdef-45-4678-89ab-cdef01234567",
            "0123abcd-ef45-4678-89ab-cdef0123456g",
            "0123abcd+ef45-4678-89ab-cdef01234567",
            "0123abcd-ef45-4678-89ab-cdef0123456-",
        ] {
            assert_eq!(id_bits(other), None, "{other:?}");
        }
    }

    #[test]
    fn summaries_stay_in_log_order_whatever_order_they_arrive_in() {
        let mut summaries = Summaries::default();
        let mut expected = BTreeMap::new();
        // In order, late by a little, late by a lot, and the same index again; then late by
        // more than the tail searched one by one, and again there and in the tail.
        let arrivals = [10, 11, 13, 12, 20, 14, 3, 21, 13]
            .into_iter()
            .chain(100..(100 + 2 * LATE_SEARCH as u64))
            .chain([5, 101, 99, 4, 100 + 2 * LATE_SEARCH as u64 - 1, 300, 22]);
        for index in arrivals {
            let actor = format!("actor-{}", expected.len());
            summaries.insert(summary(index, &actor, 0, false));
            expected.insert(index, summary(index, &actor, 0, false));
        }
        assert_eq!(summaries.len(), expected.len());
        for (low, high) in [
            (0, 100),
            (11, 14),
            (14, 11),
            (4, 10),
            (13, 13),
            (21, u64::MAX),
        ] {
            let got: Vec<&EventSummary> = summaries.range(low, high).iter().collect();
            let want: Vec<&EventSummary> = if low < high {
                expected
                    .range(low..high)
                    .map(|(_, summary)| summary)
                    .collect()
            } else {
                Vec::new()
            };
            assert_eq!(got, want, "[{low}, {high})");
        }
        for index in 0..(200 + 2 * LATE_SEARCH as u64) {
            assert_eq!(summaries.get(index), expected.get(&index), "{index}");
        }
    }

    #[test]
    fn summaries_round_trip_and_refuse_damage() {
        for payload in [false, true] {
            let original = summary(42, "alice", -5_000_000_000_000_000_000_000, payload);
            let bytes = encode_summary(&original);
            assert_eq!(decode_summary(42, &bytes).expect("decodes"), original);
            for cut in 0..bytes.len() {
                assert!(decode_summary(42, &bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn time_keys_sort_like_times() {
        let times = [i128::MIN, -1_000, -1, 0, 1, 999, i128::MAX];
        for pair in times.windows(2) {
            assert!(time_key(pair[0]) < time_key(pair[1]));
        }
    }

    #[test]
    fn runs_chain_and_merge_and_the_index_reopens_at_its_watermark() {
        let dir = tempfile::tempdir().expect("dir");
        let config = IndexConfig {
            table_events: 10,
            max_runs: 3,
        };
        {
            let (index, watermark) = EventIndex::open(dir.path(), config.clone(), 0).expect("open");
            assert_eq!(watermark, 0);
            for i in 0..95u64 {
                index
                    .insert(
                        summary(i * 2, "alice", i128::from(i), i % 2 == 0),
                        i * 2 + 1,
                    )
                    .expect("insert");
            }
            index.flush(190).expect("flush");
            let runs = index.shared.tables.read().runs.clone();
            assert!(runs.len() <= 3, "{} runs", runs.len());
            assert_eq!(runs.last().expect("a run").end, 190);
            let found = index
                .find("00000000-0000-4000-8000-000000000020")
                .expect("find");
            assert_eq!(found.expect("found").index, 20);
        }
        let (index, watermark) = EventIndex::open(dir.path(), config.clone(), 190).expect("reopen");
        assert_eq!(watermark, 190);
        assert_eq!(
            index.summary(180).expect("read").expect("there").actor_id,
            "alice"
        );
        assert_eq!(index.summary(181).expect("read"), None);
        drop(index);
        // A log shorter than the runs (they cannot be trusted): dropped, to be rebuilt.
        let (_, watermark) = EventIndex::open(dir.path(), config, 100).expect("reopen");
        assert!(watermark <= 100);
    }
}
