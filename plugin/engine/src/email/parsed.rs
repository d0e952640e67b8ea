//! The raw bytes we have (a prefix or the whole message) parsed with mail-parser, with every
//! top-level MIME part given its IMAP section number (RFC 3501 §6.4.5) so that parts can be
//! matched with the BODYSTRUCTURE entries. Also derives a BODYSTRUCTURE when the host gave none.
//!
//! [`ParsedMessage::scan`] finds the parts without decoding them (`scan.rs`) and decodes a
//! part only when its text is asked for; [`ParsedMessage::parse`] is mail-parser's full parse,
//! needed to describe parts (derived BODYSTRUCTURE) and where the scan declines.

use mail_parser::{Encoding, Header, Message, MessagePart, MimeHeaders, PartType};

use super::charset::decode_to_utf8;
use super::input::BodyPart;
use super::limits::MAX_PARTS;
use super::scan::{self, ScannedPart};
use super::transfer::TransferEncoding;

/// The message `header_parser().parse_headers` gives for `data` whose top-level fields are
/// `headers`: one part holding them, with an empty body; none without a field.
fn headers_only_message<'m>(data: &'m [u8], headers: Vec<Header<'m>>) -> Option<Message<'m>> {
    if headers.is_empty() {
        return None;
    }
    let end = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let root = MessagePart {
        headers,
        encoding: Encoding::None,
        is_encoding_problem: true,
        body: PartType::Text("".into()),
        offset_header: 0,
        offset_body: end,
        offset_end: end,
    };
    Some(Message { parts: vec![root], raw_message: data.into(), ..Message::default() })
}

