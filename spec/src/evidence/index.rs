//! Evidence that a log's completeness index is false at a checkpoint it signed
//! (spec/docs/evidence.md, `index-omits` and `index-invents`; spec/docs/completeness.md §2).
//!
//! The evidence is one signed checkpoint, one leaf with its inclusion proof in that
//! checkpoint's tree, and a completeness proof for one `action` over the window of that one
//! leaf, `[i, i + 1)`, against the checkpoint's `cairn-index/v1` root. The action's key is
//! public (`action_key`), so anyone can check, with the log's key alone:
//!
//! - `index-omits`: the leaf carries the action, and the index's list of that action holds no
//!   item at the leaf's index (rule 2 of §2 broken: an event left out of its action's list);
//! - `index-invents`: the index's list of the action holds an item at the leaf's index, and
//!   either the leaf carries another action, or the item binds another leaf hash (rules 1 and
//!   2 broken: an event added to a list it does not belong to).
//!
//! The monitor builds both from the index it replays and checks against every checkpoint's
//! root (`cairn_monitor::index_audit`).

use base64::Engine as _;

use super::{Conflict, Evidence, EvidenceError, EVIDENCE_FORMAT};
use crate::checkpoint::Checkpoint;
use crate::completeness::{action_key, root_from_extensions, CompletenessError, CompletenessProof};
use crate::event::AnyEventLeaf;
use crate::hash::Hash;
use crate::merkle::verify_inclusion;

/// The kind of an index evidence file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexListing {
    /// `index-omits`.
    Omits,
    /// `index-invents`.
    Invents,
}

impl IndexListing {
    /// Its `kind` in the file.
    pub fn kind(self) -> &'static str {
        match self {
            IndexListing::Omits => "index-omits",
            IndexListing::Invents => "index-invents",
        }
    }
}

/// Whether `kind` is one of the index kinds.
pub fn is_index_kind(kind: &str) -> bool {
    kind == "index-omits" || kind == "index-invents"
}

/// The action of an audit event leaf of either schema.
pub fn action_of(leaf: &[u8]) -> Option<String> {
    match AnyEventLeaf::parse(leaf).ok()? {
        AnyEventLeaf::V1(v1) => Some(v1.action),
        AnyEventLeaf::V2(v2) => Some(v2.clear.action),
    }
}

impl Evidence {
    /// Index evidence: the checkpoint `note`, leaf `leaf_index` (`leaf`, with its inclusion
    /// `proof` in the checkpoint's tree) and the index's `completeness` proof for one action
    /// over `[leaf_index, leaf_index + 1)`.
    pub fn index_listing(
        listing: IndexListing,
        note: &[u8],
        leaf_index: u64,
        leaf: &[u8],
        proof: &[Hash],
        completeness: CompletenessProof,
    ) -> Evidence {
        Evidence {
            format: EVIDENCE_FORMAT.to_owned(),
            kind: listing.kind().to_owned(),
            checkpoints: vec![String::from_utf8_lossy(note).into_owned()],
            proof: proof.iter().map(Hash::to_base64).collect(),
            node_hash: None,
            frontier: Vec::new(),
            tiles: Vec::new(),
            key_history: None,
            leaf_index: Some(leaf_index),
            leaf: Some(base64::engine::general_purpose::STANDARD.encode(leaf)),
            completeness: Some(completeness),
        }
    }
}

fn malformed(field: &'static str, expected: &'static str) -> EvidenceError {
    EvidenceError::Malformed { field, expected }
}

/// Checks `index-omits` or `index-invents` evidence whose one checkpoint, already opened with
/// the log's key, is `checkpoint`.
pub(super) fn verify_index_listing(
    evidence: &Evidence,
    checkpoint: &Checkpoint,
) -> Result<Conflict, EvidenceError> {
    let map_root = root_from_extensions(&checkpoint.extensions)
        .map_err(|_| malformed("checkpoints", "a checkpoint with one cairn-index/v1 line"))?
        .ok_or_else(|| malformed("checkpoints", "a checkpoint with a cairn-index/v1 line"))?;
    let leaf_index = evidence
        .leaf_index
        .ok_or_else(|| malformed("leaf_index", "the leaf's index"))?;
    let leaf = evidence
        .leaf
        .as_deref()
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .ok_or_else(|| malformed("leaf", "the leaf, standard base64"))?;
    let proof = super::hashes("proof", &evidence.proof)?;
    let leaf_hash = Hash::of_leaf(&leaf);
    verify_inclusion(
        leaf_index,
        checkpoint.size,
        &leaf_hash,
        &proof,
        &checkpoint.root,
    )?;
    let action = action_of(&leaf).ok_or_else(|| malformed("leaf", "a Cairn audit event"))?;
    let complete = evidence
        .completeness
        .as_ref()
        .ok_or_else(|| malformed("completeness", "the index's proof for one action"))?;
    let window = leaf_index.checked_add(1);
    if complete.field != "action"
        || complete.from != leaf_index
        || Some(complete.to) != window
        || complete.keys.len() != 1
        || complete.keys[0].key != action_key(&complete.value)
        || complete.received.is_some()
    {
        return Err(malformed(
            "completeness",
            "a proof for one action's key over the window of the leaf alone",
        ));
    }
    // With no event given, the proof verifies if the list holds nothing at the leaf, and fails
    // with `Missing` if it lists the leaf: either way it has been checked against the root.
    let listed = match complete.verify(&map_root, checkpoint.size, &[]) {
        Ok(_) => false,
        Err(CompletenessError::Missing(index)) if index == leaf_index => true,
        Err(error) => return Err(error.into()),
    };
    let origin = checkpoint.origin.clone();
    let size = checkpoint.size;
    match (evidence.kind.as_str(), listed) {
        ("index-omits", false) if complete.value == action => Ok(Conflict::IndexOmits {
            origin,
            size,
            leaf_index,
            action,
        }),
        ("index-omits", _) => Err(EvidenceError::NoConflict(
            "the proof is not for the leaf's action, or its list holds the leaf",
        )),
        ("index-invents", true) => {
            let wrong_leaf = matches!(
                complete.verify(&map_root, checkpoint.size, &[(leaf_index, leaf_hash)]),
                Err(CompletenessError::WrongLeaf(_))
            );
            if complete.value != action || wrong_leaf {
                Ok(Conflict::IndexInvents {
                    origin,
                    size,
                    leaf_index,
                    listed_under: complete.value.clone(),
                    action,
                })
            } else {
                Err(EvidenceError::NoConflict(
                    "the leaf carries the action that lists it",
                ))
            }
        }
        _ => Err(EvidenceError::NoConflict(
            "the action's list does not hold the leaf",
        )),
    }
}
