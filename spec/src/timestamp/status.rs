//! PKIStatus and PKIFailureInfo as RFC 3161 §2.4.2 uses them.

use std::fmt;

use der::asn1::{BitString, Int};

use super::asn1::PkiStatusInfo;
use super::error::{malformed, TimestampError};

/// The status of a TimeStampResp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PkiStatus {
    /// 0: a token is present.
    Granted,
    /// 1: a token is present, with modifications the requester must check.
    GrantedWithMods,
    /// 2: no token; failInfo says why.
    Rejection,
    /// 3: not yet processed.
    Waiting,
    /// 4: a revocation is imminent.
    RevocationWarning,
    /// 5: a revocation has occurred.
    RevocationNotification,
}

impl PkiStatus {
    /// The status of its INTEGER value, if RFC 3161 defines it.
    pub fn from_value(value: u64) -> Option<PkiStatus> {
        Some(match value {
            0 => PkiStatus::Granted,
            1 => PkiStatus::GrantedWithMods,
            2 => PkiStatus::Rejection,
            3 => PkiStatus::Waiting,
            4 => PkiStatus::RevocationWarning,
            5 => PkiStatus::RevocationNotification,
            _ => return None,
        })
    }

    /// Its INTEGER value.
    pub fn value(self) -> u8 {
        match self {
            PkiStatus::Granted => 0,
            PkiStatus::GrantedWithMods => 1,
            PkiStatus::Rejection => 2,
            PkiStatus::Waiting => 3,
            PkiStatus::RevocationWarning => 4,
            PkiStatus::RevocationNotification => 5,
        }
    }

    /// Whether a token comes with this status (granted or grantedWithMods).
    pub fn is_granted(self) -> bool {
        matches!(self, PkiStatus::Granted | PkiStatus::GrantedWithMods)
    }
}

impl fmt::Display for PkiStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            PkiStatus::Granted => "granted",
            PkiStatus::GrantedWithMods => "grantedWithMods",
            PkiStatus::Rejection => "rejection",
            PkiStatus::Waiting => "waiting",
            PkiStatus::RevocationWarning => "revocationWarning",
            PkiStatus::RevocationNotification => "revocationNotification",
        })
    }
}

/// One bit of PKIFailureInfo. RFC 3161 §2.4.2 names eight; other bits (from RFC 4210's longer
/// list) are kept by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureInfo {
    /// Bit 0: unrecognized or unsupported algorithm identifier.
    BadAlg,
    /// Bit 2: transaction not permitted or supported.
    BadRequest,
    /// Bit 5: the data submitted has the wrong format.
    BadDataFormat,
    /// Bit 14: the TSA's time source is not available.
    TimeNotAvailable,
    /// Bit 15: the requested TSA policy is not supported.
    UnacceptedPolicy,
    /// Bit 16: the requested extension is not supported.
    UnacceptedExtension,
    /// Bit 17: the additional information requested could not be understood or is not
    /// available.
    AddInfoNotAvailable,
    /// Bit 25: the request cannot be handled due to system failure.
    SystemFailure,
    /// Any other bit, by number.
    Other(u8),
}

/// Highest failure bit read or written; RFC 4210 stops at 26.
const MAX_FAILURE_BIT: u8 = 63;

impl FailureInfo {
    /// The bit number.
    pub fn bit(self) -> u8 {
        match self {
            FailureInfo::BadAlg => 0,
            FailureInfo::BadRequest => 2,
            FailureInfo::BadDataFormat => 5,
            FailureInfo::TimeNotAvailable => 14,
            FailureInfo::UnacceptedPolicy => 15,
            FailureInfo::UnacceptedExtension => 16,
            FailureInfo::AddInfoNotAvailable => 17,
            FailureInfo::SystemFailure => 25,
            FailureInfo::Other(bit) => bit,
        }
    }

    /// The failure a bit number stands for.
    pub fn from_bit(bit: u8) -> FailureInfo {
        match bit {
            0 => FailureInfo::BadAlg,
            2 => FailureInfo::BadRequest,
            5 => FailureInfo::BadDataFormat,
            14 => FailureInfo::TimeNotAvailable,
            15 => FailureInfo::UnacceptedPolicy,
            16 => FailureInfo::UnacceptedExtension,
            17 => FailureInfo::AddInfoNotAvailable,
            25 => FailureInfo::SystemFailure,
            other => FailureInfo::Other(other),
        }
    }
}

