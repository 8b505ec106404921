//! The frontier of a growing tree: what a log keeps in memory to append leaves and sign roots.
//!
//! A tree of `n` leaves is tiled by one perfect subtree per one bit of `n` (13 = 8 + 4 + 1). The
//! hashes of those subtrees, largest first, are all that is needed to compute the root and to
//! keep appending: a new leaf merges with the subtrees of the trailing one bits of `n`, exactly
//! like a carry in binary addition. So the frontier holds at most 62 hashes, each append costs
//! on average one node hash, and no old leaf is ever read again.
//!
//! Each merge completes a perfect subtree whose hash never changes again. [`CompactRange`]
//! reports each one, in stored-hash order, so that a log can persist them (all of them, or only
//! those at the heights its tiles hold) and later serve proofs from them.
//!
//! (The name follows transparency-dev's "compact range"; this one always starts at leaf 0.)

use crate::hash::Hash;

use super::reader::{fold_subtree_roots, tree_root_nodes, HashReader, TreeError};
use super::stored::{NodeId, MAX_TREE_SIZE};

/// The frontier of a tree: the root hashes of the perfect subtrees that tile it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    tree_size: u64,
    /// One hash per one bit of `tree_size`, the largest subtree first.
    frontier: Vec<Hash>,
}

/// A frontier that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactRangeError {
    /// The number of hashes does not match the tree size.
    #[error("a tree of {tree_size} leaves has a frontier of {expected} hashes, found {found}")]
    WrongFrontierLength {
        /// The tree size.
        tree_size: u64,
        /// One per one bit of the tree size.
        expected: usize,
        /// How many were given.
        found: usize,
    },
    /// The tree would grow past [`MAX_TREE_SIZE`].
    #[error("a tree of {tree_size} leaves plus {appended} more is over the limit of {limit}")]
    TreeTooLarge {
        /// The current size.
        tree_size: u64,
        /// How many leaves were to be appended (0 when restoring).
        appended: u64,
        /// [`MAX_TREE_SIZE`].
        limit: u64,
    },
}

impl CompactRange {
    /// The frontier of the empty tree.
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// The frontier of a tree of `tree_size` leaves from the hashes of its perfect subtrees,
    /// largest first (the nodes of [`tree_root_nodes`], as [`CompactRange::frontier`] gives
    /// them).
    pub fn from_frontier(
        tree_size: u64,
        frontier: Vec<Hash>,
    ) -> Result<CompactRange, CompactRangeError> {
        if tree_size > MAX_TREE_SIZE {
            return Err(CompactRangeError::TreeTooLarge {
                tree_size,
                appended: 0,
                limit: MAX_TREE_SIZE,
            });
        }
        let expected = tree_size.count_ones() as usize;
        if frontier.len() != expected {
            return Err(CompactRangeError::WrongFrontierLength {
                tree_size,
                expected,
                found: frontier.len(),
            });
        }
        Ok(CompactRange {
            tree_size,
            frontier,
        })
    }

    /// The frontier of a tree of `tree_size` leaves, read from its stored hashes in one call.
    pub fn from_reader<R: HashReader + ?Sized>(
        tree_size: u64,
        reader: &R,
    ) -> Result<CompactRange, TreeError<R::Error>> {
        let nodes = tree_root_nodes(tree_size)?;
        let frontier = if nodes.is_empty() {
            Vec::new()
        } else {
            reader.read_hashes(&nodes).map_err(TreeError::Read)?
        };
        if frontier.len() != nodes.len() {
            return Err(TreeError::WrongHashCount {
                requested: nodes.len(),
                returned: frontier.len(),
            });
        }
        Ok(CompactRange {
            tree_size,
            frontier,
        })
    }

    /// How many leaves the tree has.
    pub fn tree_size(&self) -> u64 {
        self.tree_size
    }

    /// The root hashes of the perfect subtrees that tile the tree, largest first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// The nodes whose hashes [`CompactRange::frontier`] holds, in the same order.
    pub fn frontier_nodes(&self) -> Vec<NodeId> {
        tree_root_nodes(self.tree_size).expect("a compact range never exceeds MAX_TREE_SIZE")
    }

    /// The root of the tree (MTH, RFC 9162 §2.1.1).
    pub fn root(&self) -> Hash {
        fold_subtree_roots(&self.frontier)
    }

    fn check_room(&self, appended: u64) -> Result<(), CompactRangeError> {
        if appended > MAX_TREE_SIZE - self.tree_size {
            return Err(CompactRangeError::TreeTooLarge {
                tree_size: self.tree_size,
                appended,
                limit: MAX_TREE_SIZE,
            });
        }
        Ok(())
    }

    /// Appends one leaf hash.
    pub fn append(&mut self, leaf_hash: Hash) -> Result<(), CompactRangeError> {
        self.append_with(leaf_hash, |_, _| {})
    }

    /// Appends one leaf hash and calls `on_node` with each perfect subtree it completes: the leaf
    /// itself first, then one subtree per trailing one bit of the old size, smallest first. That
    /// is stored-hash order, so a log that stores everything can push them in turn.
    pub fn append_with(
        &mut self,
        leaf_hash: Hash,
        mut on_node: impl FnMut(NodeId, &Hash),
    ) -> Result<(), CompactRangeError> {
        self.check_room(1)?;
        self.push(leaf_hash, &mut on_node);
        Ok(())
    }

    /// Appends leaf hashes in order. Either all are appended or, if they would take the tree
    /// over [`MAX_TREE_SIZE`], none.
    pub fn extend(&mut self, leaf_hashes: &[Hash]) -> Result<(), CompactRangeError> {
        self.extend_with(leaf_hashes, |_, _| {})
    }

