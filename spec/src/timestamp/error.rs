//! Everything that can be wrong with a timestamp request, response, token or certificate, each
//! failure its own variant that says what was expected and what was found.

use std::fmt;

use const_oid::ObjectIdentifier;

use super::algorithms::HashAlgorithm;
use super::status::{FailureInfo, PkiStatus};
use crate::time::Instant;

/// A timestamp that could not be read, verified, issued or certified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The input is longer than the limit for its kind.
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was too large ("response", "token", "request", "certificate").
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The DER could not be decoded.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which structure was being read.
        what: &'static str,
        /// What the decoder found wrong, and where.
        detail: String,
    },
    /// SignedData digestAlgorithms is not exactly the signer's digest algorithm.
    #[error("SignedData digestAlgorithms {found:?} must be exactly the signer's {signer}")]
    DigestAlgorithmsMismatch {
        /// The algorithms listed.
        found: Vec<String>,
        /// The SignerInfo's digest algorithm.
        signer: String,
    },
    /// A version field other than the one the RFC defines.
    #[error("{what} version {found} is not supported, expected {expected}")]
    UnsupportedVersion {
        /// Which structure.
        what: &'static str,
        /// The version required.
        expected: u8,
        /// The version found.
        found: String,
    },
    /// The TSA did not grant the request (RFC 3161 §2.4.2).
    #[error(
        "the TSA answered {status}{}{}",
        text_suffix(status_text),
        fail_suffix(fail_info)
    )]
    NotGranted {
        /// The PKIStatus.
        status: PkiStatus,
        /// The statusString texts, if any.
        status_text: Vec<String>,
        /// The failInfo bits, if any.
        fail_info: Vec<FailureInfo>,
    },
    /// The status is granted but the response carries no token.
    #[error("the response says {status} but carries no timeStampToken")]
    MissingToken {
        /// The PKIStatus.
        status: PkiStatus,
    },
    /// The token is not a CMS SignedData.
    #[error("token content type is {found}, expected id-signedData (1.2.840.113549.1.7.2)")]
    NotSignedData {
        /// The content type found.
        found: ObjectIdentifier,
    },
    /// The signed content is not a TSTInfo.
    #[error(
        "encapsulated content type is {found}, expected id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4)"
    )]
    NotTstInfo {
        /// The eContentType found.
        found: ObjectIdentifier,
    },
    /// The SignedData has no encapsulated content (a detached signature).
    #[error("the token's SignedData has no eContent (the TSTInfo must be encapsulated)")]
    MissingTstInfo,
    /// Not exactly one SignerInfo.
    #[error("the token has {found} SignerInfos, expected exactly 1")]
    SignerCount {
        /// How many there were.
        found: usize,
    },
    /// More certificates than Cairn reads.
    #[error("the token carries {found} certificates, the limit is {limit}")]
    TooManyCertificates {
        /// How many there were.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// The SignerInfo has no signed attributes, so nothing binds the signature to a TSTInfo.
    #[error("the SignerInfo has no signed attributes")]
    MissingSignedAttributes,
    /// A signed attribute that must be there is not.
    #[error("signed attribute {name} is missing")]
    MissingAttribute {
        /// The attribute's name.
        name: &'static str,
    },
    /// A signed attribute appears more than once, or has other than one value.
    #[error("signed attribute {name} must appear once with one value, found {found}")]
    AttributeNotSingle {
        /// The attribute's name.
        name: &'static str,
        /// What was found ("2 attributes", "3 values").
        found: String,
    },
    /// The content-type signed attribute does not say id-ct-TSTInfo.
    #[error("content-type attribute says {found}, expected id-ct-TSTInfo")]
    ContentTypeAttributeMismatch {
        /// The content type in the attribute.
        found: ObjectIdentifier,
    },
    /// The message-digest signed attribute is not the digest of the TSTInfo.
    #[error(
        "message-digest attribute is {found}, but the {algorithm} of the TSTInfo is {expected}"
    )]
    MessageDigestMismatch {
        /// The digest algorithm.
        algorithm: HashAlgorithm,
        /// Hex of the digest computed over the eContent.
        expected: String,
        /// Hex of the digest in the attribute.
        found: String,
    },
    /// A digest algorithm other than SHA-256, SHA-384 or SHA-512.
    #[error("{what} uses digest algorithm {found}, expected SHA-256, SHA-384 or SHA-512")]
    UnsupportedDigest {
        /// Where ("SignerInfo digestAlgorithm", "ESSCertIDv2", …).
        what: &'static str,
        /// The OID found, with parameters if they were the problem.
        found: String,
    },
    /// A signature algorithm Cairn does not verify, or one whose parameters are wrong.
    #[error("{what}: {detail}")]
    UnsupportedSignatureAlgorithm {
        /// Where.
        what: &'static str,
        /// What was found.
        detail: String,
    },
    /// The SignerInfo's signature algorithm hashes with another digest than its digestAlgorithm.
    #[error("signature algorithm hashes with {signature}, but the SignerInfo digestAlgorithm is {digest}")]
    SignatureDigestMismatch {
        /// The signature algorithm's digest.
        signature: HashAlgorithm,
        /// The digestAlgorithm.
        digest: HashAlgorithm,
    },
    /// No signing-certificate nor signing-certificate-v2 attribute (RFC 3161 §2.4.1, RFC 5816).
    #[error("neither signing-certificate (ESSCertID) nor signing-certificate-v2 (ESSCertIDv2) is among the signed attributes")]
    MissingSigningCertificate,
    /// The ESSCertID or ESSCertIDv2 hash does not match the signer certificate.
    #[error("{attribute} names a certificate whose {algorithm} is {found}, but the signer certificate's is {expected}")]
    SigningCertificateMismatch {
        /// "ESSCertID" or "ESSCertIDv2".
        attribute: &'static str,
        /// The hash algorithm.
        algorithm: HashAlgorithm,
        /// Hex of the signer certificate's hash.
        expected: String,
        /// Hex of the hash in the attribute.
        found: String,
    },
    /// The issuerSerial of an ESSCertID(v2) names another certificate.
    #[error("{attribute} issuerSerial names {found}, but the signer certificate is {expected}")]
    SigningCertificateIssuerSerialMismatch {
        /// "ESSCertID" or "ESSCertIDv2".
        attribute: &'static str,
        /// Issuer and serial of the signer certificate.
        expected: String,
        /// Issuer and serial in the attribute.
        found: String,
    },
    /// No certificate in the token matches the SignerInfo's sid.
    #[error("no certificate in the token matches the signer identifier {sid}")]
    SignerCertificateNotFound {
        /// The sid, described.
        sid: String,
    },
    /// A certificate that could not be read.
    #[error("certificate {index} of the token: {detail}")]
    BadCertificate {
        /// Its position among the token's certificates (or the anchors).
        index: usize,
        /// What was wrong.
        detail: String,
    },
    /// The signer certificate's public key cannot be used.
    #[error("signer certificate key: {detail}")]
    UnsupportedKey {
        /// What was wrong.
        detail: String,
    },
    /// The CMS signature over the signed attributes does not verify.
    #[error("the {algorithm} signature over the signed attributes does not verify with the signer certificate's key")]
    BadSignature {
        /// The algorithm, described.
        algorithm: String,
    },
    /// The signer certificate has no extendedKeyUsage extension (RFC 3161 §2.3).
    #[error("signer certificate {subject} has no extendedKeyUsage extension, expected a critical one with only id-kp-timeStamping")]
    MissingTimeStampingEku {
        /// The certificate subject.
        subject: String,
    },
    /// The extendedKeyUsage extension is not marked critical (RFC 3161 §2.3).
    #[error("signer certificate {subject} has a non-critical extendedKeyUsage; RFC 3161 §2.3 requires it critical")]
    EkuNotCritical {
        /// The certificate subject.
        subject: String,
    },
    /// The extendedKeyUsage holds other purposes than id-kp-timeStamping, or not it at all.
    #[error("signer certificate {subject} has extendedKeyUsage {found:?}, expected exactly [1.3.6.1.5.5.7.3.8] (id-kp-timeStamping)")]
    EkuNotTimeStampingOnly {
        /// The certificate subject.
        subject: String,
        /// The purposes found.
        found: Vec<String>,
    },
    /// The signer certificate's keyUsage does not allow signatures.
    #[error(
        "signer certificate {subject} has a keyUsage without digitalSignature or nonRepudiation"
    )]
    KeyUsageForbidsSigning {
        /// The certificate subject.
        subject: String,
    },
    /// The signer certificate has a critical extension Cairn does not process (RFC 5280 §4.2).
    #[error("signer certificate {subject} has critical extension {extension}, which Cairn does not process")]
    UnknownCriticalExtension {
        /// The certificate subject.
        subject: String,
        /// The extension OID.
        extension: ObjectIdentifier,
    },
    /// The imprint algorithm of the TSTInfo is not SHA-256.
    #[error("TSTInfo imprint algorithm is {found}, expected SHA-256 (2.16.840.1.101.3.4.2.1)")]
    ImprintAlgorithmMismatch {
        /// The algorithm found.
        found: String,
    },
    /// The TSTInfo imprint is not the expected one: the token timestamps other data.
    #[error("TSTInfo imprint is {found}, expected {expected}")]
    ImprintMismatch {
        /// Hex of the expected imprint.
        expected: String,
        /// Hex of the imprint in the TSTInfo.
        found: String,
    },
    /// The nonce was expected but the TSTInfo has none.
    #[error("TSTInfo has no nonce, expected {expected}")]
    NonceMissing {
        /// The expected nonce.
        expected: u64,
    },
    /// The TSTInfo nonce differs from the request's: the response answers another request.
    #[error("TSTInfo nonce is {found}, expected {expected}")]
    NonceMismatch {
        /// The expected nonce.
        expected: u64,
        /// The nonce found (hex of its INTEGER content octets).
        found: String,
    },
    /// A TSTInfo field outside what RFC 3161 allows (serial length, accuracy range, …).
    #[error("TSTInfo {field}: {detail}")]
    BadTstInfo {
        /// The field.
        field: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// genTime falls outside the signer certificate's validity.
    #[error(
        "genTime {} is outside the validity of signer certificate {subject} ({} to {})",
        .gen_time.to_rfc3339_trimmed(),
        .not_before.to_rfc3339_trimmed(),
        .not_after.to_rfc3339_trimmed()
    )]
    SignerNotValidAtGenTime {
        /// The certificate subject.
        subject: String,
        /// genTime.
        gen_time: Instant,
        /// Validity start.
        not_before: Instant,
        /// Validity end.
        not_after: Instant,
    },
    /// No chain from the signer certificate to a trust anchor could be built.
    #[error("no trusted chain from signer certificate {subject}: {reason}")]
    UntrustedChain {
        /// The signer certificate subject.
        subject: String,
        /// Why the closest attempt failed.
        reason: ChainFailure,
    },
    /// A trust anchor that could not be read.
    #[error("trust anchor {index}: {detail}")]
    BadTrustAnchor {
        /// Its position in the list given.
        index: usize,
        /// What was wrong.
        detail: String,
    },
    /// The TSA refused to issue for the request (its rejection response says the same).
    #[error("request refused ({fail_info}): {reason}")]
    RequestRefused {
        /// The failInfo a rejection response carries.
        fail_info: FailureInfo,
        /// Why.
        reason: String,
    },
    /// The serial number, genTime or accuracy given to the issuer cannot be put in a TSTInfo.
    #[error("cannot grant a timestamp: {detail}")]
    BadGrant {
        /// What was wrong.
        detail: String,
    },
    /// The TSA's key, held elsewhere (a PKCS#11 token), could not sign, or answered a
    /// signature that does not verify.
    #[error("the TSA's key could not sign: {detail}")]
    SigningFailed {
        /// What the key's holder answered.
        detail: String,
    },
    /// The TSA signer's key, certificate or parameters do not fit together.
    #[error("TSA signer: {detail}")]
    BadSigner {
        /// What was wrong.
        detail: String,
    },
    /// A certificate could not be made from the parameters given.
    #[error("cannot make certificate: {detail}")]
    BadCertificateParameters {
        /// What was wrong.
        detail: String,
    },
    /// PEM text that could not be read.
    #[error("PEM: {detail}")]
    BadPem {
        /// What was wrong.
        detail: String,
    },
    /// DER encoding of a structure being built failed.
    #[error("encoding {what}: {detail}")]
    Encoding {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        detail: String,
    },
}

