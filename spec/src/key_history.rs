//! Key histories: the signed, append-only record of a log's (or a witness's) keys, so that a
//! key can be rotated, retired or revoked while every verifier that pinned the first key keeps
//! knowing, for every tree size, which keys may sign.
//!
//! A history is a list of statements, each a C2SP signed note whose text is exactly five lines:
//!
//! ```text
//! cairn-key-history/v1
//! <subject: the key name every key of the history has>
//! <sequence number, from 0>
//! <base64 SHA-256 of the previous statement's note bytes; 32 zero bytes for statement 0>
//! introduce|retire|revoke <vkey> <tree size>
//! ```
//!
//! - `introduce K N`: K may sign checkpoints of size N and above. Signed by K itself (it holds
//!   the private key) and by a current key (the endorsement).
//! - `retire K M`: K signs no checkpoint larger than M. Signed by a current key.
//! - `revoke K R`: every signature K makes on a checkpoint of size R or more is a compromise.
//!   Signed by a current key other than K.
//!
//! The verifier ([`KeyHistory::verify`]) starts from the first key, which the verifier pins (a
//! policy's `log` line), and returns each key's range of valid tree sizes. The rules, limits and
//! test vectors are in `spec/docs/key-history.md`.

mod text;
mod verify;

use crate::hash::Hash;
use crate::note::{KeyId, KeyName};

pub use text::{split_statements, Action, Statement};

/// The first line of every statement.
pub const STATEMENT_HEADER: &str = "cairn-key-history/v1";

/// Most bytes a whole history may have.
pub const MAX_HISTORY_BYTES: usize = 1 << 20;

/// Most statements a history may have.
pub const MAX_STATEMENTS: usize = 1024;

/// Most bytes one statement note may have.
pub const MAX_STATEMENT_BYTES: usize = 16 * 1024;

/// Most signature lines one statement may carry.
pub const MAX_STATEMENT_SIGNATURES: usize = 8;

/// A verified key history: the statements, and what they say about each key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHistory {
    subject: KeyName,
    signature_type: u8,
    keys: Vec<KeyRange>,
    statements: Vec<Vec<u8>>,
    head: Hash,
}

/// One key of a history and the tree sizes in which its signatures are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The key's vkey, as the history (or the pin) wrote it.
    pub vkey: String,
    /// Its name: the history's subject.
    pub key_name: KeyName,
    /// Its key ID for its own signature type (the ID on its checkpoint or cosignature lines).
    pub key_id: KeyId,
    /// Its Ed25519 public key.
    pub public_key: ed25519_dalek::VerifyingKey,
    /// The smallest tree size it may sign (0 for the first key).
    pub from: u64,
    /// The largest tree size it may sign, once retired.
    pub last: Option<u64>,
    /// The tree size from which its signatures are a compromise, once revoked.
    pub revoked_from: Option<u64>,
}

/// What a history says about one key's signature on a checkpoint of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// The key may sign checkpoints of this size.
    Valid,
    /// The key was introduced for larger trees only.
    NotYetValid {
        /// The smallest size it may sign.
        from: u64,
    },
    /// The key was retired before this size (a signature is not valid, but not a compromise).
    Retired {
        /// The largest size it may sign.
        last: u64,
    },
    /// The key was revoked at or before this size: its signature is a compromise.
    Revoked {
        /// The size from which it is revoked.
        from: u64,
    },
}

impl KeyRange {
    /// What this key's signature on a checkpoint of `size` is worth.
    pub fn status(&self, size: u64) -> KeyStatus {
        if let Some(from) = self.revoked_from.filter(|from| size >= *from) {
            return KeyStatus::Revoked { from };
        }
        if size < self.from {
            return KeyStatus::NotYetValid { from: self.from };
        }
        if let Some(last) = self.last.filter(|last| size > *last) {
            return KeyStatus::Retired { last };
        }
        KeyStatus::Valid
    }

    /// Whether it is neither retired nor revoked: it may still sign statements.
    pub fn is_current(&self) -> bool {
        self.last.is_none() && self.revoked_from.is_none()
    }

    /// The ID of its statement signatures: type 0x01 under its name and public key.
    pub fn statement_key_id(&self) -> KeyId {
        KeyId::compute(
            &self.key_name,
            crate::note::SIGNATURE_TYPE_ED25519,
            self.public_key.as_bytes(),
        )
    }
}

impl KeyHistory {
    /// The key name every key of the history has (a log's origin, a witness's name).
    pub fn subject(&self) -> &KeyName {
        &self.subject
    }

