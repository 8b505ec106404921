//! Shared fixtures of the note, checkpoint, cosignature and witness tests: fixed keys, and a
//! small reference Merkle tree (RFC 9162 §2.1.1 MTH and §2.1.4.1 consistency proofs, written
//! straight from the RFC's recursive definitions) to make real proofs.

#![allow(dead_code)]

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::CosignatureSigner;
use cairn_spec::hash::Hash;
use cairn_spec::note::{Ed25519Signer, KeyName};

/// The origin of the example log, which is also its key name.
pub const LOG_ORIGIN: &str = "example.com/cairn-log";

/// The name of the example witness.
pub const WITNESS_NAME: &str = "example.com/cairn-witness";

/// The example log's key: seed of 32 bytes 0x01.
pub fn log_signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(LOG_ORIGIN).expect("valid name"), [0x01; 32])
}

/// The example witness's key: seed of 32 bytes 0x02.
pub fn witness_cosigner() -> CosignatureSigner {
    CosignatureSigner::from_seed(KeyName::new(WITNESS_NAME).expect("valid name"), [0x02; 32])
}

/// The leaf hashes of a tree whose leaves are the texts "leaf 0", "leaf 1", ...
pub fn leaf_hashes(count: u64) -> Vec<Hash> {
    (0..count)
        .map(|index| Hash::of_leaf(format!("leaf {index}").as_bytes()))
        .collect()
}

fn largest_power_of_two_below(count: usize) -> usize {
    let mut split = 1;
    while split * 2 < count {
        split *= 2;
    }
    split
}

/// MTH(D[n]) of RFC 9162 §2.1.1, over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::empty_tree(),
        1 => leaves[0],
        count => {
            let split = largest_power_of_two_below(count);
            Hash::of_node(&root(&leaves[..split]), &root(&leaves[split..]))
        }
    }
}

fn subproof(old_size: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let count = leaves.len();
    if old_size == count {
        return if complete {
            Vec::new()
        } else {
            vec![root(leaves)]
        };
    }
    let split = largest_power_of_two_below(count);
    if old_size <= split {
        let mut proof = subproof(old_size, &leaves[..split], complete);
        proof.push(root(&leaves[split..]));
        proof
    } else {
        let mut proof = subproof(old_size - split, &leaves[split..], false);
        proof.push(root(&leaves[..split]));
        proof
    }
}

/// PROOF(m, D[n]) of RFC 9162 §2.1.4.1: the consistency proof from `old_size` to all of
/// `leaves` (empty when `old_size` is 0 or the whole tree).
pub fn consistency_proof(old_size: u64, leaves: &[Hash]) -> Vec<Hash> {
    let old_size = usize::try_from(old_size).expect("small test trees");
    if old_size == 0 {
        return Vec::new();
    }
    subproof(old_size, leaves, true)
}

/// The example log's checkpoint at `size` leaves.
pub fn log_checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: LOG_ORIGIN.to_owned(),
        size,
        root: root(&leaf_hashes(size)),
        extensions: Vec::new(),
    }
}
