//! ItemOperations ([MS-ASCMD] §2.2.1.10, EAS-NOTES §4.7): Fetch of a whole message by
//! CollectionId + ServerId with body preferences, Fetch of an attachment by FileReference with
//! an optional byte Range, and the multipart response when the client accepts it.
//!
//! Each operation gets its own Status (§2.2.3.177.8); the top-level Status is 1 unless the
//! request itself is malformed. EmptyFolderContents empties a folder (and with DeleteSubFolders
//! removes the folders below it); the conversation Move is refused (see `conversation_move`).
//!
//! Identifiers are the ones Sync and Search hand out: ServerId and LongId
//! `"{collection}:{uid}"`, FileReference `"{collection}:{uid}:{imap section}"`.

mod multipart;
#[cfg(test)]
mod tests;

use super::{answer_common_status, decode_body};
use crate::ashttp::{CommonStatus, EasRequest};
use crate::capabilities::{Capabilities, Level};
use crate::email::{self, BodyPart, BodyPreference, BodyType, MessageSummary, MimeSupport};
use crate::folders::{self, FolderEntry};
use crate::http::Response;
use crate::mailbox::MailboxError;
use base64::Engine as _;
use eas_wbxml::tags::{air_sync, air_sync_base as base, item_operations as io, search};
use eas_wbxml::{Content, Document, Element};
use multipart::Parts;

/// Most stored bytes fetched for one response, all operations together (a message or an
/// attachment as the server keeps it, transfer encoding included). One fetch is copied a few
/// times on its way out (decoded, base64 or framed, encoded), so this keeps a response well
/// inside the host's default 64 MiB instance. A bigger attachment gets Status 11; a bigger
/// message is rendered from its first bytes (`large_message`).
pub const MAX_FETCH_BYTES: usize = 16 << 20;

/// Bytes of a message over the budget that are fetched to render its body from (see
/// `large_message`).
const LARGE_MESSAGE_PREFIX_BYTES: u32 = 4 << 20;

/// Operations in one request (EAS-NOTES §4.7: Exchange's default limit).
const MAX_OPERATIONS: usize = 100;

/// `ItemOperations > Status` and `Fetch > Status` values (MS-ASCMD §2.2.3.177.8).
mod status {
    pub const SUCCESS: u8 = 1;
    pub const PROTOCOL_ERROR: u8 = 2;
    pub const SERVER_ERROR: u8 = 3;
    /// "The object was not found or access denied": a message that is gone or never was.
    pub const NOT_FOUND: u8 = 6;
    pub const BAD_RANGE: u8 = 8;
    pub const UNKNOWN_STORE: u8 = 9;
    pub const TOO_LARGE: u8 = 11;
    pub const INVALID_ATTACHMENT: u8 = 15;
    pub const ACCESS_DENIED: u8 = 16;
    /// MoveCommandDisallowedForNonPersistentMoveAction (MS-ASCMD §2.2.2).
    pub const NOT_PERSISTENT: u8 = 155;
}

/// What the operations of one request share: the data parts of a multipart response and what
/// is left of the size budget.
struct Context {
    /// `Some` when the client accepts a multipart response.
    parts: Option<Parts>,
    remaining: usize,
}

impl Context {
    /// The `max-bytes` for the next fetch; Status 11 once the budget is spent.
    fn allowance(&self) -> Result<u32, u8> {
        match self.remaining {
            0 => Err(status::TOO_LARGE),
            left => Ok(u32::try_from(left).unwrap_or(u32::MAX)),
        }
    }

    fn spend(&mut self, bytes: usize) {
        self.remaining = self.remaining.saturating_sub(bytes);
    }

    /// `itemoperations:Part` pointing at `bytes` in a multipart response, else `Data` with
    /// their base64 (MS-ASCMD §2.2.3.39.2).
    fn data_element(&mut self, bytes: Vec<u8>) -> Element {
        match &mut self.parts {
            Some(parts) => Element::with_text(io::PART, parts.push(bytes).to_string()),
            None => Element::with_text(
                io::DATA,
                base64::engine::general_purpose::STANDARD.encode(&bytes),
            ),
        }
    }
}

