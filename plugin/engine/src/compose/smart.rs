//! SmartReply and SmartForward messages: the client's new message combined with the original
//! the server holds (MS-ASCMD §2.2.1.19, §2.2.1.20; EAS-NOTES §4.10).
//!
//! * The client's headers (To, Cc, Bcc, Subject, Importance, …) are kept byte for byte; its
//!   MIME framing is replaced by ours.
//! * Bodies are decoded through the email module (any charset, any transfer encoding) and
//!   written out as UTF-8: a text/plain alternative always, text/html as well when either side
//!   has HTML.
//! * Reply: the original's text follows the client's, quoted (`> ` lines in the text part, a
//!   `<blockquote type="cite">` in the HTML part) under an "On …, … wrote:" line. The
//!   original's inline images (cid: parts) come along so the quoted HTML still shows them; its
//!   other attachments do not (as Exchange and every mail client do).
//! * Forward: the original's text follows under a "Forwarded message" header block, unquoted,
//!   and every attachment of the original is attached again (decoded and re-encoded by
//!   mail-builder; embedded messages stay message/rfc822). Inline forwarding rather than
//!   attaching the whole original as message/rfc822 is what Exchange does and what phone users
//!   expect to see.
//! * Both set In-Reply-To (the original's Message-ID) and References (the original's
//!   References plus its Message-ID), so the answer threads with the original.

use crate::email::{
    self, BodyData, BodyPreference, BodyType, EmailItem, MessageSummary, MimeSupport,
    NativeBodyType,
};
use mail_builder::mime::MimePart;

use super::build::{self, AttachmentData, Boundaries};
use super::header_block::{HeaderBlock, normalize_line_endings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmartKind {
    Reply,
    Forward,
}

impl SmartKind {
    /// The IMAP flag the original gets once the answer is sent (what Sync reports as
    /// email2:LastVerbExecuted).
    pub fn flag(self) -> &'static str {
        match self {
            SmartKind::Reply => "\\Answered",
            SmartKind::Forward => "$Forwarded",
        }
    }
}

/// The top-level fields that describe the MIME framing; ours replace the client's.
const FRAMING_FIELDS: &[&str] = &[
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Content-ID",
    "Content-Description",
    "Content-Language",
    "Content-Location",
];

/// The message to send: the client's headers, threading headers, and a body made of the
/// client's text with the original below it. The original is taken by value: it is parsed in
/// place and its attachments move into the new message rather than being copied.
pub fn compose(
    kind: SmartKind,
    client_mime: &[u8],
    original_raw: Vec<u8>,
    boundaries: &mut Boundaries,
) -> Vec<u8> {
    let client_mime = normalize_line_endings(client_mime);
    let (client_block, _) = HeaderBlock::split(&client_mime);
    let mut block = client_block.without(FRAMING_FIELDS);
    set_threading(&mut block, &original_raw, false);
    block.push("MIME-Version", b"1.0");
    let date = original_date(&original_raw);
    let client = Content::of(client_mime.into_owned());
    let original = Content::of(original_raw);
    let attribution = Attribution::of(date, &original.item);

    let lead = client.text.trim_end();
    let gap = if lead.is_empty() { "" } else { "\n\n" };
    let text = match kind {
        SmartKind::Reply => {
            format!("{lead}{gap}{}\n{}", attribution.reply_line(), quote_lines(&original.text))
        }
        SmartKind::Forward => {
            format!("{lead}{gap}{}\n\n{}", attribution.forward_block_text(), original.text)
        }
    };
    let html = (client.html.is_some() || original.html.is_some()).then(|| {
        let client_html = client.html.clone().unwrap_or_else(|| text_as_html(&client.text));
        let original_html =
            original.html.as_deref().map_or_else(|| text_as_html(&original.text), body_inner);
        let quoted = match kind {
            SmartKind::Reply => format!(
                "<div>{}</div><blockquote type=\"cite\" style=\"margin:0 0 0 .8ex;\
                 border-left:1px solid #ccc;padding-left:1ex\">{original_html}</blockquote>",
                escape_html(&attribution.reply_line())
            ),
            SmartKind::Forward => {
                format!("<div>{}</div><div>{original_html}</div>", attribution.forward_block_html())
            }
        };
        insert_before_body_end(&client_html, &format!("<br>{quoted}"))
    });

    let mut attachments = client.attachments;
    attachments.extend(
        original
            .attachments
            .into_iter()
            .filter(|attachment| kind == SmartKind::Forward || attachment.is_inline),
    );
    let body = body_tree(&text, html.as_deref(), attachments, boundaries);
    let mut message = block.to_bytes();
    // The block's final empty line goes: the part writes its own Content-* fields first.
    message.truncate(message.len() - 2);
    message.extend_from_slice(&build::write_part(body));
    message
}

