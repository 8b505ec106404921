//! RFC 3161 timestamps of checkpoints: the request a witness sends to a timestamp authority
//! (TSA), verification of the response and of the token a receipt stores, and a pure issuer
//! for Cairn's own small TSA.
//!
//! A timestamp token is a CMS SignedData (RFC 5652) over a TSTInfo that binds a message
//! imprint to a time (genTime), signed by a TSA whose certificate has the critical
//! id-kp-timeStamping extended key usage, and names that certificate by hash in an ESSCertID
//! or ESSCertIDv2 signed attribute (RFC 2634, RFC 5816). Cairn timestamps a checkpoint by the
//! SHA-256 of its note body (see [`checkpoint_imprint`]).
//!
//! The library does no I/O, reads no clock and draws no randomness: the caller passes nonces,
//! serial numbers and times. Every input is bounded ([`MAX_TOKEN_SIZE`],
//! [`MAX_CERTIFICATES`], [`MAX_REQUEST_SIZE`]) and every failure is a [`TimestampError`] that
//! says what was expected and found. `spec/docs/timestamp.md` lists every check.
//!
//! - [`TimestampRequest`]: build (`for_imprint`, `to_der`) and read (`from_der`) TimeStampReq.
//! - [`verify_response`], [`verify_token`] with an [`Expectation`] give a [`VerifiedTimestamp`].
//! - [`TsaSigner`], [`issue_response`], [`rejection_response`], [`respond`]: the issuer.
//! - [`make_root_certificate`], [`make_tsa_certificate`]: certificates for a private TSA.

mod algorithms;
mod asn1;
mod authority;
mod certificate;
mod chain;
mod der_shape;
mod error;
mod issue;
mod pem;
mod request;
mod signed_attributes;
mod status;
mod time;
mod verify;

use sha2::{Digest, Sha256};

pub use algorithms::{oid, HashAlgorithm, SignatureAlgorithm, MAX_RSA_BITS, MIN_RSA_BITS};
pub use authority::{make_root_certificate, make_tsa_certificate, CertificateSpec};
pub use chain::{TrustAnchors, MAX_PATH_LENGTH};
pub use const_oid::ObjectIdentifier;
pub use error::{ChainFailure, TimestampError};
pub use issue::{
    check_request, issue_response, rejection_response, respond, ExternalP256Key, KeyPair,
    TimestampGrant, TsaSigner,
};
pub use pem::{certificate_to_pem, certificates_from_pem, MAX_PEM_CERTIFICATES};
pub use request::{TimestampRequest, MAX_NONCE_SIZE, MAX_REQUEST_SIZE};
pub use status::{FailureInfo, PkiStatus};
pub use verify::{
    verify_response, verify_token, Accuracy, Expectation, TimestampSerial, TokenVerifier,
    VerifiedTimestamp, MAX_SERIAL_SIZE,
};

/// Largest TimeStampResp or TimeStampToken read: 64 KiB. A token with a TSA certificate and a
/// two-certificate RSA-4096 chain is under 8 KiB.
pub const MAX_TOKEN_SIZE: usize = 64 * 1024;

/// Most certificates a token may carry. A TSA sends its own and at most a few above it.
pub const MAX_CERTIFICATES: usize = 16;

/// The message imprint Cairn timestamps for a checkpoint: SHA-256 of the checkpoint's note
/// body, exactly the bytes the log signed (origin line through the last extension line, each
/// ending in a newline; no blank line, no signature lines).
///
/// Hashing the body itself, rather than a Cairn-specific encoding of it, lets an auditor check
/// a token with nothing but OpenSSL: `openssl ts -verify -data body.txt -in token.tsr
/// -token_in -CAfile root.pem`.
pub fn checkpoint_imprint(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_imprint_is_sha256_of_the_body_bytes() {
        // SHA-256("abc"), FIPS 180-2 Appendix B.1.
        assert_eq!(
            checkpoint_imprint(b"abc"),
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad
            ]
        );
    }
}
