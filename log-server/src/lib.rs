//! # cairn-log
//!
//! The Cairn log server. This crate holds the durable heart of the log:
//!
//! - [`storage`]: one trait, [`storage::LogStore`], for the whole state of a log (sequenced
//!   entries, the stored hashes of the tree, checkpoints, the dedup index, witness progress,
//!   cosignatures and timestamp tokens), and the embedded backend that keeps it in a directory.
//! - [`sequencer`]: the bounded queue in front of the store that turns concurrent submissions
//!   into batches, one durable append per batch (group commit), and answers each submitter
//!   with its index only once that index is durable.
//!
//! - [`integrator`]: grows the tree over the durable entries and signs checkpoints.
//! - [`completeness`]: the event index whose root every checkpoint of an events log carries,
//!   and the proofs that an answer holds every event of one value.
//! - [`key_history`]: the log's keys across rotations: dual signatures during an overlap, the
//!   key history read, served and logged.
//! - [`publisher`]: gets checkpoints cosigned by witnesses and publishes them.
//! - [`migrate`]: copies an embedded log into the scaled backend and proves the copy.
//! - [`events`]: audit events: roles, the events database beside the log (payloads, indexes,
//!   legal holds), erasure, retention, export.
//! - [`api`]: the tree API (leaves, tiles, proofs, receipts); [`http`]: what it and the `/v1`
//!   routes share (errors and their codes, body reading, the handlers' state); [`routes`]: the
//!   `/v1` routes and the router of the whole API; [`health`]: liveness and readiness, read
//!   from the [`status`] each writer keeps; [`server`] wires everything into one running log;
//!   [`config`] reads `log.toml`, the environment and the command line;
//!   [`key_commands`]: `cairn-log rotate-key`, `retire-key` and `revoke-key`.
//!
//! The modules form layers, each naming only those below it (`tests/import-cycles.py` finds
//! no cycle): `os`, [`status`] and [`storage`] (its seams, and the backends that implement
//! them) at the bottom; then [`sequencer`], [`metrics`], [`key_history`], [`events`],
//! [`completeness`], [`publisher`], [`health`] and [`integrator`]; then [`http`], [`api`] and
//! [`routes`]; then [`config`]; and [`server`], [`migrate`] and [`key_commands`] at the top.

// One module sets a thread's scheduling class through libc (`os`); nothing else is unsafe.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod completeness;
pub mod config;
pub mod events;
pub mod health;
pub mod http;
pub mod integrator;
pub mod key_commands;
pub mod key_history;
pub mod metrics;
pub mod migrate;
mod os;
pub mod publisher;
pub mod routes;
pub mod sequencer;
pub mod server;
pub mod status;
pub mod storage;

pub use sequencer::{DurableLeafHashes, Sequenced, Sequencer, SequencerConfig, SequencerError};

pub use storage::{
    DedupKey, DuplicateHit, Entry, IdempotencyKey, LogStore, NewEntry, StoreError, StoreLimits,
    StoredCheckpoint,
};
