//! Verification of a TimeStampResp (RFC 3161 §2.4.2) and of the TimeStampToken inside it, a
//! CMS SignedData (RFC 5652 §5) over a TSTInfo, signed with ESSCertID or ESSCertIDv2 binding
//! the signer certificate (RFC 2634 §5.4, RFC 5816).
//!
//! Verification is total and bounded: input larger than [`MAX_TOKEN_SIZE`] or carrying more
//! than [`MAX_CERTIFICATES`] certificates is refused before any signature work, and every
//! failure is its own [`TimestampError`] variant. The checks are listed, in order, in
//! `spec/docs/timestamp.md`.

use std::collections::HashMap;
use std::sync::Arc;

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;

use crate::note::{Ed25519Checker, SingleEd25519};

use super::algorithms::{oid, strong_hash, HashAlgorithm, SignatureAlgorithm, SignatureFailure};
use super::asn1::{SignedData, TimeStampResp, TstInfo};
use super::certificate::ParsedCertificate;
use super::chain::{find_path, TrustAnchors};
use super::der_shape;
use super::error::{hex, malformed, TimestampError};
use super::signed_attributes::{
    check_content_type_attribute, check_message_digest_attribute, check_signing_certificate,
};
use super::status::{int_to_u64, read_status, strip_leading_zeros, PkiStatus};
use super::{MAX_CERTIFICATES, MAX_TOKEN_SIZE};
use crate::time::Instant;

/// What a timestamp must say to be accepted.
#[derive(Clone, Copy, Debug)]
pub struct Expectation<'a> {
    /// The SHA-256 imprint that was sent: for a checkpoint,
    /// [`checkpoint_imprint`](super::checkpoint_imprint) of its body.
    pub imprint: [u8; 32],
    /// The nonce that was sent. `None` skips the nonce check: for a stored token, whose
    /// request is long gone; a fresh response should always be checked against its nonce.
    pub nonce: Option<u64>,
    /// The roots the TSA must chain to. `None` checks the token's own consistency (signature,
    /// signer certificate, imprint, nonce) but not who the TSA is.
    pub trust_anchors: Option<&'a TrustAnchors>,
}

/// The accuracy of genTime (RFC 3161 §2.4.2): genTime is within ± this of UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Accuracy {
    /// Whole seconds.
    pub seconds: u64,
    /// Milliseconds, 0 to 999.
    pub millis: u16,
    /// Microseconds, 0 to 999.
    pub micros: u16,
}

/// The serial number of a TSTInfo: a non-negative integer of up to 160 bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimestampSerial {
    magnitude: Vec<u8>,
}

/// Most magnitude bytes of a TSTInfo serial: RFC 3161 asks clients to accept 160 bits.
pub const MAX_SERIAL_SIZE: usize = 20;

impl TimestampSerial {
    /// The serial from big-endian magnitude bytes (leading zeros ignored), at most
    /// [`MAX_SERIAL_SIZE`] of them.
    pub fn from_be_bytes(bytes: &[u8]) -> Option<TimestampSerial> {
        let magnitude = strip_leading_zeros(bytes);
        (magnitude.len() <= MAX_SERIAL_SIZE).then(|| TimestampSerial {
            magnitude: magnitude.to_vec(),
        })
    }

    /// Big-endian magnitude, no leading zeros (empty for zero).
    pub fn as_be_bytes(&self) -> &[u8] {
        &self.magnitude
    }

    /// Decimal text.
    pub fn to_decimal(&self) -> String {
        // Repeated division of the big-endian number by 10; serials are at most 20 bytes.
        let mut number = self.magnitude.clone();
        let mut digits = Vec::new();
        while !number.is_empty() {
            let mut remainder = 0u32;
            for byte in number.iter_mut() {
                let value = (remainder << 8) | u32::from(*byte);
                *byte = (value / 10) as u8;
                remainder = value % 10;
            }
            digits.push(b'0' + remainder as u8);
            let first_nonzero = number
                .iter()
                .position(|byte| *byte != 0)
                .unwrap_or(number.len());
            number.drain(..first_nonzero);
        }
        if digits.is_empty() {
            digits.push(b'0');
        }
        digits.reverse();
        String::from_utf8(digits).expect("ASCII digits")
    }

