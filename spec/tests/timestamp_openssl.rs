//! RFC 3161 interop with OpenSSL, both ways: `openssl ts -reply` answers requests Cairn builds
//! and Cairn verifies the answers; `openssl ts -verify` accepts responses from Cairn's issuer
//! with certificates from Cairn's `tsa init` code. The example of `spec/docs/timestamp.md` is
//! checked here too.
//!
//! These tests need the `openssl` binary and fail, saying so, without it.

#[path = "tsa/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use cairn_spec::timestamp::{
    certificate_to_pem, certificates_from_pem, checkpoint_imprint, issue_response, verify_response,
    verify_token, Accuracy, Expectation, FailureInfo, HashAlgorithm, ObjectIdentifier, PkiStatus,
    SignatureAlgorithm, TimestampError, TimestampGrant, TimestampRequest, TrustAnchors,
};
use support::*;

/// The OpenSSL TSA that `make-openssl-tsa.sh` made for this test run.
fn openssl_tsa() -> &'static Path {
    static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        let directory = scratch("openssl-tsa");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tsa/make-openssl-tsa.sh");
        // Fail here, clearly, rather than in the script, if openssl is missing.
        openssl();
        let output = Command::new("bash")
            .arg(&script)
            .arg(&directory)
            .output()
            .expect("run make-openssl-tsa.sh");
        assert!(
            output.status.success(),
            "make-openssl-tsa.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        directory
    })
}

/// A fresh directory under the target directory, unique in this process.
fn scratch(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cairn-timestamp-{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("create scratch directory");
    directory
}

/// `openssl ts -reply` from the section of openssl-ts.cnf named, for a DER request.
fn openssl_reply(section: &str, request: &[u8]) -> Vec<u8> {
    // openssl rewrites its serial file on every reply: one reply at a time.
    static SERIAL_FILE: Mutex<()> = Mutex::new(());
    let directory = openssl_tsa();
    let work = scratch("reply");
    std::fs::write(work.join("request.tsq"), request).expect("write request");
    let _serial = SERIAL_FILE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    run_openssl(
        &work,
        &[
            "ts",
            "-reply",
            "-config",
            directory
                .join("openssl-ts.cnf")
                .to_str()
                .expect("utf-8 path"),
            "-section",
            section,
            "-queryfile",
            "request.tsq",
            "-out",
            "response.tsr",
        ],
    );
    std::fs::read(work.join("response.tsr")).expect("read response")
}

fn pem_file_der(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(openssl_tsa().join(name)).expect("read PEM");
    certificates_from_pem(&text)
        .expect("PEM")
        .into_iter()
        .next()
        .expect("one certificate")
}

const NONCE: u64 = 0x0123_4567_89ab_cdef;

struct OpensslCase {
    section: &'static str,
    algorithm: SignatureAlgorithm,
    signer: &'static str,
}

fn check_openssl_tsa(case: OpensslCase) {
    let imprint = checkpoint_imprint(CHECKPOINT_BODY);
    let request = TimestampRequest::for_imprint(imprint, NONCE, None).to_der();
    let response = openssl_reply(case.section, &request);
    let root = pem_file_der("root.pem");
    let signer = pem_file_der(case.signer);
    let anchors = TrustAnchors::from_der(&[&root]).expect("root");

    let unanchored = Expectation {
        imprint,
        nonce: Some(NONCE),
        trust_anchors: None,
    };
    let verified = verify_response(&response, &unanchored)
        .unwrap_or_else(|error| panic!("{}: {error}", case.section));
    assert_eq!(
        verified.signature_algorithm, case.algorithm,
        "{}",
        case.section
    );
    assert_eq!(verified.signer_certificate_der, signer);
    assert_eq!(verified.policy.to_string(), "1.3.6.1.4.1.99999.1");
    assert_eq!(
        verified.accuracy,
        Some(Accuracy {
            seconds: 1,
            millis: 500,
            micros: 100
        })
    );
    assert!(
        verified
            .tsa_name
            .as_deref()
            .is_some_and(|name| name.contains("OpenSSL Test TSA")),
        "{:?}",
        verified.tsa_name
    );
    assert_eq!(verified.trust_anchor_der, None);
    // genTime comes from the machine's clock, with the milliseconds openssl was asked for.
    assert_eq!(verified.gen_time.nanos % 1_000_000, 0);

    let anchored = Expectation {
        trust_anchors: Some(&anchors),
        ..unanchored
    };
    let verified = verify_response(&response, &anchored)
        .unwrap_or_else(|error| panic!("{} with the root: {error}", case.section));
    assert_eq!(verified.trust_anchor_der, Some(root));
    // The stored token verifies on its own.
    verify_token(
        &verified.token_der,
        &Expectation {
            nonce: None,
            ..anchored
        },
    )
    .expect("token");
    // And it is the answer to this request only.
    assert!(matches!(
        verify_response(
            &response,
            &Expectation {
                nonce: Some(NONCE ^ 1),
                ..anchored
            }
        ),
        Err(TimestampError::NonceMismatch { .. })
    ));
    assert!(matches!(
        verify_response(
            &response,
            &Expectation {
                imprint: [0; 32],
                ..anchored
            }
        ),
        Err(TimestampError::ImprintMismatch { .. })
    ));
}

#[test]
fn openssl_rsa_tsa_with_ess_cert_id_v2_and_chain_verifies() {
    check_openssl_tsa(OpensslCase {
        section: "tsa_rsa",
        algorithm: SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
        signer: "tsa-rsa.pem",
    });
}

#[test]
fn openssl_p256_tsa_with_ess_cert_id_v2_and_chain_verifies() {
    check_openssl_tsa(OpensslCase {
        section: "tsa_p256",
        algorithm: SignatureAlgorithm::EcdsaP256(HashAlgorithm::Sha256),
        signer: "tsa-p256.pem",
    });
}

#[test]
fn openssl_rsa_tsa_with_ess_cert_id_v1_and_sha512_verifies() {
    check_openssl_tsa(OpensslCase {
        section: "tsa_rsa_sha512",
        algorithm: SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha512),
        signer: "tsa-rsa.pem",
    });
}