    /// The signature type of every key (0x01 for a log, 0x04 for a witness).
    pub fn signature_type(&self) -> u8 {
        self.signature_type
    }

    /// Every key, the pinned first key first, in the order the history introduced them.
    pub fn keys(&self) -> &[KeyRange] {
        &self.keys
    }

    /// The key with this name and ID (of the keys' own signature type), if the history has it.
    pub fn key(&self, key_name: &KeyName, key_id: KeyId) -> Option<&KeyRange> {
        self.keys
            .iter()
            .find(|key| key.key_id == key_id && key.key_name == *key_name)
    }

    /// The keys whose signatures are valid on a checkpoint of `size`.
    pub fn valid_at(&self, size: u64) -> impl Iterator<Item = &KeyRange> {
        self.keys
            .iter()
            .filter(move |key| key.status(size) == KeyStatus::Valid)
    }

    /// How many statements the history has.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// Whether it has no statement (only the pinned key).
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// The note bytes of each statement, in order: each is a leaf the log logs.
    pub fn statements(&self) -> &[Vec<u8>] {
        &self.statements
    }

    /// The hash the next statement must name as its previous one.
    pub fn head(&self) -> Hash {
        self.head
    }

    /// The whole history in its canonical encoding: the statement notes, one after another.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.statements.concat()
    }

    /// The next statement's unsigned form: its sequence number and previous hash filled in.
    pub fn next_statement(&self, action: Action) -> Statement {
        Statement {
            subject: self.subject.clone(),
            sequence: self.statements.len() as u64,
            previous: self.head,
            action,
        }
    }

    /// Whether `older` is a prefix of this history (same pinned key, same first statements):
    /// what a verifier checks when it fetches a history again.
    pub fn extends(&self, older: &KeyHistory) -> bool {
        self.keys.first().map(|key| key.public_key) == older.keys.first().map(|key| key.public_key)
            && older.statements.len() <= self.statements.len()
            && self.statements[..older.statements.len()] == older.statements[..]
    }
}

/// Why a history, or one of its statements, was refused. `statement` counts from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyHistoryError {
    /// The pinned first key is not a usable vkey.
    #[error("the pinned key: {0}")]
    PinnedKey(String),
    /// The history is larger than [`MAX_HISTORY_BYTES`].
    #[error("the history is {found} bytes, more than the limit of {MAX_HISTORY_BYTES}")]
    TooLarge {
        /// Its size.
        found: usize,
    },
    /// More statements than [`MAX_STATEMENTS`].
    #[error("the history has more than {MAX_STATEMENTS} statements")]
    TooManyStatements,
    /// The bytes do not split into statement notes.
    #[error("statement {statement}: {reason}")]
    Framing {
        /// Which statement.
        statement: usize,
        /// Why.
        reason: String,
    },
    /// A statement's text does not have the five lines.
    #[error("statement {statement}, line {line}: {reason}")]
    Text {
        /// Which statement.
        statement: usize,
        /// Which line, from 1.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A statement's sequence number, subject or previous hash does not follow the history.
    #[error("statement {statement}: {reason}")]
    Chain {
        /// Which statement.
        statement: usize,
        /// Why.
        reason: String,
    },
    /// A statement's signatures are missing, unknown or invalid.
    #[error("statement {statement}: {reason}")]
    Signature {
        /// Which statement.
        statement: usize,
        /// Why.
        reason: String,
    },
    /// A statement breaks a rule of its action (a key introduced twice, the last key retired).
    #[error("statement {statement}: {reason}")]
    Rule {
        /// Which statement.
        statement: usize,
        /// Why.
        reason: String,
    },
}

/// The signature line of a statement signed by the Ed25519 key `public_key` named `key_name`:
/// a type-0x01 note signature whatever the key's own type, so a witness's cosignature key signs
/// its history as a log's key does. `signature` is Ed25519 over the statement's text.
pub fn statement_signature(
    key_name: &KeyName,
    public_key: &ed25519_dalek::VerifyingKey,
    signature: [u8; 64],
) -> crate::note::NoteSignature {
    crate::note::NoteSignature {
        key_name: key_name.clone(),
        key_id: KeyId::compute(
            key_name,
            crate::note::SIGNATURE_TYPE_ED25519,
            public_key.as_bytes(),
        ),
        signature: signature.to_vec(),
    }
}

#[cfg(test)]
mod tests;
