//! The small, slow-moving, trust-critical state of a log: the latest checkpoint, the size each
//! witness last cosigned, the cosignatures and timestamp tokens of each checkpoint, and how far
//! the stored hashes were synced. Each write is one SQLite transaction, committed (journal and
//! database fsynced) before it returns; none of them is on the per-leaf path.
//!
//! Why SQLite, and how it is opened (rollback journal, `synchronous = FULL`, the schema and its
//! version in one transaction): the `cairn_sqlite` crate, shared with the witness and the
//! monitor. A write here is a few fsyncs (journal, database, journal removal), paid once per
//! checkpoint or cosignature, never per leaf: the HTTP runs before and after the state moved
//! here (`benchmarks/history.md`, "2026-12-07: fault-safe storage and writes that heal
//! themselves") differ by no more than one run from the next.
//!
//! The process lock on the store is a `flock` on `<dir>/lock` (taken in [`super`]); SQLite's
//! own locks only guard transactions.

use std::path::{Path, PathBuf};

use cairn_sqlite::{Failure, Schema};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::hash_levels::LEVELS;
use crate::storage::{StoreError, StoredCheckpoint};

/// The tables of `state.sqlite`; its version is bumped when they change, and an open refuses a
/// file of another version.
const SCHEMA: Schema = Schema {
    reader: "cairn-log",
    version: 1,
    create: TABLES,
    upgrades: &[],
};

const TABLES: &str = "
CREATE TABLE checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL CHECK (size >= 0),
    note BLOB NOT NULL
);
CREATE TABLE witnesses (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0)
);
CREATE TABLE attachments (
    kind INTEGER NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    name TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (kind, size, name)
);
CREATE TABLE hashes_synced (
    level INTEGER PRIMARY KEY CHECK (level >= 0),
    count INTEGER NOT NULL CHECK (count >= 0)
);
";

/// Opaque bytes kept per checkpoint size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachmentKind {
    /// A witness's cosignature (C2SP tlog-cosignature).
    Cosignature = 1,
    /// An RFC 3161 timestamp token.
    TimestampToken = 2,
}

/// The state database of a store.
pub struct State {
    path: PathBuf,
    /// One connection; the mutex also serialises the read-check-write of values that must
    /// never go back.
    connection: Mutex<Connection>,
}

