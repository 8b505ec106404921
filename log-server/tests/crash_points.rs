//! SIGKILL at each step of a publish, and between the writes of an erasure and of a legal hold:
//! nothing acknowledged is lost, a signed checkpoint always matches the entries and the stored
//! hashes, and the next start finishes what the killed process began.
//!
//! The test runs itself again as a child process: a sequencer, the integrator and the events
//! database over the embedded store, wrapped so that the process sends itself SIGKILL at one
//! exact point (before or after one kind of store call), once armed. The child logs events,
//! waits for a checkpoint, arms the point, then does what crosses it: more events to publish,
//! an erasure, or a hold. The parent then opens the store as a restarted server would and
//! checks it; it runs the integrator again and checks the next checkpoint too.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_log::events::{EventStore, EventStoreConfig, Events, HoldTarget};
use cairn_log::integrator::{Integrator, IntegratorConfig, StoreHashes};
use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::{
    DedupKey, DuplicateHit, Entry, Hash, LogStore, NewEntry, SequenceStore, StateStore, StoreError,
    StoreLimits, StoredCheckpoint, StoredPayload, TreeStore,
};
use cairn_log::{Sequencer, SequencerConfig};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::event::EventInput;
use cairn_spec::merkle::{root_from_leaf_hashes, tree_root};
use cairn_spec::note::{Ed25519Signer, KeyName};

const CHILD_DIR: &str = "CAIRN_CRASH_POINT_DIR";
const CHILD_POINT: &str = "CAIRN_CRASH_POINT";
const ORIGIN: &str = "crash.example/log";
/// Events logged before the point is armed.
const FIRST_EVENTS: u64 = 120;
/// The event whose payload the erasure crosses the point on.
const ERASED: u64 = 3;

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid name"), [11; 32])
}

fn config(dir: &Path) -> EmbeddedConfig {
    EmbeddedConfig::new(dir.join("log"))
}

/// Event `n`: every third has a payload; actors alternate between alice and bob.
fn event(n: u64) -> EventInput {
    let actor = if n.is_multiple_of(2) { "alice" } else { "bob" };
    let payload = if n.is_multiple_of(3) {
        format!(r#","payload":{{"note":"payload of event {n}"}}"#)
    } else {
        String::new()
    };
    let json = format!(
        r#"{{"timestamp":"2026-12-07T00:00:00Z","actor":{{"id":"{actor}","type":"user"}},"action":"document.read","resource":{{"type":"document","id":"doc-{n}"}},"outcome":"success"{payload}}}"#
    );
    EventInput::parse(json.as_bytes()).expect("a valid event")
}

/// Which store call a crash point is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    AppendEntries,
    AppendHashes,
    SyncHashes,
    StoreCheckpoint,
    ErasePayload,
}

/// A point: before or after `call`, the first time it is made once armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Point {
    call: Call,
    after: bool,
}

/// Every point the test kills at, by name.
const POINTS: [(&str, Point); 8] = [
    (
        "publish: before the tree's hashes are appended",
        Point {
            call: Call::AppendHashes,
            after: false,
        },
    ),
    (
        "publish: after the tree's hashes are appended, before they are synced",
        Point {
            call: Call::AppendHashes,
            after: true,
        },
    ),
    (
        "publish: before the hashes are synced",
        Point {
            call: Call::SyncHashes,
            after: false,
        },
    ),
    (
        "publish: after the hashes are synced, before the checkpoint is stored",
        Point {
            call: Call::SyncHashes,
            after: true,
        },
    ),
    (
        "publish: after the checkpoint is stored, before it is served",
        Point {
            call: Call::StoreCheckpoint,
            after: true,
        },
    ),
    (
        "erasure: after it is logged, before the payload is destroyed",
        Point {
            call: Call::ErasePayload,
            after: false,
        },
    ),
    (
        "erasure: after the payload is destroyed, before it is answered",
        Point {
            call: Call::ErasePayload,
            after: true,
        },
    ),
    (
        "hold: after it is logged, before it is answered",
        Point {
            call: Call::AppendEntries,
            after: true,
        },
    ),
];

