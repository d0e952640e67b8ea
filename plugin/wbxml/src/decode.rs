//! WBXML → [`Document`].
//!
//! Tolerant in the header (EAS-NOTES §2.1), strict in the body: only SWITCH_PAGE, END, STR_I,
//! OPAQUE and tags without attributes are accepted, every other token is a typed error carrying
//! its byte offset. The tree is built with an explicit stack, so hostile nesting cannot exhaust
//! the call stack, and every allocation is bounded by the input and the caller's [`Limits`].

use crate::error::DecodeError;
use crate::mbuint::{self, MbUintError};
use crate::model::{Content, Document, Element};
use crate::scan::find_nul;
use crate::token::{self, ATTRIBUTES_FLAG, CONTENT_FLAG, TOKEN_MASK};
use crate::{Limits, Tag};

/// Decodes one WBXML document.
pub fn decode(input: &[u8], limits: &Limits) -> Result<Document, DecodeError> {
    if input.len() > limits.max_total_size {
        return Err(DecodeError::InputTooLarge { size: input.len(), limit: limits.max_total_size });
    }
    let mut decoder = Decoder { input, position: 0, limits };
    decoder.header()?;
    decoder.body()
}

/// An element whose END has not been seen yet.
struct OpenElement {
    tag: Tag,
    /// Where its finished children start in `Decoder::body`'s `finished` list.
    first_child: usize,
    /// STR_I/OPAQUE pieces seen so far.
    leaf: Leaf,
}

enum Leaf {
    None,
    Text(Vec<u8>),
    Opaque(Vec<u8>),
}

struct Decoder<'a> {
    input: &'a [u8],
    position: usize,
    limits: &'a Limits,
}

impl<'a> Decoder<'a> {
    fn truncated(&self) -> DecodeError {
        DecodeError::Truncated { offset: self.input.len() }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.input.get(self.position).ok_or_else(|| self.truncated())?;
        self.position += 1;
        Ok(byte)
    }

