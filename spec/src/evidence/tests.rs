use std::collections::HashMap;

use super::*;
use crate::checkpoint::Checkpoint;
use crate::merkle::{consistency_proof, inclusion_proof, CompactRange, NodeId};
use crate::note::{Ed25519Signer, KeyName};
use crate::tiles::{TileAppender, TileHashReader, TILE_WIDTH};

const ORIGIN: &str = "example.com/evidence-test";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid name"), [7; 32])
}

/// A tree of `count` leaves (a `tag` makes forks), with its tiles and signed checkpoint.
struct Tree {
    tiles: HashMap<Tile, Vec<u8>>,
    size: u64,
    root: Hash,
    leaf_hashes: Vec<Hash>,
}

impl Tree {
    fn new(count: u64, fork_at: Option<u64>) -> Tree {
        let leaf_hashes: Vec<Hash> = (0..count)
            .map(|index| {
                let tag = if fork_at.is_some_and(|fork| index >= fork) {
                    "fork"
                } else {
                    "leaf"
                };
                Hash::of_leaf(format!("{tag} {index}").as_bytes())
            })
            .collect();
        let mut appender = TileAppender::new();
        let mut tiles = HashMap::new();
        for update in appender.append(&leaf_hashes).expect("appends") {
            tiles.insert(update.tile, update.data);
        }
        Tree {
            tiles,
            size: count,
            root: appender.root(),
            leaf_hashes,
        }
    }

    fn note(&self) -> Vec<u8> {
        self.note_by(&signer())
    }

    fn note_by(&self, key: &Ed25519Signer) -> Vec<u8> {
        let checkpoint = Checkpoint {
            origin: ORIGIN.to_owned(),
            size: self.size,
            root: self.root,
            extensions: Vec::new(),
        };
        checkpoint
            .sign(key)
            .expect("signs")
            .to_bytes()
            .expect("encodes")
    }

    fn reader(&self) -> TileHashReader<&HashMap<Tile, Vec<u8>>> {
        TileHashReader::new(self.size, self.root, &self.tiles).expect("size in range")
    }

    fn prefix_proof(&self, old_size: u64) -> Vec<Hash> {
        let proof = consistency_proof(old_size, self.size, &self.reader()).expect("proof");
        let subtree = old_size.is_power_of_two().then(|| {
            let node = NodeId::new(old_size.trailing_zeros() as u8, 0).expect("node");
            self.reader().read_hashes(&[node]).expect("reads")[0]
        });
        prefix_proof(old_size, &proof, subtree)
    }
}

use crate::merkle::HashReader as _;

fn verifier() -> crate::note::Ed25519Verifier {
    signer().verifier()
}

fn assert_every_byte_flip_is_detected(evidence: &Evidence) {
    let json = evidence.to_json().into_bytes();
    verify_evidence(&Evidence::from_json(&json).expect("parses"), &verifier()).expect("holds");
    for position in 0..json.len() {
        for mask in [0x01u8, 0x20] {
            let mut tampered = json.clone();
            tampered[position] ^= mask;
            let accepted = Evidence::from_json(&tampered)
                .ok()
                .map(|evidence| verify_evidence(&evidence, &verifier()));
            assert!(
                !matches!(accepted, Some(Ok(_))),
                "flipping byte {position} with {mask:#x} went unnoticed: {:?}",
                String::from_utf8_lossy(&tampered)
            );
        }
    }
}

#[test]
fn same_size_different_roots_is_a_conflict() {
    let honest = Tree::new(300, None);
    let forked = Tree::new(300, Some(299));
    let evidence = Evidence::same_size(&honest.note(), &forked.note());
    let conflict = verify_evidence(&evidence, &verifier()).expect("conflict");
    assert!(matches!(
        conflict,
        Conflict::SameSizeDifferentRoots { size: 300, .. }
    ));
    assert_every_byte_flip_is_detected(&evidence);
}

