//! The digest and signature algorithms a timestamp may use, their object identifiers, and
//! signature verification with the public key of a certificate.
//!
//! Accepted: SHA-256, SHA-384 and SHA-512 digests (RFC 5754), and SHA-1 only where RFC 2634's
//! ESSCertID fixes it; RSA PKCS #1 v1.5 and RSASSA-PSS (RFC 8017, RFC 4056) with keys of 2048 to
//! 8192 bits; ECDSA over P-256 (RFC 5758); Ed25519 (RFC 8410, RFC 8419).

use std::fmt;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Tagged};
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::note::{verify_single, Ed25519Checker, Ed25519Rules};

/// Object identifiers used by RFC 3161, RFC 5652, RFC 5816 and the algorithms above.
pub mod oid {
    use const_oid::ObjectIdentifier;

    /// id-sha1, RFC 3279 §2.2.1.
    pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    /// id-sha256, RFC 5754 §2.2.
    pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// id-sha384, RFC 5754 §2.3.
    pub const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
    /// id-sha512, RFC 5754 §2.4.
    pub const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
    /// rsaEncryption, RFC 8017 Appendix C.
    pub const RSA_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    /// id-mgf1, RFC 8017 Appendix C.
    pub const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
    /// id-RSASSA-PSS, RFC 8017 Appendix C.
    pub const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
    /// sha256WithRSAEncryption, RFC 8017 Appendix C.
    pub const SHA256_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    /// sha384WithRSAEncryption, RFC 8017 Appendix C.
    pub const SHA384_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    /// sha512WithRSAEncryption, RFC 8017 Appendix C.
    pub const SHA512_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
    /// id-ecPublicKey, RFC 5480 §2.1.1.
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// secp256r1 (P-256), RFC 5480 §2.1.1.1.
    pub const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    /// ecdsa-with-SHA256, RFC 5758 §3.2.
    pub const ECDSA_WITH_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    /// ecdsa-with-SHA384, RFC 5758 §3.2.
    pub const ECDSA_WITH_SHA384: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    /// ecdsa-with-SHA512, RFC 5758 §3.2.
    pub const ECDSA_WITH_SHA512: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
    /// id-Ed25519, RFC 8410 §3.
    pub const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
    /// id-signedData, RFC 5652 §5.1.
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// id-ct-TSTInfo, RFC 3161 §2.4.2.
    pub const TST_INFO: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
    /// id-contentType, RFC 5652 §11.1.
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    /// id-messageDigest, RFC 5652 §11.2.
    pub const MESSAGE_DIGEST: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    /// id-aa-signingCertificate, RFC 2634 §5.4.
    pub const SIGNING_CERTIFICATE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
    /// id-aa-signingCertificateV2, RFC 5035 §3 (used by RFC 5816).
    pub const SIGNING_CERTIFICATE_V2: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
    /// id-kp-timeStamping, RFC 5280 §4.2.1.12.
    pub const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
    /// id-ce-subjectKeyIdentifier, RFC 5280 §4.2.1.2.
    pub const SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
    /// id-ce-keyUsage, RFC 5280 §4.2.1.3.
    pub const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
    /// id-ce-subjectAltName, RFC 5280 §4.2.1.6.
    pub const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
    /// id-ce-basicConstraints, RFC 5280 §4.2.1.9.
    pub const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
    /// id-ce-certificatePolicies, RFC 5280 §4.2.1.4.
    pub const CERTIFICATE_POLICIES: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32");
    /// id-ce-authorityKeyIdentifier, RFC 5280 §4.2.1.1.
    pub const AUTHORITY_KEY_IDENTIFIER: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.5.29.35");
    /// id-ce-extKeyUsage, RFC 5280 §4.2.1.12.
    pub const EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
}

/// A digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1: only for ESSCertID (RFC 2634), never for imprints or signatures.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// The algorithm an object identifier names, if it is one of the four.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlgorithm> {
        match *oid {
            oid::SHA1 => Some(HashAlgorithm::Sha1),
            oid::SHA256 => Some(HashAlgorithm::Sha256),
            oid::SHA384 => Some(HashAlgorithm::Sha384),
            oid::SHA512 => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }

    /// The object identifier of the algorithm.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha1 => oid::SHA1,
            HashAlgorithm::Sha256 => oid::SHA256,
            HashAlgorithm::Sha384 => oid::SHA384,
            HashAlgorithm::Sha512 => oid::SHA512,
        }
    }

    /// Length of the digest in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlgorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlgorithm::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlgorithm::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The AlgorithmIdentifier Cairn writes: parameters absent, as RFC 5754 §2 asks.
    pub(crate) fn identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha384 => "SHA-384",
            HashAlgorithm::Sha512 => "SHA-512",
        })
    }
}

