//! Charsets: decoding body text to UTF-8 and naming the original charset as a Windows code page
//! for email:InternetCPID (MS-ASEMAIL §2.2.2.40). Decoding never fails: an unknown charset falls
//! back to UTF-8 when the bytes are valid UTF-8, else to windows-1252 (what mail calls latin-1).

use std::borrow::Cow;
use std::cell::RefCell;

use mail_parser::decoders::charsets::map::charset_decoder;

use super::{encoded_words, shifted};

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
        "hz-gb-2312" | "hz" => HZ_GB_2312_CODE_PAGE,
        "big5" | "big5-hkscs" | "cn-big5" | "x-x-big5" => 950,
        "euc-kr" | "cseuckr" => 51949,
        "ks-c-5601-1987" | "ks-c-5601-1989" | "ksc5601" | "cp949" => 949,
        "iso-2022-kr" | "csiso2022kr" => ISO_2022_KR_CODE_PAGE,
        "utf-16" | "utf-16le" => 1200,
        "utf-16be" => 1201,
        "utf-7" | "csutf7" | "unicode-1-1-utf-7" => UTF7_CODE_PAGE,
        _ => UTF8_CODE_PAGE,
    }
}

/// Body bytes (already transfer-decoded) to UTF-8 text.
pub fn decode_to_utf8(bytes: &[u8], charset: Option<&str>) -> String {
    let label = charset.map(str::trim).filter(|l| !l.is_empty());
    let Some(label) = label else {
        return utf8_or_latin1(bytes);
    };
    match code_page_for_charset(Some(label)) {
        // Declared UTF-8 with a few bad bytes: keep the rest, mark the bad ones.
        // Validated first: `from_utf8` checks ASCII a word at a time, the lossy decoder byte
        // by byte, and nearly every body labelled UTF-8 is.
        UTF8_CODE_PAGE if is_utf8_label(label) => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        },
        // us-ascii is the RFC 2045 default and often mislabels UTF-8 or latin-1 text.
        US_ASCII_CODE_PAGE => utf8_or_latin1(bytes),
        // decoded as one U+FFFD by mail-parser's tables (see `shifted`)
        ISO_2022_KR_CODE_PAGE => decode_as("euc-kr", &shifted::iso_2022_kr_to_euc_kr(bytes)),
        HZ_GB_2312_CODE_PAGE => decode_as("gb2312", &shifted::hz_to_gb2312(bytes)),
        UTF7_CODE_PAGE => shifted::utf7_to_string(bytes),
        code_page => match charset_decoder(label.as_bytes()) {
            Some(decode) if is_single_byte(code_page) => decode_single_byte(bytes, decode),
            Some(decode) => decode(bytes),
            None => utf8_or_latin1(bytes),
        },
    }
}

/// Whether `label` is one of the charsets decoded here rather than by mail-parser (see
/// `shifted`), which therefore must not decode it in headers either.
pub fn has_own_decoder(label: &str) -> bool {
    matches!(
        code_page_for_charset(Some(label.trim())),
        ISO_2022_KR_CODE_PAGE | HZ_GB_2312_CODE_PAGE | UTF7_CODE_PAGE
    )
}

const ISO_2022_KR_CODE_PAGE: u32 = 50225;
const HZ_GB_2312_CODE_PAGE: u32 = 52936;
const UTF7_CODE_PAGE: u32 = 65000;

