//! Errors of the storage layer. Each says what was expected, what was found and where.

use std::path::PathBuf;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's configuration cannot work.
    #[error("bad storage configuration: {0}")]
    BadConfig(String),
    /// An operating-system call failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Data on disk is not what was written. The store refuses to go on rather than guess.
    #[error("corrupt data in {path} at byte {offset}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where in it.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// The database of small state failed.
    #[error("state database {path}: {detail}")]
    Database {
        /// Its file.
        path: PathBuf,
        /// What it said.
        detail: String,
        /// Whether the failure may clear by itself (a full disk, an I/O error, a lock held),
        /// as opposed to damaged data or a refused operation.
        transient: bool,
    },
    /// An earlier write failed, so what is on disk is unknown: the store accepts no more
    /// appends until it is reopened (and recovered).
    #[error("the store refused a write after an earlier write failed: {0}")]
    Poisoned(String),
    /// An append did not start at the end of the log.
    #[error("append must start at index {expected}, found {found}")]
    NotAtEnd {
        /// The current number of entries.
        expected: u64,
        /// The first index of the append.
        found: u64,
    },
    /// A read asked for something that does not exist (yet).
    #[error("{what} [{start}, {start}+{count}) is out of range: {available} available")]
    OutOfRange {
        /// `"entries"` or `"hashes at level N"`.
        what: String,
        /// First index asked for.
        start: u64,
        /// How many.
        count: u64,
        /// How many exist.
        available: u64,
    },
    /// A limit of [`crate::StoreLimits`] was exceeded.
    #[error("{what} is {found}, the limit is {limit}")]
    LimitExceeded {
        /// What was too big.
        what: &'static str,
        /// Its size.
        found: u64,
        /// The limit.
        limit: u64,
    },
    /// A tree level beyond the last one a 64-bit tree can have.
    #[error("hash level {level} does not exist: levels are 0 to {max}")]
    NoSuchLevel {
        /// The level asked for.
        level: u8,
        /// The highest level.
        max: u8,
    },
    /// Hashes appended to a level did not start at its end.
    #[error("hashes at level {level} must be appended at {expected}, found {found}")]
    HashesNotAtEnd {
        /// The level.
        level: u8,
        /// Its current length.
        expected: u64,
        /// The start of the append.
        found: u64,
    },
    /// More hashes at a level than the entries justify.
    #[error(
        "hash level {level} would hold {found} hashes, the {entries} entries justify {justified}"
    )]
    HashesBeyondEntries {
        /// The level.
        level: u8,
        /// The length after the append.
        found: u64,
        /// How many entries exist.
        entries: u64,
        /// How many hashes they justify.
        justified: u64,
    },
    /// A checkpoint smaller than the stored one: the log never goes back.
    #[error("checkpoint of size {offered} goes back from the stored size {stored}")]
    CheckpointGoesBack {
        /// The stored size.
        stored: u64,
        /// The offered size.
        offered: u64,
    },
    /// A checkpoint larger than what is durable in the store.
    #[error("checkpoint of size {size} covers more than {durable}, {what}")]
    CheckpointAhead {
        /// The checkpoint size.
        size: u64,
        /// What is durable.
        durable: u64,
        /// Which of entries or synced leaf hashes falls short.
        what: &'static str,
    },
    /// A witness's cosigned size that goes back.
    #[error("witness {witness} cosigned size {stored}; {offered} would go back")]
    WitnessGoesBack {
        /// The witness name.
        witness: String,
        /// The stored size.
        stored: u64,
        /// The offered size.
        offered: u64,
    },
    /// A name (witness or timestamp authority) that cannot be stored.
    #[error("name must be 1 to {limit} bytes, found {found}")]
    BadName {
        /// Its length.
        found: usize,
        /// The limit.
        limit: usize,
    },
}

/// What a failure means for whoever called the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The storage is failing for now (a full disk, an I/O error, a write that must be undone
    /// first): the same call may succeed later, and nothing acknowledged was lost.
    Unavailable,
    /// Stored data is not what was written: retrying does not help; an operator must look.
    Corrupt,
    /// The call itself was refused (a limit, an order the store keeps, a bad argument).
    Refused,
}

impl StoreError {
    /// Whether this failure may clear by itself, is damage, or is a refusal of the call.
    pub fn kind(&self) -> FailureKind {
        match self {
            // A store never guesses at damage from an errno: a full disk, an I/O error, a
            // read-only remount may all clear, and what a write left is undone before the next.
            StoreError::Io { .. }
            | StoreError::Poisoned(_)
            | StoreError::Database {
                transient: true, ..
            } => FailureKind::Unavailable,
            StoreError::Database { .. } | StoreError::Corrupt { .. } => FailureKind::Corrupt,
            StoreError::BadConfig(_)
            | StoreError::NotAtEnd { .. }
            | StoreError::OutOfRange { .. }
            | StoreError::LimitExceeded { .. }
            | StoreError::NoSuchLevel { .. }
            | StoreError::HashesNotAtEnd { .. }
            | StoreError::HashesBeyondEntries { .. }
            | StoreError::CheckpointGoesBack { .. }
            | StoreError::CheckpointAhead { .. }
            | StoreError::WitnessGoesBack { .. }
            | StoreError::BadName { .. } => FailureKind::Refused,
        }
    }

    /// Whether the storage is failing for now (see [`FailureKind::Unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        self.kind() == FailureKind::Unavailable
    }

    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> StoreError {
        StoreError::Io {
            operation,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        detail: impl Into<String>,
    ) -> StoreError {
        StoreError::Corrupt {
            path: path.into(),
            offset,
            detail: detail.into(),
        }
    }
}
