//! Search ([MS-ASCMD] §2.2.1.16, EAS-NOTES §4.11): the Mailbox store (FreeText, CollectionIds
//! with DeepTraversal, DateReceived bounds, ConversationId, Range paging, body preferences in
//! the results) and the GAL store answered from the addresses the account has seen (see
//! `resolve_recipients::address_book`; there is no directory behind this server).
//!
//! The request is `Search > Store > Name, Query, Options`. A Mailbox query is one `And` of
//! airsync:Class, airsync:CollectionId*, FreeText, GreaterThan/LessThan (email:DateReceived +
//! Value) and ConversationId. Results come newest first as `Result > airsync:Class, LongId,
//! airsync:CollectionId, Properties` with the item's properties as Sync renders them. LongId
//! is `"{collection}:{uid}"`, the same string as the item's ServerId, so ItemOperations and
//! SmartReply/SmartForward can resolve it like a ServerId.
//!
//! Search > Status is 1 for every well-formed request; Store > Status (§2.2.3.177.13) says how
//! the query went:
//! * 1 success (no matches: an empty `Result`, Total 0);
//! * 2 invalid request: no or unknown store name (DocumentLibrary included), an element the
//!   query language does not have (e.g. an email:* property), a bad date, Range or body
//!   preference, an unreadable ConversationId;
//! * 3 server error: the mailbox or the state store failed;
//! * 8 too complex: not exactly one `And`, Class/CollectionId/FreeText outside it, `Or`,
//!   nested `And`, FreeText with OR/NOT or over the length and word limits;
//! * 11 FolderSync required: a CollectionId the folder map does not know;
//! * 12 Range asks for more than [`MAX_RESULTS`] results at once (default 0-99).
//!
//! Every search starts afresh (RebuildResults is implied); bounds are in `mailbox.rs` and
//! `conversation.rs`.

mod conversation;
pub mod criteria;
pub mod headers;
pub mod mailbox;
#[cfg(test)]
pub mod test_mail;
#[cfg(test)]
mod tests;

use super::resolve_recipients::address_book::{self, Contact};
use super::{answer_common_status, decode_body, wbxml_response};
use crate::ashttp::{CommonStatus, EasRequest, ProtocolVersion};
use crate::capabilities::{Capabilities, Level};
use crate::email::{self, BodyPreference, BodyType, MessageSummary, MimeSupport};
use crate::http::Response;
use base64::Engine as _;
use criteria::{ResultRange, TooComplex};
use eas_wbxml::tags::{air_sync, email as mail, gal, search};
use eas_wbxml::{Content, Document, Element};
use mailbox::{Criteria, Failure, Hit, Matches, Scope};

/// Results in one response, and the default Range (MS-ASCMD §2.2.3.143.3: 0-99 for the
/// mailbox and the GAL).
pub const MAX_RESULTS: usize = 100;

/// Body bytes of one result at most (a larger body is sent truncated; the client fetches the
/// rest with ItemOperations).
pub const MAX_RESULT_BODY_BYTES: u32 = 256 * 1024;

/// TruncationSize of the plain-text body sent when the client names no BodyPreference.
const DEFAULT_TRUNCATION_BYTES: u32 = 4 * 1024;

/// A result's message is fetched whole (when its first bytes do not hold the body asked for)
/// only up to this size, and all results together up to [`FULL_FETCH_BUDGET`].
const MAX_FULL_FETCH_BYTES: u32 = 1024 * 1024;
const FULL_FETCH_BUDGET: u64 = 4 * 1024 * 1024;

/// Encoded bytes of results in one response; the first result always goes.
const RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// CollectionIds in one query, at most ("too complex" beyond).
const MAX_COLLECTIONS: usize = 100;

/// Longest CollectionId accepted.
const MAX_ID_LEN: usize = 64;

/// Longest GAL query text, in bytes.
const MAX_GAL_QUERY_BYTES: usize = 256;

/// Store > Status values (MS-ASCMD §2.2.3.177.13).
mod status {
    pub const SUCCESS: u8 = 1;
    pub const INVALID_REQUEST: u8 = 2;
    pub const SERVER_ERROR: u8 = 3;
    pub const TOO_COMPLEX: u8 = 8;
    pub const FOLDER_SYNC_REQUIRED: u8 = 11;
    pub const RANGE_EXCEEDED: u8 = 12;
}

