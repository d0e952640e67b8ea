//! Exchange ActiveSync WBXML codec ([MS-ASWBXML] over WBXML 1.3).
//!
//! * [`Tag`] — a (code page, token) pair; constants for every tag in [`tags`], generated from
//!   `data/codepages.tsv` by `build.rs`.
//! * [`Document`], [`Element`], [`Content`] — the owned tree, built and read by `Tag`.
//! * [`decode`] (bounded by [`Limits`]) and [`encode`] / [`encode_into`] — WBXML.
//! * [`to_xml`] / [`from_xml`] — XML rendering for logs and fixtures (convention in [`xml`]).
//!
//! ```
//! use eas_wbxml::{Document, Element, Limits, decode, encode, tags::folder_hierarchy as fh};
//!
//! let request = Document::new(Element::new(fh::FOLDER_SYNC).text_child(fh::SYNC_KEY, "0"));
//! let bytes = encode(&request).expect("current tags, no NUL in text");
//! assert_eq!(bytes, [0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, b'0', 0x00, 0x01, 0x01]);
//! let decoded = decode(&bytes, &Limits::default()).expect("valid WBXML");
//! assert_eq!(decoded.root.text_of(fh::SYNC_KEY), Some("0"));
//! ```
//!
//! Decisions worth knowing:
//! * **Header**: the encoder always writes `03 01 6A 00`; the decoder accepts WBXML 1.1–1.3,
//!   public id 0 followed by a string-table index, and skips a non-empty string table; a charset
//!   other than UTF-8 (106) is [`DecodeError::UnsupportedCharset`].
//! * **Strict body**: only SWITCH_PAGE, END, STR_I, OPAQUE and attribute-less tags; everything else
//!   (STR_T, ENTITY, PI, LITERAL*, EXT_*, the attributes bit, unknown pages or tokens, mixed
//!   text and child elements, data after the root) is a [`DecodeError`] with its byte offset.
//! * **Invalid UTF-8** in STR_I is kept as bytes ([`Content::Text`] holds `Vec<u8>`):
//!   [`Element::text`] validates when read, [`Element::bytes`] does not. Clients send garbage
//!   in subjects and names, and refusing the whole request would be worse.
//! * Several STR_I/OPAQUE pieces in one element are concatenated; if any piece is OPAQUE the
//!   content is [`Content::Opaque`]. A content bit with no content decodes as
//!   [`Content::Empty`]; `STR_I ""` stays `Text(vec![])`.
//! * **Legacy tokens** (`data/codepages-legacy.tsv`) decode ([`Tag::is_legacy`]) but do not
//!   encode ([`EncodeError::LegacyTag`]). Find 0x1A–0x1C decode as MaxPictures/MaxSize/Picture
//!   (0x20–0x22) and re-encode with the spec tokens.
//!
//! Pure Rust without I/O, clocks or threads: it builds for `wasm32-unknown-unknown`.

mod decode;
mod encode;
mod error;
mod fragment;
mod limits;
mod mbuint;
mod model;
mod scan;
mod tag;
pub mod tags;
mod token;
pub mod xml;

pub use decode::decode;
pub use encode::{encode, encode_into, encode_root};
pub use error::{DecodeError, EncodeError, XmlError};
pub use fragment::EncodedElement;
pub use limits::Limits;
pub use model::{Content, Document, Element};
pub use tag::{Tag, page_count, page_for_namespace, page_namespace};
pub use xml::{from_xml, from_xml_with_limits, to_xml};
