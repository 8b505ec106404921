//! Checkpoints: a log's signed statement of its tree size and root hash (C2SP tlog-checkpoint
//! v1.0.0).
//!
//! A checkpoint is a [signed note](crate::note) whose text is, line by line:
//!
//! ```text
//! <origin>                 a unique, non-empty name for the log, such as example.com/log42
//! <tree size>              decimal, no leading zeros ("0" for the empty tree), fits in u64
//! <root hash>              standard base64 of the RFC 6962 / RFC 9162 root at that size
//! [<extension line> ...]   optional, opaque, each non-empty
//! ```
//!
//! The log's key name should equal the origin (tlog-checkpoint, "Signatures"). Cairn's logs always
//! sign with a key named after the origin: [`Checkpoint::sign`] refuses any other key, and
//! [`Checkpoint::open`] expects it. [`Checkpoint::open_with_origin`] opens checkpoints of logs that
//! name their key otherwise (sum.golang.org, for one), with the origin given by the caller.

use crate::hash::{Hash, HashError};
use crate::note::{
    Ed25519Signer, KeyName, Note, NoteError, NoteVerifier, Verification, MAX_NOTE_SIZE,
};

/// The longest decimal number that fits in a u64 (18446744073709551615) has 20 digits.
const MAX_DECIMAL_DIGITS: usize = 20;

/// Why a decimal tree size (or any decimal count on the wire) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeSizeError {
    /// The text was empty.
    #[error("expected a decimal number, found nothing")]
    Empty,
    /// The text had a character other than an ASCII digit.
    #[error("expected only ASCII digits, found {found:?}")]
    NotDecimal {
        /// The text found (shortened).
        found: String,
    },
    /// The number had a leading zero (only "0" itself may start with one).
    #[error("number {found:?} has a leading zero")]
    LeadingZero {
        /// The text found (shortened).
        found: String,
    },
    /// The number does not fit in 64 bits.
    #[error("number {found:?} does not fit in 64 bits")]
    TooLarge {
        /// The text found (shortened).
        found: String,
    },
}

/// Reads a canonical decimal u64: ASCII digits, no sign, no leading zeros unless it is `0`.
pub fn parse_tree_size(text: &str) -> Result<u64, TreeSizeError> {
    let shortened = || crate::note::excerpt(text, 32);
    if text.is_empty() {
        return Err(TreeSizeError::Empty);
    }
    if !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(TreeSizeError::NotDecimal { found: shortened() });
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(TreeSizeError::LeadingZero { found: shortened() });
    }
    if text.len() > MAX_DECIMAL_DIGITS {
        return Err(TreeSizeError::TooLarge { found: shortened() });
    }
    text.parse::<u64>()
        .map_err(|_| TreeSizeError::TooLarge { found: shortened() })
}

/// Why a checkpoint could not be read, written, signed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is larger than a note may be.
    #[error("checkpoint text is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The text does not end with a newline.
    #[error("checkpoint text must end with a newline")]
    MissingFinalNewline,
    /// One of the three mandatory lines is missing.
    #[error("checkpoint has no line {line} (the {what})")]
    MissingLine {
        /// 1-based line number.
        line: usize,
        /// What the line should hold.
        what: &'static str,
    },
    /// The origin line is empty.
    #[error("checkpoint origin (line 1) is empty")]
    EmptyOrigin,
    /// A line contains an ASCII control character (a newline inside a field, when writing).
    #[error("checkpoint line {line} contains control character 0x{byte:02x} at byte {offset}")]
    ControlCharacter {
        /// 1-based line number.
        line: usize,
        /// Byte offset in the line.
        offset: usize,
        /// The character.
        byte: u8,
    },
    /// The tree size line (line 2) is not a canonical decimal u64.
    #[error("checkpoint tree size (line 2): {0}")]
    TreeSize(TreeSizeError),
    /// The root hash line (line 3) is not base64 of 32 bytes.
    #[error("checkpoint root hash (line 3): {0}")]
    RootHash(HashError),
    /// An extension line is empty.
    #[error("checkpoint extension line {line} is empty")]
    EmptyExtensionLine {
        /// 1-based line number.
        line: usize,
    },
    /// The signed note could not be read or did not verify.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The origin is not the name of the log key that signs or opens the checkpoint.
    #[error("checkpoint origin {origin:?} is not the log key's name {key_name:?}")]
    OriginMismatch {
        /// The checkpoint's origin.
        origin: String,
        /// The key's name.
        key_name: String,
    },
    /// The origin is not the one the caller expected.
    #[error("checkpoint origin {found:?} is not the expected origin {expected:?}")]
    UnexpectedOrigin {
        /// The origin expected.
        expected: String,
        /// The checkpoint's origin.
        found: String,
    },
}

/// A log's tree head: which log, how many leaves, the root hash, and any extension lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The log's origin line, a unique identifier such as `example.com/log42`.
    pub origin: String,
    /// The number of leaves in the tree.
    pub size: u64,
    /// The RFC 9162 root hash of the tree at that size.
    pub root: Hash,
    /// Optional extension lines, opaque to Cairn (tlog-checkpoint does not recommend them).
    pub extensions: Vec<String>,
}

