//! Roots and proofs built from stored hashes (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1).
//!
//! Every hash in a root or a proof is the Merkle Tree Hash of a range of leaves. In RFC 9162's
//! recursive definitions, every such range is either a perfect subtree, which the log has
//! stored, or runs to the right edge of the tree, where it is a right-to-left fold of a few
//! perfect subtrees. So a proof is planned first, as a list of [`NodeId`]s (at most about two
//! per level of the tree), read in one batched [`HashReader::read_hashes`] call, and folded.
//! The planning functions are public too: the tiles module uses them to know which tiles a proof
//! needs before anything is fetched.

use crate::hash::Hash;

use super::stored::{perfect_subtrees, stored_hash_count, NodeId, MAX_TREE_SIZE};

/// A store of the hashes of perfect subtrees, read by [`NodeId`].
///
/// Implementations: a slice of hashes in stored-hash order (`[Hash]`, `Vec<Hash>`), the tile
/// reader of the tiles module, a log's own storage.
pub trait HashReader {
    /// Why hashes could not be read.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The hashes of `nodes`, one per node and in the same order, or an error. A node that has
    /// no stored hash is an error, never a made-up hash.
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

impl<R: HashReader + ?Sized> HashReader for &R {
    type Error = R::Error;
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        (**self).read_hashes(nodes)
    }
}

/// The hashes of a log in stored-hash order (see [`stored_hash_index`](super::stored_hash_index)):
/// position `i` holds the hash of the node at stored index `i`.
impl HashReader for [Hash] {
    type Error = MissingHash;
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, MissingHash> {
        nodes
            .iter()
            .map(|&node| {
                let stored_index = node.stored_index();
                usize::try_from(stored_index)
                    .ok()
                    .and_then(|position| self.get(position))
                    .copied()
                    .ok_or(MissingHash {
                        node,
                        stored_index,
                        stored_count: self.len() as u64,
                    })
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    type Error = MissingHash;
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, MissingHash> {
        self.as_slice().read_hashes(nodes)
    }
}

/// A node's hash is not among the stored hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no stored hash for node at height {} index {}: stored index {stored_index}, \
     but only {stored_count} hashes are stored",
    node.height(), node.index()
)]
pub struct MissingHash {
    /// The node asked for.
    pub node: NodeId,
    /// Its stored-hash index.
    pub stored_index: u64,
    /// How many hashes there are.
    pub stored_count: u64,
}

/// A leaf index or tree sizes that no tree can answer for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The leaf is not inside the tree.
    #[error("leaf index {leaf_index} is not below tree size {tree_size}")]
    IndexOutOfRange {
        /// The index asked for.
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
    /// The tree is over [`MAX_TREE_SIZE`].
    #[error("tree size {tree_size} is over the limit of {limit} leaves")]
    TreeTooLarge {
        /// The size asked for.
        tree_size: u64,
        /// [`MAX_TREE_SIZE`].
        limit: u64,
    },
}

/// Why a root or a proof could not be built from stored hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError<E> {
    /// The request itself is outside any tree.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The hash reader failed.
    #[error("could not read stored hashes: {0}")]
    Read(#[source] E),
    /// The hash reader broke its contract.
    #[error("hash reader returned {returned} hashes for {requested} nodes")]
    WrongHashCount {
        /// How many nodes were asked for.
        requested: usize,
        /// How many hashes came back.
        returned: usize,
    },
}

fn check_tree_size(tree_size: u64) -> Result<(), RangeError> {
    if stored_hash_count(tree_size).is_none() {
        return Err(RangeError::TreeTooLarge {
            tree_size,
            limit: MAX_TREE_SIZE,
        });
    }
    Ok(())
}

/// The largest power of two strictly below `span`, the `k` that RFC 9162 splits a tree of
/// `span > 1` leaves at.
fn split_point(span: u64) -> u64 {
    1 << (63 - (span - 1).leading_zeros())
}

/// A root or proof to build: the hashes of ranges of leaves, each a fold of perfect subtrees.
#[derive(Default)]
struct Plan {
    nodes: Vec<NodeId>,
    /// Output hash `i` folds `nodes[group_ends[i − 1]..group_ends[i]]`.
    group_ends: Vec<usize>,
}

impl Plan {
    fn push_range(&mut self, begin: u64, end: u64) {
        self.nodes.extend(perfect_subtrees(begin, end));
        self.group_ends.push(self.nodes.len());
    }

