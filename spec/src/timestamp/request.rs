//! TimeStampReq (RFC 3161 §2.4.1): what a client sends to a TSA.
//!
//! Cairn's own requests are always the same shape: version 1, a SHA-256 imprint of the
//! checkpoint body, a 64-bit nonce the caller chose, certReq TRUE (so the token carries the
//! certificate that verifies it), and optionally a policy. A TSA server reads any well-formed
//! request, and refuses what it cannot honour with a rejection response.

use const_oid::ObjectIdentifier;
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};

use super::algorithms::{strong_hash, HashAlgorithm};
use super::asn1::{MessageImprint, TimeStampReq};
use super::der_shape;
use super::error::{malformed, TimestampError};
use super::status::{int_to_u64, positive_int};

/// Largest TimeStampReq read. A request is a digest, a policy, a nonce and a flag: about a
/// hundred bytes. Extensions, the only open-ended part, are refused by Cairn's TSA anyway.
pub const MAX_REQUEST_SIZE: usize = 4096;

/// Longest nonce read, in INTEGER content octets. RFC 3161 only asks for a "large random
/// number"; 64 bits is the common choice (openssl), 160 bits the largest seen.
pub const MAX_NONCE_SIZE: usize = 64;

/// A TimeStampReq. Made by [`TimestampRequest::for_imprint`] or read by
/// [`TimestampRequest::from_der`]; its fields are read through methods so that every value
/// holds what DER can encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampRequest {
    /// The message imprint exactly as received, echoed in the TSTInfo (RFC 3161 §2.4.2: it
    /// "MUST have the same value as the similar field in TimeStampReq").
    pub(crate) message_imprint: MessageImprint,
    policy: Option<ObjectIdentifier>,
    /// The nonce's INTEGER content octets (big-endian two's complement, minimal).
    nonce: Option<Vec<u8>>,
    cert_req: bool,
    extensions: Vec<ObjectIdentifier>,
}

impl TimestampRequest {
    /// Cairn's request for a checkpoint: SHA-256 `imprint` (see
    /// [`checkpoint_imprint`](super::checkpoint_imprint)), `nonce`, certReq TRUE, and `policy`
    /// if the TSA needs one named.
    pub fn for_imprint(
        imprint: [u8; 32],
        nonce: u64,
        policy: Option<ObjectIdentifier>,
    ) -> TimestampRequest {
        let message_imprint = MessageImprint {
            hash_algorithm: HashAlgorithm::Sha256.identifier(),
            hashed_message: OctetString::new(imprint.to_vec())
                .expect("32 bytes fit an OCTET STRING"),
        };
        TimestampRequest {
            policy,
            nonce: Some(positive_int(&nonce.to_be_bytes()).as_bytes().to_vec()),
            cert_req: true,
            extensions: Vec::new(),
            message_imprint,
        }
    }

    /// The DER TimeStampReq.
    pub fn to_der(&self) -> Vec<u8> {
        let request = TimeStampReq {
            version: positive_int(&[1]),
            message_imprint: self.message_imprint.clone(),
            req_policy: self.policy,
            nonce: self
                .nonce
                .as_ref()
                .map(|bytes| Int::new(bytes).expect("nonce bytes were read or made as an INTEGER")),
            cert_req: self.cert_req,
            // A request is rebuilt only by Cairn's client, which never sends extensions.
            extensions: None,
        };
        request
            .to_der()
            .expect("a request of bounded fields always encodes")
    }

    /// Reads a DER TimeStampReq, of at most [`MAX_REQUEST_SIZE`] bytes.
    pub fn from_der(der: &[u8]) -> Result<TimestampRequest, TimestampError> {
        if der.len() > MAX_REQUEST_SIZE {
            return Err(TimestampError::TooLarge {
                what: "request",
                size: der.len(),
                limit: MAX_REQUEST_SIZE,
            });
        }
        der_shape::check(der).map_err(|detail| malformed("TimeStampReq", detail))?;
        let request =
            TimeStampReq::from_der(der).map_err(|error| malformed("TimeStampReq", error))?;
        if int_to_u64(&request.version) != Some(1) {
            return Err(TimestampError::UnsupportedVersion {
                what: "TimeStampReq",
                expected: 1,
                found: super::error::hex(request.version.as_bytes()),
            });
        }
        let nonce = request.nonce.map(|nonce| nonce.as_bytes().to_vec());
        if let Some(nonce) = &nonce {
            if nonce.len() > MAX_NONCE_SIZE {
                return Err(malformed(
                    "TimeStampReq",
                    format!(
                        "nonce of {} bytes, at most {MAX_NONCE_SIZE} accepted",
                        nonce.len()
                    ),
                ));
            }
        }
        Ok(TimestampRequest {
            policy: request.req_policy,
            nonce,
            cert_req: request.cert_req,
            extensions: request
                .extensions
                .unwrap_or_default()
                .iter()
                .map(|extension| extension.extn_id)
                .collect(),
            message_imprint: request.message_imprint,
        })
    }

