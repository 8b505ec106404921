use super::*;
use crate::cosignature::CosignatureSigner;
use crate::note::{Ed25519Signer, Note};

const ORIGIN: &str = "example.com/cairn-log";

fn key(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [seed; 32])
}

fn vkey(seed: u8) -> String {
    key(seed).verifier().to_vkey()
}

/// The next statement of `history`, doing `action`, signed by each key of `seeds`.
fn statement(history: &KeyHistory, action: Action, seeds: &[u8]) -> Vec<u8> {
    sign(&history.next_statement(action), seeds)
}

fn sign(statement: &Statement, seeds: &[u8]) -> Vec<u8> {
    let mut note = statement.to_note().expect("note");
    for seed in seeds {
        note.add_signature(key(*seed).sign(&note)).expect("signs");
    }
    note.to_bytes().expect("bytes")
}

/// K1 (seed 1, pinned), K2 introduced from 10, K1 retired after 20, K1 revoked from 15.
fn rotated() -> KeyHistory {
    let mut history = KeyHistory::new(&vkey(1)).expect("pinned");
    let introduce = Action::Introduce {
        vkey: vkey(2),
        from: 10,
    };
    history
        .append(&statement(&history, introduce, &[1, 2]))
        .expect("introduction");
    let retire = Action::Retire {
        vkey: vkey(1),
        last: 20,
    };
    history
        .append(&statement(&history, retire, &[2]))
        .expect("retirement");
    history
}

#[test]
fn each_key_signs_exactly_its_range() {
    let history = rotated();
    let k1 = &history.keys()[0];
    let k2 = &history.keys()[1];
    assert_eq!(k1.status(0), KeyStatus::Valid);
    assert_eq!(k1.status(20), KeyStatus::Valid);
    assert_eq!(k1.status(21), KeyStatus::Retired { last: 20 });
    assert_eq!(k2.status(9), KeyStatus::NotYetValid { from: 10 });
    assert_eq!(k2.status(10), KeyStatus::Valid);
    assert_eq!(k2.status(u64::MAX), KeyStatus::Valid);
    let at = |size| history.valid_at(size).count();
    assert_eq!((at(5), at(15), at(25)), (1, 2, 1));
}

#[test]
fn a_revoked_key_is_a_compromise_from_its_size_on() {
    let mut history = rotated();
    let revoke = Action::Revoke {
        vkey: vkey(1),
        from: 15,
    };
    history
        .append(&statement(&history, revoke, &[2]))
        .expect("revocation");
    let k1 = &history.keys()[0];
    assert_eq!(k1.status(14), KeyStatus::Valid);
    assert_eq!(k1.status(15), KeyStatus::Revoked { from: 15 });
    assert_eq!(k1.status(30), KeyStatus::Revoked { from: 15 });
    let found = history
        .key(&k1.key_name, k1.key_id)
        .expect("found by name and ID");
    assert_eq!(found.vkey, vkey(1));
}

#[test]
fn the_encoding_verifies_back_to_the_same_history() {
    let history = rotated();
    let bytes = history.to_bytes();
    let again = KeyHistory::verify(&vkey(1), &bytes).expect("verifies");
    assert_eq!(again, history);
    assert!(again.extends(&KeyHistory::new(&vkey(1)).expect("pinned")));
    let empty = KeyHistory::verify(&vkey(1), b"").expect("an empty history");
    assert_eq!(empty.valid_at(1_000_000).count(), 1);
    assert!(history.extends(&empty) && !empty.extends(&history));
}

#[test]
fn another_pinned_key_refuses_the_history() {
    let bytes = rotated().to_bytes();
    let error = KeyHistory::verify(&vkey(3), &bytes).expect_err("other pin");
    assert!(matches!(
        error,
        KeyHistoryError::Signature { statement: 0, .. }
    ));
}

