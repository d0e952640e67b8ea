//! What can go wrong with the state store, in terms the caller can act on: a request over a
//! limit is the caller's (or the plugin's) fault, a damaged store needs an operator, a backend
//! failure may be transient.

use std::path::PathBuf;

pub type StateResult<T> = Result<T, StateError>;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("value of {len} bytes is over the limit of {max} bytes")]
    ValueTooLarge { len: usize, max: usize },

    #[error("{what} of {len} bytes is over the limit of {max} bytes")]
    NameTooLong { what: &'static str, len: usize, max: usize },

    #[error("transaction of {len} bytes is over the limit of {max} bytes")]
    TransactionTooLarge { len: usize, max: usize },

    /// The stored data cannot be trusted; nothing is served from it.
    #[error("state store is damaged: {0}")]
    Corrupt(String),

    #[error("cannot open state file {path}: {reason}")]
    Open { path: PathBuf, reason: String },

    #[error(
        "state file {path} has format version {found}; this build reads version {supported} only"
    )]
    UnsupportedFormat { path: PathBuf, found: String, supported: u32 },

    /// An I/O or database failure. A write that fails this way may still have reached the disk
    /// (e.g. the sync after it failed): read the state again before retrying it.
    #[error("state store failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),

    #[error("state store is shut down")]
    Closed,
}
