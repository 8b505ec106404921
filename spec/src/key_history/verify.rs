//! The verifier: from the pinned first key, each statement in turn is checked (framing, text,
//! chain, signatures, the rules of its action) and applied to the keys' ranges.

use sha2::{Digest as _, Sha256};

use super::text::split_statements;
use super::{
    Action, KeyHistory, KeyHistoryError, KeyRange, Statement, MAX_STATEMENTS, MAX_STATEMENT_BYTES,
    MAX_STATEMENT_SIGNATURES,
};
use crate::cosignature::SIGNATURE_TYPE_COSIGNATURE_V1;
use crate::hash::Hash;
use crate::note::{Ed25519Verifier, Note, NoteVerifier, Vkey, SIGNATURE_TYPE_ED25519};

impl KeyHistory {
    /// The history with no statement yet: the pinned first key alone, valid from size 0. The
    /// key is a note key (type 0x01, a log's) or a cosignature key (type 0x04, a witness's).
    pub fn new(first_vkey: &str) -> Result<KeyHistory, KeyHistoryError> {
        let first = read_vkey(first_vkey, None).map_err(KeyHistoryError::PinnedKey)?;
        Ok(KeyHistory {
            subject: first.key_name.clone(),
            signature_type: first_signature_type(first_vkey)?,
            keys: vec![KeyRange { from: 0, ..first }],
            statements: Vec::new(),
            head: Hash([0; 32]),
        })
    }

    /// Verifies a whole history (its canonical bytes, possibly empty) from the pinned first key.
    pub fn verify(first_vkey: &str, history: &[u8]) -> Result<KeyHistory, KeyHistoryError> {
        let mut verified = KeyHistory::new(first_vkey)?;
        for statement in split_statements(history)? {
            verified.append(statement)?;
        }
        Ok(verified)
    }

    /// Verifies one more statement (its note bytes) against the history so far and, if it
    /// holds, appends it. On an error the history is unchanged.
    pub fn append(&mut self, note_bytes: &[u8]) -> Result<(), KeyHistoryError> {
        let position = self.statements.len();
        if position >= MAX_STATEMENTS {
            return Err(KeyHistoryError::TooManyStatements);
        }
        let framing = |reason: String| KeyHistoryError::Framing {
            statement: position,
            reason,
        };
        if note_bytes.len() > MAX_STATEMENT_BYTES {
            return Err(framing(format!(
                "the statement is {} bytes, more than {MAX_STATEMENT_BYTES}",
                note_bytes.len()
            )));
        }
        let note = Note::parse(note_bytes).map_err(|error| framing(error.to_string()))?;
        if note.signatures().len() > MAX_STATEMENT_SIGNATURES {
            return Err(framing(format!(
                "more than {MAX_STATEMENT_SIGNATURES} signature lines"
            )));
        }
        let canonical = note
            .to_bytes()
            .map_err(|error| framing(error.to_string()))?;
        if canonical != note_bytes {
            return Err(framing("the note is not in its canonical form".into()));
        }
        let statement = Statement::parse(note.text(), position)?;
        self.check_chain(&statement, position)?;
        let signers = self.signers(&note, &statement, position)?;
        let updated = self.apply(&statement, &signers, position)?;
        self.keys = updated;
        self.head = Hash(Sha256::digest(note_bytes).into());
        self.statements.push(note_bytes.to_vec());
        Ok(())
    }

    fn check_chain(&self, statement: &Statement, position: usize) -> Result<(), KeyHistoryError> {
        let chain = |reason: String| KeyHistoryError::Chain {
            statement: position,
            reason,
        };
        if statement.subject != self.subject {
            return Err(chain(format!(
                "the subject is {:?}, the history's is {:?}",
                statement.subject.as_str(),
                self.subject.as_str()
            )));
        }
        if statement.sequence != position as u64 {
            return Err(chain(format!(
                "sequence number {} where {position} was expected",
                statement.sequence
            )));
        }
        if statement.previous != self.head {
            return Err(chain(format!(
                "the previous hash {} is not the history's head {}",
                statement.previous.to_base64(),
                self.head.to_base64()
            )));
        }
        Ok(())
    }

