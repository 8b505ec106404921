//! Instants and the civil calendar: the one point-in-time type of Cairn, its RFC 3339 text, and
//! the one conversion between Unix time and proleptic Gregorian dates.
//!
//! Audit events carry the producer's time and the server's receive time as RFC 3339 text, and
//! queries select events by time, so both directions are needed. Only the RFC 3339 profile of
//! ISO 8601 is accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with `T`/`Z` in either case,
//! a fraction of 1 to 9 digits, a leap second only as second 60, and years 0000 to 9999.
//!
//! RFC 3161 timestamp tokens carry their time as a DER GeneralizedTime
//! ([`crate::timestamp`]); it is read into the same [`Instant`] through the same calendar
//! (`Civil`), so a token's time and an event's time compare as they should.

use std::fmt;

/// An instant: seconds and nanoseconds since 1970-01-01T00:00:00Z (negative before 1970; leap
/// seconds not counted, as in POSIX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    /// Whole seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second, below 10^9.
    pub nanos: u32,
}

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an RFC 3339 timestamp: {reason}")]
pub struct TimeError {
    /// The text (at most 64 characters of it).
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl Instant {
    /// The whole second `seconds` after the epoch.
    pub fn from_seconds(seconds: i64) -> Instant {
        Instant { seconds, nanos: 0 }
    }

    /// The instant `seconds` after the epoch.
    pub fn from_unix(seconds: i64, nanos: u32) -> Instant {
        Instant {
            seconds: seconds + i64::from(nanos / 1_000_000_000),
            nanos: nanos % 1_000_000_000,
        }
    }

    /// Nanoseconds since the epoch, saturating outside the range of `i128` (never, in practice).
    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// Parses RFC 3339 text.
    pub fn parse_rfc3339(text: &str) -> Result<Instant, TimeError> {
        let fail = |reason| TimeError {
            text: text.chars().take(64).collect(),
            reason,
        };
        let bytes = text.as_bytes();
        if bytes.len() < 20 || bytes.len() > 35 {
            return Err(fail("expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)"));
        }
        let number = |range: std::ops::Range<usize>| -> Result<i64, TimeError> {
            let digits = &bytes[range];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(fail("expected digits"));
            }
            Ok(digits
                .iter()
                .fold(0i64, |acc, digit| acc * 10 + i64::from(digit - b'0')))
        };
        if bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
            return Err(fail("expected YYYY-MM-DDTHH:MM:SS"));
        }
        if !matches!(bytes[10], b'T' | b't') {
            return Err(fail("expected 'T' between date and time"));
        }
        let year = number(0..4)?;
        let month = number(5..7)?;
        let day = number(8..10)?;
        let hour = number(11..13)?;
        let minute = number(14..16)?;
        let second = number(17..19)?;
        if !(1..=12).contains(&month) {
            return Err(fail("month must be 01 to 12"));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(fail("day is not in that month"));
        }
        if hour > 23 || minute > 59 || second > 60 {
            return Err(fail("time of day out of range"));
        }
        let mut position = 19;
        let mut nanos: u32 = 0;
        if bytes[position] == b'.' {
            position += 1;
            let start = position;
            while position < bytes.len() && bytes[position].is_ascii_digit() {
                position += 1;
            }
            let digits = &bytes[start..position];
            if digits.is_empty() || digits.len() > 9 {
                return Err(fail("a fraction of a second needs 1 to 9 digits"));
            }
            for index in 0..9 {
                let digit = digits.get(index).map_or(0, |digit| u32::from(digit - b'0'));
                nanos = nanos * 10 + digit;
            }
        }
        let offset_seconds = match &bytes[position..] {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let digits = [*h1, *h2, *m1, *m2];
                if !digits.iter().all(u8::is_ascii_digit) {
                    return Err(fail("expected digits in the offset"));
                }
                let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
                let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
                if hours > 23 || minutes > 59 {
                    return Err(fail("offset out of range"));
                }
                let magnitude = hours * 3600 + minutes * 60;
                if *sign == b'+' {
                    magnitude
                } else {
                    -magnitude
                }
            }
            _ => return Err(fail("expected 'Z' or an offset ±HH:MM")),
        };
        let days = days_from_civil(year, month, day);
        // A leap second (second 60) is the same instant as the first second of the next minute
        // for ordering purposes; Unix time has no other way to write it.
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
        Ok(Instant { seconds, nanos })
    }

    /// RFC 3339 text in UTC (`Z`), with the fraction written only when non-zero (as few digits
    /// as needed, in groups of three: milliseconds, microseconds or nanoseconds).
    pub fn to_rfc3339(&self) -> String {
        let mut text = String::with_capacity(30);
        self.write_rfc3339(&mut text);
        text
    }

    /// Appends [`Instant::to_rfc3339`] to `out` (the log server writes one into every event
    /// leaf, so it is written digit by digit, without formatting machinery). The text has no
    /// character that JSON escapes.
    pub fn write_rfc3339(&self, out: &mut String) {
        self.write_date_and_time(out);
        if self.nanos != 0 {
            out.push('.');
            if self.nanos.is_multiple_of(1_000_000) {
                push_digits(out, u64::from(self.nanos / 1_000_000), 3);
            } else if self.nanos.is_multiple_of(1_000) {
                push_digits(out, u64::from(self.nanos / 1_000), 6);
            } else {
                push_digits(out, u64::from(self.nanos), 9);
            }
        }
        out.push('Z');
    }

    /// RFC 3339 text in UTC with the fraction's trailing zeros dropped (`.72`, where
    /// [`Instant::to_rfc3339`] writes `.720`): the precision a GeneralizedTime carries (X.690
    /// §11.7), so that a timestamp token's time is shown as the token states it.
    pub fn to_rfc3339_trimmed(&self) -> String {
        let mut text = String::with_capacity(30);
        self.write_date_and_time(&mut text);
        push_trimmed_fraction(&mut text, self.nanos);
        text.push('Z');
        text
    }

    /// `YYYY-MM-DDTHH:MM:SS` in UTC.
    fn write_date_and_time(&self, out: &mut String) {
        let civil = Civil::from_unix(self.seconds);
        if !(0..=9999).contains(&civil.year) {
            // Outside RFC 3339's years (an instant made from a Unix time, not parsed).
            let _ = fmt::Write::write_fmt(out, format_args!("{:04}", civil.year));
        } else {
            push_digits(out, civil.year as u64, 4);
        }
        out.push('-');
        push_digits(out, u64::from(civil.month), 2);
        out.push('-');
        push_digits(out, u64::from(civil.day), 2);
        out.push('T');
        push_digits(out, u64::from(civil.hour), 2);
        out.push(':');
        push_digits(out, u64::from(civil.minute), 2);
        out.push(':');
        push_digits(out, u64::from(civil.second), 2);
    }
}

