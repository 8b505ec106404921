//! RFC 3161 round trips through Cairn's own issuer, and every way a response or token must be
//! refused. Interop with OpenSSL is in `timestamp_openssl.rs`.

#[path = "tsa/support.rs"]
mod support;

use cairn_spec::time::Instant;
use cairn_spec::timestamp::{
    checkpoint_imprint, issue_response, oid, rejection_response, respond, verify_response,
    verify_token, Accuracy, ChainFailure, Expectation, FailureInfo, HashAlgorithm, KeyPair,
    PkiStatus, SignatureAlgorithm, TimestampError, TimestampGrant, TimestampRequest, TrustAnchors,
    TsaSigner, MAX_CERTIFICATES, MAX_TOKEN_SIZE,
};
use der::asn1::{Any, OctetString};
use der::{Decode, Encode};
use support::*;

const NONCE: u64 = 0x1122_3344_5566_7788;

fn request() -> TimestampRequest {
    TimestampRequest::for_imprint(checkpoint_imprint(CHECKPOINT_BODY), NONCE, None)
}

fn expectation(anchors: Option<&TrustAnchors>) -> Expectation<'_> {
    Expectation {
        imprint: checkpoint_imprint(CHECKPOINT_BODY),
        nonce: Some(NONCE),
        trust_anchors: anchors,
    }
}

fn round_trip(algorithm: TsaAlgorithm) {
    let tsa = TestTsa::new(algorithm);
    let response = tsa.respond(&request(), &[0x01, 0x00]);
    let verified = verify_response(&response, &expectation(Some(&tsa.anchors))).expect("valid");
    assert_eq!(verified.status, PkiStatus::Granted);
    assert_eq!(verified.gen_time, GEN_TIME);
    assert_eq!(verified.gen_time_rfc3339, "2026-11-25T11:37:18.619Z");
    assert_eq!(verified.serial_number.to_decimal(), "256");
    assert_eq!(verified.policy, POLICY);
    assert_eq!(
        verified.accuracy,
        Some(Accuracy {
            seconds: 1,
            millis: 500,
            micros: 0
        })
    );
    assert!(!verified.ordering);
    assert_eq!(verified.tsa_name, None);
    assert_eq!(verified.signer_certificate_der, tsa.tsa_der);
    assert_eq!(verified.signer_subject, "CN=Cairn Test TSA,O=Cairn Tests");
    assert_eq!(verified.trust_anchor_der, Some(tsa.root_der.clone()));
    assert_eq!(
        verified.signature_algorithm,
        match algorithm {
            TsaAlgorithm::Ed25519 => SignatureAlgorithm::Ed25519,
            TsaAlgorithm::P256 => SignatureAlgorithm::EcdsaP256(HashAlgorithm::Sha256),
        }
    );
    assert_eq!(verified.token_der, token_of(&response));

    // The stored token verifies alone, with or without its nonce and anchors.
    let from_token = verify_token(
        &verified.token_der,
        &Expectation {
            nonce: None,
            ..expectation(Some(&tsa.anchors))
        },
    )
    .expect("token verifies");
    assert_eq!(from_token.gen_time, GEN_TIME);
    let unanchored = verify_token(&verified.token_der, &expectation(None)).expect("no anchors");
    assert_eq!(unanchored.trust_anchor_der, None);
}

#[test]
fn ed25519_tsa_round_trip_verifies() {
    round_trip(TsaAlgorithm::Ed25519);
}

#[test]
fn p256_tsa_round_trip_verifies() {
    round_trip(TsaAlgorithm::P256);
}

#[test]
fn issuing_is_deterministic_for_both_key_types() {
    // No clock, no randomness: the same inputs give the same bytes (RFC 6979 for ECDSA).
    for algorithm in [TsaAlgorithm::Ed25519, TsaAlgorithm::P256] {
        let tsa = TestTsa::new(algorithm);
        assert_eq!(tsa.respond(&request(), &[7]), tsa.respond(&request(), &[7]));
    }
}

#[test]
fn trust_anchor_may_be_the_tsa_certificate_itself() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let pinned = TrustAnchors::from_der(&[&tsa.tsa_der]).expect("anchor");
    let response = tsa.respond(&request(), &[1]);
    let verified = verify_response(&response, &expectation(Some(&pinned))).expect("pinned");
    assert_eq!(verified.trust_anchor_der, Some(tsa.tsa_der.clone()));
}