fn text_suffix(texts: &[String]) -> String {
    if texts.is_empty() {
        String::new()
    } else {
        format!(" ({:?})", texts.join("; "))
    }
}

fn fail_suffix(fail_info: &[FailureInfo]) -> String {
    if fail_info.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = fail_info.iter().map(ToString::to_string).collect();
        format!(", failInfo {}", names.join(", "))
    }
}

/// Why a chain from the signer certificate to a trust anchor could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainFailure {
    /// No certificate in the token nor any anchor has the issuer's name.
    IssuerNotFound {
        /// The certificate whose issuer is missing.
        subject: String,
        /// The issuer name sought.
        issuer: String,
    },
    /// A candidate issuer's key does not verify the certificate's signature.
    BadCertificateSignature {
        /// The certificate.
        subject: String,
        /// The candidate issuer.
        issuer: String,
        /// Why.
        detail: String,
    },
    /// A certificate used as an issuer is not a CA (no basicConstraints cA TRUE).
    IssuerNotCa {
        /// The issuer's subject.
        issuer: String,
    },
    /// An issuer's keyUsage does not include keyCertSign.
    IssuerCannotSignCertificates {
        /// The issuer's subject.
        issuer: String,
    },
    /// A path longer than an issuer's pathLenConstraint allows.
    PathLengthExceeded {
        /// The issuer whose constraint is exceeded.
        issuer: String,
        /// Its pathLenConstraint.
        limit: u8,
    },
    /// A certificate on the path is outside its validity at genTime.
    NotValidAtGenTime {
        /// The certificate.
        subject: String,
        /// genTime.
        gen_time: Instant,
        /// Validity start.
        not_before: Instant,
        /// Validity end.
        not_after: Instant,
    },
    /// A certificate on the path has a critical extension Cairn does not understand.
    UnknownCriticalExtension {
        /// The certificate.
        subject: String,
        /// The extension OID.
        extension: ObjectIdentifier,
    },
    /// No path within the length and work limits.
    TooLong {
        /// The limit on certificates in a path.
        limit: usize,
    },
}

