//! Pure: drafts written on the device (16.0+, MS-ASEMAIL §3.1.5.3, MS-ASAIRS §2.2.2.2):
//! the fields of a draft Add or Change, the draft they make, and its RFC 5322 form.
//!
//! A Change carries only what the client changed: the stored draft is read back (its
//! recipients, subject, importance, body and attachments) and the changes are laid over it.
//! Attachments are added with their bytes (`airsyncbase:Add`) and removed by FileReference
//! (`airsyncbase:Delete`). The message is built with `mail-builder`; its Date, Message-ID and
//! every multipart boundary come from the caller (`mail-builder` would read the clock, which
//! panics in wasm32-unknown-unknown).

use crate::email::{
    self, BodyData, BodyPreference, BodyType, Importance, MessageSummary, MimeSupport,
    NativeBodyType,
};
use eas_wbxml::Element;
use eas_wbxml::tags::{air_sync_base as base, email as em, email2};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};

/// Attachments one draft may carry.
const MAX_ATTACHMENTS: usize = 100;
/// Longest header value kept from the client (To, Cc, Bcc, Subject, names).
const MAX_FIELD_CHARS: usize = 32_768;

/// The fields of a draft Add or Change; `None`: not sent (a Change keeps the stored value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftEdit {
    pub to: Option<String>,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub subject: Option<String>,
    pub importance: Option<Importance>,
    pub body: Option<DraftBody>,
    pub attachment_adds: Vec<NewAttachment>,
    /// FileReferences of attachments to remove.
    pub attachment_deletes: Vec<String>,
    /// email2:Send: send the draft now (and remove it from Drafts).
    pub send: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftBody {
    pub html: bool,
    pub text: String,
}

/// An attachment a client adds (airsyncbase:Add).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub client_id: String,
    pub display_name: String,
    pub content_type: Option<String>,
    pub content_id: Option<String>,
    pub is_inline: bool,
    pub content: Vec<u8>,
}

/// Whether a Change's ApplicationData touches draft fields (rather than only Read, Flag or
/// Categories).
pub fn is_draft_edit(data: &Element) -> bool {
    [em::TO, em::CC, email2::BCC, em::SUBJECT, em::IMPORTANCE, base::BODY, base::ATTACHMENTS]
        .iter()
        .chain(&[email2::SEND])
        .any(|&tag| data.child(tag).is_some())
}

impl DraftEdit {
    /// Reads a draft's ApplicationData; `None` when a value is malformed (item Status 6).
    pub fn parse(data: &Element) -> Option<DraftEdit> {
        let text = |tag| data.text_of(tag).map(|value| one_line(value, MAX_FIELD_CHARS));
        let mut edit = DraftEdit {
            to: text(em::TO),
            cc: text(em::CC),
            bcc: text(email2::BCC),
            subject: text(em::SUBJECT),
            send: data.child(email2::SEND).is_some(),
            ..DraftEdit::default()
        };
        if let Some(importance) = data.text_of(em::IMPORTANCE) {
            edit.importance = Some(match importance.trim() {
                "0" => Importance::Low,
                "1" => Importance::Normal,
                "2" => Importance::High,
                _ => return None,
            });
        }
        if let Some(body) = data.child(base::BODY) {
            let html = match body.text_of(base::TYPE).map(str::trim) {
                Some("1") | None => false,
                Some("2") => true,
                // RTF and MIME bodies are not written by draft clients.
                Some(_) => return None,
            };
            let bytes = body.bytes_of(base::DATA).unwrap_or_default();
            let text = String::from_utf8_lossy(bytes).replace('\0', "");
            edit.body = Some(DraftBody { html, text });
        }
        if let Some(attachments) = data.child(base::ATTACHMENTS) {
            for element in attachments.child_elements() {
                if element.tag == base::ADD {
                    edit.attachment_adds.push(parse_attachment(element)?);
                } else if element.tag == base::DELETE {
                    let reference = element.text_of(base::FILE_REFERENCE)?.trim().to_owned();
                    edit.attachment_deletes.push(reference);
                }
                if edit.attachment_adds.len() > MAX_ATTACHMENTS {
                    return None;
                }
            }
        }
        Some(edit)
    }
}

