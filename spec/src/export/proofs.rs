//! The half of export verification that both formats share: the checkpoint checked against the
//! trust given, and every leaf's inclusion proof against its root.

use super::parallel::check_all_with;
use super::shared_path::PathCache;
use super::{ExportError, ExportTrust};
use crate::checkpoint::Checkpoint;
use crate::hash::Hash;
use crate::policy::Policy;
use crate::receipt::{
    Receipt, ReceiptError, ReceiptTimestamp, ReceiptVerifier, MAX_LEAF_BYTES, RECEIPT_FORMAT,
};

/// One leaf of a bundle to prove.
pub(super) struct ProvenLeaf<'a> {
    /// Its index in the log.
    pub(super) index: u64,
    /// Its bytes.
    pub(super) leaf: &'a [u8],
    /// Its inclusion proof in the checkpoint's tree.
    pub(super) inclusion_proof: &'a [Hash],
}

/// What the checkpoint of a verified bundle says.
pub(super) struct Proven {
    pub(super) origin: String,
    pub(super) tree_size: u64,
    pub(super) root: Hash,
    /// Timestamp tokens present but not checked (trust by log key only).
    pub(super) unchecked_timestamps: usize,
}

/// The receipt of one leaf of a bundle: a `cairn.receipt/v1` sharing the bundle's checkpoint
/// and timestamps.
pub(super) fn receipt_of(
    checkpoint: &str,
    timestamps: &[ReceiptTimestamp],
    leaf: &ProvenLeaf<'_>,
) -> Receipt {
    Receipt {
        format: RECEIPT_FORMAT.to_string(),
        index: leaf.index,
        leaf_hash: Hash::of_leaf(leaf.leaf),
        leaf: Some(leaf.leaf.to_vec()),
        inclusion_proof: leaf.inclusion_proof.to_vec(),
        checkpoint: checkpoint.to_string(),
        timestamps: timestamps.to_vec(),
    }
}

/// Checks `checkpoint` (with `timestamps`) against `trust`, and every leaf's inclusion proof
/// against its root. With a policy, the first leaf is verified as the receipt it makes with the
/// checkpoint (the checkpoint's signatures, its witnesses and its tokens, which every leaf of the
/// bundle shares), and every other leaf's proof then leads to the root so verified: what
/// verifying each leaf as its own receipt checks, without repeating the shared part. With a log
/// key, the checkpoint must be signed by it and the proofs lead to its root. The proofs are
/// checked on every core ([`check_all`]); an error names the first leaf that fails.
pub(super) fn verify_proofs(
    checkpoint: &str,
    timestamps: &[ReceiptTimestamp],
    leaves: &[ProvenLeaf<'_>],
    trust: ExportTrust<'_>,
) -> Result<Proven, ExportError> {
    // A receipt refuses a leaf over its size limit: so does a bundle verified under a policy,
    // whose leaves are verified as receipts.
    let leaf_limit = match trust {
        ExportTrust::Policy(_) => MAX_LEAF_BYTES,
        ExportTrust::LogKey(_) => usize::MAX,
    };
    let proven = match trust {
        ExportTrust::Policy(policy) => {
            let Some(first) = leaves.first() else {
                // No events: the checkpoint must still open with a key of the policy.
                let opened = open_with_policy(checkpoint, policy)?;
                return Ok(Proven {
                    origin: opened.origin,
                    tree_size: opened.size,
                    root: opened.root,
                    unchecked_timestamps: 0,
                });
            };
            let receipt = receipt_of(checkpoint, timestamps, first);
            let verified = ReceiptVerifier::new(policy)
                .verify(&receipt)
                .map_err(|source| ExportError::Proof {
                    position: 0,
                    index: receipt.index,
                    source: Box::new(source),
                })?;
            Proven {
                origin: verified.origin,
                tree_size: verified.tree_size,
                root: verified.root,
                unchecked_timestamps: 0,
            }
        }
        ExportTrust::LogKey(key) => {
            let opened = Checkpoint::open(checkpoint.as_bytes(), key)
                .map_err(|e| ExportError::Checkpoint(e.to_string()))?
                .checkpoint;
            Proven {
                origin: opened.origin,
                tree_size: opened.size,
                root: opened.root,
                unchecked_timestamps: timestamps.len(),
            }
        }
    };
    // Each thread remembers the path of the last proof it checked: neighbouring leaves share
    // most of theirs (`shared_path.rs`).
    let cache = || PathCache::new(proven.tree_size, proven.root);
    check_all_with(leaves, cache, |cache, position, leaf| {
        let failed = |source| ExportError::Proof {
            position,
            index: leaf.index,
            source: Box::new(source),
        };
        if leaf.leaf.len() > leaf_limit {
            return Err(failed(ReceiptError::TooLarge {
                what: "leaf bytes",
                found: leaf.leaf.len(),
                limit: leaf_limit,
            }));
        }
        cache
            .verify(leaf.index, &Hash::of_leaf(leaf.leaf), leaf.inclusion_proof)
            .map_err(|source| {
                failed(ReceiptError::Inclusion {
                    index: leaf.index,
                    tree_size: proven.tree_size,
                    source,
                })
            })
    })?;
    Ok(proven)
}

fn open_with_policy(note: &str, policy: &Policy) -> Result<Checkpoint, ExportError> {
    // Any key of a trusted log valid at the checkpoint's size (its key history, if attached).
    policy
        .open_checkpoint(note.as_bytes())
        .map(|opened| opened.checkpoint)
        .map_err(ExportError::Checkpoint)
}
