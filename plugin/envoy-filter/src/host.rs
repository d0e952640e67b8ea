//! The engine's capabilities in Envoy: each call a callout to the host's capability endpoint
//! ([`crate::callout`]), in the JSON form of `wit/gateway.wit` that the engine's types share
//! with the host's generated ones.

use crate::callout::{CallFailure, Calls};
use eas_engine::mailbox::{
    Changes, Folder, FolderStatus, MailboxError, MailboxResult, Message, MessageSummary,
    SearchQuery, SyncPoint, UidRange,
};
use eas_engine::out_of_office::{OofError, OofSettings};
use eas_engine::settings::TenantSettings;
use eas_engine::submission::{RefusedRecipient, SendClaim, SubmissionError};
use eas_engine::{
    Capabilities, Level, StateCondition, StateError, StateResult, StateScope, StateWrite,
};
use proxy_wasm::types::LogLevel;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

pub struct EnvoyHost {
    pub calls: Rc<Calls>,
    pub settings: TenantSettings,
}

/// No arguments: `[]`.
const NONE: [u8; 0] = [];

/// An error type of one interface, made from a failed call.
trait FromFailure {
    fn from_failure(failure: CallFailure) -> Self;
}

impl FromFailure for MailboxError {
    fn from_failure(failure: CallFailure) -> Self {
        match failure {
            CallFailure::NotGranted => MailboxError::Unauthenticated,
            CallFailure::Transport(why) => MailboxError::Unavailable(why),
        }
    }
}

impl FromFailure for StateError {
    fn from_failure(failure: CallFailure) -> Self {
        match failure {
            CallFailure::NotGranted => StateError::Unauthenticated,
            CallFailure::Transport(why) => StateError::Unavailable(why),
        }
    }
}

impl FromFailure for SubmissionError {
    fn from_failure(failure: CallFailure) -> Self {
        match failure {
            CallFailure::NotGranted => SubmissionError::Unauthenticated,
            // The call may have reached the host, which may have sent the message before the
            // answer was lost. The engine then leaves the ledger as the host left it: with the
            // send's claim if the message reached its end, so it is never sent twice, and
            // without it otherwise, so the phone's retry sends it.
            CallFailure::Transport(why) => SubmissionError::OutcomeUnknown(why),
        }
    }
}

impl FromFailure for OofError {
    fn from_failure(failure: CallFailure) -> Self {
        match failure {
            CallFailure::NotGranted => OofError::Unauthenticated,
            CallFailure::Transport(why) => OofError::Unavailable(why),
        }
    }
}

impl EnvoyHost {
    /// One import: its own result, or the call's failure as that import's error.
    async fn import<T: DeserializeOwned, E: DeserializeOwned + FromFailure>(
        &self,
        function: &str,
        arguments: impl Serialize,
    ) -> Result<T, E> {
        match self.calls.call::<Result<T, E>>(function, arguments).await {
            Ok(answer) => answer,
            Err(failure) => {
                self.log(Level::Warn, &format!("{function}: {failure}"));
                Err(E::from_failure(failure))
            }
        }
    }
}

impl Capabilities for EnvoyHost {
    fn now_ms(&self) -> u64 {
        proxy_wasm::hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        // Logging failures cannot be reported anywhere else.
        let _ = proxy_wasm::hostcalls::log(level, message);
    }

    /// From the pool the host's answers fill (ext_authz's answer starts it).
    fn random_u64(&self) -> Option<u64> {
        self.calls.random_u64()
    }

    fn settings(&self) -> TenantSettings {
        self.settings.clone()
    }

    async fn state_get(&self, scope: &StateScope, key: &str) -> StateResult<Option<Vec<u8>>> {
        self.import("state/get", (scope, key)).await
    }

    async fn state_put(&self, scope: &StateScope, key: &str, value: Vec<u8>) -> StateResult<()> {
        self.import("state/put", (scope, key, value)).await
    }

