//! [`TokenVerifier`]: every check of a token, in order, with the certificates of its chain
//! remembered from one token to the next.

use std::collections::HashMap;
use std::sync::Arc;

use cms::content_info::ContentInfo;
use der::{Decode, Encode, Tag, Tagged};

use super::checks::{
    check_against_expectation, check_time_stamping_certificate, check_unsigned_fields,
    encapsulated_tst_info, find_signer, read_tst_info, single_signer,
};
use super::{
    check_size, describe_algorithm, describe_general_name, Accuracy, Expectation, TimestampSerial,
    VerifiedTimestamp,
};
use crate::note::{Ed25519Checker, SingleEd25519};
use crate::time::Instant;
use crate::timestamp::algorithms::{oid, strong_hash, SignatureAlgorithm, SignatureFailure};
use crate::timestamp::asn1::SignedData;
use crate::timestamp::certificate::ParsedCertificate;
use crate::timestamp::chain::{find_path, TrustAnchors};
use crate::timestamp::der_shape;
use crate::timestamp::error::{hex, malformed, TimestampError};
use crate::timestamp::signed_attributes::{
    check_content_type_attribute, check_message_digest_attribute, check_signing_certificate,
};
use crate::timestamp::status::{int_to_u64, PkiStatus};
use crate::timestamp::MAX_CERTIFICATES;

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
