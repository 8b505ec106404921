//! The many-receipt verifier (`ReceiptVerifier`: caches and `verify_batch`) against the fully
//! cold `verify`: every failure is still found and named the same way inside a batch, a cached
//! result never stands for different bytes, and both agree on every single-bit change of a
//! receipt.

use base64::Engine as _;
use cairn_spec::example::{test_tsa, world, TestTsa, World};
use cairn_spec::hash::Hash;
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{verify, Receipt, ReceiptError, ReceiptVerifier};
use cairn_spec::time::Instant;
use cairn_spec::timestamp::{
    make_root_certificate, make_tsa_certificate, CertificateSpec, KeyPair, TimestampError,
    TsaSigner,
};

const TREE_SIZE: usize = 64;

/// Receipts of several checkpoints (tree sizes `TREE_SIZE - n % checkpoints`), some sharing one.
fn receipts(world: &World, count: usize, checkpoints: usize) -> Vec<Receipt> {
    (0..count)
        .map(|n| {
            let tree_size = (TREE_SIZE - n % checkpoints) as u64;
            world.receipt_at((n * 7) % tree_size as usize, tree_size, &[0, 2])
        })
        .collect()
}

/// The checkpoint note with one byte of `key_name`'s signature changed.
fn with_bad_signature(note: &str, key_name: &str) -> String {
    let prefix = format!("\u{2014} {key_name} ");
    let mut lines: Vec<String> = note.split_inclusive('\n').map(str::to_owned).collect();
    let line = lines
        .iter_mut()
        .find(|line| line.starts_with(&prefix))
        .expect("the note has that signature");
    let encoded = line[prefix.len()..].trim_end();
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let last = bytes.len() - 1;
    bytes[last - 40] ^= 0x01; // inside the Ed25519 signature, after the key ID (and timestamp)
    *line = format!(
        "{prefix}{}\n",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    );
    lines.concat()
}

/// Verifies `receipts` in one batch and checks every result against the cold `verify`.
fn batch_agrees_with_cold(policy: &Policy, receipts: &[Receipt]) -> Vec<Result<(), ReceiptError>> {
    let mut verifier = ReceiptVerifier::new(policy);
    let results = verifier.verify_batch(receipts);
    assert_eq!(results.len(), receipts.len());
    for (position, (receipt, result)) in receipts.iter().zip(&results).enumerate() {
        assert_eq!(
            *result,
            verify(receipt, policy),
            "receipt {position}: the batch and the cold verifier disagree"
        );
    }
    results.into_iter().map(|result| result.map(drop)).collect()
}

#[test]
fn a_batch_of_valid_receipts_gives_what_verify_gives() {
    let world = world(TREE_SIZE);
    let policy = world.policy("two", true);
    let receipts = receipts(&world, 300, 7);
    let results = batch_agrees_with_cold(&policy, &receipts);
    assert!(results.iter().all(Result::is_ok));
    // Again through the same verifier, now from its caches, and one at a time.
    let mut verifier = ReceiptVerifier::new(&policy);
    verifier.verify_batch(&receipts);
    for receipt in &receipts {
        assert_eq!(verifier.verify(receipt), verify(receipt, &policy));
    }
    assert_eq!(
        verifier.verify_batch(&receipts),
        receipts
            .iter()
            .map(|receipt| verify(receipt, &policy))
            .collect::<Vec<_>>()
    );
}

