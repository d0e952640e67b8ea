//! Responses read into typed structs. Parsing is lenient about what a test may want to assert
//! (missing optional elements become `None`) and strict about structure the spec requires
//! (an Add without ServerId is an error naming the element).

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use eas_wbxml::tags::{
    air_sync as as_, folder_hierarchy as fh, get_item_estimate as gie, item_operations as io,
    settings as st,
};
use eas_wbxml::{Document, Element, Tag};

use super::email::Email;

/// The XML form of an element, for failure messages.
pub fn xml(element: &Element) -> String {
    eas_wbxml::to_xml(&Document::new(element.clone()))
}

/// The XML of `element`, cut to `max` bytes (a page of 100 messages is long).
pub fn xml_excerpt(element: &Element, max: usize) -> String {
    let mut text = xml(element);
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (cut)");
    }
    text
}

pub(crate) fn parse_u32(element: &Element, tag: Tag) -> Result<Option<u32>> {
    match element.text_of(tag) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("{} is not a number: {text:?}", tag.name())),
    }
}

fn required_text(element: &Element, tag: Tag) -> Result<String> {
    element.text_of(tag).map(str::to_string).with_context(|| {
        format!("{} without {}:\n{}", element.tag.name(), tag.name(), xml_excerpt(element, 2000))
    })
}