#[test]
fn echoes_nonces_of_any_size_and_omits_certificates_without_cert_req() {
    let tsa = TestTsa::new(TsaAlgorithm::P256);
    // A request as openssl makes it: SHA-256 with NULL parameters, a 64-bit nonce, no certReq.
    let openssl_style = unhex("30400201013031300D060960864801650304020105000420BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD0208314CFCE4E0651827");
    let request = TimestampRequest::from_der(&openssl_style).expect("request");
    let response = tsa.respond(&request, &[2]);
    let token = token_of(&response);
    // Without certReq the token carries no certificate, so nothing can verify it alone.
    let imprint: [u8; 32] = request.imprint().try_into().expect("32 bytes");
    assert!(matches!(
        verify_token(
            &token,
            &Expectation {
                imprint,
                nonce: Some(0x314C_FCE4_E065_1827),
                trust_anchors: None
            }
        ),
        Err(TimestampError::SignerCertificateNotFound { .. })
    ));
    let tst_info_nonce = [0x31, 0x4C, 0xFC, 0xE4, 0xE0, 0x65, 0x18, 0x27];
    assert!(
        token
            .windows(10)
            .any(|window| window[..2] == [0x02, 0x08] && window[2..] == tst_info_nonce),
        "the nonce is echoed in the TSTInfo"
    );
}

#[test]
fn respond_refuses_what_a_cairn_tsa_cannot_honour() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let refused = |request_der: &[u8]| -> (Vec<String>, Vec<FailureInfo>) {
        let response = respond(request_der, &tsa.signer, &grant(&[1]));
        match verify_response(&response, &expectation(None)) {
            Err(TimestampError::NotGranted {
                status: PkiStatus::Rejection,
                status_text,
                fail_info,
            }) => (status_text, fail_info),
            other => panic!("expected a rejection, found {other:?}"),
        }
    };
    // A SHA-1 imprint: badAlg.
    let sha1_request = unhex(
        "3027 020101 301F 3007 06052B0E03021A \
         0414 A9993E364706816ABA3E25717850C26C9CD0D89D 0101FF",
    );
    let (text, fail_info) = refused(&sha1_request);
    assert_eq!(fail_info, [FailureInfo::BadAlg]);
    assert!(text[0].contains("1.3.14.3.2.26"), "{text:?}");
    // Not DER at all: badDataFormat.
    assert_eq!(refused(b"hello").1, [FailureInfo::BadDataFormat]);
    // Another policy: unacceptedPolicy.
    let other_policy = TimestampRequest::for_imprint(
        [5; 32],
        1,
        Some(cairn_spec::timestamp::ObjectIdentifier::new_unwrap(
            "1.2.3.4",
        )),
    );
    assert_eq!(
        refused(&other_policy.to_der()).1,
        [FailureInfo::UnacceptedPolicy]
    );
    // The TSA's own policy is fine.
    let own_policy = TimestampRequest::for_imprint([5; 32], 1, Some(POLICY));
    let response = respond(&own_policy.to_der(), &tsa.signer, &grant(&[1]));
    verify_response(
        &response,
        &Expectation {
            imprint: [5; 32],
            nonce: Some(1),
            trust_anchors: Some(&tsa.anchors),
        },
    )
    .expect("granted");
}

#[test]
fn rejection_response_reports_status_text_and_fail_info() {
    let response = rejection_response(FailureInfo::TimeNotAvailable, "clock not synchronised");
    assert_eq!(
        verify_response(&response, &expectation(None)),
        Err(TimestampError::NotGranted {
            status: PkiStatus::Rejection,
            status_text: vec!["clock not synchronised".to_string()],
            fail_info: vec![FailureInfo::TimeNotAvailable],
        })
    );
    let message = verify_response(&response, &expectation(None))
        .unwrap_err()
        .to_string();
    assert!(message.contains("rejection"), "{message}");
    assert!(message.contains("timeNotAvailable"), "{message}");
}

