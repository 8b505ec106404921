//! The event index of completeness.md (`cairn.index/v1`): for each index key, the list of the
//! leaves that carry it, committed to by a map whose root every checkpoint of the log carries
//! as its `cairn-index/v1` extension line, and the proofs that an answer holds every event of
//! one value (§3.3).
//!
//! - The integrator calls [`CompletenessIndex::extensions_at`] before it signs a checkpoint:
//!   the leaves the index does not cover yet are read back from the store (leaf, and the
//!   contents record's header for a schema 2 event: [`keys`]), their keys added to the map
//!   (cairn-spec `IndexMap`), and the new root returned as the extension line.
//! - **Stored, not rebuilt.** The index is kept durably beside the events database
//!   ([`file`]: `<data dir>/events/completeness.idx`), synced before the checkpoint that
//!   carries its root is stored, and replayed on open (each stored root checked again), so a
//!   restart gives the same root. Rebuilding it from the log alone would not: erasing an
//!   event's contents erases the tags its contents record held, and a list must never lose an
//!   item (completeness.md §2, rule 3). Leaves past the file's last mark (a crash between
//!   the file and the checkpoint, a fresh file on an existing log, another front-end's run
//!   in the scaled backend) are indexed from the log.
//! - In memory: the map (one leaf and about one inner node per key) and each key's list of
//!   leaf indices (8 bytes an item, about 4 items an event); the leaf hashes of a list are
//!   read from the log's level-0 hashes when a proof is made.
//! - [`CompletenessIndex::prove`] makes the proof of one value in a window of leaves against
//!   the checkpoint at the index's size; the HTTP layer
//!   ([`crate::routes::completeness`], above this module) puts it in query answers and export
//!   bundles.

pub mod file;
pub mod keys;
pub mod received;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::completeness::received::ReceivedRange;
use cairn_spec::completeness::{
    extension_line, root_from_extensions, run_bounds, CompletenessProof, IndexMap, Item, KeyProof,
    MapKey,
};
use cairn_spec::note::Note;
use cairn_spec::Hash;
use parking_lot::Mutex;

use self::file::{IndexFile, Record, MAX_KEYS_PER_LEAF};
use crate::events::EventStore;
use crate::storage::{LogStore, StoreError};

/// The index file's name, in the events directory.
pub const FILE_NAME: &str = "completeness.idx";
/// Most entries read from the store at once while indexing.
const READ_CHUNK: u64 = 1024;
/// Most items of the lists one proof rests on (each item's leaf hash is read and hashed).
pub const MAX_PROVEN_ITEMS: usize = 4 << 20;
/// Most (key, item) pairs held while the file is read back, before they go into the map.
const LOAD_BATCH: usize = 1 << 16;
/// Most leaf hashes read in one call when gathering a list's items.
const HASH_SPAN: u64 = 4096;

/// Why the index could not be kept or proven.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The index file could not be read or written.
    #[error("completeness index file: {0}")]
    File(String),
    /// The index does not agree with itself or with a checkpoint.
    #[error("completeness index: {0}")]
    Corrupt(String),
    /// The proof is not possible now or at all (too large, no checkpoint yet).
    #[error("completeness proof: {0}")]
    Unavailable(String),
}

/// The index: the map, each key's list, and the durable file.
pub struct CompletenessIndex {
    path: PathBuf,
    events: EventStore,
    state: Mutex<Option<State>>,
}

struct State {
    map: IndexMap,
    lists: HashMap<MapKey, Vec<u64>>,
    /// The index covers the leaves below this.
    covered: u64,
    root: Hash,
    file: IndexFile,
}

impl State {
    /// Reads the file back, checking every stored root. Blocking.
    fn load(path: &Path) -> Result<State, IndexError> {
        let mut map = IndexMap::new();
        let mut lists: HashMap<MapKey, Vec<u64>> = HashMap::new();
        let (mut covered, mut root) = (0u64, map.root());
        let mut pending = Vec::new();
        let file = IndexFile::open(path, |record| {
            match record {
                Record::Item(item, keys) => {
                    pending.extend(keys.into_iter().map(|key| (key, item)));
                    if pending.len() >= LOAD_BATCH {
                        add_all(&mut map, &mut lists, &mut pending)?;
                    }
                }
                Record::Mark(size, stored) => {
                    add_all(&mut map, &mut lists, &mut pending)?;
                    root = map.root();
                    if root != stored {
                        return Err(IndexError::Corrupt(format!(
                            "{}: the root recomputed at size {size} is {root}, the file says \
                             {stored}",
                            path.display()
                        )));
                    }
                    covered = size;
                }
            }
            Ok(())
        })?;
        Ok(State {
            map,
            lists,
            covered,
            root,
            file,
        })
    }

