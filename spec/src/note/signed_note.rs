//! The note itself: its grammar (text, the last blank line, signature lines; strict and bounded)
//! and its verification against a set of known keys, by signed-note's rules. Parsing never
//! verifies and verifying never parses, so a caller can read a note, pick keys by what it
//! names, and verify later, or in a batch.

use super::{
    parse_signature_lines, Ed25519Checker, Ed25519Signer, KeyId, KeyName, NoteError, NoteSignature,
    SingleEd25519, MAX_NOTE_SIZE, MAX_SIGNATURES,
};

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
/// function. [`super::Ed25519Verifier`] checks plain Ed25519 note signatures;
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
    /// the answer is provisional until the batch verifies (see [`super::Ed25519Batch`]).
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
