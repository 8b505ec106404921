//! X.509 certificates (RFC 5280) as far as timestamp verification reads them: names, validity,
//! the extensions that decide what a certificate may do, its key, and its signature over the
//! exact bytes of its `tbsCertificate`.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::Certificate;

use super::algorithms::{oid, PublicKey, SignatureAlgorithm, SignatureFailure};
use super::asn1::RawCertificate;
use super::der_shape;
use super::time::x509_time_to_unix;
use crate::time::Instant;

/// A decoded certificate together with the bytes it was decoded from.
#[derive(Clone, Debug)]
pub(crate) struct ParsedCertificate {
    /// The certificate as received.
    pub der: Vec<u8>,
    /// Its `tbsCertificate` as received: what the issuer signed.
    pub tbs_der: Vec<u8>,
    pub certificate: Certificate,
    /// DER of the subject and issuer names, for exact comparison.
    pub subject_der: Vec<u8>,
    pub issuer_der: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub public_key: Result<PublicKey, String>,
    /// The subject as RFC 4514 text, made once: messages and results quote it.
    subject_text: String,
}

/// Extensions whose criticality Cairn honours: every other critical extension makes a
/// certificate unusable (RFC 5280 §4.2).
const UNDERSTOOD_EXTENSIONS: [ObjectIdentifier; 7] = [
    oid::BASIC_CONSTRAINTS,
    oid::KEY_USAGE,
    oid::EXTENDED_KEY_USAGE,
    oid::SUBJECT_KEY_IDENTIFIER,
    oid::AUTHORITY_KEY_IDENTIFIER,
    oid::SUBJECT_ALT_NAME,
    oid::CERTIFICATE_POLICIES,
];

impl ParsedCertificate {
    /// Decodes one certificate. The caller has bounded its size.
    pub(crate) fn from_der(der: &[u8]) -> Result<ParsedCertificate, String> {
        der_shape::check(der)?;
        let certificate = Certificate::from_der(der).map_err(|error| error.to_string())?;
        let raw = RawCertificate::from_der(der).map_err(|error| error.to_string())?;
        let tbs_der = raw
            .tbs_certificate
            .to_der()
            .map_err(|error| error.to_string())?;
        let tbs = &certificate.tbs_certificate;
        if tbs.signature != certificate.signature_algorithm {
            return Err(
                "the signature algorithm inside tbsCertificate differs from the outer one"
                    .to_string(),
            );
        }
        let mut seen = Vec::new();
        for extension in tbs.extensions.as_deref().unwrap_or(&[]) {
            if seen.contains(&extension.extn_id) {
                return Err(format!(
                    "extension {} appears more than once",
                    extension.extn_id
                ));
            }
            seen.push(extension.extn_id);
        }
        let subject_der = tbs.subject.to_der().map_err(|error| error.to_string())?;
        let issuer_der = tbs.issuer.to_der().map_err(|error| error.to_string())?;
        let public_key = PublicKey::from_spki(&tbs.subject_public_key_info);
        let subject_text = match tbs.subject.to_string() {
            text if text.is_empty() => "(empty subject)".to_string(),
            text => text,
        };
        Ok(ParsedCertificate {
            der: der.to_vec(),
            tbs_der,
            not_before: x509_time_to_unix(&tbs.validity.not_before),
            not_after: x509_time_to_unix(&tbs.validity.not_after),
            certificate,
            subject_der,
            issuer_der,
            public_key,
            subject_text,
        })
    }

    /// The subject as RFC 4514 text, for messages.
    pub(crate) fn subject(&self) -> String {
        self.subject_text.clone()
    }

    /// The issuer as RFC 4514 text, for messages.
    pub(crate) fn issuer(&self) -> String {
        self.certificate.tbs_certificate.issuer.to_string()
    }

    /// The serial number's INTEGER content octets.
    pub(crate) fn serial(&self) -> &[u8] {
        self.certificate.tbs_certificate.serial_number.as_bytes()
    }