    /// Lowercase hex of the magnitude ("00" for zero), as openssl prints serials.
    pub fn to_hex(&self) -> String {
        if self.magnitude.is_empty() {
            "00".to_string()
        } else {
            hex(&self.magnitude)
        }
    }
}

/// A timestamp that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    /// The response status: granted or grantedWithMods (always granted for a bare token).
    pub status: PkiStatus,
    /// genTime.
    pub gen_time: Instant,
    /// genTime as RFC 3339 text, e.g. `2026-11-25T11:37:18.619Z`.
    pub gen_time_rfc3339: String,
    /// The TSA's serial number for this token.
    pub serial_number: TimestampSerial,
    /// The TSA policy under which the token was issued.
    pub policy: ObjectIdentifier,
    /// The accuracy of genTime, if stated.
    pub accuracy: Option<Accuracy>,
    /// The ordering flag.
    pub ordering: bool,
    /// The TSTInfo nonce's INTEGER content octets, if any.
    pub nonce: Option<Vec<u8>>,
    /// The TSA name of the TSTInfo, as text, if present.
    pub tsa_name: Option<String>,
    /// The signer certificate, DER.
    pub signer_certificate_der: Vec<u8>,
    /// The signer certificate's subject, RFC 4514 text.
    pub signer_subject: String,
    /// The CMS signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// The trust anchor the chain ended at, DER; `None` if no anchors were given.
    pub trust_anchor_der: Option<Vec<u8>>,
    /// The TimeStampToken, DER: what a receipt stores.
    pub token_der: Vec<u8>,
}

/// Verifies a DER TimeStampResp against what was asked for.
pub fn verify_response(
    response_der: &[u8],
    expectation: &Expectation<'_>,
) -> Result<VerifiedTimestamp, TimestampError> {
    check_size("response", response_der)?;
    der_shape::check(response_der).map_err(|detail| malformed("TimeStampResp", detail))?;
    let response =
        TimeStampResp::from_der(response_der).map_err(|error| malformed("TimeStampResp", error))?;
    let (status, status_text, fail_info) = read_status(&response.status)?;
    if !status.is_granted() {
        return Err(TimestampError::NotGranted {
            status,
            status_text,
            fail_info,
        });
    }
    let token = response
        .time_stamp_token
        .ok_or(TimestampError::MissingToken { status })?;
    let token_der = token
        .to_der()
        .map_err(|error| malformed("TimeStampToken", error))?;
    let mut verified = verify_token(&token_der, expectation)?;
    verified.status = status;
    Ok(verified)
}

/// Verifies a DER TimeStampToken (a CMS ContentInfo), as stored in a receipt.
pub fn verify_token(
    token_der: &[u8],
    expectation: &Expectation<'_>,
) -> Result<VerifiedTimestamp, TimestampError> {
    TokenVerifier::uncached().verify(token_der, expectation)
}

/// Most certificates a [`TokenVerifier`] remembers; it forgets them all when it would hold more.
const MAX_CACHED_CERTIFICATES: usize = 1024;

/// Verifies timestamp tokens like [`verify_token`], remembering what is the same from one token
/// to the next: certificates it has parsed, and which issuer's signature on which certificate it
/// has checked. A TSA puts the same certificate in every token, so its chain costs its signature
/// checks once per verifier instead of once per token.
///
/// Both are remembered by the certificates' complete DER, so a remembered answer stands only for
/// exactly the same bytes; everything else (the token's own signature, imprint, attributes,
/// validity at genTime, the path search and every rule it applies) is checked for every token.
/// Only successes are remembered: a token that fails is checked in full again next time.
#[derive(Debug, Default)]
pub struct TokenVerifier {
    cache: Option<CertificateCache>,
}

#[derive(Debug, Default)]
struct CertificateCache {
    parsed: HashMap<Box<[u8]>, Arc<ParsedCertificate>>,
    /// For a certificate (its DER), the issuers (their DER) whose signature on it verified.
    signed_by: HashMap<Box<[u8]>, Vec<Box<[u8]>>>,
}

/// A token that passed every check but its chain.
struct CheckedToken {
    verified: VerifiedTimestamp,
    signer: Arc<ParsedCertificate>,
    certificates: Vec<Arc<ParsedCertificate>>,
}

impl TokenVerifier {
    /// A verifier that remembers certificates between tokens.
    pub fn new() -> TokenVerifier {
        TokenVerifier {
            cache: Some(CertificateCache::default()),
        }
    }

