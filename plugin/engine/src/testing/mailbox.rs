//! An in-memory mailbox with QRESYNC semantics: every change bumps a mod-sequence, expunges
//! are remembered, so `changes` answers exactly like a QRESYNC server would.

use crate::email::header_block_end;
use crate::mailbox::{
    ChangeMethod, Changes, Folder, FolderRole, FolderStatus, MailboxError, MailboxResult, Message,
    MessageFlags, MessageSummary, SyncPoint, UidRange,
};
use std::cell::Cell;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
struct StoredMessage {
    flags: Vec<String>,
    internal_date: i64,
    raw: Vec<u8>,
    modseq: u64,
}

#[derive(Debug, Clone)]
struct FakeFolder {
    folder: Folder,
    uid_validity: u32,
    uid_next: u32,
    messages: BTreeMap<u32, StoredMessage>,
    /// (uid, modseq of the expunge)
    expunged: Vec<(u32, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct FakeMailbox {
    folders: Vec<FakeFolder>,
    modseq: u64,
    /// When set, `changes` answers as a server without CONDSTORE.
    pub without_condstore: bool,
    /// When set, summaries carry a BODYSTRUCTURE (derived from the raw message) like a real
    /// server's; by default they carry none and the engine derives it from the bytes.
    pub with_body_structure: bool,
    /// When set, listing folders and fetching messages fail as with an unreachable server.
    pub unavailable: bool,
    /// When set, APPEND and MOVE do not tell the new UIDs (a server without UIDPLUS).
    pub without_uidplus: bool,
    /// When set, STORE refuses keywords (flags without a backslash), as a server whose
    /// PERMANENTFLAGS lack `\*` or that ran out of keyword slots.
    pub refuse_keywords: bool,
    folders_created: u32,
    /// Folders made from now on have no MAILBOXID.
    pub no_mailbox_ids: bool,
    /// When set, EXPUNGE fails as with a connection lost before the server did it.
    pub expunge_fails: bool,
    /// How often the mail calls were made (tests of round-trip counts).
    pub calls: Cell<Calls>,
}

/// Counts of [`FakeMailbox`] calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    pub changes: u32,
    pub uids_since: u32,
    pub summaries: u32,
    pub messages: u32,
}

impl FakeMailbox {
    /// A mailbox with INBOX, Drafts, Sent, Trash.
    pub fn standard() -> Self {
        let mut mailbox = Self::default();
        mailbox.add_folder("INBOX", Some(FolderRole::Inbox));
        mailbox.add_folder("Drafts", Some(FolderRole::Drafts));
        mailbox.add_folder("Sent", Some(FolderRole::Sent));
        mailbox.add_folder("Trash", Some(FolderRole::Trash));
        mailbox
    }

    pub fn add_folder(&mut self, name: &str, role: Option<FolderRole>) {
        // Never reused, as MAILBOXIDs are not: a folder deleted and created again is new.
        self.folders_created += 1;
        let id = self.folders_created;
        self.folders.push(FakeFolder {
            folder: Folder {
                name: name.to_owned(),
                display_name: name.to_owned(),
                delimiter: Some('/'),
                role,
                selectable: true,
                mailbox_id: (!self.no_mailbox_ids).then(|| format!("F{id:04}")),
            },
            uid_validity: 1000 + id,
            uid_next: 1,
            messages: BTreeMap::new(),
            expunged: Vec::new(),
        });
    }

    /// Renames a folder and the folders below it, keeping their MAILBOXIDs and UIDs (as IMAP
    /// RENAME does).
    pub fn rename_folder(&mut self, from: &str, to: &str) {
        let below = format!("{from}/");
        for folder in &mut self.folders {
            let renamed = if folder.folder.name == from {
                to.to_owned()
            } else if let Some(rest) = folder.folder.name.strip_prefix(&below) {
                format!("{to}/{rest}")
            } else {
                continue;
            };
            folder.folder.name.clone_from(&renamed);
            folder.folder.display_name = renamed;
        }
    }

    /// Takes MAILBOXIDs away (a server without RFC 8474 OBJECTID).
    pub fn without_mailbox_ids(&mut self) {
        self.no_mailbox_ids = true;
        for folder in &mut self.folders {
            folder.folder.mailbox_id = None;
        }
    }

    /// Names of every folder, in order.
    pub fn folder_names(&self) -> Vec<String> {
        self.folders.iter().map(|f| f.folder.name.clone()).collect()
    }

    pub fn delete_folder(&mut self, name: &str) {
        self.folders.retain(|f| f.folder.name != name);
    }