pub async fn run(
    caps: &impl Capabilities,
    identity: &str,
    request: &EasRequest,
    body: &[u8],
) -> Response {
    let Some(document) = decode_body(caps, request, body) else {
        return answer_common_status(request, CommonStatus::InvalidWbxml);
    };
    let root = &document.root;
    if root.tag != search::SEARCH {
        return answer_common_status(request, CommonStatus::InvalidXml);
    }
    // More than one Store is undefined (§2.2.3.178.3); Exchange answers the first.
    let store = match root.child(search::STORE) {
        None => store_status(status::INVALID_REQUEST),
        Some(store) => {
            let name = store.text_of(search::NAME).map(str::trim).unwrap_or_default();
            if name.eq_ignore_ascii_case("Mailbox") {
                mailbox_store(caps, request, store).await
            } else if name.eq_ignore_ascii_case("GAL") {
                gal_store(caps, identity, request, store).await
            } else {
                caps.log(Level::Info, &format!("Search of store {name:?}: not offered"));
                store_status(status::INVALID_REQUEST)
            }
        }
    };
    let answer = Element::new(search::SEARCH)
        .text_child(search::STATUS, "1")
        .with_child(Element::new(search::RESPONSE).with_child(store));
    wbxml_response(&Document::new(answer), request)
}

fn store_status(code: u8) -> Element {
    Element::new(search::STORE).text_child(search::STATUS, code.to_string())
}

/// The Mailbox store's query and options.
#[derive(Debug)]
struct MailboxSearch {
    scope: Scope,
    criteria: Criteria,
    /// False when airsync:Class names only classes this mail-only server has none of.
    wants_email: bool,
    range: ResultRange,
    preferences: Vec<BodyPreference>,
    mime_support: MimeSupport,
}

async fn mailbox_store(caps: &impl Capabilities, request: &EasRequest, store: &Element) -> Element {
    let parsed = match parse_mailbox_search(store) {
        Ok(parsed) => parsed,
        Err(code) => return store_status(code),
    };
    if parsed.range.len() > MAX_RESULTS {
        return store_status(status::RANGE_EXCEEDED);
    }
    if !parsed.wants_email {
        return finish(store_status(status::SUCCESS), Vec::new(), &parsed.range, 0);
    }
    let matches = match mailbox::find(caps, &parsed.scope, &parsed.criteria).await {
        Ok(matches) => matches,
        Err(Failure::UnknownCollection(id)) => {
            caps.log(Level::Info, &format!("Search: unknown collection {id}"));
            return store_status(status::FOLDER_SYNC_REQUIRED);
        }
        Err(Failure::Unavailable(why)) => {
            caps.log(Level::Warn, &format!("Search: {why}"));
            return store_status(status::SERVER_ERROR);
        }
    };
    let total = matches.hits.len();
    let Some(page) = parsed.range.within(total, MAX_RESULTS) else {
        return finish(store_status(status::SUCCESS), Vec::new(), &parsed.range, total);
    };
    let hits = &matches.hits[page.clone()];
    let prefix = crate::sync::prefix_bytes_for(&parsed.preferences);
    let summaries = match mailbox::page_summaries(caps, &matches, hits, prefix).await {
        Ok(summaries) => summaries,
        Err(Failure::UnknownCollection(_) | Failure::Unavailable(_)) => {
            return store_status(status::SERVER_ERROR);
        }
    };
    let mut results = Vec::new();
    let mut bytes = 0;
    let mut full_fetch_budget = FULL_FETCH_BUDGET;
    for (hit, summary) in hits.iter().zip(summaries) {
        let Some(summary) = summary else { continue };
        let result = mailbox_result(
            caps,
            request.version,
            &matches,
            hit,
            summary,
            &parsed,
            &mut full_fetch_budget,
        )
        .await;
        let size = approximate_size(&result);
        if !results.is_empty() && bytes + size > RESPONSE_BYTES {
            break;
        }
        bytes += size;
        results.push(result);
    }
    let range = ResultRange { first: page.start, last: page.end - 1 };
    finish(store_status(status::SUCCESS), results, &range, total)
}

