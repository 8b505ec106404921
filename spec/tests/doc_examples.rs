//! The examples in spec/docs/note.md, checkpoint.md, cosignature.md and witness.md are made by
//! this code: each test rebuilds one and checks that the page shows it byte for byte.
//!
//! The example keys have fixed seeds (32 bytes 0x01 for the log, 0x02 for the witness), the
//! tree's leaves are the texts "leaf 0" to "leaf 6", and the witness's clock reads 1764000000.

mod common;

use cairn_spec::cosignature::signed_message;
use cairn_spec::note::{Note, NoteSignature};
use cairn_spec::witness::{format_add_checkpoint_request, format_conflict_body, TreeState};
use common::{consistency_proof, leaf_hashes, log_checkpoint, log_signer, witness_cosigner};

const NOTE_PAGE: &str = include_str!("../docs/note.md");
const CHECKPOINT_PAGE: &str = include_str!("../docs/checkpoint.md");
const COSIGNATURE_PAGE: &str = include_str!("../docs/cosignature.md");
const WITNESS_PAGE: &str = include_str!("../docs/witness.md");

const EXAMPLE_TIME: u64 = 1_764_000_000;

fn block(content: &str) -> String {
    format!("```text\n{content}```\n")
}

fn assert_page_shows(page: &str, page_name: &str, content: &str) {
    let expected = block(content);
    assert!(
        page.contains(&expected),
        "{page_name} must show this block byte for byte:\n{expected}"
    );
}

fn signed_checkpoint() -> Note {
    log_checkpoint(7).sign(&log_signer()).expect("signs")
}

fn cosignature_line() -> NoteSignature {
    witness_cosigner()
        .cosign(&log_checkpoint(7), EXAMPLE_TIME)
        .expect("cosigns")
        .to_note_signature()
}

#[test]
fn note_page_shows_the_example_keys_and_note() {
    let signer = log_signer();
    assert_page_shows(
        NOTE_PAGE,
        "note.md",
        &format!("{}\n{}\n", signer.verifier().to_vkey(), signer.to_skey()),
    );
    let mut note = Note::new("Cairn example note.\nIt has two lines.\n").expect("text");
    note.sign(&signer).expect("signs");
    let bytes = note.to_bytes().expect("formats");
    assert_page_shows(
        NOTE_PAGE,
        "note.md",
        &String::from_utf8(bytes).expect("UTF-8"),
    );
}

#[test]
fn checkpoint_page_shows_the_signed_checkpoint() {
    let bytes = signed_checkpoint().to_bytes().expect("formats");
    assert_page_shows(
        CHECKPOINT_PAGE,
        "checkpoint.md",
        &String::from_utf8(bytes).expect("UTF-8"),
    );
}

#[test]
fn cosignature_page_shows_the_key_message_line_and_cosigned_checkpoint() {
    assert_page_shows(
        COSIGNATURE_PAGE,
        "cosignature.md",
        &format!("{}\n", witness_cosigner().verifier().to_vkey()),
    );
    let text = log_checkpoint(7).to_text().expect("text");
    let message = signed_message(text.as_bytes(), EXAMPLE_TIME);
    assert_page_shows(
        COSIGNATURE_PAGE,
        "cosignature.md",
        &String::from_utf8(message).expect("UTF-8"),
    );
    assert_page_shows(
        COSIGNATURE_PAGE,
        "cosignature.md",
        &cosignature_line().to_line(),
    );
    let mut note = signed_checkpoint();
    note.add_signature(cosignature_line()).expect("fits");
    let bytes = note.to_bytes().expect("formats");
    assert_page_shows(
        COSIGNATURE_PAGE,
        "cosignature.md",
        &String::from_utf8(bytes).expect("UTF-8"),
    );
}

#[test]
fn witness_page_shows_the_request_response_and_conflict() {
    let proof = consistency_proof(3, &leaf_hashes(7));
    let body = format_add_checkpoint_request(&signed_checkpoint(), 3, &proof).expect("builds");
    assert_page_shows(
        WITNESS_PAGE,
        "witness.md",
        &String::from_utf8(body.clone()).expect("UTF-8"),
    );
    // The response is what the decision returns for that request.
    let request = cairn_spec::witness::AddCheckpointRequest::parse(&body).expect("parses");
    let log_key = log_signer().verifier();
    let state = TreeState {
        size: 3,
        root: common::root(&leaf_hashes(3)),
    };
    let cosigned = cairn_spec::witness::add_checkpoint(
        Some(state),
        &request,
        Some(&[&log_key]),
        &witness_cosigner(),
        EXAMPLE_TIME,
    )
    .expect("accepts");
    assert_eq!(cosigned.cosignature.to_note_signature(), cosignature_line());
    assert_page_shows(WITNESS_PAGE, "witness.md", &cosigned.response_body());
    // The same request again meets the witness's new state: 409 with the size it knows.
    let refusal = cairn_spec::witness::add_checkpoint(
        Some(cosigned.new_state),
        &request,
        Some(&[&log_key]),
        &witness_cosigner(),
        EXAMPLE_TIME,
    )
    .unwrap_err();
    assert_eq!(refusal.http_status(), 409);
    let conflict = refusal.conflict_body().expect("a 409 has a body");
    assert_eq!(conflict, format_conflict_body(7));
    assert_page_shows(WITNESS_PAGE, "witness.md", &conflict);
}

/// Prints every example, for writing the pages: `cargo test --test doc_examples -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn print_examples() {
    let signer = log_signer();
    println!("{}\n{}", signer.verifier().to_vkey(), signer.to_skey());
    let mut note = Note::new("Cairn example note.\nIt has two lines.\n").expect("text");
    note.sign(&signer).expect("signs");
    println!(
        "--- note\n{}",
        String::from_utf8(note.to_bytes().expect("formats")).expect("UTF-8")
    );
    println!(
        "--- checkpoint\n{}",
        String::from_utf8(signed_checkpoint().to_bytes().expect("formats")).expect("UTF-8")
    );
    println!(
        "--- witness vkey\n{}",
        witness_cosigner().verifier().to_vkey()
    );
    let text = log_checkpoint(7).to_text().expect("text");
    println!(
        "--- signed message\n{}",
        String::from_utf8(signed_message(text.as_bytes(), EXAMPLE_TIME)).expect("UTF-8")
    );
    println!("--- cosignature line\n{}", cosignature_line().to_line());
    let mut cosigned = signed_checkpoint();
    cosigned.add_signature(cosignature_line()).expect("fits");
    println!(
        "--- cosigned\n{}",
        String::from_utf8(cosigned.to_bytes().expect("formats")).expect("UTF-8")
    );
    let proof = consistency_proof(3, &leaf_hashes(7));
    let body = format_add_checkpoint_request(&signed_checkpoint(), 3, &proof).expect("builds");
    println!("--- request\n{}", String::from_utf8(body).expect("UTF-8"));
    println!("--- root3 {}", common::root(&leaf_hashes(3)).to_base64());
}
