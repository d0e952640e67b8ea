//! What the engine needs from the outside world.
//!
//! Every adapter implements [`Capabilities`]: the WASI component with its imports, the
//! proxy-wasm filter with HTTP callouts, unit tests with plain values. Calls that may need I/O
//! return futures so that the proxy-wasm adapter can suspend the engine while a callout is in
//! flight; the component's imports complete synchronously.

use std::future::Future;

use crate::mailbox::{
    Changes, Folder, FolderStatus, MailboxResult, Message, MessageSummary, SearchQuery, SyncPoint,
    UidRange,
};
use crate::out_of_office::{OofError, OofSettings};
use crate::settings::TenantSettings;
use crate::submission::{RefusedRecipient, SendClaim, SubmissionError};

/// Severity of a log line, mirrored by the `log` interface in `wit/gateway.wit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Which part of the user's state a key lives in (the tenant and user are fixed by the host).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StateScope {
    /// Shared by all of the user's devices.
    Account,
    /// One device's own space, by EAS DeviceId.
    Device(String),
}

/// A condition of [`Capabilities::state_transact`]: `key` holds `expected` (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateCondition {
    pub key: String,
    pub expected: Option<Vec<u8>>,
}

/// A write of [`Capabilities::state_transact`]: `key` set to `value` (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateWrite {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// Why a state call failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StateError {
    Unauthenticated,
    TooLarge(String),
    Unavailable(String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Unauthenticated => f.write_str("no authenticated user"),
            StateError::TooLarge(what) => write!(f, "too large: {what}"),
            StateError::Unavailable(why) => write!(f, "state store unavailable: {why}"),
        }
    }
}

pub type StateResult<T> = Result<T, StateError>;

/// `prefix_bytes` of [`Capabilities::fetch_summaries`] for a caller that reads only the
/// header block, which always comes whole: one byte of body (0 asks for no prefix at all).
pub const HEADER_BLOCK_PREFIX: u32 = 1;

pub trait Capabilities {
    /// Milliseconds since the Unix epoch, UTC.
    fn now_ms(&self) -> u64;

    fn log(&self, level: Level, message: &str);

    /// A cryptographically secure random number; `None` where the adapter has no source.
    fn random_u64(&self) -> Option<u64>;

    /// The tenant's settings (heartbeat bounds, policy).
    fn settings(&self) -> TenantSettings;

    fn state_get(
        &self,
        scope: &StateScope,
        key: &str,
    ) -> impl Future<Output = StateResult<Option<Vec<u8>>>>;

