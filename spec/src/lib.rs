//! # cairn-spec
//!
//! The Cairn protocol as a pure library: no I/O, no async, no clocks and no randomness of its
//! own (callers pass the time and a random source where a format needs them). Every other Cairn
//! crate builds on it, and every proof Cairn hands out is checked by it.
//!
//! One module a concept:
//! - [`hash`]: RFC 9162 §2.1 leaf and node hashes.
//! - [`timestamp`]: RFC 3161 timestamps of checkpoints: requests, verification, a pure issuer.
//!
//! Parsing is strict and bounded: every length read from input is checked against a limit before
//! anything is allocated, and bad input gives a typed error that says what was expected and what
//! was found. Nothing here panics on input.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod hash;
pub mod timestamp;

pub use hash::Hash;
