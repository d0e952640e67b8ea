//! [`Document`] → indented XML text (convention in `xml/mod.rs`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{BASE64_ATTRIBUTE, BASE64_OPAQUE, BASE64_TEXT};
use crate::model::{Content, Document, Element};
use crate::tag::{page_count, page_namespace, page_prefix};

/// Renders `document` as XML (with an XML declaration, two-space indentation, newline at the end).
pub fn to_xml(document: &Document) -> String {
    let expanded;
    let document = match document.root.holds_encoded() {
        true => {
            expanded = Document::new(document.root.expand_encoded());
            &expanded
        }
        false => document,
    };
    let root_page = document.root.tag.page();
    let (used, payload_bytes, element_count) = survey(&document.root);
    // Leaf payloads (base64 grows them by a third) plus tags and indentation per element.
    let mut out =
        String::with_capacity(payload_bytes + payload_bytes / 3 + element_count * 48 + 256);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");

    // Root start tag with every namespace declaration.
    out.push('<');
    out.push_str(document.root.tag.name());
    push_attribute(&mut out, "xmlns", page_namespace(root_page).unwrap_or_default());
    for page in (0..page_count()).filter(|&page| page != root_page && used & (1 << page) != 0) {
        push_attribute(
            &mut out,
            &format!("xmlns:{}", page_prefix(page)),
            page_namespace(page).unwrap_or_default(),
        );
    }
    let mut open: Vec<(&Element, std::slice::Iter<'_, Element>)> = Vec::new();
    if let Some(children) = finish_start_tag(&document.root, root_page, &mut out) {
        open.push((&document.root, children.iter()));
    }

    while let Some((parent, siblings)) = open.last_mut() {
        match siblings.next() {
            Some(element) => {
                indent(&mut out, open.len());
                out.push('<');
                push_name(&mut out, element, root_page);
                if let Some(children) = finish_start_tag(element, root_page, &mut out) {
                    open.push((element, children.iter()));
                }
            }
            None => {
                let parent = *parent;
                open.pop();
                indent(&mut out, open.len());
                out.push_str("</");
                push_name(&mut out, parent, root_page);
                out.push('>');
            }
        }
    }
    out.push('\n');
    out
}

/// The code pages used in the tree (a bit set: 26 pages fit a u32), the total leaf payload in
/// bytes and the number of elements.
fn survey(root: &Element) -> (u32, usize, usize) {
    let (mut used, mut payload, mut count) = (0u32, 0usize, 0usize);
    let mut pending = vec![root];
    while let Some(element) = pending.pop() {
        used |= 1 << element.tag.page();
        count += 1;
        match &element.content {
            Content::Text(bytes) | Content::Opaque(bytes) => payload += bytes.len(),
            Content::Children(children) => pending.extend(children),
            Content::Empty | Content::Encoded(_) => {}
        }
    }
    (used, payload, count)
}

fn indent(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn push_name(out: &mut String, element: &Element, root_page: u8) {
    if element.tag.page() != root_page {
        out.push_str(page_prefix(element.tag.page()));
        out.push(':');
    }
    out.push_str(element.tag.name());
}

fn push_attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    out.push_str(value);
    out.push('"');
}

/// Completes the start tag after its name; writes leaf content and the end tag. Returns the
/// children of a non-empty container, whose end tag the caller writes.
fn finish_start_tag<'a>(
    element: &'a Element,
    root_page: u8,
    out: &mut String,
) -> Option<&'a [Element]> {
    match &element.content {
        // (expanded before rendering; an undecodable one shows as empty)
        Content::Empty | Content::Encoded(_) => {
            out.push_str("/>");
            return None;
        }
        Content::Children(children) if children.is_empty() => {
            out.push_str("/>");
            return None;
        }
        Content::Children(children) => {
            out.push('>');
            return Some(children);
        }
        Content::Opaque(bytes) => push_base64(out, BASE64_OPAQUE, bytes),
        Content::Text(bytes) => {
            out.push('>');
            if !push_escaped_text(out, bytes) {
                out.pop();
                push_base64(out, BASE64_TEXT, bytes);
            }
        }
    }
    out.push_str("</");
    push_name(out, element, root_page);
    out.push('>');
    None
}

fn push_base64(out: &mut String, marker: &str, bytes: &[u8]) {
    push_attribute(out, BASE64_ATTRIBUTE, marker);
    out.push('>');
    STANDARD.encode_string(bytes, out);
}

/// How `push_escaped_text` treats each byte value.
const PLAIN: u8 = 0;
const ESCAPE: u8 = 1;
const FORBIDDEN: u8 = 2;
/// 0xEF starts U+FFFE (EF BF BE) and U+FFFF (EF BF BF), the only UTF-8 characters XML forbids.
const CHECK_FFFE: u8 = 3;
const BYTE_CLASS: [u8; 256] = {
    let mut classes = [PLAIN; 256];
    let mut byte = 0;
    while byte < 0x20 {
        classes[byte] = FORBIDDEN;
        byte += 1;
    }
    classes[b'\t' as usize] = PLAIN;
    classes[b'\n' as usize] = PLAIN;
    classes[b'\r' as usize] = ESCAPE;
    classes[b'<' as usize] = ESCAPE;
    classes[b'>' as usize] = ESCAPE;
    classes[b'&' as usize] = ESCAPE;
    classes[0xEF] = CHECK_FFFE;
    classes
};

/// Appends `bytes` as escaped XML text (`<`, `>`, `&`, and CR as `&#13;` so that XML
/// end-of-line normalisation cannot turn CR LF into LF) in one pass. Returns false, having
/// appended nothing, if XML 1.0 cannot carry the text: invalid UTF-8, an ASCII control other
/// than tab/LF/CR, or U+FFFE/U+FFFF.
fn push_escaped_text(out: &mut String, bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    let start = out.len();
    let mut copied = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let replacement = match BYTE_CLASS[usize::from(byte)] {
            PLAIN => continue,
            ESCAPE => match byte {
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'&' => "&amp;",
                _ => "&#13;",
            },
            CHECK_FFFE
                if bytes.get(index + 1) != Some(&0xBF) || bytes.get(index + 2) < Some(&0xBE) =>
            {
                continue;
            }
            _ => {
                out.truncate(start);
                return false;
            }
        };
        // The escaped bytes are ASCII, so both slice ends are character boundaries.
        out.push_str(&text[copied..index]);
        out.push_str(replacement);
        copied = index + 1;
    }
    out.push_str(&text[copied..]);
    true
}
