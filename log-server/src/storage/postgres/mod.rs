//! A log's sequence and small state in PostgreSQL, shared by several front-ends.
//!
//! Several `cairn-log` processes may open the same database: each appends entries, and
//! PostgreSQL puts their batches in one order. The database, not the process, knows where the
//! log ends: every append is one statement that moves the end of the log forward only if it is
//! still where the caller says (`first_index`), under the row lock of that one `head` row, and
//! inserts the batch in the same transaction. A batch is therefore all there or not at all,
//! durable when the statement's commit returns (the store refuses to open on a server that
//! would not flush its commits), and an append that lost the race to another front-end fails
//! with [`StoreError::NotAtEnd`], naming the new end to retry at. A front-end that does not
//! know the end appends with [`PostgresStore::append_at_end`] instead, which the database
//! places at the end it has, holding the row lock only while its statement runs: its commit
//! does not wait for the disk, and a durable commit that follows it does (see [`sequence`]), so
//! the batches of all front-ends are ordered by the lock and share their WAL flushes.
//!
//! What lives where (all in one PostgreSQL schema per log, [`PostgresConfig::schema`]):
//!
//! | table | what |
//! |---|---|
//! | `meta` | the schema version this store wrote |
//! | `head` | one row: how many entries the log has |
//! | `entries` | leaf, leaf hash and idempotency key per index; indexed by leaf hash and key digest (the dedup index) |
//! | `payloads` | the payload beside an entry, deleted to erase it |
//! | `checkpoint`, `witnesses`, `attachments` | [`StateStore`](super::StateStore): writes that never go back |
//! | `leases` | who may integrate and sign, with a fencing token ([`lease`]) |
//! | `flush_marks` | one row per process, whose durable commits flush the WAL after a lazy append ([`sequence`]) |
//! | `events`, `events_watermark` | the events index of the scaled backend ([`crate::events::postgres::index`]) |
//! | `subject_keys`, `subject_key_check` | the data subjects' keys, wrapped by the KEK ([`crate::events::postgres::keys`]) |
//!
//! The traits are synchronous and called from blocking threads; the store keeps a small tokio
//! runtime of its own for the client's connections and blocks the calling thread on it (a
//! caller on an async runtime's worker is moved out of the worker's way first, see
//! [`PostgresStore::call`]). Every
//! call is bounded in time: connecting ([`PostgresConfig::connect_timeout`]), waiting for a
//! pooled connection, and each statement ([`PostgresConfig::statement_timeout`], enforced by
//! the server and again by the client, so that a server that stops answering gives an error,
//! not a hang). A failure of the database is [`StoreError::Database`] with `transient` set when
//! it may clear by itself (a connection lost, the server restarting, a timeout).
//!
//! This store holds no tree: the tree's hashes are the [`TreeStore`](super::TreeStore)'s, kept
//! elsewhere (tiles in an object store), so a checkpoint is checked here against the durable
//! entries only; the caller that composes the two checks the synced leaf hashes.

mod dedup;
pub mod lease;
mod schema;
mod sequence;
mod state;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use parking_lot::Mutex;
use tokio_postgres::error::SqlState;

use super::{StoreError, StoreLimits};
pub use lease::{LeaseGrant, LeaseOutcome, LeaseRefusal};
pub(crate) use sequence::entry_count;

/// The largest leaf this backend stores: far below PostgreSQL's 1 GiB per value.
pub const HARD_MAX_LEAF_BYTES: u32 = 16 * 1024 * 1024;
/// The largest payload this backend stores.
pub const HARD_MAX_PAYLOAD_BYTES: u32 = 64 * 1024 * 1024;
/// The most leaf and payload bytes in one append: one statement carries them, and PostgreSQL
/// takes no message over 1 GiB.
pub const HARD_MAX_BATCH_BYTES: u64 = 512 * 1024 * 1024;
/// The most entries in one append or one read.
pub const HARD_MAX_COUNT: u64 = 1 << 20;

