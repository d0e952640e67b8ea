//! `Tag`: the identity of an element, a (code page, token) pair, plus the lookups that give it
//! a name and a namespace. The tables come from `build.rs` (generated from `data/*.tsv`).

use std::fmt;

include!(concat!(env!("OUT_DIR"), "/codepage_tables.rs"));

/// Tag tokens use the low six bits of a tag byte, so each page has 64 slots.
const SLOTS_PER_PAGE: usize = 64;
const SLOT_UNASSIGNED: u8 = 0;
const SLOT_CURRENT: u8 = 1;
const SLOT_LEGACY: u8 = 2;
const SLOT_ALIAS_FLAG: u8 = 0x80;

/// An element identity: WBXML code page and token.
///
/// A `Tag` always names a row of the code-page tables (a current tag or a legacy one), so
/// [`Tag::name`] and [`Tag::namespace`] never fail. Get one from the generated constants in
/// [`crate::tags`], from [`Tag::from_token`] or from [`Tag::from_name`].
///
/// Comparing, hashing and copying a `Tag` costs as much as a `u16`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    page: u8,
    token: u8,
}

impl Tag {
    /// Only for the generated tables and constants, which list valid pairs.
    pub(crate) const fn from_parts(page: u8, token: u8) -> Tag {
        Tag { page, token }
    }

    /// The tag for `token` (low six bits of a tag byte) on code page `page`, or `None` if the
    /// pair is not in the tables.
    ///
    /// Legacy tokens are accepted (see [`Tag::is_legacy`]). Tokens that are only known as a
    /// misnumbering of a current tag resolve to that tag: Find (page 25) 0x1A–0x1C return
    /// `MaxPictures`/`MaxSize`/`Picture` with tokens 0x20–0x22 (DISCREPANCIES #1), so they are
    /// never encoded with the wrong number.
    #[inline]
    pub fn from_token(page: u8, token: u8) -> Option<Tag> {
        let kind = slot_kind(page, token)?;
        match kind {
            SLOT_UNASSIGNED => None,
            SLOT_CURRENT | SLOT_LEGACY => Some(Tag { page, token }),
            alias => Some(Tag { page, token: alias & !SLOT_ALIAS_FLAG }),
        }
    }

    /// Looks a tag up by XML namespace and local name, both ASCII case-insensitively (the
    /// sources disagree on case, DISCREPANCIES #3 and #11). A namespace written libwbxml-style
    /// with a trailing colon (`"AirSync:"`) is accepted too. Legacy names are found as well
    /// (names are unique per page, ignoring case; `build.rs` checks it).
    pub fn from_name(namespace: &str, name: &str) -> Option<Tag> {
        let page = page_for_namespace(namespace)?;
        Tag::from_page_and_name(page, name)
    }

    /// Looks a tag up by code page and local name (ASCII case-insensitive).
    pub fn from_page_and_name(page: u8, name: &str) -> Option<Tag> {
        let index = NAME_INDEX.get(usize::from(page))?;
        let position = index
            .binary_search_by(|(candidate, _)| {
                let candidate = candidate.bytes();
                let wanted = name.bytes().map(|byte| byte.to_ascii_lowercase());
                candidate.cmp(wanted)
            })
            .ok()?;
        index.get(position).map(|&(_, token)| Tag { page, token })
    }

    /// The code page number (0–25).
    #[inline]
    pub const fn page(self) -> u8 {
        self.page
    }

    /// The token within the page (0x05–0x3F).
    #[inline]
    pub const fn token(self) -> u8 {
        self.token
    }

    /// The element name as spelled in MS-ASWBXML (`"SyncKey"`, `"Mime"`, `"GalSearchCriterion"`).
    pub fn name(self) -> &'static str {
        SLOT_NAMES.get(slot_index(self.page, self.token)).copied().unwrap_or_default()
    }

    /// The XML namespace of the tag's page (`"AirSync"`, `"Email"`, `"Gal"`, …).
    pub fn namespace(self) -> &'static str {
        page_namespace(self.page).unwrap_or_default()
    }

    /// The code page's name (`"AirSync"`, `"GAL"`, …).
    pub fn page_name(self) -> &'static str {
        PAGE_NAMES.get(usize::from(self.page)).copied().unwrap_or_default()
    }

    /// True for tokens that are not in the 16.1 table (`codepages-legacy.tsv`): the decoder
    /// accepts them so old clients can be logged, the encoder refuses them.
    #[inline]
    pub fn is_legacy(self) -> bool {
        slot_kind(self.page, self.token) == Some(SLOT_LEGACY)
    }

    /// Every tag of the 16.1 table, ordered by (page, token).
    pub fn all() -> impl ExactSizeIterator<Item = Tag> {
        CURRENT_TAGS.iter().copied()
    }

    /// Every legacy tag, ordered by (page, token).
    pub fn all_legacy() -> impl ExactSizeIterator<Item = Tag> {
        LEGACY_TAGS.iter().copied()
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}({}/{:#04x})", self.namespace(), self.name(), self.page, self.token)
    }
}

/// `Namespace:Name`, e.g. `Email:Subject`.
impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace(), self.name())
    }
}

/// Number of code pages (26: 0–25).
pub const fn page_count() -> u8 {
    PAGE_COUNT as u8
}

