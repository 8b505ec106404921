//! The test vectors of completeness.md §6, read from the document itself: every labelled hex
//! value of its `text` blocks must be what this crate computes for that label, and every value
//! computed here must be in the document, so the page cannot drift from the code. Also the
//! verifier of §3.3 on the vectors' index: an answer must be exactly the window's events, in
//! order.

use sha2::{Digest, Sha256};

use super::records::Record;
use super::*;

/// completeness.md, as the crate is built with it.
const DOCUMENT: &str = include_str!("../../docs/completeness.md");

/// The actions of the vectors' six leaves.
const ACTIONS: [&str; 6] = ["login", "logout", "login", "read", "login", "read"];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The vectors' leaf `i`: leaf hash `SHA-256(0x00 ‖ i as 8 bytes big-endian)`.
fn item(leaf_index: u64) -> Item {
    Item {
        leaf_index,
        leaf_hash: Hash::of_leaf(&leaf_index.to_be_bytes()),
    }
}

/// The vectors' index, the list of `login`, and the record stream of one run and its mark.
fn index() -> (IndexMap, Vec<Item>, Vec<u8>) {
    let (mut map, mut login, mut stream) = (IndexMap::new(), Vec::new(), Vec::new());
    for (leaf, action) in ACTIONS.iter().enumerate() {
        let item = item(leaf as u64);
        map.add(action_key(action), item).expect("in order");
        stream.extend(Record::Item(item, vec![action_key(action)]).to_bytes());
        if *action == "login" {
            login.push(item);
        }
    }
    stream.extend(Record::Mark(ACTIONS.len() as u64, map.root()).to_bytes());
    (map, login, stream)
}

/// Every vector, (label as the document writes it, lowercase hex), computed here.
fn computed() -> Vec<(String, String)> {
    let (mut map, login, stream) = index();
    let login_key = action_key("login");
    let mut vectors = vec![
        ("action_key(\"login\")".to_owned(), hex(&login_key.0)),
        (
            "action_key(\"logout\")".into(),
            hex(&action_key("logout").0),
        ),
        ("action_key(\"read\")".into(), hex(&action_key("read").0)),
        ("list root of login".into(), list_root(&login).to_hex()),
        ("map root".into(), map.root().to_hex()),
    ];
    let proof = map.prove(&login_key);
    for (level, sibling) in proof.siblings.iter().enumerate() {
        vectors.push((
            format!("login's map proof, sibling {level}"),
            sibling.to_hex(),
        ));
    }
    let delete = action_key("delete");
    vectors.push(("action_key(\"delete\")".into(), hex(&delete.0)));
    let absent = map.prove(&delete);
    for (level, sibling) in absent.siblings.iter().enumerate() {
        vectors.push((
            format!("delete's map proof, sibling {level}"),
            sibling.to_hex(),
        ));
    }
    if let PathEnd::AbsentOther(other, _) = absent.end {
        vectors.push(("delete's path ends at the key".into(), hex(&other.0)));
    }
    // The window [3, 6) of login: the run of positions [1, 3) (leaves 2 and 4, the one
    // before the window and the one in it) and its proof.
    let hashes: Vec<Hash> = login.iter().map(Item::hash).collect();
    let run = range_proof(&hashes, 1, 3).expect("a run");
    for (position, hash) in run.iter().enumerate() {
        vectors.push((
            format!("run [1, 3) of login, proof {position}"),
            hash.to_hex(),
        ));
    }
    vectors.push(("first item record (leaf 0)".into(), hex(&stream[..74])));
    vectors.push((
        "SHA-256 of the stream".into(),
        hex(&Sha256::digest(&stream)),
    ));
    vectors
}

