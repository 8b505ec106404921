//! # cairn-spec
//!
//! The Cairn protocol as a pure library: no I/O, no async, no clocks and no randomness of its
//! own (callers pass the time and a random source where a format needs them). Every other Cairn
//! crate builds on it, and every proof Cairn hands out is checked by it.
//!
//! One module a concept:
//! - [`event`]: Cairn audit events, validated, and the canonical leaves they become: schema 1
//!   (in clear) or schema 2 (personal fields only as salted commitments), keyed index tags.
//! - [`export`]: `cairn.export/v1` and `/v2`, bundles of events with payloads or openings and
//!   proofs, verified offline.
//! - [`evidence`]: `cairn.evidence/v1`, portable proof that a log signed incompatible trees.
//! - [`hash`]: RFC 9162 §2.1 leaf and node hashes.
//! - [`jcs`]: strict JSON and the RFC 8785 canonical form (audit events become leaves in it).
//! - [`time`]: the one point-in-time type (`Instant`) and civil calendar; RFC 3339 text.
//! - [`merkle`]: RFC 9162 §2.1 tree math: roots, inclusion and consistency proofs (building and
//!   verifying), stored-hash order, the compact range a log appends with.
//! - [`note`]: C2SP signed-note: signed notes, key names and IDs, Ed25519 vkeys and signer keys
//!   of every kind (a log's note key, a witness's cosigner key) as one type.
//! - [`checkpoint`]: C2SP tlog-checkpoint: a log's signed tree head.
//! - [`completeness`]: the event index that checkpoints commit to, and proofs that a query's
//!   answer holds every matching event (`cairn.index/v1`).
//! - [`cosignature`]: C2SP tlog-cosignature: timestamped Ed25519 `cosignature/v1` witness
//!   cosignatures.
//! - [`key_history`]: a log's or witness's signed, append-only key history: which keys may
//!   sign which tree sizes, across rotations, retirements and revocations.
//! - [`policy`]: C2SP tlog-policy, with Cairn's trusted-TSA lines: whom a verifier trusts.
//! - [`receipt`]: the portable proof of one leaf, its JSON form, its offline verification,
//!   and C2SP tlog-proof export.
//! - [`witness`]: C2SP tlog-witness `add-checkpoint`: request and response bodies, and the
//!   witness's decision as a pure function.
//! - [`timestamp`]: RFC 3161 timestamps of checkpoints: requests, verification, a pure issuer.
//! - [`tiles`]: C2SP tlog-tiles: tile and entry-bundle paths and bytes, which tiles a tree and
//!   a proof need, a hash reader over tiles that checks them against the signed root.
//!
//! Parsing is strict and bounded: every length read from input is checked against a limit before
//! anything is allocated, and bad input gives a typed error that says what was expected and what
//! was found. Nothing here panics on input.

// `unsafe` is allowed in one module only, hash::lanes (SHA-NI intrinsics), and said why there.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod checkpoint;
pub mod completeness;
pub mod cosignature;
pub mod event;
pub mod evidence;
#[doc(hidden)]
pub mod example;
pub mod export;
pub mod hash;
pub mod jcs;
pub mod key_history;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod receipt;
pub mod tiles;
pub mod time;
pub mod timestamp;
pub mod witness;

pub use hash::Hash;