#[test]
fn an_introduction_needs_the_new_key_and_a_current_key() {
    let history = KeyHistory::new(&vkey(1)).expect("pinned");
    let introduce = || Action::Introduce {
        vkey: vkey(2),
        from: 10,
    };
    for seeds in [&[1u8][..], &[2u8][..]] {
        let error = history
            .clone()
            .append(&statement(&history, introduce(), seeds))
            .expect_err("one signature is not enough");
        assert!(matches!(error, KeyHistoryError::Rule { .. }), "{error}");
    }
    let error = history
        .clone()
        .append(&statement(&history, introduce(), &[1, 2, 3]))
        .expect_err("a stranger signed");
    assert!(
        matches!(error, KeyHistoryError::Signature { .. }),
        "{error}"
    );
    let again = Action::Introduce {
        vkey: vkey(1),
        from: 0,
    };
    let error = history
        .clone()
        .append(&statement(&history, again, &[1]))
        .expect_err("the pinned key again");
    assert!(matches!(error, KeyHistoryError::Rule { .. }), "{error}");
    let other_name = Ed25519Signer::from_seed(KeyName::new("other.example").expect("n"), [2; 32]);
    let renamed = Action::Introduce {
        vkey: other_name.verifier().to_vkey(),
        from: 10,
    };
    let mut note = history.next_statement(renamed).to_note().expect("note");
    note.add_signature(key(1).sign(&note)).expect("signs");
    note.add_signature(other_name.sign(&note)).expect("signs");
    let error = history
        .clone()
        .append(&note.to_bytes().expect("bytes"))
        .expect_err("another name");
    assert!(matches!(error, KeyHistoryError::Rule { .. }), "{error}");
}

#[test]
fn the_last_current_key_cannot_be_retired_or_revoked() {
    let history = KeyHistory::new(&vkey(1)).expect("pinned");
    let retire = Action::Retire {
        vkey: vkey(1),
        last: 5,
    };
    let error = history
        .clone()
        .append(&statement(&history, retire, &[1]))
        .expect_err("nothing would sign size 6");
    assert!(matches!(error, KeyHistoryError::Rule { .. }), "{error}");
    let revoke = Action::Revoke {
        vkey: vkey(1),
        from: 5,
    };
    let error = history
        .clone()
        .append(&statement(&history, revoke, &[1]))
        .expect_err("self-revocation");
    assert!(matches!(error, KeyHistoryError::Rule { .. }), "{error}");
}

#[test]
fn a_retirement_needs_a_successor_for_the_next_size() {
    let mut history = KeyHistory::new(&vkey(1)).expect("pinned");
    let introduce = Action::Introduce {
        vkey: vkey(2),
        from: 100,
    };
    history
        .append(&statement(&history, introduce, &[1, 2]))
        .expect("introduction");
    let early = Action::Retire {
        vkey: vkey(1),
        last: 50,
    };
    let error = history
        .clone()
        .append(&statement(&history, early, &[1]))
        .expect_err("sizes 51 to 99 would have no key");
    assert!(matches!(error, KeyHistoryError::Rule { .. }), "{error}");
    let on_time = Action::Retire {
        vkey: vkey(1),
        last: 99,
    };
    history
        .append(&statement(&history, on_time, &[1]))
        .expect("K2 signs size 100");
    let late = Action::Introduce {
        vkey: vkey(3),
        from: 200,
    };
    let error = history
        .clone()
        .append(&statement(&history, late, &[1, 3]))
        .expect_err("a retired key endorses nothing");
    assert!(
        matches!(error, KeyHistoryError::Signature { .. }),
        "{error}"
    );
}

#[test]
fn the_chain_binds_each_statement_to_its_place() {
    let history = KeyHistory::new(&vkey(1)).expect("pinned");
    let action = Action::Introduce {
        vkey: vkey(2),
        from: 10,
    };
    let mut wrong_sequence = history.next_statement(action.clone());
    wrong_sequence.sequence = 1;
    let mut wrong_previous = history.next_statement(action.clone());
    wrong_previous.previous = crate::hash::Hash([7; 32]);
    let mut wrong_subject = history.next_statement(action);
    wrong_subject.subject = KeyName::new("other.example").expect("name");
    for statement in [wrong_sequence, wrong_previous, wrong_subject] {
        let error = history
            .clone()
            .append(&sign(&statement, &[1, 2]))
            .expect_err("out of place");
        assert!(matches!(error, KeyHistoryError::Chain { .. }), "{error}");
    }
    // A statement replayed in a longer history is out of place too.
    let mut longer = rotated();
    let first = longer.statements()[0].clone();
    let error = longer.append(&first).expect_err("replayed");
    assert!(matches!(error, KeyHistoryError::Chain { .. }), "{error}");
}