pub async fn run(caps: &impl Capabilities, request: &EasRequest, body: &[u8]) -> Response {
    let Some(document) = decode_body(caps, request, body) else {
        return answer_common_status(request, CommonStatus::InvalidWbxml);
    };
    let root = &document.root;
    if root.tag != io::ITEM_OPERATIONS {
        return answer_common_status(request, CommonStatus::InvalidXml);
    }
    let operations = root.child_elements();
    let known = [io::FETCH, io::EMPTY_FOLDER_CONTENTS, io::MOVE];
    if operations.is_empty() || operations.iter().any(|op| !known.contains(&op.tag)) {
        return respond(request, top_level(status::PROTOCOL_ERROR), None);
    }
    if operations.len() > MAX_OPERATIONS {
        return respond(request, top_level(status::TOO_LARGE), None);
    }
    let mut context = Context {
        parts: request.params.accept_multipart.then(Parts::default),
        remaining: MAX_FETCH_BYTES,
    };
    let mut answers = Element::new(io::RESPONSE);
    for operation in operations {
        answers.push(match operation.tag {
            tag if tag == io::FETCH => fetch(caps, request, operation, &mut context).await,
            tag if tag == io::EMPTY_FOLDER_CONTENTS => empty_folder_contents(caps, operation).await,
            _ => conversation_move(caps, operation),
        });
    }
    let document = Document::new(
        Element::new(io::ITEM_OPERATIONS)
            .text_child(io::STATUS, status::SUCCESS.to_string())
            .with_child(answers),
    );
    respond(request, document, context.parts)
}

fn top_level(code: u8) -> Document {
    Document::new(Element::new(io::ITEM_OPERATIONS).text_child(io::STATUS, code.to_string()))
}

/// WBXML, or the multipart body with the WBXML as part 0 when the client asked for one.
fn respond(request: &EasRequest, document: Document, parts: Option<Parts>) -> Response {
    let parts = parts.or_else(|| request.params.accept_multipart.then(Parts::default));
    let Ok(wbxml) = eas_wbxml::encode(&document) else {
        return answer_common_status(request, CommonStatus::ServerError);
    };
    match parts {
        None => Response::new(200).with_body(crate::WBXML_CONTENT_TYPE, wbxml),
        Some(parts) => match parts.into_body(wbxml) {
            Some(body) => Response::new(200).with_body(multipart::CONTENT_TYPE, body),
            None => answer_common_status(request, CommonStatus::ServerError),
        },
    }
}

/// EmptyFolderContents (MS-ASCMD §2.2.3.56): every message of the folder is removed for good
/// and, with `DeleteSubFolders`, the folders below it too (deepest first). The device learns
/// the deletions from its next Sync and FolderSync, like any other change.
async fn empty_folder_contents(caps: &impl Capabilities, operation: &Element) -> Element {
    let collection_id = operation.text_of(air_sync::COLLECTION_ID).map(str::trim);
    let code = match collection_id {
        None | Some("") => status::PROTOCOL_ERROR,
        Some(collection) => {
            let delete_subfolders = operation
                .child(io::OPTIONS)
                .is_some_and(|options| options.child(io::DELETE_SUB_FOLDERS).is_some());
            empty_folder(caps, collection, delete_subfolders).await
        }
    };
    let mut answer =
        Element::new(io::EMPTY_FOLDER_CONTENTS).text_child(io::STATUS, code.to_string());
    if let Some(id) = operation.child(air_sync::COLLECTION_ID) {
        answer.push(id.clone());
    }
    answer
}

async fn empty_folder(caps: &impl Capabilities, collection: &str, delete_subfolders: bool) -> u8 {
    let folder = match selectable_folder(caps, collection).await {
        Ok(Some(folder)) => folder,
        Ok(None) => return status::NOT_FOUND,
        Err(code) => return code,
    };
    if let Err(error) = caps.empty_folder(&folder.imap_name).await {
        if matches!(error, MailboxError::NoSuchFolder(_)) {
            let _ = folders::refresh(caps).await;
        }
        return mailbox_status(caps, error, status::NOT_FOUND);
    }
    caps.log(Level::Info, &format!("ItemOperations: folder {collection} emptied"));
    if !delete_subfolders {
        return status::SUCCESS;
    }
    let map = match folders::stored(caps).await {
        Ok(map) => map,
        Err(error) => {
            caps.log(Level::Error, &format!("ItemOperations: folder map: {error}"));
            return status::SERVER_ERROR;
        }
    };
    let mut code = status::SUCCESS;
    for below in map.descendants(&folder.server_id) {
        match caps.delete_folder(&below.imap_name).await {
            Ok(()) | Err(MailboxError::NoSuchFolder(_)) => {}
            Err(error) => {
                caps.log(
                    Level::Warn,
                    &format!("ItemOperations: deleting {}: {error}", below.imap_name),
                );
                code = status::SERVER_ERROR;
            }
        }
    }
    if let Err(error) = folders::refresh(caps).await {
        caps.log(Level::Warn, &format!("ItemOperations: folder map: {error}"));
    }
    code
}

