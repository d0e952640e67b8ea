//! IMAP flags and keywords (RFC 3501 §2.3.2) mapped onto Email fields: Read, Flag, IsDraft,
//! LastVerbExecuted and Categories (MS-ASEMAIL §2.2.2.16, §2.2.2.34, §2.2.2.44, §2.2.2.58).

use super::item::{Flag, FlagStatus, LastVerb};
use super::limits::{MAX_CATEGORIES, MAX_TEXT_FIELD_CHARS};
use super::sanitize::clean_field;

/// What Exchange writes as FlagType for a plain follow-up flag.
const FOLLOW_UP_FLAG_TYPE: &str = "Flag for follow up";

/// A completed follow-up flag. IMAP has only `\Flagged` (active), so completion is this
/// keyword (an eas-edge convention, not a registered one), set without `\Flagged`.
pub const FLAG_COMPLETE_KEYWORD: &str = "$FlagComplete";

/// The dates of a follow-up flag, one keyword each: the prefix and the instant in UTC as
/// `YYYYMMDDTHHMMSSZ`, e.g. `$FlagDue.20260315T070000Z`. Start and due go with `\Flagged`,
/// the completion time with [`FLAG_COMPLETE_KEYWORD`].
const FLAG_START_PREFIX: &str = "$FlagStart.";
const FLAG_DUE_PREFIX: &str = "$FlagDue.";
const FLAG_DONE_PREFIX: &str = "$FlagDone.";

/// Keywords with a protocol meaning (RFC 5788 registry, Thunderbird, Apple Mail, Dovecot):
/// they are state, not user categories.
const PROTOCOL_KEYWORDS: &[&str] = &[
    "$forwarded",
    "$mdnsent",
    "$junk",
    "$notjunk",
    "junk",
    "nonjunk",
    "notjunk",
    "$phishing",
    "$submitpending",
    "$submitted",
    "$hasattachment",
    "$hasnoattachment",
    "$important",
    "$autojunk",
    "$autonotjunk",
    "$istrusted",
    "$notify",
    "$muted",
    "$followed",
    "$mailflagbit0",
    "$mailflagbit1",
    "$mailflagbit2",
    "$answered",
    "$replied",
    "$seen",
    "$ispermanent",
    "$unseen",
    "forwarded",
    "redirected",
];

/// Thunderbird's default tags: shown to the user under these names.
const THUNDERBIRD_LABELS: [(&str, &str); 5] = [
    ("$label1", "Important"),
    ("$label2", "Work"),
    ("$label3", "Personal"),
    ("$label4", "To Do"),
    ("$label5", "Later"),
];

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MailboxState {
    pub read: bool,
    pub flag: Flag,
    pub is_draft: bool,
    pub last_verb: LastVerb,
    pub categories: Vec<String>,
}

pub fn mailbox_state(flags: &[String]) -> MailboxState {
    let has = |wanted: &str| flags.iter().any(|f| f.trim().eq_ignore_ascii_case(wanted));
    let dated = |prefix: &str| flags.iter().find_map(|f| keyword_instant(f.trim(), prefix));
    let flag = if has("\\Flagged") {
        Flag {
            status: FlagStatus::Active,
            flag_type: Some(FOLLOW_UP_FLAG_TYPE.to_owned()),
            start_date: dated(FLAG_START_PREFIX),
            due_date: dated(FLAG_DUE_PREFIX),
            ..Flag::default()
        }
    } else if has(FLAG_COMPLETE_KEYWORD) {
        Flag {
            status: FlagStatus::Complete,
            complete_time: dated(FLAG_DONE_PREFIX),
            ..Flag::default()
        }
    } else {
        Flag::default()
    };
    // IMAP cannot tell reply from reply-all, nor which verb came last: a reply wins.
    let last_verb = if has("\\Answered") {
        LastVerb::ReplyToSender
    } else if has("$Forwarded") || has("Forwarded") {
        LastVerb::Forward
    } else {
        LastVerb::Unknown
    };
    MailboxState {
        read: has("\\Seen"),
        flag,
        is_draft: has("\\Draft"),
        last_verb,
        categories: categories(flags),
    }
}

