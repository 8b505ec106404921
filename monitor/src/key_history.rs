//! The followed log's keys across rotations: the pinned key of the configuration, and the key
//! history (spec/docs/key-history.md) the log serves at `GET /key-history`, verified from the
//! pinned key and only ever extended. A checkpoint opens when a key valid at its size signed it;
//! a signature by a key revoked at or before its size is a compromise, which the follower
//! raises as a `revoked-key` incident, kept in the state until acknowledged.

use cairn_spec::checkpoint::{Checkpoint, SignedCheckpoint};
use cairn_spec::evidence::Evidence;
use cairn_spec::key_history::{KeyHistory, KeyStatus, MAX_HISTORY_BYTES};
use cairn_spec::note::{Ed25519Verifier, NoteVerifier};

/// The path of the history under the log's read API.
pub const KEY_HISTORY_PATH: &str = "key-history";

/// The most bytes read of a history.
pub const MAX_KEY_HISTORY_BYTES: usize = MAX_HISTORY_BYTES;

/// A signature on a checkpoint by a key revoked at or before its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compromise {
    /// The revoked key.
    pub vkey: String,
    /// The size it is revoked from.
    pub revoked_from: u64,
    /// The size of the checkpoint it signed.
    pub size: u64,
}

impl Compromise {
    /// What the alert says.
    pub fn detail(&self) -> String {
        format!(
            "a checkpoint of size {} is signed by {}, revoked from size {}: the key is compromised",
            self.size, self.vkey, self.revoked_from
        )
    }

    /// What the incident says: one incident per revoked key, whichever checkpoint showed it
    /// first (that checkpoint is in the evidence).
    pub fn incident_detail(&self) -> String {
        format!(
            "{} signed a checkpoint at or above size {}, from which the log's key history revoked \
             it: the key is compromised",
            self.vkey, self.revoked_from
        )
    }
}

/// The keys the monitor accepts for one log.
#[derive(Debug, Clone)]
pub struct LogKeys {
    history: KeyHistory,
    verifiers: Vec<Ed25519Verifier>,
}

impl LogKeys {
    /// The pinned key alone (no history fetched yet).
    pub fn pinned(key: &Ed25519Verifier) -> Result<LogKeys, String> {
        let history = KeyHistory::new(&key.to_vkey()).map_err(|error| error.to_string())?;
        Ok(LogKeys::of(history))
    }

    fn of(history: KeyHistory) -> LogKeys {
        let verifiers = history
            .keys()
            .iter()
            .map(|key| Ed25519Verifier::new(key.key_name.clone(), key.public_key))
            .collect();
        LogKeys { history, verifiers }
    }

    /// The verified history.
    pub fn history(&self) -> &KeyHistory {
        &self.history
    }

    /// `evidence` about this log's checkpoints, carrying the verified history once the log has
    /// rotated its key, so that checkpoints signed by its newer keys verify offline from the
    /// pinned key (`cairn-monitor verify-evidence --log-key`); unchanged before any rotation.
    pub fn attach_history(&self, evidence: Evidence) -> Evidence {
        if self.history.is_empty() {
            evidence
        } else {
            evidence.with_key_history(&self.history.to_bytes())
        }
    }

    /// Takes a history fetched from the log: it must verify from the pinned key and extend the
    /// one held (a log that rewrote its history is refused). Returns whether it grew.
    pub fn update(&mut self, bytes: &[u8]) -> Result<bool, String> {
        let pinned = self
            .history
            .keys()
            .first()
            .map(|key| key.vkey.clone())
            .ok_or("the history has no pinned key")?;
        let fetched = KeyHistory::verify(&pinned, bytes).map_err(|error| error.to_string())?;
        if !fetched.extends(&self.history) {
            return Err(format!(
                "the log's key history ({} statements) does not extend the {} verified before",
                fetched.len(),
                self.history.len()
            ));
        }
        let grew = fetched.len() > self.history.len();
        if grew {
            *self = LogKeys::of(fetched);
        }
        Ok(grew)
    }

    /// Opens a checkpoint: every signature by a key of the history is verified, and one by a
    /// key valid at its size must be among them.
    pub fn open(&self, note: &[u8]) -> Result<SignedCheckpoint, String> {
        let origin = self.history.subject().as_str();
        let verifiers: Vec<&dyn NoteVerifier> = self
            .verifiers
            .iter()
            .map(|key| key as &dyn NoteVerifier)
            .collect();
        let signed = Checkpoint::open_with_origin(note, origin, &verifiers)
            .map_err(|error| error.to_string())?;
        let size = signed.checkpoint.size;
        let valid = self.verifiers.iter().any(|key| {
            signed
                .verification
                .is_signed_by(key.key_name(), key.key_id())
                && self.status(key, size) == Some(KeyStatus::Valid)
        });
        if !valid {
            return Err(format!(
                "no key of the log's history valid at size {size} signed it"
            ));
        }
        Ok(signed)
    }

    /// The signatures of `note` (a checkpoint, opened or not) by keys revoked at or before its
    /// size. Signatures that do not verify are not counted (they are no one's).
    pub fn compromises(&self, note: &[u8]) -> Vec<Compromise> {
        let origin = self.history.subject().as_str();
        let mut found = Vec::new();
        for key in &self.verifiers {
            let Some(range) = self.history.key(key.key_name(), key.key_id()) else {
                continue;
            };
            let Some(revoked_from) = range.revoked_from else {
                continue;
            };
            let Ok(signed) =
                Checkpoint::open_with_origin(note, origin, &[key as &dyn NoteVerifier])
            else {
                continue;
            };
            if signed.checkpoint.size >= revoked_from {
                found.push(Compromise {
                    vkey: range.vkey.clone(),
                    revoked_from,
                    size: signed.checkpoint.size,
                });
            }
        }
        found
    }

    fn status(&self, key: &Ed25519Verifier, size: u64) -> Option<KeyStatus> {
        self.history
            .key(key.key_name(), key.key_id())
            .map(|range| range.status(size))
    }
}
