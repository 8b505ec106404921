//! Fuzzes receipt parsing and verification: no input may panic; whatever parses must serialise
//! back to JSON that parses to the same receipt; verification against the example policy may
//! fail but never panic; tlog-proof parsing is total too.
#![no_main]

use std::sync::OnceLock;

use cairn_spec::example::{world, World};
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{verify, Receipt};
use libfuzzer_sys::fuzz_target;

fn example() -> &'static (World, Policy) {
    static EXAMPLE: OnceLock<(World, Policy)> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let world = world(16);
        let policy = world.policy("two", true);
        (world, policy)
    })
}

fuzz_target!(|data: &[u8]| {
    let (_, policy) = example();
    if let Ok(receipt) = Receipt::from_json(data) {
        let again = Receipt::from_json(receipt.to_json().as_bytes()).expect("own JSON parses");
        assert_eq!(again, receipt);
        let _ = verify(&receipt, policy);
        let proof = receipt.to_tlog_proof();
        let _ = Receipt::from_tlog_proof(&proof, None);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(receipt) = Receipt::from_tlog_proof(text, Some(b"leaf")) {
            let _ = verify(&receipt, policy);
        }
    }
});
