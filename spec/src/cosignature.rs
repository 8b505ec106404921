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
//! The ML-DSA-44 cosignature type of the same spec is not implemented.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signer as _;
use rand_core::CryptoRngCore;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::note::{
    format_skey, format_vkey, parse_ed25519_skey, random_seed, verify_ed25519, Ed25519Checker,
    Ed25519Rules, KeyError, KeyId, KeyName, NoteSignature, NoteVerifier, SingleEd25519, Vkey,
    ED25519_KEY_SIZE, ED25519_SIGNATURE_SIZE, SIGNATURE_TYPE_ED25519,
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
        let bytes: &[u8; COSIGNATURE_SIZE] =
            signature.signature.as_slice().try_into().map_err(|_| {
                CosignatureError::WrongLength {
                    found: signature.signature.len(),
                }
            })?;
        let (timestamp, ed25519) = bytes.split_at(8);
        let timestamp = u64::from_be_bytes(
            timestamp
                .try_into()
                .expect("split_at(8) of 72 bytes leaves 8 bytes"),
        );
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

/// The public half of a cosigner key: verifies `cosignature/v1` signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    key_name: KeyName,
    key_id: KeyId,
    public_key: ed25519_dalek::VerifyingKey,
}

impl CosignatureVerifier {
    /// The verifier for `public_key` under `key_name`, with the type-0x04 key ID.
    pub fn new(key_name: KeyName, public_key: ed25519_dalek::VerifyingKey) -> CosignatureVerifier {
        let key_id = KeyId::compute(
            &key_name,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            public_key.as_bytes(),
        );
        CosignatureVerifier {
            key_name,
            key_id,
            public_key,
        }
    }

    /// Reads a vkey `<name>+<hex ID>+base64(0x04 || 32-byte public key)`, checking the ID.
    pub fn from_vkey(vkey: &str) -> Result<CosignatureVerifier, KeyError> {
        let parts = Vkey::parse(vkey)?;
        let public_key = parts.ed25519_public_key(SIGNATURE_TYPE_COSIGNATURE_V1)?;
        Ok(CosignatureVerifier {
            key_name: parts.key_name,
            key_id: parts.key_id,
            public_key,
        })
    }

    /// The vkey string, signature type 0x04.
    pub fn to_vkey(&self) -> String {
        format_vkey(
            &self.key_name,
            self.key_id,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            self.public_key.as_bytes(),
        )
    }

    /// Name of the cosigner.
    pub fn key_name(&self) -> &KeyName {
        &self.key_name
    }

    /// ID of the cosigner's key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &ed25519_dalek::VerifyingKey {
        &self.public_key
    }

    /// Verifies that `signature` is this cosigner's cosignature of `checkpoint`, and returns its
    /// timestamp. Whether the timestamp is acceptable (not in the future, recent enough) is the
    /// caller's policy.
    pub fn verify_cosignature(
        &self,
        checkpoint: &Checkpoint,
        signature: &NoteSignature,
    ) -> Result<u64, CosignatureError> {
        if !signature.key_name.eq(&self.key_name) || signature.key_id != self.key_id {
            return Err(CosignatureError::WrongKey {
                expected_name: self.key_name.clone(),
                expected_id: self.key_id,
                found_name: signature.key_name.clone(),
                found_id: signature.key_id,
            });
        }
        let cosignature = Cosignature::from_note_signature(signature)?;
        let text = checkpoint.to_text()?;
        let message = signed_message(text.as_bytes(), cosignature.timestamp);
        if !verify_ed25519(&self.public_key, &message, &cosignature.signature) {
            return Err(CosignatureError::InvalidSignature {
                key_name: self.key_name.clone(),
                key_id: self.key_id,
            });
        }
        Ok(cosignature.timestamp)
    }
}

