//! The log's whole state behind one trait, [`LogStore`], so that the sequencer, the integrator,
//! the HTTP API and witnessing never depend on how it is kept.
//!
//! What a log stores:
//! - **Entries**: the sequenced leaves, in order, appended in batches that are durable when
//!   [`LogStore::append_entries`] returns. An entry may carry a **payload** beside its leaf
//!   (an audit event's payload, whose hash the leaf holds): durable with the leaf, not part of
//!   the tree, and erasable in place without touching any leaf or proof.
//! - **Stored hashes**, per tile level: level `L` holds the tree's hashes at height `8·L`, left
//!   to right. Level 0 is the leaf hashes, level 1 the roots of each full 256-leaf subtree, and so
//!   on. A C2SP tlog-tiles tile at level `L`, index `N` and width `W` is exactly the hashes
//!   `[256·N, 256·N + W)` of level `L`, so full and partial tiles are served from these without
//!   storing tile objects. They are derived data: the integrator writes them and can recompute
//!   any it lost, and [`LogStore::sync_hashes`] makes them durable before a checkpoint covers them.
//! - **The latest checkpoint** (signed note text and size), which never goes back.
//! - **The dedup index**: leaf hash → index and (producer, idempotency key) → index.
//! - **Witness progress** (the size each witness last cosigned), and per checkpoint size the
//!   **cosignatures** and **timestamp tokens** collected for it, as opaque bytes.
//!
//! Calls are synchronous and may block on disk or network: async callers run them on a dedicated
//! thread or with `spawn_blocking`. Every backend passes the [`conformance`] suite.

#[doc(hidden)]
pub mod conformance;
pub mod embedded;
mod entry;
mod error;
pub mod objects;

pub use cairn_spec::Hash;
pub use entry::{
    DedupKey, DuplicateHit, Entry, IdempotencyKey, IdempotencyKeyError, NewEntry,
    MAX_IDEMPOTENCY_PART_BYTES,
};
pub use error::{FailureKind, StoreError};

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

/// Size limits a store enforces, so that nothing read from a request or from disk can make it
/// allocate without bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// The largest leaf, in bytes.
    pub max_leaf_bytes: u32,
    /// The most entries in one append.
    pub max_batch_entries: u32,
    /// The largest payload beside a leaf, in bytes.
    pub max_payload_bytes: u32,
    /// The most leaf and payload bytes in one append.
    pub max_batch_bytes: u64,
    /// The most entries or hashes one read returns.
    pub max_read_count: u64,
}

impl Default for StoreLimits {
    fn default() -> StoreLimits {
        StoreLimits {
            max_leaf_bytes: 64 * 1024,
            max_payload_bytes: 1024 * 1024,
            max_batch_entries: 64 * 1024,
            max_batch_bytes: 64 * 1024 * 1024,
            max_read_count: 64 * 1024,
        }
    }
}

impl StoreLimits {
    /// Checks an append against the limits.
    pub fn check_batch(&self, entries: &[NewEntry]) -> Result<(), StoreError> {
        if entries.len() as u64 > u64::from(self.max_batch_entries) {
            return Err(StoreError::LimitExceeded {
                what: "entries in one append",
                found: entries.len() as u64,
                limit: u64::from(self.max_batch_entries),
            });
        }
        let mut bytes = 0u64;
        for entry in entries {
            self.check_leaf(entry.leaf().len())?;
            if let Some(payload) = entry.payload() {
                self.check_payload(payload.len())?;
            }
            bytes += entry.stored_bytes() as u64;
        }
        if bytes > self.max_batch_bytes {
            return Err(StoreError::LimitExceeded {
                what: "leaf and payload bytes in one append",
                found: bytes,
                limit: self.max_batch_bytes,
            });
        }
        Ok(())
    }

    /// Checks one leaf's size.
    pub fn check_leaf(&self, leaf_bytes: usize) -> Result<(), StoreError> {
        at_most("leaf size in bytes", leaf_bytes, self.max_leaf_bytes)
    }

    /// Checks one payload's size.
    pub fn check_payload(&self, payload_bytes: usize) -> Result<(), StoreError> {
        at_most(
            "payload size in bytes",
            payload_bytes,
            self.max_payload_bytes,
        )
    }

