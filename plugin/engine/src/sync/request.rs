//! The Sync request (MS-ASCMD §2.2.1.21, EAS-NOTES §4.4) parsed into plain data, and the
//! per-device cache that empty and Partial requests build on (§2.2.1.21.1, §2.2.3.131).

use super::limits::{
    DEFAULT_WINDOW_SIZE, MAX_CLIENT_COMMANDS, MAX_ID_LEN, MAX_SYNC_COLLECTIONS, MAX_WINDOW_SIZE,
    WAIT_MINUTES,
};
use super::options::CollectionOptions;
use eas_wbxml::Element;
use eas_wbxml::tags::air_sync;
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;

/// State key of the cached request in the device scope.
pub const CACHE_KEY: &str = "sync-request";
/// Leading byte of the cached request.
const CACHE_FORMAT: u8 = 2;

/// Sync Status values (MS-ASCMD §2.2.3.177.17).
pub mod status {
    pub const SUCCESS: u8 = 1;
    pub const INVALID_SYNC_KEY: u8 = 3;
    pub const PROTOCOL_ERROR: u8 = 4;
    pub const SERVER_ERROR: u8 = 5;
    pub const CONVERSION_ERROR: u8 = 6;
    pub const CONFLICT: u8 = 7;
    pub const OBJECT_NOT_FOUND: u8 = 8;
    pub const HIERARCHY_CHANGED: u8 = 12;
    pub const NO_CACHED_REQUEST: u8 = 13;
    pub const INVALID_INTERVAL: u8 = 14;
    pub const TOO_MANY_COLLECTIONS: u8 = 15;
    pub const RETRY: u8 = 16;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub collections: Vec<CollectionRequest>,
    /// The request-level WindowSize, normalised (0 and >512 are 512).
    pub window_size: Option<usize>,
    /// Wait in minutes (12.1+) or HeartbeatInterval in seconds (14.0+), as seconds.
    pub hold_seconds: Option<u32>,
    pub partial: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionRequest {
    /// `None` in a cached request: the key the server issued last is meant.
    pub sync_key: Option<String>,
    pub collection_id: String,
    pub get_changes: Option<bool>,
    /// Normalised WindowSize.
    pub window_size: Option<usize>,
    /// `None`: keep the stored options.
    pub options: Option<CollectionOptions>,
    pub deletes_as_moves: Option<bool>,
    /// The 12.x form: `Class` directly in the Collection, echoed in the answer.
    pub class_given: bool,
    /// The client's own changes; never cached.
    #[serde(skip)]
    pub commands: Vec<ClientCommand>,
    /// Why this collection is malformed (answered with Status 4); never cached.
    #[serde(skip)]
    pub invalid: Option<&'static str>,
}

impl CollectionRequest {
    pub fn window(&self) -> usize {
        self.window_size.unwrap_or(DEFAULT_WINDOW_SIZE)
    }
}

/// A command from the client inside a collection; `data` is its airsync:ApplicationData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    Add { client_id: String, data: Option<Element> },
    Change { server_id: String, data: Option<Element> },
    Delete { server_id: String },
    Fetch { server_id: String },
}

/// A failure of the whole request: `Sync > Status` (and `Limit` with 14 and 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalStatus {
    pub status: u8,
    pub limit: Option<u32>,
}

impl GlobalStatus {
    fn protocol_error() -> Self {
        GlobalStatus { status: status::PROTOCOL_ERROR, limit: None }
    }
}

