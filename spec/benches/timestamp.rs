//! RFC 3161 throughput: tokens verified per second (Ed25519, P-256 and RSA-2048 signers, full
//! verification including the chain to the root), and responses issued per second by Cairn's
//! issuer (Ed25519, P-256). The witness's TSA must reach 2,000 timestamps/s.
//!
//! `cargo bench -p cairn-spec --bench timestamp`

use cairn_spec::time::Instant;
use cairn_spec::timestamp::{
    checkpoint_imprint, issue_response, make_root_certificate, make_tsa_certificate, verify_token,
    CertificateSpec, Expectation, KeyPair, ObjectIdentifier, TimestampGrant, TimestampRequest,
    TrustAnchors, TsaSigner,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const CHECKPOINT_BODY: &[u8] =
    b"example.com/cairn\n4\nSx4cz0bPqH3LpvmV1lk4ah0E3nnAKTX9lJdXIiSzvCw=\n";
const NONCE: u64 = 0x0123_4567_89ab_cdef;
// Made by OpenSSL 3.0.19 for the same body and nonce (spec/tests/tsa/fixtures/README.md).
const OPENSSL_ROOT: &[u8] = include_bytes!("../tests/tsa/fixtures/openssl-root.der");
const OPENSSL_RSA_TOKEN: &[u8] = include_bytes!("../tests/tsa/fixtures/openssl-rsa2048-token.der");

fn cairn_tsa(tsa_key: KeyPair) -> (TsaSigner, TrustAnchors) {
    let root_key = KeyPair::ed25519_from_seed([1; 32]);
    let spec = |subject, serial_number| CertificateSpec {
        subject,
        serial_number,
        not_before: Instant::from_seconds(1_767_225_600),
        not_after: Instant::from_seconds(2_082_758_400),
    };
    let root = make_root_certificate(&root_key, &spec("CN=Bench Root", &[1])).expect("root");
    let tsa = make_tsa_certificate(
        &root_key,
        &root,
        &tsa_key.public_key_info_der(),
        &spec("CN=Bench TSA", &[2]),
    )
    .expect("TSA certificate");
    let anchors = TrustAnchors::from_der(&[&root]).expect("anchor");
    (
        TsaSigner::new(tsa_key, tsa, vec![root]).expect("signer"),
        anchors,
    )
}

fn grant(serial: &[u8]) -> TimestampGrant<'_> {
    TimestampGrant {
        serial_number: serial,
        gen_time: Instant {
            seconds: 1_795_606_638,
            nanos: 619_000_000,
        },
        policy: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1"),
        accuracy: None,
    }
}

fn token_of(response: &[u8]) -> Vec<u8> {
    #[derive(der::Sequence)]
    struct Response {
        status: der::Any,
        token: der::Any,
    }
    use der::{Decode, Encode};
    Response::from_der(response)
        .expect("granted")
        .token
        .to_der()
        .expect("encode")
}

fn keys() -> [(&'static str, KeyPair); 2] {
    [
        ("ed25519", KeyPair::ed25519_from_seed([2; 32])),
        ("p256", KeyPair::p256_from_scalar(&[3; 32]).expect("scalar")),
    ]
}

fn verification(criterion: &mut Criterion) {
    let imprint = checkpoint_imprint(CHECKPOINT_BODY);
    let request = TimestampRequest::for_imprint(imprint, NONCE, None);
    let mut group = criterion.benchmark_group("timestamp_verify");
    group.throughput(Throughput::Elements(1));
    for (name, key) in keys() {
        let (signer, anchors) = cairn_tsa(key);
        let token = token_of(&issue_response(&request, &signer, &grant(&[1])).expect("issue"));
        let expectation = Expectation {
            imprint,
            nonce: Some(NONCE),
            trust_anchors: Some(&anchors),
        };
        verify_token(&token, &expectation).expect("valid");
        group.bench_function(name, |bench| {
            bench.iter(|| verify_token(black_box(&token), &expectation).expect("valid"))
        });
    }
    let anchors = TrustAnchors::from_der(&[OPENSSL_ROOT]).expect("root");
    let expectation = Expectation {
        imprint,
        nonce: Some(NONCE),
        trust_anchors: Some(&anchors),
    };
    verify_token(OPENSSL_RSA_TOKEN, &expectation).expect("valid");
    group.bench_function("rsa2048_openssl", |bench| {
        bench.iter(|| verify_token(black_box(OPENSSL_RSA_TOKEN), &expectation).expect("valid"))
    });
    group.finish();
}

fn issuing(criterion: &mut Criterion) {
    let request = TimestampRequest::for_imprint(checkpoint_imprint(CHECKPOINT_BODY), NONCE, None);
    let mut group = criterion.benchmark_group("timestamp_issue");
    group.throughput(Throughput::Elements(1));
    for (name, key) in keys() {
        let (signer, _) = cairn_tsa(key);
        let mut serial = 0u64;
        group.bench_function(name, |bench| {
            bench.iter(|| {
                serial += 1;
                issue_response(black_box(&request), &signer, &grant(&serial.to_be_bytes()))
                    .expect("issue")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, verification, issuing);
criterion_main!(benches);
