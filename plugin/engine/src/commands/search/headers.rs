//! Header fields read straight from the first bytes of a message (the summary prefix): the
//! mailboxes of address fields, display names, and the root a thread hangs on. Only the
//! header block is parsed; broken or cut headers give less, never an error.

use mail_parser::{Address, HeaderValue, Message, MessageParser};

/// Mailboxes taken from one address field, at most (groups are flattened).
const MAX_MAILBOXES_PER_FIELD: usize = 500;

/// Longest display name or address kept, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// The header block of `raw`, parsed; `None` when there is none.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::new().parse_headers(raw)
}

/// One mailbox of an address field: a cleaned display name and a plausible address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

/// The mailboxes of an address field whose address looks like `local@domain`.
pub fn mailboxes(field: Option<&Address<'_>>) -> Vec<Mailbox> {
    field
        .into_iter()
        .flat_map(|field| field.iter())
        .take(MAX_MAILBOXES_PER_FIELD)
        .filter_map(|addr| {
            let address = addr.address().map(str::trim).filter(|a| is_address(a))?;
            let name = addr.name().map(clean).filter(|name| {
                !name.is_empty() && !name.eq_ignore_ascii_case(address) && !name.contains('@')
            });
            Some(Mailbox { name, address: address.to_owned() })
        })
        .collect()
}

/// Display names of an address field (the address where there is no name), `; `-separated
/// as email:DisplayTo is (MS-ASEMAIL §2.2.2.29).
pub fn display_names(field: Option<&Address<'_>>) -> String {
    let names: Vec<String> = field
        .into_iter()
        .flat_map(|field| field.iter())
        .take(MAX_MAILBOXES_PER_FIELD)
        .filter_map(|addr| {
            let name = addr.name().map(clean).filter(|name| !name.is_empty());
            name.or_else(|| addr.address().map(clean).filter(|a| !a.is_empty()))
        })
        .collect();
    names.join("; ")
}

/// `local@domain` with no spaces or controls, within SMTP's length limit.
pub fn is_address(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\",;".contains(c))
}

/// Whitespace collapsed, controls removed, quotes stripped, bounded.
pub fn clean(text: &str) -> String {
    let collapsed = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    collapsed.trim_matches(|c| c == '"' || c == '\'').trim().chars().take(MAX_NAME_CHARS).collect()
}

/// What a conversation hangs on (the rule of `email::conversation`): the first Message-ID of
/// References, else In-Reply-To, else the message's own Message-ID, else its subject without
/// reply prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadRoot {
    MessageId(String),
    Subject(String),
}

pub fn thread_root(message: &Message<'_>) -> Option<ThreadRoot> {
    let first_id = |value: &HeaderValue<'_>| match value {
        HeaderValue::Text(id) => Some(normalize_id(id)),
        HeaderValue::TextList(ids) => {
            ids.iter().map(|id| normalize_id(id)).find(|id| !id.is_empty())
        }
        _ => None,
    };
    let id = first_id(message.references())
        .filter(|id| !id.is_empty())
        .or_else(|| first_id(message.in_reply_to()).filter(|id| !id.is_empty()))
        .or_else(|| message.message_id().map(normalize_id).filter(|id| !id.is_empty()));
    if let Some(id) = id {
        return Some(ThreadRoot::MessageId(id));
    }
    let topic = strip_reply_prefixes(message.subject().unwrap_or_default());
    let topic = clean(topic);
    (!topic.is_empty()).then_some(ThreadRoot::Subject(topic))
}

fn normalize_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').chars().take(998).collect()
}

/// `Re: Fwd: AW: x` → `x`: the usual reply and forward prefixes, with `[n]` counters.
fn strip_reply_prefixes(mut subject: &str) -> &str {
    const PREFIXES: [&str; 9] = ["re", "fwd", "fw", "aw", "wg", "sv", "vs", "antw", "tr"];
    loop {
        let trimmed = subject.trim_start();
        let lower = trimmed.to_ascii_lowercase();
        let Some(prefix) = PREFIXES.iter().find(|p| lower.starts_with(*p)) else {
            return trimmed;
        };
        let mut rest = &trimmed[prefix.len()..];
        if let Some(counter) = rest.strip_prefix('[')
            && let Some(end) = counter.find(']')
        {
            rest = &counter[end + 1..];
        }
        let rest = rest.trim_start();
        match rest.strip_prefix(':').or_else(|| rest.strip_prefix('：')) {
            Some(after) => subject = after,
            None => return trimmed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_and_names() {
        let raw = b"From: \"Ann Lee\" <Ann@Example.org>\r\nTo: bob@example.org, \
=?UTF-8?Q?Zo=C3=AB?= <zoe@example.org>, not-an-address, Team: carl@example.org;\r\n\r\n";
        let message = parse(raw).expect("headers");
        let from = mailboxes(message.from());
        assert_eq!(from[0].name.as_deref(), Some("Ann Lee"));
        assert_eq!(from[0].address, "Ann@Example.org");
        let to: Vec<_> = mailboxes(message.to()).into_iter().map(|m| m.address).collect();
        assert_eq!(to, ["bob@example.org", "zoe@example.org", "carl@example.org"]);
        assert!(display_names(message.to()).starts_with("bob@example.org; Zoë"));
    }

    #[test]
    fn roots() {
        let reply =
            parse(b"Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\n\r\n")
                .expect("headers");
        assert_eq!(thread_root(&reply), Some(ThreadRoot::MessageId("a@x".into())));
        let broken = parse(b"Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\n\r\n").expect("headers");
        assert_eq!(thread_root(&broken), Some(ThreadRoot::MessageId("b@x".into())));
        let bare = parse(b"Subject: Re: AW: Budget\r\n\r\n").expect("headers");
        assert_eq!(thread_root(&bare), Some(ThreadRoot::Subject("Budget".into())));
        assert_eq!(strip_reply_prefixes("RE[2]: Fwd: x"), "x");
        assert_eq!(strip_reply_prefixes("Review: x"), "Review: x");
    }

    #[test]
    fn addresses() {
        assert!(is_address("a@b"));
        for bad in ["", "a", "@b", "a@", "a b@c", "<a@b>", "a@b\n"] {
            assert!(!is_address(bad), "{bad:?}");
        }
        assert_eq!(clean("  \"Ann \t Lee\" "), "Ann Lee");
    }
}
