//! What the log stores for each leaf: the entry as submitted and as read back, and the keys the
//! dedup index answers by.
//!
//! A leaf is opaque bytes; its identity is its RFC 9162 §2.1.1 leaf hash. A producer may also
//! name a submission with an idempotency key, scoped to the producer, so that a retry returns
//! the first answer even if the bytes changed.

use cairn_spec::Hash;
use sha2::{Digest, Sha256};

/// The longest producer name or idempotency key, in bytes. Both are stored in every entry that
/// carries them, so they are kept short; one byte encodes each length on disk.
pub const MAX_IDEMPOTENCY_PART_BYTES: usize = 255;

/// A submission's idempotency key: the producer that sent it and the key it chose.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    producer: String,
    key: String,
    digest: [u8; 32],
}

/// An idempotency key that cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    /// The producer name or the key was empty.
    #[error("the {part} of an idempotency key must not be empty")]
    Empty {
        /// `"producer"` or `"key"`.
        part: &'static str,
    },
    /// The producer name or the key was too long.
    #[error("the {part} of an idempotency key is {length} bytes, at most {MAX_IDEMPOTENCY_PART_BYTES} are allowed")]
    TooLong {
        /// `"producer"` or `"key"`.
        part: &'static str,
        /// Its length in bytes.
        length: usize,
    },
}

impl IdempotencyKey {
    /// An idempotency key of `producer`. Both parts must be 1 to 255 bytes long.
    pub fn new(
        producer: impl Into<String>,
        key: impl Into<String>,
    ) -> Result<IdempotencyKey, IdempotencyKeyError> {
        let producer = producer.into();
        let key = key.into();
        for (part, text) in [("producer", &producer), ("key", &key)] {
            if text.is_empty() {
                return Err(IdempotencyKeyError::Empty { part });
            }
            if text.len() > MAX_IDEMPOTENCY_PART_BYTES {
                return Err(IdempotencyKeyError::TooLong {
                    part,
                    length: text.len(),
                });
            }
        }
        // A digest with its own domain label, so that the dedup index can keep idempotency keys
        // and leaf hashes in one key space: a leaf hash starts SHA-256(0x00 || ...), this one
        // SHA-256("cairn idempotency v1" || ...), and the two never meet except by collision.
        let mut hasher = Sha256::new();
        hasher.update(b"cairn idempotency v1\0");
        hasher.update([producer.len() as u8]);
        hasher.update(producer.as_bytes());
        hasher.update([key.len() as u8]);
        hasher.update(key.as_bytes());
        let digest = hasher.finalize().into();
        Ok(IdempotencyKey {
            producer,
            key,
            digest,
        })
    }

    /// The producer that chose the key.
    pub fn producer(&self) -> &str {
        &self.producer
    }

    /// The key itself.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A SHA-256 digest of (producer, key), domain-separated from leaf hashes.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

/// A leaf about to be appended, with its leaf hash computed once, by whoever built it (so the
/// hashing happens on the submitter's task, not on the single committer thread).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// Shared bytes, so that the leaves of a batch can be slices of the request body.
    leaf: bytes::Bytes,
    leaf_hash: Hash,
    /// Boxed: most entries have none, and the sequencer moves entries several times.
    idempotency: Option<Box<IdempotencyKey>>,
    /// Data kept beside the leaf, durable with it, not part of the tree, erasable.
    payload: Option<bytes::Bytes>,
}

impl NewEntry {
    /// A new entry for `leaf`, optionally named by an idempotency key.
    pub fn new(leaf: impl Into<bytes::Bytes>, idempotency: Option<IdempotencyKey>) -> NewEntry {
        let leaf = leaf.into();
        let leaf_hash = Hash::of_leaf(&leaf);
        NewEntry {
            leaf,
            leaf_hash,
            idempotency: idempotency.map(Box::new),
            payload: None,
        }
    }

    /// The entry with `payload`, if any, stored beside its leaf: made durable with it, read
    /// and erased by index ([`super::SequenceStore::read_payload`],
    /// [`super::SequenceStore::erase_payload`]), never part of the tree. A duplicate entry is not
    /// stored, and neither is its payload.
    pub fn with_payload(mut self, payload: Option<impl Into<bytes::Bytes>>) -> NewEntry {
        self.payload = payload.map(Into::into);
        self
    }

    /// The payload, if the entry has one.
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    /// The bytes it adds to a batch, by which batches and admission are bounded: its leaf and
    /// its payload.
    pub fn stored_bytes(&self) -> usize {
        self.leaf.len() + self.payload.as_ref().map_or(0, bytes::Bytes::len)
    }

    /// The leaf bytes.
    pub fn leaf(&self) -> &[u8] {
        &self.leaf
    }

    /// The RFC 9162 leaf hash of the leaf.
    pub fn leaf_hash(&self) -> &Hash {
        &self.leaf_hash
    }

    /// The idempotency key, if the producer gave one.
    pub fn idempotency(&self) -> Option<&IdempotencyKey> {
        self.idempotency.as_deref()
    }
}

/// A sequenced entry as read back from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its index in the log.
    pub index: u64,
    /// The leaf bytes.
    pub leaf: Vec<u8>,
    /// The idempotency key it was submitted with, if any.
    pub idempotency: Option<IdempotencyKey>,
}

impl Entry {
    /// The RFC 9162 leaf hash of the leaf.
    pub fn leaf_hash(&self) -> Hash {
        Hash::of_leaf(&self.leaf)
    }
}

/// What the dedup index is asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DedupKey<'a> {
    /// An entry with this leaf hash.
    Leaf(&'a Hash),
    /// An entry submitted with this idempotency key.
    Idempotency(&'a IdempotencyKey),
}

impl DedupKey<'_> {
    /// The 32 bytes that identify the key in the dedup index: the leaf hash, or the
    /// idempotency key's digest.
    pub fn digest(&self) -> &[u8; 32] {
        match self {
            DedupKey::Leaf(hash) => hash.as_bytes(),
            DedupKey::Idempotency(key) => key.digest(),
        }
    }

    /// Whether `entry` is the one this key names.
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            DedupKey::Leaf(hash) => entry.leaf_hash() == **hash,
            DedupKey::Idempotency(key) => entry.idempotency.as_ref() == Some(*key),
        }
    }
}

/// An entry already in the log that a dedup key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuplicateHit {
    /// The index of the first entry with that key.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_parts_are_bounded() {
        assert_eq!(
            IdempotencyKey::new("", "k"),
            Err(IdempotencyKeyError::Empty { part: "producer" })
        );
        assert_eq!(
            IdempotencyKey::new("p", "x".repeat(256)),
            Err(IdempotencyKeyError::TooLong {
                part: "key",
                length: 256
            })
        );
        assert!(IdempotencyKey::new("p".repeat(255), "k".repeat(255)).is_ok());
    }

    #[test]
    fn idempotency_digest_separates_producer_from_key() {
        let a = IdempotencyKey::new("ab", "c").expect("valid");
        let b = IdempotencyKey::new("a", "bc").expect("valid");
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn new_entry_carries_its_leaf_hash() {
        let entry = NewEntry::new(b"leaf".to_vec(), None);
        assert_eq!(*entry.leaf_hash(), Hash::of_leaf(b"leaf"));
    }
}
