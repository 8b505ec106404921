//! Liveness and readiness, kept apart as the log keeps them.
//!
//! `/healthz` says the process serves HTTP: restarting a live witness because its disk is full
//! would only make things worse. `/readyz` says the witness does its job now: its storage takes
//! writes, and its checkpoints get timestamps. A witness that is not ready still answers every
//! request: add-checkpoint is refused with 503 and Retry-After while its storage fails (nothing
//! is cosigned that is not durable), and everything resumes by itself when the fault clears
//! (the witness probes its storage while it fails; a TSA counts again at its next token).
//!
//! This module combines what the parts report without asking the anchoring worker itself (its
//! caller passes [`crate::anchor::Anchorer::failing`]'s answer), so that it stays below the
//! metrics, which render a [`Readiness`], and so below the anchoring worker, which counts in
//! the metrics.

use crate::store::Store;

/// What the witness is doing wrong now, if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Why the witness is not ready; empty when it is.
    pub problems: Vec<String>,
    /// Failed storage calls since the start.
    pub storage_errors: u64,
}

impl Readiness {
    /// Whether nothing is wrong.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The readiness of a witness over `store` whose anchoring fails for `anchoring_failure`
/// (`None` when it works, or when the witness has no TSAs).
pub fn readiness(store: &Store, anchoring_failure: Option<String>) -> Readiness {
    let mut problems = Vec::new();
    if let Some(reason) = store.failing() {
        problems.push(format!("storage refuses writes: {reason}"));
    }
    if let Some(reason) = anchoring_failure {
        problems.push(reason);
    }
    Readiness {
        problems,
        storage_errors: store.errors(),
    }
}
