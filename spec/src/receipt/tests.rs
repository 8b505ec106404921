use super::*;
use crate::example::{test_tsa, world, World, ORIGIN};
use crate::note::{Ed25519Signer, KeyName, Note};
use crate::policy::Policy;

#[test]
fn a_complete_receipt_verifies_and_says_what_it_proves() {
    let world = world(300);
    let policy = world.policy("two", true);
    let receipt = world.receipt(123, &[0, 2]);
    let verified = verify(&receipt, &policy).expect("the receipt verifies");
    assert_eq!(verified.origin, ORIGIN);
    assert_eq!(verified.index, 123);
    assert_eq!(verified.tree_size, 300);
    assert_eq!(
        verified.witnesses,
        vec![
            ("w0".to_string(), 1_764_000_000),
            ("w2".to_string(), 1_764_000_002)
        ]
    );
    assert_eq!(
        verified.timestamps,
        vec![(
            Some("test".to_string()),
            Instant::from_seconds(1_764_000_000)
        )]
    );
    // And through JSON and back.
    let json = receipt.to_json();
    let back = Receipt::from_json(json.as_bytes()).expect("its own JSON parses");
    assert_eq!(back, receipt);
    assert!(verify(&back, &policy).is_ok());
}

#[test]
fn refuses_a_receipt_below_the_witness_quorum() {
    let world = world(10);
    let receipt = world.receipt(3, &[1]);
    assert_eq!(
        verify(&receipt, &world.policy("two", false)),
        Err(ReceiptError::QuorumNotMet {
            cosigned: vec!["w1".to_string()]
        })
    );
    assert!(verify(&receipt, &world.policy("w1", false)).is_ok());
    assert!(verify(&receipt, &world.policy("none", false)).is_ok());
}

#[test]
fn refuses_a_receipt_without_a_trusted_timestamp_when_the_policy_asks_for_one() {
    let world = world(10);
    let mut receipt = world.receipt(3, &[0, 1]);
    receipt.timestamps.clear();
    assert_eq!(
        verify(&receipt, &world.policy("two", true)),
        Err(ReceiptError::TimestampQuorumNotMet {
            found: 0,
            required: 1
        })
    );
    // A token from a TSA the policy does not know is checked but does not count.
    let stranger = test_tsa(99);
    let body = Note::parse(receipt.checkpoint.as_bytes()).expect("note");
    receipt.timestamps.push(ReceiptTimestamp {
        token: stranger.token_over(body.text(), 5),
    });
    assert!(matches!(
        verify(&receipt, &world.policy("two", true)),
        Err(ReceiptError::TimestampQuorumNotMet { found: 0, .. })
    ));
    let verified = verify(&receipt, &world.policy("two", false)).expect("no TSA needed");
    assert_eq!(verified.timestamps.len(), 1);
    assert_eq!(verified.timestamps[0].0, None);
}

#[test]
fn a_timestamp_over_another_checkpoint_is_refused() {
    let world = world(10);
    let mut receipt = world.receipt(3, &[0, 1]);
    receipt.timestamps[0].token = world.tsa.token_over("other.example/log\n1\nAAAA\n", 9);
    assert!(matches!(
        verify(&receipt, &world.policy("two", true)),
        Err(ReceiptError::Timestamp { position: 0, .. })
    ));
}

#[test]
fn refuses_a_wrong_leaf_index_or_proof() {
    let world = world(50);
    let policy = world.policy("none", false);
    let receipt = world.receipt(10, &[]);
    let mut wrong_index = receipt.clone();
    wrong_index.index = 11;
    assert!(matches!(
        verify(&wrong_index, &policy),
        Err(ReceiptError::Inclusion { index: 11, .. })
    ));
    let mut wrong_leaf = receipt.clone();
    wrong_leaf.leaf = Some(b"something else".to_vec());
    assert!(matches!(
        verify(&wrong_leaf, &policy),
        Err(ReceiptError::LeafHashMismatch { .. })
    ));
    let mut hash_only = receipt.clone();
    hash_only.leaf = None;
    assert!(verify(&hash_only, &policy).is_ok());
    let mut short_proof = receipt;
    short_proof.inclusion_proof.pop();
    assert!(matches!(
        verify(&short_proof, &policy),
        Err(ReceiptError::Inclusion { .. })
    ));
}