fn categories(flags: &[String]) -> Vec<String> {
    let mut categories: Vec<String> = Vec::new();
    for keyword in flags.iter().map(|f| f.trim()) {
        if categories.len() >= MAX_CATEGORIES {
            break;
        }
        if !is_category_keyword(keyword) {
            continue;
        }
        let lower = keyword.to_ascii_lowercase();
        let name = THUNDERBIRD_LABELS.iter().find(|(label, _)| *label == lower).map_or_else(
            || clean_field(keyword, MAX_TEXT_FIELD_CHARS),
            |(_, name)| (*name).to_owned(),
        );
        if !categories.iter().any(|c| c.eq_ignore_ascii_case(&name)) {
            categories.push(name);
        }
    }
    categories
}

/// The IMAP keyword to store for a category a client sets (the inverse of the mapping above),
/// or `None` when the category cannot be an IMAP keyword (RFC 3501 atoms: no spaces, no
/// specials, ASCII).
pub fn keyword_for_category(category: &str) -> Option<String> {
    if let Some((label, _)) =
        THUNDERBIRD_LABELS.iter().find(|(_, name)| name.eq_ignore_ascii_case(category))
    {
        return Some((*label).to_owned());
    }
    let is_atom_char = |c: char| c.is_ascii_graphic() && !"(){%*\"\\]".contains(c);
    let lower = category.to_ascii_lowercase();
    (!category.is_empty()
        && !category.starts_with('\\')
        && category.chars().all(is_atom_char)
        && !PROTOCOL_KEYWORDS.contains(&lower.as_str())
        && !is_flag_keyword(category))
    .then(|| category.to_owned())
}

/// Whether `keyword` shows as a category: not a system flag, a protocol keyword or one of the
/// follow-up flag's keywords.
pub fn is_category_keyword(keyword: &str) -> bool {
    let keyword = keyword.trim();
    let lower = keyword.to_ascii_lowercase();
    !keyword.is_empty()
        && !keyword.starts_with('\\')
        && !PROTOCOL_KEYWORDS.contains(&lower.as_str())
        && !is_flag_keyword(keyword)
}

/// Whether `keyword` is one of the follow-up flag's own keywords (completion and dates): they
/// are replaced whenever a client sets the flag, and are never categories.
pub fn is_flag_keyword(keyword: &str) -> bool {
    let lower = keyword.trim().to_ascii_lowercase();
    lower == FLAG_COMPLETE_KEYWORD.to_ascii_lowercase()
        || [FLAG_START_PREFIX, FLAG_DUE_PREFIX, FLAG_DONE_PREFIX]
            .iter()
            .any(|prefix| lower.starts_with(&prefix.to_ascii_lowercase()))
}

/// What stores `flag` in IMAP: `\Flagged` plus start/due keywords when active,
/// [`FLAG_COMPLETE_KEYWORD`] plus the completion keyword when complete, nothing when cleared.
/// The first entry is the status; the rest are dates (a server short of keyword slots may be
/// given the status alone). The inverse of the Flag part of [`mailbox_state`].
pub fn flag_keywords(flag: &Flag) -> Vec<String> {
    let dated = |prefix: &str, instant: Option<i64>| {
        instant.map(|seconds| format!("{prefix}{}", compact_instant(seconds)))
    };
    match flag.status {
        FlagStatus::Cleared => Vec::new(),
        FlagStatus::Active => std::iter::once(Some("\\Flagged".to_owned()))
            .chain([
                dated(FLAG_START_PREFIX, flag.start_date),
                dated(FLAG_DUE_PREFIX, flag.due_date),
            ])
            .flatten()
            .collect(),
        FlagStatus::Complete => {
            [Some(FLAG_COMPLETE_KEYWORD.to_owned()), dated(FLAG_DONE_PREFIX, flag.complete_time)]
                .into_iter()
                .flatten()
                .collect()
        }
    }
}

/// `YYYYMMDDTHHMMSSZ` (keywords are atoms: no `:`), clamped to four-digit years.
fn compact_instant(seconds: i64) -> String {
    // format_eas_datetime gives YYYY-MM-DDTHH:MM:SS.000Z.
    let full = super::format_eas_datetime(seconds);
    let kept: String = full.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    // 8 date digits, T, 6 time digits (the milliseconds are dropped).
    format!("{}Z", kept.get(..15).unwrap_or(&kept))
}

