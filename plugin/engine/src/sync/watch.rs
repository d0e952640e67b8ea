//! What Ping needs: whether a collection has changes the device has not been sent, decided
//! from the stored state and a STATUS of the folder (no listing, no fetch).

use super::collection::{self, Folder};
use super::state::{CollectionState, Fingerprint, state_key};
use crate::capabilities::{Capabilities, StateError, StateScope};
use crate::mailbox::{FolderStatus, MailboxError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncError {
    State(StateError),
    Mailbox(MailboxError),
    /// The folder map could not be read.
    Folders(String),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::State(error) => write!(f, "sync state: {error}"),
            SyncError::Mailbox(error) => write!(f, "{error}"),
            SyncError::Folders(why) => f.write_str(why),
        }
    }
}

/// A collection's stored sync state as far as Ping cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchState {
    /// The folder's counters as of the last answered Sync (`None` before the first listing).
    pub fingerprint: Option<Fingerprint>,
    /// The next Sync has something to send whatever the folder does (a listing to take, more
    /// available, deferred changes).
    pub queued: bool,
}

impl WatchState {
    /// Whether a Sync now would send something, given the folder's current STATUS.
    pub fn pending(&self, status: &FolderStatus) -> bool {
        self.queued || self.fingerprint.is_none_or(|fingerprint| fingerprint.differs_from(status))
    }

    /// Whether new messages arrived since the last Sync (Ping answers early only for these,
    /// MS-ASCMD §3.1.5.8), or the next Sync has queued work.
    pub fn has_new_items(&self, status: &FolderStatus) -> bool {
        self.queued
            || self.fingerprint.is_none_or(|fingerprint| fingerprint.has_new_messages(status))
    }
}

/// The watch state of `collection_id` for `device`; `None` when the device never synced it.
pub async fn watch_state<C: Capabilities>(
    caps: &C,
    device: &str,
    collection_id: &str,
) -> Result<Option<WatchState>, SyncError> {
    let scope = StateScope::Device(device.to_owned());
    let raw = caps.state_get(&scope, &state_key(collection_id)).await.map_err(SyncError::State)?;
    Ok(raw.as_deref().and_then(CollectionState::decode).map(|state| WatchState {
        fingerprint: state.fingerprint,
        queued: state.has_queued_work(),
    }))
}

/// Whether `collection_id` has changes `device` has not been sent: from the stored state, and
/// one STATUS of the folder when the state alone does not tell. A collection the device never
/// synced has none; one whose folder is gone has (the Sync then reports it).
pub async fn pending_changes<C: Capabilities>(
    caps: &C,
    device: &str,
    collection_id: &str,
) -> Result<bool, SyncError> {
    let Some(watch) = watch_state(caps, device, collection_id).await? else { return Ok(false) };
    if watch.queued || watch.fingerprint.is_none() {
        return Ok(true);
    }
    let folder = match collection::resolve(caps, collection_id).await {
        Ok(Folder::Found(folder)) => folder,
        Ok(Folder::Unknown) => return Ok(true),
        Err(fatal) => return Err(SyncError::Folders(fatal.0)),
    };
    let statuses = caps
        .folder_status(std::slice::from_ref(&folder.imap_name))
        .await
        .map_err(SyncError::Mailbox)?;
    match statuses.into_iter().next() {
        Some(Ok(status)) => Ok(watch.pending(&status)),
        Some(Err(MailboxError::NoSuchFolder(_))) => Ok(true),
        Some(Err(error)) => Err(SyncError::Mailbox(error)),
        None => Err(SyncError::Mailbox(MailboxError::Refused("no STATUS answer".into()))),
    }
}
