//! EAS dateTime values and FILETIMEs from unix seconds, without a date crate and without a
//! clock: the engine only formats instants it is given.

/// 9999-12-31T23:59:59Z: the last instant with a four-digit year.
const LAST_FOUR_DIGIT_YEAR_SECOND: i64 = 253_402_300_799;
const SECONDS_PER_DAY: i64 = 86_400;
/// Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_EPOCH_OFFSET: i64 = 11_644_473_600;
const FILETIME_TICKS_PER_SECOND: u64 = 10_000_000;

/// `YYYY-MM-DDTHH:MM:SS.000Z` in UTC (MS-ASDTYPE §2.3: the pattern carries milliseconds).
/// Instants before 1970 or after year 9999 are clamped: the field must stay well-formed.
pub fn format_eas_datetime(unix_seconds: i64) -> String {
    let seconds = unix_seconds.clamp(0, LAST_FOUR_DIGIT_YEAR_SECOND);
    let days = seconds / SECONDS_PER_DAY;
    let second_of_day = seconds % SECONDS_PER_DAY;
    let (year, month, day) = civil_date_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Gregorian (year, month, day) of a count of days since 1970-01-01 (days ≥ 0).
///
/// Works in 400-year eras that start on March 1st, so the leap day is the last day of a
/// "year" and month lengths follow a fixed 153-day pattern per five months.
fn civil_date_from_days(days_since_epoch: i64) -> (i64, i64, i64) {
    // 1970-01-01 is day 719 468 counted from 0000-03-01.
    let days = days_since_epoch + 719_468;
    let era = days / 146_097;
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Windows FILETIME (100 ns ticks since 1601-01-01 UTC) of a unix instant, clamped like
/// [`format_eas_datetime`].
pub fn filetime_from_unix(unix_seconds: i64) -> u64 {
    let seconds = unix_seconds.clamp(0, LAST_FOUR_DIGIT_YEAR_SECOND) + FILETIME_UNIX_EPOCH_OFFSET;
    u64::try_from(seconds).unwrap_or(0) * FILETIME_TICKS_PER_SECOND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_eas_datetime(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_eas_datetime(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_eas_datetime(1_709_210_096), "2024-02-29T12:34:56.000Z");
        assert_eq!(format_eas_datetime(4_107_542_399), "2100-02-28T23:59:59.000Z");
        assert_eq!(format_eas_datetime(1_767_225_599), "2025-12-31T23:59:59.000Z");
    }

    #[test]
    fn clamps_out_of_range_instants() {
        assert_eq!(format_eas_datetime(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_eas_datetime(i64::MAX), "9999-12-31T23:59:59.000Z");
        assert_eq!(format_eas_datetime(i64::MIN), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // Walk day by day and check the calendar advances by exactly one day each time.
        let mut previous = civil_date_from_days(0);
        for days in 1..146_097 {
            let (year, month, day) = civil_date_from_days(days);
            let (py, pm, pd) = previous;
            let next_day_same_month = year == py && month == pm && day == pd + 1;
            let next_month = day == 1
                && ((year == py && month == pm + 1) || (year == py + 1 && month == 1 && pm == 12));
            assert!(next_day_same_month || next_month, "{previous:?} -> {:?}", (year, month, day));
            previous = (year, month, day);
        }
    }

    #[test]
    fn filetime_of_the_unix_epoch() {
        assert_eq!(filetime_from_unix(0), 116_444_736_000_000_000);
    }
}
