//! Requests as typed structs, turned into WBXML documents for one protocol version.
//!
//! Element names, order and placement follow MS-ASCMD as summarised in EAS-NOTES.md (§4.2 FolderSync,
//! §4.4 Sync, §4.5 GetItemEstimate, §4.7 ItemOperations, §4.13 Settings, §4.1 Provision); where a
//! version changes the shape (12.1 vs 14.0+), the version picks it.

use eas_wbxml::tags::{
    air_sync as as_, air_sync_base as asb, folder_hierarchy as fh, get_item_estimate as gie,
    item_operations as io, provision as pv, search as se, settings as st,
};
use eas_wbxml::{Document, Element};

use super::Version;

/// The policy type of every version we speak (12.0+; MS-ASPROV §2.2.2.41).
pub const POLICY_TYPE: &str = "MS-EAS-Provisioning-WBXML";

/// `airsyncbase:BodyPreference` (MS-ASAIRS §2.2.2.12): children in the fixed order Type,
/// TruncationSize, AllOrNone, Preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPreference {
    /// 1 plain text, 2 HTML, 3 RTF, 4 MIME.
    pub body_type: u8,
    pub truncation_size: Option<u32>,
    pub all_or_none: Option<bool>,
    /// 14.0+: characters of plain-text preview wanted (0-255).
    pub preview: Option<u32>,
}

impl BodyPreference {
    pub fn new(body_type: u8) -> BodyPreference {
        BodyPreference { body_type, truncation_size: None, all_or_none: None, preview: None }
    }

    pub fn truncated(body_type: u8, truncation_size: u32) -> BodyPreference {
        BodyPreference { truncation_size: Some(truncation_size), ..BodyPreference::new(body_type) }
    }

    pub fn with_preview(mut self, characters: u32) -> BodyPreference {
        self.preview = Some(characters);
        self
    }

    pub fn all_or_none(mut self, value: bool) -> BodyPreference {
        self.all_or_none = Some(value);
        self
    }

    pub fn element(&self) -> Element {
        let mut element =
            Element::new(asb::BODY_PREFERENCE).text_child(asb::TYPE, num(self.body_type));
        if let Some(size) = self.truncation_size {
            element = element.text_child(asb::TRUNCATION_SIZE, num(size));
        }
        if let Some(all) = self.all_or_none {
            element = element.text_child(asb::ALL_OR_NONE, boolean(all));
        }
        if let Some(preview) = self.preview {
            element = element.text_child(asb::PREVIEW, num(preview));
        }
        element
    }
}

/// `airsync:Options` of a Sync collection (MS-ASCMD §2.2.3.125.6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// 14.0+ only here (12.1 puts Class directly under Collection: see [`SyncCollection::class`]).
    pub class: Option<String>,
    pub filter_type: Option<u8>,
    pub body_preferences: Vec<BodyPreference>,
    /// 0 never, 1 S/MIME only, 2 always.
    pub mime_support: Option<u8>,
    pub mime_truncation: Option<u8>,
    pub conflict: Option<u8>,
    pub max_items: Option<u32>,
}

impl SyncOptions {
    /// Options with these body preferences and nothing else.
    pub fn bodies(preferences: impl IntoIterator<Item = BodyPreference>) -> SyncOptions {
        SyncOptions {
            body_preferences: preferences.into_iter().collect(),
            ..SyncOptions::default()
        }
    }

    pub fn element(&self) -> Element {
        let mut element = Element::new(as_::OPTIONS);
        if let Some(class) = &self.class {
            element = element.text_child(as_::CLASS, class.as_str());
        }
        if let Some(filter) = self.filter_type {
            element = element.text_child(as_::FILTER_TYPE, num(filter));
        }
        for preference in &self.body_preferences {
            element = element.with_child(preference.element());
        }
        if let Some(mime) = self.mime_support {
            element = element.text_child(as_::MIME_SUPPORT, num(mime));
        }
        if let Some(truncation) = self.mime_truncation {
            element = element.text_child(as_::MIME_TRUNCATION, num(truncation));
        }
        if let Some(conflict) = self.conflict {
            element = element.text_child(as_::CONFLICT, num(conflict));
        }
        if let Some(max) = self.max_items {
            element = element.text_child(as_::MAX_ITEMS, num(max));
        }
        element
    }
}

/// A client-side change inside `Collection > Commands`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    Add { client_id: String, application_data: Element },
    Change { server_id: String, application_data: Element },
    Delete { server_id: String },
    Fetch { server_id: String },
}

