//! Runs of a key's list: the items at positions `[a, b)` of a list of `n`, proven against the
//! list's root by the hashes of the subtrees around them (completeness.md §3.2).
//!
//! The prover and the verifier walk the same recursion, RFC 9162's MTH over `[0, n)`: a subtree
//! wholly inside the run is hashed from its items, one wholly outside is one proof hash, and any
//! other is split at the largest power of two below its size. So a proof holds at most two
//! hashes per level (128 for any list), none for the whole list, and an item's inclusion proof
//! for a run of one.

use super::Item;
use crate::hash::Hash;
use crate::merkle::{root_from_leaf_hashes, root_from_leaves};

/// The most hashes a range proof can hold: two per level of a tree of 2^64 items.
pub const MAX_RANGE_PROOF_LEN: usize = 128;

/// Why a range proof was not made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The run is empty, or does not lie inside the list.
    #[error("the run [{start}, {end}) is not a non-empty run of a list of {count} items")]
    BadRun {
        /// Its first position.
        start: u64,
        /// One past its last.
        end: u64,
        /// The list's length.
        count: u64,
    },
    /// The proof has too few or too many hashes for the run.
    #[error("the range proof has {found} hashes, the run needs {expected}")]
    WrongProofLength {
        /// How many the run needs.
        expected: usize,
        /// How many were given.
        found: usize,
    },
    /// The root the proof leads to is not the list's.
    #[error("the run and its proof lead to the root {computed}, expected {expected}")]
    RootMismatch {
        /// The list's root.
        expected: Hash,
        /// The root computed.
        computed: Hash,
    },
}

/// The root of a list of items: the RFC 9162 tree hash over their 40-byte forms.
pub fn list_root(items: &[Item]) -> Hash {
    let bytes: Vec<[u8; super::ITEM_SIZE]> = items.iter().map(Item::to_bytes).collect();
    root_from_leaves(&bytes)
}

/// The largest power of two below `size` (which is at least 2).
fn split(size: u64) -> u64 {
    1 << (63 - (size - 1).leading_zeros())
}

fn check_run(start: u64, end: u64, count: u64) -> Result<(), RangeError> {
    if start < end && end <= count {
        Ok(())
    } else {
        Err(RangeError::BadRun { start, end, count })
    }
}

/// The proof that `item_hashes[start..end]` are the items at those positions of the list whose
/// item hashes ([`Item::hash`]) are `item_hashes`.
pub fn range_proof(item_hashes: &[Hash], start: u64, end: u64) -> Result<Vec<Hash>, RangeError> {
    let count = item_hashes.len() as u64;
    check_run(start, end, count)?;
    let mut proof = Vec::new();
    collect(item_hashes, 0, count, start, end, &mut proof);
    Ok(proof)
}

fn collect(hashes: &[Hash], low: u64, high: u64, start: u64, end: u64, proof: &mut Vec<Hash>) {
    if high <= start || low >= end {
        proof.push(root_from_leaf_hashes(&hashes[low as usize..high as usize]));
    } else if start <= low && high <= end {
        // Inside the run: the verifier has these items.
    } else {
        let middle = low + split(high - low);
        collect(hashes, low, middle, start, end, proof);
        collect(hashes, middle, high, start, end, proof);
    }
}

/// Checks that `run` (the hashes of the items at `[start, start + run.len())`) and `proof` lead
/// to `root`, the root of a list of `count` items.
pub fn verify_range(
    count: u64,
    start: u64,
    run: &[Hash],
    proof: &[Hash],
    root: &Hash,
) -> Result<(), RangeError> {
    let end = start.saturating_add(run.len() as u64);
    check_run(start, end, count)?;
    let expected = proof_len(0, count, start, end);
    if proof.len() != expected || expected > MAX_RANGE_PROOF_LEN {
        return Err(RangeError::WrongProofLength {
            expected,
            found: proof.len(),
        });
    }
    let mut next = proof.iter();
    let computed = rebuild(0, count, start, end, run, &mut next);
    if computed != *root {
        return Err(RangeError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}

/// How many proof hashes the run `[start, end)` of the subtree `[low, high)` needs.
fn proof_len(low: u64, high: u64, start: u64, end: u64) -> usize {
    if high <= start || low >= end {
        1
    } else if start <= low && high <= end {
        0
    } else {
        let middle = low + split(high - low);
        proof_len(low, middle, start, end) + proof_len(middle, high, start, end)
    }
}

/// The hash of the subtree `[low, high)`; `next` holds exactly the hashes it needs (counted by
/// [`proof_len`] first).
fn rebuild<'a>(
    low: u64,
    high: u64,
    start: u64,
    end: u64,
    run: &[Hash],
    next: &mut impl Iterator<Item = &'a Hash>,
) -> Hash {
    if high <= start || low >= end {
        // Counted beforehand, so the proof has it.
        next.next().copied().unwrap_or(Hash([0; 32]))
    } else if start <= low && high <= end {
        root_from_leaf_hashes(&run[(low - start) as usize..(high - start) as usize])
    } else {
        let middle = low + split(high - low);
        let left = rebuild(low, middle, start, end, run, next);
        let right = rebuild(middle, high, start, end, run, next);
        Hash::of_node(&left, &right)
    }
}
