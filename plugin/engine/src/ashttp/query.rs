//! What the request line's query carries, in either form (MS-ASHTTP §2.2.1.1.1, EAS-NOTES
//! §1.2–§1.3), and which form a query is in.

use super::command::Command;
use super::device::{DeviceId, DeviceType, PolicyKey};
use super::error::RequestError;
use super::version::ProtocolVersion;
use super::{base64_query, plain_query};

/// The command parameters (§2.2.1.1.1.2.5 / §2.2.1.1.1.1.3). Empty values count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandParams {
    /// GetAttachment (≤12.1): the attachment's file reference.
    pub attachment_name: Option<String>,
    /// SmartReply/SmartForward (≤12.1): folder of the source message.
    pub collection_id: Option<String>,
    /// SmartReply/SmartForward (≤12.1): server id of the source message.
    pub item_id: Option<String>,
    /// SmartReply/SmartForward (≤12.1): long id from a Search result.
    pub long_id: Option<String>,
    /// SmartReply/SmartForward (≤12.1): one occurrence of a recurring meeting.
    pub occurrence: Option<String>,
    /// SendMail/SmartReply/SmartForward (≤12.1): keep a copy in Sent Items (`SaveInSent=T`, or
    /// Options bit 0x01).
    pub save_in_sent: bool,
    /// ItemOperations: multipart Fetch answer (Options bit 0x02 in a base64 query; in an
    /// [`EasRequest`](super::EasRequest) also set by `MS-ASAcceptMultiPart: T`).
    pub accept_multipart: bool,
}

/// The fields only the base64 form carries in its query (the plain form sends them as headers,
/// or not at all for the locale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedFields {
    pub version: ProtocolVersion,
    /// Windows LCID, e.g. `0x0409` for en-US.
    pub locale: u16,
    pub policy_key: Option<PolicyKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryForm {
    Plain,
    Base64(PackedFields),
}

/// A decoded query, before headers are consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedQuery {
    pub command: Command,
    /// For logging only: authentication never comes from here (EAS-NOTES §1.2). Invalid UTF-8
    /// is replaced rather than refused for that reason.
    pub user: Option<String>,
    pub device_id: DeviceId,
    pub device_type: DeviceType,
    pub params: CommandParams,
    pub form: QueryForm,
}

/// Decodes a raw query string (without the `?`) in whichever form it is. The fuzzing entry point:
/// it must return, never panic, for any input.
pub fn parse_query(query: &str) -> Result<ParsedQuery, RequestError> {
    if is_plain_form(query) { plain_query::parse(query) } else { base64_query::parse(query) }
}

/// EAS-NOTES §1.3 tells the forms apart by `Cmd=`. Base64 text has no `&` and has `=` only as
/// trailing padding, so "has `&`, or an `=` followed by something other than `=`" also marks
/// every real plain query, and sends one that lacks `Cmd` to the plain parser, whose error then
/// names the missing parameter. A lone `Cmd=` (empty value) counts as plain too.
pub(crate) fn is_plain_form(query: &str) -> bool {
    let bytes = query.as_bytes();
    bytes.contains(&b'&')
        || bytes.windows(2).any(|pair| matches!(pair, [b'=', next] if *next != b'='))
        || bytes.get(..4).is_some_and(|start| start.eq_ignore_ascii_case(b"Cmd="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_detection() {
        for plain in [
            "Cmd=Sync&User=a&DeviceId=b&DeviceType=c",
            "Cmd=Sync",
            "cmd=",
            "User=a&DeviceId=b",
            "DeviceId=b",
            "&",
        ] {
            assert!(is_plain_form(plain), "{plain:?}");
        }
        for packed in [
            "",
            "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l",
            "oQMJBAZBQkMxMjMEWS0E6wZpUGhvbmUBATUDBDU6MTIHAQE=",
            "oQMJBAZBQkMxMjMEWS0E6wZpUGhvbmUBATUDBDU6MTIHAQE%3D",
            "abc==",
        ] {
            assert!(!is_plain_form(packed), "{packed:?}");
        }
    }
}
