//! Signed notes: text signed by one or more keys (C2SP signed-note v1.0.0), with the key
//! encodings of Go's `golang.org/x/mod/sumdb/note`.
//!
//! A signed note is a text that ends in a newline, a blank line, then one or more signature
//! lines:
//!
//! ```text
//! <text, any number of lines, each ending in U+000A>
//!
//! — <key name> base64(4-byte big-endian key ID || signature)
//! ```
//!
//! The whole note is UTF-8 with no ASCII control characters other than newline. The text is
//! separated from the signatures by the *last* blank line, so the text itself may contain blank
//! lines. Every signature is over the text, final newline included, blank line excluded.
//!
//! A key is identified by its name and a 32-bit key ID, by default the first four bytes of
//! `SHA-256(key name || 0x0A || signature type || public key)` (signed-note, "Signatures").
//! Verifying a note against a set of known keys follows the spec's rules: signatures whose
//! (name, ID) pair is unknown are ignored but kept and reported; every signature by a known key
//! is verified and a bad one rejects the whole note; a note with no verified signature by a known
//! key is rejected.
//!
//! Keys travel as text: a verifier key (vkey) is `<name>+<hex key ID>+base64(type || public key)`
//! and an Ed25519 signer key is `PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || 32-byte seed)`,
//! exactly the forms Go's `note.NewVerifier`, `note.NewSigner` and `note.GenerateKey` use.
//!
//! The grammar is strict and bounded: a note is at most [`MAX_NOTE_SIZE`] bytes with at most
//! [`MAX_SIGNATURES`] signature lines, base64 must be canonical, and key IDs in key strings are
//! lowercase hex. `spec/docs/note.md` lists every choice Cairn makes where the spec leaves room.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

mod batch;

pub use batch::{verify_single, Ed25519Batch, Ed25519Checker, Ed25519Rules, SingleEd25519};

/// The largest signed note Cairn reads or writes, in bytes (1 MiB).
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// The most signature lines a note may carry (the limit Go's `note.Open` applies; the spec asks
/// verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// The longest verifier or signer key string Cairn reads, in bytes.
pub const MAX_KEY_STRING_SIZE: usize = 8192;

/// Signature type byte of plain Ed25519 note signatures (signed-note, "Signature types").
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Length of an Ed25519 public key or seed, in bytes.
pub const ED25519_KEY_SIZE: usize = 32;

/// Length of an Ed25519 signature, in bytes.
pub const ED25519_SIGNATURE_SIZE: usize = 64;

/// What every signature line starts with: an em dash (U+2014) and a space.
pub const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

/// What every signer key string starts with.
pub const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Standard base64 with padding, canonical on decoding (RFC 4648 §4 and §3.5).
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard, padded, canonical base64; anything else is refused.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| error.to_string())
}

/// Cuts `text` to at most `limit` bytes at a character boundary, for quoting input in errors.
pub(crate) fn excerpt(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Why a key name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyNameError {
    /// The name was empty.
    #[error("key name is empty")]
    Empty,
    /// The name contained a Unicode white-space character.
    #[error("key name contains white space {character:?} at byte {offset}")]
    WhiteSpace {
        /// Byte offset of the character in the name.
        offset: usize,
        /// The character.
        character: char,
    },
    /// The name contained a plus sign, which separates the parts of key strings.
    #[error("key name contains '+' at byte {offset}")]
    Plus {
        /// Byte offset of the plus sign in the name.
        offset: usize,
    },
    /// The name contained an ASCII control character, which no note may contain.
    #[error("key name contains control character {character:?} at byte {offset}")]
    ControlCharacter {
        /// Byte offset of the character in the name.
        offset: usize,
        /// The character.
        character: char,
    },
}

/// The name of a key: non-empty, with no Unicode white space, no `+` and no control characters.
///
/// Names are recommended to be schema-less URLs such as `example.com/log`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Checks `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<KeyName, KeyNameError> {
        let name = name.into();
        check_key_name(&name)?;
        Ok(KeyName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn check_key_name(name: &str) -> Result<(), KeyNameError> {
    if name.is_empty() {
        return Err(KeyNameError::Empty);
    }
    for (offset, character) in name.char_indices() {
        if character == '+' {
            return Err(KeyNameError::Plus { offset });
        }
        // Rust's `char::is_whitespace` is Unicode's White_Space property, the same set Go's
        // `unicode.IsSpace` tests.
        if character.is_whitespace() {
            return Err(KeyNameError::WhiteSpace { offset, character });
        }
        if character < '\u{20}' {
            return Err(KeyNameError::ControlCharacter { offset, character });
        }
    }
    Ok(())
}

impl fmt::Display for KeyName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "KeyName({:?})", self.0)
    }
}

