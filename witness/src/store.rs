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
//! It is one SQLite file, `witness.sqlite`, in rollback-journal mode, for the reasons the log's
//! own state gives (its commit is proven under injected I/O errors, full disks and power
//! loss; a start on a full disk writes nothing). sled 0.34, used before, was not safe on a full
//! disk. A `flock` on `lock` keeps a second witness process off the same state.
//!
//! Tables: `state` (origin → size, root, cosigned note), `checkpoints` (origin, size → the
//! note body the timestamps cover), `timestamps` (origin, size, TSA name → DER token),
//! `evidence` (sequence → a JSON record with the refused request).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_spec::hash::Hash;
use cairn_spec::witness::TreeState;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

/// The longest origin the store keeps (a checkpoint's first line; tlog-checkpoint sets no
/// bound, so the witness does).
pub const MAX_ORIGIN_SIZE: usize = 1024;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
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
";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed: `transient` when the fault may clear (a full disk, an I/O error).
    #[error("witness database: {detail}")]
    Database {
        /// What SQLite or the file system said.
        detail: String,
        /// Whether retrying later may succeed.
        transient: bool,
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
                transient: true,
                ..
            }
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        let transient = matches!(
            error.sqlite_error_code(),
            Some(
                ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::OutOfMemory
                    | ErrorCode::ReadOnly
            )
        );
        StoreError::Database {
            detail: error.to_string(),
            transient,
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

struct Inner {
    connection: Mutex<Connection>,
    /// Held (flock) while the store is open.
    _lock: File,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| io(dir, error))?;
        if dir.join("db").is_file() && dir.join("conf").is_file() {
            return Err(StoreError::OlderFormat(dir.to_path_buf()));
        }
        let lock_path = dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|error| io(&lock_path, error))?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(StoreError::Locked(dir.to_path_buf()))
            }
            Err(errno) => return Err(io(&lock_path, errno.into())),
        }
        let connection = Connection::open_with_flags(
            dir.join("witness.sqlite"),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Connection settings only: none of them writes.
        connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA cell_size_check = ON;")?;
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version == 0 {
            connection
                .execute_batch(&format!(
                    "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                ))
                .inspect_err(|_| {
                    let _ = connection.execute_batch("ROLLBACK");
                })?;
        } else if version != SCHEMA_VERSION {
            return Err(StoreError::Corrupt {
                what: "schema".into(),
                detail: format!("version {version}, this cairn-witness reads {SCHEMA_VERSION}"),
            });
        }
        Ok(Store {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                _lock: lock,
            }),
        })
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
                transient: false,
            })?
    }

    /// The latest checkpoint cosigned for `origin`, if any.
    pub fn latest(&self, origin: &str) -> Result<Option<CosignedRecord>, StoreError> {
        check_origin(origin)?;
        let row: Option<(i64, Vec<u8>, Vec<u8>)> = self
            .inner
            .connection
            .lock()
            .query_row(
                "SELECT size, root, note FROM state WHERE origin = ?1",
                [origin],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
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
        self.blocking(move |connection| {
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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
            transaction.commit()?;
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
        Ok(self
            .inner
            .connection
            .lock()
            .query_row(
                "SELECT body FROM checkpoints WHERE origin = ?1 AND size = ?2",
                params![origin, size],
                |row| row.get(0),
            )
            .optional()?)
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
        self.blocking(move |connection| {
            connection.execute(
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
        let connection = self.inner.connection.lock();
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
    }

    /// Keeps a record of log misbehaviour (a JSON document), durably.
    pub async fn record_evidence(&self, record: &[u8]) -> Result<(), StoreError> {
        let record = record.to_vec();
        self.blocking(move |connection| {
            connection.execute("INSERT INTO evidence (record) VALUES (?1)", [record])?;
            Ok(())
        })
        .await
    }

    /// All evidence records, oldest first.
    pub fn evidence(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let connection = self.inner.connection.lock();
        let mut statement = connection.prepare("SELECT record FROM evidence ORDER BY id")?;
        let records = statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(records)
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
        transient: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(size: u64) -> CosignedRecord {
        CosignedRecord {
            state: TreeState {
                size,
                root: Hash([size as u8; 32]),
            },
            note: format!("note {size}\n").into_bytes(),
        }
    }

    #[tokio::test]
    async fn keeps_latest_state_and_tokens_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("opens");
            assert_eq!(store.latest("a").expect("reads"), None);
            store
                .record_cosigned("a", &record(3), b"body 3\n")
                .await
                .expect("writes");
            store
                .record_token("a", 3, "tsa-1", b"token")
                .await
                .expect("writes");
        }
        let store = Store::open(dir.path()).expect("reopens");
        assert_eq!(store.latest("a").expect("reads"), Some(record(3)));
        assert_eq!(
            store.checkpoint_body("a", 3).expect("reads"),
            Some(b"body 3\n".to_vec())
        );
        assert_eq!(
            store.tokens("a", 3).expect("reads"),
            vec![StoredToken {
                tsa: "tsa-1".to_owned(),
                token_der: b"token".to_vec()
            }]
        );
        assert!(store.tokens("a", 4).expect("reads").is_empty());
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_state_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Store::open(dir.path()).expect("opens");
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Locked(_))
        ));
    }

    #[tokio::test]
    async fn token_keys_of_one_origin_never_match_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("opens");
        store
            .record_token("ab", 1, "t", b"x")
            .await
            .expect("writes");
        assert!(store.tokens("a", 1).expect("reads").is_empty());
    }
}