    fn build<R: HashReader + ?Sized>(self, reader: &R) -> Result<Vec<Hash>, TreeError<R::Error>> {
        if self.nodes.is_empty() {
            return Ok(Vec::new());
        }
        let hashes = reader.read_hashes(&self.nodes).map_err(TreeError::Read)?;
        if hashes.len() != self.nodes.len() {
            return Err(TreeError::WrongHashCount {
                requested: self.nodes.len(),
                returned: hashes.len(),
            });
        }
        let mut start = 0;
        Ok(self
            .group_ends
            .iter()
            .map(|&end| {
                let hash = fold_subtree_roots(&hashes[start..end]);
                start = end;
                hash
            })
            .collect())
    }
}

/// The hash of a range from the roots of the perfect subtrees that tile it, left to right:
/// `node(h0, node(h1, … node(h_{k−2}, h_{k−1})))`. The empty list is the empty tree.
pub(crate) fn fold_subtree_roots(roots: &[Hash]) -> Hash {
    match roots.split_last() {
        None => Hash::empty_tree(),
        Some((last, rest)) => rest
            .iter()
            .rev()
            .fold(*last, |right, left| Hash::of_node(left, &right)),
    }
}

fn root_plan(tree_size: u64) -> Result<Plan, RangeError> {
    check_tree_size(tree_size)?;
    let mut plan = Plan::default();
    if tree_size > 0 {
        plan.push_range(0, tree_size);
    }
    Ok(plan)
}

/// PATH(m, D[n]) of RFC 9162 §2.1.3.1, unrolled: walk down from the whole tree towards the leaf,
/// keeping the side not taken, then list those bottom-up.
fn inclusion_plan(leaf_index: u64, tree_size: u64) -> Result<Plan, RangeError> {
    check_tree_size(tree_size)?;
    if leaf_index >= tree_size {
        return Err(RangeError::IndexOutOfRange {
            leaf_index,
            tree_size,
        });
    }
    let mut siblings = Vec::new();
    let (mut begin, mut end) = (0, tree_size);
    while end - begin > 1 {
        let middle = begin + split_point(end - begin);
        if leaf_index < middle {
            siblings.push((middle, end));
            end = middle;
        } else {
            siblings.push((begin, middle));
            begin = middle;
        }
    }
    let mut plan = Plan::default();
    for &(begin, end) in siblings.iter().rev() {
        plan.push_range(begin, end);
    }
    Ok(plan)
}

/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1, unrolled the same way. The
/// walk stops at the subtree that ends exactly at the old size; that subtree is in the proof
/// unless it is the whole old tree (the verifier has the old root).
fn consistency_plan(old_size: u64, new_size: u64) -> Result<Plan, RangeError> {
    check_tree_size(new_size)?;
    if old_size > new_size {
        return Err(RangeError::SizesOutOfOrder { old_size, new_size });
    }
    let mut plan = Plan::default();
    // Every tree extends the empty tree and itself: both proofs are empty.
    if old_size == 0 || old_size == new_size {
        return Ok(plan);
    }
    let mut ranges = Vec::new();
    let (mut begin, mut end) = (0, new_size);
    while old_size != end {
        let middle = begin + split_point(end - begin);
        if old_size <= middle {
            ranges.push((middle, end));
            end = middle;
        } else {
            ranges.push((begin, middle));
            begin = middle;
        }
    }
    if begin != 0 {
        ranges.push((begin, end));
    }
    for &(begin, end) in ranges.iter().rev() {
        plan.push_range(begin, end);
    }
    Ok(plan)
}

/// The perfect subtrees whose hashes [`tree_root`] reads, left to right: one per one bit of
/// `tree_size`, largest first.
pub fn tree_root_nodes(tree_size: u64) -> Result<Vec<NodeId>, RangeError> {
    Ok(root_plan(tree_size)?.nodes)
}

/// The perfect subtrees whose hashes [`inclusion_proof`] reads.
pub fn inclusion_proof_nodes(leaf_index: u64, tree_size: u64) -> Result<Vec<NodeId>, RangeError> {
    Ok(inclusion_plan(leaf_index, tree_size)?.nodes)
}

/// The perfect subtrees whose hashes [`consistency_proof`] reads.
pub fn consistency_proof_nodes(old_size: u64, new_size: u64) -> Result<Vec<NodeId>, RangeError> {
    Ok(consistency_plan(old_size, new_size)?.nodes)
}

/// The root of the tree of `tree_size` leaves (MTH, RFC 9162 §2.1.1), from at most 62 stored
/// hashes read in one call. The empty tree's root is SHA-256 of the empty string; it reads
/// nothing.
pub fn tree_root<R: HashReader + ?Sized>(
    tree_size: u64,
    reader: &R,
) -> Result<Hash, TreeError<R::Error>> {
    let hashes = root_plan(tree_size)?.build(reader)?;
    Ok(hashes.first().copied().unwrap_or_else(Hash::empty_tree))
}

/// The inclusion proof of the leaf at `leaf_index` in the tree of `tree_size` leaves (PATH of
/// RFC 9162 §2.1.3.1, the `inclusion_path` of §4.12), bottom-up, as [`verify_inclusion`]
/// expects. Reads at most about two stored hashes per level, in one call.
///
/// [`verify_inclusion`]: super::verify_inclusion
pub fn inclusion_proof<R: HashReader + ?Sized>(
    leaf_index: u64,
    tree_size: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    inclusion_plan(leaf_index, tree_size)?.build(reader)
}

/// The consistency proof from the tree of `old_size` leaves to the tree of `new_size` leaves
/// (PROOF of RFC 9162 §2.1.4.1, the `consistency_path` of §4.11), as [`verify_consistency`]
/// expects. Empty when `old_size` is 0 or equal to `new_size`. Reads at most about two stored
/// hashes per level, in one call.
///
/// [`verify_consistency`]: super::verify_consistency
pub fn consistency_proof<R: HashReader + ?Sized>(
    old_size: u64,
    new_size: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    consistency_plan(old_size, new_size)?.build(reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::reference::{
        reference_consistency, reference_inclusion, reference_root, sample_leaves,
    };
    use crate::merkle::{
        consistency_proof_len, inclusion_proof_len, stored_hash_index, CompactRange,
    };
    use std::cell::Cell;

    /// The stored hashes of a log, in stored-hash order, built by appending leaves.
    fn storage(leaf_hashes: &[Hash]) -> Vec<Hash> {
        let mut range = CompactRange::new();
        let mut stored = Vec::new();
        for leaf_hash in leaf_hashes {
            range
                .append_with(*leaf_hash, |node, hash| {
                    assert_eq!(stored_hash_index(node), stored.len() as u64);
                    stored.push(*hash);
                })
                .expect("small tree");
        }
        stored
    }

    /// A reader that counts calls and nodes, to check reads are batched and O(log n).
    struct Counting<'a> {
        stored: &'a [Hash],
        calls: Cell<usize>,
        nodes: Cell<usize>,
    }

    impl HashReader for Counting<'_> {
        type Error = MissingHash;
        fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, MissingHash> {
            self.calls.set(self.calls.get() + 1);
            self.nodes.set(self.nodes.get() + nodes.len());
            self.stored.read_hashes(nodes)
        }
    }

