//! The tables of one log, created on first open and checked on every open.
//!
//! The schema carries its version in `meta`. A store opens a schema of its own version, creates
//! one where there is none, and refuses a newer one (written by a newer cairn-log, whose rows it
//! might misread) rather than guess. Opening takes a transaction-scoped advisory lock, so that
//! front-ends starting together create the tables once.
//!
//! Version 1 holds the log (entries, payloads, state, the lease); version 2 adds the events
//! database of the scaled backend ([`super::events`], [`super::keys`]): the events index, its
//! watermark and the data subjects' keys; version 3 adds `flush_marks`, the rows whose
//! durable commits make the log's lazily committed appends durable ([`super::sequence`]).

use super::DbError;
use crate::storage::StoreError;

/// The version of the tables below. A change to them adds a step to [`MIGRATIONS`] and raises
/// this.
pub const SCHEMA_VERSION: i64 = 3;

/// The advisory lock key under which schemas are created ("cairnpg1" as a number).
const OPEN_LOCK: i64 = 0x6361_6972_6e70_6731;

/// What takes a schema from version `n` to `n + 1`, at position `n`. Version 0 is an empty
/// schema.
const MIGRATIONS: [&str; 3] = ["
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE head (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    entry_count BIGINT NOT NULL CHECK (entry_count >= 0)
);
INSERT INTO head (id, entry_count) VALUES (1, 0);
CREATE TABLE entries (
    idx BIGINT PRIMARY KEY CHECK (idx >= 0),
    leaf BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32),
    producer TEXT,
    idempotency_key TEXT,
    key_digest BYTEA CHECK (length(key_digest) = 32),
    has_payload BOOLEAN NOT NULL,
    CHECK ((producer IS NULL) = (idempotency_key IS NULL)
       AND (producer IS NULL) = (key_digest IS NULL))
);
CREATE INDEX entries_by_leaf_hash ON entries (leaf_hash, idx);
CREATE INDEX entries_by_key_digest ON entries (key_digest, idx) WHERE key_digest IS NOT NULL;
CREATE TABLE payloads (
    idx BIGINT PRIMARY KEY CHECK (idx >= 0),
    payload BYTEA NOT NULL
);
CREATE TABLE checkpoint (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL CHECK (size >= 0),
    note BYTEA NOT NULL
);
CREATE TABLE witnesses (
    name TEXT PRIMARY KEY,
    size BIGINT NOT NULL CHECK (size >= 0)
);
CREATE TABLE attachments (
    kind SMALLINT NOT NULL,
    size BIGINT NOT NULL CHECK (size >= 0),
    name TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (kind, size, name)
);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL CHECK (token >= 0),
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO leases (name, holder, token, expires_at) VALUES ('integrator', '', 0, '1970-01-01 00:00:00+00');
", "
CREATE TABLE events (
    idx BIGINT PRIMARY KEY CHECK (idx >= 0),
    event_id TEXT NOT NULL,
    time_secs BIGINT NOT NULL,
    time_subsec INTEGER NOT NULL CHECK (time_subsec >= 0 AND time_subsec < 1000000000),
    received_secs BIGINT NOT NULL,
    received_subsec INTEGER NOT NULL CHECK (received_subsec >= 0 AND received_subsec < 1000000000),
    actor_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    action TEXT NOT NULL,
    has_payload BOOLEAN NOT NULL
);
CREATE INDEX events_by_event_id ON events (event_id, idx);
CREATE INDEX events_by_actor ON events (actor_id, idx);
CREATE INDEX events_by_resource ON events (resource_id, idx);
CREATE INDEX events_by_action ON events (action, idx);
CREATE INDEX events_with_payload ON events (idx) WHERE has_payload;
CREATE TABLE events_watermark (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    below BIGINT NOT NULL CHECK (below >= 0)
);
INSERT INTO events_watermark (id, below) VALUES (1, 0);
CREATE TABLE subject_keys (
    dek_id BYTEA PRIMARY KEY CHECK (length(dek_id) = 16),
    subject BYTEA NOT NULL UNIQUE CHECK (length(subject) = 32),
    wrapped BYTEA NOT NULL
);
CREATE TABLE subject_key_check (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    fingerprint BYTEA NOT NULL CHECK (length(fingerprint) = 32)
);
", "
CREATE TABLE flush_marks (
    slot INTEGER PRIMARY KEY CHECK (slot >= 0 AND slot < 65536),
    flushes BIGINT NOT NULL
);
"];

/// Creates `schema` and its tables if they are missing, migrates an older version, and refuses
/// a newer one or a server that would not make commits durable. `lazy_commits`: the connection
/// was opened with `synchronous_commit` off on purpose ([`super::Commits::Lazy`]), so only
/// `fsync` is checked.
pub(super) async fn open(
    mut client: deadpool_postgres::Object,
    schema: &str,
    lazy_commits: bool,
) -> Result<(), DbError> {
    let settings: &[(&str, &str)] = if lazy_commits {
        &[("fsync", "off")]
    } else {
        &[("fsync", "off"), ("synchronous_commit", "off")]
    };
    for &(setting, refused) in settings {
        let row = client
            .query_one("SELECT current_setting($1)", &[&setting])
            .await?;
        let value: String = row.get(0);
        if value == refused {
            return Err(StoreError::BadConfig(format!(
                "the PostgreSQL server runs with {setting} = {value}: an acknowledged entry \
                 could be lost in a crash, so the log refuses it"
            ))
            .into());
        }
    }
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&OPEN_LOCK])
        .await?;
    // The name was checked to be a plain lower-case identifier, so it needs no quoting.
    transaction
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await?;
    let has_meta: bool = transaction
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'meta')",
            &[&schema],
        )
        .await?
        .get(0);
    let version: i64 = if has_meta {
        transaction
            .query_opt("SELECT value FROM meta WHERE name = 'schema_version'", &[])
            .await?
            .map_or(0, |row| row.get(0))
    } else {
        0
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::BadConfig(format!(
            "schema {schema} is at version {version}, newer than this cairn-log knows \
             ({SCHEMA_VERSION}): run the newer cairn-log"
        ))
        .into());
    }
    if version < 0 {
        return Err(StoreError::BadConfig(format!(
            "schema {schema} has version {version}, which no cairn-log wrote"
        ))
        .into());
    }
    for step in &MIGRATIONS[version as usize..] {
        transaction.batch_execute(step).await?;
    }
    if version < SCHEMA_VERSION {
        transaction
            .execute(
                "INSERT INTO meta (name, value) VALUES ('schema_version', $1)
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&SCHEMA_VERSION],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}