#[test]
fn openssl_p256_tsa_with_ess_cert_id_v1_and_sha384_verifies() {
    check_openssl_tsa(OpensslCase {
        section: "tsa_p256_sha384",
        algorithm: SignatureAlgorithm::EcdsaP256(HashAlgorithm::Sha384),
        signer: "tsa-p256.pem",
    });
}

#[test]
fn openssl_ed25519_tsa_verifies_where_openssl_can_sign_with_it() {
    let directory = openssl_tsa();
    if directory.join("ed25519.supported").exists() {
        check_openssl_tsa(OpensslCase {
            section: "tsa_ed25519",
            algorithm: SignatureAlgorithm::Ed25519,
            signer: "tsa-ed25519.pem",
        });
    } else {
        // OpenSSL 3.0 and 3.1 build timestamp tokens with PKCS#7, which cannot sign with
        // Ed25519; the probe in make-openssl-tsa.sh must have seen exactly that refusal.
        let refusal = std::fs::read_to_string(directory.join("ed25519.unsupported"))
            .expect("the script records why Ed25519 is unsupported");
        assert!(
            refusal.contains("signing not supported for this key type"),
            "{refusal}"
        );
    }
}

#[test]
fn openssl_honours_a_requested_policy() {
    let imprint = checkpoint_imprint(CHECKPOINT_BODY);
    let policy = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.2");
    let request = TimestampRequest::for_imprint(imprint, NONCE, Some(policy)).to_der();
    let response = openssl_reply("tsa_p256", &request);
    let verified = verify_response(
        &response,
        &Expectation {
            imprint,
            nonce: Some(NONCE),
            trust_anchors: None,
        },
    )
    .expect("granted");
    assert_eq!(verified.policy, policy);
}

#[test]
fn openssl_rejection_is_reported_with_its_fail_info() {
    // openssl's own SHA-1 request, which this TSA's `digests` do not allow.
    let work = scratch("sha1-query");
    std::fs::write(work.join("data.txt"), CHECKPOINT_BODY).expect("write");
    run_openssl(
        &work,
        &[
            "ts", "-query", "-data", "data.txt", "-sha1", "-cert", "-out", "sha1.tsq",
        ],
    );
    let request = std::fs::read(work.join("sha1.tsq")).expect("read");
    let parsed = TimestampRequest::from_der(&request).expect("openssl's request parses");
    assert_eq!(parsed.imprint_hash(), None);
    assert!(parsed.nonce().is_some());
    let response = openssl_reply("tsa_p256", &request);
    match verify_response(
        &response,
        &Expectation {
            imprint: [0; 32],
            nonce: None,
            trust_anchors: None,
        },
    ) {
        Err(TimestampError::NotGranted {
            status: PkiStatus::Rejection,
            status_text,
            fail_info,
        }) => {
            assert_eq!(fail_info, [FailureInfo::BadAlg]);
            assert!(!status_text.is_empty());
        }
        other => panic!("expected a rejection, found {other:?}"),
    }
}

