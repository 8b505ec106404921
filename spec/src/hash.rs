//! Leaf and node hashes of RFC 9162 §2.1.1 (identical to RFC 6962 §2.1).
//!
//! A Merkle tree hashes its leaves and its interior nodes with different one-byte prefixes so
//! that no leaf can ever be passed off as an interior node (a second-preimage defence):
//!
//! ```text
//! MTH({})       = SHA-256()
//! leaf hash     = SHA-256(0x00 || leaf bytes)
//! node hash     = SHA-256(0x01 || left child hash || right child hash)
//! ```
//!
//! [`Hash`] is a SHA-256 output. Its text forms are standard base64 with padding (the form used
//! by checkpoints, C2SP tlog-checkpoint) and lowercase hex (the form used in logs and metrics).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use sha2::{Digest, Sha256};

pub mod lanes;

/// Length in bytes of a SHA-256 hash.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash: of a leaf, of an interior node, or the root of a tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

/// A text or byte form of a [`Hash`] that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The bytes were not 32 long.
    #[error("hash must be {HASH_SIZE} bytes, found {found}")]
    WrongLength {
        /// How many bytes were found.
        found: usize,
    },
    /// The text was not standard base64 with padding.
    #[error("hash is not valid base64: {0}")]
    Base64(String),
    /// The text was not 64 lowercase or uppercase hex digits.
    #[error("hash is not 64 hex digits: {0}")]
    Hex(String),
}

impl Hash {
    /// The hash of the empty tree, SHA-256 of the empty string (RFC 9162 §2.1.1).
    pub fn empty_tree() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// The leaf hash of `leaf`: SHA-256(0x00 || leaf).
    pub fn of_leaf(leaf: &[u8]) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update([0x00]);
        hasher.update(leaf);
        Hash(hasher.finalize().into())
    }

    /// The interior-node hash of two children: SHA-256(0x01 || left || right).
    pub fn of_node(left: &Hash, right: &Hash) -> Hash {
        let mut block = [0u8; 1 + 2 * HASH_SIZE];
        block[0] = 0x01;
        block[1..1 + HASH_SIZE].copy_from_slice(&left.0);
        block[1 + HASH_SIZE..].copy_from_slice(&right.0);
        Hash(Sha256::digest(block).into())
    }

    /// The leaf hashes of many leaves at once, several compressed side by side
    /// ([`lanes`]): `out[i] = Hash::of_leaf(leaves[i])`.
    ///
    /// # Panics
    /// If `out` and `leaves` differ in length.
    pub fn of_leaves<L: AsRef<[u8]>>(leaves: &[L], out: &mut [Hash]) {
        assert_eq!(leaves.len(), out.len(), "a hash for each leaf");
        lanes::prefixed(0x00, |position| leaves[position].as_ref(), out);
    }

    /// The interior nodes above a level of a tree, several compressed side by side
    /// ([`lanes`]): `out[i] = Hash::of_node(&pairs[2 * i], &pairs[2 * i + 1])`.
    ///
    /// # Panics
    /// If `pairs` holds fewer than `2 * out.len()` hashes.
    pub fn of_nodes(pairs: &[Hash], out: &mut [Hash]) {
        lanes::nodes(pairs, out);
    }

    /// Reads a hash from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Hash, HashError> {
        let array: [u8; HASH_SIZE] = bytes
            .try_into()
            .map_err(|_| HashError::WrongLength { found: bytes.len() })?;
        Ok(Hash(array))
    }

    /// The 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }

    /// Standard base64 with padding, as in checkpoints.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Reads the standard base64 form (with padding). Anything else is refused.
    pub fn from_base64(text: &str) -> Result<Hash, HashError> {
        // 32 bytes are 44 base64 characters; refuse before decoding anything longer.
        if text.len() != 44 {
            return Err(HashError::Base64(format!(
                "expected 44 characters, found {}",
                text.len()
            )));
        }
        // Decoded on the stack (an export carries millions of hashes): 44 characters decode
        // to at most 33 bytes.
        let mut bytes = [0u8; 33];
        let length = base64::engine::general_purpose::STANDARD
            .decode_slice(text, &mut bytes)
            .map_err(|error| match error {
                base64::DecodeSliceError::DecodeError(error) => {
                    HashError::Base64(error.to_string())
                }
                too_small @ base64::DecodeSliceError::OutputSliceTooSmall => {
                    HashError::Base64(too_small.to_string())
                }
            })?;
        Hash::from_slice(&bytes[..length])
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(2 * HASH_SIZE);
        for byte in self.0 {
            text.push(DIGITS[usize::from(byte >> 4)] as char);
            text.push(DIGITS[usize::from(byte & 0x0f)] as char);
        }
        text
    }

    /// Reads 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Hash, HashError> {
        let digits = text.as_bytes();
        if digits.len() != 2 * HASH_SIZE {
            return Err(HashError::Hex(format!(
                "expected 64 digits, found {}",
                digits.len()
            )));
        }
        let mut out = [0u8; HASH_SIZE];
        for (index, pair) in digits.chunks_exact(2).enumerate() {
            let high = hex_value(pair[0]);
            let low = hex_value(pair[1]);
            match (high, low) {
                (Some(high), Some(low)) => out[index] = (high << 4) | low,
                _ => {
                    return Err(HashError::Hex(format!(
                        "non-hex character at offset {}",
                        2 * index
                    )))
                }
            }
        }
        Ok(Hash(out))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Hash({})", self.to_hex())
    }
}