/// Status, then the results (an empty `Result` when there are none, MS-ASCMD §2.2.3.155.3),
/// Range (of what is returned) and Total.
fn finish(mut store: Element, results: Vec<Element>, range: &ResultRange, total: usize) -> Element {
    let returned = results.len();
    if results.is_empty() {
        store.push(Element::new(search::RESULT));
    } else {
        for result in results {
            store.push(result);
        }
        store.push(Element::with_text(
            search::RANGE,
            ResultRange::text(range.first, range.first + returned),
        ));
    }
    store.push(Element::with_text(search::TOTAL, total.to_string()));
    store
}

fn parse_mailbox_search(store: &Element) -> Result<MailboxSearch, u8> {
    let query = store.child(search::QUERY).ok_or(status::INVALID_REQUEST)?;
    let mut parsed = parse_query(query)?;
    if let Some(options) = store.child(search::OPTIONS) {
        parse_options(options, &mut parsed)?;
    }
    if parsed.preferences.is_empty() {
        parsed.preferences.push(BodyPreference {
            truncation_size: Some(DEFAULT_TRUNCATION_BYTES),
            ..BodyPreference::new(BodyType::PlainText)
        });
    }
    for preference in &mut parsed.preferences {
        let cap = preference.truncation_size.unwrap_or(u32::MAX).min(MAX_RESULT_BODY_BYTES);
        preference.truncation_size = Some(cap);
    }
    Ok(parsed)
}

/// `Query > And > …` (MS-ASCMD §2.2.3.142.2, §2.2.3.9).
fn parse_query(query: &Element) -> Result<MailboxSearch, u8> {
    let children = query.child_elements();
    if children.iter().any(|child| child.tag != search::AND) {
        let misplaced = [
            search::OR,
            search::FREE_TEXT,
            air_sync::CLASS,
            air_sync::COLLECTION_ID,
            search::CONVERSATION_ID,
            search::GREATER_THAN,
            search::LESS_THAN,
        ];
        let too_complex = children.iter().any(|child| misplaced.contains(&child.tag));
        return Err(if too_complex { status::TOO_COMPLEX } else { status::INVALID_REQUEST });
    }
    let and = match children {
        [and] => and,
        [] => return Err(status::INVALID_REQUEST),
        _ => return Err(status::TOO_COMPLEX),
    };
    let mut classes = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut free_text: Vec<&str> = Vec::new();
    let mut criteria = Criteria::default();
    for child in and.child_elements() {
        match child.tag {
            tag if tag == air_sync::CLASS => classes.push(child.text().unwrap_or_default().trim()),
            tag if tag == air_sync::COLLECTION_ID => {
                let id = child.text().map(str::trim).unwrap_or_default();
                if id.is_empty() || id.len() > MAX_ID_LEN {
                    return Err(status::INVALID_REQUEST);
                }
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_owned());
                }
            }
            tag if tag == search::FREE_TEXT => free_text.push(child.text().unwrap_or_default()),
            tag if tag == search::GREATER_THAN => {
                let date = date_bound(child)?;
                criteria.after = Some(criteria.after.map_or(date, |known| known.max(date)));
            }
            tag if tag == search::LESS_THAN => {
                let date = date_bound(child)?;
                criteria.before = Some(criteria.before.map_or(date, |known| known.min(date)));
            }
            tag if tag == search::CONVERSATION_ID => {
                criteria.conversation =
                    Some(conversation_id(child).ok_or(status::INVALID_REQUEST)?);
            }
            tag if tag == search::AND || tag == search::OR => return Err(status::TOO_COMPLEX),
            _ => return Err(status::INVALID_REQUEST),
        }
    }
    if ids.len() > MAX_COLLECTIONS {
        return Err(status::TOO_COMPLEX);
    }
    criteria.text = criteria::parse_free_text(&free_text.join(" "))
        .map_err(|TooComplex| status::TOO_COMPLEX)?;
    let wants_email =
        classes.is_empty() || classes.iter().any(|class| class.eq_ignore_ascii_case("Email"));
    let scope = if ids.is_empty() { Scope::All } else { Scope::Collections { ids, deep: false } };
    Ok(MailboxSearch {
        scope,
        criteria,
        wants_email,
        range: ResultRange { first: 0, last: MAX_RESULTS - 1 },
        preferences: Vec::new(),
        mime_support: MimeSupport::Never,
    })
}

