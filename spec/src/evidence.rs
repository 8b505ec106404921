//! Portable evidence that a log misbehaved: the `cairn.evidence/v1` JSON file a monitor writes
//! when it finds a split view, and [`verify_evidence`], which anyone can run offline with only
//! the log's verifier key. The format is described in `spec/docs/evidence.md`.
//!
//! Four kinds of evidence, strongest first:
//!
//! - `same-size`: two checkpoints of one origin, both validly signed by the log's key, with the
//!   same tree size and different roots. Nothing else is needed: by RFC 9162 §2.1 a tree of a
//!   given size has exactly one root, so the log signed two incompatible statements.
//! - `not-an-extension`: checkpoint A (size m) and checkpoint B (size n > m), both signed by the
//!   log, plus the hashes of B's tree that fix the root of its first m leaves (a consistency
//!   proof from m to n, RFC 9162 §2.1.4, with the old root spelled out when m is a power of two).
//!   The proof hashes up to B's root, and the root it gives for B's first m leaves is not A's
//!   root: B's tree does not extend A's, and the log signed both.
//! - `tile-mismatch`: a checkpoint and a full tile the log served at some coordinates, plus the
//!   genuine hash of that tile's subtree with its path up to the signed root. The path proves the
//!   genuine hash is in the signed tree; the served tile hashes to something else. Tiles are not
//!   signed, so this shows what the log served only to someone who trusts the monitor's account
//!   or fetches the tile again; the per-tile SHA-256 catches corruption of the file, not forgery.
//! - `root-mismatch`: an optional earlier verified checkpoint A with its compact-range frontier,
//!   a later checkpoint C, and the level-0 tiles the log served for the leaves between them: the
//!   frontier folds to A's root, and extending it with the tiles' leaf hashes does not give C's
//!   root. The same caveat as for `tile-mismatch` applies to the tiles.
//!
//! Every field is checked; the file holds no free-form text, so changing any byte of it either
//! breaks its parsing, a signature, a digest or a proof.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::hash::Hash;
use crate::merkle::{verify_inclusion, CompactRange, ProofError, MAX_CONSISTENCY_PROOF_LEN};
use crate::note::NoteVerifier;
use crate::tiles::{decode_tile, Tile, TileDataError, TilePathError, TILE_HEIGHT, TILE_WIDTH};

/// The `format` value of an evidence file.
pub const EVIDENCE_FORMAT: &str = "cairn.evidence/v1";
/// The largest evidence file accepted.
pub const MAX_EVIDENCE_BYTES: usize = 64 << 20;
/// The most tiles a `root-mismatch` evidence may carry.
pub const MAX_EVIDENCE_TILES: usize = 4096;

/// One tile as the log served it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedTile {
    /// The tile's path, `tile/<L>/<N>[.p/<W>]` (C2SP tlog-tiles).
    pub path: String,
    /// The tile's bytes, base64.
    pub data: String,
    /// SHA-256 of the bytes, lowercase hex, so that a corrupted file is caught.
    pub sha256: String,
}

impl ServedTile {
    /// A served tile with its digest.
    pub fn new(tile: Tile, data: &[u8]) -> ServedTile {
        ServedTile {
            path: tile.path(),
            data: base64::engine::general_purpose::STANDARD.encode(data),
            sha256: hex(&Sha256::digest(data)),
        }
    }

    fn open(&self, position: usize) -> Result<(Tile, Vec<Hash>), EvidenceError> {
        let tile = Tile::parse(&self.path)
            .map_err(|source| EvidenceError::TilePath { position, source })?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .map_err(|_| EvidenceError::Malformed {
                field: "tiles[].data",
                expected: "standard base64",
            })?;
        if hex(&Sha256::digest(&data)) != self.sha256 {
            return Err(EvidenceError::TileDigest { position });
        }
        let hashes = decode_tile(tile, &data)
            .map_err(|source| EvidenceError::TileData { position, source })?;
        Ok((tile, hashes))
    }
}