/// The embedded store, killing its process at `point` once armed.
struct Crashing {
    inner: EmbeddedStore,
    point: Point,
    armed: AtomicBool,
}

impl Crashing {
    fn at(&self, call: Call, after: bool) {
        if self.armed.load(Ordering::SeqCst) && self.point == (Point { call, after }) {
            let _ = std::io::stdout().flush();
            // SAFETY: kill(2) with this process's own ID and a constant signal touches no
            // memory; SIGKILL cannot be caught, so nothing after it runs.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            unreachable!("SIGKILL returned");
        }
    }

    fn around<T>(&self, call: Call, body: impl FnOnce() -> T) -> T {
        self.at(call, false);
        let result = body();
        self.at(call, true);
        result
    }
}

impl SequenceStore for Crashing {
    fn limits(&self) -> &StoreLimits {
        self.inner.limits()
    }
    fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }
    fn append_entries(&self, first_index: u64, entries: &[NewEntry]) -> Result<(), StoreError> {
        self.around(Call::AppendEntries, || {
            self.inner.append_entries(first_index, entries)
        })
    }
    fn heal(&self) -> Result<(), StoreError> {
        self.inner.heal()
    }
    fn background_failures(&self) -> (Option<String>, u64) {
        self.inner.background_failures()
    }
    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Entry>, StoreError> {
        self.inner.read_entries(start, count)
    }
    fn read_payload(&self, index: u64) -> Result<Option<StoredPayload>, StoreError> {
        self.inner.read_payload(index)
    }
    fn erase_payload(&self, index: u64) -> Result<bool, StoreError> {
        self.around(Call::ErasePayload, || self.inner.erase_payload(index))
    }
    fn find_duplicates(
        &self,
        keys: &[DedupKey<'_>],
    ) -> Result<Vec<Option<DuplicateHit>>, StoreError> {
        self.inner.find_duplicates(keys)
    }
}

impl TreeStore for Crashing {
    fn hash_count(&self, level: u8) -> Result<u64, StoreError> {
        self.inner.hash_count(level)
    }
    fn append_hashes(&self, level: u8, start: u64, hashes: &[Hash]) -> Result<(), StoreError> {
        self.around(Call::AppendHashes, || {
            self.inner.append_hashes(level, start, hashes)
        })
    }
    fn read_hashes(&self, level: u8, start: u64, count: u64) -> Result<Vec<Hash>, StoreError> {
        self.inner.read_hashes(level, start, count)
    }
    fn sync_hashes(&self) -> Result<(), StoreError> {
        self.around(Call::SyncHashes, || self.inner.sync_hashes())
    }
}

impl StateStore for Crashing {
    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.inner.latest_checkpoint()
    }
    fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        self.around(Call::StoreCheckpoint, || {
            self.inner.store_checkpoint(checkpoint)
        })
    }
    fn witness_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
        self.inner.witness_size(witness)
    }
    fn set_witness_size(&self, witness: &str, size: u64) -> Result<(), StoreError> {
        self.inner.set_witness_size(witness, size)
    }
    fn store_cosignature(&self, size: u64, witness: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.store_cosignature(size, witness, bytes)
    }
    fn cosignatures(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.cosignatures(size)
    }
    fn store_timestamp_token(
        &self,
        size: u64,
        authority: &str,
        token: &[u8],
    ) -> Result<(), StoreError> {
        self.inner.store_timestamp_token(size, authority, token)
    }
    fn timestamp_tokens(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.timestamp_tokens(size)
    }
}

/// The parts of a running log over `store`.
struct Running {
    sequencer: Arc<Sequencer>,
    integrator: Integrator,
    events: Arc<Events>,
}

