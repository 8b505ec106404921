//! The witness's durable memory: per log origin the latest checkpoint it cosigned (size, root,
//! and the note with its cosignature), the RFC 3161 tokens it obtained for each cosigned
//! checkpoint, and the evidence of log misbehaviour it saw.
//!
//! tlog-witness requires that a witness never cosign two checkpoints that are not consistent
//! with each other. The store makes that survive crashes and faults: [`Store::record_cosigned`]
//! commits the new state (the transaction's journal and the database fsynced) and returns only
//! then, and the caller sends the cosignature only after that. A crash, a full disk or an I/O
//! error before the commit loses the state and the cosignature together (the transaction is
//! rolled back, and the request answered 503); after it, both are kept.
//!
//! It is one SQLite file, `witness.sqlite`, opened, versioned and locked through the
//! `cairn_sqlite` crate, as the log's and the monitor's state are (rollback journal,
//! `synchronous = FULL`: its commit is proven under injected I/O errors, full disks and power
//! loss, and a start on a full disk writes nothing). sled 0.34, used before, was not safe on a
//! full disk; a directory that still holds its files is refused ([`StoreError::OlderFormat`]).
//! A `flock` on `lock` keeps a second witness process off the same state.
//!
//! The store also says whether it is failing now ([`Store::failing`]): a write that found the
//! storage unavailable marks it, and the next write that commits, or a [`Store::probe`] (one
//! small transaction, which the witness runs by itself while the store fails), clears it. That
//! is what `/readyz` reads.
//!
//! Tables: `state` (origin → size, root, cosigned note), `checkpoints` (origin, size → the
//! note body the timestamps cover), `timestamps` (origin, size, TSA name → DER token),
//! `evidence` (sequence → a JSON record with the refused request), `heartbeat` (the probe's
//! one row; added in version 2).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_spec::hash::Hash;
use cairn_spec::witness::TreeState;
use cairn_sqlite::{DirLock, Failure, Schema};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

/// The longest origin the store keeps (a checkpoint's first line; tlog-checkpoint sets no
/// bound, so the witness does).
pub const MAX_ORIGIN_SIZE: usize = 1024;

/// The tables of `witness.sqlite`. Version 2 added `heartbeat`; a version-1 file is upgraded
/// when it is opened.
const SCHEMA: Schema = Schema {
    reader: "cairn-witness",
    version: 2,
    create: TABLES,
    upgrades: &[(1, HEARTBEAT)],
};

const HEARTBEAT: &str = "
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    beats INTEGER NOT NULL
);
";

const TABLES: &str = "
CREATE TABLE state (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    note BLOB NOT NULL
);
CREATE TABLE checkpoints (
    origin TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    body BLOB NOT NULL,
    PRIMARY KEY (origin, size)
);
CREATE TABLE timestamps (
    origin TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    tsa TEXT NOT NULL,
    token BLOB NOT NULL,
    PRIMARY KEY (origin, size, tsa)
);
CREATE TABLE evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    record BLOB NOT NULL
);
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    beats INTEGER NOT NULL
);
";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed; `failure` says whether it may clear by itself (a full disk, an I/O
    /// error), is damage, or refused the call.
    #[error("witness database: {detail}")]
    Database {
        /// What SQLite or the file system said.
        detail: String,
        /// What it means ([`cairn_sqlite::failure_of`]).
        failure: Failure,
    },
    /// A stored record has a shape the witness never writes.
    #[error("witness database record for {what} is corrupt: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// An origin longer than [`MAX_ORIGIN_SIZE`].
    #[error("origin of {size} bytes is longer than the limit of {limit}")]
    OriginTooLong {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Another process holds the witness's state.
    #[error("{0} is in use by another cairn-witness process")]
    Locked(PathBuf),
    /// The directory holds the state of an older witness, in a format this one does not read.
    #[error("{0} holds the sled database of an older cairn-witness; this version keeps its state in witness.sqlite and does not read it. Never start a witness on a state it does not know: it could cosign a fork. Keep the old state, and start this witness under a new key in an empty directory")]
    OlderFormat(PathBuf),
}

impl StoreError {
    /// Whether the failure may clear by itself (answered 503 with Retry-After, not 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database {
                failure: Failure::Unavailable,
                ..
            }
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Database {
            failure: cairn_sqlite::failure_of(&error),
            detail: error.to_string(),
        }
    }
}

impl From<cairn_sqlite::Error> for StoreError {
    fn from(error: cairn_sqlite::Error) -> StoreError {
        match error {
            cairn_sqlite::Error::Locked { dir } => StoreError::Locked(dir),
            other => StoreError::Database {
                failure: other.failure(),
                detail: other.to_string(),
            },
        }
    }
}

