//! How the log's writers are doing, and what readiness makes of it: plain state that the
//! writers (the sequencer, the integrator, the publisher and the object writer) update and that
//! [`crate::health`] and [`crate::metrics`] read. It sits below all of them, so that a writer
//! reports without depending on what reads the report.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// How one writer of the log (the sequencer's appends, the integrator, the object writer) is
/// doing: why its writes fail now, if they do, and how many failed since the start. Each
/// writer retries by itself; this is what readiness and the metrics read.
#[derive(Debug, Default)]
pub struct Status {
    failing: Mutex<Option<String>>,
    errors: AtomicU64,
}

impl Status {
    /// Why writes fail now, if they do.
    pub fn failing(&self) -> Option<String> {
        self.failing.lock().clone()
    }

    /// Failed writes since the start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Counts a failure; `reason`, if given, is why writes fail now. Returns whether they were
    /// failing already (so that a caller logs the first failure of a run loudly, not each).
    pub fn failed(&self, reason: Option<String>) -> bool {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut failing = self.failing.lock();
        let already = failing.is_some();
        if let Some(reason) = reason {
            *failing = Some(reason);
        }
        already
    }

    /// Writes succeed again; returns why they had failed, if they had.
    pub fn recovered(&self) -> Option<String> {
        self.failing.lock().take()
    }
}

/// What the log is doing wrong now, if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Why the log is not ready; empty when it is.
    pub problems: Vec<String>,
    /// Failed storage calls since the start, by component (`sequencer`, `integrator`,
    /// `objects`, `background`).
    pub storage_errors: [(&'static str, u64); 4],
    /// Failed checkpoint signatures since the start (the key in its file or token).
    pub signing_errors: u64,
}

impl Readiness {
    /// Whether nothing is wrong.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }
}
