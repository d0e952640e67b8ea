//! Pure: a client's Change of a mail item (MS-ASEMAIL §3.1.5.4: only Read, Flag and
//! Categories may change) and the IMAP flags that store it.
//!
//! The mapping is the inverse of the read side (`email::flags`), so what a device sets comes
//! back unchanged on another device:
//! * Read ⇔ `\Seen`;
//! * Flag Status 2 (active) ⇔ `\Flagged`, with `$FlagStart.<instant>` / `$FlagDue.<instant>`
//!   keywords for the start and due dates; Status 1 (complete) ⇔ `$FlagComplete` (and no
//!   `\Flagged`) with `$FlagDone.<instant>` for the completion time; Status 0 or an empty
//!   Flag clears all of them. The instant is UTC, `YYYYMMDDTHHMMSSZ`; the UTC dates win over
//!   the local ones when both are sent. FlagType, reminders and ordinal dates are not kept
//!   (the read side always says "Flag for follow up");
//! * Categories ⇔ keywords (`email::keyword_for_category`, Thunderbird's `$label1`… for its
//!   five default tags); a category that cannot be an IMAP keyword (spaces, non-ASCII) is not
//!   stored.

use crate::email::{
    Flag, FlagStatus, flag_keywords, is_category_keyword, is_flag_keyword, keyword_for_category,
};
use eas_wbxml::Element;
use eas_wbxml::tags::{email, tasks};

/// Categories one item may carry (MS-ASEMAIL §2.2.2.16: at most 300).
const MAX_CATEGORIES: usize = 300;

/// What a client's Change asks for; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagEdit {
    pub read: Option<bool>,
    pub flag: Option<Flag>,
    pub categories: Option<Vec<String>>,
}

impl FlagEdit {
    /// Reads the ApplicationData of a Change; `None` when a value is malformed (item Status 6).
    /// Elements a client may not change on mail are ignored.
    pub fn parse(data: &Element) -> Option<FlagEdit> {
        let mut edit = FlagEdit::default();
        if let Some(read) = data.child(email::READ) {
            edit.read = Some(match read.text().map(str::trim) {
                Some("1") | Some("") | None => true,
                Some("0") => false,
                Some(_) => return None,
            });
        }
        if let Some(flag) = data.child(email::FLAG) {
            edit.flag = Some(parse_flag(flag)?);
        }
        if let Some(categories) = data.child(email::CATEGORIES) {
            let mut names: Vec<String> = Vec::new();
            for category in categories.children(email::CATEGORY) {
                let name = category.text().unwrap_or_default().trim();
                if !name.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    names.push(name.to_owned());
                }
                if names.len() > MAX_CATEGORIES {
                    return None;
                }
            }
            edit.categories = Some(names);
        }
        Some(edit)
    }

    pub fn is_empty(&self) -> bool {
        self.read.is_none() && self.flag.is_none() && self.categories.is_none()
    }

    /// This edit followed by `later`: what `later` sets wins.
    pub fn then(self, later: FlagEdit) -> FlagEdit {
        FlagEdit {
            read: later.read.or(self.read),
            flag: later.flag.or(self.flag),
            categories: later.categories.or(self.categories),
        }
    }
}

fn parse_flag(flag: &Element) -> Option<Flag> {
    if flag.child_elements().is_empty() {
        return Some(Flag::default());
    }
    let status = match flag.text_of(email::STATUS).map(str::trim) {
        None | Some("0") => FlagStatus::Cleared,
        Some("1") => FlagStatus::Complete,
        Some("2") => FlagStatus::Active,
        Some(_) => return None,
    };
    let instant = |utc, local| -> Option<Option<i64>> {
        match flag.text_of(utc).or_else(|| flag.text_of(local)) {
            Some(text) => parse_eas_datetime(text).map(Some),
            None => Some(None),
        }
    };
    let mut parsed = Flag { status, ..Flag::default() };
    parsed.flag_type = flag.text_of(email::FLAG_TYPE).map(|t| t.trim().to_owned());
    match status {
        FlagStatus::Cleared => {}
        FlagStatus::Active => {
            parsed.start_date = instant(tasks::UTC_START_DATE, tasks::START_DATE)?;
            parsed.due_date = instant(tasks::UTC_DUE_DATE, tasks::DUE_DATE)?;
        }
        FlagStatus::Complete => {
            parsed.complete_time = instant(email::COMPLETE_TIME, tasks::DATE_COMPLETED)?;
        }
    }
    Some(parsed)
}

