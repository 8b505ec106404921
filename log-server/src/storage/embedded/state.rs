//! The small, slow-moving state of a log, in sled: the latest checkpoint, the size each witness
//! last cosigned, the cosignatures and timestamp tokens of each checkpoint, and how far the
//! stored hashes were synced. Each write is flushed (fsynced) before it returns; none of them is
//! on the per-leaf path.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::hash_levels::LEVELS;
use crate::storage::{StoreError, StoredCheckpoint};

const LATEST_CHECKPOINT: &[u8] = b"latest";
const HASHES_SYNCED: &[u8] = b"hashes-synced";

/// Opaque bytes kept per checkpoint size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachmentKind {
    /// A witness's cosignature (C2SP tlog-cosignature).
    Cosignature = 1,
    /// An RFC 3161 timestamp token.
    TimestampToken = 2,
}

/// The sled database of a store.
pub struct State {
    path: PathBuf,
    db: sled::Db,
    checkpoints: sled::Tree,
    witnesses: sled::Tree,
    attachments: sled::Tree,
    meta: sled::Tree,
    /// Serialises the read-check-write of values that must never go back.
    monotonic: Mutex<()>,
}

/// How long an open waits for the database's file lock: a store of this process that was
/// just dropped releases it only when sled's I/O threads let go of their last handles, which
/// can take a moment after the drop returns.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens sled in `path`, waiting up to [`LOCK_WAIT`] while its file lock is held (by a store
/// closing in this process, or another process, which then gets a clear error).
pub(crate) fn open_database(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(error) if lock_is_held(&error) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) if lock_is_held(&error) => {
                return Err(StoreError::Database {
                    path: path.to_path_buf(),
                    detail: format!(
                        "the database is locked by another process (or another store of this one) after {} s: {error}",
                        LOCK_WAIT.as_secs()
                    ),
                });
            }
            Err(error) => return Err(database(path, error)),
        }
    }
}