    /// Indexes the leaves `[covered, size)` from `store` and commits them to the file.
    fn extend(
        &mut self,
        store: &dyn LogStore,
        events: &EventStore,
        size: u64,
    ) -> Result<(), IndexError> {
        if size < self.covered {
            return Err(IndexError::Corrupt(format!(
                "it covers {} leaves, more than the tree's {size}",
                self.covered
            )));
        }
        if size == self.covered {
            return Ok(());
        }
        let chunk = store.limits().max_read_with_payloads().clamp(1, READ_CHUNK);
        let mut next = self.covered;
        let mut pending = Vec::with_capacity(chunk as usize * MAX_KEYS_PER_LEAF);
        while next < size {
            let count = (size - next).min(chunk);
            // Entries and their payloads (contents records) in one read: one payload read at
            // a time was most of the index's cost.
            let entries = store.read_entries_with_payloads(next, count)?;
            if entries.len() as u64 != count {
                return Err(IndexError::Corrupt(format!(
                    "the store gave {} entries from {next}, {count} were asked",
                    entries.len()
                )));
            }
            for (entry, payload) in &entries {
                let keys = keys::keys_of(&entry.leaf, payload.as_ref(), events.privacy());
                if keys.is_empty() {
                    continue;
                }
                let item = Item {
                    leaf_index: entry.index,
                    leaf_hash: entry.leaf_hash(),
                };
                pending.extend(keys.iter().take(MAX_KEYS_PER_LEAF).map(|key| (*key, item)));
                self.file.push_item(&item, &keys);
            }
            add_all(&mut self.map, &mut self.lists, &mut pending)?;
            next += count;
        }
        let root = self.map.root();
        self.file.commit(size, &root)?;
        self.covered = size;
        self.root = root;
        Ok(())
    }
}

/// Adds the (key, item) pairs of a run of leaves (in leaf order) to the map and the lists, one
/// walk down the map per key (the pairs sorted by key, which keeps leaf order within a key and
/// visits the map in key order), and empties `pairs`.
fn add_all(
    map: &mut IndexMap,
    lists: &mut HashMap<MapKey, Vec<u64>>,
    pairs: &mut Vec<(MapKey, Item)>,
) -> Result<(), IndexError> {
    pairs.sort_by_key(|(key, _)| *key);
    let mut items = Vec::new();
    for run in pairs.chunk_by(|a, b| a.0 == b.0) {
        let key = run[0].0;
        items.clear();
        items.extend(run.iter().map(|(_, item)| *item));
        map.add_run(key, &items)
            .map_err(|error| IndexError::Corrupt(error.to_string()))?;
        lists
            .entry(key)
            .or_default()
            .extend(items.iter().map(|item| item.leaf_index));
    }
    pairs.clear();
    Ok(())
}

impl std::fmt::Debug for CompletenessIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompletenessIndex({:?})", self.head())
    }
}

/// A proven window of one value's events.
#[derive(Debug, Clone)]
pub struct ProvenWindow {
    /// The checkpoint's tree size.
    pub size: u64,
    /// The checkpoint note the proof is against.
    pub note: Vec<u8>,
    /// The proof.
    pub proof: CompletenessProof,
    /// The events' leaf indices, increasing.
    pub indices: Vec<u64>,
    /// The last index shown, when more events of the value follow it.
    pub next_after: Option<u64>,
}

/// What a proof is asked for.
#[derive(Debug, Clone)]
pub struct ProofRequest {
    /// `actor`, `resource` or `action`.
    pub field: String,
    /// The value.
    pub value: String,
    /// Its index keys (one or two).
    pub keys: Vec<MapKey>,
    /// Only events after this leaf index.
    pub after: Option<u64>,
    /// Most events.
    pub limit: usize,
    /// Only events received in this range (completeness.md §3.5): the answer is the window of
    /// leaves that range may lie in, bounded by leaves received well outside it.
    pub received: Option<(cairn_spec::time::Instant, cairn_spec::time::Instant)>,
}