/// Parses a non-empty Sync request body. `heartbeat` is the tenant's HeartbeatInterval range
/// (seconds), shared with Ping.
pub fn parse(root: &Element, heartbeat: RangeInclusive<u32>) -> Result<SyncRequest, GlobalStatus> {
    if root.tag != air_sync::SYNC {
        return Err(GlobalStatus::protocol_error());
    }
    let mut request = SyncRequest {
        window_size: match root.text_of(air_sync::WINDOW_SIZE) {
            Some(text) => Some(window_size(text)?),
            None => None,
        },
        partial: root.child(air_sync::PARTIAL).is_some_and(|p| boolean(p).unwrap_or(true)),
        ..SyncRequest::default()
    };
    request.hold_seconds = hold_seconds(root, heartbeat)?;
    if let Some(collections) = root.child(air_sync::COLLECTIONS) {
        let list: Vec<&Element> = collections.children(air_sync::COLLECTION).collect();
        if list.len() > MAX_SYNC_COLLECTIONS {
            return Err(GlobalStatus {
                status: status::TOO_MANY_COLLECTIONS,
                limit: Some(MAX_SYNC_COLLECTIONS as u32),
            });
        }
        let mut commands = 0usize;
        for element in list {
            let collection = parse_collection(element)?;
            commands += collection.commands.len();
            if request.collections.iter().any(|c| c.collection_id == collection.collection_id) {
                return Err(GlobalStatus::protocol_error());
            }
            request.collections.push(collection);
        }
        if commands > MAX_CLIENT_COMMANDS {
            return Err(GlobalStatus::protocol_error());
        }
    }
    if request.collections.is_empty() && !request.partial && request.hold_seconds.is_none() {
        return Err(GlobalStatus::protocol_error());
    }
    if request.partial && request.collections.is_empty() && request.hold_seconds.is_none() {
        // Partial alone says nothing (MS-ASCMD §2.2.3.131).
        return Err(GlobalStatus::protocol_error());
    }
    Ok(request)
}

fn hold_seconds(
    root: &Element,
    heartbeat_range: RangeInclusive<u32>,
) -> Result<Option<u32>, GlobalStatus> {
    let wait = root.text_of(air_sync::WAIT);
    let heartbeat = root.text_of(air_sync::HEARTBEAT_INTERVAL);
    let out_of_range =
        |limit: u32| GlobalStatus { status: status::INVALID_INTERVAL, limit: Some(limit) };
    match (wait, heartbeat) {
        (Some(_), Some(_)) => Err(GlobalStatus::protocol_error()),
        (Some(text), None) => {
            let minutes = number(text)?;
            if minutes < *WAIT_MINUTES.start() {
                return Err(out_of_range(*WAIT_MINUTES.start()));
            }
            if minutes > *WAIT_MINUTES.end() {
                return Err(out_of_range(*WAIT_MINUTES.end()));
            }
            Ok(Some(minutes * 60))
        }
        (None, Some(text)) => {
            let seconds = number(text)?;
            if seconds < *heartbeat_range.start() {
                return Err(out_of_range(*heartbeat_range.start()));
            }
            if seconds > *heartbeat_range.end() {
                return Err(out_of_range(*heartbeat_range.end()));
            }
            Ok(Some(seconds))
        }
        (None, None) => Ok(None),
    }
}

fn parse_collection(element: &Element) -> Result<CollectionRequest, GlobalStatus> {
    let collection_id = element
        .text_of(air_sync::COLLECTION_ID)
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
        .ok_or_else(GlobalStatus::protocol_error)?
        .to_owned();
    let mut collection = CollectionRequest { collection_id, ..CollectionRequest::default() };
    match element.text_of(air_sync::SYNC_KEY).map(str::trim) {
        Some(key) if !key.is_empty() && key.len() <= MAX_ID_LEN => {
            collection.sync_key = Some(key.to_owned());
        }
        _ => collection.invalid = Some("SyncKey missing or too long"),
    }
    if let Some(get_changes) = element.child(air_sync::GET_CHANGES) {
        collection.get_changes = boolean(get_changes);
        if collection.get_changes.is_none() {
            collection.invalid = Some("GetChanges");
        }
    }
    if let Some(text) = element.text_of(air_sync::WINDOW_SIZE) {
        match window_size(text) {
            Ok(size) => collection.window_size = Some(size),
            Err(_) => collection.invalid = Some("WindowSize"),
        }
    }
    if let Some(deletes_as_moves) = element.child(air_sync::DELETES_AS_MOVES) {
        collection.deletes_as_moves = boolean(deletes_as_moves);
    }
    if let Some(class) = element.text_of(air_sync::CLASS) {
        collection.class_given = true;
        if class.trim() != "Email" {
            collection.invalid = Some("not an Email collection");
        }
    }
    let options: Vec<&Element> = element.children(air_sync::OPTIONS).collect();
    match CollectionOptions::parse(&options) {
        Ok(parsed) => collection.options = parsed,
        Err(problem) => collection.invalid = Some(problem.0),
    }
    if let Some(commands) = element.child(air_sync::COMMANDS) {
        for command in commands.child_elements() {
            if collection.commands.len() > MAX_CLIENT_COMMANDS {
                return Err(GlobalStatus::protocol_error());
            }
            let server_id = || command.text_of(air_sync::SERVER_ID).unwrap_or_default().to_owned();
            let data = || command.child(air_sync::APPLICATION_DATA).cloned();
            let parsed = match command.tag {
                tag if tag == air_sync::ADD => ClientCommand::Add {
                    client_id: command.text_of(air_sync::CLIENT_ID).unwrap_or_default().to_owned(),
                    data: data(),
                },
                tag if tag == air_sync::CHANGE => {
                    ClientCommand::Change { server_id: server_id(), data: data() }
                }
                tag if tag == air_sync::DELETE => ClientCommand::Delete { server_id: server_id() },
                tag if tag == air_sync::FETCH => ClientCommand::Fetch { server_id: server_id() },
                _ => {
                    collection.invalid = Some("unknown command");
                    continue;
                }
            };
            collection.commands.push(parsed);
        }
    }
    Ok(collection)
}

