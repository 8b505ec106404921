//! The index's construction against an independent reading of completeness.md, its proofs
//! against tampering, and the document's test vectors.

use sha2::{Digest, Sha256};

use super::map::MapUpdateError;
use super::*;
use crate::merkle::reference::{reference_inclusion, reference_root, sample_leaves};
use crate::merkle::verify_consistency;

fn key(n: u64) -> MapKey {
    MapKey(Sha256::digest(n.to_be_bytes()).into())
}

fn item(leaf_index: u64) -> Item {
    Item {
        leaf_index,
        leaf_hash: Hash::of_leaf(&leaf_index.to_be_bytes()),
    }
}

/// The map root straight from completeness.md §1.2, over sorted (key, head) pairs sharing
/// their first `depth` bits.
fn spec_root(entries: &[(MapKey, ListHead)], depth: usize) -> Hash {
    match entries {
        [] => EMPTY,
        [(key, head)] => map_leaf_hash(key, head),
        _ => {
            let split = entries.partition_point(|(key, _)| !key.bit(depth));
            map_node_hash(
                &spec_root(&entries[..split], depth + 1),
                &spec_root(&entries[split..], depth + 1),
            )
        }
    }
}

/// A map of `keys` keys whose key `k` holds leaves k, k + keys, k + 2·keys, … below `leaves`,
/// and the same as sorted (key, head) pairs computed from whole lists.
fn build(keys: u64, leaves: u64) -> (IndexMap, Vec<(MapKey, ListHead)>) {
    let mut map = IndexMap::new();
    let mut lists: Vec<(MapKey, Vec<Item>)> = (0..keys).map(|k| (key(k), Vec::new())).collect();
    for leaf in 0..leaves {
        let k = leaf % keys;
        map.add(key(k), item(leaf)).unwrap();
        lists[k as usize].1.push(item(leaf));
        // Ask for the root now and then, so that cached hashes are cleared and rebuilt.
        if leaf % 7 == 3 {
            map.root();
        }
    }
    let mut entries: Vec<(MapKey, ListHead)> = lists
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(key, items)| {
            let head = ListHead {
                count: items.len() as u64,
                root: list_root(&items),
            };
            (key, head)
        })
        .collect();
    entries.sort_by_key(|(key, _)| *key);
    (map, entries)
}

#[test]
fn the_map_root_is_the_documented_recursion_whatever_the_order_of_updates() {
    for (keys, leaves) in [(1, 1), (1, 9), (2, 2), (3, 40), (50, 50), (200, 1000)] {
        let (mut map, entries) = build(keys, leaves);
        assert_eq!(
            map.root(),
            spec_root(&entries, 0),
            "{keys} keys, {leaves} leaves"
        );
        assert_eq!(map.key_count(), entries.len() as u64);
        for (key, head) in &entries {
            assert_eq!(map.head(key), Some(*head));
        }
    }
    assert_eq!(IndexMap::new().root(), EMPTY);
}

#[test]
fn every_key_is_proven_present_and_others_absent() {
    let (mut map, entries) = build(300, 900);
    let root = map.root();
    for (key, head) in &entries {
        let proof = map.prove(key);
        assert_eq!(proof.verify(key, &root), Ok(Some(*head)));
        // Paths are short: about log2 of the number of keys, far from 256.
        assert!(proof.siblings.len() < 40, "{}", proof.siblings.len());
    }
    let mut ends = [0usize; 2];
    for n in 10_000..10_500 {
        let proof = map.prove(&key(n));
        assert_eq!(proof.verify(&key(n), &root), Ok(None));
        match proof.end {
            PathEnd::AbsentEmpty => ends[0] += 1,
            PathEnd::AbsentOther(..) => ends[1] += 1,
            PathEnd::Present(_) => panic!("key {n} was never added"),
        }
    }
    // Both kinds of absence occur, so both are exercised.
    assert!(ends[0] > 0 && ends[1] > 0, "{ends:?}");
    let mut empty = IndexMap::new();
    let proof = empty.prove(&key(1));
    assert_eq!(proof.verify(&key(1), &EMPTY), Ok(None));
}