    /// Appends leaf hashes in order and reports every perfect subtree they complete, as
    /// [`CompactRange::append_with`] does for each.
    pub fn extend_with(
        &mut self,
        leaf_hashes: &[Hash],
        mut on_node: impl FnMut(NodeId, &Hash),
    ) -> Result<(), CompactRangeError> {
        self.check_room(leaf_hashes.len() as u64)?;
        self.frontier.reserve(64);
        for leaf_hash in leaf_hashes {
            self.push(*leaf_hash, &mut on_node);
        }
        Ok(())
    }

    /// The carry chain: the new leaf merges with the subtrees of the trailing one bits of the
    /// old size. The caller has checked there is room.
    fn push(&mut self, leaf_hash: Hash, on_node: &mut impl FnMut(NodeId, &Hash)) {
        let leaf_index = self.tree_size;
        let mut hash = leaf_hash;
        on_node(NodeId::inside_tree(0, leaf_index), &hash);
        let mut height = 0u8;
        while leaf_index >> height & 1 == 1 {
            let left = self
                .frontier
                .pop()
                .expect("a one bit of the size has a frontier hash");
            hash = Hash::of_node(&left, &hash);
            height += 1;
            on_node(NodeId::inside_tree(height, leaf_index >> height), &hash);
        }
        self.frontier.push(hash);
        self.tree_size += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::reference::{reference_root, sample_leaves};
    use crate::merkle::{stored_hash_count, stored_hash_index, tree_root};

    #[test]
    fn root_after_every_append_equals_the_rfc_9162_root() {
        let leaves = sample_leaves(300);
        let mut range = CompactRange::new();
        assert_eq!(range.root(), Hash::empty_tree());
        for (index, leaf) in leaves.iter().enumerate() {
            range.append(*leaf).expect("small tree");
            assert_eq!(range.tree_size(), index as u64 + 1);
            assert_eq!(range.root(), reference_root(&leaves[..=index]));
            assert_eq!(
                range.frontier().len(),
                (index as u64 + 1).count_ones() as usize
            );
        }
    }

    #[test]
    fn reports_every_completed_subtree_once_in_stored_order() {
        let leaves = sample_leaves(1000);
        let mut range = CompactRange::new();
        let mut stored: Vec<Hash> = Vec::new();
        for leaf in &leaves {
            range
                .append_with(*leaf, |node, hash| {
                    assert_eq!(stored_hash_index(node), stored.len() as u64);
                    let first = node.first_leaf() as usize;
                    let end = node.end_leaf() as usize;
                    assert_eq!(*hash, reference_root(&leaves[first..end]));
                    stored.push(*hash);
                })
                .expect("small tree");
            assert_eq!(
                Some(stored.len() as u64),
                stored_hash_count(range.tree_size())
            );
        }
        assert_eq!(tree_root(1000, &stored), Ok(range.root()));
    }

    #[test]
    fn extend_equals_appending_one_by_one() {
        let leaves = sample_leaves(777);
        let mut one_by_one = CompactRange::new();
        let mut one_by_one_nodes = Vec::new();
        for leaf in &leaves {
            one_by_one
                .append_with(*leaf, |node, hash| one_by_one_nodes.push((node, *hash)))
                .expect("small tree");
        }
        let mut batched = CompactRange::new();
        let mut batched_nodes = Vec::new();
        for chunk in leaves.chunks(100) {
            batched
                .extend_with(chunk, |node, hash| batched_nodes.push((node, *hash)))
                .expect("small tree");
        }
        assert_eq!(batched, one_by_one);
        assert_eq!(batched_nodes, one_by_one_nodes);
    }

    #[test]
    fn restored_from_stored_hashes_it_continues_where_it_stopped() {
        let leaves = sample_leaves(600);
        let mut full = CompactRange::new();
        let mut stored = Vec::new();
        full.extend_with(&leaves[..300], |_, hash| stored.push(*hash))
            .expect("small tree");
        let mut restored = CompactRange::from_reader(300, &stored).expect("all stored");
        assert_eq!(restored, full);
        let again = CompactRange::from_frontier(300, full.frontier().to_vec()).expect("fits");
        assert_eq!(again, full);
        full.extend(&leaves[300..]).expect("small tree");
        restored.extend(&leaves[300..]).expect("small tree");
        assert_eq!(restored.root(), reference_root(&leaves));
        assert_eq!(restored, full);
    }

    #[test]
    fn frontier_length_must_match_the_size() {
        let hash = Hash::of_leaf(b"x");
        assert_eq!(
            CompactRange::from_frontier(6, vec![hash]),
            Err(CompactRangeError::WrongFrontierLength {
                tree_size: 6,
                expected: 2,
                found: 1
            })
        );
        assert!(CompactRange::from_frontier(u64::MAX, vec![hash; 64]).is_err());
        assert_eq!(
            CompactRange::from_frontier(6, vec![hash, hash])
                .expect("two bits, two hashes")
                .frontier_nodes(),
            vec![
                NodeId::new(2, 0).expect("small"),
                NodeId::new(1, 2).expect("small")
            ]
        );
    }

    #[test]
    fn refuses_to_grow_past_the_limit_and_changes_nothing() {
        let hash = Hash::of_leaf(b"x");
        let mut range = CompactRange::from_frontier(MAX_TREE_SIZE - 1, vec![hash; 62])
            .expect("one below the limit");
        let before = range.clone();
        assert!(matches!(
            range.extend(&[hash, hash]),
            Err(CompactRangeError::TreeTooLarge { appended: 2, .. })
        ));
        assert_eq!(range, before);
        range.append(hash).expect("exactly at the limit");
        assert_eq!(range.tree_size(), MAX_TREE_SIZE);
        assert_eq!(range.frontier().len(), 1);
        assert!(range.append(hash).is_err());
    }
}
