//! Charsets: decoding body text to UTF-8 and naming the original charset as a Windows code page
//! for email:InternetCPID (MS-ASEMAIL §2.2.2.40). Decoding never fails: an unknown charset falls
//! back to UTF-8 when the bytes are valid UTF-8, else to windows-1252 (what mail calls latin-1).

use std::borrow::Cow;

use mail_parser::decoders::charsets::map::charset_decoder;

/// InternetCPID when the message has no text body or the charset is unknown: what we deliver.
pub const UTF8_CODE_PAGE: u32 = 65001;
/// A text part without a charset parameter is us-ascii (RFC 2045 §5.2).
pub const US_ASCII_CODE_PAGE: u32 = 20127;

/// Windows code page of a MIME charset label (IANA names and their common aliases).
pub fn code_page_for_charset(label: Option<&str>) -> u32 {
    let Some(label) = label.map(str::trim).filter(|l| !l.is_empty()) else {
        return US_ASCII_CODE_PAGE;
    };
    let normalized = label.to_ascii_lowercase().replace('_', "-");
    match normalized.as_str() {
        "utf-8" | "utf8" => 65001,
        "us-ascii" | "ascii" | "ansi-x3.4-1968" | "iso646-us" => US_ASCII_CODE_PAGE,
        "iso-8859-1" | "iso8859-1" | "latin1" | "l1" => 28591,
        "iso-8859-2" | "iso8859-2" | "latin2" => 28592,
        "iso-8859-3" | "iso8859-3" => 28593,
        "iso-8859-4" | "iso8859-4" => 28594,
        "iso-8859-5" | "iso8859-5" => 28595,
        "iso-8859-6" | "iso8859-6" => 28596,
        "iso-8859-7" | "iso8859-7" => 28597,
        "iso-8859-8" | "iso8859-8" => 28598,
        "iso-8859-8-i" => 38598,
        "iso-8859-9" | "iso8859-9" | "latin5" => 28599,
        "iso-8859-13" | "iso8859-13" => 28603,
        "iso-8859-15" | "iso8859-15" | "latin9" => 28605,
        "windows-1250" | "cp1250" => 1250,
        "windows-1251" | "cp1251" => 1251,
        "windows-1252" | "cp1252" => 1252,
        "windows-1253" | "cp1253" => 1253,
        "windows-1254" | "cp1254" => 1254,
        "windows-1255" | "cp1255" => 1255,
        "windows-1256" | "cp1256" => 1256,
        "windows-1257" | "cp1257" => 1257,
        "windows-1258" | "cp1258" => 1258,
        "windows-874" | "tis-620" | "iso-8859-11" => 874,
        "koi8-r" => 20866,
        "koi8-u" => 21866,
        "ibm866" | "cp866" => 866,
        "ibm850" | "cp850" => 850,
        "iso-2022-jp" | "csiso2022jp" => 50220,
        "shift-jis" | "sjis" | "x-sjis" | "ms-kanji" | "csshiftjis" | "windows-31j" | "cp932" => {
            932
        }
        "euc-jp" | "x-euc-jp" => 51932,
        "gb2312" | "gbk" | "cp936" | "x-gbk" | "csgb2312" => 936,
        "gb18030" => 54936,
        "hz-gb-2312" => 52936,
        "big5" | "big5-hkscs" | "cn-big5" | "x-x-big5" => 950,
        "euc-kr" | "cseuckr" => 51949,
        "ks-c-5601-1987" | "ks-c-5601-1989" | "ksc5601" | "cp949" => 949,
        "iso-2022-kr" => 50225,
        "utf-16" | "utf-16le" => 1200,
        "utf-16be" => 1201,
        "utf-7" => 65000,
        _ => UTF8_CODE_PAGE,
    }
}

