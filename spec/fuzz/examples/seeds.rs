//! Writes the committed seed inputs of every fuzz target (`seeds/<target>/`): one or a few
//! valid inputs of each format, made by cairn-spec itself from the example world, so that even a
//! short fuzz run starts past the outer syntax and mutates real receipts, notes, requests and
//! tiles. Deterministic: running it again gives the same files.
//!
//!     cd spec/fuzz && cargo run --example seeds
//!
//! (`cargo fuzz build` builds only the targets, not this.)

use std::fs;
use std::path::Path;

use base64::Engine as _;
use cairn_spec::event::{EventId, EventInput, EventOpenings, EventSalts, PersonalField};
use cairn_spec::example::{world, world_of, World};
use cairn_spec::export::{
    verify_export_v2, ExportBundle, ExportBundleV2, ExportOpening, ExportOpenings, ExportTrust,
    ExportedEvent, ExportedEventV2, EXPORT_FORMAT, EXPORT_FORMAT_V2,
};
use cairn_spec::hash::Hash;
use cairn_spec::merkle;
use cairn_spec::note::Note;
use cairn_spec::tiles::{encode_entry_bundle, encode_tile};
use cairn_spec::time::Instant;
use cairn_spec::timestamp::{checkpoint_imprint, TimestampRequest};
use cairn_spec::witness::AddCheckpointRequest;

/// The example event of `spec/docs/event.md`.
const EVENT: &str = r#"{
  "event_id": "0b7c9a2e-5c1d-4f8a-9e3b-2d6f1a4c8e90",
  "timestamp": "2026-11-25T09:14:03.120+01:00",
  "actor": {"id": "alice@example.com", "type": "user"},
  "action": "invoice.approve",
  "resource": {"type": "invoice", "id": "INV-2026-0042"},
  "outcome": "success",
  "payload": {"amount_cents": 125000, "currency": "EUR"},
  "context": {"ip": "192.0.2.10", "request_id": "r-77"},
  "schema_version": 1
}"#;