    pub(crate) fn extension(&self, id: ObjectIdentifier) -> Option<&Extension> {
        self.certificate
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .find(|extension| extension.extn_id == id)
    }

    pub(crate) fn unknown_critical_extension(&self) -> Option<ObjectIdentifier> {
        self.certificate
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .find(|extension| {
                extension.critical && !UNDERSTOOD_EXTENSIONS.contains(&extension.extn_id)
            })
            .map(|extension| extension.extn_id)
    }

    /// The subjectKeyIdentifier, if the certificate has a readable one.
    pub(crate) fn subject_key_identifier(&self) -> Option<Vec<u8>> {
        let extension = self.extension(oid::SUBJECT_KEY_IDENTIFIER)?;
        der::asn1::OctetString::from_der(extension.extn_value.as_bytes())
            .ok()
            .map(|identifier| identifier.as_bytes().to_vec())
    }

    pub(crate) fn basic_constraints(&self) -> Result<Option<BasicConstraints>, String> {
        self.extension(oid::BASIC_CONSTRAINTS)
            .map(|extension| {
                BasicConstraints::from_der(extension.extn_value.as_bytes())
                    .map_err(|error| format!("basicConstraints: {error}"))
            })
            .transpose()
    }

    pub(crate) fn key_usage(&self) -> Result<Option<KeyUsage>, String> {
        self.extension(oid::KEY_USAGE)
            .map(|extension| {
                KeyUsage::from_der(extension.extn_value.as_bytes())
                    .map_err(|error| format!("keyUsage: {error}"))
            })
            .transpose()
    }

    /// The extendedKeyUsage and whether it is critical.
    pub(crate) fn extended_key_usage(
        &self,
    ) -> Option<Result<(bool, Vec<ObjectIdentifier>), String>> {
        self.extension(oid::EXTENDED_KEY_USAGE).map(|extension| {
            ExtendedKeyUsage::from_der(extension.extn_value.as_bytes())
                .map(|usage| (extension.critical, usage.0))
                .map_err(|error| format!("extendedKeyUsage: {error}"))
        })
    }

    /// Whether the certificate is a CA that may sign certificates: basicConstraints cA TRUE,
    /// and keyCertSign if it has a keyUsage. Returns its pathLenConstraint.
    pub(crate) fn ca_constraints(&self) -> Result<Option<u8>, CaRefusal> {
        match self.basic_constraints() {
            Ok(Some(constraints)) if constraints.ca => {
                match self.key_usage() {
                    Ok(Some(usage)) if !usage.0.contains(KeyUsages::KeyCertSign) => {
                        return Err(CaRefusal::NoKeyCertSign)
                    }
                    Err(_) => return Err(CaRefusal::NoKeyCertSign),
                    _ => {}
                }
                Ok(constraints.path_len_constraint)
            }
            _ => Err(CaRefusal::NotCa),
        }
    }

    pub(crate) fn valid_at(&self, time: Instant) -> bool {
        self.not_before <= time.seconds && time.seconds <= self.not_after
    }

    /// Checks that `issuer`'s key signed this certificate.
    pub(crate) fn verify_signed_by(&self, issuer: &ParsedCertificate) -> Result<(), String> {
        let algorithm =
            SignatureAlgorithm::from_identifier(&self.certificate.signature_algorithm, None)?;
        let signature = self
            .certificate
            .signature
            .as_bytes()
            .ok_or("certificate signature bit string has unused bits")?;
        let key = issuer.public_key.as_ref().map_err(Clone::clone)?;
        key.verify(algorithm, &self.tbs_der, signature)
            .map_err(|failure| match failure {
                SignatureFailure::KeyMismatch(detail) => detail,
                SignatureFailure::Invalid => format!("{algorithm} signature is invalid"),
            })
    }
}

/// Why a certificate cannot act as an issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CaRefusal {
    NotCa,
    NoKeyCertSign,
}
