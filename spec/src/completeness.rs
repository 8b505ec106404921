//! Completeness of query answers: the event index (`cairn.index/v1`), a commitment to which
//! leaves carry which index key, signed in every checkpoint, with proofs that an answer holds
//! every matching event and not only events that are in the log. `spec/docs/completeness.md`
//! is the normative text; this module is its construction and verifier.
//!
//! - [`Item`], [`ListHead`]: a key's list of leaves, in log order, committed to by an RFC 9162
//!   tree over 40-byte items (leaf index, leaf hash). [`list_root`], [`range_proof`] and
//!   [`verify_range`] prove runs of a list.
//! - [`IndexMap`]: the map from [`MapKey`] to list, a compact binary radix tree whose root the
//!   checkpoint carries ([`extension_line`], [`root_from_extensions`]), updated in place as
//!   leaves are integrated.
//! - [`MapProof`]: a key's list head, or its absence, against a map root.
//! - [`CompletenessProof`]: an answer's proof that it holds every event of one value in a
//!   window of leaf indices (§3.3), as query answers and export bundles carry it; with a
//!   receive-time range, [`received`] (§3.5).
//! - [`records`]: the index's record stream (§1.4), from which an auditor replays it.

mod answer;
mod map;
mod range;
pub mod received;
pub mod records;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_received;
#[cfg(test)]
mod tests_vectors;

use sha2::{Digest, Sha256};

use crate::event::{IndexTag, INDEX_DOMAIN};
use crate::hash::{Hash, HashError, HASH_SIZE};

pub use answer::{
    run_bounds, CompletenessError, CompletenessProof, KeyProof, ProvenComplete, Run, WireEnd,
    WireItem, MAX_ANSWER_KEYS, MAX_RUN_ITEMS,
};
pub use map::{IndexMap, MapProof, MapProofError, MapUpdateError, PathEnd, MAX_MAP_DEPTH};
pub use range::{list_root, range_proof, verify_range, RangeError};

/// Bytes of a map key.
pub const MAP_KEY_SIZE: usize = 32;

/// Bytes of a list item: the leaf index (8, big-endian) and the leaf hash (32).
pub const ITEM_SIZE: usize = 8 + HASH_SIZE;

/// What opens the checkpoint extension line that carries the map root.
pub const EXTENSION_PREFIX: &str = "cairn-index/v1 ";

/// The hash of no key at all: an empty subtree of the map, and the root of the empty map.
pub const EMPTY: Hash = Hash([0; HASH_SIZE]);

/// A key of the map: the index tag of an `actor.id`, `resource.id` or `resource.type` value, or
/// the public key of an `action` ([`action_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MapKey(pub [u8; MAP_KEY_SIZE]);

impl MapKey {
    /// Bit `depth` of the key, the most significant bit of the first byte being bit 0.
    pub fn bit(&self, depth: usize) -> bool {
        self.0[depth / 8] & (0x80 >> (depth % 8)) != 0
    }

    /// How many leading bits this key shares with `other` (256 if they are equal).
    pub fn common_prefix_bits(&self, other: &MapKey) -> usize {
        for (position, (a, b)) in self.0.iter().zip(other.0.iter()).enumerate() {
            let differ = a ^ b;
            if differ != 0 {
                return position * 8 + differ.leading_zeros() as usize;
            }
        }
        MAP_KEY_SIZE * 8
    }
}

impl From<IndexTag> for MapKey {
    fn from(tag: IndexTag) -> MapKey {
        MapKey(tag.0)
    }
}

/// The map key of an `action` value: public, because `action` is in clear in every leaf.
/// `SHA-256("cairn.event-index/v1" 0x00 "action" 0x00 value)`.
pub fn action_key(action: &str) -> MapKey {
    let mut hasher = Sha256::new();
    hasher.update(INDEX_DOMAIN.as_bytes());
    hasher.update([0]);
    hasher.update(b"action");
    hasher.update([0]);
    hasher.update(action.as_bytes());
    MapKey(hasher.finalize().into())
}

/// One item of a key's list: a leaf of the log that carries the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The leaf's index in the log.
    pub leaf_index: u64,
    /// Its RFC 9162 leaf hash.
    pub leaf_hash: Hash,
}