/// `GreaterThan|LessThan > email:DateReceived, Value` (MS-ASCMD §2.2.3.80, §2.2.3.96).
fn date_bound(comparison: &Element) -> Result<i64, u8> {
    let mut has_property = false;
    let mut value = None;
    for child in comparison.child_elements() {
        match child.tag {
            tag if tag == mail::DATE_RECEIVED => has_property = true,
            tag if tag == search::VALUE => value = child.text(),
            _ => return Err(status::INVALID_REQUEST),
        }
    }
    match (has_property, value.and_then(criteria::parse_datetime)) {
        (true, Some(date)) => Ok(date),
        _ => Err(status::INVALID_REQUEST),
    }
}

/// search:ConversationId is a byte array (OPAQUE, 16 bytes here); a client that sends it as
/// base64 or hex text is understood too.
fn conversation_id(element: &Element) -> Option<[u8; 16]> {
    let bytes = element.bytes()?;
    if let Ok(id) = <[u8; 16]>::try_from(bytes) {
        return Some(id);
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(text)
        && let Ok(id) = <[u8; 16]>::try_from(decoded.as_slice())
    {
        return Some(id);
    }
    if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut id = [0u8; 16];
        for (index, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
        }
        return Some(id);
    }
    None
}

/// `Store > Options` (MS-ASCMD §2.2.3.125.5). UserName/Password (document libraries),
/// RightsManagementSupport, BodyPartPreference and Picture are accepted and ignored.
fn parse_options(options: &Element, parsed: &mut MailboxSearch) -> Result<(), u8> {
    let mut range = None;
    for child in options.child_elements() {
        match child.tag {
            tag if tag == search::RANGE => {
                // More than one Range is undefined; Exchange takes one of them.
                let parsed_range = child.text().and_then(ResultRange::parse);
                range = range.or(Some(parsed_range.ok_or(status::INVALID_REQUEST)?));
            }
            tag if tag == search::DEEP_TRAVERSAL => {
                let deep =
                    criteria::boolean(Some(child)).flatten().ok_or(status::INVALID_REQUEST)?;
                if let Scope::Collections { deep: slot, .. } = &mut parsed.scope {
                    *slot |= deep;
                }
            }
            tag if tag == eas_wbxml::tags::air_sync_base::BODY_PREFERENCE => {
                let preference = criteria::body_preference(child).ok_or(status::INVALID_REQUEST)?;
                if parsed.preferences.iter().any(|p| p.body_type == preference.body_type) {
                    return Err(status::INVALID_REQUEST);
                }
                parsed.preferences.push(preference);
            }
            tag if tag == air_sync::MIME_SUPPORT => {
                parsed.mime_support =
                    criteria::mime_support(child).ok_or(status::INVALID_REQUEST)?;
            }
            _ => {}
        }
    }
    if let Some(range) = range {
        parsed.range = range;
    }
    Ok(())
}

/// One `Result`: the item rendered from its first bytes, or from the whole message when
/// those do not hold the body asked for and the budget allows.
async fn mailbox_result(
    caps: &impl Capabilities,
    version: ProtocolVersion,
    matches: &Matches,
    hit: &Hit,
    summary: MessageSummary,
    parsed: &MailboxSearch,
    full_fetch_budget: &mut u64,
) -> Element {
    let server_id = matches.server_id(hit);
    let (mut properties, wants_more) = render_item(&summary, &server_id, parsed, version);
    let size = u64::from(summary.size);
    if wants_more && summary.size <= MAX_FULL_FETCH_BYTES && size <= *full_fetch_budget {
        *full_fetch_budget -= size;
        let folder = &matches.folders[hit.folder].imap_name;
        match caps.fetch_message(folder, hit.uid, MAX_FULL_FETCH_BYTES).await {
            Ok(Some(message)) if message.raw.len() <= MAX_FULL_FETCH_BYTES as usize => {
                let full = MessageSummary::from_full_message(
                    hit.uid,
                    message.flags,
                    message.internal_date,
                    message.raw,
                );
                properties = render_item(&full, &server_id, parsed, version).0;
            }
            Ok(_) => {}
            Err(error) => caps.log(
                Level::Info,
                &format!("Search: fetching {server_id} whole: {error}; sending it truncated"),
            ),
        }
    }
    Element::new(search::RESULT)
        .text_child(air_sync::CLASS, "Email")
        .text_child(search::LONG_ID, server_id.as_str())
        .text_child(air_sync::COLLECTION_ID, matches.collection_id(hit))
        .with_child(Element::with_children(search::PROPERTIES, properties))
}