/// An EAS dateTime (`YYYY-MM-DDTHH:MM:SS(.fff)Z`, MS-ASDTYPE §2.3; the compact
/// `YYYYMMDDTHHMMSSZ` is accepted too) as unix seconds.
pub fn parse_eas_datetime(text: &str) -> Option<i64> {
    let compact: String = text.trim().chars().filter(|c| !matches!(c, '-' | ':')).collect();
    let (date, time) = compact.split_once(['T', 't'])?;
    let time = time.trim_end_matches(['Z', 'z']);
    let time = time.split_once('.').map_or(time, |(whole, _)| whole);
    if date.len() != 8
        || time.len() != 6
        || !date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let number = |s: &str| s.parse::<u16>().ok();
    let (year, month, day) = (number(&date[..4])?, number(&date[4..6])?, number(&date[6..])?);
    let (hour, minute, second) = (number(&time[..2])?, number(&time[2..4])?, number(&time[4..])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let date = mail_parser::DateTime {
        year,
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

/// The STORE that applies an edit to a message with `current` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagPlan {
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// The part of `add` that only carries flag dates: a server short of keyword slots (Cyrus
    /// keeps 128 per folder) is asked again without them.
    pub optional: Vec<String>,
}

impl FlagPlan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// The plan without the optional keywords.
    pub fn without_optional(&self) -> FlagPlan {
        FlagPlan {
            add: self.add.iter().filter(|f| !contains(&self.optional, f)).cloned().collect(),
            remove: self.remove.clone(),
            optional: Vec::new(),
        }
    }

    /// The flags after the STORE.
    pub fn apply(&self, current: &[String]) -> Vec<String> {
        let mut flags: Vec<String> =
            current.iter().filter(|f| !contains(&self.remove, f)).cloned().collect();
        for flag in &self.add {
            if !contains(&flags, flag) {
                flags.push(flag.clone());
            }
        }
        flags
    }
}

fn contains(list: &[String], flag: &str) -> bool {
    list.iter().any(|f| f.trim().eq_ignore_ascii_case(flag.trim()))
}

/// What to add and remove so that a message with `current` flags shows `edit`.
pub fn plan(current: &[String], edit: &FlagEdit) -> FlagPlan {
    let mut wanted: Vec<String> = Vec::new();
    let mut unwanted: Vec<String> = Vec::new();
    let mut optional: Vec<String> = Vec::new();
    match edit.read {
        Some(true) => wanted.push("\\Seen".to_owned()),
        Some(false) => unwanted.push("\\Seen".to_owned()),
        None => {}
    }
    if let Some(flag) = &edit.flag {
        let keywords = flag_keywords(flag);
        optional.extend(keywords.iter().skip(1).cloned());
        unwanted.push("\\Flagged".to_owned());
        unwanted.extend(current.iter().filter(|f| is_flag_keyword(f)).cloned());
        wanted.extend(keywords);
    }
    if let Some(categories) = &edit.categories {
        let keywords: Vec<String> =
            categories.iter().filter_map(|name| keyword_for_category(name)).collect();
        unwanted.extend(current.iter().filter(|f| is_category_keyword(f)).cloned());
        wanted.extend(keywords);
    }
    let add: Vec<String> = dedup(wanted.iter().filter(|f| !contains(current, f)).cloned());
    let remove: Vec<String> = dedup(
        unwanted
            .iter()
            .filter(|f| contains(current, f) && !contains(&wanted, f))
            .map(|f| {
                // Remove the spelling the server has.
                current.iter().find(|c| c.trim().eq_ignore_ascii_case(f.trim())).unwrap_or(f)
            })
            .cloned(),
    );
    let optional = optional.into_iter().filter(|f| contains(&add, f)).collect();
    FlagPlan { add, remove, optional }
}

fn dedup(flags: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for flag in flags {
        if !contains(&out, &flag) {
            out.push(flag);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::MessageSummary;

    fn flags(list: &[&str]) -> Vec<String> {
        list.iter().map(|f| (*f).to_owned()).collect()
    }

    fn data(children: Vec<Element>) -> Element {
        Element::with_children(eas_wbxml::tags::air_sync::APPLICATION_DATA, children)
    }

    /// What the read side makes of flags: (read, flag, categories).
    fn seen_as(flags: &[String]) -> (bool, Flag, Vec<String>) {
        let summary = MessageSummary { uid: 1, flags: flags.to_vec(), ..Default::default() };
        let item = crate::email::convert(&summary, "1:1").item;
        (item.read, item.flag, item.categories)
    }

    #[test]
    fn parses_read_flag_and_categories() {
        let edit = FlagEdit::parse(&data(vec![
            Element::with_text(email::READ, "1"),
            Element::new(email::FLAG)
                .text_child(email::STATUS, "2")
                .text_child(email::FLAG_TYPE, "Follow up")
                .text_child(tasks::START_DATE, "2026-03-14T23:00:00.000Z")
                .text_child(tasks::UTC_START_DATE, "2026-03-15T00:00:00.000Z")
                .text_child(tasks::DUE_DATE, "2026-03-15T07:00:00.000Z"),
            Element::new(email::CATEGORIES)
                .text_child(email::CATEGORY, "Work")
                .text_child(email::CATEGORY, "work"),
        ]))
        .expect("valid");
        assert_eq!(edit.read, Some(true));
        let flag = edit.flag.expect("flag");
        assert_eq!(flag.status, FlagStatus::Active);
        assert_eq!(flag.start_date, Some(1_773_532_800), "UTC wins");
        assert_eq!(flag.due_date, Some(1_773_558_000));
        assert_eq!(edit.categories, Some(vec!["Work".to_owned()]));

        let cleared = FlagEdit::parse(&data(vec![Element::new(email::FLAG)])).expect("valid");
        assert_eq!(cleared.flag, Some(Flag::default()));
        assert!(FlagEdit::parse(&data(vec![])).expect("valid").is_empty());
        for bad in [
            data(vec![Element::with_text(email::READ, "yes")]),
            data(vec![Element::new(email::FLAG).text_child(email::STATUS, "7")]),
            data(vec![
                Element::new(email::FLAG)
                    .text_child(email::STATUS, "2")
                    .text_child(tasks::DUE_DATE, "tomorrow"),
            ]),
        ] {
            assert_eq!(FlagEdit::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_parse_in_both_forms() {
        assert_eq!(parse_eas_datetime("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_eas_datetime("20260315T070000Z"), Some(1_773_558_000));
        assert_eq!(parse_eas_datetime("2026-03-15T07:00:00Z"), Some(1_773_558_000));
        for bad in ["", "2026-03-15", "2026-13-01T00:00:00Z", "x026-03-15T07:00:00Z"] {
            assert_eq!(parse_eas_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn plans_are_minimal_and_round_trip_through_the_read_side() {
        let current = flags(&["\\Seen", "Project-X", "$label1", "$Forwarded"]);
        let edit = FlagEdit {
            read: Some(false),
            flag: Some(Flag {
                status: FlagStatus::Active,
                due_date: Some(1_773_558_000),
                ..Flag::default()
            }),
            categories: Some(vec!["Important".into(), "Later".into(), "two words".into()]),
        };
        let plan = plan(&current, &edit);
        assert_eq!(plan.add, ["\\Flagged", "$FlagDue.20260315T070000Z", "$label5"]);
        assert_eq!(plan.remove, ["\\Seen", "Project-X"]);
        assert_eq!(plan.optional, ["$FlagDue.20260315T070000Z"]);
        let after = plan.apply(&current);
        let (read, flag, categories) = seen_as(&after);
        assert!(!read);
        assert_eq!((flag.status, flag.due_date), (FlagStatus::Active, Some(1_773_558_000)));
        assert_eq!(categories, ["Important", "Later"]);
        assert!(after.iter().any(|f| f == "$Forwarded"), "protocol keywords stay");

        // Completing the flag drops \Flagged and the dates of the active flag.
        let complete = FlagEdit {
            flag: Some(Flag { status: FlagStatus::Complete, ..Flag::default() }),
            ..FlagEdit::default()
        };
        let done = super::plan(&after, &complete);
        assert_eq!(done.add, ["$FlagComplete"]);
        assert_eq!(done.remove, ["\\Flagged", "$FlagDue.20260315T070000Z"]);
        let (_, flag, _) = seen_as(&done.apply(&after));
        assert_eq!(flag.status, FlagStatus::Complete);
        // Nothing to do for what is already so.
        let same = FlagEdit { read: Some(false), ..FlagEdit::default() };
        assert!(super::plan(&after, &same).is_empty());
        assert_eq!(
            plan.without_optional().add,
            ["\\Flagged", "$label5"],
            "a server without room for the date keeps the status"
        );
    }
}
