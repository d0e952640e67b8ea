//! The client side: writing an [`EasRequest`] as a request in either query form, for test
//! clients and tools. [`parse_request`](super::parse_request) reads back what this writes.

use super::base64_query::{self, BlobContents};
use super::error::EncodeError;
use super::headers::{
    ACCEPT_LANGUAGE_HEADER, ACCEPT_MULTIPART_HEADER, CONTENT_TYPE_HEADER, POLICY_KEY_HEADER,
    PROTOCOL_VERSION_HEADER, USER_AGENT_HEADER,
};
use super::percent;
use super::plain_query::Key;
use super::query::PackedFields;
use super::request::EasRequest;
use crate::ENDPOINT;
use crate::http::Request;

/// LCID written when a base64-form request has no locale: en-US, as in the spec's example.
const DEFAULT_LOCALE: u16 = 0x0409;

/// Which query form to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryStyle {
    /// `Cmd=…&User=…`, with version, policy key and multipart wish in headers. Has no locale.
    Plain,
    /// One base64 blob carrying version, locale, policy key and options. The text is standard
    /// padded base64, unescaped, as in the spec's example.
    Base64,
}

/// The query string (without `?`) for `request`.
pub fn encode_query(request: &EasRequest, style: QueryStyle) -> Result<String, EncodeError> {
    match style {
        QueryStyle::Plain => Ok(encode_plain(request)),
        QueryStyle::Base64 => base64_query::encode(&BlobContents {
            fields: PackedFields {
                version: request.version,
                locale: request.locale.unwrap_or(DEFAULT_LOCALE),
                policy_key: request.policy_key,
            },
            command: request.command,
            device_id: &request.device_id,
            device_type: &request.device_type,
            user: request.user.as_deref(),
            params: &request.params,
        }),
    }
}

/// A complete `POST` for `request` with `body`. Header names are lower-case, as in
/// [`Request`]. Only the headers each form needs are written: the base64 form sends no
/// `MS-ASProtocolVersion`, `X-MS-PolicyKey` or `MS-ASAcceptMultiPart` (§2.2.1.1.2.6, .8).
pub fn build_request(
    request: &EasRequest,
    style: QueryStyle,
    body: Vec<u8>,
) -> Result<Request, EncodeError> {
    let query = encode_query(request, style)?;
    let mut headers: Vec<(&str, String)> = Vec::new();
    if style == QueryStyle::Plain {
        headers.push((PROTOCOL_VERSION_HEADER, request.version.as_str().to_owned()));
        if let Some(key) = request.policy_key {
            headers.push((POLICY_KEY_HEADER, key.to_string()));
        }
        if request.params.accept_multipart {
            headers.push((ACCEPT_MULTIPART_HEADER, "T".to_owned()));
        }
    }
    if let Some(media_type) = request.content_type.media_type() {
        headers.push((CONTENT_TYPE_HEADER, media_type.to_owned()));
    }
    if let Some(agent) = &request.user_agent {
        headers.push((USER_AGENT_HEADER, agent.clone()));
    }
    if let Some(language) = &request.accept_language {
        headers.push((ACCEPT_LANGUAGE_HEADER, language.clone()));
    }
    Ok(Request {
        method: "POST".to_owned(),
        path: ENDPOINT.to_owned(),
        query,
        headers: headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.into_bytes()))
            .collect(),
        body,
    })
}