impl ClientCommand {
    fn element(&self) -> Element {
        match self {
            ClientCommand::Add { client_id, application_data } => Element::new(as_::ADD)
                .text_child(as_::CLIENT_ID, client_id.as_str())
                .with_child(application_data.clone()),
            ClientCommand::Change { server_id, application_data } => Element::new(as_::CHANGE)
                .text_child(as_::SERVER_ID, server_id.as_str())
                .with_child(application_data.clone()),
            ClientCommand::Delete { server_id } => {
                Element::new(as_::DELETE).text_child(as_::SERVER_ID, server_id.as_str())
            }
            ClientCommand::Fetch { server_id } => {
                Element::new(as_::FETCH).text_child(as_::SERVER_ID, server_id.as_str())
            }
        }
    }
}

/// One `Sync > Collections > Collection`. Children are written in the order MS-ASCMD
/// §2.2.3.29.2 requires: (12.1: Class,) SyncKey, CollectionId, Supported, DeletesAsMoves,
/// GetChanges, WindowSize, ConversationMode, Options, Commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncCollection {
    pub sync_key: String,
    pub collection_id: String,
    /// Written under Collection for 12.1 and under Options for 14.0+.
    pub class: Option<String>,
    pub deletes_as_moves: Option<bool>,
    pub get_changes: Option<bool>,
    pub window_size: Option<u32>,
    pub conversation_mode: Option<bool>,
    pub options: Option<SyncOptions>,
    pub commands: Vec<ClientCommand>,
}

impl SyncCollection {
    pub fn new(sync_key: impl Into<String>, collection_id: impl Into<String>) -> SyncCollection {
        SyncCollection {
            sync_key: sync_key.into(),
            collection_id: collection_id.into(),
            class: None,
            deletes_as_moves: None,
            get_changes: None,
            window_size: None,
            conversation_mode: None,
            options: None,
            commands: Vec::new(),
        }
    }

    pub fn window(mut self, size: u32) -> SyncCollection {
        self.window_size = Some(size);
        self
    }

    pub fn get_changes(mut self, value: bool) -> SyncCollection {
        self.get_changes = Some(value);
        self
    }

    pub fn options(mut self, options: SyncOptions) -> SyncCollection {
        self.options = Some(options);
        self
    }

    pub fn class(mut self, class: &str) -> SyncCollection {
        self.class = Some(class.to_string());
        self
    }

    pub fn command(mut self, command: ClientCommand) -> SyncCollection {
        self.commands.push(command);
        self
    }

    fn element(&self, version: Version) -> Element {
        let mut element = Element::new(as_::COLLECTION);
        let legacy_class = version < Version::V14_0;
        if legacy_class && let Some(class) = &self.class {
            element = element.text_child(as_::CLASS, class.as_str());
        }
        element = element
            .text_child(as_::SYNC_KEY, self.sync_key.as_str())
            .text_child(as_::COLLECTION_ID, self.collection_id.as_str());
        if let Some(moves) = self.deletes_as_moves {
            element = element.text_child(as_::DELETES_AS_MOVES, boolean(moves));
        }
        match self.get_changes {
            // present and empty means true (MS-ASDTYPE §2.1)
            Some(true) => element = element.empty_child(as_::GET_CHANGES),
            Some(false) => element = element.text_child(as_::GET_CHANGES, "0"),
            None => {}
        }
        if let Some(size) = self.window_size {
            element = element.text_child(as_::WINDOW_SIZE, num(size));
        }
        if let Some(mode) = self.conversation_mode {
            element = element.text_child(as_::CONVERSATION_MODE, boolean(mode));
        }
        let mut options = self.options.clone();
        if !legacy_class && let Some(class) = &self.class {
            options.get_or_insert_with(SyncOptions::default).class = Some(class.clone());
        }
        if let Some(options) = options {
            element = element.with_child(options.element());
        }
        if !self.commands.is_empty() {
            element = element.with_child(Element::with_children(
                as_::COMMANDS,
                self.commands.iter().map(ClientCommand::element).collect(),
            ));
        }
        element
    }
}

/// A Sync request (MS-ASCMD §2.2.1.21): Collections, then Wait | HeartbeatInterval, WindowSize,
/// Partial.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRequest {
    pub collections: Vec<SyncCollection>,
    /// Minutes (12.1+).
    pub wait: Option<u32>,
    /// Seconds (14.0+).
    pub heartbeat_interval: Option<u32>,
    /// The global window over all collections.
    pub window_size: Option<u32>,
    pub partial: bool,
}

impl SyncRequest {
    pub fn one(collection: SyncCollection) -> SyncRequest {
        SyncRequest { collections: vec![collection], ..SyncRequest::default() }
    }

