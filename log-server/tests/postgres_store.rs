//! The PostgreSQL store against a real PostgreSQL server that each test starts for itself
//! (tests/support_pg): the shared conformance suites for sequences and state, then what only
//! several front-ends on one database can show: appends racing from two stores, the integrator
//! lease and its fence, and the server going away under load.
//!
//! The suite of a log's cross rules (`conformance::log`) needs a `TreeStore`, which this store
//! does not keep: it runs where the PostgreSQL sequence is composed with a tree.

mod support_pg;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::storage::conformance::{self, Harness, StateHarness};
use cairn_log::storage::postgres::{LeaseOutcome, PostgresConfig, PostgresStore};
use cairn_log::storage::{
    DedupKey, FailureKind, Hash, IdempotencyKey, NewEntry, SequenceStore, StateStore, StoreError,
    StoreLimits, StoredCheckpoint,
};
use support_pg::TestPostgres;

fn small_limits() -> StoreLimits {
    StoreLimits {
        max_leaf_bytes: 4096,
        max_payload_bytes: 8192,
        max_batch_entries: 1000,
        max_batch_bytes: 256 * 1024,
        max_read_count: 10_000,
    }
}

fn config(server: &TestPostgres, schema: &str) -> PostgresConfig {
    let mut config = PostgresConfig::new(server.url());
    config.schema = schema.into();
    config.limits = small_limits();
    config.pool_size = 4;
    config
}

/// One log in a schema of its own on the shared test server.
struct Postgres {
    config: PostgresConfig,
}

impl Harness for Postgres {
    type Store = PostgresStore;
    fn open(&mut self) -> PostgresStore {
        PostgresStore::open(self.config.clone()).expect("the PostgreSQL store opens")
    }
}

impl StateHarness for Postgres {
    /// This store keeps no tree: a checkpoint is checked against its durable entries only.
    fn cover(&mut self, store: &PostgresStore, size: u64) {
        conformance::justify_in(store, size);
    }
}

#[test]
fn passes_the_sequence_and_state_conformance_suites() {
    let server = TestPostgres::start();
    let next = AtomicU64::new(0);
    let fresh = || Postgres {
        config: config(
            &server,
            &format!("conformance_{}", next.fetch_add(1, Ordering::Relaxed)),
        ),
    };
    conformance::sequence::run_all(fresh);
    conformance::state::run_all(fresh);
}

fn leaf(writer: u64, number: u64) -> Vec<u8> {
    format!("front-end leaf {writer}/{number} with some padding to look like an event").into_bytes()
}

/// Appends `entries` at the end of the log as it is now, retrying at the new end when another
/// front-end got there first. Returns the first index.
fn append_with_retry(store: &PostgresStore, entries: &[NewEntry]) -> Result<u64, StoreError> {
    let mut first_index = store.entry_count();
    for _ in 0..10_000 {
        match store.append_entries(first_index, entries) {
            Ok(()) => return Ok(first_index),
            Err(StoreError::NotAtEnd { expected, found }) => {
                assert!(expected > found, "the end only moves forward");
                first_index = expected;
            }
            Err(other) => return Err(other),
        }
    }
    panic!("an append lost the race 10,000 times in a row");
}