/// The item's properties with the body the client prefers, and whether the whole message
/// would give a better body.
fn render_item(
    summary: &MessageSummary,
    server_id: &str,
    parsed: &MailboxSearch,
    version: ProtocolVersion,
) -> (Vec<Element>, bool) {
    let converted = email::convert(summary, server_id);
    let selection = converted.body.select_body(&parsed.preferences, parsed.mime_support);
    let properties =
        email::wbxml::application_data(&converted.item, Some(&selection.body), version);
    (properties, selection.needs_full_fetch)
}

/// Roughly the encoded size of an element: its content plus a few bytes per tag.
pub fn approximate_size(element: &Element) -> usize {
    match &element.content {
        Content::Empty => 2,
        Content::Text(bytes) | Content::Opaque(bytes) => bytes.len() + 4,
        Content::Children(children) => 2 + children.iter().map(approximate_size).sum::<usize>(),
        Content::Encoded(encoded) => encoded.as_bytes().len(),
    }
}

/// The GAL store: the account's address book (addresses seen in the Inbox and Sent), matched
/// by prefix on names and addresses, sorted by display name.
async fn gal_store(
    caps: &impl Capabilities,
    identity: &str,
    request: &EasRequest,
    store: &Element,
) -> Element {
    let query = store.text_of(search::QUERY).map(str::trim).unwrap_or_default();
    if query.is_empty() || query.len() > MAX_GAL_QUERY_BYTES {
        return store_status(status::INVALID_REQUEST);
    }
    let options = store.child(search::OPTIONS);
    let range = match options.and_then(|o| o.child(search::RANGE)) {
        None => ResultRange { first: 0, last: MAX_RESULTS - 1 },
        Some(range) => match range.text().and_then(ResultRange::parse) {
            Some(range) => range,
            None => return store_status(status::INVALID_REQUEST),
        },
    };
    if range.len() > MAX_RESULTS {
        return store_status(status::RANGE_EXCEEDED);
    }
    let wants_pictures = request.version >= ProtocolVersion::V14_1
        && options.is_some_and(|o| o.child(search::PICTURE).is_some());
    let book = match address_book::load(caps, identity).await {
        Ok(book) => book,
        Err(why) => {
            caps.log(Level::Warn, &format!("Search GAL: {why}"));
            return store_status(status::SERVER_ERROR);
        }
    };
    let found = book.directory_matches(query);
    let total = found.len();
    let Some(page) = range.within(total, MAX_RESULTS) else {
        return finish(store_status(status::SUCCESS), Vec::new(), &range, total);
    };
    let results = found[page.clone()]
        .iter()
        .map(|contact| {
            let mut properties = gal_properties(contact);
            if wants_pictures {
                properties.push(Element::new(gal::PICTURE).text_child(gal::STATUS, "173"));
            }
            Element::new(search::RESULT)
                .with_child(Element::with_children(search::PROPERTIES, properties))
        })
        .collect();
    let range = ResultRange { first: page.start, last: page.end - 1 };
    finish(store_status(status::SUCCESS), results, &range, total)
}

/// gal:DisplayName, FirstName and LastName when the name splits into them, EmailAddress
/// (MS-ASCMD §2.2.3.142.2 result properties; shared with Find).
pub fn gal_properties(contact: &Contact) -> Vec<Element> {
    let display = contact.name.as_deref().unwrap_or(contact.address.as_str());
    let mut properties = vec![Element::with_text(gal::DISPLAY_NAME, display)];
    if let Some((first, last)) = contact.name.as_deref().and_then(split_name) {
        properties.push(Element::with_text(gal::FIRST_NAME, first));
        properties.push(Element::with_text(gal::LAST_NAME, last));
    }
    properties.push(Element::with_text(gal::EMAIL_ADDRESS, contact.address.as_str()));
    properties
}

/// "Ann Lee" → ("Ann", "Lee"); "Lee, Ann" → ("Ann", "Lee"); one word → none.
fn split_name(name: &str) -> Option<(String, String)> {
    if let Some((last, first)) = name.split_once(',') {
        let (first, last) = (first.trim(), last.trim());
        return (!first.is_empty() && !last.is_empty())
            .then(|| (first.to_owned(), last.to_owned()));
    }
    let (first, last) = name.trim().split_once(' ')?;
    Some((first.trim().to_owned(), last.trim().to_owned()))
}
