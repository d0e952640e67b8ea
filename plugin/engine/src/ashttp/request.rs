//! A whole EAS command request: the query in either form plus the headers that complete it
//! (MS-ASHTTP §2.2.1.1, EAS-NOTES §1.2–§1.4).

use super::command::Command;
use super::device::{DeviceId, DeviceType, PolicyKey};
use super::error::RequestError;
use super::headers::{
    self, ACCEPT_LANGUAGE_HEADER, CONTENT_TYPE_HEADER, ContentType, USER_AGENT_HEADER,
};
use super::query::{self, CommandParams, QueryForm, parse_query};
use super::status::{CommonStatus, ReplyContext, WireForm, wire_form};
use super::version::ProtocolVersion;
use crate::http::Request;

/// A command request the engine can dispatch. Method, path, authentication and body are not
/// looked at here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EasRequest {
    pub command: Command,
    /// The version to answer in (MS-ASHTTP §3.2.5.1).
    pub version: ProtocolVersion,
    /// The query's `User`, for logs only: the authenticated identity comes from the front end.
    pub user: Option<String>,
    pub device_id: DeviceId,
    pub device_type: DeviceType,
    /// `None` when the client sent no key at all (which changes how ≤12.1 is told about a
    /// remote wipe); `Some(PolicyKey(0))` before the first Provision.
    pub policy_key: Option<PolicyKey>,
    /// The base64 form's LCID; the plain form has none (`Accept-Language` plays that role).
    pub locale: Option<u16>,
    /// `accept_multipart` here is the Options bit or `MS-ASAcceptMultiPart: T`.
    pub params: CommandParams,
    pub content_type: ContentType,
    pub user_agent: Option<String>,
    /// Raw `Accept-Language` (the locale for Search and Find, §2.2.1.1.2.1).
    pub accept_language: Option<String>,
}

/// Reads an EAS command request.
///
/// The form is told apart as [`parse_query`] does. With the plain form the version comes from
/// the required `MS-ASProtocolVersion` header, which is checked first so that an old client is
/// told which versions to retry with even when its query names a command we dropped. With the
/// base64 form the blob's version and policy key win; `MS-ASProtocolVersion` is then ignored and
/// `X-MS-PolicyKey` used only when the blob has no key (the spec says both SHOULD be absent,
/// §2.2.1.1.2.6, §2.2.1.1.2.8).
pub fn parse_request(request: &Request) -> Result<EasRequest, RequestError> {
    if query::is_plain_form(&request.query) {
        headers::protocol_version(request)?;
    }
    let parsed = parse_query(&request.query)?;
    let (version, locale, packed_key) = match parsed.form {
        QueryForm::Base64(fields) => (fields.version, Some(fields.locale), fields.policy_key),
        QueryForm::Plain => (headers::protocol_version(request)?, None, None),
    };
    if !parsed.command.is_available_in(version) {
        return Err(RequestError::CommandNotSupported { command: parsed.command, version });
    }
    let policy_key = match packed_key {
        Some(key) => Some(key),
        None => headers::policy_key(request)?,
    };
    let mut params = parsed.params;
    params.accept_multipart |= headers::accept_multipart(request);
    Ok(EasRequest {
        command: parsed.command,
        version,
        user: parsed.user,
        device_id: parsed.device_id,
        device_type: parsed.device_type,
        policy_key,
        locale,
        params,
        content_type: ContentType::from_header(request.header(CONTENT_TYPE_HEADER)),
        user_agent: headers::text(request, USER_AGENT_HEADER),
        accept_language: headers::text(request, ACCEPT_LANGUAGE_HEADER),
    })
}

impl EasRequest {
    /// What a reply to this request depends on.
    pub fn reply_context(&self) -> ReplyContext {
        ReplyContext {
            version: self.version,
            command: self.command,
            policy_key_sent: self.policy_key.is_some(),
        }
    }

