//! Bounds that keep hostile messages from costing unbounded memory or time. Every value here
//! caps work done on untrusted input; past a bound the item is still produced, with less in it.

/// Bytes of a raw message handed to the MIME parser. Its full parse (the fallback of `scan.rs`)
/// decodes every part, so memory is a small multiple of this. A larger full message is parsed
/// up to here and its bodies are served truncated.
pub const MAX_PARSED_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// BODYSTRUCTURE entries (or parsed MIME parts) looked at.
pub const MAX_PARTS: usize = 1000;

/// Multipart nesting followed when choosing the body parts; deeper leaves become attachments.
pub const MAX_BODY_NESTING: usize = 32;

/// Attachments listed per item.
pub const MAX_ATTACHMENTS: usize = 500;

/// email:To, Cc, From, ReplyTo, DisplayTo: at most 32 768 characters (MS-ASEMAIL §2.2.2.79).
pub const MAX_ADDRESS_FIELD_CHARS: usize = 32_768;

/// Subject, ThreadTopic and attachment display names.
pub const MAX_TEXT_FIELD_CHARS: usize = 4_096;

/// email:Categories holds at most 300 categories (MS-ASEMAIL §2.2.2.16).
pub const MAX_CATEGORIES: usize = 300;

/// Preview is at most 255 characters (MS-ASAIRS §2.2.2.35).
pub const MAX_PREVIEW_CHARS: u32 = 255;
