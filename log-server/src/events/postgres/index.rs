//! The events index of the scaled backend ([`EventIndexStore`] over PostgreSQL): one `events`
//! table shared by every front-end of the log, so that an event submitted to any front-end is
//! found through all of them.
//!
//! One row per event: its log index (the key), its ID, time, receive time and the indexed
//! identifiers, each identifier with an index `(value, idx)` so that a query walks one posting
//! in log order. A query drives on its most selective equality (actor, then resource, then
//! action; else the log order itself), reads candidates in chunks and checks the rest of the
//! filter here, so it examines at most `max_scan` candidates as the trait asks.
//!
//! # Several front-ends, one index
//!
//! Every front-end inserts the events it sequenced, right after the sequencer answers and before
//! the submitter is answered (`INSERT … ON CONFLICT (idx) DO NOTHING`): once a submission is
//! acknowledged by one front-end, every front-end finds it. These inserts commit without
//! waiting for the disk (the events pool runs with `synchronous_commit` off): the index is
//! derived from the log, and durability comes at the watermark.
//!
//! The **watermark** (`events_watermark.below`, one row) promises that every event of the log
//! below it has its row, durably. It is moved only by [`flush`](EventIndexStore::flush), and
//! flush does not trust the front-ends to have inserted their events: it checks the log itself.
//! The log's entries are in the same schema, so flush asks PostgreSQL for every entry in
//! `[watermark, n)` that may be an event (its leaf starts with `{`) and has no row, derives
//! the rows of those from the entries (and the contents records beside them) exactly as the
//! front-end that sequenced them would have, inserts them, and moves the watermark to `n` in the
//! same transaction, with `synchronous_commit` on. Why this is enough:
//!
//! - A row depends only on its entry, so whoever writes it (the sequencing front-end, or a
//!   flush) writes the same row, and the second write does nothing.
//! - Entries below the log's end are all committed (an append commits its entries and moves
//!   `head` in one transaction), so the check sees every event below `n`.
//! - The watermark's commit flushes the WAL up to itself, and with it every earlier commit,
//!   including the lazy inserts of every front-end that the check saw: nothing below the
//!   watermark can be lost by a crash of PostgreSQL.
//! - A front-end that dies between sequencing an event and inserting its row leaves a gap that
//!   the next flush of **any** front-end fills: each front-end flushes in the background every
//!   [`FLUSH_INTERVAL`], the events database flushes before it reads holds and erasure marks,
//!   and a process that opens the database flushes up to the log's end before it serves
//!   (`EventStore::open_shared`). So `begin` needs to track nothing here: a submission still in
//!   flight is in the log before it can be below any `n` a flush is given, and the flush
//!   inserts it itself if its front-end has not yet.
//!
//! Two flushes at once insert the same rows (the second does nothing) and move the watermark
//! with `GREATEST`, so it never goes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_postgres::Row;

use crate::events::model::{
    EventIndexStore, EventStoreError, EventSummary, InFlightSubmission, QueryFilter, QueryPage,
};
use crate::events::store::summary_of_entry;
use crate::storage::postgres::{entry_count, from_sql_int, DbError, PostgresStore};
use crate::storage::{StoreError, StoredPayload};

/// How often each front-end moves the watermark up to the log's end in the background.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// The most log indices one flush transaction checks (and so the most rows it inserts).
const FLUSH_WINDOW: u64 = 2048;
/// The most candidates one query statement reads.
const QUERY_CHUNK: usize = 1000;

/// The columns of a row, in the order [`summary_of_row`] reads them.
const COLUMNS: &str = "idx, event_id, time_secs, time_subsec, received_secs, received_subsec, \
                       actor_id, resource_type, resource_id, action, has_payload";

