//! RFC 2047 encoded words in the charsets whose decoders mail-parser gets wrong (see
//! `shifted`): `=?ISO-2022-KR?B?...?=` is how Korean mail of that era wrote its subjects and
//! names. mail-parser decodes encoded words itself while it parses a header, so such words
//! are rewritten as UTF-8 encoded words beforehand; every other word is left to it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::charset::{decode_to_utf8, has_own_decoder};
use super::transfer::TransferEncoding;

/// Longest charset label (with an RFC 2231 `*language`) taken as one.
const MAX_CHARSET_LEN: usize = 64;

/// `text` with its encoded words in ISO-2022-KR, HZ-GB-2312 or UTF-7 replaced by
/// `=?UTF-8?B?...?=` words of the same text; `None` when it holds none.
pub fn shifted_words_as_utf8(text: &[u8]) -> Option<Vec<u8>> {
    let mut rewritten: Option<Vec<u8>> = None;
    let mut copied_up_to = 0;
    let mut search_from = 0;
    // Every header block of a Sync passes here, and most hold no encoded word: a byte search
    // for `=` costs nothing to set up, where a substring search builds a searcher per call.
    while let Some(found) = memchr::memchr(b'=', &text[search_from..]) {
        let start = search_from + found;
        let Some(word) = EncodedWord::parse(&text[start..]) else {
            search_from = start + 1;
            continue;
        };
        let end = start + word.len;
        search_from = end;
        if !has_own_decoder(word.charset) {
            continue;
        }
        let out = rewritten.get_or_insert_with(|| Vec::with_capacity(text.len() + 32));
        out.extend_from_slice(&text[copied_up_to..start]);
        out.extend_from_slice(b"=?UTF-8?B?");
        out.extend_from_slice(STANDARD.encode(word.decode()).as_bytes());
        out.extend_from_slice(b"?=");
        copied_up_to = end;
    }
    let mut out = rewritten?;
    out.extend_from_slice(&text[copied_up_to..]);
    Some(out)
}

/// `=?charset?B|Q?payload?=` at the start of some bytes.
struct EncodedWord<'a> {
    /// The label without an RFC 2231 language (`ISO-2022-KR*ko`).
    charset: &'a str,
    base64: bool,
    payload: &'a [u8],
    /// Bytes the whole word takes.
    len: usize,
}

impl<'a> EncodedWord<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(b"=?")?;
        let charset_end = rest.iter().take(MAX_CHARSET_LEN + 1).position(|&b| b == b'?')?;
        let label = std::str::from_utf8(&rest[..charset_end]).ok()?;
        let charset = label.split('*').next().unwrap_or(label);
        let base64 = match rest.get(charset_end + 1..charset_end + 3)? {
            [b'B' | b'b', b'?'] => true,
            [b'Q' | b'q', b'?'] => false,
            _ => return None,
        };
        let payload_start = charset_end + 3;
        let payload_len = memchr::memmem::find(&rest[payload_start..], b"?=")?;
        let payload = &rest[payload_start..payload_start + payload_len];
        // An encoded word never holds white space (RFC 2047 §5): the `?=` found is another's.
        if charset.is_empty() || payload.iter().any(u8::is_ascii_whitespace) {
            return None;
        }
        Some(Self { charset, base64, payload, len: 2 + payload_start + payload_len + 2 })
    }

    /// The word's text.
    fn decode(&self) -> String {
        let bytes = match self.base64 {
            true => TransferEncoding::Base64.decode(self.payload).into_owned(),
            false => decode_q(self.payload),
        };
        decode_to_utf8(&bytes, Some(self.charset))
    }
}

/// The Q encoding (RFC 2047 §4.2): quoted-printable where `_` is a space (`=5F` is an
/// underscore); a broken escape is kept. A word holds no white space, so the decoder's
/// soft line breaks cannot occur.
fn decode_q(payload: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = payload.iter().map(|&b| if b == b'_' { b' ' } else { b }).collect();
    TransferEncoding::QuotedPrintable.decode(&spaced).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(text: &str) -> Option<String> {
        shifted_words_as_utf8(text.as_bytes()).map(|b| String::from_utf8(b).expect("ascii"))
    }

    fn utf8_word(text: &str) -> String {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(text))
    }

    #[test]
    fn text_without_shifted_words_is_left_alone() {
        assert_eq!(rewritten("Subject: plain"), None);
        assert_eq!(rewritten("=?UTF-8?B?w6k=?= and =?iso-8859-1?Q?caf=E9?="), None);
        assert_eq!(rewritten("=?broken and =?x?Z?y?= =?utf-7?B?a b?="), None);
    }

    #[test]
    fn iso_2022_kr_words_become_utf8_words() {
        // "한국" in ISO-2022-KR: ESC $ ) C, SO, 0x47 0x51 0x31 0x39, SI
        let raw = b"\x1b$)C\x0eGQ19\x0f";
        let word = format!("=?ISO-2022-KR?B?{}?=", STANDARD.encode(raw));
        assert_eq!(
            rewritten(&format!("Re: {word} ok")),
            Some(format!("Re: {} ok", utf8_word("한국")))
        );
        let with_language = format!("=?iso-2022-kr*ko?b?{}?=", STANDARD.encode(raw));
        assert_eq!(rewritten(&with_language), Some(utf8_word("한국")));
    }

    #[test]
    fn hz_and_utf7_words_in_either_encoding() {
        // "中文" in HZ: ~{ 0x56 0x50 0x4E 0x44 ~}
        assert_eq!(rewritten("=?HZ-GB-2312?Q?~{VPND~}_x?="), Some(utf8_word("中文 x")));
        assert_eq!(
            rewritten("a =?UTF-7?Q?Hi_+AOk-=21?= b"),
            Some(format!("a {} b", utf8_word("Hi é!")))
        );
        let japanese = format!("=?utf-7?B?{}?=", STANDARD.encode("+ZeVnLIqe-"));
        assert_eq!(rewritten(&japanese), Some(utf8_word("日本語")));
    }

    #[test]
    fn a_broken_q_escape_is_kept() {
        assert_eq!(decode_q(b"a=4"), b"a=4");
        assert_eq!(decode_q(b"=ZZ=41_"), b"=ZZA ");
        assert_eq!(decode_q(b"=5F_=+1"), b"_ =+1");
    }
}
