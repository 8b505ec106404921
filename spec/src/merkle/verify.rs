//! Merkle tree proofs of RFC 9162 §2.1.3 (inclusion) and §2.1.4 (consistency).
//!
//! A log of `tree_size` leaves is summarised by one root hash. An inclusion proof shows that the
//! leaf at `leaf_index` is in the tree with that root; a consistency proof shows that the tree of
//! `old_size` leaves is a prefix of the tree of `new_size` leaves, that is, the log only appended.
//! Both are lists of sibling hashes; the verifier recomputes the root(s) from them and compares.
//!
//! The verification functions here follow the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2
//! step by step. They take the proof as a slice of [`Hash`] and never panic.

use crate::hash::Hash;

/// The most hashes an inclusion proof can need: one per level of a tree of 2^64 leaves.
pub const MAX_INCLUSION_PROOF_LEN: usize = 64;

/// The most hashes a consistency proof can need for trees of up to 2^64 leaves.
pub const MAX_CONSISTENCY_PROOF_LEN: usize = 128;

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {leaf_index} is not below tree size {tree_size}")]
    IndexOutOfRange {
        /// The index that was asked for.
        leaf_index: u64,
        /// The size of the tree.
        tree_size: u64,
    },
    /// The older tree is larger than the newer one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizesOutOfOrder {
        /// The older tree size.
        old_size: u64,
        /// The newer tree size.
        new_size: u64,
    },
    /// The proof has a different number of hashes than the sizes require.
    #[error("proof has {found} hashes, expected {expected}")]
    WrongProofLength {
        /// How many hashes the tree sizes require.
        expected: usize,
        /// How many the proof has.
        found: usize,
    },
    /// The proof is longer than any proof can be.
    #[error("proof has {found} hashes, more than the limit of {limit}")]
    ProofTooLong {
        /// How many hashes the proof has.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// The root recomputed from the proof is not the expected root.
    #[error("root computed from the proof is {computed}, expected {expected}")]
    RootMismatch {
        /// The root the verifier was given.
        expected: Hash,
        /// The root the proof leads to.
        computed: Hash,
    },
    /// Two trees of the same size have different roots.
    #[error("trees of equal size {tree_size} have different roots {old_root} and {new_root}")]
    DifferentRootsForSameSize {
        /// The size of both trees.
        tree_size: u64,
        /// The root of the first tree.
        old_root: Hash,
        /// The root of the second tree.
        new_root: Hash,
    },
    /// The empty tree was given a root other than the hash of the empty string.
    #[error("the empty tree's root must be {expected}, found {found}")]
    BadEmptyRoot {
        /// SHA-256 of the empty string.
        expected: Hash,
        /// The root given.
        found: Hash,
    },
}

/// The number of hashes in the inclusion proof of `leaf_index` in a tree of `tree_size`.
///
/// The proof has one hash per level on the path from the leaf to the root, minus the levels where
/// the path node has no sibling because it is the last, lone node of its level.
pub fn inclusion_proof_len(leaf_index: u64, tree_size: u64) -> Result<usize, ProofError> {
    if leaf_index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            leaf_index,
            tree_size,
        });
    }
    // Levels below the point where the paths to the leaf and to the last leaf join all have
    // siblings; above it, the path runs along the right edge, which has a sibling exactly
    // where the last leaf index has a one bit.
    let last = tree_size - 1;
    let inner = 64 - (leaf_index ^ last).leading_zeros();
    let border = leaf_index.checked_shr(inner).unwrap_or(0).count_ones();
    Ok((inner + border) as usize)
}

/// Checks that an inclusion proof of `leaf_index` in a tree of `tree_size` leaves may have
/// `proof_len` hashes: the index is inside the tree, and the length is the one the sizes give
/// (so at most [`MAX_INCLUSION_PROOF_LEN`]).
pub(crate) fn check_inclusion_proof_len(
    leaf_index: u64,
    tree_size: u64,
    proof_len: usize,
) -> Result<(), ProofError> {
    if proof_len > MAX_INCLUSION_PROOF_LEN {
        return Err(ProofError::ProofTooLong {
            found: proof_len,
            limit: MAX_INCLUSION_PROOF_LEN,
        });
    }
    let expected = inclusion_proof_len(leaf_index, tree_size)?;
    if proof_len != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            found: proof_len,
        });
    }
    Ok(())
}