/// The events index in PostgreSQL; see the [module](self) documentation.
pub struct PostgresEventIndex {
    inner: Arc<Inner>,
    /// The background flusher: stopped (and joined) by `close` or drop.
    flusher: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

struct Inner {
    store: Arc<PostgresStore>,
    /// The watermark as last read or moved here.
    watermark: AtomicU64,
}

impl PostgresEventIndex {
    /// The index of the log whose events database `store` reaches (a store opened with
    /// [`PostgresStore::open_for_events`]); reads the watermark and starts the background
    /// flusher. Blocking.
    pub fn open(store: Arc<PostgresStore>) -> Result<PostgresEventIndex, EventStoreError> {
        let inner = Arc::new(Inner {
            store,
            watermark: AtomicU64::new(0),
        });
        let watermark = inner.read_watermark()?;
        inner.watermark.store(watermark, Ordering::Relaxed);
        let (stop, stopped) = mpsc::channel::<()>();
        let background = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("cairn-events-flush".into())
            .spawn(move || background.flush_in_background(&stopped))
            .map_err(|error| EventStoreError::Corrupt {
                what: "events index",
                detail: format!("starting the background flusher: {error}"),
            })?;
        Ok(PostgresEventIndex {
            inner,
            flusher: Mutex::new(Some((stop, thread))),
        })
    }

    fn stop_flusher(&self) {
        if let Some((stop, thread)) = self.flusher.lock().take() {
            drop(stop);
            if thread.join().is_err() {
                tracing::error!("the events index's background flusher panicked");
            }
        }
    }
}

impl Drop for PostgresEventIndex {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

impl Inner {
    fn read_watermark(&self) -> Result<u64, StoreError> {
        let place = self.store.place().to_path_buf();
        self.store
            .call("reading the events watermark", |client| async move {
                let row = client
                    .query_one("SELECT below FROM events_watermark WHERE id = 1", &[])
                    .await?;
                Ok(from_sql_int(row.get(0), &place, "the events watermark")?)
            })
    }

    /// Flushes up to the log's end every [`FLUSH_INTERVAL`] until `stopped` is dropped; one
    /// log line per run of failures.
    fn flush_in_background(&self, stopped: &mpsc::Receiver<()>) {
        let mut failing = false;
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(FLUSH_INTERVAL) {
            let outcome = self
                .store
                .call("reading the entry count", |client| async move {
                    entry_count(&client).await
                })
                .map_err(EventStoreError::from)
                .and_then(|end| self.flush(end));
            match outcome {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("the events index's watermark moves again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "moving the events index's watermark failed; retried every {} s", FLUSH_INTERVAL.as_secs());
                }
                Err(_) => {}
            }
        }
    }

    /// See [`EventIndexStore::flush`] and the [module](self) documentation.
    fn flush(&self, durable_size: u64) -> Result<(), EventStoreError> {
        let mut below = self.read_watermark()?;
        while below < durable_size {
            let end = durable_size.min(below.saturating_add(FLUSH_WINDOW));
            self.fill_and_move(below, end)?;
            below = end;
        }
        self.watermark.fetch_max(below, Ordering::Relaxed);
        Ok(())
    }

