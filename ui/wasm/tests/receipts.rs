//! Receipts, tlog-proofs and policies through the module's exported functions, called natively
//! exactly as the browser calls them: one valid receipt made by cairn-spec's example log, and
//! receipts tampered one part at a time, each refused with cairn-spec's reason.

mod support;

use cairn_spec::receipt::Receipt;
use cairn_ui_wasm::{
    cairn_alloc, cairn_check_policy, cairn_free, cairn_verify_document, cairn_verify_receipt,
    MAX_INPUT_BYTES,
};
use serde_json::Value;
use support::{call, event_world, policy_text};

fn verify(receipt: &[u8], policy: &str) -> Value {
    call(
        // SAFETY: the inputs are what cairn_alloc gave (support::call).
        |[(r, rl), (p, pl)]| unsafe { cairn_verify_receipt(r, rl, p, pl) },
        [receipt, policy.as_bytes()],
    )
}

fn refused(verdict: &Value, reason: &str) {
    assert_eq!(verdict["ok"], false, "{verdict}");
    let error = verdict["error"].as_str().expect("a refusal says why");
    assert!(error.contains(reason), "{error:?} does not say {reason:?}");
}

#[test]
fn a_valid_receipt_verifies_with_its_witnesses_timestamps_and_event() {
    let (world, _) = event_world(7);
    let receipt = world.receipt(4, &[0, 2]);
    let verdict = verify(
        receipt.to_json().as_bytes(),
        &policy_text(&world, "two", true),
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["kind"], "receipt");
    assert_eq!(verdict["origin"], cairn_spec::example::ORIGIN);
    assert_eq!(verdict["index"], 4);
    assert_eq!(verdict["tree_size"], 7);
    assert_eq!(verdict["leaf_hash"], receipt.leaf_hash.to_base64());
    let witnesses: Vec<&str> = verdict["witnesses"]
        .as_array()
        .expect("witnesses")
        .iter()
        .map(|witness| witness["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(witnesses, ["w0", "w2"]);
    assert_eq!(verdict["witnesses"][1]["cosigned_at"], 1_764_000_002u64);
    assert_eq!(verdict["timestamps"][0]["tsa"], "test");
    assert_eq!(verdict["timestamps"][0]["time"], "2025-11-24T16:00:00Z");
    assert_eq!(verdict["leaf"]["event"]["schema_version"], 1);
    assert_eq!(
        verdict["leaf"]["event"]["event_id"],
        "00000000-0000-4000-8000-000000000004"
    );
    assert_eq!(
        verdict["inclusion_proof"].as_array().expect("proof").len(),
        receipt.inclusion_proof.len()
    );
}

#[test]
fn tampered_receipts_are_refused_with_the_reason() {
    let (world, _) = event_world(7);
    let policy = policy_text(&world, "two", true);
    let good = world.receipt(4, &[0, 2]);

    let mut leaf = good.clone();
    leaf.leaf = Some(b"another leaf".to_vec());
    refused(
        &verify(leaf.to_json().as_bytes(), &policy),
        "the leaf hashes to",
    );

    let mut proof = good.clone();
    proof.inclusion_proof[1] = cairn_spec::Hash::of_leaf(b"forged");
    refused(
        &verify(proof.to_json().as_bytes(), &policy),
        "inclusion proof",
    );

    let mut index = good.clone();
    index.index = 5;
    refused(
        &verify(index.to_json().as_bytes(), &policy),
        "inclusion proof",
    );

    // The checkpoint says another tree size: the log's signature no longer verifies.
    let mut size = good.clone();
    size.checkpoint = size.checkpoint.replacen("\n7\n", "\n8\n", 1);
    refused(&verify(size.to_json().as_bytes(), &policy), "signature");

    let mut token = good.clone();
    let last = token.timestamps[0].token.len() - 3;
    token.timestamps[0].token[last] ^= 1;
    refused(&verify(token.to_json().as_bytes(), &policy), "timestamp 0");

    let lonely = world.receipt(4, &[1]);
    refused(
        &verify(lonely.to_json().as_bytes(), &policy),
        "witness quorum not met",
    );

    let mut json: Value = serde_json::from_str(&good.to_json()).expect("JSON");
    json["colour"] = Value::from("blue");
    refused(
        &verify(json.to_string().as_bytes(), &policy),
        "unknown field",
    );
}

#[test]
fn the_policy_decides_what_verifies() {
    let (world, _) = event_world(3);
    let receipt = world.receipt(1, &[0]).to_json();
    // Quorum one of three (w0 is a group of its own name): verifies.
    assert_eq!(
        verify(receipt.as_bytes(), &policy_text(&world, "w0", true))["ok"],
        true
    );
    // All three required: refused.
    refused(
        &verify(receipt.as_bytes(), &policy_text(&world, "every", true)),
        "witness quorum not met",
    );
    // Another log's key: refused.
    let stranger = cairn_spec::note::Ed25519Signer::from_seed(
        cairn_spec::note::KeyName::new("other.example/log").expect("a name"),
        [9; 32],
    )
    .verifier()
    .to_vkey();
    refused(
        &verify(
            receipt.as_bytes(),
            &format!("log {stranger}\nquorum none\n"),
        ),
        "trusts no log",
    );
    refused(&verify(receipt.as_bytes(), "  \n"), "no policy given");
    refused(&verify(receipt.as_bytes(), "log not-a-key\n"), "policy");
}

#[test]
fn a_tlog_proof_verifies_and_an_unknown_document_is_refused() {
    let (world, _) = event_world(5);
    let receipt = world.receipt(2, &[0, 1]);
    let tlog_proof = receipt.to_tlog_proof();
    let policy = policy_text(&world, "two", false);
    let verdict = verify(tlog_proof.as_bytes(), &policy);
    assert_eq!(verdict["ok"], true, "{verdict}");
    // The leaf travels in the tlog-proof's `extra` line; the timestamps have no place there.
    assert_eq!(verdict["leaf"]["present"], true);
    assert_eq!(
        verdict["timestamps"].as_array().expect("timestamps").len(),
        0
    );
    assert_eq!(
        Receipt::from_tlog_proof(&tlog_proof, None)
            .expect("reads")
            .index,
        2
    );

    let document = |bytes: &[u8]| {
        call(
            // SAFETY: the inputs are what cairn_alloc gave (support::call).
            |[(d, dl), (p, pl)]| unsafe { cairn_verify_document(d, dl, p, pl) },
            [bytes, policy.as_bytes()],
        )
    };
    assert_eq!(document(tlog_proof.as_bytes())["kind"], "receipt");
    assert_eq!(document(receipt.to_json().as_bytes())["ok"], true);
    let unknown = document(br#"{"format":"cairn.evidence/v1"}"#);
    assert_eq!(unknown["kind"], "unknown");
    refused(&unknown, "unknown document format");
    refused(&document(b"\x00\x01 not json"), "not a receipt");
    refused(&document(b""), "not a receipt");
}

#[test]
fn a_policy_is_described_or_refused() {
    let (world, _) = event_world(1);
    let check = |text: &str| {
        call(
            // SAFETY: the input is what cairn_alloc gave (support::call).
            |[(p, pl)]| unsafe { cairn_check_policy(p, pl) },
            [text.as_bytes()],
        )
    };
    let verdict = check(&policy_text(&world, "two", true));
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["logs"][0], cairn_spec::example::ORIGIN);
    assert_eq!(verdict["witnesses"].as_array().expect("witnesses").len(), 3);
    assert_eq!(verdict["quorum"], "two");
    assert_eq!(verdict["tsas"][0], "test");
    assert_eq!(verdict["tsa_quorum"], 1);
    refused(&check("quorum nobody\n"), "policy");
}

#[test]
fn memory_beyond_the_limit_is_refused_and_null_is_freed_safely() {
    assert!(cairn_alloc(MAX_INPUT_BYTES + 5).is_null());
    let ptr = cairn_alloc(0);
    assert!(!ptr.is_null());
    // SAFETY: from cairn_alloc(0); null is ignored.
    unsafe {
        cairn_free(ptr, 0);
        cairn_free(std::ptr::null_mut(), 10);
    }
}