/// The client's message as it is (ReplaceMime: the client included the original itself),
/// with In-Reply-To and References added where it has none.
pub fn with_threading(client_mime: &[u8], original_raw: &[u8]) -> Vec<u8> {
    let normalized = normalize_line_endings(client_mime);
    let (mut block, body) = HeaderBlock::split(&normalized);
    set_threading(&mut block, original_raw, true);
    let mut message = block.to_bytes();
    message.extend_from_slice(body);
    message
}

/// A new message with only a Subject and one UTF-8 text or HTML part (the client's part of a
/// 16.x SmartForward that sent Forwardees and a Body instead of MIME).
pub fn new_message(subject: &str, is_html: bool, text: &str) -> Vec<u8> {
    let mut block = HeaderBlock::default();
    block.push("Subject", &build::unstructured("Subject", subject));
    block.push("MIME-Version", b"1.0");
    let mut message = block.to_bytes();
    message.truncate(message.len() - 2);
    let subtype = if is_html { "html" } else { "plain" };
    message.extend_from_slice(&build::write_part(build::text_part(subtype, text)));
    message
}

/// In-Reply-To and References pointing at the original. `only_if_missing`: leave fields the
/// client wrote (ReplaceMime, where the client built the whole message).
pub fn set_threading(block: &mut HeaderBlock, original_raw: &[u8], only_if_missing: bool) {
    let Some(parsed) = mail_parser::MessageParser::new().parse_headers(original_raw) else {
        return;
    };
    let Some(message_id) = parsed.message_id().map(clean_id).filter(|id| !id.is_empty()) else {
        return;
    };
    let mut references: Vec<String> = match parsed.references() {
        mail_parser::HeaderValue::Text(id) => vec![clean_id(id)],
        mail_parser::HeaderValue::TextList(ids) => ids.iter().map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    };
    references.retain(|id| !id.is_empty() && *id != message_id);
    // RFC 5322 §3.6.4 lets References be shortened; keep the first and the latest ones.
    if references.len() > 20 {
        references.drain(1..references.len() - 19);
    }
    references.push(message_id.clone());
    if !only_if_missing || !block.has("In-Reply-To") {
        block.set("In-Reply-To", &build::message_ids("In-Reply-To", &[message_id]));
    }
    if !only_if_missing || !block.has("References") {
        block.set("References", &build::message_ids("References", &references));
    }
}

fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>'))
        .collect()
}

/// Whether the client's message is signed or encrypted: rebuilding it would break the
/// signature, so it is sent as the client wrote it.
pub fn is_protected(client_mime: &[u8]) -> bool {
    let Some(parsed) = mail_parser::MessageParser::new().parse_headers(client_mime) else {
        return false;
    };
    let Some(content_type) = mail_parser::MimeHeaders::content_type(&parsed) else {
        return false;
    };
    let kind = format!("{}/{}", content_type.ctype(), content_type.subtype().unwrap_or_default())
        .to_ascii_lowercase();
    matches!(
        kind.as_str(),
        "multipart/signed"
            | "multipart/encrypted"
            | "application/pkcs7-mime"
            | "application/x-pkcs7-mime"
    )
}

/// The body: text (and HTML) alternatives, inline parts related to the HTML, attachments.
fn body_tree(
    text: &str,
    html: Option<&str>,
    attachments: Vec<AttachmentData>,
    boundaries: &mut Boundaries,
) -> MimePart<'static> {
    let text_part = build::text_part("plain", text);
    let (inline, regular): (Vec<AttachmentData>, Vec<AttachmentData>) =
        attachments.into_iter().partition(|a| a.is_inline && a.content_id.is_some());
    let mut regular: Vec<MimePart<'static>> =
        regular.into_iter().map(build::attachment_part).collect();
    let body = match html {
        Some(html) => {
            let mut html_part = build::text_part("html", html);
            if !inline.is_empty() {
                let mut related = vec![html_part];
                related.extend(inline.into_iter().map(build::attachment_part));
                html_part = build::multipart("related", boundaries, related);
            }
            build::multipart("alternative", boundaries, vec![text_part, html_part])
        }
        None => {
            // No HTML to show them in: inline parts are ordinary attachments.
            regular.extend(inline.into_iter().map(build::attachment_part));
            text_part
        }
    };
    if regular.is_empty() {
        return body;
    }
    let mut parts = vec![body];
    parts.append(&mut regular);
    build::multipart("mixed", boundaries, parts)
}

