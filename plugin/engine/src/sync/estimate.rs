//! GetItemEstimate (MS-ASCMD §2.2.1.9, EAS-NOTES §4.5): how many commands the next Sync of a
//! collection would send, found the way that Sync would find them, without storing anything.

use super::collection::{self, Folder, ReconcileError, apply_options};
use super::key::ClientKey;
use super::state::{CollectionState, state_key};
use super::{Fatal, SyncError};
use crate::capabilities::{Capabilities, StateScope};
use crate::mailbox::MailboxError;

/// The estimate of one collection, or why there is none (GetItemEstimate Status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimate {
    /// Status 1.
    Count(usize),
    /// Status 2: not a collection of this account (any more).
    InvalidCollection,
    /// Status 3: the collection has not been synced with SyncKey 0 yet.
    NotPrimed,
    /// Status 4: the SyncKey is not one this server issued last (or the folder was recreated).
    InvalidKey,
}

impl Estimate {
    pub fn status(self) -> u8 {
        match self {
            Estimate::Count(_) => 1,
            Estimate::InvalidCollection => 2,
            Estimate::NotPrimed => 3,
            Estimate::InvalidKey => 4,
        }
    }
}

/// Estimates `collection_id` for `device` at `sync_key`. `filter_type` is the request's own
/// FilterType (it applies to this estimate only).
pub async fn estimate<C: Capabilities>(
    caps: &C,
    device: &str,
    collection_id: &str,
    sync_key: &str,
    filter_type: Option<u8>,
) -> Result<Estimate, SyncError> {
    let folder = match collection::resolve(caps, collection_id).await {
        Ok(Folder::Found(folder)) => folder,
        Ok(Folder::Unknown) => return Ok(Estimate::InvalidCollection),
        Err(Fatal(why)) => return Err(SyncError::Folders(why)),
    };
    let key = match ClientKey::parse(sync_key) {
        ClientKey::Initial => return Ok(Estimate::NotPrimed),
        ClientKey::Malformed => return Ok(Estimate::InvalidKey),
        ClientKey::Issued(key) => key,
    };
    let scope = StateScope::Device(device.to_owned());
    let raw = caps.state_get(&scope, &state_key(collection_id)).await.map_err(SyncError::State)?;
    let Some(mut state) = raw.as_deref().and_then(CollectionState::decode) else {
        return Ok(Estimate::NotPrimed);
    };
    let current = state.current_key();
    let is_previous = key.generation == current.generation
        && state.replay.is_some_and(|replay| replay.counter == key.counter);
    if key != current && !is_previous {
        return Ok(Estimate::InvalidKey);
    }
    let now_secs = i64::try_from(caps.now_ms() / 1000).unwrap_or(i64::MAX);
    if let Some(filter_type) = filter_type {
        let mut options = state.options.clone();
        options.filter_type = Some(filter_type);
        apply_options(&mut state, options, now_secs);
    }
    match collection::reconcile_with_mailbox(caps, &folder.imap_name, &state, now_secs).await {
        Ok(found) => {
            let r = &found.reconciled;
            Ok(Estimate::Count(
                r.deletes.len()
                    + r.soft_deletes.len()
                    + r.changes.len()
                    + r.resend.len()
                    + r.pending.len(),
            ))
        }
        Err(ReconcileError::FolderRecreated) => Ok(Estimate::InvalidKey),
        Err(ReconcileError::Mailbox(MailboxError::NoSuchFolder(_))) => {
            Ok(Estimate::InvalidCollection)
        }
        Err(ReconcileError::Mailbox(error)) => Err(SyncError::Mailbox(error)),
    }
}