/// How to reach the database and how long to wait for it.
#[derive(Clone)]
pub struct PostgresConfig {
    /// The connection string, as libpq takes it: `host=127.0.0.1 port=5432 user=cairn
    /// dbname=cairn` or `postgresql://cairn@127.0.0.1:5432/cairn`. Plain TCP or a Unix socket
    /// directory; no TLS.
    pub url: String,
    /// The password, if it is not in `url` (read from a file or the environment; never
    /// printed). It replaces one in `url`.
    pub password: Option<String>,
    /// The PostgreSQL schema that holds this log's tables (created if missing): one per log, so
    /// that several logs can share a database. Lower-case letters, digits and `_`, 1 to 63
    /// bytes, not starting with a digit.
    pub schema: String,
    /// The most connections this store opens (each front-end has its own pool).
    pub pool_size: usize,
    /// How long to wait for a connection to be made, and for a free one in the pool.
    pub connect_timeout: Duration,
    /// How long one statement may run, checked by the server and, with the connect timeout
    /// added, by the client.
    pub statement_timeout: Duration,
    /// The size limits the store enforces.
    pub limits: StoreLimits,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The url may carry a password: only where it leads is printed.
        let place = self
            .url
            .parse::<tokio_postgres::Config>()
            .map(|config| describe(&config, &self.schema).display().to_string())
            .unwrap_or_else(|_| "<an unreadable url>".into());
        formatter
            .debug_struct("PostgresConfig")
            .field("place", &place)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("limits", &self.limits)
            .finish()
    }
}

impl PostgresConfig {
    /// The defaults, for the database at `url`.
    pub fn new(url: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            password: None,
            schema: "cairn".into(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            limits: StoreLimits::default(),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        let limits = &self.limits;
        let schema_ok = !self.schema.is_empty()
            && self.schema.len() <= 63
            && !self.schema.starts_with(|c: char| c.is_ascii_digit())
            && self
                .schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let problem = if !schema_ok {
            Some(format!(
                "schema `{}` must be 1 to 63 lower-case letters, digits and `_`, not starting with a digit",
                self.schema
            ))
        } else if !(1..=256).contains(&self.pool_size) {
            Some(format!("pool_size {} must be 1 to 256", self.pool_size))
        } else if !(Duration::from_millis(100)..=Duration::from_secs(600))
            .contains(&self.connect_timeout)
            || !(Duration::from_millis(100)..=Duration::from_secs(600))
                .contains(&self.statement_timeout)
        {
            Some("connect_timeout and statement_timeout must be 100 ms to 10 min".into())
        } else if limits.max_leaf_bytes > HARD_MAX_LEAF_BYTES {
            Some(format!(
                "max_leaf_bytes {} is over {HARD_MAX_LEAF_BYTES}",
                limits.max_leaf_bytes
            ))
        } else if limits.max_payload_bytes > HARD_MAX_PAYLOAD_BYTES {
            Some(format!(
                "max_payload_bytes {} is over {HARD_MAX_PAYLOAD_BYTES}",
                limits.max_payload_bytes
            ))
        } else if limits.max_batch_bytes > HARD_MAX_BATCH_BYTES {
            Some(format!(
                "max_batch_bytes {} is over {HARD_MAX_BATCH_BYTES}",
                limits.max_batch_bytes
            ))
        } else if limits.max_batch_entries == 0
            || u64::from(limits.max_batch_entries) > HARD_MAX_COUNT
            || limits.max_read_count == 0
            || limits.max_read_count > HARD_MAX_COUNT
        {
            Some(format!(
                "max_batch_entries and max_read_count must be 1 to {HARD_MAX_COUNT}"
            ))
        } else {
            None
        };
        problem.map_or(Ok(()), |problem| Err(StoreError::BadConfig(problem)))
    }
}

/// A log's sequence ([`SequenceStore`](super::SequenceStore)) and small state
/// ([`StateStore`](super::StateStore)) in PostgreSQL; see the [module](self) documentation.
pub struct PostgresStore {
    /// Runs the client's connections; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// Where the database is, for errors: host, port, database and schema, never a password.
    place: PathBuf,
    limits: StoreLimits,
    /// The client's bound on one call: connect, wait for a connection, run the statements.
    call_timeout: Duration,
    /// The most entries ever seen committed, answered by `entry_count` when the database cannot
    /// be asked (it never goes back, and appends fail anyway while the database is away).
    known_entries: AtomicU64,
    /// The entries known to be on disk: below the end of an append this store flushed, or a
    /// count read before a flush ([`sequence`]).
    flushed_entries: AtomicU64,
    /// This process's row in `flush_marks`, drawn at random when the store opens, so that
    /// front-ends' flushes do not wait for each other's row lock.
    flush_slot: i32,
    /// The integrator lease this store holds, if it ever took one ([`lease`]).
    lease: Mutex<Option<lease::Held>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PostgresStore")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

/// Whether a connection's commits wait for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Commits {
    /// Every commit is durable when it returns (the log's sequence and state).
    Durable,
    /// Commits return before their WAL is flushed (`synchronous_commit = off`): for what is
    /// derived from the log and made durable at explicit points by a transaction that sets
    /// `synchronous_commit` on (the events index, [`events`]).
    Lazy,
}

impl PostgresStore {
    /// Connects to the database, creates or checks this log's schema, and refuses a server
    /// whose commits are not durable (`fsync` or `synchronous_commit` off).
    pub fn open(config: PostgresConfig) -> Result<PostgresStore, StoreError> {
        PostgresStore::open_with(config, Commits::Durable)
    }