/// What one message contributes: its text, its HTML when it has some, its attachments.
struct Content {
    item: EmailItem,
    text: String,
    html: Option<String>,
    attachments: Vec<AttachmentData>,
}

impl Content {
    fn of(raw: Vec<u8>) -> Content {
        let summary = MessageSummary::from_full_message(0, Vec::new(), 0, raw);
        let raw = summary.prefix.as_slice();
        let converted = email::convert(&summary, "");
        let render = |body_type| {
            let selection =
                converted.body.select_body(&[BodyPreference::new(body_type)], MimeSupport::Never);
            match selection.body.data {
                Some(BodyData::Text(text)) => text,
                _ => String::new(),
            }
        };
        let text = render(BodyType::PlainText);
        let html = (converted.item.native_body_type == NativeBodyType::Html)
            .then(|| render(BodyType::Html));
        let structure = email::derived_structure(raw);
        let attachments = converted
            .item
            .attachments
            .iter()
            .filter_map(|attachment| {
                // With an empty prefix the FileReference is the IMAP section.
                let section = attachment.file_reference.as_str();
                let part = structure.iter().find(|part| part.section == section)?;
                let encoded = email::encoded_part(raw, section)?;
                Some(AttachmentData {
                    content_type: attachment.content_type.clone(),
                    charset: part
                        .params
                        .iter()
                        .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
                        .map(|(_, value)| value.clone())
                        .filter(|_| part.media_type.eq_ignore_ascii_case("text")),
                    file_name: attachment.display_name.clone(),
                    content_id: attachment.content_id.clone(),
                    is_inline: attachment.is_inline,
                    bytes: email::decode_transfer_encoding(part.encoding.as_deref(), encoded),
                })
            })
            .collect();
        let item = converted.item.clone();
        Content { item, text, html, attachments }
    }
}

/// Who wrote the original, when, to whom: for the line above the quote.
struct Attribution {
    from: String,
    date: String,
    to: String,
    cc: String,
    subject: String,
}

/// The original's Date field, as RFC 5322 text.
fn original_date(raw: &[u8]) -> Option<String> {
    mail_parser::MessageParser::new()
        .parse_headers(raw)
        .and_then(|parsed| parsed.date().map(|date| date.to_rfc822()))
}

impl Attribution {
    fn of(date: Option<String>, item: &EmailItem) -> Attribution {
        let date = date.unwrap_or_else(|| item.date_received.clone());
        Attribution {
            from: item.from.clone(),
            date,
            to: item.to.clone(),
            cc: item.cc.clone(),
            subject: item.subject.clone(),
        }
    }

    fn reply_line(&self) -> String {
        let from = if self.from.is_empty() { "the sender" } else { self.from.as_str() };
        format!("On {}, {from} wrote:", self.date)
    }

    fn forward_fields(&self) -> Vec<(&'static str, &str)> {
        let mut fields = vec![("From", self.from.as_str()), ("Date", self.date.as_str())];
        fields.push(("Subject", self.subject.as_str()));
        if !self.to.is_empty() {
            fields.push(("To", self.to.as_str()));
        }
        if !self.cc.is_empty() {
            fields.push(("Cc", self.cc.as_str()));
        }
        fields
    }

    fn forward_block_text(&self) -> String {
        let mut block = String::from("---------- Forwarded message ----------");
        for (name, value) in self.forward_fields() {
            block.push_str(&format!("\n{name}: {value}"));
        }
        block
    }

    fn forward_block_html(&self) -> String {
        let mut block = String::from("---------- Forwarded message ----------");
        for (name, value) in self.forward_fields() {
            block.push_str(&format!("<br>{name}: {}", escape_html(value)));
        }
        block
    }
}