    /// How `status` must be sent back for this request (see [`wire_form`]).
    pub fn wire_form(&self, status: CommonStatus) -> WireForm {
        wire_form(status, &self.reply_context())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ashttp::error::QueryError;
    use crate::ashttp::version::{LegacyVersion, VersionError};

    /// Header name and raw value, as a test writes them.
    type Headers<'a> = &'a [(&'a str, &'a [u8])];

    fn request(query: &str, headers: Headers<'_>) -> Request {
        Request {
            method: "POST".to_owned(),
            path: "/Microsoft-Server-ActiveSync".to_owned(),
            query: query.to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.to_vec()))
                .collect(),
            body: Vec::new(),
        }
    }

    fn parse_ok(query: &str, headers: Headers<'_>) -> EasRequest {
        match parse_request(&request(query, headers)) {
            Ok(parsed) => parsed,
            Err(error) => panic!("{query:?} should parse: {error}"),
        }
    }

    const PLAIN_SYNC: &str = "Cmd=Sync&User=jane&DeviceId=dev1&DeviceType=iPhone";
    const SPEC_EXAMPLE: &str = "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l";

    #[test]
    fn plain_request_with_every_header() {
        let parsed = parse_ok(
            "Cmd=ItemOperations&User=jane&DeviceId=dev1&DeviceType=iPhone",
            &[
                ("MS-ASProtocolVersion", b"16.1"),
                ("X-MS-PolicyKey", b"3942919513"),
                ("MS-ASAcceptMultiPart", b"T"),
                ("Content-Type", b"application/vnd.ms-sync.wbxml; charset=utf-8"),
                ("User-Agent", b"Apple-iPhone13C2/2104.17"),
                ("Accept-Language", b"en-US"),
            ],
        );
        assert_eq!(
            parsed,
            EasRequest {
                command: Command::ItemOperations,
                version: ProtocolVersion::V16_1,
                user: Some("jane".to_owned()),
                device_id: DeviceId::parse("dev1").expect("valid id"),
                device_type: DeviceType::parse("iPhone").expect("valid type"),
                policy_key: Some(PolicyKey(3_942_919_513)),
                locale: None,
                params: CommandParams { accept_multipart: true, ..CommandParams::default() },
                content_type: ContentType::Wbxml,
                user_agent: Some("Apple-iPhone13C2/2104.17".to_owned()),
                accept_language: Some("en-US".to_owned()),
            }
        );
    }

    #[test]
    fn plain_request_needs_a_supported_version_header() {
        let parse = |headers: Headers<'_>| parse_request(&request(PLAIN_SYNC, headers));
        assert_eq!(parse(&[]), Err(RequestError::MissingVersion));
        assert_eq!(
            parse(&[("MS-ASProtocolVersion", b"2.5")]),
            Err(RequestError::UnsupportedVersion(VersionError::Legacy(LegacyVersion::V2_5)))
        );
        assert_eq!(
            parse(&[("MS-ASProtocolVersion", b"12.0")]),
            Err(RequestError::UnsupportedVersion(VersionError::Legacy(LegacyVersion::V12_0)))
        );
        assert_eq!(
            parse(&[("ms-asprotocolversion", b"15.0")]),
            Err(RequestError::UnsupportedVersion(VersionError::Unknown))
        );
        for version in ProtocolVersion::ALL {
            let parsed = parse(&[("MS-ASProtocolVersion", version.as_str().as_bytes())]);
            assert_eq!(parsed.map(|p| p.version), Ok(version));
        }
    }

    #[test]
    fn version_is_checked_before_the_command() {
        let legacy = request(
            "Cmd=GetHierarchy&DeviceId=d&DeviceType=t",
            &[("MS-ASProtocolVersion", b"2.5")],
        );
        let error = parse_request(&legacy).expect_err("2.5 is refused");
        assert_eq!(
            error,
            RequestError::UnsupportedVersion(VersionError::Legacy(LegacyVersion::V2_5))
        );
        let response = error.response();
        assert_eq!(response.status, 400);
        assert_eq!(response.header("MS-ASProtocolVersions"), Some("12.1,14.0,14.1,16.0,16.1"));
    }

    #[test]
    fn base64_request_uses_the_blob_version_and_key() {
        let parsed = parse_ok(SPEC_EXAMPLE, &[]);
        assert_eq!(parsed.version, ProtocolVersion::V14_0);
        assert_eq!(parsed.command, Command::Sync);
        assert_eq!(parsed.locale, Some(0x0409));
        assert_eq!(parsed.policy_key, None);
        assert_eq!(parsed.content_type, ContentType::Missing);

        // Headers are accepted but the blob wins; a header key fills in for a missing blob key.
        let parsed =
            parse_ok(SPEC_EXAMPLE, &[("MS-ASProtocolVersion", b"16.1"), ("X-MS-PolicyKey", b"7")]);
        assert_eq!(parsed.version, ProtocolVersion::V14_0);
        assert_eq!(parsed.policy_key, Some(PolicyKey(7)));
        let parsed = parse_ok(
            "oQMJBAZBQkMxMjMEWS0E6wZpUGhvbmUBATUDBDU6MTIHAQE=",
            &[("MS-ASProtocolVersion", b"2.5"), ("X-MS-PolicyKey", b"7")],
        );
        assert_eq!(parsed.version, ProtocolVersion::V16_1);
        assert_eq!(parsed.policy_key, Some(PolicyKey(3_942_919_513)));
        // The multipart header also works with the base64 form.
        let parsed = parse_ok(SPEC_EXAMPLE, &[("MS-ASAcceptMultiPart", b"T")]);
        assert!(parsed.params.accept_multipart);
    }

    #[test]
    fn commands_missing_from_the_version_are_refused() {
        let parse = |query: &str, version: &[u8]| {
            parse_request(&request(query, &[("MS-ASProtocolVersion", version)]))
        };
        let get_attachment = "Cmd=GetAttachment&DeviceId=d&DeviceType=t&AttachmentName=a";
        assert!(parse(get_attachment, b"12.1").is_ok());
        let error = parse(get_attachment, b"14.0").expect_err("gone in 14.0");
        assert_eq!(
            error,
            RequestError::CommandNotSupported {
                command: Command::GetAttachment,
                version: ProtocolVersion::V14_0,
            }
        );
        assert_eq!(error.response().status, 501);
        let find = "Cmd=Find&DeviceId=d&DeviceType=t";
        assert!(parse(find, b"16.1").is_ok());
        assert!(parse(find, b"16.0").is_err());
        // The base64 form: code 4 with version 14.0.
        let blob = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [140, 4, 9, 4, 1, b'd', 0, 1, b't'],
        );
        assert_eq!(
            parse_request(&request(&blob, &[])),
            Err(RequestError::CommandNotSupported {
                command: Command::GetAttachment,
                version: ProtocolVersion::V14_0,
            })
        );
    }

    #[test]
    fn policy_key_header_cases() {
        let parse = |key: &[u8]| {
            parse_request(&request(
                PLAIN_SYNC,
                &[("MS-ASProtocolVersion", b"14.1"), ("X-MS-PolicyKey", key)],
            ))
        };
        assert_eq!(parse(b"0").map(|p| p.policy_key), Ok(Some(PolicyKey(0))));
        assert_eq!(parse(b"").map(|p| p.policy_key), Ok(None));
        let error = parse(b"x1").expect_err("not decimal");
        assert_eq!(error, RequestError::InvalidPolicyKeyHeader);
        assert_eq!(error.response().status, 400);
    }

    #[test]
    fn error_responses() {
        let cases: [(&str, Headers<'_>, u16, bool); 5] = [
            ("Cmd=Sync&DeviceType=t", &[("MS-ASProtocolVersion", b"14.1")], 400, false),
            ("Cmd=Bogus&DeviceId=d&DeviceType=t", &[("MS-ASProtocolVersion", b"14.1")], 501, false),
            (PLAIN_SYNC, &[], 400, true),
            ("", &[], 400, false),
            ("jAAJ", &[], 400, false),
        ];
        for (query, headers, status, advertises) in cases {
            let error = parse_request(&request(query, headers)).expect_err(query);
            let response = error.response();
            assert_eq!(response.status, status, "{query:?}: {error}");
            assert_eq!(response.header("Content-Length"), Some("0"));
            assert!(response.body.is_empty());
            assert_eq!(response.header("MS-ASProtocolVersions").is_some(), advertises, "{query:?}");
        }
        assert_eq!(
            parse_request(&request("", &[])),
            Err(RequestError::MalformedQuery(QueryError::Empty))
        );
    }

    #[test]
    fn content_type_and_free_text_headers() {
        let parsed = parse_ok(
            "Cmd=SendMail&DeviceId=d&DeviceType=t&SaveInSent=T",
            &[
                ("MS-ASProtocolVersion", b"12.1"),
                ("Content-Type", b"message/rfc822"),
                ("User-Agent", b"Android/\xFF"),
            ],
        );
        assert_eq!(parsed.content_type, ContentType::Mime);
        assert!(parsed.params.save_in_sent);
        assert_eq!(parsed.user_agent.as_deref(), Some("Android/\u{FFFD}"));
        assert_eq!(parsed.accept_language, None);
    }

    #[test]
    fn reply_context_follows_the_request() {
        let with_key =
            parse_ok(PLAIN_SYNC, &[("MS-ASProtocolVersion", b"12.1"), ("X-MS-PolicyKey", b"0")]);
        let without_key = parse_ok(PLAIN_SYNC, &[("MS-ASProtocolVersion", b"12.1")]);
        let code = |form: WireForm| match form {
            WireForm::Http(reply) => reply.code(),
            WireForm::StatusInBody(status) => status,
        };
        assert_eq!(code(with_key.wire_form(CommonStatus::RemoteWipeRequested)), 449);
        assert_eq!(code(without_key.wire_form(CommonStatus::RemoteWipeRequested)), 403);
        let modern = parse_ok(PLAIN_SYNC, &[("MS-ASProtocolVersion", b"14.0")]);
        assert_eq!(
            modern.wire_form(CommonStatus::DeviceNotProvisioned),
            WireForm::StatusInBody(142)
        );
    }
}
