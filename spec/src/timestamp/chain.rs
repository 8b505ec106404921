//! Trust anchors and the path from a TSA's signer certificate to one of them.
//!
//! A verifier that is given trust anchors (DER root certificates, or the TSA certificate itself
//! to pin it) accepts a token only if a chain runs from the signer certificate, through
//! certificates the token carries, to an anchor, with every signature checked, every
//! certificate valid at genTime (the RFC 3161 question is whether the TSA was trustworthy when
//! it signed, not whether it is today), every issuer a CA (basicConstraints cA TRUE, keyCertSign
//! if it has a keyUsage, pathLenConstraint honoured), and no critical extension Cairn does not
//! understand. Names are matched by their DER bytes. A self-issued certificate that the token
//! carries (a root) is never a step in the path: it counts only if it is itself an anchor. Revocation is not checked: no CRL or OCSP
//! fetching in a pure library.

use super::certificate::{CaRefusal, ParsedCertificate};
use super::error::{ChainFailure, TimestampError};
use super::MAX_TOKEN_SIZE;
use crate::time::Instant;

/// Most certificates in a path, the signer's and the anchor's included.
pub const MAX_PATH_LENGTH: usize = 8;

/// Most signature checks one path search may spend, so that a token full of certificates with
/// the same names cannot make the search exponential.
const MAX_SIGNATURE_CHECKS: usize = 64;

/// The certificates a verifier trusts to vouch for TSAs.
#[derive(Clone, Debug, Default)]
pub struct TrustAnchors {
    pub(crate) anchors: Vec<ParsedCertificate>,
}

impl TrustAnchors {
    /// Trust anchors from DER certificates. Each must parse and have a supported key.
    pub fn from_der<C: AsRef<[u8]>>(certificates: &[C]) -> Result<TrustAnchors, TimestampError> {
        let mut anchors = Vec::with_capacity(certificates.len());
        for (index, certificate) in certificates.iter().enumerate() {
            let der = certificate.as_ref();
            if der.len() > MAX_TOKEN_SIZE {
                return Err(TimestampError::BadTrustAnchor {
                    index,
                    detail: format!(
                        "certificate of {} bytes exceeds the limit of {MAX_TOKEN_SIZE}",
                        der.len()
                    ),
                });
            }
            let parsed = ParsedCertificate::from_der(der)
                .map_err(|detail| TimestampError::BadTrustAnchor { index, detail })?;
            if let Err(detail) = &parsed.public_key {
                return Err(TimestampError::BadTrustAnchor {
                    index,
                    detail: detail.clone(),
                });
            }
            anchors.push(parsed);
        }
        Ok(TrustAnchors { anchors })
    }

    /// Trust anchors from PEM text holding one or more `CERTIFICATE` blocks.
    pub fn from_pem(text: &str) -> Result<TrustAnchors, TimestampError> {
        TrustAnchors::from_der(&super::pem::certificates_from_pem(text)?)
    }

    /// How many anchors there are.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are none (then nothing can be trusted).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The anchors' DER.
    pub fn certificates(&self) -> impl Iterator<Item = &[u8]> {
        self.anchors.iter().map(|anchor| anchor.der.as_slice())
    }
}

/// Checks that `issuer`'s key signed `certificate`: [`ParsedCertificate::verify_signed_by`],
/// or a cache of its earlier answers for the same two certificates.
pub(crate) type IssuerCheck<'c> =
    dyn FnMut(&ParsedCertificate, &ParsedCertificate) -> Result<(), String> + 'c;

/// Searches for a path from `signer` through `intermediates` to an anchor and returns the
/// anchor reached.
pub(crate) fn find_path<'a>(
    signer: &ParsedCertificate,
    intermediates: &[&ParsedCertificate],
    trust_anchors: &'a TrustAnchors,
    gen_time: Instant,
    signed_by: &mut IssuerCheck<'_>,
) -> Result<&'a ParsedCertificate, ChainFailure> {
    let mut search = Search {
        intermediates,
        trust_anchors,
        gen_time,
        signed_by,
        checks_left: MAX_SIGNATURE_CHECKS,
        on_path: Vec::new(),
        closest_failure: None,
    };
    match search.extend(signer) {
        Some(anchor) => Ok(anchor),
        None => Err(search
            .closest_failure
            .map(|(_, failure)| failure)
            .unwrap_or(ChainFailure::TooLong {
                limit: MAX_PATH_LENGTH,
            })),
    }
}

