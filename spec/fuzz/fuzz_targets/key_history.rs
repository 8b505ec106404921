//! Fuzzes the key history verifier from a fixed pinned key (the example log's, seed 0x01): no
//! input may panic, and a history that verifies is its own canonical encoding and verifies again
//! to the same keys.
#![no_main]

use cairn_spec::key_history::{split_statements, KeyHistory};
use cairn_spec::note::{Ed25519Signer, KeyName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = split_statements(data);
    let Ok(name) = KeyName::new("example.com/cairn-log") else {
        return;
    };
    let pinned = Ed25519Signer::from_seed(name, [0x01; 32]).verifier().to_vkey();
    let Ok(history) = KeyHistory::verify(&pinned, data) else {
        return;
    };
    assert_eq!(history.to_bytes(), data, "a verified history is canonical");
    let again = KeyHistory::verify(&pinned, data).expect("verifies again");
    assert_eq!(again, history);
    for key in history.keys() {
        for size in [0, key.from, key.from.saturating_sub(1), u64::MAX] {
            let _ = key.status(size);
        }
    }
});