    /// Inserts the rows of the events in `[start, end)` that have none, and moves the watermark
    /// to `end`, in one durable transaction.
    fn fill_and_move(&self, start: u64, end: u64) -> Result<(), EventStoreError> {
        let (first, last) = (sql_index(start)?, sql_index(end)?);
        let missing = self
            .store
            .call("finding unindexed events", |client| async move {
                let statement = client
                    .prepare_cached(
                        "SELECT e.idx, e.leaf, e.has_payload, p.payload FROM entries e
                     LEFT JOIN payloads p ON p.idx = e.idx
                     WHERE e.idx >= $1 AND e.idx < $2
                       AND substring(e.leaf FROM 1 FOR 1) = '\\x7b'::bytea
                       AND NOT EXISTS (SELECT 1 FROM events v WHERE v.idx = e.idx)
                     ORDER BY e.idx",
                    )
                    .await?;
                Ok(client.query(&statement, &[&first, &last]).await?)
            })?;
        let place = self.store.place().to_path_buf();
        let mut rows = Vec::with_capacity(missing.len());
        for row in missing {
            let index = from_sql_int(row.get(0), &place, "an entry index")?;
            let leaf: Vec<u8> = row.get(1);
            let has_payload: bool = row.get(2);
            let payload: Option<Vec<u8>> = row.get(3);
            let stored = match (has_payload, payload) {
                (false, _) => None,
                (true, None) => Some(StoredPayload::Erased),
                (true, Some(bytes)) => Some(StoredPayload::Held(bytes)),
            };
            if let Some(summary) = summary_of_entry(index, &leaf, || Ok(stored))? {
                rows.push(summary);
            }
        }
        let columns = Columns::of(&rows)?;
        self.store
            .call("moving the events watermark", |mut client| async move {
                let transaction = client.transaction().await?;
                transaction
                    .execute("SET LOCAL synchronous_commit = on", &[])
                    .await?;
                if !columns.idx.is_empty() {
                    columns.insert(&transaction).await?;
                }
                transaction
                    .execute(
                        "UPDATE events_watermark SET below = GREATEST(below, $1) WHERE id = 1",
                        &[&last],
                    )
                    .await?;
                transaction.commit().await?;
                Ok(())
            })?;
        if !rows.is_empty() {
            tracing::info!(
                from = start,
                to = end,
                indexed = rows.len(),
                "events index caught up with the log"
            );
        }
        Ok(())
    }
}

/// Rows to insert, one array per column (`UNNEST`).
struct Columns {
    idx: Vec<i64>,
    event_id: Vec<String>,
    time_secs: Vec<i64>,
    time_subsec: Vec<i32>,
    received_secs: Vec<i64>,
    received_subsec: Vec<i32>,
    actor_id: Vec<String>,
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    action: Vec<String>,
    has_payload: Vec<bool>,
}

impl Columns {
    fn of(summaries: &[EventSummary]) -> Result<Columns, EventStoreError> {
        let mut columns = Columns {
            idx: Vec::with_capacity(summaries.len()),
            event_id: Vec::with_capacity(summaries.len()),
            time_secs: Vec::with_capacity(summaries.len()),
            time_subsec: Vec::with_capacity(summaries.len()),
            received_secs: Vec::with_capacity(summaries.len()),
            received_subsec: Vec::with_capacity(summaries.len()),
            actor_id: Vec::with_capacity(summaries.len()),
            resource_type: Vec::with_capacity(summaries.len()),
            resource_id: Vec::with_capacity(summaries.len()),
            action: Vec::with_capacity(summaries.len()),
            has_payload: Vec::with_capacity(summaries.len()),
        };
        for summary in summaries {
            let (time_secs, time_subsec) = split_nanos(summary.time_nanos)?;
            let (received_secs, received_subsec) = split_nanos(summary.received_nanos)?;
            columns.idx.push(sql_index(summary.index)?);
            columns.event_id.push(summary.event_id.clone());
            columns.time_secs.push(time_secs);
            columns.time_subsec.push(time_subsec);
            columns.received_secs.push(received_secs);
            columns.received_subsec.push(received_subsec);
            columns.actor_id.push(summary.actor_id.clone());
            columns.resource_type.push(summary.resource_type.clone());
            columns.resource_id.push(summary.resource_id.clone());
            columns.action.push(summary.action.clone());
            columns.has_payload.push(summary.has_payload);
        }
        Ok(columns)
    }

    /// Inserts the rows that are not there yet.
    async fn insert(&self, client: &impl deadpool_postgres::GenericClient) -> Result<u64, DbError> {
        let statement = client
            .prepare_cached(&format!(
                "INSERT INTO events ({COLUMNS})
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::integer[],
                                      $5::bigint[], $6::integer[], $7::text[], $8::text[],
                                      $9::text[], $10::text[], $11::boolean[])
                 ON CONFLICT (idx) DO NOTHING"
            ))
            .await?;
        Ok(client
            .execute(
                &statement,
                &[
                    &self.idx,
                    &self.event_id,
                    &self.time_secs,
                    &self.time_subsec,
                    &self.received_secs,
                    &self.received_subsec,
                    &self.actor_id,
                    &self.resource_type,
                    &self.resource_id,
                    &self.action,
                    &self.has_payload,
                ],
            )
            .await?)
    }
}

/// A log index as a `bigint`.
fn sql_index(index: u64) -> Result<i64, EventStoreError> {
    i64::try_from(index).map_err(|_| EventStoreError::Corrupt {
        what: "log index",
        detail: format!("{index} is beyond PostgreSQL's bigint"),
    })
}

/// Unix nanoseconds as whole seconds and the nanoseconds within the second.
fn split_nanos(nanos: i128) -> Result<(i64, i32), EventStoreError> {
    let seconds =
        i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| EventStoreError::Corrupt {
            what: "event time",
            detail: format!("{nanos} ns is out of range"),
        })?;
    // Below 10⁹: fits.
    Ok((seconds, nanos.rem_euclid(1_000_000_000) as i32))
}

