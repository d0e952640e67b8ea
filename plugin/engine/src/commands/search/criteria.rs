//! Small parsers shared by Search, Find, ResolveRecipients and Settings Oof: result ranges,
//! EAS dateTime values, booleans, body preferences and the free-text query language.
//!
//! Everything here reads client input: malformed values give `None` or an error, never a
//! panic, and every size is bounded.

use crate::email::{BodyPreference, BodyType, MimeSupport};
use eas_wbxml::Element;
use eas_wbxml::tags::air_sync_base as base;

/// Longest FreeText accepted, in bytes; a longer one is "too complex".
pub const MAX_FREE_TEXT_BYTES: usize = 512;

/// Words of a FreeText query (IMAP TEXT criteria, all of which must match).
pub const MAX_FREE_TEXT_WORDS: usize = 16;

/// Characters of one search word; longer words are cut (IMAP matches substrings, so a cut word
/// still finds what the whole word finds).
const MAX_WORD_CHARS: usize = 128;

/// A zero-based, inclusive `m-n` range of results (MS-ASCMD §2.2.3.143).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultRange {
    pub first: usize,
    pub last: usize,
}

impl ResultRange {
    /// The largest index accepted at all (the value is untrusted; Find allows up to 999).
    const MAX_INDEX: usize = 1_000_000;

    pub fn parse(text: &str) -> Option<ResultRange> {
        let (first, last) = text.trim().split_once('-')?;
        let number = |text: &str| {
            let text = text.trim();
            if text.is_empty() || text.len() > 7 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            text.parse::<usize>().ok().filter(|&n| n <= Self::MAX_INDEX)
        };
        let (first, last) = (number(first)?, number(last)?);
        (first <= last).then_some(ResultRange { first, last })
    }

    /// How many results the range asks for.
    pub fn len(self) -> usize {
        self.last - self.first + 1
    }

    /// The indexes of `total` results it selects, at most `cap` of them; `None` when it starts
    /// past the end.
    pub fn within(self, total: usize, cap: usize) -> Option<std::ops::Range<usize>> {
        if self.first >= total {
            return None;
        }
        let end = (self.last + 1).min(total).min(self.first + cap);
        Some(self.first..end)
    }

    /// The `m-n` of results `[start, end)` actually returned.
    pub fn text(start: usize, end: usize) -> String {
        format!("{start}-{}", end.saturating_sub(1).max(start))
    }
}

