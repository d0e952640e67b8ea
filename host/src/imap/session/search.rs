//! Finding messages by date: `UID SEARCH SINCE` (RFC 9051 §6.4.4), for date-windowed syncs.

use super::{MailboxOpening, Session, ensure_ok};
use crate::imap::command::Command;
use crate::imap::error::ImapError;
use crate::imap::response::Untagged;
use crate::imap::uidset::{self, UidRange};

/// The last day IMAP's four-digit years can name (9999-12-31, unix seconds).
const LAST_IMAP_DAY: i64 = 253_402_214_400;

impl Session {
    /// UIDs of the messages whose internal date is on or after the day of `since` (unix
    /// seconds, UTC; SEARCH compares dates only): EXAMINE and `UID SEARCH SINCE d-Mon-yyyy`
    /// pipelined, as ESEARCH ranges when offered (RFC 4731). The EXAMINE is fresh for the
    /// reason given at [`fetch_summaries`](Self::fetch_summaries).
    pub async fn uids_since(
        &mut self,
        raw_name: &str,
        since: i64,
    ) -> Result<Vec<UidRange>, ImapError> {
        let result = async {
            self.begin().await?;
            let found = self.uids_since_inner(raw_name, since).await;
            self.explain_refusal(raw_name, found).await
        }
        .await;
        self.end(result)
    }

    async fn uids_since_inner(
        &mut self,
        raw_name: &str,
        since: i64,
    ) -> Result<Vec<UidRange>, ImapError> {
        let criteria = format!(" SINCE {}", imap_date(since));
        let search = if self.capabilities.esearch {
            self.command("UID SEARCH").raw(" RETURN (ALL)").raw(&criteria).end()
        } else {
            self.command("UID SEARCH").raw(&criteria).end()
        };
        let ranges = self.examine_and_search(raw_name, search).await?;
        // one sorted, merged list whichever form the server answered in
        let uids: Vec<u32> = uidset::expand(&ranges).collect();
        Ok(uidset::ranges_of(&uids))
    }

    /// A fresh EXAMINE of `raw_name` pipelined with `search` (a `UID SEARCH`, with or without
    /// `RETURN (ALL)`): the matching UIDs as ranges, from ESEARCH or plain SEARCH answers,
    /// unsorted and possibly overlapping.
    pub(super) async fn examine_and_search(
        &mut self,
        raw_name: &str,
        search: Command,
    ) -> Result<Vec<UidRange>, ImapError> {
        let examine = self.examine_command(raw_name, None);
        let search_tag = search.tag.clone();
        let mut opening = MailboxOpening::new(raw_name);
        let mut ranges: Vec<UidRange> = Vec::new();
        let mut numbers: Vec<u32> = Vec::new();
        let done = self
            .execute(&[examine, search], &mut |data| match data {
                Untagged::ESearch(result) if result.tag.as_deref() == Some(search_tag.as_str()) => {
                    ranges.extend(result.all.unwrap_or_default());
                    None
                }
                Untagged::Search { numbers: found, .. } => {
                    numbers.extend(found);
                    None
                }
                other => opening.take(other),
            })
            .await?;
        let [examined, searched] = <[_; 2]>::try_from(done)
            .map_err(|_| ImapError::Protocol("missing completions".to_string()))?;
        self.finish_open(opening, &examined)?;
        ensure_ok(&searched, "UID SEARCH")?;
        ranges.extend(uidset::ranges_of(&numbers));
        Ok(ranges)
    }
}

/// `date = date-day "-" date-month "-" date-year` (RFC 9051 §9), e.g. `7-Mar-2026`, of the
/// UTC day holding `unix_seconds` (clamped to the years IMAP can write).
pub(super) fn imap_date(unix_seconds: i64) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix_seconds.clamp(0, LAST_IMAP_DAY).div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let month_name = usize::try_from(month - 1).ok().and_then(|index| MONTHS.get(index));
    format!("{day}-{}-{year:04}", month_name.unwrap_or(&"Jan"))
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::response::parser::parse_internal_date;

    #[test]
    fn dates_are_utc_days_in_imap_spelling() {
        assert_eq!(imap_date(0), "1-Jan-1970");
        assert_eq!(imap_date(86_399), "1-Jan-1970");
        assert_eq!(imap_date(951_782_400), "29-Feb-2000");
        assert_eq!(imap_date(1_772_841_600 + 3_600), "7-Mar-2026");
        assert_eq!(imap_date(-5), "1-Jan-1970");
        assert_eq!(imap_date(i64::MAX), "31-Dec-9999");
    }

    #[test]
    fn dates_round_trip_through_the_internal_date_parser() {
        for days in (0..200_000).step_by(997) {
            let seconds = days * 86_400;
            let text = format!("{} 00:00:00 +0000", imap_date(seconds + 43_210));
            assert_eq!(parse_internal_date(text.as_bytes()), Some(seconds), "{text}");
        }
    }
}