/// Whether sled failed to open only because its file lock is held (sled reports it as an I/O
/// error of kind `Other`, recognisable by its message only).
fn lock_is_held(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

impl State {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<State, StoreError> {
        let path = dir.to_path_buf();
        let db = open_database(&path, cache_bytes)?;
        let tree = |name: &str| db.open_tree(name).map_err(|error| database(&path, error));
        Ok(State {
            checkpoints: tree("checkpoints")?,
            witnesses: tree("witnesses")?,
            attachments: tree("attachments")?,
            meta: tree("meta")?,
            db,
            path,
            monotonic: Mutex::new(()),
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map_err(|error| database(&self.path, error))?;
        Ok(())
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            detail,
        }
    }

    /// The latest checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let Some(value) = self
            .checkpoints
            .get(LATEST_CHECKPOINT)
            .map_err(|error| database(&self.path, error))?
        else {
            return Ok(None);
        };
        if value.len() < 8 {
            return Err(self.corrupt(format!(
                "the latest checkpoint is {} bytes, shorter than its size field",
                value.len()
            )));
        }
        let (size, note) = value.split_at(8);
        Ok(Some(StoredCheckpoint {
            size: u64::from_be_bytes(size.try_into().expect("8 bytes")),
            note: note.to_vec(),
        }))
    }

    /// Stores `checkpoint` if it does not go back; `check` may refuse it too.
    pub fn store_checkpoint(
        &self,
        checkpoint: &StoredCheckpoint,
        check: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let _guard = self.monotonic.lock();
        if let Some(stored) = self.latest_checkpoint()? {
            if checkpoint.size < stored.size {
                return Err(StoreError::CheckpointGoesBack {
                    stored: stored.size,
                    offered: checkpoint.size,
                });
            }
        }
        check()?;
        let mut value = Vec::with_capacity(8 + checkpoint.note.len());
        value.extend_from_slice(&checkpoint.size.to_be_bytes());
        value.extend_from_slice(&checkpoint.note);
        self.checkpoints
            .insert(LATEST_CHECKPOINT, value)
            .map_err(|error| database(&self.path, error))?;
        self.flush()
    }

    /// The size `witness` last cosigned.
    pub fn witness_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
        let Some(value) = self
            .witnesses
            .get(witness.as_bytes())
            .map_err(|error| database(&self.path, error))?
        else {
            return Ok(None);
        };
        let bytes: [u8; 8] = value.as_ref().try_into().map_err(|_| {
            self.corrupt(format!(
                "the size of witness {witness} is {} bytes, expected 8",
                value.len()
            ))
        })?;
        Ok(Some(u64::from_be_bytes(bytes)))
    }

    /// Records that `witness` cosigned `size`, which must not go back.
    pub fn set_witness_size(&self, witness: &str, size: u64) -> Result<(), StoreError> {
        let _guard = self.monotonic.lock();
        if let Some(stored) = self.witness_size(witness)? {
            if size < stored {
                return Err(StoreError::WitnessGoesBack {
                    witness: witness.to_string(),
                    stored,
                    offered: size,
                });
            }
        }
        self.witnesses
            .insert(witness.as_bytes(), &size.to_be_bytes())
            .map_err(|error| database(&self.path, error))?;
        self.flush()
    }

    fn attachment_prefix(kind: AttachmentKind, size: u64) -> Vec<u8> {
        let mut key = Vec::with_capacity(9);
        key.push(kind as u8);
        key.extend_from_slice(&size.to_be_bytes());
        key
    }

    /// Stores an attachment of the checkpoint of size `size`.
    pub fn store_attachment(
        &self,
        kind: AttachmentKind,
        size: u64,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut key = State::attachment_prefix(kind, size);
        key.extend_from_slice(name.as_bytes());
        self.attachments
            .insert(key, bytes)
            .map_err(|error| database(&self.path, error))?;
        self.flush()
    }

    /// The attachments of the checkpoint of size `size`, by name.
    pub fn attachments(
        &self,
        kind: AttachmentKind,
        size: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = State::attachment_prefix(kind, size);
        let mut out = Vec::new();
        for item in self.attachments.scan_prefix(&prefix) {
            let (key, value) = item.map_err(|error| database(&self.path, error))?;
            let name = std::str::from_utf8(&key[prefix.len()..])
                .map_err(|_| self.corrupt("an attachment's name is not UTF-8".into()))?;
            out.push((name.to_string(), value.to_vec()));
        }
        Ok(out)
    }

    /// How many hashes of each level were last synced.
    pub fn hashes_synced(&self) -> Result<[u64; LEVELS], StoreError> {
        let mut synced = [0; LEVELS];
        if let Some(value) = self
            .meta
            .get(HASHES_SYNCED)
            .map_err(|error| database(&self.path, error))?
        {
            if value.len() != 8 * LEVELS {
                return Err(self.corrupt(format!(
                    "the synced hash counts are {} bytes, expected {}",
                    value.len(),
                    8 * LEVELS
                )));
            }
            for (level, chunk) in value.chunks_exact(8).enumerate() {
                synced[level] = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
            }
        }
        Ok(synced)
    }

    /// Records how many hashes of each level are synced.
    pub fn set_hashes_synced(&self, synced: &[u64; LEVELS]) -> Result<(), StoreError> {
        let value: Vec<u8> = synced
            .iter()
            .flat_map(|count| count.to_be_bytes())
            .collect();
        self.meta
            .insert(HASHES_SYNCED, value)
            .map_err(|error| database(&self.path, error))?;
        self.flush()
    }
}

fn database(path: &Path, error: sled::Error) -> StoreError {
    StoreError::Database {
        path: path.to_path_buf(),
        detail: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_waited_for_then_named() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let first = State::open(dir.path(), 1 << 20).expect("the first open");
        let started = std::time::Instant::now();
        let second = State::open(dir.path(), 1 << 20);
        let Err(StoreError::Database { detail, .. }) = second else {
            panic!("a second open of a held database must fail");
        };
        assert!(detail.contains("locked by another process"), "{detail}");
        assert!(started.elapsed() >= LOCK_WAIT);
        drop(first);
        // Released by the drop (at most after sled's threads let go): opens again.
        State::open(dir.path(), 1 << 20).expect("the open after the drop");
    }
}
