//! `cairn.export/v2`: schema 1 and 2 events in one bundle, openings checked, erased fields
//! verified as committed, every changed byte refused, and v1 bundles read and verified as
//! before.

use super::*;
use crate::checkpoint::Checkpoint;
use crate::event::{EventId, EventInput, EventOpenings, EventSalts, PersonalField, SALT_SIZE};
use crate::merkle::{self, CompactRange};
use crate::note::{Ed25519Signer, KeyName};
use crate::time::Instant;

const ORIGIN: &str = "example.com/export-v2-test";

fn log_key() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid"), [5; 32])
}

/// Event `index` of the test log: schema 2 when `index` is odd, with a context and a payload
/// when `index % 3 == 0`.
fn event(index: usize) -> (Vec<u8>, Option<Vec<u8>>, Option<EventOpenings>) {
    let extra = if index.is_multiple_of(3) {
        format!(r#","payload":{{"amount":{index}}},"context":{{"ip":"192.0.2.{index}"}}"#)
    } else {
        String::new()
    };
    let json = format!(
        r#"{{"event_id":"00000000-0000-4000-8000-{index:012}","timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"alice{index}@example.com","type":"user"}},"action":"invoice.pay","resource":{{"type":"invoice","id":"inv-{index}"}},"outcome":"success"{extra}}}"#
    );
    let input = EventInput::parse(json.as_bytes()).expect("valid event");
    let received_at = Instant::from_unix(1_764_064_800, 0);
    if index % 2 == 1 {
        let salts =
            EventSalts::from_random(std::array::from_fn(|field| [(index * 4 + field) as u8; 32]));
        let (leaf, openings) = input
            .into_leaf_v2(EventId::new_v4([0; 16]), received_at, "billing", &salts)
            .expect("leaf");
        (leaf.leaf, None, Some(openings))
    } else {
        let (leaf, payload) = input
            .into_leaf(EventId::new_v4([0; 16]), received_at, "billing")
            .expect("leaf");
        (leaf.leaf, payload, None)
    }
}

/// A log of `count` events, and a v2 export of the events at `exported`, every field opened.
fn bundle(count: usize, exported: &[usize]) -> ExportBundleV2 {
    let events: Vec<_> = (0..count).map(event).collect();
    let mut stored = Vec::new();
    let mut range = CompactRange::new();
    for (leaf, _, _) in &events {
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
    ExportBundleV2 {
        format: EXPORT_FORMAT_V2.to_string(),
        checkpoint: String::from_utf8(note.to_bytes().expect("note")).expect("utf-8"),
        timestamps: vec![],
        events: exported
            .iter()
            .map(|&index| {
                let (leaf, payload, openings) = events[index].clone();
                let mut exported = ExportOpenings::default();
                if let Some(openings) = &openings {
                    for field in PersonalField::ALL {
                        if let Some(opening) = openings.get(field) {
                            exported.set(field, ExportOpening::of(opening));
                        }
                    }
                }
                ExportedEventV2 {
                    index: index as u64,
                    leaf,
                    payload,
                    openings: exported,
                    erased: Vec::new(),
                    inclusion_proof: merkle::inclusion_proof(index as u64, size, &stored)
                        .expect("proof"),
                }
            })
            .collect(),
        completeness: None,
    }
}

/// Erases `fields` of the event at `position`.
fn erase(bundle: &mut ExportBundleV2, position: usize, fields: &[PersonalField]) {
    let event = &mut bundle.events[position];
    for field in fields {
        match field {
            PersonalField::Actor => event.openings.actor = None,
            PersonalField::Resource => event.openings.resource = None,
            PersonalField::Context => event.openings.context = None,
            PersonalField::Payload => event.openings.payload = None,
        }
    }
    event.erased = fields.to_vec();
}

fn verify(bundle: &ExportBundleV2) -> Result<VerifiedExportV2, ExportError> {
    verify_export_v2(bundle, ExportTrust::LogKey(&log_key().verifier()))
}

fn verify_json(json: &[u8]) -> Result<VerifiedExportV2, ExportError> {
    AnyExport::from_json(json)?.verify(ExportTrust::LogKey(&log_key().verifier()))
}

#[test]
fn a_mixed_export_verifies_round_trips_and_says_what_each_event_showed() {
    let mut bundle = bundle(8, &[0, 1, 2, 3, 5, 6]);
    // Index 3 (schema 2, all four fields): its actor and payload erased.
    erase(
        &mut bundle,
        3,
        &[PersonalField::Actor, PersonalField::Payload],
    );
    // Index 5 (schema 2, actor and resource): everything erased.
    erase(&mut bundle, 4, &PersonalField::ALL[..2]);
    // Index 6 (schema 1): its payload erased.
    bundle.events[5].payload = None;
    let json = bundle.to_json();
    assert_eq!(
        AnyExport::from_json(json.as_bytes()).expect("parses"),
        AnyExport::V2(bundle.clone())
    );
    let verified = verify_json(json.as_bytes()).expect("verifies");
    assert_eq!(verified.origin, ORIGIN);
    assert_eq!(verified.tree_size, 8);
    let lines: Vec<String> = verified.events.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "event 0 (00000000-0000-4000-8000-000000000000): verified with contents",
            "event 1 (00000000-0000-4000-8000-000000000001): verified with contents",
            "event 2 (00000000-0000-4000-8000-000000000002): verified with contents",
            "event 3 (00000000-0000-4000-8000-000000000003): verified with contents (resource, context); committed, contents erased (actor, payload)",
            "event 5 (00000000-0000-4000-8000-000000000005): committed, contents erased",
            "event 6 (00000000-0000-4000-8000-000000000006): verified with contents; payload committed, erased",
        ]
    );
    assert_eq!(
        verified
            .events
            .iter()
            .map(|event| event.schema_version)
            .collect::<Vec<_>>(),
        [1, 2, 1, 2, 2, 1]
    );
    // The schema 2 leaves in the bundle hold none of the personal values.
    let leaf = String::from_utf8(bundle.events[3].leaf.clone()).expect("UTF-8");
    for personal in ["alice", "inv-", "192.0.2", "amount"] {
        assert!(!leaf.contains(personal), "{leaf}");
    }
}