#[test]
fn same_root_twice_is_no_conflict() {
    let honest = Tree::new(10, None);
    let evidence = Evidence::same_size(&honest.note(), &honest.note());
    assert!(matches!(
        verify_evidence(&evidence, &verifier()),
        Err(EvidenceError::NoConflict(_))
    ));
}

#[test]
fn rejects_evidence_signed_by_another_key() {
    let honest = Tree::new(10, None);
    let forked = Tree::new(10, Some(3));
    let evidence = Evidence::same_size(&honest.note(), &forked.note());
    let other = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [8; 32]);
    assert!(matches!(
        verify_evidence(&evidence, &other.verifier()),
        Err(EvidenceError::Checkpoint { .. })
    ));
}

#[test]
fn larger_tree_that_does_not_extend_the_smaller_is_a_conflict() {
    for (old_size, new_size, fork_at) in [
        (300, 700, 10),
        (256, 1000, 255),
        (1, 2, 0),
        (5, 6, 4),
        (512, 513, 0),
        (7, 8, 6),
    ] {
        let old = Tree::new(old_size, None);
        let new = Tree::new(new_size, Some(fork_at));
        let evidence =
            Evidence::not_an_extension(&old.note(), &new.note(), &new.prefix_proof(old_size));
        let conflict = verify_evidence(&evidence, &verifier())
            .unwrap_or_else(|error| panic!("{old_size}->{new_size}: {error}"));
        assert!(matches!(conflict, Conflict::NotAnExtension { .. }));
    }
}

#[test]
fn honest_growth_is_no_conflict_and_proof_roots_match_the_trees() {
    for (old_size, new_size) in [(1, 2), (3, 7), (256, 257), (300, 1000), (1024, 1025)] {
        let old = Tree::new(old_size, None);
        let new = Tree::new(new_size, None);
        let proof = new.prefix_proof(old_size);
        let (prefix_root, new_root) =
            roots_from_prefix_proof(old_size, new_size, &proof).expect("computes");
        assert_eq!((prefix_root, new_root), (old.root, new.root));
        let evidence = Evidence::not_an_extension(&old.note(), &new.note(), &proof);
        assert!(matches!(
            verify_evidence(&evidence, &verifier()),
            Err(EvidenceError::NoConflict(_))
        ));
    }
}

#[test]
fn not_an_extension_evidence_detects_every_byte_flip() {
    let old = Tree::new(300, None);
    let new = Tree::new(520, Some(100));
    let evidence = Evidence::not_an_extension(&old.note(), &new.note(), &new.prefix_proof(300));
    assert_every_byte_flip_is_detected(&evidence);
}

#[test]
fn rewritten_full_tile_is_a_tile_mismatch() {
    let tree = Tree::new(1000, None);
    let tile = Tile::new(0, 1, TILE_WIDTH).expect("tile");
    let mut served = tree.tiles[&tile].clone();
    served[40] ^= 0xff;
    let node_hash = crate::merkle::root_from_leaf_hashes(&tree.leaf_hashes[256..512]);
    let path = inclusion_proof(256, tree.size, &tree.reader()).expect("proof")[8..].to_vec();
    let evidence = Evidence::tile_mismatch(&tree.note(), tile, &served, node_hash, &path);
    let conflict = verify_evidence(&evidence, &verifier()).expect("conflict");
    assert!(matches!(
        conflict,
        Conflict::TileMismatch { size: 1000, .. }
    ));
    assert_every_byte_flip_is_detected(&evidence);

    let honest = Evidence::tile_mismatch(&tree.note(), tile, &tree.tiles[&tile], node_hash, &path);
    assert!(matches!(
        verify_evidence(&honest, &verifier()),
        Err(EvidenceError::NoConflict(_))
    ));
}