#[test]
fn tampered_map_proofs_fail() {
    let (mut map, entries) = build(64, 256);
    let root = map.root();
    let (present, head) = entries[5];
    let proof = map.prove(&present);

    // Another key cannot use this proof, nor can a changed count or list root.
    assert!(proof.verify(&entries[6].0, &root).is_err());
    let mut changed = proof.clone();
    changed.end = PathEnd::Present(ListHead {
        count: head.count - 1,
        ..head
    });
    assert!(changed.verify(&present, &root).is_err());
    // Claiming the key absent with its own leaf as "another key" is refused outright.
    let mut absent = proof.clone();
    absent.end = PathEnd::AbsentOther(present, head);
    assert_eq!(
        absent.verify(&present, &root),
        Err(MapProofError::OtherKeyOffPath {
            depth: proof.siblings.len()
        })
    );
    // Nor can a present key be shown absent by an empty subtree.
    let mut hidden = proof.clone();
    hidden.end = PathEnd::AbsentEmpty;
    assert!(hidden.verify(&present, &root).is_err());
    // A sibling changed, dropped or added.
    for change in 0..3 {
        let mut bad = proof.clone();
        match change {
            0 => bad.siblings[0].0[0] ^= 1,
            1 => {
                bad.siblings.pop();
            }
            _ => bad.siblings.insert(0, EMPTY),
        }
        assert!(bad.verify(&present, &root).is_err(), "change {change}");
    }
    // An absence proof whose other key is off the asked key's path.
    let absent_key = key(99_999);
    let mut off_path = map.prove(&absent_key);
    off_path.end = PathEnd::AbsentOther(entries[0].0, entries[0].1);
    if entries[0].0.common_prefix_bits(&absent_key) < off_path.siblings.len() {
        assert!(matches!(
            off_path.verify(&absent_key, &root),
            Err(MapProofError::OtherKeyOffPath { .. })
        ));
    }
    let deep = MapProof {
        siblings: vec![EMPTY; MAX_MAP_DEPTH + 1],
        end: PathEnd::AbsentEmpty,
    };
    assert_eq!(
        deep.verify(&present, &root),
        Err(MapProofError::TooDeep(MAX_MAP_DEPTH + 1))
    );
}

#[test]
fn items_of_a_key_must_come_in_log_order() {
    let mut map = IndexMap::new();
    map.add(key(1), item(5)).unwrap();
    assert_eq!(
        map.add(key(1), item(5)),
        Err(MapUpdateError::OutOfOrder { last: 5, found: 5 })
    );
    assert_eq!(
        map.add(key(1), item(2)),
        Err(MapUpdateError::OutOfOrder { last: 5, found: 2 })
    );
    // Other keys are not held to that list's order, and a refused item changed nothing.
    map.add(key(2), item(1)).unwrap();
    assert_eq!(map.head(&key(1)).unwrap().count, 1);
}

#[test]
fn keys_that_share_long_prefixes_get_deep_paths_that_still_verify() {
    let mut map = IndexMap::new();
    let base = [0x5a; MAP_KEY_SIZE];
    let mut near = base;
    near[31] ^= 1; // differs in the very last bit
    map.add(MapKey(base), item(0)).unwrap();
    map.add(MapKey(near), item(1)).unwrap();
    let root = map.root();
    let proof = map.prove(&MapKey(near));
    assert_eq!(proof.siblings.len(), MAX_MAP_DEPTH);
    assert_eq!(
        proof.verify(&MapKey(near), &root).unwrap().unwrap().count,
        1
    );
    let mut far = base;
    far[31] ^= 2;
    assert_eq!(
        map.prove(&MapKey(far)).verify(&MapKey(far), &root),
        Ok(None)
    );
}