/// As a note verifier, checks a cosignature over the note text (so a checkpoint note with its
/// cosignatures can be verified in one [`crate::note::Note::verify`] call).
impl NoteVerifier for CosignatureVerifier {
    fn key_name(&self) -> &KeyName {
        &self.key_name
    }
    fn key_id(&self) -> KeyId {
        self.key_id
    }
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        self.verify_with(text, signature, &mut SingleEd25519)
    }
    fn verify_with(&self, text: &[u8], signature: &[u8], checker: &mut dyn Ed25519Checker) -> bool {
        let Ok(bytes) = <&[u8; COSIGNATURE_SIZE]>::try_from(signature) else {
            return false;
        };
        let (timestamp, ed25519) = bytes.split_at(8);
        let timestamp = u64::from_be_bytes(
            timestamp
                .try_into()
                .expect("split_at(8) of 72 bytes leaves 8 bytes"),
        );
        if timestamp > MAX_TIMESTAMP {
            return false;
        }
        checker.check(
            &self.public_key,
            &signed_message(text, timestamp),
            ed25519,
            Ed25519Rules::Cofactorless,
        )
    }
}

impl fmt::Display for CosignatureVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_vkey())
    }
}

impl fmt::Debug for CosignatureVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "CosignatureVerifier({})", self.to_vkey())
    }
}

impl FromStr for CosignatureVerifier {
    type Err = KeyError;
    fn from_str(vkey: &str) -> Result<CosignatureVerifier, KeyError> {
        CosignatureVerifier::from_vkey(vkey)
    }
}

/// The private half of a cosigner key: makes `cosignature/v1` signatures at a time the caller
/// gives.
///
/// Its `Debug` form shows the name and ID, never the seed.
#[derive(Clone)]
pub struct CosignatureSigner {
    key_name: KeyName,
    key_id: KeyId,
    signing_key: ed25519_dalek::SigningKey,
}

impl CosignatureSigner {
    /// The cosigner whose Ed25519 private key is `seed`.
    pub fn from_seed(key_name: KeyName, seed: [u8; ED25519_KEY_SIZE]) -> CosignatureSigner {
        let signing_key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let key_id = KeyId::compute(
            &key_name,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            signing_key.verifying_key().as_bytes(),
        );
        CosignatureSigner {
            key_name,
            key_id,
            signing_key,
        }
    }

    /// A new cosigner key from a caller-supplied cryptographic random source.
    pub fn generate<R: CryptoRngCore + ?Sized>(
        key_name: KeyName,
        rng: &mut R,
    ) -> Result<CosignatureSigner, KeyError> {
        Ok(CosignatureSigner::from_seed(key_name, random_seed(rng)?))
    }

    /// Reads `PRIVATE+KEY+<name>+<hex ID>+base64(type || 32-byte seed)`. The type is 0x04 (the
    /// form [`CosignatureSigner::to_skey`] writes, ID of type 0x04) or 0x01 (a plain Ed25519
    /// note key as Go's `note.GenerateKey` writes it, ID of type 0x01); either way the stated ID
    /// is checked against the derived public key, and the cosigner signs with the type-0x04 ID.
    pub fn from_skey(skey: &str) -> Result<CosignatureSigner, KeyError> {
        let parts = parse_ed25519_skey(skey)?;
        if parts.signature_type != SIGNATURE_TYPE_COSIGNATURE_V1
            && parts.signature_type != SIGNATURE_TYPE_ED25519
        {
            return Err(KeyError::UnsupportedSignatureType {
                found: parts.signature_type,
                expected: SIGNATURE_TYPE_COSIGNATURE_V1,
            });
        }
        let signer = CosignatureSigner::from_seed(parts.key_name, parts.seed);
        let computed = KeyId::compute(
            &signer.key_name,
            parts.signature_type,
            signer.signing_key.verifying_key().as_bytes(),
        );
        if computed != parts.key_id {
            return Err(KeyError::KeyIdMismatch {
                stated: parts.key_id,
                computed,
            });
        }
        Ok(signer)
    }

    /// The signer key string, type 0x04. It holds the private key: keep it secret.
    pub fn to_skey(&self) -> String {
        format_skey(
            &self.key_name,
            self.key_id,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            self.signing_key.as_bytes(),
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            public_key: self.signing_key.verifying_key(),
        }
    }

    /// Name of the cosigner.
    pub fn key_name(&self) -> &KeyName {
        &self.key_name
    }

    /// ID of the cosigner's key (type 0x04).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

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
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            timestamp,
            signature: self.signing_key.sign(&message).to_bytes(),
        })
    }
}

impl fmt::Debug for CosignatureSigner {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "CosignatureSigner({}+{}, private key elided)",
            self.key_name, self.key_id
        )
    }
}
