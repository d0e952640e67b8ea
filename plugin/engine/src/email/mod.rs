//! MIME → EAS Email item conversion (MS-ASEMAIL, MS-ASAIRS; EAS-NOTES §6).
//!
//! Pure functions over what the host fetched: a [`MessageSummary`] (flags, INTERNALDATE,
//! RFC822.SIZE, flattened BODYSTRUCTURE and the first bytes of the raw message) becomes an
//! [`EmailItem`] plus a [`BodySource`] from which [`BodySource::select_body`] answers each
//! client's BodyPreference. A full raw message goes through the same code
//! ([`MessageSummary::from_full_message`]).
//!
//! Untrusted input never makes this fail or panic: broken MIME, cut prefixes, unknown charsets
//! and absurd sizes give a best-effort item that still syncs. Work is bounded by `limits.rs`.

mod addresses;
mod attachments;
mod body;
mod charset;
mod conversation;
mod dates;
mod encoded_words;
mod flags;
mod header_parser;
mod headers;
mod html_text;
mod input;
mod item;
mod limits;
mod message_class;
mod params;
mod parsed;
mod sanitize;
mod scan;
mod shifted;
mod structure;
mod transfer;
pub mod wbxml;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use body::{
    Body, BodyData, BodyNeeds, BodyPreference, BodySelection, BodySource, BodyType, MimeSupport,
};
#[cfg(test)]
pub(crate) use charset::header_block_end;
pub use dates::format_eas_datetime;
pub use flags::{flag_keywords, is_category_keyword, is_flag_keyword, keyword_for_category};
pub use header_parser::header_parser;
pub use input::{BodyPart, MessageSummary};
pub use item::{
    Attachment, AttachmentMethod, EmailItem, Flag, FlagStatus, Importance, LastVerb, MessageClass,
    NativeBodyType,
};

use body::BodyText;
use input::BodyPart as Part;
use item::EmailItem as Item;
use limits::MAX_PARSED_MESSAGE_BYTES;
use parsed::ParsedMessage;
use structure::MimeLayout;
use transfer::TransferEncoding;

/// An Email item and what its body is made from; the body source borrows the summary's raw
/// bytes (Type 4 bodies are served from them without a copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedEmail<'a> {
    pub item: EmailItem,
    pub body: BodySource<'a>,
}

/// Converts one message. `file_reference_prefix` is the caller's opaque prefix for attachment
/// FileReferences (e.g. `"5:1234"` gives `"5:1234:2.1"`); see `attachments.rs`.
pub fn convert<'a>(summary: &'a MessageSummary, file_reference_prefix: &str) -> ConvertedEmail<'a> {
    convert_for(summary, file_reference_prefix, BodyNeeds::ALL)
}

/// [`convert`], decoding only the bodies in `needs`: its body source then serves only the
/// preferences `needs` was made for ([`BodyNeeds::for_preferences`]).
pub fn convert_for<'a>(
    summary: &'a MessageSummary,
    file_reference_prefix: &str,
    needs: BodyNeeds,
) -> ConvertedEmail<'a> {
    let holds_whole_message = summary.holds_whole_message();
    let parse_limit = summary.prefix.len().min(MAX_PARSED_MESSAGE_BYTES);
    let parsed_bytes = charset::header_block_as_utf8(&summary.prefix[..parse_limit]);
    let parsed_everything = holds_whole_message && parse_limit == summary.prefix.len();
    // Parts are only located here; `body_texts` decodes the few a body is made of.
    let parsed = ParsedMessage::scan(&parsed_bytes, parsed_everything);

    let (structure, layout) = choose_structure(summary, &parsed, parsed_everything);
    let text_parts = match needs.text {
        true => {
            let wanted = TextWanted { max_bytes: needs.max_text_bytes, as_html: false };
            body_texts(&structure, &layout.text_body, None, &parsed, wanted)
        }
        false => Vec::new(),
    };
    // The HTML also tells which attachments are shown inline (`cid:` references), wherever
    // in it they are: then it is decoded whole.
    let inline_possible = attachments::any_has_content_id(&structure, &layout);
    let html_parts = if needs.html || inline_possible {
        let decoded = needs.text.then_some((&layout.text_body[..], &text_parts[..]));
        let max_bytes = needs.max_text_bytes.filter(|_| !inline_possible);
        let wanted = TextWanted { max_bytes, as_html: true };
        body_texts(&structure, &layout.html_body, decoded, &parsed, wanted)
    } else {
        Vec::new()
    };
    let native = if layout.has_html_body(&structure) {
        NativeBodyType::Html
    } else {
        NativeBodyType::PlainText
    };

    let html_we_have: String = match inline_possible {
        true => html_parts.iter().filter(|p| p.is_html).map(|p| p.text.as_str()).collect(),
        false => String::new(),
    };
    let item = build_item(
        summary,
        &parsed,
        &structure,
        &layout,
        native,
        file_reference_prefix,
        &html_we_have,
    );
    let body = BodySource {
        native,
        is_smime: item.message_class.is_smime(),
        text_parts,
        html_parts,
        raw: &summary.prefix,
        raw_is_whole: holds_whole_message,
        message_size: summary.size,
        can_fetch_more: !holds_whole_message,
    };
    ConvertedEmail { item, body }
}

