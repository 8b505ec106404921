//! Fuzzes the signed-note parser and verifier: no input may panic, and whatever parses must
//! format back to exactly the same bytes (the grammar has one spelling for each note).
#![no_main]

use std::sync::OnceLock;

use cairn_spec::note::{Ed25519Signer, Ed25519Verifier, KeyName, Note};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static Ed25519Verifier {
    static VERIFIER: OnceLock<Ed25519Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let name = KeyName::new("fuzz.example/log").expect("valid name");
        Ed25519Signer::from_seed(name, [7u8; 32]).verifier()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(note) = Note::parse(data) else {
        return;
    };
    let written = note.to_bytes().expect("a parsed note can be written");
    assert_eq!(written, data, "parse then format must be the identity");
    let _ = note.verify(&[verifier()]);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Ed25519Verifier::from_vkey(text);
        let _ = Ed25519Signer::from_skey(text);
    }
});
