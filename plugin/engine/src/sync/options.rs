//! A collection's Options (MS-ASCMD §2.2.3.115, MS-ASAIRS §2.2.2.12): parsed from the request,
//! stored with the collection (they stay in force until the client sends new ones) and turned
//! into body preferences, a date window and a fetch size.

use super::limits::{MAX_PREFIX_BYTES, MAX_SYNC_BODY_BYTES, MIN_PREFIX_BYTES};
use crate::email::{BodyPreference, BodyType, MimeSupport};
use eas_wbxml::Element;
use eas_wbxml::tags::{air_sync, air_sync_base as base};
use serde::{Deserialize, Serialize};

/// One airsyncbase:BodyPreference as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPreference {
    pub body_type: u8,
    pub truncation_size: Option<u32>,
    pub all_or_none: bool,
    pub preview: Option<u32>,
}

/// Options of an email collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionOptions {
    /// airsync:FilterType 0..=8; `None` and 0 mean no date window.
    pub filter_type: Option<u8>,
    pub body_preferences: Vec<StoredPreference>,
    /// airsync:MIMESupport 0..=2.
    pub mime_support: u8,
    /// airsync:MIMETruncation 0..=8.
    pub mime_truncation: Option<u8>,
    /// 2.5-style airsync:Truncation (some 12.x clients still send it) 0..=9.
    pub truncation: Option<u8>,
    /// airsync:Conflict (MS-ASCMD §2.2.3.34): 0 the client's change wins, 1 (and absent) the
    /// server's version wins.
    pub conflict: Option<u8>,
}

/// Why Options were refused (Sync Status 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOptions(pub &'static str);

/// At most this many BodyPreference elements (one per type, MS-ASAIRS §2.2.2.12).
const MAX_BODY_PREFERENCES: usize = 4;

impl CollectionOptions {
    /// Reads the Options elements of a collection. Several Options elements are allowed for
    /// mixed-class collections; for mail the one without a Class, or of Class Email, counts.
    pub fn parse(options: &[&Element]) -> Result<Option<CollectionOptions>, InvalidOptions> {
        let chosen = options.iter().find(|element| {
            element.text_of(air_sync::CLASS).is_none_or(|class| class.trim() == "Email")
        });
        let Some(element) = chosen else {
            return Ok(if options.is_empty() { None } else { Some(Self::default()) });
        };
        let mut parsed = CollectionOptions::default();
        if let Some(text) = element.text_of(air_sync::FILTER_TYPE) {
            let value = small_number(text, 8).ok_or(InvalidOptions("FilterType"))?;
            parsed.filter_type = Some(value);
        }
        if let Some(text) = element.text_of(air_sync::MIME_SUPPORT) {
            parsed.mime_support = small_number(text, 2).ok_or(InvalidOptions("MIMESupport"))?;
        }
        if let Some(text) = element.text_of(air_sync::MIME_TRUNCATION) {
            let value = small_number(text, 8).ok_or(InvalidOptions("MIMETruncation"))?;
            parsed.mime_truncation = Some(value);
        }
        if let Some(text) = element.text_of(air_sync::CONFLICT) {
            parsed.conflict = Some(small_number(text, 1).ok_or(InvalidOptions("Conflict"))?);
        }
        if let Some(text) = element.text_of(eas_wbxml::tags::legacy::air_sync::TRUNCATION) {
            parsed.truncation = small_number(text, 9);
        }
        for preference in element.children(base::BODY_PREFERENCE) {
            if parsed.body_preferences.len() >= MAX_BODY_PREFERENCES {
                return Err(InvalidOptions("too many BodyPreference elements"));
            }
            let stored = parse_preference(preference)?;
            if parsed.body_preferences.iter().any(|p| p.body_type == stored.body_type) {
                return Err(InvalidOptions("two BodyPreference elements of one Type"));
            }
            parsed.body_preferences.push(stored);
        }
        Ok(Some(parsed))
    }

    /// The oldest INTERNALDATE (unix seconds) in the window, if FilterType sets one.
    /// 1..=5 are 1 day to 1 month (MS-ASCMD §2.2.3.68.2); 6 and 7 (three and six months) are
    /// defined for calendars, but some mail clients send them too and mean just that; 8
    /// (incomplete tasks) has no meaning for mail and syncs everything.
    pub fn window_start(&self, now_secs: i64) -> Option<i64> {
        let days: i64 = match self.filter_type? {
            1 => 1,
            2 => 3,
            3 => 7,
            4 => 14,
            5 => 30,
            6 => 90,
            7 => 180,
            _ => return None,
        };
        Some(now_secs.saturating_sub(days * 86_400))
    }

