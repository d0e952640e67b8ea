//! A small blocking Exchange ActiveSync client, written from the protocol documents
//! (MS-ASCMD, MS-ASAIRS, MS-ASEMAIL, MS-ASPROV through `/work/shared/spec/EAS-NOTES.md`), not
//! from the engine: tests that drive the gateway with it cannot share a misunderstanding with
//! the code under test. Only the WBXML codec is shared, and [`libwbxml`] checks what it encodes.
//!
//! - [`Device`]: one phone (user, DeviceId, protocol version, policy key) over [`Client`]:
//!   two-phase [`Device::provision`], then [`folder_sync`](Device::folder_sync),
//!   [`sync`](Device::sync), [`get_item_estimate`](Device::get_item_estimate),
//!   [`item_operations_fetch`](Device::item_operations_fetch) and the Settings calls. Like a phone
//!   it re-provisions once when told to (HTTP 449, Status 142/143/144) if `auto_provision` is on.
//! - [`request`]: requests as typed structs → WBXML, per version.
//! - [`answer`]: responses → typed structs (plus the raw bytes of Sync responses).
//! - [`email`]: an Email ApplicationData read into fields.
//! - [`directory`]: ResolveRecipients and GAL Search, and the people they name.

pub mod answer;
pub mod directory;
pub mod email;
pub mod libwbxml;
pub mod request;
pub mod write;
pub mod write_answer;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use anyhow::{Context, Result, bail};
use eas_wbxml::{Document, Element, Limits};

use crate::http::{Client, Reply};
pub use answer::{
    CommandKind, EstimateAnswer, FetchAnswer, Folder, FolderSyncAnswer, ItemOperationsAnswer,
    ServerCommand, SettingsAnswer, SyncAnswer, SyncCollectionAnswer, UserInformation,
};
pub use email::{Attachment, Body, Email, Flag};
pub use request::{
    BodyPreference, ClientCommand, DeviceInformation, EstimateCollection, FetchRequest,
    SyncCollection, SyncOptions, SyncRequest,
};

/// `Content-Type` of WBXML bodies (MS-ASHTTP §2.2.1.1.2.3).
pub const WBXML_CONTENT_TYPE: &str = "application/vnd.ms-sync.wbxml";

/// Limits for decoding answers: far above the codec's server-side defaults, a test client
/// reads whatever comes (a MIME body or attachment of tens of MB).
pub const ANSWER_LIMITS: Limits = Limits {
    max_depth: 64,
    max_elements: 2_000_000,
    max_string_len: 512 << 20,
    max_opaque_len: 512 << 20,
    max_total_size: 768 << 20,
};

/// `MS-ASProtocolVersion` values the gateway advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V12_1,
    V14_0,
    V14_1,
    V16_0,
    V16_1,
}

impl Version {
    /// The versions the read-path tests run: the newest, the most common older one, and the last
    /// one with HTTP-status errors.
    pub const TESTED: [Version; 3] = [Version::V16_1, Version::V14_1, Version::V12_1];

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V12_1 => "12.1",
            Version::V14_0 => "14.0",
            Version::V14_1 => "14.1",
            Version::V16_0 => "16.0",
            Version::V16_1 => "16.1",
        }
    }

    /// 2.5–12.1 report common errors as HTTP codes (449, 400, 501 …), 14.0+ as a 1xx Status
    /// in the body (MS-ASCMD §2.2.2).
    pub fn uses_http_errors(self) -> bool {
        self < Version::V14_0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command's HTTP answer and, if it had a body, the decoded root.
#[derive(Debug)]
pub struct Exchange {
    pub reply: Reply,
    pub root: Option<Element>,
}

/// One phone.
pub struct Device {
    client: Client,
    url: String,
    pub user: String,
    pub password: String,
    pub device_id: String,
    pub device_type: String,
    pub version: Version,
    pub policy_key: Option<u32>,
    /// Re-provision and retry once when the server asks for it.
    pub auto_provision: bool,
    /// What [`provision`](Device::provision) and Settings send as DeviceInformation.
    pub information: DeviceInformation,
    /// The body of the last request sent (for libwbxml checks and failure messages).
    pub last_request: Vec<u8>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("user", &self.user)
            .field("device_id", &self.device_id)
            .field("version", &self.version)
            .field("policy_key", &self.policy_key)
            .finish()
    }
}