/// The host's BODYSTRUCTURE when it gave one, else the one derived from the bytes. When we
/// parsed the whole message and the host's structure yields no body, or names body parts the
/// parser does not see (servers and parsers disagree on broken MIME), the parser's own view is
/// used so the body comes out. Attachments then follow the parser's numbering too, which is
/// the server's for every well-formed message.
fn choose_structure<'s>(
    summary: &'s MessageSummary,
    parsed: &ParsedMessage<'_>,
    parsed_everything: bool,
) -> (Cow<'s, [Part]>, MimeLayout) {
    if !summary.body_structure.is_empty() {
        let host_layout = structure::layout(&summary.body_structure);
        let mut body_sections = host_layout
            .text_body
            .iter()
            .chain(&host_layout.html_body)
            .filter_map(|&i| summary.body_structure.get(i))
            .peekable();
        let has_body = body_sections.peek().is_some();
        let parser_sees_body = body_sections.all(|part| parsed.has_section(&part.section));
        if !parsed_everything || (has_body && parser_sees_body) {
            return (Cow::Borrowed(&summary.body_structure), host_layout);
        }
        let derived = parsed.derived_structure();
        let derived_layout = structure::layout(&derived);
        if derived_layout.text_body.is_empty() && derived_layout.html_body.is_empty() {
            return (Cow::Borrowed(&summary.body_structure), host_layout);
        }
        return (Cow::Owned(derived), derived_layout);
    }
    let derived = parsed.derived_structure();
    let layout = structure::layout(&derived);
    (Cow::Owned(derived), layout)
}

/// How much of a body's parts to decode: all of them (`max_bytes: None`), or enough for
/// `max_bytes` of the body rendered as HTML (`as_html`) or as plain text.
#[derive(Debug, Clone, Copy)]
struct TextWanted {
    max_bytes: Option<usize>,
    as_html: bool,
}

/// Decoded text beyond [`TextWanted::max_bytes`]: a cut part's last characters may come out
/// differently, and they must lie past what is sent. What a cut can split is at most a few
/// bytes long (a quoted-printable escape or soft break, a base64 quantum, a character of up to
/// four bytes, a UTF-16 surrogate pair, a CR LF); this leaves room for several of them.
const CUT_MARGIN_BYTES: usize = 64;

/// The decoded text of the parts at `indices` of `structure`. A part already in `decoded`
/// (an earlier call's indices and result: a plain-text message's one part is both its text and
/// its HTML body) is copied, not decoded again. Parts after one that is cut short are not
/// decoded: a body stops at its first incomplete part.
fn body_texts(
    structure: &[Part],
    indices: &[usize],
    decoded: Option<(&[usize], &[BodyText])>,
    parsed: &ParsedMessage<'_>,
    wanted: TextWanted,
) -> Vec<BodyText> {
    // `decoded`'s texts are in the order of its indices that name a part, as made below.
    let known: Vec<(usize, &BodyText)> = match decoded {
        Some((indices, texts)) => indices
            .iter()
            .copied()
            .filter(|&index| structure.get(index).is_some())
            .zip(texts)
            .collect(),
        None => Vec::new(),
    };
    let mut texts: Vec<BodyText> = Vec::with_capacity(indices.len());
    for (index, part) in indices.iter().filter_map(|&index| Some((index, structure.get(index)?))) {
        let is_html = part.is("text", "html");
        let full_size = TransferEncoding::from_header(part.encoding.as_deref())
            .estimated_decoded_size(u64::from(part.size));
        let earlier_cut = texts.last().is_some_and(|text| !text.is_complete);
        let text = if earlier_cut {
            BodyText {
                is_html,
                text: String::new(),
                is_complete: false,
                missing_bytes: full_size.max(1),
            }
        } else if let Some((_, text)) = known.iter().find(|(other, _)| *other == index) {
            (*text).clone()
        } else {
            // HTML made into plain text shrinks by an unknown factor: decoded whole.
            let max_bytes = wanted.max_bytes.filter(|_| wanted.as_html || !is_html);
            match decode_part(parsed, &part.section, max_bytes) {
                Some(found) => BodyText {
                    is_html,
                    is_complete: found.is_complete,
                    missing_bytes: if found.is_complete {
                        0
                    } else {
                        full_size.saturating_sub(found.decoded_bytes).max(1)
                    },
                    text: found.text,
                },
                // Not in the bytes we have: nothing of it yet.
                None => BodyText {
                    is_html,
                    text: String::new(),
                    is_complete: false,
                    missing_bytes: full_size.max(1),
                },
            }
        };
        texts.push(text);
    }
    texts
}