    /// A verifier that remembers nothing: each token is checked from scratch.
    pub fn uncached() -> TokenVerifier {
        TokenVerifier { cache: None }
    }

    /// As [`verify_token`].
    pub fn verify(
        &mut self,
        token_der: &[u8],
        expectation: &Expectation<'_>,
    ) -> Result<VerifiedTimestamp, TimestampError> {
        self.verify_with(token_der, expectation, &mut SingleEd25519)
    }

    /// As [`verify_token`], with an Ed25519 token signature left to `checker`, which may defer
    /// it to a batch (then the answer stands only once the batch verifies).
    pub fn verify_with(
        &mut self,
        token_der: &[u8],
        expectation: &Expectation<'_>,
        checker: &mut dyn Ed25519Checker,
    ) -> Result<VerifiedTimestamp, TimestampError> {
        let checked =
            self.check_token(token_der, expectation.imprint, expectation.nonce, checker)?;
        match expectation.trust_anchors {
            None => Ok(checked.verified),
            Some(trust_anchors) => {
                let anchor_der = self.chain(&checked, trust_anchors)?;
                let mut verified = checked.verified;
                verified.trust_anchor_der = Some(anchor_der);
                Ok(verified)
            }
        }
    }

    /// Verifies a token once, then its chain against each set of trust anchors in turn: the
    /// verified token and the position of the first set it chains to, or `None` if it chains to
    /// none of them (a token valid in itself from a TSA none of them vouches for). The result for
    /// a set is what [`TokenVerifier::verify`] with that set alone would say; the token itself is
    /// checked only once.
    pub fn verify_against(
        &mut self,
        token_der: &[u8],
        imprint: [u8; 32],
        nonce: Option<u64>,
        anchor_sets: &[&TrustAnchors],
        checker: &mut dyn Ed25519Checker,
    ) -> Result<(VerifiedTimestamp, Option<usize>), TimestampError> {
        let checked = self.check_token(token_der, imprint, nonce, checker)?;
        for (position, trust_anchors) in anchor_sets.iter().enumerate() {
            if let Ok(anchor_der) = self.chain(&checked, trust_anchors) {
                let mut verified = checked.verified;
                verified.trust_anchor_der = Some(anchor_der);
                return Ok((verified, Some(position)));
            }
        }
        Ok((checked.verified, None))
    }

    fn certificate(&mut self, der: &[u8]) -> Result<Arc<ParsedCertificate>, String> {
        if let Some(cached) = self.cache.as_ref().and_then(|cache| cache.parsed.get(der)) {
            return Ok(Arc::clone(cached));
        }
        let parsed = Arc::new(ParsedCertificate::from_der(der)?);
        if let Some(cache) = &mut self.cache {
            if cache.parsed.len() >= MAX_CACHED_CERTIFICATES {
                cache.parsed.clear();
            }
            cache.parsed.insert(der.into(), Arc::clone(&parsed));
        }
        Ok(parsed)
    }

    /// The path from the signer to one of `trust_anchors`; the anchor's DER.
    fn chain(
        &mut self,
        checked: &CheckedToken,
        trust_anchors: &TrustAnchors,
    ) -> Result<Vec<u8>, TimestampError> {
        let signer = &checked.signer;
        let others: Vec<&ParsedCertificate> = checked
            .certificates
            .iter()
            .filter(|certificate| certificate.der != signer.der)
            .map(|certificate| &**certificate)
            .collect();
        let cache = &mut self.cache;
        let mut signed_by = |certificate: &ParsedCertificate, issuer: &ParsedCertificate| {
            let known = cache.as_ref().is_some_and(|cache| {
                cache
                    .signed_by
                    .get(certificate.der.as_slice())
                    .is_some_and(|issuers| issuers.iter().any(|der| **der == *issuer.der))
            });
            if known {
                return Ok(());
            }
            certificate.verify_signed_by(issuer)?;
            if let Some(cache) = cache {
                if cache.signed_by.len() >= MAX_CACHED_CERTIFICATES {
                    cache.signed_by.clear();
                }
                cache
                    .signed_by
                    .entry(certificate.der.as_slice().into())
                    .or_default()
                    .push(issuer.der.as_slice().into());
            }
            Ok(())
        };
        let gen_time = checked.verified.gen_time;
        find_path(signer, &others, trust_anchors, gen_time, &mut signed_by)
            .map(|anchor| anchor.der.clone())
            .map_err(|reason| TimestampError::UntrustedChain {
                subject: signer.subject(),
                reason,
            })
    }