/// An EAS dateTime (MS-ASDTYPE §2.3) as unix seconds: `YYYY-MM-DDTHH:MM:SS[.fff]Z`, the
/// trailing `Z` optional; also the compact form `YYYYMMDDTHHMMSSZ`. Years 1601–9999.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    // Byte offsets below assume ASCII.
    if !text.is_ascii() {
        return None;
    }
    let text = text.strip_suffix(['Z', 'z']).unwrap_or(text);
    let (date, time) = text.split_once(['T', 't'])?;
    let (year, month, day) = if date.len() == 8 {
        (digits(&date[0..4])?, digits(&date[4..6])?, digits(&date[6..8])?)
    } else {
        let mut parts = date.split('-');
        let year = digits(parts.next().filter(|p| p.len() == 4)?)?;
        let month = digits(parts.next().filter(|p| p.len() == 2)?)?;
        let day = digits(parts.next().filter(|p| p.len() == 2)?)?;
        if parts.next().is_some() {
            return None;
        }
        (year, month, day)
    };
    let time = time.split_once('.').map_or(time, |(whole, fraction)| {
        if fraction.bytes().all(|b| b.is_ascii_digit()) { whole } else { "" }
    });
    let (hour, minute, second) = if time.len() == 6 && !time.contains(':') {
        (digits(&time[0..2])?, digits(&time[2..4])?, digits(&time[4..6])?)
    } else {
        let mut parts = time.split(':');
        let hour = digits(parts.next().filter(|p| p.len() == 2)?)?;
        let minute = digits(parts.next().filter(|p| p.len() == 2)?)?;
        let second = digits(parts.next().filter(|p| p.len() == 2)?)?;
        if parts.next().is_some() {
            return None;
        }
        (hour, minute, second)
    };
    let valid = (1601..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A boolean element (MS-ASDTYPE §2.1): present and empty means true. `None` when the
/// element is absent; `Some(None)` for a value that is not a boolean.
pub fn boolean(element: Option<&Element>) -> Option<Option<bool>> {
    let element = element?;
    Some(match element.text().map(str::trim) {
        None | Some("" | "1") => Some(true),
        Some("0") => Some(false),
        Some(_) => None,
    })
}

/// A small decimal number (digits only, at most 9 of them).
pub fn decimal(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// airsyncbase:BodyPreference (MS-ASAIRS §2.2.2.12); `None` when malformed.
pub fn body_preference(element: &Element) -> Option<BodyPreference> {
    let code = decimal(element.text_of(base::TYPE)?)?;
    let body_type = BodyType::from_code(u8::try_from(code).ok()?)?;
    let truncation_size = match element.text_of(base::TRUNCATION_SIZE) {
        Some(text) => Some(decimal(text)?),
        None => None,
    };
    let all_or_none = match boolean(element.child(base::ALL_OR_NONE)) {
        None => false,
        Some(value) => value?,
    };
    let preview = match element.text_of(base::PREVIEW) {
        Some(text) => Some(decimal(text)?),
        None => None,
    };
    Some(BodyPreference { body_type, truncation_size, all_or_none, preview })
}

/// airsync:MIMESupport (MS-ASCMD §2.2.3.110).
pub fn mime_support(element: &Element) -> Option<MimeSupport> {
    match element.text().map(str::trim) {
        Some("0") => Some(MimeSupport::Never),
        Some("1") => Some(MimeSupport::SmimeOnly),
        Some("2") => Some(MimeSupport::Always),
        _ => None,
    }
}

/// What a FreeText query asks the mailbox for: words that must all occur, and at most one
/// header condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextQuery {
    pub words: Vec<String>,
    /// (header field, substring), from a `from:` / `to:` / `cc:` / `subject:` term.
    pub header: Option<(String, String)>,
}

impl TextQuery {
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.header.is_none()
    }

    fn push_word(&mut self, word: String) {
        if !word.is_empty() && !self.words.contains(&word) {
            self.words.push(word);
        }
    }

    /// The words as one IMAP TEXT query (every word must occur).
    pub fn text(&self) -> Option<String> {
        (!self.words.is_empty()).then(|| self.words.join(" "))
    }
}

/// The query cannot be answered the way the client meant it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooComplex;

/// Reads FreeText, which 16.1 defines as KQL (MS-ASCMD §2.2.3.73): plain words (all must
/// match, case-insensitively, anywhere in the headers or body), `"quoted phrases"` (their
/// words), a trailing `*` (IMAP matches substrings anyway), `AND` (implied), and one
/// `from:` / `to:` / `cc:` / `subject:` term, which becomes a header condition (a second one
/// is searched as words). `OR` and `NOT` cannot be expressed with the mailbox capability and
/// make the query too complex, as do overlong queries.
pub fn parse_free_text(text: &str) -> Result<TextQuery, TooComplex> {
    if text.len() > MAX_FREE_TEXT_BYTES {
        return Err(TooComplex);
    }
    let mut query = TextQuery::default();
    for (term, quoted) in terms(text) {
        if !quoted {
            match term.as_str() {
                "AND" | "&&" => continue,
                "OR" | "NOT" | "||" => return Err(TooComplex),
                _ => {}
            }
            if let Some((field, value)) = term.split_once(':')
                && let Some(header) = header_field(field)
            {
                let value = clean_word(value);
                if value.is_empty() {
                    continue;
                }
                if query.header.is_none() {
                    query.header = Some((header.to_owned(), value));
                } else {
                    // One header condition only: the value must still occur somewhere.
                    query.push_word(value);
                }
                continue;
            }
        }
        for word in term.split_whitespace() {
            query.push_word(clean_word(word));
        }
    }
    if query.words.len() > MAX_FREE_TEXT_WORDS {
        return Err(TooComplex);
    }
    Ok(query)
}