    /// The body preferences for [`crate::email::BodySource::select_body`], with this
    /// server's cap on body bytes in a Sync response applied. `cap` is `None` for a Fetch.
    pub fn preferences(&self, cap: Option<u32>) -> Vec<BodyPreference> {
        let mut preferences: Vec<BodyPreference> = self
            .body_preferences
            .iter()
            .filter_map(|stored| {
                let body_type = BodyType::from_code(stored.body_type)?;
                let mut truncation_size = stored.truncation_size;
                if body_type == BodyType::Mime && truncation_size.is_none() {
                    truncation_size = self.mime_truncation.and_then(truncation_bytes);
                }
                Some(BodyPreference {
                    body_type,
                    truncation_size,
                    all_or_none: stored.all_or_none,
                    preview: stored.preview,
                })
            })
            .collect();
        if preferences.is_empty() {
            // 12.x clients without AirSyncBase preferences: the 2.5-style Truncation says
            // how much plain text they want.
            let mut plain = BodyPreference::new(BodyType::PlainText);
            plain.truncation_size = self.truncation.and_then(truncation_bytes);
            preferences.push(plain);
        }
        if self.mime_support > 0 && !preferences.iter().any(|p| p.body_type == BodyType::Mime) {
            let mut mime = BodyPreference::new(BodyType::Mime);
            mime.truncation_size = self.mime_truncation.and_then(truncation_bytes);
            preferences.push(mime);
        }
        if let Some(cap) = cap {
            for preference in &mut preferences {
                match preference.truncation_size {
                    Some(size) if size <= cap => {}
                    Some(_) => preference.truncation_size = Some(cap),
                    None => {
                        // Our cap, not the client's: AllOrNone only binds its own size.
                        preference.truncation_size = Some(cap);
                        preference.all_or_none = false;
                    }
                }
            }
        }
        preferences
    }

    /// Whether a client change to an item that also changed on the server wins (Conflict 0).
    pub fn client_wins(&self) -> bool {
        self.conflict == Some(0)
    }

    pub fn mime_support(&self) -> MimeSupport {
        match self.mime_support {
            1 => MimeSupport::SmimeOnly,
            2 => MimeSupport::Always,
            _ => MimeSupport::Never,
        }
    }

    /// How many bytes of each message's body to fetch with its summary (after its header
    /// block, which comes whole): enough for the largest truncated body asked for plus MIME
    /// framing, within bounds. A body that needs more is fetched whole (within the batch
    /// budget) or sent truncated.
    pub fn prefix_bytes(&self) -> u32 {
        prefix_bytes_for(&self.preferences(Some(MAX_SYNC_BODY_BYTES)))
    }
}

/// Body bytes to fetch with each summary (see [`CollectionOptions::prefix_bytes`]) for these
/// body preferences; Search fetches its results the same way.
pub fn prefix_bytes_for(preferences: &[BodyPreference]) -> u32 {
    let wanted = preferences
        .iter()
        .map(|preference| match preference.truncation_size {
            Some(size) if preference.body_type == BodyType::Mime => size,
            // Encoded text is larger than decoded (base64: 4/3), and MIME framing and part
            // headers come first.
            Some(size) => size.saturating_mul(3) / 2 + MIN_PREFIX_BYTES,
            None => MAX_PREFIX_BYTES,
        })
        .max()
        .unwrap_or(MIN_PREFIX_BYTES);
    wanted.clamp(MIN_PREFIX_BYTES, MAX_PREFIX_BYTES)
}