#[test]
fn every_kind_of_failure_is_named_inside_a_batch() {
    let world = world(TREE_SIZE);
    let policy = world.policy("two", true);
    let good = receipts(&world, 40, 5);

    let mut bad_log = good[3].clone();
    bad_log.checkpoint = with_bad_signature(&bad_log.checkpoint, "example.com/audit");
    let mut bad_cosignature = good[4].clone();
    bad_cosignature.checkpoint = with_bad_signature(&bad_cosignature.checkpoint, "w2.example");
    let mut bad_tsa_signature = good[5].clone();
    let token = &mut bad_tsa_signature.timestamps[0].token;
    let inside_signature = token.len() - 50;
    token[inside_signature] ^= 0x01;
    let mut bad_proof = good[6].clone();
    bad_proof.inclusion_proof[1] = Hash::of_leaf(b"not a sibling");

    // Each bad receipt among good ones, two of them sharing a checkpoint with good receipts.
    let mut batch = good.clone();
    for (position, bad) in [
        (3, &bad_log),
        (17, &bad_cosignature),
        (18, &bad_tsa_signature),
        (30, &bad_proof),
    ] {
        batch.insert(position, bad.clone());
    }
    let results = batch_agrees_with_cold(&policy, &batch);
    let failures: Vec<usize> = (0..batch.len()).filter(|&n| results[n].is_err()).collect();
    assert_eq!(failures, vec![3, 17, 18, 30]);

    let mut verifier = ReceiptVerifier::new(&policy);
    let results = verifier.verify_batch(&batch);
    assert!(
        matches!(&results[3], Err(ReceiptError::Signature(message)) if message.contains("example.com/audit")),
        "{:?}",
        results[3]
    );
    assert!(
        matches!(&results[17], Err(ReceiptError::Signature(message)) if message.contains("w2.example")),
        "{:?}",
        results[17]
    );
    assert!(
        matches!(
            &results[18],
            Err(ReceiptError::Timestamp {
                position: 0,
                source: TimestampError::BadSignature { .. }
            })
        ),
        "{:?}",
        results[18]
    );
    assert!(
        matches!(&results[30], Err(ReceiptError::Inclusion { .. })),
        "{:?}",
        results[30]
    );
}

/// A TSA whose certificate names the policy's root as issuer but is signed by another key.
fn tsa_with_forged_certificate(genuine: &TestTsa) -> TestTsa {
    let impostor = KeyPair::ed25519_from_seed([0x66; 32]);
    let tsa_key = KeyPair::ed25519_from_seed([0x67; 32]);
    let validity = |subject, serial_number| CertificateSpec {
        subject,
        serial_number,
        not_before: Instant::from_seconds(1_700_000_000),
        not_after: Instant::from_seconds(2_000_000_000),
    };
    // A root with the genuine root's name and another key.
    let impostor_root =
        make_root_certificate(&impostor, &validity("CN=Test Root", &[1])).expect("root");
    let certificate = make_tsa_certificate(
        &impostor,
        &impostor_root,
        &tsa_key.public_key_info_der(),
        &validity("CN=Test TSA", &[9]),
    )
    .expect("certificate");
    TestTsa {
        root_der: genuine.root_der.clone(),
        signer: TsaSigner::new(tsa_key, certificate, vec![]).expect("signer"),
    }
}

#[test]
fn a_bad_certificate_is_refused_even_after_the_genuine_chain_was_cached() {
    let mut world = world(TREE_SIZE);
    let policy = world.policy("two", true);
    let good = receipts(&world, 10, 3);
    world.tsa = tsa_with_forged_certificate(&world.tsa);
    let forged = world.receipt_at(5, TREE_SIZE as u64, &[0, 2]);
    let mut corrupt_certificate = good[1].clone();
    let token = &mut corrupt_certificate.timestamps[0].token;
    let in_certificate = token.len() / 3;
    token[in_certificate] ^= 0x01;

    let mut verifier = ReceiptVerifier::new(&policy);
    assert!(verifier.verify_batch(&good).iter().all(Result::is_ok));
    // The forged certificate is a valid token of a TSA the policy does not trust.
    assert_eq!(
        verifier.verify(&forged),
        Err(ReceiptError::TimestampQuorumNotMet {
            found: 0,
            required: 1
        })
    );
    assert!(verifier.verify(&corrupt_certificate).is_err());
    let mut batch = good.clone();
    batch.insert(2, forged.clone());
    batch.insert(7, corrupt_certificate.clone());
    let results = batch_agrees_with_cold(&policy, &batch);
    let failures: Vec<usize> = (0..batch.len()).filter(|&n| results[n].is_err()).collect();
    assert_eq!(failures, vec![2, 7]);
    // Under a policy that needs no TSA it still verifies, and says its TSA is unknown.
    let relaxed = World {
        tsa: test_tsa(7),
        ..world
    }
    .policy("two", false);
    let verified = ReceiptVerifier::new(&relaxed)
        .verify(&forged)
        .expect("valid without a TSA quorum");
    assert_eq!(verified.timestamps[0].0, None);
}

