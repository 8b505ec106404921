//! Time as RFC 3161 carries it: `genTime` is a DER GeneralizedTime that may have a fraction of a
//! second (RFC 3161 §2.4.2, X.690 §11.7), which der 0.7's own `GeneralizedTime` refuses. This
//! module reads and writes that form. The time it stands for is Cairn's one [`Instant`], through
//! the one civil calendar of [`crate::time`]; a token's time is shown as
//! [`Instant::to_rfc3339_trimmed`], with the precision the token states.

use der::{DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Tag, Writer};

use crate::time::{days_in_month, push_trimmed_fraction, Civil, Instant};

/// Seconds from 0000-01-01 to 1970-01-01 and from 1970-01-01 to the end of 9999: the range that
/// a four-digit GeneralizedTime year can express.
const FIRST_SECOND: i64 = -62_167_219_200;
const LAST_SECOND: i64 = 253_402_300_799;

/// Whether `time` can be written as a four-digit-year GeneralizedTime (years 0 to 9999) and its
/// `nanos` is below one second.
pub(crate) fn fits_generalized_time(time: Instant) -> bool {
    (FIRST_SECOND..=LAST_SECOND).contains(&time.seconds) && time.nanos < 1_000_000_000
}

/// Longest GeneralizedTime this module reads: 14 digits, a dot, nine fraction digits and `Z`.
const MAX_GENERALIZED_TIME_LENGTH: usize = 25;

/// Reads the DER form of a GeneralizedTime, `YYYYMMDDHHMMSS[.f]Z`: seconds present, UTC only,
/// and a fraction (if any) of one to nine digits without a trailing zero (X.690 §11.7).
pub(crate) fn parse_generalized_time(text: &[u8]) -> Result<Instant, String> {
    let shown = || String::from_utf8_lossy(text).into_owned();
    if text.len() < 15 || text.len() > MAX_GENERALIZED_TIME_LENGTH {
        return Err(format!(
            "expected YYYYMMDDHHMMSS[.fraction]Z, found {:?}",
            shown()
        ));
    }
    let (body, zone) = text.split_at(text.len() - 1);
    if zone != b"Z" {
        return Err(format!(
            "expected a time ending in Z (UTC), found {:?}",
            shown()
        ));
    }
    let (whole, fraction) = body.split_at(14);
    let number = |range: std::ops::Range<usize>| -> Result<u32, String> {
        let digits = &whole[range];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(format!("expected digits, found {:?}", shown()));
        }
        Ok(digits
            .iter()
            .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0')))
    };
    let civil = Civil {
        year: i64::from(number(0..4)?),
        month: number(4..6)?,
        day: number(6..8)?,
        hour: number(8..10)?,
        minute: number(10..12)?,
        second: number(12..14)?,
    };
    if !(1..=12).contains(&civil.month)
        || civil.day == 0
        || i64::from(civil.day) > days_in_month(civil.year, i64::from(civil.month))
        || civil.hour > 23
        || civil.minute > 59
        || civil.second > 59
    {
        return Err(format!("no such date and time: {:?}", shown()));
    }
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] => {
            if digits.is_empty()
                || digits.len() > 9
                || !digits.iter().all(u8::is_ascii_digit)
                || digits.last() == Some(&b'0')
            {
                return Err(format!(
                    "expected a fraction of 1 to 9 digits without a trailing zero, found {:?}",
                    shown()
                ));
            }
            let value = digits
                .iter()
                .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'));
            value * 10u32.pow(9 - digits.len() as u32)
        }
        _ => {
            return Err(format!(
                "expected YYYYMMDDHHMMSS[.fraction]Z, found {:?}",
                shown()
            ))
        }
    };
    Ok(Instant {
        seconds: civil.to_unix(),
        nanos,
    })
}

/// Writes the DER GeneralizedTime form of `time`; `None` if the year is outside 0 to 9999.
pub(crate) fn format_generalized_time(time: Instant) -> Option<String> {
    if !fits_generalized_time(time) {
        return None;
    }
    let civil = Civil::from_unix(time.seconds);
    let mut text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        civil.year, civil.month, civil.day, civil.hour, civil.minute, civil.second
    );
    push_trimmed_fraction(&mut text, time.nanos);
    text.push('Z');
    Some(text)
}

/// `genTime` on the wire: a GeneralizedTime that may carry a fraction of a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GenTime(pub Instant);

impl<'a> DecodeValue<'a> for GenTime {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<GenTime> {
        let length = usize::try_from(header.length)?;
        if length > MAX_GENERALIZED_TIME_LENGTH {
            return Err(Tag::GeneralizedTime.length_error());
        }
        let mut buffer = [0u8; MAX_GENERALIZED_TIME_LENGTH];
        let text = &mut buffer[..length];
        reader.read_into(text)?;
        parse_generalized_time(text)
            .map(GenTime)
            .map_err(|_| Tag::GeneralizedTime.value_error())
    }
}

