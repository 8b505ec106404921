//! Completeness proofs in `cairn.export/v2` bundles: a bundle of every event of one value
//! verifies, and dropping, adding, swapping or reordering an event, or cutting the run short, is
//! refused (issue 29: "dropping an event from an export bundle still verifies").

use std::collections::BTreeMap;

use super::*;
use crate::checkpoint::Checkpoint;
use crate::completeness::{
    action_key, extension_line, CompletenessProof, IndexMap, Item, KeyProof, MapKey,
};
use crate::event::{
    index_tag, EventId, EventInput, EventOpenings, EventSalts, IndexKey, IndexedField,
    PersonalField,
};
use crate::merkle::{self, CompactRange};
use crate::note::{Ed25519Signer, KeyName};
use crate::time::Instant;

const ORIGIN: &str = "example.com/export-complete-test";
const ACTORS: [&str; 3] = ["alice@example.com", "bob@example.com", "carol@example.com"];
const ACTIONS: [&str; 2] = ["login", "invoice.pay"];

fn log_key() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid"), [7; 32])
}

fn index_key() -> IndexKey {
    IndexKey::from_bytes([9; 32])
}

/// Event `index`: actor `ACTORS[index % 3]`, action `ACTIONS[index % 2]`, schema 2 when
/// `index % 4 != 0`.
fn event(index: usize) -> (Vec<u8>, Option<EventOpenings>) {
    let json = format!(
        r#"{{"event_id":"00000000-0000-4000-8000-{index:012}","timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"{}","type":"user"}},"action":"{}","resource":{{"type":"invoice","id":"inv-{index}"}},"outcome":"success"}}"#,
        ACTORS[index % 3],
        ACTIONS[index % 2]
    );
    let input = EventInput::parse(json.as_bytes()).expect("valid event");
    let received_at = Instant::from_unix(1_764_064_800 + index as i64, 0);
    if !index.is_multiple_of(4) {
        let salts =
            EventSalts::from_random(std::array::from_fn(|field| [(index * 4 + field) as u8; 32]));
        let (leaf, openings) = input
            .into_leaf_v2(EventId::new_v4([0; 16]), received_at, "billing", &salts)
            .expect("leaf");
        (leaf.leaf, Some(openings))
    } else {
        let (leaf, _) = input
            .into_leaf(EventId::new_v4([0; 16]), received_at, "billing")
            .expect("leaf");
        (leaf.leaf, None)
    }
}

fn actor_key(actor: &str) -> MapKey {
    MapKey::from(index_tag(&index_key(), IndexedField::ActorId, actor))
}

/// A log of `count` events, its index, and the lists of every key.
struct World {
    events: Vec<(Vec<u8>, Option<EventOpenings>)>,
    stored: Vec<Hash>,
    map: IndexMap,
    lists: BTreeMap<MapKey, Vec<Item>>,
    note: String,
}

fn world(count: usize) -> World {
    let events: Vec<_> = (0..count).map(event).collect();
    let (mut stored, mut range) = (Vec::new(), CompactRange::new());
    let mut map = IndexMap::new();
    let mut lists: BTreeMap<MapKey, Vec<Item>> = BTreeMap::new();
    for (index, (leaf, _)) in events.iter().enumerate() {
        let leaf_hash = Hash::of_leaf(leaf);
        range
            .append_with(leaf_hash, |_, hash| stored.push(*hash))
            .expect("small tree");
        let item = Item {
            leaf_index: index as u64,
            leaf_hash,
        };
        for key in [action_key(ACTIONS[index % 2]), actor_key(ACTORS[index % 3])] {
            map.add(key, item).expect("in order");
            lists.entry(key).or_default().push(item);
        }
    }
    let size = count as u64;
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_string(),
        size,
        root: merkle::tree_root(size, &stored).expect("stored"),
        extensions: vec![extension_line(&map.root())],
    };
    let note = checkpoint.sign(&log_key()).expect("signs");
    World {
        events,
        stored,
        map,
        lists,
        note: String::from_utf8(note.to_bytes().expect("note")).expect("utf-8"),
    }
}

impl World {
    fn exported(&self, index: u64) -> ExportedEventV2 {
        let (leaf, openings) = self.events[index as usize].clone();
        let mut exported = ExportOpenings::default();
        if let Some(openings) = &openings {
            for field in PersonalField::ALL {
                if let Some(opening) = openings.get(field) {
                    exported.set(field, ExportOpening::of(opening));
                }
            }
        }
        ExportedEventV2 {
            index,
            leaf,
            payload: None,
            openings: exported,
            erased: Vec::new(),
            inclusion_proof: merkle::inclusion_proof(index, self.events.len() as u64, &self.stored)
                .expect("proof"),
        }
    }

    /// The bundle of every event with `key` in `[from, to)`, with its completeness proof.
    fn bundle(
        &mut self,
        field: &str,
        value: &str,
        key: MapKey,
        from: u64,
        to: u64,
    ) -> ExportBundleV2 {
        let list = self.lists.get(&key).cloned().unwrap_or_default();
        let proof = KeyProof::build(key, &self.map.prove(&key), &list, from, to).expect("proof");
        let events = list
            .iter()
            .filter(|item| (from..to).contains(&item.leaf_index))
            .map(|item| self.exported(item.leaf_index))
            .collect();
        ExportBundleV2 {
            format: EXPORT_FORMAT_V2.to_string(),
            checkpoint: self.note.clone(),
            timestamps: vec![],
            events,
            completeness: Some(CompletenessProof {
                field: field.to_string(),
                value: value.to_string(),
                from,
                to,
                keys: vec![proof],
                received: None,
            }),
        }
    }
}

