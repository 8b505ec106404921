//! [`SequenceStore`] on PostgreSQL: entries, payloads and the dedup index.
//!
//! An append is one statement: it moves `head.entry_count` from `first_index` to
//! `first_index + n` (only if it is still `first_index`: the row lock orders appenders from
//! every front-end) and inserts the batch from arrays (`UNNEST`), all in one transaction that is
//! durable when it returns. Readers ask `head` for the count and then read rows below it: a
//! batch and the count that covers it commit together, so no reader sees a torn batch.
//!
//! The append at the end, which every front-end's sequencer uses, holds the `head` row lock
//! only while its statement runs, not through the disk flush: its transaction commits with
//! `synchronous_commit` off (the lock is released as soon as the commit is in the WAL buffers),
//! and then a second, durable commit of this process's row in `flush_marks`, sent in the same
//! round trip (pipelined on the connection), waits until the WAL is on disk up to it. The WAL
//! is flushed in order, so that wait covers the append and every commit before it; PostgreSQL
//! flushes for every waiter at once, so front-ends that append together share their flushes
//! instead of taking turns at one each. Held through its flush, the lock made the log's
//! commits one after another, each a WAL flush long.
//!
//! A commit that is visible but not yet flushed (another front-end's, between its append and
//! its flush) could be lost in a crash of the server. Nothing is answered from one: this store
//! flushes before it answers entries or a duplicate hit beyond what it knows to be flushed
//! (`flushed_entries`), so an integrator never publishes, and a submitter never hears of, an
//! entry that is not durable. The entry count is read without a flush: it may count such a
//! commit, and no caller answers for an entry from the count alone (see
//! [`SequenceStore::entry_count`] below).
//!
//! The dedup index is two indexes of `entries`: by leaf hash and by the idempotency key's
//! digest, each with the index, so that the first entry of a key is found without a sort
//! ([`dedup`](super::dedup) looks them up). Two front-ends may append the same leaf at once (each looked before either appended); the
//! index then answers the first.

use std::sync::atomic::Ordering;

use super::{from_sql_int, to_sql_int, DbError, PostgresStore};
use crate::storage::{
    DedupKey, DuplicateHit, Entry, IdempotencyKey, NewEntry, SequenceStore, StoreError,
    StoreLimits, StoredPayload,
};

/// The append: `$1` first index, `$2` how many, `$3..$7` one array per column, `$8` the
/// positions (1-based) of the entries that carry a payload and `$9` those payloads. Answers
/// whether the head moved.
const APPEND: &str = "
WITH moved AS (
    UPDATE head SET entry_count = entry_count + $2
    WHERE id = 1 AND entry_count = $1
    RETURNING entry_count
), new_entries AS (
    INSERT INTO entries (idx, leaf, leaf_hash, producer, idempotency_key, key_digest, has_payload)
    SELECT $1 + batch.position - 1, batch.leaf, batch.leaf_hash, batch.producer,
           batch.idempotency_key, batch.key_digest, batch.position = ANY($8)
    FROM UNNEST($3::bytea[], $4::bytea[], $5::text[], $6::text[], $7::bytea[])
         WITH ORDINALITY AS batch(leaf, leaf_hash, producer, idempotency_key, key_digest, position)
    WHERE EXISTS (SELECT 1 FROM moved)
    RETURNING 1
), new_payloads AS (
    INSERT INTO payloads (idx, payload)
    SELECT $1 + held.position - 1, held.payload
    FROM UNNEST($8::bigint[], $9::bytea[]) AS held(position, payload)
    WHERE EXISTS (SELECT 1 FROM moved)
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM new_entries),
       (SELECT count(*) FROM new_payloads)";

/// The append at whatever end the log has: `$1` how many, `$2..$6` one array per column, `$7`
/// and `$8` the payloads as in [`APPEND`]. Answers the first index the batch got. Its commit
/// does not wait for the disk (`lazy`: `synchronous_commit` off for this transaction only):
/// [`FLUSH`] follows it.
const APPEND_AT_END: &str = "
WITH lazy AS (
    SELECT set_config('synchronous_commit', 'off', true)
), moved AS (
    UPDATE head SET entry_count = entry_count + $1 WHERE id = 1
    RETURNING entry_count - $1 AS first
), new_entries AS (
    INSERT INTO entries (idx, leaf, leaf_hash, producer, idempotency_key, key_digest, has_payload)
    SELECT moved.first + batch.position - 1, batch.leaf, batch.leaf_hash, batch.producer,
           batch.idempotency_key, batch.key_digest, batch.position = ANY($7)
    FROM moved, UNNEST($2::bytea[], $3::bytea[], $4::text[], $5::text[], $6::bytea[])
         WITH ORDINALITY AS batch(leaf, leaf_hash, producer, idempotency_key, key_digest, position)
    RETURNING 1
), new_payloads AS (
    INSERT INTO payloads (idx, payload)
    SELECT moved.first + held.position - 1, held.payload
    FROM moved, UNNEST($7::bigint[], $8::bytea[]) AS held(position, payload)
    RETURNING 1
)
SELECT (SELECT first FROM moved), (SELECT count(*) FROM new_entries),
       (SELECT count(*) FROM new_payloads), (SELECT count(*) FROM lazy)";