/// Partial: the listed collections replace their cached entries, the others are taken from
/// the cache with the keys issued last. Wait/HeartbeatInterval and WindowSize come from the
/// request when it has them.
pub fn merge_partial(request: SyncRequest, cached: SyncRequest) -> SyncRequest {
    let mut collections = request.collections;
    for old in cached.collections {
        if !collections.iter().any(|c| c.collection_id == old.collection_id) {
            collections.push(old);
        }
    }
    collections.truncate(MAX_SYNC_COLLECTIONS);
    SyncRequest {
        collections,
        window_size: request.window_size.or(cached.window_size),
        hold_seconds: request.hold_seconds.or(cached.hold_seconds),
        partial: false,
    }
}

/// The request as cached: no keys (the last issued ones apply), no commands, and no
/// GetChanges (a GetChanges 0 that came with client changes must not stop later syncs).
pub fn encode_cache(request: &SyncRequest) -> Vec<u8> {
    let mut cached = request.clone();
    cached.partial = false;
    for collection in &mut cached.collections {
        collection.sync_key = None;
        collection.get_changes = None;
        collection.commands.clear();
        collection.invalid = None;
    }
    let mut bytes = vec![CACHE_FORMAT];
    bytes.extend(postcard::to_allocvec(&cached).unwrap_or_default());
    bytes
}

pub fn decode_cache(bytes: &[u8]) -> Option<SyncRequest> {
    let (&format, rest) = bytes.split_first()?;
    if format != CACHE_FORMAT {
        return None;
    }
    postcard::from_bytes(rest).ok()
}