impl FromStr for KeyName {
    type Err = KeyNameError;
    fn from_str(text: &str) -> Result<KeyName, KeyNameError> {
        KeyName::new(text)
    }
}

impl TryFrom<&str> for KeyName {
    type Error = KeyNameError;
    fn try_from(text: &str) -> Result<KeyName, KeyNameError> {
        KeyName::new(text)
    }
}

impl TryFrom<String> for KeyName {
    type Error = KeyNameError;
    fn try_from(text: String) -> Result<KeyName, KeyNameError> {
        KeyName::new(text)
    }
}

impl AsRef<str> for KeyName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for KeyName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for KeyName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for KeyName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for KeyName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<KeyName, D::Error> {
        let text = String::deserialize(deserializer)?;
        KeyName::new(text).map_err(serde::de::Error::custom)
    }
}

/// The 32-bit ID that, together with the key name, identifies a key in signature lines.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl KeyId {
    /// The recommended key ID: the first four bytes, big-endian, of
    /// `SHA-256(key name || 0x0A || signature type || public key)`.
    pub fn compute(key_name: &KeyName, signature_type: u8, public_key: &[u8]) -> KeyId {
        let mut hasher = Sha256::new();
        hasher.update(key_name.as_str().as_bytes());
        hasher.update([b'\n', signature_type]);
        hasher.update(public_key);
        let digest = hasher.finalize();
        KeyId(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]))
    }

    /// The four big-endian bytes that start every signature by this key.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// Reads the key-string form: exactly eight lowercase hex digits.
    pub fn from_hex(text: &str) -> Result<KeyId, KeyError> {
        let bad = || KeyError::KeyIdNotHex {
            found: excerpt(text, 16),
        };
        if text.len() != 8 {
            return Err(bad());
        }
        let mut value = 0u32;
        for digit in text.bytes() {
            let nibble = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                _ => return Err(bad()),
            };
            value = (value << 4) | u32::from(nibble);
        }
        Ok(KeyId(value))
    }
}

/// Eight lowercase hex digits, the form used in key strings.
impl fmt::Display for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:08x}", self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "KeyId({:08x})", self.0)
    }
}

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
    /// The note is larger than [`MAX_NOTE_SIZE`].
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
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
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
    /// The key string is longer than [`MAX_KEY_STRING_SIZE`].
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

/// One signature in a note: the key's name and ID and the signature bytes after the ID.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    /// Name of the signing key.
    pub key_name: KeyName,
    /// ID of the signing key.
    pub key_id: KeyId,
    /// The signature proper, without the 4-byte key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// Reads one signature line, without its final newline.
    pub fn parse_line(line: &str) -> Result<NoteSignature, SignatureLineError> {
        let rest = line.strip_prefix(SIGNATURE_LINE_PREFIX).ok_or_else(|| {
            SignatureLineError::MissingPrefix {
                found: excerpt(line, 16),
            }
        })?;
        let (name, encoded) = rest
            .split_once(' ')
            .ok_or(SignatureLineError::MissingSpace)?;
        let key_name = KeyName::new(name).map_err(SignatureLineError::KeyName)?;
        let bytes =
            decode_base64(encoded).map_err(|reason| SignatureLineError::Base64 { reason })?;
        if bytes.len() < 5 {
            return Err(SignatureLineError::TooShort {
                length: bytes.len(),
            });
        }
        let key_id = KeyId(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
        Ok(NoteSignature {
            key_name,
            key_id,
            signature: bytes[4..].to_vec(),
        })
    }

    /// The base64 field of the line: `base64(key ID || signature)`.
    pub fn encoded(&self) -> String {
        let mut bytes = Vec::with_capacity(4 + self.signature.len());
        bytes.extend_from_slice(&self.key_id.to_bytes());
        bytes.extend_from_slice(&self.signature);
        encode_base64(&bytes)
    }

    /// The whole line, `— <name> <base64>` and its final newline.
    pub fn to_line(&self) -> String {
        format!(
            "{SIGNATURE_LINE_PREFIX}{} {}\n",
            self.key_name,
            self.encoded()
        )
    }

    fn same_key(&self, key_name: &KeyName, key_id: KeyId) -> bool {
        self.key_id == key_id && self.key_name == *key_name
    }
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "NoteSignature({})", self.to_line().trim_end())
    }
}