#[test]
fn rejects_tampered_signature() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_of(&tsa.respond(&request(), &[1]));
    let tampered = edit_token(&token, |signed_data| {
        edit_signer(signed_data, |info| {
            let mut signature = info.signature.as_bytes().to_vec();
            signature[10] ^= 0x01;
            info.signature = OctetString::new(signature).expect("signature");
        })
    });
    assert_eq!(
        verify_token(&tampered, &expectation(None)),
        Err(TimestampError::BadSignature {
            algorithm: "Ed25519".to_string()
        })
    );
    let tsa = TestTsa::new(TsaAlgorithm::P256);
    let token = token_of(&tsa.respond(&request(), &[1]));
    // Flip one byte of the DER ECDSA signature's s value (the signature ends the token).
    let mut tampered = token.clone();
    let last = tampered.len() - 5;
    tampered[last] ^= 0x01;
    assert!(matches!(
        verify_token(&tampered, &expectation(None)),
        Err(TimestampError::BadSignature { .. })
    ));
}

#[test]
fn rejects_wrong_imprint_and_wrong_nonce() {
    let tsa = TestTsa::new(TsaAlgorithm::P256);
    let response = tsa.respond(&request(), &[1]);
    let other_body = b"example.com/cairn\n5\nSx4cz0bPqH3LpvmV1lk4ah0E3nnAKTX9lJdXIiSzvCw=\n";
    assert!(matches!(
        verify_response(
            &response,
            &Expectation {
                imprint: checkpoint_imprint(other_body),
                ..expectation(None)
            }
        ),
        Err(TimestampError::ImprintMismatch { .. })
    ));
    assert_eq!(
        verify_response(
            &response,
            &Expectation {
                nonce: Some(NONCE + 1),
                ..expectation(None)
            }
        ),
        Err(TimestampError::NonceMismatch {
            expected: NONCE + 1,
            found: "1122334455667788".to_string()
        })
    );
    // A response to a request without a nonce cannot satisfy an expected nonce.
    let mut no_nonce_der = vec![0x30, 0x37, 0x02, 0x01, 0x01, 0x30, 0x2f];
    no_nonce_der.extend([
        0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
    ]);
    no_nonce_der.extend([0x01, 0x04, 0x20]);
    no_nonce_der.extend(checkpoint_imprint(CHECKPOINT_BODY));
    no_nonce_der.extend([0x01, 0x01, 0xff]);
    let no_nonce = TimestampRequest::from_der(&no_nonce_der).expect("request");
    assert_eq!(no_nonce.nonce(), None);
    let response = tsa.respond(&no_nonce, &[1]);
    assert_eq!(
        verify_response(&response, &expectation(None)),
        Err(TimestampError::NonceMissing { expected: NONCE })
    );
}

#[test]
fn rejects_signer_certificate_replaced_by_another() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_of(&tsa.respond(&request(), &[1]));
    // Another certificate with the same issuer and serial but another key: the sid still finds
    // it, the ESSCertIDv2 hash does not match it.
    let impostor = reissue(&tsa.tsa_der, &tsa.root_key, |tbs| {
        let other = KeyPair::Ed25519(ed25519_key(9)).public_key_info_der();
        tbs.subject_public_key_info =
            spki::SubjectPublicKeyInfoOwned::from_der(&other).expect("spki");
    });
    let replaced = edit_token(&token, |signed_data| {
        set_certificates(signed_data, &[impostor.clone(), tsa.root_der.clone()])
    });
    assert!(matches!(
        verify_token(&replaced, &expectation(None)),
        Err(TimestampError::SigningCertificateMismatch {
            attribute: "ESSCertIDv2",
            algorithm: HashAlgorithm::Sha256,
            ..
        })
    ));
    // A certificate with another serial: no certificate matches the sid at all.
    let stranger = reissue(&tsa.tsa_der, &tsa.root_key, |tbs| {
        tbs.serial_number = x509_cert::serial_number::SerialNumber::new(&[0x43]).expect("serial");
    });
    let replaced = edit_token(&token, |signed_data| {
        set_certificates(signed_data, std::slice::from_ref(&stranger))
    });
    assert!(matches!(
        verify_token(&replaced, &expectation(None)),
        Err(TimestampError::SignerCertificateNotFound { .. })
    ));
    // The impostor's hash put in ESSCertIDv2 and the attributes signed again by the real key:
    // now only the signature betrays it.
    let resigned = edit_token(&token, |signed_data| {
        set_certificates(signed_data, std::slice::from_ref(&impostor));
        edit_signer(signed_data, |info| {
            set_attribute(
                info,
                oid::SIGNING_CERTIFICATE_V2,
                signing_certificate_v2(&impostor),
            );
            resign(info, |message| tsa.sign(message));
        })
    });
    assert!(matches!(
        verify_token(&resigned, &expectation(None)),
        Err(TimestampError::BadSignature { .. })
    ));
}

