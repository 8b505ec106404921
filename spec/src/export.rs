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

use crate::checkpoint::Checkpoint;
use crate::event::EventLeaf;
use crate::hash::Hash;
use crate::jcs;
use crate::merkle::{self, MAX_INCLUSION_PROOF_LEN};
use crate::note::Ed25519Verifier;
use crate::policy::Policy;
use crate::receipt::{
    self, Receipt, ReceiptError, ReceiptTimestamp, ReceiptVerifier, MAX_CHECKPOINT_BYTES,
    MAX_TIMESTAMPS, RECEIPT_FORMAT,
};

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
    /// Not valid `cairn.export/v1` JSON.
    #[error("export is not valid {EXPORT_FORMAT} JSON: {0}")]
    Json(String),
    /// The `format` is not [`EXPORT_FORMAT`].
    #[error("export format is {found:?}, expected {EXPORT_FORMAT:?}")]
    Format {
        /// What was found.
        found: String,
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

impl ExportBundle {
    /// Reads an export from JSON, strictly (unknown fields refused, sizes bounded).
    pub fn from_json(json: &[u8]) -> Result<ExportBundle, ExportError> {
        if json.len() > MAX_EXPORT_BYTES {
            return Err(ExportError::TooLarge {
                what: "JSON bytes",
                found: json.len(),
                limit: MAX_EXPORT_BYTES,
            });
        }
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
            });
        }
        for (what, found, limit) in [
            ("events", self.events.len(), MAX_EXPORT_EVENTS),
            ("timestamps", self.timestamps.len(), MAX_TIMESTAMPS),
            (
                "checkpoint bytes",
                self.checkpoint.len(),
                MAX_CHECKPOINT_BYTES,
            ),
        ] {
            if found > limit {
                return Err(ExportError::TooLarge { what, found, limit });
            }
        }
        for event in &self.events {
            if event.inclusion_proof.len() > MAX_INCLUSION_PROOF_LEN {
                return Err(ExportError::TooLarge {
                    what: "inclusion proof hashes",
                    found: event.inclusion_proof.len(),
                    limit: MAX_INCLUSION_PROOF_LEN,
                });
            }
        }
        Ok(())
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

/// Verifies every event, payload and proof of `bundle`, and its checkpoint, against `trust`.
pub fn verify_export(
    bundle: &ExportBundle,
    trust: ExportTrust<'_>,
) -> Result<VerifiedExport, ExportError> {
    bundle.check_shape()?;
    let mut payloads = 0;
    let mut previous: Option<u64> = None;
    for (position, event) in bundle.events.iter().enumerate() {
        if let Some(previous) = previous {
            if event.index <= previous {
                return Err(ExportError::OutOfOrder {
                    position,
                    index: event.index,
                    previous,
                });
            }
        }
        previous = Some(event.index);
        let bad = |reason: String| ExportError::Event {
            position,
            index: event.index,
            reason,
        };
        let leaf = EventLeaf::parse(&event.leaf).map_err(|e| bad(format!("leaf: {e}")))?;
        if let Some(payload) = &event.payload {
            let canonical = jcs::canonicalize_bytes(payload, crate::event::event_limits())
                .map_err(|e| bad(format!("payload: {e}")))?;
            if canonical.as_bytes() != payload.as_slice() {
                return Err(bad("payload is not in RFC 8785 canonical form".into()));
            }
            if leaf.payload_hash.is_none() {
                return Err(bad(
                    "a payload is given but the leaf has no payload_hash".into()
                ));
            }
            if !leaf
                .payload_matches(payload)
                .map_err(|e| bad(format!("payload: {e}")))?
            {
                return Err(bad("the payload does not hash to payload_hash".into()));
            }
            payloads += 1;
        }
    }
    let (origin, tree_size, root, unchecked_timestamps) = match trust {
        ExportTrust::Policy(policy) => {
            let mut verifier = ReceiptVerifier::new(policy);
            let mut last = None;
            for position in 0..bundle.events.len() {
                let receipt = bundle
                    .receipt(position)
                    .expect("position is within the events");
                let verified = verifier
                    .verify(&receipt)
                    .map_err(|source| ExportError::Proof {
                        position,
                        index: receipt.index,
                        source: Box::new(source),
                    })?;
                last = Some((verified.origin, verified.tree_size, verified.root));
            }
            let (origin, tree_size, root) = match last {
                Some(found) => found,
                None => {
                    // No events: the checkpoint must still open with a key of the policy.
                    let opened = open_with_policy(&bundle.checkpoint, policy)?;
                    (opened.origin, opened.size, opened.root)
                }
            };
            (origin, tree_size, root, 0)
        }
        ExportTrust::LogKey(key) => {
            let opened = Checkpoint::open(bundle.checkpoint.as_bytes(), key)
                .map_err(|e| ExportError::Checkpoint(e.to_string()))?
                .checkpoint;
            for (position, event) in bundle.events.iter().enumerate() {
                merkle::verify_inclusion(
                    event.index,
                    opened.size,
                    &Hash::of_leaf(&event.leaf),
                    &event.inclusion_proof,
                    &opened.root,
                )
                .map_err(|source| ExportError::Proof {
                    position,
                    index: event.index,
                    source: Box::new(ReceiptError::Inclusion {
                        index: event.index,
                        tree_size: opened.size,
                        source,
                    }),
                })?;
            }
            (
                opened.origin,
                opened.size,
                opened.root,
                bundle.timestamps.len(),
            )
        }
    };
    Ok(VerifiedExport {
        origin,
        tree_size,
        root,
        events: bundle.events.len(),
        payloads,
        unchecked_timestamps,
    })
}