/// The summary in a row of `events`, its columns as [`COLUMNS`] lists them.
fn summary_of_row(row: &Row, place: &std::path::Path) -> Result<EventSummary, StoreError> {
    let nanos = |secs: i64, subsec: i32| i128::from(secs) * 1_000_000_000 + i128::from(subsec);
    Ok(EventSummary {
        index: from_sql_int(row.get(0), place, "an event's index")?,
        event_id: row.get(1),
        time_nanos: nanos(row.get(2), row.get(3)),
        received_nanos: nanos(row.get(4), row.get(5)),
        actor_id: row.get(6),
        resource_type: row.get(7),
        resource_id: row.get(8),
        action: row.get(9),
        has_payload: row.get(10),
    })
}

/// The equality a query walks in log order, and its value.
fn driving(filter: &QueryFilter) -> Option<(&'static str, String)> {
    if let Some(actor) = &filter.actor {
        Some(("actor_id", actor.clone()))
    } else if let Some(resource) = &filter.resource {
        Some(("resource_id", resource.clone()))
    } else {
        filter
            .action
            .as_ref()
            .map(|action| ("action", action.clone()))
    }
}

impl PostgresEventIndex {
    /// Up to `count` candidates after `after` and below `below`, on `driving`'s posting (or in
    /// log order), in log order.
    fn candidates(
        &self,
        driving: &Option<(&'static str, String)>,
        after: i64,
        below: i64,
        count: usize,
    ) -> Result<Vec<EventSummary>, EventStoreError> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let place = self.inner.store.place().to_path_buf();
        let driving = driving.clone();
        Ok(self
            .inner
            .store
            .call("querying events", |client| async move {
                let rows = match &driving {
                    Some((column, value)) => {
                        // `column` is one of three fixed names (see `driving`).
                        let statement = client
                            .prepare_cached(&format!(
                                "SELECT {COLUMNS} FROM events
                             WHERE {column} = $4 AND idx > $1 AND idx < $2
                             ORDER BY idx LIMIT $3"
                            ))
                            .await?;
                        client
                            .query(&statement, &[&after, &below, &count, value])
                            .await?
                    }
                    None => {
                        let statement = client
                            .prepare_cached(&format!(
                                "SELECT {COLUMNS} FROM events WHERE idx > $1 AND idx < $2
                             ORDER BY idx LIMIT $3"
                            ))
                            .await?;
                        client.query(&statement, &[&after, &below, &count]).await?
                    }
                };
                rows.iter()
                    .map(|row| summary_of_row(row, &place).map_err(DbError::from))
                    .collect::<Result<Vec<_>, DbError>>()
            })?)
    }
}

impl EventIndexStore for PostgresEventIndex {
    fn watermark(&self) -> u64 {
        self.inner.watermark.load(Ordering::Relaxed)
    }

    /// Nothing to track: a flush checks the log itself (see the [module](self) documentation).
    fn begin(&self, _durable_size: u64) -> InFlightSubmission {
        InFlightSubmission::new(())
    }

    /// Never: inserts are written at once, nothing queues in memory.
    fn overloaded(&self) -> bool {
        false
    }