#[test]
fn two_front_ends_append_concurrently_and_every_acknowledged_entry_is_there_once() {
    let server = TestPostgres::start();
    let front_ends: Vec<Arc<PostgresStore>> = (0..2)
        .map(|_| Arc::new(PostgresStore::open(config(&server, "shared")).expect("open")))
        .collect();
    let writers: Vec<_> = (0..4u64)
        .map(|writer| {
            let store = Arc::clone(&front_ends[writer as usize % 2]);
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                let mut number = 0;
                for batch in 0..60u64 {
                    let size = 1 + (batch * 7 + writer) % 20;
                    let entries: Vec<NewEntry> = (number..number + size)
                        .map(|n| {
                            let key =
                                IdempotencyKey::new(format!("writer-{writer}"), format!("{n}"))
                                    .expect("a valid key");
                            NewEntry::new(leaf(writer, n), Some(key))
                        })
                        .collect();
                    // Half the writers say where they append (and retry at the new end), half
                    // let the database put the batch at the end.
                    let first = if writer < 2 {
                        append_with_retry(&store, &entries)
                    } else {
                        store.append_at_end(&entries)
                    }
                    .expect("append");
                    acknowledged.extend(
                        (0..size).map(|offset| (first + offset, leaf(writer, number + offset))),
                    );
                    number += size;
                }
                acknowledged
            })
        })
        .collect();
    let acknowledged: Vec<(u64, Vec<u8>)> = writers
        .into_iter()
        .flat_map(|writer| writer.join().expect("a writer"))
        .collect();
    let total = acknowledged.len() as u64;
    for store in &front_ends {
        assert_eq!(
            store.entry_count(),
            total,
            "both front-ends see the same end"
        );
    }
    let reader = PostgresStore::open(config(&server, "shared")).expect("open a third");
    let mut stored = Vec::new();
    while (stored.len() as u64) < total {
        let start = stored.len() as u64;
        stored.extend(
            reader
                .read_entries(start, (total - start).min(5000))
                .expect("dense indices read back"),
        );
    }
    let mut seen: HashMap<Vec<u8>, u64> = HashMap::new();
    for entry in &stored {
        assert!(
            seen.insert(entry.leaf.clone(), entry.index).is_none(),
            "entry {} is stored twice",
            entry.index
        );
    }
    for (index, leaf) in &acknowledged {
        assert_eq!(
            seen.get(leaf),
            Some(index),
            "an acknowledged leaf is at the index it was acknowledged with"
        );
    }
    // The dedup index of one front-end knows what the other appended.
    let hashes: Vec<Hash> = acknowledged
        .iter()
        .map(|(_, leaf)| Hash::of_leaf(leaf))
        .collect();
    let keys: Vec<DedupKey<'_>> = hashes.iter().map(DedupKey::Leaf).collect();
    let hits = front_ends[0].find_duplicates(&keys).expect("lookup");
    for ((index, _), hit) in acknowledged.iter().zip(hits) {
        assert_eq!(hit.map(|hit| hit.index), Some(*index));
    }
}

#[test]
fn an_append_that_lost_the_race_names_the_new_end() {
    let server = TestPostgres::start();
    let first = PostgresStore::open(config(&server, "race")).expect("open");
    let second = PostgresStore::open(config(&server, "race")).expect("open");
    first
        .append_entries(0, &[NewEntry::new(leaf(0, 0), None)])
        .expect("append");
    assert_eq!(
        second.entry_count(),
        1,
        "the count is the database's, not a cache"
    );
    second
        .append_entries(1, &[NewEntry::new(leaf(1, 0), None)])
        .expect("append");
    let error = first
        .append_entries(1, &[NewEntry::new(leaf(0, 1), None)])
        .expect_err("index 1 is taken");
    assert!(
        matches!(
            error,
            StoreError::NotAtEnd {
                expected: 2,
                found: 1
            }
        ),
        "got {error}"
    );
    assert_eq!(error.kind(), FailureKind::Refused);
    first
        .append_entries(2, &[NewEntry::new(leaf(0, 1), None)])
        .expect("a retry at the new end is taken");
    assert_eq!(first.read_entries(0, 3).expect("read").len(), 3);
}

fn checkpoint(size: u64, by: &str) -> StoredCheckpoint {
    StoredCheckpoint {
        size,
        note: format!("example.com/log\n{size}\nroot\n\n— {by} signature\n").into_bytes(),
    }
}

fn granted(outcome: LeaseOutcome) -> (u64, bool) {
    match outcome {
        LeaseOutcome::Granted(grant) => (grant.token, grant.renewed),
        LeaseOutcome::HeldElsewhere(refusal) => panic!("expected the lease, {refusal:?} holds it"),
    }
}

fn assert_fenced(store: &PostgresStore, size: u64, why: &str) {
    match store.store_checkpoint(&checkpoint(size, "fenced")) {
        Err(StoreError::Database { detail, .. }) if detail.contains("lease") => {}
        other => panic!("{why}: expected a refusal by the lease, got {other:?}"),
    }
}

