//! The example of spec/docs/key-history.md is made by this code: the test rebuilds the history
//! (first key seed 32 bytes 0x01, second key seed 0x03), checks that the page shows it byte for
//! byte, and checks what the page says about the keys' ranges.

mod common;

use cairn_spec::key_history::{Action, KeyHistory, KeyStatus};
use cairn_spec::note::{Ed25519Signer, KeyName};
use common::{log_signer, LOG_ORIGIN};

const PAGE: &str = include_str!("../docs/key-history.md");

fn second_key() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(LOG_ORIGIN).expect("name"), [0x03; 32])
}

fn append(history: &mut KeyHistory, action: Action, signers: &[&Ed25519Signer]) {
    let mut note = history.next_statement(action).to_note().expect("note");
    for signer in signers {
        note.add_signature(signer.sign(&note)).expect("signs");
    }
    history
        .append(&note.to_bytes().expect("bytes"))
        .expect("the statement verifies");
}

fn example() -> KeyHistory {
    let (first, second) = (log_signer(), second_key());
    let mut history = KeyHistory::new(&first.verifier().to_vkey()).expect("pinned");
    let introduce = Action::Introduce {
        vkey: second.verifier().to_vkey(),
        from: 8,
    };
    append(&mut history, introduce, &[&first, &second]);
    let retire = Action::Retire {
        vkey: first.verifier().to_vkey(),
        last: 15,
    };
    append(&mut history, retire, &[&second]);
    let revoke = Action::Revoke {
        vkey: first.verifier().to_vkey(),
        from: 12,
    };
    append(&mut history, revoke, &[&second]);
    history
}

#[test]
fn key_history_page_shows_the_example_history() {
    let history = example();
    let text = String::from_utf8(history.to_bytes()).expect("UTF-8");
    let block = format!(
        "```text\n{}\n{text}```\n",
        second_key().verifier().to_vkey()
    );
    assert!(
        PAGE.contains(&block),
        "key-history.md must show this block byte for byte:\n{block}"
    );
}

#[test]
fn the_example_means_what_the_page_says() {
    let history = KeyHistory::verify(&log_signer().verifier().to_vkey(), &example().to_bytes())
        .expect("the example verifies from the pinned key");
    let [first, second] = history.keys() else {
        panic!("two keys");
    };
    assert_eq!(first.status(11), KeyStatus::Valid);
    assert_eq!(first.status(12), KeyStatus::Revoked { from: 12 });
    assert_eq!(first.status(16), KeyStatus::Revoked { from: 12 });
    assert_eq!(second.status(7), KeyStatus::NotYetValid { from: 8 });
    assert_eq!(second.status(8), KeyStatus::Valid);
    assert_eq!(second.status(1 << 40), KeyStatus::Valid);
}