fn parse_attachment(element: &Element) -> Option<NewAttachment> {
    let client_id = element.text_of(base::CLIENT_ID)?.trim().to_owned();
    if client_id.is_empty() || client_id.len() > 64 {
        return None;
    }
    let display_name = element
        .text_of(base::DISPLAY_NAME)
        .map(|name| one_line(name, 255))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "attachment".to_owned());
    let content_type = element
        .text_of(base::CONTENT_TYPE)
        .map(str::trim)
        .filter(|ct| is_media_type(ct))
        .map(str::to_ascii_lowercase);
    let content_id = element
        .text_of(base::CONTENT_ID)
        .map(|id| one_line(id, 255).trim_matches(['<', '>']).to_owned())
        .filter(|id| !id.is_empty());
    let is_inline = matches!(element.text_of(base::IS_INLINE).map(str::trim), Some("1" | ""));
    let content = element.bytes_of(base::CONTENT).unwrap_or_default().to_vec();
    Some(NewAttachment { client_id, display_name, content_type, content_id, is_inline, content })
}

/// `type/subtype` made of token characters.
fn is_media_type(text: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    text.split_once('/').is_some_and(|(t, s)| token(t) && token(s))
}

/// A header value on one line (no CR/LF, no NUL), at most `max` characters.
fn one_line(value: &str, max: usize) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// An attachment of a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftAttachment {
    /// The FileReference it has in the stored draft; `None` for one added now.
    pub file_reference: Option<String>,
    /// The client's id for one added now (answered with its FileReference).
    pub client_id: Option<String>,
    pub display_name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub is_inline: bool,
    pub bytes: Vec<u8>,
}

/// A draft's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub importance: Option<Importance>,
    pub body: DraftBody,
    pub attachments: Vec<DraftAttachment>,
}

impl Draft {
    /// A stored draft, read back. `prefix` is the FileReference prefix Sync gives its
    /// attachments (`"{collection}:{uid}"`).
    pub fn from_message(raw: &[u8], internal_date: i64, prefix: &str) -> Draft {
        let summary = MessageSummary::from_full_message(0, Vec::new(), internal_date, raw.to_vec());
        let converted = email::convert(&summary, prefix);
        let item = &converted.item;
        let html = item.native_body_type == NativeBodyType::Html;
        let wanted = BodyPreference::new(if html { BodyType::Html } else { BodyType::PlainText });
        let body = match converted.body.select_body(&[wanted], MimeSupport::Never).body.data {
            Some(BodyData::Text(text)) => text,
            _ => String::new(),
        };
        let structure = email::derived_structure(raw);
        let attachments = item
            .attachments
            .iter()
            .filter_map(|attachment| {
                let section = attachment.file_reference.strip_prefix(prefix)?.strip_prefix(':')?;
                let part = structure.iter().find(|p| !p.is_multipart && p.section == section)?;
                let encoded = email::encoded_part(raw, section)?;
                Some(DraftAttachment {
                    file_reference: Some(attachment.file_reference.clone()),
                    client_id: None,
                    display_name: attachment.display_name.clone(),
                    content_type: attachment.content_type.clone(),
                    content_id: attachment.content_id.clone(),
                    is_inline: attachment.is_inline,
                    bytes: email::decode_transfer_encoding(part.encoding.as_deref(), encoded),
                })
            })
            .collect();
        Draft {
            to: item.to.clone(),
            cc: item.cc.clone(),
            bcc: item.bcc.clone(),
            subject: item.subject.clone(),
            importance: Some(item.importance).filter(|&i| i != Importance::Normal),
            body: DraftBody { html, text: body },
            attachments,
        }
    }

    /// Lays `edit` over the draft. FileReferences that name no attachment are ignored (the
    /// client's view may be older than ours; what it wanted gone is gone).
    pub fn apply(&mut self, edit: &DraftEdit) {
        let replace = |field: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                field.clone_from(value);
            }
        };
        replace(&mut self.to, &edit.to);
        replace(&mut self.cc, &edit.cc);
        replace(&mut self.bcc, &edit.bcc);
        replace(&mut self.subject, &edit.subject);
        if let Some(importance) = edit.importance {
            self.importance = Some(importance);
        }
        if let Some(body) = &edit.body {
            self.body = body.clone();
        }
        self.attachments.retain(|attachment| {
            !attachment
                .file_reference
                .as_ref()
                .is_some_and(|reference| edit.attachment_deletes.contains(reference))
        });
        for added in &edit.attachment_adds {
            if self.attachments.len() >= MAX_ATTACHMENTS {
                break;
            }
            self.attachments.push(DraftAttachment {
                file_reference: None,
                client_id: Some(added.client_id.clone()),
                display_name: added.display_name.clone(),
                content_type: added
                    .content_type
                    .clone()
                    .unwrap_or_else(|| guess_content_type(&added.display_name).to_owned()),
                content_id: added.content_id.clone(),
                is_inline: added.is_inline,
                bytes: added.content.clone(),
            });
        }
    }
}

