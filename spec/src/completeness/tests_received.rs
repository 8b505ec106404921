//! Receive-time ranges (completeness.md §3.5), the record stream (§1.4) and index evidence
//! (evidence.md, `index-omits` / `index-invents`): what verifies, what a dropped, added or
//! moved event does to it, and the documented vectors.

use super::received::{EdgeLeaf, ReceivedRange};
use super::records::{whole_records, Record};
use super::*;
use crate::checkpoint::Checkpoint;
use crate::event::{EventId, EventInput};
use crate::evidence::index::IndexListing;
use crate::evidence::{verify_evidence, Conflict, Evidence};
use crate::merkle::{self, CompactRange};
use crate::note::{Ed25519Signer, KeyName};
use crate::time::Instant;

const ORIGIN: &str = "example.com/received-test";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [7; 32])
}

/// Twelve event leaves, `login` at even leaves and `read` at odd ones, leaf `i` received at
/// `1_000_000 + 100·i` seconds (so that edges can be more than the skew apart).
fn leaves() -> Vec<Vec<u8>> {
    (0..12u64)
        .map(|index| {
            let action = if index % 2 == 0 { "login" } else { "read" };
            let json = format!(
                r#"{{"event_id":"00000000-0000-4000-8000-{index:012}","timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"a","type":"user"}},"action":"{action}","resource":{{"type":"t","id":"r"}},"outcome":"success"}}"#
            );
            let received = Instant::from_unix(1_000_000 + 100 * index as i64, 0);
            EventInput::parse(json.as_bytes())
                .expect("event")
                .into_leaf(EventId::new_v4([0; 16]), received, "p")
                .expect("leaf")
                .0
                .leaf
        })
        .collect()
}

struct Log {
    leaves: Vec<Vec<u8>>,
    stored: Vec<Hash>,
    map: IndexMap,
    lists: std::collections::HashMap<MapKey, Vec<Item>>,
    note: Vec<u8>,
    map_root: Hash,
}

/// The log of [`leaves`]; `skip` is a leaf the index leaves out, `extra` a leaf it also
/// lists under the other action.
fn log(skip: Option<u64>, extra: Option<u64>) -> Log {
    let leaves = leaves();
    let (mut stored, mut range, mut map) = (Vec::new(), CompactRange::new(), IndexMap::new());
    let mut lists: std::collections::HashMap<MapKey, Vec<Item>> = Default::default();
    for (index, leaf) in leaves.iter().enumerate() {
        let index = index as u64;
        let leaf_hash = Hash::of_leaf(leaf);
        range
            .append_with(leaf_hash, |_, hash| stored.push(*hash))
            .expect("appends");
        let item = Item {
            leaf_index: index,
            leaf_hash,
        };
        let own = if index.is_multiple_of(2) {
            "login"
        } else {
            "read"
        };
        let other = if index.is_multiple_of(2) {
            "read"
        } else {
            "login"
        };
        let mut keys = Vec::new();
        if skip != Some(index) {
            keys.push(action_key(own));
        }
        if extra == Some(index) {
            keys.push(action_key(other));
        }
        for key in keys {
            map.add(key, item).expect("in order");
            lists.entry(key).or_default().push(item);
        }
    }
    let map_root = map.root();
    let size = leaves.len() as u64;
    let note = Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: merkle::tree_root(size, &stored).expect("root"),
        extensions: vec![extension_line(&map_root)],
    }
    .sign(&signer())
    .expect("signs")
    .to_bytes()
    .expect("note");
    Log {
        leaves,
        stored,
        map,
        lists,
        note,
        map_root,
    }
}

