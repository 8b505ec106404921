//! The monitor's durable memory, one SQLite file `monitor.sqlite` in the state directory: per
//! log origin the verified state (the last checkpoint it verified, with the compact-range
//! frontier of that tree), the progress of an interrupted growth, and every evidence document
//! it wrote.
//!
//! It is opened, versioned and locked through the `cairn_sqlite` crate, as the log's and the
//! witness's state are: each write is one transaction, committed (journal and database fsynced)
//! before it returns, or rolled back whole, so a full disk, an I/O error or a kill -9 leaves
//! either the old state or the new one, never half of it, and a start on a full disk writes
//! nothing. sled 0.34, used before, was not safe on a full disk; a state directory that still
//! holds its files is refused ([`StateError::OlderFormat`]). A `flock` on `<state_dir>/lock`
//! keeps a second monitor off the same state.
//!
//! Evidence is the one thing here that cannot be found again: a split view shown once by a
//! peer or an upload is proven by the document the monitor wrote then. So each document is
//! committed here first, then exported to its file in `evidence_dir` (written, fsynced,
//! renamed, the directory fsynced); a file that could not be written is written again from
//! here at the next poll and at the next start ([`StateStore::export_evidence`]).
//!
//! Every evidence document is also an **incident**: a proven fork or inconsistency of the log,
//! remembered with what it is (kind, detail, when it was found) until an operator acknowledges
//! it (`cairn-monitor acknowledge`: who, why and when are recorded beside it, and the document
//! is kept). Until then every poll and every audit of that log reports it and fails.
//!
//! Tables: `verified` (origin → note, size, root, frontier, when it grew, recheck cursor),
//! `progress` (origin → a tile-aligned size and frontier beyond the verified tree), `evidence`
//! (incident number → origin, alert kind, detail, when it was found, file name, the
//! `cairn.evidence/v1` document, and its acknowledgement: when, by whom, why).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_spec::merkle::CompactRange;
use cairn_spec::Hash;
use cairn_sqlite::{DirLock, Failure, Schema};
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::Mutex;

mod evidence;
mod verified;
pub use evidence::{write_durably, AcknowledgeError, Acknowledgement, Incident, StoredEvidence};
pub use verified::VerifiedState;

const SCHEMA: Schema = Schema {
    reader: "cairn-monitor",
    version: 2,
    create: "
CREATE TABLE verified (
    origin TEXT PRIMARY KEY,
    note TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    frontier BLOB NOT NULL CHECK (length(frontier) % 32 = 0),
    grown_at INTEGER NOT NULL CHECK (grown_at >= 0),
    recheck_cursor INTEGER NOT NULL CHECK (recheck_cursor >= 0)
);
CREATE TABLE progress (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    frontier BLOB NOT NULL CHECK (length(frontier) % 32 = 0)
);
CREATE TABLE evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    file TEXT NOT NULL UNIQUE,
    document BLOB NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    found_at INTEGER NOT NULL DEFAULT 0 CHECK (found_at >= 0),
    acknowledged_at INTEGER CHECK (acknowledged_at >= 0),
    acknowledged_by TEXT,
    acknowledged_reason TEXT,
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL)
       AND (acknowledged_at IS NULL) = (acknowledged_reason IS NULL))
);
",
    // Version 1 kept evidence without its incident columns: its documents become incidents
    // found at an unknown time (0), not acknowledged.
    upgrades: &[(
        1,
        "ALTER TABLE evidence ADD COLUMN detail TEXT NOT NULL DEFAULT '';
         ALTER TABLE evidence ADD COLUMN found_at INTEGER NOT NULL DEFAULT 0
             CHECK (found_at >= 0);
         ALTER TABLE evidence ADD COLUMN acknowledged_at INTEGER CHECK (acknowledged_at >= 0);
         ALTER TABLE evidence ADD COLUMN acknowledged_by TEXT;
         ALTER TABLE evidence ADD COLUMN acknowledged_reason TEXT;",
    )],
};

/// The longest acknowledgement reason or name kept, in bytes.
pub const MAX_ACKNOWLEDGEMENT_BYTES: usize = 4096;

