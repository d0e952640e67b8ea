//! Rendering the next page of a Sync ahead of the request that sends it.
//!
//! With its prefetch hint a Sync page hands the host a [render request](request): what turns a
//! message summary into its Add (collection, protocol version, Options). The host fetches the
//! next page and has the plugin render it ([`render`], in an instance of its own, on another
//! core) while this page is sent and the phone reads it. The next request then gets those Adds
//! with its summaries ([`MessageSummary::rendered`]), ready to splice into its page.
//!
//! An Add rendered ahead is byte for byte the one the request would render: the same code,
//! from the same summary (what never changes for a UID), the same Options. The host hands it
//! over only to a request of the same loaded plugin that names the same render request, and
//! only if the message's flags are still the ones it was rendered with. A message whose body
//! would need a whole-message fetch is left to the request (which decides within its budgets).

use super::items::add_from_summary;
use super::limits::MAX_SYNC_BODY_BYTES;
use super::options::CollectionOptions;
use crate::ashttp::ProtocolVersion;
use crate::email::{BodyType, MessageSummary};
use eas_wbxml::tags::air_sync;
use eas_wbxml::{Element, EncodedElement};
use serde::{Deserialize, Serialize};

/// Bumped when what a render request means changes: a host holding renderings for an older
/// meaning then never matches them.
const FORMAT: u8 = 1;

/// Pages are rendered ahead only when every body the phone asks for is text or HTML truncated
/// to at most this many bytes (previews, what a message list shows). Measured
/// (docs/benchmarks.md, "Eleventh pass"): such pages gain; pages of whole HTML bodies lose,
/// because a second instance's memory then has megabytes of conversions to fault in and zero.
const MAX_BODY_BYTES: u32 = 4 * 1024;

/// What rendering a collection's Add depends on besides the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RenderRequest {
    format: u8,
    version: String,
    collection_id: String,
    options: CollectionOptions,
}

/// The render request for Adds of `collection_id` under `options`, as bytes for the host;
/// `None` when the bodies asked for are too big to be worth rendering ahead.
pub fn request(
    collection_id: &str,
    version: ProtocolVersion,
    options: &CollectionOptions,
) -> Option<Vec<u8>> {
    let small_bodies = options.preferences(Some(MAX_SYNC_BODY_BYTES)).iter().all(|preference| {
        preference.body_type != BodyType::Mime
            && preference.truncation_size.is_some_and(|size| size <= MAX_BODY_BYTES)
    });
    if !small_bodies {
        return None;
    }
    let request = RenderRequest {
        format: FORMAT,
        version: version.as_str().to_owned(),
        collection_id: collection_id.to_owned(),
        options: options.clone(),
    };
    postcard::to_allocvec(&request).ok()
}

/// Renders the Add of each summary for `request` (from [`request`]), encoded; `None` for a
/// message the request must render itself, and for all of them if `request` is not one.
pub fn render(request: &[u8], summaries: &[MessageSummary]) -> Vec<Option<Vec<u8>>> {
    let Some((request, version)) = parse(request) else {
        return vec![None; summaries.len()];
    };
    let preferences = request.options.preferences(Some(MAX_SYNC_BODY_BYTES));
    let mime_support = request.options.mime_support();
    summaries
        .iter()
        .map(|summary| {
            let (element, needs_full_fetch) = add_from_summary(
                summary,
                &request.collection_id,
                version,
                &preferences,
                mime_support,
            );
            if needs_full_fetch {
                return None;
            }
            EncodedElement::encode(&element).ok().map(EncodedElement::into_bytes)
        })
        .collect()
}

/// A render request of this format, with its protocol version.
fn parse(request: &[u8]) -> Option<(RenderRequest, ProtocolVersion)> {
    let request = postcard::from_bytes::<RenderRequest>(request).ok()?;
    let version = ProtocolVersion::parse(&request.version).ok()?;
    (request.format == FORMAT).then_some((request, version))
}

/// What a summary carried as rendered ahead is not an encoded Add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NotAnAdd;

