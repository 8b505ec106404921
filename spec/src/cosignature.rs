//! Witness cosignatures: the timestamped Ed25519 `cosignature/v1` of C2SP tlog-cosignature.
//!
//! A cosignature is a note signature line added to a checkpoint by a cosigner (a witness). It
//! states that, as of its timestamp, the consistent tree head with the largest size the cosigner
//! has seen for the origin has this root hash. Its parts:
//!
//! ```text
//! key ID        = SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 public key)[:4]
//! signature     = u64 timestamp (big-endian, POSIX seconds, at most 2^63 - 1)
//!                 || Ed25519 signature (64 bytes) of the signed message
//! signed message = "cosignature/v1\n" || "time <timestamp in decimal>\n" || checkpoint note text
//! signature line = "— <name> " || base64(key ID || timestamp || Ed25519 signature) || "\n"
//! ```
//!
//! The checkpoint note text includes its extension lines and final newline, and no signature
//! lines. Cosigner public keys travel as vkeys with signature type 0x04. The message does not
//! commit to the cosigner's name, so one Ed25519 key must never serve two cosigners.
//!
//! A cosigner key is an Ed25519 note key of its own kind ([`CosignatureV1`]): the same name, key
//! ID and key strings as a log's key ([`crate::note::VerifierKey`]), another type byte and
//! another signed message.
//!
//! The ML-DSA-44 cosignature type of the same spec is not implemented.

use std::borrow::Cow;
use std::fmt;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::note::{
    verify_single, Ed25519Kind, Ed25519Rules, KeyId, KeyName, NoteSignature, SignerKey,
    VerifierKey, ED25519_SIGNATURE_SIZE, SIGNATURE_TYPE_ED25519,
};

/// Signature type byte of timestamped Ed25519 checkpoint cosignatures (signed-note registry).
pub const SIGNATURE_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// The header line of the signed message, for domain separation.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";

/// The largest timestamp a cosignature may carry, 2^63 - 1.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Length of a cosignature after the key ID: 8-byte timestamp and 64-byte Ed25519 signature.
pub const COSIGNATURE_SIZE: usize = 8 + ED25519_SIGNATURE_SIZE;

/// Why a cosignature could not be made, read or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// The timestamp is above 2^63 - 1.
    #[error("cosignature timestamp {timestamp} is above the limit of 2^63 - 1")]
    TimestampOutOfRange {
        /// The timestamp.
        timestamp: u64,
    },
    /// The signature bytes (after the key ID) are not 8 + 64 bytes long.
    #[error("cosignature is {found} bytes after the key ID, expected {COSIGNATURE_SIZE}")]
    WrongLength {
        /// The length found.
        found: usize,
    },
    /// The checkpoint could not be written as a note text.
    #[error("cosigned checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The signature line is by another key than the verifier's.
    #[error("signature is by {found_name}+{found_id}, not by the cosigner {expected_name}+{expected_id}")]
    WrongKey {
        /// Name of the verifier's key.
        expected_name: KeyName,
        /// ID of the verifier's key.
        expected_id: KeyId,
        /// Name in the signature line.
        found_name: KeyName,
        /// ID in the signature line.
        found_id: KeyId,
    },
    /// The Ed25519 signature does not verify.
    #[error("invalid cosignature by {key_name}+{key_id}")]
    InvalidSignature {
        /// Name of the cosigner.
        key_name: KeyName,
        /// ID of the cosigner's key.
        key_id: KeyId,
    },
}

/// The message an Ed25519 `cosignature/v1` signs: the header line, the time line, then the
/// checkpoint note text.
pub fn signed_message(checkpoint_text: &[u8], timestamp: u64) -> Vec<u8> {
    let time_line = format!("{COSIGNATURE_V1_HEADER}\ntime {timestamp}\n");
    let mut message = Vec::with_capacity(time_line.len() + checkpoint_text.len());
    message.extend_from_slice(time_line.as_bytes());
    message.extend_from_slice(checkpoint_text);
    message
}

/// One decoded cosignature: who signed, when, and the Ed25519 signature.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cosignature {
    /// The cosigner's key name.
    pub key_name: KeyName,
    /// The cosigner's key ID (type 0x04).
    pub key_id: KeyId,
    /// When the cosignature was made, POSIX seconds.
    pub timestamp: u64,
    /// The Ed25519 signature of [`signed_message`].
    pub signature: [u8; ED25519_SIGNATURE_SIZE],
}

