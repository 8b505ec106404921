//! The data keys of data subjects, wrapped by the key-encryption key, in
//! `<data_dir>/events/subjects.sqlite` (cairn-sqlite: a commit returns once it is fsynced).
//!
//! One row per data key: its random 16-byte ID, the subject's key ID (a keyed hash of the
//! subject, never the subject itself) and the key wrapped with AES-256-GCM under the KEK (a
//! fresh nonce; the data key ID and subject key ID bound as associated data). A subject has one
//! live data key at a time; crypto-shredding deletes its rows with `secure_delete` on, so that
//! SQLite overwrites the deleted cells with zeros in the file. A subject shredded and seen again
//! later gets a new data key: events after the erasure are new data.
//!
//! Unwrapped keys are cached in memory (at most [`MAX_CACHED`], the cache emptied when full),
//! so that the submission path reads the database only for a subject it has not seen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Aes256Gcm;
use cairn_sqlite::rusqlite::{params, Connection, OptionalExtension};
use cairn_sqlite::Schema;
use parking_lot::Mutex;

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

/// A subject's key as `data_keys` stores it: its ID and the key wrapped by the KEK.
type StoredRow = (Vec<u8>, Vec<u8>);

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

/// The subject key store.
pub struct KeyStore {
    path: PathBuf,
    kek: Aes256Gcm,
    connection: Mutex<Connection>,
    cache: Mutex<Cache>,
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

impl KeyStore {
    /// Opens (or creates) the store at `path`, with keys wrapped under `kek`.
    pub fn open(path: &Path, kek: &[u8; 32]) -> Result<KeyStore, EventStoreError> {
        let connection = cairn_sqlite::open(path, &SCHEMA)
            .map_err(|error| corrupt("subject key store", error))?;
        connection
            .execute_batch("PRAGMA secure_delete = ON;")
            .map_err(|error| corrupt("subject key store", error))?;
        Ok(KeyStore {
            path: path.to_path_buf(),
            kek: cipher(kek),
            connection: Mutex::new(connection),
            cache: Mutex::new(Cache::default()),
        })
    }

