//! An [`EmailItem`] and its [`Body`] as the children of airsync:ApplicationData (Sync),
//! itemoperations:Properties (ItemOperations Fetch) or search:Properties, for one protocol
//! version (EAS-NOTES §6.1 for the fields and the versions that carry them, §7).
//!
//! Element order follows Exchange's; clients treat the children as a set, but a fixed order
//! keeps responses byte-identical for the Sync retry rule.

use super::body::{Body, BodyData};
use super::dates::format_eas_datetime;
use super::item::{Attachment, EmailItem, Flag, FlagStatus, LastVerb};
use crate::ashttp::ProtocolVersion;
use eas_wbxml::Element;
use eas_wbxml::tags::{air_sync_base as base, email, email2, tasks};

/// Every property of a new item (Sync Add, Fetch, Search results).
pub fn application_data(
    item: &EmailItem,
    body: Option<&Body<'_>>,
    version: ProtocolVersion,
) -> Vec<Element> {
    let since_14 = version >= ProtocolVersion::V14_0;
    let since_16 = version >= ProtocolVersion::V16_0;
    let mut children = vec![
        Element::with_text(email::TO, item.to.as_str()),
        Element::with_text(email::CC, item.cc.as_str()),
        Element::with_text(email::FROM, item.from.as_str()),
        Element::with_text(email::SUBJECT, item.subject.as_str()),
        Element::with_text(email::REPLY_TO, item.reply_to.as_str()),
        Element::with_text(email::DATE_RECEIVED, item.date_received.as_str()),
        Element::with_text(email::DISPLAY_TO, item.display_to.as_str()),
        Element::with_text(email::THREAD_TOPIC, item.thread_topic.as_str()),
        Element::with_text(email::IMPORTANCE, (item.importance as u8).to_string()),
        Element::with_text(email::READ, bool_text(item.read)),
    ];
    children.retain(|child| child.text() != Some("") || is_always_sent(child));
    if !item.attachments.is_empty() {
        children.push(Element::with_children(
            base::ATTACHMENTS,
            item.attachments.iter().map(attachment).collect(),
        ));
    }
    if let Some(body) = body {
        children.push(body_element(body, since_14));
    }
    children.push(Element::with_text(email::MESSAGE_CLASS, item.message_class.as_str()));
    children.push(Element::with_text(email::INTERNET_CPID, item.internet_cpid.to_string()));
    children.push(flag(&item.flag));
    children.push(Element::with_text(email::CONTENT_CLASS, item.content_class));
    children.push(Element::with_text(
        base::NATIVE_BODY_TYPE,
        (item.native_body_type as u8).to_string(),
    ));
    if since_14 {
        children.push(Element::with_opaque(email2::CONVERSATION_ID, item.conversation_id.to_vec()));
        children.push(Element::with_opaque(
            email2::CONVERSATION_INDEX,
            item.conversation_index.to_vec(),
        ));
        children.push(categories(&item.categories));
        if item.last_verb_executed != LastVerb::Unknown {
            children.push(Element::with_text(
                email2::LAST_VERB_EXECUTED,
                (item.last_verb_executed as u8).to_string(),
            ));
        }
        if let Some(sender) = &item.sender {
            children.push(Element::with_text(email2::SENDER, sender.as_str()));
        }
    }
    if since_16 {
        children.push(Element::with_text(email2::IS_DRAFT, bool_text(item.is_draft)));
        if item.is_draft && !item.bcc.is_empty() {
            children.push(Element::with_text(email2::BCC, item.bcc.as_str()));
        }
    }
    children
}

/// The properties a flag change on the server touches (Sync Change): Read, Flag and, from
/// 14.0, Categories and LastVerbExecuted.
pub fn flag_change(item: &EmailItem, version: ProtocolVersion) -> Vec<Element> {
    let mut children =
        vec![Element::with_text(email::READ, bool_text(item.read)), flag(&item.flag)];
    if version >= ProtocolVersion::V14_0 {
        children.push(categories(&item.categories));
        if item.last_verb_executed != LastVerb::Unknown {
            children.push(Element::with_text(
                email2::LAST_VERB_EXECUTED,
                (item.last_verb_executed as u8).to_string(),
            ));
        }
    }
    children
}

