//! Why a request was refused before any command ran, and how each refusal is answered.

use std::fmt;

use super::command::Command;
use super::status::{CommonStatus, HttpReply};
use super::version::{ProtocolVersion, VersionError};
use crate::http::Response;

/// A field of the base64 query blob (EAS-NOTES §1.3), named when the blob ends inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobField {
    Version,
    Command,
    Locale,
    DeviceIdLength,
    DeviceId,
    PolicyKeyLength,
    PolicyKey,
    DeviceTypeLength,
    DeviceType,
    ParameterLength,
    ParameterValue,
}

/// What is wrong with the query string itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// No query at all (or only base64 padding).
    Empty,
    /// Neither plain `key=value` pairs nor decodable base64.
    NotBase64,
    /// The base64 blob ends inside this field (a length byte promised more than is left).
    Truncated(BlobField),
    /// A required parameter is absent or empty (`Cmd`, `DeviceId`, `DeviceType`).
    MissingParameter(&'static str),
    /// A parameter appears twice; refused rather than guessing which one the client meant.
    DuplicateParameter(&'static str),
    /// A parameter value is not UTF-8, or not one of its allowed values (`SaveInSent=T|F`).
    InvalidParameterValue(&'static str),
    /// See [`DeviceId`](super::DeviceId) for the rule.
    InvalidDeviceId,
    /// See [`DeviceType`](super::DeviceType) for the rule.
    InvalidDeviceType,
    /// The policy-key length byte is neither 0 nor 4.
    InvalidPolicyKeyLength(u8),
    /// The Options parameter is not exactly one byte.
    InvalidOptionsLength(u8),
    /// A base64 parameter tag outside 0, 1, 3, 4, 6, 7, 8.
    UnknownParameterTag(u8),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Empty => f.write_str("empty query"),
            QueryError::NotBase64 => f.write_str("query is neither key=value pairs nor base64"),
            QueryError::Truncated(field) => write!(f, "base64 query ends inside {field:?}"),
            QueryError::MissingParameter(name) => write!(f, "missing parameter {name}"),
            QueryError::DuplicateParameter(name) => write!(f, "parameter {name} given twice"),
            QueryError::InvalidParameterValue(name) => write!(f, "invalid value for {name}"),
            QueryError::InvalidDeviceId => f.write_str("invalid DeviceId"),
            QueryError::InvalidDeviceType => f.write_str("invalid DeviceType"),
            QueryError::InvalidPolicyKeyLength(len) => {
                write!(f, "policy key length {len} (must be 0 or 4)")
            }
            QueryError::InvalidOptionsLength(len) => {
                write!(f, "Options parameter of {len} bytes (must be 1)")
            }
            QueryError::UnknownParameterTag(tag) => write!(f, "unknown parameter tag {tag}"),
        }
    }
}

impl std::error::Error for QueryError {}

/// A request the command layer never sees.
///
/// Every variant is answered at the HTTP level, in every protocol version: the 14.0+ habit of a
/// `Status` inside the command's response element needs a command the client and server agree
/// on, which is exactly what is missing here (and a client that sends a command its own version
/// lacks could not read that element either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// HTTP 400.
    MalformedQuery(QueryError),
    /// A `Cmd=` value that names no command (at most 64 characters kept, for logs). HTTP 501,
    /// the HTTP form of Status 137 CommandNotSupported.
    UnknownCommand(String),
    /// A base64 command code that names no command. HTTP 501.
    UnknownCommandCode(u8),
    /// A real command that the request's version does not have (GetAttachment in 14.0+, Find
    /// before 16.1). HTTP 501.
    CommandNotSupported { command: Command, version: ProtocolVersion },
    /// Plain query without `MS-ASProtocolVersion`. HTTP 400 with `MS-ASProtocolVersions`, the
    /// HTTP form of Status 138 VersionNotSupported, so the client can pick a version again.
    MissingVersion,
    /// A version this server does not serve. HTTP 400 with `MS-ASProtocolVersions`.
    UnsupportedVersion(VersionError),
    /// `X-MS-PolicyKey` that is not a decimal uint32. HTTP 400.
    InvalidPolicyKeyHeader,
}

impl RequestError {
    /// The bodiless HTTP answer to this refusal.
    pub fn http_reply(&self) -> HttpReply {
        match self {
            RequestError::MalformedQuery(_) | RequestError::InvalidPolicyKeyHeader => {
                HttpReply::new(400)
            }
            RequestError::UnknownCommand(_)
            | RequestError::UnknownCommandCode(_)
            | RequestError::CommandNotSupported { .. } => {
                HttpReply::for_request_line(CommonStatus::CommandNotSupported)
            }
            RequestError::MissingVersion | RequestError::UnsupportedVersion(_) => {
                HttpReply::for_request_line(CommonStatus::VersionNotSupported)
            }
        }
    }

    /// The response to send for this refusal.
    pub fn response(&self) -> Response {
        self.http_reply().into_response()
    }
}

impl From<QueryError> for RequestError {
    fn from(error: QueryError) -> Self {
        RequestError::MalformedQuery(error)
    }
}

impl From<VersionError> for RequestError {
    fn from(error: VersionError) -> Self {
        RequestError::UnsupportedVersion(error)
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::MalformedQuery(error) => write!(f, "malformed query: {error}"),
            RequestError::UnknownCommand(name) => write!(f, "unknown command {name:?}"),
            RequestError::UnknownCommandCode(code) => write!(f, "unknown command code {code}"),
            RequestError::CommandNotSupported { command, version } => {
                write!(f, "{command} does not exist in protocol version {version}")
            }
            RequestError::MissingVersion => f.write_str("missing MS-ASProtocolVersion header"),
            RequestError::UnsupportedVersion(error) => error.fmt(f),
            RequestError::InvalidPolicyKeyHeader => f.write_str("invalid X-MS-PolicyKey header"),
        }
    }
}

impl std::error::Error for RequestError {}

/// Why a request could not be written in the asked-for form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The base64 form stores this field's length in one byte, so it must be ≤ 255 bytes.
    FieldTooLong(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::FieldTooLong(name) => {
                write!(f, "{name} is longer than the base64 form's 255 bytes")
            }
        }
    }
}

impl std::error::Error for EncodeError {}