/// The conversation Move (14.0+) asks for a rule that keeps moving the conversation's future
/// messages (MoveAlways); IMAP has no such rules. Without MoveAlways the spec's own answer is
/// 155 (a non-persistent move is not allowed); with it, 16 (not available here).
fn conversation_move(caps: &impl Capabilities, operation: &Element) -> Element {
    let move_always = operation
        .child(io::OPTIONS)
        .is_some_and(|options| options.child(io::MOVE_ALWAYS).is_some());
    let code = if move_always { status::ACCESS_DENIED } else { status::NOT_PERSISTENT };
    caps.log(Level::Info, &format!("ItemOperations: conversation Move refused with {code}"));
    let mut answer = Element::new(io::MOVE).text_child(io::STATUS, code.to_string());
    if let Some(id) = operation.child(io::CONVERSATION_ID) {
        answer.push(id.clone());
    }
    answer
}

/// A successful fetch: the `Properties` children, and whether `airsync:Class` goes with them.
struct Fetched {
    is_item: bool,
    properties: Vec<Element>,
}

async fn fetch(
    caps: &impl Capabilities,
    request: &EasRequest,
    operation: &Element,
    context: &mut Context,
) -> Element {
    let result = fetch_result(caps, request, operation, context).await;
    let code = match &result {
        Ok(_) => status::SUCCESS,
        Err(code) => *code,
    };
    let mut answer = Element::new(io::FETCH).text_child(io::STATUS, code.to_string());
    // The identifiers the client sent, echoed so it can match the answer.
    let id_tags =
        [air_sync::COLLECTION_ID, air_sync::SERVER_ID, base::FILE_REFERENCE, search::LONG_ID];
    for id in operation.child_elements().iter().filter(|child| id_tags.contains(&child.tag)) {
        answer.push(id.clone());
    }
    if let Ok(fetched) = result {
        if fetched.is_item {
            answer.push(Element::with_text(air_sync::CLASS, "Email"));
        }
        answer.push(Element::with_children(io::PROPERTIES, fetched.properties));
    }
    answer
}

async fn fetch_result(
    caps: &impl Capabilities,
    request: &EasRequest,
    operation: &Element,
    context: &mut Context,
) -> Result<Fetched, u8> {
    let store = operation.text_of(io::STORE).ok_or(status::PROTOCOL_ERROR)?;
    if !store.trim().eq_ignore_ascii_case("Mailbox") {
        return Err(status::UNKNOWN_STORE);
    }
    let options = FetchOptions::parse(operation.child(io::OPTIONS))?;
    if let Some(reference) = operation.child(base::FILE_REFERENCE) {
        let reference = reference.text().ok_or(status::INVALID_ATTACHMENT)?;
        return fetch_attachment(caps, reference, options.range, context).await;
    }
    if let Some(server_id) = operation.text_of(air_sync::SERVER_ID) {
        let collection_id = operation.text_of(air_sync::COLLECTION_ID);
        return fetch_item(caps, request, collection_id, server_id, &options, context).await;
    }
    if let Some(long_id) = operation.child(search::LONG_ID) {
        // Search hands out LongIds in the ServerId form, `"{collection}:{uid}"` (see
        // `commands::search`), so one is fetched as that ServerId. Anything else (another
        // server's id, an empty one) is not ours: Status 6.
        let long_id = long_id.text().map(str::trim).ok_or(status::NOT_FOUND)?;
        return fetch_item(caps, request, None, long_id, &options, context).await;
    }
    Err(status::PROTOCOL_ERROR)
}