/// An EAS boolean: empty means true (MS-ASDTYPE §2.1).
fn boolean(element: &Element) -> Option<bool> {
    match element.text()?.trim() {
        "" | "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

fn number(text: &str) -> Result<u32, GlobalStatus> {
    text.trim().parse::<u32>().map_err(|_| GlobalStatus::protocol_error())
}

fn window_size(text: &str) -> Result<usize, GlobalStatus> {
    let size = number(text)? as usize;
    Ok(if size == 0 || size > MAX_WINDOW_SIZE { MAX_WINDOW_SIZE } else { size })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEARTBEAT: RangeInclusive<u32> = 60..=3540;

    fn parse(root: &Element) -> Result<SyncRequest, GlobalStatus> {
        super::parse(root, HEARTBEAT)
    }

    fn collection(key: &str, id: &str) -> Element {
        Element::new(air_sync::COLLECTION)
            .text_child(air_sync::SYNC_KEY, key)
            .text_child(air_sync::COLLECTION_ID, id)
    }

    fn sync(children: Vec<Element>) -> Element {
        Element::with_children(air_sync::SYNC, children)
    }

    fn collections(list: Vec<Element>) -> Element {
        Element::with_children(air_sync::COLLECTIONS, list)
    }

    #[test]
    fn parses_collections_windows_and_commands() {
        let mut first = collection("abc-1", "5")
            .text_child(air_sync::GET_CHANGES, "0")
            .text_child(air_sync::WINDOW_SIZE, "0");
        first.push(Element::with_children(
            air_sync::COMMANDS,
            vec![
                Element::new(air_sync::FETCH).text_child(air_sync::SERVER_ID, "5:7"),
                Element::new(air_sync::ADD).text_child(air_sync::CLIENT_ID, "c1"),
            ],
        ));
        let request = parse(&sync(vec![
            collections(vec![first, collection("0", "6").empty_child(air_sync::GET_CHANGES)]),
            Element::with_text(air_sync::WINDOW_SIZE, "50"),
        ]))
        .expect("valid");
        assert_eq!(request.window_size, Some(50));
        let [first, second] = &request.collections[..] else { panic!("two collections") };
        assert_eq!(first.get_changes, Some(false));
        assert_eq!(first.window(), MAX_WINDOW_SIZE);
        assert_eq!(first.commands.len(), 2);
        assert_eq!(second.get_changes, Some(true));
        assert_eq!(second.window(), DEFAULT_WINDOW_SIZE);
    }

    #[test]
    fn global_errors() {
        let status_of = |root: Element| parse(&root).map(|_| ()).expect_err("refused");
        assert_eq!(status_of(sync(vec![])).status, status::PROTOCOL_ERROR);
        let both = sync(vec![
            Element::with_text(air_sync::WAIT, "5"),
            Element::with_text(air_sync::HEARTBEAT_INTERVAL, "600"),
        ]);
        assert_eq!(status_of(both).status, status::PROTOCOL_ERROR);
        let long_wait = sync(vec![Element::with_text(air_sync::WAIT, "90")]);
        assert_eq!(
            status_of(long_wait),
            GlobalStatus { status: status::INVALID_INTERVAL, limit: Some(59) }
        );
        let many = (0..=MAX_SYNC_COLLECTIONS).map(|i| collection("0", &i.to_string())).collect();
        assert_eq!(status_of(sync(vec![collections(many)])).status, status::TOO_MANY_COLLECTIONS);
        let twice = collections(vec![collection("0", "1"), collection("0", "1")]);
        assert_eq!(status_of(sync(vec![twice])).status, status::PROTOCOL_ERROR);
        let no_id = collections(vec![
            Element::new(air_sync::COLLECTION).text_child(air_sync::SYNC_KEY, "0"),
        ]);
        assert_eq!(status_of(sync(vec![no_id])).status, status::PROTOCOL_ERROR);
        assert_eq!(
            status_of(sync(vec![Element::new(air_sync::PARTIAL)])).status,
            status::PROTOCOL_ERROR
        );
    }

    #[test]
    fn collection_errors_stay_with_the_collection() {
        let bad = collection("", "5").text_child(air_sync::GET_CHANGES, "maybe");
        let request = parse(&sync(vec![collections(vec![bad])])).expect("valid request");
        assert!(request.collections[0].invalid.is_some());
    }

    #[test]
    fn partial_requests_merge_with_the_cache_and_the_cache_has_no_keys() {
        let full =
            parse(&sync(vec![collections(vec![collection("k-1", "1"), collection("k-2", "2")])]))
                .expect("valid");
        let cached = decode_cache(&encode_cache(&full)).expect("decodes");
        assert!(cached.collections.iter().all(|c| c.sync_key.is_none()));
        let partial = parse(&sync(vec![
            collections(vec![collection("k-9", "2")]),
            Element::new(air_sync::PARTIAL),
        ]))
        .expect("valid");
        assert!(partial.partial);
        let merged = merge_partial(partial, cached);
        let keys: Vec<_> = merged
            .collections
            .iter()
            .map(|c| (c.collection_id.as_str(), c.sync_key.as_deref()))
            .collect();
        assert_eq!(keys, [("2", Some("k-9")), ("1", None)]);
    }
}
