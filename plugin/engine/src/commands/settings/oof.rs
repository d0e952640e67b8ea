//! Settings > Oof ([MS-ASCMD] §2.2.3.119, EAS-NOTES §4.13) over the out-of-office capability
//! (a Sieve vacation rule through ManageSieve, when the tenant's server has one).
//!
//! The server keeps one reply for everyone, so:
//! * Get answers OofState 0 (off), 1 (on) or 2 (on between StartTime and EndTime), and the same
//!   ReplyMessage for the three audiences (AppliesToInternal, AppliesToExternalKnown,
//!   AppliesToExternalUnknown), `Enabled` 1 when the reply is on, in the BodyType asked for
//!   (a stored plain text reply is converted to HTML for `HTML`). A rule with only one of its
//!   two dates is shown as time-based with the missing end filled in: a start alone runs for
//!   [`OPEN_END_SECONDS`], an end alone starts now.
//! * Set takes the reply of the first audience that is enabled (internal, then known external,
//!   then unknown external) for everyone; an HTML reply is stored as plain text. OofState 0,
//!   or messages that are all disabled, turn the reply off (its text is kept). Without any
//!   OofMessage the stored text stays. The subject is kept.
//!
//! Property Status (§2.2.3.177.15): 1 success; 2 a request without Get or Set, without
//! OofState, or with an unknown BodyType; 5 invalid arguments (an OofState that is not 0–2, a
//! time-based state without valid StartTime and EndTime, a reply over [`MAX_REPLY_CHARS`], or a
//! rule the server refused); 6 conflicting arguments (EndTime not after StartTime); 7 denied by
//! policy when the server has no vacation replies (`OofError::NotAvailable`, which clients
//! show as unavailable rather than retrying); 3 access denied without an authenticated user;
//! 4 server unavailable when ManageSieve fails.

use crate::capabilities::{Capabilities, Level};
use crate::commands::search::criteria;
use crate::email::{self, BodyData, BodyPreference, BodyType, MessageSummary, MimeSupport};
use crate::out_of_office::{OofError, OofSettings};
use eas_wbxml::Element;
use eas_wbxml::tags::settings as st;

/// Longest reply accepted, in characters.
pub const MAX_REPLY_CHARS: usize = 32 * 1024;
/// How long a rule with a start and no end is shown to run (a year).
pub const OPEN_END_SECONDS: i64 = 365 * 86_400;

mod status {
    pub const SUCCESS: u8 = 1;
    pub const PROTOCOL_ERROR: u8 = 2;
    pub const ACCESS_DENIED: u8 = 3;
    pub const SERVER_UNAVAILABLE: u8 = 4;
    pub const INVALID_ARGUMENTS: u8 = 5;
    pub const CONFLICTING_ARGUMENTS: u8 = 6;
    pub const DENIED_BY_POLICY: u8 = 7;
}

/// The audiences, in the order they are answered and read.
const AUDIENCES: [eas_wbxml::Tag; 3] =
    [st::APPLIES_TO_INTERNAL, st::APPLIES_TO_EXTERNAL_KNOWN, st::APPLIES_TO_EXTERNAL_UNKNOWN];

/// The answer to one `Oof` property.
pub async fn answer(caps: &impl Capabilities, property: &Element) -> Element {
    let result = if let Some(get) = property.child(st::GET) {
        get_settings(caps, get).await
    } else if let Some(set) = property.child(st::SET) {
        set_settings(caps, set).await.map(|()| None)
    } else {
        Err(status::PROTOCOL_ERROR)
    };
    match result {
        Ok(get) => {
            let mut element =
                Element::new(st::OOF).text_child(st::STATUS, status::SUCCESS.to_string());
            if let Some(get) = get {
                element.push(get);
            }
            element
        }
        Err(code) => Element::new(st::OOF).text_child(st::STATUS, code.to_string()),
    }
}