fn main() -> std::io::Result<()> {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let world = world(16);
    let receipt = world.receipt(5, &[0, 1]);
    let note_text = receipt.checkpoint.clone();
    let note = Note::parse(note_text.as_bytes()).expect("the example's note parses");
    let body = note.text().to_owned();
    let vkey = world.log.verifier().to_vkey();

    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let directory = seeds.join(target);
        fs::create_dir_all(&directory)?;
        fs::write(directory.join(name), bytes)
    };

    write("note", "checkpoint-note", note_text.as_bytes())?;
    write("note", "vkey", vkey.as_bytes())?;
    write("checkpoint", "body", body.as_bytes())?;
    write("checkpoint", "signed-note", note_text.as_bytes())?;
    write("cosignature", "checkpoint-body", body.as_bytes())?;
    write(
        "cosignature",
        "vkey",
        world.witnesses[0].verifier().to_vkey().as_bytes(),
    )?;
    write("cosignature", "cosigned-note", note_text.as_bytes())?;

    // A witness request from size 8, and the same checkpoint in the target's signed form
    // (0x01, old size as two bytes, proof length, proof hashes, checkpoint text).
    let proof = merkle::consistency_proof(8, 16, &world.stored).expect("stored hashes");
    let request = AddCheckpointRequest::new(note.clone(), 8, proof.clone()).expect("valid request");
    write(
        "witness_request",
        "request",
        &request.to_bytes().expect("writable"),
    )?;
    let mut signed = vec![1, 0, 8, proof.len().min(7) as u8];
    for hash in proof.iter().take(7) {
        signed.extend_from_slice(hash.as_bytes());
    }
    signed.extend_from_slice(body.as_bytes());
    write("witness_request", "signed-checkpoint", &signed)?;

    write("tile_path", "level-0", b"tile/0/000")?;
    write("tile_path", "partial", b"tile/2/x001/234.p/17")?;
    write("tile_path", "entries", b"tile/entries/x123/456.p/255")?;

    // Tile data: [width - 1, level, tree size (4 bytes), leaf index (2 bytes), tile choice],
    // then the 16 leaf hashes of the example tree as a partial level-0 tile.
    let leaf_hashes: Vec<Hash> = world
        .leaves
        .iter()
        .map(|leaf| Hash::of_leaf(leaf))
        .collect();
    let mut tile = vec![15, 0, 0, 0, 0, 15, 0, 5, 0];
    tile.extend(encode_tile(&leaf_hashes).expect("16 hashes"));
    write("tile_data", "partial-tile", &tile)?;

    let mut bundle = vec![15];
    bundle.extend(encode_entry_bundle(&world.leaves).expect("16 small leaves"));
    write("entry_bundle", "sixteen", &bundle)?;

    write("timestamp_response", "token", &receipt.timestamps[0].token)?;
    let request = TimestampRequest::for_imprint(checkpoint_imprint(body.as_bytes()), 7, None);
    write("timestamp_request", "request", &request.to_der())?;

    write("receipt", "receipt.json", receipt.to_json().as_bytes())?;
    write("receipt", "tlog-proof", receipt.to_tlog_proof().as_bytes())?;
    write("export", "export.json", export(&world).as_bytes())?;
    write("policy", "policy", policy_text(&world).as_bytes())?;
    write("key_history", "rotation", &key_history())?;

    write("event", "event.json", EVENT.as_bytes())?;
    let input = EventInput::parse(EVENT.as_bytes()).expect("the documented event is valid");
    let (leaf, _) = input
        .into_leaf(
            EventId::new_v4([9; 16]),
            Instant::from_unix(1_764_000_000, 0),
            "producer",
        )
        .expect("a valid principal");
    write("event", "leaf.json", &leaf.leaf)?;
    write("event_leaf_v2", "leaf-v1.json", &leaf.leaf)?;
    let asks_for_v2 = EVENT.replace(r#""schema_version": 1"#, r#""schema_version": 2"#);
    write("event", "event-v2.json", asks_for_v2.as_bytes())?;
    let (leaf_v2, _) = schema_2(1);
    write("event_leaf_v2", "leaf.json", &leaf_v2)?;
    write("export", "export-v2.json", export_v2().as_bytes())?;
    Ok(())
}

/// The documented event as a schema 2 leaf, with salts made of `seed`, and its openings.
fn schema_2(seed: u8) -> (Vec<u8>, EventOpenings) {
    let salts =
        EventSalts::from_random([[seed; 32], [seed + 1; 32], [seed + 2; 32], [seed + 3; 32]]);
    let (leaf, openings) = EventInput::parse(EVENT.as_bytes())
        .expect("the documented event is valid")
        .into_leaf_v2(
            EventId::new_v4([9; 16]),
            Instant::from_unix(1_764_000_000, 0),
            "producer",
            &salts,
        )
        .expect("a valid principal");
    (leaf.leaf, openings)
}

