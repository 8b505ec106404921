//! Publication of checkpoints: C2SP tlog-witness cosigning, the k-of-n witness quorum, and the
//! witnesses' RFC 3161 timestamp tokens.
//!
//! Each checkpoint the integrator signs is sent to every witness concurrently
//! (`POST <witness>/add-checkpoint`, tlog-witness §"add-checkpoint"), with the size that witness
//! last cosigned as the old size and a consistency proof from it ([`witnesses`]). A `409
//! Conflict` names the size the witness knows and the request is sent again from it.
//! Cosignatures are verified with the witness's key before they count. Once `k` witnesses
//! cosigned, the checkpoint is published (with every cosignature collected) and the witnesses'
//! timestamp tokens for it are fetched (`GET <witness>/timestamps/<origin>/<size>`) and stored,
//! so that receipts carry them.
//!
//! Witnesses never hold up sequencing: a witness that is down only delays publication, which is
//! retried with backoff, counted in the metrics and logged.
//!
//! A log shared by several front-ends ([`Role::Shared`]) asks its witnesses from one process
//! only, the holder of the integrator lease, so each witness is asked once per checkpoint
//! however many front-ends there are. The holder marks each finished round (cosignatures and
//! timestamp tokens stored) in the store; the other front-ends follow ([`follow`]): they
//! publish a checkpoint once a round at least that large is marked, with the cosignatures the
//! holder stored. A front-end that loses the lease stops asking at its next attempt.

mod follow;
pub mod publication;
mod witness_keys;
mod witnesses;

use std::sync::Arc;
use std::time::Duration;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::note::{Note, NoteSignature};
use cairn_spec::Hash;
use tokio::sync::watch;

pub use witness_keys::{WitnessKeys, MAX_KEYS_PER_WITNESS};

use crate::metrics::Metrics;
use crate::status::Status;
use crate::storage::objects::ObjectDir;
use crate::storage::Coordination;
use crate::storage::{LogStore, StoreError, StoredCheckpoint};

/// A witness the log asks to cosign.
#[derive(Clone, Debug)]
pub struct Witness {
    /// Its name in the log's state and metrics (the key name of its vkey).
    pub name: String,
    /// Its base URL, without a final slash.
    pub url: String,
    /// Checks its cosignatures: each of its keys (across a rotation, the old and the new).
    pub verifier: WitnessKeys,
}

/// The latest published checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// Its tree size.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
    /// The signed note with the witnesses' cosignatures.
    pub note: String,
}

/// The timestamp tokens of published checkpoints, between the publisher and the receipts of
/// `?wait=checkpoint`: the size whose tokens were fetched last (a round over every witness,
/// done after each publication), and asks to fetch the published checkpoint's tokens again
/// (a witness's TSA may answer after the witness answered the log).
#[derive(Debug)]
pub struct TokenRounds {
    fetched: watch::Sender<Option<u64>>,
    wanted: tokio::sync::Notify,
}

impl TokenRounds {
    /// Rounds, the last of them (if any) over the checkpoint of `size`.
    pub fn new(size: Option<u64>) -> TokenRounds {
        TokenRounds {
            fetched: watch::Sender::new(size),
            wanted: tokio::sync::Notify::new(),
        }
    }

    /// Sees each round end: the size whose tokens were fetched last.
    pub fn subscribe(&self) -> watch::Receiver<Option<u64>> {
        self.fetched.subscribe()
    }

    /// Asks for one more round over the published checkpoint (asks made during a round
    /// count as one).
    pub fn want_more(&self) {
        self.wanted.notify_one();
    }

    fn done(&self, size: u64) {
        self.fetched.send_replace(Some(size));
    }
}

/// The shortest pause before a round that was asked for, so that waiting clients cannot make
/// the log ask its witnesses in a loop.
const ROUND_PAUSE: Duration = Duration::from_millis(100);

/// How the publisher works.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// The witnesses.
    pub witnesses: Vec<Witness>,
    /// How many must cosign before a checkpoint is published (0: publish at once).
    pub quorum: usize,
    /// Timeout of one request to a witness.
    pub request_timeout: Duration,
    /// The longest wait between two rounds when the quorum was not met.
    pub max_backoff: Duration,
    /// CA certificates trusted for witnesses' HTTPS beside the public roots.
    pub roots: Vec<reqwest::Certificate>,
}

/// The checkpoint to serve right after a start: the latest signed one with the cosignatures
/// stored for it, if those still verify with the configured witnesses' keys and meet the
/// quorum. Without it a restarted log would answer 404 on `/checkpoint` until its witnesses had
/// all been asked again. `None` when that checkpoint was never published (or its witnesses
/// changed): the publisher then publishes it as usual.
pub fn restore(
    store: &dyn LogStore,
    config: &PublisherConfig,
) -> Result<Option<Published>, StoreError> {
    match store.latest_checkpoint()? {
        None => Ok(None),
        Some(stored) => cosigned(store, &stored, config),
    }
}

