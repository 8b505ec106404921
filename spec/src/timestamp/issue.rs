//! Issuing timestamps (RFC 3161 §2.4.2) for Cairn's own small TSA: a pure builder of
//! TimeStampResp. The caller owns the clock and the serial counter and passes genTime and the
//! serial number in; nothing here reads the time or draws randomness (ECDSA uses RFC 6979
//! deterministic nonces).
//!
//! A granted response carries a TSTInfo that echoes the request's imprint and nonce, signed in
//! a CMS SignedData whose signed attributes are content-type, message-digest and
//! signing-certificate-v2 (an ESSCertIDv2 with the SHA-256 of the TSA certificate and its
//! issuer and serial, RFC 5816). The certificate, and the chain given, are included when the
//! request sets certReq.
//!
//! The TSA's key may be held outside the process (a PKCS#11 token, an HSM): an
//! [`ExternalP256Key`] is asked for each signature, which may block and may fail; its answer
//! is checked against its public key before it goes into a token, so a token that signs with
//! another key, or answers garbage, fails here and not at a verifier's.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;

use super::algorithms::{oid, HashAlgorithm, PublicKey};
use super::asn1::{
    AccuracyDer, EssCertIdV2, IssuerSerial, PkiStatusInfo, SignedData, SigningCertificateV2,
    TimeStampResp, TstInfo,
};
use super::certificate::ParsedCertificate;
use super::error::{encoding, TimestampError};
use super::request::TimestampRequest;
use super::status::{failure_bits, positive_int, strip_leading_zeros, FailureInfo};
use super::time::{fits_generalized_time, GenTime};
use super::verify::{Accuracy, MAX_SERIAL_SIZE};
use super::{MAX_CERTIFICATES, MAX_TOKEN_SIZE};
use crate::time::Instant;
use std::sync::Arc;

/// A P-256 key held outside this process, such as in a PKCS#11 token: the caller holds the key
/// and makes each signature. Signing may block (a call into a token) and may fail (a token
/// removed, a session lost); the failure is reported as [`TimestampError::SigningFailed`].
pub trait ExternalP256Key: Send + Sync + std::fmt::Debug {
    /// The key's public half.
    fn verifying_key(&self) -> p256::ecdsa::VerifyingKey;

    /// The ECDSA signature over the SHA-256 digest of `message`, as a DER ECDSA-Sig-Value
    /// (RFC 5480 §2.2, RFC 5758 §3.2), or why the key could not sign.
    fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// A private key that signs timestamps or certificates.
#[derive(Clone, Debug)]
pub enum KeyPair {
    /// Ed25519. CMS signatures use SHA-512 as the message digest (RFC 8419 §3).
    Ed25519(ed25519_dalek::SigningKey),
    /// ECDSA over P-256 with SHA-256 and RFC 6979 nonces.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA over P-256 with SHA-256, made by a key held elsewhere (a PKCS#11 token).
    ExternalP256(Arc<dyn ExternalP256Key>),
}

impl KeyPair {
    /// An Ed25519 key from its 32-byte seed (the RFC 8032 private key).
    pub fn ed25519_from_seed(seed: [u8; 32]) -> KeyPair {
        KeyPair::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// A P-256 key from its 32-byte big-endian private scalar, which must be in 1..n-1.
    pub fn p256_from_scalar(scalar: &[u8; 32]) -> Result<KeyPair, TimestampError> {
        p256::ecdsa::SigningKey::from_slice(scalar)
            .map(KeyPair::P256)
            .map_err(|_| TimestampError::BadSigner {
                detail: "the P-256 private scalar is zero or not below the group order".to_string(),
            })
    }

    /// The DER SubjectPublicKeyInfo of the public key (RFC 8410 §4, RFC 5480 §2).
    pub fn public_key_info_der(&self) -> Vec<u8> {
        self.public_key_info()
            .to_der()
            .expect("a public key info of fixed size always encodes")
    }

    pub(crate) fn public_key_info(&self) -> SubjectPublicKeyInfoOwned {
        let (algorithm, key_bytes) = match self {
            KeyPair::Ed25519(key) => (
                AlgorithmIdentifierOwned {
                    oid: oid::ED25519,
                    parameters: None,
                },
                key.verifying_key().to_bytes().to_vec(),
            ),
            KeyPair::P256(key) => p256_algorithm_and_point(key.verifying_key()),
            KeyPair::ExternalP256(key) => p256_algorithm_and_point(&key.verifying_key()),
        };
        SubjectPublicKeyInfoOwned {
            algorithm,
            subject_public_key: der::asn1::BitString::from_bytes(&key_bytes)
                .expect("a key of at most 65 bytes fits a BIT STRING"),
        }
    }

    /// The signature AlgorithmIdentifier, parameters absent (RFC 8410 §3, RFC 5758 §3.2).
    pub(crate) fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: match self {
                KeyPair::Ed25519(_) => oid::ED25519,
                KeyPair::P256(_) | KeyPair::ExternalP256(_) => oid::ECDSA_WITH_SHA256,
            },
            parameters: None,
        }
    }

