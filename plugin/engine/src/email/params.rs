//! MIME parameter values as servers hand them over in BODYSTRUCTURE: RFC 2231 extended and
//! continued values (`filename*=UTF-8''%E2%82%AC.pdf`, `name*0*=`, `name*1=`) and the
//! widespread non-standard RFC 2047 encoded words in quoted values (`name="=?UTF-8?B?...?="`).
//! Servers differ in whether they decode these, so both raw and decoded values must work.

use mail_parser::{HeaderValue, parsers::MessageStream};

use super::charset::decode_to_utf8;
use super::encoded_words::shifted_words_as_utf8;

/// RFC 2231 continuations joined per parameter; more are ignored.
const MAX_CONTINUATIONS: usize = 64;

/// The decoded value of parameter `name` (case-insensitive), if present.
pub fn decoded_param(params: &[(String, String)], name: &str) -> Option<String> {
    let mut plain: Option<&str> = None;
    let mut segments: Vec<(u32, bool, &str)> = Vec::new();
    for (key, value) in params {
        let key = key.trim();
        if key.eq_ignore_ascii_case(name) {
            plain = plain.or(Some(value));
            continue;
        }
        let Some(suffix) = strip_prefix_ignore_case(key, name).and_then(|s| s.strip_prefix('*'))
        else {
            continue;
        };
        // `name*` is one extended value; `name*N` / `name*N*` are continuations.
        let (number, extended) = match suffix.strip_suffix('*') {
            Some(number) => (number, true),
            None if suffix.is_empty() => ("0", true),
            None => (suffix, false),
        };
        if let Ok(number) = number.parse::<u32>()
            && segments.len() < MAX_CONTINUATIONS
        {
            segments.push((number, extended, value));
        }
    }
    if segments.is_empty() {
        return plain.map(decode_encoded_words);
    }
    segments.sort_by_key(|(number, _, _)| *number);
    segments.dedup_by_key(|(number, _, _)| *number);
    Some(join_rfc2231_segments(&segments))
}

fn strip_prefix_ignore_case<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let head = key.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &key[prefix.len()..])
}

/// RFC 2231 §3–4: the first extended segment carries `charset'language'`; extended segments are
/// percent-encoded, the others literal.
fn join_rfc2231_segments(segments: &[(u32, bool, &str)]) -> String {
    let mut charset: Option<&str> = None;
    let mut bytes = Vec::new();
    for (index, (_, extended, value)) in segments.iter().enumerate() {
        let mut value = *value;
        if index == 0 && *extended {
            let mut pieces = value.splitn(3, '\'');
            if let (Some(declared), Some(_language), Some(rest)) =
                (pieces.next(), pieces.next(), pieces.next())
            {
                charset = Some(declared).filter(|c| !c.is_empty());
                value = rest;
            }
        }
        if *extended {
            percent_decode_into(value.as_bytes(), &mut bytes);
        } else {
            bytes.extend_from_slice(value.as_bytes());
        }
    }
    decode_to_utf8(&bytes, charset)
}

fn percent_decode_into(encoded: &[u8], decoded: &mut Vec<u8>) {
    let mut index = 0;
    while let Some(&byte) = encoded.get(index) {
        let escape = encoded.get(index + 1..index + 3).and_then(|hex| {
            std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (byte, escape) {
            (b'%', Some(value)) => {
                decoded.push(value);
                index += 3;
            }
            _ => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
}

/// RFC 2047 encoded words decoded (any charset mail-parser knows, and those of `shifted`);
/// text without them is returned as is.
pub fn decode_encoded_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_owned();
    }
    // mail-parser's unstructured-header parser reads up to the end of the line: give it one.
    let mut line: Vec<u8> =
        value.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect();
    line.push(b'\n');
    if let Some(rewritten) = shifted_words_as_utf8(&line) {
        line = rewritten;
    }
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn plain_and_encoded_word_values() {
        assert_eq!(decoded_param(&params(&[("NAME", "a.pdf")]), "name").as_deref(), Some("a.pdf"));
        assert_eq!(
            decoded_param(&params(&[("name", "=?UTF-8?B?w6l0w6kucGRm?=")]), "name").as_deref(),
            Some("été.pdf")
        );
        assert_eq!(
            decoded_param(&params(&[("name", "=?iso-8859-1?Q?caf=E9.txt?=")]), "name").as_deref(),
            Some("café.txt")
        );
        assert_eq!(decoded_param(&params(&[("other", "x")]), "name"), None);
    }

    #[test]
    fn rfc2231_extended_and_continued_values() {
        assert_eq!(
            decoded_param(&params(&[("filename*", "UTF-8''%E2%82%AC%20rates.pdf")]), "filename")
                .as_deref(),
            Some("€ rates.pdf")
        );
        let continued = params(&[
            ("filename*1", " part two.txt"),
            ("filename*0*", "iso-8859-1'fr'caf%E9"),
            ("filename", "fallback.txt"),
        ]);
        assert_eq!(decoded_param(&continued, "filename").as_deref(), Some("café part two.txt"));
    }

    #[test]
    fn malformed_rfc2231_does_not_fail() {
        assert_eq!(
            decoded_param(&params(&[("filename*", "%ZZ%4")]), "filename").as_deref(),
            Some("%ZZ%4")
        );
        assert_eq!(decoded_param(&params(&[("filename*x", "a")]), "filename"), None);
        assert_eq!(decode_encoded_words("=?broken"), "=?broken");
    }
}
