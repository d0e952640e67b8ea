//! [`Document`] → WBXML bytes, exactly as EAS-NOTES §2.1–§2.2 describe: header `03 01 6A 00`,
//! a SWITCH_PAGE only when the next tag's page differs from the current one (END does not
//! restore the page), the content bit only on elements with content, STR_I for text and OPAQUE
//! for byte arrays.

use crate::error::EncodeError;
use crate::mbuint;
use crate::model::{Content, Document, Element};
use crate::scan::find_nul;
use crate::token::{self, CONTENT_FLAG};

/// Encodes `document` into a new buffer.
pub fn encode(document: &Document) -> Result<Vec<u8>, EncodeError> {
    encode_root(&document.root)
}

/// Encodes the document whose root is `root`, borrowed: a caller that still needs the tree
/// (a Sync answer is stored encoded and then sent) need not copy it into a [`Document`].
pub fn encode_root(root: &Element) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    write_document(root, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `document` to `out` (reuse one buffer across responses to avoid
/// reallocations). On error `out` is left as it was.
pub fn encode_into(document: &Document, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write_document(&document.root, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_document(root: &Element, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.reserve(encoded_len_hint(root));
    out.extend_from_slice(&token::EAS_HEADER);
    write_tree(root, &mut 0, out)
}

/// Writes `root` and everything in it with `page` current, and leaves `page` as the page
/// current after its last token.
pub(crate) fn write_tree(
    root: &Element,
    page: &mut u8,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    // Iterators over the children of the open containers: an explicit stack, no recursion.
    let mut open: Vec<std::slice::Iter<'_, Element>> = Vec::with_capacity(16);
    if let Some(children) = write_start(root, page, out)? {
        open.push(children.iter());
    }
    while let Some(siblings) = open.last_mut() {
        match siblings.next() {
            Some(element) => {
                if let Some(children) = write_start(element, page, out)? {
                    open.push(children.iter());
                }
            }
            None => {
                open.pop();
                out.push(token::END);
            }
        }
    }
    Ok(())
}

/// Writes an element; for a non-empty container only its tag is written and its children are
/// returned (the caller writes them and the END).
fn write_start<'a>(
    element: &'a Element,
    page: &mut u8,
    out: &mut Vec<u8>,
) -> Result<Option<&'a [Element]>, EncodeError> {
    let tag = element.tag;
    if tag.is_legacy() {
        return Err(EncodeError::LegacyTag { tag });
    }
    if tag.page() != *page {
        *page = tag.page();
        out.extend_from_slice(&[token::SWITCH_PAGE, tag.page()]);
    }
    match &element.content {
        Content::Empty => out.push(tag.token()),
        Content::Children(children) if children.is_empty() => out.push(tag.token()),
        Content::Children(children) => {
            out.push(tag.token() | CONTENT_FLAG);
            return Ok(Some(children));
        }
        Content::Text(text) => {
            if let Some(position) = find_nul(text) {
                return Err(EncodeError::NulInText { tag, position });
            }
            out.push(tag.token() | CONTENT_FLAG);
            out.push(token::STR_I);
            out.extend_from_slice(text);
            out.extend_from_slice(&[0x00, token::END]);
        }
        Content::Opaque(bytes) => {
            let len = u32::try_from(bytes.len())
                .map_err(|_| EncodeError::OpaqueTooLong { tag, len: bytes.len() })?;
            out.extend_from_slice(&[tag.token() | CONTENT_FLAG, token::OPAQUE]);
            mbuint::write(len, out);
            out.extend_from_slice(bytes);
            out.push(token::END);
        }
        // (its own SWITCH_PAGE is left out: the page is its tag's now)
        Content::Encoded(encoded) => encoded.write(page, out),
    }
    Ok(None)
}

/// An upper-bound-ish size estimate (leaf payloads plus a few bytes per element), one walk over
/// the tree, so the output buffer is allocated once instead of doubling through large bodies.
fn encoded_len_hint(root: &Element) -> usize {
    let mut total = 16;
    let mut pending: Vec<&Element> = vec![root];
    while let Some(element) = pending.pop() {
        total += 4;
        match &element.content {
            Content::Text(bytes) | Content::Opaque(bytes) => total += bytes.len() + 6,
            Content::Encoded(encoded) => total += encoded.as_bytes().len(),
            Content::Children(children) => pending.extend(children.iter()),
            Content::Empty => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::{air_sync, compose_mail, email, legacy};

    fn header_and(bytes: &[u8]) -> Vec<u8> {
        [&token::EAS_HEADER[..], bytes].concat()
    }

    #[test]
    fn switch_page_only_when_the_page_changes_and_end_does_not_restore_it() {
        let document = Document::new(
            Element::new(air_sync::SYNC)
                .with_child(
                    Element::new(air_sync::APPLICATION_DATA)
                        .text_child(email::SUBJECT, "s")
                        .text_child(email::READ, "1"),
                )
                .text_child(air_sync::SERVER_ID, "1"),
        );
        let expected = header_and(&[
            0x45, 0x5D, 0x00, 0x02, 0x54, 0x03, b's', 0x00, 0x01, 0x55, 0x03, b'1', 0x00, 0x01,
            0x01, 0x00, 0x00, 0x4D, 0x03, b'1', 0x00, 0x01, 0x01,
        ]);
        assert_eq!(encode(&document), Ok(expected));
    }

    #[test]
    fn content_bit_only_with_content() {
        let document = Document::new(
            Element::new(air_sync::SYNC)
                .empty_child(air_sync::GET_CHANGES)
                .with_child(Element::with_children(air_sync::COMMANDS, Vec::new()))
                .text_child(air_sync::SYNC_KEY, ""),
        );
        assert_eq!(
            encode(&document),
            Ok(header_and(&[0x45, 0x13, 0x16, 0x4B, 0x03, 0x00, 0x01, 0x01]))
        );
        assert_eq!(encode(&Document::new(Element::new(air_sync::SYNC))), Ok(header_and(&[0x05])));
    }

    #[test]
    fn opaque_uses_a_multibyte_length() {
        let document = Document::new(Element::with_opaque(compose_mail::MIME, vec![0x00; 300]));
        let bytes = encode(&document).expect("encodes");
        assert_eq!(&bytes[4..10], &[0x00, 0x15, 0x50, 0xC3, 0x82, 0x2C]);
        assert_eq!(bytes.len(), 4 + 6 + 300 + 1);
    }

    #[test]
    fn refuses_legacy_tags_and_nul_in_text() {
        let document =
            Document::new(Element::new(air_sync::SYNC).empty_child(legacy::air_sync::VERSION));
        assert_eq!(
            encode(&document),
            Err(EncodeError::LegacyTag { tag: legacy::air_sync::VERSION })
        );
        let document = Document::new(Element::with_text(air_sync::SYNC_KEY, b"a\0b".to_vec()));
        assert_eq!(
            encode(&document),
            Err(EncodeError::NulInText { tag: air_sync::SYNC_KEY, position: 1 })
        );
    }

    #[test]
    fn a_borrowed_root_encodes_as_its_document() {
        let root = Element::new(air_sync::COLLECTION)
            .text_child(air_sync::SYNC_KEY, "2")
            .with_child(Element::new(air_sync::COMMANDS).text_child(email::SUBJECT, "s"));
        let document = Document::new(root.clone());
        assert_eq!(encode_root(&root), encode(&document));
        let bad = Element::new(air_sync::SYNC).empty_child(legacy::air_sync::VERSION);
        assert_eq!(
            encode_root(&bad),
            Err(EncodeError::LegacyTag { tag: legacy::air_sync::VERSION })
        );
    }

    #[test]
    fn encode_into_appends_and_restores_on_error() {
        let mut out = b"prefix".to_vec();
        encode_into(&Document::new(Element::new(air_sync::SYNC)), &mut out).expect("encodes");
        assert_eq!(out, [&b"prefix"[..], &token::EAS_HEADER, &[0x05]].concat());
        let bad =
            Document::new(Element::new(air_sync::SYNC).empty_child(legacy::air_sync::VERSION));
        assert!(encode_into(&bad, &mut out).is_err());
        assert_eq!(out, [&b"prefix"[..], &token::EAS_HEADER, &[0x05]].concat());
    }

    #[test]
    fn deep_documents_do_not_recurse() {
        let mut element = Element::new(air_sync::SYNC);
        for _ in 0..10_000 {
            element = Element::new(air_sync::SYNC).with_child(element);
        }
        let document = Document::new(element);
        let bytes = encode(&document).expect("encodes");
        assert_eq!(bytes.len(), 4 + 10_000 * 2 + 1);
        // Dropping a tree this deep recurses; leak-free iterative teardown for the test.
        let mut pending = vec![document.root];
        while let Some(mut element) = pending.pop() {
            pending.append(element.child_elements_mut());
        }
    }
}
