//! # cairn-sqlite
//!
//! The one way Cairn's servers keep their small, trust-critical state: the log's latest
//! checkpoint and witness progress, a witness's cosigned sizes, a monitor's verified trees. Each
//! is one SQLite file that this crate opens, versions and locks the same way, and whose errors it
//! sorts the same way.
//!
//! Why SQLite, in rollback-journal mode (`<name>.sqlite` and, during a write, its `-journal`):
//! - Its atomic commit is specified, and its own test suite injects I/O errors, full disks and
//!   power loss at every write and sync. On ENOSPC or EIO a transaction fails and is rolled
//!   back; the file is never left half-written. sled 0.34, used before, was not: a start on a
//!   full disk left a 0-byte `snap.…generating` file and every later open failed with "Read
//!   corrupted data", also after space was freed.
//! - A start on a full disk needs no new space: an open with no hot journal writes nothing (a
//!   write-ahead log would have to create its `-wal` and `-shm` files first), so a server can
//!   start, serve what it has and say it is not ready, and write again once space is freed.
//! - `synchronous = FULL`: a commit returns once the journal and the database are fsynced, so
//!   whatever a server answers after a commit survives a crash or a power cut.
//!
//! What this crate gives each server:
//! - [`open`]: a database file with those pragmas, its [`Schema`] created (or upgraded) in one
//!   transaction, and its `user_version` checked, so that a file of another version, or another
//!   program's database, is refused rather than misread.
//! - [`write`]: one `BEGIN IMMEDIATE` transaction a write, committed durably or rolled back
//!   whole.
//! - [`lock_dir`]: the exclusive `flock` on `<dir>/lock` that keeps a second process off the
//!   same state (SQLite's own locks only guard transactions).
//! - [`failure_of`]: what a SQLite error means ([`Failure`]): the storage is unavailable for now,
//!   the data is damaged, or the call was refused.
//! - [`holds_sled`]: whether a directory holds the sled database of an older Cairn, which every
//!   server refuses with its reason instead of starting over beside it.

#![forbid(unsafe_code)]

mod failure;
mod lock;
mod open;

pub use failure::{failure_of, Failure};
pub use lock::{holds_sled, lock_dir, DirLock};
pub use open::{open, write, Error, Schema};
pub use rusqlite;