/// A token signed by the real TSA key whose certificate was changed by `edit` (and re-signed
/// by the root), with ESSCertIDv2 and the CMS signature made to match.
fn token_with_certificate(
    tsa: &TestTsa,
    edit: impl FnOnce(&mut x509_cert::TbsCertificate),
) -> Vec<u8> {
    let token = token_of(&tsa.respond(&request(), &[1]));
    let certificate = reissue(&tsa.tsa_der, &tsa.root_key, edit);
    edit_token(&token, |signed_data| {
        set_certificates(signed_data, &[certificate.clone(), tsa.root_der.clone()]);
        edit_signer(signed_data, |info| {
            set_attribute(
                info,
                oid::SIGNING_CERTIFICATE_V2,
                signing_certificate_v2(&certificate),
            );
            resign(info, |message| tsa.sign(message));
        })
    })
}

#[test]
fn surgery_without_a_defect_still_verifies() {
    // The rejection tests below change one thing each; this checks the surgery itself is sound.
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_with_certificate(&tsa, |_| {});
    verify_token(&token, &expectation(Some(&tsa.anchors))).expect("valid");
}

#[test]
fn rejects_tsa_certificate_without_time_stamping_eku() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_with_certificate(&tsa, |tbs| {
        let extensions = tbs.extensions.as_mut().expect("extensions");
        extensions.retain(|extension| extension.extn_id != oid::EXTENDED_KEY_USAGE);
    });
    assert!(matches!(
        verify_token(&token, &expectation(Some(&tsa.anchors))),
        Err(TimestampError::MissingTimeStampingEku { .. })
    ));
}

#[test]
fn rejects_tsa_certificate_with_non_critical_eku() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_with_certificate(&tsa, |tbs| {
        for extension in tbs.extensions.as_mut().expect("extensions") {
            if extension.extn_id == oid::EXTENDED_KEY_USAGE {
                extension.critical = false;
            }
        }
    });
    assert!(matches!(
        verify_token(&token, &expectation(Some(&tsa.anchors))),
        Err(TimestampError::EkuNotCritical { .. })
    ));
}

#[test]
fn rejects_tsa_certificate_with_other_purposes_too() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_with_certificate(&tsa, |tbs| {
        for extension in tbs.extensions.as_mut().expect("extensions") {
            if extension.extn_id == oid::EXTENDED_KEY_USAGE {
                let usage = x509_cert::ext::pkix::ExtendedKeyUsage(vec![
                    oid::TIME_STAMPING,
                    cairn_spec::timestamp::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4"),
                ]);
                extension.extn_value =
                    OctetString::new(usage.to_der().expect("encode")).expect("octets");
            }
        }
    });
    assert!(matches!(
        verify_token(&token, &expectation(None)),
        Err(TimestampError::EkuNotTimeStampingOnly { .. })
    ));
}

#[test]
fn rejects_token_whose_gen_time_is_outside_the_tsa_certificate() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_with_certificate(&tsa, |tbs| {
        tbs.validity.not_after = x509_cert::time::Time::UtcTime(
            der::asn1::UtcTime::from_unix_duration(std::time::Duration::from_secs(
                (GEN_TIME.seconds - 1) as u64,
            ))
            .expect("time"),
        );
    });
    assert!(matches!(
        verify_token(&token, &expectation(None)),
        Err(TimestampError::SignerNotValidAtGenTime { .. })
    ));
}

#[test]
fn rejects_untrusted_root() {
    let tsa = TestTsa::new(TsaAlgorithm::P256);
    let response = tsa.respond(&request(), &[1]);
    // A root with another name.
    let stranger = TestTsa::with_root_seed(TsaAlgorithm::P256, 7);
    let other_anchors =
        TrustAnchors::from_der(&[reissue(&stranger.root_der, &stranger.root_key, |tbs| {
            let name: x509_cert::name::Name = "CN=Someone Else".parse().expect("name");
            tbs.subject = name.clone();
            tbs.issuer = name;
        })])
        .expect("anchor");
    assert!(matches!(
        verify_response(&response, &expectation(Some(&other_anchors))),
        Err(TimestampError::UntrustedChain {
            reason: ChainFailure::IssuerNotFound { .. },
            ..
        })
    ));
    // A root with the same name but another key: the name matches, the signature does not.
    assert!(matches!(
        verify_response(&response, &expectation(Some(&stranger.anchors))),
        Err(TimestampError::UntrustedChain {
            reason: ChainFailure::BadCertificateSignature { .. },
            ..
        })
    ));
}