impl fmt::Display for ChainFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainFailure::IssuerNotFound { subject, issuer } => write!(
                formatter,
                "no certificate in the token and no trust anchor is the issuer {issuer} of {subject}"
            ),
            ChainFailure::BadCertificateSignature {
                subject,
                issuer,
                detail,
            } => write!(
                formatter,
                "the signature of {subject} does not verify with the key of {issuer}: {detail}"
            ),
            ChainFailure::IssuerNotCa { issuer } => write!(
                formatter,
                "issuer {issuer} is not a CA (basicConstraints cA is not TRUE)"
            ),
            ChainFailure::IssuerCannotSignCertificates { issuer } => write!(
                formatter,
                "issuer {issuer} has a keyUsage without keyCertSign"
            ),
            ChainFailure::PathLengthExceeded { issuer, limit } => write!(
                formatter,
                "the path exceeds the pathLenConstraint {limit} of {issuer}"
            ),
            ChainFailure::NotValidAtGenTime {
                subject,
                gen_time,
                not_before,
                not_after,
            } => write!(
                formatter,
                "{subject} is valid from {} to {}, not at genTime {}",
                not_before.to_rfc3339_trimmed(),
                not_after.to_rfc3339_trimmed(),
                gen_time.to_rfc3339_trimmed()
            ),
            ChainFailure::UnknownCriticalExtension { subject, extension } => write!(
                formatter,
                "{subject} has critical extension {extension}, which Cairn does not process"
            ),
            ChainFailure::TooLong { limit } => write!(
                formatter,
                "no path of at most {limit} certificates ends at a trust anchor"
            ),
        }
    }
}

pub(crate) fn malformed(what: &'static str, error: impl fmt::Display) -> TimestampError {
    TimestampError::Malformed {
        what,
        detail: error.to_string(),
    }
}

pub(crate) fn encoding(what: &'static str, error: impl fmt::Display) -> TimestampError {
    TimestampError::Encoding {
        what,
        detail: error.to_string(),
    }
}

/// Lowercase hex, for messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