/// The Add rendered ahead for `summary`, taken out of it; [`NotAnAdd`] when it carries bytes
/// that are not one (the request then fetches the message again without them).
pub(super) fn take(summary: &mut MessageSummary) -> Result<Option<Element>, NotAnAdd> {
    let Some(bytes) = summary.rendered.take() else { return Ok(None) };
    match EncodedElement::from_bytes(bytes) {
        Ok(encoded) if encoded.tag() == air_sync::ADD => Ok(Some(Element::from(encoded))),
        _ => Err(NotAnAdd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::BodyPart;

    fn options(body_type: u8, truncation_size: Option<u32>) -> CollectionOptions {
        CollectionOptions {
            body_preferences: vec![super::super::options::StoredPreference {
                body_type,
                truncation_size,
                all_or_none: false,
                preview: None,
            }],
            ..CollectionOptions::default()
        }
    }

    fn summary(uid: u32, raw: &[u8], size: u32) -> MessageSummary {
        MessageSummary {
            uid,
            flags: vec!["\\Seen".into()],
            internal_date: 1_700_000_000,
            size,
            body_structure: Vec::<BodyPart>::new(),
            prefix: raw.to_vec(),
            rendered: None,
        }
    }

    const MESSAGE: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\
        Message-ID: <1@example.org>\r\nContent-Type: text/plain\r\n\r\nHello there.\r\n";

    #[test]
    fn an_add_rendered_ahead_is_the_one_the_request_renders() {
        let options = options(2, Some(2_048));
        let request = request("5", ProtocolVersion::V16_1, &options).expect("small bodies");
        let summaries = [summary(7, MESSAGE, MESSAGE.len() as u32)];
        let rendered = render(&request, &summaries);
        let mut carried = summaries[0].clone();
        carried.rendered = rendered[0].clone();
        let element = take(&mut carried).expect("an Add").expect("rendered");
        let preferences = options.preferences(Some(MAX_SYNC_BODY_BYTES));
        let (now, _) = add_from_summary(
            &summaries[0],
            "5",
            ProtocolVersion::V16_1,
            &preferences,
            options.mime_support(),
        );
        let encode = |element: Element| eas_wbxml::encode_root(&element).expect("encodes");
        assert_eq!(encode(element), encode(now));
    }

    #[test]
    fn a_body_that_needs_the_whole_message_is_left_to_the_request() {
        // a 2 MB message of which only the start came: its HTML body is not all there
        let request = request("5", ProtocolVersion::V16_1, &options(2, Some(4_096)));
        let rendered = render(&request.expect("small bodies"), &[summary(7, MESSAGE, 2_000_000)]);
        assert_eq!(rendered, [None]);
    }

    #[test]
    fn pages_of_whole_or_big_bodies_are_not_rendered_ahead() {
        let request = |body_type, truncation| {
            request("5", ProtocolVersion::V16_1, &options(body_type, truncation))
        };
        assert!(request(1, Some(255)).is_some());
        assert!(request(2, Some(MAX_BODY_BYTES)).is_some());
        assert!(request(2, Some(MAX_BODY_BYTES + 1)).is_none());
        assert!(request(2, None).is_none(), "whole HTML bodies");
        assert!(request(4, Some(1_000)).is_none(), "MIME");
    }

    #[test]
    fn an_unknown_request_renders_nothing() {
        let summaries = [summary(7, MESSAGE, MESSAGE.len() as u32)];
        assert_eq!(render(b"", &summaries), [None]);
        let mut newer =
            request("5", ProtocolVersion::V16_1, &options(1, Some(255))).expect("small bodies");
        newer[0] = FORMAT + 1;
        assert_eq!(render(&newer, &summaries), [None]);
    }

    #[test]
    fn bytes_that_are_not_an_add_are_refused() {
        let mut carried = summary(7, b"", 0);
        carried.rendered = Some(vec![0, 0, 0x4B, 0x03, b'a']);
        assert!(take(&mut carried).is_err());
        let status = Element::with_text(air_sync::STATUS, "1");
        carried.rendered = Some(EncodedElement::encode(&status).expect("encodes").into_bytes());
        assert!(take(&mut carried).is_err(), "an encoded element, but not an Add");
        assert_eq!(take(&mut carried), Ok(None), "taken out either way");
    }
}
