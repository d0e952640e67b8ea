//! The raw bytes we have (a prefix or the whole message) parsed with mail-parser, with every
//! top-level MIME part given its IMAP section number (RFC 3501 §6.4.5) so that parts can be
//! matched with the BODYSTRUCTURE entries. Also derives a BODYSTRUCTURE when the host gave none.

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::charset::decode_to_utf8;
use super::input::BodyPart;
use super::limits::MAX_PARTS;
use super::transfer::TransferEncoding;

pub struct ParsedMessage<'m> {
    data: &'m [u8],
    /// True when `data` is the whole message: a part that runs to the end of `data` is then
    /// complete rather than cut.
    is_whole_message: bool,
    message: Option<Message<'m>>,
    /// (section, depth, index into `message.parts`) in pre-order.
    sections: Vec<(String, u32, usize)>,
}

/// Decoded text of one part, possibly cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartText {
    pub text: String,
    /// False when the bytes we have stop inside this part.
    pub is_complete: bool,
    /// Transfer-decoded bytes we have (before charset conversion).
    pub decoded_bytes: u64,
}

impl<'m> ParsedMessage<'m> {
    pub fn parse(data: &'m [u8], is_whole_message: bool) -> Self {
        let message = MessageParser::new().parse(data);
        let sections = message.as_ref().map(number_sections).unwrap_or_default();
        Self { data, is_whole_message, message, sections }
    }

    pub fn message(&self) -> Option<&Message<'m>> {
        self.message.as_ref()
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.part_index(section).is_some()
    }

    fn part_index(&self, section: &str) -> Option<usize> {
        self.sections.iter().find(|(s, _, _)| s == section).map(|&(_, _, index)| index)
    }

    fn part(&self, section: &str) -> Option<&MessagePart<'m>> {
        self.message.as_ref()?.parts.get(self.part_index(section)?)
    }

    /// The body of a part as stored (still transfer-encoded), like IMAP `BODY[section]`.
    pub fn part_body(&self, section: &str) -> Option<&'m [u8]> {
        let part = self.part(section)?;
        let end = (part.offset_end as usize).min(self.data.len());
        self.data.get(part.offset_body as usize..end)
    }

    /// The text of a part, transfer-decoded and converted to UTF-8, from the bytes we have.
    pub fn part_text(&self, section: &str) -> Option<PartText> {
        let part = self.part(section)?;
        let start = part.offset_body as usize;
        let end = (part.offset_end as usize).min(self.data.len());
        let encoded = self.data.get(start..end).unwrap_or_default();
        // A part that stops before the end of the data was closed by its boundary.
        let is_complete = self.is_whole_message || end < self.data.len();
        let mut decoded =
            TransferEncoding::from_header(part.content_transfer_encoding()).decode(encoded);
        if !is_complete {
            drop_cut_utf8_sequence(&mut decoded);
        }
        let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
        Some(PartText {
            text: decode_to_utf8(&decoded, charset),
            is_complete,
            decoded_bytes: decoded.len() as u64,
        })
    }

    /// A BODYSTRUCTURE equivalent for a message parsed in full (RFC 3501 §7.4.2 numbering).
    /// Embedded messages are listed as single parts: what is inside them is never needed.
    pub fn derived_structure(&self) -> Vec<BodyPart> {
        let Some(message) = &self.message else {
            return Vec::new();
        };
        self.sections
            .iter()
            .filter_map(|(section, depth, index)| {
                let part = message.parts.get(*index)?;
                Some(describe_part(part, section, *depth))
            })
            .collect()
    }
}

/// Pre-order walk of the top-level parts giving IMAP section numbers: the parts of the root
/// multipart are "1", "2", nested ones "1.1"; a single-part message is "1". Iterative with a
/// part budget, so nesting depth costs nothing; child ids only ever point forward, which rules
/// out cycles.
fn number_sections(message: &Message<'_>) -> Vec<(String, u32, usize)> {
    let mut numbered = Vec::new();
    let root_is_multipart =
        matches!(message.parts.first().map(|p| &p.body), Some(PartType::Multipart(_)));
    let root_section = if root_is_multipart { String::new() } else { "1".to_owned() };
    let mut pending = vec![(root_section, 0u32, 0usize)];
    while let Some((section, depth, index)) = pending.pop() {
        if numbered.len() >= MAX_PARTS {
            break;
        }
        let Some(part) = message.parts.get(index) else {
            continue;
        };
        if let PartType::Multipart(children) = &part.body {
            for (position, &child) in children.iter().enumerate().rev() {
                let child = child as usize;
                if child <= index {
                    continue;
                }
                let child_section = if section.is_empty() {
                    (position + 1).to_string()
                } else {
                    format!("{section}.{}", position + 1)
                };
                pending.push((child_section, depth + 1, child));
            }
        }
        numbered.push((section, depth, index));
    }
    numbered
}