/// The labelled hex values of §6's `text` blocks: a line is a label, two spaces or more, and
/// hex digits; a line of hex digits alone continues the value above it.
fn documented() -> Vec<(String, String)> {
    let section = DOCUMENT
        .split("\n## 6. Test vectors")
        .nth(1)
        .and_then(|rest| rest.split("\n## 7.").next())
        .expect("completeness.md has a §6");
    let mut vectors: Vec<(String, String)> = Vec::new();
    let mut in_block = false;
    let is_hex = |word: &str| !word.is_empty() && word.bytes().all(|b| b.is_ascii_hexdigit());
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let trimmed = line.trim();
        if line.starts_with(' ') && is_hex(trimmed) {
            if let Some((_, value)) = vectors.last_mut() {
                value.push_str(trimmed);
            }
            continue;
        }
        if let Some((label, value)) = trimmed.rsplit_once("  ") {
            if is_hex(value.trim()) {
                vectors.push((label.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }
    vectors
}

#[test]
fn the_documented_vectors_are_what_the_code_computes() {
    let documented = documented();
    let computed = computed();
    for (label, value) in &computed {
        let found = documented.iter().find(|(name, _)| name == label);
        assert_eq!(
            found.map(|(_, value)| value.as_str()),
            Some(value.as_str()),
            "completeness.md §6, {label}"
        );
    }
    for (label, _) in &documented {
        assert!(
            computed.iter().any(|(name, _)| name == label),
            "completeness.md §6 documents {label:?}, which no code computes"
        );
    }
    let stream = index().2;
    assert!(
        DOCUMENT.contains(&format!("is {} bytes", stream.len())),
        "completeness.md §6 gives the stream's length"
    );
}

#[test]
fn the_documented_proofs_verify_and_an_answer_must_be_the_window_in_order() {
    let (mut map, login, _) = index();
    let key = action_key("login");
    let size = ACTIONS.len() as u64;
    let proof = CompletenessProof {
        field: "action".into(),
        value: "login".into(),
        from: 3,
        to: size,
        keys: vec![KeyProof::build(key, &map.prove(&key), &login, 3, size).expect("builds")],
        received: None,
    };
    let run = proof.keys[0].run.as_ref().expect("a run");
    assert_eq!(
        (run.start, run.items.len()),
        (1, 2),
        "the documented run [1, 3)"
    );
    let root = map.root();
    let answer = |leaves: &[u64]| -> Vec<(u64, Hash)> {
        leaves
            .iter()
            .map(|&leaf| (leaf, item(leaf).leaf_hash))
            .collect()
    };
    let proven = proof.verify(&root, size, &answer(&[4])).expect("complete");
    assert_eq!((proven.from, proven.to, proven.events), (3, 6, 1));
    // The whole tree: leaves 0, 2 and 4.
    let whole = CompletenessProof {
        from: 0,
        keys: vec![KeyProof::build(key, &map.prove(&key), &login, 0, size).expect("builds")],
        ..proof.clone()
    };
    assert!(whole.verify(&root, size, &answer(&[0, 2, 4])).is_ok());
    let refused = [
        (&[0, 4][..], CompletenessError::Missing(2)),
        (&[0, 1, 2, 4][..], CompletenessError::Unexpected(1)),
        (&[0, 2, 4, 5][..], CompletenessError::Unexpected(5)),
        (&[2, 0, 4][..], CompletenessError::NotIncreasing(0)),
        (&[0, 2, 2, 4][..], CompletenessError::NotIncreasing(2)),
        (&[][..], CompletenessError::Missing(0)),
    ];
    for (leaves, error) in refused {
        assert_eq!(
            whole.verify(&root, size, &answer(leaves)),
            Err(error),
            "{leaves:?}"
        );
    }
    let mut wrong = answer(&[0, 2, 4]);
    wrong[1].1 = item(3).leaf_hash;
    assert_eq!(
        whole.verify(&root, size, &wrong),
        Err(CompletenessError::WrongLeaf(2))
    );
}

#[test]
fn a_run_longer_than_the_limit_is_refused_with_the_reason() {
    let (mut map, login, _) = index();
    let key = action_key("login");
    let size = ACTIONS.len() as u64;
    let mut proof = CompletenessProof {
        field: "action".into(),
        value: "login".into(),
        from: 0,
        to: size,
        keys: vec![KeyProof::build(key, &map.prove(&key), &login, 0, size).expect("builds")],
        received: None,
    };
    if let Some(run) = proof.keys[0].run.as_mut() {
        let filler = run.items[0];
        run.items.resize(MAX_RUN_ITEMS + 1, filler);
    }
    let error = proof.verify(&map.root(), size, &[]).expect_err("refused");
    assert!(
        error.to_string().contains(&format!(
            "a run of {} items, more than {MAX_RUN_ITEMS}",
            MAX_RUN_ITEMS + 1
        )),
        "{error}"
    );
}