    fn insert(&self, summary: EventSummary, _durable_size: u64) -> Result<(), EventStoreError> {
        let columns = Columns::of(std::slice::from_ref(&summary))?;
        self.inner
            .store
            .call("indexing an event", |client| async move {
                columns.insert(&client).await
            })?;
        Ok(())
    }

    fn flush(&self, durable_size: u64) -> Result<(), EventStoreError> {
        self.inner.flush(durable_size)
    }

    fn close(&self) {
        self.stop_flusher();
    }

    fn find(&self, event_id: &str) -> Result<Option<EventSummary>, EventStoreError> {
        let place = self.inner.store.place().to_path_buf();
        let event_id = event_id.to_string();
        Ok(self
            .inner
            .store
            .call("finding an event", |client| async move {
                let statement = client
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM events WHERE event_id = $1 ORDER BY idx LIMIT 1"
                    ))
                    .await?;
                match client.query_opt(&statement, &[&event_id]).await? {
                    Some(row) => Ok(Some(summary_of_row(&row, &place)?)),
                    None => Ok(None),
                }
            })?)
    }

    fn summary(&self, index: u64) -> Result<Option<EventSummary>, EventStoreError> {
        let Ok(position) = i64::try_from(index) else {
            return Ok(None);
        };
        let place = self.inner.store.place().to_path_buf();
        Ok(self
            .inner
            .store
            .call("reading an event", |client| async move {
                let statement = client
                    .prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE idx = $1"))
                    .await?;
                match client.query_opt(&statement, &[&position]).await? {
                    Some(row) => Ok(Some(summary_of_row(&row, &place)?)),
                    None => Ok(None),
                }
            })?)
    }

    fn query(
        &self,
        filter: &QueryFilter,
        limit: usize,
        max_scan: usize,
    ) -> Result<QueryPage, EventStoreError> {
        let limit = limit.max(1);
        let max_scan = max_scan.max(1);
        let driving = driving(filter);
        let mut after = filter
            .after
            .map_or(-1, |after| i64::try_from(after).unwrap_or(i64::MAX));
        let below = filter
            .below
            .map_or(i64::MAX, |below| i64::try_from(below).unwrap_or(i64::MAX));
        let mut events = Vec::new();
        let mut scanned = 0usize;
        loop {
            let asked = (max_scan - scanned).min(QUERY_CHUNK.max(limit + 1));
            let candidates = self.candidates(&driving, after, below, asked)?;
            let last_chunk = candidates.len() < asked;
            let count = candidates.len();
            for (position, candidate) in candidates.into_iter().enumerate() {
                scanned += 1;
                after = sql_index(candidate.index)?;
                if filter.matches(&candidate) {
                    let index = candidate.index;
                    events.push(candidate);
                    if events.len() == limit {
                        let at_end = last_chunk && position + 1 == count;
                        return Ok(QueryPage {
                            events,
                            next_after: (!at_end).then_some(index),
                        });
                    }
                }
            }
            if last_chunk {
                return Ok(QueryPage {
                    events,
                    next_after: None,
                });
            }
            if scanned >= max_scan {
                return Ok(QueryPage {
                    events,
                    next_after: u64::try_from(after).ok(),
                });
            }
        }
    }

    fn payload_events(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError> {
        let limit = limit.max(1);
        let after = after.map_or(-1, |after| i64::try_from(after).unwrap_or(i64::MAX));
        let asked = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let place = self.inner.store.place().to_path_buf();
        let mut events =
            self.inner
                .store
                .call("listing events with payloads", |client| async move {
                    let statement = client
                        .prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM events WHERE has_payload AND idx > $1
                         ORDER BY idx LIMIT $2"
                        ))
                        .await?;
                    let rows = client.query(&statement, &[&after, &asked]).await?;
                    rows.iter()
                        .map(|row| summary_of_row(row, &place).map_err(DbError::from))
                        .collect::<Result<Vec<_>, DbError>>()
                })?;
        let next_after = if events.len() > limit {
            events.truncate(limit);
            events.last().map(|summary| summary.index)
        } else {
            None
        };
        Ok(QueryPage { events, next_after })
    }
}