/// A part's cleaned text; with `max_bytes`, only as much of a long part as gives that many
/// bytes and [`CUT_MARGIN_BYTES`] more. The first try reads twice that from the stored part
/// (base64 and quoted-printable shrink, UTF-8 from single-byte charsets grows); a part whose
/// text came out shorter (UTF-16, escapes, removed controls) is read four times as far again.
fn decode_part(
    parsed: &ParsedMessage<'_>,
    section: &str,
    max_bytes: Option<usize>,
) -> Option<parsed::PartText> {
    let cleaned = |mut found: parsed::PartText| {
        found.text = sanitize::clean_body_text(found.text);
        found
    };
    let Some(max_bytes) = max_bytes else {
        return parsed.part_text(section).map(cleaned);
    };
    let wanted = max_bytes.saturating_add(CUT_MARGIN_BYTES);
    let stored = parsed.part_body(section)?.len();
    let mut encoded = wanted.saturating_mul(2);
    loop {
        let found = cleaned(parsed.part_text_within(section, encoded)?);
        if encoded >= stored || found.text.len() >= wanted {
            return Some(found);
        }
        encoded = encoded.saturating_mul(4);
    }
}

fn build_item(
    summary: &MessageSummary,
    parsed: &ParsedMessage<'_>,
    structure: &[Part],
    layout: &MimeLayout,
    native: NativeBodyType,
    file_reference_prefix: &str,
    html_we_have: &str,
) -> Item {
    let message = parsed.message();
    let subject = message.map(headers::subject).unwrap_or_default();
    let thread_topic = match message {
        Some(message) => headers::thread_topic(message, &subject),
        None => String::new(),
    };
    let thread_ids = match message {
        Some(message) => headers::thread_ids(message),
        None => headers::ThreadIds { references: Vec::new(), in_reply_to: None, message_id: None },
    };
    let conversation_id =
        conversation::conversation_id(&thread_ids, &subject, summary.uid, summary.internal_date);
    let from = message.and_then(|m| m.from());
    let sender = message.and_then(|m| m.sender());
    let sender_differs =
        sender.is_some() && addresses::first_address(sender) != addresses::first_address(from);
    let mailbox = flags::mailbox_state(&summary.flags);
    let native_parts = match native {
        NativeBodyType::Html => &layout.html_body,
        NativeBodyType::PlainText => &layout.text_body,
    };
    let internet_cpid = native_parts
        .first()
        .and_then(|&i| structure.get(i))
        .map_or(charset::UTF8_CODE_PAGE, |part| {
            charset::code_page_for_charset(part.param("charset"))
        });
    let message_class = message_class::message_class(structure, layout, |section| {
        parsed.part_text(section).map(|t| t.text)
    });

    Item {
        to: addresses::format_mailboxes(message.and_then(|m| m.to()), ", "),
        cc: addresses::format_mailboxes(message.and_then(|m| m.cc()), ", "),
        from: addresses::format_mailboxes(from, ", "),
        reply_to: addresses::format_mailboxes(message.and_then(|m| m.reply_to()), "; "),
        sender: sender_differs.then(|| addresses::format_mailboxes(sender, ", ")),
        bcc: addresses::format_mailboxes(message.and_then(|m| m.bcc()), ", "),
        display_to: addresses::display_names(message.and_then(|m| m.to())),
        subject,
        date_received: dates::format_eas_datetime(summary.internal_date),
        thread_topic,
        importance: message.map_or(Importance::Normal, headers::importance),
        read: mailbox.read,
        message_class,
        internet_cpid,
        content_class: message_class.content_class(),
        flag: mailbox.flag,
        categories: mailbox.categories,
        conversation_id,
        conversation_index: conversation::conversation_index(
            &conversation_id,
            summary.internal_date,
        ),
        native_body_type: native,
        last_verb_executed: mailbox.last_verb,
        is_draft: mailbox.is_draft,
        attachments: attachments::attachments(
            structure,
            layout,
            file_reference_prefix,
            html_we_have,
        ),
    }
}

/// Undoes a part's Content-Transfer-Encoding (`encoding` as in [`BodyPart::encoding`]), leniently:
/// a part fetched as stored becomes the attachment's bytes.
pub(crate) fn decode_transfer_encoding(encoding: Option<&str>, encoded: &[u8]) -> Vec<u8> {
    TransferEncoding::from_header(encoding).decode(encoded).into_owned()
}

/// The structure of a whole raw message with IMAP section numbers, as BODYSTRUCTURE gives it,
/// for a host that gave none (or one without the section a FileReference names).
pub(crate) fn derived_structure(raw: &[u8]) -> Vec<BodyPart> {
    ParsedMessage::parse(raw, true).derived_structure()
}

/// The still-encoded body of the part at IMAP `section` of a whole raw message, like
/// `BODY[section]`. The raw bytes are parsed as they are (no header charset repair), so the
/// offsets are the message's own.
pub(crate) fn encoded_part<'r>(raw: &'r [u8], section: &str) -> Option<&'r [u8]> {
    ParsedMessage::scan(raw, true).part_body(section)
}
