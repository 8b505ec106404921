//! Portable evidence that a log misbehaved: the `cairn.evidence/v1` JSON file a monitor writes
//! when it finds a split view, and [`verify_evidence`], which anyone can run offline with only
//! the log's verifier key. The format is described in `spec/docs/evidence.md`.
//!
//! Five kinds of evidence; the first four prove a split view, strongest first:
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
//! The fifth, `revoked-key`, proves a compromise: a checkpoint signed by a key that the log's
//! key history (spec/docs/key-history.md, verified from the pinned key) revoked at or below
//! the checkpoint's size. Whoever signed it held a key the log itself declared stolen.
//!
//! Two more, `index-omits` and `index-invents`, prove that the log's completeness index
//! (spec/docs/completeness.md) is false at a checkpoint it signed: one leaf, its inclusion proof,
//! and the index's own proof (against the checkpoint's `cairn-index/v1` root) that the list of
//! the leaf's `action` leaves it out, or that the list of another action holds it (or binds
//! another leaf at its index). See [`index`].
//!
//! Every field is checked; the file holds no free-form text, so changing any byte of it either
//! breaks its parsing, a signature, a digest or a proof.

pub mod index;
mod prefix;
mod verification;

pub use prefix::{prefix_proof, roots_from_prefix_proof};
pub use verification::verify_evidence;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::CheckpointError;
use crate::hash::Hash;
use crate::merkle::ProofError;
use crate::tiles::{decode_tile, Tile, TileDataError, TilePathError};

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
    /// `same-size`, `not-an-extension`, `tile-mismatch`, `root-mismatch`, `revoked-key`,
    /// `index-omits` or `index-invents`.
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
    /// The log's key history in its canonical encoding, as `GET /key-history` serves it:
    /// required by `revoked-key`; for the other kinds, present when the log rotated its key,
    /// so that checkpoints signed by its newer keys verify from the pinned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_history: Option<String>,
    /// The leaf's index in the log (`index-omits`, `index-invents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// The leaf, base64 (`index-omits`, `index-invents`); `proof` is its inclusion proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<String>,
    /// The index's proof for one action in the window of that one leaf (`index-omits`,
    /// `index-invents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completeness: Option<crate::completeness::CompletenessProof>,
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
    /// A checkpoint is signed by a key the log's verified key history revoked at or below its
    /// size.
    RevokedKeySigned {
        /// The log.
        origin: String,
        /// The checkpoint's tree size.
        size: u64,
        /// The revoked key's vkey.
        vkey: String,
        /// The size it is revoked from.
        revoked_from: u64,
    },
    /// The checkpoint's index leaves a leaf out of the list of the action it carries.
    IndexOmits {
        /// The log.
        origin: String,
        /// The checkpoint's tree size.
        size: u64,
        /// The leaf left out.
        leaf_index: u64,
        /// Its action.
        action: String,
    },
    /// The checkpoint's index lists a leaf under an action it does not carry, or binds
    /// another leaf hash at its index.
    IndexInvents {
        /// The log.
        origin: String,
        /// The checkpoint's tree size.
        size: u64,
        /// The leaf.
        leaf_index: u64,
        /// The action whose list holds it.
        listed_under: String,
        /// The action the leaf carries.
        action: String,
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
    /// A checkpoint opens, but no key of the log's key history valid at its size signed it.
    #[error(
        "checkpoint {position}: no key of the log's key history valid at size {size} signed it"
    )]
    NoValidKey {
        /// Its position in `checkpoints`.
        position: usize,
        /// Its tree size.
        size: u64,
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
    /// The key history does not verify from the log's key.
    #[error("key history: {0}")]
    KeyHistory(#[from] crate::key_history::KeyHistoryError),
    /// A completeness proof in the evidence does not verify.
    #[error("completeness proof: {0}")]
    Completeness(#[from] crate::completeness::CompletenessError),
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

    /// A checkpoint signed by a key the log's key history (`history`, canonical bytes) revoked
    /// at or below its size.
    pub fn revoked_key(note: &[u8], history: &[u8]) -> Evidence {
        let mut evidence = Evidence::bare("revoked-key", vec![note_text(note)]);
        evidence.key_history = Some(String::from_utf8_lossy(history).into_owned());
        evidence
    }

    /// The same evidence carrying the log's key history (canonical bytes), against which its
    /// checkpoints' signatures are then checked. A `revoked-key` evidence keeps its own.
    pub fn with_key_history(mut self, history: &[u8]) -> Evidence {
        if self.key_history.is_none() {
            self.key_history = Some(String::from_utf8_lossy(history).into_owned());
        }
        self
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
            key_history: None,
            leaf_index: None,
            leaf: None,
            completeness: None,
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

#[cfg(test)]
mod tests;
