//! Dates for test messages: RFC 5322 `Date:` headers and IMAP INTERNALDATE, from unix seconds.

const DAY_NAMES: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTH_NAMES: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

struct Civil {
    year: i64,
    month: usize,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    weekday: &'static str,
}

/// Proleptic Gregorian calendar date of a day count since 1970-01-01 (days-from-civil inverted:
/// shift to March-based years so that the leap day is the last day of the year).
fn civil(unix: i64) -> Civil {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 { march_month + 3 } else { march_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month: (month - 1) as usize,
        day,
        hour: secs / 3600,
        minute: secs % 3600 / 60,
        second: secs % 60,
        weekday: DAY_NAMES[days.rem_euclid(7) as usize],
    }
}

fn offset_text(offset_minutes: i64) -> String {
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let abs = offset_minutes.abs();
    format!("{sign}{:02}{:02}", abs / 60, abs % 60)
}

/// `Mon, 02 Jun 2025 11:00:00 +0200` for the instant `unix`, shown in the zone `offset_minutes`.
pub fn rfc5322_date(unix: i64, offset_minutes: i64) -> String {
    let c = civil(unix + offset_minutes * 60);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} {}",
        c.weekday,
        c.day,
        MONTH_NAMES[c.month],
        c.year,
        c.hour,
        c.minute,
        c.second,
        offset_text(offset_minutes)
    )
}

/// IMAP date-time (APPEND's INTERNALDATE) in UTC: `02-Jun-2025 09:00:00 +0000`.
pub fn imap_date_time(unix: i64) -> String {
    let c = civil(unix);
    format!(
        "{:02}-{}-{} {:02}:{:02}:{:02} +0000",
        c.day, MONTH_NAMES[c.month], c.year, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc5322_date(0, 0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(1_748_854_800, 0), "Mon, 02 Jun 2025 09:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400, 0), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(imap_date_time(1_748_854_800), "02-Jun-2025 09:00:00 +0000");
    }

    #[test]
    fn offsets_shift_the_wall_clock_not_the_instant() {
        assert_eq!(rfc5322_date(1_748_854_800, 120), "Mon, 02 Jun 2025 11:00:00 +0200");
        assert_eq!(rfc5322_date(1_748_854_800, -570), "Sun, 01 Jun 2025 23:30:00 -0930");
    }
}