    fn state_put(
        &self,
        scope: &StateScope,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = StateResult<()>>;

    /// Atomically replaces `expected` (`None`: absent) with `new` (`None`: delete); `false`
    /// and no change if the key held something else.
    fn state_compare_and_swap(
        &self,
        scope: &StateScope,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> impl Future<Output = StateResult<bool>>;

    /// All of `writes` if every condition holds, atomically; `false` and no change if one
    /// does not.
    fn state_transact(
        &self,
        scope: &StateScope,
        conditions: Vec<StateCondition>,
        writes: Vec<StateWrite>,
    ) -> impl Future<Output = StateResult<bool>>;

    /// Every folder of the account.
    fn list_folders(&self) -> impl Future<Output = MailboxResult<Vec<Folder>>>;

    /// STATUS of many folders; one result per name, in order.
    fn folder_status(
        &self,
        folders: &[String],
    ) -> impl Future<Output = MailboxResult<Vec<MailboxResult<FolderStatus>>>>;

    /// What changed in `folder` since `since`; a full listing without a point.
    fn changes(
        &self,
        folder: &str,
        since: Option<SyncPoint>,
    ) -> impl Future<Output = MailboxResult<Changes>>;

    /// UIDs of messages that arrived on or after the day of `since` (unix seconds).
    fn uids_since(
        &self,
        folder: &str,
        since: i64,
    ) -> impl Future<Output = MailboxResult<Vec<UidRange>>>;

    /// Summaries in UID order; vanished UIDs are left out. Each prefix is the message's
    /// header block (whole up to 64 KiB) and then at most `prefix_bytes` of its body
    /// ([`HEADER_BLOCK_PREFIX`] for a caller that reads only the header block).
    ///
    /// With a `render` request (`sync::render_ahead`), a message the host had rendered ahead
    /// for exactly that request, with the flags it still has, comes with that rendering in
    /// [`MessageSummary::rendered`] and without its prefix and structure.
    fn fetch_summaries(
        &self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
        render: Option<&[u8]>,
    ) -> impl Future<Output = MailboxResult<Vec<MessageSummary>>>;

    /// A hint that `fetch_summaries` of these UIDs with this prefix comes soon (the next page
    /// of a Sync): the host may fetch them while the plugin works, and with a `render`
    /// request have the plugin render them ahead too (`sync::render_ahead::render`). Changes
    /// no answer.
    fn prefetch_summaries(
        &self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
        render: Option<&[u8]>,
    ) -> impl Future<Output = ()>;

    /// A whole message; `None` when the UID does not exist.
    fn fetch_message(
        &self,
        folder: &str,
        uid: u32,
        max_bytes: u32,
    ) -> impl Future<Output = MailboxResult<Option<Message>>>;

    /// One part as stored (transfer-encoded); `None` when the UID does not exist.
    fn fetch_part(
        &self,
        folder: &str,
        uid: u32,
        section: &str,
        max_bytes: u32,
    ) -> impl Future<Output = MailboxResult<Option<Vec<u8>>>>;

    /// Adds and removes flags on messages; missing UIDs are skipped.
    fn store_flags(
        &self,
        folder: &str,
        uids: &[u32],
        add: &[String],
        remove: &[String],
    ) -> impl Future<Output = MailboxResult<()>>;

    /// Moves messages; (old UID, new UID) pairs as the server reported them.
    fn move_messages(
        &self,
        source: &str,
        uids: &[u32],
        destination: &str,
    ) -> impl Future<Output = MailboxResult<Vec<(u32, u32)>>>;

    /// Removes exactly these messages.
    fn expunge(&self, folder: &str, uids: &[u32]) -> impl Future<Output = MailboxResult<()>>;

    /// Stores a message; its UID when the server tells.
    fn append(
        &self,
        folder: &str,
        message: &[u8],
        flags: &[String],
        internal_date: Option<i64>,
    ) -> impl Future<Output = MailboxResult<Option<u32>>>;

    /// UIDs of matching messages, ascending.
    fn search(
        &self,
        folder: &str,
        query: &SearchQuery,
    ) -> impl Future<Output = MailboxResult<Vec<u32>>>;

    /// Creates `name` (UTF-8) under `parent` (server spelling; `None`: top level).
    fn create_folder(
        &self,
        parent: Option<&str>,
        name: &str,
    ) -> impl Future<Output = MailboxResult<Folder>>;

    fn rename_folder(
        &self,
        folder: &str,
        new_parent: Option<&str>,
        new_name: &str,
    ) -> impl Future<Output = MailboxResult<Folder>>;

    fn delete_folder(&self, folder: &str) -> impl Future<Output = MailboxResult<()>>;

    /// Removes every message of the folder.
    fn empty_folder(&self, folder: &str) -> impl Future<Output = MailboxResult<()>>;

    /// Sends a complete message (Bcc removed) to the envelope recipients as the user, making
    /// `claim` just before the message can leave (see [`SendClaim`]).
    fn send_mail(
        &self,
        message: &[u8],
        recipients: &[String],
        claim: Option<&SendClaim>,
    ) -> impl Future<Output = Result<Vec<RefusedRecipient>, SubmissionError>>;

    fn out_of_office(&self) -> impl Future<Output = Result<OofSettings, OofError>>;

    fn set_out_of_office(
        &self,
        settings: &OofSettings,
    ) -> impl Future<Output = Result<(), OofError>>;
}
