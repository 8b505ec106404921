//! Who signed: a key is named in every signature line by its name and a 32-bit key ID, so that
//! a verifier picks the key to check a signature with before checking anything (signed-note,
//! "Signatures"). A name is free text but for white space, `+` (the separator of key strings)
//! and control characters; the ID is by default derived from the name, the signature type and
//! the public key, so two kinds of key with the same name and bytes still differ.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::{excerpt, KeyError};

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