fn parse_preference(element: &Element) -> Result<StoredPreference, InvalidOptions> {
    let body_type = element
        .text_of(base::TYPE)
        .and_then(|text| small_number(text, 4))
        .filter(|&value| value >= 1)
        .ok_or(InvalidOptions("BodyPreference Type"))?;
    let truncation_size = match element.text_of(base::TRUNCATION_SIZE) {
        Some(text) => {
            Some(text.trim().parse::<u32>().map_err(|_| InvalidOptions("TruncationSize"))?)
        }
        None => None,
    };
    let all_or_none = match element.text_of(base::ALL_OR_NONE) {
        Some(text) => matches!(text.trim(), "1" | ""),
        None => false,
    };
    let preview = match element.text_of(base::PREVIEW) {
        Some(text) => {
            let value = text.trim().parse::<u32>().map_err(|_| InvalidOptions("Preview"))?;
            (value > 0).then_some(value.min(255))
        }
        None => None,
    };
    Ok(StoredPreference { body_type, truncation_size, all_or_none, preview })
}

fn small_number(text: &str, max: u8) -> Option<u8> {
    text.trim().parse::<u8>().ok().filter(|&value| value <= max)
}

/// MIMETruncation / Truncation codes (MS-ASCMD §2.2.3.109): 0 = no body text, 1..=7 sizes
/// in characters, 8 (and 9) = everything.
fn truncation_bytes(code: u8) -> Option<u32> {
    match code {
        0 => Some(0),
        1 => Some(4_096),
        2 => Some(5_120),
        3 => Some(7_168),
        4 => Some(10_240),
        5 => Some(20_480),
        6 => Some(51_200),
        7 => Some(102_400),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(children: Vec<Element>) -> Element {
        Element::with_children(air_sync::OPTIONS, children)
    }

    fn preference(body_type: &str, size: Option<&str>) -> Element {
        let mut element = Element::new(base::BODY_PREFERENCE).text_child(base::TYPE, body_type);
        if let Some(size) = size {
            element.push(Element::with_text(base::TRUNCATION_SIZE, size));
        }
        element
    }

    #[test]
    fn parses_filter_preferences_and_mime() {
        let element = options(vec![
            Element::with_text(air_sync::FILTER_TYPE, "3"),
            preference("2", Some("5000")),
            Element::with_text(air_sync::MIME_SUPPORT, "1"),
        ]);
        let parsed = CollectionOptions::parse(&[&element]).expect("valid").expect("present");
        assert_eq!(parsed.filter_type, Some(3));
        assert_eq!(parsed.window_start(10 * 86_400), Some(3 * 86_400));
        let preferences = parsed.preferences(Some(MAX_SYNC_BODY_BYTES));
        assert_eq!(preferences.len(), 2);
        assert_eq!(preferences[0].truncation_size, Some(5000));
        assert_eq!(preferences[1].body_type, BodyType::Mime);
        assert_eq!(preferences[1].truncation_size, Some(MAX_SYNC_BODY_BYTES));
        assert_eq!(parsed.prefix_bytes(), MAX_PREFIX_BYTES);
    }

    #[test]
    fn small_truncation_means_a_small_prefix() {
        let element = options(vec![preference("1", Some("200"))]);
        let parsed = CollectionOptions::parse(&[&element]).expect("valid").expect("present");
        assert_eq!(parsed.prefix_bytes(), MIN_PREFIX_BYTES + 300);
    }

    #[test]
    fn refuses_bad_values() {
        for bad in [
            options(vec![Element::with_text(air_sync::FILTER_TYPE, "9")]),
            options(vec![preference("7", None)]),
            options(vec![preference("1", Some("-1"))]),
            options(vec![preference("1", None), preference("1", Some("5"))]),
            options(vec![Element::with_text(air_sync::CONFLICT, "2")]),
        ] {
            assert!(CollectionOptions::parse(&[&bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filter_types_beyond_a_month() {
        let with = |filter| CollectionOptions { filter_type: Some(filter), ..Default::default() };
        assert_eq!(with(0).window_start(1_000_000), None);
        assert_eq!(with(6).window_start(100 * 86_400), Some(10 * 86_400));
        assert_eq!(with(8).window_start(100 * 86_400), None);
    }

    #[test]
    fn other_classes_are_ignored_and_no_options_is_none() {
        assert_eq!(CollectionOptions::parse(&[]), Ok(None));
        let calendar = options(vec![
            Element::with_text(air_sync::CLASS, "Calendar"),
            Element::with_text(air_sync::FILTER_TYPE, "4"),
        ]);
        let parsed = CollectionOptions::parse(&[&calendar]).expect("valid").expect("present");
        assert_eq!(parsed.filter_type, None);
    }
}
