//! Interoperability: proofs served by a real RFC 6962 log verify with Cairn's verifiers.
//!
//! The vectors in `data/ct-argon2020.json` are responses of Google's Argon 2020 Certificate
//! Transparency log (get-sth, get-entries, get-proof-by-hash, get-sth-consistency), as recorded
//! in cloudflare/azul `crates/tlog_tiles/tests/http_get/`; the root of the older tree is the one
//! Go's `golang.org/x/mod/sumdb/tlog/ct_test.go` checks against the same log.

use base64::Engine as _;
use cairn_spec::merkle::{verify_consistency, verify_inclusion};
use cairn_spec::Hash;

#[derive(serde::Deserialize)]
struct TreeHead {
    tree_size: u64,
    sha256_root_hash: Hash,
}

#[derive(serde::Deserialize)]
struct Vectors {
    sth: TreeHead,
    leaf_index: u64,
    leaf_input: String,
    leaf_hash: Hash,
    audit_path: Vec<Hash>,
    old_size: u64,
    old_root: Hash,
    consistency: Vec<Hash>,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("data/ct-argon2020.json")).expect("vector file is valid")
}

#[test]
fn leaf_hash_of_a_real_ct_entry() {
    let vectors = vectors();
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(&vectors.leaf_input)
        .expect("leaf_input is base64");
    assert_eq!(Hash::of_leaf(&leaf), vectors.leaf_hash);
}

#[test]
fn verifies_a_real_ct_inclusion_proof() {
    let vectors = vectors();
    assert_eq!(
        verify_inclusion(
            vectors.leaf_index,
            vectors.sth.tree_size,
            &vectors.leaf_hash,
            &vectors.audit_path,
            &vectors.sth.sha256_root_hash,
        ),
        Ok(())
    );
    let mut wrong = vectors.audit_path.clone();
    wrong.swap(3, 4);
    assert!(verify_inclusion(
        vectors.leaf_index,
        vectors.sth.tree_size,
        &vectors.leaf_hash,
        &wrong,
        &vectors.sth.sha256_root_hash,
    )
    .is_err());
    assert!(verify_inclusion(
        vectors.leaf_index + 1,
        vectors.sth.tree_size,
        &vectors.leaf_hash,
        &vectors.audit_path,
        &vectors.sth.sha256_root_hash,
    )
    .is_err());
}

#[test]
fn verifies_a_real_ct_consistency_proof() {
    let vectors = vectors();
    assert_eq!(
        verify_consistency(
            vectors.old_size,
            vectors.sth.tree_size,
            &vectors.old_root,
            &vectors.sth.sha256_root_hash,
            &vectors.consistency,
        ),
        Ok(())
    );
    assert!(verify_consistency(
        vectors.old_size + 1,
        vectors.sth.tree_size,
        &vectors.old_root,
        &vectors.sth.sha256_root_hash,
        &vectors.consistency,
    )
    .is_err());
    assert!(verify_consistency(
        vectors.old_size,
        vectors.sth.tree_size,
        &vectors.old_root,
        &vectors.sth.sha256_root_hash,
        &vectors.consistency[1..],
    )
    .is_err());
}
