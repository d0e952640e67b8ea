//! Header fields of the top-level message that feed the Email item: subject and thread topic,
//! importance, the Message-ID chain used for conversations, and the sent date.

use mail_parser::{HeaderValue, Message};

use super::item::Importance;
use super::limits::MAX_TEXT_FIELD_CHARS;
use super::params::decode_encoded_words;
use super::sanitize::clean_field;

pub fn subject(message: &Message<'_>) -> String {
    message.subject().map(|s| clean_field(s, MAX_TEXT_FIELD_CHARS)).unwrap_or_default()
}

/// email:ThreadTopic (MS-ASEMAIL §2.2.2.77): Outlook's Thread-Topic header when present,
/// else the subject without its reply/forward prefixes.
pub fn thread_topic(message: &Message<'_>, subject: &str) -> String {
    match raw_header(message, "Thread-Topic") {
        Some(topic) => clean_field(&decode_encoded_words(topic), MAX_TEXT_FIELD_CHARS),
        None => strip_reply_prefixes(subject).to_owned(),
    }
}

/// Reply and forward prefixes in the languages mail clients commonly write.
const REPLY_PREFIXES: &[&str] =
    &["re", "fw", "fwd", "aw", "wg", "sv", "vs", "antw", "doorst", "tr", "rif", "r", "enc"];

/// `Re: Fwd: [2] subject` → `subject`; also `RE[2]:` and full-width colons.
pub fn strip_reply_prefixes(subject: &str) -> &str {
    let mut rest = subject.trim();
    loop {
        let Some(colon) = rest.find([':', '：']) else {
            return rest;
        };
        let head = rest[..colon].trim();
        // An optional counter: `RE[2]:`.
        let (word, counter) = match head.find('[') {
            Some(bracket) => (head[..bracket].trim(), &head[bracket..]),
            None => (head, ""),
        };
        let counter_ok = counter.is_empty()
            || counter
                .strip_prefix('[')
                .and_then(|c| c.strip_suffix(']'))
                .is_some_and(|digits| digits.chars().all(|c| c.is_ascii_digit()));
        if !REPLY_PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(word)) || !counter_ok {
            return rest;
        }
        let colon_len = rest[colon..].chars().next().map_or(1, char::len_utf8);
        rest = rest[colon + colon_len..].trim_start();
    }
}

/// email:Importance (MS-ASEMAIL §2.2.2.38) from, in order: Importance (RFC 2156),
/// X-Priority, Priority (RFC 2156) and X-MSMail-Priority.
pub fn importance(message: &Message<'_>) -> Importance {
    let named = |value: &str| match value.trim().to_ascii_lowercase().as_str() {
        "high" | "urgent" => Some(Importance::High),
        "low" | "non-urgent" => Some(Importance::Low),
        "normal" => Some(Importance::Normal),
        _ => None,
    };
    raw_header(message, "Importance")
        .and_then(named)
        .or_else(|| {
            let level = raw_header(message, "X-Priority")?.trim().chars().next()?;
            match level {
                '1' | '2' => Some(Importance::High),
                '3' => Some(Importance::Normal),
                '4' | '5' => Some(Importance::Low),
                _ => None,
            }
        })
        .or_else(|| raw_header(message, "Priority").and_then(named))
        .or_else(|| raw_header(message, "X-MSMail-Priority").and_then(named))
        .unwrap_or(Importance::Normal)
}

/// Message-IDs of the thread, oldest first as References lists them.
pub struct ThreadIds {
    pub references: Vec<String>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

pub fn thread_ids(message: &Message<'_>) -> ThreadIds {
    ThreadIds {
        references: id_list(message.references()),
        in_reply_to: id_list(message.in_reply_to()).into_iter().next(),
        message_id: message.message_id().map(normalize_id).filter(|id| !id.is_empty()),
    }
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<&str> = match value {
        HeaderValue::Text(id) => vec![id.as_ref()],
        HeaderValue::TextList(ids) => ids.iter().map(|id| id.as_ref()).collect(),
        _ => Vec::new(),
    };
    ids.into_iter().map(normalize_id).filter(|id| !id.is_empty()).collect()
}

fn normalize_id(id: &str) -> String {
    clean_field(id.trim().trim_start_matches('<').trim_end_matches('>'), MAX_TEXT_FIELD_CHARS)
}

/// A header that mail-parser keeps raw (names it does not know), as text.
fn raw_header<'m>(message: &'m Message<'_>, name: &str) -> Option<&'m str> {
    message
        .headers()
        .iter()
        .find(|header| header.name().eq_ignore_ascii_case(name))
        .and_then(|header| header.value().as_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As stored mail is parsed.
    fn parse(raw: &str) -> Message<'_> {
        crate::email::header_parser().parse(raw.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn importance_from_each_header() {
        let cases = [
            ("Importance: High\r\n", Importance::High),
            ("importance: low\r\n", Importance::Low),
            ("X-Priority: 1 (Highest)\r\n", Importance::High),
            ("X-Priority: 5\r\n", Importance::Low),
            ("Priority: urgent\r\n", Importance::High),
            ("X-MSMail-Priority: Low\r\n", Importance::Low),
            ("Importance: bogus\r\nX-Priority: 2\r\n", Importance::High),
            ("Subject: none\r\n", Importance::Normal),
        ];
        for (headers, expected) in cases {
            let raw = format!("{headers}\r\nbody");
            assert_eq!(importance(&parse(&raw)), expected, "{headers}");
        }
    }

    #[test]
    fn reply_prefixes_are_stripped() {
        assert_eq!(strip_reply_prefixes("Re: Fwd: AW: Hello"), "Hello");
        assert_eq!(strip_reply_prefixes("RE[2]: Hello: world"), "Hello: world");
        assert_eq!(strip_reply_prefixes("Ticket: 42"), "Ticket: 42");
        assert_eq!(strip_reply_prefixes("Re："), "");
    }

    #[test]
    fn thread_ids_from_headers() {
        let message =
            parse("Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\n\r\n");
        let ids = thread_ids(&message);
        assert_eq!(ids.references, ["a@x", "b@x"]);
        assert_eq!(ids.in_reply_to.as_deref(), Some("b@x"));
        assert_eq!(ids.message_id.as_deref(), Some("c@x"));
    }

    #[test]
    fn thread_topic_header_wins() {
        let message = parse("Subject: Re: x\r\nThread-Topic: =?UTF-8?Q?caf=C3=A9?=\r\n\r\n");
        assert_eq!(thread_topic(&message, "Re: x"), "café");
        assert_eq!(thread_topic(&parse("Subject: Re: x\r\n\r\n"), "Re: x"), "x");
    }
}