    fn sqlite(&self, error: cairn_sqlite::rusqlite::Error) -> EventStoreError {
        corrupt(
            "subject key store",
            format!("{}: {error}", self.path.display()),
        )
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

    fn remember(&self, subject: SubjectId, key: &DataKey) {
        let mut cache = self.cache.lock();
        if cache.by_subject.len() >= MAX_CACHED || cache.by_id.len() >= 2 * MAX_CACHED {
            *cache = Cache::default();
        }
        cache.by_subject.insert(subject, key.clone());
        cache.by_id.insert(key.id, Some(key.key));
    }

    /// The live key of `subject`, from memory only.
    pub fn cached(&self, subject: &SubjectId) -> Option<DataKey> {
        self.cache.lock().by_subject.get(subject).cloned()
    }

    /// The live key of `subject`, if it has one. Blocking.
    pub fn find(&self, subject: &SubjectId) -> Result<Option<DataKey>, EventStoreError> {
        if let Some(key) = self.cached(subject) {
            return Ok(Some(key));
        }
        let row = self.stored_row(&self.connection.lock(), subject)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let key = self.open_row(subject, row)?;
        self.remember(*subject, &key);
        Ok(Some(key))
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

    /// The key a stored row of `subject` holds, unwrapped.
    fn open_row(
        &self,
        subject: &SubjectId,
        (id, wrapped): StoredRow,
    ) -> Result<DataKey, EventStoreError> {
        let id: DekId = id
            .try_into()
            .map_err(|_| corrupt("subject key", "a key ID is not 16 bytes"))?;
        Ok(DataKey {
            id,
            key: self.unwrap_key(&id, subject, &wrapped)?,
        })
    }

    /// The live key of each subject, made (and durable) for those that had none. Blocking.
    pub fn find_or_create(&self, subjects: &[SubjectId]) -> Result<Vec<DataKey>, EventStoreError> {
        let mut keys = Vec::with_capacity(subjects.len());
        let mut missing = Vec::new();
        for subject in subjects {
            match self.find(subject)? {
                Some(key) => keys.push(Some(key)),
                None => {
                    keys.push(None);
                    missing.push(*subject);
                }
            }
        }
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            let made: Vec<(SubjectId, DataKey, Vec<u8>)> = missing
                .iter()
                .map(|subject| {
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
                    Ok((*subject, key, wrapped))
                })
                .collect::<Result<_, EventStoreError>>()?;
            let mut connection = self.connection.lock();
            // Another request may have made a key for one of these subjects since `find` looked:
            // asked again under the lock that every maker holds through its commit, so that a
            // subject never gets two keys (its events would then carry two index tags).
            let mut found = Vec::new();
            let mut to_make = Vec::with_capacity(made.len());
            for made in made {
                match self.stored_row(&connection, &made.0)? {
                    Some(row) => found.push((made.0, row)),
                    None => to_make.push(made),
                }
            }
            let made = to_make;
            cairn_sqlite::write(
                &mut connection,
                |error| self.sqlite(error),
                |transaction| {
                    for (subject, key, wrapped) in &made {
                        transaction
                            .execute(
                                "INSERT INTO data_keys (dek_id, subject, wrapped) VALUES (?1, ?2, ?3)",
                                params![key.id.as_slice(), subject.as_slice(), wrapped],
                            )
                            .map_err(|error| self.sqlite(error))?;
                    }
                    Ok(())
                },
            )?;
            drop(connection);
            for (subject, key, _) in &made {
                self.remember(*subject, key);
            }
            for (subject, row) in found {
                let key = self.open_row(&subject, row)?;
                self.remember(subject, &key);
            }
        }
        let mut answered = Vec::with_capacity(subjects.len());
        for (subject, key) in subjects.iter().zip(keys) {
            match key {
                Some(key) => answered.push(key),
                None => answered.push(
                    self.cached(subject)
                        .ok_or_else(|| corrupt("subject key", "a key just made is gone"))?,
                ),
            }
        }
        Ok(answered)
    }

    /// The key with ID `id`, unless destroyed. Blocking (once per key: then cached).
    pub fn key(&self, id: &DekId) -> Result<Option<[u8; 32]>, EventStoreError> {
        if let Some(known) = self.cache.lock().by_id.get(id) {
            return Ok(*known);
        }
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .connection
            .lock()
            .query_row(
                "SELECT subject, wrapped FROM data_keys WHERE dek_id = ?1",
                params![id.as_slice()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|error| self.sqlite(error))?;
        let key = match row {
            Some((subject, wrapped)) => {
                let subject: SubjectId = subject
                    .try_into()
                    .map_err(|_| corrupt("subject key", "a subject ID is not 32 bytes"))?;
                Some(self.unwrap_key(id, &subject, &wrapped)?)
            }
            None => None,
        };
        let mut cache = self.cache.lock();
        if cache.by_id.len() >= 2 * MAX_CACHED {
            *cache = Cache::default();
        }
        cache.by_id.insert(*id, key);
        Ok(key)
    }

    /// The IDs of every key of `subject` (live or none). Blocking.
    pub fn key_ids(&self, subject: &SubjectId) -> Result<Vec<DekId>, EventStoreError> {
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare("SELECT dek_id FROM data_keys WHERE subject = ?1")
            .map_err(|error| self.sqlite(error))?;
        let rows = statement
            .query_map(params![subject.as_slice()], |row| row.get::<_, Vec<u8>>(0))
            .map_err(|error| self.sqlite(error))?;
        let mut ids = Vec::new();
        for row in rows {
            let id = row.map_err(|error| self.sqlite(error))?;
            ids.push(
                id.try_into()
                    .map_err(|_| corrupt("subject key", "a key ID is not 16 bytes"))?,
            );
        }
        Ok(ids)
    }

    /// Destroys the keys `ids` durably (their cells overwritten in the file), and forgets them.
    /// Destroying a key destroyed before does nothing. Blocking.
    pub fn destroy(&self, ids: &[DekId]) -> Result<usize, EventStoreError> {
        let mut connection = self.connection.lock();
        let deleted = cairn_sqlite::write(
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
        )?;
        drop(connection);
        let mut cache = self.cache.lock();
        cache.by_subject.retain(|_, key| !ids.contains(&key.id));
        for id in ids {
            cache.by_id.insert(*id, None);
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
