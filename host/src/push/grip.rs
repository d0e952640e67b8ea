//! The hold contract: GRIP response headers (`Grip-Hold`, `Grip-Channel`, `Grip-Timeout`) on
//! the plugin's answer, read into a [`Hold`].
//!
//! - `Grip-Hold: response` — park the request (any other mode is an error);
//! - `Grip-Channel: <channel>; prev-id=<token>` — one per watched folder, in several headers
//!   or comma-separated in one; `<channel>` is the folder's IMAP name as the server spells it
//!   (modified UTF-7) with `;`, `,`, `%`, space and bytes outside `!`..`~` percent-encoded
//!   ([`encode_channel`]); other parameters are ignored; at least one channel is required;
//! - `Grip-Timeout: <seconds>` — required, 1 to [`MAX_GRIP_TIMEOUT`];
//! - status, the other headers and the body — the response to send on timeout.

use std::time::Duration;

use crate::packed_headers::PackedHeaders;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};

/// The longest hold: EAS heartbeats end at 3540 s; a little slack.
pub const MAX_GRIP_TIMEOUT: u64 = 3600;

/// A parsed hold: what to watch, how long, and what to answer on timeout.
#[derive(Debug, Clone)]
pub struct Hold {
    /// (IMAP folder name as on the wire, prev-id token), in header order.
    pub channels: Vec<(String, String)>,
    pub timeout: Duration,
    /// The plugin's status, headers (without `Grip-*`) and body, in allocations of their own:
    /// kept for as long as the request is parked.
    pub timeout_response: (StatusCode, PackedHeaders, Bytes),
}

/// A hold the host cannot follow: a plugin bug. Answer 500 and log it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GripError {
    #[error("Grip-Hold: {0:?} is not supported (only \"response\")")]
    HoldMode(String),
    #[error("Grip-Channel: {0}")]
    Channel(String),
    #[error("Grip-Timeout: {0}")]
    Timeout(String),
}

const GRIP_HOLD: &str = "grip-hold";
const GRIP_CHANNEL: &str = "grip-channel";
const GRIP_TIMEOUT: &str = "grip-timeout";

