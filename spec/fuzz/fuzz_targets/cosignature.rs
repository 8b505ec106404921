//! Fuzzes cosignature decoding and verification: no input may panic, and what decodes must
//! encode back to the same signature.
#![no_main]

use std::sync::OnceLock;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::{Cosignature, CosignatureSigner, CosignatureVerifier};
use cairn_spec::hash::Hash;
use cairn_spec::note::{KeyName, Note, NoteSignature};
use libfuzzer_sys::fuzz_target;

fn cosigner() -> &'static CosignatureSigner {
    static SIGNER: OnceLock<CosignatureSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let name = KeyName::new("fuzz.example/witness").expect("valid name");
        CosignatureSigner::from_seed(name, [9u8; 32])
    })
}

fuzz_target!(|data: &[u8]| {
    let verifier = cosigner().verifier();
    let checkpoint = Checkpoint {
        origin: "fuzz.example/log".to_owned(),
        size: 42,
        root: Hash::of_leaf(b"fuzz"),
        extensions: Vec::new(),
    };
    let signature = NoteSignature {
        key_name: verifier.key_name().clone(),
        key_id: verifier.key_id(),
        signature: data.to_vec(),
    };
    if let Ok(cosignature) = Cosignature::from_note_signature(&signature) {
        assert_eq!(cosignature.to_note_signature(), signature);
    }
    assert!(
        verifier
            .verify_cosignature(&checkpoint, &signature)
            .is_err(),
        "random bytes are not a cosignature"
    );
    let _ = Note::open(data, &[&verifier]);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = CosignatureVerifier::from_vkey(text);
        let _ = CosignatureSigner::from_skey(text);
        if let Ok(parsed) = Checkpoint::parse(text) {
            let cosignature = cosigner()
                .cosign(&parsed, 1_700_000_000)
                .expect("a parsed checkpoint can be cosigned");
            let timestamp = verifier
                .verify_cosignature(&parsed, &cosignature.to_note_signature())
                .expect("a fresh cosignature verifies");
            assert_eq!(timestamp, 1_700_000_000);
        }
    }
});
