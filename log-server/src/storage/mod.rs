//! A log's storage behind four narrow traits, so that the sequencer, the integrator, the HTTP
//! API and witnessing never depend on how it is kept, and a second backend plugs in trait by
//! trait:
//!
//! | trait | what | on the path of |
//! |---|---|---|
//! | [`SequenceStore`] | entries, their payloads, the dedup index | every submission |
//! | [`TreeStore`] | the tree's hashes per tile level (the tiles) | the integrator, `/tile/…` |
//! | [`StateStore`] | latest checkpoint, witness progress, cosignatures, timestamp tokens | publishing, witnessing |
//! | [`crate::events::EventIndexStore`] | the events index: summaries and postings | `/v1/events` |
//!
//! [`LogStore`] is the first three kept together by one backend. The backend is chosen by the
//! configuration key `storage` ([`Backend`]): [`embedded`] keeps everything in a directory of
//! one machine; [`scaled`] is shared by several front-ends, composed of [`postgres`] (the
//! sequence and the small state in PostgreSQL, with the integrator's lease) and [`bucket`] (a
//! [`TreeStore`] in an S3-compatible bucket, its hashes as the C2SP tlog-tiles objects mirrors
//! read, with entry bundles and the checkpoint published beside them).
//!
//! Beside the traits, what the layers above read the store through and would otherwise each
//! define: [`StoreHashes`], any node of the tree from the stored hash levels (proofs,
//! receipts, the integrator's restore), and [`Coordination`], whether this front-end of a
//! shared log integrates now (kept by the scaled backend's lease). The events index's trait is
//! [`crate::events`]'s, and its PostgreSQL implementation ([`crate::events::postgres`]) lives
//! there, above this module: nothing here names a module above it.
//!
//! What a log stores:
//! - **Entries**: the sequenced leaves, in order, appended in batches that are durable when
//!   [`SequenceStore::append_entries`] returns. An entry may carry a **payload** beside its leaf
//!   (an audit event's payload, whose hash the leaf holds): durable with the leaf, not part of
//!   the tree, and erasable in place without touching any leaf or proof.
//! - **Stored hashes**, per tile level: level `L` holds the tree's hashes at height `8·L`, left
//!   to right. Level 0 is the leaf hashes, level 1 the roots of each full 256-leaf subtree, and so
//!   on. A C2SP tlog-tiles tile at level `L`, index `N` and width `W` is exactly the hashes
//!   `[256·N, 256·N + W)` of level `L`, so full and partial tiles are served from these without
//!   storing tile objects. They are derived data: the integrator writes them and can recompute
//!   any it lost, and [`TreeStore::sync_hashes`] makes them durable before a checkpoint covers
//!   them.
//! - **The latest checkpoint** (signed note text and size), which never goes back.
//! - **The dedup index**: leaf hash → index and (producer, idempotency key) → index.
//! - **Witness progress** (the size each witness last cosigned), and per checkpoint size the
//!   **cosignatures** and **timestamp tokens** collected for it, as opaque bytes.
//!
//! Calls are synchronous and may block on disk or network: async callers run them on a dedicated
//! thread or with `spawn_blocking`. Every backend passes the conformance suites (the module
//! `conformance`, built with the feature of that name, for tests only).

pub mod bucket;
#[cfg(feature = "conformance")]
pub mod conformance;
mod coordination;
pub mod embedded;
mod entry;
mod error;
mod hashes;
mod limits;
pub mod objects;
pub mod postgres;
pub mod scaled;

pub use cairn_spec::Hash;
pub use coordination::Coordination;
pub use entry::{
    DedupKey, DuplicateHit, Entry, IdempotencyKey, IdempotencyKeyError, NewEntry,
    MAX_IDEMPOTENCY_PART_BYTES,
};
pub use error::{FailureKind, StoreError};
pub use hashes::{fold_perfect, StoreHashes};
pub use limits::StoreLimits;

