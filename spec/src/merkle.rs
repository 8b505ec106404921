//! Merkle tree math of RFC 9162 §2.1 (identical to RFC 6962 §2.1): roots, inclusion and
//! consistency proofs, how a log stores the hashes of its tree, and how it grows.
//!
//! A log of `tree_size` leaves is summarised by one root hash, the Merkle Tree Hash (MTH) of its
//! leaves. A tree whose size is not a power of two is not perfect: its root is the hash of a
//! *perfect* left subtree (the largest power of two below the size) and of whatever is left on
//! the right. Unrolled, the root of any tree is a right-to-left fold of the roots of the perfect
//! subtrees given by the binary decomposition of its size: a tree of 13 = 8 + 4 + 1 leaves has
//! root `node(P8, node(P4, P1))`.
//!
//! Every perfect subtree is a [`NodeId`]: its height (a leaf has height 0) and its index among the
//! subtrees of that height. Once its last leaf is appended, a perfect subtree never changes, so a
//! log stores its hash once and forever. Everything here is built on that fact:
//!
//! - [`stored_hash_index`] and friends: the dense order in which a log can store every such hash
//!   (the order of Go's `golang.org/x/mod/sumdb/tlog`).
//! - [`HashReader`]: read stored hashes by [`NodeId`]. Over it, [`tree_root`],
//!   [`inclusion_proof`] and [`consistency_proof`] produce the outputs of RFC 9162 §2.1.3.1 and
//!   §2.1.4.1 while reading only O(log n) stored hashes, in one batched call.
//! - [`CompactRange`]: the frontier of a growing tree (one hash per one bit of its size). It
//!   appends leaves without re-reading old ones and reports every perfect subtree each append
//!   completes, so the log can persist exactly those.
//! - [`root_from_leaves`] and [`root_from_leaves_parallel`]: recompute a root from all leaves, as
//!   fast as SHA-256 allows, for monitors that re-verify a whole log.
//! - [`verify_inclusion`] and [`verify_consistency`]: the verifiers of RFC 9162 §2.1.3.2 and
//!   §2.1.4.2, for anyone who holds a proof.
//!
//! Trees hold at most [`MAX_TREE_SIZE`] (2^62) leaves, so that every stored-hash index fits a
//! `u64`; functions that take a tree size from input refuse larger ones with an error.

mod compact;
mod reader;
mod root;
mod stored;
mod verify;

pub use compact::{CompactRange, CompactRangeError};
pub(crate) use reader::fold_subtree_roots;
pub use reader::{
    consistency_proof, consistency_proof_nodes, inclusion_proof, inclusion_proof_nodes, tree_root,
    tree_root_nodes, HashReader, MissingHash, RangeError, TreeError,
};
pub use root::{
    root_from_leaf_hashes, root_from_leaf_hashes_parallel, root_from_leaves,
    root_from_leaves_parallel,
};
pub use stored::{
    split_stored_hash_index, stored_hash_count, stored_hash_index, NodeId, MAX_TREE_SIZE,
};
pub(crate) use verify::{check_inclusion_proof_len, PathPosition};
pub use verify::{
    consistency_proof_len, inclusion_proof_len, root_from_inclusion_proof, verify_consistency,
    verify_inclusion, ProofError, MAX_CONSISTENCY_PROOF_LEN, MAX_INCLUSION_PROOF_LEN,
};

#[cfg(test)]
pub(crate) mod reference;

#[cfg(test)]
mod properties;
