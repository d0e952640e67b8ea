//! Address fields as EAS wants them (MS-ASEMAIL §2.2.2): To/Cc comma-separated RFC 5322
//! mailboxes, ReplyTo and DisplayTo semicolon-separated, each at most 32 768 characters.
//! Groups are flattened into their members; RFC 2047 names are already decoded by the parser.

use mail_parser::{Addr, Address};

use super::limits::{MAX_ADDRESS_FIELD_CHARS, MAX_TEXT_FIELD_CHARS};
use super::sanitize::clean_field;

/// `"Name" <local@domain>` entries joined with `separator`; entries that would pass the field
/// limit are left out whole.
pub fn format_mailboxes(address: Option<&Address<'_>>, separator: &str) -> String {
    join_bounded(address, separator, format_mailbox)
}

/// Display names (the address when a mailbox has no name), `; `-separated (DisplayTo).
pub fn display_names(address: Option<&Address<'_>>) -> String {
    join_bounded(address, "; ", |addr| {
        let name = addr.name().map(|n| clean_field(n, MAX_TEXT_FIELD_CHARS));
        name.filter(|n| !n.is_empty())
            .or_else(|| addr.address().map(|a| clean_field(a, MAX_TEXT_FIELD_CHARS)))
            .filter(|n| !n.is_empty())
    })
}

/// The bare address of the first mailbox, lower-cased, for comparisons (Sender vs From).
pub fn first_address(address: Option<&Address<'_>>) -> Option<String> {
    address?.iter().find_map(|addr| addr.address()).map(|a| a.trim().to_ascii_lowercase())
}

fn join_bounded(
    address: Option<&Address<'_>>,
    separator: &str,
    render: impl Fn(&Addr<'_>) -> Option<String>,
) -> String {
    let mut joined = String::new();
    let mut joined_chars = 0;
    for entry in address.into_iter().flat_map(|a| a.iter()).filter_map(render) {
        let added_chars =
            entry.chars().count() + if joined.is_empty() { 0 } else { separator.len() };
        if joined_chars + added_chars > MAX_ADDRESS_FIELD_CHARS {
            break;
        }
        if !joined.is_empty() {
            joined.push_str(separator);
        }
        joined.push_str(&entry);
        joined_chars += added_chars;
    }
    joined
}

fn format_mailbox(addr: &Addr<'_>) -> Option<String> {
    let address = addr.address().map(|a| clean_field(a, MAX_TEXT_FIELD_CHARS));
    let name = addr.name().map(|n| clean_field(n, MAX_TEXT_FIELD_CHARS));
    match (name.filter(|n| !n.is_empty()), address.filter(|a| !a.is_empty())) {
        (Some(name), Some(address)) if !name.eq_ignore_ascii_case(&address) => {
            Some(format!("\"{}\" <{address}>", name.replace('\\', "\\\\").replace('"', "\\\"")))
        }
        (_, Some(address)) => Some(address),
        // A name without an address ("undisclosed-recipients") is not a mailbox.
        (_, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;

    use super::*;

    fn parse_to(header: &str) -> String {
        let raw = format!("To: {header}\r\n\r\n");
        let message = MessageParser::new().parse(raw.as_bytes());
        let to = message.as_ref().and_then(|m| m.to());
        format!("{}|{}", format_mailboxes(to, ", "), display_names(to))
    }

    #[test]
    fn formats_names_addresses_and_groups() {
        assert_eq!(
            parse_to("\"Doe, Jane\" <jane@example.com>, bob@example.com"),
            "\"Doe, Jane\" <jane@example.com>, bob@example.com|Doe, Jane; bob@example.com"
        );
        assert_eq!(
            parse_to("team: a@x.org, \"Q \\\"B\\\"\" <b@x.org>;"),
            "a@x.org, \"Q \\\"B\\\"\" <b@x.org>|a@x.org; Q \"B\""
        );
        assert_eq!(parse_to("undisclosed-recipients:;"), "|");
        assert_eq!(
            parse_to("=?UTF-8?B?w4lsaXNl?= <elise@example.fr>"),
            "\"Élise\" <elise@example.fr>|Élise"
        );
    }

    #[test]
    fn long_lists_stop_at_the_field_limit() {
        let many: Vec<String> = (0..5000).map(|i| format!("user{i}@example.com")).collect();
        let formatted = parse_to(&many.join(", "));
        let (to, _) = formatted.split_once('|').unwrap_or_default();
        assert!(to.len() <= MAX_ADDRESS_FIELD_CHARS && to.ends_with(".com"));
    }
}