#[test]
fn rejects_chain_through_a_non_ca_certificate() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    // The root re-made without basicConstraints cA: it can no longer vouch for the TSA.
    let not_ca = reissue(&tsa.root_der, &tsa.root_key, |tbs| {
        let extensions = tbs.extensions.as_mut().expect("extensions");
        extensions.retain(|extension| extension.extn_id != oid::BASIC_CONSTRAINTS);
    });
    let anchors = TrustAnchors::from_der(&[not_ca]).expect("anchor");
    let response = tsa.respond(&request(), &[1]);
    assert!(matches!(
        verify_response(&response, &expectation(Some(&anchors))),
        Err(TimestampError::UntrustedChain {
            reason: ChainFailure::IssuerNotCa { .. },
            ..
        })
    ));
}

#[test]
fn rejects_chain_when_the_root_had_expired_at_gen_time() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let expired = reissue(&tsa.root_der, &tsa.root_key, |tbs| {
        tbs.validity.not_after = x509_cert::time::Time::UtcTime(
            der::asn1::UtcTime::from_unix_duration(std::time::Duration::from_secs(
                (NOT_BEFORE + 86_400) as u64,
            ))
            .expect("time"),
        );
    });
    let anchors = TrustAnchors::from_der(&[expired]).expect("anchor");
    let response = tsa.respond(&request(), &[1]);
    assert!(matches!(
        verify_response(&response, &expectation(Some(&anchors))),
        Err(TimestampError::UntrustedChain {
            reason: ChainFailure::NotValidAtGenTime { .. },
            ..
        })
    ));
}

#[test]
fn rejects_truncated_and_oversized_input() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let response = tsa.respond(&request(), &[1]);
    for cut in [0, 1, 2, 10, response.len() / 2, response.len() - 1] {
        assert!(
            matches!(
                verify_response(&response[..cut], &expectation(None)),
                Err(TimestampError::Malformed { .. })
            ),
            "cut at {cut}"
        );
    }
    let mut longer = response.clone();
    longer.push(0);
    assert!(matches!(
        verify_response(&longer, &expectation(None)),
        Err(TimestampError::Malformed { .. })
    ));
    let oversized = vec![0x30; MAX_TOKEN_SIZE + 1];
    assert_eq!(
        verify_response(&oversized, &expectation(None)),
        Err(TimestampError::TooLarge {
            what: "response",
            size: MAX_TOKEN_SIZE + 1,
            limit: MAX_TOKEN_SIZE
        })
    );
    assert!(matches!(
        verify_token(&oversized, &expectation(None)),
        Err(TimestampError::TooLarge { what: "token", .. })
    ));
}

#[test]
fn rejects_more_certificates_than_the_limit() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_of(&tsa.respond(&request(), &[1]));
    let many: Vec<Vec<u8>> = (0..=MAX_CERTIFICATES as u8)
        .map(|serial| {
            reissue(&tsa.root_der, &tsa.root_key, |tbs| {
                tbs.serial_number =
                    x509_cert::serial_number::SerialNumber::new(&[serial + 1]).expect("serial");
            })
        })
        .collect();
    let crowded = edit_token(&token, |signed_data| set_certificates(signed_data, &many));
    assert_eq!(
        verify_token(&crowded, &expectation(None)),
        Err(TimestampError::TooManyCertificates {
            found: MAX_CERTIFICATES + 1,
            limit: MAX_CERTIFICATES
        })
    );
}

#[test]
fn rejects_message_digest_that_does_not_match_the_tst_info() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_of(&tsa.respond(&request(), &[1]));
    let forged = edit_token(&token, |signed_data| {
        edit_signer(signed_data, |info| {
            set_attribute(
                info,
                oid::MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(vec![0u8; 64]).expect("octets"))
                    .expect("encode"),
            );
            resign(info, |message| tsa.sign(message));
        })
    });
    assert!(matches!(
        verify_token(&forged, &expectation(None)),
        Err(TimestampError::MessageDigestMismatch {
            algorithm: HashAlgorithm::Sha512,
            ..
        })
    ));
}

