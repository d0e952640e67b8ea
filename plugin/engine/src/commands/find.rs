//! Find ([MS-ASCMD] §2.2.1.2, EAS-NOTES §4.14; 16.1, code page 25): the mailbox query of
//! Search (shared in `search::mailbox`) with Find's request and result shapes, and the GAL
//! criterion answered from the account's address book like Search's GAL store.
//!
//! `Find > SearchId, ExecuteSearch > MailBoxSearchCriterion > Query > airsync:Class?,
//! airsync:CollectionId?, FreeText?; Options? > Range?, DeepTraversal?`. Without a CollectionId
//! every folder is searched; with one, that folder, and its subfolders with DeepTraversal.
//! FreeText is KQL, read as `criteria::parse_free_text` explains. Results come newest first:
//! `Result > airsync:Class, airsync:ServerId ("{collection}:{uid}", Sync's), airsync:CollectionId,
//! Properties > email:Subject, DateReceived, DisplayTo, DisplayCc, DisplayBcc, Importance,
//! Read, email2:IsDraft, Preview (255 characters of plain text), HasAttachments, email:From`.
//!
//! Statuses (§2.2.3.177.2): `Find > Status` 2 for a malformed request (empty SearchId, no or
//! two criteria, unknown elements, a bad Range or FreeText the mailbox cannot express), 3 for
//! a CollectionId the folder map does not know (FolderSync required); otherwise 1 with
//! `Response > Status` 1, or 4 when a Range of a new SearchId does not start at 0 (the
//! device's last SearchId is kept in its state to tell a new search from paging). A mailbox
//! failure is the common status 110 (ServerError): Find has no code of its own for it.
//! A response holds at most [`MAX_RESULTS`] results ("the server can return fewer").

use super::resolve_recipients::address_book;
use super::search::criteria::{self, ResultRange, TooComplex};
use super::search::headers;
use super::search::mailbox::{self, Criteria, Failure, Hit, Matches, Scope};
use super::search::{approximate_size, gal_properties};
use super::{answer_common_status, decode_body, wbxml_response};
use crate::ashttp::{CommonStatus, EasRequest};
use crate::capabilities::{Capabilities, Level, StateScope};
use crate::email::{self, BodyData, BodyPreference, BodyType, MessageSummary, MimeSupport};
use crate::http::Response;
use eas_wbxml::tags::{air_sync, email as mail, email2, find, item_operations};
use eas_wbxml::{Document, Element};

/// Results in one response.
pub const MAX_RESULTS: usize = 100;
/// Highest Range index a client may ask for (§2.2.3.143.1).
const MAX_RANGE_INDEX: usize = 999;
/// Longest SearchId accepted (a GUID is 36 characters).
const MAX_SEARCH_ID_LEN: usize = 128;
/// Bytes of each result's body fetched (after its header block, which comes whole): the
/// start of the text for Preview.
const PREFIX_BYTES: u32 = 4 * 1024;
/// Characters of Preview (MS-ASAIRS §2.2.2.35: at most 255).
const PREVIEW_CHARS: u32 = 255;
/// Encoded bytes of results in one response; the first result always goes.
const RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest CollectionId accepted.
const MAX_ID_LEN: usize = 64;
/// Longest GAL query text, in bytes.
const MAX_GAL_QUERY_BYTES: usize = 256;

/// State key (device scope) of the SearchId of the device's last Find.
pub const LAST_SEARCH_KEY: &str = "find-search-id";

mod status {
    pub const SUCCESS: u8 = 1;
    pub const INVALID_REQUEST: u8 = 2;
    pub const FOLDER_SYNC_REQUIRED: u8 = 3;
    pub const START_WITH_ZERO: u8 = 4;
}

/// A parsed criterion.
enum Criterion {
    Mailbox { scope: Scope, criteria: Criteria, wants_email: bool, range: ResultRange },
    Gal { query: String, range: ResultRange },
}

impl Criterion {
    fn range(&self) -> ResultRange {
        match self {
            Criterion::Mailbox { range, .. } | Criterion::Gal { range, .. } => *range,
        }
    }
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
    if root.tag != find::FIND {
        return answer_common_status(request, CommonStatus::InvalidXml);
    }
    let search_id = root.text_of(find::SEARCH_ID).map(str::trim).unwrap_or_default();
    let criterion = match parse(root) {
        Ok(criterion) if !search_id.is_empty() && search_id.len() <= MAX_SEARCH_ID_LEN => criterion,
        Ok(_) | Err(_) => {
            caps.log(Level::Info, "Find: malformed request");
            return top_level(request, status::INVALID_REQUEST);
        }
    };
    let device = StateScope::Device(request.device_id.as_str().to_owned());
    if criterion.range().first > 0 {
        let last = caps.state_get(&device, LAST_SEARCH_KEY).await.ok().flatten();
        if last.as_deref() != Some(search_id.as_bytes()) {
            return respond(
                request,
                criterion_store(&criterion),
                status::START_WITH_ZERO,
                Vec::new(),
                None,
            );
        }
    }
    let outcome = match &criterion {
        Criterion::Mailbox { scope, criteria, wants_email, range } => {
            mailbox_results(caps, scope, criteria, *wants_email, *range).await
        }
        Criterion::Gal { query, range } => gal_results(caps, identity, query, *range).await,
    };
    let (results, page) = match outcome {
        Ok(found) => found,
        Err(Failure::UnknownCollection(id)) => {
            caps.log(Level::Info, &format!("Find: unknown collection {id}"));
            return top_level(request, status::FOLDER_SYNC_REQUIRED);
        }
        Err(Failure::Unavailable(why)) => {
            caps.log(Level::Warn, &format!("Find: {why}"));
            return answer_common_status(request, CommonStatus::ServerError);
        }
    };
    if let Err(error) =
        caps.state_put(&device, LAST_SEARCH_KEY, search_id.as_bytes().to_vec()).await
    {
        caps.log(Level::Warn, &format!("Find: keeping the SearchId: {error}"));
    }
    respond(request, criterion_store(&criterion), status::SUCCESS, results, Some(page))
}

