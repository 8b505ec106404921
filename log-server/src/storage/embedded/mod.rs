//! The embedded backend of [`SequenceStore`], [`TreeStore`] and [`StateStore`] (together a
//! [`crate::storage::LogStore`]): a directory on one machine's disk.
//!
//! ```text
//! <dir>/segments/   entries and their payloads: append-only segment files (+       segment
//!                   sealed offset indexes, and a zero-filled spare made ahead)     spare
//! <dir>/hashes/     stored hashes: one file of 32-byte hashes per tile level       hash_levels
//! <dir>/dedup/      dedup index: sorted run files                                  dedup
//! <dir>/state.sqlite SQLite: checkpoint, witnesses, cosignatures, tokens, sync marks state
//! <dir>/lock        held (flock) by the process that has the store open
//! ```
//!
//! The hot path is one positioned write and one `fdatasync` per batch of entries; nothing else
//! waits on the disk while leaves are sequenced. Opening recovers from a crash at any moment
//! (see [`recovery`]), cuts derived data back to what the entries and the last sync justify, and
//! indexes again the entries the dedup index had not written out.

pub(crate) mod dedup;
pub(crate) mod files;
mod hash_levels;
mod record;
mod recovery;
mod seal;
mod segment;
mod segment_read;
mod spare;
mod state;

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

pub use self::dedup::DedupConfig;
use self::dedup::{key_of, DedupIndex};
use self::hash_levels::HashLevels;
pub use self::record::{
    HARD_MAX_BATCH_BODY, HARD_MAX_LEAF_BYTES, HARD_MAX_PAYLOAD_BYTES, MAX_RECORD_OVERHEAD,
    PAYLOAD_OVERHEAD,
};
use self::segment::SegmentLog;
use self::state::{AttachmentKind, State};
use crate::storage::{
    check_attachment, check_name, DedupKey, DuplicateHit, Entry, Hash, NewEntry, SequenceStore,
    StateStore, StoreError, StoreLimits, StoredCheckpoint, StoredPayload, TreeStore,
    MAX_CHECKPOINT_BYTES,
};

/// Where and how an [`EmbeddedStore`] keeps a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// The store's directory; created if missing.
    pub dir: PathBuf,
    /// Size limits.
    pub limits: StoreLimits,
    /// A segment file is sealed, and a new one started, once it reaches this size.
    pub segment_max_bytes: u64,
    /// The active segment is zero-filled this far ahead of its batches, so that appending
    /// changes no file size and `fdatasync` commits no metadata (0: grow the file per batch).
    pub preallocate_bytes: u64,
    /// Sizing of the dedup index.
    pub dedup: DedupConfig,
}

impl EmbeddedConfig {
    /// The defaults, in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> EmbeddedConfig {
        EmbeddedConfig {
            dir: dir.into(),
            limits: StoreLimits::default(),
            segment_max_bytes: 256 * 1024 * 1024,
            preallocate_bytes: 8 * 1024 * 1024,
            dedup: DedupConfig::default(),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        let limits = &self.limits;
        let problem = if limits.max_leaf_bytes > HARD_MAX_LEAF_BYTES {
            Some(format!(
                "max_leaf_bytes {} is over {HARD_MAX_LEAF_BYTES}",
                limits.max_leaf_bytes
            ))
        } else if limits.max_payload_bytes > HARD_MAX_PAYLOAD_BYTES {
            Some(format!(
                "max_payload_bytes {} is over {HARD_MAX_PAYLOAD_BYTES}",
                limits.max_payload_bytes
            ))
        } else if limits.max_batch_entries == 0 {
            Some("max_batch_entries must be at least 1".into())
        } else if limits.max_batch_bytes
            + u64::from(limits.max_batch_entries) * (MAX_RECORD_OVERHEAD + PAYLOAD_OVERHEAD) as u64
            > u64::from(HARD_MAX_BATCH_BODY)
        {
            Some(format!(
                "a batch of max_batch_bytes {} in max_batch_entries {} could exceed {HARD_MAX_BATCH_BODY} bytes on disk",
                limits.max_batch_bytes, limits.max_batch_entries
            ))
        } else if self.segment_max_bytes == 0 {
            Some("segment_max_bytes must be at least 1".into())
        } else if self.dedup.table_keys == 0 || self.dedup.max_runs < 2 {
            Some("the dedup index needs table_keys ≥ 1 and max_runs ≥ 2".into())
        } else {
            None
        };
        problem.map_or(Ok(()), |problem| Err(StoreError::BadConfig(problem)))
    }
}

/// A log kept in a directory. See the module documentation.
pub struct EmbeddedStore {
    dir: PathBuf,
    /// The store's lock, held while it is open.
    _lock: std::fs::File,
    limits: StoreLimits,
    /// Appends are serialised so that the dedup index learns batches in order.
    append_lock: Mutex<()>,
    segments: SegmentLog,
    hashes: HashLevels,
    dedup: DedupIndex,
    state: State,
}

