//! Verification of one receipt against a policy, step by step as `spec/docs/receipt.md`
//! lists the steps: the checkpoint note's signatures and witness quorum, every timestamp token,
//! the TSA quorum, the leaf hash and the inclusion proof.

use std::collections::BTreeSet;

use super::{Receipt, ReceiptError, VerifiedReceipt};
use crate::checkpoint::Checkpoint;
use crate::cosignature::Cosignature;
use crate::hash::Hash;
use crate::merkle;
use crate::note::{Ed25519Checker, Note, NoteVerifier, SingleEd25519};
use crate::policy::Policy;
use crate::time::Instant;
use crate::timestamp::{self, TimestampError, TokenVerifier, TrustAnchors};

/// Verifies a receipt completely against a policy: the log's signature, the witness quorum,
/// the leaf hash, the inclusion proof, every timestamp token, and the TSA quorum.
pub fn verify(receipt: &Receipt, policy: &Policy) -> Result<VerifiedReceipt, ReceiptError> {
    receipt.check_shape()?;
    let note = verify_note(&receipt.checkpoint, policy, &mut SingleEd25519)?;
    let mut tokens = TokenVerifier::uncached();
    let mut timestamps = Vec::with_capacity(receipt.timestamps.len());
    for (position, stored) in receipt.timestamps.iter().enumerate() {
        let timestamp = verify_timestamp(
            &stored.token,
            note.imprint,
            policy,
            &mut tokens,
            &mut SingleEd25519,
        )
        .map_err(|source| ReceiptError::Timestamp { position, source })?;
        timestamps.push(timestamp);
    }
    finish(receipt, &note, timestamps, policy)
}

/// Everything about a receipt that depends only on its checkpoint note.
#[derive(Debug, Clone)]
pub(super) struct NoteVerdict {
    checkpoint: Checkpoint,
    /// The imprint its timestamps must carry.
    pub(super) imprint: [u8; 32],
    witnesses: Vec<(String, u64)>,
    unknown_signatures: usize,
}

/// A verified token: the policy name of the TSA it chains to, if any, and its genTime.
pub(super) type TimestampVerdict = (Option<String>, Instant);

/// Steps 2 and 3 of verification: the note's signatures and the witness quorum.
pub(super) fn verify_note(
    checkpoint_note: &str,
    policy: &Policy,
    signatures: &mut dyn Ed25519Checker,
) -> Result<NoteVerdict, ReceiptError> {
    let note = Note::parse(checkpoint_note.as_bytes())
        .map_err(|error| ReceiptError::Checkpoint(error.to_string()))?;
    let checkpoint = Checkpoint::from_note(&note)
        .map_err(|error| ReceiptError::Checkpoint(error.to_string()))?;
    let log = policy
        .log(&checkpoint.origin)
        .ok_or_else(|| ReceiptError::UnknownLog {
            origin: checkpoint.origin.clone(),
        })?;

    // One pass over the signatures with every key the policy knows (every key of the log's
    // history, every key of each witness): a bad signature by any of them is an error (a
    // tampered receipt), signatures by other keys are ignored.
    let log_keys = log.all_keys();
    let mut verifiers: Vec<&dyn NoteVerifier> = log_keys
        .iter()
        .map(|key| key as &dyn NoteVerifier)
        .collect();
    verifiers.extend(
        policy
            .witnesses
            .iter()
            .flat_map(|witness| witness.keys())
            .map(|key| key as &dyn NoteVerifier),
    );
    let verification = note
        .verify_with(&verifiers, signatures)
        .map_err(|error| ReceiptError::Signature(error.to_string()))?;
    if !log.signed_at(&verification, checkpoint.size) {
        return Err(ReceiptError::Signature(format!(
            "no signature by a key of the log valid at size {} (pinned key {})",
            checkpoint.size,
            log.key.to_vkey()
        )));
    }

    let mut witnesses = Vec::new();
    for witness in &policy.witnesses {
        let signature = verification.verified.iter().find(|signature| {
            witness.keys().any(|key| {
                signature.key_name == *key.key_name() && signature.key_id == key.key_id()
            })
        });
        if let Some(signature) = signature {
            // Already verified as a cosignature by `note.verify_with` above; only read its time.
            let cosignature = Cosignature::from_note_signature(signature)
                .map_err(|error| ReceiptError::Signature(error.to_string()))?;
            witnesses.push((witness.name.clone(), cosignature.timestamp));
        }
    }
    let cosigned: BTreeSet<String> = witnesses.iter().map(|(name, _)| name.clone()).collect();
    if !policy.quorum_met(&cosigned) {
        return Err(ReceiptError::QuorumNotMet {
            cosigned: cosigned.into_iter().collect(),
        });
    }
    Ok(NoteVerdict {
        imprint: timestamp::checkpoint_imprint(note.text().as_bytes()),
        checkpoint,
        witnesses,
        unknown_signatures: verification.unverified.len(),
    })
}

/// Step 6 for one token: it must verify completely over the checkpoint; it counts for the
/// first TSA of the policy it chains to, if any (a valid token of another TSA counts for none).
pub(super) fn verify_timestamp(
    token: &[u8],
    imprint: [u8; 32],
    policy: &Policy,
    tokens: &mut TokenVerifier,
    signatures: &mut dyn Ed25519Checker,
) -> Result<TimestampVerdict, TimestampError> {
    let anchor_sets: Vec<&TrustAnchors> = policy.tsas.iter().map(|tsa| &tsa.anchors).collect();
    let (verified, trusted) =
        tokens.verify_against(token, imprint, None, &anchor_sets, signatures)?;
    Ok((
        trusted.map(|position| policy.tsas[position].name.clone()),
        verified.gen_time,
    ))
}

/// Step 7, then steps 4 and 5: the TSA quorum, the leaf hash and the inclusion proof.
pub(super) fn finish(
    receipt: &Receipt,
    note: &NoteVerdict,
    timestamps: Vec<TimestampVerdict>,
    policy: &Policy,
) -> Result<VerifiedReceipt, ReceiptError> {
    let trusted_tsas: BTreeSet<&str> = timestamps
        .iter()
        .filter_map(|(name, _)| name.as_deref())
        .collect();
    if trusted_tsas.len() < policy.tsa_quorum {
        return Err(ReceiptError::TimestampQuorumNotMet {
            found: trusted_tsas.len(),
            required: policy.tsa_quorum,
        });
    }
    if let Some(leaf) = &receipt.leaf {
        let computed = Hash::of_leaf(leaf);
        if computed != receipt.leaf_hash {
            return Err(ReceiptError::LeafHashMismatch {
                stated: receipt.leaf_hash,
                computed,
            });
        }
    }
    let checkpoint = &note.checkpoint;
    merkle::verify_inclusion(
        receipt.index,
        checkpoint.size,
        &receipt.leaf_hash,
        &receipt.inclusion_proof,
        &checkpoint.root,
    )
    .map_err(|source| ReceiptError::Inclusion {
        index: receipt.index,
        tree_size: checkpoint.size,
        source,
    })?;
    Ok(VerifiedReceipt {
        origin: checkpoint.origin.clone(),
        index: receipt.index,
        leaf_hash: receipt.leaf_hash,
        tree_size: checkpoint.size,
        root: checkpoint.root,
        witnesses: note.witnesses.clone(),
        timestamps,
        unknown_signatures: note.unknown_signatures,
    })
}