/// The evidence file, as it is serialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Always [`EVIDENCE_FORMAT`].
    pub format: String,
    /// `same-size`, `not-an-extension`, `tile-mismatch` or `root-mismatch`.
    pub kind: String,
    /// The signed checkpoint notes, smaller tree first.
    pub checkpoints: Vec<String>,
    /// Proof hashes (base64): the consistency proof (`not-an-extension`) or the path from the
    /// tile's subtree to the root (`tile-mismatch`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proof: Vec<String>,
    /// The genuine hash of the tile's subtree (`tile-mismatch`), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_hash: Option<String>,
    /// The compact-range frontier of the older checkpoint (`root-mismatch`), base64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frontier: Vec<String>,
    /// Tiles as the log served them (`tile-mismatch`: one; `root-mismatch`: the level-0 tiles
    /// of the new leaves, in order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiles: Vec<ServedTile>,
}

/// What verified evidence proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The log signed two different roots for one tree size.
    SameSizeDifferentRoots {
        /// The log.
        origin: String,
        /// The tree size.
        size: u64,
        /// The two roots.
        roots: [Hash; 2],
    },
    /// The log signed a larger tree whose first `old_size` leaves have another root than the
    /// one it signed for `old_size`.
    NotAnExtension {
        /// The log.
        origin: String,
        /// The smaller tree's size.
        old_size: u64,
        /// The smaller tree's signed root.
        old_root: Hash,
        /// The larger tree's size.
        new_size: u64,
        /// The root of the larger tree's first `old_size` leaves.
        prefix_root: Hash,
    },
    /// A full tile the log served does not belong to the tree it signed.
    TileMismatch {
        /// The log.
        origin: String,
        /// The signed tree size.
        size: u64,
        /// The tile.
        tile: Tile,
    },
    /// The tiles the log served do not hash to the root it signed.
    RootMismatch {
        /// The log.
        origin: String,
        /// The signed tree size.
        size: u64,
        /// The signed root.
        signed_root: Hash,
        /// The root the tiles give.
        computed_root: Hash,
    },
}

/// Why evidence does not prove a conflict.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The file is too large.
    #[error("evidence is {found} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        found: usize,
        /// [`MAX_EVIDENCE_BYTES`].
        limit: usize,
    },
    /// The JSON does not parse as an evidence file.
    #[error("evidence is not a cairn.evidence/v1 JSON object: {0}")]
    Json(String),
    /// A field holds something other than what its kind needs.
    #[error("evidence field {field}: expected {expected}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// A checkpoint does not open with the log's key.
    #[error("checkpoint {position}: {source}")]
    Checkpoint {
        /// Its position in `checkpoints`.
        position: usize,
        /// Why.
        source: CheckpointError,
    },
    /// The checkpoints are of different logs.
    #[error("checkpoints are of different origins: {first:?} and {second:?}")]
    OriginsDiffer {
        /// The first origin.
        first: String,
        /// The second origin.
        second: String,
    },
    /// A tile path does not parse.
    #[error("tile {position}: {source}")]
    TilePath {
        /// Its position in `tiles`.
        position: usize,
        /// Why.
        source: TilePathError,
    },
    /// A tile's bytes are not its recorded SHA-256.
    #[error("tile {position}: bytes do not match their sha256")]
    TileDigest {
        /// Its position in `tiles`.
        position: usize,
    },
    /// A tile's bytes are not a tile of its width.
    #[error("tile {position}: {source}")]
    TileData {
        /// Its position in `tiles`.
        position: usize,
        /// Why.
        source: TileDataError,
    },
    /// A proof does not prove what the evidence needs it to.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
    /// The data is consistent: there is no conflict to prove.
    #[error("no conflict: {0}")]
    NoConflict(&'static str),
}

impl Evidence {
    /// Parses an evidence file (size-checked, unknown fields refused).
    pub fn from_json(bytes: &[u8]) -> Result<Evidence, EvidenceError> {
        if bytes.len() > MAX_EVIDENCE_BYTES {
            return Err(EvidenceError::TooLarge {
                found: bytes.len(),
                limit: MAX_EVIDENCE_BYTES,
            });
        }
        serde_json::from_slice(bytes).map_err(|error| EvidenceError::Json(error.to_string()))
    }