struct Search<'s, 'a, 'c> {
    intermediates: &'s [&'s ParsedCertificate],
    trust_anchors: &'a TrustAnchors,
    gen_time: Instant,
    signed_by: &'s mut IssuerCheck<'c>,
    checks_left: usize,
    /// Indices of the intermediates on the current path, nearest the signer first.
    on_path: Vec<usize>,
    /// The failure met deepest in the search: the most informative one to report.
    closest_failure: Option<(usize, ChainFailure)>,
}

impl<'s, 'a, 'c> Search<'s, 'a, 'c> {
    fn fail(&mut self, failure: ChainFailure) {
        let depth = self.on_path.len();
        if self
            .closest_failure
            .as_ref()
            .is_none_or(|(deepest, _)| depth >= *deepest)
        {
            self.closest_failure = Some((depth, failure));
        }
    }

    /// Tries to finish the path above `current`, the certificate last added.
    fn extend(&mut self, current: &ParsedCertificate) -> Option<&'a ParsedCertificate> {
        let trust_anchors: &'a TrustAnchors = self.trust_anchors;
        let intermediates: &'s [&'s ParsedCertificate] = self.intermediates;
        if let Some(anchor) = trust_anchors
            .anchors
            .iter()
            .find(|anchor| anchor.der == current.der)
        {
            return Some(anchor);
        }
        let mut issuer_found = false;
        for anchor in &trust_anchors.anchors {
            if anchor.subject_der != current.issuer_der {
                continue;
            }
            issuer_found = true;
            if self.acceptable_issuer(current, anchor) {
                return Some(anchor);
            }
        }
        // The anchor ends a path, so a further intermediate needs room for one more certificate
        // after it: signer + intermediates + anchor.
        if self.on_path.len() + 3 > MAX_PATH_LENGTH {
            self.fail(ChainFailure::TooLong {
                limit: MAX_PATH_LENGTH,
            });
            return None;
        }
        for (index, &candidate) in intermediates.iter().enumerate() {
            // A self-issued certificate in the token is a root that claims itself; it is
            // trusted only by being one of the anchors, never as a step between.
            if candidate.subject_der != current.issuer_der
                || candidate.subject_der == candidate.issuer_der
                || self.on_path.contains(&index)
            {
                continue;
            }
            issuer_found = true;
            if !self.acceptable_issuer(current, candidate) {
                continue;
            }
            if let Some(subject) = candidate.unknown_critical_extension() {
                self.fail(ChainFailure::UnknownCriticalExtension {
                    subject: candidate.subject(),
                    extension: subject,
                });
                continue;
            }
            self.on_path.push(index);
            let found = self.extend(candidate);
            self.on_path.pop();
            if found.is_some() {
                return found;
            }
        }
        if !issuer_found {
            self.fail(ChainFailure::IssuerNotFound {
                subject: current.subject(),
                issuer: current.issuer(),
            });
        }
        None
    }

    /// Whether `issuer` may have issued `current` here: a CA, within its path length, valid at
    /// genTime, and its key verifies `current`'s signature.
    fn acceptable_issuer(
        &mut self,
        current: &ParsedCertificate,
        issuer: &ParsedCertificate,
    ) -> bool {
        let path_length_limit = match issuer.ca_constraints() {
            Ok(limit) => limit,
            Err(CaRefusal::NotCa) => {
                self.fail(ChainFailure::IssuerNotCa {
                    issuer: issuer.subject(),
                });
                return false;
            }
            Err(CaRefusal::NoKeyCertSign) => {
                self.fail(ChainFailure::IssuerCannotSignCertificates {
                    issuer: issuer.subject(),
                });
                return false;
            }
        };
        // pathLenConstraint counts the intermediates below the issuer, the signer excluded.
        let intermediates_below = self.on_path.len();
        if let Some(limit) = path_length_limit {
            if intermediates_below > usize::from(limit) {
                self.fail(ChainFailure::PathLengthExceeded {
                    issuer: issuer.subject(),
                    limit,
                });
                return false;
            }
        }
        if !issuer.valid_at(self.gen_time) {
            self.fail(ChainFailure::NotValidAtGenTime {
                subject: issuer.subject(),
                gen_time: self.gen_time,
                not_before: Instant::from_seconds(issuer.not_before),
                not_after: Instant::from_seconds(issuer.not_after),
            });
            return false;
        }
        if self.checks_left == 0 {
            self.fail(ChainFailure::TooLong {
                limit: MAX_PATH_LENGTH,
            });
            return false;
        }
        self.checks_left -= 1;
        match (self.signed_by)(current, issuer) {
            Ok(()) => true,
            Err(detail) => {
                self.fail(ChainFailure::BadCertificateSignature {
                    subject: current.subject(),
                    issuer: issuer.subject(),
                    detail,
                });
                false
            }
        }
    }
}
