//! Untrusted text made fit for EAS string fields: WBXML inline strings end at NUL and XML 1.0
//! forbids the other C0 controls, so they never reach the encoder; fields are bounded.

/// A one-line header field: controls (including CR/LF) become spaces, runs of whitespace
/// collapse, at most `max_chars` characters.
pub fn clean_field(value: &str, max_chars: usize) -> String {
    let mut cleaned = String::with_capacity(value.len().min(max_chars * 4));
    let mut pending_space = false;
    let mut chars = 0;
    for ch in value.chars() {
        if ch.is_whitespace() || ch.is_control() {
            pending_space = !cleaned.is_empty();
            continue;
        }
        if chars + usize::from(pending_space) >= max_chars {
            break;
        }
        if pending_space {
            cleaned.push(' ');
            chars += 1;
            pending_space = false;
        }
        cleaned.push(ch);
        chars += 1;
    }
    cleaned
}

/// Body text: drops NUL and the C0/C1 controls XML cannot carry, keeps tab and line breaks.
pub fn clean_body_text(text: String) -> String {
    if !has_control_bytes(text.as_bytes()) {
        return text;
    }
    text.chars().filter(|&ch| is_allowed_in_body(ch)).collect()
}

/// The fast check for the common case, on bytes instead of decoded characters: the controls
/// `is_allowed_in_body` drops (Unicode Cc: U+0000–U+001F, U+007F–U+009F) are single bytes
/// below 0x20 and 0x7F, or 0xC2 0x80–0x9F in UTF-8.
fn has_control_bytes(bytes: &[u8]) -> bool {
    let single_byte_control =
        |byte: u8| matches!(byte, 0..=0x1F | 0x7F) && !matches!(byte, b'\t' | b'\n' | b'\r');
    bytes.iter().any(|&byte| single_byte_control(byte))
        || memchr::memchr_iter(0xC2, bytes)
            .any(|index| bytes.get(index + 1).is_some_and(|next| (0x80..=0x9F).contains(next)))
}

fn is_allowed_in_body(ch: char) -> bool {
    !ch.is_control() || matches!(ch, '\t' | '\n' | '\r')
}

/// `text` cut to at most `max_bytes` bytes on a UTF-8 character boundary.
pub fn truncate_at_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_lose_controls_and_extra_space() {
        assert_eq!(clean_field("  a\0b\r\n\tc  d ", 100), "a b c d");
        assert_eq!(clean_field("ééé", 2), "éé");
    }

    #[test]
    fn body_keeps_line_breaks_only() {
        assert_eq!(clean_body_text("a\0b\r\n\tc\u{7}\u{85}".into()), "ab\r\n\tc");
        for clean in ["", "plain\r\n\ttext", "é€ 🙂 \u{a0}\u{100}"] {
            assert_eq!(clean_body_text(clean.into()), clean);
        }
        for control in ['\0', '\u{1f}', '\u{7f}', '\u{80}', '\u{9f}'] {
            assert_eq!(clean_body_text(format!("a{control}b")), "ab", "{control:?}");
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_at_char_boundary("aé", 2), "a");
        assert_eq!(truncate_at_char_boundary("aé", 3), "aé");
        assert_eq!(truncate_at_char_boundary("€", 0), "");
    }
}