/// Where an inclusion proof's computation stands (RFC 9162 §2.1.3.2): the index of the node
/// whose hash it holds, and the last index of that node's level. Each hash of the proof is one
/// [`PathPosition::climb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathPosition {
    node_index: u64,
    last_index: u64,
}

impl PathPosition {
    /// The position of the leaf at `leaf_index` in a tree of `tree_size` leaves (at least one:
    /// [`check_inclusion_proof_len`] has refused an empty tree).
    pub(crate) fn of_leaf(leaf_index: u64, tree_size: u64) -> PathPosition {
        PathPosition {
            node_index: leaf_index,
            last_index: tree_size.saturating_sub(1),
        }
    }

    /// The hash of the parent of the node whose hash is `computed`, with its proof's next hash
    /// `sibling`; moves to the parent's position.
    #[inline]
    pub(crate) fn climb(&mut self, computed: &Hash, sibling: &Hash) -> Hash {
        let parent = if self.node_index & 1 == 1 || self.node_index == self.last_index {
            // A right child, or the last lone node: climb past the levels where the node is
            // promoted without a sibling.
            while self.node_index & 1 == 0 && self.node_index != 0 {
                self.node_index >>= 1;
                self.last_index >>= 1;
            }
            Hash::of_node(sibling, computed)
        } else {
            Hash::of_node(computed, sibling)
        };
        self.node_index >>= 1;
        self.last_index >>= 1;
        parent
    }
}

/// Recomputes the root of a tree of `tree_size` leaves from the leaf hash at `leaf_index` and
/// its inclusion proof (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    check_inclusion_proof_len(leaf_index, tree_size, proof.len())?;
    let mut position = PathPosition::of_leaf(leaf_index, tree_size);
    let mut computed = *leaf_hash;
    for sibling in proof {
        computed = position.climb(&computed, sibling);
    }
    Ok(computed)
}