#[test]
fn tampered_or_malformed_histories_are_refused_with_the_statement_named() {
    let bytes = rotated().to_bytes();
    let text = String::from_utf8(bytes.clone()).expect("UTF-8");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            text.replacen("retire", "revoke", 1).into_bytes(),
            "a changed action",
        ),
        (
            text.replacen(" 20\n", " 21\n", 1).into_bytes(),
            "a changed size",
        ),
        ([&bytes[..], b"x"].concat(), "trailing bytes"),
        (bytes[..bytes.len() - 1].to_vec(), "a cut last line"),
        (text.replacen("\n\n", "\n", 1).into_bytes(), "no blank line"),
        (
            text.replacen("cairn-key-history/v1", "cairn-key-history/v2", 1)
                .into_bytes(),
            "another version",
        ),
        (
            text.replacen("cairn-log\n1\n", "cairn-log\n01\n", 1)
                .into_bytes(),
            "a leading zero",
        ),
        (
            text.replacen("introduce ", "introduce  ", 1).into_bytes(),
            "two spaces",
        ),
    ];
    for (input, what) in cases {
        let result = KeyHistory::verify(&vkey(1), &input);
        assert!(result.is_err(), "{what} must be refused");
    }
    let statement = |seeds: &[u8]| {
        let history = KeyHistory::new(&vkey(1)).expect("pinned");
        let note = statement(
            &history,
            Action::Introduce {
                vkey: vkey(2),
                from: 10,
            },
            seeds,
        );
        Note::parse(&note).expect("note")
    };
    // Nine signature lines: over the limit, refused before any is verified.
    let mut crowded = statement(&[1, 2]);
    for seed in 3..10 {
        crowded
            .add_signature(key(seed).sign(&crowded))
            .expect("signs");
    }
    let error = KeyHistory::verify(&vkey(1), &crowded.to_bytes().expect("bytes"))
        .expect_err("too many signatures");
    assert!(
        matches!(error, KeyHistoryError::Framing { statement: 0, .. }),
        "{error}"
    );
    let too_large = vec![b'a'; MAX_HISTORY_BYTES + 1];
    assert!(matches!(
        KeyHistory::verify(&vkey(1), &too_large),
        Err(KeyHistoryError::TooLarge { .. })
    ));
}

#[test]
fn a_witness_history_holds_cosignature_keys_signing_as_note_keys() {
    let name = KeyName::new("example.com/cairn-witness").expect("name");
    let old = CosignatureSigner::from_seed(name.clone(), [0x02; 32]);
    let new = CosignatureSigner::from_seed(name.clone(), [0x05; 32]);
    let mut history = KeyHistory::new(&old.verifier().to_vkey()).expect("pinned");
    assert_eq!(history.signature_type(), 0x04);
    let mut note = history
        .next_statement(Action::Introduce {
            vkey: new.verifier().to_vkey(),
            from: 0,
        })
        .to_note()
        .expect("note");
    for signer in [&old, &new] {
        let signature = signer.sign_bytes(note.text().as_bytes());
        note.add_signature(statement_signature(
            &name,
            signer.verifier().public_key(),
            signature,
        ))
        .expect("signs");
    }
    history
        .append(&note.to_bytes().expect("bytes"))
        .expect("a witness's rotation");
    let new_key = &history.keys()[1];
    assert_eq!(new_key.key_id, new.verifier().key_id());
    assert_eq!(new_key.status(0), KeyStatus::Valid);
    // A log key cannot join a witness's history.
    let log_key = Ed25519Signer::from_seed(name, [0x06; 32]);
    let mut mixed = history
        .next_statement(Action::Introduce {
            vkey: log_key.verifier().to_vkey(),
            from: 0,
        })
        .to_note()
        .expect("note");
    mixed.add_signature(log_key.sign(&mixed)).expect("signs");
    assert!(history.append(&mixed.to_bytes().expect("bytes")).is_err());
}

#[test]
fn statements_have_one_spelling() {
    let history = rotated();
    for (position, bytes) in history.statements().iter().enumerate() {
        let note = Note::parse(bytes).expect("note");
        let statement = Statement::parse(note.text(), position).expect("statement");
        assert_eq!(statement.to_text(), note.text());
    }
}
