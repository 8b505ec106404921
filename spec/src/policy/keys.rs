//! A policy's keys across rotations: a log's pinned key and, once its key history
//! (spec/docs/key-history.md) is verified and attached, every key the history introduced, each
//! valid for its range of tree sizes; a witness's keys (its `witness` line's and its
//! `witness-key` lines').

use super::{Policy, PolicyLog, PolicyWitness};
use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::cosignature::CosignatureVerifier;
use crate::key_history::{KeyHistory, KeyHistoryError, KeyStatus};
use crate::note::{Ed25519Verifier, NoteVerifier, Verification};

impl PolicyLog {
    /// Every key of the log: the pinned one, and the history's others. A signature by any of
    /// them is verified (a bad one refuses the note), whatever the size.
    pub fn all_keys(&self) -> Vec<Ed25519Verifier> {
        match &self.history {
            None => vec![self.key.clone()],
            Some(history) => history
                .keys()
                .iter()
                .map(|key| Ed25519Verifier::new(key.key_name.clone(), key.public_key))
                .collect(),
        }
    }

    /// What the log's history says about `key` signing a tree of `size`; the pinned key
    /// without a history is valid at every size, any other key at none.
    pub fn key_status(&self, key: &Ed25519Verifier, size: u64) -> Option<KeyStatus> {
        match &self.history {
            None => (key == &self.key).then_some(KeyStatus::Valid),
            Some(history) => history
                .key(key.key_name(), key.key_id())
                .map(|range| range.status(size)),
        }
    }

    /// Whether a log key valid at `size` made one of `verification`'s verified signatures.
    pub fn signed_at(&self, verification: &Verification, size: u64) -> bool {
        self.all_keys().iter().any(|key| {
            verification.is_signed_by(key.key_name(), key.key_id())
                && self.key_status(key, size) == Some(KeyStatus::Valid)
        })
    }

    /// The verified key history attached to this log, if any.
    pub fn history(&self) -> Option<&KeyHistory> {
        self.history.as_ref()
    }
}

impl PolicyWitness {
    /// The witness's cosignature keys: its `witness` line's, then its `witness-key` lines'.
    pub fn keys(&self) -> impl Iterator<Item = &CosignatureVerifier> {
        std::iter::once(&self.key).chain(self.extra_keys.iter())
    }
}

impl Policy {
    /// Verifies the key history `bytes` of the log whose origin is `origin` from the key the
    /// policy pins for it, and attaches it: from then on the policy accepts, for each tree
    /// size, every key the history makes valid there. A history that does not verify is refused
    /// and the policy is unchanged; a history that does not extend one attached before (a
    /// rewritten history) is refused too.
    pub fn attach_key_history(
        &mut self,
        origin: &str,
        bytes: &[u8],
    ) -> Result<(), KeyHistoryError> {
        let log = self
            .logs
            .iter_mut()
            .find(|log| log.key.key_name().as_str() == origin)
            .ok_or_else(|| {
                KeyHistoryError::PinnedKey(format!("the policy trusts no log {origin:?}"))
            })?;
        let history = KeyHistory::verify(&log.key.to_vkey(), bytes)?;
        if let Some(older) = &log.history {
            if !history.extends(older) {
                return Err(KeyHistoryError::Chain {
                    statement: 0,
                    reason: "the history does not extend the one attached before".into(),
                });
            }
        }
        log.history = Some(history);
        Ok(())
    }

    /// Opens a checkpoint of a log the policy trusts: every signature by a key of that log is
    /// verified, and one by a key valid at the checkpoint's size must be among them.
    pub fn open_checkpoint(&self, note: &[u8]) -> Result<SignedCheckpoint, String> {
        let mut last_error = String::from("the policy trusts no log");
        for log in &self.logs {
            let keys = log.all_keys();
            let verifiers: Vec<&dyn NoteVerifier> =
                keys.iter().map(|key| key as &dyn NoteVerifier).collect();
            match Checkpoint::open_with_origin(note, log.key.key_name().as_str(), &verifiers) {
                Ok(opened) if log.signed_at(&opened.verification, opened.checkpoint.size) => {
                    return Ok(opened)
                }
                Ok(opened) => {
                    last_error = format!(
                        "no key of {} valid at size {} signed it",
                        log.key.key_name().as_str(),
                        opened.checkpoint.size
                    )
                }
                Err(error) => last_error = error.to_string(),
            }
        }
        Err(last_error)
    }
}