    /// The file's JSON, compact (no whitespace, so that every byte matters).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("evidence is plain strings and vectors")
    }

    /// Two signed notes of one tree size with different roots.
    pub fn same_size(first_note: &[u8], second_note: &[u8]) -> Evidence {
        Evidence::bare(
            "same-size",
            vec![note_text(first_note), note_text(second_note)],
        )
    }

    /// Signed notes of a smaller and a larger tree, and the hashes of the larger tree that fix
    /// the root of its prefix (see [`prefix_proof`]).
    pub fn not_an_extension(old_note: &[u8], new_note: &[u8], proof: &[Hash]) -> Evidence {
        let mut evidence = Evidence::bare(
            "not-an-extension",
            vec![note_text(old_note), note_text(new_note)],
        );
        evidence.proof = proof.iter().map(Hash::to_base64).collect();
        evidence
    }

    /// A signed note, a full tile as served, the genuine hash of its subtree and its path to the
    /// root (the inclusion proof of that subtree in the signed tree).
    pub fn tile_mismatch(
        note: &[u8],
        tile: Tile,
        served: &[u8],
        node_hash: Hash,
        path: &[Hash],
    ) -> Evidence {
        let mut evidence = Evidence::bare("tile-mismatch", vec![note_text(note)]);
        evidence.proof = path.iter().map(Hash::to_base64).collect();
        evidence.node_hash = Some(node_hash.to_base64());
        evidence.tiles = vec![ServedTile::new(tile, served)];
        evidence
    }

    /// An optional earlier checkpoint with its frontier, a later checkpoint, and the level-0
    /// tiles of the leaves between them as served.
    pub fn root_mismatch(
        old: Option<(&[u8], &[Hash])>,
        new_note: &[u8],
        tiles: &[(Tile, Vec<u8>)],
    ) -> Evidence {
        let mut notes = Vec::new();
        let mut frontier = Vec::new();
        if let Some((old_note, old_frontier)) = old {
            notes.push(note_text(old_note));
            frontier = old_frontier.iter().map(Hash::to_base64).collect();
        }
        notes.push(note_text(new_note));
        let mut evidence = Evidence::bare("root-mismatch", notes);
        evidence.frontier = frontier;
        evidence.tiles = tiles
            .iter()
            .map(|(tile, data)| ServedTile::new(*tile, data))
            .collect();
        evidence
    }

    fn bare(kind: &str, checkpoints: Vec<String>) -> Evidence {
        Evidence {
            format: EVIDENCE_FORMAT.to_owned(),
            kind: kind.to_owned(),
            checkpoints,
            proof: Vec::new(),
            node_hash: None,
            frontier: Vec::new(),
            tiles: Vec::new(),
        }
    }
}

fn note_text(note: &[u8]) -> String {
    String::from_utf8_lossy(note).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn hashes(field: &'static str, values: &[String]) -> Result<Vec<Hash>, EvidenceError> {
    values
        .iter()
        .map(|value| {
            Hash::from_base64(value).map_err(|_| EvidenceError::Malformed {
                field,
                expected: "base64 of 32 bytes",
            })
        })
        .collect()
}

/// The hashes of a tree of `new_size` leaves that fix both its root and the root of its first
/// `old_size` leaves: the RFC 9162 §2.1.4.1 consistency proof, preceded by the root of the first
/// `old_size` leaves when `old_size` is a power of two (the RFC leaves that hash out, as the
/// verifier is supposed to know it): `old_subtree` is that root, used only then.
pub fn prefix_proof(
    old_size: u64,
    consistency_proof: &[Hash],
    old_subtree: Option<Hash>,
) -> Vec<Hash> {
    let mut proof = Vec::with_capacity(consistency_proof.len() + 1);
    if old_size.is_power_of_two() {
        if let Some(hash) = old_subtree {
            proof.push(hash);
        }
    }
    proof.extend_from_slice(consistency_proof);
    proof
}

/// The roots of the first `old_size` leaves and of all `new_size` leaves that a prefix proof
/// (see [`prefix_proof`]) fixes, following RFC 9162 §2.1.4.2 step by step.
pub fn roots_from_prefix_proof(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
) -> Result<(Hash, Hash), ProofError> {
    if old_size == 0 || old_size >= new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if proof.len() > MAX_CONSISTENCY_PROOF_LEN + 1 {
        return Err(ProofError::ProofTooLong {
            found: proof.len(),
            limit: MAX_CONSISTENCY_PROOF_LEN + 1,
        });
    }
    let (first, rest) = proof.split_first().ok_or(ProofError::WrongProofLength {
        expected: 1,
        found: 0,
    })?;
    let mut old_node = old_size - 1;
    let mut new_node = new_size - 1;
    // With the old root given explicitly (a power of two), the RFC's step 1 has been done.
    if !old_size.is_power_of_two() {
        while old_node & 1 == 1 {
            old_node >>= 1;
            new_node >>= 1;
        }
    } else {
        let shift = old_size.trailing_zeros();
        old_node >>= shift;
        new_node >>= shift;
    }
    let mut old_root = *first;
    let mut new_root = *first;
    for hash in rest {
        if new_node == 0 {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                found: proof.len(),
            });
        }
        if old_node & 1 == 1 || old_node == new_node {
            old_root = Hash::of_node(hash, &old_root);
            new_root = Hash::of_node(hash, &new_root);
            if old_node & 1 == 0 {
                while old_node & 1 == 0 && old_node != 0 {
                    old_node >>= 1;
                    new_node >>= 1;
                }
            }
        } else {
            new_root = Hash::of_node(&new_root, hash);
        }
        old_node >>= 1;
        new_node >>= 1;
    }
    if new_node != 0 {
        return Err(ProofError::WrongProofLength {
            expected: proof.len() + 1,
            found: proof.len(),
        });
    }
    Ok((old_root, new_root))
}