/// Reads a block of signature lines (each `— <name> <base64>\n`), as found after a note's blank
/// line or in a witness's add-checkpoint response. Line numbers in errors start at
/// `first_line_number`.
pub fn parse_signature_lines(
    block: &str,
    first_line_number: usize,
) -> Result<Vec<NoteSignature>, NoteError> {
    if block.is_empty() {
        return Err(NoteError::MissingSignatures);
    }
    let Some(lines) = block.strip_suffix('\n') else {
        return Err(NoteError::UnterminatedSignatureLine);
    };
    let mut signatures = Vec::new();
    for (index, line) in lines.split('\n').enumerate() {
        if signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                limit: MAX_SIGNATURES,
            });
        }
        let signature =
            NoteSignature::parse_line(line).map_err(|error| NoteError::SignatureLine {
                line: first_line_number + index,
                error,
            })?;
        signatures.push(signature);
    }
    Ok(signatures)
}

/// Writes signature lines, each with its final newline.
pub fn format_signature_lines(signatures: &[NoteSignature]) -> String {
    signatures.iter().map(NoteSignature::to_line).collect()
}

/// Checks the note-wide rules: size, UTF-8, and no control characters but newline.
fn check_note_bytes(bytes: &[u8]) -> Result<&str, NoteError> {
    if bytes.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            size: bytes.len(),
            limit: MAX_NOTE_SIZE,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|error| NoteError::InvalidUtf8 {
        offset: error.valid_up_to(),
    })?;
    // In UTF-8 every byte below 0x20 is the ASCII character itself, so a byte scan suffices.
    if let Some(offset) = bytes.iter().position(|&byte| byte < 0x20 && byte != b'\n') {
        return Err(NoteError::ControlCharacter {
            offset,
            byte: bytes[offset],
        });
    }
    Ok(text)
}

/// Something that can check signatures by one key: the key's name and ID, and a verification
/// function. [`Ed25519Verifier`] checks plain Ed25519 note signatures;
/// [`crate::cosignature::CosignatureVerifier`] checks timestamped witness cosignatures.
pub trait NoteVerifier {
    /// Name of the key.
    fn key_name(&self) -> &KeyName;
    /// ID of the key.
    fn key_id(&self) -> KeyId;
    /// Whether `signature` (the bytes after the key ID) is this key's signature of `text`, the
    /// note text with its final newline.
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool;
    /// As [`NoteVerifier::verify`], with the Ed25519 equation (if the key is an Ed25519 one)
    /// left to `checker`, which may defer it to a batch. The default checks at once.
    fn verify_with(&self, text: &[u8], signature: &[u8], checker: &mut dyn Ed25519Checker) -> bool {
        let _ = checker;
        self.verify(text, signature)
    }
}

/// What verifying a note found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Signatures by known keys, all verified, in note order (repeated identical lines once).
    pub verified: Vec<NoteSignature>,
    /// Signatures by keys not in the verifier set, not verified, in note order (repeated
    /// identical lines once).
    pub unverified: Vec<NoteSignature>,
}

impl Verification {
    /// Whether a verified signature by the key with this name and ID is among them.
    pub fn is_signed_by(&self, key_name: &KeyName, key_id: KeyId) -> bool {
        self.verified
            .iter()
            .any(|signature| signature.same_key(key_name, key_id))
    }
}