fn error_status(caps: &impl Capabilities, error: &OofError, setting: bool) -> u8 {
    match error {
        OofError::NotAvailable => status::DENIED_BY_POLICY,
        OofError::Unauthenticated => status::ACCESS_DENIED,
        OofError::Refused(why) if setting => {
            caps.log(Level::Info, &format!("Oof Set refused by the server: {why}"));
            status::INVALID_ARGUMENTS
        }
        OofError::Refused(why) | OofError::Unavailable(why) => {
            caps.log(Level::Warn, &format!("Oof: {why}"));
            status::SERVER_UNAVAILABLE
        }
    }
}

/// BodyType `Text` or `HTML` (case-insensitive); the spelling is echoed.
fn body_type(text: &str) -> Option<(bool, &str)> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("HTML") {
        Some((true, text))
    } else if text.eq_ignore_ascii_case("Text") {
        Some((false, text))
    } else {
        None
    }
}

async fn get_settings(caps: &impl Capabilities, get: &Element) -> Result<Option<Element>, u8> {
    let (html, spelling) = match get.text_of(st::BODY_TYPE) {
        Some(text) => body_type(text).ok_or(status::PROTOCOL_ERROR)?,
        None => (false, "Text"),
    };
    let settings = caps.out_of_office().await.map_err(|error| error_status(caps, &error, false))?;
    let now = i64::try_from(caps.now_ms() / 1000).unwrap_or(i64::MAX);
    let window = match (settings.start, settings.end) {
        (None, None) => None,
        (Some(start), Some(end)) => Some((start, end)),
        (Some(start), None) => Some((start, start.saturating_add(OPEN_END_SECONDS))),
        (None, Some(end)) => Some((now.min(end), end)),
    };
    let state = match (settings.enabled, window) {
        (false, _) => "0",
        (true, None) => "1",
        (true, Some(_)) => "2",
    };
    let mut answer = Element::new(st::GET).text_child(st::OOF_STATE, state);
    if let (true, Some((start, end))) = (settings.enabled, window) {
        answer.push(Element::with_text(st::START_TIME, email::format_eas_datetime(start)));
        answer.push(Element::with_text(st::END_TIME, email::format_eas_datetime(end)));
    }
    let reply = if html { text_to_html(&settings.message) } else { settings.message.clone() };
    for audience in AUDIENCES {
        let mut message = Element::new(st::OOF_MESSAGE)
            .empty_child(audience)
            .text_child(st::ENABLED, if settings.enabled { "1" } else { "0" });
        if !reply.is_empty() {
            message.push(Element::with_text(st::REPLY_MESSAGE, reply.as_str()));
        }
        message.push(Element::with_text(st::BODY_TYPE, spelling));
        answer.push(message);
    }
    Ok(Some(answer))
}

/// One OofMessage of a Set: its audience's rank, whether it is enabled, its text.
struct Message {
    rank: usize,
    enabled: bool,
    text: Option<String>,
}

async fn set_settings(caps: &impl Capabilities, set: &Element) -> Result<(), u8> {
    let state = set.text_of(st::OOF_STATE).ok_or(status::PROTOCOL_ERROR)?;
    let state = criteria::decimal(state).filter(|s| *s <= 2).ok_or(status::INVALID_ARGUMENTS)?;
    let window = if state == 2 {
        let time = |tag| set.text_of(tag).and_then(criteria::parse_datetime);
        let start = time(st::START_TIME).ok_or(status::INVALID_ARGUMENTS)?;
        let end = time(st::END_TIME).ok_or(status::INVALID_ARGUMENTS)?;
        if end <= start {
            return Err(status::CONFLICTING_ARGUMENTS);
        }
        Some((start, end))
    } else {
        None
    };
    let mut messages = Vec::new();
    for message in set.children(st::OOF_MESSAGE) {
        messages.push(read_message(message)?);
    }
    messages.sort_by_key(|message| message.rank);
    let current = caps.out_of_office().await.map_err(|error| error_status(caps, &error, true))?;
    let chosen = messages.iter().find(|message| message.enabled);
    let enabled = state != 0 && (messages.is_empty() || chosen.is_some());
    // The text to keep: the enabled reply, else any reply given, else the stored one.
    let text = chosen
        .or_else(|| messages.iter().find(|m| m.text.is_some()))
        .and_then(|message| message.text.clone())
        .unwrap_or(current.message.clone());
    let settings = OofSettings {
        enabled,
        start: window.map(|(start, _)| start),
        end: window.map(|(_, end)| end),
        subject: current.subject.clone(),
        message: text,
    };
    caps.set_out_of_office(&settings).await.map_err(|error| error_status(caps, &error, true))
}