impl fmt::Display for FailureInfo {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureInfo::BadAlg => formatter.write_str("badAlg"),
            FailureInfo::BadRequest => formatter.write_str("badRequest"),
            FailureInfo::BadDataFormat => formatter.write_str("badDataFormat"),
            FailureInfo::TimeNotAvailable => formatter.write_str("timeNotAvailable"),
            FailureInfo::UnacceptedPolicy => formatter.write_str("unacceptedPolicy"),
            FailureInfo::UnacceptedExtension => formatter.write_str("unacceptedExtension"),
            FailureInfo::AddInfoNotAvailable => formatter.write_str("addInfoNotAvailable"),
            FailureInfo::SystemFailure => formatter.write_str("systemFailure"),
            FailureInfo::Other(bit) => write!(formatter, "failure bit {bit}"),
        }
    }
}

/// The status of a decoded PKIStatusInfo, with its texts and failure bits.
pub(crate) fn read_status(
    info: &PkiStatusInfo,
) -> Result<(PkiStatus, Vec<String>, Vec<FailureInfo>), TimestampError> {
    let status = int_to_u64(&info.status)
        .and_then(PkiStatus::from_value)
        .ok_or_else(|| {
            malformed(
                "PKIStatusInfo",
                format!(
                    "status INTEGER 0x{} is not one of 0 to 5",
                    super::error::hex(info.status.as_bytes())
                ),
            )
        })?;
    let texts = info.status_string.clone().unwrap_or_default();
    let mut failures = Vec::new();
    if let Some(bits) = &info.fail_info {
        for (index, set) in bits.bits().enumerate() {
            if index > usize::from(MAX_FAILURE_BIT) {
                break;
            }
            if set {
                failures.push(FailureInfo::from_bit(index as u8));
            }
        }
    }
    Ok((status, texts, failures))
}

/// The PKIFailureInfo BIT STRING with one bit set, trailing zero bits removed as DER requires
/// for named bit lists (X.690 §11.2.2).
pub(crate) fn failure_bits(failure: FailureInfo) -> BitString {
    let bit = usize::from(failure.bit().min(MAX_FAILURE_BIT));
    let mut bytes = vec![0u8; bit / 8 + 1];
    bytes[bit / 8] = 0x80 >> (bit % 8);
    let unused = 7 - (bit % 8) as u8;
    BitString::new(unused, bytes).expect("unused bits are below 8 and the last byte is nonzero")
}

/// A non-negative INTEGER as u64, if it fits.
pub(crate) fn int_to_u64(value: &Int) -> Option<u64> {
    let bytes = value.as_bytes();
    if bytes.first().is_some_and(|first| first & 0x80 != 0) {
        return None;
    }
    let magnitude = strip_leading_zeros(bytes);
    if magnitude.len() > 8 {
        return None;
    }
    Some(
        magnitude
            .iter()
            .fold(0u64, |value, byte| (value << 8) | u64::from(*byte)),
    )
}

pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first_nonzero = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    &bytes[first_nonzero..]
}

/// The positive INTEGER with these big-endian magnitude bytes.
pub(crate) fn positive_int(magnitude: &[u8]) -> Int {
    let magnitude = strip_leading_zeros(magnitude);
    let mut bytes = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|first| first & 0x80 != 0) {
        bytes.push(0);
    }
    bytes.extend_from_slice(magnitude);
    Int::new(&bytes).expect("a minimal two's-complement encoding is a valid INTEGER")
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn failure_bits_are_der_named_bit_lists() {
        assert_eq!(
            failure_bits(FailureInfo::BadAlg).to_der().expect("encodes"),
            [0x03, 0x02, 0x07, 0x80]
        );
        assert_eq!(
            failure_bits(FailureInfo::BadDataFormat)
                .to_der()
                .expect("encodes"),
            [0x03, 0x02, 0x02, 0x04]
        );
        assert_eq!(
            failure_bits(FailureInfo::SystemFailure)
                .to_der()
                .expect("encodes"),
            [0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40]
        );
    }

    #[test]
    fn integers_convert_both_ways() {
        for value in [0u64, 1, 127, 128, 255, 256, u64::MAX >> 1, u64::MAX] {
            let int = positive_int(&value.to_be_bytes());
            assert_eq!(int_to_u64(&int), Some(value));
        }
        assert_eq!(positive_int(&[]).as_bytes(), [0]);
        assert_eq!(positive_int(&[0, 0, 0x80]).as_bytes(), [0, 0x80]);
        assert_eq!(int_to_u64(&Int::new(&[0xff]).expect("-1")), None);
        assert_eq!(
            int_to_u64(&Int::new(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0]).expect("2^64")),
            None
        );
    }
}