/// A note: its text and its signatures (not yet verified).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// A note with `text` and no signatures yet. The text must end with a newline, contain no
    /// control characters other than newline, and fit in [`MAX_NOTE_SIZE`].
    pub fn new(text: impl Into<String>) -> Result<Note, NoteError> {
        let text = text.into();
        check_note_bytes(text.as_bytes())?;
        if !text.ends_with('\n') {
            return Err(NoteError::TextMissingFinalNewline);
        }
        Ok(Note {
            text,
            signatures: Vec::new(),
        })
    }

    /// Reads a signed note. Checks the grammar only; see [`Note::verify`] and [`Note::open`].
    pub fn parse(message: &[u8]) -> Result<Note, NoteError> {
        let message = check_note_bytes(message)?;
        let split = message.rfind("\n\n").ok_or(NoteError::MissingBlankLine)?;
        let text = &message[..split + 1];
        let block = &message[split + 2..];
        // Number the signature lines as lines of the whole note, for error messages.
        let first_line_number = || text.bytes().filter(|&byte| byte == b'\n').count() + 2;
        let signatures = parse_signature_lines(block, 1).map_err(|error| match error {
            NoteError::SignatureLine { line, error } => NoteError::SignatureLine {
                line: line - 1 + first_line_number(),
                error,
            },
            other => other,
        })?;
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Reads a signed note and verifies it against `verifiers` (see [`Note::verify`]).
    pub fn open(
        message: &[u8],
        verifiers: &[&dyn NoteVerifier],
    ) -> Result<(Note, Verification), NoteError> {
        let note = Note::parse(message)?;
        let verification = note.verify(verifiers)?;
        Ok((note, verification))
    }

    /// The text, with its final newline: what the signatures sign.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signatures, in note order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature at the end, first removing any signature by the same key (name and ID),
    /// as Go's `note.Sign` does.
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        self.signatures
            .retain(|existing| !existing.same_key(&signature.key_name, signature.key_id));
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                limit: MAX_SIGNATURES,
            });
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// Signs the text with `signer` and adds the signature (replacing an older one by the same
    /// key).
    pub fn sign(&mut self, signer: &Ed25519Signer) -> Result<(), NoteError> {
        let signature = signer.sign(self);
        self.add_signature(signature)
    }

    /// The signed note: text, blank line, signature lines. Refuses to write what
    /// [`Note::parse`] would refuse to read: no signatures, too many, an empty signature, or a
    /// note over [`MAX_NOTE_SIZE`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, NoteError> {
        if self.signatures.is_empty() {
            return Err(NoteError::MissingSignatures);
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                limit: MAX_SIGNATURES,
            });
        }
        if let Some(empty) = self
            .signatures
            .iter()
            .find(|signature| signature.signature.is_empty())
        {
            return Err(NoteError::EmptySignature {
                key_name: empty.key_name.clone(),
                key_id: empty.key_id,
            });
        }
        let mut out = Vec::with_capacity(self.text.len() + 1 + 128 * self.signatures.len());
        out.extend_from_slice(self.text.as_bytes());
        out.push(b'\n');
        for signature in &self.signatures {
            out.extend_from_slice(signature.to_line().as_bytes());
        }
        if out.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size: out.len(),
                limit: MAX_NOTE_SIZE,
            });
        }
        Ok(out)
    }

    /// Verifies the note against a set of known keys, following signed-note's rules:
    ///
    /// - a signature whose (name, ID) matches no known key is ignored, and reported in
    ///   [`Verification::unverified`];
    /// - a signature whose (name, ID) matches a known key is verified, and if it fails the whole
    ///   note is rejected with [`NoteError::InvalidSignature`];
    /// - a signature whose (name, ID) matches several known keys is [`NoteError::AmbiguousKey`];
    /// - a note with no verified signature by a known key is [`NoteError::NoVerifiedSignature`].
    pub fn verify(&self, verifiers: &[&dyn NoteVerifier]) -> Result<Verification, NoteError> {
        self.verify_with(verifiers, &mut SingleEd25519)
    }

    /// As [`Note::verify`], with every Ed25519 equation left to `checker`. With a batch checker
    /// the answer is provisional until the batch verifies (see [`Ed25519Batch`]).
    pub fn verify_with(
        &self,
        verifiers: &[&dyn NoteVerifier],
        checker: &mut dyn Ed25519Checker,
    ) -> Result<Verification, NoteError> {
        let mut verified: Vec<NoteSignature> = Vec::new();
        let mut unverified: Vec<NoteSignature> = Vec::new();
        for signature in &self.signatures {
            let mut matching = verifiers
                .iter()
                .filter(|verifier| signature.same_key(verifier.key_name(), verifier.key_id()));
            let Some(verifier) = matching.next() else {
                if !unverified.contains(signature) {
                    unverified.push(signature.clone());
                }
                continue;
            };
            if matching.next().is_some() {
                return Err(NoteError::AmbiguousKey {
                    key_name: signature.key_name.clone(),
                    key_id: signature.key_id,
                });
            }
            if verified.contains(signature) {
                continue;
            }
            if !verifier.verify_with(self.text.as_bytes(), &signature.signature, checker) {
                return Err(NoteError::InvalidSignature {
                    key_name: signature.key_name.clone(),
                    key_id: signature.key_id,
                });
            }
            verified.push(signature.clone());
        }
        if verified.is_empty() {
            return Err(NoteError::NoVerifiedSignature {
                unverified: unverified.len(),
            });
        }
        Ok(Verification {
            verified,
            unverified,
        })
    }
}

