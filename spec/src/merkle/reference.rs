//! The recursive definitions of RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH) and §2.1.4.1 (PROOF and
//! SUBPROOF), written as literally as possible. Tests compare every fast or incremental
//! computation in this crate against them.

use crate::hash::Hash;

/// The largest power of two strictly smaller than `size` (for `size > 1`), the `k` of RFC 9162.
fn split_point(size: usize) -> usize {
    let mut k = 1;
    while k * 2 < size {
        k *= 2;
    }
    k
}

/// MTH(D[n]).
pub(crate) fn reference_root(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes.len() {
        0 => Hash::empty_tree(),
        1 => leaf_hashes[0],
        size => {
            let k = split_point(size);
            Hash::of_node(
                &reference_root(&leaf_hashes[..k]),
                &reference_root(&leaf_hashes[k..]),
            )
        }
    }
}

/// PATH(m, D[n]).
pub(crate) fn reference_inclusion(leaf_index: usize, leaf_hashes: &[Hash]) -> Vec<Hash> {
    let size = leaf_hashes.len();
    if size <= 1 {
        return Vec::new();
    }
    let k = split_point(size);
    if leaf_index < k {
        let mut path = reference_inclusion(leaf_index, &leaf_hashes[..k]);
        path.push(reference_root(&leaf_hashes[k..]));
        path
    } else {
        let mut path = reference_inclusion(leaf_index - k, &leaf_hashes[k..]);
        path.push(reference_root(&leaf_hashes[..k]));
        path
    }
}

/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for `0 < m <= n`.
pub(crate) fn reference_consistency(old_size: usize, leaf_hashes: &[Hash]) -> Vec<Hash> {
    reference_subproof(old_size, leaf_hashes, true)
}

fn reference_subproof(old_size: usize, leaf_hashes: &[Hash], whole: bool) -> Vec<Hash> {
    let size = leaf_hashes.len();
    if old_size == size {
        return if whole {
            Vec::new()
        } else {
            vec![reference_root(leaf_hashes)]
        };
    }
    let k = split_point(size);
    if old_size <= k {
        let mut proof = reference_subproof(old_size, &leaf_hashes[..k], whole);
        proof.push(reference_root(&leaf_hashes[k..]));
        proof
    } else {
        let mut proof = reference_subproof(old_size - k, &leaf_hashes[k..], false);
        proof.push(reference_root(&leaf_hashes[..k]));
        proof
    }
}

/// Distinct leaf hashes `Hash::of_leaf("leaf <i>")`.
pub(crate) fn sample_leaves(count: usize) -> Vec<Hash> {
    (0..count)
        .map(|index| Hash::of_leaf(format!("leaf {index}").as_bytes()))
        .collect()
}
