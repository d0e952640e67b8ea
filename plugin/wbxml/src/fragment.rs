//! [`EncodedElement`]: an element encoded ahead of time and written into a later document byte
//! for byte. The gateway renders the next page of a Sync on another core while the phone reads
//! the current one (the host's render-ahead); the page that carries those items then costs a
//! copy per item instead of their conversion.
//!
//! The bytes are self-describing: a SWITCH_PAGE to the element's page, then its tokens up to
//! its END, exactly as the encoder writes them with that page current. What page is current
//! after them is worked out when they are checked, so the encoder can go on from there.

use crate::decode::decode;
use crate::encode::write_tree;
use crate::error::{DecodeError, EncodeError};
use crate::limits::Limits;
use crate::mbuint;
use crate::model::{Content, Element};
use crate::scan::find_nul;
use crate::tag::{Tag, page_count};
use crate::token::{
    ATTRIBUTES_FLAG, CONTENT_FLAG, EAS_HEADER, END, OPAQUE, STR_I, SWITCH_PAGE, TOKEN_MASK,
    forbidden_token_name,
};

/// One element's encoding, checked to be exactly one well-formed element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedElement {
    tag: Tag,
    /// SWITCH_PAGE to `tag`'s page, then the element's tokens.
    bytes: Vec<u8>,
    /// The page current after the element's last token.
    page_after: u8,
}

impl EncodedElement {
    /// Encodes `element` now, for a document written later.
    pub fn encode(element: &Element) -> Result<EncodedElement, EncodeError> {
        let mut page = element.tag.page();
        let mut bytes = vec![SWITCH_PAGE, page];
        write_tree(element, &mut page, &mut bytes)?;
        Ok(EncodedElement { tag: element.tag, bytes, page_after: page })
    }

    /// Takes back bytes from [`EncodedElement::as_bytes`], checking that they are one
    /// well-formed element: known tags on known pages, no token EAS does not use, strings
    /// terminated, opaque lengths within the input, every element closed, nothing after the
    /// last END. (Mixed content and nesting limits are the decoder's business, not checked.)
    pub fn from_bytes(bytes: Vec<u8>) -> Result<EncodedElement, DecodeError> {
        let (tag, page_after) = check(&bytes)?;
        Ok(EncodedElement { tag, bytes, page_after })
    }

    /// The element's tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The encoding, to keep or send elsewhere and take back with [`EncodedElement::from_bytes`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The element as a tree again (for tests and XML dumps).
    pub fn decode(&self) -> Result<Element, DecodeError> {
        let document = [&EAS_HEADER[..], &self.bytes].concat();
        decode(&document, &Limits::default()).map(|document| document.root)
    }

    /// Appends the element to a document being written with `page` current.
    pub(crate) fn write(&self, page: &mut u8, out: &mut Vec<u8>) {
        let tokens = match self.tag.page() == *page {
            true => &self.bytes[2..],
            false => &self.bytes[..],
        };
        out.extend_from_slice(tokens);
        *page = self.page_after;
    }
}

impl From<EncodedElement> for Element {
    fn from(encoded: EncodedElement) -> Element {
        Element { tag: encoded.tag, content: Content::Encoded(encoded) }
    }
}

/// The first tag and the page current at the end, when `bytes` are one well-formed element.
fn check(bytes: &[u8]) -> Result<(Tag, u8), DecodeError> {
    let truncated = |offset: usize| DecodeError::Truncated { offset };
    let [SWITCH_PAGE, mut page, ..] = *bytes else {
        return Err(truncated(bytes.len().min(2)));
    };
    known_page(page, 1)?;
    let mut first: Option<Tag> = None;
    let mut depth = 0usize;
    let mut closed = false;
    let mut position = 2;
    while let Some(&byte) = bytes.get(position) {
        if closed {
            return Err(DecodeError::TrailingData { offset: position });
        }
        match byte {
            SWITCH_PAGE => {
                page = *bytes.get(position + 1).ok_or(truncated(position + 1))?;
                known_page(page, position + 1)?;
                position += 2;
            }
            END => {
                depth =
                    depth.checked_sub(1).ok_or(DecodeError::UnbalancedEnd { offset: position })?;
                closed = depth == 0;
                position += 1;
            }
            STR_I | OPAQUE if depth == 0 => {
                return Err(DecodeError::ContentOutsideElement { offset: position });
            }
            STR_I => {
                let text = &bytes[position + 1..];
                position += 1 + find_nul(text).ok_or(truncated(bytes.len()))? + 1;
            }
            OPAQUE => {
                let (len, len_bytes) = mbuint::read(&bytes[position + 1..])
                    .map_err(|_| DecodeError::IntegerOverflow { offset: position + 1 })?;
                let end = (position + 1 + len_bytes)
                    .checked_add(len as usize)
                    .filter(|&end| end <= bytes.len())
                    .ok_or(truncated(bytes.len()))?;
                position = end;
            }
            _ => {
                if let Some(name) = forbidden_token_name(byte) {
                    return Err(DecodeError::ForbiddenToken {
                        token: byte,
                        name,
                        offset: position,
                    });
                }
                if byte & ATTRIBUTES_FLAG != 0 {
                    return Err(DecodeError::AttributesNotSupported { byte, offset: position });
                }
                let token = byte & TOKEN_MASK;
                let tag = Tag::from_token(page, token)
                    .filter(|tag| tag.token() == token && !tag.is_legacy())
                    .ok_or(DecodeError::UnknownTag { page, token, offset: position })?;
                first.get_or_insert(tag);
                if byte & CONTENT_FLAG != 0 {
                    depth += 1;
                } else {
                    closed = depth == 0;
                }
                position += 1;
            }
        }
    }
    match (first, closed) {
        (Some(tag), true) => Ok((tag, page)),
        _ => Err(truncated(bytes.len())),
    }
}