#[test]
fn rejects_token_without_signing_certificate_attribute() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_of(&tsa.respond(&request(), &[1]));
    let stripped = edit_token(&token, |signed_data| {
        edit_signer(signed_data, |info| {
            let attributes: Vec<x509_cert::attr::Attribute> = info
                .signed_attrs
                .clone()
                .expect("attributes")
                .into_vec()
                .into_iter()
                .filter(|attribute| attribute.oid != oid::SIGNING_CERTIFICATE_V2)
                .collect();
            info.signed_attrs = Some(der::asn1::SetOfVec::try_from(attributes).expect("set"));
            resign(info, |message| tsa.sign(message));
        })
    });
    assert_eq!(
        verify_token(&stripped, &expectation(None)),
        Err(TimestampError::MissingSigningCertificate)
    );
}

#[test]
fn rejects_token_of_another_content_type() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let token = token_of(&tsa.respond(&request(), &[1]));
    let data = edit_token(&token, |signed_data| {
        signed_data.encap_content_info.econtent_type =
            cairn_spec::timestamp::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    });
    assert!(matches!(
        verify_token(&data, &expectation(None)),
        Err(TimestampError::NotTstInfo { .. })
    ));
}

#[test]
fn signer_refuses_certificates_verifiers_would_refuse() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    // The key does not match the certificate.
    assert!(matches!(
        TsaSigner::new(
            KeyPair::Ed25519(ed25519_key(8)),
            tsa.tsa_der.clone(),
            vec![]
        ),
        Err(TimestampError::BadSigner { .. })
    ));
    // The root is no TSA certificate: it has no timeStamping EKU.
    assert!(matches!(
        TsaSigner::new(
            KeyPair::Ed25519(ed25519_key(1)),
            tsa.root_der.clone(),
            vec![]
        ),
        Err(TimestampError::BadSigner { .. })
    ));
}

#[test]
fn grant_values_out_of_range_are_refused() {
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    let too_long_serial = [0xff; 21];
    assert!(matches!(
        issue_response(&request(), &tsa.signer, &grant(&too_long_serial)),
        Err(TimestampError::BadGrant { .. })
    ));
    let bad_accuracy = TimestampGrant {
        accuracy: Some(Accuracy {
            seconds: 0,
            millis: 1000,
            micros: 0,
        }),
        ..grant(&[1])
    };
    assert!(matches!(
        issue_response(&request(), &tsa.signer, &bad_accuracy),
        Err(TimestampError::BadGrant { .. })
    ));
    let far_future = TimestampGrant {
        gen_time: Instant::from_seconds(253_402_300_800),
        ..grant(&[1])
    };
    assert!(matches!(
        issue_response(&request(), &tsa.signer, &far_future),
        Err(TimestampError::BadGrant { .. })
    ));
}

fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
        .collect()
}

// Tokens made once by OpenSSL 3.0.19 for the example request of spec/docs/timestamp.md
// (how: spec/tests/tsa/fixtures/README.md).
const OPENSSL_ROOT: &[u8] = include_bytes!("tsa/fixtures/openssl-root.der");
const OPENSSL_RSA_TOKEN: &[u8] = include_bytes!("tsa/fixtures/openssl-rsa2048-token.der");
const OPENSSL_P256_TOKEN: &[u8] = include_bytes!("tsa/fixtures/openssl-p256-token.der");
const DOC_NONCE: u64 = 0x0123_4567_89ab_cdef;

#[test]
fn verifies_stored_openssl_tokens() {
    let anchors = TrustAnchors::from_der(&[OPENSSL_ROOT]).expect("root");
    let expectation = Expectation {
        imprint: checkpoint_imprint(CHECKPOINT_BODY),
        nonce: Some(DOC_NONCE),
        trust_anchors: Some(&anchors),
    };
    let rsa = verify_token(OPENSSL_RSA_TOKEN, &expectation).expect("RSA token");
    assert_eq!(
        rsa.signature_algorithm,
        SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256)
    );
    assert_eq!(rsa.gen_time_rfc3339, "2026-11-25T12:10:33.652Z");
    assert_eq!(rsa.serial_number.to_decimal(), "2");
    assert_eq!(
        rsa.tsa_name.as_deref(),
        Some("CN=OpenSSL Test TSA rsa,O=Cairn Interop")
    );
    assert_eq!(rsa.trust_anchor_der.as_deref(), Some(OPENSSL_ROOT));
    // openssl drops the trailing zero of .720: genTime has two fraction digits here.
    let p256 = verify_token(OPENSSL_P256_TOKEN, &expectation).expect("P-256 token");
    assert_eq!(p256.gen_time_rfc3339, "2026-11-25T12:10:33.72Z");
    assert_eq!(p256.gen_time.nanos, 720_000_000);
    // Any single flipped bit in the signature value makes the token fail.
    let mut tampered = OPENSSL_RSA_TOKEN.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    assert!(matches!(
        verify_token(&tampered, &expectation),
        Err(TimestampError::BadSignature { .. })
    ));
}