/// `Fetch > Options` (MS-ASCMD §2.2.3.125.3). Schema, BodyPartPreference and the
/// RightsManagement / document library options are accepted and ignored.
#[derive(Debug, Default)]
struct FetchOptions {
    body_preferences: Vec<BodyPreference>,
    mime_support: MimeSupport,
    range: Option<ByteRange>,
}

impl FetchOptions {
    fn parse(options: Option<&Element>) -> Result<FetchOptions, u8> {
        let mut parsed = FetchOptions::default();
        let Some(options) = options else { return Ok(parsed) };
        for preference in options.children(base::BODY_PREFERENCE) {
            parsed
                .body_preferences
                .push(body_preference(preference).ok_or(status::PROTOCOL_ERROR)?);
        }
        if let Some(support) = options.child(air_sync::MIME_SUPPORT) {
            parsed.mime_support = match support.text().map(str::trim) {
                Some("0") => MimeSupport::Never,
                Some("1") => MimeSupport::SmimeOnly,
                Some("2") => MimeSupport::Always,
                _ => return Err(status::PROTOCOL_ERROR),
            };
        }
        if let Some(range) = options.child(io::RANGE) {
            let range = range.text().and_then(ByteRange::parse).ok_or(status::BAD_RANGE)?;
            parsed.range = Some(range);
        }
        Ok(parsed)
    }
}

/// airsyncbase:BodyPreference (MS-ASAIRS §2.2.2.12); `None` when malformed.
fn body_preference(element: &Element) -> Option<BodyPreference> {
    let code = parse_decimal(element.text_of(base::TYPE)?)?;
    let body_type = BodyType::from_code(u8::try_from(code).ok()?)?;
    let truncation_size = match element.text_of(base::TRUNCATION_SIZE) {
        Some(text) => Some(parse_decimal(text)?),
        None => None,
    };
    // An empty boolean element means true (MS-ASDTYPE §2.1).
    let all_or_none = match element.child(base::ALL_OR_NONE).map(|e| e.text().map(str::trim)) {
        None => false,
        Some(Some("" | "1")) => true,
        Some(Some("0")) => false,
        Some(_) => return None,
    };
    let preview = match element.text_of(base::PREVIEW) {
        Some(text) => Some(parse_decimal(text)?),
        None => None,
    };
    Some(BodyPreference { body_type, truncation_size, all_or_none, preview })
}

fn parse_decimal(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// itemoperations:Range `m-n` (MS-ASCMD §2.2.3.143.1): zero-based, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByteRange {
    first: u64,
    last: u64,
}

impl ByteRange {
    fn parse(text: &str) -> Option<ByteRange> {
        let (first, last) = text.trim().split_once('-')?;
        let number = |text: &str| {
            let text = text.trim();
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<u64>().ok())
                .flatten()
        };
        let (first, last) = (number(first)?, number(last)?);
        (first <= last).then_some(ByteRange { first, last })
    }

    /// The indexes to send of `total` bytes: the end is cut to the data; a start past it is
    /// Status 8.
    fn within(self, total: usize) -> Option<(usize, usize)> {
        let first = usize::try_from(self.first).ok().filter(|&first| first < total)?;
        let last = usize::try_from(self.last).unwrap_or(usize::MAX).min(total - 1);
        Some((first, last))
    }
}

/// A ServerId we hand out: `"{collection}:{uid}"`.
fn parse_server_id(server_id: &str) -> Option<(&str, u32)> {
    let (collection, uid) = server_id.split_once(':')?;
    Some((Some(collection).filter(|c| !c.is_empty())?, parse_uid(uid)?))
}

/// A FileReference we hand out: `"{collection}:{uid}:{section}"`, the section being IMAP's
/// dotted part number.
fn parse_file_reference(reference: &str) -> Option<(&str, u32, &str)> {
    let mut fields = reference.splitn(3, ':');
    let collection = fields.next().filter(|c| !c.is_empty())?;
    let uid = parse_uid(fields.next()?)?;
    let section = fields.next()?;
    let valid = section.split('.').all(|number| {
        (1..=9).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
    });
    valid.then_some((collection, uid, section))
}

fn parse_uid(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&uid| uid != 0)
}

