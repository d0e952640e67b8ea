//! What one device knows of the folder hierarchy: the FolderSync SyncKey it holds and the
//! folders as they were last sent to it (Device scope, key [`KEY`]).
//!
//! FolderSync compares this with the account's [`FolderMap`] to answer with Add / Update /
//! Delete; Ping asks [`hierarchy_changed`] whether the device must run FolderSync again.

use super::{FolderEntry, FolderMap, FolderMapError};
use crate::capabilities::{Capabilities, StateResult, StateScope};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// State key of the record in the device scope.
pub const KEY: &str = "hierarchy";

/// Leading byte of the stored form; bump when the layout changes.
const FORMAT: u8 = 1;

/// One folder as a device sees it (MS-ASCMD §2.2.3.7.1 Add: ServerId, ParentId, DisplayName,
/// Type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownFolder {
    pub server_id: String,
    pub parent_id: String,
    pub display_name: String,
    /// The EAS folder type code (2 Inbox, 3 Drafts, 4 Deleted Items, 5 Sent Items, 12 mail).
    pub folder_type: u8,
}

impl KnownFolder {
    pub fn of(entry: &FolderEntry) -> Self {
        KnownFolder {
            server_id: entry.server_id.clone(),
            parent_id: entry.parent_id.clone(),
            display_name: entry.display_name.clone(),
            folder_type: entry.folder_type.code(),
        }
    }
}

/// One entry of a FolderSync `Changes` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FolderChange {
    Add(KnownFolder),
    /// Same ServerId, new name, parent or type.
    Update(KnownFolder),
    /// The ServerId of a folder that is gone.
    Delete(String),
}

/// The last answer that moved the device to a new key, kept for a client that lost it and
/// sends the key before again (EAS-NOTES §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAnswer {
    pub from_key: u32,
    pub changes: Vec<FolderChange>,
}

/// The device's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// The FolderSync SyncKey the device holds; 0 before its first FolderSync.
    pub key: u32,
    /// The folders as of `key`.
    pub folders: Vec<KnownFolder>,
    pub last: Option<LastAnswer>,
}

impl Hierarchy {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        // Serialising plain owned data into a Vec cannot fail.
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<Hierarchy> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT {
            return None;
        }
        postcard::from_bytes(rest).ok()
    }
}

/// The stored record and the bytes it was read from (for compare-and-swap).
#[derive(Debug, Clone)]
pub struct StoredHierarchy {
    pub hierarchy: Hierarchy,
    raw: Option<Vec<u8>>,
}

/// The device's record; an absent or unreadable one is the empty record (key 0), so the
/// device's key no longer matches and it starts over with SyncKey 0.
pub async fn load(caps: &impl Capabilities, device: &str) -> StateResult<StoredHierarchy> {
    let raw = caps.state_get(&StateScope::Device(device.to_owned()), KEY).await?;
    let hierarchy = raw.as_deref().and_then(Hierarchy::decode).unwrap_or_default();
    Ok(StoredHierarchy { hierarchy, raw })
}

/// Replaces `stored` with `new`; `false` if another request changed the record meanwhile.
pub async fn replace(
    caps: &impl Capabilities,
    device: &str,
    stored: &StoredHierarchy,
    new: &Hierarchy,
) -> StateResult<bool> {
    caps.state_compare_and_swap(
        &StateScope::Device(device.to_owned()),
        KEY,
        stored.raw.clone(),
        Some(new.encode()),
    )
    .await
}

/// The key after `key`, never 0.
pub fn next_key(key: u32) -> u32 {
    key.checked_add(1).unwrap_or(1)
}

impl Hierarchy {
    /// The record after the device changed the hierarchy itself (FolderCreate, FolderUpdate,
    /// FolderDelete): `changes` applied to what it knows and a new key, so that its next
    /// FolderSync does not report its own change back. The change list is kept as the answer
    /// for the old key: a device that lost the response and runs FolderSync with it learns
    /// the change and the new key.
    pub fn after_own_change(&self, changes: Vec<FolderChange>) -> Hierarchy {
        let mut folders = self.folders.clone();
        for change in &changes {
            match change {
                FolderChange::Add(folder) | FolderChange::Update(folder) => {
                    match folders.iter_mut().find(|known| known.server_id == folder.server_id) {
                        Some(known) => *known = folder.clone(),
                        None => folders.push(folder.clone()),
                    }
                }
                FolderChange::Delete(server_id) => {
                    folders.retain(|known| &known.server_id != server_id);
                }
            }
        }
        Hierarchy {
            key: next_key(self.key),
            folders,
            last: Some(LastAnswer { from_key: self.key, changes }),
        }
    }
}