/// `> ` before every line (`>` alone before an empty one, as format=flowed readers expect).
fn quote_lines(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + text.len() / 16);
    for line in text.trim_end().lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            quoted.push_str(">\n");
        } else {
            quoted.push_str("> ");
            quoted.push_str(line);
            quoted.push('\n');
        }
    }
    quoted
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            ch => escaped.push(ch),
        }
    }
    escaped
}

/// Plain text shown as HTML: escaped, line breaks kept.
fn text_as_html(text: &str) -> String {
    let escaped = escape_html(text.trim_end());
    format!("<div>{}</div>", escaped.replace("\r\n", "\n").replace('\n', "<br>\n"))
}

/// Position of the first case-insensitive occurrence of an ASCII `needle` from `from` on.
fn find_ascii(haystack: &str, needle: &str, from: usize) -> Option<usize> {
    let bytes = haystack.as_bytes();
    let needle = needle.as_bytes();
    (from..bytes.len().saturating_sub(needle.len() - 1))
        .find(|&at| bytes[at..at + needle.len()].eq_ignore_ascii_case(needle))
}

/// What is inside `<body …>` … `</body>` of a whole HTML document (its head, with styles and
/// charset declarations for another document, left out); the text itself when it has no body
/// element.
fn body_inner(html: &str) -> String {
    let Some(open) = find_ascii(html, "<body", 0) else {
        return html.to_owned();
    };
    let Some(content_start) = html[open..].find('>').map(|at| open + at + 1) else {
        return html.to_owned();
    };
    let content_end = rfind_ascii(html, "</body").filter(|&end| end >= content_start);
    html[content_start..content_end.unwrap_or(html.len())].to_owned()
}

fn rfind_ascii(haystack: &str, needle: &str) -> Option<usize> {
    let mut found = None;
    let mut from = 0;
    while let Some(at) = find_ascii(haystack, needle, from) {
        found = Some(at);
        from = at + 1;
    }
    found
}

/// `addition` inserted before the document's last `</body>`, or appended.
fn insert_before_body_end(html: &str, addition: &str) -> String {
    match rfind_ascii(html, "</body") {
        Some(at) if html.is_char_boundary(at) => {
            format!("{}{addition}{}", &html[..at], &html[at..])
        }
        _ => format!("{html}{addition}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_html_helpers() {
        assert_eq!(quote_lines("a\r\n\r\nb\n"), "> a\n>\n> b\n");
        assert_eq!(
            body_inner("<html><head><style>x</style></head><BODY class=a>hi</Body></html>"),
            "hi"
        );
        assert_eq!(body_inner("<p>plain</p>"), "<p>plain</p>");
        assert_eq!(insert_before_body_end("<body>a</body>", "B"), "<body>aB</body>");
        assert_eq!(insert_before_body_end("<p>a</p>", "B"), "<p>a</p>B");
        assert_eq!(text_as_html("1 < 2\nok"), "<div>1 &lt; 2<br>\nok</div>");
        assert_eq!(find_ascii("ab", "abc", 0), None);
    }

    #[test]
    fn threading_follows_the_original() {
        let original = b"Message-ID: <c@x>\r\nReferences: <a@x>\r\n <b@x>\r\n\r\nbody";
        let (mut block, _) = HeaderBlock::split(b"Subject: Re: x\r\nIn-Reply-To: <old@x>\r\n\r\n");
        set_threading(&mut block, original, false);
        assert_eq!(block.value("In-Reply-To").as_deref(), Some("<c@x>"));
        assert_eq!(block.value("References").as_deref(), Some("<a@x> <b@x> <c@x>"));

        let (mut kept, _) = HeaderBlock::split(b"In-Reply-To: <mine@x>\r\n\r\n");
        set_threading(&mut kept, original, true);
        assert_eq!(kept.value("In-Reply-To").as_deref(), Some("<mine@x>"));
        assert!(kept.has("References"));

        let (mut untouched, _) = HeaderBlock::split(b"Subject: x\r\n\r\n");
        set_threading(&mut untouched, b"Subject: no id\r\n\r\n", false);
        assert!(!untouched.has("In-Reply-To"));
    }

    #[test]
    fn signed_messages_are_recognised() {
        assert!(is_protected(b"Content-Type: multipart/signed; protocol=x; boundary=b\r\n\r\n"));
        assert!(is_protected(
            b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\n"
        ));
        assert!(!is_protected(b"Content-Type: text/plain\r\n\r\nhi"));
    }
}