    /// Like [`PostgresStore::open`], for the events database: a pool of its own whose commits
    /// do not wait for the disk unless a transaction asks (`SET LOCAL synchronous_commit = on`:
    /// the events index's watermark and the subject keys do). Refuses a server with `fsync` off.
    pub fn open_for_events(config: PostgresConfig) -> Result<PostgresStore, StoreError> {
        PostgresStore::open_with(config, Commits::Lazy)
    }

    fn open_with(config: PostgresConfig, commits: Commits) -> Result<PostgresStore, StoreError> {
        config.check()?;
        let mut pg_config: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|error| StoreError::BadConfig(format!("the PostgreSQL url: {error}")))?;
        if let Some(password) = &config.password {
            pg_config.password(password.as_bytes());
        }
        let place = describe(&pg_config, &config.schema);
        // The server enforces the statement timeout and the lock wait too; the search path
        // makes this log's schema the one its unqualified table names mean.
        pg_config.options(format!(
            "-c search_path={} -c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}{}",
            config.schema,
            config.statement_timeout.as_millis(),
            config.statement_timeout.as_millis(),
            config.statement_timeout.as_millis() * 2,
            match commits {
                Commits::Durable => "",
                Commits::Lazy => " -c synchronous_commit=off",
            },
        ));
        pg_config.connect_timeout(config.connect_timeout);
        pg_config.keepalives(true);
        pg_config.keepalives_idle(Duration::from_secs(10));
        pg_config.application_name("cairn-log");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cairn-postgres")
            .enable_all()
            .build()
            .map_err(|error| {
                StoreError::io("starting the PostgreSQL client runtime", &place, error)
            })?;
        let manager = Manager::from_config(
            pg_config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(config.connect_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|error| StoreError::BadConfig(format!("the PostgreSQL pool: {error}")))?;
        let store = PostgresStore {
            runtime: Some(runtime),
            pool,
            place,
            limits: config.limits,
            call_timeout: config.connect_timeout + config.statement_timeout,
            known_entries: AtomicU64::new(0),
            flushed_entries: AtomicU64::new(0),
            flush_slot: rand::random::<u16>().into(),
            lease: Mutex::new(None),
        };
        store.call("opening the schema", |client| {
            let schema = config.schema.clone();
            async move { schema::open(client, &schema, commits == Commits::Lazy).await }
        })?;
        let count = store.read_entry_count()?;
        store.known_entries.fetch_max(count, Ordering::Relaxed);
        Ok(store)
    }

    /// Where the database is (host, port, database, schema), as errors name it.
    pub fn place(&self) -> &std::path::Path {
        &self.place
    }

