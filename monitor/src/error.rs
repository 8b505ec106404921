//! The monitor's own failures, apart from what it finds wrong with a log.
//!
//! A log that misbehaves is reported as an alert ([`crate::alert`]), never as an error: errors
//! here are the monitor's storage, its location settings or its runtime failing, which stop a
//! poll without saying anything about the log. They live in a module of their own because every
//! stage of a growth ([`crate::pipeline`], [`crate::follow`]) returns them, and a stage must not
//! depend on the follower that drives it.

use crate::fetch::BadLocation;

/// Why following failed in a way that is not the log's fault to report as an alert.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Persistent state could not be read or written.
    #[error(transparent)]
    Store(#[from] crate::state::StateError),
    /// Writing an evidence file failed.
    #[error("writing evidence: {0}")]
    Evidence(#[from] std::io::Error),
    /// The verified tree's hash files could not be read or written.
    #[error("hash files: {0}")]
    Hashes(std::io::Error),
    /// The log's location is not one the monitor reads.
    #[error(transparent)]
    Location(#[from] BadLocation),
    /// The configured log key cannot start a key history.
    #[error("the log key: {0}")]
    Keys(String),
    /// The runtime shut down while a verifier or writer thread ran.
    #[error("stopped while verifying")]
    Stopped,
}

/// Reading the verified tree's stored hashes failed.
#[derive(Debug, thiserror::Error)]
#[error("verified hashes: {0}")]
pub struct StoreError(pub(crate) String);