/// Whitespace-separated terms; a double-quoted run is one term (flagged as quoted).
fn terms(text: &str) -> Vec<(String, bool)> {
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    for ch in text.chars() {
        match ch {
            '"' => {
                if !current.trim().is_empty() {
                    terms.push((current.trim().to_owned(), in_quotes));
                }
                current.clear();
                in_quotes = !in_quotes;
            }
            ch if ch.is_whitespace() && !in_quotes => {
                if !current.is_empty() {
                    terms.push((std::mem::take(&mut current), false));
                }
            }
            ch if ch.is_control() => {}
            ch => current.push(ch),
        }
    }
    if !current.trim().is_empty() {
        terms.push((current.trim().to_owned(), in_quotes));
    }
    terms
}

fn header_field(field: &str) -> Option<&'static str> {
    match field.to_ascii_lowercase().as_str() {
        "from" => Some("From"),
        "to" => Some("To"),
        "cc" => Some("Cc"),
        "subject" => Some("Subject"),
        _ => None,
    }
}

/// A word as the mailbox gets it: parentheses and a trailing wildcard removed, bounded.
fn clean_word(word: &str) -> String {
    word.trim_matches(|c: char| c == '(' || c == ')' || c == '*' || c.is_whitespace())
        .chars()
        .take(MAX_WORD_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(ResultRange::parse("0-9"), Some(ResultRange { first: 0, last: 9 }));
        assert_eq!(ResultRange::parse(" 10 - 19 ").map(ResultRange::len), Some(10));
        for bad in ["", "5", "9-0", "-1-3", "a-b", "0-99999999", "0--1"] {
            assert_eq!(ResultRange::parse(bad), None, "{bad}");
        }
        let range = ResultRange { first: 5, last: 50 };
        assert_eq!(range.within(20, 100), Some(5..20));
        assert_eq!(range.within(100, 10), Some(5..15));
        assert_eq!(range.within(5, 100), None);
        assert_eq!(ResultRange::text(5, 20), "5-19");
    }

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_datetime("2024-02-29T12:34:56.000Z"), Some(1_709_210_096));
        assert_eq!(parse_datetime("2024-02-29T12:34:56Z"), Some(1_709_210_096));
        assert_eq!(parse_datetime("20240229T123456Z"), Some(1_709_210_096));
        assert_eq!(parse_datetime("2000-02-29T00:00:00.000Z"), Some(951_782_400));
        assert_eq!(parse_datetime("1969-12-31T23:59:59.000Z"), Some(-1));
        for bad in [
            "",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00",
            "2024-01-01T24:00:00Z",
            "24-01-01T00:00:00Z",
            "2024-01-01T00:00:00.x1Z",
            "２０２４-01-01T00:00:00Z",
            "1é€1T000000Z",
            "20240é1T000000Z",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn free_text() {
        let query = parse_free_text("  lunch  \"next friday\" AND menu* ").expect("parses");
        assert_eq!(query.words, ["lunch", "next", "friday", "menu"]);
        assert_eq!(query.text().as_deref(), Some("lunch next friday menu"));
        let query = parse_free_text("from:ann@example.org subject:(budget) to:bob").expect("ok");
        assert_eq!(query.header, Some(("From".to_owned(), "ann@example.org".to_owned())));
        assert_eq!(query.words, ["budget", "bob"]);
        assert_eq!(parse_free_text("a OR b"), Err(TooComplex));
        assert_eq!(parse_free_text(&"x".repeat(600)), Err(TooComplex));
        let many: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
        assert_eq!(parse_free_text(&many.join(" ")), Err(TooComplex));
        assert!(parse_free_text("   ").expect("empty is fine").is_empty());
        assert_eq!(parse_free_text("\"unterminated phrase").expect("ok").words.len(), 2);
    }

    #[test]
    fn body_preferences() {
        let element = Element::new(base::BODY_PREFERENCE)
            .text_child(base::TYPE, "2")
            .text_child(base::TRUNCATION_SIZE, "512")
            .empty_child(base::ALL_OR_NONE)
            .text_child(base::PREVIEW, "100");
        let preference = body_preference(&element).expect("valid");
        assert_eq!(preference.body_type, BodyType::Html);
        assert_eq!(preference.truncation_size, Some(512));
        assert!(preference.all_or_none);
        assert_eq!(preference.preview, Some(100));
        let bad = Element::new(base::BODY_PREFERENCE).text_child(base::TYPE, "9");
        assert!(body_preference(&bad).is_none());
        assert!(body_preference(&Element::new(base::BODY_PREFERENCE)).is_none());
    }
}