#[test]
fn the_integrator_lease_admits_one_holder_and_fences_a_stale_one() {
    let server = TestPostgres::start();
    let alpha = PostgresStore::open(config(&server, "lease")).expect("open");
    let beta = PostgresStore::open(config(&server, "lease")).expect("open");
    alpha
        .append_entries(
            0,
            &(0..10)
                .map(|n| NewEntry::new(leaf(0, n), None))
                .collect::<Vec<_>>(),
        )
        .expect("append");
    // Generous terms: the machine is busy, and only the database's clock counts.
    let term = Duration::from_secs(2);

    let (token, renewed) = granted(alpha.acquire_lease("alpha", term).expect("acquire"));
    assert_eq!((token, renewed), (1, false));
    match beta.acquire_lease("beta", term).expect("ask") {
        LeaseOutcome::HeldElsewhere(refusal) => {
            assert_eq!((refusal.holder.as_str(), refusal.token), ("alpha", 1));
            assert!(refusal.expires_in <= term);
        }
        other => panic!("two holders at once: {other:?}"),
    }
    assert_eq!(
        granted(alpha.acquire_lease("alpha", term).expect("renew")),
        (1, true),
        "renewing keeps the token"
    );
    alpha
        .store_checkpoint(&checkpoint(5, "alpha"))
        .expect("the holder publishes");
    assert_fenced(&beta, 6, "a store without the lease while another holds it");

    // Alpha stops renewing (a process stopped past its lease); beta takes over.
    std::thread::sleep(term + Duration::from_millis(1500));
    let (token, renewed) = granted(beta.acquire_lease("beta", term).expect("take over"));
    assert_eq!((token, renewed), (2, false), "a takeover raises the token");
    assert_fenced(&alpha, 6, "the old holder after a takeover");
    match alpha.acquire_lease("alpha", term).expect("ask") {
        LeaseOutcome::HeldElsewhere(refusal) => assert_eq!(refusal.token, 2),
        other => panic!("the old holder got the lease back while beta holds it: {other:?}"),
    }
    beta.store_checkpoint(&checkpoint(8, "beta"))
        .expect("the new holder publishes");
    assert_eq!(
        alpha.latest_checkpoint().expect("read"),
        Some(checkpoint(8, "beta"))
    );

    // A holder whose lease lapsed, even with nobody taking it, may not publish, and gets a
    // new token when it asks again.
    std::thread::sleep(term + Duration::from_millis(1500));
    assert_fenced(&beta, 9, "a holder past its lease");
    assert_eq!(
        granted(beta.acquire_lease("beta", term).expect("again")),
        (3, false)
    );
    beta.store_checkpoint(&checkpoint(9, "beta"))
        .expect("publishes again");

    // Released, the lease goes to the next at once.
    assert!(beta.release_lease().expect("release"));
    assert_fenced(&beta, 10, "a holder that released the lease");
    assert_eq!(
        granted(alpha.acquire_lease("alpha", term).expect("after release")),
        (4, false)
    );
    alpha
        .store_checkpoint(&checkpoint(10, "alpha"))
        .expect("publishes");

    // A reopened store (a restarted process) is a new holder: it waits like any other.
    drop(alpha);
    let restarted = PostgresStore::open(config(&server, "lease")).expect("open");
    assert!(matches!(
        restarted.acquire_lease("alpha", term).expect("ask"),
        LeaseOutcome::HeldElsewhere(_)
    ));
    assert!(matches!(
        restarted.acquire_lease("alpha", Duration::from_millis(1)),
        Err(StoreError::BadConfig(_))
    ));
}

