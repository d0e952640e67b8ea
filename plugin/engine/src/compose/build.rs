//! MIME parts through mail-builder, with every value that mail-builder would otherwise make up
//! from the clock supplied here.
//!
//! mail-builder 0.4 reads `SystemTime::now()` in `make_boundary` (a multipart without a
//! `boundary` parameter, and generated Message-IDs) and in `Date::now()`: in
//! wasm32-unknown-unknown that panics. So this module only ever calls `MimePart::write_part` on
//! trees whose multiparts carry a boundary from [`Boundaries`], writes header values through
//! `Header::write_header` of explicit values, and never uses `MessageBuilder` (whose `write_to`
//! adds a generated Message-ID and `Date::now()` when they are missing).

use std::borrow::Cow;

use mail_builder::headers::Header;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::mime::{BodyPart, MimePart};

use super::header_block::normalize_line_endings;

/// Multipart boundaries for one message: a random seed and a counter. `=_` cannot occur in
/// quoted-printable or base64 text, so a boundary never collides with an encoded body.
#[derive(Debug)]
pub struct Boundaries {
    seed: u64,
    next: u32,
}

impl Boundaries {
    pub fn new(seed: u64) -> Self {
        Boundaries { seed, next: 0 }
    }

    pub fn next_boundary(&mut self) -> String {
        self.next += 1;
        format!("=_eas-edge_{:016x}_{}", self.seed, self.next)
    }
}

/// A `multipart/{subtype}` part with its own boundary.
pub fn multipart(
    subtype: &str,
    boundaries: &mut Boundaries,
    parts: Vec<MimePart<'static>>,
) -> MimePart<'static> {
    let content_type = ContentType::new(format!("multipart/{subtype}"))
        .attribute("boundary", boundaries.next_boundary());
    MimePart::new(content_type, BodyPart::Multipart(parts))
}

/// A UTF-8 `text/{subtype}` part; line endings are made CRLF first (mail-builder's
/// quoted-printable encoder expects them so).
pub fn text_part(subtype: &str, text: &str) -> MimePart<'static> {
    let text = String::from_utf8(normalize_line_endings(text.as_bytes()).into_owned())
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
    let content_type = ContentType::new(format!("text/{subtype}")).attribute("charset", "utf-8");
    MimePart::new(content_type, BodyPart::Text(text.into()))
}

/// An attachment's decoded bytes and how to label them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentData {
    /// `type/subtype`, lower-case.
    pub content_type: String,
    /// The charset of a text attachment, kept because its bytes are passed on unchanged.
    pub charset: Option<String>,
    pub file_name: String,
    /// Without angle brackets.
    pub content_id: Option<String>,
    /// Shown inside the HTML body (through a `cid:` reference).
    pub is_inline: bool,
    pub bytes: Vec<u8>,
}

/// The attachment as a MIME part. Binary content is base64-encoded by mail-builder, text gets
/// quoted-printable or base64 as it needs. An embedded message (message/rfc822) must not be
/// base64-encoded (RFC 2046 §5.2.1): it goes in as 7bit or 8bit, its line endings made CRLF.
pub fn attachment_part(attachment: AttachmentData) -> MimePart<'static> {
    let AttachmentData {
        content_type: media_type,
        charset,
        file_name,
        content_id,
        is_inline,
        bytes,
    } = attachment;
    let is_message = matches!(media_type.as_str(), "message/rfc822" | "message/global");
    let mut content_type = ContentType::new(media_type);
    if let Some(charset) = charset {
        content_type = content_type.attribute("charset", charset);
    }
    if !file_name.is_empty() {
        content_type = content_type.attribute("name", file_name.clone());
    }
    let mut part = if is_message {
        let bytes = match normalize_line_endings(&bytes) {
            Cow::Owned(normalized) => normalized,
            Cow::Borrowed(_) => bytes,
        };
        let encoding = if bytes.is_ascii() { "7bit" } else { "8bit" };
        MimePart::new(content_type, BodyPart::Binary(bytes.into())).transfer_encoding(encoding)
    } else {
        MimePart::new(content_type, BodyPart::Binary(bytes.into()))
    };
    let mut disposition = ContentType::new(if is_inline { "inline" } else { "attachment" });
    if !file_name.is_empty() {
        disposition = disposition.attribute("filename", file_name);
    }
    part = part.header("Content-Disposition", disposition);
    if let Some(id) = content_id.filter(|id| !id.is_empty()) {
        part = part.cid(id);
    }
    part
}

