//! airsyncbase:Body selection (MS-ASAIRS §2.2.2.9, §2.2.2.12; EAS-NOTES §6.2): which body type
//! to send for a client's BodyPreference list, truncated how, with which preview, and whether
//! the bytes we have are enough or the full message must be fetched first.

use std::borrow::Cow;

use super::html_text::{html_to_text, text_to_html};
use super::item::NativeBodyType;
use super::limits::MAX_PREVIEW_CHARS;
use super::sanitize::truncate_at_char_boundary;

/// airsyncbase:Type (MS-ASAIRS §2.2.2.22.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    PlainText = 1,
    Html = 2,
    /// Not produced: an RTF preference is skipped.
    Rtf = 3,
    /// The whole RFC 822 message.
    Mime = 4,
}

impl BodyType {
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::PlainText),
            2 => Some(Self::Html),
            3 => Some(Self::Rtf),
            4 => Some(Self::Mime),
            _ => None,
        }
    }
}

/// One airsyncbase:BodyPreference (MS-ASAIRS §2.2.2.12). For Type 4, Sync's MIMETruncation is
/// expressed by the caller as `truncation_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPreference {
    pub body_type: BodyType,
    pub truncation_size: Option<u32>,
    pub all_or_none: bool,
    /// Preview characters wanted (14.1+), at most 255.
    pub preview: Option<u32>,
}

impl BodyPreference {
    pub fn new(body_type: BodyType) -> Self {
        Self { body_type, truncation_size: None, all_or_none: false, preview: None }
    }
}

/// Which decoded bodies a conversion produces, and how much of them. Decoding a part
/// (transfer encoding, charset, cleaning) is most of a conversion's cost, so a Sync decodes
/// only the kinds its client's preferences can select, and of a long part only what the
/// largest TruncationSize (or Preview) can send; [`BodyNeeds::ALL`] keeps every choice open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyNeeds {
    /// The plain-text body (Type 1, previews, and the fallback when nothing else is usable).
    pub text: bool,
    /// The HTML body (Type 2).
    pub html: bool,
    /// The most bytes of body text any preference can send; `None` when a body may go whole.
    /// A longer part is decoded only that far and a margin beyond, where cutting the part
    /// cuts the body the same way (not an HTML part made into plain text, which shrinks).
    pub max_text_bytes: Option<usize>,
}

/// Decoded text a Preview of `chars` characters is taken from: four UTF-8 bytes a character,
/// and room for the whitespace it collapses.
fn preview_bytes(chars: u32) -> usize {
    const WHITESPACE_ALLOWANCE: usize = 4096;
    chars.min(MAX_PREVIEW_CHARS) as usize * 4 + WHITESPACE_ALLOWANCE
}

impl BodyNeeds {
    pub const ALL: BodyNeeds = BodyNeeds { text: true, html: true, max_text_bytes: None };

    /// What [`BodySource::select_body`] can touch for `preferences`: Type 4 is served from the
    /// raw bytes, RTF is skipped, and without a usable preference the body is plain text.
    pub fn for_preferences(preferences: &[BodyPreference]) -> BodyNeeds {
        let wants = |body_type: BodyType| preferences.iter().any(|p| p.body_type == body_type);
        let usable: Vec<&BodyPreference> =
            preferences.iter().filter(|p| p.body_type != BodyType::Rtf).collect();
        // Text bytes one preference can use: its truncated body and its preview.
        let text_bytes = |p: &BodyPreference| -> Option<usize> {
            let preview = p.preview.map_or(0, preview_bytes);
            match p.body_type {
                BodyType::Mime => Some(preview),
                _ => p.truncation_size.map(|size| (size as usize).max(preview)),
            }
        };
        let max_text_bytes = match usable.is_empty() {
            true => None,
            false => usable.iter().try_fold(0, |most, p| Some(text_bytes(p)?.max(most))),
        };
        BodyNeeds {
            text: usable.is_empty()
                || wants(BodyType::PlainText)
                || preferences.iter().any(|p| p.preview.is_some_and(|chars| chars > 0)),
            html: wants(BodyType::Html),
            max_text_bytes,
        }
    }
}

