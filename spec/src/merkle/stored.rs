//! Perfect subtrees ([`NodeId`]) and the dense order in which a log stores their hashes.
//!
//! When leaf `m` is appended, it completes one perfect subtree per trailing one bit of `m`: the
//! leaf itself at height 0, then the subtree of height 1 that ends at `m` if `m` is odd, and so
//! on. Writing those hashes in the order they are completed gives every perfect subtree of the
//! log a fixed position in one append-only sequence. This is the order of Crosby and Wallach,
//! "Efficient Data Structures for Tamper-Evident Logging" (USENIX Security 2009) §3.3, used by
//! Go's `golang.org/x/mod/sumdb/tlog` (`StoredHashIndex`, `SplitStoredHashIndex`,
//! `StoredHashCount`, where Go calls the height a "level"). For a 4-leaf log it is
//!
//! ```text
//! position: 0      1      2      3      4      5      6
//! node:     (0,0)  (0,1)  (1,0)  (0,2)  (0,3)  (1,1)  (2,0)     (height, index)
//! ```
//!
//! Leaf `m` starts at position `2m − popcount(m)`: every earlier leaf `j` wrote `1 +
//! trailing_ones(j)` hashes, and those sum to that. Every formula below follows from it.

/// The largest tree this crate handles: 2^62 leaves. It keeps every stored-hash position (about
/// twice the number of leaves) inside a `u64`, and it is far beyond any real log.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// The height of the tree of [`MAX_TREE_SIZE`] leaves, the highest a perfect subtree can be.
const MAX_HEIGHT: u8 = 62;

/// A perfect subtree: the `2^height` leaves starting at leaf `index · 2^height`.
///
/// Height 0 is a leaf, and its index is the leaf index. A node always lies inside a tree of
/// [`MAX_TREE_SIZE`] leaves; [`NodeId::new`] refuses any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    height: u8,
    index: u64,
}

impl NodeId {
    /// The perfect subtree of `2^height` leaves with the given index among those of its height,
    /// or `None` if it does not lie inside a tree of [`MAX_TREE_SIZE`] leaves.
    pub fn new(height: u8, index: u64) -> Option<NodeId> {
        if height > MAX_HEIGHT || index >= MAX_TREE_SIZE >> height {
            return None;
        }
        Some(NodeId { height, index })
    }

    /// The leaf at `leaf_index`, or `None` if it is not below [`MAX_TREE_SIZE`].
    pub fn leaf(leaf_index: u64) -> Option<NodeId> {
        NodeId::new(0, leaf_index)
    }

    /// Builds a node the caller has already proven valid (a piece of a tree of at most
    /// [`MAX_TREE_SIZE`] leaves).
    pub(crate) fn inside_tree(height: u8, index: u64) -> NodeId {
        debug_assert!(NodeId::new(height, index).is_some(), "({height}, {index})");
        NodeId { height, index }
    }

    /// The height: 0 for a leaf, `h` for a subtree of `2^h` leaves.
    pub fn height(self) -> u8 {
        self.height
    }

    /// The index among the perfect subtrees of the same height, counted from the left.
    pub fn index(self) -> u64 {
        self.index
    }

    /// How many leaves the subtree spans: `2^height`.
    pub fn leaf_count(self) -> u64 {
        1 << self.height
    }

    /// The index of its first leaf.
    pub fn first_leaf(self) -> u64 {
        self.index << self.height
    }

    /// One past the index of its last leaf. The subtree is complete in a tree of `tree_size`
    /// leaves exactly when `end_leaf() <= tree_size`.
    pub fn end_leaf(self) -> u64 {
        (self.index + 1) << self.height
    }

    /// Its position in the stored-hash order; see [`stored_hash_index`].
    pub fn stored_index(self) -> u64 {
        stored_hash_index(self)
    }
}

/// Where leaf `leaf_index` is stored: `2m − popcount(m)`, for `m <= MAX_TREE_SIZE`.
fn stored_position_of_leaf(leaf_index: u64) -> u64 {
    2 * leaf_index - u64::from(leaf_index.count_ones())
}

/// The position of the hash of `node` in the stored-hash order.
///
/// The node is completed by its last leaf `m = end_leaf − 1`, right after the `height` nodes
/// below it on the right edge, so it sits `height` places after leaf `m`.
pub fn stored_hash_index(node: NodeId) -> u64 {
    stored_position_of_leaf(node.end_leaf() - 1) + u64::from(node.height)
}

/// The node whose hash is stored at `stored_index`: the inverse of [`stored_hash_index`].
///
/// `None` if the position is past the last hash of a tree of [`MAX_TREE_SIZE`] leaves.
pub fn split_stored_hash_index(stored_index: u64) -> Option<NodeId> {
    if stored_index >= stored_position_of_leaf(MAX_TREE_SIZE) {
        return None;
    }
    // Find the leaf m whose hashes include this position. Leaf m starts at 2m − popcount(m),
    // which is at most 2m and at least 2m − 63, so m lies in [s/2, s/2 + 32].
    let mut leaf_index = stored_index / 2;
    while stored_position_of_leaf(leaf_index + 1) <= stored_index {
        leaf_index += 1;
    }
    let height = stored_index - stored_position_of_leaf(leaf_index);
    // Leaf m writes itself and then one hash per trailing one bit of m; the position is the
    // `height`-th of those, the subtree of that height that ends at m.
    let height = u8::try_from(height).expect("a leaf writes at most 63 hashes");
    Some(NodeId::inside_tree(height, leaf_index >> height))
}

/// How many hashes a log of `tree_size` leaves has stored: every perfect subtree complete at
/// that size. `None` if the size is over [`MAX_TREE_SIZE`].
pub fn stored_hash_count(tree_size: u64) -> Option<u64> {
    if tree_size > MAX_TREE_SIZE {
        return None;
    }
    // The next leaf would be stored right after the last hash of this size.
    Some(stored_position_of_leaf(tree_size))
}