/// A digest AlgorithmIdentifier that Cairn accepts for messages and signatures: SHA-256/384/512
/// with parameters absent or NULL (RFC 5754 §2 requires accepting both).
pub(crate) fn strong_hash(identifier: &AlgorithmIdentifierOwned) -> Option<HashAlgorithm> {
    if !parameters_absent_or_null(identifier) {
        return None;
    }
    HashAlgorithm::from_oid(&identifier.oid).filter(|hash| *hash != HashAlgorithm::Sha1)
}

fn parameters_absent_or_null(identifier: &AlgorithmIdentifierOwned) -> bool {
    match &identifier.parameters {
        None => true,
        Some(any) => any.tag() == der::Tag::Null && any.value().is_empty(),
    }
}

/// A signature algorithm, with the digest it signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1v15(HashAlgorithm),
    /// RSASSA-PSS with MGF1 over the same digest.
    RsaPss {
        /// The digest, also used by MGF1.
        hash: HashAlgorithm,
        /// The salt length in bytes.
        salt_length: usize,
    },
    /// ECDSA over P-256, DER-encoded signature.
    EcdsaP256(HashAlgorithm),
    /// Ed25519 (pure).
    Ed25519,
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureAlgorithm::RsaPkcs1v15(hash) => {
                write!(formatter, "RSA PKCS#1 v1.5 with {hash}")
            }
            SignatureAlgorithm::RsaPss { hash, salt_length } => {
                write!(
                    formatter,
                    "RSA-PSS with {hash} and a {salt_length}-byte salt"
                )
            }
            SignatureAlgorithm::EcdsaP256(hash) => write!(formatter, "ECDSA P-256 with {hash}"),
            SignatureAlgorithm::Ed25519 => formatter.write_str("Ed25519"),
        }
    }
}

/// RSASSA-PSS-params, RFC 4055 §3.1. Defaults (SHA-1, MGF1 with SHA-1) are not accepted, so
/// the hash and mask fields must be present.
#[derive(Clone, Debug, der::Sequence)]
struct RsaPssParameters {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u8>,
}

/// Largest PSS salt accepted; a salt is never longer than the largest digest in practice.
const MAX_PSS_SALT: u32 = 512;

impl SignatureAlgorithm {
    /// Reads a signature AlgorithmIdentifier. `cms_digest` is the SignerInfo's digest algorithm
    /// when the signature is a CMS one: RFC 5652 lets it pair with plain `rsaEncryption`.
    pub(crate) fn from_identifier(
        identifier: &AlgorithmIdentifierOwned,
        cms_digest: Option<HashAlgorithm>,
    ) -> Result<SignatureAlgorithm, String> {
        let rsa_pkcs1 = |hash| {
            if parameters_absent_or_null(identifier) {
                Ok(SignatureAlgorithm::RsaPkcs1v15(hash))
            } else {
                Err("RSA PKCS#1 v1.5 with parameters other than NULL".to_string())
            }
        };
        let ecdsa = |hash| {
            if identifier.parameters.is_none() {
                Ok(SignatureAlgorithm::EcdsaP256(hash))
            } else {
                Err("ECDSA with parameters (RFC 5758 requires them absent)".to_string())
            }
        };
        match identifier.oid {
            oid::RSA_ENCRYPTION => match cms_digest {
                Some(hash) => rsa_pkcs1(hash),
                None => Err("rsaEncryption without a digest algorithm".to_string()),
            },
            oid::SHA256_WITH_RSA => rsa_pkcs1(HashAlgorithm::Sha256),
            oid::SHA384_WITH_RSA => rsa_pkcs1(HashAlgorithm::Sha384),
            oid::SHA512_WITH_RSA => rsa_pkcs1(HashAlgorithm::Sha512),
            oid::RSASSA_PSS => pss_from_parameters(identifier),
            oid::ECDSA_WITH_SHA256 => ecdsa(HashAlgorithm::Sha256),
            oid::ECDSA_WITH_SHA384 => ecdsa(HashAlgorithm::Sha384),
            oid::ECDSA_WITH_SHA512 => ecdsa(HashAlgorithm::Sha512),
            oid::ED25519 if identifier.parameters.is_none() => Ok(SignatureAlgorithm::Ed25519),
            oid::ED25519 => Err("Ed25519 with parameters (RFC 8410 requires them absent)".into()),
            other => Err(format!("signature algorithm {other} is not supported")),
        }
    }