impl CompletenessIndex {
    /// Opens the index in `events_dir` (replaying its file) beside `events`. Blocking.
    pub fn open(
        events_dir: &Path,
        events: EventStore,
    ) -> Result<Arc<CompletenessIndex>, IndexError> {
        std::fs::create_dir_all(events_dir)
            .map_err(|e| IndexError::File(format!("{}: {e}", events_dir.display())))?;
        let path = events_dir.join(FILE_NAME);
        let state = State::load(&path)?;
        tracing::info!(
            covered = state.covered,
            keys = state.map.key_count(),
            "completeness index read back"
        );
        Ok(Arc::new(CompletenessIndex {
            path,
            events,
            state: Mutex::new(Some(state)),
        }))
    }

    /// The state, read back from the file first if a failed run left it unknown.
    fn state<'a>(
        &self,
        guard: &'a mut parking_lot::MutexGuard<'_, Option<State>>,
    ) -> Result<&'a mut State, IndexError> {
        if guard.is_none() {
            **guard = Some(State::load(&self.path)?);
        }
        guard
            .as_mut()
            .ok_or_else(|| IndexError::Corrupt("no state after loading".into()))
    }

    /// Brings the index to the tree of `size` leaves and gives the checkpoint's extension
    /// lines: the `cairn-index/v1` line. Blocking (reads the new entries, syncs the file).
    pub fn extensions_at(
        &self,
        store: &dyn LogStore,
        size: u64,
    ) -> Result<Vec<String>, IndexError> {
        let mut guard = self.state.lock();
        let state = self.state(&mut guard)?;
        if let Err(error) = state.extend(store, &self.events, size) {
            // The map may hold items the file does not: read it back before the next use.
            *guard = None;
            return Err(error);
        }
        Ok(vec![extension_line(&state.root)])
    }

    /// Up to `max` bytes of the index's record stream (completeness.md §1.4) from byte
    /// `offset`, whole records only, up to its last mark: what index auditors replay. Empty at
    /// the end. Blocking.
    pub fn records(&self, offset: u64, max: usize) -> Result<Vec<u8>, IndexError> {
        let committed = {
            let mut guard = self.state.lock();
            self.state(&mut guard)?.file.committed()
        };
        if offset >= committed {
            return Ok(Vec::new());
        }
        let length = (committed - offset).min(max as u64);
        let mut bytes = vec![0u8; length as usize];
        let read = |bytes: &mut [u8]| -> std::io::Result<()> {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = std::fs::File::open(&self.path)?;
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(bytes)
        };
        read(&mut bytes)
            .map_err(|e| IndexError::File(format!("reading {}: {e}", self.path.display())))?;
        let whole = cairn_spec::completeness::records::whole_records(&bytes).map_err(|e| {
            IndexError::Corrupt(format!("{} at byte {offset}: {e}", self.path.display()))
        })?;
        bytes.truncate(whole);
        Ok(bytes)
    }

    /// The leaves it covers and its root.
    pub fn head(&self) -> Option<(u64, Hash)> {
        self.state
            .lock()
            .as_ref()
            .map(|state| (state.covered, state.root))
    }

    /// Proves `request` against the checkpoint at the index's size, which `checkpoint` gives
    /// (called with the size, under the index's lock, so the index cannot move meanwhile).
    /// First indexes what the store's latest checkpoint covers beyond the index (a front-end
    /// that follows another's checkpoints) and checks that both roots agree. Blocking.
    pub fn prove(
        &self,
        store: &dyn LogStore,
        request: &ProofRequest,
        checkpoint: impl FnOnce(u64) -> Result<Vec<u8>, IndexError>,
    ) -> Result<ProvenWindow, IndexError> {
        let mut guard = self.state.lock();
        let state = self.state(&mut guard)?;
        if let Some(latest) = store.latest_checkpoint()? {
            if latest.size > state.covered {
                if let Err(error) = state.extend(store, &self.events, latest.size) {
                    *guard = None;
                    return Err(error);
                }
                let claimed = map_root_of(&latest.note)?;
                if claimed != Some(state.root) {
                    return Err(IndexError::Corrupt(format!(
                        "the checkpoint of size {} carries the index root {claimed:?}, this \
                         front-end computed {}",
                        latest.size, state.root
                    )));
                }
            }
        }
        let size = state.covered;
        let note = checkpoint(size)?;
        let from = request.after.map_or(0, |after| after.saturating_add(1));
        let mut lists: Vec<&[u64]> = Vec::with_capacity(request.keys.len());
        let mut total = 0usize;
        for key in &request.keys {
            let list = state.lists.get(key).map_or(&[][..], Vec::as_slice);
            total += list.len();
            lists.push(list);
        }
        if total > MAX_PROVEN_ITEMS {
            return Err(IndexError::Unavailable(format!(
                "the value's lists hold {total} items, more than the {MAX_PROVEN_ITEMS} one \
                 proof may rest on"
            )));
        }
        let (from, end) = match request.received {
            None => (from, size),
            Some(range) => received::window(store, &lists, from.min(size), size, range)?,
        };
        let mut matching: Vec<u64> = lists
            .iter()
            .flat_map(|list| {
                let start = list.partition_point(|&index| index < from);
                let end = list.partition_point(|&index| index < end);
                list[start..end].iter().copied()
            })
            .collect();
        matching.sort_unstable();
        matching.dedup();
        let (indices, to, next_after) = if matching.len() > request.limit {
            matching.truncate(request.limit);
            let last = matching.last().copied().unwrap_or(from);
            (matching, last + 1, Some(last))
        } else {
            (matching, end, None)
        };
        let from = from.min(to);
        let received = match request.received {
            None => None,
            Some((start, end)) => {
                let mut outside = Vec::new();
                for list in &lists {
                    if let Some((first, last)) = run_bounds(list, from, to) {
                        outside.extend([list[first as usize], list[last as usize - 1]]);
                    }
                }
                outside.retain(|&index| index < from || index >= to);
                Some(ReceivedRange {
                    from: start.to_rfc3339(),
                    to: end.to_rfc3339(),
                    edges: received::edge_leaves(store, &outside)?,
                })
            }
        };
        let mut proofs = Vec::with_capacity(request.keys.len());
        for (key, list) in request.keys.iter().zip(&lists) {
            let hashes = leaf_hashes(store, list)?;
            let items: Vec<Item> = list
                .iter()
                .zip(hashes)
                .map(|(&leaf_index, leaf_hash)| Item {
                    leaf_index,
                    leaf_hash,
                })
                .collect();
            let map_proof = state.map.prove(key);
            proofs.push(
                KeyProof::build(*key, &map_proof, &items, from, to)
                    .map_err(|error| IndexError::Corrupt(error.to_string()))?,
            );
        }
        Ok(ProvenWindow {
            size,
            note,
            proof: CompletenessProof {
                field: request.field.clone(),
                value: request.value.clone(),
                from,
                to,
                keys: proofs,
                received,
            },
            indices,
            next_after,
        })
    }
}