/// Records a change the device made itself (see [`Hierarchy::after_own_change`]); the
/// device's new key.
pub async fn record_own_change(
    caps: &impl Capabilities,
    device: &str,
    changes: Vec<FolderChange>,
) -> Result<u32, crate::capabilities::StateError> {
    for _ in 0..5 {
        let stored = load(caps, device).await?;
        let updated = stored.hierarchy.after_own_change(changes.clone());
        if replace(caps, device, &stored, &updated).await? {
            return Ok(updated.key);
        }
    }
    Err(crate::capabilities::StateError::Unavailable(
        "the device's hierarchy record kept changing".to_owned(),
    ))
}

/// The hierarchy a device should see now. Every folder is listed, `\Noselect` ones included:
/// they hold the folders below them, and a device that lacks a parent cannot place its children
/// (Sync answers them as empty folders).
pub fn current_folders(map: &FolderMap) -> Vec<KnownFolder> {
    map.entries().iter().map(KnownFolder::of).collect()
}

/// What turns `known` into `current`: Adds with parents before children, then Updates, then
/// Deletes with children before parents. A list that only changed order gives no changes.
pub fn diff(known: &[KnownFolder], current: &[KnownFolder]) -> Vec<FolderChange> {
    let known_by_id: HashMap<&str, &KnownFolder> =
        known.iter().map(|folder| (folder.server_id.as_str(), folder)).collect();
    let current_ids: HashSet<&str> =
        current.iter().map(|folder| folder.server_id.as_str()).collect();
    let added: Vec<&KnownFolder> = current
        .iter()
        .filter(|folder| !known_by_id.contains_key(folder.server_id.as_str()))
        .collect();
    let mut changes: Vec<FolderChange> =
        parents_first(added).into_iter().cloned().map(FolderChange::Add).collect();
    for folder in current {
        if known_by_id.get(folder.server_id.as_str()).is_some_and(|before| *before != folder) {
            changes.push(FolderChange::Update(folder.clone()));
        }
    }
    for gone in known.iter().rev() {
        if !current_ids.contains(gone.server_id.as_str()) {
            changes.push(FolderChange::Delete(gone.server_id.clone()));
        }
    }
    changes
}

/// Every folder as an Add, parents first: the answer to SyncKey 0.
pub fn all_as_adds(current: &[KnownFolder]) -> Vec<FolderChange> {
    parents_first(current.iter().collect()).into_iter().cloned().map(FolderChange::Add).collect()
}

/// Orders `folders` so that a folder comes after its parent when the parent is in the list
/// too, keeping the given order otherwise (a stable sort by depth within the list). A parent
/// cycle, impossible from a well-formed map, only stops the depth count.
fn parents_first(folders: Vec<&KnownFolder>) -> Vec<&KnownFolder> {
    let by_id: HashMap<&str, &KnownFolder> =
        folders.iter().map(|folder| (folder.server_id.as_str(), *folder)).collect();
    let depth = |folder: &KnownFolder| {
        let mut depth = 0usize;
        let mut parent = folder.parent_id.as_str();
        while let Some(next) = by_id.get(parent) {
            depth += 1;
            if depth > by_id.len() {
                break;
            }
            parent = next.parent_id.as_str();
        }
        depth
    };
    let mut ordered = folders;
    ordered.sort_by_cached_key(|folder| depth(folder));
    ordered
}

/// Whether the device's known hierarchy differs from the mailbox's (refreshing the folder map):
/// true for a device that never ran FolderSync. Ping answers Status 7 on true.
#[cfg_attr(not(test), allow(dead_code))]
pub async fn hierarchy_changed(
    caps: &impl Capabilities,
    device: &str,
) -> Result<bool, FolderMapError> {
    Ok(compare_with_device(caps, device).await?.0)
}

/// [`hierarchy_changed`], with the refreshed map (Ping builds its hierarchy token from it).
pub async fn compare_with_device(
    caps: &impl Capabilities,
    device: &str,
) -> Result<(bool, FolderMap), FolderMapError> {
    let map = super::refresh(caps).await?;
    let stored = load(caps, device).await.map_err(FolderMapError::State)?;
    let changed = stored.hierarchy.key == 0
        || !diff(&stored.hierarchy.folders, &current_folders(&map)).is_empty();
    Ok((changed, map))
}