/// The three `+`-separated parts of a verifier key string, with the key material decoded but not
/// interpreted: what every kind of vkey shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vkey {
    /// The key name.
    pub key_name: KeyName,
    /// The key ID as written in the string (not checked against the key).
    pub key_id: KeyId,
    /// The signature type byte, the first byte of the key material.
    pub signature_type: u8,
    /// The public key, the key material after the type byte.
    pub public_key: Vec<u8>,
}

impl Vkey {
    /// Reads `<name>+<8 lowercase hex digits>+<base64(type || public key)>`.
    pub fn parse(vkey: &str) -> Result<Vkey, KeyError> {
        if vkey.len() > MAX_KEY_STRING_SIZE {
            return Err(KeyError::TooLong {
                length: vkey.len(),
                limit: MAX_KEY_STRING_SIZE,
            });
        }
        let (name, rest) = vkey
            .split_once('+')
            .ok_or(KeyError::MissingPart { part: "key ID" })?;
        let (id, material) = rest.split_once('+').ok_or(KeyError::MissingPart {
            part: "key material",
        })?;
        let key_name = KeyName::new(name)?;
        let key_id = KeyId::from_hex(id)?;
        let material = decode_base64(material).map_err(|reason| KeyError::Base64 { reason })?;
        let (&signature_type, public_key) =
            material.split_first().ok_or(KeyError::EmptyKeyMaterial)?;
        Ok(Vkey {
            key_name,
            key_id,
            signature_type,
            public_key: public_key.to_vec(),
        })
    }

    /// Checks that the written key ID is the recommended one for this name, type and key.
    pub fn check_key_id(&self) -> Result<(), KeyError> {
        let computed = KeyId::compute(&self.key_name, self.signature_type, &self.public_key);
        if computed != self.key_id {
            return Err(KeyError::KeyIdMismatch {
                stated: self.key_id,
                computed,
            });
        }
        Ok(())
    }

    /// Checks the type byte and reads a 32-byte Ed25519 public key.
    pub(crate) fn ed25519_public_key(
        &self,
        expected_type: u8,
    ) -> Result<ed25519_dalek::VerifyingKey, KeyError> {
        if self.signature_type != expected_type {
            return Err(KeyError::UnsupportedSignatureType {
                found: self.signature_type,
                expected: expected_type,
            });
        }
        let bytes: [u8; ED25519_KEY_SIZE] =
            self.public_key
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::WrongKeyLength {
                    expected: ED25519_KEY_SIZE,
                    found: self.public_key.len(),
                })?;
        self.check_key_id()?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)
    }
}

/// Writes `<name>+<hex key ID>+base64(type || key)`.
pub(crate) fn format_vkey(
    key_name: &KeyName,
    key_id: KeyId,
    signature_type: u8,
    key: &[u8],
) -> String {
    let mut material = Vec::with_capacity(1 + key.len());
    material.push(signature_type);
    material.extend_from_slice(key);
    format!("{key_name}+{key_id}+{}", encode_base64(&material))
}