fn read_message(message: &Element) -> Result<Message, u8> {
    let rank = AUDIENCES
        .iter()
        .position(|audience| message.child(*audience).is_some())
        .ok_or(status::PROTOCOL_ERROR)?;
    let html = match message.text_of(st::BODY_TYPE) {
        Some(text) => body_type(text).ok_or(status::PROTOCOL_ERROR)?.0,
        None => false,
    };
    let text = match message.child(st::REPLY_MESSAGE) {
        Some(reply) => {
            let raw = String::from_utf8_lossy(reply.bytes().unwrap_or_default()).into_owned();
            if raw.chars().count() > MAX_REPLY_CHARS {
                return Err(status::INVALID_ARGUMENTS);
            }
            Some(if html { html_to_text(&raw) } else { raw })
        }
        None => None,
    };
    // Enabled is required; a message without it counts as enabled when it has a reply.
    let enabled = match criteria::boolean(message.child(st::ENABLED)) {
        Some(value) => value.ok_or(status::INVALID_ARGUMENTS)?,
        None => text.is_some(),
    };
    Ok(Message { rank, enabled, text })
}

/// The reply as a client shows an HTML body, converted the way message bodies are.
fn text_to_html(text: &str) -> String {
    convert_body(text, "text/plain", BodyType::Html)
}

/// An HTML reply as the plain text the server keeps.
fn html_to_text(html: &str) -> String {
    convert_body(html, "text/html", BodyType::PlainText)
}

