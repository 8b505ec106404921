//! The dedup index of the embedded store: which entry holds a given leaf hash, or was submitted
//! with a given (producer, idempotency key).
//!
//! Every entry yields one or two 64-bit keys (the first 8 bytes of its leaf hash, and of its
//! idempotency digest), each mapped to the entry's index. Keys are prefixes, so a hit is only a
//! candidate: the store confirms it against the entry itself, and a rare prefix collision can
//! only hide a duplicate (which is then stored twice), never make a new leaf look like an old
//! one.
//!
//! The index is a small log-structured merge tree, because per-leaf inserts into sled cost about
//! 4 µs of CPU each and would cap a log at about 250 k leaves/s:
//! - new keys go into an in-memory table as part of each append, after the entries are durable
//!   (nothing here is on the fsync path);
//! - a full table is frozen and written by a background thread as a sorted run file, synced and
//!   renamed into place; run files name the range of entries they cover, so they also record,
//!   atomically with the data, how far the index reaches (the watermark);
//! - on open, entries past the watermark are read back from the segments and indexed again;
//! - a Bloom filter over all keys in runs turns away almost every new key without touching disk,
//!   and runs are merged when there are too many;
//! - merging runs and rebuilding the filter larger (both take long on a large log) happen on a
//!   thread of their own, the compactor, so that the flusher keeps writing tables out and an
//!   append never waits behind a merge.
//!
//! Memory stays bounded: at most two frozen tables and the active one (a configured number of
//! keys each), the filter (ten bits per key), and one fence key per 256 keys on disk.

pub(crate) mod bloom;
mod run;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use self::bloom::Bloom;
use self::run::{parse_run_file_name, Run};
use super::files;
use crate::storage::StoreError;

/// How the dedup index is sized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupConfig {
    /// Keys in the in-memory table before it is written out as a run.
    pub table_keys: usize,
    /// Runs on disk before they are merged into one.
    pub max_runs: usize,
    /// Keys the Bloom filter is first sized for; it is rebuilt twice as large when exceeded.
    pub initial_filter_keys: u64,
}

impl Default for DedupConfig {
    fn default() -> DedupConfig {
        DedupConfig {
            // 32 Ki keys: a table of about 1 MiB stays in cache; larger ones made every insert
            // and lookup a cache miss, and the merges of small runs cost less than those misses.
            table_keys: 1 << 15,
            max_runs: 6,
            initial_filter_keys: 1 << 20,
        }
    }
}

/// The 64-bit index key of a 32-byte dedup digest.
pub fn key_of(digest: &[u8; 32]) -> u64 {
    u64::from_le_bytes(digest[..8].try_into().expect("8 of 32 bytes"))
}

/// Hashes the (already uniform) keys with a per-process seed, so that ground leaves cannot
/// pile into one bucket.
#[derive(Clone, Copy)]
struct SeededKeys(u64);

struct SeededHasher {
    seed: u64,
    value: u64,
}

impl BuildHasher for SeededKeys {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher {
            seed: self.0,
            value: 0,
        }
    }
}

