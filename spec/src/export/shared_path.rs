//! Inclusion proofs of neighbouring leaves checked without hashing their shared path twice.
//!
//! A bundle's events are runs of nearby leaves of one tree, whose paths to the root join a few
//! levels up: of the 20 or so hashes that checking one proof computes (RFC 9162 §2.1.3.2),
//! most were already computed for the leaf before. [`PathCache`] remembers, for the last proof
//! that led to the root, the state of the computation after each of its hashes: the node's
//! position (its index and the last index of its level) and its hash. Each step is the Merkle
//! verifier's own ([`merkle::PathPosition::climb`]), so the two cannot walk a path differently. Checking the next proof,
//! as soon as its computation reaches a state the remembered one was in, at the same step, and
//! the rest of its proof is the same hashes, the rest of the computation would repeat the
//! remembered one hash for hash: it leads to the same root, and the proof verifies without
//! computing it.
//!
//! The answer is always [`merkle::verify_inclusion`]'s: the shortcut is taken only where the
//! remaining computation is the same function of the same inputs; a proof that differs from the
//! remembered one in any hash still to be used, or reaches a different hash, is computed to the
//! end and compared with the root as on its own.

use crate::hash::Hash;
use crate::merkle::{self, PathPosition, ProofError, MAX_INCLUSION_PROOF_LEN};

/// The state of a proof's computation after one of its hashes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Step {
    position: PathPosition,
    computed: Hash,
}

/// The last proof that led to the root, step by step.
pub(super) struct PathCache {
    tree_size: u64,
    root: Hash,
    proof: Vec<Hash>,
    steps: Vec<Step>,
    /// Whether `proof` and `steps` hold a proof that verified.
    valid: bool,
}

impl PathCache {
    /// A cache for proofs into the tree of `tree_size` leaves with `root`.
    pub(super) fn new(tree_size: u64, root: Hash) -> PathCache {
        PathCache {
            tree_size,
            root,
            proof: Vec::with_capacity(MAX_INCLUSION_PROOF_LEN),
            steps: Vec::with_capacity(MAX_INCLUSION_PROOF_LEN),
            valid: false,
        }
    }

    /// [`merkle::verify_inclusion`] of `leaf_hash` at `leaf_index` with `proof` into this
    /// cache's tree, with the same answer.
    pub(super) fn verify(
        &mut self,
        leaf_index: u64,
        leaf_hash: &Hash,
        proof: &[Hash],
    ) -> Result<(), ProofError> {
        merkle::check_inclusion_proof_len(leaf_index, self.tree_size, proof.len())?;
        let mut position = PathPosition::of_leaf(leaf_index, self.tree_size);
        let mut steps = [Step {
            position,
            computed: Hash::default(),
        }; MAX_INCLUSION_PROOF_LEN];
        let mut computed = *leaf_hash;
        for (step, sibling) in proof.iter().enumerate() {
            computed = position.climb(&computed, sibling);
            let state = Step { position, computed };
            steps[step] = state;
            if self.joins(step, &state, &proof[step + 1..]) {
                // The rest is the remembered computation, which led to the root.
                self.remember(proof, &steps[..=step]);
                return Ok(());
            }
        }
        if computed != self.root {
            return Err(ProofError::RootMismatch {
                expected: self.root,
                computed,
            });
        }
        self.remember(proof, &steps[..proof.len()]);
        Ok(())
    }

    /// Whether the remembered proof was in `state` after hash `step` and used `rest` after it.
    fn joins(&self, step: usize, state: &Step, rest: &[Hash]) -> bool {
        self.valid
            && self.steps.get(step) == Some(state)
            && self.proof.get(step + 1..) == Some(rest)
    }