/// The name of the state file in the state directory.
pub const STATE_FILE: &str = "monitor.sqlite";

/// Why the monitor's state could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Opening, locking or versioning the file failed.
    #[error("monitor state: {0}")]
    Open(#[from] cairn_sqlite::Error),
    /// A read or a write failed; `failure` says whether it may clear by itself.
    #[error("monitor state: {detail}")]
    Database {
        /// What SQLite said.
        detail: String,
        /// What it means.
        failure: Failure,
    },
    /// A stored record has a shape the monitor never writes.
    #[error("monitor state of {origin:?} is corrupt: {detail}")]
    Corrupt {
        /// The log.
        origin: String,
        /// What is wrong.
        detail: String,
    },
    /// The state directory could not be made.
    #[error("monitor state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The directory holds the sled database of an older monitor.
    #[error("{0} holds the sled state of an older cairn-monitor, which this version does not read (it keeps its state in {STATE_FILE}). Nothing was changed. Copy the evidence files out first if evidence_dir is inside it (they verify on their own with `cairn-monitor verify-evidence`), then start with an empty state directory: the monitor verifies every log again from its first tile")]
    OlderFormat(PathBuf),
}

impl From<rusqlite::Error> for StateError {
    fn from(error: rusqlite::Error) -> StateError {
        StateError::Database {
            failure: cairn_sqlite::failure_of(&error),
            detail: error.to_string(),
        }
    }
}

/// The monitor's state file, shared by its followers and their commit threads.
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Mutex<Connection>,
    /// `None` for [`StateStore::open_beside`], which a running monitor may hold the lock of.
    _lock: Option<DirLock>,
}