#[test]
fn a_cached_checkpoint_or_token_never_stands_for_other_bytes() {
    let world = world(TREE_SIZE);
    let policy = world.policy("two", true);
    let good = world.receipt_at(9, 40, &[0, 2]);
    let other = world.receipt_at(9, 41, &[0, 2]);
    let mut verifier = ReceiptVerifier::new(&policy);
    assert!(verifier.verify(&good).is_ok());
    assert!(verifier.verify(&other).is_ok());

    // The same checkpoint with one signature byte changed.
    let mut tampered = good.clone();
    tampered.checkpoint = with_bad_signature(&good.checkpoint, "w0.example");
    assert!(matches!(
        verifier.verify(&tampered),
        Err(ReceiptError::Signature(_))
    ));
    assert!(matches!(
        verifier.verify_batch(std::slice::from_ref(&tampered))[0],
        Err(ReceiptError::Signature(_))
    ));
    // A cached token with another checkpoint: its imprint no longer matches.
    let mut swapped = good.clone();
    swapped.timestamps = other.timestamps.clone();
    let expected = verify(&swapped, &policy);
    assert!(matches!(
        expected,
        Err(ReceiptError::Timestamp {
            position: 0,
            source: TimestampError::ImprintMismatch { .. }
        })
    ));
    assert_eq!(verifier.verify(&swapped), expected);
    assert_eq!(
        verifier.verify_batch(&[good.clone(), swapped.clone(), other.clone()])[1],
        expected
    );
    // And the good receipts are still good.
    assert!(verifier.verify(&good).is_ok());
}

/// Flips two bits of every byte of a receipt's JSON, one at a time (a few thousand receipts):
/// either the JSON no longer parses, or it parses to a receipt that `verify` refuses, or (inside
/// base64 padding bits) to exactly the same receipt; and the cached and batch verifiers always
/// say what `verify` says. The policy makes every part of the receipt carry weight: with a looser
/// quorum, turning one surplus cosignature into a signature by an unknown key leaves a receipt
/// that still proves the same thing (and reports the unknown signature).
#[test]
fn cached_batch_and_cold_verifiers_agree_on_every_single_bit_change() {
    let world = world(20);
    let policy = world.policy("every", true);
    let receipt = world.receipt(7, &[0, 1, 2]);
    let json = serde_json::to_vec(&receipt).expect("serialises");
    let mut cached = ReceiptVerifier::new(&policy);
    assert!(
        cached.verify(&receipt).is_ok(),
        "the caches hold the genuine receipt"
    );
    let mut compared = 0;
    for position in 0..json.len() {
        for bit in [0x01u8, 0x20] {
            let mut tampered = json.clone();
            tampered[position] ^= bit;
            let Ok(parsed) = Receipt::from_json(&tampered) else {
                continue;
            };
            let cold = verify(&parsed, &policy);
            assert_eq!(
                cached.verify(&parsed),
                cold,
                "byte {position}, bit {bit:#x}"
            );
            let batch = ReceiptVerifier::new(&policy).verify_batch(&[
                receipt.clone(),
                parsed.clone(),
                receipt.clone(),
            ]);
            assert_eq!(batch[1], cold, "byte {position}, bit {bit:#x}, in a batch");
            assert!(batch[0].is_ok() && batch[2].is_ok());
            assert!(
                parsed == receipt || cold.is_err(),
                "a change at byte {position} was not detected"
            );
            compared += 1;
        }
    }
    assert!(compared > 1000, "only {compared} tampered receipts parsed");
}