/// The parts of a signer key string `PRIVATE+KEY+<name>+<hex ID>+base64(type || seed)`, with
/// the stated ID not yet checked (it is the ID of the public key, which must be derived first).
pub(crate) struct SkeyParts {
    pub(crate) key_name: KeyName,
    pub(crate) key_id: KeyId,
    pub(crate) signature_type: u8,
    pub(crate) seed: [u8; ED25519_KEY_SIZE],
}

/// Reads an Ed25519-seed signer key string.
pub(crate) fn parse_ed25519_skey(skey: &str) -> Result<SkeyParts, KeyError> {
    if skey.len() > MAX_KEY_STRING_SIZE {
        return Err(KeyError::TooLong {
            length: skey.len(),
            limit: MAX_KEY_STRING_SIZE,
        });
    }
    let rest = skey
        .strip_prefix(PRIVATE_KEY_PREFIX)
        .ok_or(KeyError::NotPrivateKey)?;
    // The public and private forms share their grammar after the prefix.
    let parts = Vkey::parse(rest)?;
    let seed: [u8; ED25519_KEY_SIZE] =
        parts
            .public_key
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongKeyLength {
                expected: ED25519_KEY_SIZE,
                found: parts.public_key.len(),
            })?;
    Ok(SkeyParts {
        key_name: parts.key_name,
        key_id: parts.key_id,
        signature_type: parts.signature_type,
        seed,
    })
}

/// Writes `PRIVATE+KEY+<name>+<hex key ID>+base64(type || seed)`.
pub(crate) fn format_skey(
    key_name: &KeyName,
    key_id: KeyId,
    signature_type: u8,
    seed: &[u8; ED25519_KEY_SIZE],
) -> String {
    format!(
        "{PRIVATE_KEY_PREFIX}{}",
        format_vkey(key_name, key_id, signature_type, seed)
    )
}

/// Fills a 32-byte seed from a caller-supplied random source.
pub(crate) fn random_seed<R: CryptoRngCore + ?Sized>(
    rng: &mut R,
) -> Result<[u8; ED25519_KEY_SIZE], KeyError> {
    let mut seed = [0u8; ED25519_KEY_SIZE];
    rng.try_fill_bytes(&mut seed)
        .map_err(|error| KeyError::Random(error.to_string()))?;
    Ok(seed)
}

/// Checks an Ed25519 signature the way Go's `crypto/ed25519.Verify` does (RFC 8032,
/// cofactorless, canonical S).
pub(crate) fn verify_ed25519(
    public_key: &ed25519_dalek::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    verify_single(public_key, message, signature, Ed25519Rules::Cofactorless)
}

/// The public half of an Ed25519 note key: verifies plain Ed25519 note signatures (type 0x01).
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519Verifier {
    key_name: KeyName,
    key_id: KeyId,
    public_key: ed25519_dalek::VerifyingKey,
}

impl Ed25519Verifier {
    /// The verifier for `public_key` under `key_name`, with the recommended key ID.
    pub fn new(key_name: KeyName, public_key: ed25519_dalek::VerifyingKey) -> Ed25519Verifier {
        let key_id = KeyId::compute(&key_name, SIGNATURE_TYPE_ED25519, public_key.as_bytes());
        Ed25519Verifier {
            key_name,
            key_id,
            public_key,
        }
    }

    /// Reads a vkey `<name>+<hex ID>+base64(0x01 || 32-byte public key)`, checking the ID.
    pub fn from_vkey(vkey: &str) -> Result<Ed25519Verifier, KeyError> {
        let parts = Vkey::parse(vkey)?;
        let public_key = parts.ed25519_public_key(SIGNATURE_TYPE_ED25519)?;
        Ok(Ed25519Verifier {
            key_name: parts.key_name,
            key_id: parts.key_id,
            public_key,
        })
    }