    /// Deletes and recreates a folder: new UIDVALIDITY, no messages.
    pub fn recreate_folder(&mut self, name: &str) {
        if let Some(folder) = self.folders.iter_mut().find(|f| f.folder.name == name) {
            folder.uid_validity += 100;
            folder.uid_next = 1;
            folder.messages.clear();
            folder.expunged.clear();
        }
    }

    /// Appends a message; returns its UID.
    pub fn append(&mut self, folder: &str, raw: &[u8], flags: &[&str], internal_date: i64) -> u32 {
        self.modseq += 1;
        let modseq = self.modseq;
        let Some(folder) = self.folders.iter_mut().find(|f| f.folder.name == folder) else {
            return 0;
        };
        let uid = folder.uid_next;
        folder.uid_next += 1;
        folder.messages.insert(
            uid,
            StoredMessage {
                flags: flags.iter().map(|flag| (*flag).to_owned()).collect(),
                internal_date,
                raw: raw.to_vec(),
                modseq,
            },
        );
        uid
    }

    pub fn set_flags(&mut self, folder: &str, uid: u32, flags: &[&str]) {
        self.modseq += 1;
        let modseq = self.modseq;
        if let Some(message) = self.folder_mut(folder).and_then(|f| f.messages.get_mut(&uid)) {
            message.flags = flags.iter().map(|flag| (*flag).to_owned()).collect();
            message.modseq = modseq;
        }
    }

    pub fn expunge(&mut self, folder: &str, uid: u32) {
        self.modseq += 1;
        let modseq = self.modseq;
        if let Some(folder) = self.folder_mut(folder)
            && folder.messages.remove(&uid).is_some()
        {
            folder.expunged.push((uid, modseq));
        }
    }

    fn folder(&self, name: &str) -> MailboxResult<&FakeFolder> {
        self.folders
            .iter()
            .find(|f| f.folder.name == name)
            .ok_or_else(|| MailboxError::NoSuchFolder(name.to_owned()))
    }

    fn folder_mut(&mut self, name: &str) -> Option<&mut FakeFolder> {
        self.folders.iter_mut().find(|f| f.folder.name == name)
    }

    pub fn folders(&self) -> Vec<Folder> {
        self.folders.iter().map(|f| f.folder.clone()).collect()
    }