/// `None` when the answer is not a hold (no `Grip-Hold` header), else the hold or why it is
/// malformed. The headers are not changed: see [`strip_grip_headers`].
pub fn parse_hold(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Result<Hold, GripError>> {
    if !headers.contains_key(GRIP_HOLD) {
        return None;
    }
    Some(parse(status, headers, body))
}

fn parse(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> Result<Hold, GripError> {
    for mode in headers.get_all(GRIP_HOLD) {
        let text = String::from_utf8_lossy(mode.as_bytes());
        if !text.trim().eq_ignore_ascii_case("response") {
            return Err(GripError::HoldMode(text.into_owned()));
        }
    }

    let mut channels = Vec::new();
    for value in headers.get_all(GRIP_CHANNEL) {
        let text = value.to_str().map_err(|_| {
            GripError::Channel("not visible ASCII (percent-encode the name)".into())
        })?;
        for item in text.split(',') {
            channels.push(parse_channel(item)?);
        }
    }
    if channels.is_empty() {
        return Err(GripError::Channel("a hold needs at least one channel".into()));
    }

    let mut timeouts = headers.get_all(GRIP_TIMEOUT).iter();
    let timeout = match (timeouts.next(), timeouts.next()) {
        (None, _) => return Err(GripError::Timeout("missing".into())),
        (Some(_), Some(_)) => return Err(GripError::Timeout("given more than once".into())),
        (Some(value), None) => {
            let text = String::from_utf8_lossy(value.as_bytes());
            let seconds: u64 = text
                .trim()
                .parse()
                .map_err(|_| GripError::Timeout(format!("{text:?} is not a number of seconds")))?;
            if !(1..=MAX_GRIP_TIMEOUT).contains(&seconds) {
                return Err(GripError::Timeout(format!(
                    "{seconds} is outside 1..={MAX_GRIP_TIMEOUT}"
                )));
            }
            Duration::from_secs(seconds)
        }
    };

    let mut kept = headers.clone();
    strip_grip_headers(&mut kept);
    let timeout_response = (status, PackedHeaders::pack(&kept), Bytes::copy_from_slice(body));
    Ok(Hold { channels, timeout, timeout_response })
}

/// `channel; prev-id=token[; other=param]`
fn parse_channel(item: &str) -> Result<(String, String), GripError> {
    let mut parts = item.split(';');
    let name = parts.next().unwrap_or_default().trim();
    if name.is_empty() {
        return Err(GripError::Channel(format!("empty channel name in {item:?}")));
    }
    let folder = decode_channel(name)?;
    let mut prev_id = None;
    for param in parts {
        let (key, value) = param
            .split_once('=')
            .ok_or_else(|| GripError::Channel(format!("parameter {param:?} has no value")))?;
        if !key.trim().eq_ignore_ascii_case("prev-id") {
            continue;
        }
        let value = value.trim();
        let value =
            value.strip_prefix('"').and_then(|quoted| quoted.strip_suffix('"')).unwrap_or(value);
        if value.is_empty() {
            return Err(GripError::Channel(format!("empty prev-id for {name:?}")));
        }
        if prev_id.replace(value.to_string()).is_some() {
            return Err(GripError::Channel(format!("prev-id given twice for {name:?}")));
        }
    }
    let prev_id = prev_id.ok_or_else(|| GripError::Channel(format!("no prev-id for {name:?}")))?;
    Ok((folder, prev_id))
}

/// Removes every `Grip-*` header: none of them may reach a client.
pub fn strip_grip_headers(headers: &mut HeaderMap) {
    let grip: Vec<HeaderName> =
        headers.keys().filter(|name| name.as_str().starts_with("grip-")).cloned().collect();
    for name in grip {
        headers.remove(name);
    }
}

/// A folder's IMAP name as a channel: `;`, `,`, `%`, space and bytes outside `!`..`~`
/// percent-encoded (upper-case hex). Decoders accept any `%XX`, so encoding more is harmless.
pub fn encode_channel(raw_name: &str) -> String {
    let mut out = String::with_capacity(raw_name.len());
    for &byte in raw_name.as_bytes() {
        if matches!(byte, b';' | b',' | b'%' | b' ') || !(0x21..=0x7e).contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// The folder name of a channel; the result must be UTF-8 (modified UTF-7 is ASCII).
pub fn decode_channel(channel: &str) -> Result<String, GripError> {
    let bytes = channel.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| {
                    GripError::Channel(format!("bad percent-encoding in {channel:?}"))
                })?;
            out.push(hex);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| GripError::Channel(format!("{channel:?} does not decode to UTF-8")))
}

/// One `Grip-Channel` value: `<encoded folder>; prev-id=<token>`.
pub fn format_channel(raw_name: &str, token: &str) -> String {
    format!("{}; prev-id={token}", encode_channel(raw_name))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn hold(pairs: &[(&str, &str)]) -> Result<Hold, GripError> {
        parse_hold(StatusCode::OK, &headers(pairs), &Bytes::from_static(b"body")).expect("a hold")
    }

    #[test]
    fn not_a_hold_without_grip_hold() {
        let map = headers(&[("content-type", "application/vnd.ms-sync.wbxml")]);
        assert!(parse_hold(StatusCode::OK, &map, &Bytes::new()).is_none());
        // channels alone do not make a hold
        let map = headers(&[("grip-channel", "INBOX; prev-id=1.2.3.4.5")]);
        assert!(parse_hold(StatusCode::OK, &map, &Bytes::new()).is_none());
    }

    #[test]
    fn a_full_hold() -> Result<(), GripError> {
        let parsed = hold(&[
            ("Grip-Hold", "response"),
            ("Grip-Channel", "INBOX; prev-id=1.5.9.4.1, Sent; prev-id=\"1.2.0.1.0\""),
            ("grip-channel", "Entw&APw-rfe%2C%20alt;prev-id=7.7.7.7.7; filter=x"),
            ("Grip-Timeout", " 480 "),
            ("Content-Type", "application/vnd.ms-sync.wbxml"),
            ("Grip-Keep-Alive", "x"),
        ])?;
        assert_eq!(
            parsed.channels,
            vec![
                ("INBOX".to_string(), "1.5.9.4.1".to_string()),
                ("Sent".to_string(), "1.2.0.1.0".to_string()),
                ("Entw&APw-rfe, alt".to_string(), "7.7.7.7.7".to_string()),
            ]
        );
        assert_eq!(parsed.timeout, Duration::from_secs(480));
        let (status, kept, body) = &parsed.timeout_response;
        let kept = kept.unpack();
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(body.as_ref(), b"body");
        assert!(kept.contains_key("content-type"));
        assert!(kept.keys().all(|name| !name.as_str().starts_with("grip-")), "{kept:?}");
        Ok(())
    }

    #[test]
    fn malformed_holds_are_errors() {
        let base = [("grip-timeout", "60"), ("grip-channel", "INBOX; prev-id=1.1.0.0.0")];
        let with = |extra: &[(&str, &str)], skip: &str| {
            let mut pairs: Vec<(&str, &str)> =
                base.iter().copied().filter(|(name, _)| *name != skip).collect();
            pairs.extend_from_slice(extra);
            hold(&pairs)
        };
        let cases: Vec<(Result<Hold, GripError>, &str)> = vec![
            (with(&[("grip-hold", "stream")], ""), "stream mode"),
            (with(&[("grip-hold", "response"), ("grip-hold", "nope")], ""), "two modes"),
            (with(&[("grip-hold", "response")], "grip-timeout"), "no timeout"),
            (with(&[("grip-hold", "response"), ("grip-timeout", "60")], ""), "two timeouts"),
            (with(&[("grip-hold", "response")], "grip-channel"), "no channel"),
        ];
        for (result, case) in cases {
            assert!(result.is_err(), "{case}: {result:?}");
        }
        for timeout in ["0", "-5", "1.5", "abc", "", "3601"] {
            let result = hold(&[
                ("grip-hold", "response"),
                ("grip-channel", "INBOX; prev-id=1"),
                ("grip-timeout", timeout),
            ]);
            assert!(matches!(result, Err(GripError::Timeout(_))), "{timeout:?}: {result:?}");
        }
        for channel in [
            "INBOX",
            "INBOX; prev-id=",
            "INBOX; prev-id",
            "; prev-id=1",
            "INBOX; prev-id=1,",
            "INBOX; prev-id=1; prev-id=2",
            "IN%ZZBOX; prev-id=1",
            "IN%4; prev-id=1",
            "%FF; prev-id=1",
        ] {
            let result = hold(&[
                ("grip-hold", "response"),
                ("grip-channel", channel),
                ("grip-timeout", "60"),
            ]);
            assert!(matches!(result, Err(GripError::Channel(_))), "{channel:?}: {result:?}");
        }
    }

    #[test]
    fn non_ascii_channel_header_is_an_error() {
        let mut map = headers(&[("grip-hold", "response"), ("grip-timeout", "60")]);
        map.append(
            GRIP_CHANNEL,
            HeaderValue::from_bytes("Entwürfe; prev-id=1".as_bytes()).expect("value"),
        );
        let result = parse_hold(StatusCode::OK, &map, &Bytes::new());
        assert!(matches!(result, Some(Err(GripError::Channel(_)))), "{result:?}");
    }

    #[test]
    fn channel_encoding_round_trips() -> Result<(), GripError> {
        let names = [
            "INBOX",
            "Entw&APw-rfe",
            "a;b,c%d e",
            "&ZeVnLIqe-,&ZeVnLIqe-",
            "tab\there",
            "Grüße",
            "\"quoted\"",
        ];
        for name in names {
            let channel = encode_channel(name);
            assert!(
                channel.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b';' && b != b','),
                "{channel}"
            );
            assert_eq!(decode_channel(&channel)?, name);
        }
        assert_eq!(encode_channel("a;b,c%d e"), "a%3Bb%2Cc%25d%20e");
        assert_eq!(format_channel("Sent Items", "1.2.3.4.5"), "Sent%20Items; prev-id=1.2.3.4.5");
        // lower-case hex and needless escapes are accepted
        assert_eq!(decode_channel("%49nbox%2c")?, "Inbox,");
        Ok(())
    }

    #[test]
    fn strip_removes_only_grip_headers() {
        let mut map = headers(&[
            ("grip-hold", "response"),
            ("Grip-Channel", "INBOX; prev-id=1"),
            ("content-type", "text/plain"),
            ("gripe", "kept"),
        ]);
        strip_grip_headers(&mut map);
        let mut names: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["content-type", "gripe"]);
    }
}