    pub fn document(&self, version: Version) -> Document {
        let mut root = Element::new(as_::SYNC);
        if !self.collections.is_empty() {
            root = root.with_child(Element::with_children(
                as_::COLLECTIONS,
                self.collections.iter().map(|c| c.element(version)).collect(),
            ));
        }
        if let Some(wait) = self.wait {
            root = root.text_child(as_::WAIT, num(wait));
        }
        if let Some(interval) = self.heartbeat_interval {
            root = root.text_child(as_::HEARTBEAT_INTERVAL, num(interval));
        }
        if let Some(size) = self.window_size {
            root = root.text_child(as_::WINDOW_SIZE, num(size));
        }
        if self.partial {
            root = root.empty_child(as_::PARTIAL);
        }
        Document::new(root)
    }
}

/// `FolderSync > SyncKey` (MS-ASCMD §2.2.1.5).
pub fn folder_sync(sync_key: &str) -> Document {
    Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, sync_key))
}

/// One collection of a GetItemEstimate request (MS-ASCMD §2.2.1.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstimateCollection {
    pub sync_key: String,
    pub collection_id: String,
    pub filter_type: Option<u8>,
    /// 12.1 requires a class (`getitemestimate:Class`); defaults to `Email` there.
    pub class: Option<String>,
}

impl EstimateCollection {
    pub fn new(sync_key: impl Into<String>, collection_id: impl Into<String>) -> Self {
        EstimateCollection {
            sync_key: sync_key.into(),
            collection_id: collection_id.into(),
            filter_type: None,
            class: None,
        }
    }

    fn element(&self, version: Version) -> Element {
        let collection = Element::new(gie::COLLECTION);
        if version < Version::V14_0 {
            // 12.1: Class, CollectionId, airsync:FilterType, airsync:SyncKey
            collection
                .text_child(gie::CLASS, self.class.as_deref().unwrap_or("Email"))
                .text_child(gie::COLLECTION_ID, self.collection_id.as_str())
                .text_child(as_::FILTER_TYPE, num(self.filter_type.unwrap_or(0)))
                .text_child(as_::SYNC_KEY, self.sync_key.as_str())
        } else {
            // 14.0+: airsync:SyncKey, CollectionId, airsync:Options > Class?, FilterType?
            let mut collection = collection
                .text_child(as_::SYNC_KEY, self.sync_key.as_str())
                .text_child(gie::COLLECTION_ID, self.collection_id.as_str());
            if self.class.is_some() || self.filter_type.is_some() {
                let mut options = Element::new(as_::OPTIONS);
                if let Some(class) = &self.class {
                    options = options.text_child(as_::CLASS, class.as_str());
                }
                if let Some(filter) = self.filter_type {
                    options = options.text_child(as_::FILTER_TYPE, num(filter));
                }
                collection = collection.with_child(options);
            }
            collection
        }
    }
}

pub fn get_item_estimate(collections: &[EstimateCollection], version: Version) -> Document {
    Document::new(Element::new(gie::GET_ITEM_ESTIMATE).with_child(Element::with_children(
        gie::COLLECTIONS,
        collections.iter().map(|c| c.element(version)).collect(),
    )))
}

/// What an ItemOperations Fetch asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchTarget {
    /// A whole item: `airsync:CollectionId` + `airsync:ServerId`.
    Item { collection_id: String, server_id: String },
    /// An attachment: `airsyncbase:FileReference`.
    FileReference(String),
    /// A Search result: `search:LongId` (MS-ASCMD §2.2.3.100.1).
    LongId(String),
}

/// `ItemOperations > Fetch` (MS-ASCMD §2.2.3.67.1): Store, the target, Options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub target: FetchTarget,
    pub body_preferences: Vec<BodyPreference>,
    pub mime_support: Option<u8>,
    /// Byte range `first-last` (zero-based, inclusive).
    pub range: Option<(u64, u64)>,
}

impl FetchRequest {
    pub fn item(collection_id: &str, server_id: &str) -> FetchRequest {
        FetchRequest {
            target: FetchTarget::Item {
                collection_id: collection_id.to_string(),
                server_id: server_id.to_string(),
            },
            body_preferences: Vec::new(),
            mime_support: None,
            range: None,
        }
    }

    /// A Search result by its LongId.
    pub fn long_id(long_id: &str) -> FetchRequest {
        FetchRequest {
            target: FetchTarget::LongId(long_id.to_string()),
            ..FetchRequest::attachment("")
        }
    }

    pub fn attachment(file_reference: &str) -> FetchRequest {
        FetchRequest {
            target: FetchTarget::FileReference(file_reference.to_string()),
            body_preferences: Vec::new(),
            mime_support: None,
            range: None,
        }
    }

    pub fn body(mut self, preference: BodyPreference) -> FetchRequest {
        self.body_preferences.push(preference);
        self
    }

