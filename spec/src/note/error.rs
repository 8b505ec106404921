//! What can be wrong with a note, a signature line or a key string. Each error says what was
//! expected and what was found, with the position in the note where there is one, since notes
//! come from other parties and an operator has to find the fault in their bytes.

use super::{KeyId, KeyName, KeyNameError};

/// Why one signature line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureLineError {
    /// The line did not start with an em dash (U+2014) and a space.
    #[error("expected the line to start with \"— \" (U+2014, space), found {found:?}")]
    MissingPrefix {
        /// The start of the line.
        found: String,
    },
    /// There was no space between the key name and the signature.
    #[error("expected a space between key name and signature")]
    MissingSpace,
    /// The key name was not acceptable.
    #[error("bad key name: {0}")]
    KeyName(KeyNameError),
    /// The signature was not canonical standard base64.
    #[error("signature is not standard base64: {reason}")]
    Base64 {
        /// What the decoder said.
        reason: String,
    },
    /// The signature was shorter than a key ID plus one byte.
    #[error("signature has {length} bytes, expected at least 5 (4-byte key ID and the signature)")]
    TooShort {
        /// How many bytes it decoded to.
        length: usize,
    },
}

/// Why a note could not be read, written or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note is larger than [`super::MAX_NOTE_SIZE`].
    #[error("note is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The size of the note.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The note is not valid UTF-8.
    #[error("note is not valid UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// Offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
    /// The note contains an ASCII control character other than newline.
    #[error("note contains control character 0x{byte:02x} at byte {offset}")]
    ControlCharacter {
        /// Offset of the character.
        offset: usize,
        /// The character.
        byte: u8,
    },
    /// The text does not end with a newline (or is empty).
    #[error("note text must end with a newline")]
    TextMissingFinalNewline,
    /// There is no blank line separating the text from the signatures.
    #[error("note has no blank line before its signatures")]
    MissingBlankLine,
    /// The blank line is not followed by any signature line.
    #[error("note has no signature lines after the blank line")]
    MissingSignatures,
    /// The last signature line does not end with a newline.
    #[error("note's last signature line does not end with a newline")]
    UnterminatedSignatureLine,
    /// A signature line is malformed.
    #[error("signature line {line} of the note: {error}")]
    SignatureLine {
        /// 1-based line number in the note (or in the block of signature lines being read).
        line: usize,
        /// What is wrong with it.
        error: SignatureLineError,
    },
    /// The note has more than [`super::MAX_SIGNATURES`] signature lines.
    #[error("note has more than {limit} signatures")]
    TooManySignatures {
        /// The limit.
        limit: usize,
    },
    /// A signature to be written is empty.
    #[error("signature by {key_name}+{key_id} is empty")]
    EmptySignature {
        /// Name of the key.
        key_name: KeyName,
        /// ID of the key.
        key_id: KeyId,
    },
    /// Two known keys share the name and ID of a signature, so it cannot be attributed.
    #[error("ambiguous key {key_name}+{key_id}: several known keys have this name and ID")]
    AmbiguousKey {
        /// Name of the key.
        key_name: KeyName,
        /// ID of the key.
        key_id: KeyId,
    },
    /// A signature by a known key did not verify.
    #[error("invalid signature by known key {key_name}+{key_id}")]
    InvalidSignature {
        /// Name of the key.
        key_name: KeyName,
        /// ID of the key.
        key_id: KeyId,
    },
    /// No known key signed the note.
    #[error("note has no signature by a known key ({unverified} signatures by unknown keys)")]
    NoVerifiedSignature {
        /// How many distinct signatures by unknown keys the note has.
        unverified: usize,
    },
}

/// Why a verifier key (vkey) or signer key string could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key string is longer than [`super::MAX_KEY_STRING_SIZE`].
    #[error("key string is {length} bytes, more than the limit of {limit}")]
    TooLong {
        /// Its length.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// A `+`-separated part is missing.
    #[error("key string has no {part} part (expected <name>+<hex key ID>+<base64 key>)")]
    MissingPart {
        /// The part that is missing.
        part: &'static str,
    },
    /// A signer key string does not start with `PRIVATE+KEY+`.
    #[error("signer key must start with \"PRIVATE+KEY+\"")]
    NotPrivateKey,
    /// The key name is not acceptable.
    #[error("bad key name: {0}")]
    KeyName(#[from] KeyNameError),
    /// The key ID is not eight lowercase hex digits.
    #[error("key ID must be 8 lowercase hex digits, found {found:?}")]
    KeyIdNotHex {
        /// The text found (shortened).
        found: String,
    },
    /// The key material is not canonical standard base64.
    #[error("key material is not standard base64: {reason}")]
    Base64 {
        /// What the decoder said.
        reason: String,
    },
    /// The key material is empty (not even a signature type byte).
    #[error("key material is empty")]
    EmptyKeyMaterial,
    /// The signature type byte is not the one this kind of key needs.
    #[error("signature type 0x{found:02x} is not supported here, expected 0x{expected:02x}")]
    UnsupportedSignatureType {
        /// The type byte found.
        found: u8,
        /// The type byte expected.
        expected: u8,
    },
    /// The key material after the type byte has the wrong length.
    #[error("key is {found} bytes, expected {expected}")]
    WrongKeyLength {
        /// The length required.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// The key ID in the string is not the one the name and key give.
    #[error("key ID {stated} does not match the key, which has ID {computed}")]
    KeyIdMismatch {
        /// The ID written in the key string.
        stated: KeyId,
        /// The ID computed from name, type and key.
        computed: KeyId,
    },
    /// The 32 bytes are not an Ed25519 public key (not a point on the curve).
    #[error("not a valid Ed25519 public key")]
    InvalidPublicKey,
    /// The random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}
