//! The out-of-office capability's types (`out-of-office` in `wit/gateway.wit`).

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OofSettings {
    pub enabled: bool,
    /// Unix seconds; `None`: open-ended.
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub subject: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OofError {
    Unauthenticated,
    /// The tenant's server has no vacation replies.
    NotAvailable,
    Unavailable(String),
    Refused(String),
}

impl std::fmt::Display for OofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OofError::Unauthenticated => f.write_str("no authenticated user"),
            OofError::NotAvailable => f.write_str("no out-of-office support on this server"),
            OofError::Unavailable(why) => write!(f, "out-of-office unavailable: {why}"),
            OofError::Refused(why) => write!(f, "out-of-office refused: {why}"),
        }
    }
}
