//! Server responses (RFC 9051 §7): their types, the framing that finds where one ends in the
//! receive buffer, and the parser that reads one frame.

pub mod cursor;
pub mod framing;
pub mod parser;
#[cfg(test)]
mod tests;

use super::bodystructure::BodyPart;
use super::capabilities::Capabilities;
use super::uidset::UidRange;

pub use parser::parse_response;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `tag OK/NO/BAD ...`: the end of a command.
    Tagged(Tagged),
    Untagged(Untagged),
    /// `+ ...`: the server waits for a literal or for DONE.
    Continuation(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub tag: String,
    pub status: Status,
    pub code: Option<Code>,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

/// Response codes (RFC 9051 §7.1, RFC 7162 §3.1.2 and §3.2, RFC 4315 §3) this client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    UidValidity(u32),
    UidNext(u32),
    Unseen(u32),
    HighestModSeq(u64),
    /// The mailbox has no mod-sequences (RFC 7162 §3.1.2.2).
    NoModSeq,
    Capability(Capabilities),
    PermanentFlags(Vec<String>),
    ReadOnly,
    ReadWrite,
    TryCreate,
    NonExistent,
    /// The previous mailbox was closed by this SELECT/EXAMINE (RFC 7162 §3.2.11).
    Closed,
    AppendUid {
        uid_validity: u32,
        uids: Vec<UidRange>,
    },
    CopyUid {
        uid_validity: u32,
        source: Vec<UidRange>,
        destination: Vec<UidRange>,
    },
    Other {
        name: String,
        arguments: String,
    },
}

/// Untagged data (`* ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged {
    /// `* OK/NO/BAD/PREAUTH/BYE [code] text`.
    Condition {
        status: Status,
        code: Option<Code>,
        text: String,
    },
    Capability(Capabilities),
    /// RFC 5161: what ENABLE turned on.
    Enabled(Vec<String>),
    List(ListEntry),
    Status {
        raw_name: String,
        items: StatusItems,
    },
    /// `* SEARCH`, with the highest mod-sequence when the search used MODSEQ (RFC 7162 §3.1.5).
    Search {
        numbers: Vec<u32>,
        modseq: Option<u64>,
    },
    ESearch(ESearch),
    Flags(Vec<String>),
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    Fetch {
        seq: u32,
        data: Box<FetchData>,
    },
    /// RFC 7162 §3.2.10: `EARLIER` marks the answer to a QRESYNC or VANISHED fetch, without it
    /// the UIDs were just expunged.
    Vanished {
        earlier: bool,
        uids: Vec<UidRange>,
    },
    /// A response this client does not use; the name, for logs.
    Other(String),
}

/// One `* LIST` / `* LSUB` line (RFC 9051 §7.3.1, RFC 5258).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// As sent, e.g. `\HasNoChildren`, `\Sent`.
    pub attributes: Vec<String>,
    pub delimiter: Option<char>,
    /// The name as on the wire (modified UTF-7).
    pub raw_name: String,
    /// LSUB rather than LIST: the entry is subscribed.
    pub from_lsub: bool,
}

impl ListEntry {
    pub fn has_attribute(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|a| a.eq_ignore_ascii_case(attribute))
    }
}

/// STATUS items (RFC 9051 §7.3.2, RFC 7162 §3.1.4); absent when not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusItems {
    pub messages: Option<u32>,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
    pub unseen: Option<u32>,
    pub recent: Option<u32>,
    pub highest_modseq: Option<u64>,
    /// RFC 8474 §4: the folder's id, stable across renames.
    pub mailbox_id: Option<String>,
}

/// RFC 4731 ESEARCH data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ESearch {
    /// The tag of the command this answers (the correlator).
    pub tag: Option<String>,
    pub uid: bool,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub count: Option<u32>,
    pub all: Option<Vec<UidRange>>,
    pub modseq: Option<u64>,
}

/// The items of one FETCH response that this client asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchData {
    pub uid: Option<u32>,
    /// System flags and keywords as sent (`\Seen`, `$Forwarded`).
    pub flags: Option<Vec<String>>,
    pub modseq: Option<u64>,
    /// Unix seconds.
    pub internal_date: Option<i64>,
    pub size: Option<u64>,
    /// `Some(empty)` when the server sent a BODYSTRUCTURE this parser could not read.
    pub body_structure: Option<Vec<BodyPart>>,
    pub sections: Vec<SectionData>,
}

impl FetchData {
    /// The data of `BODY[section]` (origin ignored), if it was sent.
    pub fn section(&self, section: &str) -> Option<&SectionData> {
        self.sections.iter().find(|data| data.section.eq_ignore_ascii_case(section))
    }
}

/// `BODY[section]<origin> data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionData {
    /// As in the response, e.g. `""`, `1.2`, `HEADER`.
    pub section: String,
    pub origin: Option<u32>,
    /// `None` for NIL.
    pub data: Option<Vec<u8>>,
}