/// The instant of a dated flag keyword with `prefix`, if it is one.
fn keyword_instant(keyword: &str, prefix: &str) -> Option<i64> {
    let head = keyword.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let text = keyword.get(prefix.len()..)?.as_bytes();
    if text.len() != 16 || text[8] != b'T' || !text[15].eq_ignore_ascii_case(&b'Z') {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let slice = &text[range];
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(slice).ok()?.parse().ok()
    };
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let date = mail_parser::DateTime {
        year: u16::try_from(year).ok()?,
        month: month as u8,
        day: day as u8,
        hour: hour as u8,
        minute: minute as u8,
        second: second.min(59) as u8,
        tz_before_gmt: false,
        tz_hour: 0,
        tz_minute: 0,
    };
    Some(date.to_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> Vec<String> {
        list.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn system_flags_map_to_fields() {
        let state = mailbox_state(&flags(&["\\Seen", "\\Flagged", "\\Answered", "\\Draft"]));
        assert!(state.read && state.is_draft);
        assert_eq!(state.flag.status, FlagStatus::Active);
        assert_eq!(state.flag.flag_type.as_deref(), Some("Flag for follow up"));
        assert_eq!(state.last_verb, LastVerb::ReplyToSender);
        assert!(state.categories.is_empty());

        let state = mailbox_state(&flags(&["$Forwarded"]));
        assert!(!state.read);
        assert_eq!(state.flag, Flag::default());
        assert_eq!(state.last_verb, LastVerb::Forward);
    }

    #[test]
    fn keywords_become_categories() {
        let state = mailbox_state(&flags(&[
            "\\Recent",
            "$label1",
            "$Junk",
            "$MDNSent",
            "Project-X",
            "project-x",
            "NonJunk",
            "$label4",
        ]));
        assert_eq!(state.categories, ["Important", "Project-X", "To Do"]);
    }

    #[test]
    fn follow_up_flags_round_trip_through_keywords() {
        let active = Flag {
            status: FlagStatus::Active,
            flag_type: Some("Flag for follow up".to_owned()),
            start_date: Some(1_773_532_800),
            due_date: Some(1_773_558_000),
            ..Flag::default()
        };
        let keywords = flag_keywords(&active);
        assert_eq!(
            keywords,
            ["\\Flagged", "$FlagStart.20260315T000000Z", "$FlagDue.20260315T070000Z"]
        );
        let mut stored = keywords.clone();
        stored.push("\\Seen".to_owned());
        let state = mailbox_state(&stored);
        assert_eq!(state.flag, active);
        assert!(state.categories.is_empty(), "flag keywords are not categories");

        let complete = Flag {
            status: FlagStatus::Complete,
            complete_time: Some(1_773_558_000),
            ..Flag::default()
        };
        let keywords = flag_keywords(&complete);
        assert_eq!(keywords, ["$FlagComplete", "$FlagDone.20260315T070000Z"]);
        assert_eq!(mailbox_state(&keywords).flag, complete);
        assert!(flag_keywords(&Flag::default()).is_empty());
        // \Flagged wins over a stale completion keyword; broken dates are ignored.
        let state = mailbox_state(&flags(&["\\Flagged", "$flagcomplete", "$FlagDue.2026X"]));
        assert_eq!(state.flag.status, FlagStatus::Active);
        assert_eq!(state.flag.due_date, None);
        assert!(is_flag_keyword("$flagdue.x") && !is_flag_keyword("$Flagged-ish"));
        assert_eq!(keyword_for_category("$FlagComplete"), None);
    }

    #[test]
    fn categories_map_back_to_keywords() {
        assert_eq!(keyword_for_category("To Do").as_deref(), Some("$label4"));
        assert_eq!(keyword_for_category("Project-X").as_deref(), Some("Project-X"));
        assert_eq!(keyword_for_category("two words"), None);
        assert_eq!(keyword_for_category("\\Seen"), None);
    }
}