    /// The vkey string, as Go's `note.NewEd25519VerifierKey` writes it.
    pub fn to_vkey(&self) -> String {
        format_vkey(
            &self.key_name,
            self.key_id,
            SIGNATURE_TYPE_ED25519,
            self.public_key.as_bytes(),
        )
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &ed25519_dalek::VerifyingKey {
        &self.public_key
    }

    /// Name of the key.
    pub fn key_name(&self) -> &KeyName {
        &self.key_name
    }

    /// ID of the key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
}

impl NoteVerifier for Ed25519Verifier {
    fn key_name(&self) -> &KeyName {
        &self.key_name
    }
    fn key_id(&self) -> KeyId {
        self.key_id
    }
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        verify_ed25519(&self.public_key, text, signature)
    }
    fn verify_with(&self, text: &[u8], signature: &[u8], checker: &mut dyn Ed25519Checker) -> bool {
        checker.check(
            &self.public_key,
            text,
            signature,
            Ed25519Rules::Cofactorless,
        )
    }
}

impl fmt::Display for Ed25519Verifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_vkey())
    }
}

impl fmt::Debug for Ed25519Verifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Ed25519Verifier({})", self.to_vkey())
    }
}

impl FromStr for Ed25519Verifier {
    type Err = KeyError;
    fn from_str(vkey: &str) -> Result<Ed25519Verifier, KeyError> {
        Ed25519Verifier::from_vkey(vkey)
    }
}

/// The private half of an Ed25519 note key: signs notes with plain Ed25519 (type 0x01).
///
/// Its `Debug` form shows the name and ID, never the seed.
#[derive(Clone)]
pub struct Ed25519Signer {
    key_name: KeyName,
    key_id: KeyId,
    signing_key: ed25519_dalek::SigningKey,
}

impl Ed25519Signer {
    /// The signer whose Ed25519 private key is `seed` (RFC 8032's 32-byte secret key).
    pub fn from_seed(key_name: KeyName, seed: [u8; ED25519_KEY_SIZE]) -> Ed25519Signer {
        let signing_key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let key_id = KeyId::compute(
            &key_name,
            SIGNATURE_TYPE_ED25519,
            signing_key.verifying_key().as_bytes(),
        );
        Ed25519Signer {
            key_name,
            key_id,
            signing_key,
        }
    }

    /// A new key pair from a caller-supplied cryptographic random source (Go's
    /// `note.GenerateKey`).
    pub fn generate<R: CryptoRngCore + ?Sized>(
        key_name: KeyName,
        rng: &mut R,
    ) -> Result<Ed25519Signer, KeyError> {
        Ok(Ed25519Signer::from_seed(key_name, random_seed(rng)?))
    }

    /// Reads `PRIVATE+KEY+<name>+<hex ID>+base64(0x01 || 32-byte seed)`, checking that the ID is
    /// the one of the derived public key.
    pub fn from_skey(skey: &str) -> Result<Ed25519Signer, KeyError> {
        let parts = parse_ed25519_skey(skey)?;
        if parts.signature_type != SIGNATURE_TYPE_ED25519 {
            return Err(KeyError::UnsupportedSignatureType {
                found: parts.signature_type,
                expected: SIGNATURE_TYPE_ED25519,
            });
        }
        let signer = Ed25519Signer::from_seed(parts.key_name, parts.seed);
        if signer.key_id != parts.key_id {
            return Err(KeyError::KeyIdMismatch {
                stated: parts.key_id,
                computed: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// The signer key string. It holds the private key: keep it secret.
    pub fn to_skey(&self) -> String {
        format_skey(
            &self.key_name,
            self.key_id,
            SIGNATURE_TYPE_ED25519,
            self.signing_key.as_bytes(),
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Ed25519Verifier {
        Ed25519Verifier {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            public_key: self.signing_key.verifying_key(),
        }
    }

    /// Name of the key.
    pub fn key_name(&self) -> &KeyName {
        &self.key_name
    }

    /// ID of the key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// This key's signature of the note's text.
    pub fn sign(&self, note: &Note) -> NoteSignature {
        NoteSignature {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            signature: self
                .signing_key
                .sign(note.text().as_bytes())
                .to_bytes()
                .to_vec(),
        }
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "Ed25519Signer({}+{}, private key elided)",
            self.key_name, self.key_id
        )
    }
}
