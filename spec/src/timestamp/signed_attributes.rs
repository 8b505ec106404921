//! The signed attributes of a timestamp token's SignerInfo (RFC 5652 §5.3, §11): content-type
//! and message-digest bind the signature to the TSTInfo; signing-certificate (ESSCertID,
//! RFC 2634 §5.4) or signing-certificate-v2 (ESSCertIDv2, RFC 5035 §3, RFC 5816) bind it to the
//! signer certificate, so that a certificate swapped into the token cannot pass for the signer's.

use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString};
use der::Encode;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;

use super::algorithms::{oid, strong_hash, HashAlgorithm};
use super::asn1::{IssuerSerial, SigningCertificate, SigningCertificateV2};
use super::certificate::ParsedCertificate;
use super::error::{hex, malformed, TimestampError};
use super::verify::{describe_algorithm, describe_general_name};

/// The values of the one attribute of type `id`, refusing a repeated attribute.
fn single_attribute<'a>(
    attributes: &'a [Attribute],
    id: ObjectIdentifier,
    name: &'static str,
) -> Result<Option<&'a Any>, TimestampError> {
    let mut matching = attributes.iter().filter(|attribute| attribute.oid == id);
    let Some(first) = matching.next() else {
        return Ok(None);
    };
    let repeats = matching.count();
    if repeats > 0 {
        return Err(TimestampError::AttributeNotSingle {
            name,
            found: format!("{} attributes", repeats + 1),
        });
    }
    match first.values.as_slice() {
        [value] => Ok(Some(value)),
        values => Err(TimestampError::AttributeNotSingle {
            name,
            found: format!("{} values", values.len()),
        }),
    }
}

pub(crate) fn check_content_type_attribute(attributes: &[Attribute]) -> Result<(), TimestampError> {
    let value = single_attribute(attributes, oid::CONTENT_TYPE, "content-type")?.ok_or(
        TimestampError::MissingAttribute {
            name: "content-type",
        },
    )?;
    let content_type: ObjectIdentifier = value
        .decode_as()
        .map_err(|error| malformed("content-type attribute", error))?;
    if content_type != oid::TST_INFO {
        return Err(TimestampError::ContentTypeAttributeMismatch {
            found: content_type,
        });
    }
    Ok(())
}

pub(crate) fn check_message_digest_attribute(
    attributes: &[Attribute],
    digest: HashAlgorithm,
    tst_info_der: &[u8],
) -> Result<(), TimestampError> {
    let value = single_attribute(attributes, oid::MESSAGE_DIGEST, "message-digest")?.ok_or(
        TimestampError::MissingAttribute {
            name: "message-digest",
        },
    )?;
    let stated: OctetString = value
        .decode_as()
        .map_err(|error| malformed("message-digest attribute", error))?;
    let computed = digest.digest(tst_info_der);
    if stated.as_bytes() != computed.as_slice() {
        return Err(TimestampError::MessageDigestMismatch {
            algorithm: digest,
            expected: hex(&computed),
            found: hex(stated.as_bytes()),
        });
    }
    Ok(())
}

/// RFC 3161 §2.4.1 and RFC 5816: the signed attributes must name the signer certificate by
/// hash, in an ESSCertID (SHA-1) or an ESSCertIDv2 (SHA-256 by default). Every one present must
/// match.
pub(crate) fn check_signing_certificate(
    attributes: &[Attribute],
    signer: &ParsedCertificate,
) -> Result<(), TimestampError> {
    let version_2 = single_attribute(
        attributes,
        oid::SIGNING_CERTIFICATE_V2,
        "signing-certificate-v2",
    )?;
    let version_1 = single_attribute(attributes, oid::SIGNING_CERTIFICATE, "signing-certificate")?;
    if version_1.is_none() && version_2.is_none() {
        return Err(TimestampError::MissingSigningCertificate);
    }
    if let Some(value) = version_2 {
        let attribute: SigningCertificateV2 = value
            .decode_as()
            .map_err(|error| malformed("signing-certificate-v2 attribute", error))?;
        let first = attribute.certs.first().ok_or_else(|| {
            malformed(
                "signing-certificate-v2 attribute",
                "no ESSCertIDv2 in certs",
            )
        })?;
        let algorithm = match &first.hash_algorithm {
            None => HashAlgorithm::Sha256,
            Some(identifier) => {
                strong_hash(identifier).ok_or_else(|| TimestampError::UnsupportedDigest {
                    what: "ESSCertIDv2 hashAlgorithm",
                    found: describe_algorithm(identifier),
                })?
            }
        };
        compare_cert_hash("ESSCertIDv2", algorithm, first.cert_hash.as_bytes(), signer)?;
        if let Some(issuer_serial) = &first.issuer_serial {
            compare_issuer_serial("ESSCertIDv2", issuer_serial, signer)?;
        }
    }
    if let Some(value) = version_1 {
        let attribute: SigningCertificate = value
            .decode_as()
            .map_err(|error| malformed("signing-certificate attribute", error))?;
        let first = attribute
            .certs
            .first()
            .ok_or_else(|| malformed("signing-certificate attribute", "no ESSCertID in certs"))?;
        compare_cert_hash(
            "ESSCertID",
            HashAlgorithm::Sha1,
            first.cert_hash.as_bytes(),
            signer,
        )?;
        if let Some(issuer_serial) = &first.issuer_serial {
            compare_issuer_serial("ESSCertID", issuer_serial, signer)?;
        }
    }
    Ok(())
}

fn compare_cert_hash(
    attribute: &'static str,
    algorithm: HashAlgorithm,
    stated: &[u8],
    signer: &ParsedCertificate,
) -> Result<(), TimestampError> {
    let computed = algorithm.digest(&signer.der);
    if stated != computed.as_slice() {
        return Err(TimestampError::SigningCertificateMismatch {
            attribute,
            algorithm,
            expected: hex(&computed),
            found: hex(stated),
        });
    }
    Ok(())
}

fn compare_issuer_serial(
    attribute: &'static str,
    issuer_serial: &IssuerSerial,
    signer: &ParsedCertificate,
) -> Result<(), TimestampError> {
    let issuer_matches = issuer_serial.issuer.iter().any(|name| match name {
        GeneralName::DirectoryName(name) => name
            .to_der()
            .is_ok_and(|name_der| name_der == signer.issuer_der),
        _ => false,
    });
    if !issuer_matches || issuer_serial.serial_number.as_bytes() != signer.serial() {
        let names: Vec<String> = issuer_serial
            .issuer
            .iter()
            .map(describe_general_name)
            .collect();
        return Err(TimestampError::SigningCertificateIssuerSerialMismatch {
            attribute,
            expected: format!("issuer {} serial {}", signer.issuer(), hex(signer.serial())),
            found: format!(
                "issuer [{}] serial {}",
                names.join(", "),
                hex(issuer_serial.serial_number.as_bytes())
            ),
        });
    }
    Ok(())
}