    #[test]
    fn roots_and_proofs_of_small_trees_equal_rfc_9162_definitions() {
        let leaves = sample_leaves(140);
        let stored = storage(&leaves);
        for tree_size in 0..=leaves.len() {
            let tree = &leaves[..tree_size];
            let size = tree_size as u64;
            assert_eq!(tree_root(size, &stored), Ok(reference_root(tree)));
            for leaf_index in 0..tree_size {
                let proof =
                    inclusion_proof(leaf_index as u64, size, &stored).expect("leaf is in the tree");
                assert_eq!(proof, reference_inclusion(leaf_index, tree));
                assert_eq!(
                    inclusion_proof_len(leaf_index as u64, size),
                    Ok(proof.len())
                );
            }
            for old_size in 1..=tree_size {
                let proof = consistency_proof(old_size as u64, size, &stored)
                    .expect("old size is not above the new one");
                assert_eq!(proof, reference_consistency(old_size, tree));
                assert_eq!(consistency_proof_len(old_size as u64, size), proof.len());
            }
        }
    }

    #[test]
    fn reads_one_batch_of_logarithmically_many_hashes() {
        let leaves = sample_leaves(3000);
        let stored = storage(&leaves);
        let reader = Counting {
            stored: &stored,
            calls: Cell::new(0),
            nodes: Cell::new(0),
        };
        for (old_size, new_size) in [(1, 3000), (1000, 2999), (2047, 2048), (1234, 2345)] {
            for check in 0..3 {
                reader.calls.set(0);
                reader.nodes.set(0);
                match check {
                    0 => drop(tree_root(new_size, &reader).expect("root")),
                    1 => drop(inclusion_proof(old_size - 1, new_size, &reader).expect("path")),
                    _ => drop(consistency_proof(old_size, new_size, &reader).expect("proof")),
                }
                assert_eq!(reader.calls.get(), 1);
                // At most one hash per level for the path plus one per level for the right edge.
                assert!(reader.nodes.get() <= 2 * 12, "{} nodes", reader.nodes.get());
            }
        }
    }