    /// Remembers a proof that verified: `steps` are its states up to where it joined the
    /// remembered proof (all of them when it did not join), past which the remembered states
    /// and hashes are its own too.
    fn remember(&mut self, proof: &[Hash], steps: &[Step]) {
        let computed = steps.len();
        if computed == proof.len() {
            self.steps.clear();
            self.steps.extend_from_slice(steps);
            self.proof.clear();
            self.proof.extend_from_slice(proof);
        } else {
            // It joined: `joins` found the remembered proof as long as this one.
            self.steps[..computed].copy_from_slice(steps);
            self.proof[..computed].copy_from_slice(&proof[..computed]);
        }
        self.valid = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::reference::{reference_inclusion, reference_root, sample_leaves};

    /// The cache's answer and `verify_inclusion`'s, for one proof.
    fn both(
        cache: &mut PathCache,
        index: u64,
        leaf: &Hash,
        proof: &[Hash],
        root: &Hash,
    ) -> (Result<(), ProofError>, Result<(), ProofError>) {
        let size = cache.tree_size;
        (
            cache.verify(index, leaf, proof),
            merkle::verify_inclusion(index, size, leaf, proof, root),
        )
    }

    #[test]
    fn every_leaf_in_any_order_verifies_as_on_its_own() {
        for size in [1usize, 2, 3, 5, 8, 13, 64, 100] {
            let leaves = sample_leaves(size);
            let root = reference_root(&leaves);
            let proofs: Vec<Vec<Hash>> = (0..size)
                .map(|index| reference_inclusion(index, &leaves))
                .collect();
            let mut orders: Vec<Vec<usize>> = vec![(0..size).collect(), (0..size).rev().collect()];
            orders.push((0..size).map(|n| (n * 7 + 3) % size).collect());
            for order in orders {
                let mut cache = PathCache::new(size as u64, root);
                for index in order {
                    let (cached, alone) = both(
                        &mut cache,
                        index as u64,
                        &leaves[index],
                        &proofs[index],
                        &root,
                    );
                    assert_eq!(cached, alone, "size {size}, leaf {index}");
                    assert_eq!(cached, Ok(()));
                }
            }
        }
    }

    /// After the proof of each leaf verified, every changed hash of the next leaf's proof, of
    /// its leaf hash, or its index, is refused exactly as on its own: above all a hash past the
    /// point where its path joins the one remembered.
    #[test]
    fn a_changed_byte_after_a_verified_neighbour_is_refused_as_on_its_own() {
        for size in [2usize, 7, 16, 33] {
            let leaves = sample_leaves(size);
            let root = reference_root(&leaves);
            for index in 1..size {
                let proof = reference_inclusion(index, &leaves);
                let mut changes: Vec<(u64, Hash, Vec<Hash>)> = Vec::new();
                for (position, hash) in proof.iter().enumerate() {
                    for byte in [0, 31] {
                        let mut changed = proof.clone();
                        let mut bytes = hash.0;
                        bytes[byte] ^= 0x01;
                        changed[position] = Hash(bytes);
                        changes.push((index as u64, leaves[index], changed));
                    }
                }
                let mut other_leaf = leaves[index].0;
                other_leaf[0] ^= 0x80;
                changes.push((index as u64, Hash(other_leaf), proof.clone()));
                // The neighbour's leaf and proof at this index, and this leaf at the next one.
                changes.push((
                    index as u64,
                    leaves[index - 1],
                    reference_inclusion(index - 1, &leaves),
                ));
                if index + 1 < size {
                    changes.push(((index + 1) as u64, leaves[index], proof.clone()));
                }
                let mut shorter = proof.clone();
                shorter.pop();
                changes.push((index as u64, leaves[index], shorter));
                for (changed_index, leaf, changed) in changes {
                    let mut cache = PathCache::new(size as u64, root);
                    let neighbour = reference_inclusion(index - 1, &leaves);
                    assert_eq!(
                        cache.verify((index - 1) as u64, &leaves[index - 1], &neighbour),
                        Ok(())
                    );
                    let (cached, alone) = both(&mut cache, changed_index, &leaf, &changed, &root);
                    assert_eq!(cached, alone, "size {size}, leaf {index}");
                    assert!(cached.is_err(), "size {size}, leaf {index}: {changed:?}");
                    // A refused proof leaves the cache as it was: the true proof still verifies.
                    let (cached, alone) =
                        both(&mut cache, index as u64, &leaves[index], &proof, &root);
                    assert_eq!((cached, alone), (Ok(()), Ok(())));
                }
            }
        }
    }

    #[test]
    fn a_wrong_root_is_never_joined() {
        let leaves = sample_leaves(9);
        let root = reference_root(&leaves);
        let mut wrong = root.0;
        wrong[5] ^= 0x04;
        let mut cache = PathCache::new(9, Hash(wrong));
        for index in 0..9 {
            let proof = reference_inclusion(index, &leaves);
            assert!(matches!(
                cache.verify(index as u64, &leaves[index], &proof),
                Err(ProofError::RootMismatch { .. })
            ));
        }
    }
}
