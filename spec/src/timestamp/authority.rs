//! Certificates for a private TSA (`cairn-witness tsa init`): a self-signed root CA and a TSA
//! certificate issued by it, made from keys, names, serial numbers and validity times the caller
//! gives (RFC 5280 profile).
//!
//! The root has a critical basicConstraints with cA TRUE and pathLenConstraint 0 (it issues
//! TSA certificates directly) and a critical keyUsage keyCertSign and cRLSign. The TSA
//! certificate has a critical basicConstraints with cA FALSE, a critical keyUsage
//! digitalSignature, and the critical extendedKeyUsage with only id-kp-timeStamping that
//! RFC 3161 §2.3 requires. Both carry a subjectKeyIdentifier (the SHA-1 of the public key bits,
//! RFC 5280 §4.2.1.2 method 1); the TSA certificate's authorityKeyIdentifier names the root's.

use std::str::FromStr;

use const_oid::AssociatedOid;
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::Certificate;

use super::algorithms::{oid, HashAlgorithm, PublicKey};
use super::certificate::{CaRefusal, ParsedCertificate};
use super::error::TimestampError;
use super::issue::KeyPair;
use super::time::unix_to_x509_time;
use crate::time::Instant;

/// The caller's choices for one certificate.
#[derive(Clone, Copy, Debug)]
pub struct CertificateSpec<'a> {
    /// The subject as RFC 4514 text, e.g. `CN=Example TSA,O=Example`.
    pub subject: &'a str,
    /// The serial number, big-endian, positive, at most 20 bytes (RFC 5280 §4.1.2.2).
    pub serial_number: &'a [u8],
    /// Start of validity (fractions of a second are dropped).
    pub not_before: Instant,
    /// End of validity.
    pub not_after: Instant,
}

/// A self-signed root CA certificate for `root_key`, DER.
pub fn make_root_certificate(
    root_key: &KeyPair,
    spec: &CertificateSpec<'_>,
) -> Result<Vec<u8>, TimestampError> {
    let subject = parse_name(spec.subject)?;
    let public_key_info = root_key.public_key_info();
    let key_identifier = key_identifier(&public_key_info);
    let extensions = vec![
        extension(
            &BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            },
            true,
        )?,
        extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
        extension(&SubjectKeyIdentifier(octets(key_identifier)?), false)?,
    ];
    sign_certificate(
        root_key,
        subject.clone(),
        subject,
        public_key_info,
        spec,
        extensions,
    )
}