#[test]
fn accepts_a_signer_named_by_subject_key_identifier() {
    let tsa = TestTsa::new(TsaAlgorithm::P256);
    let token = token_of(&tsa.respond(&request(), &[1]));
    let certificate = x509_cert::Certificate::from_der(&tsa.tsa_der).expect("certificate");
    let key_identifier = certificate
        .tbs_certificate
        .extensions
        .as_ref()
        .expect("extensions")
        .iter()
        .find(|extension| extension.extn_id == oid::SUBJECT_KEY_IDENTIFIER)
        .map(|extension| OctetString::from_der(extension.extn_value.as_bytes()).expect("SKI"))
        .expect("the TSA certificate has a subjectKeyIdentifier");
    // The sid is not signed, so it can be changed without signing again.
    let by_key_identifier = edit_token(&token, |signed_data| {
        edit_signer(signed_data, |info| {
            info.version = cms::content_info::CmsVersion::V3;
            info.sid = cms::signed_data::SignerIdentifier::SubjectKeyIdentifier(
                x509_cert::ext::pkix::SubjectKeyIdentifier(key_identifier.clone()),
            );
        })
    });
    verify_token(&by_key_identifier, &expectation(Some(&tsa.anchors))).expect("valid");
    let unknown = edit_token(&token, |signed_data| {
        edit_signer(signed_data, |info| {
            info.version = cms::content_info::CmsVersion::V3;
            info.sid = cms::signed_data::SignerIdentifier::SubjectKeyIdentifier(
                x509_cert::ext::pkix::SubjectKeyIdentifier(
                    OctetString::new(vec![0u8; 20]).expect("octets"),
                ),
            );
        })
    });
    assert!(matches!(
        verify_token(&unknown, &expectation(None)),
        Err(TimestampError::SignerCertificateNotFound { .. })
    ));
    // The SignerInfo version is not signed either, but it must match the kind of sid.
    let wrong_version = edit_token(&token, |signed_data| {
        edit_signer(signed_data, |info| {
            info.sid = cms::signed_data::SignerIdentifier::SubjectKeyIdentifier(
                x509_cert::ext::pkix::SubjectKeyIdentifier(key_identifier.clone()),
            );
        })
    });
    assert!(matches!(
        verify_token(&wrong_version, &expectation(None)),
        Err(TimestampError::UnsupportedVersion {
            what: "SignerInfo",
            ..
        })
    ));
}

