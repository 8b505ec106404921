//! Keyed index tags: how a log finds the events of one actor or resource without keeping the
//! actor's or resource's identifier in its index.
//!
//! ```text
//! tag = HMAC-SHA-256(key = index key, "cairn.event-index/v1" 0x00 field 0x00 value)
//! ```
//!
//! `field` is `actor.id`, `resource.id` or `resource.type`; `value` is that string's UTF-8
//! bytes, exactly as the event has it (a query matches exact values, as before). The index key
//! is the log's secret (32 random bytes): to anyone without it a tag is a pseudorandom label
//! that says only that two events share an actor (or resource), not who it is; a dictionary of
//! likely identifiers is of no use. The key's holder can recompute the tag of a guessed value,
//! so erasing a data subject also deletes the index entries under that subject's tags (or keys
//! them under a per-subject key that is destroyed with the subject's data); see event.md.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::fields::push_hex;

/// The label that opens every index tag's message.
pub const INDEX_DOMAIN: &str = "cairn.event-index/v1";
/// Bytes of an index key.
pub const INDEX_KEY_SIZE: usize = 32;

/// The log's secret key for index tags.
#[derive(Clone, PartialEq, Eq)]
pub struct IndexKey([u8; INDEX_KEY_SIZE]);

impl IndexKey {
    /// A key of these bytes (32 from a cryptographically secure random source).
    pub fn from_bytes(bytes: [u8; INDEX_KEY_SIZE]) -> IndexKey {
        IndexKey(bytes)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; INDEX_KEY_SIZE] {
        &self.0
    }
}

impl fmt::Debug for IndexKey {
    /// A key is a secret: it is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

/// What an index tag is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexedField {
    /// `actor.id`.
    ActorId,
    /// `resource.id`.
    ResourceId,
    /// `resource.type`.
    ResourceType,
}

impl IndexedField {
    /// The dotted name, as in the tag's message.
    pub fn name(self) -> &'static str {
        match self {
            IndexedField::ActorId => "actor.id",
            IndexedField::ResourceId => "resource.id",
            IndexedField::ResourceType => "resource.type",
        }
    }
}

/// An index tag: 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexTag(pub [u8; 32]);

impl IndexTag {
    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            push_hex(&mut text, byte);
        }
        text
    }
}

/// The tag under `key` of the value `value` of `field`.
pub fn index_tag(key: &IndexKey, field: IndexedField, value: &str) -> IndexTag {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(INDEX_DOMAIN.as_bytes());
    mac.update(&[0]);
    mac.update(field.name().as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    IndexTag(mac.finalize().into_bytes().into())
}