    async fn state_compare_and_swap(
        &self,
        scope: &StateScope,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> StateResult<bool> {
        self.import("state/compare-and-swap", (scope, key, expected, new)).await
    }

    async fn state_transact(
        &self,
        scope: &StateScope,
        conditions: Vec<StateCondition>,
        writes: Vec<StateWrite>,
    ) -> StateResult<bool> {
        self.import("state/transact", (scope, conditions, writes)).await
    }

    async fn list_folders(&self) -> MailboxResult<Vec<Folder>> {
        self.import("mailbox/list-folders", NONE).await
    }

    async fn folder_status(
        &self,
        folders: &[String],
    ) -> MailboxResult<Vec<MailboxResult<FolderStatus>>> {
        self.import("mailbox/status", (folders,)).await
    }

    async fn changes(&self, folder: &str, since: Option<SyncPoint>) -> MailboxResult<Changes> {
        self.import("mailbox/changes", (folder, since)).await
    }

    async fn uids_since(&self, folder: &str, since: i64) -> MailboxResult<Vec<UidRange>> {
        self.import("mailbox/uids-since", (folder, since)).await
    }

    async fn fetch_summaries(
        &self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
        // Nothing is rendered ahead behind Envoy: the gateway runs no plugin of its own there.
        _render: Option<&[u8]>,
    ) -> MailboxResult<Vec<MessageSummary>> {
        self.import("mailbox/fetch-summaries", (folder, uids, prefix_bytes)).await
    }

    async fn prefetch_summaries(
        &self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
        _render: Option<&[u8]>,
    ) {
        // A hint: when the callout fails, the later fetch simply does all the work.
        let _: MailboxResult<()> =
            self.import("mailbox/prefetch-summaries", (folder, uids, prefix_bytes)).await;
    }

    async fn fetch_message(
        &self,
        folder: &str,
        uid: u32,
        max_bytes: u32,
    ) -> MailboxResult<Option<Message>> {
        self.import("mailbox/fetch-message", (folder, uid, max_bytes)).await
    }

    async fn fetch_part(
        &self,
        folder: &str,
        uid: u32,
        section: &str,
        max_bytes: u32,
    ) -> MailboxResult<Option<Vec<u8>>> {
        self.import("mailbox/fetch-part", (folder, uid, section, max_bytes)).await
    }

    async fn store_flags(
        &self,
        folder: &str,
        uids: &[u32],
        add: &[String],
        remove: &[String],
    ) -> MailboxResult<()> {
        self.import("mailbox-write/store-flags", (folder, uids, add, remove)).await
    }

    async fn move_messages(
        &self,
        source: &str,
        uids: &[u32],
        destination: &str,
    ) -> MailboxResult<Vec<(u32, u32)>> {
        self.import("mailbox-write/move-messages", (source, uids, destination)).await
    }

    async fn expunge(&self, folder: &str, uids: &[u32]) -> MailboxResult<()> {
        self.import("mailbox-write/expunge", (folder, uids)).await
    }

    async fn append(
        &self,
        folder: &str,
        message: &[u8],
        flags: &[String],
        internal_date: Option<i64>,
    ) -> MailboxResult<Option<u32>> {
        self.import("mailbox-write/append", (folder, message, flags, internal_date)).await
    }

    async fn search(&self, folder: &str, query: &SearchQuery) -> MailboxResult<Vec<u32>> {
        self.import("mailbox-write/search", (folder, query)).await
    }

    async fn create_folder(&self, parent: Option<&str>, name: &str) -> MailboxResult<Folder> {
        self.import("mailbox-write/create-folder", (parent, name)).await
    }

    async fn rename_folder(
        &self,
        folder: &str,
        new_parent: Option<&str>,
        new_name: &str,
    ) -> MailboxResult<Folder> {
        self.import("mailbox-write/rename-folder", (folder, new_parent, new_name)).await
    }

    async fn delete_folder(&self, folder: &str) -> MailboxResult<()> {
        self.import("mailbox-write/delete-folder", (folder,)).await
    }

    async fn empty_folder(&self, folder: &str) -> MailboxResult<()> {
        self.import("mailbox-write/empty-folder", (folder,)).await
    }

    async fn send_mail(
        &self,
        message: &[u8],
        recipients: &[String],
        claim: Option<&SendClaim>,
    ) -> Result<Vec<RefusedRecipient>, SubmissionError> {
        self.import("submission/send", (message, recipients, claim)).await
    }

    async fn out_of_office(&self) -> Result<OofSettings, OofError> {
        self.import("out-of-office/get", NONE).await
    }

    async fn set_out_of_office(&self, settings: &OofSettings) -> Result<(), OofError> {
        self.import("out-of-office/set", (settings,)).await
    }
}