#[test]
fn signed_root_that_tiles_do_not_give_is_a_root_mismatch() {
    let old = Tree::new(300, None);
    let grown = Tree::new(600, None);
    let mut lying = Tree::new(600, None);
    lying.root = Tree::new(600, Some(500)).root;
    let frontier = CompactRange::from_reader(300, &old.reader()).expect("frontier");
    let tiles: Vec<(Tile, Vec<u8>)> = [(1, 256), (2, 88)]
        .into_iter()
        .map(|(index, width)| {
            let tile = Tile::new(0, index, width).expect("tile");
            let data = grown
                .tiles
                .get(&tile)
                .or_else(|| grown.tiles.get(&tile.to_full()));
            (
                tile,
                data.expect("served")[..usize::from(width) * 32].to_vec(),
            )
        })
        .collect();
    let evidence = Evidence::root_mismatch(
        Some((&old.note(), frontier.frontier())),
        &lying.note(),
        &tiles,
    );
    let conflict = verify_evidence(&evidence, &verifier()).expect("conflict");
    assert!(matches!(conflict, Conflict::RootMismatch { size: 600, .. }));
    assert_every_byte_flip_is_detected(&evidence);

    let honest = Evidence::root_mismatch(
        Some((&old.note(), frontier.frontier())),
        &grown.note(),
        &tiles,
    );
    assert!(matches!(
        verify_evidence(&honest, &verifier()),
        Err(EvidenceError::NoConflict(_))
    ));
}

#[test]
fn refuses_oversized_and_unknown_fields() {
    assert!(matches!(
        Evidence::from_json(&vec![b' '; MAX_EVIDENCE_BYTES + 1]),
        Err(EvidenceError::TooLarge { .. })
    ));
    assert!(Evidence::from_json(
        br#"{"format":"cairn.evidence/v1","kind":"same-size","checkpoints":[],"x":1}"#
    )
    .is_err());
}

/// A key history in which the test log's key (pinned) hands over to another key from size 0
/// and is then revoked from size `revoked_from`.
fn history_revoking_the_log_key(revoked_from: u64) -> Vec<u8> {
    use crate::key_history::{Action, KeyHistory};
    let pinned = signer();
    let successor = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid name"), [8; 32]);
    let mut history = KeyHistory::new(&pinned.verifier().to_vkey()).expect("pinned");
    let sign = |history: &KeyHistory, action: Action, signers: &[&Ed25519Signer]| {
        let mut note = history.next_statement(action).to_note().expect("note");
        for key in signers {
            note.add_signature(key.sign(&note)).expect("signs");
        }
        note.to_bytes().expect("bytes")
    };
    let introduce = Action::Introduce {
        vkey: successor.verifier().to_vkey(),
        from: 0,
    };
    history
        .append(&sign(&history, introduce, &[&pinned, &successor]))
        .expect("introduced");
    let revoke = Action::Revoke {
        vkey: pinned.verifier().to_vkey(),
        from: revoked_from,
    };
    history
        .append(&sign(&history, revoke, &[&successor]))
        .expect("revoked");
    history.to_bytes()
}

#[test]
fn a_checkpoint_signed_by_a_revoked_key_at_a_revoked_size_is_a_compromise() {
    let history = history_revoking_the_log_key(10);
    let evidence = Evidence::revoked_key(&Tree::new(12, None).note(), &history);
    let conflict = verify_evidence(&evidence, &verifier()).expect("a compromise");
    assert_eq!(
        conflict,
        Conflict::RevokedKeySigned {
            origin: ORIGIN.to_owned(),
            size: 12,
            vkey: verifier().to_vkey(),
            revoked_from: 10,
        }
    );
    assert_every_byte_flip_is_detected(&evidence);
    // Below the revocation size the key's signature stands: no compromise.
    let early = Evidence::revoked_key(&Tree::new(9, None).note(), &history);
    assert!(matches!(
        verify_evidence(&early, &verifier()),
        Err(EvidenceError::NoConflict(_))
    ));
    // A history that does not verify from the pinned key proves nothing.
    let other_log = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid name"), [9; 32]);
    assert!(matches!(
        verify_evidence(&evidence, &other_log.verifier()),
        Err(EvidenceError::KeyHistory(_))
    ));
}