#[test]
fn refuses_checkpoints_of_unknown_logs_and_unsigned_ones() {
    let world = world(5);
    let receipt = world.receipt(1, &[0, 1]);
    let other = World {
        log: Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid"), [2; 32]),
        ..world
    };
    // Same origin, another key: the note has no signature by the policy's log key.
    assert!(matches!(
        verify(&receipt, &other.policy("none", false)),
        Err(ReceiptError::Signature(_))
    ));
    let mut renamed = receipt.clone();
    renamed.checkpoint = renamed.checkpoint.replacen(ORIGIN, "example.com/other", 1);
    assert!(matches!(
        verify(&renamed, &other.policy("none", false)),
        Err(ReceiptError::UnknownLog { .. })
    ));
}

#[test]
fn strict_json_refuses_unknown_fields_wrong_format_and_oversize() {
    let world = world(4);
    let receipt = world.receipt(0, &[]);
    let mut value: serde_json::Value = serde_json::to_value(&receipt).expect("serialises");
    value["surprise"] = serde_json::Value::Bool(true);
    assert!(matches!(
        Receipt::from_json(value.to_string().as_bytes()),
        Err(ReceiptError::Json(_))
    ));
    let mut wrong = receipt.clone();
    wrong.format = "cairn.receipt/v0".to_string();
    assert!(matches!(
        Receipt::from_json(serde_json::to_string(&wrong).expect("json").as_bytes()),
        Err(ReceiptError::Format { .. })
    ));
    let mut long = receipt;
    long.inclusion_proof = vec![Hash::empty_tree(); MAX_INCLUSION_PROOF_LEN + 1];
    assert!(matches!(
        Receipt::from_json(serde_json::to_string(&long).expect("json").as_bytes()),
        Err(ReceiptError::TooLarge { .. })
    ));
    assert!(matches!(
        Receipt::from_json(&vec![b' '; MAX_RECEIPT_BYTES + 1]),
        Err(ReceiptError::TooLarge { .. })
    ));
}

#[test]
fn tlog_proof_export_round_trips_and_verifies() {
    let world = world(40);
    let policy = world.policy("two", false);
    let receipt = world.receipt(33, &[1, 2]);
    let proof = receipt.to_tlog_proof();
    assert!(proof.starts_with("c2sp.org/tlog-proof@v1\nextra "));
    assert!(proof.contains("\nindex 33\n"));
    let back = Receipt::from_tlog_proof(&proof, None).expect("parses");
    assert_eq!(back.leaf, receipt.leaf);
    assert_eq!(back.inclusion_proof, receipt.inclusion_proof);
    assert!(back.timestamps.is_empty());
    assert!(verify(&back, &policy).is_ok());
    // Without extra, the leaf must be supplied; a wrong one fails verification.
    let mut bare = receipt.clone();
    bare.leaf = None;
    let proof = bare.to_tlog_proof();
    assert!(matches!(
        Receipt::from_tlog_proof(&proof, None),
        Err(ReceiptError::TlogProof(_))
    ));
    let given = Receipt::from_tlog_proof(&proof, Some(&world.leaves[33])).expect("parses");
    assert!(verify(&given, &policy).is_ok());
    let wrong = Receipt::from_tlog_proof(&proof, Some(b"not the leaf")).expect("parses");
    assert!(verify(&wrong, &policy).is_err());
    for bad in [
        "",
        "c2sp.org/tlog-proof@v2\nindex 1\n\nx",
        "c2sp.org/tlog-proof@v1\nindex 01\n\nx",
    ] {
        assert!(
            Receipt::from_tlog_proof(bad, Some(b"x")).is_err(),
            "{bad:?}"
        );
    }
}

/// The example receipt of `spec/docs/receipt.md`: five leaves, the log, witness w0, and one
/// token from the test TSA. Everything in it is deterministic (Ed25519 signatures, fixed
/// times), so the page can show it byte for byte.
fn documented_example() -> (Receipt, Policy) {
    let world = world(5);
    let receipt = world.receipt(3, &[0]);
    (receipt, world.policy("w0", true))
}

#[test]
fn the_documented_example_is_what_the_code_makes_and_it_verifies() {
    let page = include_str!("../../docs/receipt.md");
    let marker = "```json\n";
    let start = page.find(marker).expect("the page has a JSON block") + marker.len();
    let end = start + page[start..].find("```").expect("closed block");
    let (receipt, policy) = documented_example();
    if std::env::var_os("CAIRN_PRINT_EXAMPLES").is_some() {
        println!("{}", receipt.to_json());
    }
    assert_eq!(page[start..end].trim_end(), receipt.to_json());
    let parsed = Receipt::from_json(&page.as_bytes()[start..end]).expect("parses");
    let verified = verify(&parsed, &policy).expect("verifies");
    assert_eq!(verified.index, 3);
    assert_eq!(verified.tree_size, 5);
}