/// The folder behind a CollectionId; `Ok(None)` for one that is unknown or holds no messages.
async fn selectable_folder(
    caps: &impl Capabilities,
    collection: &str,
) -> Result<Option<FolderEntry>, u8> {
    match folders::resolve(caps, collection).await {
        Ok(entry) => Ok(entry.filter(|entry| entry.selectable)),
        Err(error) => {
            caps.log(Level::Error, &format!("ItemOperations: folder {collection}: {error}"));
            Err(status::SERVER_ERROR)
        }
    }
}

/// The Fetch status for a mailbox failure; `gone` for a folder that no longer exists.
fn mailbox_status(caps: &impl Capabilities, error: MailboxError, gone: u8) -> u8 {
    match error {
        MailboxError::TooLarge(_) => status::TOO_LARGE,
        MailboxError::NoSuchFolder(_) => gone,
        error => {
            caps.log(Level::Error, &format!("ItemOperations: {error}"));
            status::SERVER_ERROR
        }
    }
}

/// Fetch by ServerId: the whole message, converted like Sync converts it, with the body the
/// client prefers (Type 4 gives the raw MIME).
async fn fetch_item(
    caps: &impl Capabilities,
    request: &EasRequest,
    collection_id: Option<&str>,
    server_id: &str,
    options: &FetchOptions,
    context: &mut Context,
) -> Result<Fetched, u8> {
    let (collection, uid) = parse_server_id(server_id).ok_or(status::NOT_FOUND)?;
    if collection_id.is_some_and(|id| id != collection) {
        return Err(status::NOT_FOUND);
    }
    let folder = selectable_folder(caps, collection).await?.ok_or(status::NOT_FOUND)?;
    // A draft edited on the device keeps its id, which stands for its current UID.
    let uid = if folder.folder_type == crate::folders::FolderType::Drafts {
        crate::sync::resolve_draft_alias(caps, request.device_id.as_str(), collection, uid).await
    } else {
        uid
    };
    let allowance = context.allowance()?;
    let summary = match caps.fetch_message(&folder.imap_name, uid, allowance).await {
        Ok(Some(message)) if message.raw.len() <= allowance as usize => {
            context.spend(message.raw.len());
            MessageSummary::from_full_message(
                uid,
                message.flags,
                message.internal_date,
                message.raw,
            )
        }
        Ok(Some(_)) | Err(MailboxError::TooLarge(_)) => {
            large_message(caps, &folder.imap_name, uid, allowance, context).await?
        }
        Ok(None) => return Err(status::NOT_FOUND),
        Err(error) => return Err(mailbox_status(caps, error, status::NOT_FOUND)),
    };
    let converted = email::convert(&summary, &format!("{collection}:{uid}"));
    let selection = converted.body.select_body(&options.body_preferences, options.mime_support);
    let mut properties =
        email::wbxml::application_data(&converted.item, Some(&selection.body), request.version);
    if let Some(parts) = &mut context.parts {
        body_data_to_part(&mut properties, parts);
    }
    Ok(Fetched { is_item: true, properties })
}

/// A message too large to hold whole: its structure and first bytes, as Sync sees it. Its body
/// text nearly always comes first; a body that runs past the bytes we have goes out marked
/// truncated with its full EstimatedDataSize, as does MIME (Type 4).
async fn large_message(
    caps: &impl Capabilities,
    folder: &str,
    uid: u32,
    allowance: u32,
    context: &mut Context,
) -> Result<MessageSummary, u8> {
    let prefix = allowance.min(LARGE_MESSAGE_PREFIX_BYTES);
    let summaries = caps
        .fetch_summaries(folder, &[uid], prefix, None)
        .await
        .map_err(|error| mailbox_status(caps, error, status::NOT_FOUND))?;
    let mut summary =
        summaries.into_iter().find(|summary| summary.uid == uid).ok_or(status::NOT_FOUND)?;
    summary.prefix.truncate(prefix as usize);
    context.spend(summary.prefix.len());
    Ok(summary)
}

/// In a multipart response the body's bytes travel as a part: `airsyncbase:Body > Data`
/// becomes `itemoperations:Part` (MS-ASAIRS §2.2.2.33).
fn body_data_to_part(properties: &mut [Element], parts: &mut Parts) {
    let Some(body) = properties.iter_mut().find(|element| element.tag == base::BODY) else {
        return;
    };
    for child in body.child_elements_mut() {
        if child.tag == base::DATA {
            let bytes = match std::mem::take(&mut child.content) {
                Content::Text(bytes) | Content::Opaque(bytes) => bytes,
                Content::Empty | Content::Children(_) | Content::Encoded(_) => Vec::new(),
            };
            *child = Element::with_text(io::PART, parts.push(bytes).to_string());
        }
    }
}

