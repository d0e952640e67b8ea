//! What the host's mailbox capability delivers for one message, in one round trip: flags,
//! dates, the IMAP BODYSTRUCTURE flattened in pre-order and the first bytes of the raw
//! RFC 822 message (`BODY.PEEK[]<0.N>`). The host maps its own types onto these across the WIT
//! boundary; everything here is untrusted input.

/// One message as the host's IMAP layer fetched it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageSummary {
    pub uid: u32,
    /// IMAP flags and keywords: `\Seen`, `\Flagged`, `\Answered`, `\Draft`, `\Deleted`,
    /// `$Forwarded`, `$label1`, arbitrary keywords.
    pub flags: Vec<String>,
    /// INTERNALDATE as unix seconds.
    pub internal_date: i64,
    /// RFC822.SIZE: the size of the whole raw message.
    pub size: u32,
    /// BODYSTRUCTURE flattened in pre-order. May be empty: the structure is then derived from
    /// `prefix`, which is how a full raw message goes through the same code.
    pub body_structure: Vec<BodyPart>,
    /// The first bytes of the raw message; may stop anywhere, even inside a header.
    pub prefix: Vec<u8>,
    /// The message's Sync Add, encoded, when the host had it rendered ahead
    /// (`sync::render_ahead`); `prefix` and `body_structure` are then empty.
    #[serde(default)]
    pub rendered: Option<Vec<u8>>,
}

impl MessageSummary {
    /// A complete raw message (fetched for ItemOperations or MIME bodies) without a
    /// BODYSTRUCTURE: the structure is derived by parsing it, with IMAP section numbers.
    pub fn from_full_message(
        uid: u32,
        flags: Vec<String>,
        internal_date: i64,
        raw: Vec<u8>,
    ) -> Self {
        let size = u32::try_from(raw.len()).unwrap_or(u32::MAX);
        Self {
            uid,
            flags,
            internal_date,
            size,
            body_structure: Vec::new(),
            prefix: raw,
            rendered: None,
        }
    }

    /// True when `prefix` holds every byte of the message (RFC822.SIZE says how many).
    pub(crate) fn holds_whole_message(&self) -> bool {
        self.prefix.len() as u64 >= u64::from(self.size)
    }
}

/// One entry of the flattened BODYSTRUCTURE (RFC 3501 §7.4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BodyPart {
    /// IMAP section number: `"1"`, `"1.2"`; `"1"` for a single-part message. The root of a
    /// multipart message has no section of its own (any value, usually empty).
    pub section: String,
    /// Nesting depth in the pre-order list; the root is 0.
    pub depth: u32,
    pub is_multipart: bool,
    pub media_type: String,
    pub media_subtype: String,
    /// Content-Type parameters as the server sent them (possibly still RFC 2231 / RFC 2047
    /// encoded).
    pub params: Vec<(String, String)>,
    pub content_id: Option<String>,
    pub description: Option<String>,
    /// Content-Transfer-Encoding.
    pub encoding: Option<String>,
    /// Size of the encoded body in octets.
    pub size: u32,
    pub lines: Option<u32>,
    /// Content-Disposition value (`inline`, `attachment`).
    pub disposition: Option<String>,
    pub disposition_params: Vec<(String, String)>,
}

impl BodyPart {
    pub(crate) fn is(&self, media_type: &str, media_subtype: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(media_type)
            && self.media_subtype.eq_ignore_ascii_case(media_subtype)
    }

    pub(crate) fn is_type(&self, media_type: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(media_type)
    }

    /// A Content-Type parameter by name, as sent (not RFC 2231-decoded).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }

    pub(crate) fn has_attachment_disposition(&self) -> bool {
        self.disposition.as_deref().is_some_and(|d| d.trim().eq_ignore_ascii_case("attachment"))
    }

    pub(crate) fn has_inline_disposition(&self) -> bool {
        self.disposition.as_deref().is_some_and(|d| d.trim().eq_ignore_ascii_case("inline"))
    }

    /// Whether a file name is given (`name`, `filename`, or their RFC 2231 forms).
    pub(crate) fn has_file_name(&self) -> bool {
        let starts_with = |key: &str, prefix: &str| {
            key.trim().get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        };
        self.params.iter().any(|(key, _)| starts_with(key, "name"))
            || self.disposition_params.iter().any(|(key, _)| starts_with(key, "filename"))
    }

    /// An embedded message: EAS attachment Method 5 (MS-ASAIRS §2.2.2.31).
    pub(crate) fn is_embedded_message(&self) -> bool {
        self.is("message", "rfc822") || self.is("message", "global")
    }
}

pub(crate) fn find_param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params.iter().find(|(key, _)| key.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}
