//! Fuzzes receipt parsing and verification: no input may panic; whatever parses must serialise
//! back to JSON that parses to the same receipt; verification against the example policy may
//! fail but never panic; tlog-proof parsing is total too. The many-receipt verifier must give
//! exactly the cold verifier's answer, both from caches that live across inputs and in a batch
//! beside a genuine receipt.
#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;

use cairn_spec::example::{world, World};
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{verify, Receipt, ReceiptVerifier};
use libfuzzer_sys::fuzz_target;

fn example() -> &'static (World, Policy, Receipt) {
    static EXAMPLE: OnceLock<(World, Policy, Receipt)> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let world = world(16);
        let policy = world.policy("two", true);
        let genuine = world.receipt(5, &[0, 1]);
        (world, policy, genuine)
    })
}

thread_local! {
    static CACHED: RefCell<ReceiptVerifier<'static>> = RefCell::new(ReceiptVerifier::new(&example().1));
}

fuzz_target!(|data: &[u8]| {
    let (_, policy, genuine) = example();
    if let Ok(receipt) = Receipt::from_json(data) {
        let again = Receipt::from_json(receipt.to_json().as_bytes()).expect("own JSON parses");
        assert_eq!(again, receipt);
        let cold = verify(&receipt, policy);
        CACHED.with(|cached| assert_eq!(cached.borrow_mut().verify(&receipt), cold));
        let batch = ReceiptVerifier::new(policy).verify_batch(&[genuine.clone(), receipt.clone()]);
        assert_eq!(batch[1], cold);
        assert!(batch[0].is_ok());
        let proof = receipt.to_tlog_proof();
        let _ = Receipt::from_tlog_proof(&proof, None);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(receipt) = Receipt::from_tlog_proof(text, Some(b"leaf")) {
            let _ = verify(&receipt, policy);
        }
    }
});