/// A durable commit of this process's row (`$1` its slot): when it returns, the WAL is on disk
/// up to it, and so is every commit made before it, by any connection.
const FLUSH: &str = "
INSERT INTO flush_marks (slot, flushes) VALUES ($1, 1)
ON CONFLICT (slot) DO UPDATE SET flushes = flush_marks.flushes + 1";

/// Waits until every commit made before this call is on disk (see [`FLUSH`]).
async fn flush(client: &deadpool_postgres::Object, slot: i32) -> Result<(), DbError> {
    let statement = client.prepare_cached(FLUSH).await?;
    client.execute(&statement, &[&slot]).await?;
    Ok(())
}

/// A batch as the arrays an append statement takes, one per column.
struct Columns<'a> {
    leaves: Vec<&'a [u8]>,
    leaf_hashes: Vec<&'a [u8]>,
    producers: Vec<Option<&'a str>>,
    keys: Vec<Option<&'a str>>,
    digests: Vec<Option<&'a [u8]>>,
    /// The 1-based positions of the entries that carry a payload, and those payloads.
    positions: Vec<i64>,
    payloads: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    fn of(entries: &'a [NewEntry]) -> Columns<'a> {
        let (positions, payloads) = entries
            .iter()
            .enumerate()
            .filter_map(|(position, entry)| Some((position as i64 + 1, entry.payload()?)))
            .unzip();
        Columns {
            leaves: entries.iter().map(NewEntry::leaf).collect(),
            leaf_hashes: entries
                .iter()
                .map(|entry| entry.leaf_hash().as_bytes().as_slice())
                .collect(),
            producers: entries
                .iter()
                .map(|entry| entry.idempotency().map(IdempotencyKey::producer))
                .collect(),
            keys: entries
                .iter()
                .map(|entry| entry.idempotency().map(IdempotencyKey::key))
                .collect(),
            digests: entries
                .iter()
                .map(|entry| entry.idempotency().map(|key| key.digest().as_slice()))
                .collect(),
            positions,
            payloads,
        }
    }
}

pub(crate) async fn entry_count(client: &deadpool_postgres::Object) -> Result<u64, DbError> {
    let statement = client
        .prepare_cached("SELECT entry_count FROM head WHERE id = 1")
        .await?;
    let count: i64 = client.query_one(&statement, &[]).await?.get(0);
    // The schema keeps it non-negative.
    Ok(count.max(0) as u64)
}