    pub fn status(&self, name: &str) -> MailboxResult<FolderStatus> {
        let folder = self.folder(name)?;
        Ok(FolderStatus {
            uid_validity: folder.uid_validity,
            uid_next: folder.uid_next,
            highest_modseq: (!self.without_condstore).then_some(self.modseq),
            messages: folder.messages.len() as u32,
            unseen: folder
                .messages
                .values()
                .filter(|m| !m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")))
                .count() as u32,
        })
    }

    pub fn changes(&self, name: &str, since: Option<SyncPoint>) -> MailboxResult<Changes> {
        self.count(|calls| calls.changes += 1);
        self.check_available()?;
        let folder = self.folder(name)?;
        let all_flags = |folder: &FakeFolder| -> Vec<MessageFlags> {
            folder
                .messages
                .iter()
                .map(|(uid, m)| MessageFlags { uid: *uid, flags: m.flags.clone() })
                .collect()
        };
        let current: Vec<UidRange> =
            folder.messages.keys().map(|&uid| UidRange { first: uid, last: uid }).collect();
        let mut changes = Changes {
            method: ChangeMethod::Full,
            uid_validity: folder.uid_validity,
            uid_validity_changed: false,
            highest_modseq: if self.without_condstore { 0 } else { self.modseq },
            uid_next: folder.uid_next,
            messages: folder.messages.len() as u32,
            changed: all_flags(folder),
            vanished: Vec::new(),
            current_uids: Some(current),
        };
        match since {
            Some(point) if point.uid_validity != folder.uid_validity => {
                changes.uid_validity_changed = true;
            }
            Some(point) if !self.without_condstore => {
                changes.method = ChangeMethod::Qresync;
                changes.current_uids = None;
                changes.changed = folder
                    .messages
                    .iter()
                    .filter(|(_, m)| m.modseq > point.highest_modseq)
                    .map(|(uid, m)| MessageFlags { uid: *uid, flags: m.flags.clone() })
                    .collect();
                changes.vanished = folder
                    .expunged
                    .iter()
                    .filter(|(_, modseq)| *modseq > point.highest_modseq)
                    .map(|&(uid, _)| UidRange { first: uid, last: uid })
                    .collect();
            }
            _ => {}
        }
        Ok(changes)
    }

    pub fn uids_since(&self, name: &str, since: i64) -> MailboxResult<Vec<UidRange>> {
        self.count(|calls| calls.uids_since += 1);
        self.check_available()?;
        let day_start = since - since.rem_euclid(86_400);
        Ok(self
            .folder(name)?
            .messages
            .iter()
            .filter(|(_, m)| m.internal_date >= day_start)
            .map(|(&uid, _)| UidRange { first: uid, last: uid })
            .collect())
    }

    pub fn summaries(
        &self,
        name: &str,
        uids: &[u32],
        prefix_bytes: u32,
    ) -> MailboxResult<Vec<MessageSummary>> {
        self.count(|calls| calls.summaries += 1);
        self.check_available()?;
        let folder = self.folder(name)?;
        let mut wanted = uids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        Ok(wanted
            .into_iter()
            .filter_map(|uid| {
                let m = folder.messages.get(&uid)?;
                // as the host does: the header block whole, then `prefix_bytes` of the body
                let cut = match prefix_bytes {
                    0 => 0,
                    _ => m.raw.len().min(header_block_end(&m.raw) + prefix_bytes as usize),
                };
                Some(MessageSummary {
                    uid,
                    flags: m.flags.clone(),
                    internal_date: m.internal_date,
                    size: m.raw.len() as u32,
                    body_structure: if self.with_body_structure {
                        crate::email::derived_structure(&m.raw)
                    } else {
                        Vec::new()
                    },
                    prefix: m.raw[..cut].to_vec(),
                    rendered: None,
                })
            })
            .collect())
    }

    pub fn message(&self, name: &str, uid: u32, max_bytes: u32) -> MailboxResult<Option<Message>> {
        self.count(|calls| calls.messages += 1);
        let folder = self.folder(name)?;
        let Some(m) = folder.messages.get(&uid) else { return Ok(None) };
        if m.raw.len() > max_bytes as usize {
            return Err(MailboxError::TooLarge(format!("message of {} bytes", m.raw.len())));
        }
        Ok(Some(Message {
            uid,
            flags: m.flags.clone(),
            internal_date: m.internal_date,
            raw: m.raw.clone(),
        }))
    }

    fn count(&self, bump: impl FnOnce(&mut Calls)) {
        let mut calls = self.calls.get();
        bump(&mut calls);
        self.calls.set(calls);
    }

    /// `Err(Unavailable)` when [`FakeMailbox::unavailable`] is set.
    pub fn check_available(&self) -> MailboxResult<()> {
        if self.unavailable {
            return Err(MailboxError::Unavailable("connection refused (test)".to_owned()));
        }
        Ok(())
    }

    /// `BODY.PEEK[section]`: the part as stored; empty for a section the message lacks (IMAP
    /// answers NIL), `None` for a UID that does not exist.
    pub fn part(
        &self,
        name: &str,
        uid: u32,
        section: &str,
        max_bytes: u32,
    ) -> MailboxResult<Option<Vec<u8>>> {
        let folder = self.folder(name)?;
        let Some(m) = folder.messages.get(&uid) else { return Ok(None) };
        let part = crate::email::encoded_part(&m.raw, section).unwrap_or_default();
        if part.len() > max_bytes as usize {
            return Err(MailboxError::TooLarge(format!("part of {} bytes", part.len())));
        }
        Ok(Some(part.to_vec()))
    }
}

/// The write operations, with the semantics of a server with MOVE and UIDPLUS.
impl FakeMailbox {
    pub fn store_flags(
        &mut self,
        name: &str,
        uids: &[u32],
        add: &[String],
        remove: &[String],
    ) -> MailboxResult<()> {
        self.check_available()?;
        self.folder(name)?;
        if self.refuse_keywords && add.iter().any(|flag| !flag.starts_with('\\')) {
            return Err(MailboxError::Refused("no more keywords (test)".to_owned()));
        }
        for &uid in uids {
            self.modseq += 1;
            let modseq = self.modseq;
            if let Some(message) = self.folder_mut(name).and_then(|f| f.messages.get_mut(&uid)) {
                message.flags.retain(|flag| !remove.iter().any(|r| r.eq_ignore_ascii_case(flag)));
                for flag in add {
                    if !message.flags.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
                        message.flags.push(flag.clone());
                    }
                }
                message.modseq = modseq;
            }
        }
        Ok(())
    }

    pub fn move_messages(
        &mut self,
        source: &str,
        uids: &[u32],
        destination: &str,
    ) -> MailboxResult<Vec<(u32, u32)>> {
        self.check_available()?;
        self.folder(destination)?;
        let mut moved = Vec::new();
        for &uid in uids {
            let Some(message) = self.folder(source)?.messages.get(&uid).cloned() else { continue };
            let flags: Vec<&str> = message.flags.iter().map(String::as_str).collect();
            let new_uid = self.append(destination, &message.raw, &flags, message.internal_date);
            self.expunge(source, uid);
            moved.push((uid, new_uid));
        }
        if self.without_uidplus {
            moved.clear();
        }
        Ok(moved)
    }

