//! `cairn.export/v1`: a bundle of audit events with everything needed to check them offline.
//!
//! An export holds, for a set of events of one log, each event's leaf (the canonical event
//! with `payload_hash`), its payload if the log still holds it (canonical JSON), its index and
//! its RFC 9162 inclusion proof, all against one checkpoint that the bundle carries (the log's
//! signature, the witnesses' cosignatures) with the RFC 3161 timestamp tokens over that
//! checkpoint. [`verify_export`] checks every byte of it: each leaf is a valid canonical event
//! leaf, each payload is canonical and hashes to its leaf's `payload_hash`, each inclusion proof
//! leads to the checkpoint's root, and the checkpoint is signed as the trust given requires.
//! Together, one entry is exactly a `cairn.receipt/v1` (spec/docs/receipt.md) whose checkpoint
//! and timestamps are shared. The format is documented in `spec/docs/export.md`.
//!
//! `cairn.export/v2` (`v2.rs`) also carries events with schema 2 leaves (personal fields only
//! as commitments): per field, its opening or the mark that it was erased, so that
//! verification says per event "verified with contents" or "committed, contents erased".
//! [`AnyExport`] reads either format; what both share (the checkpoint and the inclusion proofs
//! against the trust given) is in `proofs.rs`. A v2 bundle may also carry a completeness
//! proof (`complete.rs`, spec/docs/completeness.md §3.3): that its events are every event of
//! one value in a window of the log.

mod complete;
mod events;
mod parallel;
mod parse;
mod proofs;
mod shared_path;
mod v2;

pub use complete::VerifiedCompleteness;
pub use v2::{
    verify_export_v2, AnyExport, EventContents, ExportBundleV2, ExportOpening, ExportOpenings,
    ExportedEventV2, VerifiedEvent, VerifiedExportV2, EXPORT_FORMAT_V2,
};

use crate::event::EventLeaf;
use crate::hash::Hash;
use crate::jcs;
use crate::merkle::MAX_INCLUSION_PROOF_LEN;
use crate::note::Ed25519Verifier;
use crate::policy::Policy;
use crate::receipt::{
    self, Receipt, ReceiptError, ReceiptTimestamp, MAX_CHECKPOINT_BYTES, MAX_TIMESTAMPS,
    RECEIPT_FORMAT,
};
use parallel::check_all;
use proofs::{verify_proofs, ProvenLeaf};
use sha2::{Digest as _, Sha256};

/// The `format` of an export bundle.
pub const EXPORT_FORMAT: &str = "cairn.export/v1";
/// Most bytes of an export's JSON.
pub const MAX_EXPORT_BYTES: usize = 256 << 20;
/// Most events in one export.
pub const MAX_EXPORT_EVENTS: usize = 100_000;

/// An export bundle, as exchanged in JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBundle {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// The checkpoint note every inclusion proof leads to.
    pub checkpoint: String,
    /// RFC 3161 timestamp tokens over the checkpoint.
    #[serde(default)]
    pub timestamps: Vec<ReceiptTimestamp>,
    /// The events, in increasing index order.
    pub events: Vec<ExportedEvent>,
}

/// One event of an export.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEvent {
    /// Its index in the log.
    pub index: u64,
    /// The leaf: the event's canonical JSON with `payload_hash` (base64).
    #[serde(with = "receipt::base64_bytes")]
    pub leaf: Vec<u8>,
    /// The canonical payload, if still held (base64).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "receipt::optional_base64"
    )]
    pub payload: Option<Vec<u8>>,
    /// The inclusion proof of the leaf in the checkpoint's tree.
    pub inclusion_proof: Vec<Hash>,
}