/// airsyncbase:Body (MS-ASAIRS §2.2.2.9); Preview only from 14.0.
pub fn body_element(body: &Body<'_>, with_preview: bool) -> Element {
    let mut element = Element::new(base::BODY)
        .text_child(base::TYPE, (body.body_type as u8).to_string())
        .text_child(base::ESTIMATED_DATA_SIZE, body.estimated_data_size.to_string())
        .text_child(base::TRUNCATED, bool_text(body.truncated));
    match &body.data {
        Some(BodyData::Text(text)) => element.push(Element::with_text(base::DATA, text.as_str())),
        Some(BodyData::Mime(bytes)) => element.push(mime_data(bytes)),
        None => {}
    }
    if with_preview && let Some(preview) = &body.preview {
        element.push(Element::with_text(base::PREVIEW, preview.as_str()));
    }
    element
}

/// Raw MIME goes out as an inline string when it can be one; a NUL byte would end an inline
/// string early, so such messages (and any non-UTF-8 bytes) go as opaque data, which every
/// client decodes to the same bytes.
fn mime_data(bytes: &[u8]) -> Element {
    if !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() {
        Element::with_text(base::DATA, bytes.to_vec())
    } else {
        Element::with_opaque(base::DATA, bytes.to_vec())
    }
}

fn attachment(attachment: &Attachment) -> Element {
    let mut element = Element::new(base::ATTACHMENT)
        .text_child(base::DISPLAY_NAME, attachment.display_name.as_str())
        .text_child(base::FILE_REFERENCE, attachment.file_reference.as_str())
        .text_child(base::METHOD, (attachment.method as u8).to_string())
        .text_child(base::ESTIMATED_DATA_SIZE, attachment.estimated_data_size.to_string());
    if let Some(content_id) = &attachment.content_id {
        element.push(Element::with_text(base::CONTENT_ID, content_id.as_str()));
    }
    if attachment.is_inline {
        element.push(Element::with_text(base::IS_INLINE, "1"));
    }
    element
}

/// email:Flag (MS-ASEMAIL §2.2.2.34): empty when cleared.
fn flag(flag: &Flag) -> Element {
    let mut element = Element::new(email::FLAG);
    match flag.status {
        FlagStatus::Cleared => {}
        FlagStatus::Active => {
            element.push(Element::with_text(email::STATUS, "2"));
            element.push(Element::with_text(
                email::FLAG_TYPE,
                flag.flag_type.as_deref().unwrap_or("Flag for follow up"),
            ));
            if let Some(start) = flag.start_date {
                element.push(Element::with_text(tasks::START_DATE, format_eas_datetime(start)));
                element.push(Element::with_text(tasks::UTC_START_DATE, format_eas_datetime(start)));
            }
            if let Some(due) = flag.due_date {
                element.push(Element::with_text(tasks::DUE_DATE, format_eas_datetime(due)));
                element.push(Element::with_text(tasks::UTC_DUE_DATE, format_eas_datetime(due)));
            }
        }
        FlagStatus::Complete => {
            element.push(Element::with_text(email::STATUS, "1"));
            if let Some(flag_type) = &flag.flag_type {
                element.push(Element::with_text(email::FLAG_TYPE, flag_type.as_str()));
            }
            if let Some(done) = flag.complete_time {
                element.push(Element::with_text(email::COMPLETE_TIME, format_eas_datetime(done)));
                element.push(Element::with_text(tasks::DATE_COMPLETED, format_eas_datetime(done)));
            }
        }
    }
    element
}

/// email:Categories, empty when there are none (so a change can clear them).
fn categories(categories: &[String]) -> Element {
    Element::with_children(
        email::CATEGORIES,
        categories.iter().map(|name| Element::with_text(email::CATEGORY, name.as_str())).collect(),
    )
}

fn bool_text(value: bool) -> &'static str {
    if value { "1" } else { "0" }
}