    pub fn expunge_uids(&mut self, name: &str, uids: &[u32]) -> MailboxResult<()> {
        self.check_available()?;
        if self.expunge_fails {
            return Err(MailboxError::Unavailable("the connection was lost".to_owned()));
        }
        self.folder(name)?;
        for &uid in uids {
            self.expunge(name, uid);
        }
        Ok(())
    }

    pub fn append_message(
        &mut self,
        name: &str,
        raw: &[u8],
        flags: &[String],
        internal_date: Option<i64>,
    ) -> MailboxResult<Option<u32>> {
        self.check_available()?;
        self.folder(name)?;
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let uid = self.append(name, raw, &flags, internal_date.unwrap_or(0));
        Ok((!self.without_uidplus).then_some(uid))
    }

    /// Text and header criteria match case-insensitively anywhere in the raw message.
    pub fn search(
        &self,
        name: &str,
        query: &crate::mailbox::SearchQuery,
    ) -> MailboxResult<Vec<u32>> {
        self.check_available()?;
        let folder = self.folder(name)?;
        let contains = |raw: &[u8], needle: &str| {
            String::from_utf8_lossy(raw).to_lowercase().contains(&needle.to_lowercase())
        };
        Ok(folder
            .messages
            .iter()
            .filter(|(_, m)| {
                query
                    .text
                    .as_deref()
                    .is_none_or(|text| text.split_whitespace().all(|word| contains(&m.raw, word)))
                    && query
                        .since
                        .is_none_or(|since| m.internal_date >= since - since.rem_euclid(86_400))
                    && query
                        .before
                        .is_none_or(|before| m.internal_date < before - before.rem_euclid(86_400))
                    && query.header.as_ref().is_none_or(|(field, value)| {
                        String::from_utf8_lossy(&m.raw).lines().any(|line| {
                            line.split_once(':').is_some_and(|(name, rest)| {
                                name.eq_ignore_ascii_case(field)
                                    && rest.to_lowercase().contains(&value.to_lowercase())
                            })
                        })
                    })
            })
            .map(|(&uid, _)| uid)
            .collect())
    }

    pub fn create(&mut self, parent: Option<&str>, name: &str) -> MailboxResult<Folder> {
        self.check_available()?;
        let full = match parent {
            Some(parent) => format!("{}/{name}", self.folder(parent)?.folder.name),
            None => name.to_owned(),
        };
        if self.folder(&full).is_ok() {
            return Err(MailboxError::Refused(format!("{full} already exists")));
        }
        self.add_folder(&full, None);
        Ok(self.folder(&full)?.folder.clone())
    }

    pub fn rename(
        &mut self,
        from: &str,
        new_parent: Option<&str>,
        new_name: &str,
    ) -> MailboxResult<Folder> {
        self.check_available()?;
        self.folder(from)?;
        let full = match new_parent {
            Some(parent) => format!("{}/{new_name}", self.folder(parent)?.folder.name),
            None => new_name.to_owned(),
        };
        if self.folder(&full).is_ok() {
            return Err(MailboxError::Refused(format!("{full} already exists")));
        }
        self.rename_folder(from, &full);
        Ok(self.folder(&full)?.folder.clone())
    }

    /// IMAP DELETE, refusing a folder that has folders below it (as Dovecot does).
    pub fn remove_folder(&mut self, name: &str) -> MailboxResult<()> {
        self.check_available()?;
        self.folder(name)?;
        let below = format!("{name}/");
        if self.folders.iter().any(|f| f.folder.name.starts_with(&below)) {
            return Err(MailboxError::Refused(format!("{name} has children")));
        }
        self.delete_folder(name);
        Ok(())
    }

    pub fn empty(&mut self, name: &str) -> MailboxResult<()> {
        self.check_available()?;
        let uids: Vec<u32> = self.folder(name)?.messages.keys().copied().collect();
        self.expunge_uids(name, &uids)
    }

    /// The raw bytes of a stored message (tests look at what the engine appended).
    pub fn raw(&self, name: &str, uid: u32) -> Option<Vec<u8>> {
        self.folder(name).ok()?.messages.get(&uid).map(|m| m.raw.clone())
    }

    /// UIDs in a folder, ascending.
    pub fn uids(&self, name: &str) -> Vec<u32> {
        self.folder(name).map(|f| f.messages.keys().copied().collect()).unwrap_or_default()
    }

    /// A message's flags.
    pub fn flags(&self, name: &str, uid: u32) -> Vec<String> {
        self.folder(name)
            .ok()
            .and_then(|f| f.messages.get(&uid))
            .map(|m| m.flags.clone())
            .unwrap_or_default()
    }
}
