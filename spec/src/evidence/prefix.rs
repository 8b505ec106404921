//! Prefix proofs: the hashes of a larger tree that fix both its root and the root of its first
//! leaves, the proof `not-an-extension` evidence carries.

use crate::hash::Hash;
use crate::merkle::{ProofError, MAX_CONSISTENCY_PROOF_LEN};

/// The hashes of a tree of `new_size` leaves that fix both its root and the root of its first
/// `old_size` leaves: the RFC 9162 §2.1.4.1 consistency proof, preceded by the root of the first
/// `old_size` leaves when `old_size` is a power of two (the RFC leaves that hash out, as the
/// verifier is supposed to know it): `old_subtree` is that root, used only then.
pub fn prefix_proof(
    old_size: u64,
    consistency_proof: &[Hash],
    old_subtree: Option<Hash>,
) -> Vec<Hash> {
    let mut proof = Vec::with_capacity(consistency_proof.len() + 1);
    if old_size.is_power_of_two() {
        if let Some(hash) = old_subtree {
            proof.push(hash);
        }
    }
    proof.extend_from_slice(consistency_proof);
    proof
}

/// The roots of the first `old_size` leaves and of all `new_size` leaves that a prefix proof
/// (see [`prefix_proof`]) fixes, following RFC 9162 §2.1.4.2 step by step.
pub fn roots_from_prefix_proof(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
) -> Result<(Hash, Hash), ProofError> {
    if old_size == 0 || old_size >= new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if proof.len() > MAX_CONSISTENCY_PROOF_LEN + 1 {
        return Err(ProofError::ProofTooLong {
            found: proof.len(),
            limit: MAX_CONSISTENCY_PROOF_LEN + 1,
        });
    }
    let (first, rest) = proof.split_first().ok_or(ProofError::WrongProofLength {
        expected: 1,
        found: 0,
    })?;
    let mut old_node = old_size - 1;
    let mut new_node = new_size - 1;
    // With the old root given explicitly (a power of two), the RFC's step 1 has been done.
    if !old_size.is_power_of_two() {
        while old_node & 1 == 1 {
            old_node >>= 1;
            new_node >>= 1;
        }
    } else {
        let shift = old_size.trailing_zeros();
        old_node >>= shift;
        new_node >>= shift;
    }
    let mut old_root = *first;
    let mut new_root = *first;
    for hash in rest {
        if new_node == 0 {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                found: proof.len(),
            });
        }
        if old_node & 1 == 1 || old_node == new_node {
            old_root = Hash::of_node(hash, &old_root);
            new_root = Hash::of_node(hash, &new_root);
            if old_node & 1 == 0 {
                while old_node & 1 == 0 && old_node != 0 {
                    old_node >>= 1;
                    new_node >>= 1;
                }
            }
        } else {
            new_root = Hash::of_node(&new_root, hash);
        }
        old_node >>= 1;
        new_node >>= 1;
    }
    if new_node != 0 {
        return Err(ProofError::WrongProofLength {
            expected: proof.len() + 1,
            found: proof.len(),
        });
    }
    Ok((old_root, new_root))
}