/// The latest cosigned checkpoint of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignedRecord {
    /// Its size and root.
    pub state: TreeState,
    /// The checkpoint note with the log's signatures and the witness's cosignature.
    pub note: Vec<u8>,
}

/// A stored timestamp token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The TSA's configured name.
    pub tsa: String,
    /// The DER TimeStampToken.
    pub token_der: Vec<u8>,
}

/// The witness's database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// A handle to the store that does not keep it open (for background tasks that must not
/// outlive the witness).
pub struct WeakStore(std::sync::Weak<Inner>);

impl WeakStore {
    /// The store, if it is still open.
    pub fn upgrade(&self) -> Option<Store> {
        self.0.upgrade().map(|inner| Store { inner })
    }
}

struct Inner {
    connection: Mutex<Connection>,
    /// Why the storage fails now, if it does, and how many calls failed since the start.
    failing: Mutex<Option<String>>,
    errors: AtomicU64,
    /// Held (flock) while the store is open.
    _lock: DirLock,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| io(dir, error))?;
        if cairn_sqlite::holds_sled(dir) {
            return Err(StoreError::OlderFormat(dir.to_path_buf()));
        }
        let lock = cairn_sqlite::lock_dir(dir)?;
        let connection = cairn_sqlite::open(&dir.join("witness.sqlite"), &SCHEMA)?;
        Ok(Store {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                failing: Mutex::new(None),
                errors: AtomicU64::new(0),
                _lock: lock,
            }),
        })
    }

    /// A handle that does not keep the store open.
    pub fn downgrade(&self) -> WeakStore {
        WeakStore(Arc::downgrade(&self.inner))
    }

    /// Why the storage fails now, if it does: set by a call that found it unavailable (a full
    /// disk, an I/O error), cleared by the next write that commits.
    pub fn failing(&self) -> Option<String> {
        self.inner.failing.lock().clone()
    }

    /// Calls that failed since the start, of any kind.
    pub fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }

    /// Notes what a call found: an unavailable storage marks the store failing; a committed
    /// write (`wrote`) clears that.
    fn observe<T>(&self, result: Result<T, StoreError>, wrote: bool) -> Result<T, StoreError> {
        match &result {
            Ok(_) if wrote => {
                if let Some(reason) = self.inner.failing.lock().take() {
                    tracing::info!(
                        "the witness's storage takes writes again (it failed: {reason})"
                    );
                }
            }
            Ok(_) => {}
            Err(error) => {
                self.inner.errors.fetch_add(1, Ordering::Relaxed);
                if error.is_unavailable() {
                    let mut failing = self.inner.failing.lock();
                    if failing.is_none() {
                        tracing::error!("the witness's storage fails: {error}");
                    }
                    *failing = Some(error.to_string());
                }
            }
        }
        result
    }

    /// One small durable write (the heartbeat row), to learn whether the storage takes writes
    /// again; clears [`Store::failing`] when it commits.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.write(|transaction| {
            transaction.execute(
                "INSERT INTO heartbeat (id, beats) VALUES (1, 1)
                 ON CONFLICT (id) DO UPDATE SET beats = (beats + 1) % 1000000",
                [],
            )?;
            Ok(())
        })
        .await
    }

    /// Runs `work` in one transaction, committed (fsynced) or rolled back whole, off the
    /// runtime's workers.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let result = self
            .blocking(move |connection| cairn_sqlite::write(connection, StoreError::from, work))
            .await;
        self.observe(result, true)
    }

    /// Runs `read` on the connection and notes a failing storage.
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = read(&self.inner.connection.lock());
        self.observe(result, false)
    }

    /// Runs `work` on the connection off the runtime's workers (each write waits for fsyncs).
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&mut inner.connection.lock()))
            .await
            .map_err(|error| StoreError::Database {
                detail: format!("the storage task failed: {error}"),
                failure: Failure::Corrupt,
            })?
    }

    /// The latest checkpoint cosigned for `origin`, if any.
    pub fn latest(&self, origin: &str) -> Result<Option<CosignedRecord>, StoreError> {
        check_origin(origin)?;
        let row: Option<(i64, Vec<u8>, Vec<u8>)> = self.read(|connection| {
            Ok(connection
                .query_row(
                    "SELECT size, root, note FROM state WHERE origin = ?1",
                    [origin],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?)
        })?;
        let Some((size, root, note)) = row else {
            return Ok(None);
        };
        let corrupt = |detail: String| StoreError::Corrupt {
            what: format!("state of {origin:?}"),
            detail,
        };
        let size = u64::try_from(size).map_err(|_| corrupt(format!("size {size}")))?;
        let root: [u8; 32] = root
            .try_into()
            .map_err(|root: Vec<u8>| corrupt(format!("root of {} bytes", root.len())))?;
        Ok(Some(CosignedRecord {
            state: TreeState {
                size,
                root: Hash(root),
            },
            note,
        }))
    }

    /// Records a cosigned checkpoint as the latest for `origin`, and its note body for the
    /// timestamps, in one transaction, and returns once it is committed (fsynced).
    pub async fn record_cosigned(
        &self,
        origin: &str,
        record: &CosignedRecord,
        note_body: &[u8],
    ) -> Result<(), StoreError> {
        check_origin(origin)?;
        let size = stored_size(record.state.size)?;
        let (origin, root, note, body) = (
            origin.to_string(),
            record.state.root.0.to_vec(),
            record.note.clone(),
            note_body.to_vec(),
        );
        self.write(move |transaction| {
            transaction.execute(
                "INSERT INTO checkpoints (origin, size, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (origin, size) DO UPDATE SET body = excluded.body",
                params![origin, size, body],
            )?;
            transaction.execute(
                "INSERT INTO state (origin, size, root, note) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, note = excluded.note",
                params![origin, size, root, note],
            )?;
            Ok(())
        })
        .await
    }

    /// The note body of the checkpoint of `origin` at `size` the witness cosigned, if any.
    pub fn checkpoint_body(&self, origin: &str, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        check_origin(origin)?;
        let Ok(size) = i64::try_from(size) else {
            return Ok(None);
        };
        self.read(|connection| {
            Ok(connection
                .query_row(
                    "SELECT body FROM checkpoints WHERE origin = ?1 AND size = ?2",
                    params![origin, size],
                    |row| row.get(0),
                )
                .optional()?)
        })
    }

    /// Stores a verified timestamp token for the checkpoint of `origin` at `size`, durably.
    pub async fn record_token(
        &self,
        origin: &str,
        size: u64,
        tsa: &str,
        token_der: &[u8],
    ) -> Result<(), StoreError> {
        check_origin(origin)?;
        let size = stored_size(size)?;
        let (origin, tsa, token) = (origin.to_string(), tsa.to_string(), token_der.to_vec());
        self.write(move |transaction| {
            transaction.execute(
                "INSERT INTO timestamps (origin, size, tsa, token) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (origin, size, tsa) DO UPDATE SET token = excluded.token",
                params![origin, size, tsa, token],
            )?;
            Ok(())
        })
        .await
    }

    /// The tokens stored for the checkpoint of `origin` at `size`, ordered by TSA name.
    pub fn tokens(&self, origin: &str, size: u64) -> Result<Vec<StoredToken>, StoreError> {
        check_origin(origin)?;
        let Ok(size) = i64::try_from(size) else {
            return Ok(Vec::new());
        };
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT tsa, token FROM timestamps WHERE origin = ?1 AND size = ?2 ORDER BY tsa",
            )?;
            let tokens = statement
                .query_map(params![origin, size], |row| {
                    Ok(StoredToken {
                        tsa: row.get(0)?,
                        token_der: row.get(1)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(tokens)
        })
    }

    /// Keeps a record of log misbehaviour (a JSON document), durably.
    pub async fn record_evidence(&self, record: &[u8]) -> Result<(), StoreError> {
        let record = record.to_vec();
        self.write(move |transaction| {
            transaction.execute("INSERT INTO evidence (record) VALUES (?1)", [record])?;
            Ok(())
        })
        .await
    }

    /// All evidence records, oldest first.
    pub fn evidence(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|connection| {
            let mut statement = connection.prepare("SELECT record FROM evidence ORDER BY id")?;
            let records = statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(records)
        })
    }
}

fn check_origin(origin: &str) -> Result<(), StoreError> {
    if origin.len() > MAX_ORIGIN_SIZE {
        return Err(StoreError::OriginTooLong {
            size: origin.len(),
            limit: MAX_ORIGIN_SIZE,
        });
    }
    Ok(())
}

/// A tree size as SQLite stores it (signed 64-bit): no log reaches 2^63 entries.
fn stored_size(size: u64) -> Result<i64, StoreError> {
    i64::try_from(size).map_err(|_| StoreError::Corrupt {
        what: "tree size".into(),
        detail: format!("{size} is beyond what the witness stores"),
    })
}

fn io(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Database {
        detail: format!("{}: {error}", path.display()),
        failure: Failure::Unavailable,
    }
}

#[cfg(test)]
mod tests;