    /// Every check of a token but its chain, in the order `spec/docs/timestamp.md` lists them.
    fn check_token(
        &mut self,
        token_der: &[u8],
        imprint: [u8; 32],
        nonce: Option<u64>,
        checker: &mut dyn Ed25519Checker,
    ) -> Result<CheckedToken, TimestampError> {
        check_size("token", token_der)?;
        der_shape::check(token_der).map_err(|detail| malformed("TimeStampToken", detail))?;
        let content_info =
            ContentInfo::from_der(token_der).map_err(|error| malformed("ContentInfo", error))?;
        if content_info.content_type != oid::SIGNED_DATA {
            return Err(TimestampError::NotSignedData {
                found: content_info.content_type,
            });
        }
        let signed_data: SignedData = content_info
            .content
            .decode_as()
            .map_err(|error| malformed("SignedData", error))?;
        if int_to_u64(&signed_data.version) != Some(3) {
            return Err(TimestampError::UnsupportedVersion {
                what: "SignedData",
                expected: 3,
                found: hex(signed_data.version.as_bytes()),
            });
        }
        let tst_info_der = encapsulated_tst_info(&signed_data)?;
        let signer_info = single_signer(&signed_data)?;
        let certificates = self.token_certificates(&signed_data)?;

        let tst_info = read_tst_info(tst_info_der)?;
        check_against_expectation(&tst_info, imprint, nonce)?;
        let gen_time = tst_info.gen_time.0;

        let digest = strong_hash(&signer_info.digest_alg).ok_or_else(|| {
            TimestampError::UnsupportedDigest {
                what: "SignerInfo digestAlgorithm",
                found: describe_algorithm(&signer_info.digest_alg),
            }
        })?;
        let signature_algorithm =
            SignatureAlgorithm::from_identifier(&signer_info.signature_algorithm, Some(digest))
                .map_err(|detail| TimestampError::UnsupportedSignatureAlgorithm {
                    what: "SignerInfo signatureAlgorithm",
                    detail,
                })?;
        if let Some(signature_hash) = signature_algorithm.hash() {
            if signature_hash != digest {
                return Err(TimestampError::SignatureDigestMismatch {
                    signature: signature_hash,
                    digest,
                });
            }
        }

        check_unsigned_fields(&signed_data, signer_info)?;

        let signed_attributes = signer_info
            .signed_attrs
            .as_ref()
            .ok_or(TimestampError::MissingSignedAttributes)?;
        let attributes = signed_attributes.as_slice();
        check_content_type_attribute(attributes)?;
        check_message_digest_attribute(attributes, digest, tst_info_der)?;

        let signer = find_signer(&signer_info.sid, &certificates)?;
        check_signing_certificate(attributes, signer)?;
        check_time_stamping_certificate(signer)?;

        let public_key =
            signer
                .public_key
                .as_ref()
                .map_err(|detail| TimestampError::UnsupportedKey {
                    detail: detail.clone(),
                })?;
        let signed_attributes_der = signed_attributes
            .to_der()
            .map_err(|error| malformed("signed attributes", error))?;
        public_key
            .verify_with(
                signature_algorithm,
                &signed_attributes_der,
                signer_info.signature.as_bytes(),
                checker,
            )
            .map_err(|failure| match failure {
                SignatureFailure::KeyMismatch(detail) => TimestampError::UnsupportedKey { detail },
                SignatureFailure::Invalid => TimestampError::BadSignature {
                    algorithm: signature_algorithm.to_string(),
                },
            })?;

        if !signer.valid_at(gen_time) {
            return Err(TimestampError::SignerNotValidAtGenTime {
                subject: signer.subject(),
                gen_time,
                not_before: Instant::from_seconds(signer.not_before),
                not_after: Instant::from_seconds(signer.not_after),
            });
        }
        let verified = VerifiedTimestamp {
            status: PkiStatus::Granted,
            gen_time,
            gen_time_rfc3339: gen_time.to_rfc3339_trimmed(),
            serial_number: TimestampSerial::from_be_bytes(tst_info.serial_number.as_bytes())
                .expect("serial length checked when the TSTInfo was read"),
            policy: tst_info.policy,
            accuracy: tst_info.accuracy.as_ref().map(|accuracy| Accuracy {
                seconds: accuracy.seconds.unwrap_or(0),
                millis: accuracy.millis.unwrap_or(0),
                micros: accuracy.micros.unwrap_or(0),
            }),
            ordering: tst_info.ordering,
            nonce: tst_info
                .nonce
                .as_ref()
                .map(|nonce| nonce.as_bytes().to_vec()),
            tsa_name: tst_info.tsa.as_ref().map(describe_general_name),
            signer_certificate_der: signer.der.clone(),
            signer_subject: signer.subject(),
            signature_algorithm,
            trust_anchor_der: None,
            token_der: token_der.to_vec(),
        };
        let signer = Arc::clone(signer);
        Ok(CheckedToken {
            verified,
            signer,
            certificates,
        })
    }

