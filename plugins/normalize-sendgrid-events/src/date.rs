//! UTC calendar dates from unix seconds, for the `dt=YYYY-MM-DD` partition column.
//!
//! The conversion is Howard Hinnant's `civil_from_days` (public domain, exact over the proleptic
//! Gregorian calendar); a date crate would be a large dependency for twenty lines.

const SECONDS_PER_DAY: i64 = 86_400;

/// The last second of 9999-12-31 UTC: later instants need a five-digit year, which neither the
/// partition layout nor Athena's date type accepts.
pub const LAST_SUPPORTED_TIMESTAMP: i64 = 253_402_300_799;

/// Why a timestamp has no partition date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("before 1970-01-01, so not a SendGrid event time")]
    BeforeEpoch,
    #[error("after the year 9999")]
    AfterYear9999,
}

/// A date as `YYYY-MM-DD`, held without an allocation: one is made for every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateText([u8; 10]);

impl std::ops::Deref for DateText {
    type Target = str;

    fn deref(&self) -> &str {
        // Only ASCII digits and dashes are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The UTC date of `unix_seconds` as `YYYY-MM-DD`.
///
/// # Errors
/// A negative timestamp (SendGrid reports events of mail it sent, never before 1970) or one
/// after the year 9999.
pub fn utc_date(unix_seconds: i64) -> Result<DateText, DateError> {
    if unix_seconds < 0 {
        return Err(DateError::BeforeEpoch);
    }
    if unix_seconds > LAST_SUPPORTED_TIMESTAMP {
        return Err(DateError::AfterYear9999);
    }
    let (year, month, day) = civil_from_days(unix_seconds / SECONDS_PER_DAY);
    let mut text = *b"0000-00-00";
    // In range: year 1970..=9999, month 1..=12, day 1..=31.
    let digit = |value: i64| b'0' + (value % 10) as u8;
    let year = year.clamp(0, 9999);
    text[0] = digit(year / 1000);
    text[1] = digit(year / 100);
    text[2] = digit(year / 10);
    text[3] = digit(year);
    text[5] = digit(i64::from(month) / 10);
    text[6] = digit(i64::from(month));
    text[8] = digit(i64::from(day) / 10);
    text[9] = digit(i64::from(day));
    Ok(DateText(text))
}

/// The (year, month, day) of the day `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // day is in 1..=31 and month in 1..=12 by construction.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let cases = [
            (0, "1970-01-01"),
            (86_399, "1970-01-01"),
            (86_400, "1970-01-02"),
            (951_782_400, "2000-02-29"),
            (951_868_800, "2000-03-01"),
            (1_513_299_569, "2017-12-15"),
            (1_709_164_800, "2024-02-29"),
            (4_107_542_400, "2100-03-01"),
            (LAST_SUPPORTED_TIMESTAMP, "9999-12-31"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(utc_date(seconds).as_deref(), Ok(expected), "{seconds}");
        }
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // Walk 1970..2100 day by day and check the calendar never skips or repeats.
        let days_in_month = |year: i64, month: u32| match month {
            2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut expected = (1970, 1, 1);
        for days in 0..47_482 {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            let (year, month, day) = expected;
            expected = if day < days_in_month(year, month) {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
        }
    }

    #[test]
    fn out_of_range_timestamps_are_refused() {
        assert_eq!(utc_date(-1), Err(DateError::BeforeEpoch));
        assert_eq!(utc_date(LAST_SUPPORTED_TIMESTAMP + 1), Err(DateError::AfterYear9999));
        assert_eq!(utc_date(i64::MAX), Err(DateError::AfterYear9999));
    }
}
