//! The half of export verification that both formats share: the checkpoint checked against the
//! trust given, and every leaf's inclusion proof against its root.

use super::{ExportError, ExportTrust};
use crate::checkpoint::Checkpoint;
use crate::hash::Hash;
use crate::merkle;
use crate::policy::Policy;
use crate::receipt::{Receipt, ReceiptError, ReceiptTimestamp, ReceiptVerifier, RECEIPT_FORMAT};

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
/// against its root. With a policy, each leaf is verified as the receipt it makes with the
/// checkpoint (the checkpoint and its tokens checked once); with a log key, the checkpoint
/// must be signed by it and the proofs lead to its root.
pub(super) fn verify_proofs(
    checkpoint: &str,
    timestamps: &[ReceiptTimestamp],
    leaves: &[ProvenLeaf<'_>],
    trust: ExportTrust<'_>,
) -> Result<Proven, ExportError> {
    match trust {
        ExportTrust::Policy(policy) => {
            let mut verifier = ReceiptVerifier::new(policy);
            let mut last = None;
            for (position, leaf) in leaves.iter().enumerate() {
                let receipt = receipt_of(checkpoint, timestamps, leaf);
                let verified = verifier
                    .verify(&receipt)
                    .map_err(|source| ExportError::Proof {
                        position,
                        index: receipt.index,
                        source: Box::new(source),
                    })?;
                last = Some((verified.origin, verified.tree_size, verified.root));
            }
            let (origin, tree_size, root) = match last {
                Some(found) => found,
                None => {
                    // No events: the checkpoint must still open with a key of the policy.
                    let opened = open_with_policy(checkpoint, policy)?;
                    (opened.origin, opened.size, opened.root)
                }
            };
            Ok(Proven {
                origin,
                tree_size,
                root,
                unchecked_timestamps: 0,
            })
        }
        ExportTrust::LogKey(key) => {
            let opened = Checkpoint::open(checkpoint.as_bytes(), key)
                .map_err(|e| ExportError::Checkpoint(e.to_string()))?
                .checkpoint;
            for (position, leaf) in leaves.iter().enumerate() {
                merkle::verify_inclusion(
                    leaf.index,
                    opened.size,
                    &Hash::of_leaf(leaf.leaf),
                    leaf.inclusion_proof,
                    &opened.root,
                )
                .map_err(|source| ExportError::Proof {
                    position,
                    index: leaf.index,
                    source: Box::new(ReceiptError::Inclusion {
                        index: leaf.index,
                        tree_size: opened.size,
                        source,
                    }),
                })?;
            }
            Ok(Proven {
                origin: opened.origin,
                tree_size: opened.size,
                root: opened.root,
                unchecked_timestamps: timestamps.len(),
            })
        }
    }
}

fn open_with_policy(note: &str, policy: &Policy) -> Result<Checkpoint, ExportError> {
    // Any key of a trusted log valid at the checkpoint's size (its key history, if attached).
    policy
        .open_checkpoint(note.as_bytes())
        .map(|opened| opened.checkpoint)
        .map_err(ExportError::Checkpoint)
}
