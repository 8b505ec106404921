//! Verification of arbitrary bytes as an RFC 3161 TimeStampResp and as a bare TimeStampToken
//! must never panic, and must stay within its limits. A caching `TokenVerifier` that lives
//! across inputs must give exactly `verify_token`'s answer, and with its Ed25519 signature
//! deferred to a batch, accept exactly what `verify_token` accepts.
//!
//! The expectation is that of the stored OpenSSL tokens (spec/tests/tsa/fixtures), so that
//! mutations of those tokens, the best seeds, get past the imprint and nonce checks into the
//! signature, certificate and chain code.

#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;

use cairn_spec::note::Ed25519Batch;
use cairn_spec::timestamp::{
    checkpoint_imprint, verify_response, verify_token, Expectation, TokenVerifier, TrustAnchors,
};
use libfuzzer_sys::fuzz_target;

const CHECKPOINT_BODY: &[u8] =
    b"example.com/cairn\n4\nSx4cz0bPqH3LpvmV1lk4ah0E3nnAKTX9lJdXIiSzvCw=\n";
const NONCE: u64 = 0x0123_4567_89ab_cdef;

fn anchors() -> &'static TrustAnchors {
    static ANCHORS: OnceLock<TrustAnchors> = OnceLock::new();
    ANCHORS.get_or_init(|| {
        TrustAnchors::from_der(&[include_bytes!("../../tests/tsa/fixtures/openssl-root.der")])
            .expect("the fixture root parses")
    })
}

thread_local! {
    static CACHED: RefCell<TokenVerifier> = RefCell::new(TokenVerifier::new());
}

fuzz_target!(|data: &[u8]| {
    let imprint = checkpoint_imprint(CHECKPOINT_BODY);
    for trust_anchors in [None, Some(anchors())] {
        let expectation = Expectation {
            imprint,
            nonce: Some(NONCE),
            trust_anchors,
        };
        let _ = verify_response(data, &expectation);
        let cold = verify_token(data, &expectation);
        if let Ok(verified) = &cold {
            // A token that verifies is kept whole.
            assert_eq!(verified.token_der, data);
        }
        CACHED.with(|cached| {
            let mut cached = cached.borrow_mut();
            assert_eq!(cached.verify(data, &expectation), cold);
            let mut batch = Ed25519Batch::new();
            let deferred = cached.verify_with(data, &expectation, &mut batch);
            let confirmed = deferred.is_ok() && batch.verify_range(0..batch.len());
            assert_eq!(confirmed, cold.is_ok());
        });
    }
});
