//! The submission capability's types (`submission` in `wit/gateway.wit`).

/// Why a message was not sent. Every variant means nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SubmissionError {
    Unauthenticated,
    /// Unreachable or a transient failure: the client may retry.
    Unavailable(String),
    /// The server refused the message or every recipient.
    Rejected(String),
    TooLarge(String),
}

impl std::fmt::Display for SubmissionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmissionError::Unauthenticated => f.write_str("no authenticated user"),
            SubmissionError::Unavailable(why) => write!(f, "submission unavailable: {why}"),
            SubmissionError::Rejected(why) => write!(f, "message refused: {why}"),
            SubmissionError::TooLarge(why) => write!(f, "message too large: {why}"),
        }
    }
}

/// A recipient the server refused while it accepted others.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefusedRecipient {
    pub address: String,
    pub reply: String,
}