/// airsync:MIMESupport (MS-ASCMD §2.2.3.110): when a Type 4 preference takes precedence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MimeSupport {
    #[default]
    Never = 0,
    SmimeOnly = 1,
    Always = 2,
}

/// The airsyncbase:Body to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body<'a> {
    pub body_type: BodyType,
    /// Full size of the body in this type, in bytes (exact when we have all of it).
    pub estimated_data_size: u32,
    pub truncated: bool,
    /// `None` when AllOrNone forbade every truncated body (MS-ASAIRS §2.2.2.3.2).
    pub data: Option<BodyData<'a>>,
    pub preview: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyData<'a> {
    Text(String),
    /// Raw message bytes (Type 4); not necessarily UTF-8.
    Mime(&'a [u8]),
}

/// The chosen body and whether the bytes we have fell short. When `needs_full_fetch` is set,
/// `body` is still a valid best effort (marked truncated): a caller that can fetch the full
/// message converts it with `MessageSummary::from_full_message` and selects again; one that
/// cannot (budget, Sync window) may send `body` as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodySelection<'a> {
    pub body: Body<'a>,
    pub needs_full_fetch: bool,
}

/// Body text of one part, decoded, possibly cut short by the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyText {
    pub is_html: bool,
    pub text: String,
    pub is_complete: bool,
    /// Estimated decoded bytes of this part that we do not have.
    pub missing_bytes: u64,
}

/// What a body can be made from: the body parts we have and the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodySource<'a> {
    pub(crate) native: NativeBodyType,
    pub(crate) is_smime: bool,
    /// Parts rendered for a plain-text body.
    pub(crate) text_parts: Vec<BodyText>,
    /// Parts rendered for an HTML body.
    pub(crate) html_parts: Vec<BodyText>,
    pub(crate) raw: &'a [u8],
    pub(crate) raw_is_whole: bool,
    pub(crate) message_size: u32,
    /// False once we hold the whole message: nothing more can be fetched.
    pub(crate) can_fetch_more: bool,
}

/// A body rendered in one type from what we have.
struct Rendered<'a> {
    data: BodyData<'a>,
    is_complete: bool,
    full_size: u64,
}

impl BodyData<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Mime(bytes) => bytes.len(),
        }
    }

    fn truncated_to(self, max_bytes: usize) -> Self {
        match self {
            Self::Text(text) => Self::Text(truncate_at_char_boundary(&text, max_bytes).to_owned()),
            Self::Mime(bytes) => Self::Mime(&bytes[..bytes.len().min(max_bytes)]),
        }
    }
}