#[test]
fn every_changed_byte_of_a_v2_export_is_detected() {
    let mut bundle = bundle(4, &[0, 1, 3]);
    erase(&mut bundle, 2, &[PersonalField::Context]);
    let json = bundle.to_json().into_bytes();
    assert!(verify_json(&json).is_ok());
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
fn every_changed_byte_of_a_salt_or_an_opened_value_is_detected() {
    let original = bundle(4, &[1, 3]);
    for position in 0..original.events.len() {
        for field in PersonalField::ALL {
            let Some(opening) = original.events[position].openings.get(field) else {
                continue;
            };
            for byte in 0..SALT_SIZE {
                let mut changed = original.clone();
                let mut opening = opening.clone();
                opening.salt[byte] ^= 0x01;
                changed.events[position].openings.set(field, opening);
                assert!(matches!(verify(&changed), Err(ExportError::Event { .. })));
            }
            for byte in 0..opening.value.len() {
                let mut changed = original.clone();
                let mut opening = opening.clone();
                opening.value[byte] ^= 0x01;
                changed.events[position].openings.set(field, opening);
                assert!(matches!(verify(&changed), Err(ExportError::Event { .. })));
            }
        }
    }
}

#[test]
fn refuses_openings_that_do_not_cover_exactly_the_committed_fields() {
    let original = bundle(4, &[0, 3]);
    let refused = |change: &dyn Fn(&mut ExportBundleV2)| {
        let mut changed = original.clone();
        change(&mut changed);
        let error = verify(&changed).expect_err("refused");
        assert!(matches!(error, ExportError::Event { .. }), "{error}");
    };
    // A field neither opened nor erased; opened and erased; erased twice or out of order.
    refused(&|bundle| bundle.events[1].openings.context = None);
    refused(&|bundle| bundle.events[1].erased = vec![PersonalField::Context]);
    refused(&|bundle| {
        erase(bundle, 1, &[PersonalField::Context]);
        bundle.events[1].erased = vec![PersonalField::Context, PersonalField::Context];
    });
    refused(&|bundle| {
        erase(bundle, 1, &[PersonalField::Actor, PersonalField::Resource]);
        bundle.events[1].erased = vec![PersonalField::Resource, PersonalField::Actor];
    });
    // Another event's opening (same field, another event ID and salt).
    let other = bundle(6, &[5]);
    refused(&|bundle| {
        let actor = other.events[0].openings.actor.clone().expect("opened");
        bundle.events[1].openings.actor = Some(actor);
    });
    // One field's opening presented as another.
    refused(&|bundle| {
        let actor = bundle.events[1].openings.actor.clone();
        bundle.events[1].openings.resource = actor;
    });
    // A payload beside a schema 2 leaf; openings or erased fields beside a schema 1 leaf.
    refused(&|bundle| bundle.events[1].payload = Some(br#"{"amount":3}"#.to_vec()));
    refused(&|bundle| bundle.events[0].erased = vec![PersonalField::Actor]);
    refused(&|bundle| {
        let actor = bundle.events[1].openings.actor.clone().expect("opened");
        bundle.events[0].openings.actor = Some(actor);
    });
}

#[test]
fn a_salt_must_be_32_bytes_and_an_unknown_member_is_refused() {
    let json = bundle(2, &[1]).to_json();
    let opening = bundle(2, &[1]).events[0]
        .openings
        .actor
        .clone()
        .expect("opened");
    let salt = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, opening.salt);
    let short = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        &opening.salt[..31],
    );
    let changed = json.replacen(&salt, &short, 1);
    assert_ne!(changed, json);
    assert!(matches!(
        AnyExport::from_json(changed.as_bytes()),
        Err(ExportError::Json(_))
    ));
    let unknown = json.replacen(r#""actor":{"#, r#""actor":{"note":"x","#, 1);
    assert!(matches!(
        AnyExport::from_json(unknown.as_bytes()),
        Err(ExportError::Json(_))
    ));
}

#[test]
fn v1_bundles_are_read_and_verified_as_before() {
    let mut v2 = bundle(7, &[0, 2, 6]);
    v2.events[2].payload = None;
    let v1 = ExportBundle {
        format: EXPORT_FORMAT.to_string(),
        checkpoint: v2.checkpoint.clone(),
        timestamps: vec![],
        events: v2
            .events
            .iter()
            .map(|event| ExportedEvent {
                index: event.index,
                leaf: event.leaf.clone(),
                payload: event.payload.clone(),
                inclusion_proof: event.inclusion_proof.clone(),
            })
            .collect(),
    };
    let key = log_key().verifier();
    let old = verify_export(&v1, ExportTrust::LogKey(&key)).expect("a v1 bundle verifies");
    assert_eq!((old.events, old.payloads), (3, 1));
    let read = AnyExport::from_json(v1.to_json().as_bytes()).expect("reads");
    assert_eq!(read, AnyExport::V1(v1.clone()));
    let verified = read.verify(ExportTrust::LogKey(&key)).expect("verifies");
    assert_eq!(verified.root, old.root);
    assert_eq!(
        verified
            .events
            .iter()
            .map(|event| event.contents.clone())
            .collect::<Vec<_>>(),
        [
            EventContents::Clear {
                payload_erased: false
            },
            EventContents::Clear {
                payload_erased: false
            },
            EventContents::Clear {
                payload_erased: true
            },
        ]
    );
    // A v1 bundle cannot carry a schema 2 leaf: v1 verification refuses it.
    let mut with_v2_leaf = v1.clone();
    with_v2_leaf.events[0].leaf = event(1).0;
    assert!(verify_export(&with_v2_leaf, ExportTrust::LogKey(&key)).is_err());
    // Neither format is anything else.
    let other = v1.to_json().replace(EXPORT_FORMAT, "cairn.export/v3");
    assert!(matches!(
        AnyExport::from_json(other.as_bytes()),
        Err(ExportError::Format { .. })
    ));
}

#[test]
fn verifies_against_a_policy_and_refuses_a_foreign_key() {
    let policy = crate::policy::Policy::parse(
        format!("log {}\nquorum none\n", log_key().verifier().to_vkey()).as_bytes(),
    )
    .expect("policy");
    let mut bundle = bundle(6, &[1, 4, 5]);
    erase(&mut bundle, 2, &PersonalField::ALL[..2]);
    let verified = verify_export_v2(&bundle, ExportTrust::Policy(&policy)).expect("valid");
    assert_eq!(verified.events.len(), 3);
    assert_eq!(
        bundle
            .receipt(2)
            .and_then(|receipt| receipt.leaf)
            .map(|leaf| leaf == bundle.events[2].leaf),
        Some(true)
    );
    let other = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid"), [6; 32]);
    assert!(matches!(
        verify_export_v2(&bundle, ExportTrust::LogKey(&other.verifier())),
        Err(ExportError::Checkpoint(_))
    ));
}

/// `json` padded with trailing spaces (which JSON allows) to the size read on every core.
fn large(json: &str) -> Vec<u8> {
    let mut padded = json.as_bytes().to_vec();
    padded.resize(padded.len().max(super::parse::MIN_PARALLEL_BYTES), b' ');
    padded
}

#[test]
fn a_large_bundle_read_on_every_core_is_the_bundle_read_in_one_piece() {
    let mut v2 = bundle(9, &[0, 1, 2, 5, 8]);
    erase(&mut v2, 1, &[PersonalField::Actor]);
    let v1 = ExportBundle {
        format: EXPORT_FORMAT.to_string(),
        checkpoint: v2.checkpoint.clone(),
        timestamps: vec![],
        events: [0usize, 2, 4]
            .iter()
            .map(|&position| {
                let event = &v2.events[position];
                ExportedEvent {
                    index: event.index,
                    leaf: event.leaf.clone(),
                    payload: event.payload.clone(),
                    inclusion_proof: event.inclusion_proof.clone(),
                }
            })
            .collect(),
    };
    for (json, expected) in [
        (v2.to_json(), AnyExport::V2(v2.clone())),
        (v1.to_json(), AnyExport::V1(v1.clone())),
    ] {
        assert_eq!(
            super::parse::read_parallel(json.as_bytes()),
            Some(expected.clone())
        );
        assert_eq!(AnyExport::from_json(&large(&json)), Ok(expected));
        assert!(verify_json(&large(&json)).is_ok());
    }
}

/// Whatever a bundle read in one piece refuses, read on every core it is refused too, with the
/// same error: above all a v1 bundle with a `completeness` member, even `null`, which the
/// outline of either format would accept.
#[test]
fn a_large_bundle_is_refused_exactly_as_in_one_piece() {
    let v2 = bundle(5, &[0, 1, 3]);
    let v2_json = v2.to_json();
    let v1 = ExportBundle {
        format: EXPORT_FORMAT.to_string(),
        checkpoint: v2.checkpoint.clone(),
        timestamps: vec![],
        events: vec![ExportedEvent {
            index: v2.events[0].index,
            leaf: v2.events[0].leaf.clone(),
            payload: v2.events[0].payload.clone(),
            inclusion_proof: v2.events[0].inclusion_proof.clone(),
        }],
    };
    let v1_json = v1.to_json();
    let refused = vec![
        v1_json.replacen('{', r#"{"completeness":null,"#, 1),
        v1_json.replacen(r#""events":[{"#, r#""events":[{"openings":{},"#, 1),
        v1_json.replacen(r#""events":[{"#, r#""events":[{"index":0,"#, 1),
        v2_json.replacen(r#""events":[{"#, r#""events":[{"unknown":1,"#, 1),
        v2_json.replacen('{', r#"{"format":"cairn.export/v2","#, 1),
        v2_json.replacen(EXPORT_FORMAT_V2, "cairn.export/v9", 1),
        v2_json.replacen(r#""events":["#, r#""events":[1,"#, 1),
    ];
    for json in &refused {
        let padded = large(json);
        assert!(
            AnyExport::from_json_in_one_piece(&padded).is_err(),
            "{json}"
        );
        assert_eq!(
            AnyExport::from_json(&padded),
            AnyExport::from_json_in_one_piece(&padded)
        );
    }
    // Every byte of the first event changed to a quote, a brace or a letter: refused or read,
    // as in one piece.
    let mut changes = Vec::new();
    let start = v2_json.find(r#""events":["#).expect("events") + 10;
    for position in start..start + 200 {
        for replacement in ['"', '}', 'x'] {
            let mut changed = v2_json.clone().into_bytes();
            changed[position] = replacement as u8;
            if let Ok(text) = String::from_utf8(changed) {
                changes.push(text);
            }
        }
    }
    for json in changes {
        let padded = large(&json);
        let in_one_piece = AnyExport::from_json_in_one_piece(&padded);
        assert_eq!(AnyExport::from_json(&padded), in_one_piece, "{json}");
        assert_eq!(
            AnyExport::from_json(json.as_bytes()).is_ok(),
            in_one_piece.is_ok()
        );
    }
}
