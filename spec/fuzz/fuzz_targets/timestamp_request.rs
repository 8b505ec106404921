//! Arbitrary bytes as an RFC 3161 TimeStampReq: parsing never panics; a request without
//! extensions survives a round trip; and Cairn's TSA answers anything with a well-formed
//! response, granted or rejected, never with bytes a verifier cannot read.

#![no_main]

use std::sync::OnceLock;

use cairn_spec::time::Instant;
use cairn_spec::timestamp::{
    make_root_certificate, make_tsa_certificate, respond, verify_response, CertificateSpec,
    Expectation, KeyPair, ObjectIdentifier, TimestampError, TimestampGrant, TimestampRequest,
    TsaSigner,
};
use libfuzzer_sys::fuzz_target;

fn signer() -> &'static TsaSigner {
    static SIGNER: OnceLock<TsaSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let root_key = KeyPair::ed25519_from_seed([1; 32]);
        let spec = |subject, serial_number| CertificateSpec {
            subject,
            serial_number,
            not_before: Instant::from_seconds(1_767_225_600),
            not_after: Instant::from_seconds(2_082_758_400),
        };
        let root = make_root_certificate(&root_key, &spec("CN=Fuzz Root", &[1])).expect("root");
        let tsa_key = KeyPair::ed25519_from_seed([2; 32]);
        let tsa = make_tsa_certificate(
            &root_key,
            &root,
            &tsa_key.public_key_info_der(),
            &spec("CN=Fuzz TSA", &[2]),
        )
        .expect("TSA certificate");
        TsaSigner::new(tsa_key, tsa, vec![root]).expect("signer")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = TimestampRequest::from_der(data) {
        if request.extensions().is_empty() {
            let again = TimestampRequest::from_der(&request.to_der()).expect("round trip");
            assert_eq!(again, request);
        }
    }
    let grant = TimestampGrant {
        serial_number: &[0x01, 0x02],
        gen_time: Instant::from_unix(1_795_606_638, 619_000_000),
        policy: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1"),
        accuracy: None,
    };
    let response = respond(data, signer(), &grant);
    let outcome = verify_response(
        &response,
        &Expectation {
            imprint: [0; 32],
            nonce: None,
            trust_anchors: None,
        },
    );
    assert!(
        !matches!(
            outcome,
            Err(TimestampError::Malformed { .. } | TimestampError::TooLarge { .. })
        ),
        "respond produced an unreadable response: {outcome:?}"
    );
});
