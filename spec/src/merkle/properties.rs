//! Property tests of the tree math over random tree sizes: every proof this crate builds
//! verifies, and every proof stops verifying when anything it binds is changed.
//!
//! One thing a proof does not bind by itself is the size of the (newer) tree: the hashes of
//! an inclusion proof for a leaf of a 5-leaf tree are, in the same order, also a valid-looking
//! proof for a 7-leaf tree with the same root, because the proof's shape only depends on the
//! path. RFC 9162 relies on the signed tree head to tie a size to its root; so do checkpoints.
//! The size properties below are therefore stated against the roots of the changed sizes.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::hash::Hash;

/// The largest tree the properties draw sizes from.
const MAX_SIZE: u64 = 4096;
/// Sizes flipped by one bit stay below this, so their true roots are known.
const UNIVERSE: u64 = 2 * MAX_SIZE;

struct Universe {
    leaves: Vec<Hash>,
    /// Stored hashes of the whole universe in stored-hash order; a tree of `n` leaves has the
    /// first `stored_hash_count(n)` of them.
    stored: Vec<Hash>,
    /// `roots[n]` is the root of the first `n` leaves.
    roots: Vec<Hash>,
}

impl Universe {
    fn stored_for(&self, tree_size: u64) -> &[Hash] {
        let count = stored_hash_count(tree_size).expect("small tree") as usize;
        &self.stored[..count]
    }
}