#[test]
fn every_run_of_every_list_up_to_40_items_is_proven_and_tampering_fails() {
    for count in 1..=40u64 {
        let leaves = sample_leaves(count as usize);
        let root = reference_root(&leaves);
        for start in 0..count {
            for end in start + 1..=count {
                let proof = range_proof(&leaves, start, end).unwrap();
                let run = &leaves[start as usize..end as usize];
                assert_eq!(verify_range(count, start, run, &proof, &root), Ok(()));
                if end == start + 1 {
                    // A run of one is proven by the hashes of the item's inclusion proof (in
                    // left-to-right order rather than bottom-up).
                    let mut sorted = proof.clone();
                    sorted.sort();
                    let mut inclusion = reference_inclusion(start as usize, &leaves);
                    inclusion.sort();
                    assert_eq!(sorted, inclusion);
                }
                if start == 0 && end == count {
                    assert!(proof.is_empty());
                }
                let mut changed = run.to_vec();
                changed[0].0[3] ^= 0x10;
                assert!(verify_range(count, start, &changed, &proof, &root).is_err());
                if start > 0 {
                    // The same items claimed one place later.
                    assert!(verify_range(count, start - 1, run, &proof, &root).is_err());
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(matches!(
                    verify_range(count, start, run, &longer, &root),
                    Err(RangeError::WrongProofLength { .. })
                ));
            }
        }
    }
}

#[test]
fn runs_outside_the_list_are_refused() {
    let leaves = sample_leaves(5);
    let root = reference_root(&leaves);
    assert!(matches!(
        range_proof(&leaves, 2, 2),
        Err(RangeError::BadRun { .. })
    ));
    assert!(matches!(
        range_proof(&leaves, 3, 6),
        Err(RangeError::BadRun { .. })
    ));
    assert!(matches!(
        verify_range(5, u64::MAX, &leaves[..1], &[], &root),
        Err(RangeError::BadRun { .. })
    ));
    assert!(matches!(
        verify_range(0, 0, &[], &[], &root),
        Err(RangeError::BadRun { .. })
    ));
}

#[test]
fn a_list_that_grows_is_consistent_with_its_earlier_self() {
    let items: Vec<Item> = (0..37).map(|n| item(n * 3)).collect();
    let hashes: Vec<Hash> = items.iter().map(Item::hash).collect();
    let mut map = IndexMap::new();
    let mut heads = Vec::new();
    for item in &items {
        map.add(key(7), *item).unwrap();
        heads.push(map.head(&key(7)).unwrap());
    }
    for (old, new) in [(1usize, 37usize), (5, 20), (16, 17)] {
        let proof = crate::merkle::reference::reference_consistency(old, &hashes[..new]);
        verify_consistency(
            old as u64,
            new as u64,
            &heads[old - 1].root,
            &heads[new - 1].root,
            &proof,
        )
        .unwrap();
    }
    assert_eq!(heads[36].root, list_root(&items));
}

#[test]
fn the_checkpoint_line_carries_the_root_once_and_first() {
    let root = Hash([7; 32]);
    let line = extension_line(&root);
    assert_eq!(
        root_from_extensions(std::slice::from_ref(&line)),
        Ok(Some(root))
    );
    assert_eq!(
        root_from_extensions(&[line.clone(), "other".into()]),
        Ok(Some(root))
    );
    assert_eq!(root_from_extensions(&["other".into()]), Ok(None));
    assert_eq!(root_from_extensions(&[]), Ok(None));
    assert_eq!(
        root_from_extensions(&["other".into(), line.clone()]),
        Err(ExtensionError::NotFirst)
    );
    assert_eq!(
        root_from_extensions(&[line.clone(), line]),
        Err(ExtensionError::Repeated(2))
    );
    assert!(matches!(
        root_from_extensions(&["cairn-index/v1 nope".into()]),
        Err(ExtensionError::BadRoot(_))
    ));
}

/// The vectors of completeness.md §6: leaves 0..6 of a log whose actions are `login`,
/// `logout`, `login`, `read`, `login`, `read`, with the leaf hash of leaf `i` being
/// SHA-256(0x00 ‖ i as 8 bytes big-endian).
#[test]
fn the_documented_vectors_hold() {
    let actions = ["login", "logout", "login", "read", "login", "read"];
    let mut map = IndexMap::new();
    for (leaf, action) in actions.iter().enumerate() {
        map.add(action_key(action), item(leaf as u64)).unwrap();
    }
    let login = action_key("login");
    assert_eq!(
        login.0,
        Hash::from_hex(VECTOR_LOGIN_KEY).unwrap().0,
        "action key of login"
    );
    assert_eq!(
        Hash(action_key("logout").0).to_hex(),
        "fb918bbeea0c461df813d50990468e00dbd3278fa757c7ad0c555f0ab64c12b3"
    );
    assert_eq!(
        Hash(action_key("read").0).to_hex(),
        "93218911c831b5e47cf12a9ec7f07cd575013b746f49a8d66d743b7a252850b0"
    );
    assert_eq!(map.key_count(), 3);
    let head = map.head(&login).unwrap();
    assert_eq!(head.count, 3);
    assert_eq!(head.root.to_hex(), VECTOR_LOGIN_LIST_ROOT);
    assert_eq!(map.root().to_hex(), VECTOR_MAP_ROOT);
    assert_eq!(item(2).to_bytes().len(), ITEM_SIZE);
}

const VECTOR_LOGIN_KEY: &str = "3aaeef2f2ea5f40b1f6413d4c6e424ab20e52eca1815dd8116ee65eb312957c9";
const VECTOR_LOGIN_LIST_ROOT: &str =
    "9c94b29d87b16472b562c1bc7f58c4badab014971cd10109bce3f43ab85bc8de";
const VECTOR_MAP_ROOT: &str = "ea4d522cb3b9e170aadc425ad41270ea371797cd1723eed48948bb97edd05e98";