/// Body bytes (already transfer-decoded) to UTF-8 text.
pub fn decode_to_utf8(bytes: &[u8], charset: Option<&str>) -> String {
    let label = charset.map(str::trim).filter(|l| !l.is_empty());
    match label {
        // Declared UTF-8 with a few bad bytes: keep the rest, mark the bad ones.
        Some(l) if code_page_for_charset(Some(l)) == 65001 && is_utf8_label(l) => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        // us-ascii is the RFC 2045 default and often mislabels UTF-8 or latin-1 text.
        Some(l) if code_page_for_charset(Some(l)) == US_ASCII_CODE_PAGE => utf8_or_latin1(bytes),
        Some(l) => match charset_decoder(l.as_bytes()) {
            Some(decode) if is_single_byte(code_page_for_charset(Some(l))) => {
                decode_single_byte(bytes, decode)
            }
            Some(decode) => decode(bytes),
            None => utf8_or_latin1(bytes),
        },
        None => utf8_or_latin1(bytes),
    }
}

/// Code pages of one byte per character (ISO 8859, Windows 125x and 874, KOI8, DOS), where
/// every byte decodes alone.
fn is_single_byte(code_page: u32) -> bool {
    matches!(code_page, 28591..=28605 | 38598 | 1250..=1258 | 874 | 20866 | 21866 | 866 | 850)
}

/// `decode` (a single-byte charset's decoder) over `bytes`, faster: mail-parser's decoders push
/// one character per byte, which was a tenth of a Sync's conversion time for latin-1 mail.
/// Here one call decodes all 256 byte values into a table, and runs of bytes that decode to
/// themselves (ASCII, in every such charset) are copied whole.
fn decode_single_byte(bytes: &[u8], decode: fn(&[u8]) -> String) -> String {
    // Some of these decoders (encoding_rs's, e.g. for cp866) let a leading byte order mark
    // override the label, as browsers do: such text is decoded whole, as the decoder does.
    if starts_with_bom(bytes) {
        return decode(bytes);
    }
    let all_bytes: Vec<u8> = (0..=u8::MAX).collect();
    let table: Vec<char> = decode(&all_bytes).chars().collect();
    let ascii_kept = table.len() == all_bytes.len()
        && table.iter().zip(0..0x80u8).all(|(&ch, byte)| ch == char::from(byte));
    if !ascii_kept {
        return decode(bytes);
    }
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 8);
    let mut rest = bytes;
    while !rest.is_empty() {
        let ascii = rest.iter().position(|b| !b.is_ascii()).unwrap_or(rest.len());
        let (kept, after) = rest.split_at(ascii);
        // ASCII is UTF-8 as it is.
        text.push_str(std::str::from_utf8(kept).unwrap_or_default());
        let other = after.iter().position(u8::is_ascii).unwrap_or(after.len());
        let (mapped, after) = after.split_at(other);
        text.extend(mapped.iter().filter_map(|&byte| table.get(usize::from(byte))));
        rest = after;
    }
    text
}

fn starts_with_bom(bytes: &[u8]) -> bool {
    [&[0xEF, 0xBB, 0xBF][..], &[0xFF, 0xFE], &[0xFE, 0xFF]].iter().any(|bom| bytes.starts_with(bom))
}

fn is_utf8_label(label: &str) -> bool {
    label.eq_ignore_ascii_case("utf-8") || label.eq_ignore_ascii_case("utf8")
}

/// Unlabelled 8-bit text: UTF-8 when it is valid UTF-8, else windows-1252.
pub fn utf8_or_latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => match charset_decoder(b"windows-1252") {
            Some(decode) => decode_single_byte(bytes, decode),
            None => bytes.iter().map(|&b| char::from(b)).collect(),
        },
    }
}

/// The message with its top-level header block made valid UTF-8, line by line: raw 8-bit
/// header lines are taken as UTF-8 when they are, else as latin-1 (mail-parser would otherwise
/// replace every 8-bit byte with U+FFFD). The body bytes are untouched.
pub fn header_block_as_utf8(raw: &[u8]) -> Cow<'_, [u8]> {
    let header_end = header_block_end(raw);
    let (header, body) = raw.split_at(header_end);
    if std::str::from_utf8(header).is_ok() {
        return Cow::Borrowed(raw);
    }
    let mut rewritten = Vec::with_capacity(raw.len() + header.len() / 2);
    for line in header.split_inclusive(|&b| b == b'\n') {
        if std::str::from_utf8(line).is_ok() {
            rewritten.extend_from_slice(line);
        } else {
            rewritten.extend_from_slice(utf8_or_latin1(line).as_bytes());
        }
    }
    rewritten.extend_from_slice(body);
    Cow::Owned(rewritten)
}