impl EmbeddedStore {
    /// Opens the store in `config.dir`, creating it if empty and recovering it after a crash.
    /// Refuses to open (with [`StoreError::Corrupt`]) if acknowledged data is damaged.
    pub fn open(config: EmbeddedConfig) -> Result<EmbeddedStore, StoreError> {
        config.check()?;
        let dir = config.dir.clone();
        files::ensure_dir(&dir)?;
        // A second process opening the same store fails here, before it touches any file.
        let lock = files::lock_dir(&dir)?;
        if dir.join("state").is_dir() {
            return Err(StoreError::BadConfig(format!(
                "{} holds the sled state database of an older cairn-log (state/), which this \
                 version does not read: its checkpoint and witness progress would be lost",
                dir.display()
            )));
        }
        let state = State::open(&dir)?;
        let segments = recovery::open_segments(&dir.join("segments"))?;
        let segments = SegmentLog::new(
            dir.join("segments"),
            config.segment_max_bytes,
            config.preallocate_bytes,
            segments,
        )?;
        let entry_count = segments.entry_count();
        if let Some(checkpoint) = state.latest_checkpoint()? {
            if checkpoint.size > entry_count {
                return Err(StoreError::corrupt(
                    dir.join("segments"),
                    0,
                    format!(
                        "the log holds {entry_count} entries but a checkpoint of size {} was signed: acknowledged entries are missing",
                        checkpoint.size
                    ),
                ));
            }
        }
        let hashes = HashLevels::open(&dir.join("hashes"), &state.hashes_synced()?, entry_count)?;
        let (dedup, watermark) =
            DedupIndex::open(&dir.join("dedup"), config.dedup.clone(), entry_count)?;
        let store = EmbeddedStore {
            dir,
            _lock: lock,
            limits: config.limits,
            append_lock: Mutex::new(()),
            segments,
            hashes,
            dedup,
            state,
        };
        store.reindex(watermark, entry_count)?;
        tracing::info!(
            dir = %store.dir.display(),
            entries = entry_count,
            dedup_watermark = watermark,
            "opened the log store"
        );
        Ok(store)
    }

    /// Adds the dedup keys of entries `[from, to)` from the segments.
    fn reindex(&self, from: u64, to: u64) -> Result<(), StoreError> {
        const CHUNK: u64 = 4096;
        let mut start = from;
        while start < to {
            let count = CHUNK.min(to - start);
            let entries = self.segments.read(start, count)?;
            let keys = entries.iter().flat_map(|entry| {
                let leaf = key_of(entry.leaf_hash().as_bytes());
                let idempotency = entry.idempotency.as_ref().map(|key| key_of(key.digest()));
                std::iter::once((leaf, entry.index))
                    .chain(idempotency.map(|key| (key, entry.index)))
            });
            self.dedup.insert(start, start + count, keys)?;
            start += count;
        }
        if to > from {
            tracing::info!(from, to, "indexed entries again for dedup");
        }
        Ok(())
    }

    /// Writes the whole dedup index out, so that the next open has nothing to index again,
    /// and closes the store.
    pub fn close(self) -> Result<(), StoreError> {
        self.dedup.flush_all()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Entries below this index have their dedup keys in run files on disk.
    pub fn dedup_watermark(&self) -> u64 {
        self.dedup.watermark()
    }

    /// Memory held by the dedup index, in bytes (an estimate).
    pub fn dedup_memory_bytes(&self) -> usize {
        self.dedup.memory_bytes()
    }

    /// Whether entry `index` is the one `key` names.
    fn confirm(&self, key: &DedupKey<'_>, index: u64) -> Result<Option<DuplicateHit>, StoreError> {
        // A leaf hash is confirmed from the stored level-0 hashes when the integrator has
        // written them: one 32-byte read instead of parsing up to a bundle of entries.
        if let DedupKey::Leaf(hash) = key {
            if index < self.hashes.count(0)?
                && self.hashes.read(0, index, 1)?.first() == Some(*hash)
            {
                return Ok(Some(DuplicateHit {
                    index,
                    leaf_hash: **hash,
                }));
            }
        }
        let mut entries = self.segments.read(index, 1)?;
        Ok(entries
            .pop()
            .filter(|entry| key.matches(entry))
            .map(|entry| DuplicateHit {
                index,
                leaf_hash: entry.leaf_hash(),
            }))
    }
}

impl SequenceStore for EmbeddedStore {
    fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    fn entry_count(&self) -> u64 {
        self.segments.entry_count()
    }

