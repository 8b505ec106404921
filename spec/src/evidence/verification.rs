//! [`verify_evidence`]: checking an evidence file against the log's key, one function for each
//! kind of conflict.

use super::{
    hashes, roots_from_prefix_proof, Conflict, Evidence, EvidenceError, EVIDENCE_FORMAT,
    MAX_EVIDENCE_TILES,
};
use crate::checkpoint::Checkpoint;
use crate::key_history::{KeyHistory, KeyStatus};
use crate::merkle::{verify_inclusion, CompactRange, ProofError};
use crate::note::{Ed25519Verifier, NoteVerifier};
use crate::tiles::{TILE_HEIGHT, TILE_WIDTH};

/// Opens every checkpoint of the evidence as the log's: signed by the pinned key, or, when the
/// evidence carries the log's key history (a log that rotated its key), by any key that
/// history (verified from the pinned key) makes valid at the checkpoint's size. Every
/// signature by a key of the history must verify. All must be of one origin.
fn open_checkpoints(
    evidence: &Evidence,
    log_key: &Ed25519Verifier,
) -> Result<Vec<crate::checkpoint::SignedCheckpoint>, EvidenceError> {
    let history = evidence
        .key_history
        .as_ref()
        .map(|bytes| KeyHistory::verify(&log_key.to_vkey(), bytes.as_bytes()))
        .transpose()?;
    let opened = evidence
        .checkpoints
        .iter()
        .enumerate()
        .map(|(position, note)| match &history {
            None => Checkpoint::open(note.as_bytes(), log_key)
                .map_err(|source| EvidenceError::Checkpoint { position, source }),
            Some(history) => open_by_history(note.as_bytes(), history, position),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let [first, second] = opened.as_slice() {
        if first.checkpoint.origin != second.checkpoint.origin {
            return Err(EvidenceError::OriginsDiffer {
                first: first.checkpoint.origin.clone(),
                second: second.checkpoint.origin.clone(),
            });
        }
    }
    Ok(opened)
}

/// A checkpoint signed by a key of `history` valid at its size (spec/docs/key-history.md).
fn open_by_history(
    note: &[u8],
    history: &KeyHistory,
    position: usize,
) -> Result<crate::checkpoint::SignedCheckpoint, EvidenceError> {
    let keys: Vec<Ed25519Verifier> = history
        .keys()
        .iter()
        .map(|key| Ed25519Verifier::new(key.key_name.clone(), key.public_key))
        .collect();
    let verifiers: Vec<&dyn NoteVerifier> =
        keys.iter().map(|key| key as &dyn NoteVerifier).collect();
    let opened = Checkpoint::open_with_origin(note, history.subject().as_str(), &verifiers)
        .map_err(|source| EvidenceError::Checkpoint { position, source })?;
    let size = opened.checkpoint.size;
    let valid = history.keys().iter().any(|key| {
        opened.verification.is_signed_by(&key.key_name, key.key_id)
            && key.status(size) == KeyStatus::Valid
    });
    if valid {
        Ok(opened)
    } else {
        Err(EvidenceError::NoValidKey { position, size })
    }
}

fn expect_fields(
    evidence: &Evidence,
    checkpoints: std::ops::RangeInclusive<usize>,
    proof: bool,
    node_hash: bool,
    frontier: bool,
    tiles: bool,
) -> Result<(), EvidenceError> {
    if !checkpoints.contains(&evidence.checkpoints.len()) {
        return Err(EvidenceError::Malformed {
            field: "checkpoints",
            expected: "the number of notes this kind needs",
        });
    }
    let present = [
        ("proof", !evidence.proof.is_empty(), proof),
        ("node_hash", evidence.node_hash.is_some(), node_hash),
        ("frontier", !evidence.frontier.is_empty(), frontier),
        ("tiles", !evidence.tiles.is_empty(), tiles),
        (
            "leaf_index",
            evidence.leaf_index.is_some(),
            super::index::is_index_kind(&evidence.kind),
        ),
        (
            "leaf",
            evidence.leaf.is_some(),
            super::index::is_index_kind(&evidence.kind),
        ),
        (
            "completeness",
            evidence.completeness.is_some(),
            super::index::is_index_kind(&evidence.kind),
        ),
    ];
    for (field, is_present, allowed) in present {
        if is_present && !allowed {
            return Err(EvidenceError::Malformed {
                field,
                expected: "absent for this kind",
            });
        }
    }
    Ok(())
}

/// Checks evidence against the log's (pinned) key and says which conflict it proves. A log that
/// rotated its key signs with keys its key history introduced: evidence about its checkpoints
/// then carries that history (`key_history`), verified here from the pinned key.
pub fn verify_evidence(
    evidence: &Evidence,
    log_key: &Ed25519Verifier,
) -> Result<Conflict, EvidenceError> {
    if evidence.format != EVIDENCE_FORMAT {
        return Err(EvidenceError::Malformed {
            field: "format",
            expected: EVIDENCE_FORMAT,
        });
    }
    match evidence.kind.as_str() {
        "same-size" => verify_same_size(evidence, log_key),
        "not-an-extension" => verify_not_an_extension(evidence, log_key),
        "tile-mismatch" => verify_tile_mismatch(evidence, log_key),
        "root-mismatch" => verify_root_mismatch(evidence, log_key),
        "revoked-key" => verify_revoked_key(evidence, log_key),
        "index-omits" | "index-invents" => {
            expect_fields(evidence, 1..=1, true, false, false, false)?;
            let opened = open_checkpoints(evidence, log_key)?;
            super::index::verify_index_listing(evidence, &opened[0].checkpoint)
        }
        _ => Err(EvidenceError::Malformed {
            field: "kind",
            expected: "same-size, not-an-extension, tile-mismatch, root-mismatch, revoked-key, \
                       index-omits or index-invents",
        }),
    }
}

fn verify_same_size(
    evidence: &Evidence,
    log_key: &Ed25519Verifier,
) -> Result<Conflict, EvidenceError> {
    expect_fields(evidence, 2..=2, false, false, false, false)?;
    let opened = open_checkpoints(evidence, log_key)?;
    let (first, second) = (&opened[0].checkpoint, &opened[1].checkpoint);
    if first.size != second.size {
        return Err(EvidenceError::Malformed {
            field: "checkpoints",
            expected: "two checkpoints of the same size",
        });
    }
    if first.root == second.root {
        return Err(EvidenceError::NoConflict(
            "both checkpoints have the same root",
        ));
    }
    Ok(Conflict::SameSizeDifferentRoots {
        origin: first.origin.clone(),
        size: first.size,
        roots: [first.root, second.root],
    })
}

fn verify_not_an_extension(
    evidence: &Evidence,
    log_key: &Ed25519Verifier,
) -> Result<Conflict, EvidenceError> {
    expect_fields(evidence, 2..=2, true, false, false, false)?;
    let opened = open_checkpoints(evidence, log_key)?;
    let (old, new) = (&opened[0].checkpoint, &opened[1].checkpoint);
    if old.size == 0 || old.size >= new.size {
        return Err(EvidenceError::Malformed {
            field: "checkpoints",
            expected: "a non-empty smaller tree first, then a larger one",
        });
    }
    let proof = hashes("proof", &evidence.proof)?;
    let (prefix_root, new_root) = roots_from_prefix_proof(old.size, new.size, &proof)?;
    if new_root != new.root {
        return Err(ProofError::RootMismatch {
            expected: new.root,
            computed: new_root,
        }
        .into());
    }
    if prefix_root == old.root {
        return Err(EvidenceError::NoConflict(
            "the larger tree extends the smaller one",
        ));
    }
    Ok(Conflict::NotAnExtension {
        origin: old.origin.clone(),
        old_size: old.size,
        old_root: old.root,
        new_size: new.size,
        prefix_root,
    })
}

fn verify_tile_mismatch(
    evidence: &Evidence,
    log_key: &Ed25519Verifier,
) -> Result<Conflict, EvidenceError> {
    expect_fields(evidence, 1..=1, true, true, false, true)?;
    if evidence.tiles.len() != 1 {
        return Err(EvidenceError::Malformed {
            field: "tiles",
            expected: "exactly one tile",
        });
    }
    let opened = open_checkpoints(evidence, log_key)?;
    let checkpoint = &opened[0].checkpoint;
    let (tile, tile_hashes) = evidence.tiles[0].open(0)?;
    if !tile.is_full() {
        return Err(EvidenceError::Malformed {
            field: "tiles",
            expected: "a full tile (partial tiles may grow)",
        });
    }
    let node_hash = evidence
        .node_hash
        .as_deref()
        .map(|value| hashes("node_hash", &[value.to_owned()]))
        .transpose()?
        .and_then(|mut values| values.pop())
        .ok_or(EvidenceError::Malformed {
            field: "node_hash",
            expected: "the genuine subtree hash",
        })?;
    let path = hashes("proof", &evidence.proof)?;
    // The tile's subtree is perfect and aligned, so its path to the root is the inclusion
    // proof of its index in the tree of subtrees of its height.
    let height = u32::from(tile.level()) * TILE_HEIGHT + TILE_HEIGHT;
    let span = 1u64.checked_shl(height).unwrap_or(0);
    if span == 0 || (tile.index() + 1).saturating_mul(span) > checkpoint.size {
        return Err(EvidenceError::Malformed {
            field: "tiles",
            expected: "a full tile inside the signed tree",
        });
    }
    let subtree_count = checkpoint.size.div_ceil(span);
    verify_inclusion(
        tile.index(),
        subtree_count,
        &node_hash,
        &path,
        &checkpoint.root,
    )?;
    debug_assert_eq!(tile_hashes.len(), usize::from(TILE_WIDTH));
    // A level-L tile holds roots of subtrees of height 8L; folding them as if they were leaf
    // hashes gives the root of their parent of height 8L + 8.
    let served_node = crate::merkle::root_from_leaf_hashes(&tile_hashes);
    if served_node == node_hash {
        return Err(EvidenceError::NoConflict(
            "the served tile belongs to the signed tree",
        ));
    }
    Ok(Conflict::TileMismatch {
        origin: checkpoint.origin.clone(),
        size: checkpoint.size,
        tile,
    })
}

fn verify_root_mismatch(
    evidence: &Evidence,
    log_key: &Ed25519Verifier,
) -> Result<Conflict, EvidenceError> {
    expect_fields(evidence, 1..=2, false, false, true, true)?;
    if evidence.tiles.len() > MAX_EVIDENCE_TILES {
        return Err(EvidenceError::Malformed {
            field: "tiles",
            expected: "at most 4096 tiles",
        });
    }
    let opened = open_checkpoints(evidence, log_key)?;
    let new = &opened[opened.len() - 1].checkpoint;
    let mut range = if opened.len() == 2 {
        let old = &opened[0].checkpoint;
        let frontier = hashes("frontier", &evidence.frontier)?;
        let range = CompactRange::from_frontier(old.size, frontier).map_err(|_| {
            EvidenceError::Malformed {
                field: "frontier",
                expected: "one hash per one bit of the older tree size",
            }
        })?;
        if range.root() != old.root {
            return Err(EvidenceError::Malformed {
                field: "frontier",
                expected: "the frontier of the older signed tree",
            });
        }
        range
    } else {
        if !evidence.frontier.is_empty() {
            return Err(EvidenceError::Malformed {
                field: "frontier",
                expected: "absent without an older checkpoint",
            });
        }
        CompactRange::new()
    };
    if range.tree_size() >= new.size {
        return Err(EvidenceError::Malformed {
            field: "checkpoints",
            expected: "an older tree smaller than the newer one",
        });
    }
    let width = u64::from(TILE_WIDTH);
    let mut next_leaf = range.tree_size();
    for (position, served) in evidence.tiles.iter().enumerate() {
        let (tile, tile_hashes) = served.open(position)?;
        let tile_start = tile.index().saturating_mul(width);
        let tile_end = tile_start + u64::from(tile.width());
        let expected_end = new.size.min((next_leaf / width + 1) * width);
        if tile.level() != 0 || tile_start > next_leaf || tile_end != expected_end {
            return Err(EvidenceError::Malformed {
                field: "tiles",
                expected: "the level-0 tiles of the new leaves, in order, at the new tree's widths",
            });
        }
        let skip = usize::try_from(next_leaf - tile_start).expect("below 256");
        range
            .extend(&tile_hashes[skip..])
            .expect("tree size is bounded by the checkpoint");
        next_leaf = tile_end;
    }
    if next_leaf != new.size {
        return Err(EvidenceError::Malformed {
            field: "tiles",
            expected: "tiles covering every leaf up to the newer tree size",
        });
    }
    let computed_root = range.root();
    if computed_root == new.root {
        return Err(EvidenceError::NoConflict(
            "the tiles hash to the signed root",
        ));
    }
    Ok(Conflict::RootMismatch {
        origin: new.origin.clone(),
        size: new.size,
        signed_root: new.root,
        computed_root,
    })
}

/// `revoked-key`: the history verifies from the pinned key, and a key it revoked from some size
/// signed the checkpoint, whose size is that or more.
fn verify_revoked_key(
    evidence: &Evidence,
    log_key: &Ed25519Verifier,
) -> Result<Conflict, EvidenceError> {
    expect_fields(evidence, 1..=1, false, false, false, false)?;
    let history = evidence
        .key_history
        .as_ref()
        .ok_or(EvidenceError::Malformed {
            field: "key_history",
            expected: "the log's key history",
        })?;
    let history = KeyHistory::verify(&log_key.to_vkey(), history.as_bytes())?;
    let note = evidence.checkpoints[0].as_bytes();
    let origin = history.subject().as_str();
    for range in history.keys() {
        let Some(revoked_from) = range.revoked_from else {
            continue;
        };
        let key = Ed25519Verifier::new(range.key_name.clone(), range.public_key);
        // A key that did not sign it, or a signature that does not verify: not this key.
        let Ok(opened) = Checkpoint::open_with_origin(note, origin, &[&key as &dyn NoteVerifier])
        else {
            continue;
        };
        if !opened
            .verification
            .is_signed_by(&range.key_name, range.key_id)
        {
            continue;
        }
        if opened.checkpoint.size >= revoked_from {
            return Ok(Conflict::RevokedKeySigned {
                origin: opened.checkpoint.origin,
                size: opened.checkpoint.size,
                vkey: range.vkey.clone(),
                revoked_from,
            });
        }
    }
    Err(EvidenceError::NoConflict(
        "no key revoked at or below the checkpoint's size signed it",
    ))
}