/// Offset just past the empty line that ends the header block, or the end of the data.
fn header_block_end(raw: &[u8]) -> usize {
    let mut line_start = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        line_start += line.len();
        if line == b"\n" || line == b"\r\n" {
            return line_start;
        }
    }
    raw.len()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn single_byte_fast_path_equals_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            for label in ["iso-8859-1", "iso-8859-2", "iso-8859-15", "windows-1251", "windows-1252", "koi8-r", "cp866", "windows-874"] {
                prop_assert!(is_single_byte(code_page_for_charset(Some(label))), "{}", label);
                let decode = charset_decoder(label.as_bytes()).expect(label);
                prop_assert_eq!(decode_single_byte(&bytes, decode), decode(&bytes), "{}", label);
            }
        }
    }

    use super::*;

    #[test]
    fn a_leading_byte_order_mark_is_decoded_as_the_decoder_does() {
        // encoding_rs (behind cp866) lets the mark override the label: UTF-16LE here
        let decode = charset_decoder(b"cp866").expect("cp866");
        assert_eq!(decode_single_byte(&[0xFF, 0xFE], decode), decode(&[0xFF, 0xFE]));
        assert_eq!(decode_single_byte(&[0xFF, 0xFE, 0x41, 0x00], decode), "A");
    }

    #[test]
    fn code_pages_of_common_charsets() {
        assert_eq!(code_page_for_charset(Some("UTF-8")), 65001);
        assert_eq!(code_page_for_charset(Some("iso-8859-1")), 28591);
        assert_eq!(code_page_for_charset(Some("Windows-1252")), 1252);
        assert_eq!(code_page_for_charset(Some("us-ascii")), 20127);
        assert_eq!(code_page_for_charset(Some("ISO-2022-JP")), 50220);
        assert_eq!(code_page_for_charset(Some("shift_jis")), 932);
        assert_eq!(code_page_for_charset(Some("x-unknown")), 65001);
        assert_eq!(code_page_for_charset(None), 20127);
    }

    #[test]
    fn decodes_legacy_and_multibyte_charsets() {
        assert_eq!(decode_to_utf8(b"caf\xe9", Some("iso-8859-1")), "café");
        assert_eq!(decode_to_utf8(b"\x93quoted\x94 \x80", Some("windows-1252")), "“quoted” €");
        assert_eq!(
            decode_to_utf8(b"\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd", Some("Shift_JIS")),
            "こんにちは"
        );
        assert_eq!(decode_to_utf8(b"\x1b$B$3$s$K$A$O\x1b(B", Some("iso-2022-jp")), "こんにちは");
    }

    #[test]
    fn unknown_or_missing_charset_falls_back() {
        assert_eq!(decode_to_utf8("é".as_bytes(), Some("x-martian")), "é");
        assert_eq!(decode_to_utf8(b"caf\xe9", Some("x-martian")), "café");
        assert_eq!(decode_to_utf8(b"caf\xe9", None), "café");
        assert_eq!(decode_to_utf8("café".as_bytes(), Some("us-ascii")), "café");
        assert_eq!(decode_to_utf8(b"ok\xff", Some("utf-8")), "ok\u{fffd}");
    }

    #[test]
    fn rewrites_only_bad_header_lines() {
        let raw = b"Subject: caf\xe9\r\nFrom: \xc3\xa9 <a@b>\r\n\r\nbody \xe9";
        let fixed = header_block_as_utf8(raw);
        assert_eq!(&fixed[..], b"Subject: caf\xc3\xa9\r\nFrom: \xc3\xa9 <a@b>\r\n\r\nbody \xe9");
        assert!(matches!(header_block_as_utf8(b"Subject: ok\r\n\r\n\xff"), Cow::Borrowed(_)));
    }
}