impl Cosignature {
    /// Decodes a note signature as a cosignature: 72 bytes after the key ID, timestamp at most
    /// 2^63 - 1. Says nothing about validity; see [`CosignatureVerifier::verify_cosignature`].
    pub fn from_note_signature(signature: &NoteSignature) -> Result<Cosignature, CosignatureError> {
        let (timestamp, ed25519) =
            split_cosignature(&signature.signature).ok_or(CosignatureError::WrongLength {
                found: signature.signature.len(),
            })?;
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::TimestampOutOfRange { timestamp });
        }
        Ok(Cosignature {
            key_name: signature.key_name.clone(),
            key_id: signature.key_id,
            timestamp,
            signature: ed25519
                .try_into()
                .expect("split_at(8) of 72 bytes leaves 64 bytes"),
        })
    }

    /// The note signature: key name, key ID, timestamp || signature.
    pub fn to_note_signature(&self) -> NoteSignature {
        let mut bytes = Vec::with_capacity(COSIGNATURE_SIZE);
        bytes.extend_from_slice(&self.timestamp.to_be_bytes());
        bytes.extend_from_slice(&self.signature);
        NoteSignature {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            signature: bytes,
        }
    }

    /// The signature line, `— <name> <base64>` and its final newline.
    pub fn to_line(&self) -> String {
        self.to_note_signature().to_line()
    }
}

impl fmt::Debug for Cosignature {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "Cosignature({}+{} at {})",
            self.key_name, self.key_id, self.timestamp
        )
    }
}

/// A cosigner key's kind: Ed25519 over [`signed_message`], signature type 0x04, the signature
/// bytes after the key ID being the timestamp and the Ed25519 signature. A cosigner also reads
/// a plain Ed25519 signer key (type 0x01, as Go's `note.GenerateKey` writes it), and signs with
/// the type-0x04 ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CosignatureV1;

impl Ed25519Kind for CosignatureV1 {
    const SIGNATURE_TYPE: u8 = SIGNATURE_TYPE_COSIGNATURE_V1;
    const NAME: &'static str = "Cosignature";

    fn reads_signer_type(signature_type: u8) -> bool {
        signature_type == SIGNATURE_TYPE_COSIGNATURE_V1 || signature_type == SIGNATURE_TYPE_ED25519
    }

    fn signed_parts<'a>(text: &'a [u8], signature: &'a [u8]) -> Option<(Cow<'a, [u8]>, &'a [u8])> {
        let (timestamp, ed25519) = split_cosignature(signature)?;
        if timestamp > MAX_TIMESTAMP {
            return None;
        }
        Some((Cow::Owned(signed_message(text, timestamp)), ed25519))
    }
}

/// The timestamp and the Ed25519 signature of a cosignature's bytes after the key ID; `None`
/// unless they are 8 + 64 bytes long.
fn split_cosignature(signature: &[u8]) -> Option<(u64, &[u8])> {
    let bytes: &[u8; COSIGNATURE_SIZE] = signature.try_into().ok()?;
    let (timestamp, ed25519) = bytes.split_at(8);
    let timestamp = u64::from_be_bytes(
        timestamp
            .try_into()
            .expect("split_at(8) of 72 bytes leaves 8 bytes"),
    );
    Some((timestamp, ed25519))
}

/// The public half of a cosigner key: verifies `cosignature/v1` signatures, alone
/// ([`CosignatureVerifier::verify_cosignature`]) or as a note verifier over a checkpoint note
/// with its cosignatures.
pub type CosignatureVerifier = VerifierKey<CosignatureV1>;

/// The private half of a cosigner key: makes `cosignature/v1` signatures at a time the caller
/// gives ([`CosignatureSigner::cosign`]).
pub type CosignatureSigner = SignerKey<CosignatureV1>;

impl VerifierKey<CosignatureV1> {
    /// Verifies that `signature` is this cosigner's cosignature of `checkpoint`, and returns its
    /// timestamp. Whether the timestamp is acceptable (not in the future, recent enough) is the
    /// caller's policy.
    pub fn verify_cosignature(
        &self,
        checkpoint: &Checkpoint,
        signature: &NoteSignature,
    ) -> Result<u64, CosignatureError> {
        if !signature.key_name.eq(self.key_name()) || signature.key_id != self.key_id() {
            return Err(CosignatureError::WrongKey {
                expected_name: self.key_name().clone(),
                expected_id: self.key_id(),
                found_name: signature.key_name.clone(),
                found_id: signature.key_id,
            });
        }
        let cosignature = Cosignature::from_note_signature(signature)?;
        let text = checkpoint.to_text()?;
        let message = signed_message(text.as_bytes(), cosignature.timestamp);
        if !verify_single(
            self.public_key(),
            &message,
            &cosignature.signature,
            Ed25519Rules::Cofactorless,
        ) {
            return Err(CosignatureError::InvalidSignature {
                key_name: self.key_name().clone(),
                key_id: self.key_id(),
            });
        }
        Ok(cosignature.timestamp)
    }
}

impl SignerKey<CosignatureV1> {
    /// Cosigns `checkpoint` as of `timestamp` (POSIX seconds, from the caller's clock).
    pub fn cosign(
        &self,
        checkpoint: &Checkpoint,
        timestamp: u64,
    ) -> Result<Cosignature, CosignatureError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::TimestampOutOfRange { timestamp });
        }
        let text = checkpoint.to_text()?;
        let message = signed_message(text.as_bytes(), timestamp);
        Ok(Cosignature {
            key_name: self.key_name().clone(),
            key_id: self.key_id(),
            timestamp,
            signature: self.sign_bytes(&message),
        })
    }
}