impl PostgresStore {
    /// Appends `entries` at the end of the log, wherever it is when the statement runs, and
    /// answers the index of the first: the same all-or-nothing, durable append as
    /// [`SequenceStore::append_entries`], for a front-end that does not know the end (another
    /// may have appended since it last looked). Appends from every front-end wait for each
    /// other on the row lock of `head` instead of failing with [`StoreError::NotAtEnd`].
    pub fn append_at_end(&self, entries: &[NewEntry]) -> Result<u64, StoreError> {
        self.limits.check_batch(entries)?;
        if entries.is_empty() {
            return self.read_entry_count();
        }
        let added = entries.len() as i64;
        let columns = Columns::of(entries);
        let payload_count = columns.payloads.len() as i64;
        let place = &self.place;
        let slot = self.flush_slot;
        let (first, inserted, held) = self.call("appending entries", |client| async move {
            let statement = client.prepare_cached(APPEND_AT_END).await?;
            let flush_statement = client.prepare_cached(FLUSH).await?;
            // The append and the flush go out together (pipelined: one round trip, not two);
            // the server runs them in order on this connection, so the flush's durable commit
            // comes after the append's lazy one and covers it. A failed append fails the call
            // whatever the flush did.
            let append_parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
                &added,
                &columns.leaves,
                &columns.leaf_hashes,
                &columns.producers,
                &columns.keys,
                &columns.digests,
                &columns.positions,
                &columns.payloads,
            ];
            let flush_parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&slot];
            let (appended, flushed) = tokio::join!(
                client.query_one(&statement, &append_parameters),
                client.execute(&flush_statement, &flush_parameters),
            );
            let row = appended?;
            flushed?;
            let first: Option<i64> = row.get(0);
            let first = first.ok_or_else(|| {
                StoreError::corrupt(place, 0, "the head row of the log is missing")
            })?;
            let (inserted, held): (i64, i64) = (row.get(1), row.get(2));
            Ok((
                from_sql_int(first, place, "the first index")?,
                inserted,
                held,
            ))
        })?;
        if inserted != added || held != payload_count {
            return Err(StoreError::corrupt(
                &self.place,
                first,
                format!(
                    "an append of {added} entries and {payload_count} payloads inserted {inserted} and {held}"
                ),
            ));
        }
        // Every entry below the batch's end committed before the batch took the head's lock,
        // so the flush covered them too.
        self.known_entries
            .fetch_max(first + added as u64, Ordering::Relaxed);
        self.flushed_entries
            .fetch_max(first + added as u64, Ordering::Relaxed);
        Ok(first)
    }

    /// The number of entries, all of them on disk: the count is read first, then a flush
    /// makes durable every commit it saw (another front-end's append may be committed and not
    /// yet flushed).
    pub(super) fn read_flushed_entry_count(&self) -> Result<u64, StoreError> {
        let slot = self.flush_slot;
        let count = self.call("reading the entry count", |client| async move {
            let count = entry_count(&client).await?;
            flush(&client, slot).await?;
            Ok(count)
        })?;
        self.known_entries.fetch_max(count, Ordering::Relaxed);
        self.flushed_entries.fetch_max(count, Ordering::Relaxed);
        Ok(count)
    }

    /// Makes sure the entries below `end` are on disk before they are answered for.
    /// Entries `[start, start + count)`, all of which must exist, in one query; with
    /// `payloads`, each with its payload (`Some(payload)`), else `None` beside each.
    #[allow(clippy::type_complexity)]
    fn read_range(
        &self,
        start: u64,
        count: u64,
        payloads: bool,
    ) -> Result<Vec<(Entry, Option<Option<StoredPayload>>)>, StoreError> {
        match payloads {
            true => self.limits.check_read_with_payloads(count)?,
            false => self.limits.check_read(count)?,
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let out_of_range = |available: u64| StoreError::OutOfRange {
            what: "entries".into(),
            start,
            count,
            available,
        };
        let (Some(first), Some(end)) = (
            to_sql_int(start),
            start.checked_add(count).and_then(to_sql_int),
        ) else {
            return Err(out_of_range(self.read_entry_count()?));
        };
        self.flushed_through(start.saturating_add(count))?;
        let max_payload = self.limits.max_payload_bytes;
        let place = &self.place;
        let rows = self.call("reading entries", |client| async move {
            let statement = client
                .prepare_cached(if payloads {
                    "SELECT e.idx, e.leaf, e.producer, e.idempotency_key, e.has_payload, p.payload
                     FROM entries e LEFT JOIN payloads p ON p.idx = e.idx
                     WHERE e.idx >= $1 AND e.idx < $2 ORDER BY e.idx"
                } else {
                    "SELECT idx, leaf, producer, idempotency_key FROM entries
                     WHERE idx >= $1 AND idx < $2 ORDER BY idx"
                })
                .await?;
            let rows = client.query(&statement, &[&first, &end]).await?;
            let mut entries = Vec::with_capacity(rows.len());
            for (offset, row) in rows.iter().enumerate() {
                let entry = entry_of(row, start + offset as u64, place)?;
                let payload = match payloads {
                    true => Some(payload_of(
                        row.get(4),
                        row.get(5),
                        max_payload,
                        place,
                        entry.index,
                    )?),
                    false => None,
                };
                entries.push((entry, payload));
            }
            Ok(entries)
        })?;
        if (rows.len() as u64) < count {
            return Err(out_of_range(self.read_entry_count()?));
        }
        Ok(rows)
    }

    pub(super) fn flushed_through(&self, end: u64) -> Result<(), StoreError> {
        if self.flushed_entries.load(Ordering::Relaxed) >= end {
            return Ok(());
        }
        self.read_flushed_entry_count().map(drop)
    }

    fn not_at_end(&self, first_index: u64) -> StoreError {
        match self.read_entry_count() {
            Ok(expected) => StoreError::NotAtEnd {
                expected,
                found: first_index,
            },
            Err(error) => error,
        }
    }
}