/// ABNF order (§2.2.1.1.1.2): Cmd, User, DeviceId, DeviceType, then the command parameters.
fn encode_plain(request: &EasRequest) -> String {
    let params = &request.params;
    let pairs = [
        (Key::Cmd, Some(request.command.name())),
        (Key::User, request.user.as_deref()),
        (Key::DeviceId, Some(request.device_id.as_str())),
        (Key::DeviceType, Some(request.device_type.as_str())),
        (Key::AttachmentName, params.attachment_name.as_deref()),
        (Key::CollectionId, params.collection_id.as_deref()),
        (Key::ItemId, params.item_id.as_deref()),
        (Key::LongId, params.long_id.as_deref()),
        (Key::Occurrence, params.occurrence.as_deref()),
        (Key::SaveInSent, params.save_in_sent.then_some("T")),
    ];
    pairs
        .into_iter()
        .filter_map(|(key, value)| {
            let value = value.filter(|value| !value.is_empty())?;
            Some(format!("{}={}", key.name(), percent::encode(value.as_bytes())))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ashttp::{
        Command, CommandParams, ContentType, DeviceId, DeviceType, PolicyKey, ProtocolVersion,
        parse_request,
    };

    fn smart_reply() -> EasRequest {
        EasRequest {
            command: Command::SmartReply,
            version: ProtocolVersion::V16_1,
            user: None,
            device_id: DeviceId::parse("ABC123").expect("valid id"),
            device_type: DeviceType::parse("iPhone").expect("valid type"),
            policy_key: Some(PolicyKey(3_942_919_513)),
            locale: Some(0x0409),
            params: CommandParams {
                collection_id: Some("5".to_owned()),
                item_id: Some("5:12".to_owned()),
                save_in_sent: true,
                ..CommandParams::default()
            },
            content_type: ContentType::Wbxml,
            user_agent: Some("eas-edge-test/1".to_owned()),
            accept_language: None,
        }
    }

    #[test]
    fn base64_golden_example() {
        assert_eq!(
            encode_query(&smart_reply(), QueryStyle::Base64),
            Ok("oQMJBAZBQkMxMjMEWS0E6wZpUGhvbmUBATUDBDU6MTIHAQE=".to_owned())
        );
    }

    #[test]
    fn plain_query_text() {
        let request = EasRequest { user: Some("jane@example.com".to_owned()), ..smart_reply() };
        assert_eq!(
            encode_query(&request, QueryStyle::Plain),
            Ok("Cmd=SmartReply&User=jane%40example.com&DeviceId=ABC123&DeviceType=iPhone\
                &CollectionId=5&ItemId=5%3A12&SaveInSent=T"
                .to_owned())
        );
    }

    #[test]
    fn headers_per_form() {
        let request = EasRequest {
            command: Command::ItemOperations,
            params: CommandParams { accept_multipart: true, ..CommandParams::default() },
            ..smart_reply()
        };
        let plain = build_request(&request, QueryStyle::Plain, b"body".to_vec()).expect("encodes");
        assert_eq!(plain.method, "POST");
        assert_eq!(plain.path, ENDPOINT);
        assert_eq!(plain.body, b"body");
        assert_eq!(plain.header_str("MS-ASProtocolVersion"), Some("16.1"));
        assert_eq!(plain.header_str("X-MS-PolicyKey"), Some("3942919513"));
        assert_eq!(plain.header_str("MS-ASAcceptMultiPart"), Some("T"));
        assert_eq!(plain.header_str("Content-Type"), Some("application/vnd.ms-sync.wbxml"));
        assert_eq!(plain.header_str("User-Agent"), Some("eas-edge-test/1"));
        assert!(plain.headers.iter().all(|(name, _)| *name == name.to_ascii_lowercase()));

        let packed = build_request(&request, QueryStyle::Base64, Vec::new()).expect("encodes");
        assert_eq!(packed.header("MS-ASProtocolVersion"), None);
        assert_eq!(packed.header("X-MS-PolicyKey"), None);
        assert_eq!(packed.header("MS-ASAcceptMultiPart"), None);
        assert_eq!(parse_request(&packed), Ok(request.clone()));
        let expected_plain = EasRequest { locale: None, ..request };
        assert_eq!(parse_request(&plain), Ok(expected_plain));
    }

    #[test]
    fn base64_without_locale_writes_en_us() {
        let request = EasRequest { locale: None, ..smart_reply() };
        let built = build_request(&request, QueryStyle::Base64, Vec::new()).expect("encodes");
        assert_eq!(parse_request(&built).map(|p| p.locale), Ok(Some(0x0409)));
    }
}