/// Height, in tree levels, of one tile level: a tile holds 2^8 = 256 hashes.
pub const TILE_HEIGHT: u32 = 8;

/// The highest stored-hash level. Level 7 holds hashes at height 56; a tree of at most 2^64
/// leaves has nothing at level 8 that a tile could hold except the root.
pub const MAX_HASH_LEVEL: u8 = 7;

/// The longest witness or timestamp authority name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// The largest cosignature or timestamp token stored, in bytes.
pub const MAX_ATTACHMENT_BYTES: usize = 64 * 1024;

/// The largest checkpoint note stored, in bytes.
pub const MAX_CHECKPOINT_BYTES: usize = 1024 * 1024;

/// How many hashes at `level` a log of `entry_count` entries has: one per complete subtree of
/// 256^level leaves.
pub fn justified_hash_count(level: u8, entry_count: u64) -> u64 {
    let shift = TILE_HEIGHT * u32::from(level);
    entry_count.checked_shr(shift).unwrap_or(0)
}

/// Which backend keeps a log's storage: the configuration key `storage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A directory on this machine's disk ([`embedded`]).
    #[default]
    Embedded,
    /// PostgreSQL and an S3-compatible bucket, shared by several front-ends ([`scaled`]).
    Scaled,
}

impl Backend {
    /// Every backend, by its name in the configuration.
    pub const ALL: [Backend; 2] = [Backend::Embedded, Backend::Scaled];

    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Scaled => "scaled",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(name: &str) -> Result<Backend, String> {
        Backend::ALL
            .into_iter()
            .find(|backend| backend.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Backend::ALL.iter().map(|b| b.as_str()).collect();
                format!(
                    "unknown storage backend `{name}` (known: {})",
                    known.join(", ")
                )
            })
    }
}

/// A payload as stored beside its entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredPayload {
    /// Its bytes.
    Held(Vec<u8>),
    /// It was erased.
    Erased,
}

/// A signed checkpoint as stored: its tree size and the signed note text, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it commits to.
    pub size: u64,
    /// The signed note (C2SP signed-note over a C2SP tlog-checkpoint body).
    pub note: Vec<u8>,
}