    /// The OID of the imprint's hash algorithm: any may be asked for, and a TSA refuses what
    /// it does not support with badAlg.
    pub fn imprint_algorithm(&self) -> ObjectIdentifier {
        self.message_imprint.hash_algorithm.oid
    }

    /// The hashed message.
    pub fn imprint(&self) -> &[u8] {
        self.message_imprint.hashed_message.as_bytes()
    }

    /// reqPolicy, if the request names one.
    pub fn policy(&self) -> Option<ObjectIdentifier> {
        self.policy
    }

    /// The nonce's INTEGER content octets (big-endian two's complement, minimal), if any.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }

    /// certReq: whether the token must carry the TSA's certificate.
    pub fn cert_req(&self) -> bool {
        self.cert_req
    }

    /// The OIDs of the request's extensions, if it has any.
    pub fn extensions(&self) -> &[ObjectIdentifier] {
        &self.extensions
    }

    /// The imprint's algorithm if it is SHA-256, SHA-384 or SHA-512 without parameters (or
    /// with NULL ones): the algorithms a Cairn TSA stamps.
    pub fn imprint_hash(&self) -> Option<HashAlgorithm> {
        strong_hash(&self.message_imprint.hash_algorithm)
    }

    /// The nonce as a u64, if present, non-negative and small enough.
    pub fn nonce_u64(&self) -> Option<u64> {
        let bytes = self.nonce.as_ref()?;
        int_to_u64(&Int::new(bytes).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The request of x509-tsp's test `request_test` (RustCrypto/formats, x509-tsp/src/lib.rs),
    // made by `openssl ts -query -data abc.txt`: a SHA-256 imprint of "abc" with NULL
    // parameters and the nonce 0x314CFCE4E0651827, without certReq.
    const OPENSSL_REQUEST: &str = "30400201013031300D060960864801650304020105000420BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD0208314CFCE4E0651827";

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn reads_a_request_made_by_openssl() {
        let request = TimestampRequest::from_der(&unhex(OPENSSL_REQUEST)).expect("valid");
        assert_eq!(request.imprint_algorithm(), HashAlgorithm::Sha256.oid());
        assert_eq!(request.imprint_hash(), Some(HashAlgorithm::Sha256));
        assert_eq!(
            request.imprint(),
            unhex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")
        );
        assert_eq!(request.nonce_u64(), Some(0x314C_FCE4_E065_1827));
        assert!(!request.cert_req());
        assert_eq!(request.policy(), None);
        assert!(request.extensions().is_empty());
    }

    #[test]
    fn cairn_request_is_version_1_sha256_nonce_and_cert_req() {
        let imprint = [0xab; 32];
        let der = TimestampRequest::for_imprint(imprint, u64::MAX, None).to_der();
        let mut expected = vec![0x30, 0x42, 0x02, 0x01, 0x01];
        // MessageImprint: SHA-256 with absent parameters (RFC 5754 §2), then the digest.
        expected.extend([0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09]);
        expected.extend([0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]);
        expected.extend([0x04, 0x20]);
        expected.extend(imprint);
        // The nonce 2^64-1 is a positive INTEGER, so it needs a leading zero octet.
        expected.extend([0x02, 0x09, 0x00]);
        expected.extend([0xff; 8]);
        expected.extend([0x01, 0x01, 0xff]);
        assert_eq!(der, expected);
        let back = TimestampRequest::from_der(&der).expect("round trip");
        assert_eq!(back.nonce_u64(), Some(u64::MAX));
        assert!(back.cert_req());
        assert_eq!(back.imprint(), imprint);
    }

    #[test]
    fn carries_a_policy_when_asked() {
        let policy = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");
        let der = TimestampRequest::for_imprint([1; 32], 7, Some(policy)).to_der();
        let back = TimestampRequest::from_der(&der).expect("round trip");
        assert_eq!(back.policy(), Some(policy));
        assert_eq!(back.nonce_u64(), Some(7));
    }

    #[test]
    fn rejects_bad_requests() {
        let good = unhex(OPENSSL_REQUEST);
        assert!(matches!(
            TimestampRequest::from_der(&good[..good.len() - 1]),
            Err(TimestampError::Malformed { .. })
        ));
        assert!(matches!(
            TimestampRequest::from_der(&vec![0u8; MAX_REQUEST_SIZE + 1]),
            Err(TimestampError::TooLarge { .. })
        ));
        let mut version_2 = good.clone();
        version_2[4] = 2;
        assert!(matches!(
            TimestampRequest::from_der(&version_2),
            Err(TimestampError::UnsupportedVersion { .. })
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(TimestampRequest::from_der(&trailing).is_err());
        assert!(TimestampRequest::from_der(&[]).is_err());
    }
}
