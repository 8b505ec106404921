//! The witness's durable memory, in sled: per log origin the latest checkpoint it cosigned
//! (size, root, and the note with its cosignature), the RFC 3161 tokens it obtained for each
//! cosigned checkpoint, and the evidence of log misbehaviour it saw.
//!
//! tlog-witness requires that a witness never cosign two checkpoints that are not consistent
//! with each other. The store makes that survive crashes: [`Store::record_cosigned`] writes
//! the new state and returns only after sled has flushed (fsynced) it, and the caller sends the
//! cosignature only after that. A crash before the flush loses the state and the cosignature
//! together; a crash after it keeps both.
//!
//! Trees and keys:
//! - `state`: origin → size (8 bytes, big-endian) ‖ root (32) ‖ cosigned note bytes.
//! - `checkpoints`: origin key ‖ size → the checkpoint note body (what the timestamps cover).
//! - `timestamps`: origin key ‖ size ‖ TSA name → DER TimeStampToken.
//! - `evidence`: big-endian sequence number → a JSON record with the refused request.

use cairn_spec::hash::Hash;
use cairn_spec::witness::TreeState;
use std::path::Path;

/// The longest origin the store keeps (a checkpoint's first line; tlog-checkpoint sets no
/// bound, so the witness does).
pub const MAX_ORIGIN_SIZE: usize = 1024;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    #[error("witness database: {0}")]
    Database(#[from] sled::Error),
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

/// The witness's sled database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    state: sled::Tree,
    checkpoints: sled::Tree,
    timestamps: sled::Tree,
    evidence: sled::Tree,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        Ok(Store {
            state: db.open_tree("state")?,
            checkpoints: db.open_tree("checkpoints")?,
            timestamps: db.open_tree("timestamps")?,
            evidence: db.open_tree("evidence")?,
            db,
        })
    }

    /// The latest checkpoint cosigned for `origin`, if any.
    pub fn latest(&self, origin: &str) -> Result<Option<CosignedRecord>, StoreError> {
        let Some(value) = self.state.get(origin.as_bytes())? else {
            return Ok(None);
        };
        if value.len() < 40 {
            return Err(StoreError::Corrupt {
                what: format!("state of {origin:?}"),
                detail: format!("{} bytes, at least 40 expected", value.len()),
            });
        }
        let size = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
        let root = Hash(value[8..40].try_into().expect("32 bytes"));
        Ok(Some(CosignedRecord {
            state: TreeState { size, root },
            note: value[40..].to_vec(),
        }))
    }

    /// Records a cosigned checkpoint as the latest for `origin`, and its note body for the
    /// timestamps, and returns once both are on disk (fsynced).
    pub async fn record_cosigned(
        &self,
        origin: &str,
        record: &CosignedRecord,
        note_body: &[u8],
    ) -> Result<(), StoreError> {
        let mut value = Vec::with_capacity(40 + record.note.len());
        value.extend_from_slice(&record.state.size.to_be_bytes());
        value.extend_from_slice(&record.state.root.0);
        value.extend_from_slice(&record.note);
        self.checkpoints
            .insert(checkpoint_key(origin, record.state.size)?, note_body)?;
        self.state.insert(origin.as_bytes(), value)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// The note body of the checkpoint of `origin` at `size` the witness cosigned, if any.
    pub fn checkpoint_body(&self, origin: &str, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .checkpoints
            .get(checkpoint_key(origin, size)?)?
            .map(|value| value.to_vec()))
    }

    /// Stores a verified timestamp token for the checkpoint of `origin` at `size`, durably.
    pub async fn record_token(
        &self,
        origin: &str,
        size: u64,
        tsa: &str,
        token_der: &[u8],
    ) -> Result<(), StoreError> {
        let mut key = checkpoint_key(origin, size)?;
        key.extend_from_slice(tsa.as_bytes());
        self.timestamps.insert(key, token_der)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// The tokens stored for the checkpoint of `origin` at `size`, ordered by TSA name.
    pub fn tokens(&self, origin: &str, size: u64) -> Result<Vec<StoredToken>, StoreError> {
        let prefix = checkpoint_key(origin, size)?;
        let mut tokens = Vec::new();
        for entry in self.timestamps.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let tsa = String::from_utf8(key[prefix.len()..].to_vec()).map_err(|_| {
                StoreError::Corrupt {
                    what: format!("timestamp of {origin:?} at {size}"),
                    detail: "TSA name is not UTF-8".to_owned(),
                }
            })?;
            tokens.push(StoredToken {
                tsa,
                token_der: value.to_vec(),
            });
        }
        Ok(tokens)
    }

    /// Keeps a record of log misbehaviour (a JSON document), durably.
    pub async fn record_evidence(&self, record: &[u8]) -> Result<(), StoreError> {
        let id = self.db.generate_id()?;
        self.evidence.insert(id.to_be_bytes(), record)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// All evidence records, oldest first.
    pub fn evidence(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.evidence
            .iter()
            .values()
            .map(|value| Ok(value?.to_vec()))
            .collect()
    }
}

/// `len(origin)` (2 bytes, big-endian) ‖ origin ‖ size (8 bytes, big-endian): a prefix no other
/// origin's keys share.
fn checkpoint_key(origin: &str, size: u64) -> Result<Vec<u8>, StoreError> {
    if origin.len() > MAX_ORIGIN_SIZE {
        return Err(StoreError::OriginTooLong {
            size: origin.len(),
            limit: MAX_ORIGIN_SIZE,
        });
    }
    let mut key = Vec::with_capacity(2 + origin.len() + 8);
    key.extend_from_slice(&(origin.len() as u16).to_be_bytes());
    key.extend_from_slice(origin.as_bytes());
    key.extend_from_slice(&size.to_be_bytes());
    Ok(key)
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