    /// The CMS digest algorithm that goes with the key.
    pub(crate) fn cms_digest(&self) -> HashAlgorithm {
        match self {
            KeyPair::Ed25519(_) => HashAlgorithm::Sha512,
            KeyPair::P256(_) | KeyPair::ExternalP256(_) => HashAlgorithm::Sha256,
        }
    }

    /// Signs `message`: 64 bytes for Ed25519, a DER ECDSA-Sig-Value for P-256. Only a key held
    /// elsewhere can fail, and its signature is verified before it is returned.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TimestampError> {
        use signature::{Signer, Verifier};
        match self {
            KeyPair::Ed25519(key) => Ok(key.sign(message).to_bytes().to_vec()),
            KeyPair::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                Ok(signature.to_der().as_bytes().to_vec())
            }
            KeyPair::ExternalP256(key) => {
                let failed = |detail: String| TimestampError::SigningFailed { detail };
                let der = key.sign_sha256(message).map_err(failed)?;
                let signature = p256::ecdsa::Signature::from_der(&der).map_err(|_| {
                    failed(format!(
                        "{key:?} answered {} bytes that are not a DER ECDSA-Sig-Value",
                        der.len()
                    ))
                })?;
                key.verifying_key()
                    .verify(message, &signature)
                    .map_err(|_| {
                        failed(format!(
                            "{key:?} answered a signature its public key does not verify"
                        ))
                    })?;
                Ok(der)
            }
        }
    }

    /// Whether `key` is this key pair's public key.
    pub(crate) fn matches(&self, key: &PublicKey) -> bool {
        match (self, key) {
            (KeyPair::Ed25519(own), PublicKey::Ed25519(other)) => own.verifying_key() == *other,
            (KeyPair::P256(own), PublicKey::P256(other)) => own.verifying_key() == other,
            (KeyPair::ExternalP256(own), PublicKey::P256(other)) => own.verifying_key() == *other,
            _ => false,
        }
    }
}

/// A P-256 public key's AlgorithmIdentifier (id-ecPublicKey on secp256r1, RFC 5480 §2.1.1)
/// and its uncompressed point, for a SubjectPublicKeyInfo: the same for a key held here and
/// one held in a token.
fn p256_algorithm_and_point(
    key: &p256::ecdsa::VerifyingKey,
) -> (AlgorithmIdentifierOwned, Vec<u8>) {
    (
        AlgorithmIdentifierOwned {
            oid: oid::EC_PUBLIC_KEY,
            parameters: Some(Any::from(oid::SECP256R1)),
        },
        key.to_encoded_point(false).as_bytes().to_vec(),
    )
}

/// A TSA's signing key with its certificate and the chain to include in tokens.
#[derive(Clone, Debug)]
pub struct TsaSigner {
    key: KeyPair,
    certificate_der: Vec<u8>,
    sid: IssuerAndSerialNumber,
    signing_certificate_v2: Any,
    /// The certificate followed by the chain, each a raw DER element.
    certificates: Vec<Any>,
}

