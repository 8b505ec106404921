//! Verification of a TimeStampResp (RFC 3161 §2.4.2) and of the TimeStampToken inside it, a
//! CMS SignedData (RFC 5652 §5) over a TSTInfo, signed with ESSCertID or ESSCertIDv2 binding
//! the signer certificate (RFC 2634 §5.4, RFC 5816).
//!
//! Verification is total and bounded: input larger than [`MAX_TOKEN_SIZE`] or carrying more
//! than [`MAX_CERTIFICATES`] certificates is refused before any signature work, and every
//! failure is its own [`TimestampError`] variant. The checks are listed, in order, in
//! `spec/docs/timestamp.md`.

mod checks;
mod token_verifier;

pub(crate) use checks::{describe_algorithm, describe_general_name};
pub use token_verifier::TokenVerifier;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};

use super::algorithms::SignatureAlgorithm;
use super::asn1::TimeStampResp;
use super::chain::TrustAnchors;
use super::der_shape;
use super::error::{hex, malformed, TimestampError};
use super::status::{read_status, strip_leading_zeros, PkiStatus};
use super::MAX_TOKEN_SIZE;
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