    fn mb_u_int32(&mut self) -> Result<u32, DecodeError> {
        let offset = self.position;
        let rest = self.input.get(offset..).unwrap_or_default();
        match mbuint::read(rest) {
            Ok((value, used)) => {
                self.position += used;
                Ok(value)
            }
            Err(MbUintError::Truncated) => Err(self.truncated()),
            Err(MbUintError::Overflow) => Err(DecodeError::IntegerOverflow { offset }),
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.position.checked_add(len).ok_or_else(|| self.truncated())?;
        let bytes = self.input.get(self.position..end).ok_or_else(|| self.truncated())?;
        self.position = end;
        Ok(bytes)
    }

    /// version, publicid (0 is followed by a string-table index), charset, string table.
    fn header(&mut self) -> Result<(), DecodeError> {
        let version = self.byte()?;
        if !(0x01..=0x03).contains(&version) {
            return Err(DecodeError::UnsupportedVersion { version, offset: 0 });
        }
        if self.mb_u_int32()? == 0 {
            // The public id is a string in the string table; EAS does not care which.
            self.mb_u_int32()?;
        }
        let charset_offset = self.position;
        let charset = self.mb_u_int32()?;
        if charset != token::CHARSET_UTF8 {
            return Err(DecodeError::UnsupportedCharset {
                mib_enum: charset,
                offset: charset_offset,
            });
        }
        // STR_T is refused in the body, so the table's contents are never needed.
        let table_len = self.mb_u_int32()?;
        self.take(usize::try_from(table_len).map_err(|_| self.truncated())?)?;
        Ok(())
    }

    fn body(&mut self) -> Result<Document, DecodeError> {
        let limits = self.limits;
        let mut page: u8 = 0;
        let mut open: Vec<OpenElement> = Vec::with_capacity(16);
        // Finished elements waiting for their parent's END, in document order. A parent takes
        // its children in one exact-size move, instead of every container growing its own Vec.
        let mut finished: Vec<Element> = Vec::with_capacity(64);
        let mut element_count: usize = 0;

        let root = loop {
            let offset = self.position;
            let byte = self.byte()?;
            match byte {
                token::SWITCH_PAGE => {
                    let new_page = self.byte()?;
                    if new_page >= crate::tag::page_count() {
                        return Err(DecodeError::UnknownPage { page: new_page, offset });
                    }
                    page = new_page;
                }
                token::END => {
                    let element = open.pop().ok_or(DecodeError::UnbalancedEnd { offset })?;
                    let content = match element.leaf {
                        Leaf::Text(bytes) => Content::Text(bytes),
                        Leaf::Opaque(bytes) => Content::Opaque(bytes),
                        Leaf::None if finished.len() > element.first_child => {
                            Content::Children(finished.drain(element.first_child..).collect())
                        }
                        Leaf::None => Content::Empty,
                    };
                    let element = Element { tag: element.tag, content };
                    if open.is_empty() {
                        break element;
                    }
                    finished.push(element);
                }
                token::STR_I => {
                    let element =
                        open.last_mut().ok_or(DecodeError::ContentOutsideElement { offset })?;
                    let rest = self.input.get(self.position..).unwrap_or_default();
                    let len = find_nul(rest)
                        .ok_or(DecodeError::Truncated { offset: self.input.len() })?;
                    let piece = self.take(len)?;
                    self.position += 1; // the NUL terminator, found above
                    add_piece(element, &finished, piece, false, offset, limits)?;
                }
                token::OPAQUE => {
                    let element =
                        open.last_mut().ok_or(DecodeError::ContentOutsideElement { offset })?;
                    let len = self.mb_u_int32()?;
                    let len = usize::try_from(len).map_err(|_| DecodeError::OpaqueTooLong {
                        limit: limits.max_opaque_len,
                        offset,
                    })?;
                    if len > limits.max_opaque_len {
                        return Err(DecodeError::OpaqueTooLong {
                            limit: limits.max_opaque_len,
                            offset,
                        });
                    }
                    let end = self.position.checked_add(len).filter(|&end| end <= self.input.len());
                    let end = end.ok_or(DecodeError::Truncated { offset: self.input.len() })?;
                    let piece = &self.input[self.position..end];
                    self.position = end;
                    add_piece(element, &finished, piece, true, offset, limits)?;
                }
                tag_byte => {
                    if let Some(name) = token::forbidden_token_name(tag_byte) {
                        return Err(DecodeError::ForbiddenToken { token: tag_byte, name, offset });
                    }
                    if tag_byte & ATTRIBUTES_FLAG != 0 {
                        return Err(DecodeError::AttributesNotSupported { byte: tag_byte, offset });
                    }
                    let token = tag_byte & TOKEN_MASK;
                    let tag = Tag::from_token(page, token).ok_or(DecodeError::UnknownTag {
                        page,
                        token,
                        offset,
                    })?;
                    if let Some(parent) = open.last()
                        && !matches!(parent.leaf, Leaf::None)
                    {
                        return Err(DecodeError::MixedContent { tag: parent.tag, offset });
                    }
                    element_count += 1;
                    if element_count > limits.max_elements {
                        return Err(DecodeError::TooManyElements {
                            limit: limits.max_elements,
                            offset,
                        });
                    }
                    if open.len() >= limits.max_depth {
                        return Err(DecodeError::TooDeep { limit: limits.max_depth, offset });
                    }
                    if tag_byte & CONTENT_FLAG != 0 {
                        open.push(OpenElement {
                            tag,
                            first_child: finished.len(),
                            leaf: Leaf::None,
                        });
                    } else if open.is_empty() {
                        break Element::new(tag);
                    } else {
                        finished.push(Element::new(tag));
                    }
                }
            }
        };
        if self.position < self.input.len() {
            return Err(DecodeError::TrailingData { offset: self.position });
        }
        Ok(Document { root })
    }
}

/// Appends a STR_I (`opaque == false`) or OPAQUE piece to the open element's content.
fn add_piece(
    element: &mut OpenElement,
    finished: &[Element],
    piece: &[u8],
    opaque: bool,
    offset: usize,
    limits: &Limits,
) -> Result<(), DecodeError> {
    if finished.len() > element.first_child {
        return Err(DecodeError::MixedContent { tag: element.tag, offset });
    }
    let limit = if opaque { limits.max_opaque_len } else { limits.max_string_len };
    let so_far = match &element.leaf {
        Leaf::None => 0,
        Leaf::Text(bytes) | Leaf::Opaque(bytes) => bytes.len(),
    };
    if so_far.saturating_add(piece.len()) > limit {
        return Err(if opaque {
            DecodeError::OpaqueTooLong { limit, offset }
        } else {
            DecodeError::StringTooLong { limit, offset }
        });
    }
    element.leaf = match std::mem::replace(&mut element.leaf, Leaf::None) {
        Leaf::None if opaque => Leaf::Opaque(piece.to_vec()),
        Leaf::None => Leaf::Text(piece.to_vec()),
        // Any OPAQUE piece makes the whole content opaque (it may not be text).
        Leaf::Text(mut bytes) | Leaf::Opaque(mut bytes) if opaque => {
            bytes.extend_from_slice(piece);
            Leaf::Opaque(bytes)
        }
        Leaf::Text(mut bytes) => {
            bytes.extend_from_slice(piece);
            Leaf::Text(bytes)
        }
        Leaf::Opaque(mut bytes) => {
            bytes.extend_from_slice(piece);
            Leaf::Opaque(bytes)
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::{air_sync, compose_mail, email, find, legacy};

    const HEADER: [u8; 4] = [0x03, 0x01, 0x6A, 0x00];

    fn body(bytes: &[u8]) -> Vec<u8> {
        [&HEADER[..], bytes].concat()
    }

    fn decoded(bytes: &[u8]) -> Result<Document, DecodeError> {
        decode(bytes, &Limits::default())
    }

    /// `<Sync><SyncKey>0</SyncKey></Sync>` after any header.
    const SYNC_KEY_BODY: [u8; 7] = [0x45, 0x4B, 0x03, b'0', 0x00, 0x01, 0x01];

    fn sync_key_document() -> Document {
        Document::new(Element::new(air_sync::SYNC).text_child(air_sync::SYNC_KEY, "0"))
    }

    #[test]
    fn accepts_versions_one_to_three() {
        for version in 1..=3 {
            let input = [&[version, 0x01, 0x6A, 0x00][..], &SYNC_KEY_BODY].concat();
            assert_eq!(decoded(&input), Ok(sync_key_document()));
        }
        for version in [0x00, 0x04, 0x13] {
            let input = [&[version, 0x01, 0x6A, 0x00][..], &SYNC_KEY_BODY].concat();
            assert_eq!(
                decoded(&input),
                Err(DecodeError::UnsupportedVersion { version, offset: 0 })
            );
        }
    }

    #[test]
    fn accepts_public_id_zero_with_string_table_index_and_skips_the_table() {
        // libwbxml's default: public id 0, index 0 into a string table holding the DTD name.
        let dtd = b"-//MICROSOFT//DTD ActiveSync//EN\0";
        let mut input = vec![0x03, 0x00, 0x00, 0x6A, dtd.len() as u8];
        input.extend_from_slice(dtd);
        input.extend_from_slice(&SYNC_KEY_BODY);
        assert_eq!(decoded(&input), Ok(sync_key_document()));
    }

    #[test]
    fn accepts_a_long_string_table_length() {
        let mut input = vec![0x03, 0x01, 0x6A, 0x81, 0x00];
        input.extend_from_slice(&[b'x'; 128]);
        input.extend_from_slice(&SYNC_KEY_BODY);
        assert_eq!(decoded(&input), Ok(sync_key_document()));
    }

    #[test]
    fn rejects_charsets_other_than_utf8() {
        let input = [&[0x03, 0x01, 0x04, 0x00][..], &SYNC_KEY_BODY].concat();
        assert_eq!(
            decoded(&input),
            Err(DecodeError::UnsupportedCharset { mib_enum: 4, offset: 2 })
        );
        let input = [&[0x03, 0x01, 0x00, 0x00][..], &SYNC_KEY_BODY].concat();
        assert_eq!(
            decoded(&input),
            Err(DecodeError::UnsupportedCharset { mib_enum: 0, offset: 2 })
        );
        // 106 written in two bytes is still UTF-8.
        let input = [&[0x03, 0x01, 0x80, 0x6A, 0x00][..], &SYNC_KEY_BODY].concat();
        assert_eq!(decoded(&input), Ok(sync_key_document()));
    }

    #[test]
    fn header_errors() {
        assert_eq!(decoded(&[]), Err(DecodeError::Truncated { offset: 0 }));
        assert_eq!(decoded(&[0x03, 0x01, 0x6A]), Err(DecodeError::Truncated { offset: 3 }));
        assert_eq!(decoded(&HEADER), Err(DecodeError::Truncated { offset: 4 }));
        // String table longer than the input.
        assert_eq!(
            decoded(&[0x03, 0x01, 0x6A, 0x7F, 0x45, 0x01]),
            Err(DecodeError::Truncated { offset: 6 })
        );
        // Public id with six bytes.
        assert_eq!(
            decoded(&[0x03, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x6A, 0x00]),
            Err(DecodeError::IntegerOverflow { offset: 1 })
        );
    }

    #[test]
    fn every_truncation_is_reported_as_truncated() {
        let document = Document::new(
            Element::new(compose_mail::SEND_MAIL)
                .text_child(compose_mail::CLIENT_ID, "abc")
                .empty_child(compose_mail::SAVE_IN_SENT_ITEMS)
                .opaque_child(compose_mail::MIME, vec![0x41; 300]),
        );
        let bytes = crate::encode(&document).expect("encodes");
        for len in 0..bytes.len() {
            assert_eq!(
                decoded(&bytes[..len]),
                Err(DecodeError::Truncated { offset: len }),
                "prefix of {len} bytes"
            );
        }
        assert_eq!(decoded(&bytes), Ok(document));
    }

    #[test]
    fn huge_lengths_are_refused_before_allocating() {
        // OPAQUE of u32::MAX bytes: over the limit.
        let input = body(&[0x00, 0x15, 0x50, 0xC3, 0x8F, 0xFF, 0xFF, 0xFF, 0x7F, 0x01]);
        assert_eq!(decoded(&input), Err(DecodeError::OpaqueTooLong { limit: 32 << 20, offset: 7 }));
        // With no limit the length still has to fit the input.
        let unlimited = Limits { max_opaque_len: usize::MAX, ..Limits::default() };
        assert_eq!(decode(&input, &unlimited), Err(DecodeError::Truncated { offset: input.len() }));
        // A length that does not fit 32 bits.
        let input = body(&[0x00, 0x15, 0x50, 0xC3, 0x90, 0x80, 0x80, 0x80, 0x00, 0x01]);
        assert_eq!(decoded(&input), Err(DecodeError::IntegerOverflow { offset: 8 }));
        let input = body(&[0x00, 0x15, 0x50, 0xC3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
        assert_eq!(decoded(&input), Err(DecodeError::IntegerOverflow { offset: 8 }));
    }

    #[test]
    fn depth_bomb_is_stopped_at_the_limit() {
        let input = body(&[0x45; 100_000]);
        assert_eq!(decoded(&input), Err(DecodeError::TooDeep { limit: 64, offset: 4 + 64 }));
        // An empty element one level too deep counts too.
        let limits = Limits { max_depth: 2, ..Limits::default() };
        assert_eq!(
            decode(&body(&[0x45, 0x45, 0x05, 0x01, 0x01]), &limits),
            Err(DecodeError::TooDeep { limit: 2, offset: 6 })
        );
        assert!(decode(&body(&[0x45, 0x45, 0x01, 0x01]), &limits).is_ok());
    }

    #[test]
    fn element_count_bomb_is_stopped_at_the_limit() {
        let mut input = body(&[0x45]);
        input.extend(std::iter::repeat_n(0x14, 1_000_000));
        input.push(0x01);
        assert_eq!(
            decoded(&input),
            Err(DecodeError::TooManyElements { limit: 250_000, offset: 4 + 250_000 })
        );
    }

    #[test]
    fn string_and_total_limits() {
        let limits = Limits {
            max_string_len: 4,
            max_opaque_len: 2,
            max_total_size: 32,
            ..Limits::default()
        };
        assert!(
            decode(
                &body(&[0x45, 0x4B, 0x03, b'a', b'b', 0x00, 0x03, b'c', b'd', 0x00, 0x01, 0x01]),
                &limits
            )
            .is_ok()
        );
        assert_eq!(
            decode(
                &body(&[
                    0x45, 0x4B, 0x03, b'a', b'b', 0x00, 0x03, b'c', b'd', b'e', 0x00, 0x01, 0x01
                ]),
                &limits
            ),
            Err(DecodeError::StringTooLong { limit: 4, offset: 10 })
        );
        assert_eq!(
            decode(&body(&[0x45, 0x4B, 0xC3, 0x03, 1, 2, 3, 0x01, 0x01]), &limits),
            Err(DecodeError::OpaqueTooLong { limit: 2, offset: 6 })
        );
        assert_eq!(
            decode(&[0; 33], &limits),
            Err(DecodeError::InputTooLarge { size: 33, limit: 32 })
        );
    }

    #[test]
    fn attributes_bit_is_refused() {
        assert_eq!(
            decoded(&body(&[0xC5, 0x01])),
            Err(DecodeError::AttributesNotSupported { byte: 0xC5, offset: 4 })
        );
        assert_eq!(
            decoded(&body(&[0x45, 0x8B, 0x01])),
            Err(DecodeError::AttributesNotSupported { byte: 0x8B, offset: 5 })
        );
    }

    #[test]
    fn every_forbidden_global_token_is_named() {
        let forbidden = [
            (0x02, "ENTITY"),
            (0x04, "LITERAL"),
            (0x40, "EXT_I_0"),
            (0x41, "EXT_I_1"),
            (0x42, "EXT_I_2"),
            (0x43, "PI"),
            (0x44, "LITERAL_C"),
            (0x80, "EXT_T_0"),
            (0x81, "EXT_T_1"),
            (0x82, "EXT_T_2"),
            (0x83, "STR_T"),
            (0x84, "LITERAL_A"),
            (0xC0, "EXT_0"),
            (0xC1, "EXT_1"),
            (0xC2, "EXT_2"),
            (0xC4, "LITERAL_AC"),
        ];
        for (token, name) in forbidden {
            // Inside an element, and before the root.
            let inside = body(&[0x45, 0x4B, token, 0x00, 0x01, 0x01]);
            assert_eq!(
                decoded(&inside),
                Err(DecodeError::ForbiddenToken { token, name, offset: 6 })
            );
            assert_eq!(
                decoded(&body(&[token, 0x00])),
                Err(DecodeError::ForbiddenToken { token, name, offset: 4 })
            );
        }
    }

    #[test]
    fn unknown_pages_and_tokens_carry_their_offset() {
        assert_eq!(
            decoded(&body(&[0x00, 0x1A, 0x05])),
            Err(DecodeError::UnknownPage { page: 26, offset: 4 })
        );
        assert_eq!(
            decoded(&body(&[0x00, 0xFF, 0x05])),
            Err(DecodeError::UnknownPage { page: 255, offset: 4 })
        );
        assert_eq!(
            decoded(&body(&[0x45, 0x2A, 0x01])),
            Err(DecodeError::UnknownTag { page: 0, token: 0x2A, offset: 5 })
        );
        assert_eq!(
            decoded(&body(&[0x00, 0x05, 0x4D])),
            Err(DecodeError::UnknownTag { page: 5, token: 0x0D, offset: 6 })
        );
    }

    #[test]
    fn structural_errors() {
        assert_eq!(decoded(&body(&[0x01])), Err(DecodeError::UnbalancedEnd { offset: 4 }));
        assert_eq!(
            decoded(&body(&[0x03, b'x', 0x00])),
            Err(DecodeError::ContentOutsideElement { offset: 4 })
        );
        assert_eq!(
            decoded(&body(&[0xC3, 0x00])),
            Err(DecodeError::ContentOutsideElement { offset: 4 })
        );
        assert_eq!(
            decoded(&body(&[0x45, 0x01, 0x05])),
            Err(DecodeError::TrailingData { offset: 6 })
        );
        assert_eq!(decoded(&body(&[0x05, 0x00])), Err(DecodeError::TrailingData { offset: 5 }));
        assert_eq!(
            decoded(&body(&[0x45, 0x03, b'x', 0x00, 0x0B, 0x01])),
            Err(DecodeError::MixedContent { tag: air_sync::SYNC, offset: 8 })
        );
        assert_eq!(
            decoded(&body(&[0x45, 0x0B, 0x03, b'x', 0x00, 0x01])),
            Err(DecodeError::MixedContent { tag: air_sync::SYNC, offset: 6 })
        );
    }

    #[test]
    fn pieces_are_concatenated() {
        let text = decoded(&body(&[0x45, 0x4B, 0x03, b'a', 0x00, 0x03, b'b', 0x00, 0x01, 0x01]))
            .expect("valid");
        assert_eq!(text.root.text_of(air_sync::SYNC_KEY), Some("ab"));
        assert!(matches!(
            text.root.child(air_sync::SYNC_KEY).map(|e| &e.content),
            Some(Content::Text(_))
        ));
        let mixed = decoded(&body(&[
            0x45, 0x4B, 0x03, b'a', 0x00, 0xC3, 0x01, b'b', 0x03, b'c', 0x00, 0x01, 0x01,
        ]));
        let mixed = mixed.expect("valid");
        assert_eq!(
            mixed.root.child(air_sync::SYNC_KEY).map(|e| &e.content),
            Some(&Content::Opaque(b"abc".to_vec()))
        );
    }

    #[test]
    fn page_persists_across_end_and_switches_are_free() {
        // Sync > ApplicationData > email:Subject, then ServerId resolved on page 2 unless switched back.
        let input = body(&[
            0x45, 0x5D, 0x00, 0x02, 0x54, 0x03, b's', 0x00, 0x01, 0x01, 0x00, 0x00, 0x4D, 0x03,
            b'1', 0x00, 0x01, 0x01,
        ]);
        let document = decoded(&input).expect("valid");
        assert_eq!(
            document.root.child(air_sync::APPLICATION_DATA).and_then(|a| a.text_of(email::SUBJECT)),
            Some("s")
        );
        assert_eq!(document.root.text_of(air_sync::SERVER_ID), Some("1"));
        // END does not restore the page: after a Move-page child, ApplicationData (0x1D) is unknown.
        let input = body(&[0x45, 0x5D, 0x00, 0x05, 0x0C, 0x01, 0x5D, 0x01, 0x01]);
        assert_eq!(
            decoded(&input),
            Err(DecodeError::UnknownTag { page: 5, token: 0x1D, offset: 10 })
        );
    }

    #[test]
    fn content_bit_without_content_is_empty_and_empty_string_is_text() {
        let document = decoded(&body(&[0x45, 0x54, 0x01, 0x01])).expect("valid");
        assert_eq!(document.root.child_elements()[0].content, Content::Empty);
        let document = decoded(&body(&[0x45, 0x4B, 0x03, 0x00, 0x01, 0x01])).expect("valid");
        assert_eq!(document.root.child_elements()[0].content, Content::Text(Vec::new()));
    }

    #[test]
    fn invalid_utf8_is_kept_as_bytes() {
        let document =
            decoded(&body(&[0x45, 0x4B, 0x03, 0xC3, 0x28, 0xFF, 0x00, 0x01, 0x01])).expect("valid");
        let sync_key = document.root.child(air_sync::SYNC_KEY).expect("present");
        assert_eq!(sync_key.content, Content::Text(vec![0xC3, 0x28, 0xFF]));
        assert_eq!(sync_key.text(), None);
    }

    #[test]
    fn legacy_tokens_decode_and_are_flagged() {
        // AirSync Version (0x11) and AirNotify (page 3) Notify.
        let document =
            decoded(&body(&[0x45, 0x51, 0x03, b'2', 0x00, 0x01, 0x00, 0x03, 0x05, 0x01]))
                .expect("valid");
        let children = document.root.child_elements();
        assert_eq!(children[0].tag, legacy::air_sync::VERSION);
        assert!(children[0].tag.is_legacy());
        assert_eq!(children[1].tag, legacy::air_notify::NOTIFY);
    }

    #[test]
    fn find_picture_tokens_decode_to_the_spec_tokens() {
        let document = decoded(&body(&[0x00, 0x19, 0x5C, 0x1B, 0x1A, 0x01])).expect("valid");
        assert_eq!(document.root.tag, find::PICTURE);
        let tags: Vec<_> = document.root.child_elements().iter().map(|e| e.tag).collect();
        assert_eq!(tags, [find::MAX_SIZE, find::MAX_PICTURES]);
        assert_eq!(crate::encode(&document), Ok(body(&[0x00, 0x19, 0x62, 0x21, 0x20, 0x01])));
    }
}
