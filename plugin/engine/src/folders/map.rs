//! The folder map itself: pure data and the reconciliation with a folder list.

use crate::mailbox::{Folder, FolderRole};
use serde::{Deserialize, Serialize};

/// Leading byte of the stored form; bump when the layout changes.
const FORMAT: u8 = 1;

/// EAS folder types (MS-ASCMD §2.2.3.186.3, FolderSync Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FolderType {
    Inbox,
    Drafts,
    DeletedItems,
    SentItems,
    /// Any other mail folder, Junk and Archive included (EAS has no types for them).
    UserMail,
}

impl FolderType {
    pub fn code(self) -> u8 {
        match self {
            FolderType::Inbox => 2,
            FolderType::Drafts => 3,
            FolderType::DeletedItems => 4,
            FolderType::SentItems => 5,
            FolderType::UserMail => 12,
        }
    }

    fn of(role: Option<FolderRole>) -> Self {
        match role {
            Some(FolderRole::Inbox) => FolderType::Inbox,
            Some(FolderRole::Drafts) => FolderType::Drafts,
            Some(FolderRole::Trash) => FolderType::DeletedItems,
            Some(FolderRole::Sent) => FolderType::SentItems,
            Some(FolderRole::Junk | FolderRole::Archive) | None => FolderType::UserMail,
        }
    }
}

/// One folder with its EAS identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderEntry {
    /// Decimal, assigned once, never reused.
    pub server_id: String,
    /// The ServerId of the parent folder, `"0"` at the top.
    pub parent_id: String,
    /// The last path segment, shown by the phone.
    pub display_name: String,
    pub folder_type: FolderType,
    /// The server's spelling: pass to the mailbox capability.
    pub imap_name: String,
    /// Full UTF-8 path, used to find parents.
    pub path: String,
    pub delimiter: Option<char>,
    pub mailbox_id: Option<String>,
    pub selectable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderMap {
    /// The next ServerId to hand out.
    next_id: u32,
    /// In the mailbox's order, parents before children once reconciled.
    entries: Vec<FolderEntry>,
}

impl FolderMap {
    pub fn entries(&self) -> &[FolderEntry] {
        &self.entries
    }

    pub fn by_server_id(&self, server_id: &str) -> Option<&FolderEntry> {
        self.entries.iter().find(|entry| entry.server_id == server_id)
    }

    /// The folders below the folder with `server_id`, deepest first (the order to delete
    /// them in).
    pub fn descendants(&self, server_id: &str) -> Vec<&FolderEntry> {
        let mut found: Vec<(usize, &FolderEntry)> = Vec::new();
        let mut frontier: Vec<(&str, usize)> = vec![(server_id, 0)];
        while let Some((parent, depth)) = frontier.pop() {
            for child in self.entries.iter().filter(|entry| entry.parent_id == parent) {
                // Each entry is taken once, so even a (corrupt) parent cycle ends.
                if child.server_id == server_id
                    || found.iter().any(|(_, known)| known.server_id == child.server_id)
                {
                    continue;
                }
                found.push((depth + 1, child));
                frontier.push((child.server_id.as_str(), depth + 1));
            }
        }
        found.sort_by_key(|&(depth, _)| std::cmp::Reverse(depth));
        found.into_iter().map(|(_, entry)| entry).collect()
    }

    /// Carries ServerIds across an IMAP RENAME of `from` to `to` on servers without
    /// MAILBOXID (where folders are matched by name): the entry and those below it take the
    /// new names. True if anything changed.
    pub fn rename(&mut self, from: &str, to: &str) -> bool {
        let mut changed = false;
        for entry in &mut self.entries {
            if entry.mailbox_id.is_some() {
                continue;
            }
            let renamed = if entry.imap_name == from {
                Some(to.to_owned())
            } else {
                entry.delimiter.and_then(|delimiter| {
                    let rest = entry.imap_name.strip_prefix(from)?.strip_prefix(delimiter)?;
                    Some(format!("{to}{delimiter}{rest}"))
                })
            };
            if let Some(name) = renamed {
                entry.imap_name = name;
                changed = true;
            }
        }
        changed
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        // Serialising plain owned data into a Vec cannot fail.
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<FolderMap> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT {
            return None;
        }
        postcard::from_bytes(rest).ok()
    }

    /// Brings the map in line with `folders` (the mailbox's current list); true if anything
    /// changed. Matching is by MAILBOXID where both sides have one, else by name.
    pub fn reconcile(&mut self, folders: &[Folder]) -> bool {
        let mut next_id = self.next_id.max(1);
        let mut entries = Vec::with_capacity(folders.len());
        for folder in folders {
            let existing = self.entries.iter().find(|entry| same_folder(entry, folder));
            let server_id = match existing {
                Some(entry) => entry.server_id.clone(),
                None => {
                    let id = next_id.to_string();
                    next_id = next_id.saturating_add(1);
                    id
                }
            };
            entries.push(FolderEntry {
                server_id,
                parent_id: "0".to_owned(),
                display_name: last_segment(&folder.display_name, folder.delimiter).to_owned(),
                folder_type: FolderType::of(folder.role),
                imap_name: folder.name.clone(),
                path: folder.display_name.clone(),
                delimiter: folder.delimiter,
                mailbox_id: folder.mailbox_id.clone(),
                selectable: folder.selectable,
            });
        }
        assign_parents(&mut entries);
        let changed = entries != self.entries || next_id != self.next_id;
        self.entries = entries;
        self.next_id = next_id;
        changed
    }
}

fn same_folder(entry: &FolderEntry, folder: &Folder) -> bool {
    match (&entry.mailbox_id, &folder.mailbox_id) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => entry.imap_name == folder.name,
    }
}

fn last_segment(path: &str, delimiter: Option<char>) -> &str {
    match delimiter {
        Some(delimiter) => path.rsplit(delimiter).next().unwrap_or(path),
        None => path,
    }
}

/// Parent = the entry whose path is this one's path up to the last delimiter; a folder whose
/// parent is not listed (e.g. an unlisted namespace prefix) sits at the top.
fn assign_parents(entries: &mut [FolderEntry]) {
    let parents: Vec<String> = entries
        .iter()
        .map(|entry| {
            let Some(delimiter) = entry.delimiter else { return "0".to_owned() };
            let Some((parent_path, _)) = entry.path.rsplit_once(delimiter) else {
                return "0".to_owned();
            };
            entries
                .iter()
                .find(|candidate| candidate.path == parent_path)
                .map_or_else(|| "0".to_owned(), |parent| parent.server_id.clone())
        })
        .collect();
    for (entry, parent) in entries.iter_mut().zip(parents) {
        entry.parent_id = parent;
    }
}
