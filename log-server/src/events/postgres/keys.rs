//! The data subjects' keys of the scaled backend ([`KeyRows`] over PostgreSQL): one table,
//! `subject_keys`, shared by every front-end of the log, so that an event sealed by one
//! front-end opens through any other and a subject shredded through one is shredded for all.
//!
//! - **One key per subject**: `subject` is unique. Front-ends that see a subject's first events
//!   at once each insert a key with `INSERT … ON CONFLICT (subject) DO NOTHING` and read back
//!   the row that is there, in one transaction: the first insert wins, the others wait on its
//!   commit and then read its row, so every front-end seals the subject's events under the same
//!   key. Makers insert their subjects in sorted order, so two makers never wait on each other.
//! - **Durable before use**: the transactions that make and destroy keys set
//!   `synchronous_commit` on (the events pool has it off, see
//!   [`PostgresStore::open_for_events`]): a leaf sealed under a key is sequenced only after the
//!   key's commit reached the disk.
//! - **A shred is one transaction**: the subject's rows are deleted together; from its commit on,
//!   every front-end finds no key (nothing is cached over these rows, see
//!   [`crate::events::privacy::keystore`]). PostgreSQL keeps a deleted row's bytes until `VACUUM`
//!   reclaims them (and in WAL until recycled): the deletion asks for a `VACUUM` at once, and the
//!   bytes are the key wrapped under the KEK, which is not in the database.
//! - **One KEK**: `subject_key_check` holds a fingerprint of the first wrapping key used; a
//!   front-end started with another KEK file is refused at start.

use std::sync::Arc;

use crate::events::model::EventStoreError;
use crate::events::privacy::keystore::{dek_id, DekId, KeyRows, MadeRow, StoredRow, SubjectId};
use crate::storage::postgres::{DbError, PostgresStore};

/// The rows of `subject_keys`, shared by every front-end.
pub struct PostgresKeyRows {
    store: Arc<PostgresStore>,
}

impl PostgresKeyRows {
    /// The key rows of the log whose events database `store` reaches.
    pub fn new(store: Arc<PostgresStore>) -> PostgresKeyRows {
        PostgresKeyRows { store }
    }
}

fn key_store_error(detail: String) -> EventStoreError {
    EventStoreError::Corrupt {
        what: "key-encryption key",
        detail,
    }
}

impl KeyRows for PostgresKeyRows {
    fn shared(&self) -> bool {
        true
    }

    fn check_wrapping_key(&self, fingerprint: &[u8; 32]) -> Result<(), EventStoreError> {
        let mine = fingerprint.to_vec();
        let recorded: Vec<u8> = self
            .store
            .call("checking the KEK", |mut client| async move {
                let transaction = client.transaction().await?;
                transaction
                    .execute("SET LOCAL synchronous_commit = on", &[])
                    .await?;
                transaction
                    .execute(
                        "INSERT INTO subject_key_check (id, fingerprint) VALUES (1, $1)
                     ON CONFLICT (id) DO NOTHING",
                        &[&mine],
                    )
                    .await?;
                let row = transaction
                    .query_one(
                        "SELECT fingerprint FROM subject_key_check WHERE id = 1",
                        &[],
                    )
                    .await?;
                transaction.commit().await?;
                Ok(row.get(0))
            })?;
        if recorded != fingerprint {
            return Err(key_store_error(format!(
                "the data keys in {} are wrapped under another key-encryption key than this \
                 front-end's: give every front-end of the log the same [privacy] kek_file",
                self.store.place().display()
            )));
        }
        Ok(())
    }

    fn subject_row(&self, subject: &SubjectId) -> Result<Option<StoredRow>, EventStoreError> {
        let subject = subject.to_vec();
        Ok(self
            .store
            .call("reading a subject key", |client| async move {
                let statement = client
                    .prepare_cached("SELECT dek_id, wrapped FROM subject_keys WHERE subject = $1")
                    .await?;
                let row = client.query_opt(&statement, &[&subject]).await?;
                Ok(row.map(|row| (row.get(0), row.get(1))))
            })?)
    }

    fn insert_missing(&self, made: &[MadeRow]) -> Result<Vec<StoredRow>, EventStoreError> {
        let subjects: Vec<Vec<u8>> = made.iter().map(|(subject, ..)| subject.to_vec()).collect();
        let ids: Vec<Vec<u8>> = made.iter().map(|(_, id, _)| id.to_vec()).collect();
        let wrapped: Vec<Vec<u8>> = made.iter().map(|(.., wrapped)| wrapped.clone()).collect();
        let mut stored = self
            .store
            .call("making subject keys", |mut client| async move {
                let transaction = client.transaction().await?;
                transaction
                    .execute("SET LOCAL synchronous_commit = on", &[])
                    .await?;
                transaction
                    .execute(
                        "INSERT INTO subject_keys (dek_id, subject, wrapped)
                     SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::bytea[])
                     ON CONFLICT (subject) DO NOTHING",
                        &[&ids, &subjects, &wrapped],
                    )
                    .await?;
                let rows = transaction
                    .query(
                        "SELECT subject, dek_id, wrapped FROM subject_keys WHERE subject = ANY($1)",
                        &[&subjects],
                    )
                    .await?;
                transaction.commit().await?;
                let found: std::collections::HashMap<Vec<u8>, StoredRow> = rows
                    .into_iter()
                    .map(|row| (row.get(0), (row.get(1), row.get(2))))
                    .collect();
                Ok::<_, DbError>(found)
            })?;
        made.iter()
            .map(|(subject, ..)| {
                stored.remove(subject.as_slice()).ok_or_else(|| {
                    key_store_error(
                        "a subject key just made is not in the database (shredded at once?)".into(),
                    )
                })
            })
            .collect()
    }

    fn id_row(&self, id: &DekId) -> Result<Option<StoredRow>, EventStoreError> {
        let id = id.to_vec();
        Ok(self.store.call("reading a data key", |client| async move {
            let statement = client
                .prepare_cached("SELECT subject, wrapped FROM subject_keys WHERE dek_id = $1")
                .await?;
            let row = client.query_opt(&statement, &[&id]).await?;
            Ok(row.map(|row| (row.get(0), row.get(1))))
        })?)
    }

    fn ids(&self, subject: &SubjectId) -> Result<Vec<DekId>, EventStoreError> {
        let subject = subject.to_vec();
        let ids: Vec<Vec<u8>> =
            self.store
                .call("listing a subject's keys", |client| async move {
                    let rows = client
                        .query(
                            "SELECT dek_id FROM subject_keys WHERE subject = $1",
                            &[&subject],
                        )
                        .await?;
                    Ok(rows.into_iter().map(|row| row.get(0)).collect())
                })?;
        ids.into_iter().map(dek_id).collect()
    }

    fn delete(&self, ids: &[DekId]) -> Result<usize, EventStoreError> {
        let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
        let deleted = self.store.call("destroying data keys", |mut client| async move {
            let transaction = client.transaction().await?;
            transaction
                .execute("SET LOCAL synchronous_commit = on", &[])
                .await?;
            let deleted = transaction
                .execute("DELETE FROM subject_keys WHERE dek_id = ANY($1)", &[&ids])
                .await?;
            transaction.commit().await?;
            if deleted > 0 {
                // Outside the transaction (VACUUM cannot run in one); best effort: the rows
                // are gone for every reader whatever it does.
                if let Err(error) = client.batch_execute("VACUUM subject_keys").await {
                    tracing::warn!(%error, "vacuuming destroyed data keys failed; PostgreSQL reclaims them later");
                }
            }
            Ok(deleted)
        })?;
        Ok(deleted as usize)
    }
}