impl EncodeValue for GenTime {
    fn value_len(&self) -> der::Result<Length> {
        let text = format_generalized_time(self.0).ok_or(Tag::GeneralizedTime.value_error())?;
        Length::try_from(text.len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        let text = format_generalized_time(self.0).ok_or(Tag::GeneralizedTime.value_error())?;
        writer.write(text.as_bytes())
    }
}

impl FixedTag for GenTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

/// The instant an X.509 `Time` (UTCTime or GeneralizedTime) names.
pub(crate) fn x509_time_to_unix(time: &x509_cert::time::Time) -> i64 {
    // der's DateTime only holds 1970 to 9999, so the duration always fits an i64.
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// An X.509 `Time` for a certificate validity bound: UTCTime until 2049, GeneralizedTime from
/// 2050 on (RFC 5280 §4.1.2.5). Fractions of a second are dropped.
pub(crate) fn unix_to_x509_time(time: Instant) -> Result<x509_cert::time::Time, String> {
    let shown = || time.to_rfc3339_trimmed();
    let seconds = u64::try_from(time.seconds)
        .map_err(|_| format!("certificate times start in 1970, found {}", shown()))?;
    let date_time = der::DateTime::from_unix_duration(std::time::Duration::from_secs(seconds))
        .map_err(|error| format!("{} is not a certificate time: {error}", shown()))?;
    if date_time.year() < 2050 {
        der::asn1::UtcTime::from_date_time(date_time)
            .map(x509_cert::time::Time::UtcTime)
            .map_err(|error| format!("{} is not a UTCTime: {error}", shown()))
    } else {
        Ok(x509_cert::time::Time::GeneralTime(
            der::asn1::GeneralizedTime::from_date_time(date_time),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_generalized_time_with_and_without_fraction() {
        // The example genTime of RFC 3161 §2.4.2: "19990609001326.34352Z".
        let time = parse_generalized_time(b"19990609001326.34352Z").expect("valid");
        assert_eq!(time.seconds, 928_887_206);
        assert_eq!(time.nanos, 343_520_000);
        assert_eq!(time.to_rfc3339_trimmed(), "1999-06-09T00:13:26.34352Z");
        let whole = parse_generalized_time(b"20261125113718Z").expect("valid");
        assert_eq!(whole.to_rfc3339(), "2026-11-25T11:37:18Z");
    }

    #[test]
    fn rejects_non_der_generalized_times() {
        for bad in [
            &b"20261125113718"[..],
            b"202611251137Z",
            b"20261125113718.Z",
            b"20261125113718.50Z",
            b"20261125113718,5Z",
            b"20261125113718+0100",
            b"20261325113718Z",
            b"20260229113718Z",
            b"20261125243718Z",
            b"20261125113760Z",
            b"2026112511371a5Z",
            b"20261125113718.1234567891Z",
        ] {
            assert!(
                parse_generalized_time(bad).is_err(),
                "{:?} was accepted",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_generalized_time(b"20240229000000Z").is_ok());
    }

    #[test]
    fn formats_and_reads_back_every_fraction_length() {
        for nanos in [0, 1, 10, 500_000_000, 123_456_789, 999_999_999, 120_000_000] {
            let time = Instant {
                seconds: 1_764_070_638,
                nanos,
            };
            let text = format_generalized_time(time).expect("in range");
            assert_eq!(parse_generalized_time(text.as_bytes()), Ok(time), "{text}");
        }
    }

    #[test]
    fn civil_conversion_round_trips_across_the_whole_range() {
        let mut seconds = FIRST_SECOND;
        while seconds <= LAST_SECOND {
            assert_eq!(Civil::from_unix(seconds).to_unix(), seconds);
            seconds += 86_400 * 7 + 3_607;
        }
        assert_eq!(
            Instant::from_seconds(LAST_SECOND).to_rfc3339(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            Instant::from_seconds(FIRST_SECOND).to_rfc3339(),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            Instant::from_seconds(0).to_rfc3339(),
            "1970-01-01T00:00:00Z"
        );
        assert!(format_generalized_time(Instant::from_seconds(LAST_SECOND + 1)).is_none());
    }

    #[test]
    fn certificate_times_switch_to_generalized_time_in_2050() {
        let before = unix_to_x509_time(Instant::from_seconds(2_524_607_999)).expect("2049");
        assert!(matches!(before, x509_cert::time::Time::UtcTime(_)));
        let after = unix_to_x509_time(Instant::from_seconds(2_524_608_000)).expect("2050");
        assert!(matches!(after, x509_cert::time::Time::GeneralTime(_)));
        assert_eq!(x509_time_to_unix(&after), 2_524_608_000);
        assert!(unix_to_x509_time(Instant::from_seconds(-1)).is_err());
    }
}
