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

use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::cosignature::Cosignature;
use crate::hash::Hash;
use crate::merkle::{self, ProofError, MAX_INCLUSION_PROOF_LEN};
use crate::note::{Note, NoteVerifier};
use crate::policy::Policy;
use crate::timestamp::{self, Expectation, TimestampError, UnixTime};

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
    pub timestamps: Vec<(Option<String>, UnixTime)>,
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

    /// The receipt as a C2SP tlog-proof. The leaf, when the receipt has it, goes in the
    /// `extra` line; timestamps have no place in a tlog-proof and are left out.
    pub fn to_tlog_proof(&self) -> String {
        let mut text = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(leaf) = &self.leaf {
            text.push_str("extra ");
            text.push_str(&base64::engine::general_purpose::STANDARD.encode(leaf));
            text.push('\n');
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.inclusion_proof {
            text.push_str(&hash.to_base64());
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }

    /// Reads a C2SP tlog-proof. The leaf is `leaf` if given, else the proof's `extra` data
    /// (which tlog-proof leaves unauthenticated: verification checks it against the tree).
    pub fn from_tlog_proof(text: &str, leaf: Option<&[u8]>) -> Result<Receipt, ReceiptError> {
        let bad = |reason: &str| ReceiptError::TlogProof(reason.to_string());
        if text.len() > MAX_RECEIPT_BYTES {
            return Err(bad("larger than the receipt limit"));
        }
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(TLOG_PROOF_HEADER) {
            return Err(bad("the first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| bad("missing index line"))?;
        let mut extra = None;
        if let Some(encoded) = line.strip_prefix("extra ") {
            extra = Some(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| bad("extra is not base64"))?,
            );
            line = lines.next().ok_or_else(|| bad("missing index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or_else(|| bad("expected 'index N' with N in decimal, no leading zeros"))?;
        let mut inclusion_proof = Vec::new();
        for line in lines {
            if inclusion_proof.len() == MAX_INCLUSION_PROOF_LEN {
                return Err(bad("too many inclusion proof lines"));
            }
            inclusion_proof
                .push(Hash::from_base64(line).map_err(|_| bad("a proof line is not a hash"))?);
        }
        let leaf = match leaf {
            Some(leaf) => leaf.to_vec(),
            None => extra.ok_or_else(|| {
                bad("the proof has no extra data; the leaf must be given to make a receipt")
            })?,
        };
        let receipt = Receipt {
            format: RECEIPT_FORMAT.to_string(),
            index,
            leaf_hash: Hash::of_leaf(&leaf),
            leaf: Some(leaf),
            inclusion_proof,
            checkpoint: checkpoint.to_string(),
            timestamps: Vec::new(),
        };
        receipt.check_shape()?;
        Ok(receipt)
    }
}

/// Verifies a receipt completely against a policy: the log's signature, the witness quorum,
/// the leaf hash, the inclusion proof, every timestamp token, and the TSA quorum.
pub fn verify(receipt: &Receipt, policy: &Policy) -> Result<VerifiedReceipt, ReceiptError> {
    receipt.check_shape()?;
    let verdict = verify_checkpoint(receipt, policy)?;
    verify_leaf(receipt, &verdict)
}

/// Verifies many receipts, remembering which checkpoints (with their tokens) it has already
/// verified, so that receipts sharing a checkpoint cost only their inclusion proofs.
pub struct ReceiptVerifier<'a> {
    policy: &'a Policy,
    verified: HashMap<[u8; 32], CheckpointVerdict>,
}

/// How many verified checkpoints a [`ReceiptVerifier`] remembers.
const VERIFIER_CACHE_ENTRIES: usize = 1024;

impl<'a> ReceiptVerifier<'a> {
    /// A verifier for `policy`.
    pub fn new(policy: &'a Policy) -> ReceiptVerifier<'a> {
        ReceiptVerifier {
            policy,
            verified: HashMap::new(),
        }
    }

    /// As [`verify`].
    pub fn verify(&mut self, receipt: &Receipt) -> Result<VerifiedReceipt, ReceiptError> {
        receipt.check_shape()?;
        let key = checkpoint_cache_key(receipt);
        if let Some(verdict) = self.verified.get(&key) {
            return verify_leaf(receipt, verdict);
        }
        let verdict = verify_checkpoint(receipt, self.policy)?;
        let result = verify_leaf(receipt, &verdict);
        if self.verified.len() >= VERIFIER_CACHE_ENTRIES {
            self.verified.clear();
        }
        self.verified.insert(key, verdict);
        result
    }
}

/// Everything about a receipt that depends only on its checkpoint and tokens.
#[derive(Debug, Clone)]
struct CheckpointVerdict {
    checkpoint: Checkpoint,
    witnesses: Vec<(String, u64)>,
    timestamps: Vec<(Option<String>, UnixTime)>,
    unknown_signatures: usize,
}

fn checkpoint_cache_key(receipt: &Receipt) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((receipt.checkpoint.len() as u64).to_be_bytes());
    hasher.update(receipt.checkpoint.as_bytes());
    for timestamp in &receipt.timestamps {
        hasher.update((timestamp.token.len() as u64).to_be_bytes());
        hasher.update(&timestamp.token);
    }
    hasher.finalize().into()
}

fn verify_checkpoint(
    receipt: &Receipt,
    policy: &Policy,
) -> Result<CheckpointVerdict, ReceiptError> {
    let note = Note::parse(receipt.checkpoint.as_bytes())
        .map_err(|error| ReceiptError::Checkpoint(error.to_string()))?;
    let checkpoint = Checkpoint::from_note(&note)
        .map_err(|error| ReceiptError::Checkpoint(error.to_string()))?;
    let log = policy
        .log(&checkpoint.origin)
        .ok_or_else(|| ReceiptError::UnknownLog {
            origin: checkpoint.origin.clone(),
        })?;

    // One pass over the signatures with every key the policy knows: a bad signature by any of
    // them is an error (a tampered receipt), signatures by other keys are ignored.
    let mut verifiers: Vec<&dyn NoteVerifier> = vec![&log.key];
    verifiers.extend(
        policy
            .witnesses
            .iter()
            .map(|witness| &witness.key as &dyn NoteVerifier),
    );
    let verification = note
        .verify(&verifiers)
        .map_err(|error| ReceiptError::Signature(error.to_string()))?;
    if !verification.is_signed_by(log.key.key_name(), log.key.key_id()) {
        return Err(ReceiptError::Signature(format!(
            "no signature by the log key {}",
            log.key.to_vkey()
        )));
    }

    let mut witnesses = Vec::new();
    for witness in &policy.witnesses {
        let signature = verification.verified.iter().find(|signature| {
            signature.key_name == *witness.key.key_name()
                && signature.key_id == witness.key.key_id()
        });
        if let Some(signature) = signature {
            // Already verified as a cosignature by `note.verify` above; only read its time.
            let cosignature = Cosignature::from_note_signature(signature)
                .map_err(|error| ReceiptError::Signature(error.to_string()))?;
            witnesses.push((witness.name.clone(), cosignature.timestamp));
        }
    }
    let cosigned: BTreeSet<String> = witnesses.iter().map(|(name, _)| name.clone()).collect();
    if !policy.quorum_met(&cosigned) {
        return Err(ReceiptError::QuorumNotMet {
            cosigned: cosigned.into_iter().collect(),
        });
    }

    let imprint = timestamp::checkpoint_imprint(note.text().as_bytes());
    let mut timestamps = Vec::new();
    let mut trusted_tsas = BTreeSet::new();
    for (position, stored) in receipt.timestamps.iter().enumerate() {
        let trusted = policy.tsas.iter().find_map(|tsa| {
            let expectation = Expectation {
                imprint,
                nonce: None,
                trust_anchors: Some(&tsa.anchors),
            };
            timestamp::verify_token(&stored.token, &expectation)
                .ok()
                .map(|verified| (tsa.name.clone(), verified))
        });
        match trusted {
            Some((name, verified)) => {
                trusted_tsas.insert(name.clone());
                timestamps.push((Some(name), verified.gen_time));
            }
            None => {
                // Not from a TSA this policy trusts: it must still be a valid token over this
                // checkpoint (any changed byte is an error), it just does not count.
                let expectation = Expectation {
                    imprint,
                    nonce: None,
                    trust_anchors: None,
                };
                let verified = timestamp::verify_token(&stored.token, &expectation)
                    .map_err(|source| ReceiptError::Timestamp { position, source })?;
                timestamps.push((None, verified.gen_time));
            }
        }
    }
    if trusted_tsas.len() < policy.tsa_quorum {
        return Err(ReceiptError::TimestampQuorumNotMet {
            found: trusted_tsas.len(),
            required: policy.tsa_quorum,
        });
    }
    Ok(CheckpointVerdict {
        checkpoint,
        witnesses,
        timestamps,
        unknown_signatures: verification.unverified.len(),
    })
}

fn verify_leaf(
    receipt: &Receipt,
    verdict: &CheckpointVerdict,
) -> Result<VerifiedReceipt, ReceiptError> {
    if let Some(leaf) = &receipt.leaf {
        let computed = Hash::of_leaf(leaf);
        if computed != receipt.leaf_hash {
            return Err(ReceiptError::LeafHashMismatch {
                stated: receipt.leaf_hash,
                computed,
            });
        }
    }
    let checkpoint = &verdict.checkpoint;
    merkle::verify_inclusion(
        receipt.index,
        checkpoint.size,
        &receipt.leaf_hash,
        &receipt.inclusion_proof,
        &checkpoint.root,
    )
    .map_err(|source| ReceiptError::Inclusion {
        index: receipt.index,
        tree_size: checkpoint.size,
        source,
    })?;
    Ok(VerifiedReceipt {
        origin: checkpoint.origin.clone(),
        index: receipt.index,
        leaf_hash: receipt.leaf_hash,
        tree_size: checkpoint.size,
        root: checkpoint.root,
        witnesses: verdict.witnesses.clone(),
        timestamps: verdict.timestamps.clone(),
        unknown_signatures: verdict.unknown_signatures,
    })
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

pub(crate) mod base64_bytes {
    use base64::Engine as _;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
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
mod tests {
    use super::*;
    use crate::example::{test_tsa, world, World, ORIGIN};
    use crate::note::{Ed25519Signer, KeyName};

    #[test]
    fn a_complete_receipt_verifies_and_says_what_it_proves() {
        let world = world(300);
        let policy = world.policy("two", true);
        let receipt = world.receipt(123, &[0, 2]);
        let verified = verify(&receipt, &policy).expect("the receipt verifies");
        assert_eq!(verified.origin, ORIGIN);
        assert_eq!(verified.index, 123);
        assert_eq!(verified.tree_size, 300);
        assert_eq!(
            verified.witnesses,
            vec![
                ("w0".to_string(), 1_764_000_000),
                ("w2".to_string(), 1_764_000_002)
            ]
        );
        assert_eq!(
            verified.timestamps,
            vec![(
                Some("test".to_string()),
                UnixTime::from_seconds(1_764_000_000)
            )]
        );
        // And through JSON and back.
        let json = receipt.to_json();
        let back = Receipt::from_json(json.as_bytes()).expect("its own JSON parses");
        assert_eq!(back, receipt);
        assert!(verify(&back, &policy).is_ok());
    }

    #[test]
    fn refuses_a_receipt_below_the_witness_quorum() {
        let world = world(10);
        let receipt = world.receipt(3, &[1]);
        assert_eq!(
            verify(&receipt, &world.policy("two", false)),
            Err(ReceiptError::QuorumNotMet {
                cosigned: vec!["w1".to_string()]
            })
        );
        assert!(verify(&receipt, &world.policy("w1", false)).is_ok());
        assert!(verify(&receipt, &world.policy("none", false)).is_ok());
    }

    #[test]
    fn refuses_a_receipt_without_a_trusted_timestamp_when_the_policy_asks_for_one() {
        let world = world(10);
        let mut receipt = world.receipt(3, &[0, 1]);
        receipt.timestamps.clear();
        assert_eq!(
            verify(&receipt, &world.policy("two", true)),
            Err(ReceiptError::TimestampQuorumNotMet {
                found: 0,
                required: 1
            })
        );
        // A token from a TSA the policy does not know is checked but does not count.
        let stranger = test_tsa(99);
        let body = Note::parse(receipt.checkpoint.as_bytes()).expect("note");
        receipt.timestamps.push(ReceiptTimestamp {
            token: stranger.token_over(body.text(), 5),
        });
        assert!(matches!(
            verify(&receipt, &world.policy("two", true)),
            Err(ReceiptError::TimestampQuorumNotMet { found: 0, .. })
        ));
        let verified = verify(&receipt, &world.policy("two", false)).expect("no TSA needed");
        assert_eq!(verified.timestamps.len(), 1);
        assert_eq!(verified.timestamps[0].0, None);
    }

    #[test]
    fn a_timestamp_over_another_checkpoint_is_refused() {
        let world = world(10);
        let mut receipt = world.receipt(3, &[0, 1]);
        receipt.timestamps[0].token = world.tsa.token_over("other.example/log\n1\nAAAA\n", 9);
        assert!(matches!(
            verify(&receipt, &world.policy("two", true)),
            Err(ReceiptError::Timestamp { position: 0, .. })
        ));
    }

    #[test]
    fn every_single_byte_change_of_the_json_is_detected() {
        // A policy under which every part of the receipt carries weight: with a looser quorum,
        // turning one surplus cosignature into a signature by an unknown key leaves a receipt
        // that still proves the same thing (and reports the unknown signature).
        let world = world(20);
        let policy = world.policy("every", true);
        let receipt = world.receipt(7, &[0, 1, 2]);
        let json = serde_json::to_vec(&receipt).expect("serialises");
        let mut verifier = ReceiptVerifier::new(&policy);
        assert!(verifier.verify(&receipt).is_ok());
        // Flip one bit in every byte, one at a time (a few thousand verifications): either the
        // JSON no longer parses, or it parses to a receipt that is refused, or (only when the
        // change is inside base64 padding bits or whitespace-free escapes that decode the same)
        // it decodes to exactly the same receipt.
        for position in 0..json.len() {
            let mut tampered = json.clone();
            tampered[position] ^= 0x01;
            let Ok(parsed) = Receipt::from_json(&tampered) else {
                continue;
            };
            if parsed == receipt {
                continue;
            }
            assert!(
                verifier.verify(&parsed).is_err(),
                "a change at byte {position} ({:?}) was not detected",
                String::from_utf8_lossy(&json[position.saturating_sub(20)..position + 1])
            );
        }
    }

    #[test]
    fn refuses_a_wrong_leaf_index_or_proof() {
        let world = world(50);
        let policy = world.policy("none", false);
        let receipt = world.receipt(10, &[]);
        let mut wrong_index = receipt.clone();
        wrong_index.index = 11;
        assert!(matches!(
            verify(&wrong_index, &policy),
            Err(ReceiptError::Inclusion { index: 11, .. })
        ));
        let mut wrong_leaf = receipt.clone();
        wrong_leaf.leaf = Some(b"something else".to_vec());
        assert!(matches!(
            verify(&wrong_leaf, &policy),
            Err(ReceiptError::LeafHashMismatch { .. })
        ));
        let mut hash_only = receipt.clone();
        hash_only.leaf = None;
        assert!(verify(&hash_only, &policy).is_ok());
        let mut short_proof = receipt;
        short_proof.inclusion_proof.pop();
        assert!(matches!(
            verify(&short_proof, &policy),
            Err(ReceiptError::Inclusion { .. })
        ));
    }

    #[test]
    fn refuses_checkpoints_of_unknown_logs_and_unsigned_ones() {
        let world = world(5);
        let receipt = world.receipt(1, &[0, 1]);
        let other = World {
            log: Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid"), [2; 32]),
            ..world
        };
        // Same origin, another key: the note has no signature by the policy's log key.
        assert!(matches!(
            verify(&receipt, &other.policy("none", false)),
            Err(ReceiptError::Signature(_))
        ));
        let mut renamed = receipt.clone();
        renamed.checkpoint = renamed.checkpoint.replacen(ORIGIN, "example.com/other", 1);
        assert!(matches!(
            verify(&renamed, &other.policy("none", false)),
            Err(ReceiptError::UnknownLog { .. })
        ));
    }

    #[test]
    fn strict_json_refuses_unknown_fields_wrong_format_and_oversize() {
        let world = world(4);
        let receipt = world.receipt(0, &[]);
        let mut value: serde_json::Value = serde_json::to_value(&receipt).expect("serialises");
        value["surprise"] = serde_json::Value::Bool(true);
        assert!(matches!(
            Receipt::from_json(value.to_string().as_bytes()),
            Err(ReceiptError::Json(_))
        ));
        let mut wrong = receipt.clone();
        wrong.format = "cairn.receipt/v0".to_string();
        assert!(matches!(
            Receipt::from_json(serde_json::to_string(&wrong).expect("json").as_bytes()),
            Err(ReceiptError::Format { .. })
        ));
        let mut long = receipt;
        long.inclusion_proof = vec![Hash::empty_tree(); MAX_INCLUSION_PROOF_LEN + 1];
        assert!(matches!(
            Receipt::from_json(serde_json::to_string(&long).expect("json").as_bytes()),
            Err(ReceiptError::TooLarge { .. })
        ));
        assert!(matches!(
            Receipt::from_json(&vec![b' '; MAX_RECEIPT_BYTES + 1]),
            Err(ReceiptError::TooLarge { .. })
        ));
    }

    #[test]
    fn tlog_proof_export_round_trips_and_verifies() {
        let world = world(40);
        let policy = world.policy("two", false);
        let receipt = world.receipt(33, &[1, 2]);
        let proof = receipt.to_tlog_proof();
        assert!(proof.starts_with("c2sp.org/tlog-proof@v1\nextra "));
        assert!(proof.contains("\nindex 33\n"));
        let back = Receipt::from_tlog_proof(&proof, None).expect("parses");
        assert_eq!(back.leaf, receipt.leaf);
        assert_eq!(back.inclusion_proof, receipt.inclusion_proof);
        assert!(back.timestamps.is_empty());
        assert!(verify(&back, &policy).is_ok());
        // Without extra, the leaf must be supplied; a wrong one fails verification.
        let mut bare = receipt.clone();
        bare.leaf = None;
        let proof = bare.to_tlog_proof();
        assert!(matches!(
            Receipt::from_tlog_proof(&proof, None),
            Err(ReceiptError::TlogProof(_))
        ));
        let given = Receipt::from_tlog_proof(&proof, Some(&world.leaves[33])).expect("parses");
        assert!(verify(&given, &policy).is_ok());
        let wrong = Receipt::from_tlog_proof(&proof, Some(b"not the leaf")).expect("parses");
        assert!(verify(&wrong, &policy).is_err());
        for bad in [
            "",
            "c2sp.org/tlog-proof@v2\nindex 1\n\nx",
            "c2sp.org/tlog-proof@v1\nindex 01\n\nx",
        ] {
            assert!(
                Receipt::from_tlog_proof(bad, Some(b"x")).is_err(),
                "{bad:?}"
            );
        }
    }

    /// The example receipt of `spec/docs/receipt.md`: five leaves, the log, witness w0, and one
    /// token from the test TSA. Everything in it is deterministic (Ed25519 signatures, fixed
    /// times), so the page can show it byte for byte.
    fn documented_example() -> (Receipt, Policy) {
        let world = world(5);
        let receipt = world.receipt(3, &[0]);
        (receipt, world.policy("w0", true))
    }

    #[test]
    fn the_documented_example_is_what_the_code_makes_and_it_verifies() {
        let page = include_str!("../docs/receipt.md");
        let marker = "```json\n";
        let start = page.find(marker).expect("the page has a JSON block") + marker.len();
        let end = start + page[start..].find("```").expect("closed block");
        let (receipt, policy) = documented_example();
        if std::env::var_os("CAIRN_PRINT_EXAMPLES").is_some() {
            println!("{}", receipt.to_json());
        }
        assert_eq!(page[start..end].trim_end(), receipt.to_json());
        let parsed = Receipt::from_json(&page.as_bytes()[start..end]).expect("parses");
        let verified = verify(&parsed, &policy).expect("verifies");
        assert_eq!(verified.index, 3);
        assert_eq!(verified.tree_size, 5);
    }
}
