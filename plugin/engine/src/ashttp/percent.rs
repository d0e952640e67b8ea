//! Percent-decoding and -encoding of query components (RFC 3986 §2.1).
//!
//! Decoding never fails: a `%` that does not start a two-hex-digit escape is kept as a literal
//! `%` (what browsers and the WHATWG URL standard do), so sloppy client escaping is not an error.
//! The result is bytes; each caller decides whether its field must be UTF-8.

/// How a literal `+` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plus {
    /// `application/x-www-form-urlencoded`: `+` is a space. This is how Exchange (ASP.NET) and
    /// the PHP servers decode the plain query, so it is what clients are tested against.
    Space,
    /// Keep `+`: the base64 alphabet uses it.
    Literal,
}

pub(crate) fn decode(input: &str, plus: Plus) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        rest = tail;
        match first {
            b'%' => match escaped_byte(tail) {
                Some(byte) => {
                    decoded.push(byte);
                    rest = tail.get(2..).unwrap_or_default();
                }
                None => decoded.push(b'%'),
            },
            b'+' if plus == Plus::Space => decoded.push(b' '),
            other => decoded.push(other),
        }
    }
    decoded
}

/// The byte of a `%XY` escape, given what follows the `%`.
fn escaped_byte(after_percent: &[u8]) -> Option<u8> {
    match after_percent {
        [high, low, ..] => Some((hex_value(*high)? << 4) | hex_value(*low)?),
        _ => None,
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Escapes everything but RFC 3986 unreserved characters, so the result survives any decoder
/// (including ones that read `+` as a space).
pub(crate) fn encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX[usize::from(byte >> 4)]));
            encoded.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_in_either_case() {
        assert_eq!(decode("a%41%2b%2F%3d", Plus::Space), b"aA+/=");
        assert_eq!(decode("user%40example.com", Plus::Space), b"user@example.com");
    }

    #[test]
    fn plus_handling() {
        assert_eq!(decode("a+b", Plus::Space), b"a b");
        assert_eq!(decode("a+b", Plus::Literal), b"a+b");
        assert_eq!(decode("a%2Bb", Plus::Space), b"a+b");
    }

    #[test]
    fn invalid_escapes_stay_literal() {
        assert_eq!(decode("%", Plus::Space), b"%");
        assert_eq!(decode("%4", Plus::Space), b"%4");
        assert_eq!(decode("a%G1", Plus::Space), b"a%G1");
        assert_eq!(decode("%%41", Plus::Space), b"%A");
        assert_eq!(decode("%4%41", Plus::Space), b"%4A");
        assert_eq!(decode("100%", Plus::Space), b"100%");
    }

    #[test]
    fn yields_non_utf8_bytes() {
        assert_eq!(decode("%FF%C3%28", Plus::Space), [0xFF, 0xC3, 0x28]);
        assert_eq!(decode("é", Plus::Space), "é".as_bytes());
    }

    #[test]
    fn encode_round_trips_every_byte() {
        let all: Vec<u8> = (0..=u8::MAX).collect();
        let encoded = encode(&all);
        assert!(encoded.bytes().all(|b| b.is_ascii_graphic() && b != b'+' && b != b'&'));
        assert_eq!(decode(&encoded, Plus::Space), all);
        assert_eq!(encode(b"5:12 a+b"), "5%3A12%20a%2Bb");
    }
}