    /// The digest the algorithm applies to the message; `None` for Ed25519, which hashes
    /// internally.
    pub fn hash(&self) -> Option<HashAlgorithm> {
        match self {
            SignatureAlgorithm::RsaPkcs1v15(hash)
            | SignatureAlgorithm::RsaPss { hash, .. }
            | SignatureAlgorithm::EcdsaP256(hash) => Some(*hash),
            SignatureAlgorithm::Ed25519 => None,
        }
    }
}

fn pss_from_parameters(
    identifier: &AlgorithmIdentifierOwned,
) -> Result<SignatureAlgorithm, String> {
    let parameters = identifier
        .parameters
        .as_ref()
        .ok_or("RSA-PSS without parameters (the SHA-1 defaults are not accepted)")?;
    let parameters = RsaPssParameters::from_der(
        &parameters
            .to_der()
            .map_err(|error| format!("RSA-PSS parameters: {error}"))?,
    )
    .map_err(|error| format!("RSA-PSS parameters: {error}"))?;
    let hash = parameters
        .hash_algorithm
        .as_ref()
        .and_then(strong_hash)
        .ok_or("RSA-PSS with a hash other than SHA-256, SHA-384 or SHA-512")?;
    let mask = parameters
        .mask_gen_algorithm
        .as_ref()
        .ok_or("RSA-PSS without a mask generation function (the SHA-1 default is refused)")?;
    let mask_hash = mask
        .parameters
        .as_ref()
        .and_then(|any| AlgorithmIdentifierOwned::from_der(&any.to_der().ok()?).ok())
        .and_then(|inner| strong_hash(&inner));
    if mask.oid != oid::MGF1 || mask_hash != Some(hash) {
        return Err(format!("RSA-PSS mask must be MGF1 with {hash}"));
    }
    if parameters.trailer_field.is_some_and(|field| field != 1) {
        return Err("RSA-PSS trailer field other than 1".into());
    }
    let salt_length = parameters.salt_length.unwrap_or(20);
    if salt_length > MAX_PSS_SALT {
        return Err(format!("RSA-PSS salt of {salt_length} bytes"));
    }
    Ok(SignatureAlgorithm::RsaPss {
        hash,
        salt_length: salt_length as usize,
    })
}

/// Smallest and largest RSA moduli accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// A public key that can check signatures.
#[derive(Clone, Debug)]
pub(crate) enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// Why a signature did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SignatureFailure {
    /// The key and the algorithm do not go together (an RSA signature for an EC key, …).
    KeyMismatch(String),
    /// The signature is wrong.
    Invalid,
}

