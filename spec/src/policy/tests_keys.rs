//! A policy across key rotations: a log's key history attached, a witness with two keys.

use super::*;
use crate::cosignature::CosignatureSigner;
use crate::example::{world, World};
use crate::key_history::{Action, KeyHistory};
use crate::note::{Ed25519Signer, KeyName};
use crate::receipt::{verify, Receipt};

/// The example world's log key rotated: the same world, its log key seed 0x03.
fn rotated_world() -> World {
    let mut rotated = world(16);
    rotated.log = Ed25519Signer::from_seed(rotated.log.key_name().clone(), [0x03; 32]);
    rotated
}

/// A statement of `history` doing `action`, signed by `signers`.
fn statement(history: &KeyHistory, action: Action, signers: &[&Ed25519Signer]) -> Vec<u8> {
    let mut note = history.next_statement(action).to_note().expect("note");
    for signer in signers {
        note.add_signature(signer.sign(&note)).expect("signs");
    }
    note.to_bytes().expect("bytes")
}

fn verifies(receipt: &Receipt, policy: &Policy) -> bool {
    verify(receipt, policy).is_ok()
}

#[test]
fn a_rotated_key_is_accepted_in_its_range_and_old_receipts_keep_verifying() {
    let (old_world, new_world) = (world(16), rotated_world());
    let (k1, k2) = (&old_world.log, &new_world.log);
    let mut policy = old_world.policy("two", true);
    let origin = k1.key_name().as_str().to_owned();
    let old_receipt = old_world.receipt_at(3, 8, &[0, 1]);
    let new_receipt = new_world.receipt_at(3, 16, &[0, 1]);
    let early_new = new_world.receipt_at(3, 9, &[0, 1]);
    let late_old = old_world.receipt_at(3, 16, &[0, 1]);
    assert!(verifies(&old_receipt, &policy));
    assert!(
        !verifies(&new_receipt, &policy),
        "K2 is unknown before the history"
    );

    let mut history = KeyHistory::new(&k1.verifier().to_vkey()).expect("pinned");
    let introduce = Action::Introduce {
        vkey: k2.verifier().to_vkey(),
        from: 10,
    };
    history
        .append(&statement(&history, introduce, &[k1, k2]))
        .expect("introduced");
    policy
        .attach_key_history(&origin, &history.to_bytes())
        .expect("attached");
    assert!(verifies(&old_receipt, &policy));
    assert!(verifies(&new_receipt, &policy));
    assert!(verifies(&late_old, &policy), "the overlap: K1 still signs");
    assert!(!verifies(&early_new, &policy), "K2 signs from size 10 only");

    let retire = Action::Retire {
        vkey: k1.verifier().to_vkey(),
        last: 12,
    };
    history
        .append(&statement(&history, retire, &[k2]))
        .expect("retired");
    policy
        .attach_key_history(&origin, &history.to_bytes())
        .expect("attached");
    assert!(
        verifies(&old_receipt, &policy),
        "retiring never invalidates older receipts"
    );
    assert!(!verifies(&late_old, &policy), "K1 signs no size above 12");
    assert!(verifies(&new_receipt, &policy));

    let revoke = Action::Revoke {
        vkey: k1.verifier().to_vkey(),
        from: 5,
    };
    history
        .append(&statement(&history, revoke, &[k2]))
        .expect("revoked");
    policy
        .attach_key_history(&origin, &history.to_bytes())
        .expect("attached");
    assert!(
        !verifies(&old_receipt, &policy),
        "a revoked key's signature from size 5 on is a compromise"
    );
    assert!(verifies(&new_receipt, &policy));
    assert!(policy
        .open_checkpoint(new_receipt.checkpoint.as_bytes())
        .is_ok());
    assert!(policy
        .open_checkpoint(old_receipt.checkpoint.as_bytes())
        .is_err());
}

#[test]
fn a_history_is_verified_before_it_is_attached_and_never_rewritten() {
    let (old_world, new_world) = (world(16), rotated_world());
    let (k1, k2) = (&old_world.log, &new_world.log);
    let mut policy = old_world.policy("two", false);
    let origin = k1.key_name().as_str().to_owned();
    let history = KeyHistory::new(&k1.verifier().to_vkey()).expect("pinned");
    let introduce = |from| Action::Introduce {
        vkey: k2.verifier().to_vkey(),
        from,
    };
    let unendorsed = statement(&history, introduce(10), &[k2]);
    assert!(policy.attach_key_history(&origin, &unendorsed).is_err());
    assert!(policy.log(&origin).expect("log").history().is_none());
    assert!(policy
        .attach_key_history(
            "other.example",
            &statement(&history, introduce(10), &[k1, k2])
        )
        .is_err());
    policy
        .attach_key_history(&origin, &statement(&history, introduce(10), &[k1, k2]))
        .expect("attached");
    // Another history from the same pinned key, not an extension of the first.
    let forked = statement(&history, introduce(0), &[k1, k2]);
    assert!(policy.attach_key_history(&origin, &forked).is_err());
    let log = policy.log(&origin).expect("log");
    assert_eq!(log.history().expect("kept").keys()[1].from, 10);
}

#[test]
fn a_witness_may_have_several_keys() {
    let example = world(16);
    let name = KeyName::new("w0.example").expect("name");
    let new_w0 = CosignatureSigner::from_seed(name, [0x30; 32]);
    let mut rotated = world(16);
    rotated.witnesses[0] = new_w0.clone();
    let receipt = rotated.receipt_at(3, 16, &[0]);
    let text = |extra: &str| {
        format!(
            "log {}\nwitness w0 {}\n{extra}quorum w0\n",
            example.log.verifier().to_vkey(),
            example.witnesses[0].verifier().to_vkey()
        )
    };
    let without = Policy::parse(text("").as_bytes()).expect("policy");
    let with_line = format!("witness-key w0 {}\n", new_w0.verifier().to_vkey());
    let with = Policy::parse(text(&with_line).as_bytes()).expect("policy");
    assert_eq!(with.witnesses[0].keys().count(), 2);
    assert!(!verifies(&receipt, &without), "the new key is unknown");
    assert!(verifies(&receipt, &with), "the new key cosigns for w0");
    assert!(
        verifies(&example.receipt_at(3, 16, &[0]), &with),
        "so does the old one"
    );
    for bad in [
        format!("witness-key w9 {}\n", new_w0.verifier().to_vkey()),
        format!(
            "witness-key w0 {}\n",
            example.witnesses[0].verifier().to_vkey()
        ),
        "witness-key w0\n".to_string(),
    ] {
        assert!(Policy::parse(text(&bad).as_bytes()).is_err(), "{bad}");
    }
}
