//! The request headers the EAS request layer reads (MS-ASHTTP §2.2.1.1.2, EAS-NOTES §1.4) and the
//! header names it writes.

use super::device::PolicyKey;
use super::error::RequestError;
use super::version::{ProtocolVersion, VersionError};
use crate::http::Request;

pub const PROTOCOL_VERSION_HEADER: &str = "MS-ASProtocolVersion";
pub const PROTOCOL_VERSIONS_HEADER: &str = "MS-ASProtocolVersions";
pub const POLICY_KEY_HEADER: &str = "X-MS-PolicyKey";
pub const ACCEPT_MULTIPART_HEADER: &str = "MS-ASAcceptMultiPart";
pub const RETRY_AFTER_HEADER: &str = "Retry-After";
pub const CONTENT_TYPE_HEADER: &str = "Content-Type";
pub const USER_AGENT_HEADER: &str = "User-Agent";
pub const ACCEPT_LANGUAGE_HEADER: &str = "Accept-Language";

/// The media type of WBXML bodies, requests and responses (§2.2.1.1.2.3, §2.2.2.1.2.4).
pub const WBXML_MEDIA_TYPE: &str = "application/vnd.ms-sync.wbxml";
/// The short form §2.2.1.1.2.3 also allows for WBXML request bodies.
const SHORT_WBXML_MEDIA_TYPE: &str = "application/vnd.ms-sync";
/// ≤12.1 SendMail, SmartReply and SmartForward send the raw message.
pub const MIME_MEDIA_TYPE: &str = "message/rfc822";

/// What the request's `Content-Type` says its body is. Whether that suits the command is the
/// command's business (e.g. ≤12.1 SendMail wants MIME, 14.0+ wants WBXML: Status 101).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentType {
    Wbxml,
    Mime,
    /// No `Content-Type` header (normal for a bodiless Sync, Ping or GetAttachment).
    Missing,
    /// Any other media type, lower-cased, parameters dropped.
    Other(String),
}

impl ContentType {
    /// Reads a header value: the media type before any `;`, case-insensitive, parameters
    /// (`charset=…`) ignored.
    pub fn from_header(value: Option<&[u8]>) -> Self {
        let Some(value) = value else {
            return ContentType::Missing;
        };
        let value = String::from_utf8_lossy(value);
        let media_type = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match media_type.as_str() {
            WBXML_MEDIA_TYPE | SHORT_WBXML_MEDIA_TYPE => ContentType::Wbxml,
            MIME_MEDIA_TYPE => ContentType::Mime,
            _ => ContentType::Other(media_type),
        }
    }

    /// The media type to send, if any.
    pub fn media_type(&self) -> Option<&str> {
        match self {
            ContentType::Wbxml => Some(WBXML_MEDIA_TYPE),
            ContentType::Mime => Some(MIME_MEDIA_TYPE),
            ContentType::Missing => None,
            ContentType::Other(media_type) => Some(media_type),
        }
    }
}

/// `MS-ASProtocolVersion`, required with the plain query.
pub(crate) fn protocol_version(request: &Request) -> Result<ProtocolVersion, RequestError> {
    let value = request.header(PROTOCOL_VERSION_HEADER).ok_or(RequestError::MissingVersion)?;
    let text = std::str::from_utf8(value).map_err(|_| VersionError::Unknown)?;
    Ok(ProtocolVersion::parse(text)?)
}

/// `X-MS-PolicyKey` as a decimal uint32. An empty value counts as absent: some clients send the
/// header empty before their first Provision.
pub(crate) fn policy_key(request: &Request) -> Result<Option<PolicyKey>, RequestError> {
    let Some(value) = request.header(POLICY_KEY_HEADER) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(value).map_err(|_| RequestError::InvalidPolicyKeyHeader)?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    PolicyKey::parse_decimal(text).map(Some).ok_or(RequestError::InvalidPolicyKeyHeader)
}

/// `MS-ASAcceptMultiPart: T` (§2.2.1.1.2.5); anything else means no.
pub(crate) fn accept_multipart(request: &Request) -> bool {
    request
        .header(ACCEPT_MULTIPART_HEADER)
        .is_some_and(|value| value.trim_ascii().eq_ignore_ascii_case(b"T"))
}