async fn start(dir: &Path, store: Arc<dyn LogStore>) -> Running {
    let sequencer =
        Arc::new(Sequencer::start(store.clone(), SequencerConfig::default()).expect("sequencer"));
    let integrator = Integrator::start(
        store.clone(),
        sequencer.clone(),
        Arc::new(signer().into()),
        IntegratorConfig {
            checkpoint_interval: Duration::from_millis(20),
            ..IntegratorConfig::default()
        },
    )
    .await
    .expect("integrator");
    let (events_dir, log) = (dir.join("events"), store.clone());
    let event_store = tokio::task::spawn_blocking(move || {
        EventStore::open(&events_dir, EventStoreConfig::default(), log)
    })
    .await
    .expect("open task")
    .expect("the events database opens");
    let events = Arc::new(Events::new(event_store, sequencer.clone(), store));
    Running {
        sequencer,
        integrator,
        events,
    }
}

/// Waits (up to 60 s) until a checkpoint covers `size` entries.
async fn checkpoint_covering(integrator: &Integrator, size: u64) -> StoredCheckpoint {
    let mut checkpoints = integrator.checkpoints();
    let waited = tokio::time::timeout(
        Duration::from_secs(60),
        checkpoints.wait_for(|latest| latest.as_ref().is_some_and(|c| c.size >= size)),
    )
    .await
    .expect("a checkpoint within 60 s")
    .expect("the integrator runs");
    waited.clone().expect("a checkpoint")
}

/// Logs events `range`, printing `ack <index> <n>` for each once it is acknowledged; returns
/// their IDs and indices.
async fn log_events(running: &Running, range: std::ops::Range<u64>) -> Vec<(String, u64)> {
    let mut logged = Vec::new();
    for n in range {
        let submitted = running
            .events
            .submit(vec![event(n)], "producer")
            .await
            .expect("logged");
        println!("ack {} {n}", submitted[0].index);
        logged.push((submitted[0].event_id.clone(), submitted[0].index));
    }
    let _ = std::io::stdout().flush();
    logged
}

/// The log's size once `logged` is: one past the last index.
fn size_after(logged: &[(String, u64)]) -> u64 {
    logged.iter().map(|(_, index)| index + 1).max().unwrap_or(0)
}

/// The child: log, arm the point, cross it. Killed at the point, it never returns.
fn child(dir: &Path, name: &str) {
    let (_, point) = POINTS
        .iter()
        .find(|(known, _)| *known == name)
        .expect("a known point");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Arc::new(Crashing {
            inner: EmbeddedStore::open(config(dir)).expect("the store opens"),
            point: *point,
            armed: AtomicBool::new(false),
        });
        let running = start(dir, store.clone()).await;
        let first = log_events(&running, 0..FIRST_EVENTS).await;
        checkpoint_covering(&running.integrator, size_after(&first)).await;
        store.armed.store(true, Ordering::SeqCst);
        match point.call {
            Call::AppendHashes | Call::SyncHashes | Call::StoreCheckpoint => {
                let more = log_events(&running, FIRST_EVENTS..FIRST_EVENTS + 300).await;
                checkpoint_covering(&running.integrator, size_after(&more)).await;
            }
            Call::ErasePayload => {
                let id = &first[ERASED as usize].0;
                let _ = running
                    .events
                    .erase_payload(id, "root", Some("erasure request 7"))
                    .await;
            }
            Call::AppendEntries => {
                let _ = running
                    .events
                    .set_hold(HoldTarget::Actor("alice".into()), "case 7", "root")
                    .await;
            }
        }
        drop(running.sequencer);
    });
    panic!("the child crossed its crash point without being killed");
}

