//! IMAP flags and keywords (RFC 3501 §2.3.2) mapped onto Email fields: Read, Flag, IsDraft,
//! LastVerbExecuted and Categories (MS-ASEMAIL §2.2.2.16, §2.2.2.34, §2.2.2.44, §2.2.2.58).

use super::item::{Flag, FlagStatus, LastVerb};
use super::limits::{MAX_CATEGORIES, MAX_TEXT_FIELD_CHARS};
use super::sanitize::clean_field;

/// What Exchange writes as FlagType for a plain follow-up flag.
const FOLLOW_UP_FLAG_TYPE: &str = "Flag for follow up";

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
    let flag = if has("\\Flagged") {
        Flag {
            status: FlagStatus::Active,
            flag_type: Some(FOLLOW_UP_FLAG_TYPE.to_owned()),
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
        let lower = keyword.to_ascii_lowercase();
        if keyword.is_empty()
            || keyword.starts_with('\\')
            || PROTOCOL_KEYWORDS.contains(&lower.as_str())
        {
            continue;
        }
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
    (!category.is_empty() && !category.starts_with('\\') && category.chars().all(is_atom_char))
        .then(|| category.to_owned())
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
    fn categories_map_back_to_keywords() {
        assert_eq!(keyword_for_category("To Do").as_deref(), Some("$label4"));
        assert_eq!(keyword_for_category("Project-X").as_deref(), Some("Project-X"));
        assert_eq!(keyword_for_category("two words"), None);
        assert_eq!(keyword_for_category("\\Seen"), None);
    }
}