/// A media type from a file name's extension, for attachments sent without ContentType.
fn guess_content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("heic") => "image/heic",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("htm" | "html") => "text/html",
        Some("zip") => "application/zip",
        Some("doc") => "application/msword",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("ics") => "text/calendar",
        Some("eml") => "message/rfc822",
        _ => "application/octet-stream",
    }
}

/// What the caller supplies for a new message: no clock or randomness here.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Without angle brackets.
    pub message_id: String,
    /// Unix seconds.
    pub date: i64,
    /// Unique per message: multipart boundaries are made from it.
    pub boundary_seed: u64,
    /// The user's address, for From.
    pub from: Option<String>,
}

/// The RFC 5322 message of `draft`.
pub fn build(draft: &Draft, envelope: &Envelope) -> Vec<u8> {
    let mut builder =
        MessageBuilder::new().message_id(envelope.message_id.as_str()).date(envelope.date.max(0));
    if let Some(from) = &envelope.from {
        builder = builder.from(Address::new_address(None::<&str>, from.as_str()));
    }
    for (header, value) in [("To", &draft.to), ("Cc", &draft.cc), ("Bcc", &draft.bcc)] {
        let list = addresses(value);
        if list.is_empty() {
            continue;
        }
        let list = Address::new_list(list);
        builder = match header {
            "To" => builder.to(list),
            "Cc" => builder.cc(list),
            _ => builder.bcc(list),
        };
    }
    builder = builder.subject(draft.subject.as_str());
    match draft.importance {
        Some(Importance::High) => {
            builder =
                builder.header("Importance", Raw::new("high")).header("X-Priority", Raw::new("1"));
        }
        Some(Importance::Low) => {
            builder =
                builder.header("Importance", Raw::new("low")).header("X-Priority", Raw::new("5"));
        }
        _ => {}
    }
    let body_type = if draft.body.html { "text/html" } else { "text/plain" };
    let body = MimePart::new(
        ContentType::new(body_type).attribute("charset", "utf-8"),
        BodyPart::Text(draft.body.text.as_str().into()),
    );
    let root = if draft.attachments.is_empty() {
        body
    } else {
        let mut parts = vec![body];
        for attachment in &draft.attachments {
            let content_type = ContentType::new(attachment.content_type.as_str())
                .attribute("name", attachment.display_name.as_str());
            let mut part =
                MimePart::new(content_type, BodyPart::Binary(attachment.bytes.as_slice().into()));
            part = if attachment.is_inline {
                part.inline()
            } else {
                part.attachment(attachment.display_name.as_str())
            };
            if let Some(id) = &attachment.content_id {
                part = part.cid(id.as_str());
            }
            parts.push(part);
        }
        let boundary = format!("=_eas-edge-{:016x}", envelope.boundary_seed);
        MimePart::new(
            ContentType::new("multipart/mixed").attribute("boundary", boundary),
            BodyPart::Multipart(parts),
        )
    };
    // Writing into a Vec cannot fail.
    builder.body(root).write_to_vec().unwrap_or_default()
}