    /// The plain certificates of the SignedData (attribute certificates and other choices are
    /// ignored, they cannot sign).
    fn token_certificates(
        &mut self,
        signed_data: &SignedData,
    ) -> Result<Vec<Arc<ParsedCertificate>>, TimestampError> {
        let choices = signed_data
            .certificates
            .as_ref()
            .map(|set| set.as_slice())
            .unwrap_or(&[]);
        if choices.len() > MAX_CERTIFICATES {
            return Err(TimestampError::TooManyCertificates {
                found: choices.len(),
                limit: MAX_CERTIFICATES,
            });
        }
        let mut certificates = Vec::with_capacity(choices.len());
        for (index, choice) in choices.iter().enumerate() {
            if choice.tag() != Tag::Sequence {
                continue;
            }
            let der = choice
                .to_der()
                .map_err(|error| TimestampError::BadCertificate {
                    index,
                    detail: error.to_string(),
                })?;
            let certificate = self
                .certificate(&der)
                .map_err(|detail| TimestampError::BadCertificate { index, detail })?;
            certificates.push(certificate);
        }
        Ok(certificates)
    }
}

fn check_size(what: &'static str, input: &[u8]) -> Result<(), TimestampError> {
    if input.len() > MAX_TOKEN_SIZE {
        return Err(TimestampError::TooLarge {
            what,
            size: input.len(),
            limit: MAX_TOKEN_SIZE,
        });
    }
    Ok(())
}

/// The DER TSTInfo inside the SignedData's eContent OCTET STRING.
fn encapsulated_tst_info(signed_data: &SignedData) -> Result<&[u8], TimestampError> {
    let content = &signed_data.encap_content_info;
    if content.econtent_type != oid::TST_INFO {
        return Err(TimestampError::NotTstInfo {
            found: content.econtent_type,
        });
    }
    let econtent = content
        .econtent
        .as_ref()
        .ok_or(TimestampError::MissingTstInfo)?;
    if econtent.tag() != Tag::OctetString {
        return Err(malformed(
            "EncapsulatedContentInfo",
            format!("eContent is {}, expected OCTET STRING", econtent.tag()),
        ));
    }
    Ok(econtent.value())
}

/// The fields of the SignedData that no signature covers must hold the one value RFC 5652
/// allows for a token with one signer, so that no byte of a token can change unnoticed:
/// digestAlgorithms names exactly the signer's digest algorithm (§5.1), and the SignerInfo
/// version is 1 for an issuerAndSerialNumber signer and 3 for a subjectKeyIdentifier (§5.3).
fn check_unsigned_fields(
    signed_data: &SignedData,
    signer_info: &SignerInfo,
) -> Result<(), TimestampError> {
    match signed_data.digest_algorithms.as_slice() {
        [only] if *only == signer_info.digest_alg => {}
        others => {
            return Err(TimestampError::DigestAlgorithmsMismatch {
                found: others.iter().map(describe_algorithm).collect(),
                signer: describe_algorithm(&signer_info.digest_alg),
            })
        }
    }
    let expected = match signer_info.sid {
        SignerIdentifier::IssuerAndSerialNumber(_) => cms::content_info::CmsVersion::V1,
        SignerIdentifier::SubjectKeyIdentifier(_) => cms::content_info::CmsVersion::V3,
    };
    if signer_info.version != expected {
        return Err(TimestampError::UnsupportedVersion {
            what: "SignerInfo",
            expected: expected as u8,
            found: format!("{:?}", signer_info.version),
        });
    }
    Ok(())
}

