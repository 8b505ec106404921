//! What every handler shares ([`AppState`]), and two small things each needs: the published
//! checkpoint, and storage work run off the runtime's workers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::error::{ApiError, ErrorCode};
use crate::completeness::CompletenessIndex;
use crate::events::auth::Principals;
use crate::events::Events;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::publisher::Published;
use crate::sequencer::Sequencer;
use crate::storage::LogStore;

/// Limits of the API.
#[derive(Clone, Debug)]
pub struct ApiLimits {
    /// The largest leaf, in bytes.
    pub max_leaf_bytes: usize,
    /// The largest /add-batch body, in bytes.
    pub max_batch_body_bytes: usize,
    /// The longest `?wait=checkpoint` wait.
    pub checkpoint_wait: Duration,
    /// Most events in one `POST /v1/events/batch`.
    pub max_batch_events: usize,
}

/// Everything the handlers share.
pub struct AppState {
    /// The log's state.
    pub store: Arc<dyn LogStore>,
    /// The sequencer in front of it.
    pub sequencer: Arc<Sequencer>,
    /// The latest published checkpoint.
    pub published: watch::Receiver<Option<Published>>,
    /// Principals (producers, readers, admins), reloadable.
    pub principals: Arc<Principals>,
    /// Audit events: their database, submission and admin actions.
    pub events: Arc<Events>,
    /// The completeness index whose root every checkpoint carries, which proven answers are
    /// made from; `None` on a log that keeps none (`completeness_index = false`).
    pub completeness: Option<Arc<CompletenessIndex>>,
    /// The log's key, to sign again an older checkpoint for a receipt at an older size.
    pub signer: crate::key_history::LogSigner,
    /// How many cosignatures a published checkpoint carries at least.
    pub quorum: usize,
    /// Limits.
    pub limits: ApiLimits,
    /// What a `?wait=checkpoint` receipt waits for.
    pub receipts: super::receipt::ReceiptWait,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Readiness.
    pub health: Arc<Health>,
}

/// The latest published checkpoint, or 503 `no_checkpoint` before the first.
pub(crate) fn published(state: &AppState) -> Result<Published, ApiError> {
    state.published.borrow().clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NoCheckpoint,
            "no checkpoint has been published yet",
        )
    })
}

/// Runs `work` (storage reads that block) on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::internal(format!("worker failed: {error}")))?
}