    /// Verifies every signature line: each must be by a key of the history (or by the key the
    /// statement introduces) and hold. Returns the positions in `keys` (or `keys.len()` for the
    /// new key) of the keys that signed.
    fn signers(
        &self,
        note: &Note,
        statement: &Statement,
        position: usize,
    ) -> Result<Vec<usize>, KeyHistoryError> {
        let signature_error = |reason: String| KeyHistoryError::Signature {
            statement: position,
            reason,
        };
        let mut candidates: Vec<KeyRange> = self.keys.clone();
        if let Action::Introduce { vkey, from } = &statement.action {
            let new = read_vkey(vkey, Some(self.signature_type)).map_err(|reason| {
                KeyHistoryError::Rule {
                    statement: position,
                    reason: format!("the introduced key: {reason}"),
                }
            })?;
            if self.keys.iter().any(|key| key.public_key == new.public_key) {
                return Err(KeyHistoryError::Rule {
                    statement: position,
                    reason: format!("{} is already in the history", new.vkey),
                });
            }
            candidates.push(KeyRange { from: *from, ..new });
        }
        let verifiers: Vec<Ed25519Verifier> = candidates.iter().map(statement_verifier).collect();
        let known: Vec<&dyn NoteVerifier> = verifiers
            .iter()
            .map(|verifier| verifier as &dyn NoteVerifier)
            .collect();
        let verification = note
            .verify(&known)
            .map_err(|error| signature_error(error.to_string()))?;
        if let Some(unknown) = verification.unverified.first() {
            return Err(signature_error(format!(
                "a signature by {}+{}, which is no key of the history",
                unknown.key_name.as_str(),
                unknown.key_id
            )));
        }
        let signers = candidates
            .iter()
            .enumerate()
            .filter(|(_, key)| verification.is_signed_by(&key.key_name, key.statement_key_id()))
            .map(|(index, _)| index)
            .collect::<Vec<_>>();
        for &index in &signers {
            if index < self.keys.len() && !self.keys[index].is_current() {
                return Err(signature_error(format!(
                    "signed by {}, which is retired or revoked",
                    self.keys[index].vkey
                )));
            }
        }
        Ok(signers)
    }