impl TsaSigner {
    /// A signer from its key, its certificate (DER) and the chain above it (DER, nearest
    /// first, root optional). Refuses a certificate that does not hold the key, or that
    /// verifiers would refuse: it must have a critical extendedKeyUsage with only
    /// id-kp-timeStamping (RFC 3161 §2.3).
    pub fn new(
        key: KeyPair,
        certificate_der: Vec<u8>,
        chain_der: Vec<Vec<u8>>,
    ) -> Result<TsaSigner, TimestampError> {
        let bad = |detail: String| TimestampError::BadSigner { detail };
        if chain_der.len() + 1 > MAX_CERTIFICATES {
            return Err(bad(format!(
                "{} chain certificates, at most {} fit a token",
                chain_der.len(),
                MAX_CERTIFICATES - 1
            )));
        }
        let total: usize = chain_der.iter().map(Vec::len).sum::<usize>() + certificate_der.len();
        if total > MAX_TOKEN_SIZE / 2 {
            return Err(bad(format!(
                "certificates of {total} bytes leave too little room in a {MAX_TOKEN_SIZE}-byte token"
            )));
        }
        let certificate = ParsedCertificate::from_der(&certificate_der)
            .map_err(|detail| bad(format!("certificate: {detail}")))?;
        let public_key = certificate
            .public_key
            .as_ref()
            .map_err(|detail| bad(format!("certificate key: {detail}")))?;
        if !key.matches(public_key) {
            return Err(bad(
                "the certificate's public key is not the signing key's".to_string()
            ));
        }
        let (critical, purposes) = certificate
            .extended_key_usage()
            .ok_or_else(|| bad("certificate has no extendedKeyUsage".to_string()))?
            .map_err(bad)?;
        if !critical || purposes != [oid::TIME_STAMPING] {
            return Err(bad(
                "certificate extendedKeyUsage must be critical with only id-kp-timeStamping"
                    .to_string(),
            ));
        }
        let mut certificates = vec![Any::from_der(&certificate_der)
            .map_err(|error| bad(format!("certificate: {error}")))?];
        for (index, der) in chain_der.iter().enumerate() {
            ParsedCertificate::from_der(der)
                .map_err(|detail| bad(format!("chain certificate {index}: {detail}")))?;
            certificates.push(
                Any::from_der(der)
                    .map_err(|error| bad(format!("chain certificate {index}: {error}")))?,
            );
        }
        let tbs = &certificate.certificate.tbs_certificate;
        let issuer_serial = IssuerSerial {
            issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
            serial_number: der::asn1::Int::new(tbs.serial_number.as_bytes())
                .map_err(|error| bad(format!("certificate serial: {error}")))?,
        };
        let signing_certificate = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                // SHA-256 is the DEFAULT, so DER leaves it out.
                hash_algorithm: None,
                cert_hash: OctetString::new(HashAlgorithm::Sha256.digest(&certificate_der))
                    .map_err(|error| bad(error.to_string()))?,
                issuer_serial: Some(issuer_serial),
            }],
            policies: None,
        };
        Ok(TsaSigner {
            sid: IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            },
            signing_certificate_v2: Any::encode_from(&signing_certificate)
                .map_err(|error| bad(error.to_string()))?,
            key,
            certificate_der,
            certificates,
        })
    }

    /// The TSA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }
}

/// What the TSA decides for one timestamp: the caller's serial counter, clock and policy.
#[derive(Clone, Copy, Debug)]
pub struct TimestampGrant<'a> {
    /// The serial number, big-endian, at most 160 bits; unique per TSA.
    pub serial_number: &'a [u8],
    /// genTime. Nanoseconds are written as a fraction without trailing zeros.
    pub gen_time: Instant,
    /// The TSA's policy OID. A request naming another policy is refused.
    pub policy: ObjectIdentifier,
    /// The accuracy of the clock, if the TSA states one.
    pub accuracy: Option<Accuracy>,
}