/// Fetch by FileReference: one MIME part, transfer-decoded, optionally a byte range of it.
async fn fetch_attachment(
    caps: &impl Capabilities,
    reference: &str,
    range: Option<ByteRange>,
    context: &mut Context,
) -> Result<Fetched, u8> {
    let (collection, uid, section) =
        parse_file_reference(reference).ok_or(status::INVALID_ATTACHMENT)?;
    let folder = selectable_folder(caps, collection).await?.ok_or(status::INVALID_ATTACHMENT)?;
    let allowance = context.allowance()?;
    let (part, encoded) = locate_part(caps, &folder.imap_name, uid, section, allowance).await?;
    context.spend(encoded.len());
    let mut data = email::decode_transfer_encoding(part.encoding.as_deref(), &encoded);
    drop(encoded);
    let mut properties = vec![Element::with_text(base::CONTENT_TYPE, content_type(&part))];
    if let Some(range) = range {
        let total = data.len();
        let (first, last) = range.within(total).ok_or(status::BAD_RANGE)?;
        data.truncate(last + 1);
        data.drain(..first);
        properties.push(Element::with_text(io::RANGE, format!("{first}-{last}")));
        properties.push(Element::with_text(io::TOTAL, total.to_string()));
    }
    properties.push(context.data_element(data));
    Ok(Fetched { is_item: false, properties })
}

/// The part's description and its stored bytes. The host's BODYSTRUCTURE says what the part
/// is and `fetch_part` brings just it; without a structure, or when the section is not in it
/// (broken MIME that the parser numbers differently, see `email::convert`), the whole message
/// is fetched and split here.
async fn locate_part(
    caps: &impl Capabilities,
    folder: &str,
    uid: u32,
    section: &str,
    allowance: u32,
) -> Result<(BodyPart, Vec<u8>), u8> {
    let invalid = status::INVALID_ATTACHMENT;
    let summaries = caps
        .fetch_summaries(folder, &[uid], 0, None)
        .await
        .map_err(|error| mailbox_status(caps, error, invalid))?;
    let summary = summaries.into_iter().find(|summary| summary.uid == uid).ok_or(invalid)?;
    if let Some(part) = leaf_part(&summary.body_structure, section) {
        let encoded = caps
            .fetch_part(folder, uid, section, allowance)
            .await
            .map_err(|error| mailbox_status(caps, error, invalid))?
            .ok_or(invalid)?;
        if encoded.len() > allowance as usize {
            return Err(status::TOO_LARGE);
        }
        return Ok((part.clone(), encoded));
    }
    if summary.body_structure.iter().any(|part| part.section == section) {
        // A multipart: no attachment of its own.
        return Err(invalid);
    }
    let message = caps
        .fetch_message(folder, uid, allowance)
        .await
        .map_err(|error| mailbox_status(caps, error, invalid))?
        .ok_or(invalid)?;
    if message.raw.len() > allowance as usize {
        return Err(status::TOO_LARGE);
    }
    let structure = email::derived_structure(&message.raw);
    let part = leaf_part(&structure, section).ok_or(invalid)?.clone();
    let encoded = email::encoded_part(&message.raw, section).ok_or(invalid)?.to_vec();
    Ok((part, encoded))
}

fn leaf_part<'s>(structure: &'s [BodyPart], section: &str) -> Option<&'s BodyPart> {
    structure.iter().find(|part| !part.is_multipart && part.section == section)
}

/// airsyncbase:ContentType of an attachment: `type/subtype`, lower case.
fn content_type(part: &BodyPart) -> String {
    let clean = |text: &str| -> String {
        text.trim()
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '/' && *c != ';')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let (media_type, subtype) = (clean(&part.media_type), clean(&part.media_subtype));
    if media_type.is_empty() || subtype.is_empty() {
        "application/octet-stream".to_owned()
    } else {
        format!("{media_type}/{subtype}")
    }
}
