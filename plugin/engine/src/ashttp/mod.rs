//! MS-ASHTTP request layer: turns an [`http::Request`](crate::http::Request) into a typed
//! [`EasRequest`], and decides how an outcome goes back on the wire for the request's version.
//!
//! * [`parse_request`] reads the query in either form (plain `Cmd=…`, or the base64 blob) and
//!   the EAS headers; [`parse_query`] is the query-only entry point for fuzzing.
//! * A [`RequestError`] is answered at the HTTP level ([`RequestError::response`]).
//! * [`wire_form`] is the one mapping from a [`CommonStatus`] to an HTTP code (≤12.1) or a
//!   `Status` value for the command's body (14.0+).
//! * [`build_request`] writes requests in both forms, for test clients.
//!
//! Spec references are to EAS-NOTES (the project's digest) and MS-ASHTTP sections.

mod base64_query;
mod command;
mod device;
mod encode;
mod error;
mod headers;
pub(crate) mod percent;
mod plain_query;
mod query;
mod request;
mod status;
mod version;

#[cfg(test)]
mod proptests;

pub use command::Command;
pub use device::{DeviceId, DeviceType, PolicyKey};
pub use encode::{QueryStyle, build_request, encode_query};
pub use error::{BlobField, EncodeError, QueryError, RequestError};
pub use headers::{
    ACCEPT_LANGUAGE_HEADER, ACCEPT_MULTIPART_HEADER, CONTENT_TYPE_HEADER, ContentType,
    MIME_MEDIA_TYPE, POLICY_KEY_HEADER, PROTOCOL_VERSION_HEADER, PROTOCOL_VERSIONS_HEADER,
    RETRY_AFTER_HEADER, USER_AGENT_HEADER, WBXML_MEDIA_TYPE,
};
pub use query::{CommandParams, PackedFields, ParsedQuery, QueryForm, parse_query};
pub use request::{EasRequest, parse_request};
pub use status::{
    CommonStatus, DEFAULT_RETRY_AFTER_SECS, HttpReply, ReplyContext, WireForm, wire_form,
};
pub use version::{
    LegacyVersion, ProtocolVersion, SUPPORTED_VERSIONS, VersionError, highest_common_version,
};