/// A `cairn.export/v2` of a log of three events that verifies against the example's policy:
/// a schema 1 event with its payload, a schema 2 event with every field opened, and one with
/// its actor erased.
fn export_v2() -> String {
    let (v1, payload) = EventInput::parse(EVENT.as_bytes())
        .expect("the documented event is valid")
        .into_leaf(
            EventId::new_v4([9; 16]),
            Instant::from_unix(1_764_000_000, 0),
            "producer",
        )
        .expect("a valid principal");
    let (first, first_openings) = schema_2(1);
    let (second, second_openings) = schema_2(11);
    let world = world_of(vec![v1.leaf, first, second]);
    let receipt = world.receipt(0, &[0, 1]);
    let openings = |openings: &EventOpenings, erased: &[PersonalField]| {
        let mut exported = ExportOpenings::default();
        for field in PersonalField::ALL {
            if let (Some(opening), false) = (openings.get(field), erased.contains(&field)) {
                exported.set(field, ExportOpening::of(opening));
            }
        }
        exported
    };
    let event = |index: usize, payload, openings, erased: Vec<PersonalField>| ExportedEventV2 {
        index: index as u64,
        leaf: world.leaves[index].clone(),
        payload,
        openings,
        erased,
        inclusion_proof: merkle::inclusion_proof(index as u64, 3, &world.stored)
            .expect("stored hashes"),
    };
    let bundle = ExportBundleV2 {
        format: EXPORT_FORMAT_V2.to_owned(),
        checkpoint: receipt.checkpoint,
        timestamps: receipt.timestamps,
        events: vec![
            event(0, payload, ExportOpenings::default(), vec![]),
            event(1, None, openings(&first_openings, &[]), vec![]),
            event(
                2,
                None,
                openings(&second_openings, &[PersonalField::Actor]),
                vec![PersonalField::Actor],
            ),
        ],
        completeness: None,
    };
    let policy = world.policy("two", true);
    let verified = verify_export_v2(&bundle, ExportTrust::Policy(&policy))
        .expect("the seed verifies, so the fuzzer starts from a valid bundle");
    assert!(!verified.events[2].contents.is_complete());
    bundle.to_json()
}

/// An export of the example's leaves 3 and 5 (not events: it parses, and fails verification).
fn export(world: &World) -> String {
    let receipt = world.receipt(3, &[0, 1]);
    let events = [3u64, 5]
        .iter()
        .map(|&index| ExportedEvent {
            index,
            leaf: world.leaves[index as usize].clone(),
            payload: None,
            inclusion_proof: merkle::inclusion_proof(index, 16, &world.stored)
                .expect("stored hashes"),
        })
        .collect();
    ExportBundle {
        format: EXPORT_FORMAT.to_owned(),
        checkpoint: receipt.checkpoint,
        timestamps: receipt.timestamps,
        events,
    }
    .to_json()
}

/// The text of the example's policy (`World::policy("two", true)`).
fn policy_text(world: &World) -> String {
    let mut text = format!("log {}\n", world.log.verifier().to_vkey());
    for (index, witness) in world.witnesses.iter().enumerate() {
        text.push_str(&format!(
            "witness w{index} {}\n",
            witness.verifier().to_vkey()
        ));
    }
    text.push_str("group two 2 w0 w1 w2\nquorum two\n");
    text.push_str(&format!(
        "tsa test {}\n",
        base64::engine::general_purpose::STANDARD.encode(&world.tsa.root_der)
    ));
    text
}

/// The example of spec/docs/key-history.md: the log's first key (seed 0x01) introduces a second
/// (seed 0x03) from size 8, which retires the first after 15 and revokes it from 12.
fn key_history() -> Vec<u8> {
    use cairn_spec::key_history::{Action, KeyHistory};
    use cairn_spec::note::{Ed25519Signer, KeyName};
    let name = KeyName::new("example.com/cairn-log").expect("name");
    let first = Ed25519Signer::from_seed(name.clone(), [0x01; 32]);
    let second = Ed25519Signer::from_seed(name, [0x03; 32]);
    let mut history = KeyHistory::new(&first.verifier().to_vkey()).expect("pinned");
    let steps = [
        (Action::Introduce { vkey: second.verifier().to_vkey(), from: 8 }, vec![&first, &second]),
        (Action::Retire { vkey: first.verifier().to_vkey(), last: 15 }, vec![&second]),
        (Action::Revoke { vkey: first.verifier().to_vkey(), from: 12 }, vec![&second]),
    ];
    for (action, signers) in steps {
        let mut note = history.next_statement(action).to_note().expect("note");
        for signer in signers {
            note.add_signature(signer.sign(&note)).expect("signs");
        }
        history.append(&note.to_bytes().expect("bytes")).expect("verifies");
    }
    history.to_bytes()
}