/// Fields sent even when empty: a message without a subject still has one (the phone shows
/// "(no subject)"), and From/To/DateReceived are expected on every mail item.
fn is_always_sent(element: &Element) -> bool {
    [email::TO, email::FROM, email::SUBJECT, email::DATE_RECEIVED].contains(&element.tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::{BodyPreference, BodyType, MessageSummary, MimeSupport, convert};

    const MESSAGE: &[u8] = b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\n\
Subject: Lunch\r\nMessage-ID: <m1@example.org>\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nSee you at noon.\r\n";

    fn converted_children(version: ProtocolVersion, flags: &[&str]) -> Vec<Element> {
        let summary = MessageSummary::from_full_message(
            7,
            flags.iter().map(|f| (*f).to_owned()).collect(),
            1_793_000_000,
            MESSAGE.to_vec(),
        );
        let converted = convert(&summary, "5:7");
        let selection = converted
            .body
            .select_body(&[BodyPreference::new(BodyType::PlainText)], MimeSupport::Never);
        application_data(&converted.item, Some(&selection.body), version)
    }

    fn tags(children: &[Element]) -> Vec<eas_wbxml::Tag> {
        children.iter().map(|child| child.tag).collect()
    }

    #[test]
    fn version_12_has_no_email2_or_categories() {
        let children = converted_children(ProtocolVersion::V12_1, &["\\Seen"]);
        let tags = tags(&children);
        assert!(tags.contains(&email::SUBJECT) && tags.contains(&base::BODY));
        assert!(!tags.contains(&email2::CONVERSATION_ID));
        assert!(!tags.contains(&email::CATEGORIES));
        let read = children.iter().find(|c| c.tag == email::READ).and_then(Element::text);
        assert_eq!(read, Some("1"));
    }

    #[test]
    fn version_16_adds_threading_categories_and_draft_state() {
        let children = converted_children(ProtocolVersion::V16_1, &["\\Flagged", "Work"]);
        let tags = tags(&children);
        for wanted in [email2::CONVERSATION_ID, email2::CONVERSATION_INDEX, email2::IS_DRAFT] {
            assert!(tags.contains(&wanted), "{wanted:?} missing");
        }
        let flag = children.iter().find(|c| c.tag == email::FLAG).expect("flag");
        assert_eq!(flag.text_of(email::STATUS), Some("2"));
        let categories = children.iter().find(|c| c.tag == email::CATEGORIES).expect("cats");
        let names: Vec<_> =
            categories.children(email::CATEGORY).filter_map(Element::text).collect();
        assert_eq!(names, ["Work"]);
    }

    #[test]
    fn body_carries_type_size_and_data() {
        let children = converted_children(ProtocolVersion::V14_1, &[]);
        let body = children.iter().find(|c| c.tag == base::BODY).expect("body");
        assert_eq!(body.text_of(base::TYPE), Some("1"));
        assert_eq!(body.text_of(base::TRUNCATED), Some("0"));
        assert!(body.text_of(base::DATA).is_some_and(|data| data.contains("noon")));
    }

    #[test]
    fn empty_optional_fields_are_left_out() {
        let children = converted_children(ProtocolVersion::V14_1, &[]);
        let tags = tags(&children);
        assert!(!tags.contains(&email::CC) && !tags.contains(&email::REPLY_TO));
        assert!(tags.contains(&email::TO));
    }

    #[test]
    fn mime_with_nul_bytes_is_opaque() {
        assert!(matches!(mime_data(b"a\0b").content, eas_wbxml::Content::Opaque(_)));
        assert!(matches!(mime_data(b"plain").content, eas_wbxml::Content::Text(_)));
    }

    #[test]
    fn a_flag_change_is_small_and_renders_cleared_flags_empty() {
        let summary = MessageSummary::from_full_message(1, vec![], 0, MESSAGE.to_vec());
        let item = convert(&summary, "1:1").item;
        let children = flag_change(&item, ProtocolVersion::V12_1);
        assert_eq!(tags(&children), vec![email::READ, email::FLAG]);
        assert!(children[1].is_empty());
    }
}