    /// Checks the length of a read.
    pub fn check_read(&self, count: u64) -> Result<(), StoreError> {
        if count > self.max_read_count {
            return Err(StoreError::LimitExceeded {
                what: "items in one read",
                found: count,
                limit: self.max_read_count,
            });
        }
        Ok(())
    }
}

/// `found` bytes of `what`, refused if over `limit`.
fn at_most(what: &'static str, found: usize, limit: u32) -> Result<(), StoreError> {
    if found as u64 > u64::from(limit) {
        return Err(StoreError::LimitExceeded {
            what,
            found: found as u64,
            limit: u64::from(limit),
        });
    }
    Ok(())
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

/// The whole state of one log. See the module documentation for what each part is.
///
/// Contracts every backend keeps (and the [`conformance`] suite checks):
/// - `append_entries` is all or nothing and durable when it returns `Ok`; entries get the indices
///   `first_index..first_index + len` and `first_index` must be the current
///   [`entry_count`](LogStore::entry_count). After a failed append the store may refuse further
///   appends ([`StoreError::Poisoned`]) until [`heal`](LogStore::heal) succeeds; the failed
///   append's entries are then either all durable (counted by `entry_count`) or none.
/// - `find_duplicates` sees every entry whose append returned `Ok`.
/// - Checkpoints and witness sizes never go back; a checkpoint never covers more entries, or more
///   leaf hashes, than are durable.
pub trait LogStore: Send + Sync + 'static {
    /// The limits this store enforces.
    fn limits(&self) -> &StoreLimits;

    /// How many entries are durable.
    fn entry_count(&self) -> u64;

    /// Appends `entries` at `first_index` (which must be [`entry_count`](LogStore::entry_count))
    /// and makes them durable. The leaf hashes carried by `entries` are trusted to be right; the
    /// dedup index learns them.
    fn append_entries(&self, first_index: u64, entries: &[NewEntry]) -> Result<(), StoreError>;

    /// After a failed append, undoes whatever it may have left behind, so that appends are taken
    /// again once the fault (a full disk, an I/O error) has cleared. `Ok` means they are (a store
    /// with nothing to undo answers `Ok` at once); an error, that the fault is still there.
    fn heal(&self) -> Result<(), StoreError>;

    /// Why a write the store makes in the background fails now, if one does (it retries by
    /// itself), and how many such writes failed since it opened.
    fn background_failures(&self) -> (Option<String>, u64);

    /// Reads entries `[start, start + count)`, all of which must exist.
    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Entry>, StoreError>;

    /// The payload appended beside entry `index`, or `None` if it was appended without one.
    /// Fails if the entry does not exist, or if its payload is damaged.
    fn read_payload(&self, index: u64) -> Result<Option<StoredPayload>, StoreError>;

    /// Destroys the payload beside entry `index` where it lies, durably; the leaf and every
    /// proof stay as they were. Returns whether it was held (`false`: erased before, or the
    /// entry has none). Erasing again finishes an erasure a crash interrupted.
    fn erase_payload(&self, index: u64) -> Result<bool, StoreError>;

    /// For each key, the first entry it names, if any.
    fn find_duplicates(
        &self,
        keys: &[DedupKey<'_>],
    ) -> Result<Vec<Option<DuplicateHit>>, StoreError>;

    /// How many hashes are stored at `level`.
    fn hash_count(&self, level: u8) -> Result<u64, StoreError>;

    /// Appends hashes to `level`, starting at `start` (which must be its current length). The
    /// level must not grow beyond what the entries justify
    /// ([`justified_hash_count`]). They are durable only after [`sync_hashes`](LogStore::sync_hashes).
    fn append_hashes(&self, level: u8, start: u64, hashes: &[Hash]) -> Result<(), StoreError>;

    /// Reads the hashes `[start, start + count)` of `level`, all of which must exist.
    fn read_hashes(&self, level: u8, start: u64, count: u64) -> Result<Vec<Hash>, StoreError>;

    /// Makes every appended hash durable. Hashes not synced may be gone after a crash, and the
    /// integrator recomputes them.
    fn sync_hashes(&self) -> Result<(), StoreError>;

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