fn single_signer(signed_data: &SignedData) -> Result<&SignerInfo, TimestampError> {
    match signed_data.signer_infos.as_slice() {
        [only] => Ok(only),
        others => Err(TimestampError::SignerCount {
            found: others.len(),
        }),
    }
}

fn read_tst_info(der: &[u8]) -> Result<TstInfo, TimestampError> {
    der_shape::check(der).map_err(|detail| malformed("TSTInfo", detail))?;
    let tst_info = TstInfo::from_der(der).map_err(|error| malformed("TSTInfo", error))?;
    if int_to_u64(&tst_info.version) != Some(1) {
        return Err(TimestampError::UnsupportedVersion {
            what: "TSTInfo",
            expected: 1,
            found: hex(tst_info.version.as_bytes()),
        });
    }
    let serial = tst_info.serial_number.as_bytes();
    if serial.first().is_some_and(|first| first & 0x80 != 0) {
        return Err(TimestampError::BadTstInfo {
            field: "serialNumber",
            detail: "negative".to_string(),
        });
    }
    if strip_leading_zeros(serial).len() > MAX_SERIAL_SIZE {
        return Err(TimestampError::BadTstInfo {
            field: "serialNumber",
            detail: format!(
                "{} bytes, at most {MAX_SERIAL_SIZE} (160 bits) accepted",
                strip_leading_zeros(serial).len()
            ),
        });
    }
    // No TSTInfo extension is defined that Cairn could honour; a critical one must not be
    // ignored.
    if let Some(extension) = tst_info
        .extensions
        .iter()
        .flatten()
        .find(|extension| extension.critical)
    {
        return Err(TimestampError::BadTstInfo {
            field: "extensions",
            detail: format!("critical extension {} is not supported", extension.extn_id),
        });
    }
    if let Some(accuracy) = &tst_info.accuracy {
        for (name, value) in [("millis", accuracy.millis), ("micros", accuracy.micros)] {
            if let Some(value) = value {
                if !(1..=999).contains(&value) {
                    return Err(TimestampError::BadTstInfo {
                        field: "accuracy",
                        detail: format!("{name} is {value}, RFC 3161 allows 1 to 999"),
                    });
                }
            }
        }
    }
    Ok(tst_info)
}

fn check_against_expectation(
    tst_info: &TstInfo,
    expected_imprint: [u8; 32],
    expected_nonce: Option<u64>,
) -> Result<(), TimestampError> {
    let imprint = &tst_info.message_imprint;
    if strong_hash(&imprint.hash_algorithm) != Some(HashAlgorithm::Sha256) {
        return Err(TimestampError::ImprintAlgorithmMismatch {
            found: describe_algorithm(&imprint.hash_algorithm),
        });
    }
    if imprint.hashed_message.as_bytes() != expected_imprint {
        return Err(TimestampError::ImprintMismatch {
            expected: hex(&expected_imprint),
            found: hex(imprint.hashed_message.as_bytes()),
        });
    }
    if let Some(expected) = expected_nonce {
        let nonce = tst_info
            .nonce
            .as_ref()
            .ok_or(TimestampError::NonceMissing { expected })?;
        if int_to_u64(nonce) != Some(expected) {
            return Err(TimestampError::NonceMismatch {
                expected,
                found: hex(nonce.as_bytes()),
            });
        }
    }
    Ok(())
}

fn find_signer<'c>(
    sid: &SignerIdentifier,
    certificates: &'c [Arc<ParsedCertificate>],
) -> Result<&'c Arc<ParsedCertificate>, TimestampError> {
    let found = match sid {
        SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer,
            serial_number,
        }) => {
            let issuer_der = issuer
                .to_der()
                .map_err(|error| malformed("SignerInfo sid", error))?;
            certificates.iter().find(|certificate| {
                certificate.issuer_der == issuer_der
                    && certificate.serial() == serial_number.as_bytes()
            })
        }
        SignerIdentifier::SubjectKeyIdentifier(identifier) => {
            let wanted = identifier.0.as_bytes();
            certificates
                .iter()
                .find(|certificate| certificate.subject_key_identifier().as_deref() == Some(wanted))
        }
    };
    found.ok_or_else(|| TimestampError::SignerCertificateNotFound {
        sid: describe_sid(sid),
    })
}