fn open_with_policy(note: &str, policy: &Policy) -> Result<Checkpoint, ExportError> {
    let mut last_error = String::from("the policy trusts no log");
    for log in &policy.logs {
        match Checkpoint::open(note.as_bytes(), &log.key) {
            Ok(opened) => return Ok(opened.checkpoint),
            Err(error) => last_error = error.to_string(),
        }
    }
    Err(ExportError::Checkpoint(last_error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventId, EventInput};
    use crate::merkle::CompactRange;
    use crate::note::{Ed25519Signer, KeyName};
    use crate::time::Instant;

    const ORIGIN: &str = "example.com/export-test";

    fn log_key() -> Ed25519Signer {
        Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid"), [3; 32])
    }

    /// A log of `count` event leaves (every other one with a payload), and an export of the
    /// events at `exported`.
    fn bundle(count: usize, exported: &[usize]) -> ExportBundle {
        let mut leaves = Vec::new();
        let mut payloads = Vec::new();
        for index in 0..count {
            let payload = if index % 2 == 0 {
                format!(r#","payload":{{"amount":{index},"note":"é ü"}}"#)
            } else {
                String::new()
            };
            let json = format!(
                r#"{{"event_id":"00000000-0000-4000-8000-{index:012}","timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"alice","type":"user"}},"action":"invoice.pay","resource":{{"type":"invoice","id":"inv-{index}"}},"outcome":"success"{payload}}}"#
            );
            let (leaf, canonical_payload) = EventInput::parse(json.as_bytes())
                .expect("valid event")
                .into_leaf(
                    EventId::new_v4([0; 16]),
                    Instant::from_unix(1_764_064_800, 0),
                    "billing",
                )
                .expect("leaf");
            leaves.push(leaf.leaf);
            payloads.push(canonical_payload);
        }
        let mut stored = Vec::new();
        let mut range = CompactRange::new();
        for leaf in &leaves {
            range
                .append_with(Hash::of_leaf(leaf), |_, hash| stored.push(*hash))
                .expect("small tree");
        }
        let size = count as u64;
        let checkpoint = Checkpoint {
            origin: ORIGIN.to_string(),
            size,
            root: merkle::tree_root(size, &stored).expect("stored"),
            extensions: vec![],
        };
        let note = checkpoint.sign(&log_key()).expect("signs");
        ExportBundle {
            format: EXPORT_FORMAT.to_string(),
            checkpoint: String::from_utf8(note.to_bytes().expect("note")).expect("utf-8"),
            timestamps: vec![],
            events: exported
                .iter()
                .map(|&index| ExportedEvent {
                    index: index as u64,
                    leaf: leaves[index].clone(),
                    payload: payloads[index].clone(),
                    inclusion_proof: merkle::inclusion_proof(index as u64, size, &stored)
                        .expect("proof"),
                })
                .collect(),
        }
    }

    fn verify_json(json: &[u8]) -> Result<VerifiedExport, ExportError> {
        let key = log_key().verifier();
        verify_export(&ExportBundle::from_json(json)?, ExportTrust::LogKey(&key))
    }

    #[test]
    fn a_complete_export_verifies_and_round_trips() {
        let bundle = bundle(7, &[0, 3, 4, 6]);
        let json = bundle.to_json();
        assert_eq!(
            ExportBundle::from_json(json.as_bytes()).expect("parses"),
            bundle
        );
        let verified = verify_json(json.as_bytes()).expect("verifies");
        assert_eq!(verified.origin, ORIGIN);
        assert_eq!(verified.tree_size, 7);
        assert_eq!(verified.events, 4);
        assert_eq!(verified.payloads, 3);
    }

    #[test]
    fn every_changed_byte_of_the_json_is_detected() {
        let json = bundle(5, &[0, 1, 4]).to_json().into_bytes();
        for position in 0..json.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut changed = json.clone();
                changed[position] ^= flip;
                assert!(
                    verify_json(&changed).is_err(),
                    "flipping {flip:#04x} at byte {position} ({:?}) went unnoticed",
                    json[position] as char
                );
            }
        }
    }

    #[test]
    fn every_changed_byte_of_leaves_payloads_and_proofs_is_detected() {
        let original = bundle(6, &[0, 2, 5]);
        let key = log_key().verifier();
        for position in 0..original.events.len() {
            for byte in 0..original.events[position].leaf.len() {
                let mut changed = original.clone();
                changed.events[position].leaf[byte] ^= 0x01;
                assert!(verify_export(&changed, ExportTrust::LogKey(&key)).is_err());
            }
            let payload_len = original.events[position]
                .payload
                .as_ref()
                .map_or(0, Vec::len);
            for byte in 0..payload_len {
                let mut changed = original.clone();
                if let Some(payload) = changed.events[position].payload.as_mut() {
                    payload[byte] ^= 0x01;
                }
                assert!(verify_export(&changed, ExportTrust::LogKey(&key)).is_err());
            }
            for hash in 0..original.events[position].inclusion_proof.len() {
                for byte in 0..32 {
                    let mut changed = original.clone();
                    changed.events[position].inclusion_proof[hash].0[byte] ^= 0x01;
                    assert!(verify_export(&changed, ExportTrust::LogKey(&key)).is_err());
                }
            }
        }
    }

    #[test]
    fn refuses_a_non_canonical_payload_even_when_it_means_the_same() {
        let mut changed = bundle(3, &[0]);
        let payload = changed.events[0].payload.take().expect("payload");
        let mut spaced = b" ".to_vec();
        spaced.extend_from_slice(&payload);
        changed.events[0].payload = Some(spaced);
        let key = log_key().verifier();
        assert!(matches!(
            verify_export(&changed, ExportTrust::LogKey(&key)),
            Err(ExportError::Event { .. })
        ));
    }

    #[test]
    fn an_erased_payload_leaves_the_export_valid() {
        let mut erased = bundle(4, &[0, 2]);
        erased.events[0].payload = None;
        let key = log_key().verifier();
        let verified = verify_export(&erased, ExportTrust::LogKey(&key)).expect("valid");
        assert_eq!(verified.payloads, 1);
    }

    #[test]
    fn refuses_events_out_of_order_and_a_foreign_key() {
        let mut swapped = bundle(4, &[1, 3]);
        swapped.events.swap(0, 1);
        let key = log_key().verifier();
        assert!(matches!(
            verify_export(&swapped, ExportTrust::LogKey(&key)),
            Err(ExportError::OutOfOrder { .. })
        ));
        let other = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid"), [4; 32]);
        assert!(matches!(
            verify_export(&bundle(4, &[1]), ExportTrust::LogKey(&other.verifier())),
            Err(ExportError::Checkpoint(_))
        ));
    }

    #[test]
    fn verifies_against_a_policy_that_trusts_the_log() {
        let policy = Policy::parse(
            format!("log {}\nquorum none\n", log_key().verifier().to_vkey()).as_bytes(),
        )
        .expect("policy");
        let verified =
            verify_export(&bundle(5, &[0, 4]), ExportTrust::Policy(&policy)).expect("valid");
        assert_eq!(verified.events, 2);
        assert_eq!(verified.tree_size, 5);
    }
}