/// The perfect subtrees that tile the leaf range `[begin, end)`, left to right, largest first.
///
/// `begin` must be a multiple of the largest power of two not above `end − begin`, which holds
/// for every range RFC 9162's recursive definitions split a tree into.
pub(crate) fn perfect_subtrees(begin: u64, end: u64) -> impl Iterator<Item = NodeId> {
    let span = end - begin;
    let mut first_leaf = begin;
    (0..64u8).rev().filter_map(move |height| {
        if span >> height & 1 == 0 {
            return None;
        }
        let node = NodeId::inside_tree(height, first_leaf >> height);
        debug_assert_eq!(node.first_leaf(), first_leaf, "unaligned range");
        first_leaf += 1 << height;
        Some(node)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(height: u8, index: u64) -> NodeId {
        NodeId::new(height, index).expect("test node inside the limit")
    }

    /// The order a log writes hashes in, by appending leaves one at a time: each leaf, then one
    /// subtree per trailing one bit of its index.
    fn write_order(leaf_count: u64) -> Vec<NodeId> {
        let mut order = Vec::new();
        for leaf_index in 0..leaf_count {
            order.push(node(0, leaf_index));
            let mut height = 0;
            while leaf_index >> height & 1 == 1 {
                height += 1;
                order.push(node(height, leaf_index >> height));
            }
        }
        order
    }

    #[test]
    fn stored_order_of_an_eight_leaf_log() {
        // Written out by hand from the rule: leaf m, then one subtree per trailing one bit of m.
        let expected = [
            (0, 0),
            (0, 1),
            (1, 0),
            (0, 2),
            (0, 3),
            (1, 1),
            (2, 0),
            (0, 4),
            (0, 5),
            (1, 2),
            (0, 6),
            (0, 7),
            (1, 3),
            (2, 1),
            (3, 0),
        ];
        for (position, &(height, index)) in expected.iter().enumerate() {
            assert_eq!(stored_hash_index(node(height, index)), position as u64);
            assert_eq!(
                split_stored_hash_index(position as u64),
                Some(node(height, index))
            );
        }
        assert_eq!(stored_hash_count(8), Some(15));
    }

    #[test]
    fn stored_index_matches_the_order_hashes_are_written_in() {
        let order = write_order(3000);
        for (position, &node) in order.iter().enumerate() {
            assert_eq!(stored_hash_index(node), position as u64, "{node:?}");
            assert_eq!(split_stored_hash_index(position as u64), Some(node));
        }
    }

    // Go's golang.org/x/mod/sumdb/tlog tlog_test.go, TestSplitStoredHashIndex: for every level
    // (height) below 10 and every n below 100, SplitStoredHashIndex inverts StoredHashIndex.
    #[test]
    fn split_inverts_stored_index_as_in_go_tlog_test() {
        for height in 0..10 {
            for index in 0..100 {
                let stored = stored_hash_index(node(height, index));
                assert_eq!(split_stored_hash_index(stored), Some(node(height, index)));
            }
        }
    }

    // Go's tlog_test.go, TestTree: after each of 100 appends, StoredHashCount(i+1) equals the
    // number of hashes StoredHashes has produced so far.
    #[test]
    fn stored_hash_count_counts_hashes_written_so_far() {
        let mut written = 0u64;
        for leaf_index in 0..100u64 {
            written += 1 + u64::from(leaf_index.trailing_ones());
            assert_eq!(stored_hash_count(leaf_index + 1), Some(written));
        }
        assert_eq!(stored_hash_count(0), Some(0));
    }

    #[test]
    fn stored_index_at_the_edge_of_the_largest_tree() {
        let last_leaf = node(0, MAX_TREE_SIZE - 1);
        let whole = node(62, 0);
        let count = stored_hash_count(MAX_TREE_SIZE).expect("the limit itself is allowed");
        assert_eq!(stored_hash_index(whole), count - 1);
        assert_eq!(stored_hash_index(last_leaf), count - 1 - 62);
        assert_eq!(split_stored_hash_index(count - 1), Some(whole));
        assert_eq!(split_stored_hash_index(count - 63), Some(last_leaf));
        assert_eq!(split_stored_hash_index(count), None);
        assert_eq!(split_stored_hash_index(u64::MAX), None);
        assert_eq!(stored_hash_count(MAX_TREE_SIZE + 1), None);
    }

    #[test]
    fn nodes_outside_the_largest_tree_do_not_exist() {
        assert_eq!(NodeId::new(63, 0), None);
        assert_eq!(NodeId::new(62, 1), None);
        assert_eq!(NodeId::new(0, MAX_TREE_SIZE), None);
        assert_eq!(NodeId::new(255, 0), None);
        assert_eq!(NodeId::leaf(u64::MAX), None);
        let node = node(3, 5);
        assert_eq!(
            (node.first_leaf(), node.end_leaf(), node.leaf_count()),
            (40, 48, 8)
        );
    }

    #[test]
    fn perfect_subtrees_decompose_a_tree_by_the_bits_of_its_size() {
        let nodes: Vec<_> = perfect_subtrees(0, 13).collect();
        assert_eq!(nodes, vec![node(3, 0), node(2, 2), node(0, 12)]);
        let nodes: Vec<_> = perfect_subtrees(8, 13).collect();
        assert_eq!(nodes, vec![node(2, 2), node(0, 12)]);
        assert_eq!(perfect_subtrees(5, 5).count(), 0);
        let nodes: Vec<_> = perfect_subtrees(0, MAX_TREE_SIZE).collect();
        assert_eq!(nodes, vec![node(62, 0)]);
    }
}