impl Log {
    /// The proof for `action` over `[from, to)` with the receive range `[t0, t1)` (seconds).
    fn proof(&mut self, action: &str, from: u64, to: u64, range: (i64, i64)) -> CompletenessProof {
        let key = action_key(action);
        let list = self.lists.get(&key).cloned().unwrap_or_default();
        let proof = KeyProof::build(key, &self.map.prove(&key), &list, from, to).expect("proof");
        let edges = proof
            .run
            .iter()
            .flat_map(|run| run.items.iter())
            .filter(|item| item.index < from || item.index >= to)
            .map(|item| EdgeLeaf {
                index: item.index,
                leaf: self.leaves[item.index as usize].clone(),
            })
            .collect();
        CompletenessProof {
            field: "action".into(),
            value: action.into(),
            from,
            to,
            keys: vec![proof],
            received: Some(ReceivedRange {
                from: Instant::from_unix(range.0, 0).to_rfc3339(),
                to: Instant::from_unix(range.1, 0).to_rfc3339(),
                edges,
            }),
        }
    }

    fn answer(&self, indices: &[u64]) -> Vec<(u64, Hash)> {
        indices
            .iter()
            .map(|&index| (index, Hash::of_leaf(&self.leaves[index as usize])))
            .collect()
    }
}

#[test]
fn a_time_range_is_proven_by_edges_received_outside_it_by_more_than_the_skew() {
    let mut log = log(None, None);
    // Received in [1_000_350, 1_000_750): login leaves 4 and 6. A window [2, 10) has the
    // edges leaf 0 (received before 1_000_350 - 60) and leaf 10 (at or after 1_000_750 + 60):
    // it covers the whole tree.
    let proof = log.proof("login", 2, 10, (1_000_350, 1_000_750));
    let proven = proof
        .verify(&log.map_root, 12, &log.answer(&[2, 4, 6, 8]))
        .expect("verifies");
    let received = proven.received.expect("a range");
    assert_eq!((received.covers_from, received.covers_to), (0, 12));
    // An event dropped, added or in another's place fails.
    for answer in [&[2u64, 4, 8][..], &[2, 4, 5, 6, 8], &[2, 4, 6]] {
        assert!(proof
            .verify(&log.map_root, 12, &log.answer(answer))
            .is_err());
    }
    let mut moved = log.answer(&[2, 4, 6, 8]);
    moved[1].1 = moved[2].1;
    assert!(proof.verify(&log.map_root, 12, &moved).is_err());

    // Edges within the skew of the range (leaves 4 and 8) cover only the window.
    let near = log.proof("login", 6, 8, (1_000_350, 1_000_750));
    let received = near
        .verify(&log.map_root, 12, &log.answer(&[6]))
        .expect("verifies")
        .received
        .expect("a range");
    assert_eq!((received.covers_from, received.covers_to), (6, 8));

    // An edge leaf that is not the item's leaf is refused.
    let mut forged = proof.clone();
    if let Some(range) = forged.received.as_mut() {
        range.edges[0].leaf = log.leaves[1].clone();
    }
    assert!(matches!(
        forged.verify(&log.map_root, 12, &log.answer(&[2, 4, 6, 8])),
        Err(CompletenessError::Received(_))
    ));
    // Without its edge leaves the proof covers only its window.
    let mut bare = proof.clone();
    if let Some(range) = bare.received.as_mut() {
        range.edges.clear();
    }
    let received = bare
        .verify(&log.map_root, 12, &log.answer(&[2, 4, 6, 8]))
        .expect("verifies")
        .received
        .expect("a range");
    assert_eq!((received.covers_from, received.covers_to), (2, 10));
}

#[test]
fn the_record_stream_round_trips_and_cuts_at_whole_records() {
    let records = [
        Record::Item(
            Item {
                leaf_index: 3,
                leaf_hash: Hash([1; 32]),
            },
            vec![action_key("login"), MapKey([9; 32])],
        ),
        Record::Mark(4, Hash([2; 32])),
    ];
    let bytes: Vec<u8> = records.iter().flat_map(Record::to_bytes).collect();
    assert_eq!(bytes.len(), 1 + 40 + 1 + 64 + 41);
    assert_eq!(whole_records(&bytes), Ok(bytes.len()));
    assert_eq!(whole_records(&bytes[..bytes.len() - 1]), Ok(106));
    let (first, length) = Record::parse(&bytes).expect("parses").expect("whole");
    assert_eq!((first, length), (records[0].clone(), 106));
    assert!(Record::parse(b"X").is_err());
}

