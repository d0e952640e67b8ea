//! Sync response elements (MS-ASCMD §2.2.1.21.2). Element order inside a Collection follows
//! the schema: SyncKey, CollectionId, Status, MoreAvailable, Commands, Responses.

use super::request::GlobalStatus;
use eas_wbxml::tags::{air_sync, air_sync_base as base};
use eas_wbxml::{Content, Element};

pub fn server_id(collection_id: &str, uid: u32) -> String {
    format!("{collection_id}:{uid}")
}

/// The UID of `server_id` if it names an item of this collection.
pub fn uid_of(collection_id: &str, server_id: &str) -> Option<u32> {
    let (collection, uid) = server_id.trim().rsplit_once(':')?;
    if collection != collection_id || uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    uid.parse().ok().filter(|&uid| uid != 0)
}

/// A collection that only reports a status.
pub fn collection_status(sync_key: &str, collection_id: &str, status: u8) -> Element {
    Element::new(air_sync::COLLECTION)
        .text_child(air_sync::SYNC_KEY, sync_key)
        .text_child(air_sync::COLLECTION_ID, collection_id)
        .text_child(air_sync::STATUS, status.to_string())
}

pub fn collection(
    sync_key: &str,
    collection_id: &str,
    more_available: bool,
    commands: Vec<Element>,
    responses: Vec<Element>,
) -> Element {
    let mut element = collection_status(sync_key, collection_id, 1);
    if more_available {
        element.push(Element::new(air_sync::MORE_AVAILABLE));
    }
    if !commands.is_empty() {
        element.push(Element::with_children(air_sync::COMMANDS, commands));
    }
    if !responses.is_empty() {
        element.push(Element::with_children(air_sync::RESPONSES, responses));
    }
    element
}

/// Appends Fetch results to the collection's Responses (created last when absent), the same
/// way on the first answer and on a replay.
pub fn attach_fetches(collection: &mut Element, fetches: Vec<Element>) {
    if fetches.is_empty() {
        return;
    }
    match collection.child_mut(air_sync::RESPONSES) {
        Some(responses) => responses.child_elements_mut().extend(fetches),
        None => collection.push(Element::with_children(air_sync::RESPONSES, fetches)),
    }
}

pub fn add(server_id: String, data: Vec<Element>) -> Element {
    Element::new(air_sync::ADD)
        .text_child(air_sync::SERVER_ID, server_id)
        .with_child(Element::with_children(air_sync::APPLICATION_DATA, data))
}

pub fn change(server_id: String, data: Vec<Element>) -> Element {
    Element::new(air_sync::CHANGE)
        .text_child(air_sync::SERVER_ID, server_id)
        .with_child(Element::with_children(air_sync::APPLICATION_DATA, data))
}

pub fn delete(server_id: String) -> Element {
    Element::new(air_sync::DELETE).text_child(air_sync::SERVER_ID, server_id)
}

pub fn soft_delete(server_id: String) -> Element {
    Element::new(air_sync::SOFT_DELETE).text_child(air_sync::SERVER_ID, server_id)
}

/// Responses > Add for a client Add that failed.
pub fn add_response(client_id: &str, status: u8) -> Element {
    Element::new(air_sync::ADD)
        .text_child(air_sync::CLIENT_ID, client_id)
        .text_child(air_sync::STATUS, status.to_string())
}

/// Responses > Add for a client Add that was stored, with the FileReferences of the
/// attachments it added (16.0 drafts, MS-ASAIRS §2.2.2.2).
pub fn add_success(client_id: &str, server_id: &str, attachments: &[(String, String)]) -> Element {
    let mut element = Element::new(air_sync::ADD)
        .text_child(air_sync::CLIENT_ID, client_id)
        .text_child(air_sync::SERVER_ID, server_id)
        .text_child(air_sync::STATUS, "1");
    if !attachments.is_empty() {
        let list = attachments
            .iter()
            .map(|(client_id, reference)| {
                Element::new(base::ATTACHMENT)
                    .text_child(base::CLIENT_ID, client_id.as_str())
                    .text_child(base::FILE_REFERENCE, reference.as_str())
            })
            .collect();
        element.push(Element::with_children(
            air_sync::APPLICATION_DATA,
            vec![Element::with_children(base::ATTACHMENTS, list)],
        ));
    }
    element
}

/// Responses > Change / Delete for a client command that failed.
pub fn item_response(tag: eas_wbxml::Tag, server_id: &str, status: u8) -> Element {
    Element::new(tag)
        .text_child(air_sync::SERVER_ID, server_id)
        .text_child(air_sync::STATUS, status.to_string())
}

pub fn fetch_response(server_id: &str, status: u8, data: Option<Vec<Element>>) -> Element {
    let mut element = item_response(air_sync::FETCH, server_id, status);
    if let Some(data) = data {
        element.push(Element::with_children(air_sync::APPLICATION_DATA, data));
    }
    element
}

/// `Sync > Status (Limit)` for a failure of the whole request.
pub fn global_status(status: GlobalStatus) -> Element {
    let mut element =
        Element::new(air_sync::SYNC).text_child(air_sync::STATUS, status.status.to_string());
    if let Some(limit) = status.limit {
        element.push(Element::with_text(air_sync::LIMIT, limit.to_string()));
    }
    element
}

pub fn sync_document(collections: Vec<Element>) -> Element {
    Element::new(air_sync::SYNC)
        .with_child(Element::with_children(air_sync::COLLECTIONS, collections))
}

/// Roughly the encoded size of `element` (tags, string terminators and content), for byte
/// budgets; never less than the real size by more than the page switches.
pub fn approximate_size(element: &Element) -> usize {
    2 + match &element.content {
        Content::Empty => 0,
        Content::Text(bytes) => bytes.len() + 2,
        Content::Opaque(bytes) => bytes.len() + 6,
        Content::Children(children) => children.iter().map(approximate_size).sum::<usize>(),
        // exact, with its own SWITCH_PAGE in place of the 2 above
        Content::Encoded(encoded) => encoded.as_bytes().len().saturating_sub(2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_name_their_collection() {
        assert_eq!(server_id("5", 42), "5:42");
        assert_eq!(uid_of("5", "5:42"), Some(42));
        for other in ["6:42", "5:", "5:x", "42", "5:-1", "5:0", "5:99999999999", ""] {
            assert_eq!(uid_of("5", other), None, "{other}");
        }
    }

    #[test]
    fn size_estimate_is_close() {
        let element = collection(
            "a-1",
            "5",
            true,
            vec![add("5:1".into(), vec![Element::with_text(air_sync::CLASS, "x".repeat(1000))])],
            vec![],
        );
        let real =
            eas_wbxml::encode(&eas_wbxml::Document::new(element.clone())).expect("encodes").len();
        let estimate = approximate_size(&element);
        assert!(estimate + 8 >= real && estimate <= real + 64, "{estimate} vs {real}");
    }
}
