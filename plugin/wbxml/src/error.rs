//! Error types of the decoder, the encoder and the XML reader.

use crate::Tag;

/// Why a WBXML body was refused. Offsets are byte positions in the decoded input; an EAS server
/// answers any of these with Status 102/HTTP 400 (EAS-NOTES §2.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than [`crate::Limits::max_total_size`].
    #[error("WBXML body of {size} bytes exceeds the limit of {limit} bytes")]
    InputTooLarge { size: usize, limit: usize },
    /// The input ended in the middle of the header, a token, a string or an element.
    #[error("WBXML body truncated at byte {offset}")]
    Truncated { offset: usize },
    /// Header version byte other than 0x01–0x03 (WBXML 1.1–1.3).
    #[error("unsupported WBXML version byte {version:#04x} at byte {offset}")]
    UnsupportedVersion { version: u8, offset: usize },
    /// Charset other than UTF-8 (MIBenum 106).
    #[error("unsupported charset MIBenum {mib_enum} at byte {offset} (EAS requires UTF-8, 106)")]
    UnsupportedCharset { mib_enum: u32, offset: usize },
    /// An `mb_u_int32` longer than 5 bytes or above `u32::MAX`.
    #[error("multi-byte integer overflows 32 bits at byte {offset}")]
    IntegerOverflow { offset: usize },
    /// A global token EAS never uses (STR_T, ENTITY, PI, LITERAL*, EXT_*).
    #[error("WBXML token {name} ({token:#04x}) at byte {offset} is not used by EAS")]
    ForbiddenToken { token: u8, name: &'static str, offset: usize },
    /// A tag byte with the attributes bit (0x80) set.
    #[error(
        "tag byte {byte:#04x} at byte {offset} has the attributes bit set (EAS has no attributes)"
    )]
    AttributesNotSupported { byte: u8, offset: usize },
    /// SWITCH_PAGE to a page outside 0–25.
    #[error("SWITCH_PAGE to unknown code page {page} at byte {offset}")]
    UnknownPage { page: u8, offset: usize },
    /// A tag token not assigned on the current page.
    #[error("unknown tag token {token:#04x} on code page {page} at byte {offset}")]
    UnknownTag { page: u8, token: u8, offset: usize },
    /// END with no open element.
    #[error("END at byte {offset} closes no element")]
    UnbalancedEnd { offset: usize },
    /// STR_I or OPAQUE outside any element.
    #[error("content token at byte {offset} is outside any element")]
    ContentOutsideElement { offset: usize },
    /// An element with both child elements and string/opaque content.
    #[error("element {tag} mixes child elements and string content (byte {offset})")]
    MixedContent { tag: Tag, offset: usize },
    /// Bytes after the root element was closed.
    #[error("unexpected data after the root element at byte {offset}")]
    TrailingData { offset: usize },
    /// Nesting deeper than [`crate::Limits::max_depth`].
    #[error("element nesting deeper than {limit} at byte {offset}")]
    TooDeep { limit: usize, offset: usize },
    /// More elements than [`crate::Limits::max_elements`].
    #[error("more than {limit} elements at byte {offset}")]
    TooManyElements { limit: usize, offset: usize },
    /// String content of one element longer than [`crate::Limits::max_string_len`].
    #[error("string content longer than {limit} bytes at byte {offset}")]
    StringTooLong { limit: usize, offset: usize },
    /// Opaque content of one element longer than [`crate::Limits::max_opaque_len`].
    #[error("opaque content longer than {limit} bytes at byte {offset}")]
    OpaqueTooLong { limit: usize, offset: usize },
}

/// Why a document could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Legacy tokens are decode-only (`codepages-legacy.tsv`: "never emit").
    #[error("legacy tag {tag} cannot be encoded")]
    LegacyTag { tag: Tag },
    /// STR_I is NUL-terminated, so text cannot contain a NUL byte (use opaque content).
    #[error("text of {tag} contains a NUL byte at position {position}")]
    NulInText { tag: Tag, position: usize },
    /// OPAQUE lengths are `mb_u_int32`.
    #[error("opaque content of {tag} is {len} bytes, more than a WBXML length can express")]
    OpaqueTooLong { tag: Tag, len: usize },
}

/// Why an XML document could not be turned into a WBXML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML (message from quick-xml).
    #[error("XML syntax error at byte {position}: {message}")]
    Syntax { position: u64, message: String },
    /// An element without a namespace.
    #[error("element <{name}> at byte {position} has no namespace")]
    MissingNamespace { name: String, position: u64 },
    /// A namespace that is not a code page.
    #[error("unknown namespace {namespace:?} at byte {position}")]
    UnknownNamespace { namespace: String, position: u64 },
    /// A name not in the namespace's code page.
    #[error("unknown element {namespace}:{name} at byte {position}")]
    UnknownElement { namespace: String, name: String, position: u64 },
    /// An attribute other than namespace declarations and the `base64` marker.
    #[error("unexpected attribute {name:?} at byte {position}")]
    UnexpectedAttribute { name: String, position: u64 },
    /// Bad `base64` marker value or content.
    #[error("invalid base64 content at byte {position}: {message}")]
    InvalidBase64 { position: u64, message: String },
    /// Non-whitespace text next to child elements.
    #[error("element at byte {position} mixes text and child elements")]
    MixedContent { position: u64 },
    /// Text or a second element outside the root element.
    #[error("content outside the root element at byte {position}")]
    OutsideRoot { position: u64 },
    /// No root element.
    #[error("the XML document has no root element")]
    NoRoot,
    /// Deeper than [`crate::Limits::max_depth`].
    #[error("element nesting deeper than {limit} at byte {position}")]
    TooDeep { limit: usize, position: u64 },
    /// More elements than [`crate::Limits::max_elements`].
    #[error("more than {limit} elements at byte {position}")]
    TooManyElements { limit: usize, position: u64 },
}