/// Whom a verifier of an export trusts.
#[derive(Debug, Clone, Copy)]
pub enum ExportTrust<'a> {
    /// A full policy: the log's key, the witness quorum, the trusted TSAs (every timestamp is
    /// checked).
    Policy(&'a Policy),
    /// Only the log's key: cosignatures and timestamps are not checked (and counted as such).
    LogKey(&'a Ed25519Verifier),
}

/// What a verified export proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedExport {
    /// The log's origin.
    pub origin: String,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// The checkpoint's root.
    pub root: Hash,
    /// Events whose leaves and proofs verified.
    pub events: usize,
    /// Of them, those whose payload was present and matched.
    pub payloads: usize,
    /// Timestamp tokens present but not checked (trust by log key only).
    pub unchecked_timestamps: usize,
}

/// Why an export was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// Not valid JSON of the bundle's format.
    #[error("export is not valid {EXPORT_FORMAT} or {EXPORT_FORMAT_V2} JSON: {0}")]
    Json(String),
    /// The `format` is not the one expected.
    #[error("export format is {found:?}, expected {expected}")]
    Format {
        /// What was found.
        found: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A part larger than its limit.
    #[error("export {what} has {found}, more than the limit of {limit}")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its size or count.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// Indices not strictly increasing.
    #[error("event {position}: index {index} does not follow index {previous}")]
    OutOfOrder {
        /// Position in the bundle.
        position: usize,
        /// Its index.
        index: u64,
        /// The index before it.
        previous: u64,
    },
    /// A leaf that is not an event leaf, or a payload that does not match it.
    #[error("event {position} (index {index}): {reason}")]
    Event {
        /// Position in the bundle.
        position: usize,
        /// Its index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint does not open with the log's key.
    #[error("export checkpoint: {0}")]
    Checkpoint(String),
    /// The completeness proof does not verify: an event left out, added, or not of the value.
    #[error("export completeness: {0}")]
    Completeness(String),
    /// A leaf's proof (or, with a policy, the checkpoint's signatures or timestamps).
    #[error("event {position} (index {index}): {source}")]
    Proof {
        /// Position in the bundle.
        position: usize,
        /// Its index.
        index: u64,
        /// What failed.
        source: Box<ReceiptError>,
    },
}

/// Refuses an export's JSON of more than [`MAX_EXPORT_BYTES`] before it is parsed (both
/// versions).
fn check_json_size(json: &[u8]) -> Result<(), ExportError> {
    if json.len() > MAX_EXPORT_BYTES {
        return Err(ExportError::TooLarge {
            what: "JSON bytes",
            found: json.len(),
            limit: MAX_EXPORT_BYTES,
        });
    }
    Ok(())
}

impl ExportBundle {
    /// Reads an export from JSON, strictly (unknown fields refused, sizes bounded).
    pub fn from_json(json: &[u8]) -> Result<ExportBundle, ExportError> {
        check_json_size(json)?;
        let bundle: ExportBundle =
            serde_json::from_slice(json).map_err(|error| ExportError::Json(error.to_string()))?;
        bundle.check_shape()?;
        Ok(bundle)
    }

    /// The JSON form (compact: every byte is significant).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an export always serialises")
    }

    fn check_shape(&self) -> Result<(), ExportError> {
        if self.format != EXPORT_FORMAT {
            return Err(ExportError::Format {
                found: self.format.chars().take(64).collect(),
                expected: "\"cairn.export/v1\"",
            });
        }
        check_sizes(
            self.events.len(),
            self.timestamps.len(),
            &self.checkpoint,
            self.events.iter().map(|event| event.inclusion_proof.len()),
        )
    }

    /// The receipt of the event at `position`, as a `cairn.receipt/v1`.
    pub fn receipt(&self, position: usize) -> Option<Receipt> {
        let event = self.events.get(position)?;
        Some(Receipt {
            format: RECEIPT_FORMAT.to_string(),
            index: event.index,
            leaf_hash: Hash::of_leaf(&event.leaf),
            leaf: Some(event.leaf.clone()),
            inclusion_proof: event.inclusion_proof.clone(),
            checkpoint: self.checkpoint.clone(),
            timestamps: self.timestamps.clone(),
        })
    }
}

