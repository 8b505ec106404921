//! Liveness and readiness, kept apart.
//!
//! `/healthz` says the process serves HTTP: a load balancer that restarts a live log because
//! its disk is full would only make things worse. `/readyz` says the log does its job now: its
//! storage takes writes, what it acknowledged is being integrated and signed, and its
//! checkpoints reach the witness quorum. A log that is not ready still serves every read (its
//! published tiles and checkpoint stay true); writes are refused with 503 while storage fails,
//! and everything resumes by itself when the fault clears.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

pub use crate::status::{Readiness, Status};

use crate::publisher::Published;
use crate::sequencer::Sequencer;
use crate::storage::{LogStore, StoredCheckpoint};

/// How each background writer of the log is doing: integration, signing, the object files.
pub struct Writers {
    /// The integrator's storage calls.
    pub integrator: Arc<Status>,
    /// Signing checkpoints (the key in its file or token).
    pub signing: Arc<Status>,
    /// Writing the tile objects.
    pub objects: Arc<Status>,
}

/// The parts whose state readiness reads.
pub struct Health {
    store: Arc<dyn LogStore>,
    sequencer: Arc<Sequencer>,
    integrator: Arc<Status>,
    signing: Arc<Status>,
    objects: Arc<Status>,
    signed: watch::Receiver<Option<StoredCheckpoint>>,
    published: watch::Receiver<Option<Published>>,
    /// How long acknowledged entries may wait for a checkpoint, and a signed checkpoint for
    /// its witnesses, before the log says it is not ready.
    grace: Duration,
    /// When the latest signed and the latest published checkpoint were first seen here.
    seen: Mutex<Seen>,
}

struct Seen {
    signed: (Option<u64>, Instant),
    published: (Option<u64>, Instant),
}

impl Health {
    /// Health over the running parts; `checkpoint_interval` and `witness_timeout` set the
    /// grace ([`Health::grace_for`]).
    pub fn new(
        store: Arc<dyn LogStore>,
        sequencer: Arc<Sequencer>,
        writers: Writers,
        signed: watch::Receiver<Option<StoredCheckpoint>>,
        published: watch::Receiver<Option<Published>>,
        grace: Duration,
    ) -> Health {
        let Writers {
            integrator,
            signing,
            objects,
        } = writers;
        let now = Instant::now();
        let seen = Seen {
            signed: (signed.borrow().as_ref().map(|c| c.size), now),
            published: (published.borrow().as_ref().map(|p| p.size), now),
        };
        Health {
            store,
            sequencer,
            integrator,
            signing,
            objects,
            signed,
            published,
            grace,
            seen: Mutex::new(seen),
        }
    }

    /// How long integration or publication may lag before the log is not ready: several
    /// checkpoint intervals, and more than a round of witness requests with its retries.
    pub fn grace_for(checkpoint_interval: Duration, witness_timeout: Duration) -> Duration {
        (checkpoint_interval * 5)
            .max(witness_timeout * 3)
            .max(Duration::from_secs(10))
    }

    /// The log's readiness now.
    pub fn readiness(&self) -> Readiness {
        let now = Instant::now();
        let mut problems = Vec::new();
        let status = self.sequencer.storage_status();
        if let Some(reason) = status.failing() {
            problems.push(format!("storage refuses appends: {reason}"));
        }
        if let Some(reason) = self.integrator.failing() {
            problems.push(format!("integration fails: {reason}"));
        }
        if let Some(reason) = self.signing.failing() {
            problems.push(format!("signing checkpoints fails: {reason}"));
        }
        if let Some(reason) = self.objects.failing() {
            problems.push(format!("writing the tile objects fails: {reason}"));
        }
        let (background, background_errors) = self.store.background_failures();
        if let Some(reason) = background {
            problems.push(format!("a background write of the store fails: {reason}"));
        }
        let durable = *self.sequencer.durable_size().borrow();
        let signed = self.signed.borrow().as_ref().map(|c| c.size);
        let published = self.published.borrow().as_ref().map(|p| p.size);
        let (signed_since, published_since) = {
            let mut seen = self.seen.lock();
            if seen.signed.0 != signed {
                seen.signed = (signed, now);
            }
            if seen.published.0 != published {
                seen.published = (published, now);
            }
            (seen.signed.1, seen.published.1)
        };
        let signed_size = signed.unwrap_or(0);
        if durable > signed_size && now.duration_since(signed_since) > self.grace {
            problems.push(format!(
                "integration lags: {} acknowledged entries have waited over {} s for a checkpoint",
                durable - signed_size,
                self.grace.as_secs()
            ));
        }
        if signed > published && now.duration_since(published_since) > self.grace {
            problems.push(format!(
                "the witness quorum has not been met for over {} s: checkpoint {} is signed, {} is published",
                self.grace.as_secs(),
                signed_size,
                published.map_or("none".to_string(), |size| size.to_string())
            ));
        }
        Readiness {
            problems,
            storage_errors: [
                ("sequencer", status.errors()),
                ("integrator", self.integrator.errors()),
                ("objects", self.objects.errors()),
                ("background", background_errors),
            ],
            signing_errors: self.signing.errors(),
        }
    }
}
