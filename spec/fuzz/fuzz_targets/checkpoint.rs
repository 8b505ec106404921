//! Fuzzes the checkpoint parser and opener: no input may panic, whatever parses must format
//! back to the same text, and a parsed checkpoint signed by the log key must open again.
#![no_main]

use std::sync::OnceLock;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::note::{Ed25519Signer, KeyName, Note};
use libfuzzer_sys::fuzz_target;

fn signer() -> &'static Ed25519Signer {
    static SIGNER: OnceLock<Ed25519Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let name = KeyName::new("fuzz.example/log").expect("valid name");
        Ed25519Signer::from_seed(name, [7u8; 32])
    })
}

fuzz_target!(|data: &[u8]| {
    let verifier = signer().verifier();
    let _ = Checkpoint::open(data, &verifier);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(checkpoint) = Checkpoint::parse(text) else {
        return;
    };
    assert_eq!(
        checkpoint
            .to_text()
            .expect("a parsed checkpoint can be written"),
        text,
        "parse then format must be the identity"
    );
    let mut note = Note::new(text).expect("checkpoint text is a valid note text");
    note.sign(signer()).expect("one signature fits");
    let bytes = note.to_bytes().expect("signed note can be written");
    let opened = Checkpoint::open_with_origin(&bytes, &checkpoint.origin, &[&verifier])
        .expect("a signed checkpoint opens");
    assert_eq!(opened.checkpoint, checkpoint);
});