fn universe() -> &'static Universe {
    static UNIVERSE_CELL: OnceLock<Universe> = OnceLock::new();
    UNIVERSE_CELL.get_or_init(|| {
        let leaves = super::reference::sample_leaves(UNIVERSE as usize);
        let mut range = CompactRange::new();
        let mut stored = Vec::new();
        let mut roots = vec![range.root()];
        for leaf in &leaves {
            range
                .append_with(*leaf, |_, hash| stored.push(*hash))
                .expect("small tree");
            roots.push(range.root());
        }
        Universe {
            leaves,
            stored,
            roots,
        }
    })
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut flipped = *hash;
    flipped.0[bit / 8 % 32] ^= 1 << (bit % 8);
    flipped
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn every_inclusion_and_consistency_proof_of_a_tree_verifies(tree_size in 1..=MAX_SIZE) {
        let universe = universe();
        let stored = universe.stored_for(tree_size);
        let root = universe.roots[tree_size as usize];
        prop_assert_eq!(tree_root(tree_size, stored), Ok(root));
        for leaf_index in 0..tree_size {
            let proof = inclusion_proof(leaf_index, tree_size, stored).expect("leaf in tree");
            let leaf = universe.leaves[leaf_index as usize];
            prop_assert_eq!(verify_inclusion(leaf_index, tree_size, &leaf, &proof, &root), Ok(()));
        }
        for old_size in 0..=tree_size {
            let proof = consistency_proof(old_size, tree_size, stored).expect("sizes in order");
            let old_root = universe.roots[old_size as usize];
            prop_assert_eq!(
                verify_consistency(old_size, tree_size, &old_root, &root, &proof),
                Ok(())
            );
        }
    }

    #[test]
    fn a_changed_bit_breaks_an_inclusion_proof(
        tree_size in 1..=MAX_SIZE,
        leaf_seed in any::<u64>(),
        which_hash in any::<usize>(),
        bit in 0..256usize,
        number_bit in 0..13u32,
    ) {
        let universe = universe();
        let stored = universe.stored_for(tree_size);
        let leaf_index = leaf_seed % tree_size;
        let leaf = universe.leaves[leaf_index as usize];
        let root = universe.roots[tree_size as usize];
        let proof = inclusion_proof(leaf_index, tree_size, stored).expect("leaf in tree");

        if !proof.is_empty() {
            let mut bad = proof.clone();
            let position = which_hash % bad.len();
            bad[position] = flip(&bad[position], bit);
            prop_assert!(verify_inclusion(leaf_index, tree_size, &leaf, &bad, &root).is_err());
        }
        prop_assert!(verify_inclusion(leaf_index, tree_size, &leaf, &proof, &flip(&root, bit)).is_err());
        prop_assert!(verify_inclusion(leaf_index, tree_size, &flip(&leaf, bit), &proof, &root).is_err());

        let other_index = leaf_index ^ (1 << number_bit);
        prop_assert!(verify_inclusion(other_index, tree_size, &leaf, &proof, &root).is_err());

        // Against the root of the tree at the changed size, unless the honest proof at that size
        // is this very proof (then the statement is true, not forged).
        let other_size = tree_size ^ (1 << number_bit);
        if other_size > leaf_index {
            let other_root = universe.roots[other_size as usize];
            let honest = inclusion_proof(leaf_index, other_size, universe.stored_for(other_size))
                .expect("leaf in the other tree");
            let verdict = verify_inclusion(leaf_index, other_size, &leaf, &proof, &other_root);
            prop_assert_eq!(verdict.is_ok(), honest == proof);
        }
    }

    #[test]
    fn a_changed_bit_breaks_a_consistency_proof(
        new_size in 2..=MAX_SIZE,
        old_seed in any::<u64>(),
        which_hash in any::<usize>(),
        bit in 0..256usize,
        size_bit in 0..13u32,
    ) {
        let universe = universe();
        let old_size = 1 + old_seed % (new_size - 1);
        let old_root = universe.roots[old_size as usize];
        let new_root = universe.roots[new_size as usize];
        let proof = consistency_proof(old_size, new_size, universe.stored_for(new_size))
            .expect("sizes in order");
        prop_assert!(!proof.is_empty());

        let mut bad = proof.clone();
        let position = which_hash % bad.len();
        bad[position] = flip(&bad[position], bit);
        prop_assert!(verify_consistency(old_size, new_size, &old_root, &new_root, &bad).is_err());
        prop_assert!(
            verify_consistency(old_size, new_size, &flip(&old_root, bit), &new_root, &proof).is_err()
        );
        prop_assert!(
            verify_consistency(old_size, new_size, &old_root, &flip(&new_root, bit), &proof).is_err()
        );

        // The old size is bound by the old root the proof rebuilds.
        let other_old = old_size ^ (1 << size_bit);
        prop_assert!(
            verify_consistency(other_old, new_size, &old_root, &new_root, &proof).is_err()
        );
        // The new size, like an inclusion proof's tree size, only against its own root.
        let other_new = new_size ^ (1 << size_bit);
        if other_new >= old_size {
            let other_root = universe.roots[other_new as usize];
            let honest = consistency_proof(old_size, other_new, universe.stored_for(other_new))
                .expect("sizes in order");
            let verdict = verify_consistency(old_size, other_new, &old_root, &other_root, &proof);
            prop_assert_eq!(verdict.is_ok(), honest == proof);
        }
    }

    #[test]
    fn compact_range_root_equals_the_root_from_scratch(
        tree_size in 0..=MAX_SIZE,
        chunk in 1..600usize,
    ) {
        let universe = universe();
        let leaves = &universe.leaves[..tree_size as usize];
        let mut range = CompactRange::new();
        for piece in leaves.chunks(chunk) {
            range.extend(piece).expect("small tree");
        }
        prop_assert_eq!(range.root(), root_from_leaf_hashes(leaves));
        prop_assert_eq!(range.root(), universe.roots[tree_size as usize]);
        if tree_size <= 300 {
            prop_assert_eq!(range.root(), super::reference::reference_root(leaves));
        }
    }

    #[test]
    fn restoring_from_stored_hashes_then_appending_equals_appending_from_the_start(
        tree_size in 0..=MAX_SIZE,
        split_seed in any::<u64>(),
    ) {
        let universe = universe();
        let split = split_seed % (tree_size + 1);
        let leaves = &universe.leaves[..tree_size as usize];

        let mut from_start = CompactRange::new();
        let mut nodes_from_start = Vec::new();
        from_start
            .extend_with(leaves, |node, hash| nodes_from_start.push((node, *hash)))
            .expect("small tree");

        let mut restored = CompactRange::from_reader(split, universe.stored_for(split))
            .expect("every hash of the smaller tree is stored");
        let mut nodes_after_restore = Vec::new();
        restored
            .extend_with(&leaves[split as usize..], |node, hash| {
                nodes_after_restore.push((node, *hash))
            })
            .expect("small tree");

        prop_assert_eq!(&restored, &from_start);
        let already_stored = stored_hash_count(split).expect("small tree") as usize;
        prop_assert_eq!(&nodes_from_start[already_stored..], &nodes_after_restore[..]);
    }
}
