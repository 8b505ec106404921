//! The stored hashes of the tree, one append-only file of 32-byte hashes per tile level
//! (`level-0.hashes` holds the leaf hashes, `level-1.hashes` the roots of full 256-leaf
//! subtrees, and so on; see [`crate::storage`]).
//!
//! Appends are plain writes; [`HashLevels::sync`] makes them durable and returns the lengths
//! it made durable, which the store records so that after a crash each level is cut back to
//! what was synced (unsynced pages could hold zeros) and to what the entries justify. The
//! integrator recomputes the rest.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;

use super::files;
use crate::storage::{check_level, justified_hash_count, Hash, StoreError, MAX_HASH_LEVEL};

const HASH_BYTES: u64 = 32;
/// Number of levels.
pub const LEVELS: usize = MAX_HASH_LEVEL as usize + 1;

/// The hash files of all levels.
pub struct HashLevels {
    levels: Vec<RwLock<Level>>,
}

struct Level {
    path: PathBuf,
    file: File,
    count: u64,
    synced: u64,
}

impl HashLevels {
    /// Opens the levels in `dir`, cutting each to at most `synced[level]` hashes and to what
    /// `entry_count` entries justify.
    pub fn open(
        dir: &Path,
        synced: &[u64; LEVELS],
        entry_count: u64,
    ) -> Result<HashLevels, StoreError> {
        files::ensure_dir(dir)?;
        let mut levels = Vec::with_capacity(LEVELS);
        for level in 0..LEVELS as u8 {
            let path = dir.join(format!("level-{level}.hashes"));
            let file = files::open_rw(&path)?;
            let on_disk = files::file_len(&file, &path)? / HASH_BYTES;
            let keep = on_disk
                .min(synced[usize::from(level)])
                .min(justified_hash_count(level, entry_count));
            if keep * HASH_BYTES != files::file_len(&file, &path)? {
                tracing::info!(
                    level,
                    on_disk,
                    keep,
                    "cut stored hashes back to what was synced and justified"
                );
                files::truncate(&file, &path, keep * HASH_BYTES)?;
            }
            levels.push(RwLock::new(Level {
                path,
                file,
                count: keep,
                synced: keep,
            }));
        }
        Ok(HashLevels { levels })
    }

    /// How many hashes `level` holds.
    pub fn count(&self, level: u8) -> Result<u64, StoreError> {
        check_level(level)?;
        Ok(self.levels[usize::from(level)].read().count)
    }

    /// Appends `hashes` at `start`, the end of `level`, if the entries justify them.
    pub fn append(
        &self,
        level: u8,
        start: u64,
        hashes: &[Hash],
        entry_count: u64,
    ) -> Result<(), StoreError> {
        check_level(level)?;
        let mut state = self.levels[usize::from(level)].write();
        if start != state.count {
            return Err(StoreError::HashesNotAtEnd {
                level,
                expected: state.count,
                found: start,
            });
        }
        let new_count = start + hashes.len() as u64;
        let justified = justified_hash_count(level, entry_count);
        if new_count > justified {
            return Err(StoreError::HashesBeyondEntries {
                level,
                found: new_count,
                entries: entry_count,
                justified,
            });
        }
        let mut bytes = Vec::with_capacity(hashes.len() * HASH_BYTES as usize);
        for hash in hashes {
            bytes.extend_from_slice(hash.as_bytes());
        }
        state
            .file
            .write_all_at(&bytes, start * HASH_BYTES)
            .map_err(|source| StoreError::io("write", &state.path, source))?;
        state.count = new_count;
        Ok(())
    }

    /// Reads hashes `[start, start + count)` of `level`.
    pub fn read(&self, level: u8, start: u64, count: u64) -> Result<Vec<Hash>, StoreError> {
        check_level(level)?;
        let state = self.levels[usize::from(level)].read();
        let end = start.checked_add(count);
        if end.is_none_or(|end| end > state.count) {
            return Err(StoreError::OutOfRange {
                what: format!("hashes at level {level}"),
                start,
                count,
                available: state.count,
            });
        }
        let mut bytes = vec![0u8; (count * HASH_BYTES) as usize];
        files::read_exact_at(&state.file, &state.path, &mut bytes, start * HASH_BYTES)?;
        Ok(bytes
            .chunks_exact(HASH_BYTES as usize)
            .map(|chunk| Hash(chunk.try_into().expect("32-byte chunks")))
            .collect())
    }

    /// Makes every level durable and returns the synced length of each.
    pub fn sync(&self) -> Result<[u64; LEVELS], StoreError> {
        let mut synced = [0; LEVELS];
        for (level, lock) in self.levels.iter().enumerate() {
            let count = {
                let state = lock.read();
                if state.synced < state.count {
                    state
                        .file
                        .sync_data()
                        .map_err(|source| StoreError::io("fdatasync", &state.path, source))?;
                }
                state.count
            };
            let mut state = lock.write();
            state.synced = state.synced.max(count);
            synced[level] = state.synced;
        }
        Ok(synced)
    }

    /// The synced length of `level`.
    pub fn synced(&self, level: u8) -> u64 {
        self.levels[usize::from(level)].read().synced
    }
}