pub struct ParsedMessage<'m> {
    data: &'m [u8],
    /// True when `data` is the whole message: a part that runs to the end of `data` is then
    /// complete rather than cut.
    is_whole_message: bool,
    /// The top-level message: complete from a full parse, headers only from a scan.
    message: Option<Message<'m>>,
    /// True when `message` came from a full parse (it then describes every part).
    is_full_parse: bool,
    /// Where each part is and how it is encoded, by index into mail-parser's part list.
    parts: Vec<ScannedPart>,
    /// (section, depth, index into `parts`) in pre-order.
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
    /// mail-parser's full parse (every part decoded).
    pub fn parse(data: &'m [u8], is_whole_message: bool) -> Self {
        let message = super::header_parser().parse(data);
        let parts = message.as_ref().map(|m| m.parts.iter().map(span_of).collect());
        let parts: Vec<ScannedPart> = parts.unwrap_or_default();
        let sections = number_sections(&parts);
        Self { data, is_whole_message, message, is_full_parse: true, parts, sections }
    }

    /// The same parts, sections and headers as [`parse`](Self::parse) without decoding any
    /// part; falls back to the full parse where the scan declines.
    pub fn scan(data: &'m [u8], is_whole_message: bool) -> Self {
        let Some(scanned) = scan::scan(data) else {
            return Self::parse(data, is_whole_message);
        };
        let parts = scanned.parts;
        let message = headers_only_message(data, scanned.root_headers);
        let sections = number_sections(&parts);
        Self { data, is_whole_message, message, is_full_parse: false, parts, sections }
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

    fn part(&self, section: &str) -> Option<&ScannedPart> {
        self.parts.get(self.part_index(section)?)
    }

    /// The body of a part as stored (still transfer-encoded), like IMAP `BODY[section]`.
    pub fn part_body(&self, section: &str) -> Option<&'m [u8]> {
        let part = self.part(section)?;
        let end = part.offset_end.min(self.data.len());
        self.data.get(part.offset_body..end)
    }

    /// The text of a part, transfer-decoded and converted to UTF-8, from the bytes we have.
    pub fn part_text(&self, section: &str) -> Option<PartText> {
        self.part_text_within(section, usize::MAX)
    }

    /// [`part_text`](Self::part_text) from at most the first `max_encoded_bytes` of the part's
    /// stored body: a longer part comes out as if the data stopped there (incomplete).
    pub fn part_text_within(&self, section: &str, max_encoded_bytes: usize) -> Option<PartText> {
        let part = self.part(section)?;
        let start = part.offset_body;
        let end = part.offset_end.min(self.data.len());
        let stored = self.data.get(start..end).unwrap_or_default();
        let encoded = stored.get(..max_encoded_bytes).unwrap_or(stored);
        // A part that stops before the end of the data was closed by its boundary.
        let is_complete =
            encoded.len() == stored.len() && (self.is_whole_message || end < self.data.len());
        let decoded = TransferEncoding::from_header(part.encoding.as_deref()).decode(encoded);
        let usable = if is_complete { &decoded[..] } else { without_cut_utf8_sequence(&decoded) };
        Some(PartText {
            text: decode_to_utf8(usable, part.charset.as_deref()),
            is_complete,
            decoded_bytes: usable.len() as u64,
        })
    }

    /// A BODYSTRUCTURE equivalent for a message parsed in full (RFC 3501 §7.4.2 numbering).
    /// Embedded messages are listed as single parts: what is inside them is never needed.
    pub fn derived_structure(&self) -> Vec<BodyPart> {
        if !self.is_full_parse {
            return Self::parse(self.data, self.is_whole_message).derived_structure();
        }
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

/// Where a part mail-parser parsed is, as the scan describes it.
fn span_of(part: &MessagePart<'_>) -> ScannedPart {
    ScannedPart {
        offset_body: part.offset_body as usize,
        offset_end: part.offset_end as usize,
        encoding: part.content_transfer_encoding().map(str::to_owned),
        charset: part.content_type().and_then(|ct| ct.attribute("charset")).map(str::to_owned),
        children: match &part.body {
            PartType::Multipart(children) => {
                Some(children.iter().map(|&child| child as usize).collect())
            }
            _ => None,
        },
    }
}

/// Pre-order walk of the top-level parts giving IMAP section numbers: the parts of the root
/// multipart are "1", "2", nested ones "1.1"; a single-part message is "1". Iterative with a
/// part budget, so nesting depth costs nothing; child ids only ever point forward, which rules
/// out cycles.
fn number_sections(parts: &[ScannedPart]) -> Vec<(String, u32, usize)> {
    let mut numbered = Vec::new();
    let root_is_multipart = parts.first().is_some_and(|p| p.children.is_some());
    let root_section = if root_is_multipart { String::new() } else { "1".to_owned() };
    let mut pending = vec![(root_section, 0u32, 0usize)];
    while let Some((section, depth, index)) = pending.pop() {
        if numbered.len() >= MAX_PARTS {
            break;
        }
        let Some(part) = parts.get(index) else {
            continue;
        };
        if let Some(children) = &part.children {
            for (position, &child) in children.iter().enumerate().rev() {
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
/// character rather than let it turn the whole text into latin-1. Only the last three bytes
/// can begin such a sequence, so only they are looked at (validating the whole text here was
/// a tenth of a Sync's conversion time); text in another charset loses at most the byte or two
/// at its cut, which is never sent (see `CUT_MARGIN_BYTES`) or is an estimate's edge.
fn without_cut_utf8_sequence(bytes: &[u8]) -> &[u8] {
    let tail_start = bytes.len().saturating_sub(3);
    for start in (tail_start..bytes.len()).rev() {
        let length = match bytes[start] {
            0x80..=0xBF => continue, // inside a sequence: look further back
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return bytes,
        };
        let cut = bytes.len() - start < length;
        return if cut { bytes.get(..start).unwrap_or_default() } else { bytes };
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The scan agrees with mail-parser's full parse on everything bodies are made of: the
    /// numbering, where each part's body is, its encoding and charset, and the headers.
    fn assert_scan_matches_full_parse(data: &[u8]) -> Result<(), TestCaseError> {
        let full = ParsedMessage::parse(data, false);
        let Some(scanned_parts) = scan::scan(data).map(|scanned| scanned.parts) else {
            return Ok(()); // declined: the caller uses the full parse
        };
        let scanned = ParsedMessage::scan(data, false);
        let headers_only = crate::email::header_parser().parse_headers(data);
        prop_assert_eq!(scanned.message(), headers_only.as_ref(), "the fields the walk kept");
        prop_assert!(!scanned.is_full_parse);
        prop_assert_eq!(&scanned.sections, &full.sections);
        for (section, _, index) in &full.sections {
            let (ours, theirs) = (&scanned_parts[*index], &full.parts[*index]);
            prop_assert_eq!(ours.children.is_some(), theirs.children.is_some(), "{}", section);
            if ours.children.is_none() {
                prop_assert_eq!(ours, theirs, "part {}", section);
                prop_assert_eq!(scanned.part_text(section), full.part_text(section));
            } else {
                prop_assert_eq!(&ours.children, &theirs.children, "part {}", section);
            }
        }
        let subject =
            |p: &ParsedMessage<'_>| p.message().and_then(|m| m.subject()).map(str::to_owned);
        prop_assert_eq!(subject(&scanned), subject(&full));
        let content_type = |p: &ParsedMessage<'_>| {
            p.message().and_then(|m| m.content_type()).map(|ct| format!("{ct:?}"))
        };
        prop_assert_eq!(content_type(&scanned), content_type(&full));
        Ok(())
    }

    /// MIME-ish bytes with nested multiparts, broken boundaries, digests and bad encodings.
    fn nested_mime_bytes() -> impl Strategy<Value = Vec<u8>> {
        let token = prop::sample::select(vec![
            &b"Content-Type: multipart/mixed; boundary=b\r\n"[..],
            b"Content-Type: multipart/alternative; boundary=\"c\"\r\n",
            b"Content-Type: multipart/digest; boundary=d\r\n",
            b"Content-Type: multipart/related\r\n",
            b"Content-Type: text/plain; charset=iso-8859-1\r\n",
            b"Content-Type: text/html; charset=utf-8\r\n",
            b"Content-Type: message/rfc822\r\n",
            b"Content-Type: application/pdf; name=a.pdf\r\n",
            b"Content-Transfer-Encoding: base64\r\n",
            b"Content-Transfer-Encoding: Quoted-Printable\r\n",
            b"Subject: =?utf-8?q?caf=C3=A9?=\r\n",
            b"\r\n",
            b"\n",
            b"--b\r\n",
            b"--b--\r\n",
            b"--c\r\n",
            b"--c--\r\n",
            b"--d\n",
            b"--d--",
            b"---b \t\r\n",
            b"SGVsbG8=\r\n",
            b"=E9==\r\n",
            b"caf\xe9 \x00\xff\xc3",
        ]);
        prop::collection::vec(
            prop_oneof![
                4 => token.prop_map(<[u8]>::to_vec),
                1 => prop::collection::vec(any::<u8>(), 0..8)
            ],
            0..60,
        )
        .prop_map(|chunks| chunks.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn scan_matches_full_parse_on_random_mime(data in nested_mime_bytes()) {
            assert_scan_matches_full_parse(&data)?;
        }

        /// UTF-8 text cut anywhere loses exactly the character the cut split, and other
        /// bytes keep everything but what may begin a split character.
        #[test]
        fn a_cut_utf8_sequence_is_dropped(text in "\\PC{0,40}", cut in 0usize..200, bytes in prop::collection::vec(any::<u8>(), 0..12)) {
            let cut = cut.min(text.len());
            let mut whole_chars = cut;
            while !text.is_char_boundary(whole_chars) {
                whole_chars -= 1;
            }
            prop_assert_eq!(without_cut_utf8_sequence(&text.as_bytes()[..cut]), &text.as_bytes()[..whole_chars]);
            let kept = without_cut_utf8_sequence(&bytes);
            prop_assert!(bytes.starts_with(kept) && kept.len() + 3 >= bytes.len());
        }
    }

    /// Found by the property test: mail-parser debug-asserts on this nesting (release builds
    /// recover, and so do the tests since `[profile.dev.package.mail-parser]`).
    #[test]
    fn an_empty_message_part_in_a_digest_parses() {
        let data = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\n\r\n\
Content-Type: message/rfc822\r\n\r\n\r\n--d--";
        assert_scan_matches_full_parse(data).expect("scan equals the full parse");
    }

    #[test]
    fn scan_matches_full_parse_on_fixtures() {
        let dir = format!("{}/src/email/fixtures", env!("CARGO_MANIFEST_DIR"));
        let mut scanned = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("fixtures directory") {
            let path = entry.expect("fixture entry").path();
            let whole = std::fs::read(&path).expect("fixture");
            // Whole fixtures and prefixes cut anywhere (Sync fetches a prefix).
            for cut in [whole.len(), whole.len() / 2, whole.len() / 3, 40] {
                let data = &whole[..cut.min(whole.len())];
                assert_scan_matches_full_parse(data)
                    .unwrap_or_else(|e| panic!("{} cut at {cut}: {e}", path.display()));
                if cut == whole.len() && scan::scan(data).is_some() {
                    scanned.push(path.file_name().map(|n| n.to_string_lossy().into_owned()));
                }
            }
        }
        // Only the embedded message (parsed in place by mail-parser) needs the full parse.
        assert_eq!(scanned.len(), 15, "whole fixtures scanned: {scanned:?}");
    }

    #[test]
    fn scan_declines_an_unencoded_embedded_message() {
        let data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhi\r\n--b--\r\n";
        assert!(scan::scan(data).is_none());
        assert!(ParsedMessage::scan(data, true).is_full_parse);
    }

    #[test]
    fn scanned_text_is_decoded_only_when_asked() {
        let parsed = ParsedMessage::scan(NESTED, true);
        assert!(!parsed.is_full_parse);
        assert_eq!(parsed.part_text("1.2").map(|t| t.text), Some("<p>html</p>".to_owned()));
        assert_eq!(parsed.part_body("2"), Some(&b"JVBERg=="[..]));
        // Describing parts needs the full parse; it gives the same structure.
        assert_eq!(
            parsed.derived_structure(),
            ParsedMessage::parse(NESTED, true).derived_structure()
        );
    }

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
