//! Untrusted text made fit for EAS string fields: WBXML inline strings end at NUL and XML 1.0
//! forbids the other C0 controls, so they never reach the encoder; fields are bounded.

/// A one-line header field: controls (including CR/LF) become spaces, runs of whitespace
/// collapse, at most `max_chars` characters.
pub fn clean_field(value: &str, max_chars: usize) -> String {
    if is_clean_ascii_field(value.as_bytes(), max_chars) {
        return value.to_owned();
    }
    clean_field_by_char(value, max_chars)
}

/// Whether `clean_field` would return `bytes` as they are: printable ASCII, single spaces
/// inside, none at either end, not too long. Most header fields are, and one pass over bytes
/// is cheaper than classifying every character (a few fields of every message of a Sync).
fn is_clean_ascii_field(bytes: &[u8], max_chars: usize) -> bool {
    if bytes.len() > max_chars || bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
        return false;
    }
    let mut previous = 0u8;
    bytes.iter().all(|&byte| {
        let fine = (0x21..0x7F).contains(&byte) || (byte == b' ' && previous != b' ');
        previous = byte;
        fine
    })
}

fn clean_field_by_char(value: &str, max_chars: usize) -> String {
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
/// below 0x20 and 0x7F, or 0xC2 0x80–0x9F in UTF-8. Every body a Sync sends passes here, so
/// eight bytes are looked at together, and only a word that may hold a control (most often a
/// line break) byte by byte.
fn has_control_bytes(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let single_byte = words.any(|word| {
        let value = u64::from_le_bytes(word.try_into().unwrap_or_default());
        may_hold_control(value) && word.iter().copied().any(is_single_byte_control)
    }) || words.remainder().iter().copied().any(is_single_byte_control);
    single_byte
        || memchr::memchr_iter(0xC2, bytes)
            .any(|index| bytes.get(index + 1).is_some_and(|next| (0x80..=0x9F).contains(next)))
}

fn is_single_byte_control(byte: u8) -> bool {
    matches!(byte, 0..=0x1F | 0x7F) && !matches!(byte, b'\t' | b'\n' | b'\r')
}

/// Whether one of the eight bytes of `word` is below 0x20 or is 0x7F (it may be a tab or a
/// line break, which the caller keeps). No false negatives: for bytes below 0x80 the high bit
/// of `byte - n` is set exactly when `byte < n`, and `!word` drops bytes of 0x80 and above.
fn may_hold_control(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS;
    let delete = word ^ (ONES * 0x7F);
    let is_delete = delete.wrapping_sub(ONES) & !delete & HIGH_BITS;
    below_space | is_delete != 0
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

    proptest::proptest! {
        /// The shortcut for fields already clean answers as the walk over characters does.
        #[test]
        fn clean_ascii_fields_are_kept_as_the_walk_keeps_them(
            // mostly clean ASCII with the odd run of spaces; then anything
            value in r"[ ab]{0,8}|[ a-c\t\r\n\x00\x7fé]{0,12}",
            max_chars in 0usize..14,
        ) {
            proptest::prop_assert_eq!(
                clean_field(&value, max_chars),
                clean_field_by_char(&value, max_chars)
            );
        }
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

    proptest::proptest! {
        /// The word-at-a-time check finds exactly what a byte-by-byte one does: text of
        /// bytes it must let pass (line breaks, high bytes, C2 not followed by a C1 control),
        /// with at most one control placed anywhere.
        #[test]
        fn control_check_agrees_with_bytewise(
            mut bytes in proptest::collection::vec(
                proptest::sample::select(vec![9u8, 10, 13, 0x20, 0x41, 0x7E, 0x80, 0xA0, 0xC2, 0xFF]),
                0..40,
            ),
            control in proptest::option::of((0usize..40, proptest::sample::select(vec![0u8, 1, 0x1B, 0x1F, 0x7F]))),
        ) {
            if let Some((at, byte)) = control {
                bytes.insert(at.min(bytes.len()), byte);
            }
            let bytewise = bytes.iter().copied().any(is_single_byte_control)
                || bytes.windows(2).any(|pair| pair[0] == 0xC2 && (0x80..=0x9F).contains(&pair[1]));
            proptest::prop_assert_eq!(has_control_bytes(&bytes), bytewise);
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_at_char_boundary("aé", 2), "a");
        assert_eq!(truncate_at_char_boundary("aé", 3), "aé");
        assert_eq!(truncate_at_char_boundary("€", 0), "");
    }
}