/// A TSA certificate for the key in `tsa_public_key_info_der` (a DER SubjectPublicKeyInfo,
/// e.g. [`KeyPair::public_key_info_der`]), issued by `issuer_key` whose certificate is
/// `issuer_certificate_der`, DER.
pub fn make_tsa_certificate(
    issuer_key: &KeyPair,
    issuer_certificate_der: &[u8],
    tsa_public_key_info_der: &[u8],
    spec: &CertificateSpec<'_>,
) -> Result<Vec<u8>, TimestampError> {
    let bad = |detail: String| TimestampError::BadCertificateParameters { detail };
    let issuer = ParsedCertificate::from_der(issuer_certificate_der)
        .map_err(|detail| bad(format!("issuer certificate: {detail}")))?;
    let issuer_public_key = issuer
        .public_key
        .as_ref()
        .map_err(|detail| bad(format!("issuer certificate key: {detail}")))?;
    if !issuer_key.matches(issuer_public_key) {
        return Err(bad(
            "the issuer certificate's public key is not the issuer key's".to_string(),
        ));
    }
    match issuer.ca_constraints() {
        Ok(_) => {}
        Err(CaRefusal::NotCa) => return Err(bad("the issuer certificate is not a CA".to_string())),
        Err(CaRefusal::NoKeyCertSign) => {
            return Err(bad(
                "the issuer certificate's keyUsage lacks keyCertSign".to_string()
            ))
        }
    }
    let public_key_info = SubjectPublicKeyInfoOwned::from_der(tsa_public_key_info_der)
        .map_err(|error| bad(format!("TSA public key info: {error}")))?;
    PublicKey::from_spki(&public_key_info).map_err(|detail| bad(format!("TSA key: {detail}")))?;
    let authority_key_identifier = issuer.subject_key_identifier().unwrap_or_else(|| {
        key_identifier(&issuer.certificate.tbs_certificate.subject_public_key_info)
    });
    let extensions = vec![
        extension(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?,
        extension(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?,
        extension(&ExtendedKeyUsage(vec![oid::TIME_STAMPING]), true)?,
        extension(
            &SubjectKeyIdentifier(octets(key_identifier(&public_key_info))?),
            false,
        )?,
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(octets(authority_key_identifier)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?,
    ];
    sign_certificate(
        issuer_key,
        issuer.certificate.tbs_certificate.subject.clone(),
        parse_name(spec.subject)?,
        public_key_info,
        spec,
        extensions,
    )
}

fn sign_certificate(
    issuer_key: &KeyPair,
    issuer: Name,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    spec: &CertificateSpec<'_>,
    extensions: Vec<Extension>,
) -> Result<Vec<u8>, TimestampError> {
    let bad = |detail: String| TimestampError::BadCertificateParameters { detail };
    let serial = super::status::strip_leading_zeros(spec.serial_number);
    if serial.is_empty() {
        return Err(bad("the serial number must be positive".to_string()));
    }
    let serial_number =
        SerialNumber::new(serial).map_err(|error| bad(format!("serial number: {error}")))?;
    if spec.not_before.seconds >= spec.not_after.seconds {
        return Err(bad(format!(
            "validity from {} to {} is empty",
            spec.not_before, spec.not_after
        )));
    }
    let validity = Validity {
        not_before: unix_to_x509_time(spec.not_before).map_err(bad)?,
        not_after: unix_to_x509_time(spec.not_after).map_err(bad)?,
    };
    let signature_algorithm = issuer_key.signature_algorithm();
    let tbs_certificate = TbsCertificate {
        version: Version::V3,
        serial_number,
        signature: signature_algorithm.clone(),
        issuer,
        validity,
        subject,
        subject_public_key_info,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs_der = tbs_certificate
        .to_der()
        .map_err(|error| bad(format!("tbsCertificate: {error}")))?;
    let signature = BitString::from_bytes(&issuer_key.sign(&tbs_der)?)
        .map_err(|error| bad(format!("signature: {error}")))?;
    Certificate {
        tbs_certificate,
        signature_algorithm,
        signature,
    }
    .to_der()
    .map_err(|error| bad(format!("certificate: {error}")))
}

fn parse_name(text: &str) -> Result<Name, TimestampError> {
    let name = Name::from_str(text).map_err(|error| TimestampError::BadCertificateParameters {
        detail: format!("subject {text:?} is not an RFC 4514 name: {error}"),
    })?;
    if name.0.is_empty() {
        return Err(TimestampError::BadCertificateParameters {
            detail: "the subject name is empty".to_string(),
        });
    }
    Ok(name)
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
fn key_identifier(public_key_info: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    HashAlgorithm::Sha1.digest(public_key_info.subject_public_key.raw_bytes())
}

fn octets(bytes: Vec<u8>) -> Result<OctetString, TimestampError> {
    OctetString::new(bytes).map_err(|error| TimestampError::Encoding {
        what: "key identifier",
        detail: error.to_string(),
    })
}

fn extension<E: AssociatedOid + Encode>(
    value: &E,
    critical: bool,
) -> Result<Extension, TimestampError> {
    let bytes = value.to_der().map_err(|error| TimestampError::Encoding {
        what: "certificate extension",
        detail: error.to_string(),
    })?;
    Ok(Extension {
        extn_id: E::OID,
        critical,
        extn_value: octets(bytes)?,
    })
}
