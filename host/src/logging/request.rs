//! What the final log line of a phone request says about it: its id, and the EAS command and
//! DeviceId from the query (both query forms, MS-ASHTTP §2.2.1.1.1).

use base64::Engine as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Carries the request id: answered on every phone response, and taken from the request when
/// a trusted proxy in front of the gateway already set one (so both logs share it).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request's id: the trusted proxy's `x-request-id` when `trust_proxy` and it looks like an
/// id, else a fresh one.
pub fn request_id(headers: &http::HeaderMap, trust_proxy: bool) -> String {
    trust_proxy
        .then(|| headers.get(REQUEST_ID_HEADER)?.to_str().ok().filter(|id| acceptable(id)))
        .flatten()
        .map_or_else(generate, str::to_owned)
}

/// An id from a client goes into log lines: short and of harmless characters only.
fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// 16 hex digits: a counter mixed under a key chosen at start, so ids do not repeat within a
/// run and do not reveal how many requests the gateway served.
fn generate() -> String {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = KEY.get_or_init(Default::default).build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

/// The EAS command and the DeviceId of a request, "-" where the request names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    pub command: String,
    pub device: String,
}

impl RequestFacts {
    pub fn of(uri: &http::Uri) -> RequestFacts {
        let device = crate::parking::device_id(uri).unwrap_or_else(|| "-".into());
        let command = command(uri).unwrap_or_else(|| "-".into());
        RequestFacts { command, device }
    }
}

/// `Cmd=` of the plain query, or the command code of the base64 form (its second byte).
fn command(uri: &http::Uri) -> Option<String> {
    let query = uri.query()?;
    if let Some(command) = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case("Cmd"))
        .map(|(_, value)| value)
    {
        let plain = !command.is_empty()
            && command.len() <= 32
            && command.bytes().all(|b| b.is_ascii_alphanumeric());
        return Some(if plain { command.to_owned() } else { "?".to_owned() });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(query.replace("%2B", "+").replace("%2F", "/").replace("%3D", "="))
        .ok()?;
    let code = *decoded.get(1)?;
    Some(
        BASE64_COMMANDS
            .get(usize::from(code))
            .copied()
            .flatten()
            .map_or_else(|| format!("code{code}"), str::to_owned),
    )
}

/// Command codes of the base64 query form (MS-ASHTTP §2.2.1.1.1.1.2).
const BASE64_COMMANDS: [Option<&str>; 23] = [
    Some("Sync"),
    Some("SendMail"),
    Some("SmartForward"),
    Some("SmartReply"),
    Some("GetAttachment"),
    None,
    None,
    None,
    None,
    Some("FolderSync"),
    Some("FolderCreate"),
    Some("FolderDelete"),
    Some("FolderUpdate"),
    Some("MoveItems"),
    Some("GetItemEstimate"),
    Some("MeetingResponse"),
    Some("Search"),
    Some("Settings"),
    Some("Ping"),
    Some("ItemOperations"),
    Some("Provision"),
    Some("ResolveRecipients"),
    Some("ValidateCert"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_from_both_query_forms() {
        let plain: http::Uri =
            "/Microsoft-Server-ActiveSync?Cmd=Ping&User=a&DeviceId=ABC123&DeviceType=iPhone"
                .parse()
                .expect("uri");
        let facts = RequestFacts::of(&plain);
        assert_eq!((facts.command.as_str(), facts.device.as_str()), ("Ping", "ABC123"));
        let bytes = [141u8, 9, 9, 4, 3, 0xAA, 0xBB, 0xCC, 4, 0, 0, 0, 0];
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let uri: http::Uri =
            format!("/Microsoft-Server-ActiveSync?{encoded}").parse().expect("uri");
        let facts = RequestFacts::of(&uri);
        assert_eq!((facts.command.as_str(), facts.device.as_str()), ("FolderSync", "aabbcc"));
        let none = RequestFacts::of(&"/autodiscover/autodiscover.xml".parse().expect("uri"));
        assert_eq!((none.command.as_str(), none.device.as_str()), ("-", "-"));
        let odd = RequestFacts::of(&"/x?Cmd=a%20b&DeviceId=d".parse().expect("uri"));
        assert_eq!(odd.command, "?");
    }

    #[test]
    fn request_ids_are_fresh_unless_a_trusted_proxy_sent_one() {
        let mut headers = http::HeaderMap::new();
        let (first, second) = (request_id(&headers, false), request_id(&headers, false));
        assert_ne!(first, second);
        assert_eq!(first.len(), 16);
        headers.insert(REQUEST_ID_HEADER, "proxy-42".parse().expect("header"));
        assert_eq!(request_id(&headers, true), "proxy-42");
        assert_ne!(request_id(&headers, false), "proxy-42");
        headers.insert(REQUEST_ID_HEADER, "a b".parse().expect("header"));
        assert_ne!(request_id(&headers, true), "a b");
    }
}