#[test]
fn appends_fail_clearly_while_the_server_is_down_and_resume_after() {
    let server = TestPostgres::start();
    let mut config = config(&server, "faults");
    config.connect_timeout = Duration::from_secs(2);
    config.statement_timeout = Duration::from_secs(5);
    let bound = Duration::from_secs(30);
    let store = PostgresStore::open(config).expect("open");
    let mut acknowledged: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut number = 0u64;
    let mut append = |store: &PostgresStore, acknowledged: &mut Vec<(u64, Vec<u8>)>| {
        let entries: Vec<NewEntry> = (number..number + 10)
            .map(|n| NewEntry::new(leaf(7, n), None).with_payload(Some(format!("payload {n}"))))
            .collect();
        number += 10;
        let started = Instant::now();
        let outcome = append_with_retry(store, &entries);
        assert!(
            started.elapsed() < bound,
            "an append took {:?}: calls must be bounded",
            started.elapsed()
        );
        if let Ok(first) = outcome {
            acknowledged.extend(
                entries
                    .iter()
                    .enumerate()
                    .map(|(offset, entry)| (first + offset as u64, entry.leaf().to_vec())),
            );
        }
        outcome
    };
    for _ in 0..20 {
        append(&store, &mut acknowledged).expect("append");
    }

    server.stop("immediate");
    for _ in 0..3 {
        let error = append(&store, &mut acknowledged).expect_err("the server is down");
        assert!(
            matches!(
                error,
                StoreError::Database {
                    transient: true,
                    ..
                }
            ),
            "expected a transient database error, got {error}"
        );
        assert!(error.is_unavailable());
        assert!(store.heal().is_err(), "not healed while the server is down");
    }
    assert!(
        store.entry_count() >= 200,
        "the count falls back to the last one seen"
    );

    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.heal().is_err() {
        assert!(
            Instant::now() < deadline,
            "the store did not heal after the restart"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..20 {
        append(&store, &mut acknowledged).expect("appends resume");
    }
    let total = store.entry_count();
    assert_eq!(
        total,
        acknowledged.len() as u64,
        "every append acknowledged, none more"
    );
    let stored = store.read_entries(0, total).expect("read");
    for (index, leaf) in &acknowledged {
        assert_eq!(
            &stored[*index as usize].leaf, leaf,
            "entry {index} survived"
        );
    }
}

#[test]
fn rejects_configurations_that_cannot_work() {
    let server = TestPostgres::start();
    for (change, what) in [
        (
            Box::new(|config: &mut PostgresConfig| config.schema = "Bad-Name".into())
                as Box<dyn Fn(&mut PostgresConfig)>,
            "a schema name that needs quoting",
        ),
        (
            Box::new(|config: &mut PostgresConfig| config.limits.max_leaf_bytes = u32::MAX),
            "a leaf over PostgreSQL's reach",
        ),
        (
            Box::new(|config: &mut PostgresConfig| config.pool_size = 0),
            "an empty pool",
        ),
        (
            Box::new(|config: &mut PostgresConfig| {
                config.url = "host=127.0.0.1 port=notaport".into()
            }),
            "a url that does not parse",
        ),
    ] {
        let mut config = config(&server, "configs");
        change(&mut config);
        assert!(
            matches!(PostgresStore::open(config), Err(StoreError::BadConfig(_))),
            "{what} is refused"
        );
    }

    // Nobody listening: a transient error, soon, naming the place and no password.
    let mut nowhere = config(&server, "configs");
    nowhere.url = format!(
        "postgresql://postgres:secret@127.0.0.1:{}/postgres",
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("port")
            .port()
    );
    nowhere.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    match PostgresStore::open(nowhere) {
        Err(
            error @ StoreError::Database {
                transient: true, ..
            },
        ) => {
            let text = error.to_string();
            assert!(text.contains("127.0.0.1"), "{text}");
            assert!(
                !text.contains("secret"),
                "the password is not in errors: {text}"
            );
        }
        other => panic!("expected a transient database error, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn refuses_a_server_that_does_not_make_commits_durable() {
    let server = TestPostgres::start();
    let store = PostgresStore::open(config(&server, "durable")).expect("open");
    drop(store);
    // The role's default, as an operator might set it: every new session commits without
    // waiting for the disk.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute("ALTER ROLE postgres SET synchronous_commit = off")
            .await
            .expect("alter role");
    });
    match PostgresStore::open(config(&server, "durable")) {
        Err(StoreError::BadConfig(reason)) => {
            assert!(reason.contains("synchronous_commit"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