/// `bytes` in the charset `label`, which mail-parser's tables know.
fn decode_as(label: &str, bytes: &[u8]) -> String {
    match charset_decoder(label.as_bytes()) {
        Some(decode) => decode(bytes),
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
/// Here the decoder's 128 non-ASCII characters are looked up in a table, and runs of ASCII
/// (which decodes to itself in every such charset) are copied whole.
fn decode_single_byte(bytes: &[u8], decode: fn(&[u8]) -> String) -> String {
    // Some of these decoders (encoding_rs's, e.g. for cp866) let a leading byte order mark
    // override the label, as browsers do: such text is decoded whole, as the decoder does.
    if starts_with_bom(bytes) {
        return decode(bytes);
    }
    let Some(upper_half) = upper_half(decode) else {
        return decode(bytes);
    };
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 8);
    let mut rest = bytes;
    while !rest.is_empty() {
        let ascii = rest.iter().position(|b| !b.is_ascii()).unwrap_or(rest.len());
        let (kept, after) = rest.split_at(ascii);
        // ASCII is UTF-8 as it is.
        text.push_str(std::str::from_utf8(kept).unwrap_or_default());
        let other = after.iter().position(u8::is_ascii).unwrap_or(after.len());
        let (mapped, after) = after.split_at(other);
        text.extend(mapped.iter().filter_map(|&byte| upper_half.get(usize::from(byte & 0x7F))));
        rest = after;
    }
    text
}

/// What `decode` makes of the bytes 0x80-0xFF, when it decodes every byte alone and keeps
/// ASCII as it is (else none: the caller decodes the usual way). Worked out once per decoder
/// (known by its address; labels that share a code page may not share a decoder), as a page
/// of a Sync has many messages in a few charsets.
fn upper_half(decode: fn(&[u8]) -> String) -> Option<[char; 128]> {
    type Known = Vec<(usize, Option<[char; 128]>)>;
    thread_local! {
        static KNOWN: RefCell<Known> = const { RefCell::new(Vec::new()) };
    }
    if let Some(known) = KNOWN.with_borrow(|known| {
        known.iter().find(|(address, _)| *address == decode as usize).map(|(_, half)| *half)
    }) {
        return known;
    }
    let all_bytes: Vec<u8> = (0..=u8::MAX).collect();
    let decoded: Vec<char> = decode(&all_bytes).chars().collect();
    let ascii_kept = decoded.len() == all_bytes.len()
        && decoded.iter().zip(0..0x80u8).all(|(&ch, byte)| ch == char::from(byte));
    let half = match decoded.get(0x80..) {
        Some(upper) if ascii_kept => <[char; 128]>::try_from(upper).ok(),
        _ => None,
    };
    KNOWN.with_borrow_mut(|known| known.push((decode as usize, half)));
    half
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

/// The message with its top-level header block made valid UTF-8 for mail-parser, which
/// would otherwise lose text: raw 8-bit header lines are taken as UTF-8 when they are, else as
/// latin-1 (it would replace every 8-bit byte with U+FFFD), and encoded words in the charsets
/// it decodes wrongly become UTF-8 words (`encoded_words`). The body bytes are untouched.
pub fn header_block_as_utf8(raw: &[u8]) -> Cow<'_, [u8]> {
    let header_end = header_block_end(raw);
    let (header, body) = raw.split_at(header_end);
    let header = match std::str::from_utf8(header) {
        Ok(_) => Cow::Borrowed(header),
        Err(_) => Cow::Owned(lines_as_utf8(header)),
    };
    let header = match encoded_words::shifted_words_as_utf8(&header) {
        Some(rewritten) => Cow::Owned(rewritten),
        None => header,
    };
    match header {
        Cow::Borrowed(_) => Cow::Borrowed(raw),
        Cow::Owned(mut rewritten) => {
            rewritten.extend_from_slice(body);
            Cow::Owned(rewritten)
        }
    }
}

/// Each line of `header` as it is when it is UTF-8, else read as latin-1.
fn lines_as_utf8(header: &[u8]) -> Vec<u8> {
    let mut rewritten = Vec::with_capacity(header.len() + header.len() / 2);
    for line in header.split_inclusive(|&b| b == b'\n') {
        if std::str::from_utf8(line).is_ok() {
            rewritten.extend_from_slice(line);
        } else {
            rewritten.extend_from_slice(utf8_or_latin1(line).as_bytes());
        }
    }
    rewritten
}

/// Offset just past the empty line (`\n` or `\r\n`) that ends the header block, or the end
/// of the data. Every message of a Sync page goes through it, with its whole header block
/// (delivery traces and signatures make that kilobytes): line ends are found with `memchr`
/// (16 bytes at a time) rather than by a look at every byte.
pub fn header_block_end(raw: &[u8]) -> usize {
    let mut line_start = 0;
    for newline in memchr::memchr_iter(b'\n', raw) {
        if matches!(&raw[line_start..newline], b"" | b"\r") {
            return newline + 1;
        }
        line_start = newline + 1;
    }
    raw.len()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// The header block's end as a split into lines finds it.
    fn header_block_end_by_lines(raw: &[u8]) -> usize {
        let mut line_start = 0;
        for line in raw.split_inclusive(|&b| b == b'\n') {
            line_start += line.len();
            if line == b"\n" || line == b"\r\n" {
                return line_start;
            }
        }
        raw.len()
    }

    proptest! {
        #[test]
        fn the_header_block_ends_where_lines_say(
            raw in prop::collection::vec(prop::sample::select(b"\r\nab: \t".to_vec()), 0..80)
        ) {
            prop_assert_eq!(header_block_end(&raw), header_block_end_by_lines(&raw));
        }

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

    /// Charsets found in real mailboxes (bytes made with Python's codecs, an independent
    /// encoder), labels spelled as mail programs write them.
    #[test]
    fn decodes_the_charsets_a_mailbox_holds() {
        let gruesse = "Gr\u{fc}\u{df}e \u{65e5}\u{672c}";
        let zhongwen = "\u{4e2d}\u{6587}\u{90ae}\u{4ef6}";
        let annyeong = "\u{c548}\u{b155}\u{d558}\u{c138}\u{c694}";
        let privet_mir = "\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442} \u{43c}\u{438}\u{440}";
        let cases: &[(&[u8], &str, &str)] = &[
            (b"Hi Mom +Jjo! +ZeVnLIqe-", "utf-7", "Hi Mom \u{263a}! \u{65e5}\u{672c}\u{8a9e}"),
            (b"G\x00r\x00\xfc\x00\xdf\x00e\x00 \x00\xe5e,g", "UTF-16LE", gruesse),
            (b"\x00G\x00r\x00\xfc\x00\xdf\x00e\x00 e\xe5g,", "utf-16be", gruesse),
            (b"\xff\xfeG\x00r\x00\xfc\x00\xdf\x00e\x00 \x00\xe5e,g", "utf-16", gruesse),
            (
                b"\xd6\xd0\xce\xc4\xd3\xca\xbc\xfe \xa2\xe3",
                "gb18030",
                &format!("{zhongwen} \u{20ac}"),
            ),
            (b"\xd6\xd0\xce\xc4\xd3\xca\xbc\xfe", "gbk", zhongwen),
            (b"\xd6\xd0\xce\xc4\xd3\xca\xbc\xfe", "gb2312", zhongwen),
            (b"\xc1c\xc5\xe9\xa4\xa4\xa4\xe5", "big5", "\u{7e41}\u{9ad4}\u{4e2d}\u{6587}"),
            (b"\xbe\xc8\xb3\xe7\xc7\xcf\xbc\xbc\xbf\xe4", "euc-kr", annyeong),
            (b"\xbe\xc8\xb3\xe7\xc7\xcf\xbc\xbc\xbf\xe4", "ks_c_5601-1987", annyeong),
            (b"\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2", "koi8-r", privet_mir),
            (
                b"\xf0\xd2\xc9\xd7\xa6\xd4 \xd3\xd7\xa6\xd4",
                "koi8-u",
                "\u{41f}\u{440}\u{438}\u{432}\u{456}\u{442} \u{441}\u{432}\u{456}\u{442}",
            ),
            (b"\xcf\xf0\xe8\xe2\xe5\xf2 \xec\xe8\xf0", "windows-1251", privet_mir),
            (
                b"\xaf\xf3\xb3\xe6 g\xea\xb6l\xb1",
                "iso-8859-2",
                "\u{17b}\u{f3}\u{142}\u{107} g\u{119}\u{15b}l\u{105}",
            ),
            (
                b"\xca\xe1\xeb\xe7\xec\xdd\xf1\xe1",
                "iso-8859-7",
                "\u{39a}\u{3b1}\u{3bb}\u{3b7}\u{3bc}\u{3ad}\u{3c1}\u{3b1}",
            ),
            (b"\xf9\xec\xe5\xed", "iso-8859-8-i", "\u{5e9}\u{5dc}\u{5d5}\u{5dd}"),
            (b"\xe3\xd1\xcd\xc8\xc7", "windows-1256", "\u{645}\u{631}\u{62d}\u{628}\u{627}"),
            (
                b"\xa4\xb3\xa4\xf3\xa4\xcb\xa4\xc1\xa4\xcf",
                "euc-jp",
                "\u{3053}\u{3093}\u{306b}\u{3061}\u{306f}",
            ),
            (b"\xca\xc7\xd1\xca\xb4\xd5", "tis-620", "\u{e2a}\u{e27}\u{e31}\u{e2a}\u{e14}\u{e35}"),
            (b"\xa4uro \xbduvre", "iso-8859-15", "\u{20ac}uro \u{153}uvre"),
            (b"\x8f\xe0\xa8\xa2\xa5\xe2", "cp866", "\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}"),
            (b"\x1b$)C\x0e>H3g\x0f", "ISO-2022-KR", "\u{c548}\u{b155}"),
            (b"~{VPNDSJ<~~} ~~ ok", "HZ-GB-2312", &format!("{zhongwen} ~ ok")),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|&(bytes, label, text)| {
                let decoded = decode_to_utf8(bytes, Some(label));
                (decoded != text).then(|| format!("{label}: {decoded:?}, want {text:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
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