/// `stored` with the cosignatures stored for its size that verify with the configured
/// witnesses' keys, if they meet the quorum; `None` otherwise (or if the note does not parse).
fn cosigned(
    store: &dyn LogStore,
    stored: &StoredCheckpoint,
    config: &PublisherConfig,
) -> Result<Option<Published>, StoreError> {
    let Ok(mut note) = Note::parse(&stored.note) else {
        return Ok(None);
    };
    let Ok(checkpoint) = Checkpoint::from_note(&note) else {
        return Ok(None);
    };
    let stored_lines = store.cosignatures(checkpoint.size)?;
    let mut cosigned = 0usize;
    for witness in &config.witnesses {
        let Some((_, line)) = stored_lines.iter().find(|(name, _)| *name == witness.name) else {
            continue;
        };
        let Some(signature) = std::str::from_utf8(line)
            .ok()
            .and_then(|line| NoteSignature::parse_line(line.trim_end_matches('\n')).ok())
        else {
            continue;
        };
        if witness
            .verifier
            .verify_cosignature(&checkpoint, &signature)
            .is_ok()
            && note.add_signature(signature).is_ok()
        {
            cosigned += 1;
        }
    }
    if cosigned < config.quorum {
        return Ok(None);
    }
    let Ok(bytes) = note.to_bytes() else {
        return Ok(None);
    };
    Ok(String::from_utf8(bytes).ok().map(|note| Published {
        size: checkpoint.size,
        root: checkpoint.root,
        note,
    }))
}

/// Runs until `published` closes: writes each published checkpoint's tiles, entry bundles and
/// note into `objects` (see [`ObjectDir`]), the latest first if several were published
/// meanwhile. A failed write (a full disk) is retried with growing pauses until it succeeds,
/// whether or not new checkpoints come. The first round writes the checkpoint published before
/// a restart, which also writes whatever a crash left out.
pub async fn write_objects(
    store: Arc<dyn LogStore>,
    objects: Arc<ObjectDir>,
    mut published: watch::Receiver<Option<Published>>,
    status: Arc<Status>,
) {
    const FIRST_PAUSE: Duration = Duration::from_millis(100);
    const MAX_PAUSE: Duration = Duration::from_secs(5);
    let mut retry: Option<Duration> = None;
    published.mark_changed();
    loop {
        match retry {
            None => {
                if published.changed().await.is_err() {
                    return;
                }
            }
            Some(pause) => {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    changed = published.changed() => if changed.is_err() { return; },
                }
            }
        }
        let Some(latest) = published.borrow_and_update().clone() else {
            continue;
        };
        let (store, objects) = (Arc::clone(&store), Arc::clone(&objects));
        let written = tokio::task::spawn_blocking(move || {
            objects.publish(store.as_ref(), latest.size, latest.note.as_bytes())
        })
        .await
        .unwrap_or_else(|error| {
            Err(StoreError::BadConfig(format!(
                "the object task failed: {error}"
            )))
        });
        match written {
            Ok(()) => {
                retry = None;
                if let Some(reason) = status.recovered() {
                    tracing::info!(%reason, "the tile objects are written again");
                }
            }
            Err(error) => {
                if !status.failed(Some(error.to_string())) {
                    tracing::error!(%error, "writing the tile objects failed; retrying");
                }
                retry = Some(retry.map_or(FIRST_PAUSE, |pause| (pause * 2).min(MAX_PAUSE)));
            }
        }
    }
}

/// Which process asks the witnesses.
#[derive(Clone)]
pub enum Role {
    /// The only process of its log (the embedded backend): it asks them.
    Alone,
    /// One of several front-ends of a log (the scaled backend): it asks them while it holds the
    /// integrator lease, and otherwise follows the holder's rounds, looking at the store every
    /// `poll`.
    Shared {
        /// Whether this process holds the lease now.
        lease: Arc<dyn Coordination>,
        /// How often a follower looks for the holder's rounds, and the holder retries marking
        /// one.
        poll: Duration,
    },
}

impl Role {
    /// Whether this process asks the witnesses now.
    fn asks_witnesses(&self) -> bool {
        match self {
            Role::Alone => true,
            Role::Shared { lease, .. } => lease.lease().is_some(),
        }
    }

    /// Sleeps one poll interval (forever for a lone process: it has nobody to look at).
    async fn poll(&self) {
        match self {
            Role::Alone => std::future::pending().await,
            Role::Shared { poll, .. } => tokio::time::sleep(*poll).await,
        }
    }
}

/// The name under which the lease holder marks, among the witnesses' progress in the store, the
/// size of the last checkpoint it published and fetched timestamp tokens for (the followers
/// publish up to it). No configured witness may have it ([`check_witness_names`]).
pub const ROUND_MARK: &str = "cairn-log publication round";

