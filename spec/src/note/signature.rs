//! Signature lines: `— <key name> base64(key ID || signature)`, one per signature, after a
//! note's last blank line, and alone in a witness's add-checkpoint response. The line says
//! nothing about what kind of signature it carries; the key it names does.

use std::fmt;

use super::{
    decode_base64, encode_base64, excerpt, KeyId, KeyName, NoteError, SignatureLineError,
    MAX_SIGNATURES, SIGNATURE_LINE_PREFIX,
};

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

    pub(super) fn same_key(&self, key_name: &KeyName, key_id: KeyId) -> bool {
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