/// What the parent checks after a kill: the store opens, every acknowledged event is at its
/// index, and the checkpoint matches both the entries and the stored hashes.
fn check_store(store: &EmbeddedStore, acknowledged: &[(u64, u64)], point: &str) -> u64 {
    let count = store.entry_count();
    for &(index, n) in acknowledged {
        assert!(
            index < count,
            "{point}: acknowledged event {n} at {index} is missing (the log holds {count})"
        );
    }
    let stored = store
        .latest_checkpoint()
        .expect("read the checkpoint")
        .expect("a checkpoint was stored before the kill");
    let verifier = signer().verifier();
    let signed = Checkpoint::open(&stored.note, &verifier)
        .unwrap_or_else(|error| panic!("{point}: the stored checkpoint does not verify: {error}"));
    let size = signed.checkpoint.size;
    assert_eq!(
        size, stored.size,
        "{point}: the stored size is the signed one"
    );
    let leaf_hashes: Vec<Hash> = store
        .read_entries(0, size)
        .expect("read the entries")
        .iter()
        .map(Entry::leaf_hash)
        .collect();
    assert_eq!(
        root_from_leaf_hashes(&leaf_hashes),
        signed.checkpoint.root,
        "{point}: the checkpoint's root is the root of the entries it covers"
    );
    assert_eq!(
        tree_root(size, &StoreHashes::new(store)).expect("the stored hashes cover the checkpoint"),
        signed.checkpoint.root,
        "{point}: the stored hashes give the checkpoint's root"
    );
    size
}

/// Runs the child for `name` until it kills itself; returns what it acknowledged.
fn run_child(dir: &Path, name: &str) -> Vec<(u64, u64)> {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "sigkill_at_each_step_of_a_publish_an_erasure_and_a_hold",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_POINT, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("piped stdout");
    let acknowledged: Vec<(u64, u64)> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            // The test harness may have begun the line with its own "test … " text.
            let at = line.find("ack ")?;
            let mut fields = line[at + 4..].split(' ');
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect();
    let status = child.wait().expect("reap the child");
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{name}: the child was to be killed at its point, and ended with {status}"
        );
    }
    assert!(
        acknowledged.len() as u64 >= FIRST_EVENTS,
        "{name}: the child acknowledged only {} events",
        acknowledged.len()
    );
    acknowledged
}

#[test]
fn sigkill_at_each_step_of_a_publish_an_erasure_and_a_hold() {
    if let (Ok(dir), Ok(point)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_POINT)) {
        child(Path::new(&dir), &point);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for (name, point) in POINTS {
        let dir = tempfile::tempdir().expect("temporary directory");
        let acknowledged = run_child(dir.path(), name);
        let store = Arc::new(
            EmbeddedStore::open(config(dir.path())).unwrap_or_else(|error| {
                panic!("{name}: the store does not open after SIGKILL: {error}")
            }),
        );
        let signed_size = check_store(&store, &acknowledged, name);
        let log: Arc<dyn LogStore> = store.clone();
        runtime.block_on(async {
            // A restart: integration goes on from what the kill left, and the events database
            // applies what the log records.
            let running = start(dir.path(), log.clone()).await;
            let size = log.entry_count();
            let next = checkpoint_covering(&running.integrator, size).await;
            assert!(next.size >= signed_size, "{name}: the tree never goes back");
            running.integrator.shutdown().await.expect("shutdown");
            let events = &running.events.store;
            match point.call {
                Call::ErasePayload => {
                    let erased = acknowledged
                        .iter()
                        .find(|(_, n)| *n == ERASED)
                        .expect("the erased event was acknowledged")
                        .0;
                    let payload = log.read_payload(erased).expect("read the payload");
                    assert_eq!(
                        payload,
                        Some(StoredPayload::Erased),
                        "{name}: a logged erasure is finished at the next start"
                    );
                }
                Call::AppendEntries => {
                    assert!(
                        events
                            .hold(&HoldTarget::Actor("alice".into()))
                            .expect("read the holds")
                            .is_some(),
                        "{name}: a logged hold is in force at the next start"
                    );
                }
                _ => {}
            }
        });
        check_store(&store, &acknowledged, name);
    }
}