impl StateStore {
    /// Opens (or creates) the state in `dir`, refusing the directory of an older sled monitor
    /// and one another monitor holds.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        if cairn_sqlite::holds_sled(dir) {
            return Err(StateError::OlderFormat(dir.to_path_buf()));
        }
        let lock = cairn_sqlite::lock_dir(dir)?;
        let connection = cairn_sqlite::open(&dir.join(STATE_FILE), &SCHEMA)?;
        Ok(StateStore {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                _lock: Some(lock),
            }),
        })
    }

    /// Opens the existing state in `dir` beside a monitor that may be running on it, without
    /// its lock, for the operator's commands (`incidents`, `acknowledge`): each of their writes
    /// is one SQLite transaction, which SQLite's own file locking keeps apart from the
    /// monitor's, and the monitor reads incidents again at every poll. A directory without a
    /// state is refused, never given a new one.
    pub fn open_beside(dir: &Path) -> Result<StateStore, StateError> {
        let path = dir.join(STATE_FILE);
        if cairn_sqlite::holds_sled(dir) {
            return Err(StateError::OlderFormat(dir.to_path_buf()));
        }
        if !path.is_file() {
            return Err(StateError::Dir {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no {STATE_FILE}: not the state directory of a monitor"),
                ),
            });
        }
        let connection = cairn_sqlite::open(&path, &SCHEMA)?;
        Ok(StateStore {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                _lock: None,
            }),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.inner
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        cairn_sqlite::write(&mut self.connection(), StateError::from, work)
    }

    /// The verified state of `origin`, if any.
    pub fn verified(&self, origin: &str) -> Result<Option<VerifiedState>, StateError> {
        let row = self
            .connection()
            .query_row(
                "SELECT note, size, root, frontier, grown_at, recheck_cursor FROM verified
                 WHERE origin = ?1",
                [origin],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, u64>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, Vec<u8>>(3)?,
                        row.get::<_, u64>(4)?,
                        row.get::<_, u64>(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((note, size, root, frontier, grown_at, recheck_cursor)) = row else {
            return Ok(None);
        };
        let corrupt = |detail: String| StateError::Corrupt {
            origin: origin.to_owned(),
            detail,
        };
        let root = Hash::from_slice(&root).map_err(|error| corrupt(format!("root: {error}")))?;
        let range = range_of(size, &frontier).map_err(|detail| corrupt(detail.to_owned()))?;
        Ok(Some(VerifiedState {
            note,
            size,
            root: root.to_base64(),
            frontier: range.frontier().iter().map(Hash::to_base64).collect(),
            grown_at,
            recheck_cursor,
        }))
    }

    /// Makes `state` the verified state of `origin`, and forgets the progress of the growth
    /// that led to it when `grown`: one transaction.
    pub fn commit_verified(
        &self,
        origin: &str,
        state: &VerifiedState,
        grown: bool,
    ) -> Result<(), StateError> {
        let invalid = |detail: &str| StateError::Corrupt {
            origin: origin.to_owned(),
            detail: format!("refusing to store a verified state whose {detail}"),
        };
        let root = state
            .root_hash()
            .ok_or_else(|| invalid("root is not a hash"))?;
        let range = state
            .range()
            .ok_or_else(|| invalid("frontier is not one of its size"))?;
        let size = stored(state.size)?;
        let (grown_at, recheck_cursor) = (stored(state.grown_at)?, stored(state.recheck_cursor)?);
        self.write(|transaction| {
            transaction.execute(
                "INSERT INTO verified (origin, note, size, root, frontier, grown_at, recheck_cursor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (origin) DO UPDATE SET note = excluded.note, size = excluded.size,
                   root = excluded.root, frontier = excluded.frontier,
                   grown_at = excluded.grown_at, recheck_cursor = excluded.recheck_cursor",
                params![
                    origin,
                    state.note,
                    size,
                    root.as_bytes().to_vec(),
                    frontier_bytes(&range),
                    grown_at,
                    recheck_cursor
                ],
            )?;
            if grown {
                transaction.execute("DELETE FROM progress WHERE origin = ?1", [origin])?;
            }
            Ok(())
        })
    }

    /// The progress of an interrupted growth of `origin`: the compact range of the leaves
    /// hashed from tiles so far.
    pub fn progress(&self, origin: &str) -> Result<Option<CompactRange>, StateError> {
        let row = self
            .connection()
            .query_row(
                "SELECT size, frontier FROM progress WHERE origin = ?1",
                [origin],
                |row| Ok((row.get::<_, u64>(0)?, row.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?;
        row.map(|(size, frontier)| {
            range_of(size, &frontier).map_err(|detail| StateError::Corrupt {
                origin: origin.to_owned(),
                detail: format!("progress: {detail}"),
            })
        })
        .transpose()
    }

    /// Records how far a growth of `origin` got (its hashes are synced already).
    pub fn set_progress(&self, origin: &str, range: &CompactRange) -> Result<(), StateError> {
        let size = stored(range.tree_size())?;
        self.write(|transaction| {
            transaction.execute(
                "INSERT INTO progress (origin, size, frontier) VALUES (?1, ?2, ?3)
                 ON CONFLICT (origin) DO UPDATE SET size = excluded.size,
                   frontier = excluded.frontier",
                params![origin, size, frontier_bytes(range)],
            )?;
            Ok(())
        })
    }

    /// Forgets the progress of a growth of `origin`.
    pub fn forget_progress(&self, origin: &str) -> Result<(), StateError> {
        self.write(|transaction| {
            transaction.execute("DELETE FROM progress WHERE origin = ?1", [origin])?;
            Ok(())
        })
    }
}

/// A size as SQLite stores it (signed 64-bit).
fn stored(value: u64) -> Result<i64, StateError> {
    i64::try_from(value).map_err(|_| StateError::Database {
        detail: format!("{value} is beyond what the monitor stores"),
        failure: Failure::Refused,
    })
}

fn frontier_bytes(range: &CompactRange) -> Vec<u8> {
    range.frontier().iter().flat_map(|hash| hash.0).collect()
}

/// The compact range of a tree of `size` from a stored frontier (32-byte hashes, largest
/// subtree first).
fn range_of(size: u64, frontier: &[u8]) -> Result<CompactRange, &'static str> {
    if !frontier.len().is_multiple_of(32) {
        return Err("frontier is not a list of hashes");
    }
    let hashes = frontier
        .chunks_exact(32)
        .map(|chunk| Hash(chunk.try_into().expect("chunks of 32 bytes")))
        .collect();
    CompactRange::from_frontier(size, hashes).map_err(|_| "frontier does not fit the size")
}

#[cfg(test)]
mod tests;