fn open_checkpoints(
    evidence: &Evidence,
    log_verifier: &dyn NoteVerifier,
) -> Result<Vec<crate::checkpoint::SignedCheckpoint>, EvidenceError> {
    let opened = evidence
        .checkpoints
        .iter()
        .enumerate()
        .map(|(position, note)| {
            Checkpoint::open(note.as_bytes(), log_verifier)
                .map_err(|source| EvidenceError::Checkpoint { position, source })
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

/// Checks evidence against the log's key and says which conflict it proves.
pub fn verify_evidence(
    evidence: &Evidence,
    log_verifier: &dyn NoteVerifier,
) -> Result<Conflict, EvidenceError> {
    if evidence.format != EVIDENCE_FORMAT {
        return Err(EvidenceError::Malformed {
            field: "format",
            expected: EVIDENCE_FORMAT,
        });
    }
    match evidence.kind.as_str() {
        "same-size" => verify_same_size(evidence, log_verifier),
        "not-an-extension" => verify_not_an_extension(evidence, log_verifier),
        "tile-mismatch" => verify_tile_mismatch(evidence, log_verifier),
        "root-mismatch" => verify_root_mismatch(evidence, log_verifier),
        _ => Err(EvidenceError::Malformed {
            field: "kind",
            expected: "same-size, not-an-extension, tile-mismatch or root-mismatch",
        }),
    }
}

fn verify_same_size(
    evidence: &Evidence,
    log_verifier: &dyn NoteVerifier,
) -> Result<Conflict, EvidenceError> {
    expect_fields(evidence, 2..=2, false, false, false, false)?;
    let opened = open_checkpoints(evidence, log_verifier)?;
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
    log_verifier: &dyn NoteVerifier,
) -> Result<Conflict, EvidenceError> {
    expect_fields(evidence, 2..=2, true, false, false, false)?;
    let opened = open_checkpoints(evidence, log_verifier)?;
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
    log_verifier: &dyn NoteVerifier,
) -> Result<Conflict, EvidenceError> {
    expect_fields(evidence, 1..=1, true, true, false, true)?;
    if evidence.tiles.len() != 1 {
        return Err(EvidenceError::Malformed {
            field: "tiles",
            expected: "exactly one tile",
        });
    }
    let opened = open_checkpoints(evidence, log_verifier)?;
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
    log_verifier: &dyn NoteVerifier,
) -> Result<Conflict, EvidenceError> {
    expect_fields(evidence, 1..=2, false, false, true, true)?;
    if evidence.tiles.len() > MAX_EVIDENCE_TILES {
        return Err(EvidenceError::Malformed {
            field: "tiles",
            expected: "at most 4096 tiles",
        });
    }
    let opened = open_checkpoints(evidence, log_verifier)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_proof, inclusion_proof, NodeId};
    use crate::note::{Ed25519Signer, KeyName};
    use crate::tiles::{TileAppender, TileHashReader};
    use std::collections::HashMap;

    const ORIGIN: &str = "example.com/evidence-test";

    fn signer() -> Ed25519Signer {
        Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid name"), [7; 32])
    }

    /// A tree of `count` leaves (a `tag` makes forks), with its tiles and signed checkpoint.
    struct Tree {
        tiles: HashMap<Tile, Vec<u8>>,
        size: u64,
        root: Hash,
        leaf_hashes: Vec<Hash>,
    }

    impl Tree {
        fn new(count: u64, fork_at: Option<u64>) -> Tree {
            let leaf_hashes: Vec<Hash> = (0..count)
                .map(|index| {
                    let tag = if fork_at.is_some_and(|fork| index >= fork) {
                        "fork"
                    } else {
                        "leaf"
                    };
                    Hash::of_leaf(format!("{tag} {index}").as_bytes())
                })
                .collect();
            let mut appender = TileAppender::new();
            let mut tiles = HashMap::new();
            for update in appender.append(&leaf_hashes).expect("appends") {
                tiles.insert(update.tile, update.data);
            }
            Tree {
                tiles,
                size: count,
                root: appender.root(),
                leaf_hashes,
            }
        }

        fn note(&self) -> Vec<u8> {
            let checkpoint = Checkpoint {
                origin: ORIGIN.to_owned(),
                size: self.size,
                root: self.root,
                extensions: Vec::new(),
            };
            checkpoint
                .sign(&signer())
                .expect("signs")
                .to_bytes()
                .expect("encodes")
        }

        fn reader(&self) -> TileHashReader<&HashMap<Tile, Vec<u8>>> {
            TileHashReader::new(self.size, self.root, &self.tiles).expect("size in range")
        }

        fn prefix_proof(&self, old_size: u64) -> Vec<Hash> {
            let proof = consistency_proof(old_size, self.size, &self.reader()).expect("proof");
            let subtree = old_size.is_power_of_two().then(|| {
                let node = NodeId::new(old_size.trailing_zeros() as u8, 0).expect("node");
                self.reader().read_hashes(&[node]).expect("reads")[0]
            });
            prefix_proof(old_size, &proof, subtree)
        }
    }

    use crate::merkle::HashReader as _;

    fn verifier() -> crate::note::Ed25519Verifier {
        signer().verifier()
    }

    fn assert_every_byte_flip_is_detected(evidence: &Evidence) {
        let json = evidence.to_json().into_bytes();
        verify_evidence(&Evidence::from_json(&json).expect("parses"), &verifier()).expect("holds");
        for position in 0..json.len() {
            for mask in [0x01u8, 0x20] {
                let mut tampered = json.clone();
                tampered[position] ^= mask;
                let accepted = Evidence::from_json(&tampered)
                    .ok()
                    .map(|evidence| verify_evidence(&evidence, &verifier()));
                assert!(
                    !matches!(accepted, Some(Ok(_))),
                    "flipping byte {position} with {mask:#x} went unnoticed: {:?}",
                    String::from_utf8_lossy(&tampered)
                );
            }
        }
    }

    #[test]
    fn same_size_different_roots_is_a_conflict() {
        let honest = Tree::new(300, None);
        let forked = Tree::new(300, Some(299));
        let evidence = Evidence::same_size(&honest.note(), &forked.note());
        let conflict = verify_evidence(&evidence, &verifier()).expect("conflict");
        assert!(matches!(
            conflict,
            Conflict::SameSizeDifferentRoots { size: 300, .. }
        ));
        assert_every_byte_flip_is_detected(&evidence);
    }

    #[test]
    fn same_root_twice_is_no_conflict() {
        let honest = Tree::new(10, None);
        let evidence = Evidence::same_size(&honest.note(), &honest.note());
        assert!(matches!(
            verify_evidence(&evidence, &verifier()),
            Err(EvidenceError::NoConflict(_))
        ));
    }

    #[test]
    fn rejects_evidence_signed_by_another_key() {
        let honest = Tree::new(10, None);
        let forked = Tree::new(10, Some(3));
        let evidence = Evidence::same_size(&honest.note(), &forked.note());
        let other = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [8; 32]);
        assert!(matches!(
            verify_evidence(&evidence, &other.verifier()),
            Err(EvidenceError::Checkpoint { .. })
        ));
    }

    #[test]
    fn larger_tree_that_does_not_extend_the_smaller_is_a_conflict() {
        for (old_size, new_size, fork_at) in [
            (300, 700, 10),
            (256, 1000, 255),
            (1, 2, 0),
            (5, 6, 4),
            (512, 513, 0),
            (7, 8, 6),
        ] {
            let old = Tree::new(old_size, None);
            let new = Tree::new(new_size, Some(fork_at));
            let evidence =
                Evidence::not_an_extension(&old.note(), &new.note(), &new.prefix_proof(old_size));
            let conflict = verify_evidence(&evidence, &verifier())
                .unwrap_or_else(|error| panic!("{old_size}->{new_size}: {error}"));
            assert!(matches!(conflict, Conflict::NotAnExtension { .. }));
        }
    }

    #[test]
    fn honest_growth_is_no_conflict_and_proof_roots_match_the_trees() {
        for (old_size, new_size) in [(1, 2), (3, 7), (256, 257), (300, 1000), (1024, 1025)] {
            let old = Tree::new(old_size, None);
            let new = Tree::new(new_size, None);
            let proof = new.prefix_proof(old_size);
            let (prefix_root, new_root) =
                roots_from_prefix_proof(old_size, new_size, &proof).expect("computes");
            assert_eq!((prefix_root, new_root), (old.root, new.root));
            let evidence = Evidence::not_an_extension(&old.note(), &new.note(), &proof);
            assert!(matches!(
                verify_evidence(&evidence, &verifier()),
                Err(EvidenceError::NoConflict(_))
            ));
        }
    }

    #[test]
    fn not_an_extension_evidence_detects_every_byte_flip() {
        let old = Tree::new(300, None);
        let new = Tree::new(520, Some(100));
        let evidence = Evidence::not_an_extension(&old.note(), &new.note(), &new.prefix_proof(300));
        assert_every_byte_flip_is_detected(&evidence);
    }

    #[test]
    fn rewritten_full_tile_is_a_tile_mismatch() {
        let tree = Tree::new(1000, None);
        let tile = Tile::new(0, 1, TILE_WIDTH).expect("tile");
        let mut served = tree.tiles[&tile].clone();
        served[40] ^= 0xff;
        let node_hash = crate::merkle::root_from_leaf_hashes(&tree.leaf_hashes[256..512]);
        let path = inclusion_proof(256, tree.size, &tree.reader()).expect("proof")[8..].to_vec();
        let evidence = Evidence::tile_mismatch(&tree.note(), tile, &served, node_hash, &path);
        let conflict = verify_evidence(&evidence, &verifier()).expect("conflict");
        assert!(matches!(
            conflict,
            Conflict::TileMismatch { size: 1000, .. }
        ));
        assert_every_byte_flip_is_detected(&evidence);

        let honest =
            Evidence::tile_mismatch(&tree.note(), tile, &tree.tiles[&tile], node_hash, &path);
        assert!(matches!(
            verify_evidence(&honest, &verifier()),
            Err(EvidenceError::NoConflict(_))
        ));
    }

    #[test]
    fn signed_root_that_tiles_do_not_give_is_a_root_mismatch() {
        let old = Tree::new(300, None);
        let grown = Tree::new(600, None);
        let mut lying = Tree::new(600, None);
        lying.root = Tree::new(600, Some(500)).root;
        let frontier = CompactRange::from_reader(300, &old.reader()).expect("frontier");
        let tiles: Vec<(Tile, Vec<u8>)> = [(1, 256), (2, 88)]
            .into_iter()
            .map(|(index, width)| {
                let tile = Tile::new(0, index, width).expect("tile");
                let data = grown
                    .tiles
                    .get(&tile)
                    .or_else(|| grown.tiles.get(&tile.to_full()));
                (
                    tile,
                    data.expect("served")[..usize::from(width) * 32].to_vec(),
                )
            })
            .collect();
        let evidence = Evidence::root_mismatch(
            Some((&old.note(), frontier.frontier())),
            &lying.note(),
            &tiles,
        );
        let conflict = verify_evidence(&evidence, &verifier()).expect("conflict");
        assert!(matches!(conflict, Conflict::RootMismatch { size: 600, .. }));
        assert_every_byte_flip_is_detected(&evidence);

        let honest = Evidence::root_mismatch(
            Some((&old.note(), frontier.frontier())),
            &grown.note(),
            &tiles,
        );
        assert!(matches!(
            verify_evidence(&honest, &verifier()),
            Err(EvidenceError::NoConflict(_))
        ));
    }

    #[test]
    fn refuses_oversized_and_unknown_fields() {
        assert!(matches!(
            Evidence::from_json(&vec![b' '; MAX_EVIDENCE_BYTES + 1]),
            Err(EvidenceError::TooLarge { .. })
        ));
        assert!(Evidence::from_json(
            br#"{"format":"cairn.evidence/v1","kind":"same-size","checkpoints":[],"x":1}"#
        )
        .is_err());
    }
}