fn verify(bundle: &ExportBundleV2) -> Result<VerifiedExportV2, ExportError> {
    let key = log_key().verifier();
    // Through JSON, as an auditor receives it.
    let read = ExportBundleV2::from_json(bundle.to_json().as_bytes())?;
    verify_export_v2(&read, ExportTrust::LogKey(&key))
}

fn completeness_error(result: Result<VerifiedExportV2, ExportError>) -> String {
    match result {
        Err(ExportError::Completeness(reason)) => reason,
        other => panic!("expected a completeness error, found {other:?}"),
    }
}

#[test]
fn a_bundle_of_every_event_of_an_actor_verifies_and_dropping_one_fails() {
    let mut world = world(40);
    let alice = ACTORS[0];
    let bundle = world.bundle("actor", alice, actor_key(alice), 0, 40);
    let verified = verify(&bundle).expect("complete");
    let complete = verified.completeness.expect("a completeness proof");
    assert_eq!(verified.events.len(), 14, "events 0, 3, ..., 39");
    assert_eq!((complete.from, complete.to), (0, 40));
    assert_eq!(complete.value_checked, 14);
    // The issue's reproduction: drop one event; the bundle's own proofs still hold, the
    // completeness proof does not.
    let mut dropped = bundle.clone();
    dropped.events.remove(5);
    let reason = completeness_error(verify(&dropped));
    assert!(
        reason.contains("leaves out the event at leaf 15"),
        "{reason}"
    );
    // Without its completeness proof, the dropped bundle verifies as before (and says so by
    // carrying no completeness).
    dropped.completeness = None;
    assert!(verify(&dropped).expect("verifies").completeness.is_none());
}

#[test]
fn an_added_swapped_or_reordered_event_or_a_foreign_value_is_refused() {
    let mut world = world(40);
    let alice = ACTORS[0];
    let bundle = world.bundle("actor", alice, actor_key(alice), 0, 40);
    // Bob's event 1 added, in order.
    let mut added = bundle.clone();
    added.events.insert(1, world.exported(1));
    let reason = completeness_error(verify(&added));
    assert!(reason.contains("leaf 1,"), "{reason}");
    // Alice's event 3 replaced by Bob's event 4 (both schema 2 or 1 alike does not matter).
    let mut swapped = bundle.clone();
    swapped.events[1] = world.exported(4);
    assert!(completeness_error(verify(&swapped)).contains("leaf"));
    // Two of Alice's events reordered: refused for its order, whatever the proof says.
    let mut reordered = bundle.clone();
    reordered.events.swap(1, 2);
    assert!(matches!(
        verify(&reordered),
        Err(ExportError::OutOfOrder { position: 2, .. })
    ));
    // The proof of Alice's list shown for the value "bob": the events do not carry it.
    let mut foreign = bundle.clone();
    if let Some(proof) = foreign.completeness.as_mut() {
        proof.value = ACTORS[1].to_string();
    }
    assert!(completeness_error(verify(&foreign)).contains("has actor"));
}

#[test]
fn a_window_is_proven_by_a_run_and_a_run_cut_short_is_refused() {
    let mut world = world(64);
    let key = action_key("login");
    // A page: the logins (even leaves) in [10, 21).
    let bundle = world.bundle("action", "login", key, 10, 21);
    let verified = verify(&bundle).expect("complete window");
    assert_eq!(
        verified.events.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![10, 12, 14, 16, 18, 20]
    );
    // A run that starts inside the window (its neighbour before removed, proof rebuilt for
    // the shorter run) hides the first login of the window.
    let list = world.lists[&key].clone();
    let mut short = bundle.clone();
    let map_proof = world.map.prove(&key);
    let run = crate::completeness::Run {
        start: 6,
        items: list[6..12].iter().copied().map(Into::into).collect(),
        proof: crate::completeness::range_proof(
            &list.iter().map(Item::hash).collect::<Vec<_>>(),
            6,
            12,
        )
        .expect("range"),
    };
    if let Some(proof) = short.completeness.as_mut() {
        proof.keys = vec![KeyProof::new(key, &map_proof, Some(run))];
    }
    short.events.remove(0);
    assert!(completeness_error(verify(&short)).contains("starts inside the window"));
    // An action's key is public: a proof under another key is refused.
    let mut other_key = bundle.clone();
    if let Some(proof) = other_key.completeness.as_mut() {
        proof.value = "invoice.pay".into();
    }
    assert!(completeness_error(verify(&other_key)).contains("action_key"));
}

#[test]
fn an_absent_value_is_proven_absent_and_needs_a_checkpoint_index_line() {
    let mut world = world(12);
    let nobody = actor_key("nobody@example.com");
    let bundle = world.bundle("actor", "nobody@example.com", nobody, 0, 12);
    assert!(bundle.events.is_empty());
    let verified = verify(&bundle).expect("proven absent");
    assert_eq!(verified.completeness.expect("proof").value_checked, 0);
    // An event slipped into an answer of absence.
    let mut added = bundle.clone();
    added.events.push(world.exported(2));
    assert!(completeness_error(verify(&added)).contains("leaf 2"));
    // A checkpoint without the index line proves nothing complete.
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_string(),
        size: 12,
        root: merkle::tree_root(12, &world.stored).expect("stored"),
        extensions: vec![],
    };
    let mut bare = bundle;
    bare.checkpoint = String::from_utf8(
        checkpoint
            .sign(&log_key())
            .expect("signs")
            .to_bytes()
            .expect("note"),
    )
    .expect("utf-8");
    assert!(completeness_error(verify(&bare)).contains("no cairn-index/v1 line"));
}