impl PublicKey {
    /// Reads the key of a SubjectPublicKeyInfo.
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKey, String> {
        let key_bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or("public key bit string has unused bits")?;
        match spki.algorithm.oid {
            oid::RSA_ENCRYPTION => {
                let key = rsa::pkcs1::RsaPublicKey::from_der(key_bytes)
                    .map_err(|error| format!("RSA public key: {error}"))?;
                let modulus = rsa::BigUint::from_bytes_be(key.modulus.as_bytes());
                let exponent = rsa::BigUint::from_bytes_be(key.public_exponent.as_bytes());
                let bits = modulus.bits();
                if bits < MIN_RSA_BITS {
                    return Err(format!(
                        "RSA key of {bits} bits, at least {MIN_RSA_BITS} required"
                    ));
                }
                rsa::RsaPublicKey::new_with_max_size(modulus, exponent, MAX_RSA_BITS)
                    .map(PublicKey::Rsa)
                    .map_err(|error| format!("RSA public key of {bits} bits: {error}"))
            }
            oid::EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|any| any.decode_as::<ObjectIdentifier>().ok());
                if curve != Some(oid::SECP256R1) {
                    return Err(match curve {
                        Some(curve) => format!("EC curve {curve} is not supported, only P-256"),
                        None => "EC key without a named curve".to_string(),
                    });
                }
                p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map(PublicKey::P256)
                    .map_err(|_| "P-256 public key is not a point on the curve".to_string())
            }
            oid::ED25519 => {
                let bytes: &[u8; 32] = key_bytes.try_into().map_err(|_| {
                    format!(
                        "Ed25519 public key of {} bytes, expected 32",
                        key_bytes.len()
                    )
                })?;
                ed25519_dalek::VerifyingKey::from_bytes(bytes)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| "Ed25519 public key is not a valid point".to_string())
            }
            other => Err(format!("public key algorithm {other} is not supported")),
        }
    }

    /// As [`PublicKey::verify`], with an Ed25519 equation left to `checker` (which may defer
    /// it to a batch); other algorithms are checked at once.
    pub(crate) fn verify_with(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
        checker: &mut dyn Ed25519Checker,
    ) -> Result<(), SignatureFailure> {
        match (self, algorithm) {
            (PublicKey::Ed25519(key), SignatureAlgorithm::Ed25519) => {
                if checker.check(key, message, signature, Ed25519Rules::Strict) {
                    Ok(())
                } else {
                    Err(SignatureFailure::Invalid)
                }
            }
            _ => self.verify(algorithm, message, signature),
        }
    }

    /// Checks `signature` over `message` with `algorithm`.
    pub(crate) fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureFailure> {
        use signature::Verifier;
        match (self, algorithm) {
            (PublicKey::Rsa(key), SignatureAlgorithm::RsaPkcs1v15(hash)) => {
                let signature = rsa::pkcs1v15::Signature::try_from(signature)
                    .map_err(|_| SignatureFailure::Invalid)?;
                let outcome = match hash {
                    HashAlgorithm::Sha256 => {
                        rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone())
                            .verify(message, &signature)
                    }
                    HashAlgorithm::Sha384 => {
                        rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(key.clone())
                            .verify(message, &signature)
                    }
                    HashAlgorithm::Sha512 => {
                        rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key.clone())
                            .verify(message, &signature)
                    }
                    HashAlgorithm::Sha1 => return Err(SignatureFailure::Invalid),
                };
                outcome.map_err(|_| SignatureFailure::Invalid)
            }
            (PublicKey::Rsa(key), SignatureAlgorithm::RsaPss { hash, salt_length }) => {
                let signature = rsa::pss::Signature::try_from(signature)
                    .map_err(|_| SignatureFailure::Invalid)?;
                let outcome = match hash {
                    HashAlgorithm::Sha256 => {
                        rsa::pss::VerifyingKey::<sha2::Sha256>::new_with_salt_len(
                            key.clone(),
                            salt_length,
                        )
                        .verify(message, &signature)
                    }
                    HashAlgorithm::Sha384 => {
                        rsa::pss::VerifyingKey::<sha2::Sha384>::new_with_salt_len(
                            key.clone(),
                            salt_length,
                        )
                        .verify(message, &signature)
                    }
                    HashAlgorithm::Sha512 => {
                        rsa::pss::VerifyingKey::<sha2::Sha512>::new_with_salt_len(
                            key.clone(),
                            salt_length,
                        )
                        .verify(message, &signature)
                    }
                    HashAlgorithm::Sha1 => return Err(SignatureFailure::Invalid),
                };
                outcome.map_err(|_| SignatureFailure::Invalid)
            }
            (PublicKey::P256(key), SignatureAlgorithm::EcdsaP256(hash)) => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier;
                let signature = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SignatureFailure::Invalid)?;
                key.verify_prehash(&hash.digest(message), &signature)
                    .map_err(|_| SignatureFailure::Invalid)
            }
            (PublicKey::Ed25519(key), SignatureAlgorithm::Ed25519) => {
                if verify_single(key, message, signature, Ed25519Rules::Strict) {
                    Ok(())
                } else {
                    Err(SignatureFailure::Invalid)
                }
            }
            (key, algorithm) => Err(SignatureFailure::KeyMismatch(format!(
                "a {} key cannot check a {algorithm} signature",
                key.kind()
            ))),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            PublicKey::Rsa(_) => "RSA",
            PublicKey::P256(_) => "P-256",
            PublicKey::Ed25519(_) => "Ed25519",
        }
    }
}
