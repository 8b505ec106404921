//! Receipts: the portable, offline-verifiable proof that one leaf is in a log.
//!
//! A receipt bundles everything an auditor needs, years later and without asking the log:
//! the leaf (or only its hash), its index, the RFC 9162 inclusion proof, the checkpoint note
//! with the log's signature and the witnesses' cosignatures, and RFC 3161 timestamp tokens over
//! that checkpoint. [`verify`] checks all of it against a [`Policy`] and says exactly what
//! failed; nothing in a receipt is trusted because the receipt says so.
//!
//! The JSON form (`cairn.receipt/v1`, fields in base64) is documented in
//! `spec/docs/receipt.md`. Every receipt also converts to and from a plain C2SP tlog-proof
//! (`c2sp.org/tlog-proof@v1`), which carries no timestamps.

mod tlog_proof;
mod verification;
mod verifier;

pub use verification::verify;
pub use verifier::{ReceiptVerifier, RECEIPTS_PER_BATCH};

use crate::hash::Hash;
use crate::merkle::{ProofError, MAX_INCLUSION_PROOF_LEN};
use crate::time::Instant;
use crate::timestamp::{self, TimestampError};

/// The `format` of a Cairn receipt.
pub const RECEIPT_FORMAT: &str = "cairn.receipt/v1";
/// The first line of a C2SP tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Most bytes of a receipt's JSON.
pub const MAX_RECEIPT_BYTES: usize = 4 << 20;
/// Most bytes of the leaf a receipt carries.
pub const MAX_LEAF_BYTES: usize = 1 << 20;
/// Most bytes of the checkpoint note a receipt carries.
pub const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;
/// Most timestamp tokens a receipt carries.
pub const MAX_TIMESTAMPS: usize = 16;

/// A receipt, as exchanged in JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always [`RECEIPT_FORMAT`].
    pub format: String,
    /// The leaf's index in the log.
    pub index: u64,
    /// The leaf itself, if the receipt carries it (base64).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_base64"
    )]
    pub leaf: Option<Vec<u8>>,
    /// The RFC 9162 leaf hash (base64).
    pub leaf_hash: Hash,
    /// The inclusion proof of the leaf in the checkpoint's tree, from the leaf's sibling up.
    pub inclusion_proof: Vec<Hash>,
    /// The checkpoint note: body, the log's signature and the witnesses' cosignatures.
    pub checkpoint: String,
    /// RFC 3161 timestamp tokens over the checkpoint.
    #[serde(default)]
    pub timestamps: Vec<ReceiptTimestamp>,
}

/// One RFC 3161 timestamp token in a receipt. The token names its TSA itself (the signer
/// certificate); the receipt adds no unauthenticated label beside it, so that every byte of a
/// receipt is checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptTimestamp {
    /// The DER TimeStampToken (a CMS ContentInfo), base64.
    #[serde(with = "base64_bytes")]
    pub token: Vec<u8>,
}