impl Hasher for SeededHasher {
    fn finish(&self) -> u64 {
        (self.value ^ self.seed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.value = (self.value << 8 | u64::from(byte)).rotate_left(5);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.value = value;
    }
}

/// Keys of entries `[start, end)`, first index per key.
struct Table {
    start: u64,
    end: u64,
    keys: HashMap<u64, u64, SeededKeys>,
}

impl Table {
    fn new(start: u64, seed: u64, capacity: usize) -> Table {
        Table {
            start,
            end: start,
            keys: HashMap::with_capacity_and_hasher(capacity, SeededKeys(seed)),
        }
    }
}

struct Tables {
    active: Table,
    /// Oldest first; being written out by the flusher.
    frozen: Vec<Arc<Table>>,
    /// Contiguous from entry 0, in order.
    runs: Vec<Arc<Run>>,
    filter: Arc<Bloom>,
    /// Keys in runs.
    run_keys: u64,
}

struct Shared {
    dir: PathBuf,
    config: DedupConfig,
    seed: u64,
    tables: RwLock<Tables>,
    /// Held while keys go into the filter and their run joins the runs, and while the
    /// compactor swaps in a rebuilt filter: every run's keys are in whichever filter serves.
    filter_lock: Mutex<()>,
    /// Wakes the flusher and the compactor, and appenders waiting for the flusher.
    signal: Mutex<FlusherState>,
    changed: Condvar,
}

#[derive(Default)]
struct FlusherState {
    stop: bool,
    /// Why the flusher's last write failed, while it retries; cleared when a write succeeds.
    failing: Option<String>,
    /// Writes of runs (by the flusher or the compactor) that failed.
    errors: u64,
    /// The runs outgrew the filter: the compactor rebuilds it larger.
    rebuild_filter: bool,
}

/// The dedup index.
pub struct DedupIndex {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl DedupIndex {
    /// Opens the runs in `dir`. Returns the index and its watermark: entries from there on must
    /// be added again with [`DedupIndex::insert`] before the index is complete.
    pub fn open(
        dir: &Path,
        config: DedupConfig,
        entry_count: u64,
    ) -> Result<(DedupIndex, u64), StoreError> {
        files::ensure_dir(dir)?;
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        let runs = open_runs(dir, entry_count)?;
        let run_keys: u64 = runs.iter().map(|run| run.pairs).sum();
        let filter = Bloom::with_capacity(config.initial_filter_keys.max(2 * run_keys), seed);
        for run in &runs {
            run.add_keys_to(&filter)?;
        }
        let watermark = runs.last().map_or(0, |run| run.end);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            seed,
            tables: RwLock::new(Tables {
                active: Table::new(watermark, seed, config.table_keys.min(1 << 16)),
                frozen: Vec::new(),
                runs,
                filter: Arc::new(filter),
                run_keys,
            }),
            config,
            filter_lock: Mutex::new(()),
            signal: Mutex::new(FlusherState::default()),
            changed: Condvar::new(),
        });
        let mut threads = Vec::new();
        for (name, work) in [
            ("cairn-dedup-flush", flusher as fn(&Shared)),
            ("cairn-dedup-merge", compactor as fn(&Shared)),
        ] {
            let for_thread = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || work(&for_thread))
                .map_err(|source| StoreError::io("start the dedup threads for", dir, source));
            match thread {
                Ok(thread) => threads.push(thread),
                Err(error) => {
                    stop(&shared, threads);
                    return Err(error);
                }
            }
        }
        Ok((
            DedupIndex {
                shared,
                threads: Mutex::new(threads),
            },
            watermark,
        ))
    }

    /// Adds the keys of entries `[first_index, end)`, which follow the entries already indexed:
    /// pairs of (key, index). Waits if the flusher is two tables behind, so memory stays bounded.
    pub fn insert(
        &self,
        first_index: u64,
        end: u64,
        keys: impl IntoIterator<Item = (u64, u64)>,
    ) -> Result<(), StoreError> {
        let shared = &self.shared;
        let mut refused = None;
        {
            let mut signal = shared.signal.lock();
            while shared.tables.read().frozen.len() >= 2 {
                // The flusher cannot write: the keys are kept (in the active table, which
                // then outgrows its size) and the caller hears the index is unavailable. The
                // store refuses appends until the flusher catches up (see `is_writable`), so
                // the table stops growing.
                if let Some(reason) = signal.failing.as_ref() {
                    refused = Some(reason.clone());
                    break;
                }
                if signal.stop {
                    refused = Some("the dedup index is closing".to_string());
                    break;
                }
                shared.changed.wait(&mut signal);
            }
        }
        let mut tables = shared.tables.write();
        let active = &mut tables.active;
        debug_assert_eq!(active.end, first_index, "dedup keys are inserted in order");
        for (key, index) in keys {
            active.keys.entry(key).or_insert(index);
        }
        active.end = end;
        if let Some(reason) = refused {
            return Err(StoreError::Poisoned(format!(
                "the dedup index cannot be written out: {reason}"
            )));
        }
        if active.keys.len() >= shared.config.table_keys {
            let fresh = Table::new(active.end, shared.seed, shared.config.table_keys);
            let full = std::mem::replace(&mut tables.active, fresh);
            tables.frozen.push(Arc::new(full));
            drop(tables);
            wake(shared);
        }
        Ok(())
    }

    /// Whether appends may go on: the flusher is not failing with two tables waiting, which
    /// would make [`DedupIndex::insert`] refuse. `Err` says why not.
    pub fn is_writable(&self) -> Result<(), String> {
        let signal = self.shared.signal.lock();
        match &signal.failing {
            Some(reason) if self.shared.tables.read().frozen.len() >= 2 => Err(reason.clone()),
            _ => Ok(()),
        }
    }

    /// Why the flusher's writes fail now, if they do, and how many writes failed so far.
    pub fn failures(&self) -> (Option<String>, u64) {
        let signal = self.shared.signal.lock();
        (signal.failing.clone(), signal.errors)
    }

    /// Brings the filter's blocks for `keys` into the cache, ahead of [`DedupIndex::find`]s of
    /// them.
    pub fn warm(&self, keys: impl Iterator<Item = u64>) {
        let filter = Arc::clone(&self.shared.tables.read().filter);
        filter.touch(keys);
    }

    /// The first entry under `key` that `confirm` accepts, searching from the oldest entries
    /// (so that the first index is found) and stopping at the first confirmed one. Keys are
    /// prefixes: `confirm` checks a candidate index against the entry itself.
    pub fn find<T>(
        &self,
        key: u64,
        mut confirm: impl FnMut(u64) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let (runs, recent) = {
            let tables = self.shared.tables.read();
            let runs = if tables.filter.may_contain(key) {
                tables.runs.clone()
            } else {
                Vec::new()
            };
            let recent: Vec<u64> = tables
                .frozen
                .iter()
                .map(|table| table.keys.get(&key))
                .chain(std::iter::once(tables.active.keys.get(&key)))
                .flatten()
                .copied()
                .collect();
            (runs, recent)
        };
        let mut candidates = Vec::new();
        for run in &runs {
            candidates.clear();
            run.lookup(key, &mut candidates)?;
            for &index in &candidates {
                if let Some(found) = confirm(index)? {
                    return Ok(Some(found));
                }
            }
        }
        for index in recent {
            if let Some(found) = confirm(index)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Entries below this are in run files on disk.
    pub fn watermark(&self) -> u64 {
        self.shared
            .tables
            .read()
            .runs
            .last()
            .map_or(0, |run| run.end)
    }

    /// Memory held by the index: tables and filter, in bytes (an estimate).
    pub fn memory_bytes(&self) -> usize {
        let tables = self.shared.tables.read();
        let table_bytes = |table: &Table| table.keys.capacity() * 17;
        table_bytes(&tables.active)
            + tables
                .frozen
                .iter()
                .map(|table| table_bytes(table))
                .sum::<usize>()
            + tables.filter.memory_bytes()
            + tables
                .runs
                .iter()
                .map(|run| (run.pairs / 256 * 8) as usize)
                .sum::<usize>()
    }

    /// Writes every key out as a run, so that the next open needs to index nothing again.
    pub fn flush_all(&self) -> Result<(), StoreError> {
        {
            let mut tables = self.shared.tables.write();
            if !tables.active.keys.is_empty() {
                let end = tables.active.end;
                let full =
                    std::mem::replace(&mut tables.active, Table::new(end, self.shared.seed, 0));
                tables.frozen.push(Arc::new(full));
            }
        }
        wake(&self.shared);
        let mut signal = self.shared.signal.lock();
        loop {
            if let Some(reason) = &signal.failing {
                return Err(StoreError::Poisoned(format!(
                    "the dedup index could not be written: {reason}"
                )));
            }
            if self.shared.tables.read().frozen.is_empty() {
                return Ok(());
            }
            self.shared.changed.wait(&mut signal);
        }
    }
}

impl Drop for DedupIndex {
    fn drop(&mut self) {
        stop(&self.shared, std::mem::take(&mut *self.threads.lock()));
    }
}

fn stop(shared: &Shared, threads: Vec<JoinHandle<()>>) {
    shared.signal.lock().stop = true;
    wake(shared);
    for thread in threads {
        if thread.join().is_err() {
            tracing::error!("a dedup index thread panicked");
        }
    }
}

/// Opens the run files, keeping the longest contiguous chain from entry 0. Runs left over by a
/// merge that crashed before deleting its inputs, and runs past a gap, are deleted: their
/// entries are indexed again from the segments.
fn open_runs(dir: &Path, entry_count: u64) -> Result<Vec<Arc<Run>>, StoreError> {
    let mut ranges = Vec::new();
    let listing = std::fs::read_dir(dir).map_err(|source| StoreError::io("list", dir, source))?;
    for item in listing {
        let item = item.map_err(|source| StoreError::io("list", dir, source))?;
        let name = item.file_name();
        match name.to_str() {
            Some(name) if name.ends_with(".tmp") => {
                let path = item.path();
                std::fs::remove_file(&path)
                    .map_err(|source| StoreError::io("remove", &path, source))?;
            }
            Some(name) => {
                if let Some(range) = parse_run_file_name(name) {
                    ranges.push(range);
                }
            }
            None => {}
        }
    }
    // Widest first among equal starts, so a merged run wins over the runs it replaced.
    ranges.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut runs = Vec::new();
    let mut reach = 0;
    for (start, end) in ranges {
        let path = dir.join(run::run_file_name(start, end));
        if start == reach && end <= entry_count {
            runs.push(Arc::new(Run::open(&path, None)?));
            reach = end;
        } else {
            if end > entry_count {
                tracing::warn!(path = %path.display(), entry_count, "dedup run reaches past the entries; dropping it");
            }
            std::fs::remove_file(&path)
                .map_err(|source| StoreError::io("remove", &path, source))?;
        }
    }
    Ok(runs)
}

/// The first pause after a failed write of a run, doubled after each failure up to
/// [`MAX_RETRY_PAUSE`]: a full disk or an I/O error may clear, and the index then catches up.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(100);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

fn flusher(shared: &Shared) {
    let mut pause = FIRST_RETRY_PAUSE;
    loop {
        let table = {
            let mut signal = shared.signal.lock();
            loop {
                if signal.stop {
                    return;
                }
                if let Some(table) = shared.tables.read().frozen.first().cloned() {
                    break table;
                }
                shared.changed.wait(&mut signal);
            }
        };
        match flush_table(shared, &table) {
            Ok(()) => {
                pause = FIRST_RETRY_PAUSE;
                let mut signal = shared.signal.lock();
                if signal.failing.take().is_some() {
                    tracing::info!("the dedup index is written out again");
                }
                shared.changed.notify_all();
            }
            Err(error) => {
                if !failed_then_paused(shared, &error, pause, true) {
                    return;
                }
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
        }
    }
}

/// Merges runs when there are too many, and rebuilds the filter larger when the runs outgrew
/// it, off the flusher's path. A failure is retried later; nothing waits for it.
fn compactor(shared: &Shared) {
    let mut pause = FIRST_RETRY_PAUSE;
    loop {
        let rebuild = {
            let mut signal = shared.signal.lock();
            loop {
                if signal.stop {
                    return;
                }
                if signal.rebuild_filter {
                    break true;
                }
                if shared.tables.read().runs.len() > shared.config.max_runs {
                    break false;
                }
                shared.changed.wait(&mut signal);
            }
        };
        let done = if rebuild {
            rebuild_filter(shared)
        } else {
            merge_newest_runs(shared)
        };
        match done {
            Ok(()) => pause = FIRST_RETRY_PAUSE,
            Err(error) => {
                if !failed_then_paused(shared, &error, pause, false) {
                    return;
                }
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
        }
    }
}

/// Counts a failed write (and, for the flusher, says the index is failing), then waits
/// `pause` or until the index stops. Returns false if it stopped.
fn failed_then_paused(shared: &Shared, error: &StoreError, pause: Duration, flusher: bool) -> bool {
    let mut signal = shared.signal.lock();
    signal.errors += 1;
    if flusher {
        if signal.failing.is_none() {
            tracing::error!(%error, "the dedup index cannot be written out; retrying");
        }
        signal.failing = Some(error.to_string());
    } else {
        tracing::warn!(%error, "merging dedup runs failed; retrying later");
    }
    shared.changed.notify_all();
    if !signal.stop {
        shared.changed.wait_for(&mut signal, pause);
    }
    !signal.stop
}

/// Wakes every waiter. The signal lock is taken so that a waiter between checking its
/// condition and waiting cannot miss the wake-up.
fn wake(shared: &Shared) {
    let _guard = shared.signal.lock();
    shared.changed.notify_all();
}

fn flush_table(shared: &Shared, table: &Table) -> Result<(), StoreError> {
    let mut pairs: Vec<(u64, u64)> = table
        .keys
        .iter()
        .map(|(&key, &index)| (key, index))
        .collect();
    let run = Arc::new(Run::write(&shared.dir, table.start, table.end, &mut pairs)?);
    // The run's keys must be in the filter before the table that held them goes away.
    let _filter = shared.filter_lock.lock();
    let filter = Arc::clone(&shared.tables.read().filter);
    for &(key, _) in &pairs {
        filter.insert(key);
    }
    let outgrown = {
        let mut tables = shared.tables.write();
        tables.run_keys += run.pairs;
        tables.runs.push(run);
        tables.frozen.remove(0);
        tables.run_keys > filter.capacity()
    };
    if outgrown {
        // Until the compactor swaps in a larger filter, this one only turns away fewer keys.
        shared.signal.lock().rebuild_filter = true;
    }
    Ok(())
}

/// Builds a filter twice the size of the runs' keys from the runs as they are now, adds the keys
/// of the runs flushed meanwhile, and swaps it in.
fn rebuild_filter(shared: &Shared) -> Result<(), StoreError> {
    let (runs, run_keys) = {
        let tables = shared.tables.read();
        (tables.runs.clone(), tables.run_keys)
    };
    let bigger = Bloom::with_capacity(2 * run_keys.max(1), shared.seed);
    for run in &runs {
        run.add_keys_to(&bigger)?;
    }
    let _filter = shared.filter_lock.lock();
    // Only the flusher adds runs, at the end, and only this thread merges, so the runs read
    // above are still a prefix of the runs now.
    let newer = shared.tables.read().runs[runs.len()..].to_vec();
    for run in &newer {
        run.add_keys_to(&bigger)?;
    }
    let mut tables = shared.tables.write();
    let outgrown = tables.run_keys > bigger.capacity();
    tables.filter = Arc::new(bigger);
    drop(tables);
    shared.signal.lock().rebuild_filter = outgrown;
    Ok(())
}

/// Merges the newest runs, smallest first, until the merged run is at least half the size of
/// the run before it: each key is rewritten a logarithmic number of times.
fn merge_newest_runs(shared: &Shared) -> Result<(), StoreError> {
    let runs = shared.tables.read().runs.clone();
    if runs.len() <= shared.config.max_runs {
        return Ok(());
    }
    let mut first = runs.len() - 2;
    let mut size: u64 = runs[first..].iter().map(|run| run.pairs).sum();
    while first > 0 && runs[first - 1].pairs <= 2 * size {
        first -= 1;
        size += runs[first].pairs;
    }
    let inputs: Vec<&Run> = runs[first..].iter().map(Arc::as_ref).collect();
    let merged = Arc::new(Run::merge(&shared.dir, &inputs)?);
    {
        // The flusher may have added runs after the inputs meanwhile; they stay after it.
        let mut tables = shared.tables.write();
        let newer = tables.runs.split_off(runs.len());
        tables.runs.truncate(first);
        tables.runs.push(merged);
        tables.runs.extend(newer);
    }
    for run in &runs[first..] {
        run.remove()?;
    }
    files::sync_dir(&shared.dir)
}