fn describe_part(part: &MessagePart<'_>, section: &str, depth: u32) -> BodyPart {
    let content_type = part.content_type();
    let is_multipart = matches!(part.body, PartType::Multipart(_));
    // A multipart whose boundary never appears is read as text by the parser: describe it so.
    let (media_type, media_subtype) = match content_type {
        Some(ct) if is_multipart || !ct.ctype().eq_ignore_ascii_case("multipart") => {
            (ct.ctype().to_owned(), ct.subtype().unwrap_or_default().to_owned())
        }
        _ => ("text".to_owned(), "plain".to_owned()),
    };
    let attributes = |ct: Option<&mail_parser::ContentType<'_>>| {
        ct.and_then(|ct| ct.attributes())
            .unwrap_or_default()
            .iter()
            .map(|a| (a.name.to_string(), a.value.to_string()))
            .collect::<Vec<_>>()
    };
    let disposition = part.content_disposition();
    BodyPart {
        section: section.to_owned(),
        depth,
        is_multipart,
        media_type,
        media_subtype,
        params: attributes(content_type),
        content_id: part.content_id().map(str::to_owned),
        description: part.content_description().map(str::to_owned),
        encoding: part.content_transfer_encoding().map(str::to_owned),
        size: part.offset_end.saturating_sub(part.offset_body),
        lines: None,
        disposition: disposition.map(|d| d.ctype().to_owned()),
        disposition_params: attributes(disposition),
    }
}

/// Text cut by the end of the prefix may end inside a UTF-8 sequence; drop that partial
/// character rather than let it turn the whole text into latin-1.
fn drop_cut_utf8_sequence(bytes: &mut Vec<u8>) {
    if let Err(error) = std::str::from_utf8(bytes)
        && error.error_len().is_none()
        && bytes.len() - error.valid_up_to() < 4
    {
        bytes.truncate(error.valid_up_to());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: &[u8] = b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n\
--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n\
--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n\
--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\n\
--outer\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n\
--outer--\r\n";

    #[test]
    fn sections_follow_imap_numbering() {
        let parsed = ParsedMessage::parse(NESTED, true);
        let structure = parsed.derived_structure();
        let described: Vec<_> = structure
            .iter()
            .map(|p| (p.section.as_str(), p.depth, format!("{}/{}", p.media_type, p.media_subtype)))
            .collect();
        assert_eq!(
            described,
            [
                ("", 0, "multipart/mixed".to_owned()),
                ("1", 1, "multipart/alternative".to_owned()),
                ("1.1", 2, "text/plain".to_owned()),
                ("1.2", 2, "text/html".to_owned()),
                ("2", 1, "application/pdf".to_owned()),
            ]
        );
        assert_eq!(structure[4].param("name"), Some("a.pdf"));
        assert_eq!(parsed.part_text("1.2").map(|t| t.text), Some("<p>html</p>".to_owned()));
    }

    #[test]
    fn a_part_cut_by_the_prefix_is_incomplete() {
        let html_start = NESTED.windows(7).position(|w| w == b"<p>html").unwrap_or_default();
        let cut = &NESTED[..html_start + 5];
        let parsed = ParsedMessage::parse(cut, false);
        let plain = parsed.part_text("1.1");
        assert_eq!(plain.as_ref().map(|t| (t.text.as_str(), t.is_complete)), Some(("plain", true)));
        let html = parsed.part_text("1.2");
        assert!(html.is_some_and(|t| !t.is_complete && t.text.starts_with("<p>")));
    }

    #[test]
    fn single_part_message_is_section_one() {
        let parsed = ParsedMessage::parse(b"Subject: x\r\n\r\nbody \xc3", false);
        let text = parsed.part_text("1");
        assert_eq!(text.map(|t| (t.text, t.is_complete)), Some(("body ".to_owned(), false)));
    }
}