/// Runs `content` through the message body conversion (`email::convert` and `select_body`), so
/// replies are converted exactly like message bodies.
fn convert_body(content: &str, media_type: &str, wanted: BodyType) -> String {
    let mut raw = format!(
        "MIME-Version: 1.0\r\nContent-Type: {media_type}; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(content.as_bytes());
    let summary = MessageSummary::from_full_message(0, Vec::new(), 0, raw);
    let converted = email::convert(&summary, "");
    let selection = converted.body.select_body(&[BodyPreference::new(wanted)], MimeSupport::Never);
    match selection.body.data {
        Some(BodyData::Text(text)) => text.trim_end().to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::test_support::{decoded, post, provisioned_host};
    use crate::testing::FakeHost;
    use eas_wbxml::Document;

    fn settings(host: &FakeHost, property: Element) -> Element {
        let body = Document::new(Element::new(st::SETTINGS).with_child(property));
        let answer = decoded(&post(host, "Settings", "14.1", &body));
        assert_eq!(answer.text_of(st::STATUS), Some("1"));
        answer.child(st::OOF).expect("Oof answered").clone()
    }

    fn oof_get(body_type: &str) -> Element {
        Element::new(st::OOF).with_child(Element::new(st::GET).text_child(st::BODY_TYPE, body_type))
    }

    fn message(audience: eas_wbxml::Tag, enabled: &str, reply: &str, body_type: &str) -> Element {
        Element::new(st::OOF_MESSAGE)
            .empty_child(audience)
            .text_child(st::ENABLED, enabled)
            .text_child(st::REPLY_MESSAGE, reply)
            .text_child(st::BODY_TYPE, body_type)
    }

    fn set(state: &str, children: Vec<Element>) -> Element {
        let mut set = Element::new(st::SET).text_child(st::OOF_STATE, state);
        for child in children {
            set.push(child);
        }
        Element::new(st::OOF).with_child(set)
    }

    fn host_with(settings: OofSettings) -> FakeHost {
        let host = provisioned_host();
        *host.out_of_office.borrow_mut() = Some(settings);
        host
    }

    #[test]
    fn get_reports_state_dates_and_one_reply_for_every_audience() {
        let host = host_with(OofSettings {
            enabled: true,
            start: Some(1_793_000_000),
            end: Some(1_793_600_000),
            subject: Some("Away".into()),
            message: "Back on Monday.\nAsk Bob <bob@example.org>.".into(),
        });
        let oof = settings(&host, oof_get("Text"));
        assert_eq!(oof.text_of(st::STATUS), Some("1"));
        let answer = oof.child(st::GET).expect("Get");
        assert_eq!(answer.text_of(st::OOF_STATE), Some("2"));
        let start = email::format_eas_datetime(1_793_000_000);
        assert_eq!(answer.text_of(st::START_TIME), Some(start.as_str()));
        let end = email::format_eas_datetime(1_793_600_000);
        assert_eq!(answer.text_of(st::END_TIME), Some(end.as_str()));
        let messages: Vec<&Element> = answer.children(st::OOF_MESSAGE).collect();
        assert_eq!(messages.len(), 3);
        for (message, audience) in messages.iter().zip(AUDIENCES) {
            assert!(message.child(audience).is_some());
            assert_eq!(message.text_of(st::ENABLED), Some("1"));
            assert_eq!(
                message.text_of(st::REPLY_MESSAGE),
                Some("Back on Monday.\nAsk Bob <bob@example.org>.")
            );
            assert_eq!(message.text_of(st::BODY_TYPE), Some("Text"));
        }
        let html = settings(&host, oof_get("HTML"));
        let reply = html
            .child(st::GET)
            .and_then(|g| g.child(st::OOF_MESSAGE))
            .and_then(|m| m.text_of(st::REPLY_MESSAGE))
            .expect("reply");
        assert!(reply.contains("&lt;bob@example.org&gt;"), "{reply}");
    }

    #[test]
    fn get_of_a_disabled_or_open_ended_reply() {
        let host = host_with(OofSettings { message: "Gone".into(), ..OofSettings::default() });
        let answer = settings(&host, oof_get("TEXT")).child(st::GET).cloned().expect("Get");
        assert_eq!(answer.text_of(st::OOF_STATE), Some("0"));
        assert!(answer.child(st::START_TIME).is_none());
        let first = answer.child(st::OOF_MESSAGE).expect("message");
        assert_eq!(first.text_of(st::ENABLED), Some("0"));
        assert_eq!(first.text_of(st::BODY_TYPE), Some("TEXT"));

        *host.out_of_office.borrow_mut() =
            Some(OofSettings { enabled: true, start: Some(1000), ..OofSettings::default() });
        let answer = settings(&host, oof_get("Text")).child(st::GET).cloned().expect("Get");
        assert_eq!(answer.text_of(st::OOF_STATE), Some("2"));
        assert_eq!(
            answer.text_of(st::END_TIME),
            Some(email::format_eas_datetime(1000 + OPEN_END_SECONDS).as_str())
        );
        let message = answer.child(st::OOF_MESSAGE).expect("message");
        assert!(message.child(st::REPLY_MESSAGE).is_none(), "no text, no ReplyMessage");

        *host.out_of_office.borrow_mut() =
            Some(OofSettings { enabled: true, ..OofSettings::default() });
        let answer = settings(&host, oof_get("Text")).child(st::GET).cloned().expect("Get");
        assert_eq!(answer.text_of(st::OOF_STATE), Some("1"));
    }

    #[test]
    fn set_stores_the_first_enabled_reply_for_everyone() {
        let host =
            host_with(OofSettings { subject: Some("Away".into()), ..OofSettings::default() });
        let oof = settings(
            &host,
            set(
                "2",
                vec![
                    Element::with_text(st::START_TIME, "2026-07-01T08:00:00.000Z"),
                    Element::with_text(st::END_TIME, "2026-07-15T18:00:00.000Z"),
                    message(st::APPLIES_TO_EXTERNAL_UNKNOWN, "1", "external", "Text"),
                    message(st::APPLIES_TO_INTERNAL, "1", "<p>On <b>holiday</b></p>", "HTML"),
                    message(st::APPLIES_TO_EXTERNAL_KNOWN, "0", "known", "Text"),
                ],
            ),
        );
        assert_eq!(oof.text_of(st::STATUS), Some("1"));
        assert!(oof.child(st::GET).is_none());
        let stored = host.out_of_office.borrow().clone().expect("stored");
        assert!(stored.enabled);
        assert_eq!(stored.start, criteria::parse_datetime("2026-07-01T08:00:00.000Z"));
        assert_eq!(stored.end, criteria::parse_datetime("2026-07-15T18:00:00.000Z"));
        assert_eq!(stored.message, "On holiday");
        assert_eq!(stored.subject.as_deref(), Some("Away"), "the subject is kept");

        // Off: the text stays, the dates go.
        let oof = settings(&host, set("0", vec![]));
        assert_eq!(oof.text_of(st::STATUS), Some("1"));
        let stored = host.out_of_office.borrow().clone().expect("stored");
        assert!(!stored.enabled);
        assert_eq!((stored.start, stored.end), (None, None));
        assert_eq!(stored.message, "On holiday");

        // On for everyone, every message disabled: off.
        settings(&host, set("1", vec![message(st::APPLIES_TO_INTERNAL, "0", "new", "Text")]));
        let stored = host.out_of_office.borrow().clone().expect("stored");
        assert!(!stored.enabled);
        assert_eq!(stored.message, "new");

        settings(&host, set("1", vec![]));
        assert!(host.out_of_office.borrow().as_ref().is_some_and(|s| s.enabled));
    }

    #[test]
    fn set_arguments_are_checked() {
        let host = host_with(OofSettings::default());
        let status_of = |property: Element| {
            settings(&host, property).text_of(st::STATUS).map(str::to_owned).expect("status")
        };
        assert_eq!(status_of(set("3", vec![])), "5");
        assert_eq!(status_of(set("2", vec![])), "5");
        let backwards = vec![
            Element::with_text(st::START_TIME, "2026-07-15T08:00:00.000Z"),
            Element::with_text(st::END_TIME, "2026-07-01T08:00:00.000Z"),
        ];
        assert_eq!(status_of(set("2", backwards)), "6");
        let long = message(st::APPLIES_TO_INTERNAL, "1", &"x".repeat(MAX_REPLY_CHARS + 1), "Text");
        assert_eq!(status_of(set("1", vec![long])), "5");
        let no_audience = Element::new(st::OOF_MESSAGE).text_child(st::ENABLED, "1");
        assert_eq!(status_of(set("1", vec![no_audience])), "2");
        let no_state = Element::new(st::OOF).with_child(Element::new(st::SET));
        assert_eq!(status_of(no_state), "2");
        assert_eq!(status_of(oof_get("RTF")), "2");
        assert_eq!(status_of(Element::new(st::OOF)), "2");
        assert_eq!(host.out_of_office.borrow().clone(), Some(OofSettings::default()));
    }

    #[test]
    fn a_server_without_vacation_replies_denies_both() {
        let host = provisioned_host();
        assert_eq!(settings(&host, oof_get("Text")).text_of(st::STATUS), Some("7"));
        assert_eq!(settings(&host, set("1", vec![])).text_of(st::STATUS), Some("7"));
    }

    #[test]
    fn bodies_convert_both_ways() {
        assert_eq!(html_to_text("<p>Hello <b>you</b></p>"), "Hello you");
        let html = text_to_html("a < b\nc");
        assert!(html.contains("a &lt; b"), "{html}");
    }
}
