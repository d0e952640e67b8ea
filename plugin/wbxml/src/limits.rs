//! Caller-set bounds on what a decoder (WBXML or XML) will build from untrusted input.

/// Resource limits for [`crate::decode`] and [`crate::from_xml_with_limits`].
///
/// Every allocation the decoder makes is bounded by the input size and these limits. Keep
/// `max_depth` modest: the decoder itself uses an explicit stack, but dropping, cloning and
/// comparing an [`crate::Element`] tree recurse once per level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Deepest element nesting; the root element is depth 1. EAS documents stay below 16.
    pub max_depth: usize,
    /// Most elements in one document (a 512-item Sync response has about 30 000).
    pub max_elements: usize,
    /// Longest STR_I content of one element, in bytes (all pieces together). ItemOperations
    /// delivers attachments as base64 text, so this is large by default.
    pub max_string_len: usize,
    /// Longest OPAQUE content of one element, in bytes (all pieces together).
    pub max_opaque_len: usize,
    /// Longest input, in bytes.
    pub max_total_size: usize,
}

impl Limits {
    /// Defaults for an EAS server: depth 64, 250 000 elements, 32 MiB strings, 32 MiB opaque,
    /// 48 MiB total.
    pub const DEFAULT: Limits = Limits {
        max_depth: 64,
        max_elements: 250_000,
        max_string_len: 32 << 20,
        max_opaque_len: 32 << 20,
        max_total_size: 48 << 20,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}
