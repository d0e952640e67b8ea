//! The mailbox capability's types, mirroring the `mailbox` interface in `wit/gateway.wit`.
//!
//! Folders are named by their server spelling ([`Folder::name`]); the engine stores that name
//! and passes it back, never interprets it. Everything the host returns is untrusted input.

pub use crate::email::{BodyPart, MessageSummary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FolderRole {
    Inbox,
    Drafts,
    Sent,
    Trash,
    Junk,
    Archive,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Folder {
    /// The server's spelling; the handle for every other call.
    pub name: String,
    /// The full path in UTF-8.
    pub display_name: String,
    pub delimiter: Option<char>,
    pub role: Option<FolderRole>,
    /// False for folders that only hold other folders.
    pub selectable: bool,
    /// RFC 8474 MAILBOXID, stable across renames.
    pub mailbox_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FolderStatus {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: Option<u64>,
    pub messages: u32,
    pub unseen: u32,
}

/// Inclusive UID range.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct UidRange {
    pub first: u32,
    pub last: u32,
}

impl UidRange {
    pub fn contains(&self, uid: u32) -> bool {
        self.first <= uid && uid <= self.last
    }

    /// The UIDs of `ranges`, ascending. Ranges from the host are untrusted: an inverted range is
    /// empty, and the caller bounds the total with `limit`.
    pub fn expand(ranges: &[UidRange], limit: usize) -> Vec<u32> {
        let mut uids = Vec::new();
        for range in ranges {
            if range.first > range.last {
                continue;
            }
            for uid in range.first..=range.last {
                if uids.len() >= limit {
                    break;
                }
                uids.push(uid);
            }
        }
        uids.sort_unstable();
        uids.dedup();
        uids
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageFlags {
    pub uid: u32,
    pub flags: Vec<String>,
}

/// A folder state seen earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncPoint {
    pub uid_validity: u32,
    pub highest_modseq: u64,
}

/// How [`Changes`] were learnt; see the WIT docs of `change-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChangeMethod {
    /// `changed` since the point; expunged UIDs in `vanished`.
    Qresync,
    /// `changed` since the point; every current UID in `current_uids`.
    Condstore,
    /// `changed` holds every message with its flags, `current_uids` every UID.
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    pub method: ChangeMethod,
    pub uid_validity: u32,
    pub uid_validity_changed: bool,
    /// 0 without CONDSTORE.
    pub highest_modseq: u64,
    pub uid_next: u32,
    pub messages: u32,
    pub changed: Vec<MessageFlags>,
    pub vanished: Vec<UidRange>,
    pub current_uids: Option<Vec<UidRange>>,
}

/// A whole raw message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub uid: u32,
    pub flags: Vec<String>,
    pub internal_date: i64,
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MailboxError {
    Unauthenticated,
    NoSuchFolder(String),
    TooLarge(String),
    /// Transient: the IMAP server is unreachable or failing.
    Unavailable(String),
    /// The server said NO or BAD.
    Refused(String),
}

impl std::fmt::Display for MailboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailboxError::Unauthenticated => f.write_str("no authenticated user"),
            MailboxError::NoSuchFolder(name) => write!(f, "no such folder: {name}"),
            MailboxError::TooLarge(what) => write!(f, "too large: {what}"),
            MailboxError::Unavailable(why) => write!(f, "mailbox unavailable: {why}"),
            MailboxError::Refused(why) => write!(f, "refused by the server: {why}"),
        }
    }
}

pub type MailboxResult<T> = Result<T, MailboxError>;

/// What to look for (the `mailbox-write` interface's `search-query`); every given criterion
/// must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SearchQuery {
    /// Every word occurs in the headers or body.
    pub text: Option<String>,
    /// Arrived on or after this day (unix seconds).
    pub since: Option<i64>,
    /// Arrived before this day (unix seconds).
    pub before: Option<i64>,
    /// (header field, substring of its value).
    pub header: Option<(String, String)>,
}