fn evidence(log: &mut Log, listing: IndexListing, action: &str, leaf: u64) -> Evidence {
    let mut proof = log.proof(action, leaf, leaf + 1, (0, 0));
    proof.received = None;
    let inclusion = merkle::inclusion_proof(leaf, 12, &log.stored).expect("inclusion");
    Evidence::index_listing(
        listing,
        &log.note,
        leaf,
        &log.leaves[leaf as usize],
        &inclusion,
        proof,
    )
}

#[test]
fn an_index_that_omits_or_invents_an_event_is_proven_so_and_an_honest_one_is_not() {
    let key = signer().verifier();
    let mut omitting = log(Some(5), None);
    let found = verify_evidence(
        &evidence(&mut omitting, IndexListing::Omits, "read", 5),
        &key,
    )
    .expect("proves");
    assert!(matches!(found, Conflict::IndexOmits { leaf_index: 5, .. }));

    let mut inventing = log(None, Some(7));
    let found = verify_evidence(
        &evidence(&mut inventing, IndexListing::Invents, "login", 7),
        &key,
    )
    .expect("proves");
    assert!(matches!(
        found,
        Conflict::IndexInvents { leaf_index: 7, .. }
    ));

    // The honest index: neither claim holds, for any leaf.
    let mut honest = log(None, None);
    for leaf in 0..12u64 {
        let (own, other) = if leaf % 2 == 0 {
            ("login", "read")
        } else {
            ("read", "login")
        };
        assert!(
            verify_evidence(&evidence(&mut honest, IndexListing::Omits, own, leaf), &key).is_err()
        );
        assert!(verify_evidence(
            &evidence(&mut honest, IndexListing::Invents, other, leaf),
            &key
        )
        .is_err());
    }
    // A byte changed in valid evidence breaks it.
    let good = evidence(&mut omitting, IndexListing::Omits, "read", 5);
    let mut bad = good.clone();
    bad.leaf_index = Some(4);
    assert!(verify_evidence(&bad, &key).is_err());
    let mut bad = good.clone();
    bad.kind = "index-invents".into();
    assert!(verify_evidence(&bad, &key).is_err());
    let json = good.to_json();
    let parsed = Evidence::from_json(json.as_bytes()).expect("parses");
    assert!(verify_evidence(&parsed, &key).is_ok());
}

#[test]
fn the_documented_record_stream_vector_holds() {
    use sha2::{Digest, Sha256};
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    let actions = ["login", "logout", "login", "read", "login", "read"];
    let (mut map, mut stream) = (IndexMap::new(), Vec::new());
    for (index, action) in actions.iter().enumerate() {
        let index = index as u64;
        let item = Item {
            leaf_index: index,
            leaf_hash: Hash::of_leaf(&index.to_be_bytes()),
        };
        map.add(action_key(action), item).expect("in order");
        stream.extend(Record::Item(item, vec![action_key(action)]).to_bytes());
    }
    stream.extend(Record::Mark(6, map.root()).to_bytes());
    assert_eq!(stream.len(), 485);
    assert_eq!(
        hex(&stream[..74]),
        "4900000000000000003e7077fd2f66d689e0cee6a7cf5b37bf2dca7c979af356d0a31cbc5c85605c7d01\
         3aaeef2f2ea5f40b1f6413d4c6e424ab20e52eca1815dd8116ee65eb312957c9"
    );
    assert_eq!(
        hex(&Sha256::digest(&stream)),
        "1b02d826113dd1f61e8e83e334206f87fd912754300d977e9ea4999b63c5d5ae"
    );
}
