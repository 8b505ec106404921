//! [`StateStore`] on PostgreSQL: the checkpoint, witness progress, cosignatures and timestamp
//! tokens.
//!
//! Each write is one transaction whose compare is in the statement itself (`ON CONFLICT … DO
//! UPDATE … WHERE stored <= offered`), so that two front-ends writing at once cannot move a
//! value back between one's read and its write. A checkpoint is also fenced by the integrator
//! lease ([`super::lease`]) in the same transaction.

use super::{from_sql_int, lease, to_sql_int, PostgresStore};
use crate::storage::{
    check_attachment, check_name, StateStore, StoreError, StoredCheckpoint, MAX_CHECKPOINT_BYTES,
};

/// What an attachment row holds.
#[derive(Clone, Copy)]
#[repr(i16)]
enum Attachment {
    Cosignature = 0,
    TimestampToken = 1,
}

/// A checkpoint size as a column value; beyond `i64` no log reaches.
fn size_column(size: u64) -> Result<i64, StoreError> {
    to_sql_int(size).ok_or(StoreError::LimitExceeded {
        what: "checkpoint size",
        found: size,
        limit: i64::MAX as u64,
    })
}

impl PostgresStore {
    fn store_attachment(
        &self,
        kind: Attachment,
        size: u64,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        check_name(name)?;
        check_attachment(bytes)?;
        let size = size_column(size)?;
        self.call("storing an attachment", |client| async move {
            client
                .execute(
                    "INSERT INTO attachments (kind, size, name, bytes) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (kind, size, name) DO UPDATE SET bytes = EXCLUDED.bytes",
                    &[&(kind as i16), &size, &name, &bytes],
                )
                .await?;
            Ok(())
        })
    }

    fn attachments(
        &self,
        kind: Attachment,
        size: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let Some(size) = to_sql_int(size) else {
            return Ok(Vec::new());
        };
        let place = &self.place;
        self.call("reading attachments", |client| async move {
            // Byte order of names (collation "C"), whatever the database's collation.
            let rows = client
                .query(
                    "SELECT name, bytes FROM attachments WHERE kind = $1 AND size = $2
                     ORDER BY name COLLATE \"C\"",
                    &[&(kind as i16), &size],
                )
                .await?;
            let mut found = Vec::with_capacity(rows.len());
            for row in rows {
                let (name, bytes): (String, Vec<u8>) = (row.get(0), row.get(1));
                check_attachment(&bytes).map_err(|error| {
                    StoreError::corrupt(place, 0, format!("the attachment of {name}: {error}"))
                })?;
                found.push((name, bytes));
            }
            Ok(found)
        })
    }
}

impl StateStore for PostgresStore {
    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let place = &self.place;
        self.call("reading the checkpoint", |client| async move {
            let Some(row) = client
                .query_opt("SELECT size, note FROM checkpoint WHERE id = 1", &[])
                .await?
            else {
                return Ok(None);
            };
            let size = from_sql_int(row.get(0), place, "the checkpoint size")?;
            let note: Vec<u8> = row.get(1);
            if note.len() > MAX_CHECKPOINT_BYTES {
                return Err(StoreError::corrupt(
                    place,
                    0,
                    format!("the stored checkpoint is {} bytes", note.len()),
                )
                .into());
            }
            Ok(Some(StoredCheckpoint { size, note }))
        })
    }

    /// In one transaction: the lease is still this store's (or nobody's, for a store that never
    /// took one), the size neither goes back nor passes the durable entries, then the write.
    fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        if checkpoint.note.len() > MAX_CHECKPOINT_BYTES {
            return Err(StoreError::LimitExceeded {
                what: "checkpoint size in bytes",
                found: checkpoint.note.len() as u64,
                limit: MAX_CHECKPOINT_BYTES as u64,
            });
        }
        let size = size_column(checkpoint.size)?;
        let held = self.lease.lock().clone();
        let place = &self.place;
        self.call("storing the checkpoint", |mut client| async move {
            let transaction = client.transaction().await?;
            lease::fence(&transaction, held.as_ref(), place).await?;
            let entries: i64 = transaction
                .query_one("SELECT entry_count FROM head WHERE id = 1", &[])
                .await?
                .get(0);
            if size > entries {
                return Err(StoreError::CheckpointAhead {
                    size: checkpoint.size,
                    durable: from_sql_int(entries, place, "the entry count")?,
                    what: "the durable entries",
                }
                .into());
            }
            let written = transaction
                .execute(
                    "INSERT INTO checkpoint (id, size, note) VALUES (1, $1, $2)
                     ON CONFLICT (id) DO UPDATE SET size = EXCLUDED.size, note = EXCLUDED.note
                     WHERE checkpoint.size <= EXCLUDED.size",
                    &[&size, &checkpoint.note],
                )
                .await?;
            if written == 0 {
                let stored: i64 = transaction
                    .query_one("SELECT size FROM checkpoint WHERE id = 1", &[])
                    .await?
                    .get(0);
                return Err(StoreError::CheckpointGoesBack {
                    stored: from_sql_int(stored, place, "the checkpoint size")?,
                    offered: checkpoint.size,
                }
                .into());
            }
            transaction.commit().await?;
            Ok(())
        })
    }

    fn witness_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
        check_name(witness)?;
        let place = &self.place;
        self.call("reading a witness's size", |client| async move {
            let row = client
                .query_opt("SELECT size FROM witnesses WHERE name = $1", &[&witness])
                .await?;
            Ok(match row {
                Some(row) => Some(from_sql_int(row.get(0), place, "a witness size")?),
                None => None,
            })
        })
    }

    fn set_witness_size(&self, witness: &str, size: u64) -> Result<(), StoreError> {
        check_name(witness)?;
        let offered = size_column(size)?;
        let place = &self.place;
        self.call("storing a witness's size", |client| async move {
            let written = client
                .execute(
                    "INSERT INTO witnesses (name, size) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET size = EXCLUDED.size
                     WHERE witnesses.size <= EXCLUDED.size",
                    &[&witness, &offered],
                )
                .await?;
            if written == 0 {
                let stored: i64 = client
                    .query_one("SELECT size FROM witnesses WHERE name = $1", &[&witness])
                    .await?
                    .get(0);
                return Err(StoreError::WitnessGoesBack {
                    witness: witness.to_string(),
                    stored: from_sql_int(stored, place, "a witness size")?,
                    offered: size,
                }
                .into());
            }
            Ok(())
        })
    }

    fn store_cosignature(
        &self,
        size: u64,
        witness: &str,
        cosignature: &[u8],
    ) -> Result<(), StoreError> {
        self.store_attachment(Attachment::Cosignature, size, witness, cosignature)
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.attachments(Attachment::Cosignature, size)
    }

    fn store_timestamp_token(
        &self,
        size: u64,
        authority: &str,
        token: &[u8],
    ) -> Result<(), StoreError> {
        self.store_attachment(Attachment::TimestampToken, size, authority, token)
    }

    fn timestamp_tokens(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.attachments(Attachment::TimestampToken, size)
    }
}
