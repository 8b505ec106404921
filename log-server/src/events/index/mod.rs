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

mod arena;
mod keys;
mod run;
mod search;
mod table;
mod writer;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use self::run::{id_key, parse_run_file_name, BlockCache, Cursor, Run, RunWriter};
use super::model::{
    EventIndexStore, EventStoreError, EventSummary, InFlightSubmission, QueryFilter, QueryPage,
};
use crate::storage::embedded::files;
use crate::storage::StoreError;

use self::arena::*;
use self::keys::*;
use self::search::*;
use self::table::*;
use self::writer::*;

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
struct Ticket {
    shared: Arc<Shared>,
    ticket: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.shared.in_flight.lock().open.remove(&self.ticket);
    }
}

impl EventIndex {
    /// Opens the runs in `dir`, keeping those that form a chain from log index 0 and end within
    /// the log's `log_size` (the others, and any that do not open, are deleted: the catch-up
    /// rebuilds what they held). Its [watermark](EventIndexStore::watermark) is where the kept
    /// runs end.
    pub fn open(
        dir: &Path,
        config: IndexConfig,
        log_size: u64,
    ) -> Result<EventIndex, EventStoreError> {
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
        Ok(EventIndex {
            shared,
            writer: Mutex::new(Some(writer)),
        })
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

impl EventIndexStore for EventIndex {
    fn watermark(&self) -> u64 {
        self.shared
            .tables
            .read()
            .runs
            .last()
            .map_or(0, |run| run.end)
    }

    fn begin(&self, durable_size: u64) -> InFlightSubmission {
        let mut in_flight = self.shared.in_flight.lock();
        let ticket = in_flight.next;
        in_flight.next += 1;
        in_flight.open.insert(ticket, durable_size);
        InFlightSubmission::new(Ticket {
            shared: Arc::clone(&self.shared),
            ticket,
        })
    }

    fn overloaded(&self) -> bool {
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

    fn insert(&self, summary: EventSummary, durable_size: u64) -> Result<(), EventStoreError> {
        self.insert_all(vec![summary], durable_size)
    }

    fn insert_all(
        &self,
        mut summaries: Vec<EventSummary>,
        durable_size: u64,
    ) -> Result<(), EventStoreError> {
        for summary in &summaries {
            check_summary_text(summary)?;
        }
        let full = {
            let tables = self.shared.tables.read();
            let mut active = tables.active.write();
            // Below the cut: already in a frozen table or a run.
            summaries.retain(|summary| summary.index >= active.start);
            for summary in &summaries {
                if let Some(id) = id_bits(&summary.event_id) {
                    active.ids.insert(id, summary.index);
                }
            }
            match summaries.len() {
                0 => return Ok(()),
                1 => summaries
                    .into_iter()
                    .for_each(|one| active.events.insert(one)),
                _ => active.events.insert_run(summaries),
            }
            active.events.len() >= self.shared.config.table_events
        };
        if full {
            self.cut(durable_size, false);
        }
        Ok(())
    }

    fn flush(&self, durable_size: u64) -> Result<(), EventStoreError> {
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

    fn close(&self) {
        self.shared.signal.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }

    fn find(&self, event_id: &str) -> Result<Option<EventSummary>, EventStoreError> {
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

    fn summary(&self, index: u64) -> Result<Option<EventSummary>, EventStoreError> {
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

    fn query(
        &self,
        filter: &QueryFilter,
        limit: usize,
        max_scan: usize,
    ) -> Result<QueryPage, EventStoreError> {
        self.scan(filter, &|summary| filter.matches(summary), limit, max_scan)
    }

    fn payload_events(
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
}

impl Drop for EventIndex {
    fn drop(&mut self) {
        self.close();
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

    /// Runs of one submission go in whole where nothing lies between their ends, one by one
    /// where something does or they are out of order; either way the table ends in log order,
    /// one summary an index, the later of two at the same index kept.
    #[test]
    fn runs_go_in_whole_or_one_by_one_and_keep_log_order() {
        let indices = |summaries: &Summaries| -> Vec<u64> {
            summaries.0.iter().map(|summary| summary.index).collect()
        };
        let run = |from: u64, to: u64| -> Vec<EventSummary> {
            (from..to).map(|i| summary(i, "a", 0, false)).collect()
        };
        let mut table = Summaries::default();
        table.insert_run(run(0, 3));
        table.insert_run(run(7, 10));
        // Between the two: one move.
        table.insert_run(run(3, 5));
        assert_eq!(indices(&table), vec![0, 1, 2, 3, 4, 7, 8, 9]);
        // Overlapping 7: one by one, the newer summary of 7 kept.
        let mut overlapping = run(5, 8);
        overlapping[2].actor_id = "newer".to_string();
        table.insert_run(overlapping);
        assert_eq!(indices(&table), vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(table.get(7).map(|s| s.actor_id.as_str()), Some("newer"));
        // Out of order: one by one.
        table.insert_run(vec![summary(12, "a", 0, false), summary(11, "a", 0, false)]);
        table.insert_run(Vec::new());
        assert_eq!(indices(&table), (0..10).chain(11..13).collect::<Vec<_>>());
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
            let index = EventIndex::open(dir.path(), config.clone(), 0).expect("open");
            let watermark = index.watermark();
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
        let index = EventIndex::open(dir.path(), config.clone(), 190).expect("reopen");
        let watermark = index.watermark();
        assert_eq!(watermark, 190);
        assert_eq!(
            index.summary(180).expect("read").expect("there").actor_id,
            "alice"
        );
        assert_eq!(index.summary(181).expect("read"), None);
        drop(index);
        // A log shorter than the runs (they cannot be trusted): dropped, to be rebuilt.
        let watermark = EventIndex::open(dir.path(), config, 100)
            .expect("reopen")
            .watermark();
        assert!(watermark <= 100);
    }
}