/// The leaf hashes of the leaves `indices` (increasing), read from the log's level 0 in spans.
fn leaf_hashes(store: &dyn LogStore, indices: &[u64]) -> Result<Vec<Hash>, IndexError> {
    let mut hashes = Vec::with_capacity(indices.len());
    let mut position = 0;
    while position < indices.len() {
        let start = indices[position];
        let mut end = position + 1;
        while end < indices.len() && indices[end] - start < HASH_SPAN {
            end += 1;
        }
        let span = indices[end - 1] - start + 1;
        let read = store.read_hashes(0, start, span)?;
        for &index in &indices[position..end] {
            let hash = read.get((index - start) as usize).copied().ok_or_else(|| {
                IndexError::Corrupt(format!("the log has no leaf hash at {index}"))
            })?;
            hashes.push(hash);
        }
        position = end;
    }
    Ok(hashes)
}

/// The map root a stored checkpoint note carries, if any.
pub fn map_root_of(note: &[u8]) -> Result<Option<Hash>, IndexError> {
    let note = Note::parse(note).map_err(|e| IndexError::Corrupt(format!("a stored note: {e}")))?;
    let checkpoint = Checkpoint::from_note(&note)
        .map_err(|e| IndexError::Corrupt(format!("a stored checkpoint: {e}")))?;
    root_from_extensions(&checkpoint.extensions)
        .map_err(|e| IndexError::Corrupt(format!("a stored checkpoint: {e}")))
}