/// A free-text header for logs and device rules: trimmed, invalid UTF-8 replaced, empty → None.
pub(crate) fn text(request: &Request, name: &str) -> Option<String> {
    let value = String::from_utf8_lossy(request.header(name)?);
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ashttp::version::LegacyVersion;

    fn with_header(name: &str, value: &[u8]) -> Request {
        Request { headers: vec![(name.to_ascii_lowercase(), value.to_vec())], ..Request::default() }
    }

    #[test]
    fn content_types() {
        let parse = |value: &[u8]| ContentType::from_header(Some(value));
        assert_eq!(ContentType::from_header(None), ContentType::Missing);
        assert_eq!(parse(b"application/vnd.ms-sync.wbxml"), ContentType::Wbxml);
        assert_eq!(parse(b"application/vnd.ms-sync"), ContentType::Wbxml);
        assert_eq!(parse(b"Application/Vnd.MS-Sync.WBXML ; charset=utf-8"), ContentType::Wbxml);
        assert_eq!(parse(b"message/rfc822"), ContentType::Mime);
        assert_eq!(parse(b"message/RFC822; x=y"), ContentType::Mime);
        assert_eq!(parse(b"text/XML"), ContentType::Other("text/xml".to_owned()));
        assert_eq!(parse(b""), ContentType::Other(String::new()));
        assert_eq!(parse(b"\xFF"), ContentType::Other("\u{FFFD}".to_owned()));
    }

    #[test]
    fn protocol_version_header() {
        assert_eq!(protocol_version(&Request::default()), Err(RequestError::MissingVersion));
        let parse = |value: &[u8]| protocol_version(&with_header(PROTOCOL_VERSION_HEADER, value));
        assert_eq!(parse(b"16.1"), Ok(ProtocolVersion::V16_1));
        assert_eq!(parse(b" 12.1 "), Ok(ProtocolVersion::V12_1));
        assert_eq!(
            parse(b"2.5"),
            Err(RequestError::UnsupportedVersion(VersionError::Legacy(LegacyVersion::V2_5)))
        );
        assert_eq!(
            parse(b"12.0"),
            Err(RequestError::UnsupportedVersion(VersionError::Legacy(LegacyVersion::V12_0)))
        );
        for bad in [&b""[..], b"15.0", b"\xFF16.1", b"16.1,14.1"] {
            assert_eq!(parse(bad), Err(RequestError::UnsupportedVersion(VersionError::Unknown)));
        }
    }

    #[test]
    fn policy_key_header() {
        assert_eq!(policy_key(&Request::default()), Ok(None));
        let parse = |value: &[u8]| policy_key(&with_header(POLICY_KEY_HEADER, value));
        assert_eq!(parse(b"0"), Ok(Some(PolicyKey(0))));
        assert_eq!(parse(b" 3942919513 "), Ok(Some(PolicyKey(3_942_919_513))));
        assert_eq!(parse(b""), Ok(None));
        for bad in [&b"abc"[..], b"-1", b"4294967296", b"\xFF"] {
            assert_eq!(parse(bad), Err(RequestError::InvalidPolicyKeyHeader));
        }
    }

    #[test]
    fn accept_multipart_header() {
        assert!(!accept_multipart(&Request::default()));
        assert!(accept_multipart(&with_header(ACCEPT_MULTIPART_HEADER, b"T")));
        assert!(accept_multipart(&with_header(ACCEPT_MULTIPART_HEADER, b" t ")));
        assert!(!accept_multipart(&with_header(ACCEPT_MULTIPART_HEADER, b"F")));
        assert!(!accept_multipart(&with_header(ACCEPT_MULTIPART_HEADER, b"true")));
    }

    #[test]
    fn text_headers() {
        assert_eq!(text(&Request::default(), USER_AGENT_HEADER), None);
        let agent = with_header(USER_AGENT_HEADER, b" Apple-iPhone9C1/1705.5 ");
        assert_eq!(text(&agent, USER_AGENT_HEADER), Some("Apple-iPhone9C1/1705.5".to_owned()));
        assert_eq!(text(&with_header(USER_AGENT_HEADER, b"  "), USER_AGENT_HEADER), None);
        assert_eq!(
            text(&with_header(USER_AGENT_HEADER, b"a\xFFb"), USER_AGENT_HEADER),
            Some("a\u{FFFD}b".to_owned())
        );
    }
}
