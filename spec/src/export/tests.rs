//! `cairn.export/v1`: round trips, every changed byte refused, erased payloads, trust.

use super::*;
use crate::checkpoint::Checkpoint;
use crate::event::{EventId, EventInput};
use crate::merkle::{self, CompactRange};
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
    let policy =
        Policy::parse(format!("log {}\nquorum none\n", log_key().verifier().to_vkey()).as_bytes())
            .expect("policy");
    let verified = verify_export(&bundle(5, &[0, 4]), ExportTrust::Policy(&policy)).expect("valid");
    assert_eq!(verified.events, 2);
    assert_eq!(verified.tree_size, 5);
}