/// The XML namespace of a code page, or `None` for a page number outside the table.
pub fn page_namespace(page: u8) -> Option<&'static str> {
    PAGE_NAMESPACES.get(usize::from(page)).copied()
}

/// The namespace prefix `to_xml` uses for a page: its page name in lower case (`email`,
/// `airsyncbase`, `gal`).
pub(crate) fn page_prefix(page: u8) -> &'static str {
    PAGE_PREFIXES.get(usize::from(page)).copied().unwrap_or_default()
}

/// The code page whose XML namespace is `namespace` (ASCII case-insensitive; one trailing `:`,
/// as libwbxml writes namespaces, is ignored).
pub fn page_for_namespace(namespace: &str) -> Option<u8> {
    let namespace = namespace.strip_suffix(':').unwrap_or(namespace);
    let position =
        PAGE_NAMESPACES.iter().position(|candidate| candidate.eq_ignore_ascii_case(namespace))?;
    u8::try_from(position).ok()
}

#[inline]
fn slot_index(page: u8, token: u8) -> usize {
    usize::from(page) * SLOTS_PER_PAGE + usize::from(token)
}

/// The slot kind, or `None` when the page or token is out of range.
#[inline]
fn slot_kind(page: u8, token: u8) -> Option<u8> {
    if usize::from(token) >= SLOTS_PER_PAGE {
        return None;
    }
    SLOT_KINDS.get(slot_index(page, token)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags;

    #[test]
    fn table_sizes_match_the_data() {
        assert_eq!(Tag::all().len(), 586);
        assert_eq!(Tag::all_legacy().len(), 68);
        assert_eq!(page_count(), 26);
        assert!(Tag::all().all(|tag| !tag.is_legacy()));
        assert!(Tag::all_legacy().all(Tag::is_legacy));
    }

    #[test]
    fn constants_have_the_spec_numbers_and_names() {
        assert_eq!((tags::air_sync::SYNC.page(), tags::air_sync::SYNC.token()), (0, 0x05));
        assert_eq!(tags::email::SUBJECT.name(), "Subject");
        assert_eq!(tags::email::SUBJECT.namespace(), "Email");
        assert_eq!((tags::compose_mail::MIME.page(), tags::compose_mail::MIME.token()), (21, 0x10));
        assert_eq!(tags::compose_mail::MIME.name(), "Mime");
        assert_eq!(tags::find::GAL_SEARCH_CRITERION.token(), 0x19);
        assert_eq!(tags::settings::SMTP_ADDRESS.name(), "SMTPAddress");
        assert_eq!(tags::gal::DATA.namespace(), "Gal");
        assert_eq!(tags::gal::DATA.page_name(), "GAL");
        assert_eq!(tags::r#move::SRC_MSG_ID.page(), 5);
        assert_eq!(tags::legacy::air_notify::NOTIFY.namespace(), "AirNotify");
        assert!(tags::legacy::email::BODY.is_legacy());
    }

    #[test]
    fn every_tag_round_trips_through_token_and_name_lookup() {
        for tag in Tag::all().chain(Tag::all_legacy()) {
            assert_eq!(Tag::from_token(tag.page(), tag.token()), Some(tag));
            assert_eq!(Tag::from_name(tag.namespace(), tag.name()), Some(tag), "{tag:?}");
            let upper = tag.name().to_ascii_uppercase();
            assert_eq!(Tag::from_name(&tag.namespace().to_ascii_lowercase(), &upper), Some(tag));
        }
    }

    #[test]
    fn find_misnumbered_picture_tokens_alias_the_spec_tokens() {
        assert_eq!(Tag::from_token(25, 0x1A), Some(tags::find::MAX_PICTURES));
        assert_eq!(Tag::from_token(25, 0x1B), Some(tags::find::MAX_SIZE));
        assert_eq!(Tag::from_token(25, 0x1C), Some(tags::find::PICTURE));
        assert_eq!(tags::find::PICTURE.token(), 0x22);
        assert!(!tags::find::PICTURE.is_legacy());
    }

    #[test]
    fn unknown_pairs_and_names_are_none() {
        assert_eq!(Tag::from_token(0, 0x04), None);
        assert_eq!(Tag::from_token(0, 0x3F), None);
        assert_eq!(Tag::from_token(0, 0x40), None);
        assert_eq!(Tag::from_token(26, 0x05), None);
        assert_eq!(Tag::from_token(255, 0xFF), None);
        assert_eq!(Tag::from_name("Email", "NoSuchTag"), None);
        assert_eq!(Tag::from_name("NoSuchNamespace", "Subject"), None);
    }

    #[test]
    fn namespaces_tolerate_case_and_libwbxml_colon() {
        assert_eq!(page_for_namespace("GAL"), Some(16));
        assert_eq!(page_for_namespace("Gal:"), Some(16));
        assert_eq!(page_for_namespace("airsyncbase"), Some(17));
        assert_eq!(
            Tag::from_name("Find", "GALSearchCriterion"),
            Some(tags::find::GAL_SEARCH_CRITERION)
        );
    }

    #[test]
    fn display_and_debug_name_the_tag() {
        assert_eq!(tags::email2::CONVERSATION_ID.to_string(), "Email2:ConversationId");
        assert_eq!(format!("{:?}", tags::air_sync::SYNC), "AirSync:Sync(0/0x05)");
    }
}