impl SequenceStore for PostgresStore {
    fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    /// The entries the database has committed, read without a flush; if it cannot be asked,
    /// the most this store ever saw (which appends cannot build on while the database is away:
    /// they fail).
    ///
    /// The count may include another front-end's append that is committed and not yet on disk
    /// (between its lazy commit and its flush, see the [module](self) documentation): a crash
    /// of the database could still take those entries away. Nothing is answered or published
    /// from the count alone, which is why no flush is paid here:
    /// - the integrator grows its tree only from entries it read with
    ///   [`read_entries`](SequenceStore::read_entries) (which flushes before answering beyond
    ///   what is known to be on disk) or from this front-end's own flushed appends, so a
    ///   checkpoint never covers an entry that is not durable;
    /// - the events database indexes the entries below the count and applies the admin events
    ///   among them (holds, erasure marks) only after the durable commit of its watermark,
    ///   which flushes the WAL past every commit it read, so an admin action or a hold check
    ///   never rests on an entry that could be lost;
    /// - the bucket bounds each tree level by the count and checks a checkpoint against it
    ///   before publishing: the hashes and the checkpoint come from durable entries anyway;
    /// - the sequencer takes it as the durable size when it starts (its integrator reads the
    ///   entries back as above), the publication's lag metric and `cairn-log migrate` only
    ///   compare it.
    ///
    /// A caller that must answer for the entries below the count reads them, or asks for
    /// [`heal`](SequenceStore::heal), which flushes.
    fn entry_count(&self) -> u64 {
        match self.read_entry_count() {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(%error, "reading the entry count from PostgreSQL failed; answering the last one seen");
                self.known_entries.load(Ordering::Relaxed)
            }
        }
    }

    fn append_entries(&self, first_index: u64, entries: &[NewEntry]) -> Result<(), StoreError> {
        self.limits.check_batch(entries)?;
        let (Some(first), Some(count)) = (
            to_sql_int(first_index),
            first_index
                .checked_add(entries.len() as u64)
                .and_then(to_sql_int),
        ) else {
            return Err(self.not_at_end(first_index));
        };
        let added = count - first;
        if entries.is_empty() {
            let now = self.read_entry_count()?;
            return if now == first_index {
                Ok(())
            } else {
                Err(StoreError::NotAtEnd {
                    expected: now,
                    found: first_index,
                })
            };
        }
        let columns = Columns::of(entries);
        let payload_count = columns.payloads.len() as i64;
        let (moved, inserted, held) = self.call("appending entries", |client| async move {
            let statement = client.prepare_cached(APPEND).await?;
            let row = client
                .query_one(
                    &statement,
                    &[
                        &first,
                        &added,
                        &columns.leaves,
                        &columns.leaf_hashes,
                        &columns.producers,
                        &columns.keys,
                        &columns.digests,
                        &columns.positions,
                        &columns.payloads,
                    ],
                )
                .await?;
            let (moved, inserted, held): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            Ok((moved, inserted, held))
        })?;
        if moved == 0 {
            return Err(self.not_at_end(first_index));
        }
        if inserted != added || held != payload_count {
            // The statement is one transaction; this would be a broken server, and the rows
            // are already committed.
            return Err(StoreError::corrupt(
                &self.place,
                first_index,
                format!(
                    "an append of {added} entries and {payload_count} payloads inserted {inserted} and {held}"
                ),
            ));
        }
        self.known_entries
            .fetch_max(count as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Nothing a failed append leaves needs undoing (it was one transaction): healed means the
    /// database answers again, so that the count read next is the truth.
    fn heal(&self) -> Result<(), StoreError> {
        self.read_flushed_entry_count().map(drop)
    }

    /// This store writes nothing in the background.
    fn background_failures(&self) -> (Option<String>, u64) {
        (None, 0)
    }

    /// Several front-ends append to one database.
    fn shared_by_front_ends(&self) -> bool {
        true
    }

    /// The database places the batch ([`PostgresStore::append_at_end`]).
    fn append_at_end(&self, entries: &[NewEntry]) -> Result<u64, StoreError> {
        PostgresStore::append_at_end(self, entries)
    }

    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Entry>, StoreError> {
        self.read_range(start, count, false)
            .map(|rows| rows.into_iter().map(|(entry, _)| entry).collect())
    }

    fn read_payload(&self, index: u64) -> Result<Option<StoredPayload>, StoreError> {
        let out_of_range = |available: u64| StoreError::OutOfRange {
            what: "entries".into(),
            start: index,
            count: 1,
            available,
        };
        let Some(position) = to_sql_int(index) else {
            return Err(out_of_range(self.read_entry_count()?));
        };
        let max_payload = self.limits.max_payload_bytes;
        let place = &self.place;
        let found = self.call("reading a payload", |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT e.has_payload, p.payload FROM entries e
                     LEFT JOIN payloads p ON p.idx = e.idx WHERE e.idx = $1",
                )
                .await?;
            let Some(row) = client.query_opt(&statement, &[&position]).await? else {
                return Ok(None);
            };
            Ok(Some(payload_of(
                row.get(0),
                row.get(1),
                max_payload,
                place,
                index,
            )?))
        })?;
        found.ok_or_else(|| match self.read_entry_count() {
            Ok(available) => out_of_range(available),
            Err(error) => error,
        })
    }

    /// One query for the entries and their payloads ([`PostgresStore::read_range`]).
    fn read_entries_with_payloads(
        &self,
        start: u64,
        count: u64,
    ) -> Result<Vec<(Entry, Option<StoredPayload>)>, StoreError> {
        self.read_range(start, count, true).map(|rows| {
            rows.into_iter()
                .map(|(entry, payload)| (entry, payload.flatten()))
                .collect()
        })
    }

    /// Deletes the payload's row. PostgreSQL keeps a deleted row's bytes until `VACUUM`
    /// reclaims its space (and in its write-ahead log until that is recycled), so the erasure
    /// asks for a `VACUUM` of the table at once; an operator who must prove erasure also keeps
    /// WAL archives and backups in mind.
    fn erase_payload(&self, index: u64) -> Result<bool, StoreError> {
        // Out of range, and damage, are refused before anything is deleted.
        if self.read_payload(index)?.is_none() {
            return Ok(false);
        }
        let position = to_sql_int(index).expect("read_payload checked the index");
        self.call("erasing a payload", |client| async move {
            let deleted = client
                .execute("DELETE FROM payloads WHERE idx = $1", &[&position])
                .await?;
            if deleted > 0 {
                // Outside any transaction: VACUUM cannot run in one. Best effort: the row is
                // gone for every reader whatever it does.
                if let Err(error) = client.batch_execute("VACUUM payloads").await {
                    tracing::warn!(%error, index, "vacuuming erased payloads failed; PostgreSQL reclaims them later");
                }
            }
            Ok(deleted > 0)
        })
    }

    /// One statement per kind of key for all of `keys` ([`dedup`](super::dedup)).
    fn find_duplicates(
        &self,
        keys: &[DedupKey<'_>],
    ) -> Result<Vec<Option<DuplicateHit>>, StoreError> {
        self.look_up_duplicates(keys)
    }
}

