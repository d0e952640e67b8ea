//! The ways an IMAP operation can fail, sorted by what the caller should do about them.

use std::fmt;

/// Why an IMAP operation failed.
///
/// The split matters to callers: [`AuthFailed`](Self::AuthFailed) is the user's problem (answer
/// 401), [`Unavailable`](Self::Unavailable) is the server's or the network's (answer 503 and
/// retry later), [`Protocol`](Self::Protocol) is a bug on one side or the other.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The server could not be reached or stopped answering: connect failure, timeout, BYE,
    /// connection closed. The session is unusable afterwards.
    #[error("IMAP server unavailable: {0}")]
    Unavailable(String),
    /// The server refused the credentials (a tagged NO to LOGIN).
    #[error("IMAP login refused: {0}")]
    AuthFailed(String),
    /// The server sent something this client cannot follow, or broke a limit. The session is
    /// unusable afterwards: we no longer know where we are in the response stream.
    #[error("IMAP protocol error: {0}")]
    Protocol(String),
    /// The server answered a command with NO or BAD, e.g. a folder that does not exist. The
    /// session stays usable.
    #[error("IMAP {command} failed: {status} {text}")]
    Refused { command: &'static str, status: RefusalStatus, text: String },
    /// The mailbox does not exist (any more): the server said `[NONEXISTENT]` (RFC 5530), or
    /// refused to open it and LIST does not show it. The session stays usable.
    #[error("IMAP mailbox does not exist: {0}")]
    NoSuchMailbox(String),
    /// The item is bigger than the caller allowed; nothing over the limit was transferred.
    #[error("IMAP item of {size} bytes or more exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    /// The server lacks an extension the operation needs (or it was turned off in the config).
    #[error("IMAP server does not support {0}")]
    Unsupported(&'static str),
    /// TLS could not be set up: a bad CA file, an invalid server name, a failed handshake.
    #[error("IMAP TLS: {0}")]
    Tls(String),
}

/// NO (the operation failed) or BAD (the server did not understand the command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalStatus {
    No,
    Bad,
}

impl fmt::Display for RefusalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefusalStatus::No => "NO",
            RefusalStatus::Bad => "BAD",
        })
    }
}

impl ImapError {
    /// Whether the connection's state is unknown after this error, so it must not be reused.
    pub fn breaks_session(&self) -> bool {
        matches!(self, ImapError::Unavailable(_) | ImapError::Protocol(_) | ImapError::Tls(_))
    }

    pub(crate) fn io(what: &str, error: &std::io::Error) -> Self {
        ImapError::Unavailable(format!("{what}: {error}"))
    }
}