impl Device {
    /// A new, unprovisioned device of type `iPhone` at `url` (the gateway's
    /// `…/Microsoft-Server-ActiveSync`).
    pub fn new(url: &str, user: &str, password: &str, device_id: &str, version: Version) -> Device {
        Device {
            client: Client::default(),
            url: url.to_string(),
            user: user.to_string(),
            password: password.to_string(),
            device_id: device_id.to_string(),
            device_type: "iPhone".to_string(),
            version,
            policy_key: None,
            auto_provision: true,
            information: DeviceInformation::iphone(version),
            last_request: Vec::new(),
        }
    }

    /// The request URL for `command` (plain query form, MS-ASHTTP §2.2.1.1.1.2).
    pub fn command_url(&self, command: &str) -> String {
        format!(
            "{}?Cmd={command}&User={}&DeviceId={}&DeviceType={}",
            self.url,
            percent_encode(&self.user),
            percent_encode(&self.device_id),
            percent_encode(&self.device_type)
        )
    }

    /// POSTs `body` as `command` with this device's headers; any HTTP status is returned.
    pub fn post(
        &mut self,
        command: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Reply> {
        let url = self.command_url(command);
        self.post_to(&url, command, content_type, body)
    }

    /// [`post`](Device::post) to a full URL (a command URL with more query parameters, as
    /// 12.1 SendMail/SmartReply/SmartForward need).
    pub fn post_to(
        &mut self,
        url: &str,
        command: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Reply> {
        self.last_request = body.to_vec();
        let key = self.policy_key.map(|k| k.to_string());
        let mut headers = vec![
            ("MS-ASProtocolVersion", self.version.as_str()),
            ("User-Agent", "eas-edge-tests/1 (EAS client from the spec)"),
        ];
        if let Some(content_type) = content_type {
            headers.push(("Content-Type", content_type));
        }
        if let Some(key) = &key {
            headers.push(("X-MS-PolicyKey", key));
        }
        self.client
            .send("POST", url, Some((&self.user, &self.password)), &headers, body)
            .with_context(|| format!("POST {command} (EAS {}) to {url}", self.version))
    }

    /// Encodes and sends `document`; re-provisions and retries once when asked to; decodes the
    /// answer. Non-200 answers and CommandNotSupported are errors that say so.
    pub fn exchange(&mut self, command: &str, document: &Document) -> Result<Exchange> {
        let body = eas_wbxml::encode(document)
            .with_context(|| format!("encoding the {command} request"))?;
        let mut reply = self.post(command, Some(WBXML_CONTENT_TYPE), &body)?;
        if self.auto_provision && command != "Provision" && self.asks_for_provisioning(&reply) {
            self.provision().with_context(|| format!("re-provisioning as {command} asked"))?;
            reply = self.post(command, Some(WBXML_CONTENT_TYPE), &body)?;
        }
        self.read_exchange(command, reply)
    }

    fn asks_for_provisioning(&self, reply: &Reply) -> bool {
        if reply.status == 449 {
            return true;
        }
        reply.status == 200
            && !reply.body.is_empty()
            && eas_wbxml::decode(&reply.body, &ANSWER_LIMITS)
                .ok()
                .and_then(|document| answer::top_level_status(&document.root))
                .is_some_and(|status| (142..=144).contains(&status))
    }

    fn read_exchange(&self, command: &str, reply: Reply) -> Result<Exchange> {
        if reply.status != 200 {
            let meaning = match reply.status {
                400 => " (malformed request)",
                403 => " (forbidden)",
                449 => " (provision first)",
                500 => " (server error)",
                501 => " (command not implemented: the gateway does not support it yet)",
                503 => " (server busy)",
                _ => "",
            };
            bail!(
                "{command} (EAS {}): HTTP {}{meaning}; body: {}",
                self.version,
                reply.status,
                describe_body(&reply.body)
            );
        }
        if reply.body.is_empty() {
            return Ok(Exchange { reply, root: None });
        }
        let document = eas_wbxml::decode(&reply.body, &ANSWER_LIMITS).with_context(|| {
            format!("{command}: the answer is not WBXML: {}", describe_body(&reply.body))
        })?;
        if answer::top_level_status(&document.root) == Some(137) {
            bail!(
                "{command} (EAS {}): Status 137 CommandNotSupported — the gateway does not \
                 implement {command} yet",
                self.version
            );
        }
        Ok(Exchange { reply, root: Some(document.root) })
    }

    fn exchange_root(&mut self, command: &str, document: &Document) -> Result<Element> {
        self.exchange(command, document)?
            .root
            .with_context(|| format!("{command}: HTTP 200 with an empty body"))
    }

    /// Two-phase Provision (MS-ASPROV §3.1.5.1): policy request → temporary key → acknowledge
    /// → permanent key, which is kept in `policy_key` and returned.
    pub fn provision(&mut self) -> Result<u32> {
        self.policy_key = None;
        let first = request::provision_request(self.version, &self.information);
        let root = self.exchange_root("Provision", &first)?;
        let answer = answer::ProvisionAnswer::parse(&root)?;
        if answer.status != Some(1) || answer.policy_status != Some(1) {
            bail!("Provision phase 1 failed:\n{}", answer::xml(&root));
        }
        let temporary = answer.policy_key.with_context(|| {
            format!("Provision phase 1 without PolicyKey:\n{}", answer::xml(&root))
        })?;
        self.policy_key = Some(temporary);
        let root = self.exchange_root("Provision", &request::provision_acknowledge(temporary))?;
        let answer = answer::ProvisionAnswer::parse(&root)?;
        let permanent = match (answer.status, answer.policy_status, answer.policy_key) {
            (Some(1), Some(1), Some(key)) => key,
            _ => bail!("Provision phase 2 failed:\n{}", answer::xml(&root)),
        };
        self.policy_key = Some(permanent);
        Ok(permanent)
    }

    pub fn folder_sync(&mut self, sync_key: &str) -> Result<FolderSyncAnswer> {
        let root = self.exchange_root("FolderSync", &request::folder_sync(sync_key))?;
        FolderSyncAnswer::parse(root)
    }

    pub fn sync(&mut self, sync: &SyncRequest) -> Result<SyncAnswer> {
        let exchange = self.exchange("Sync", &sync.document(self.version))?;
        SyncAnswer::parse(exchange.reply.body, exchange.root)
    }

    /// Sync of one collection.
    pub fn sync_one(&mut self, collection: SyncCollection) -> Result<SyncAnswer> {
        self.sync(&SyncRequest::one(collection))
    }

    pub fn get_item_estimate(
        &mut self,
        collections: &[EstimateCollection],
    ) -> Result<EstimateAnswer> {
        let document = request::get_item_estimate(collections, self.version);
        EstimateAnswer::parse(self.exchange_root("GetItemEstimate", &document)?)
    }

    pub fn item_operations_fetch(
        &mut self,
        fetches: &[FetchRequest],
    ) -> Result<ItemOperationsAnswer> {
        let root = self.exchange_root("ItemOperations", &request::item_operations(fetches))?;
        ItemOperationsAnswer::parse(root)
    }

    pub fn settings_device_information(&mut self) -> Result<SettingsAnswer> {
        let document = request::settings_device_information(&self.information);
        SettingsAnswer::parse(self.exchange_root("Settings", &document)?)
    }

    pub fn settings_user_information(&mut self) -> Result<SettingsAnswer> {
        SettingsAnswer::parse(
            self.exchange_root("Settings", &request::settings_user_information())?,
        )
    }

    /// The bootstrap a phone does: Provision (and Settings DeviceInformation before 14.1),
    /// FolderSync 0. Returns the folder answer.
    pub fn bootstrap(&mut self) -> Result<FolderSyncAnswer> {
        self.provision()?;
        if self.version < Version::V14_1 {
            let settings = self.settings_device_information()?;
            if settings.status != 1 {
                bail!("Settings DeviceInformation failed:\n{}", settings.xml());
            }
        }
        let folders = self.folder_sync("0")?;
        if folders.status != 1 {
            bail!("FolderSync 0 failed:\n{}", folders.xml());
        }
        Ok(folders)
    }

    /// Sync 0 for `collection_id` (a fresh relationship): returns the first real key. Checks
    /// what MS-ASCMD §2.2.1.21 requires of that answer: Status 1, a key, no items.
    pub fn sync_start(&mut self, collection_id: &str) -> Result<String> {
        let answer = self.sync_one(SyncCollection::new("0", collection_id))?;
        let collection = answer.collection(collection_id).with_context(|| {
            format!("Sync 0 answer has no collection {collection_id}:\n{}", answer.xml())
        })?;
        if collection.status != Some(1) {
            bail!("Sync 0 of {collection_id}: status {:?}:\n{}", collection.status, answer.xml());
        }
        if !collection.commands.is_empty() {
            bail!(
                "Sync 0 of {collection_id} returned items (the spec says none):\n{}",
                answer.xml()
            );
        }
        collection.sync_key.clone().with_context(|| {
            format!("Sync 0 of {collection_id} without SyncKey:\n{}", answer.xml())
        })
    }

    /// Syncs `collection_id` from `sync_key` until the server has nothing more (no
    /// MoreAvailable), with `window` and `options` (options are sent on the first request
    /// only: they persist, MS-ASAIRS §2.2.2.12). Checks every page's Status and that no
    /// ServerId is added twice.
    pub fn sync_drain(
        &mut self,
        collection_id: &str,
        sync_key: &str,
        window: u32,
        options: Option<SyncOptions>,
    ) -> Result<Drained> {
        let mut drained = Drained { sync_key: sync_key.to_string(), ..Drained::default() };
        let mut seen = HashSet::new();
        let mut options = options;
        loop {
            let mut collection =
                SyncCollection::new(drained.sync_key.clone(), collection_id).window(window);
            if let Some(options) = options.take() {
                collection = collection.options(options);
            }
            let answer = self.sync_one(collection)?;
            drained.pages += 1;
            if let Some(status) = answer.status {
                bail!("Sync page {}: global Status {status}:\n{}", drained.pages, answer.xml());
            }
            let Some(collection) = answer.collection(collection_id) else {
                // nothing to report: the empty response, or the collection left out (§2.2.1.21.2)
                if answer.collections.is_empty() {
                    drained.ended_empty = true;
                    return Ok(drained);
                }
                bail!("Sync answer without collection {collection_id}:\n{}", answer.xml());
            };
            if collection.status != Some(1) {
                bail!(
                    "Sync page {} of {collection_id}: Status {:?}:\n{}",
                    drained.pages,
                    collection.status,
                    answer.xml()
                );
            }
            if collection.commands.len() > window as usize {
                bail!(
                    "Sync page {} has {} commands for WindowSize {window}",
                    drained.pages,
                    collection.commands.len()
                );
            }
            for command in &collection.commands {
                if command.kind == CommandKind::Add && !seen.insert(command.server_id.clone()) {
                    bail!("ServerId {} added twice (page {})", command.server_id, drained.pages);
                }
            }
            drained.commands.extend(collection.commands.iter().cloned());
            drained.page_sizes.push(collection.commands.len());
            drained.sync_key = collection
                .sync_key
                .clone()
                .with_context(|| format!("Sync page without SyncKey:\n{}", answer.xml()))?;
            if !collection.more_available {
                return Ok(drained);
            }
            drained.more_available_pages += 1;
        }
    }
}

/// What [`Device::sync_drain`] collected.
#[derive(Debug, Clone, Default)]
pub struct Drained {
    /// The key to continue with.
    pub sync_key: String,
    pub commands: Vec<ServerCommand>,
    /// Requests sent.
    pub pages: usize,
    /// Commands per answered page.
    pub page_sizes: Vec<usize>,
    /// Pages that carried MoreAvailable.
    pub more_available_pages: usize,
    /// The last request got nothing for the collection (the empty response): the page before
    /// said MoreAvailable although nothing remained.
    pub ended_empty: bool,
}

impl Drained {
    pub fn adds(&self) -> impl Iterator<Item = &ServerCommand> {
        self.commands.iter().filter(|c| c.kind == CommandKind::Add)
    }
}

/// A short description of a response body for error messages: its XML if it is WBXML, else
/// the first bytes.
pub fn describe_body(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty)".to_string();
    }
    match eas_wbxml::decode(body, &ANSWER_LIMITS) {
        Ok(document) => answer::xml_excerpt(&document.root, 3000),
        Err(_) => {
            let shown = &body[..body.len().min(300)];
            format!("{} bytes: {:?}", body.len(), String::from_utf8_lossy(shown))
        }
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