/// `"Name" <address>` entries as the client wrote them (commas or semicolons between them),
/// read with the MIME parser so quoting and encoded words are handled like in received mail.
fn addresses(field: &str) -> Vec<Address<'static>> {
    if field.trim().is_empty() {
        return Vec::new();
    }
    let header = format!("To: {}\r\n\r\n", field.replace(';', ","));
    let Some(message) = mail_parser::MessageParser::default().parse(header.as_bytes()) else {
        return Vec::new();
    };
    message
        .to()
        .into_iter()
        .flat_map(|list| list.iter())
        .filter_map(|addr| {
            let address = addr.address()?.trim();
            if address.is_empty() || !address.contains('@') {
                return None;
            }
            let name = addr.name().map(str::trim).filter(|n| !n.is_empty() && *n != address);
            Some(Address::new_address(name.map(str::to_owned), address.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use eas_wbxml::tags::air_sync;

    fn envelope() -> Envelope {
        Envelope {
            message_id: "d1@example.test".into(),
            date: 1_773_558_000,
            boundary_seed: 7,
            from: Some("jane@example.test".into()),
        }
    }

    fn data(children: Vec<Element>) -> Element {
        Element::with_children(air_sync::APPLICATION_DATA, children)
    }

    fn add_attachment(client_id: &str, name: &str, content: &[u8]) -> Element {
        Element::new(base::ADD)
            .text_child(base::CLIENT_ID, client_id)
            .text_child(base::DISPLAY_NAME, name)
            .text_child(base::METHOD, "1")
            .opaque_child(base::CONTENT, content.to_vec())
            .text_child(base::CONTENT_TYPE, "text/plain")
    }

    fn built(edit: &DraftEdit) -> Vec<u8> {
        let mut draft = Draft::default();
        draft.apply(edit);
        build(&draft, &envelope())
    }

    #[test]
    fn a_new_draft_builds_a_message_that_reads_back_the_same() {
        let edit = DraftEdit::parse(&data(vec![
            Element::with_text(em::TO, "\"Bob B\" <bob@example.org>, carol@example.org"),
            Element::with_text(email2::BCC, "dave@example.org"),
            Element::with_text(em::SUBJECT, "Plans\r\nBcc: evil@example.org"),
            Element::with_text(em::IMPORTANCE, "2"),
            Element::new(base::BODY)
                .text_child(base::TYPE, "2")
                .text_child(base::DATA, "<p>Grüße</p>"),
            Element::new(base::ATTACHMENTS).with_child(add_attachment("a1", "notes.txt", b"hi")),
        ]))
        .expect("valid");
        assert!(!edit.send);
        let raw = built(&edit);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Message-ID: <d1@example.test>"), "{text}");
        assert!(text.contains("boundary=\"=_eas-edge-0000000000000007\""), "{text}");
        assert!(!text.contains("\r\nBcc: evil"), "no header injection: {text}");

        let draft = Draft::from_message(&raw, 0, "3:9");
        assert_eq!(draft.to, "\"Bob B\" <bob@example.org>, carol@example.org");
        assert_eq!(draft.bcc, "dave@example.org");
        assert_eq!(draft.subject, "Plans Bcc: evil@example.org");
        assert_eq!(draft.importance, Some(Importance::High));
        assert!(draft.body.html && draft.body.text.contains("Grüße"), "{:?}", draft.body);
        assert_eq!(draft.attachments.len(), 1);
        let attachment = &draft.attachments[0];
        assert_eq!(attachment.file_reference.as_deref(), Some("3:9:2"));
        assert_eq!(
            (attachment.display_name.as_str(), &attachment.bytes[..]),
            ("notes.txt", &b"hi"[..])
        );
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name() {
        let first = DraftEdit::parse(&data(vec![
            Element::with_text(em::TO, "bob@example.org"),
            Element::with_text(em::SUBJECT, "Before"),
            Element::new(base::BODY).text_child(base::TYPE, "1").text_child(base::DATA, "body"),
            Element::new(base::ATTACHMENTS)
                .with_child(add_attachment("a1", "one.txt", b"1"))
                .with_child(add_attachment("a2", "two.txt", b"2")),
        ]))
        .expect("valid");
        let stored = built(&first);
        let mut draft = Draft::from_message(&stored, 0, "3:4");
        let change = DraftEdit::parse(&data(vec![
            Element::with_text(em::SUBJECT, "After"),
            Element::new(base::ATTACHMENTS)
                .with_child(Element::new(base::DELETE).text_child(base::FILE_REFERENCE, "3:4:2")),
            Element::new(email2::SEND),
        ]))
        .expect("valid");
        assert!(change.send && is_draft_edit(&data(vec![Element::new(email2::SEND)])));
        draft.apply(&change);
        assert_eq!((draft.to.as_str(), draft.subject.as_str()), ("bob@example.org", "After"));
        assert_eq!(draft.body, DraftBody { html: false, text: "body".into() });
        let names: Vec<_> = draft.attachments.iter().map(|a| a.display_name.as_str()).collect();
        assert_eq!(names, ["two.txt"]);
    }

    #[test]
    fn malformed_fields_are_refused_and_flags_alone_are_no_draft_edit() {
        for bad in [
            data(vec![Element::with_text(em::IMPORTANCE, "9")]),
            data(vec![Element::new(base::BODY).text_child(base::TYPE, "3")]),
            data(vec![Element::new(base::ATTACHMENTS).with_child(Element::new(base::ADD))]),
        ] {
            assert_eq!(DraftEdit::parse(&bad), None, "{bad:?}");
        }
        assert!(!is_draft_edit(&data(vec![Element::with_text(em::READ, "1")])));
        assert_eq!(guess_content_type("a.PDF"), "application/pdf");
    }
}
