//! # cairn-spec
//!
//! The Cairn protocol as a pure library: no I/O, no async, no clocks and no randomness of its
//! own (callers pass the time and a random source where a format needs them). Every other Cairn
//! crate builds on it, and every proof Cairn hands out is checked by it.
//!
//! One module a concept:
//! - [`hash`]: RFC 9162 §2.1 leaf and node hashes.
//! - [`merkle`]: RFC 9162 §2.1 tree math: roots, inclusion and consistency proofs (building and
//!   verifying), stored-hash order, the compact range a log appends with.
//! - [`tiles`]: C2SP tlog-tiles: tile and entry-bundle paths and bytes, which tiles a tree and
//!   a proof need, a hash reader over tiles that checks them against the signed root.
//!
//! Parsing is strict and bounded: every length read from input is checked against a limit before
//! anything is allocated, and bad input gives a typed error that says what was expected and what
//! was found. Nothing here panics on input.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod hash;
pub mod merkle;
pub mod tiles;

pub use hash::Hash;