/// The sequence: entries in order, the payloads beside them, and the dedup index. This is the
/// only part on the durable path of a submission.
///
/// Contracts every backend keeps (the [`conformance`] suite for sequences checks them):
/// - `append_entries` is all or nothing and durable when it returns `Ok`; entries get the indices
///   `first_index..first_index + len` and `first_index` must be the current
///   [`entry_count`](SequenceStore::entry_count). After a failed append the store may refuse
///   further appends ([`StoreError::Poisoned`]) until [`heal`](SequenceStore::heal) succeeds;
///   the failed append's entries are then either all durable (counted by `entry_count`) or none.
/// - `find_duplicates` sees every entry whose append returned `Ok`.
/// - Readers see a prefix of the log that only grows, never a torn batch.
///
/// Calls block on the disk (or the network): async callers make them off the runtime's workers
/// (`spawn_blocking` or a thread of their own).
pub trait SequenceStore: Send + Sync + 'static {
    /// The limits this store enforces.
    fn limits(&self) -> &StoreLimits;

    /// How many entries are durable.
    fn entry_count(&self) -> u64;

    /// Appends `entries` at `first_index` (which must be
    /// [`entry_count`](SequenceStore::entry_count)) and makes them durable. The leaf hashes
    /// carried by `entries` are trusted to be right; the dedup index learns them.
    fn append_entries(&self, first_index: u64, entries: &[NewEntry]) -> Result<(), StoreError>;

    /// After a failed append, undoes whatever it may have left behind, so that appends are taken
    /// again once the fault (a full disk, an I/O error) has cleared. `Ok` means they are (a store
    /// with nothing to undo answers `Ok` at once); an error, that the fault is still there.
    fn heal(&self) -> Result<(), StoreError>;

    /// Why a write the store makes in the background fails now, if one does (it retries by
    /// itself), and how many such writes failed since it opened.
    fn background_failures(&self) -> (Option<String>, u64);

    /// Whether other processes append to this store too, so that only the store knows where the
    /// log ends: the sequencer then appends with [`append_at_end`](SequenceStore::append_at_end)
    /// and takes the indices the store gives. `false` (the default) for a store with one writer.
    fn shared_by_front_ends(&self) -> bool {
        false
    }

    /// Appends `entries` at whatever end the log has when the append runs, as durably and as
    /// all-or-nothing as [`append_entries`](SequenceStore::append_entries), and answers the
    /// index of the first. A store with one writer appends at its
    /// [`entry_count`](SequenceStore::entry_count) (the default); a shared one lets the
    /// database place the batch.
    fn append_at_end(&self, entries: &[NewEntry]) -> Result<u64, StoreError> {
        let first = self.entry_count();
        self.append_entries(first, entries)?;
        Ok(first)
    }

    /// Reads entries `[start, start + count)`, all of which must exist.
    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Entry>, StoreError>;

    /// The payload appended beside entry `index`, or `None` if it was appended without one.
    /// Fails if the entry does not exist, or if its payload is damaged.
    fn read_payload(&self, index: u64) -> Result<Option<StoredPayload>, StoreError>;

    /// Reads entries `[start, start + count)`, all of which must exist, each with the payload
    /// beside it (as [`read_payload`](SequenceStore::read_payload) answers it): what a reader
    /// of leaves and their contents records together (the completeness index) asks for. The
    /// default reads the entries and then each payload; a store that keeps a payload beside its
    /// entry reads both in one pass, which matters: one payload read at a time cost the
    /// embedded store a buffer of its read size and a walk over the bundle before the entry.
    /// `count` is at most [`StoreLimits::max_read_with_payloads`], so that the payloads held at
    /// once stay bounded.
    fn read_entries_with_payloads(
        &self,
        start: u64,
        count: u64,
    ) -> Result<Vec<(Entry, Option<StoredPayload>)>, StoreError> {
        self.limits().check_read_with_payloads(count)?;
        self.read_entries(start, count)?
            .into_iter()
            .map(|entry| {
                let payload = self.read_payload(entry.index)?;
                Ok((entry, payload))
            })
            .collect()
    }

    /// Destroys the payload beside entry `index` where it lies, durably; the leaf and every
    /// proof stay as they were. Returns whether it was held (`false`: erased before, or the
    /// entry has none). Erasing again finishes an erasure a crash interrupted.
    fn erase_payload(&self, index: u64) -> Result<bool, StoreError>;

    /// For each key, the first entry it names, if any.
    fn find_duplicates(
        &self,
        keys: &[DedupKey<'_>],
    ) -> Result<Vec<Option<DuplicateHit>>, StoreError>;
}

/// The tree's objects: its hashes per tile level. Level `L`, hashes `[256·N, 256·N + W)` are the
/// C2SP tlog-tiles tile `L/N` of width `W`, so a backend may keep them as tile objects (a
/// bucket) or as flat files; entry bundles are the sequence's entries, and the checkpoint that
/// covers them is small state.
///
/// Contracts (checked by the [`conformance`] suite for trees):
/// - A level grows only at its end and never beyond what the entries justify
///   ([`justified_hash_count`]); hashes read back are the hashes appended.
/// - After [`sync_hashes`](TreeStore::sync_hashes) returns `Ok`, every hash appended before it
///   survives a crash; unsynced hashes may be lost (never damaged: a level is cut back to a
///   prefix of what was appended).
///
/// Calls block; see [`SequenceStore`].
pub trait TreeStore: Send + Sync + 'static {
    /// How many hashes are stored at `level`.
    fn hash_count(&self, level: u8) -> Result<u64, StoreError>;

    /// Appends hashes to `level`, starting at `start` (which must be its current length). The
    /// level must not grow beyond what the entries justify ([`justified_hash_count`]). They are
    /// durable only after [`sync_hashes`](TreeStore::sync_hashes).
    fn append_hashes(&self, level: u8, start: u64, hashes: &[Hash]) -> Result<(), StoreError>;

    /// Reads the hashes `[start, start + count)` of `level`, all of which must exist.
    fn read_hashes(&self, level: u8, start: u64, count: u64) -> Result<Vec<Hash>, StoreError>;

    /// Makes every appended hash durable. Hashes not synced may be gone after a crash, and the
    /// integrator recomputes them.
    fn sync_hashes(&self) -> Result<(), StoreError>;
}