/// Verifies that `leaf_hash` is at `leaf_index` in the tree of `tree_size` leaves with `root`.
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with `old_root` is a prefix of the tree of
/// `new_size` leaves with `new_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots. Every tree extends the empty tree, so an
/// old size of zero needs an empty proof and the empty tree's root.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if proof.len() > MAX_CONSISTENCY_PROOF_LEN {
        return Err(ProofError::ProofTooLong {
            found: proof.len(),
            limit: MAX_CONSISTENCY_PROOF_LEN,
        });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                found: proof.len(),
            });
        }
        if old_size == 0 {
            let empty = Hash::empty_tree();
            if *old_root != empty {
                return Err(ProofError::BadEmptyRoot {
                    expected: empty,
                    found: *old_root,
                });
            }
            return Ok(());
        }
        if old_root != new_root {
            return Err(ProofError::DifferentRootsForSameSize {
                tree_size: old_size,
                old_root: *old_root,
                new_root: *new_root,
            });
        }
        return Ok(());
    }

    let expected = consistency_proof_len(old_size, new_size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            found: proof.len(),
        });
    }

    // When the old tree is a perfect subtree of the new one, its root is the first node of the
    // path and the proof omits it.
    let mut path = proof.iter();
    let first = if old_size.is_power_of_two() {
        *old_root
    } else {
        match path.next() {
            Some(hash) => *hash,
            None => return Err(ProofError::WrongProofLength { expected, found: 0 }),
        }
    };

    let mut node_index = old_size - 1;
    let mut last_index = new_size - 1;
    while node_index & 1 == 1 {
        node_index >>= 1;
        last_index >>= 1;
    }
    let mut old_computed = first;
    let mut new_computed = first;
    for sibling in path {
        if last_index == 0 {
            return Err(ProofError::WrongProofLength {
                expected,
                found: proof.len(),
            });
        }
        if node_index & 1 == 1 || node_index == last_index {
            old_computed = Hash::of_node(sibling, &old_computed);
            new_computed = Hash::of_node(sibling, &new_computed);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            new_computed = Hash::of_node(&new_computed, sibling);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    if old_computed != *old_root {
        return Err(ProofError::RootMismatch {
            expected: *old_root,
            computed: old_computed,
        });
    }
    if new_computed != *new_root {
        return Err(ProofError::RootMismatch {
            expected: *new_root,
            computed: new_computed,
        });
    }
    if last_index != 0 {
        return Err(ProofError::WrongProofLength {
            expected,
            found: proof.len(),
        });
    }
    Ok(())
}

/// The number of hashes in the consistency proof between trees of `old_size` and `new_size`
/// leaves, for `0 < old_size < new_size`.
pub fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    if old_size == 0 || old_size >= new_size {
        return 0;
    }
    // The proof is the inclusion proof of the old tree's last leaf in the new tree, with the
    // levels below the largest perfect subtree that ends at old_size collapsed into one node,
    // plus that node itself unless it is the whole old tree.
    let old_last = old_size - 1;
    let new_last = new_size - 1;
    let shift = old_last.trailing_ones();
    let inner = 64 - ((old_last ^ new_last) >> shift).leading_zeros();
    let border = old_last
        .checked_shr(shift + inner)
        .unwrap_or(0)
        .count_ones();
    let start = usize::from(!old_size.is_power_of_two());
    start + (inner + border) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::reference::{
        reference_consistency, reference_inclusion, reference_root, sample_leaves as leaves,
    };

    #[test]
    fn every_inclusion_proof_of_small_trees_verifies_and_has_the_predicted_length() {
        let all = leaves(70);
        for size in 1..=all.len() {
            let root = reference_root(&all[..size]);
            for index in 0..size {
                let proof = reference_inclusion(index, &all[..size]);
                assert_eq!(
                    inclusion_proof_len(index as u64, size as u64),
                    Ok(proof.len()),
                    "length for index {index} size {size}"
                );
                assert_eq!(
                    verify_inclusion(index as u64, size as u64, &all[index], &proof, &root),
                    Ok(()),
                    "index {index} size {size}"
                );
                let other = Hash::of_leaf(b"not in the tree");
                assert!(
                    verify_inclusion(index as u64, size as u64, &other, &proof, &root).is_err()
                );
            }
        }
    }

    #[test]
    fn every_consistency_proof_of_small_trees_verifies_and_has_the_predicted_length() {
        let all = leaves(70);
        for new_size in 1..=all.len() {
            let new_root = reference_root(&all[..new_size]);
            for old_size in 1..new_size {
                let old_root = reference_root(&all[..old_size]);
                let proof = reference_consistency(old_size, &all[..new_size]);
                assert_eq!(
                    consistency_proof_len(old_size as u64, new_size as u64),
                    proof.len(),
                    "length for {old_size} -> {new_size}"
                );
                assert_eq!(
                    verify_consistency(
                        old_size as u64,
                        new_size as u64,
                        &old_root,
                        &new_root,
                        &proof
                    ),
                    Ok(()),
                    "{old_size} -> {new_size}"
                );
                let mut bad = proof.clone();
                bad[0].0[0] ^= 1;
                assert!(verify_consistency(
                    old_size as u64,
                    new_size as u64,
                    &old_root,
                    &new_root,
                    &bad
                )
                .is_err());
            }
        }
    }

    #[test]
    fn rejects_leaf_index_at_or_past_tree_size() {
        let leaf = Hash::of_leaf(b"x");
        assert_eq!(
            verify_inclusion(1, 1, &leaf, &[], &leaf),
            Err(ProofError::IndexOutOfRange {
                leaf_index: 1,
                tree_size: 1
            })
        );
        assert!(verify_inclusion(0, 0, &leaf, &[], &leaf).is_err());
        assert!(verify_inclusion(u64::MAX, u64::MAX, &leaf, &[], &leaf).is_err());
    }

    #[test]
    fn same_size_needs_same_root_and_empty_proof() {
        let a = Hash::of_leaf(b"a");
        let b = Hash::of_leaf(b"b");
        assert_eq!(verify_consistency(5, 5, &a, &a, &[]), Ok(()));
        assert!(matches!(
            verify_consistency(5, 5, &a, &b, &[]),
            Err(ProofError::DifferentRootsForSameSize { .. })
        ));
        assert!(verify_consistency(5, 5, &a, &a, &[b]).is_err());
        assert!(verify_consistency(6, 5, &a, &a, &[]).is_err());
        assert_eq!(
            verify_consistency(0, 9, &Hash::empty_tree(), &a, &[]),
            Ok(())
        );
        assert!(verify_consistency(0, 9, &a, &a, &[]).is_err());
    }

    #[test]
    fn oversized_proofs_are_refused_before_any_hashing() {
        let a = Hash::of_leaf(b"a");
        let long = vec![a; 1000];
        assert!(matches!(
            verify_inclusion(3, 10, &a, &long, &a),
            Err(ProofError::ProofTooLong { .. })
        ));
        assert!(matches!(
            verify_consistency(3, 10, &a, &a, &long),
            Err(ProofError::ProofTooLong { .. })
        ));
    }
}