/// Appends `.` and the fraction digits of `nanos` without trailing zeros, or nothing if zero.
pub(crate) fn push_trimmed_fraction(text: &mut String, nanos: u32) {
    if nanos == 0 {
        return;
    }
    let digits = format!("{nanos:09}");
    text.push('.');
    text.push_str(digits.trim_end_matches('0'));
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u64, width: u32) {
    let mut place = 10u64.pow(width - 1);
    while place > 0 {
        out.push(char::from(b'0' + (value / place % 10) as u8));
        place /= 10;
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_rfc3339())
    }
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1 to 12) of `year`, proleptic Gregorian.
pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A broken-down UTC time of the proleptic Gregorian calendar: what RFC 3339 and
/// GeneralizedTime text both spell out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    /// The date and time of day of `seconds` since the epoch.
    pub(crate) fn from_unix(seconds: i64) -> Civil {
        let second_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        Civil {
            year,
            month: month as u32,
            day: day as u32,
            hour: (second_of_day / 3600) as u32,
            minute: (second_of_day / 60 % 60) as u32,
            second: (second_of_day % 60) as u32,
        }
    }

    /// Seconds since the epoch; the fields must already be in range.
    pub(crate) fn to_unix(self) -> i64 {
        days_from_civil(self.year, i64::from(self.month), i64::from(self.day)) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_examples() {
        // RFC 3339 §5.8 examples.
        let cases = [
            ("1985-04-12T23:20:50.52Z", 482_196_050, 520_000_000),
            ("1996-12-19T16:39:57-08:00", 851_042_397, 0),
            ("1990-12-31T23:59:60Z", 662_688_000, 0),
            ("1990-12-31T15:59:60-08:00", 662_688_000, 0),
            // Checked against Python's datetime.fromisoformat(...).timestamp().
            ("1937-01-01T12:00:27.87+00:20", -1_041_337_173, 870_000_000),
            ("1970-01-01T00:00:00Z", 0, 0),
        ];
        for (text, seconds, nanos) in cases {
            assert_eq!(
                Instant::parse_rfc3339(text),
                Ok(Instant { seconds, nanos }),
                "{text}"
            );
        }
    }

    /// The formatting as first written, with `format!`: the digit-by-digit writer must agree.
    fn formatted(instant: Instant) -> String {
        let days = instant.seconds.div_euclid(86_400);
        let second_of_day = instant.seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let mut text = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        );
        if instant.nanos != 0 {
            if instant.nanos.is_multiple_of(1_000_000) {
                text.push_str(&format!(".{:03}", instant.nanos / 1_000_000));
            } else if instant.nanos.is_multiple_of(1_000) {
                text.push_str(&format!(".{:06}", instant.nanos / 1_000));
            } else {
                text.push_str(&format!(".{:09}", instant.nanos));
            }
        }
        text + "Z"
    }

    #[test]
    fn writes_digit_by_digit_what_format_writes() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Years 0000 to 9999 and beyond on both sides, and every fraction group.
        for round in 0..200_000u64 {
            let seconds = (next() % 640_000_000_000) as i64 - 320_000_000_000;
            let nanos = match round % 4 {
                0 => 0,
                1 => (next() % 1000) as u32 * 1_000_000,
                2 => (next() % 1_000_000) as u32 * 1000,
                _ => (next() % 1_000_000_000) as u32,
            };
            let instant = Instant { seconds, nanos };
            assert_eq!(
                instant.to_rfc3339(),
                formatted(instant),
                "{seconds} {nanos}"
            );
        }
        for instant in [
            Instant::from_unix(-62_167_219_200, 0),
            Instant::from_unix(253_402_300_799, 999_999_999),
            Instant::from_unix(-1, 1),
        ] {
            assert_eq!(instant.to_rfc3339(), formatted(instant));
        }
    }

    #[test]
    fn formats_in_utc_with_minimal_fraction_groups() {
        assert_eq!(
            Instant::from_unix(0, 0).to_rfc3339(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            Instant::from_unix(482_196_050, 520_000_000).to_rfc3339(),
            "1985-04-12T23:20:50.520Z"
        );
        assert_eq!(
            Instant::from_unix(1_764_000_000, 1_500).to_rfc3339(),
            "2025-11-24T16:00:00.000001500Z"
        );
        assert_eq!(
            Instant::from_unix(-1, 0).to_rfc3339(),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn trimmed_text_differs_only_in_the_fraction_s_trailing_zeros() {
        for (instant, grouped, trimmed) in [
            (
                Instant::from_unix(1_764_070_233, 720_000_000),
                ".720Z",
                ".72Z",
            ),
            (
                Instant::from_unix(1_764_070_233, 1_500),
                ".000001500Z",
                ".0000015Z",
            ),
            (
                Instant::from_unix(1_764_070_233, 123_456_789),
                ".123456789Z",
                ".123456789Z",
            ),
            (Instant::from_unix(1_764_070_233, 0), "33Z", "33Z"),
        ] {
            let (full, short) = (instant.to_rfc3339(), instant.to_rfc3339_trimmed());
            assert!(full.ends_with(grouped), "{full}");
            assert!(short.ends_with(trimmed), "{short}");
            assert_eq!(full[..19], short[..19]);
            assert_eq!(Instant::parse_rfc3339(&short), Ok(instant));
        }
    }

    #[test]
    fn round_trips_every_day_for_a_thousand_years() {
        let start = days_from_civil(1600, 1, 1);
        let end = days_from_civil(2600, 1, 1);
        for day in start..end {
            let instant = Instant::from_unix(day * 86_400 + 45_296, 7_000_000);
            assert_eq!(
                Instant::parse_rfc3339(&instant.to_rfc3339()),
                Ok(instant),
                "day {day}"
            );
        }
    }

    #[test]
    fn rejects_what_rfc3339_does_not_allow() {
        for bad in [
            "",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:61Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567890Z",
            "2024-01-01T00:00:00+0100",
            "2024-01-01T00:00:00+24:00",
            "24-01-01T00:00:00Z",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert!(Instant::parse_rfc3339(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Instant::parse_rfc3339("2024-02-29t00:00:00z").is_ok());
    }
}
