//! The data keys of data subjects, wrapped by the key-encryption key: [`KeyStore`] wraps and
//! unwraps them and keeps them in memory; where the wrapped keys are stored is a [`KeyRows`]:
//!
//! - [`SqliteKeyRows`], the embedded backend: `<data_dir>/events/subjects.sqlite`
//!   (cairn-sqlite: a commit returns once it is fsynced);
//! - `PostgresKeyRows` (`crate::events::postgres::keys`), the scaled backend: one table shared
//!   by every front-end of the log.
//!
//! One row per data key: its random 16-byte ID, the subject's key ID (a keyed hash of the
//! subject, never the subject itself) and the key wrapped with AES-256-GCM under the KEK (a
//! fresh nonce; the data key ID and subject key ID bound as associated data). A subject has one
//! live data key at a time; crypto-shredding deletes its rows (in SQLite with `secure_delete`
//! on, so that the deleted cells are overwritten with zeros in the file). A subject shredded and
//! seen again later gets a new data key: events after the erasure are new data.
//!
//! Over rows of this process only, unwrapped keys are cached in memory (at most [`MAX_CACHED`],
//! the cache emptied when full), so that the submission path reads the database only for a
//! subject it has not seen. Over shared rows nothing is cached: another front-end may destroy a
//! key at any moment, and from the moment its deletion commits no front-end may open a record
//! or seal a new one under that key, so every use asks the rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Aes256Gcm;
use cairn_sqlite::rusqlite::{params, Connection, OptionalExtension};
use cairn_sqlite::Schema;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::record::{cipher, nonce, NONCE};
use crate::events::model::EventStoreError;

/// Bytes of a data key ID.
pub const DEK_ID_SIZE: usize = 16;
/// A data key ID.
pub type DekId = [u8; DEK_ID_SIZE];
/// A subject's key ID: a keyed hash of the subject.
pub type SubjectId = [u8; 32];
/// Most unwrapped keys kept in memory.
const MAX_CACHED: usize = 100_000;

const SCHEMA: Schema = Schema {
    reader: "cairn-log (subject keys)",
    version: 1,
    create: "CREATE TABLE data_keys (
                 dek_id BLOB PRIMARY KEY NOT NULL,
                 subject BLOB NOT NULL,
                 wrapped BLOB NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX data_keys_by_subject ON data_keys (subject);",
    upgrades: &[],
};

/// A subject's key as the rows store it: its ID and the key wrapped by the KEK.
pub type StoredRow = (Vec<u8>, Vec<u8>);

/// A data key made for a subject that had none: the subject, the key's ID and the key wrapped by
/// the KEK.
pub type MadeRow = (SubjectId, DekId, Vec<u8>);

/// Where the wrapped data keys are kept. Every call is blocking; a failure is an
/// [`EventStoreError`] naming the store.
pub trait KeyRows: Send + Sync + 'static {
    /// Whether other processes use these rows too (then [`KeyStore`] caches nothing).
    fn shared(&self) -> bool;

    /// Checks that these rows may be wrapped under the KEK whose fingerprint is `fingerprint`:
    /// shared rows remember the first KEK and refuse any other (a front-end given another KEK
    /// file could open nothing the others sealed, and would seal what they cannot open).
    fn check_wrapping_key(&self, fingerprint: &[u8; 32]) -> Result<(), EventStoreError>;

    /// The row of `subject`'s live key, if it has one.
    fn subject_row(&self, subject: &SubjectId) -> Result<Option<StoredRow>, EventStoreError>;

    /// Stores, durably, the rows of `made` whose subjects have no key yet, and answers the row
    /// each subject of `made` has now, in the same order: its own from `made`, or the one that
    /// another maker stored first. A subject never gets two live keys, however many makers
    /// race (its events would then carry two index tags).
    fn insert_missing(&self, made: &[MadeRow]) -> Result<Vec<StoredRow>, EventStoreError>;

    /// The subject key ID and the wrapped key of the key `id`, unless it is destroyed.
    fn id_row(&self, id: &DekId) -> Result<Option<StoredRow>, EventStoreError>;

    /// The IDs of every key of `subject`.
    fn ids(&self, subject: &SubjectId) -> Result<Vec<DekId>, EventStoreError>;

    /// Deletes the keys `ids` durably, in one transaction; answers how many were there.
    fn delete(&self, ids: &[DekId]) -> Result<usize, EventStoreError>;
}