/// Small trust-critical state: the latest signed checkpoint, each witness's progress, and the
/// cosignatures and timestamp tokens collected per checkpoint size.
///
/// Every write is a durable compare-and-swap: it is checked against the stored value and
/// replaces it in one atomic step, or changes nothing. A checkpoint or witness size is taken
/// only if it does not go back (an equal size replaces, so that a log may sign its tree again),
/// and a checkpoint only if it covers no more than the durable entries and synced leaf hashes.
/// A failed write leaves the old value whole (the conformance suite for state checks these).
///
/// Calls block; see [`SequenceStore`].
pub trait StateStore: Send + Sync + 'static {
    /// The latest stored checkpoint.
    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// Stores a checkpoint durably. Its size must not be smaller than the stored one, nor larger
    /// than the durable entries or the synced level-0 hashes.
    fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError>;

    /// The tree size `witness` last cosigned, if it ever did.
    fn witness_size(&self, witness: &str) -> Result<Option<u64>, StoreError>;

    /// Records durably that `witness` cosigned `size`; it must not go back.
    fn set_witness_size(&self, witness: &str, size: u64) -> Result<(), StoreError>;

    /// Stores (or replaces) `witness`'s cosignature of the checkpoint of size `size`.
    fn store_cosignature(
        &self,
        size: u64,
        witness: &str,
        cosignature: &[u8],
    ) -> Result<(), StoreError>;

    /// The cosignatures of the checkpoint of size `size`, as (witness, bytes), by name.
    fn cosignatures(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Stores (or replaces) a timestamp token over the checkpoint of size `size`, obtained by
    /// (or from) `authority`.
    fn store_timestamp_token(
        &self,
        size: u64,
        authority: &str,
        token: &[u8],
    ) -> Result<(), StoreError>;

    /// The timestamp tokens of the checkpoint of size `size`, as (authority, bytes), by name.
    fn timestamp_tokens(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// One log's whole storage: its sequence, its tree and its small state, kept by one backend so
/// that the rules between them hold (a checkpoint never covers more entries, or more synced
/// leaf hashes, than are durable; a hash level never outgrows the entries). Every type that is
/// all three is a `LogStore`; the parts of the server that need only one part take that trait.
/// The events database is the fourth seam ([`crate::events::EventIndexStore`]), derived from
/// the log and kept beside it.
pub trait LogStore: SequenceStore + TreeStore + StateStore {}

impl<T: SequenceStore + TreeStore + StateStore> LogStore for T {}

pub(crate) fn check_level(level: u8) -> Result<(), StoreError> {
    if level > MAX_HASH_LEVEL {
        return Err(StoreError::NoSuchLevel {
            level,
            max: MAX_HASH_LEVEL,
        });
    }
    Ok(())
}

pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(StoreError::BadName {
            found: name.len(),
            limit: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn check_attachment(bytes: &[u8]) -> Result<(), StoreError> {
    if bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err(StoreError::LimitExceeded {
            what: "attachment size in bytes",
            found: bytes.len() as u64,
            limit: MAX_ATTACHMENT_BYTES as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn justified_hash_counts_follow_tile_levels() {
        assert_eq!(justified_hash_count(0, 1000), 1000);
        assert_eq!(justified_hash_count(1, 1000), 3);
        assert_eq!(justified_hash_count(2, 65535), 0);
        assert_eq!(justified_hash_count(2, 65536), 1);
        assert_eq!(justified_hash_count(7, u64::MAX), 255);
    }
}