impl State {
    /// Opens (or creates) the database `state.sqlite` in `dir`.
    pub fn open(dir: &Path) -> Result<State, StoreError> {
        let path = dir.join("state.sqlite");
        let connection = cairn_sqlite::open(&path, &SCHEMA).map_err(|error| {
            let transient = error.failure() == Failure::Unavailable;
            StoreError::Database {
                path: path.clone(),
                detail: match error {
                    // The path is in the store error already.
                    cairn_sqlite::Error::Sqlite { source, .. } => source.to_string(),
                    other => other.to_string(),
                },
                transient,
            }
        })?;
        Ok(State {
            path,
            connection: Mutex::new(connection),
        })
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            detail,
            transient: false,
        }
    }

    /// Runs `write` in one transaction, committed durably, or rolled back on any error.
    fn transaction<T>(
        &self,
        write: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.lock();
        cairn_sqlite::write(&mut connection, |error| sqlite(&self.path, error), write)
    }

    /// The latest checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let connection = self.connection.lock();
        self.read_checkpoint(&connection)
    }

    fn read_checkpoint(
        &self,
        connection: &Connection,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = connection
            .query_row(
                "SELECT size, note FROM checkpoint WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|error| sqlite(&self.path, error))?;
        row.map(|(size, note)| {
            Ok(StoredCheckpoint {
                size: self.unsigned(size, "the latest checkpoint's size")?,
                note,
            })
        })
        .transpose()
    }

    fn unsigned(&self, value: i64, what: &str) -> Result<u64, StoreError> {
        u64::try_from(value).map_err(|_| self.corrupt(format!("{what} is negative: {value}")))
    }

    /// Stores `checkpoint` if it does not go back; `check` may refuse it too.
    pub fn store_checkpoint(
        &self,
        checkpoint: &StoredCheckpoint,
        check: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let size = stored_size(checkpoint.size)?;
        self.transaction(|transaction| {
            if let Some(stored) = self.read_checkpoint(transaction)? {
                if checkpoint.size < stored.size {
                    return Err(StoreError::CheckpointGoesBack {
                        stored: stored.size,
                        offered: checkpoint.size,
                    });
                }
            }
            check()?;
            transaction
                .execute(
                    "INSERT INTO checkpoint (id, size, note) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET size = excluded.size, note = excluded.note",
                    params![size, checkpoint.note],
                )
                .map_err(|error| sqlite(&self.path, error))?;
            Ok(())
        })
    }

    /// The size `witness` last cosigned.
    pub fn witness_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
        let connection = self.connection.lock();
        self.read_witness_size(&connection, witness)
    }

    fn read_witness_size(
        &self,
        connection: &Connection,
        witness: &str,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = connection
            .query_row(
                "SELECT size FROM witnesses WHERE name = ?1",
                [witness],
                |row| row.get(0),
            )
            .optional()
            .map_err(|error| sqlite(&self.path, error))?;
        size.map(|size| self.unsigned(size, "a witness's size"))
            .transpose()
    }

    /// Records that `witness` cosigned `size`, which must not go back.
    pub fn set_witness_size(&self, witness: &str, size: u64) -> Result<(), StoreError> {
        let stored_value = stored_size(size)?;
        self.transaction(|transaction| {
            if let Some(stored) = self.read_witness_size(transaction, witness)? {
                if size < stored {
                    return Err(StoreError::WitnessGoesBack {
                        witness: witness.to_string(),
                        stored,
                        offered: size,
                    });
                }
            }
            transaction
                .execute(
                    "INSERT INTO witnesses (name, size) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET size = excluded.size",
                    params![witness, stored_value],
                )
                .map_err(|error| sqlite(&self.path, error))?;
            Ok(())
        })
    }

    /// Stores an attachment of the checkpoint of size `size`.
    pub fn store_attachment(
        &self,
        kind: AttachmentKind,
        size: u64,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let size = stored_size(size)?;
        self.transaction(|transaction| {
            transaction
                .execute(
                    "INSERT INTO attachments (kind, size, name, bytes) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (kind, size, name) DO UPDATE SET bytes = excluded.bytes",
                    params![kind as i64, size, name, bytes],
                )
                .map_err(|error| sqlite(&self.path, error))?;
            Ok(())
        })
    }

    /// The attachments of the checkpoint of size `size`, by name.
    pub fn attachments(
        &self,
        kind: AttachmentKind,
        size: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let Ok(size) = i64::try_from(size) else {
            return Ok(Vec::new());
        };
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT name, bytes FROM attachments WHERE kind = ?1 AND size = ?2 ORDER BY name",
            )
            .map_err(|error| sqlite(&self.path, error))?;
        let rows = statement
            .query_map(params![kind as i64, size], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|error| sqlite(&self.path, error))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|error| sqlite(&self.path, error))
    }

    /// How many hashes of each level were last synced.
    pub fn hashes_synced(&self) -> Result<[u64; LEVELS], StoreError> {
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare("SELECT level, count FROM hashes_synced")
            .map_err(|error| sqlite(&self.path, error))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
            .map_err(|error| sqlite(&self.path, error))?;
        let mut synced = [0; LEVELS];
        for row in rows {
            let (level, count) = row.map_err(|error| sqlite(&self.path, error))?;
            let slot = usize::try_from(level)
                .ok()
                .and_then(|level| synced.get_mut(level))
                .ok_or_else(|| self.corrupt(format!("synced hash count of level {level}")))?;
            *slot = self.unsigned(count, "a synced hash count")?;
        }
        Ok(synced)
    }

    /// Records how many hashes of each level are synced.
    pub fn set_hashes_synced(&self, synced: &[u64; LEVELS]) -> Result<(), StoreError> {
        self.transaction(|transaction| {
            for (level, &count) in synced.iter().enumerate() {
                transaction
                    .execute(
                        "INSERT INTO hashes_synced (level, count) VALUES (?1, ?2)
                         ON CONFLICT (level) DO UPDATE SET count = excluded.count",
                        params![level as i64, stored_size(count)?],
                    )
                    .map_err(|error| sqlite(&self.path, error))?;
            }
            Ok(())
        })
    }
}