/// The part with its headers, as bytes: the body and `Content-*` fields of a message.
pub fn write_part(part: MimePart<'static>) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = part.write_part(&mut bytes);
    bytes
}

/// A header value written by mail-builder (encoded words, folding), without the final CRLF.
fn header_value(name: &str, header: &impl Header) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = header.write_header(&mut bytes, name.len() + 2);
    while bytes.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        bytes.pop();
    }
    bytes
}

/// `"Name" <address>` (the name RFC 2047-encoded when needed), or the bare address.
pub fn mailbox(name: Option<&str>, address: &str) -> Vec<u8> {
    let name = name.map(str::trim).filter(|name| !name.is_empty());
    let header = match name {
        Some(name) => Address::new_address(Some(name.to_owned()), address.to_owned()),
        None => Address::new_address(None::<String>, address.to_owned()),
    };
    header_value("From", &header)
}

/// `<id1> <id2> …`, folded.
pub fn message_ids(name: &str, ids: &[String]) -> Vec<u8> {
    header_value(name, &MessageId::new_list(ids.iter().cloned()))
}

/// An RFC 5322 date (UTC) for unix seconds, with mail-builder's formatter (which takes the time
/// it is given; only `Date::now` reads the clock).
pub fn rfc822_date(unix_seconds: i64) -> String {
    Date::new(unix_seconds).to_rfc822()
}

/// A subject or other unstructured text, RFC 2047-encoded when needed.
pub fn unstructured(name: &str, text: &str) -> Vec<u8> {
    header_value(name, &mail_builder::headers::text::Text::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_boundary_is_ours() {
        let mut boundaries = Boundaries::new(0xfeed);
        let inner = multipart(
            "alternative",
            &mut boundaries,
            vec![text_part("plain", "caf\u{e9}\n"), text_part("html", "<p>caf\u{e9}</p>")],
        );
        let attachment = AttachmentData {
            content_type: "application/pdf".into(),
            charset: None,
            file_name: "r\u{e9}sum\u{e9}.pdf".into(),
            content_id: None,
            is_inline: false,
            bytes: b"%PDF-1.4".to_vec(),
        };
        let root = multipart("mixed", &mut boundaries, vec![inner, attachment_part(attachment)]);
        let bytes = write_part(root);
        let text = String::from_utf8(bytes.clone()).expect("ASCII");
        assert!(text.contains("boundary=\"=_eas-edge_000000000000feed_1\""), "{text}");
        assert!(text.contains("boundary=\"=_eas-edge_000000000000feed_2\""), "{text}");
        assert_eq!(text.matches("boundary=").count(), 2);
        assert!(!text.contains('\u{e9}'), "8-bit text must be encoded: {text}");
        let parsed = mail_parser::MessageParser::new().parse(&bytes).expect("parses");
        assert_eq!(parsed.body_text(0).as_deref(), Some("caf\u{e9}\r\n"));
        let pdf = parsed.attachment(0).expect("attachment");
        assert_eq!(pdf.contents(), b"%PDF-1.4");
        assert_eq!(mail_parser::MimeHeaders::attachment_name(pdf), Some("r\u{e9}sum\u{e9}.pdf"));
    }

    #[test]
    fn header_values() {
        assert_eq!(mailbox(None, "a@x"), b"<a@x>");
        assert_eq!(mailbox(Some("Ann"), "a@x"), b"\"Ann\" <a@x>");
        let encoded = String::from_utf8(mailbox(Some("\u{c9}lise"), "e@x")).expect("ASCII");
        assert!(encoded.starts_with("\"=?utf-8?") && encoded.ends_with("<e@x>"), "{encoded}");
        assert_eq!(message_ids("References", &["a@x".into(), "b@x".into()]), b"<a@x> <b@x>");
        assert_eq!(rfc822_date(1_793_000_000), "Mon, 26 Oct 2026 07:33:20 +0000");
    }
}
