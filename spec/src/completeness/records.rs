//! The index's record stream (completeness.md §1.4): what the log appends as it indexes, and
//! serves to index auditors, so that they replay the map and check every checkpoint's root.
//!
//! ```text
//! item record  'I'  leaf index (8, BE)  leaf hash (32)  key count (1)  keys (32 each)
//! mark record  'M'  size (8, BE)        map root (32)
//! ```
//!
//! Items of one run come in increasing leaf order, then one mark: the index covers the leaves
//! below `size` and its root is `map root`.

use super::{Item, MapKey, MAP_KEY_SIZE};
use crate::hash::{Hash, HASH_SIZE};

/// Most keys one leaf carries (action, actor.id, resource.id, resource.type).
pub const MAX_KEYS_PER_LEAF: usize = 4;
/// The longest record: an item with four keys.
pub const MAX_RECORD_BYTES: usize = 1 + 8 + HASH_SIZE + 1 + MAX_KEYS_PER_LEAF * MAP_KEY_SIZE;

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A leaf and the keys it carries.
    Item(Item, Vec<MapKey>),
    /// The index covers `size` leaves and has this root.
    Mark(u64, Hash),
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The first byte is neither `I` nor `M`.
    #[error("a record of unknown kind {0:#04x}")]
    UnknownKind(u8),
    /// An item with more keys than a leaf carries.
    #[error("an item record with {0} keys, more than {MAX_KEYS_PER_LEAF}")]
    TooManyKeys(usize),
}

impl Record {
    /// Its bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(MAX_RECORD_BYTES);
        match self {
            Record::Item(item, keys) => {
                bytes.push(b'I');
                bytes.extend_from_slice(&item.to_bytes());
                let keys = &keys[..keys.len().min(MAX_KEYS_PER_LEAF)];
                // At most four: fits a byte.
                bytes.push(keys.len() as u8);
                for key in keys {
                    bytes.extend_from_slice(&key.0);
                }
            }
            Record::Mark(size, root) => {
                bytes.push(b'M');
                bytes.extend_from_slice(&size.to_be_bytes());
                bytes.extend_from_slice(&root.0);
            }
        }
        bytes
    }

    /// The record at the start of `bytes` and its length; `None` if `bytes` ends first.
    pub fn parse(bytes: &[u8]) -> Result<Option<(Record, usize)>, RecordError> {
        let Some(&kind) = bytes.first() else {
            return Ok(None);
        };
        let fixed = 1 + 8 + HASH_SIZE;
        if kind != b'I' && kind != b'M' {
            return Err(RecordError::UnknownKind(kind));
        }
        if bytes.len() < fixed {
            return Ok(None);
        }
        let mut number = [0u8; 8];
        number.copy_from_slice(&bytes[1..9]);
        let number = u64::from_be_bytes(number);
        let mut hash = [0u8; HASH_SIZE];
        hash.copy_from_slice(&bytes[9..fixed]);
        if kind == b'M' {
            return Ok(Some((Record::Mark(number, Hash(hash)), fixed)));
        }
        let Some(&count) = bytes.get(fixed) else {
            return Ok(None);
        };
        let count = usize::from(count);
        if count > MAX_KEYS_PER_LEAF {
            return Err(RecordError::TooManyKeys(count));
        }
        let length = fixed + 1 + count * MAP_KEY_SIZE;
        if bytes.len() < length {
            return Ok(None);
        }
        let keys = bytes[fixed + 1..length]
            .chunks_exact(MAP_KEY_SIZE)
            .map(|chunk| {
                let mut key = [0u8; MAP_KEY_SIZE];
                key.copy_from_slice(chunk);
                MapKey(key)
            })
            .collect();
        let item = Item {
            leaf_index: number,
            leaf_hash: Hash(hash),
        };
        Ok(Some((Record::Item(item, keys), length)))
    }
}

/// The length of the longest run of whole records at the start of `bytes`.
pub fn whole_records(bytes: &[u8]) -> Result<usize, RecordError> {
    let mut offset = 0;
    while let Some((_, length)) = Record::parse(&bytes[offset..])? {
        offset += length;
    }
    Ok(offset)
}
