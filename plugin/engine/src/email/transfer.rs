//! Content-Transfer-Encoding (RFC 2045 §6): decoding that never fails and accepts a body cut
//! anywhere, because the prefix may stop in the middle of a part.

use std::borrow::Cow;

/// The transfer encodings that change bytes; 7bit, 8bit, binary and unknown ones are identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    Identity,
    Base64,
    QuotedPrintable,
}

impl TransferEncoding {
    pub fn from_header(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("base64") => Self::Base64,
            Some(v) if v.eq_ignore_ascii_case("quoted-printable") => Self::QuotedPrintable,
            _ => Self::Identity,
        }
    }

    pub fn decode(self, encoded: &[u8]) -> Cow<'_, [u8]> {
        match self {
            Self::Identity => Cow::Borrowed(encoded),
            Self::Base64 => Cow::Owned(decode_base64_lenient(encoded)),
            Self::QuotedPrintable => Cow::Owned(decode_quoted_printable_lenient(encoded)),
        }
    }

    /// Decoded size of an encoded body of `encoded_size` octets (MS-ASAIRS §2.2.2.23
    /// EstimatedDataSize is an estimate). Base64 carries 3 bytes per 4 characters, and
    /// MIME lines of 76 characters plus CRLF: 57 bytes per 78 octets.
    pub fn estimated_decoded_size(self, encoded_size: u64) -> u64 {
        match self {
            Self::Base64 => encoded_size * 57 / 78,
            Self::Identity | Self::QuotedPrintable => encoded_size,
        }
    }
}

/// The value of a base64 character (RFC 4648 §4), `None` outside the alphabet (padding
/// included).
#[inline]
pub(super) fn base64_sextet(byte: u8) -> Option<u8> {
    match BASE64_SEXTETS[usize::from(byte)] {
        NOT_BASE64 => None,
        sextet => Some(sextet),
    }
}

/// Marks a byte outside the base64 alphabet in [`BASE64_SEXTETS`].
const NOT_BASE64: u8 = 0xFF;