    /// The keys' ranges after `statement`, which `signers` signed, if its rules hold.
    fn apply(
        &self,
        statement: &Statement,
        signers: &[usize],
        position: usize,
    ) -> Result<Vec<KeyRange>, KeyHistoryError> {
        let rule = |reason: String| KeyHistoryError::Rule {
            statement: position,
            reason,
        };
        let mut keys = self.keys.clone();
        let target = || {
            let read = read_vkey(statement.action.vkey(), Some(self.signature_type))
                .map_err(|reason| rule(format!("the key: {reason}")))?;
            keys.iter()
                .position(|key| {
                    key.public_key == read.public_key
                        && key.key_id == read.key_id
                        && key.key_name == read.key_name
                })
                .ok_or_else(|| rule(format!("{} is no key of the history", read.vkey)))
        };
        match &statement.action {
            Action::Introduce { vkey, from } => {
                let new = read_vkey(vkey, Some(self.signature_type))
                    .map_err(|reason| rule(format!("the introduced key: {reason}")))?;
                if new.key_name != self.subject {
                    return Err(rule(format!(
                        "the introduced key is named {:?}, the history's keys {:?}",
                        new.key_name.as_str(),
                        self.subject.as_str()
                    )));
                }
                if keys.iter().any(|key| key.public_key == new.public_key) {
                    return Err(rule(format!("{} is already in the history", new.vkey)));
                }
                let new_index = keys.len();
                if !signers.contains(&new_index) {
                    return Err(rule(
                        "an introduced key must sign its own introduction".into(),
                    ));
                }
                if !signers.iter().any(|&index| index < new_index) {
                    return Err(rule(
                        "an introduction must be endorsed by a current key of the history".into(),
                    ));
                }
                keys.push(KeyRange { from: *from, ..new });
            }
            Action::Retire { last, .. } => {
                let index = target()?;
                if !keys[index].is_current() {
                    return Err(rule(format!(
                        "{} is already retired or revoked",
                        keys[index].vkey
                    )));
                }
                if *last < keys[index].from {
                    return Err(rule(format!(
                        "retiring after size {last}, before the key's first size {}",
                        keys[index].from
                    )));
                }
                let covered = keys.iter().enumerate().any(|(other, key)| {
                    other != index
                        && key.is_current()
                        && last.checked_add(1).is_some_and(|next| key.from <= next)
                });
                if !covered {
                    return Err(rule(format!(
                        "no other current key signs size {}: introduce one first",
                        last.saturating_add(1)
                    )));
                }
                if signers.is_empty() {
                    return Err(rule("a retirement must be signed by a current key".into()));
                }
                keys[index].last = Some(*last);
            }
            Action::Revoke { from, .. } => {
                let index = target()?;
                if keys[index].revoked_from.is_some() {
                    return Err(rule(format!("{} is already revoked", keys[index].vkey)));
                }
                if !signers.iter().any(|&signer| signer != index) {
                    return Err(rule(
                        "a revocation must be signed by a current key other than the revoked one"
                            .into(),
                    ));
                }
                let remaining = keys
                    .iter()
                    .enumerate()
                    .any(|(other, key)| other != index && key.is_current());
                if !remaining {
                    return Err(rule("revoking it would leave no current key".into()));
                }
                keys[index].revoked_from = Some(*from);
            }
        }
        Ok(keys)
    }
}

/// The type-0x01 verifier of a key's statement signatures: its name and public key.
fn statement_verifier(key: &KeyRange) -> Ed25519Verifier {
    Ed25519Verifier::new(key.key_name.clone(), key.public_key)
}

fn first_signature_type(vkey: &str) -> Result<u8, KeyHistoryError> {
    Vkey::parse(vkey)
        .map(|parsed| parsed.signature_type)
        .map_err(|error| KeyHistoryError::PinnedKey(error.to_string()))
}

/// Reads a vkey of type 0x01 or 0x04 (or exactly `expected_type`) whose key ID is the
/// recommended one and whose public key is a valid Ed25519 point.
fn read_vkey(vkey: &str, expected_type: Option<u8>) -> Result<KeyRange, String> {
    let parsed = Vkey::parse(vkey).map_err(|error| error.to_string())?;
    parsed.check_key_id().map_err(|error| error.to_string())?;
    let allowed = [SIGNATURE_TYPE_ED25519, SIGNATURE_TYPE_COSIGNATURE_V1];
    match expected_type {
        Some(expected) if parsed.signature_type != expected => {
            return Err(format!(
                "signature type 0x{:02x}, the history's keys have 0x{expected:02x}",
                parsed.signature_type
            ))
        }
        None if !allowed.contains(&parsed.signature_type) => {
            return Err(format!(
            "signature type 0x{:02x}: a history holds note keys (0x01) or cosignature keys (0x04)",
            parsed.signature_type
        ))
        }
        _ => {}
    }
    let public_key: [u8; 32] = parsed
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| format!("a {}-byte public key", parsed.public_key.len()))?;
    let public_key = ed25519_dalek::VerifyingKey::from_bytes(&public_key)
        .map_err(|_| "the public key is not an Ed25519 point".to_string())?;
    Ok(KeyRange {
        vkey: vkey.to_owned(),
        key_id: parsed.key_id,
        key_name: parsed.key_name,
        public_key,
        from: 0,
        last: None,
        revoked_from: None,
    })
}