/// Refuses witnesses the store could not tell from the publisher's own mark.
pub fn check_witness_names(witnesses: &[Witness]) -> Result<(), StoreError> {
    match witnesses.iter().find(|witness| witness.name == ROUND_MARK) {
        Some(witness) => Err(StoreError::BadConfig(format!(
            "a witness may not be named `{}`: the log keeps its own progress under that name",
            witness.name
        ))),
        None => Ok(()),
    }
}

/// The first and the longest pause before a failed round is tried again.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// The HTTP client the witnesses are asked with.
fn witness_client(config: &PublisherConfig) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().timeout(config.request_timeout);
    for root in &config.roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder.build().unwrap_or_else(|error| {
        tracing::error!(%error, "the witness client could not be built with witness_ca_file's certificates; only public roots are trusted");
        reqwest::Client::default()
    })
}

/// Runs until `signed` closes: publishes every signed checkpoint once the quorum cosigned it,
/// then fetches its timestamp tokens (and again for the published one when `tokens` asks).
/// With [`Role::Shared`], only while this process holds the lease; it follows the holder
/// otherwise ([`follow`]).
pub async fn run(
    store: Arc<dyn LogStore>,
    mut signed: watch::Receiver<Option<StoredCheckpoint>>,
    config: PublisherConfig,
    (published, tokens): (watch::Sender<Option<Published>>, Arc<TokenRounds>),
    metrics: Arc<Metrics>,
    role: Role,
) {
    let client = witness_client(&config);
    let mut follower = follow::Follower::default();
    let mut backoff = FIRST_BACKOFF;
    // A round published but not marked yet (the store failed): marked again at the next wake.
    let mut unmarked: Option<u64> = None;
    loop {
        if !role.asks_witnesses() {
            let step = follower.step(
                &store,
                &mut signed,
                &config,
                (&published, &tokens),
                &metrics,
                (&client, &role),
            );
            if step.await.is_break() {
                return;
            }
            continue;
        }
        if let Some(size) = unmarked {
            unmarked = mark_round(&store, &role, size).await.err();
        }
        let Some(checkpoint) = signed.borrow_and_update().clone() else {
            tokio::select! {
                changed = signed.changed() => if changed.is_err() { return; },
                () = role.poll() => {}
            }
            continue;
        };
        let already = published.borrow().as_ref().map(|p| p.size);
        if already.is_some_and(|size| size >= checkpoint.size) {
            tokio::select! {
                changed = signed.changed() => if changed.is_err() { return; },
                () = role.poll() => {}
                () = tokens.wanted.notified() => {
                    tokio::time::sleep(ROUND_PAUSE).await;
                    let latest = published.borrow().clone();
                    if let Some(latest) = latest {
                        witnesses::fetch_tokens(&store, latest.size, latest.note.as_bytes(), &config, &client)
                            .await;
                        tokens.done(latest.size);
                    }
                }
            }
            continue;
        }
        match witnesses::publish_one(&store, &checkpoint, &config, &client, &metrics, &role).await {
            Ok(done) => {
                metrics.set_published(done.size);
                published.send_replace(Some(done));
                backoff = FIRST_BACKOFF;
                witnesses::fetch_tokens(
                    &store,
                    checkpoint.size,
                    &checkpoint.note,
                    &config,
                    &client,
                )
                .await;
                unmarked = mark_round(&store, &role, checkpoint.size).await.err();
                tokens.done(checkpoint.size);
            }
            Err(problem) => {
                tracing::warn!(size = checkpoint.size, %problem, "checkpoint not published yet; retrying");
                metrics
                    .publication_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    changed = signed.changed() => if changed.is_err() { return; },
                }
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
    }
}

/// Marks the round over the checkpoint of `size` as finished, for the followers of a shared log
/// (nothing for a lone process). Answers the size again if it must be marked later.
async fn mark_round(store: &Arc<dyn LogStore>, role: &Role, size: u64) -> Result<(), u64> {
    if matches!(role, Role::Alone) {
        return Ok(());
    }
    let store = Arc::clone(store);
    let marked = tokio::task::spawn_blocking(move || {
        let known = store.witness_size(ROUND_MARK)?.unwrap_or(0);
        if size > known {
            store.set_witness_size(ROUND_MARK, size)?;
        }
        Ok::<_, StoreError>(())
    })
    .await
    .unwrap_or_else(|error| {
        Err(StoreError::Poisoned(format!(
            "the mark task failed: {error}"
        )))
    });
    match marked {
        Ok(()) => Ok(()),
        // Another holder marked a later round meanwhile: this one is covered.
        Err(StoreError::WitnessGoesBack { .. }) => Ok(()),
        Err(error) => {
            tracing::warn!(%error, size, "could not mark the publication round for the other front-ends; trying again");
            Err(size)
        }
    }
}