/// Each byte's base64 value: one lookup per character of a body, where a chain of range
/// tests cost a branch or four.
const BASE64_SEXTETS: [u8; 256] = {
    let mut table = [NOT_BASE64; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut index = 0;
    while index < alphabet.len() {
        table[alphabet[index] as usize] = index as u8;
        index += 1;
    }
    table
};

/// Base64 that skips anything outside the alphabet (line breaks, garbage) and stops at
/// padding; a trailing partial group still yields its complete bytes.
fn decode_base64_lenient(encoded: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(encoded.len() / 4 * 3 + 3);
    let mut group: u32 = 0;
    let mut sextets_in_group = 0u8;
    for &byte in encoded {
        if byte == b'=' {
            break;
        }
        let Some(sextet) = base64_sextet(byte) else {
            continue;
        };
        group = (group << 6) | u32::from(sextet);
        sextets_in_group += 1;
        if sextets_in_group == 4 {
            decoded.extend_from_slice(&group.to_be_bytes()[1..]);
            group = 0;
            sextets_in_group = 0;
        }
    }
    // Two sextets carry one byte, three carry two.
    match sextets_in_group {
        2 => decoded.push((group >> 4) as u8),
        3 => decoded.extend_from_slice(&((group >> 2) as u16).to_be_bytes()),
        _ => {}
    }
    decoded
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` escapes, soft line breaks `=\r\n`; a malformed or
/// cut escape is kept literally.
fn decode_quoted_printable_lenient(encoded: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut index = 0;
    while index < encoded.len() {
        // Everything up to the next `=` is literal: copied as one run.
        let rest = encoded.get(index..).unwrap_or_default();
        let literal = memchr::memchr(b'=', rest).unwrap_or(rest.len());
        decoded.extend_from_slice(rest.get(..literal).unwrap_or_default());
        index += literal;
        if index >= encoded.len() {
            break;
        }
        let rest = encoded.get(index + 1..).unwrap_or_default();
        match rest {
            [b'\r', b'\n', ..] => index += 3,
            [b'\n', ..] => index += 2,
            [high, low, ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                decoded.push(hex_value(*high) << 4 | hex_value(*low));
                index += 3;
            }
            _ => {
                // Trailing spaces before a soft break are transport padding: skip `= \r\n`.
                let padding = rest.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
                match rest.get(padding..) {
                    Some([b'\r', b'\n', ..]) => index += 1 + padding + 2,
                    Some([b'\n', ..]) => index += 1 + padding + 1,
                    _ => {
                        decoded.push(b'=');
                        index += 1;
                    }
                }
            }
        }
    }
    decoded
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::TransferEncoding::*;
    use super::*;

    #[test]
    fn base64_with_line_breaks_and_padding() {
        assert_eq!(&*Base64.decode(b"SGVs\r\nbG8=\r\n"), b"Hello");
        assert_eq!(&*Base64.decode(b"SGVsbG8h"), b"Hello!");
        assert_eq!(&*Base64.decode(b"SGk="), b"Hi");
    }

    #[test]
    fn base64_table_is_the_rfc_4648_alphabet() {
        for byte in 0..=u8::MAX {
            let expected = match byte {
                b'A'..=b'Z' => Some(byte - b'A'),
                b'a'..=b'z' => Some(byte - b'a' + 26),
                b'0'..=b'9' => Some(byte - b'0' + 52),
                b'+' => Some(62),
                b'/' => Some(63),
                _ => None,
            };
            assert_eq!(base64_sextet(byte), expected, "byte {byte:#04x}");
        }
    }

    #[test]
    fn base64_cut_mid_group_keeps_complete_bytes() {
        assert_eq!(&*Base64.decode(b"SGVsbG"), b"Hell");
        assert_eq!(&*Base64.decode(b"SGVsb"), b"Hel");
        assert_eq!(&*Base64.decode(b"S"), b"");
        assert_eq!(&*Base64.decode(b"!!**SG\x00Vs"), b"Hel");
    }

    #[test]
    fn quoted_printable_escapes_and_soft_breaks() {
        assert_eq!(&*QuotedPrintable.decode(b"caf=E9 =\r\nok"), b"caf\xe9 ok");
        assert_eq!(&*QuotedPrintable.decode(b"a=\nb"), b"ab");
        assert_eq!(&*QuotedPrintable.decode(b"a=  \r\nb"), b"ab");
        assert_eq!(&*QuotedPrintable.decode(b"bad=ZZ end="), b"bad=ZZ end=");
        assert_eq!(&*QuotedPrintable.decode(b"cut=E"), b"cut=E");
    }

    /// The rules one byte at a time, as RFC 2045 §6.7 states them: the oracle for the run-copying
    /// decoder.
    fn quoted_printable_oracle(encoded: &[u8]) -> Vec<u8> {
        let mut decoded = Vec::new();
        let mut index = 0;
        while let Some(&byte) = encoded.get(index) {
            let rest = &encoded[index + 1..];
            let padding = rest.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
            match (byte, rest) {
                (b'=', [high, low, ..]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    decoded.push(hex_value(*high) << 4 | hex_value(*low));
                    index += 3;
                }
                (b'=', _) if rest[padding..].starts_with(b"\r\n") => index += 3 + padding,
                (b'=', _) if rest[padding..].starts_with(b"\n") => index += 2 + padding,
                _ => {
                    decoded.push(byte);
                    index += 1;
                }
            }
        }
        decoded
    }

    proptest::proptest! {
        #[test]
        fn quoted_printable_matches_the_oracle(
            encoded in proptest::collection::vec(proptest::sample::select(b"a=\r\n \tE9z".to_vec()), 0..64),
        ) {
            proptest::prop_assert_eq!(&*QuotedPrintable.decode(&encoded), &quoted_printable_oracle(&encoded)[..]);
        }
    }

    #[test]
    fn identity_for_unknown_encodings() {
        assert_eq!(TransferEncoding::from_header(Some(" 8bit ")), Identity);
        assert_eq!(TransferEncoding::from_header(Some("x-uuencode")), Identity);
        assert_eq!(TransferEncoding::from_header(Some("BASE64")), Base64);
    }

    #[test]
    fn base64_size_estimate_matches_mime_lines() {
        // 57 000 bytes encode to 1 000 lines of 76 characters + CRLF.
        assert_eq!(Base64.estimated_decoded_size(78_000), 57_000);
        assert_eq!(Identity.estimated_decoded_size(10), 10);
    }
}