/// Displays the base64 form, the one checkpoints use.
impl fmt::Display for Hash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_base64())
    }
}

/// Parses the base64 form, the one checkpoints use.
impl FromStr for Hash {
    type Err = HashError;
    fn from_str(text: &str) -> Result<Hash, HashError> {
        Hash::from_base64(text)
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    /// From its base64 string, decoded where the deserializer holds it (an export carries
    /// millions of hashes: none is copied into a string of its own first).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        struct Base64Hash;
        impl serde::de::Visitor<'_> for Base64Hash {
            type Value = Hash;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Hash, E> {
                Hash::from_base64(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Base64Hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6962 test vectors as used by Certificate Transparency's reference implementation
    // (google/certificate-transparency, merkle_tree_test.cc; the same values appear in
    // transparency-dev/merkle's rfc6962 tests): the empty tree and the leaf hash of the empty leaf.
    #[test]
    fn empty_tree_hash_matches_rfc6962_vector() {
        assert_eq!(
            Hash::empty_tree().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn empty_leaf_hash_matches_rfc6962_vector() {
        assert_eq!(
            Hash::of_leaf(b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn node_hash_prefixes_0x01_then_left_then_right() {
        let left = Hash::of_leaf(b"left");
        let right = Hash::of_leaf(b"right");
        let mut block = vec![0x01];
        block.extend_from_slice(&left.0);
        block.extend_from_slice(&right.0);
        assert_eq!(
            Hash::of_node(&left, &right).0,
            <[u8; 32]>::from(Sha256::digest(&block))
        );
        assert_ne!(Hash::of_node(&left, &right), Hash::of_node(&right, &left));
    }

    #[test]
    fn base64_and_hex_round_trip() {
        let hash = Hash::of_leaf(b"cairn");
        assert_eq!(Hash::from_base64(&hash.to_base64()), Ok(hash));
        assert_eq!(Hash::from_hex(&hash.to_hex()), Ok(hash));
        assert_eq!(Hash::from_hex(&hash.to_hex().to_uppercase()), Ok(hash));
        assert_eq!(hash.to_string().parse::<Hash>(), Ok(hash));
    }

    #[test]
    fn rejects_malformed_text_forms() {
        assert!(matches!(Hash::from_base64(""), Err(HashError::Base64(_))));
        assert!(Hash::from_base64(&"A".repeat(44)).is_err());
        assert!(matches!(
            Hash::from_base64(&"A".repeat(4000)),
            Err(HashError::Base64(_))
        ));
        assert!(matches!(Hash::from_hex("zz"), Err(HashError::Hex(_))));
        assert!(matches!(
            Hash::from_hex(&"g".repeat(64)),
            Err(HashError::Hex(_))
        ));
        assert_eq!(
            Hash::from_slice(&[0u8; 31]),
            Err(HashError::WrongLength { found: 31 })
        );
    }

    #[test]
    fn serde_uses_base64() {
        let hash = Hash::of_leaf(b"x");
        let json = serde_json::to_string(&hash).expect("a hash always serialises");
        assert_eq!(json, format!("\"{}\"", hash.to_base64()));
        let back: Hash = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, hash);
        assert!(serde_json::from_str::<Hash>("\"nope\"").is_err());
    }
}