    /// Runs `work` on a pooled connection, blocking this thread until it is done or the call's
    /// time is up. `what` names the work in errors.
    ///
    /// A caller on a worker of a multi-threaded tokio runtime (an async handler that reads the
    /// events database, say) is allowed to block through `block_in_place`, which hands the
    /// worker's other tasks to another thread; on a current-thread runtime the work runs on a
    /// thread of its own. A runtime cannot block on another from inside its own workers.
    pub(crate) fn call<T, F, Fut>(&self, what: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        let pool = &self.pool;
        let call_timeout = self.call_timeout;
        let run = move || {
            runtime.block_on(async move {
                tokio::time::timeout(call_timeout, async move {
                    let client = pool.get().await.map_err(DbError::Pool)?;
                    work(client).await
                })
                .await
            })
        };
        use tokio::runtime::{Handle, RuntimeFlavor};
        let outcome = match Handle::try_current().map(|handle| handle.runtime_flavor()) {
            Err(_) => run(),
            Ok(RuntimeFlavor::CurrentThread) => std::thread::scope(|scope| {
                scope
                    .spawn(run)
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }),
            Ok(_) => tokio::task::block_in_place(run),
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(DbError::Store(error))) => Err(error),
            Ok(Err(error)) => Err(self.database_error(what, error)),
            Err(_elapsed) => Err(StoreError::Database {
                path: self.place.clone(),
                detail: format!(
                    "{what}: no answer within {} ms",
                    self.call_timeout.as_millis()
                ),
                transient: true,
            }),
        }
    }

    fn database_error(&self, what: &'static str, error: DbError) -> StoreError {
        let (detail, transient) = match error {
            DbError::Pool(error) => (error_chain(&error), true),
            DbError::Postgres(error) => {
                let transient = is_transient(&error);
                (error_chain(&error), transient)
            }
            DbError::Store(_) => unreachable!("store errors are passed through"),
        };
        StoreError::Database {
            path: self.place.clone(),
            detail: format!("{what}: {detail}"),
            transient,
        }
    }

    /// The entry count as the database has it now.
    fn read_entry_count(&self) -> Result<u64, StoreError> {
        let count = self.call("reading the entry count", |client| async move {
            sequence::entry_count(&client).await
        })?;
        self.known_entries.fetch_max(count, Ordering::Relaxed);
        Ok(count)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which a runtime thread may not do;
        // the connections are closed by the pool's drop, so nothing is left to wait for.
        self.pool.close();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Why a call to the database failed, before it becomes a [`StoreError`].
#[derive(Debug)]
pub(crate) enum DbError {
    /// No connection could be had.
    Pool(deadpool_postgres::PoolError),
    /// The database refused or failed a statement.
    Postgres(tokio_postgres::Error),
    /// The store's own refusal (a limit, an order it keeps), decided from what it read.
    Store(StoreError),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> DbError {
        DbError::Postgres(error)
    }
}

impl From<StoreError> for DbError {
    fn from(error: StoreError) -> DbError {
        DbError::Store(error)
    }
}

/// Whether a PostgreSQL failure may clear by itself: the connection is gone or the server is
/// starting, stopping or overloaded, a statement timed out or lost a race for a lock. Anything
/// else (a constraint broken, a table missing) needs an operator.
fn is_transient(error: &tokio_postgres::Error) -> bool {
    let Some(state) = error.code() else {
        // No SQLSTATE: the connection itself failed (I/O, closed, timed out).
        return true;
    };
    let class = &state.code()[..2];
    matches!(class, "08" | "53" | "57" | "58" | "40")
        || *state == SqlState::LOCK_NOT_AVAILABLE
        || *state == SqlState::QUERY_CANCELED
}

/// An error and its sources, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `postgresql://host:port/dbname#schema`, without user or password.
fn describe(config: &tokio_postgres::Config, schema: &str) -> PathBuf {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(position, host)| {
            let port = config
                .get_ports()
                .get(position)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    PathBuf::from(format!(
        "postgresql://{}/{}#{schema}",
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    ))
}

/// A `u64` index or size as PostgreSQL's `bigint`; anything beyond is out of any log's reach.
fn to_sql_int(value: u64) -> Option<i64> {
    i64::try_from(value).ok()
}

/// A `bigint` read back as a count or index; a negative one is damage (the schema forbids it).
pub(crate) fn from_sql_int(
    value: i64,
    place: &std::path::Path,
    what: &str,
) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(place, 0, format!("{what} is {value}")))
}
