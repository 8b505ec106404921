//! Shared setup of the RFC 3161 tests: fixed keys, a private TSA made with cairn-spec's own
//! certificate code, token and certificate surgery for the rejection tests, and the `openssl`
//! binary for the interop tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_spec::time::Instant;
use cairn_spec::timestamp::{
    make_root_certificate, make_tsa_certificate, CertificateSpec, KeyPair, ObjectIdentifier,
    TimestampGrant, TimestampRequest, TrustAnchors, TsaSigner,
};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfo};
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use sha2::Digest;
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

/// 2026-01-01T00:00:00Z and 2036-01-01T00:00:00Z: the validity of the test certificates.
pub const NOT_BEFORE: i64 = 1_767_225_600;
pub const NOT_AFTER: i64 = 2_082_758_400;
/// 2026-11-25T11:37:18.619Z: genTime of the test tokens.
pub const GEN_TIME: Instant = Instant {
    seconds: 1_795_606_638,
    nanos: 619_000_000,
};
pub const POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");

/// A checkpoint body as a Cairn log signs it.
pub const CHECKPOINT_BODY: &[u8] =
    b"example.com/cairn\n4\nSx4cz0bPqH3LpvmV1lk4ah0E3nnAKTX9lJdXIiSzvCw=\n";

pub fn ed25519_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

pub fn p256_key(seed: u8) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("a small repeated byte is a scalar")
}

/// Which key a test TSA signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsaAlgorithm {
    Ed25519,
    P256,
}

/// A private TSA: an Ed25519 or P-256 root, a TSA certificate it issued, and the signer.
pub struct TestTsa {
    pub root_key: ed25519_dalek::SigningKey,
    pub root_der: Vec<u8>,
    pub tsa_key: KeyPair,
    pub tsa_der: Vec<u8>,
    pub signer: TsaSigner,
    pub anchors: TrustAnchors,
}

impl TestTsa {
    pub fn new(algorithm: TsaAlgorithm) -> TestTsa {
        TestTsa::with_root_seed(algorithm, 1)
    }

    /// A TSA whose certificates are valid around the real current time, for tools such as
    /// `openssl ts -verify` that check validity now rather than at genTime.
    pub fn valid_now(algorithm: TsaAlgorithm) -> (TestTsa, Instant) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970");
        let now = Instant {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_millis() * 1_000_000,
        };
        let tsa = TestTsa::build(
            algorithm,
            1,
            now.seconds - 86_400,
            now.seconds + 365 * 86_400,
        );
        (tsa, now)
    }

    pub fn with_root_seed(algorithm: TsaAlgorithm, root_seed: u8) -> TestTsa {
        TestTsa::build(algorithm, root_seed, NOT_BEFORE, NOT_AFTER)
    }

    fn build(algorithm: TsaAlgorithm, root_seed: u8, not_before: i64, not_after: i64) -> TestTsa {
        let root_key = ed25519_key(root_seed);
        let root_pair = KeyPair::Ed25519(root_key.clone());
        let root_der = make_root_certificate(
            &root_pair,
            &CertificateSpec {
                subject: "CN=Cairn Test TSA Root,O=Cairn Tests",
                serial_number: &[0x01, 0x23, 0x45, 0x67, 0x89],
                not_before: Instant::from_seconds(not_before),
                not_after: Instant::from_seconds(not_after),
            },
        )
        .expect("root certificate");
        let tsa_key = match algorithm {
            TsaAlgorithm::Ed25519 => KeyPair::Ed25519(ed25519_key(2)),
            TsaAlgorithm::P256 => KeyPair::P256(p256_key(3)),
        };
        let tsa_der = make_tsa_certificate(
            &root_pair,
            &root_der,
            &tsa_key.public_key_info_der(),
            &CertificateSpec {
                subject: "CN=Cairn Test TSA,O=Cairn Tests",
                serial_number: &[0x42],
                not_before: Instant::from_seconds(not_before),
                not_after: Instant::from_seconds(not_after),
            },
        )
        .expect("TSA certificate");
        let signer = TsaSigner::new(tsa_key.clone(), tsa_der.clone(), vec![root_der.clone()])
            .expect("signer");
        let anchors = TrustAnchors::from_der(&[&root_der]).expect("anchor");
        TestTsa {
            root_key,
            root_der,
            tsa_key,
            tsa_der,
            signer,
            anchors,
        }
    }

    /// A granted response to `request`, with the test genTime and policy.
    pub fn respond(&self, request: &TimestampRequest, serial: &[u8]) -> Vec<u8> {
        cairn_spec::timestamp::issue_response(request, &self.signer, &grant(serial)).expect("issue")
    }

    /// Signs `message` with the TSA key, as a CMS signature.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        sign_with(&self.tsa_key, message)
    }
}

pub fn grant(serial: &[u8]) -> TimestampGrant<'_> {
    TimestampGrant {
        serial_number: serial,
        gen_time: GEN_TIME,
        policy: POLICY,
        accuracy: Some(cairn_spec::timestamp::Accuracy {
            seconds: 1,
            millis: 500,
            micros: 0,
        }),
    }
}

pub fn sign_with(key: &KeyPair, message: &[u8]) -> Vec<u8> {
    use signature::Signer;
    match key {
        KeyPair::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        KeyPair::P256(key) => {
            let signature: p256::ecdsa::Signature = key.sign(message);
            signature.to_der().as_bytes().to_vec()
        }
        KeyPair::ExternalP256(key) => key.sign_sha256(message).expect("the external key signs"),
    }
}