/// The limits every bundle keeps, of either format.
fn check_sizes(
    events: usize,
    timestamps: usize,
    checkpoint: &str,
    proof_lengths: impl Iterator<Item = usize>,
) -> Result<(), ExportError> {
    for (what, found, limit) in [
        ("events", events, MAX_EXPORT_EVENTS),
        ("timestamps", timestamps, MAX_TIMESTAMPS),
        ("checkpoint bytes", checkpoint.len(), MAX_CHECKPOINT_BYTES),
    ] {
        if found > limit {
            return Err(ExportError::TooLarge { what, found, limit });
        }
    }
    for found in proof_lengths {
        if found > MAX_INCLUSION_PROOF_LEN {
            return Err(ExportError::TooLarge {
                what: "inclusion proof hashes",
                found,
                limit: MAX_INCLUSION_PROOF_LEN,
            });
        }
    }
    Ok(())
}

/// Verifies every event, payload and proof of `bundle`, and its checkpoint, against `trust`.
pub fn verify_export(
    bundle: &ExportBundle,
    trust: ExportTrust<'_>,
) -> Result<VerifiedExport, ExportError> {
    bundle.check_shape()?;
    check_order(bundle.events.iter().map(|event| event.index))?;
    // Each event on its own, on every core; the first that fails is the error.
    let with_payload = check_all(&bundle.events, |position, event| {
        let bad = |reason: String| ExportError::Event {
            position,
            index: event.index,
            reason,
        };
        let leaf = EventLeaf::parse(&event.leaf).map_err(|e| bad(format!("leaf: {e}")))?;
        if let Some(payload) = &event.payload {
            check_payload(&leaf, payload).map_err(bad)?;
        }
        Ok(event.payload.is_some())
    })?;
    let payloads = with_payload.into_iter().filter(|&present| present).count();
    let leaves: Vec<ProvenLeaf<'_>> = bundle
        .events
        .iter()
        .map(|event| ProvenLeaf {
            index: event.index,
            leaf: &event.leaf,
            inclusion_proof: &event.inclusion_proof,
        })
        .collect();
    let proven = verify_proofs(&bundle.checkpoint, &bundle.timestamps, &leaves, trust)?;
    Ok(VerifiedExport {
        origin: proven.origin,
        tree_size: proven.tree_size,
        root: proven.root,
        events: bundle.events.len(),
        payloads,
        unchecked_timestamps: proven.unchecked_timestamps,
    })
}

/// Indices strictly increasing through a bundle.
fn check_order(indices: impl Iterator<Item = u64>) -> Result<(), ExportError> {
    let mut previous: Option<u64> = None;
    for (position, index) in indices.enumerate() {
        if let Some(previous) = previous {
            if index <= previous {
                return Err(ExportError::OutOfOrder {
                    position,
                    index,
                    previous,
                });
            }
        }
        previous = Some(index);
    }
    Ok(())
}

/// A schema 1 leaf's payload: canonical byte for byte, and hashing to its `payload_hash`.
fn check_payload(leaf: &EventLeaf, payload: &[u8]) -> Result<(), String> {
    let canonical = jcs::canonicalize_bytes(payload, crate::event::event_limits())
        .map_err(|e| format!("payload: {e}"))?;
    if canonical.as_bytes() != payload {
        return Err("payload is not in RFC 8785 canonical form".into());
    }
    let Some(expected) = leaf.payload_hash else {
        return Err("a payload is given but the leaf has no payload_hash".into());
    };
    // The payload is its own canonical form (checked above), so it is hashed as it is:
    // `EventLeaf::payload_matches` would parse and write it out again for the same bytes.
    if <[u8; 32]>::from(Sha256::digest(payload)) != expected {
        return Err("the payload does not hash to payload_hash".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_complete;
#[cfg(test)]
mod tests_v2;
