//! The submission capability's types (`submission` in `wit/gateway.wit`).

use crate::capabilities::StateScope;

/// Why a message was not sent. Every variant but `OutcomeUnknown` means nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SubmissionError {
    Unauthenticated,
    /// Unreachable or a transient failure: the client may retry.
    Unavailable(String),
    /// The server refused the message or every recipient.
    Rejected(String),
    TooLarge(String),
    /// The connection was lost after the message's end was sent and before the server
    /// confirmed it: possibly sent, and not to be sent again (RFC 1047).
    OutcomeUnknown(String),
    /// Not sent: the send's claim no longer held when the message was about to leave (another
    /// request changed its record meanwhile).
    ClaimLost,
}

impl SubmissionError {
    /// Whether the message may have gone out although the submission failed.
    pub fn maybe_sent(&self) -> bool {
        matches!(self, SubmissionError::OutcomeUnknown(_))
    }
}

impl std::fmt::Display for SubmissionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmissionError::Unauthenticated => f.write_str("no authenticated user"),
            SubmissionError::Unavailable(why) => write!(f, "submission unavailable: {why}"),
            SubmissionError::Rejected(why) => write!(f, "message refused: {why}"),
            SubmissionError::TooLarge(why) => write!(f, "message too large: {why}"),
            SubmissionError::OutcomeUnknown(why) => {
                write!(f, "possibly sent, the server did not confirm: {why}")
            }
            SubmissionError::ClaimLost => {
                f.write_str("not sent: another request claimed the message first")
            }
        }
    }
}

/// A recipient the server refused while it accepted others.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefusedRecipient {
    pub address: String,
    pub reply: String,
}

/// A state record the host makes as the last step before a message can leave, if `key` in
/// `scope` still holds `expected` (WIT `submission.claim`): the plugin's mark that the message
/// may have gone out, durable exactly when it may have.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendClaim {
    pub scope: StateScope,
    pub key: String,
    pub expected: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// What the record becomes when the host, starting again, knows that it died after the
    /// message's final dot and before the plugin recorded the outcome (WIT `claim.presumed`).
    pub presumed: Vec<u8>,
}