/// A data subject's key, unwrapped.
#[derive(Clone)]
pub struct DataKey {
    /// Its ID, written in every contents record it seals.
    pub id: DekId,
    /// The AES-256-GCM key.
    pub key: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", hex(&self.id))
    }
}

#[derive(Default)]
struct Cache {
    by_subject: HashMap<SubjectId, DataKey>,
    /// `None`: the key is known to be destroyed.
    by_id: HashMap<DekId, Option<[u8; 32]>>,
}

/// The subject key store: wraps, unwraps and (over rows of this process only) caches the keys
/// kept in its [`KeyRows`].
pub struct KeyStore {
    kek: Aes256Gcm,
    rows: Box<dyn KeyRows>,
    cache: Mutex<Cache>,
}

/// The rows of `<data_dir>/events/subjects.sqlite`, this process's alone.
pub struct SqliteKeyRows {
    path: PathBuf,
    connection: Mutex<Connection>,
}

fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> EventStoreError {
    EventStoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A data key ID read back from the rows.
pub fn dek_id(bytes: Vec<u8>) -> Result<DekId, EventStoreError> {
    bytes
        .try_into()
        .map_err(|_| corrupt("subject key", "a key ID is not 16 bytes"))
}

impl SqliteKeyRows {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteKeyRows, EventStoreError> {
        let connection = cairn_sqlite::open(path, &SCHEMA)
            .map_err(|error| corrupt("subject key store", error))?;
        connection
            .execute_batch("PRAGMA secure_delete = ON;")
            .map_err(|error| corrupt("subject key store", error))?;
        Ok(SqliteKeyRows {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    fn sqlite(&self, error: cairn_sqlite::rusqlite::Error) -> EventStoreError {
        corrupt(
            "subject key store",
            format!("{}: {error}", self.path.display()),
        )
    }

    /// The stored row of `subject`'s key, if it has one.
    fn stored_row(
        &self,
        connection: &Connection,
        subject: &SubjectId,
    ) -> Result<Option<StoredRow>, EventStoreError> {
        connection
            .query_row(
                "SELECT dek_id, wrapped FROM data_keys WHERE subject = ?1 LIMIT 1",
                params![subject.as_slice()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|error| self.sqlite(error))
    }
}

impl SqliteKeyRows {
    /// Every row, as (subject key ID, data key ID, wrapped key), in data key ID order: what
    /// `cairn-log migrate` carries into the scaled backend.
    pub fn all_rows(&self) -> Result<Vec<MadeRow>, EventStoreError> {
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare("SELECT subject, dek_id, wrapped FROM data_keys ORDER BY dek_id")
            .map_err(|error| self.sqlite(error))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(|error| self.sqlite(error))?;
        let mut all = Vec::new();
        for row in rows {
            let (subject, id, wrapped) = row.map_err(|error| self.sqlite(error))?;
            let subject: SubjectId = subject
                .try_into()
                .map_err(|_| corrupt("subject key", "a subject ID is not 32 bytes"))?;
            all.push((subject, dek_id(id)?, wrapped));
        }
        Ok(all)
    }
}

/// The most keys copied in one statement by [`KeyStore::copy_rows`].
const COPY_CHUNK: usize = 1000;

impl KeyRows for SqliteKeyRows {
    fn shared(&self) -> bool {
        false
    }

    /// The file is this process's: a wrong KEK shows when a key does not unwrap.
    fn check_wrapping_key(&self, _fingerprint: &[u8; 32]) -> Result<(), EventStoreError> {
        Ok(())
    }

    fn subject_row(&self, subject: &SubjectId) -> Result<Option<StoredRow>, EventStoreError> {
        self.stored_row(&self.connection.lock(), subject)
    }

    fn insert_missing(&self, made: &[MadeRow]) -> Result<Vec<StoredRow>, EventStoreError> {
        let mut connection = self.connection.lock();
        // Another request may have made a key for one of these subjects since the caller
        // looked: asked again under the lock that every maker holds through its commit.
        let mut answered = Vec::with_capacity(made.len());
        let mut to_make = Vec::with_capacity(made.len());
        for (subject, id, wrapped) in made {
            match self.stored_row(&connection, subject)? {
                Some(row) => answered.push(row),
                None => {
                    to_make.push((subject, id, wrapped));
                    answered.push((id.to_vec(), wrapped.clone()));
                }
            }
        }
        cairn_sqlite::write(
            &mut connection,
            |error| self.sqlite(error),
            |transaction| {
                for (subject, id, wrapped) in &to_make {
                    transaction
                        .execute(
                            "INSERT INTO data_keys (dek_id, subject, wrapped) VALUES (?1, ?2, ?3)",
                            params![id.as_slice(), subject.as_slice(), wrapped],
                        )
                        .map_err(|error| self.sqlite(error))?;
                }
                Ok(())
            },
        )?;
        Ok(answered)
    }

    fn id_row(&self, id: &DekId) -> Result<Option<StoredRow>, EventStoreError> {
        self.connection
            .lock()
            .query_row(
                "SELECT subject, wrapped FROM data_keys WHERE dek_id = ?1",
                params![id.as_slice()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|error| self.sqlite(error))
    }

    fn ids(&self, subject: &SubjectId) -> Result<Vec<DekId>, EventStoreError> {
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare("SELECT dek_id FROM data_keys WHERE subject = ?1")
            .map_err(|error| self.sqlite(error))?;
        let rows = statement
            .query_map(params![subject.as_slice()], |row| row.get::<_, Vec<u8>>(0))
            .map_err(|error| self.sqlite(error))?;
        let mut ids = Vec::new();
        for row in rows {
            ids.push(dek_id(row.map_err(|error| self.sqlite(error))?)?);
        }
        Ok(ids)
    }

    /// Deleted with `secure_delete` on: the cells are overwritten in the file.
    fn delete(&self, ids: &[DekId]) -> Result<usize, EventStoreError> {
        let mut connection = self.connection.lock();
        cairn_sqlite::write(
            &mut connection,
            |error| self.sqlite(error),
            |transaction| {
                let mut deleted = 0;
                for id in ids {
                    deleted += transaction
                        .execute(
                            "DELETE FROM data_keys WHERE dek_id = ?1",
                            params![id.as_slice()],
                        )
                        .map_err(|error| self.sqlite(error))?;
                }
                Ok(deleted)
            },
        )
    }
}

impl KeyStore {
    /// Opens (or creates) the embedded store at `path`, with keys wrapped under `kek`.
    pub fn open(path: &Path, kek: &[u8; 32]) -> Result<KeyStore, EventStoreError> {
        KeyStore::with_rows(Box::new(SqliteKeyRows::open(path)?), kek)
    }

    /// The store over `rows`, with keys wrapped under `kek` (checked against the rows'
    /// [`KeyRows::check_wrapping_key`]).
    pub fn with_rows(rows: Box<dyn KeyRows>, kek: &[u8; 32]) -> Result<KeyStore, EventStoreError> {
        let mut fingerprint = Sha256::new();
        fingerprint.update(b"cairn.subject-key-wrapping-key/v1\0");
        fingerprint.update(kek);
        rows.check_wrapping_key(&fingerprint.finalize().into())?;
        Ok(KeyStore {
            kek: cipher(kek),
            rows,
            cache: Mutex::new(Cache::default()),
        })
    }

    fn associated(id: &DekId, subject: &SubjectId) -> Vec<u8> {
        let mut data = b"cairn.subject-key/v1".to_vec();
        data.extend_from_slice(id);
        data.extend_from_slice(subject);
        data
    }

    fn unwrap_key(
        &self,
        id: &DekId,
        subject: &SubjectId,
        wrapped: &[u8],
    ) -> Result<[u8; 32], EventStoreError> {
        if wrapped.len() != 12 + 32 + 16 {
            return Err(corrupt(
                "subject key",
                format!("{} is {} bytes", hex(id), wrapped.len()),
            ));
        }
        let (drawn, sealed) = wrapped.split_at(NONCE);
        let drawn: [u8; NONCE] = drawn
            .try_into()
            .map_err(|_| corrupt("subject key", "a short nonce"))?;
        let aad = KeyStore::associated(id, subject);
        let key = self
            .kek
            .decrypt(
                &nonce(drawn),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                corrupt(
                    "subject key",
                    format!(
                        "{} does not unwrap under the key-encryption key (another KEK file?)",
                        hex(id)
                    ),
                )
            })?;
        key.try_into()
            .map_err(|_| corrupt("subject key", "an unwrapped key is not 32 bytes"))
    }

    /// A new data key for `subject`, and its row wrapped by the KEK.
    fn make(&self, subject: &SubjectId) -> Result<(DataKey, MadeRow), EventStoreError> {
        let key = DataKey {
            id: rand::random(),
            key: rand::random(),
        };
        let drawn: [u8; NONCE] = rand::random();
        let aad = KeyStore::associated(&key.id, subject);
        let sealed = self
            .kek
            .encrypt(
                &nonce(drawn),
                Payload {
                    msg: &key.key,
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt("subject key", "wrapping failed"))?;
        let mut wrapped = drawn.to_vec();
        wrapped.extend_from_slice(&sealed);
        let row = (*subject, key.id, wrapped);
        Ok((key, row))
    }

    fn remember(&self, subject: SubjectId, key: &DataKey) {
        if self.rows.shared() {
            return;
        }
        let mut cache = self.cache.lock();
        if cache.by_subject.len() >= MAX_CACHED || cache.by_id.len() >= 2 * MAX_CACHED {
            *cache = Cache::default();
        }
        cache.by_subject.insert(subject, key.clone());
        cache.by_id.insert(key.id, Some(key.key));
    }

    /// The live key of `subject`, from memory only (never, over shared rows).
    pub fn cached(&self, subject: &SubjectId) -> Option<DataKey> {
        self.cache.lock().by_subject.get(subject).cloned()
    }

    /// The live key of `subject`, if it has one. Blocking.
    pub fn find(&self, subject: &SubjectId) -> Result<Option<DataKey>, EventStoreError> {
        if let Some(key) = self.cached(subject) {
            return Ok(Some(key));
        }
        let Some(row) = self.rows.subject_row(subject)? else {
            return Ok(None);
        };
        let key = self.open_row(subject, row)?;
        self.remember(*subject, &key);
        Ok(Some(key))
    }

    /// The key a stored row of `subject` holds, unwrapped.
    fn open_row(
        &self,
        subject: &SubjectId,
        (id, wrapped): StoredRow,
    ) -> Result<DataKey, EventStoreError> {
        let id = dek_id(id)?;
        Ok(DataKey {
            id,
            key: self.unwrap_key(&id, subject, &wrapped)?,
        })
    }

    /// The live key of each subject, made (and durable) for those that had none. Blocking.
    pub fn find_or_create(&self, subjects: &[SubjectId]) -> Result<Vec<DataKey>, EventStoreError> {
        let mut known: HashMap<SubjectId, DataKey> = HashMap::with_capacity(subjects.len());
        let mut missing = Vec::new();
        for subject in subjects {
            if known.contains_key(subject) {
                continue;
            }
            // Over shared rows, one statement makes or finds them all (below).
            let found = if self.rows.shared() {
                None
            } else {
                self.find(subject)?
            };
            match found {
                Some(key) => {
                    known.insert(*subject, key);
                }
                None => missing.push(*subject),
            }
        }
        if !missing.is_empty() {
            // Sorted: makers that race over several subjects take them in one order.
            missing.sort_unstable();
            missing.dedup();
            let made: Vec<MadeRow> = missing
                .iter()
                .map(|subject| self.make(subject).map(|(_, row)| row))
                .collect::<Result<_, _>>()?;
            let rows = self.rows.insert_missing(&made)?;
            if rows.len() != made.len() {
                return Err(corrupt(
                    "subject key store",
                    format!("{} rows answered for {} subjects", rows.len(), made.len()),
                ));
            }
            for (subject, row) in missing.iter().zip(rows) {
                let key = self.open_row(subject, row)?;
                self.remember(*subject, &key);
                known.insert(*subject, key);
            }
        }
        subjects
            .iter()
            .map(|subject| {
                known
                    .get(subject)
                    .cloned()
                    .ok_or_else(|| corrupt("subject key", "a key just made is gone"))
            })
            .collect()
    }

    /// The key with ID `id`, unless destroyed. Blocking (once per key over the rows of this
    /// process: then cached; every time over shared rows).
    pub fn key(&self, id: &DekId) -> Result<Option<[u8; 32]>, EventStoreError> {
        if let Some(known) = self.cache.lock().by_id.get(id) {
            return Ok(*known);
        }
        let key = match self.rows.id_row(id)? {
            Some((subject, wrapped)) => {
                let subject: SubjectId = subject
                    .try_into()
                    .map_err(|_| corrupt("subject key", "a subject ID is not 32 bytes"))?;
                Some(self.unwrap_key(id, &subject, &wrapped)?)
            }
            None => None,
        };
        if !self.rows.shared() {
            let mut cache = self.cache.lock();
            if cache.by_id.len() >= 2 * MAX_CACHED {
                *cache = Cache::default();
            }
            cache.by_id.insert(*id, key);
        }
        Ok(key)
    }

    /// Copies `rows` (another store's, wrapped under the same KEK) into this store's rows as
    /// they are, so that every contents record sealed under them opens here too. Each row is
    /// first unwrapped (a KEK that does not open it stops the copy before anything is written);
    /// a subject that already has another key here stops it too (the target holds another
    /// log's keys). Rows already here are left alone: a copy that stopped is run again.
    /// Answers how many keys the store has of `rows` now. Blocking.
    pub fn copy_rows(&self, rows: &[MadeRow]) -> Result<usize, EventStoreError> {
        for (subject, id, wrapped) in rows {
            self.unwrap_key(id, subject, wrapped).map_err(|_| {
                corrupt(
                    "key-encryption key",
                    format!(
                        "the data key {} does not open under this KEK: give [privacy] kek_file \
                         the KEK of the log the keys come from",
                        hex(id)
                    ),
                )
            })?;
        }
        let mut copied = 0;
        for chunk in rows.chunks(COPY_CHUNK) {
            let stored = self.rows.insert_missing(chunk)?;
            for ((_, id, wrapped), (stored_id, stored_wrapped)) in chunk.iter().zip(stored) {
                if stored_id != id.as_slice() || &stored_wrapped != wrapped {
                    return Err(corrupt(
                        "subject key",
                        format!(
                            "the target already holds another data key ({}) for the subject of \
                             {}: it holds another log's keys",
                            hex(&stored_id),
                            hex(id)
                        ),
                    ));
                }
                copied += 1;
            }
        }
        Ok(copied)
    }

    /// The IDs of every key of `subject` (live or none). Blocking.
    pub fn key_ids(&self, subject: &SubjectId) -> Result<Vec<DekId>, EventStoreError> {
        self.rows.ids(subject)
    }

    /// Destroys the keys `ids` durably (their cells overwritten in the file), and forgets them.
    /// Destroying a key destroyed before does nothing. Blocking.
    pub fn destroy(&self, ids: &[DekId]) -> Result<usize, EventStoreError> {
        let deleted = self.rows.delete(ids)?;
        let mut cache = self.cache.lock();
        cache.by_subject.retain(|_, key| !ids.contains(&key.id));
        if !self.rows.shared() {
            for id in ids {
                cache.by_id.insert(*id, None);
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_first_sights_of_a_subject_make_one_key() {
        let dir = tempfile::tempdir().expect("dir");
        let store = std::sync::Arc::new(
            KeyStore::open(&dir.path().join("subjects.sqlite"), &[7; 32]).expect("open"),
        );
        for round in 0..20u8 {
            let subject = [round; 32];
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let makers: Vec<_> = (0..4)
                .map(|_| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        store.find_or_create(&[subject]).expect("made")[0].id
                    })
                })
                .collect();
            let ids: Vec<DekId> = makers
                .into_iter()
                .map(|maker| maker.join().expect("thread"))
                .collect();
            assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
            assert_eq!(store.key_ids(&subject).expect("ids"), vec![ids[0]]);
        }
    }

    #[test]
    fn keys_are_copied_unchanged_under_their_kek_only_and_never_over_another_key() {
        let dir = tempfile::tempdir().expect("dir");
        let source_path = dir.path().join("source.sqlite");
        let (alice, bob) = ([1u8; 32], [2u8; 32]);
        let made = KeyStore::open(&source_path, &[7; 32])
            .expect("open")
            .find_or_create(&[alice, bob])
            .expect("made");
        let rows = SqliteKeyRows::open(&source_path)
            .expect("open")
            .all_rows()
            .expect("rows");
        assert_eq!(rows.len(), 2);

        // Under another KEK nothing is written.
        let target_path = dir.path().join("target.sqlite");
        let wrong = KeyStore::open(&target_path, &[8; 32]).expect("open");
        let refused = wrong.copy_rows(&rows).expect_err("another KEK").to_string();
        assert!(refused.contains("kek_file"), "{refused}");
        assert!(wrong.key_ids(&alice).expect("ids").is_empty());
        drop(wrong);

        // Under the same KEK every key opens as it did, and a second copy changes nothing.
        let target = KeyStore::open(&target_path, &[7; 32]).expect("open");
        assert_eq!(target.copy_rows(&rows).expect("copied"), 2);
        assert_eq!(target.copy_rows(&rows).expect("again"), 2);
        for key in &made {
            assert_eq!(target.key(&key.id).expect("read"), Some(key.key));
        }

        // A target where a subject has another key is another log's: refused.
        let other_path = dir.path().join("other.sqlite");
        let other = KeyStore::open(&other_path, &[7; 32]).expect("open");
        other.find_or_create(&[bob]).expect("made");
        let refused = other.copy_rows(&rows).expect_err("a clash").to_string();
        assert!(refused.contains("another log"), "{refused}");
    }

    #[test]
    fn keys_survive_a_reopen_open_under_their_kek_only_and_are_destroyed_for_good() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("subjects.sqlite");
        let (alice, bob) = ([1u8; 32], [2u8; 32]);
        let store = KeyStore::open(&path, &[7; 32]).expect("open");
        assert!(store.find(&alice).expect("find").is_none());
        let made = store.find_or_create(&[alice, bob, alice]).expect("made");
        assert_eq!(made[0].id, made[2].id, "one key per subject");
        assert_ne!(made[0].key, made[1].key);
        drop(store);

        let store = KeyStore::open(&path, &[7; 32]).expect("reopen");
        let found = store.find(&alice).expect("find").expect("kept");
        assert_eq!((found.id, found.key), (made[0].id, made[0].key));
        assert_eq!(store.key(&made[1].id).expect("key"), Some(made[1].key));
        assert_eq!(store.key_ids(&alice).expect("ids"), vec![made[0].id]);
        drop(store);

        let wrong = KeyStore::open(&path, &[8; 32]).expect("opens");
        assert!(wrong.find(&alice).is_err(), "another KEK unwraps nothing");
        drop(wrong);

        let store = KeyStore::open(&path, &[7; 32]).expect("reopen");
        assert_eq!(store.destroy(&[made[0].id]).expect("destroy"), 1);
        assert_eq!(store.destroy(&[made[0].id]).expect("again"), 0);
        assert_eq!(store.key(&made[0].id).expect("key"), None);
        drop(store);
        let store = KeyStore::open(&path, &[7; 32]).expect("reopen");
        assert_eq!(store.key(&made[0].id).expect("key"), None, "gone for good");
        assert!(store.find(&alice).expect("find").is_none());
        let again = store.find_or_create(&[alice]).expect("a new key");
        assert_ne!(again[0].id, made[0].id);
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !bytes.windows(16).any(|window| window == made[0].id),
            "the destroyed key's row is overwritten in the file"
        );
    }
}