/// The test log's second key, and a history in which it signs from size 100 and the pinned key
/// is retired after size 150.
fn rotated_history() -> (Ed25519Signer, Vec<u8>) {
    use crate::key_history::{Action, KeyHistory};
    let pinned = signer();
    let second = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid name"), [8; 32]);
    let mut history = KeyHistory::new(&pinned.verifier().to_vkey()).expect("pinned");
    let sign = |history: &KeyHistory, action: Action, signers: &[&Ed25519Signer]| {
        let mut note = history.next_statement(action).to_note().expect("note");
        for key in signers {
            note.add_signature(key.sign(&note)).expect("signs");
        }
        note.to_bytes().expect("bytes")
    };
    let introduce = Action::Introduce {
        vkey: second.verifier().to_vkey(),
        from: 100,
    };
    history
        .append(&sign(&history, introduce, &[&pinned, &second]))
        .expect("introduced");
    let retire = Action::Retire {
        vkey: pinned.verifier().to_vkey(),
        last: 150,
    };
    history
        .append(&sign(&history, retire, &[&second]))
        .expect("retired");
    (second, history.to_bytes())
}

#[test]
fn a_fork_signed_by_a_rotated_key_is_proven_with_the_key_history_from_the_pinned_key() {
    let (second, history) = rotated_history();
    let honest = Tree::new(300, None);
    let forked = Tree::new(300, Some(299));
    let bare = Evidence::same_size(&honest.note_by(&second), &forked.note_by(&second));
    assert!(
        matches!(
            verify_evidence(&bare, &verifier()),
            Err(EvidenceError::Checkpoint { position: 0, .. })
        ),
        "without the history the new key is no one's"
    );
    let evidence = bare.with_key_history(&history);
    assert!(matches!(
        verify_evidence(&evidence, &verifier()).expect("a conflict"),
        Conflict::SameSizeDifferentRoots { size: 300, .. }
    ));
    assert_every_byte_flip_is_detected(&evidence);

    // Across the rotation: the older checkpoint signed by the pinned key (valid up to 150),
    // the newer by the second key.
    let old = Tree::new(120, None);
    let evidence = Evidence::not_an_extension(
        &old.note(),
        &forked.note_by(&second),
        &forked.prefix_proof(120),
    );
    assert!(matches!(
        verify_evidence(&evidence, &verifier()),
        Err(EvidenceError::Checkpoint { position: 1, .. })
    ));
    let forked_early = Tree::new(300, Some(100));
    let evidence = Evidence::not_an_extension(
        &old.note(),
        &forked_early.note_by(&second),
        &forked_early.prefix_proof(120),
    )
    .with_key_history(&history);
    assert!(matches!(
        verify_evidence(&evidence, &verifier()).expect("a conflict"),
        Conflict::NotAnExtension { old_size: 120, .. }
    ));

    // A key's signature outside its sizes is not the log's: the second key before 100, the
    // pinned key after 150.
    let early = Tree::new(50, None);
    let evidence = Evidence::same_size(&early.note_by(&second), &Tree::new(50, Some(1)).note())
        .with_key_history(&history);
    assert!(matches!(
        verify_evidence(&evidence, &verifier()),
        Err(EvidenceError::NoValidKey {
            position: 0,
            size: 50
        })
    ));
    let evidence =
        Evidence::same_size(&honest.note_by(&second), &forked.note()).with_key_history(&history);
    assert!(matches!(
        verify_evidence(&evidence, &verifier()),
        Err(EvidenceError::NoValidKey {
            position: 1,
            size: 300
        })
    ));

    // A history that does not verify from the pinned key proves nothing.
    let other_log = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid name"), [9; 32]);
    let evidence = Evidence::same_size(&honest.note_by(&second), &forked.note_by(&second))
        .with_key_history(&history);
    assert!(matches!(
        verify_evidence(&evidence, &other_log.verifier()),
        Err(EvidenceError::KeyHistory(_))
    ));
}