fn criterion_store(criterion: &Criterion) -> &'static str {
    match criterion {
        Criterion::Mailbox { .. } => "Mailbox",
        Criterion::Gal { .. } => "GAL",
    }
}

fn top_level(request: &EasRequest, code: u8) -> Response {
    wbxml_response(
        &Document::new(Element::new(find::FIND).text_child(find::STATUS, code.to_string())),
        request,
    )
}

/// What was found: results, and (first index, total).
type Found = (Vec<Element>, (usize, usize));

/// `Find > Status 1, Response > itemoperations:Store, Status, Result*, Range?, Total?`.
fn respond(
    request: &EasRequest,
    store: &str,
    code: u8,
    results: Vec<Element>,
    page: Option<(usize, usize)>,
) -> Response {
    let returned = results.len();
    let mut response = Element::new(find::RESPONSE)
        .text_child(item_operations::STORE, store)
        .text_child(find::STATUS, code.to_string());
    for result in results {
        response.push(result);
    }
    if let Some((first, total)) = page {
        if returned > 0 {
            response
                .push(Element::with_text(find::RANGE, ResultRange::text(first, first + returned)));
        }
        response.push(Element::with_text(find::TOTAL, total.to_string()));
    }
    let document =
        Document::new(Element::new(find::FIND).text_child(find::STATUS, "1").with_child(response));
    wbxml_response(&document, request)
}

fn parse(root: &Element) -> Result<Criterion, u8> {
    let execute = root.child(find::EXECUTE_SEARCH).ok_or(status::INVALID_REQUEST)?;
    match execute.child_elements() {
        [criterion] if criterion.tag == find::MAIL_BOX_SEARCH_CRITERION => parse_mailbox(criterion),
        [criterion] if criterion.tag == find::GAL_SEARCH_CRITERION => parse_gal(criterion),
        _ => Err(status::INVALID_REQUEST),
    }
}

fn parse_mailbox(criterion: &Element) -> Result<Criterion, u8> {
    let query = criterion.child(find::QUERY).ok_or(status::INVALID_REQUEST)?;
    let mut ids = Vec::new();
    let mut classes = Vec::new();
    let mut free_text = Vec::new();
    for child in query.child_elements() {
        match child.tag {
            tag if tag == air_sync::CLASS => classes.push(child.text().unwrap_or_default().trim()),
            tag if tag == air_sync::COLLECTION_ID => {
                let id = child.text().map(str::trim).unwrap_or_default();
                if id.is_empty() || id.len() > MAX_ID_LEN {
                    return Err(status::INVALID_REQUEST);
                }
                ids.push(id.to_owned());
            }
            tag if tag == find::FREE_TEXT => free_text.push(child.text().unwrap_or_default()),
            _ => return Err(status::INVALID_REQUEST),
        }
    }
    if ids.len() > 1 {
        return Err(status::INVALID_REQUEST);
    }
    let text = criteria::parse_free_text(&free_text.join(" "))
        .map_err(|TooComplex| status::INVALID_REQUEST)?;
    let (range, deep) = parse_options(criterion.child(find::OPTIONS))?;
    let scope = if ids.is_empty() { Scope::All } else { Scope::Collections { ids, deep } };
    let wants_email =
        classes.is_empty() || classes.iter().any(|class| class.eq_ignore_ascii_case("Email"));
    Ok(Criterion::Mailbox {
        scope,
        criteria: Criteria { text, ..Criteria::default() },
        wants_email,
        range,
    })
}

fn parse_gal(criterion: &Element) -> Result<Criterion, u8> {
    let query = criterion.text_of(find::QUERY).map(str::trim).unwrap_or_default();
    if query.is_empty() || query.len() > MAX_GAL_QUERY_BYTES {
        return Err(status::INVALID_REQUEST);
    }
    let (range, _) = parse_options(criterion.child(find::OPTIONS))?;
    Ok(Criterion::Gal { query: query.to_owned(), range })
}