impl<'a> BodySource<'a> {
    /// Picks the body per MS-ASAIRS §2.2.2.12: the native type first when the client accepts it,
    /// else the client's order (converting between text and HTML as needed); a preference
    /// whose body is larger than its TruncationSize with AllOrNone is passed over. If no
    /// preference is usable (none given, or only RTF), plain text is sent.
    pub fn select_body(
        &self,
        preferences: &[BodyPreference],
        mime_support: MimeSupport,
    ) -> BodySelection<'a> {
        let candidates = self.candidate_order(preferences, mime_support);
        let mut passed_over: Option<Body<'a>> = None;
        for preference in &candidates {
            match self.serve(preference) {
                Ok(selection) => return selection,
                Err(body_without_data) => {
                    passed_over.get_or_insert(body_without_data);
                }
            }
        }
        // Every preference was AllOrNone and too large: the most preferred type, without data
        // and marked truncated, as Exchange does.
        let body = passed_over.unwrap_or(Body {
            body_type: BodyType::PlainText,
            estimated_data_size: 0,
            truncated: false,
            data: None,
            preview: None,
        });
        BodySelection { body, needs_full_fetch: false }
    }

    fn candidate_order(
        &self,
        preferences: &[BodyPreference],
        mime_support: MimeSupport,
    ) -> Vec<BodyPreference> {
        let usable: Vec<BodyPreference> =
            preferences.iter().copied().filter(|p| p.body_type != BodyType::Rtf).collect();
        if usable.is_empty() {
            return vec![BodyPreference::new(BodyType::PlainText)];
        }
        let mime_first = match mime_support {
            MimeSupport::Always => true,
            MimeSupport::SmimeOnly => self.is_smime,
            MimeSupport::Never => false,
        };
        let native = match self.native {
            NativeBodyType::PlainText => BodyType::PlainText,
            NativeBodyType::Html => BodyType::Html,
        };
        let rank = |p: &BodyPreference| match p.body_type {
            BodyType::Mime if mime_first => 0,
            t if t == native => 1,
            _ => 2,
        };
        let mut ordered = usable;
        // A stable sort keeps the client's order within each rank.
        ordered.sort_by_key(rank);
        ordered
    }

    /// `Err` carries the data-less body when AllOrNone forbids truncating this type.
    fn serve(&self, preference: &BodyPreference) -> Result<BodySelection<'a>, Body<'a>> {
        let rendered = self.render(preference.body_type);
        let preview = preference
            .preview
            .map(|chars| chars.min(MAX_PREVIEW_CHARS))
            .filter(|&chars| chars > 0)
            .map(|chars| self.preview(chars as usize));
        let limit = preference.truncation_size.map(|size| size as usize);
        let exceeds_limit = limit.is_some_and(|limit| rendered.full_size > limit as u64);
        let mut body = Body {
            body_type: preference.body_type,
            estimated_data_size: u32::try_from(rendered.full_size).unwrap_or(u32::MAX),
            truncated: true,
            data: None,
            preview,
        };
        if exceeds_limit && preference.all_or_none {
            return Err(body);
        }
        let have = rendered.data.len();
        let (data, short_of_bytes) = match limit.filter(|_| exceeds_limit) {
            Some(limit) if have >= limit => (rendered.data.truncated_to(limit), false),
            Some(_) => (rendered.data, true),
            None if rendered.is_complete => {
                body.truncated = false;
                (rendered.data, false)
            }
            None => (rendered.data, true),
        };
        body.data = Some(data);
        Ok(BodySelection { body, needs_full_fetch: short_of_bytes && self.can_fetch_more })
    }

    fn render(&self, body_type: BodyType) -> Rendered<'a> {
        match body_type {
            BodyType::Mime | BodyType::Rtf => Rendered {
                data: BodyData::Mime(self.raw),
                is_complete: self.raw_is_whole,
                full_size: u64::from(self.message_size).max(self.raw.len() as u64),
            },
            BodyType::PlainText => render_parts(&self.text_parts, false),
            BodyType::Html => render_parts(&self.html_parts, true),
        }
    }

    /// Plain text, whitespace collapsed, at most `chars` characters (MS-ASAIRS §2.2.2.35).
    fn preview(&self, chars: usize) -> String {
        let BodyData::Text(text) = render_parts(&self.text_parts, false).data else {
            return String::new();
        };
        text.split_whitespace()
            .flat_map(|word| word.chars().chain([' ']))
            .take(chars)
            .collect::<String>()
            .trim_end()
            .to_owned()
    }
}

/// Concatenates the parts in the requested type. Parts after one that is cut are unknown: we
/// stop there and only count their estimated size.
fn render_parts<'a>(parts: &[BodyText], as_html: bool) -> Rendered<'a> {
    let mut text = String::new();
    let mut is_complete = true;
    let mut missing_bytes = 0u64;
    for part in parts {
        if !is_complete {
            missing_bytes += part.text.len() as u64 + part.missing_bytes;
            continue;
        }
        let converted = match (part.is_html, as_html) {
            (true, false) => Cow::Owned(html_to_text(&part.text)),
            (false, true) => Cow::Owned(text_to_html(&part.text)),
            _ => Cow::Borrowed(part.text.as_str()),
        };
        if text.is_empty() {
            // The usual single part: one copy at most.
            text = converted.into_owned();
        } else {
            if !as_html {
                text.push('\n');
            }
            text.push_str(&converted);
        }
        if !part.is_complete {
            is_complete = false;
            missing_bytes += part.missing_bytes;
        }
    }
    let full_size = text.len() as u64 + missing_bytes;
    Rendered { data: BodyData::Text(text), is_complete, full_size }
}