/// The token inside a TimeStampResp.
pub fn token_of(response: &[u8]) -> Vec<u8> {
    #[derive(der::Sequence)]
    struct Response {
        status: Any,
        token: Any,
    }
    Response::from_der(response)
        .expect("a granted response")
        .token
        .to_der()
        .expect("encode")
}

/// A TimeStampResp around `token`, status granted.
pub fn response_of(token: &[u8]) -> Vec<u8> {
    let mut body = vec![0x30, 0x03, 0x02, 0x01, 0x00];
    body.extend_from_slice(token);
    let mut response = vec![0x30];
    push_length(&mut response, body.len());
    response.extend(body);
    response
}

fn push_length(out: &mut Vec<u8>, length: usize) {
    if length < 0x80 {
        out.push(length as u8);
    } else if length < 0x100 {
        out.extend([0x81, length as u8]);
    } else {
        out.extend([0x82, (length >> 8) as u8, length as u8]);
    }
}

/// Decodes a token, lets `edit` change its SignedData, and encodes it again.
pub fn edit_token(token: &[u8], edit: impl FnOnce(&mut SignedData)) -> Vec<u8> {
    let content_info = ContentInfo::from_der(token).expect("token");
    let mut signed_data: SignedData = content_info.content.decode_as().expect("SignedData");
    edit(&mut signed_data);
    ContentInfo {
        content_type: content_info.content_type,
        content: Any::encode_from(&signed_data).expect("encode SignedData"),
    }
    .to_der()
    .expect("encode token")
}

/// Lets `edit` change the first SignerInfo of a SignedData.
pub fn edit_signer(signed_data: &mut SignedData, edit: impl FnOnce(&mut SignerInfo)) {
    let mut infos: Vec<SignerInfo> = signed_data.signer_infos.0.clone().into_vec();
    edit(infos.first_mut().expect("a signer"));
    signed_data.signer_infos.0 = SetOfVec::try_from(infos).expect("signer infos");
}

/// Replaces (or adds) the signed attribute `oid` with one value.
pub fn set_attribute(info: &mut SignerInfo, oid: ObjectIdentifier, value: Any) {
    let mut attributes: Vec<Attribute> = info
        .signed_attrs
        .clone()
        .map(|set| set.into_vec())
        .unwrap_or_default();
    attributes.retain(|attribute| attribute.oid != oid);
    attributes.push(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).expect("one value"),
    });
    info.signed_attrs = Some(SetOfVec::try_from(attributes).expect("attributes"));
}

/// Signs the SignerInfo's signed attributes again with `sign`.
pub fn resign(info: &mut SignerInfo, sign: impl Fn(&[u8]) -> Vec<u8>) {
    let attributes = info
        .signed_attrs
        .as_ref()
        .expect("signed attributes")
        .to_der()
        .expect("encode");
    info.signature = OctetString::new(sign(&attributes)).expect("signature");
}

/// The signing-certificate-v2 value for a certificate: one ESSCertIDv2 with its SHA-256 hash
/// and no issuerSerial.
pub fn signing_certificate_v2(certificate: &[u8]) -> Any {
    #[derive(der::Sequence)]
    struct EssCertIdV2 {
        cert_hash: OctetString,
    }
    #[derive(der::Sequence)]
    struct SigningCertificateV2 {
        certs: Vec<EssCertIdV2>,
    }
    Any::encode_from(&SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(sha2::Sha256::digest(certificate).to_vec()).expect("hash"),
        }],
    })
    .expect("encode")
}

/// Replaces the token's certificates by `certificates` (DER).
pub fn set_certificates(signed_data: &mut SignedData, certificates: &[Vec<u8>]) {
    let choices: Vec<cms::cert::CertificateChoices> = certificates
        .iter()
        .map(|der| {
            cms::cert::CertificateChoices::Certificate(
                Certificate::from_der(der).expect("certificate"),
            )
        })
        .collect();
    signed_data.certificates =
        Some(cms::signed_data::CertificateSet::try_from(choices).expect("certificate set"));
}

/// A copy of `certificate` with its tbsCertificate changed by `edit`, signed again by the
/// Ed25519 `issuer_key`.
pub fn reissue(
    certificate: &[u8],
    issuer_key: &ed25519_dalek::SigningKey,
    edit: impl FnOnce(&mut x509_cert::TbsCertificate),
) -> Vec<u8> {
    use signature::Signer;
    let mut certificate = Certificate::from_der(certificate).expect("certificate");
    edit(&mut certificate.tbs_certificate);
    let tbs = certificate.tbs_certificate.to_der().expect("encode tbs");
    certificate.signature =
        der::asn1::BitString::from_bytes(&issuer_key.sign(&tbs).to_bytes()).expect("bits");
    certificate.to_der().expect("encode certificate")
}

/// The `openssl` binary. The interop tests must not pass without it: CI installs it.
pub fn openssl() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|directory| directory.join("openssl"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the `openssl` binary is not on PATH: the RFC 3161 interop tests run it \
             (CI installs it; on Debian: apt-get install openssl)"
        )
    })
}

/// Runs openssl with `arguments` in `directory`; returns stdout, panicking with stderr if it
/// fails.
pub fn run_openssl(directory: &Path, arguments: &[&str]) -> String {
    let output = Command::new(openssl())
        .args(arguments)
        .current_dir(directory)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {} failed: {}{}",
        arguments.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs openssl and returns (success, stdout + stderr).
pub fn try_openssl(directory: &Path, arguments: &[&str]) -> (bool, String) {
    let output = Command::new(openssl())
        .args(arguments)
        .current_dir(directory)
        .output()
        .expect("run openssl");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