/// What a verified receipt proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The log's origin.
    pub origin: String,
    /// The leaf's index.
    pub index: u64,
    /// The leaf hash.
    pub leaf_hash: Hash,
    /// The size of the checkpoint's tree.
    pub tree_size: u64,
    /// Its root.
    pub root: Hash,
    /// The policy names of the witnesses whose cosignatures verified, with their cosigning
    /// times (Unix seconds).
    pub witnesses: Vec<(String, u64)>,
    /// The verified timestamps, with the policy name of the TSA they chain to, if any.
    pub timestamps: Vec<(Option<String>, Instant)>,
    /// Signatures in the checkpoint by keys the policy does not know, which were not checked.
    pub unknown_signatures: usize,
}

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The JSON is malformed, has unknown fields, or is too large.
    #[error("receipt is not valid {RECEIPT_FORMAT} JSON: {0}")]
    Json(String),
    /// The `format` is not [`RECEIPT_FORMAT`].
    #[error("receipt format is {found:?}, expected {RECEIPT_FORMAT:?}")]
    Format {
        /// The format found.
        found: String,
    },
    /// A part larger than its limit.
    #[error("receipt {what} has {found}, more than the limit of {limit}")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its size or count.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// The checkpoint note does not parse.
    #[error("receipt checkpoint: {0}")]
    Checkpoint(String),
    /// No log of the policy has this origin.
    #[error("the policy trusts no log with origin {origin:?}")]
    UnknownLog {
        /// The checkpoint's origin.
        origin: String,
    },
    /// A signature in the checkpoint by a key of the policy does not verify, or the log did
    /// not sign it.
    #[error("receipt checkpoint signatures: {0}")]
    Signature(String),
    /// The cosigning witnesses do not satisfy the policy's quorum.
    #[error("witness quorum not met: cosigned by {cosigned:?}")]
    QuorumNotMet {
        /// The policy names of the witnesses that did cosign.
        cosigned: Vec<String>,
    },
    /// The leaf does not hash to the receipt's leaf hash.
    #[error("the leaf hashes to {computed}, but the receipt says {stated}")]
    LeafHashMismatch {
        /// The leaf hash in the receipt.
        stated: Hash,
        /// The hash of the leaf.
        computed: Hash,
    },
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("inclusion proof of index {index} in tree size {tree_size}: {source}")]
    Inclusion {
        /// The leaf index.
        index: u64,
        /// The tree size.
        tree_size: u64,
        /// What the proof check found.
        source: ProofError,
    },
    /// A timestamp token does not verify over this checkpoint.
    #[error("timestamp {position}: {source}")]
    Timestamp {
        /// Its position in the receipt (0-based).
        position: usize,
        /// What the token check found.
        source: TimestampError,
    },
    /// Fewer distinct trusted TSAs timestamped the checkpoint than the policy asks for.
    #[error("timestamps from {found} trusted TSAs, the policy asks for {required}")]
    TimestampQuorumNotMet {
        /// Distinct trusted TSAs found.
        found: usize,
        /// The policy's TSA quorum.
        required: usize,
    },
    /// A tlog-proof that does not parse, or lacks the leaf needed to make a receipt.
    #[error("tlog-proof: {0}")]
    TlogProof(String),
}

impl Receipt {
    /// Reads a receipt from its JSON form, strictly (unknown fields and duplicates refused).
    pub fn from_json(json: &[u8]) -> Result<Receipt, ReceiptError> {
        if json.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge {
                what: "JSON bytes",
                found: json.len(),
                limit: MAX_RECEIPT_BYTES,
            });
        }
        let receipt: Receipt =
            serde_json::from_slice(json).map_err(|error| ReceiptError::Json(error.to_string()))?;
        receipt.check_shape()?;
        Ok(receipt)
    }

    /// The JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a receipt always serialises")
    }

    fn check_shape(&self) -> Result<(), ReceiptError> {
        if self.format != RECEIPT_FORMAT {
            return Err(ReceiptError::Format {
                found: self.format.chars().take(64).collect(),
            });
        }
        let limits = [
            (
                "inclusion proof hashes",
                self.inclusion_proof.len(),
                MAX_INCLUSION_PROOF_LEN,
            ),
            ("timestamps", self.timestamps.len(), MAX_TIMESTAMPS),
            (
                "leaf bytes",
                self.leaf.as_ref().map_or(0, Vec::len),
                MAX_LEAF_BYTES,
            ),
            (
                "checkpoint bytes",
                self.checkpoint.len(),
                MAX_CHECKPOINT_BYTES,
            ),
        ];
        for (what, found, limit) in limits {
            if found > limit {
                return Err(ReceiptError::TooLarge { what, found, limit });
            }
        }
        for timestamp in &self.timestamps {
            if timestamp.token.len() > timestamp::MAX_TOKEN_SIZE {
                return Err(ReceiptError::TooLarge {
                    what: "timestamp token bytes",
                    found: timestamp.token.len(),
                    limit: timestamp::MAX_TOKEN_SIZE,
                });
            }
        }
        Ok(())
    }
}

pub(crate) mod base64_bytes {
    use base64::Engine as _;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Decoded where the deserializer holds the string: no copy of it is made first.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        struct Base64Bytes;
        impl serde::de::Visitor<'_> for Base64Bytes {
            type Value = Vec<u8>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
                base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Base64Bytes)
    }
}

pub(crate) mod optional_base64 {
    pub fn serialize<S: serde::Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::base64_bytes::serialize(bytes, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        super::base64_bytes::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests;