/// A checkpoint together with the note it came in and what verifying it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The whole note, with every signature (the log's, cosignatures, unknown ones).
    pub note: Note,
    /// Which signatures verified against the keys given, and which were by unknown keys.
    pub verification: Verification,
}

fn find_control_character(line: &str) -> Option<(usize, u8)> {
    line.bytes().enumerate().find(|&(_, byte)| byte < 0x20)
}

impl Checkpoint {
    /// Reads a checkpoint from a note text (final newline included).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        if text.len() > MAX_NOTE_SIZE {
            return Err(CheckpointError::TooLarge {
                size: text.len(),
                limit: MAX_NOTE_SIZE,
            });
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let mut lines = body.split('\n');
        for (index, line) in body.split('\n').enumerate() {
            if let Some((offset, byte)) = find_control_character(line) {
                return Err(CheckpointError::ControlCharacter {
                    line: index + 1,
                    offset,
                    byte,
                });
            }
        }
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = lines.next().ok_or(CheckpointError::MissingLine {
            line: 2,
            what: "tree size",
        })?;
        let size = parse_tree_size(size).map_err(CheckpointError::TreeSize)?;
        let root = lines.next().ok_or(CheckpointError::MissingLine {
            line: 3,
            what: "root hash",
        })?;
        let root = Hash::from_base64(root).map_err(CheckpointError::RootHash)?;
        let mut extensions = Vec::new();
        for (index, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(CheckpointError::EmptyExtensionLine { line: index + 4 });
            }
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The note text, final newline included. Refuses what [`Checkpoint::parse`] would refuse:
    /// an empty origin, an empty extension line, or a control character (newline included) in
    /// the origin or an extension line.
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        if let Some((offset, byte)) = find_control_character(&self.origin) {
            return Err(CheckpointError::ControlCharacter {
                line: 1,
                offset,
                byte,
            });
        }
        for (index, extension) in self.extensions.iter().enumerate() {
            if extension.is_empty() {
                return Err(CheckpointError::EmptyExtensionLine { line: index + 4 });
            }
            if let Some((offset, byte)) = find_control_character(extension) {
                return Err(CheckpointError::ControlCharacter {
                    line: index + 4,
                    offset,
                    byte,
                });
            }
        }
        let mut text = String::with_capacity(
            self.origin.len()
                + 1
                + MAX_DECIMAL_DIGITS
                + 1
                + 45
                + self
                    .extensions
                    .iter()
                    .map(|line| line.len() + 1)
                    .sum::<usize>(),
        );
        text.push_str(&self.origin);
        text.push('\n');
        text.push_str(&self.size.to_string());
        text.push('\n');
        text.push_str(&self.root.to_base64());
        text.push('\n');
        for extension in &self.extensions {
            text.push_str(extension);
            text.push('\n');
        }
        if text.len() > MAX_NOTE_SIZE {
            return Err(CheckpointError::TooLarge {
                size: text.len(),
                limit: MAX_NOTE_SIZE,
            });
        }
        Ok(text)
    }

    /// Reads the checkpoint in a note's text (without looking at the signatures).
    pub fn from_note(note: &Note) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::parse(note.text())
    }

    /// The checkpoint as an unsigned note, ready for signatures.
    pub fn to_note(&self) -> Result<Note, CheckpointError> {
        Ok(Note::new(self.to_text()?)?)
    }

    /// Signs the checkpoint with the log's key. The key must be named after the origin.
    pub fn sign(&self, log_key: &Ed25519Signer) -> Result<Note, CheckpointError> {
        check_origin_is_key_name(&self.origin, log_key.key_name())?;
        let mut note = self.to_note()?;
        note.sign(log_key)?;
        Ok(note)
    }

    /// Opens a signed checkpoint from a Cairn-style log: the note must carry a valid signature by
    /// `log_key`, and the origin must be the key's name. Other signatures (cosignatures, unknown
    /// keys) are kept in the note and listed in the verification as unverified.
    pub fn open(
        message: &[u8],
        log_key: &dyn NoteVerifier,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let (note, verification) = Note::open(message, &[log_key])?;
        let checkpoint = Checkpoint::from_note(&note)?;
        check_origin_is_key_name(&checkpoint.origin, log_key.key_name())?;
        Ok(SignedCheckpoint {
            checkpoint,
            note,
            verification,
        })
    }

    /// Opens a signed checkpoint of the log `origin`, signed by at least one of `log_keys`,
    /// whatever the keys are named.
    pub fn open_with_origin(
        message: &[u8],
        origin: &str,
        log_keys: &[&dyn NoteVerifier],
    ) -> Result<SignedCheckpoint, CheckpointError> {
        let (note, verification) = Note::open(message, log_keys)?;
        let checkpoint = Checkpoint::from_note(&note)?;
        if checkpoint.origin != origin {
            return Err(CheckpointError::UnexpectedOrigin {
                expected: origin.to_owned(),
                found: checkpoint.origin,
            });
        }
        Ok(SignedCheckpoint {
            checkpoint,
            note,
            verification,
        })
    }
}

fn check_origin_is_key_name(origin: &str, key_name: &KeyName) -> Result<(), CheckpointError> {
    if key_name.as_str() != origin {
        return Err(CheckpointError::OriginMismatch {
            origin: origin.to_owned(),
            key_name: key_name.to_string(),
        });
    }
    Ok(())
}