/// A size as SQLite stores it (a signed 64-bit integer): no log reaches 2^63 entries.
fn stored_size(size: u64) -> Result<i64, StoreError> {
    i64::try_from(size).map_err(|_| StoreError::LimitExceeded {
        what: "tree size",
        found: size,
        limit: i64::MAX as u64,
    })
}

/// A SQLite error as a store error: transient when the storage is unavailable for now (a full
/// disk, an I/O error, a lock; [`cairn_sqlite::failure_of`] sorts them), not when the data is
/// damaged or the call refused.
fn sqlite(path: &Path, error: rusqlite::Error) -> StoreError {
    StoreError::Database {
        path: path.to_path_buf(),
        transient: cairn_sqlite::failure_of(&error) == Failure::Unavailable,
        detail: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_a_reopen_and_never_go_back() {
        let dir = tempfile::tempdir().expect("temporary directory");
        {
            let state = State::open(dir.path()).expect("open");
            assert_eq!(state.latest_checkpoint().expect("read"), None);
            let checkpoint = StoredCheckpoint {
                size: 7,
                note: b"note".to_vec(),
            };
            state
                .store_checkpoint(&checkpoint, || Ok(()))
                .expect("store");
            state.set_witness_size("w", 7).expect("witness");
            state
                .store_attachment(AttachmentKind::Cosignature, 7, "w", b"sig")
                .expect("attachment");
            state
                .set_hashes_synced(&[7, 0, 0, 0, 0, 0, 0, 0])
                .expect("synced");
        }
        let state = State::open(dir.path()).expect("reopen");
        assert_eq!(
            state.latest_checkpoint().expect("read").map(|c| c.size),
            Some(7)
        );
        assert!(matches!(
            state.store_checkpoint(
                &StoredCheckpoint {
                    size: 6,
                    note: Vec::new()
                },
                || Ok(())
            ),
            Err(StoreError::CheckpointGoesBack {
                stored: 7,
                offered: 6
            })
        ));
        assert!(matches!(
            state.set_witness_size("w", 6),
            Err(StoreError::WitnessGoesBack { .. })
        ));
        assert_eq!(
            state
                .attachments(AttachmentKind::Cosignature, 7)
                .expect("read"),
            vec![("w".to_string(), b"sig".to_vec())]
        );
        assert_eq!(state.hashes_synced().expect("read")[0], 7);
    }

    #[test]
    fn a_refused_check_writes_nothing() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let state = State::open(dir.path()).expect("open");
        let refused = state.store_checkpoint(
            &StoredCheckpoint {
                size: 3,
                note: b"n".to_vec(),
            },
            || Err(StoreError::BadConfig("refused".into())),
        );
        assert!(refused.is_err());
        assert_eq!(state.latest_checkpoint().expect("read"), None);
    }

    #[test]
    fn refuses_a_file_that_is_not_its_database() {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("state.sqlite"), vec![0x5a; 4096]).expect("write");
        match State::open(dir.path()) {
            Err(StoreError::Database {
                transient: false, ..
            }) => {}
            Err(other) => panic!("expected a permanent database error, got {other}"),
            Ok(_) => panic!("opened a file of garbage"),
        }
    }
}