/// `Options > Range, DeepTraversal` (Picture, MaxSize and MaxPictures are accepted and
/// ignored: there are no pictures).
fn parse_options(options: Option<&Element>) -> Result<(ResultRange, bool), u8> {
    let mut range = ResultRange { first: 0, last: MAX_RESULTS - 1 };
    let mut deep = false;
    for child in options.map(Element::child_elements).unwrap_or_default() {
        match child.tag {
            tag if tag == find::RANGE => {
                range = child
                    .text()
                    .and_then(ResultRange::parse)
                    .filter(|range| range.last <= MAX_RANGE_INDEX)
                    .ok_or(status::INVALID_REQUEST)?;
            }
            tag if tag == find::DEEP_TRAVERSAL => {
                deep = criteria::boolean(Some(child)).flatten().ok_or(status::INVALID_REQUEST)?;
            }
            _ => {}
        }
    }
    Ok((range, deep))
}

async fn mailbox_results(
    caps: &impl Capabilities,
    scope: &Scope,
    criteria: &Criteria,
    wants_email: bool,
    range: ResultRange,
) -> Result<Found, Failure> {
    if !wants_email {
        return Ok((Vec::new(), (range.first, 0)));
    }
    let matches = mailbox::find(caps, scope, criteria).await?;
    let total = matches.hits.len();
    let Some(page) = range.within(total, MAX_RESULTS) else {
        return Ok((Vec::new(), (range.first, total)));
    };
    let hits = &matches.hits[page.clone()];
    let summaries = mailbox::page_summaries(caps, &matches, hits, PREFIX_BYTES).await?;
    let mut results = Vec::new();
    let mut bytes = 0;
    for (hit, summary) in hits.iter().zip(summaries) {
        let Some(summary) = summary else { continue };
        let result = result(&matches, hit, &summary);
        let size = approximate_size(&result);
        if !results.is_empty() && bytes + size > RESPONSE_BYTES {
            break;
        }
        bytes += size;
        results.push(result);
    }
    Ok((results, (page.start, total)))
}

/// One mailbox `Result` with Find's properties.
fn result(matches: &Matches, hit: &Hit, summary: &MessageSummary) -> Element {
    let server_id = matches.server_id(hit);
    let converted = email::convert(summary, &server_id);
    let item = &converted.item;
    let preview_only = BodyPreference {
        truncation_size: Some(0),
        preview: Some(PREVIEW_CHARS),
        ..BodyPreference::new(BodyType::PlainText)
    };
    let body = converted.body.select_body(&[preview_only], MimeSupport::Never).body;
    let preview = body.preview.unwrap_or_else(|| match body.data {
        Some(BodyData::Text(text)) => text,
        _ => String::new(),
    });
    let parsed = headers::parse(&summary.prefix);
    let display = |field| headers::display_names(field);
    let display_cc = parsed.as_ref().map(|m| display(m.cc())).unwrap_or_default();
    let display_bcc = parsed.as_ref().map(|m| display(m.bcc())).unwrap_or_default();
    let has_attachments = item.attachments.iter().any(|attachment| !attachment.is_inline);
    let bool_text = |value: bool| if value { "1" } else { "0" };
    let properties = vec![
        Element::with_text(mail::SUBJECT, item.subject.as_str()),
        Element::with_text(mail::DATE_RECEIVED, item.date_received.as_str()),
        Element::with_text(mail::DISPLAY_TO, item.display_to.as_str()),
        Element::with_text(find::DISPLAY_CC, display_cc),
        Element::with_text(find::DISPLAY_BCC, display_bcc),
        Element::with_text(mail::IMPORTANCE, (item.importance as u8).to_string()),
        Element::with_text(mail::READ, bool_text(item.read)),
        Element::with_text(email2::IS_DRAFT, bool_text(item.is_draft)),
        Element::with_text(find::PREVIEW, preview),
        Element::with_text(find::HAS_ATTACHMENTS, bool_text(has_attachments)),
        Element::with_text(mail::FROM, item.from.as_str()),
    ];
    Element::new(find::RESULT)
        .text_child(air_sync::CLASS, "Email")
        .text_child(air_sync::SERVER_ID, server_id.as_str())
        .text_child(air_sync::COLLECTION_ID, matches.collection_id(hit))
        .with_child(Element::with_children(find::PROPERTIES, properties))
}

async fn gal_results(
    caps: &impl Capabilities,
    identity: &str,
    query: &str,
    range: ResultRange,
) -> Result<Found, Failure> {
    let book = address_book::load(caps, identity).await.map_err(Failure::Unavailable)?;
    let found = book.directory_matches(query);
    let total = found.len();
    let Some(page) = range.within(total, MAX_RESULTS) else {
        return Ok((Vec::new(), (range.first, total)));
    };
    let results = found[page.clone()]
        .iter()
        .map(|contact| {
            Element::new(find::RESULT)
                .with_child(Element::with_children(find::PROPERTIES, gal_properties(contact)))
        })
        .collect();
    Ok((results, (page.start, total)))
}

#[cfg(test)]
mod tests;