/// Writes a Cairn response and its request, with PEM certificates, into a directory, and has
/// `openssl ts -verify` check it.
fn openssl_verifies_cairn(algorithm: TsaAlgorithm) -> (bool, String) {
    let (tsa, now) = TestTsa::valid_now(algorithm);
    let work = scratch("cairn-response");
    let request = TimestampRequest::for_imprint(checkpoint_imprint(CHECKPOINT_BODY), NONCE, None);
    let response = issue_response(
        &request,
        &tsa.signer,
        &TimestampGrant {
            serial_number: &[0x01, 0x00],
            gen_time: now,
            ..grant(&[])
        },
    )
    .expect("issue");
    std::fs::write(work.join("request.tsq"), request.to_der()).expect("write");
    std::fs::write(work.join("response.tsr"), &response).expect("write");
    std::fs::write(work.join("root.pem"), certificate_to_pem(&tsa.root_der)).expect("write");
    std::fs::write(work.join("tsa.pem"), certificate_to_pem(&tsa.tsa_der)).expect("write");

    let text = run_openssl(&work, &["ts", "-reply", "-in", "response.tsr", "-text"]);
    for expected in [
        "Status: Granted.",
        "Version: 1",
        "Policy OID: 1.3.6.1.4.1.99999.1",
        "Hash Algorithm: sha256",
        "Serial number: 0x0100",
        "Accuracy: 0x01 seconds, 0x01F4 millis, unspecified micros",
        "Nonce: 0x0123456789ABCDEF",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    try_openssl(
        &work,
        &[
            "ts",
            "-verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "tsa.pem",
            "-in",
            "response.tsr",
            "-queryfile",
            "request.tsq",
        ],
    )
}

#[test]
fn openssl_verifies_cairn_p256_responses_with_cairn_certificates() {
    let (accepted, output) = openssl_verifies_cairn(TsaAlgorithm::P256);
    assert!(accepted, "{output}");
    assert!(output.contains("Verification: OK"), "{output}");
}

#[test]
fn openssl_reads_cairn_ed25519_responses() {
    // `openssl ts -reply -text` parses the Ed25519 response (checked inside). Whether
    // `openssl ts -verify` accepts it depends on the OpenSSL version: 3.0 verifies timestamp
    // tokens through PKCS#7, which has no Ed25519, and must then refuse for that reason only.
    let (accepted, output) = openssl_verifies_cairn(TsaAlgorithm::Ed25519);
    if !accepted {
        assert!(
            output.contains("PKCS7_signatureVerify")
                && output.contains("operation not supported for this keytype"),
            "openssl refused a Cairn Ed25519 response for another reason than Ed25519 support:\n{output}"
        );
    }
}

/// The text between `<!-- name -->` and the end of the fenced code block after it.
fn doc_block(doc: &str, name: &str) -> String {
    let marker = format!("<!-- {name} -->");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker} not in spec/docs/timestamp.md"));
    let after = &doc[start + marker.len()..];
    let open = after.find("```").expect("a code block follows the marker");
    let body_start = open + after[open..].find('\n').expect("fence line") + 1;
    let close = after[body_start..]
        .find("```")
        .expect("the code block is closed");
    after[body_start..body_start + close].to_string()
}

#[test]
fn documented_example_is_what_cairn_sends_and_openssl_checks() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/timestamp.md"))
            .expect("spec/docs/timestamp.md");
    let body = doc_block(&doc, "example-body");
    let imprint = checkpoint_imprint(body.as_bytes());
    assert_eq!(
        hex(&imprint),
        doc_block(&doc, "example-imprint").trim(),
        "the documented imprint is SHA-256 of the documented body"
    );
    let request = TimestampRequest::for_imprint(imprint, NONCE, None).to_der();
    let documented: String = doc_block(&doc, "example-request")
        .chars()
        .filter(|character| !character.is_whitespace())
        .collect();
    assert_eq!(hex(&request), documented, "the documented request");

    // A token for that body from a Cairn TSA, checked with the documented command.
    let (tsa, now) = TestTsa::valid_now(TsaAlgorithm::P256);
    let response = issue_response(
        &TimestampRequest::from_der(&request).expect("parse"),
        &tsa.signer,
        &TimestampGrant {
            gen_time: now,
            ..grant(&[9])
        },
    )
    .expect("issue");
    let work = scratch("doc-example");
    std::fs::write(work.join("body.txt"), &body).expect("write");
    std::fs::write(work.join("token.der"), token_of(&response)).expect("write");
    std::fs::write(work.join("root.pem"), certificate_to_pem(&tsa.root_der)).expect("write");
    let commands = doc_block(&doc, "example-verify");
    let command = commands
        .lines()
        .find(|line| line.starts_with("openssl ts -verify"))
        .expect("the documented openssl command");
    let arguments: Vec<&str> = command.split_whitespace().skip(1).collect();
    let (accepted, output) = try_openssl(&work, &arguments);
    assert!(accepted && output.contains("Verification: OK"), "{output}");
    // The same command refuses another body.
    std::fs::write(work.join("body.txt"), b"example.com/cairn\n5\n").expect("write");
    let (accepted, _) = try_openssl(&work, &arguments);
    assert!(!accepted, "openssl accepted a token for another body");
}
