//! The checks of one part of a token each: the encapsulated TSTInfo and what it must say, the
//! single signer and its certificate, and the descriptions errors give of what was found.

use std::sync::Arc;

use cms::cert::IssuerAndSerialNumber;
use cms::signed_data::{SignerIdentifier, SignerInfo};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;

use super::MAX_SERIAL_SIZE;
use crate::timestamp::algorithms::{oid, strong_hash, HashAlgorithm};
use crate::timestamp::asn1::{SignedData, TstInfo};
use crate::timestamp::certificate::ParsedCertificate;
use crate::timestamp::der_shape;
use crate::timestamp::error::{hex, malformed, TimestampError};
use crate::timestamp::status::{int_to_u64, strip_leading_zeros};

/// The DER TSTInfo inside the SignedData's eContent OCTET STRING.
pub(super) fn encapsulated_tst_info(signed_data: &SignedData) -> Result<&[u8], TimestampError> {
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
pub(super) fn check_unsigned_fields(
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

pub(super) fn single_signer(signed_data: &SignedData) -> Result<&SignerInfo, TimestampError> {
    match signed_data.signer_infos.as_slice() {
        [only] => Ok(only),
        others => Err(TimestampError::SignerCount {
            found: others.len(),
        }),
    }
}

pub(super) fn read_tst_info(der: &[u8]) -> Result<TstInfo, TimestampError> {
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

pub(super) fn check_against_expectation(
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

pub(super) fn find_signer<'c>(
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
pub(super) fn check_time_stamping_certificate(
    signer: &ParsedCertificate,
) -> Result<(), TimestampError> {
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