/// The `Status` directly under the root of any command response (the common status of
/// MS-ASCMD §2.2.2 lives there), whatever the root's code page.
pub fn top_level_status(root: &Element) -> Option<u32> {
    root.child_elements()
        .iter()
        .find(|child| child.tag.name() == "Status" && child.tag.page() == root.tag.page())
        .and_then(|status| status.text())
        .and_then(|text| text.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// FolderSync

/// One folder of a FolderSync `Add` or `Update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub server_id: String,
    pub parent_id: String,
    pub display_name: String,
    /// MS-ASCMD §2.2.3.186.3: 2 Inbox, 3 Drafts, 4 Deleted Items, 5 Sent Items, 6 Outbox,
    /// 12 user mail folder, …
    pub folder_type: u32,
}

impl Folder {
    fn parse(element: &Element) -> Result<Folder> {
        Ok(Folder {
            server_id: required_text(element, fh::SERVER_ID)?,
            parent_id: required_text(element, fh::PARENT_ID)?,
            display_name: required_text(element, fh::DISPLAY_NAME)?,
            folder_type: parse_u32(element, fh::TYPE)?
                .with_context(|| format!("folder without Type:\n{}", xml(element)))?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct FolderSyncAnswer {
    pub status: u32,
    pub sync_key: Option<String>,
    pub count: Option<u32>,
    pub adds: Vec<Folder>,
    pub updates: Vec<Folder>,
    pub deletes: Vec<String>,
    pub root: Element,
}

impl FolderSyncAnswer {
    pub fn parse(root: Element) -> Result<FolderSyncAnswer> {
        if root.tag != fh::FOLDER_SYNC {
            bail!("expected a FolderSync response, got:\n{}", xml(&root));
        }
        let status = parse_u32(&root, fh::STATUS)?
            .with_context(|| format!("FolderSync response without Status:\n{}", xml(&root)))?;
        let mut answer = FolderSyncAnswer {
            status,
            sync_key: root.text_of(fh::SYNC_KEY).map(str::to_string),
            count: None,
            adds: Vec::new(),
            updates: Vec::new(),
            deletes: Vec::new(),
            root: Element::new(fh::FOLDER_SYNC),
        };
        if let Some(changes) = root.child(fh::CHANGES) {
            answer.count = parse_u32(changes, fh::COUNT)?;
            for change in changes.child_elements() {
                match change.tag {
                    t if t == fh::ADD => answer.adds.push(Folder::parse(change)?),
                    t if t == fh::UPDATE => answer.updates.push(Folder::parse(change)?),
                    t if t == fh::DELETE => {
                        answer.deletes.push(required_text(change, fh::SERVER_ID)?)
                    }
                    t if t == fh::COUNT => {}
                    other => bail!("unexpected {} in FolderSync Changes", other.name()),
                }
            }
        }
        answer.root = root;
        Ok(answer)
    }

    pub fn change_count(&self) -> usize {
        self.adds.len() + self.updates.len() + self.deletes.len()
    }

    pub fn xml(&self) -> String {
        xml(&self.root)
    }
}

// ---------------------------------------------------------------------------------------------
// Sync

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Add,
    Change,
    Delete,
    SoftDelete,
}

/// A server change in `Collection > Commands`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCommand {
    pub kind: CommandKind,
    pub server_id: String,
    pub application_data: Option<Element>,
}

impl ServerCommand {
    /// The ApplicationData read as an email (Add/Change only).
    pub fn email(&self) -> Result<Email> {
        let data = self.application_data.as_ref().with_context(|| {
            format!("{:?} of {} has no ApplicationData", self.kind, self.server_id)
        })?;
        Email::parse(data)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    Add,
    Change,
    Delete,
    Fetch,
}

/// An entry of `Collection > Responses` (answers to client changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResponse {
    pub kind: ResponseKind,
    pub client_id: Option<String>,
    pub server_id: Option<String>,
    pub status: Option<u32>,
    pub application_data: Option<Element>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncCollectionAnswer {
    pub class: Option<String>,
    pub sync_key: Option<String>,
    pub collection_id: Option<String>,
    pub status: Option<u32>,
    pub more_available: bool,
    pub commands: Vec<ServerCommand>,
    pub responses: Vec<ItemResponse>,
}

impl SyncCollectionAnswer {
    fn parse(element: &Element) -> Result<SyncCollectionAnswer> {
        let mut answer = SyncCollectionAnswer {
            class: element.text_of(as_::CLASS).map(str::to_string),
            sync_key: element.text_of(as_::SYNC_KEY).map(str::to_string),
            collection_id: element.text_of(as_::COLLECTION_ID).map(str::to_string),
            status: parse_u32(element, as_::STATUS)?,
            more_available: element.child(as_::MORE_AVAILABLE).is_some(),
            commands: Vec::new(),
            responses: Vec::new(),
        };
        if let Some(commands) = element.child(as_::COMMANDS) {
            for command in commands.child_elements() {
                let kind = match command.tag {
                    t if t == as_::ADD => CommandKind::Add,
                    t if t == as_::CHANGE => CommandKind::Change,
                    t if t == as_::DELETE => CommandKind::Delete,
                    t if t == as_::SOFT_DELETE => CommandKind::SoftDelete,
                    other => {
                        bail!("unexpected {} in Sync Commands:\n{}", other.name(), xml(command))
                    }
                };
                answer.commands.push(ServerCommand {
                    kind,
                    server_id: required_text(command, as_::SERVER_ID)?,
                    application_data: command.child(as_::APPLICATION_DATA).cloned(),
                });
            }
        }
        if let Some(responses) = element.child(as_::RESPONSES) {
            for response in responses.child_elements() {
                let kind = match response.tag {
                    t if t == as_::ADD => ResponseKind::Add,
                    t if t == as_::CHANGE => ResponseKind::Change,
                    t if t == as_::DELETE => ResponseKind::Delete,
                    t if t == as_::FETCH => ResponseKind::Fetch,
                    other => bail!("unexpected {} in Sync Responses", other.name()),
                };
                answer.responses.push(ItemResponse {
                    kind,
                    client_id: response.text_of(as_::CLIENT_ID).map(str::to_string),
                    server_id: response.text_of(as_::SERVER_ID).map(str::to_string),
                    status: parse_u32(response, as_::STATUS)?,
                    application_data: response.child(as_::APPLICATION_DATA).cloned(),
                });
            }
        }
        Ok(answer)
    }

    /// The commands of one kind.
    pub fn of_kind(&self, kind: CommandKind) -> impl Iterator<Item = &ServerCommand> {
        self.commands.iter().filter(move |c| c.kind == kind)
    }

    pub fn adds(&self) -> impl Iterator<Item = &ServerCommand> {
        self.of_kind(CommandKind::Add)
    }
}

/// A Sync response: the HTTP body as received (for byte comparisons) and its typed reading.
/// An empty body (HTTP 200, length 0) is the spec's "nothing changed" answer (§2.2.1.21.2).
#[derive(Debug, Clone)]
pub struct SyncAnswer {
    pub raw: Vec<u8>,
    pub root: Option<Element>,
    /// The global `Sync > Status`, present only for failures of the whole request.
    pub status: Option<u32>,
    pub limit: Option<u32>,
    pub collections: Vec<SyncCollectionAnswer>,
}

impl SyncAnswer {
    pub fn parse(raw: Vec<u8>, root: Option<Element>) -> Result<SyncAnswer> {
        let mut answer =
            SyncAnswer { raw, root: None, status: None, limit: None, collections: Vec::new() };
        if let Some(root) = root {
            if root.tag != as_::SYNC {
                bail!("expected a Sync response, got:\n{}", xml_excerpt(&root, 4000));
            }
            answer.status = parse_u32(&root, as_::STATUS)?;
            answer.limit = parse_u32(&root, as_::LIMIT)?;
            if let Some(collections) = root.child(as_::COLLECTIONS) {
                for collection in collections.children(as_::COLLECTION) {
                    answer.collections.push(
                        SyncCollectionAnswer::parse(collection)
                            .with_context(|| xml_excerpt(collection, 4000))?,
                    );
                }
            }
            answer.root = Some(root);
        }
        Ok(answer)
    }

    /// True for the empty response (no body at all).
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    pub fn collection(&self, collection_id: &str) -> Option<&SyncCollectionAnswer> {
        self.collections.iter().find(|c| c.collection_id.as_deref() == Some(collection_id))
    }

    /// The collection's status, else the global one (servers put a whole-request failure such as
    /// an invalid SyncKey in either place).
    pub fn status_of(&self, collection_id: &str) -> Option<u32> {
        self.collection(collection_id).and_then(|c| c.status).or(self.status)
    }

    /// The server commands for `collection_id` (none for an empty response).
    pub fn commands(&self, collection_id: &str) -> &[ServerCommand] {
        self.collection(collection_id).map(|c| c.commands.as_slice()).unwrap_or_default()
    }

    pub fn xml(&self) -> String {
        match &self.root {
            Some(root) => xml_excerpt(root, 6000),
            None => "(empty response)".to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GetItemEstimate

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstimateResponse {
    pub status: u32,
    pub collection_id: Option<String>,
    pub estimate: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct EstimateAnswer {
    /// A common status directly under the root (e.g. 142), if any.
    pub status: Option<u32>,
    pub responses: Vec<EstimateResponse>,
    pub root: Element,
}

impl EstimateAnswer {
    pub fn parse(root: Element) -> Result<EstimateAnswer> {
        if root.tag != gie::GET_ITEM_ESTIMATE {
            bail!("expected a GetItemEstimate response, got:\n{}", xml(&root));
        }
        let mut responses = Vec::new();
        for response in root.children(gie::RESPONSE) {
            let status = parse_u32(response, gie::STATUS)?
                .with_context(|| format!("Response without Status:\n{}", xml(response)))?;
            let collection = response.child(gie::COLLECTION);
            let estimate = match collection.and_then(|c| c.text_of(gie::ESTIMATE)) {
                Some(text) => {
                    Some(text.trim().parse().with_context(|| format!("bad Estimate {text:?}"))?)
                }
                None => None,
            };
            responses.push(EstimateResponse {
                status,
                collection_id: collection
                    .and_then(|c| c.text_of(gie::COLLECTION_ID))
                    .map(str::to_string),
                estimate,
            });
        }
        Ok(EstimateAnswer { status: parse_u32(&root, gie::STATUS)?, responses, root })
    }

    pub fn xml(&self) -> String {
        xml(&self.root)
    }
}

// ---------------------------------------------------------------------------------------------
// ItemOperations

/// One `Response > Fetch`.
#[derive(Debug, Clone)]
pub struct FetchAnswer {
    pub status: u32,
    pub collection_id: Option<String>,
    pub server_id: Option<String>,
    pub file_reference: Option<String>,
    pub class: Option<String>,
    pub properties: Option<Element>,
}

impl FetchAnswer {
    /// The fetched item read as an email.
    pub fn email(&self) -> Result<Email> {
        Email::parse(self.properties.as_ref().context("Fetch without Properties")?)
    }

    /// An attachment's bytes: `Properties > itemoperations:Data`, base64 (MS-ASCMD §2.2.3.39.1).
    pub fn attachment_bytes(&self) -> Result<Vec<u8>> {
        let properties = self.properties.as_ref().context("Fetch without Properties")?;
        let data = properties
            .bytes_of(io::DATA)
            .with_context(|| format!("Properties without Data:\n{}", xml(properties)))?;
        let compact: Vec<u8> = data.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .context("attachment Data is not base64")
    }

    /// `Properties > airsyncbase:ContentType` of an attachment.
    pub fn content_type(&self) -> Option<&str> {
        self.properties.as_ref()?.text_of(eas_wbxml::tags::air_sync_base::CONTENT_TYPE)
    }
}

#[derive(Debug, Clone)]
pub struct ItemOperationsAnswer {
    pub status: u32,
    pub fetches: Vec<FetchAnswer>,
    pub root: Element,
}

impl ItemOperationsAnswer {
    pub fn parse(root: Element) -> Result<ItemOperationsAnswer> {
        if root.tag != io::ITEM_OPERATIONS {
            bail!("expected an ItemOperations response, got:\n{}", xml_excerpt(&root, 4000));
        }
        let status = parse_u32(&root, io::STATUS)?
            .with_context(|| format!("ItemOperations without Status:\n{}", xml(&root)))?;
        let mut fetches = Vec::new();
        if let Some(response) = root.child(io::RESPONSE) {
            for fetch in response.children(io::FETCH) {
                fetches.push(FetchAnswer {
                    status: parse_u32(fetch, io::STATUS)?.with_context(|| {
                        format!("Fetch without Status:\n{}", xml_excerpt(fetch, 2000))
                    })?,
                    collection_id: fetch.text_of(as_::COLLECTION_ID).map(str::to_string),
                    server_id: fetch.text_of(as_::SERVER_ID).map(str::to_string),
                    file_reference: fetch
                        .text_of(eas_wbxml::tags::air_sync_base::FILE_REFERENCE)
                        .map(str::to_string),
                    class: fetch.text_of(as_::CLASS).map(str::to_string),
                    properties: fetch.child(io::PROPERTIES).cloned(),
                });
            }
        }
        Ok(ItemOperationsAnswer { status, fetches, root })
    }

    pub fn xml(&self) -> String {
        xml_excerpt(&self.root, 4000)
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInformation {
    pub status: Option<u32>,
    /// Every `SMTPAddress` below `Get` (12.1/14.0 form, and 14.1+ inside Accounts).
    pub smtp_addresses: Vec<String>,
    /// 14.1+: `Get > Accounts > Account > EmailAddresses > PrimarySmtpAddress`.
    pub primary_smtp_address: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SettingsAnswer {
    pub status: u32,
    pub device_information_status: Option<u32>,
    pub user_information: Option<UserInformation>,
    pub root: Element,
}

impl SettingsAnswer {
    pub fn parse(root: Element) -> Result<SettingsAnswer> {
        if root.tag != st::SETTINGS {
            bail!("expected a Settings response, got:\n{}", xml(&root));
        }
        let status = parse_u32(&root, st::STATUS)?
            .with_context(|| format!("Settings without Status:\n{}", xml(&root)))?;
        let device_information_status = match root.child(st::DEVICE_INFORMATION) {
            Some(info) => parse_u32(info, st::STATUS)?,
            None => None,
        };
        let user_information = match root.child(st::USER_INFORMATION) {
            Some(info) => {
                let mut user = UserInformation {
                    status: parse_u32(info, st::STATUS)?,
                    ..UserInformation::default()
                };
                if let Some(get) = info.child(st::GET) {
                    collect_user_information(get, &mut user);
                }
                Some(user)
            }
            None => None,
        };
        Ok(SettingsAnswer { status, device_information_status, user_information, root })
    }

    pub fn xml(&self) -> String {
        xml(&self.root)
    }
}

fn collect_user_information(element: &Element, user: &mut UserInformation) {
    for child in element.child_elements() {
        match child.tag {
            t if t == st::SMTP_ADDRESS => {
                user.smtp_addresses.extend(child.text().map(str::to_string));
            }
            t if t == st::PRIMARY_SMTP_ADDRESS => {
                user.primary_smtp_address = child.text().map(str::to_string);
            }
            t if t == st::USER_DISPLAY_NAME => {
                user.display_name = child.text().map(str::to_string);
            }
            _ => collect_user_information(child, user),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Provision

pub(crate) struct ProvisionAnswer {
    pub status: Option<u32>,
    pub policy_status: Option<u32>,
    pub policy_key: Option<u32>,
}

impl ProvisionAnswer {
    pub fn parse(root: &Element) -> Result<ProvisionAnswer> {
        use eas_wbxml::tags::provision as pv;
        if root.tag != pv::PROVISION {
            bail!("expected a Provision response, got:\n{}", xml(root));
        }
        let policy = root.child(pv::POLICIES).and_then(|p| p.child(pv::POLICY));
        let policy_key = match policy.and_then(|p| p.text_of(pv::POLICY_KEY)) {
            Some(key) => Some(key.trim().parse().with_context(|| format!("PolicyKey {key:?}"))?),
            None => None,
        };
        Ok(ProvisionAnswer {
            status: parse_u32(root, pv::STATUS)?,
            policy_status: match policy {
                Some(policy) => parse_u32(policy, pv::STATUS)?,
                None => None,
            },
            policy_key,
        })
    }
}
