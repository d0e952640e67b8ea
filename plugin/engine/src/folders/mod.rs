//! The account's folders as EAS sees them: stable ServerIds, parents, EAS folder types.
//!
//! One [`FolderMap`] per account (shared by all devices, so every device and every command
//! agrees on what ServerId `"3"` means). It is refreshed from the mailbox's folder list: a
//! folder keeps its ServerId as long as it keeps its RFC 8474 MAILBOXID (which survives
//! renames) or, on servers without OBJECTID, its name. ServerIds are never reused.

pub mod hierarchy;
mod map;
#[cfg(test)]
mod tests;

pub use map::{FolderEntry, FolderMap, FolderType};

use crate::capabilities::{Capabilities, StateScope};
use crate::mailbox::MailboxError;

/// State key of the map in the account scope.
const KEY: &str = "folders";

/// Why the folder map could not be read or refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderMapError {
    Mailbox(MailboxError),
    State(crate::capabilities::StateError),
    /// Another request kept changing the map; give up rather than spin.
    Contended,
}

impl std::fmt::Display for FolderMapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FolderMapError::Mailbox(error) => write!(f, "listing folders: {error}"),
            FolderMapError::State(error) => write!(f, "folder map: {error}"),
            FolderMapError::Contended => f.write_str("folder map changed concurrently"),
        }
    }
}

/// The stored map, without asking the mailbox (empty if never refreshed).
pub async fn stored(caps: &impl Capabilities) -> Result<FolderMap, FolderMapError> {
    Ok(load(caps).await?.0)
}

/// Lists the mailbox's folders and brings the stored map up to date (atomically, so two
/// devices refreshing at once agree on new ServerIds).
pub async fn refresh(caps: &impl Capabilities) -> Result<FolderMap, FolderMapError> {
    let folders = caps.list_folders().await.map_err(FolderMapError::Mailbox)?;
    for _ in 0..5 {
        let (mut map, raw) = load(caps).await?;
        if !map.reconcile(&folders) {
            return Ok(map);
        }
        let swapped = caps
            .state_compare_and_swap(&StateScope::Account, KEY, raw, Some(map.encode()))
            .await
            .map_err(FolderMapError::State)?;
        if swapped {
            return Ok(map);
        }
    }
    Err(FolderMapError::Contended)
}

/// Tells the stored map that the device renamed `from` to `to` (see [`FolderMap::rename`]),
/// before the next [`refresh`] lists the folders under their new names.
pub async fn note_rename(
    caps: &impl Capabilities,
    from: &str,
    to: &str,
) -> Result<(), FolderMapError> {
    for _ in 0..5 {
        let (mut map, raw) = load(caps).await?;
        if !map.rename(from, to) {
            return Ok(());
        }
        let swapped = caps
            .state_compare_and_swap(&StateScope::Account, KEY, raw, Some(map.encode()))
            .await
            .map_err(FolderMapError::State)?;
        if swapped {
            return Ok(());
        }
    }
    Err(FolderMapError::Contended)
}

/// The folder with this ServerId: from the stored map, else after one refresh (a device may
/// name a folder another device's FolderSync just created).
pub async fn resolve(
    caps: &impl Capabilities,
    server_id: &str,
) -> Result<Option<FolderEntry>, FolderMapError> {
    if let Some(entry) = stored(caps).await?.by_server_id(server_id) {
        return Ok(Some(entry.clone()));
    }
    Ok(refresh(caps).await?.by_server_id(server_id).cloned())
}

async fn load(caps: &impl Capabilities) -> Result<(FolderMap, Option<Vec<u8>>), FolderMapError> {
    let raw = caps.state_get(&StateScope::Account, KEY).await.map_err(FolderMapError::State)?;
    // An unreadable map (older format, corruption) starts over: ServerIds change, and devices
    // are told so by their next FolderSync.
    let map = raw.as_deref().and_then(FolderMap::decode).unwrap_or_default();
    Ok((map, raw))
}
