//! The MIME tree of a message without decoding any part. `MessageParser::parse` transfer- and
//! charset-decodes every part while it walks the message (base64 attachments, quoted-printable
//! and charsets of parts nobody shows), and the engine then decodes the one or two parts it
//! sends a second time: that was ~40 % of the conversion of a Sync page. Here mail-parser's own
//! stream primitives (header parsing, boundary search) are walked the way its `parse_` walks
//! them, minus the decoding, so every part gets mail-parser's offsets and numbering; only the
//! parts a body is made of are decoded later (`ParsedMessage::part_text`).
//!
//! Why the offsets are the same: a leaf part ends where the search for `--boundary` stops, and
//! mail-parser's three body readers (base64, quoted-printable, as is) compute that end the same
//! way as its `seek_part_end`, which it also uses to re-read a part whose decoding failed. What
//! this walk does not follow it declines (`None`; the caller then parses in full): embedded
//! messages that mail-parser parses in place, and input without a complete first header block.
//! The tests compare sections and offsets with a full parse, on fixtures and random MIME.

use mail_parser::parsers::MessageStream;
use mail_parser::{GetHeader, Header, HeaderName, HeaderValue};

use super::limits::MAX_PARTS;

/// One part as mail-parser would number it (index = position in `Message::parts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedPart {
    pub offset_body: usize,
    /// For a leaf: where its body ends. For a multipart: best effort, not used for bodies.
    pub offset_end: usize,
    /// Content-Transfer-Encoding as `MimeHeaders::content_transfer_encoding` gives it.
    pub encoding: Option<String>,
    /// The Content-Type `charset` parameter.
    pub charset: Option<String>,
    /// The parts of a multipart, in order; `None` for a leaf.
    pub children: Option<Vec<usize>>,
}

/// An open multipart: its part index, boundary, and whether it is multipart/digest (whose
/// parts default to message/rfc822).
struct Open {
    index: usize,
    boundary: Vec<u8>,
    is_digest: bool,
}

/// mail-parser's `MessageStream::seek_part_end` with a substring search instead of its loop
/// over every byte (which was the scan's hottest step). As there, a part ends at the first
/// `--boundary` after the stream's position, anywhere in a line, and excludes the line break
/// just before it; the stream is left after the boundary, or at the end when none follows.
fn seek_part_end(
    stream: &mut MessageStream<'_>,
    data: &[u8],
    boundary: Option<&[u8]>,
) -> (usize, bool) {
    let Some(boundary) = boundary else {
        return stream.seek_part_end(None);
    };
    let start = stream.offset();
    let rest = data.get(start..).unwrap_or_default();
    let delimiter = [b"--", boundary].concat();
    let Some(at) = memchr::memmem::find(rest, &delimiter) else {
        stream.seek_end();
        return (data.len(), false);
    };
    let end = match rest[..at] {
        [.., b'\r', b'\n'] => start + at - 2,
        [.., b'\n'] => start + at - 1,
        _ => start + at,
    };
    stream.skip_bytes(at + delimiter.len());
    (end, true)
}

/// What the walk found: the parts, and the top-level header fields as
/// `header_parser().parse_headers` reads them (the walk read them anyway, so they are not
/// parsed twice).
pub struct Scanned<'x> {
    pub parts: Vec<ScannedPart>,
    pub root_headers: Vec<Header<'x>>,
}

/// The parts of `data` in mail-parser's order, or `None` where a full parse is needed.
pub fn scan(data: &[u8]) -> Option<Scanned<'_>> {
    let conf = super::header_parser();
    let mut stream = MessageStream::new(data);
    let mut parts: Vec<ScannedPart> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut headers = Vec::new();
    let mut root_headers = None;
    'outer: loop {
        // The root's fields are kept once its part is recorded.
        if root_headers.is_none() && parts.len() == 1 {
            root_headers = Some(std::mem::take(&mut headers));
        }
        headers.clear();
        if parts.len() > MAX_PARTS || !stream.parse_headers(conf, &mut headers) {
            break;
        }
        let offset_body = stream.offset();
        let index = parts.len();
        if let Some(parent) = open.last() {
            let children = parts.get_mut(parent.index).and_then(|p| p.children.as_mut());
            children?.push(index);
        }
        let content_type =
            headers.header_value(&HeaderName::ContentType).and_then(|v| v.as_content_type());
        let encoding = headers
            .header_value(&HeaderName::ContentTransferEncoding)
            .and_then(|v| v.as_text())
            .map(str::to_owned);
        let charset = content_type.and_then(|ct| ct.attribute("charset")).map(str::to_owned);

        if let Some(ct) = content_type.filter(|ct| ct.ctype() == "multipart") {
            // A multipart whose boundary never appears is read as a text leaf, as mail-parser does.
            if let Some(boundary) = ct.attribute("boundary")
                && stream.seek_next_part(boundary.as_bytes())
            {
                parts.push(ScannedPart {
                    offset_body,
                    offset_end: 0,
                    encoding,
                    charset,
                    children: Some(Vec::new()),
                });
                open.push(Open {
                    index,
                    boundary: boundary.as_bytes().to_vec(),
                    is_digest: ct.subtype() == Some("digest"),
                });
                stream.skip_crlf();
                continue;
            }
        } else {
            let is_message = match content_type {
                Some(ct) => {
                    ct.ctype() == "message" && matches!(ct.subtype(), Some("rfc822" | "global"))
                }
                None => open.last().is_some_and(|o| o.is_digest),
            };
            let is_encoded = matches!(
                headers.header_value(&HeaderName::ContentTransferEncoding),
                Some(HeaderValue::Text(e))
                    if e.eq_ignore_ascii_case("base64") || e.eq_ignore_ascii_case("quoted-printable")
            );
            // mail-parser parses an unencoded embedded message in place, with its own rules.
            if is_message && !is_encoded {
                return None;
            }
        }

        let boundary = open.last().map(|o| o.boundary.as_slice());
        let (offset_end, found) = seek_part_end(&mut stream, data, boundary);
        parts.push(ScannedPart { offset_body, offset_end, encoding, charset, children: None });
        // Without a boundary (a single-part message, or one that never closes) the part ran
        // to the end of the data: nothing follows.
        if boundary.is_none() || !found {
            break;
        }
        // The boundary after a part: another part follows, or its multipart ends and the
        // search goes on for the enclosing multipart's next boundary.
        while stream.is_multipart_end() {
            let closed = open.pop()?;
            let parent_boundary = open.last().map(|o| o.boundary.as_slice());
            let next = parent_boundary.and_then(|b| stream.seek_next_part_offset(b));
            let closed_part = parts.get_mut(closed.index)?;
            match next {
                Some(offset) => closed_part.offset_end = offset,
                None => {
                    closed_part.offset_end = stream.offset();
                    break 'outer;
                }
            }
        }
    }
    if parts.is_empty() {
        return None;
    }
    let root_headers = match root_headers {
        Some(root_headers) => root_headers,
        // a single part: the last fields read are the root's
        None => std::mem::take(&mut headers),
    };
    // As mail-parser: parts still open at the end run to the end of the data.
    let end = stream.offset();
    for still_open in &open {
        if let Some(part) = parts.get_mut(still_open.index) {
            part.offset_end = end;
        }
    }
    if let Some(root) = parts.first_mut() {
        root.offset_end = data.len();
    }
    Some(Scanned { parts, root_headers })
}