    fn append_entries(&self, first_index: u64, entries: &[NewEntry]) -> Result<(), StoreError> {
        self.limits.check_batch(entries)?;
        let _append = self.append_lock.lock();
        self.segments.append(first_index, entries)?;
        let end = first_index + entries.len() as u64;
        let keys = entries.iter().enumerate().flat_map(|(position, entry)| {
            let index = first_index + position as u64;
            let leaf = key_of(entry.leaf_hash().as_bytes());
            let idempotency = entry.idempotency().map(|key| key_of(key.digest()));
            std::iter::once((leaf, index)).chain(idempotency.map(|key| (key, index)))
        });
        self.dedup.insert(first_index, end, keys)
    }

    fn heal(&self) -> Result<(), StoreError> {
        let _append = self.append_lock.lock();
        self.segments.heal()?;
        self.dedup.is_writable().map_err(|reason| {
            StoreError::Poisoned(format!("the dedup index cannot be written out: {reason}"))
        })
    }

    fn background_failures(&self) -> (Option<String>, u64) {
        self.dedup.failures()
    }

    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Entry>, StoreError> {
        self.limits.check_read(count)?;
        self.segments.read(start, count)
    }

    fn read_payload(&self, index: u64) -> Result<Option<StoredPayload>, StoreError> {
        self.segments.read_payload(index)
    }

    fn read_entries_with_payloads(
        &self,
        start: u64,
        count: u64,
    ) -> Result<Vec<(Entry, Option<StoredPayload>)>, StoreError> {
        self.limits.check_read_with_payloads(count)?;
        self.segments.read_with_payloads(start, count)
    }

    fn erase_payload(&self, index: u64) -> Result<bool, StoreError> {
        self.segments.erase_payload(index)
    }

    fn find_duplicates(
        &self,
        keys: &[DedupKey<'_>],
    ) -> Result<Vec<Option<DuplicateHit>>, StoreError> {
        self.dedup.warm(keys.iter().map(|key| key_of(key.digest())));
        keys.iter()
            .map(|key| {
                self.dedup
                    .find(key_of(key.digest()), |index| self.confirm(key, index))
            })
            .collect()
    }
}

impl TreeStore for EmbeddedStore {
    fn hash_count(&self, level: u8) -> Result<u64, StoreError> {
        self.hashes.count(level)
    }

    fn append_hashes(&self, level: u8, start: u64, hashes: &[Hash]) -> Result<(), StoreError> {
        self.limits.check_read(hashes.len() as u64)?;
        self.hashes.append(level, start, hashes, self.entry_count())
    }

    fn read_hashes(&self, level: u8, start: u64, count: u64) -> Result<Vec<Hash>, StoreError> {
        self.limits.check_read(count)?;
        self.hashes.read(level, start, count)
    }

    fn sync_hashes(&self) -> Result<(), StoreError> {
        let synced = self.hashes.sync()?;
        self.state.set_hashes_synced(&synced)
    }
}

impl StateStore for EmbeddedStore {
    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.state.latest_checkpoint()
    }

    fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        if checkpoint.note.len() > MAX_CHECKPOINT_BYTES {
            return Err(StoreError::LimitExceeded {
                what: "checkpoint size in bytes",
                found: checkpoint.note.len() as u64,
                limit: MAX_CHECKPOINT_BYTES as u64,
            });
        }
        self.state.store_checkpoint(checkpoint, || {
            let entries = self.entry_count();
            if checkpoint.size > entries {
                return Err(StoreError::CheckpointAhead {
                    size: checkpoint.size,
                    durable: entries,
                    what: "the durable entries",
                });
            }
            let synced = self.hashes.synced(0);
            if checkpoint.size > synced {
                return Err(StoreError::CheckpointAhead {
                    size: checkpoint.size,
                    durable: synced,
                    what: "the synced leaf hashes",
                });
            }
            Ok(())
        })
    }

    fn witness_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
        check_name(witness)?;
        self.state.witness_size(witness)
    }

    fn set_witness_size(&self, witness: &str, size: u64) -> Result<(), StoreError> {
        check_name(witness)?;
        self.state.set_witness_size(witness, size)
    }

    fn store_cosignature(
        &self,
        size: u64,
        witness: &str,
        cosignature: &[u8],
    ) -> Result<(), StoreError> {
        check_name(witness)?;
        check_attachment(cosignature)?;
        self.state
            .store_attachment(AttachmentKind::Cosignature, size, witness, cosignature)
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.state.attachments(AttachmentKind::Cosignature, size)
    }

    fn store_timestamp_token(
        &self,
        size: u64,
        authority: &str,
        token: &[u8],
    ) -> Result<(), StoreError> {
        check_name(authority)?;
        check_attachment(token)?;
        self.state
            .store_attachment(AttachmentKind::TimestampToken, size, authority, token)
    }

    fn timestamp_tokens(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.state.attachments(AttachmentKind::TimestampToken, size)
    }
}