    fn element(&self) -> Element {
        let mut fetch = Element::new(io::FETCH).text_child(io::STORE, "Mailbox");
        fetch = match &self.target {
            FetchTarget::Item { collection_id, server_id } => fetch
                .text_child(as_::COLLECTION_ID, collection_id.as_str())
                .text_child(as_::SERVER_ID, server_id.as_str()),
            FetchTarget::FileReference(reference) => {
                fetch.text_child(asb::FILE_REFERENCE, reference.as_str())
            }
            FetchTarget::LongId(long_id) => fetch.text_child(se::LONG_ID, long_id.as_str()),
        };
        let mut options = Vec::new();
        if let Some((first, last)) = self.range {
            options.push(Element::with_text(io::RANGE, format!("{first}-{last}")));
        }
        if let Some(mime) = self.mime_support {
            options.push(Element::with_text(as_::MIME_SUPPORT, num(mime)));
        }
        options.extend(self.body_preferences.iter().map(BodyPreference::element));
        if !options.is_empty() {
            fetch = fetch.with_child(Element::with_children(io::OPTIONS, options));
        }
        fetch
    }
}

pub fn item_operations(fetches: &[FetchRequest]) -> Document {
    Document::new(Element::with_children(
        io::ITEM_OPERATIONS,
        fetches.iter().map(FetchRequest::element).collect(),
    ))
}

/// `settings:DeviceInformation > Set` (MS-ASCMD §2.2.3.45): what a phone says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInformation {
    pub model: String,
    pub imei: Option<String>,
    pub friendly_name: Option<String>,
    pub os: Option<String>,
    pub os_language: Option<String>,
    pub phone_number: Option<String>,
    /// 12.1+.
    pub user_agent: Option<String>,
    /// 14.0+.
    pub mobile_operator: Option<String>,
}

impl DeviceInformation {
    /// An iPhone as iOS 17 describes itself; fields a version does not know are left out.
    pub fn iphone(version: Version) -> DeviceInformation {
        DeviceInformation {
            model: "iPhone16,2".to_string(),
            imei: Some("356938035643809".to_string()),
            friendly_name: Some("Test iPhone".to_string()),
            os: Some("iOS 17.5.1 21F90".to_string()),
            os_language: Some("en".to_string()),
            phone_number: None,
            user_agent: Some("Apple-iPhone16C2/2105.90".to_string()),
            mobile_operator: (version >= Version::V14_0).then(|| "Example Mobile".to_string()),
        }
    }

    /// `DeviceInformation > Set > …` in the schema's order.
    pub fn element(&self) -> Element {
        let mut set = Element::new(st::SET).text_child(st::MODEL, self.model.as_str());
        let optional = [
            (st::IMEI, &self.imei),
            (st::FRIENDLY_NAME, &self.friendly_name),
            (st::OS, &self.os),
            (st::OS_LANGUAGE, &self.os_language),
            (st::PHONE_NUMBER, &self.phone_number),
            (st::USER_AGENT, &self.user_agent),
            (st::MOBILE_OPERATOR, &self.mobile_operator),
        ];
        for (tag, value) in optional {
            if let Some(value) = value {
                set = set.text_child(tag, value.as_str());
            }
        }
        Element::new(st::DEVICE_INFORMATION).with_child(set)
    }
}

pub fn settings_device_information(info: &DeviceInformation) -> Document {
    Document::new(Element::new(st::SETTINGS).with_child(info.element()))
}

pub fn settings_user_information() -> Document {
    Document::new(
        Element::new(st::SETTINGS)
            .with_child(Element::new(st::USER_INFORMATION).empty_child(st::GET)),
    )
}

/// Provision phase 1 (MS-ASPROV §3.1.5.1.1): DeviceInformation only for 14.1+ (MUST there,
/// MUST NOT before), then the policy type.
pub fn provision_request(version: Version, device: &DeviceInformation) -> Document {
    let mut root = Element::new(pv::PROVISION);
    if version >= Version::V14_1 {
        root = root.with_child(device.element());
    }
    Document::new(
        root.with_child(
            Element::new(pv::POLICIES)
                .with_child(Element::new(pv::POLICY).text_child(pv::POLICY_TYPE, POLICY_TYPE)),
        ),
    )
}

/// Provision phase 2: acknowledge the temporary key with Status 1 (policy applied).
pub fn provision_acknowledge(temporary_key: u32) -> Document {
    Document::new(
        Element::new(pv::PROVISION).with_child(
            Element::new(pv::POLICIES).with_child(
                Element::new(pv::POLICY)
                    .text_child(pv::POLICY_TYPE, POLICY_TYPE)
                    .text_child(pv::POLICY_KEY, temporary_key.to_string())
                    .text_child(pv::STATUS, "1"),
            ),
        ),
    )
}

fn num(value: impl ToString) -> String {
    value.to_string()
}

fn boolean(value: bool) -> &'static str {
    if value { "1" } else { "0" }
}