impl Item {
    /// Its 40 bytes: the index big-endian, then the leaf hash.
    pub fn to_bytes(&self) -> [u8; ITEM_SIZE] {
        let mut bytes = [0u8; ITEM_SIZE];
        bytes[..8].copy_from_slice(&self.leaf_index.to_be_bytes());
        bytes[8..].copy_from_slice(&self.leaf_hash.0);
        bytes
    }

    /// Its hash as a leaf of the list tree: `SHA-256(0x00 ‖ item)`.
    pub fn hash(&self) -> Hash {
        Hash::of_leaf(&self.to_bytes())
    }
}

/// The hashes of `items` ([`Item::hash`]), several compressed side by side
/// ([`Hash::of_leaves`]).
fn item_hashes(items: &[Item]) -> Vec<Hash> {
    let bytes: Vec<[u8; ITEM_SIZE]> = items.iter().map(Item::to_bytes).collect();
    let mut hashes = vec![Hash::default(); items.len()];
    Hash::of_leaves(&bytes, &mut hashes);
    hashes
}

/// What the map holds for a key: how many items its list has and the list tree's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHead {
    /// The number of items, at least one.
    pub count: u64,
    /// The RFC 9162 tree hash of the items.
    pub root: Hash,
}

/// The first byte of a map leaf's hashed message.
const MAP_LEAF_PREFIX: u8 = 0x02;
/// The first byte of a map node's hashed message.
const MAP_NODE_PREFIX: u8 = 0x03;

/// What follows [`MAP_LEAF_PREFIX`] in a map leaf's message: `key ‖ count ‖ list root`.
fn map_leaf_message(key: &MapKey, head: &ListHead) -> [u8; MAP_KEY_SIZE + 8 + HASH_SIZE] {
    let mut message = [0u8; MAP_KEY_SIZE + 8 + HASH_SIZE];
    message[..MAP_KEY_SIZE].copy_from_slice(&key.0);
    message[MAP_KEY_SIZE..MAP_KEY_SIZE + 8].copy_from_slice(&head.count.to_be_bytes());
    message[MAP_KEY_SIZE + 8..].copy_from_slice(&head.root.0);
    message
}

/// The hash of `key`'s leaf in the map: `SHA-256(0x02 ‖ key ‖ count ‖ list root)`.
pub fn map_leaf_hash(key: &MapKey, head: &ListHead) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([MAP_LEAF_PREFIX]);
    hasher.update(map_leaf_message(key, head));
    Hash(hasher.finalize().into())
}

/// The hash of a map node: `SHA-256(0x03 ‖ left ‖ right)`.
pub fn map_node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut block = [0u8; 1 + 2 * HASH_SIZE];
    block[0] = MAP_NODE_PREFIX;
    block[1..1 + HASH_SIZE].copy_from_slice(&left.0);
    block[1 + HASH_SIZE..].copy_from_slice(&right.0);
    Hash(Sha256::digest(block).into())
}

/// The checkpoint extension line that carries `root`.
pub fn extension_line(root: &Hash) -> String {
    format!("{EXTENSION_PREFIX}{}", root.to_base64())
}

/// Why a checkpoint's index line is not right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// The line is there but its hash is not.
    #[error("the checkpoint's cairn-index/v1 line does not hold a hash: {0}")]
    BadRoot(HashError),
    /// The line is there more than once.
    #[error("the checkpoint carries {0} cairn-index/v1 lines, expected one")]
    Repeated(usize),
    /// The line is there but not first among the extension lines.
    #[error("the checkpoint's cairn-index/v1 line must be its first extension line")]
    NotFirst,
}

/// The map root a checkpoint's extension lines carry: `None` if it has no `cairn-index/v1`
/// line (a log of raw leaves).
pub fn root_from_extensions(extensions: &[String]) -> Result<Option<Hash>, ExtensionError> {
    let lines: Vec<(usize, &String)> = extensions
        .iter()
        .enumerate()
        .filter(|(_, line)| line.starts_with(EXTENSION_PREFIX))
        .collect();
    match lines.as_slice() {
        [] => Ok(None),
        [(0, line)] => Hash::from_base64(&line[EXTENSION_PREFIX.len()..])
            .map(Some)
            .map_err(ExtensionError::BadRoot),
        [_] => Err(ExtensionError::NotFirst),
        many => Err(ExtensionError::Repeated(many.len())),
    }
}