fn describe_sid(sid: &SignerIdentifier) -> String {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => format!(
            "issuer {} serial {}",
            id.issuer,
            hex(id.serial_number.as_bytes())
        ),
        SignerIdentifier::SubjectKeyIdentifier(identifier) => {
            format!("subjectKeyIdentifier {}", hex(identifier.0.as_bytes()))
        }
    }
}

/// RFC 3161 §2.3: the TSA's certificate must have exactly one extendedKeyUsage, critical, with
/// id-kp-timeStamping as its only purpose; any keyUsage must allow signing.
fn check_time_stamping_certificate(signer: &ParsedCertificate) -> Result<(), TimestampError> {
    let subject = signer.subject();
    let (critical, purposes) = match signer.extended_key_usage() {
        None => return Err(TimestampError::MissingTimeStampingEku { subject }),
        Some(Err(detail)) => return Err(malformed("signer certificate", detail)),
        Some(Ok(usage)) => usage,
    };
    if purposes != [oid::TIME_STAMPING] {
        return Err(TimestampError::EkuNotTimeStampingOnly {
            subject,
            found: purposes.iter().map(ToString::to_string).collect(),
        });
    }
    if !critical {
        return Err(TimestampError::EkuNotCritical { subject });
    }
    match signer.key_usage() {
        Err(detail) => return Err(malformed("signer certificate", detail)),
        Ok(Some(usage)) => {
            use x509_cert::ext::pkix::KeyUsages;
            if !usage.0.contains(KeyUsages::DigitalSignature)
                && !usage.0.contains(KeyUsages::NonRepudiation)
            {
                return Err(TimestampError::KeyUsageForbidsSigning { subject });
            }
        }
        Ok(None) => {}
    }
    if let Some(extension) = signer.unknown_critical_extension() {
        return Err(TimestampError::UnknownCriticalExtension { subject, extension });
    }
    Ok(())
}

pub(crate) fn describe_algorithm(identifier: &spki::AlgorithmIdentifierOwned) -> String {
    let name = HashAlgorithm::from_oid(&identifier.oid)
        .map(|hash| format!("{hash} ({})", identifier.oid))
        .unwrap_or_else(|| identifier.oid.to_string());
    match &identifier.parameters {
        Some(parameters) if parameters.tag() != Tag::Null => {
            format!("{name} with {} parameters", parameters.tag())
        }
        _ => name,
    }
}

pub(crate) fn describe_general_name(name: &GeneralName) -> String {
    match name {
        GeneralName::DirectoryName(name) => name.to_string(),
        GeneralName::DnsName(dns) => format!("DNS:{}", dns.as_str()),
        GeneralName::Rfc822Name(mail) => format!("email:{}", mail.as_str()),
        GeneralName::UniformResourceIdentifier(uri) => format!("URI:{}", uri.as_str()),
        GeneralName::RegisteredId(id) => format!("RID:{id}"),
        GeneralName::IpAddress(address) => format!("IP:{}", hex(address.as_bytes())),
        GeneralName::OtherName(other) => format!("otherName:{}", other.type_id),
        GeneralName::EdiPartyName(_) => "ediPartyName".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_print_in_decimal_and_hex() {
        let serial = |bytes: &[u8]| TimestampSerial::from_be_bytes(bytes).expect("short");
        assert_eq!(serial(&[]).to_decimal(), "0");
        assert_eq!(serial(&[0, 0]).to_decimal(), "0");
        assert_eq!(serial(&[0x03]).to_decimal(), "3");
        assert_eq!(serial(&[0x01, 0x00]).to_decimal(), "256");
        assert_eq!(
            serial(&u64::MAX.to_be_bytes()).to_decimal(),
            u64::MAX.to_string()
        );
        assert_eq!(
            serial(&u128::MAX.to_be_bytes()).to_decimal(),
            u128::MAX.to_string()
        );
        // 2^160 - 1, the largest serial RFC 3161 asks clients to handle.
        assert_eq!(
            serial(&[0xff; 20]).to_decimal(),
            "1461501637330902918203684832716283019655932542975"
        );
        assert_eq!(serial(&[0x0a, 0xbc]).to_hex(), "0abc");
        assert_eq!(serial(&[]).to_hex(), "00");
        assert!(TimestampSerial::from_be_bytes(&[0xff; 21]).is_none());
    }
}