/// A token whose TSA holds an RSA-2048 key: Cairn's issuer does not sign with RSA, so an
/// Ed25519 token is rebuilt around an RSA certificate from the same root, with the CMS digest
/// SHA-256 and the signed attributes signed by `sign` under `algorithm`.
fn rsa_token(
    algorithm: spki::AlgorithmIdentifierOwned,
    sign: impl Fn(&rsa::RsaPrivateKey, &[u8]) -> Vec<u8>,
) -> (TestTsa, Vec<u8>) {
    use rand::SeedableRng;
    use rsa::pkcs8::EncodePublicKey;
    use sha2::Digest;
    let tsa = TestTsa::new(TsaAlgorithm::Ed25519);
    // Generating an RSA key is slow: once for all tests.
    static RSA_KEY: std::sync::OnceLock<rsa::RsaPrivateKey> = std::sync::OnceLock::new();
    let private_key = RSA_KEY.get_or_init(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3161);
        rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key")
    });
    let public_key_info = private_key
        .to_public_key()
        .to_public_key_der()
        .expect("SPKI");
    let certificate = cairn_spec::timestamp::make_tsa_certificate(
        &KeyPair::Ed25519(tsa.root_key.clone()),
        &tsa.root_der,
        public_key_info.as_bytes(),
        &cairn_spec::timestamp::CertificateSpec {
            subject: "CN=Cairn Test RSA TSA",
            serial_number: &[0x77],
            not_before: Instant::from_seconds(NOT_BEFORE),
            not_after: Instant::from_seconds(NOT_AFTER),
        },
    )
    .expect("RSA TSA certificate");
    let token = token_of(&tsa.respond(&request(), &[1]));
    let rebuilt = edit_token(&token, |signed_data| {
        set_certificates(signed_data, std::slice::from_ref(&certificate));
        let tst_info = signed_data
            .encap_content_info
            .econtent
            .as_ref()
            .expect("eContent")
            .value()
            .to_vec();
        signed_data.digest_algorithms =
            der::asn1::SetOfVec::try_from(vec![sha256_identifier()]).expect("set");
        edit_signer(signed_data, |info| {
            let certificate_der = certificate.clone();
            info.sid = cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(
                cms::cert::IssuerAndSerialNumber {
                    issuer: x509_cert::Certificate::from_der(&certificate_der)
                        .expect("certificate")
                        .tbs_certificate
                        .issuer,
                    serial_number: x509_cert::serial_number::SerialNumber::new(&[0x77])
                        .expect("serial"),
                },
            );
            info.digest_alg = sha256_identifier();
            info.signature_algorithm = algorithm.clone();
            set_attribute(
                info,
                oid::MESSAGE_DIGEST,
                Any::encode_from(
                    &OctetString::new(sha2::Sha256::digest(&tst_info).to_vec()).expect("digest"),
                )
                .expect("encode"),
            );
            set_attribute(
                info,
                oid::SIGNING_CERTIFICATE_V2,
                signing_certificate_v2(&certificate_der),
            );
            resign(info, |message| sign(private_key, message));
        });
    });
    (tsa, rebuilt)
}

fn sha256_identifier() -> spki::AlgorithmIdentifierOwned {
    spki::AlgorithmIdentifierOwned {
        oid: oid::SHA256,
        parameters: None,
    }
}

#[test]
fn verifies_rsa_pkcs1_with_sha256_with_rsa_encryption_identifier() {
    use signature::{SignatureEncoding, Signer};
    let (tsa, token) = rsa_token(
        spki::AlgorithmIdentifierOwned {
            oid: oid::SHA256_WITH_RSA,
            parameters: Some(Any::null()),
        },
        |key, message| {
            rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone())
                .sign(message)
                .to_vec()
        },
    );
    let verified = verify_token(&token, &expectation(Some(&tsa.anchors))).expect("valid");
    assert_eq!(
        verified.signature_algorithm,
        SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256)
    );
}

#[test]
fn verifies_rsa_pss_with_explicit_parameters() {
    use signature::{RandomizedSigner, SignatureEncoding};
    #[derive(der::Sequence)]
    struct PssParameters {
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
        hash: spki::AlgorithmIdentifierOwned,
        #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
        mask: spki::AlgorithmIdentifierOwned,
        #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
        salt_length: u32,
    }
    let pss = |salt_length: u32| spki::AlgorithmIdentifierOwned {
        oid: oid::RSASSA_PSS,
        parameters: Some(
            Any::encode_from(&PssParameters {
                hash: sha256_identifier(),
                mask: spki::AlgorithmIdentifierOwned {
                    oid: oid::MGF1,
                    parameters: Some(Any::encode_from(&sha256_identifier()).expect("encode")),
                },
                salt_length,
            })
            .expect("encode"),
        ),
    };
    let sign = |key: &rsa::RsaPrivateKey, message: &[u8]| {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len(key.clone(), 32)
            .sign_with_rng(&mut rng, message)
            .to_vec()
    };
    let (tsa, token) = rsa_token(pss(32), sign);
    let verified = verify_token(&token, &expectation(Some(&tsa.anchors))).expect("valid");
    assert_eq!(
        verified.signature_algorithm,
        SignatureAlgorithm::RsaPss {
            hash: HashAlgorithm::Sha256,
            salt_length: 32
        }
    );
    // The same signature announced with another salt length does not verify.
    let (tsa, token) = rsa_token(pss(20), sign);
    assert!(matches!(
        verify_token(&token, &expectation(Some(&tsa.anchors))),
        Err(TimestampError::BadSignature { .. })
    ));
}