/// Checks what a Cairn TSA can honour: a SHA-256/384/512 imprint of the right length, no other
/// policy than its own, no extensions (RFC 3161 §2.4.1 requires refusing unknown ones).
pub fn check_request(
    request: &TimestampRequest,
    policy: &ObjectIdentifier,
) -> Result<(), TimestampError> {
    let refuse = |fail_info, reason: String| TimestampError::RequestRefused { fail_info, reason };
    let hash = request.imprint_hash().ok_or_else(|| {
        refuse(
            FailureInfo::BadAlg,
            format!(
                "imprint algorithm {} is not SHA-256, SHA-384 or SHA-512 without parameters",
                request.imprint_algorithm()
            ),
        )
    })?;
    if request.imprint().len() != hash.output_len() {
        return Err(refuse(
            FailureInfo::BadDataFormat,
            format!(
                "a {hash} imprint has {} bytes, found {}",
                hash.output_len(),
                request.imprint().len()
            ),
        ));
    }
    if let Some(requested) = &request.policy() {
        if requested != policy {
            return Err(refuse(
                FailureInfo::UnacceptedPolicy,
                format!("policy {requested} is not this TSA's policy {policy}"),
            ));
        }
    }
    if let Some(extension) = request.extensions().first() {
        return Err(refuse(
            FailureInfo::UnacceptedExtension,
            format!("request extension {extension} is not supported"),
        ));
    }
    Ok(())
}

/// A granted DER TimeStampResp for `request`, or [`TimestampError::RequestRefused`] (which
/// [`rejection_response`] turns into the answer) if the request cannot be honoured.
pub fn issue_response(
    request: &TimestampRequest,
    signer: &TsaSigner,
    grant: &TimestampGrant<'_>,
) -> Result<Vec<u8>, TimestampError> {
    check_request(request, &grant.policy)?;
    let tst_info_der = tst_info(request, grant)?
        .to_der()
        .map_err(|error| encoding("TSTInfo", error))?;
    let digest = signer.key.cms_digest();
    let attributes = SetOfVec::try_from(vec![
        attribute(oid::CONTENT_TYPE, Any::from(oid::TST_INFO))?,
        attribute(
            oid::MESSAGE_DIGEST,
            Any::encode_from(
                &OctetString::new(digest.digest(&tst_info_der))
                    .map_err(|error| encoding("message-digest", error))?,
            )
            .map_err(|error| encoding("message-digest", error))?,
        )?,
        attribute(
            oid::SIGNING_CERTIFICATE_V2,
            signer.signing_certificate_v2.clone(),
        )?,
    ])
    .map_err(|error| encoding("signed attributes", error))?;
    let signature = signer.key.sign(
        &attributes
            .to_der()
            .map_err(|error| encoding("signed attributes", error))?,
    )?;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(signer.sid.clone()),
        digest_alg: digest.identifier(),
        signed_attrs: Some(attributes),
        signature_algorithm: signer.key.signature_algorithm(),
        signature: OctetString::new(signature).map_err(|error| encoding("signature", error))?,
        unsigned_attrs: None,
    };
    let certificates = if request.cert_req() {
        Some(
            SetOfVec::try_from(signer.certificates.clone())
                .map_err(|error| encoding("certificates", error))?,
        )
    } else {
        None
    };
    let signed_data = SignedData {
        version: positive_int(&[3]),
        digest_algorithms: SetOfVec::try_from(vec![digest.identifier()])
            .map_err(|error| encoding("digestAlgorithms", error))?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::TST_INFO,
            econtent: Some(
                Any::encode_from(
                    &OctetString::new(tst_info_der).map_err(|error| encoding("eContent", error))?,
                )
                .map_err(|error| encoding("eContent", error))?,
            ),
        },
        certificates,
        crls: None,
        signer_infos: SetOfVec::try_from(vec![signer_info])
            .map_err(|error| encoding("signerInfos", error))?,
    };
    let token = ContentInfo {
        content_type: oid::SIGNED_DATA,
        content: Any::encode_from(&signed_data).map_err(|error| encoding("SignedData", error))?,
    };
    let response = TimeStampResp {
        status: PkiStatusInfo {
            status: positive_int(&[0]),
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(
            Any::encode_from(&token).map_err(|error| encoding("TimeStampToken", error))?,
        ),
    };
    response
        .to_der()
        .map_err(|error| encoding("TimeStampResp", error))
}