    #[test]
    fn trivial_requests_read_nothing() {
        let empty: Vec<Hash> = Vec::new();
        assert_eq!(tree_root(0, &empty), Ok(Hash::empty_tree()));
        assert_eq!(consistency_proof(0, 0, &empty), Ok(vec![]));
        assert_eq!(consistency_proof(0, 10, &empty), Ok(vec![]));
        assert_eq!(consistency_proof(7, 7, &empty), Ok(vec![]));
        let one = vec![Hash::of_leaf(b"only")];
        assert_eq!(inclusion_proof(0, 1, &one), Ok(vec![]));
        assert_eq!(tree_root(1, &one), Ok(one[0]));
    }

    #[test]
    fn refuses_requests_outside_the_tree() {
        let stored = storage(&sample_leaves(4));
        assert_eq!(
            inclusion_proof(4, 4, &stored),
            Err(TreeError::Range(RangeError::IndexOutOfRange {
                leaf_index: 4,
                tree_size: 4
            }))
        );
        assert_eq!(
            consistency_proof(5, 4, &stored),
            Err(TreeError::Range(RangeError::SizesOutOfOrder {
                old_size: 5,
                new_size: 4
            }))
        );
        assert!(matches!(
            tree_root(u64::MAX, &stored),
            Err(TreeError::Range(RangeError::TreeTooLarge { .. }))
        ));
        assert!(matches!(
            inclusion_proof(0, MAX_TREE_SIZE + 1, &stored),
            Err(TreeError::Range(RangeError::TreeTooLarge { .. }))
        ));
    }

    #[test]
    fn a_missing_stored_hash_is_an_error_not_a_made_up_hash() {
        let stored = storage(&sample_leaves(5));
        let error = tree_root(6, &stored).expect_err("only 5 leaves are stored");
        assert!(matches!(
            error,
            TreeError::Read(MissingHash {
                stored_index: 9,
                stored_count: 8,
                ..
            })
        ));
        assert!(error.to_string().contains("stored index 9"), "{error}");
    }

    #[test]
    fn a_reader_that_returns_too_few_hashes_is_caught() {
        struct Short;
        impl HashReader for Short {
            type Error = MissingHash;
            fn read_hashes(&self, _nodes: &[NodeId]) -> Result<Vec<Hash>, MissingHash> {
                Ok(vec![Hash::empty_tree()])
            }
        }
        assert_eq!(
            inclusion_proof(0, 8, &Short),
            Err(TreeError::WrongHashCount {
                requested: 3,
                returned: 1
            })
        );
    }

    #[test]
    fn plans_name_the_perfect_subtrees_they_read() {
        let node = |height, index| NodeId::new(height, index).expect("small");
        assert_eq!(
            tree_root_nodes(13),
            Ok(vec![node(3, 0), node(2, 2), node(0, 12)])
        );
        // Leaf 9 of 13: sibling leaf 8, then the pair 10–11, then leaf 12, then the left 8.
        assert_eq!(
            inclusion_proof_nodes(9, 13),
            Ok(vec![node(0, 8), node(1, 5), node(0, 12), node(3, 0)])
        );
        // 6 → 13: the pair 4–5 ends at the old size, then its sibling pair 6–7, then 0–3,
        // then the right side 8–13 (two subtrees).
        assert_eq!(
            consistency_proof_nodes(6, 13),
            Ok(vec![
                node(1, 2),
                node(1, 3),
                node(2, 0),
                node(2, 2),
                node(0, 12)
            ])
        );
    }
}
