//! Publishing checkpoints to the bucket, for monitors and mirrors that read the log from there:
//! the lease holder writes the entry bundles and then the `checkpoint` object of every
//! checkpoint it published (stored by the integrator, the tiles it covers synced before, and
//! cosigned by the witness quorum: the note in the bucket carries the cosignatures).
//!
//! Publication comes after the state commit in PostgreSQL and never holds up sequencing: while
//! the bucket fails, entries are still sequenced, the failure is reported (the status behind
//! `/readyz` and one log line per run of failures) and the publication lag
//! (`cairn_log_publication_lag_entries`: durable entries the bucket's checkpoint does not
//! cover) grows, and the next try writes whatever is missing. A front-end that does not hold
//! the lease writes nothing; it reports the lag it sees.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Published;
use crate::metrics::Metrics;
use crate::status::Status;
use crate::storage::scaled::lease::LeaseKeeper;
use crate::storage::scaled::ScaledStore;
use crate::storage::{SequenceStore, StoreError, StoredCheckpoint};

/// The first pause before a failed publication is tried again; doubled up to the longest.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Publishes the checkpoints announced on `published` while this process holds the lease, and
/// keeps the lag metric, until `stop`. `interval` is how often the lag is measured when
/// nothing new is signed.
pub async fn run(
    store: Arc<ScaledStore>,
    lease: Arc<LeaseKeeper>,
    mut published: watch::Receiver<Option<Published>>,
    status: Arc<Status>,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut retry: Option<Duration> = None;
    loop {
        let pause = retry.unwrap_or(interval);
        tokio::select! {
            changed = published.changed(), if retry.is_none() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        let checkpoint = published.borrow_and_update().as_ref().map(stored);
        let (store, lease) = (Arc::clone(&store), Arc::clone(&lease));
        let outcome = tokio::task::spawn_blocking(move || publish_once(&store, &lease, checkpoint))
            .await
            .unwrap_or_else(|error| {
                Err(StoreError::Poisoned(format!(
                    "the publication task failed: {error}"
                )))
            });
        match outcome {
            Ok(lag) => {
                metrics.set_publication_lag(lag);
                if let Some(reason) = status.recovered() {
                    tracing::info!(%reason, "publication to the bucket works again");
                }
                retry = None;
            }
            Err(error) => {
                if !status.failed(Some(error.to_string())) {
                    tracing::error!(%error, "publishing to the bucket fails; sequencing goes on, publication lags; retrying");
                }
                retry =
                    Some(retry.map_or(FIRST_RETRY_PAUSE, |pause| (pause * 2).min(MAX_RETRY_PAUSE)));
            }
        }
    }
    // A clean stop: the last checkpoint, once more (the next holder publishes it otherwise).
    let checkpoint = published.borrow().as_ref().map(stored);
    match tokio::task::spawn_blocking(move || publish_once(&store, &lease, checkpoint)).await {
        Ok(Ok(lag)) => metrics.set_publication_lag(lag),
        Ok(Err(error)) => {
            tracing::warn!(%error, "the last checkpoint was not published to the bucket; the next lease holder publishes it")
        }
        Err(error) => tracing::warn!(%error, "the last publication task failed"),
    }
}

/// The published checkpoint as the bucket takes it.
fn stored(published: &Published) -> StoredCheckpoint {
    StoredCheckpoint {
        size: published.size,
        note: published.note.clone().into_bytes(),
    }
}

/// Publishes `checkpoint` if this process holds the lease and the bucket's checkpoint is older,
/// and answers the lag after. Blocking.
fn publish_once(
    store: &ScaledStore,
    lease: &LeaseKeeper,
    checkpoint: Option<StoredCheckpoint>,
) -> Result<u64, StoreError> {
    if let Some(checkpoint) = checkpoint {
        if lease.token().is_some() && checkpoint.size > store.bucket().published_size() {
            store.publish(&checkpoint)?;
            tracing::debug!(
                size = checkpoint.size,
                "published a checkpoint to the bucket"
            );
        }
    }
    let durable = store.entry_count();
    Ok(durable.saturating_sub(store.bucket().published_size()))
}