fn tst_info(
    request: &TimestampRequest,
    grant: &TimestampGrant<'_>,
) -> Result<TstInfo, TimestampError> {
    let bad = |detail: String| TimestampError::BadGrant { detail };
    let serial = strip_leading_zeros(grant.serial_number);
    if serial.len() > MAX_SERIAL_SIZE {
        return Err(bad(format!(
            "serial number of {} bytes, at most {MAX_SERIAL_SIZE}",
            serial.len()
        )));
    }
    if !fits_generalized_time(grant.gen_time) {
        return Err(bad(format!(
            "genTime {:?} is outside years 0 to 9999 or has nanos of a second or more",
            grant.gen_time
        )));
    }
    let accuracy = match grant.accuracy {
        None => None,
        Some(accuracy) => {
            if accuracy.millis > 999 || accuracy.micros > 999 {
                return Err(bad(format!(
                    "accuracy millis {} and micros {} must be below 1000",
                    accuracy.millis, accuracy.micros
                )));
            }
            // Zero parts are left out: RFC 3161 gives millis and micros the range 1 to 999.
            let nonzero = |value: u16| (value != 0).then_some(value);
            Some(AccuracyDer {
                seconds: (accuracy.seconds != 0).then_some(accuracy.seconds),
                millis: nonzero(accuracy.millis),
                micros: nonzero(accuracy.micros),
            })
        }
    };
    Ok(TstInfo {
        version: positive_int(&[1]),
        policy: grant.policy,
        message_imprint: request.message_imprint.clone(),
        serial_number: positive_int(serial),
        gen_time: GenTime(grant.gen_time),
        accuracy,
        ordering: false,
        nonce: request
            .nonce()
            .map(|bytes| der::asn1::Int::new(bytes).map_err(|error| encoding("nonce", error)))
            .transpose()?,
        tsa: None,
        extensions: None,
    })
}

fn attribute(id: ObjectIdentifier, value: Any) -> Result<Attribute, TimestampError> {
    Ok(Attribute {
        oid: id,
        values: SetOfVec::try_from(vec![value]).map_err(|error| encoding("attribute", error))?,
    })
}

/// Longest statusString a rejection carries.
const MAX_STATUS_TEXT: usize = 512;

/// A DER TimeStampResp with status rejection, `fail_info`, and `status_text` (cut to 512
/// bytes) if not empty.
pub fn rejection_response(fail_info: FailureInfo, status_text: &str) -> Vec<u8> {
    let mut text = status_text.to_string();
    if text.len() > MAX_STATUS_TEXT {
        let mut cut = MAX_STATUS_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let response = TimeStampResp {
        status: PkiStatusInfo {
            status: positive_int(&[2]),
            status_string: (!text.is_empty()).then(|| vec![text]),
            fail_info: Some(failure_bits(fail_info)),
        },
        time_stamp_token: None,
    };
    response
        .to_der()
        .expect("a status of bounded text always encodes")
}

/// The whole of a Cairn TSA's answer to a request body: a granted response, or a rejection
/// that says why (badDataFormat for an unreadable request, the refusal's failInfo for one that
/// cannot be honoured, systemFailure if signing fails). Never fails.
pub fn respond(request_der: &[u8], signer: &TsaSigner, grant: &TimestampGrant<'_>) -> Vec<u8> {
    let request = match TimestampRequest::from_der(request_der) {
        Ok(request) => request,
        Err(error) => return rejection_response(FailureInfo::BadDataFormat, &error.to_string()),
    };
    match issue_response(&request, signer, grant) {
        Ok(response) => response,
        Err(TimestampError::RequestRefused { fail_info, reason }) => {
            rejection_response(fail_info, &reason)
        }
        Err(other) => rejection_response(FailureInfo::SystemFailure, &other.to_string()),
    }
}