/// The entry of a row `(idx, leaf, producer, idempotency_key, …)` that should hold entry
/// `expected` (rows come in index order; a gap below the count is damage).
fn entry_of(
    row: &tokio_postgres::Row,
    expected: u64,
    place: &std::path::Path,
) -> Result<Entry, DbError> {
    let index = from_sql_int(row.get(0), place, "an entry index")?;
    if index != expected {
        return Err(StoreError::corrupt(
            place,
            expected,
            format!("entry {expected} is missing (found {index} in its place)"),
        )
        .into());
    }
    let producer: Option<String> = row.get(2);
    let key: Option<String> = row.get(3);
    let idempotency = match (producer, key) {
        (Some(producer), Some(key)) => {
            Some(IdempotencyKey::new(producer, key).map_err(|error| {
                StoreError::corrupt(place, index, format!("its idempotency key: {error}"))
            })?)
        }
        _ => None,
    };
    Ok(Entry {
        index,
        leaf: row.get(1),
        idempotency,
    })
}

/// The payload of entry `index` from its row's `has_payload` flag and the `payloads` row
/// joined to it (none: never had one, or erased).
fn payload_of(
    has_payload: bool,
    payload: Option<Vec<u8>>,
    max_payload: u32,
    place: &std::path::Path,
    index: u64,
) -> Result<Option<StoredPayload>, DbError> {
    match (has_payload, payload) {
        (false, None) => Ok(None),
        (true, None) => Ok(Some(StoredPayload::Erased)),
        (true, Some(bytes)) if bytes.len() as u64 <= u64::from(max_payload) => {
            Ok(Some(StoredPayload::Held(bytes)))
        }
        (true, Some(bytes)) => Err(StoreError::corrupt(
            place,
            index,
            format!(
                "its payload is {} bytes, over the limit {max_payload}",
                bytes.len()
            ),
        )
        .into()),
        (false, Some(_)) => Err(StoreError::corrupt(
            place,
            index,
            "a payload beside an entry appended without one",
        )
        .into()),
    }
}
