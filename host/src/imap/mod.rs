//! Talking to the tenant's IMAP server.
//!
//! - [`Session`]: an authenticated connection offering mail operations (folders, status,
//!   changes since a sync point, summaries, messages, parts) and push primitives (IDLE, NOTIFY,
//!   unsolicited data). It picks pipelining and extensions by itself.
//! - [`Endpoint`]: how to reach a tenant's server (TLS, limits, timeouts), built once.
//!
//! The response parser is this crate's own (see `response/`): it reads straight from the
//! receive buffer, tolerates the known server quirks and never panics on server input.

mod bodystructure;
mod capabilities;
mod command;
mod connection;
mod endpoint;
mod error;
mod folder;
pub mod mutf7;
pub mod response;
mod session;
mod tls;
pub mod uidset;
mod wire;

pub use bodystructure::BodyPart;
pub use capabilities::Capabilities;
pub use endpoint::{ChangeTracking, Endpoint, Limits, Timeouts};
pub use error::{ImapError, RefusalStatus};
pub use folder::{Folder, FolderRole};
pub use session::{
    ChangeMethod, Changes, FolderStatus, MAX_HEADER_BYTES, Message, MessageFlags, NotifyEvent,
    NotifyTarget, SearchCriteria, SelectInfo, Session, Summary, SyncPoint, Unsolicited,
    WriteResult,
};
pub(crate) use tls::TlsClient;
pub use tls::{TlsMode, TlsSettings};
pub use uidset::UidRange;