fn known_page(page: u8, offset: usize) -> Result<(), DecodeError> {
    match page < page_count() {
        true => Ok(()),
        false => Err(DecodeError::UnknownPage { page, offset }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode_root;
    use crate::tags::{air_sync, air_sync_base, email, email2};

    fn add(n: u32) -> Element {
        Element::new(air_sync::ADD).text_child(air_sync::SERVER_ID, format!("5:{n}")).with_child(
            Element::with_children(
                air_sync::APPLICATION_DATA,
                vec![
                    Element::with_text(email::SUBJECT, format!("subject {n}")),
                    Element::new(air_sync_base::BODY)
                        .text_child(air_sync_base::TYPE, "1")
                        .text_child(air_sync_base::DATA, "body"),
                    Element::with_opaque(email2::CONVERSATION_ID, vec![0, 1, 2, n as u8]),
                    Element::with_text(email::READ, "1"),
                ],
            ),
        )
    }

    fn page(adds: Vec<Element>) -> Element {
        Element::new(air_sync::SYNC).with_child(Element::with_children(air_sync::COMMANDS, adds))
    }

    #[test]
    fn a_document_with_encoded_elements_is_byte_identical() {
        let plain = page((1..=3).map(add).collect());
        let spliced = page(
            (1..=3)
                .map(|n| {
                    let encoded = EncodedElement::encode(&add(n)).expect("encodes");
                    let taken = EncodedElement::from_bytes(encoded.into_bytes()).expect("checks");
                    Element::from(taken)
                })
                .collect(),
        );
        assert_eq!(encode_root(&spliced).expect("encodes"), encode_root(&plain).expect("encodes"));
    }

    #[test]
    fn the_page_after_an_encoded_element_carries_on() {
        // the fragment ends on page Email2; a following AirSync tag needs its SWITCH_PAGE
        // and a following Email2 tag must not get one
        for next in
            [Element::with_text(air_sync::STATUS, "1"), Element::with_text(email2::SENDER, "x")]
        {
            let encoded = Element::from(EncodedElement::encode(&add(1)).expect("encodes"));
            let plain = Element::with_children(air_sync::COMMANDS, vec![add(1), next.clone()]);
            let spliced = Element::with_children(air_sync::COMMANDS, vec![encoded, next]);
            assert_eq!(
                encode_root(&spliced).expect("spliced"),
                encode_root(&plain).expect("plain")
            );
        }
    }

    #[test]
    fn decodes_back_to_the_tree() {
        let encoded = EncodedElement::encode(&add(7)).expect("encodes");
        assert_eq!(encoded.tag(), air_sync::ADD);
        // the decoder reads a one-child element as text or children as sent
        assert_eq!(encoded.decode().expect("decodes"), add(7));
    }

    #[test]
    fn malformed_encodings_are_refused() {
        let good = EncodedElement::encode(&add(1)).expect("encodes").into_bytes();
        let without_end = good[..good.len() - 1].to_vec();
        let mut trailing = good.clone();
        trailing.push(0x45);
        let mut attributes = good.clone();
        attributes[2] |= ATTRIBUTES_FLAG;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("no page", vec![0x45]),
            ("unknown page", vec![SWITCH_PAGE, 200, 0x45]),
            ("unclosed", without_end),
            ("trailing data", trailing),
            ("attributes", attributes),
            ("unknown tag", vec![SWITCH_PAGE, 0, 0x3F]),
            ("forbidden token", vec![SWITCH_PAGE, 0, 0x47 | CONTENT_FLAG, 0x02, END]),
            ("content outside", vec![SWITCH_PAGE, 0, STR_I, b'a', 0]),
            ("unterminated string", vec![SWITCH_PAGE, 0, 0x4B, STR_I, b'a']),
            ("opaque past the end", vec![SWITCH_PAGE, 0, 0x4B, OPAQUE, 9, b'a', END]),
            ("stray end", vec![SWITCH_PAGE, 0, END]),
        ];
        for (what, bytes) in cases {
            assert!(EncodedElement::from_bytes(bytes).is_err(), "{what}");
        }
        assert!(EncodedElement::from_bytes(good).is_ok());
    }
}
