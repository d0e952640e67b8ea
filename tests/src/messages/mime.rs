//! MIME encodings the generator needs: RFC 2047 encoded words, quoted-printable, base64 lines,
//! RFC 2231 file names.  Output uses CRLF line ends.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Charset;

/// Longest base64 line, and the longest quoted-printable line including its soft-break `=`.
const LINE_LEN: usize = 76;

/// A header value: as is when ASCII, else RFC 2047 encoded words (B for UTF-8, Q for Latin-1),
/// folded.  Each word stays under 63 characters, so that even `Subject: ` plus the first word
/// keeps within the 78-character line limit.
pub(crate) fn header_text(text: &str, charset: Charset) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let words: Vec<String> = match charset {
        // 15 UTF-8 bytes are at most 15 Latin-1 characters: at most 45 Q characters
        Charset::Latin1 if is_latin1(text) => {
            chunk_chars(text, 15).iter().map(|chunk| q_word_latin1(chunk)).collect()
        }
        // 36 bytes are 48 base64 characters
        _ => chunk_chars(text, 36).iter().map(|chunk| b_word_utf8(chunk)).collect(),
    };
    // whitespace between adjacent encoded words is not part of the text (RFC 2047 section 6.2)
    words.join("\r\n ")
}

/// A short non-ASCII phrase (a display name) as one encoded word: some decoders put a space
/// between adjacent encoded words of an address phrase, so names are never split.
pub(crate) fn single_encoded_word(text: &str, charset: Charset) -> String {
    match charset {
        Charset::Latin1 if is_latin1(text) => q_word_latin1(text),
        _ => b_word_utf8(text),
    }
}

fn is_latin1(text: &str) -> bool {
    text.chars().all(|c| u32::from(c) <= 0xFF)
}

/// Splits at character boundaries into pieces of at most `max_bytes` UTF-8 bytes.
fn chunk_chars(text: &str, max_bytes: usize) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for (index, ch) in text.char_indices() {
        if index + ch.len_utf8() - start > max_bytes {
            chunks.push(&text[start..index]);
            start = index;
        }
    }
    chunks.push(&text[start..]);
    chunks
}

fn b_word_utf8(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", STANDARD.encode(text.as_bytes()))
}

fn q_word_latin1(text: &str) -> String {
    let mut out = String::from("=?ISO-8859-1?Q?");
    for byte in to_latin1(text) {
        match byte {
            b' ' => out.push('_'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                out.push(char::from(byte));
            }
            _ => push_hex_escape(&mut out, b'=', byte),
        }
    }
    out.push_str("?=");
    out
}

/// Text in the message's charset; characters Latin-1 lacks become `?` (the generator avoids them).
pub(crate) fn encode_text(text: &str, charset: Charset) -> Vec<u8> {
    match charset {
        Charset::Latin1 => to_latin1(text),
        Charset::Ascii | Charset::Utf8 => text.as_bytes().to_vec(),
    }
}

fn to_latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
}

/// Quoted-printable of text whose lines end in CRLF (hard line breaks stay line breaks).
pub(crate) fn quoted_printable(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len() * 11 / 10);
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    for (number, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut width = 0;
        for (index, &byte) in line.iter().enumerate() {
            let at_end = index + 1 == line.len();
            let literal = matches!(byte, 33..=60 | 62..=126) || (byte == b' ' && !at_end);
            let len = if literal { 1 } else { 3 };
            // soft break, keeping room for the '=' that ends the broken line
            if width + len > LINE_LEN - 1 {
                out.push_str("=\r\n");
                width = 0;
            }
            if literal {
                out.push(char::from(byte));
            } else {
                push_hex_escape(&mut out, b'=', byte);
            }
            width += len;
        }
        if number + 1 < lines.len() {
            out.push_str("\r\n");
        }
    }
    out
}

/// `=XX` / `%XX` without a formatting machinery per byte (10,000 messages are generated at once).
fn push_hex_escape(out: &mut String, marker: u8, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(char::from(marker));
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0xF)]));
}

/// Base64 in lines of 76 characters, each ending in CRLF.
pub(crate) fn base64_lines(data: &[u8]) -> String {
    let encoded = STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE_LEN * 2 + 2);
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        // base64 is ASCII, so any byte offset is a character boundary
        let (line, tail) = rest.split_at(rest.len().min(LINE_LEN));
        out.push_str(line);
        out.push_str("\r\n");
        rest = tail;
    }
    out
}

/// A `filename` parameter: plain when ASCII, else RFC 2231 (`filename*=UTF-8''%C3%9C...`).
pub(crate) fn filename_param(name: &str) -> String {
    if name.is_ascii() {
        return format!("filename=\"{name}\"");
    }
    let mut out = String::from("filename*=UTF-8''");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._".contains(&byte) {
            out.push(char::from(byte));
        } else {
            push_hex_escape(&mut out, b'%', byte);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_headers_stay_plain_and_others_are_encoded() {
        assert_eq!(header_text("Hello", Charset::Utf8), "Hello");
        assert_eq!(header_text("Grüße", Charset::Utf8), "=?UTF-8?B?R3LDvMOfZQ==?=");
        assert_eq!(header_text("Köln Café", Charset::Latin1), "=?ISO-8859-1?Q?K=F6ln_Caf=E9?=");
    }

    #[test]
    fn long_encoded_headers_are_folded_into_short_words() {
        let subject = "Überprüfung der Änderungen am Straßenbahn-Fahrplan für nächste Woche";
        let encoded = header_text(subject, Charset::Utf8);
        assert!(encoded.split("\r\n ").count() > 1);
        assert!(encoded.split("\r\n ").all(|word| word.len() <= 62));
    }

    #[test]
    fn quoted_printable_breaks_long_lines_and_escapes() {
        let line = "é".repeat(40) + " end ";
        let encoded = quoted_printable(format!("{line}\r\nx=y").as_bytes());
        assert!(encoded.lines().all(|l| l.len() <= 76), "{encoded}");
        assert!(encoded.contains("=C3=A9"));
        assert!(encoded.contains("end=20\r\nx=3Dy"), "{encoded}");
    }

    #[test]
    fn base64_lines_are_76_wide() {
        let encoded = base64_lines(&[7u8; 100]);
        let lines: Vec<&str> = encoded.split("\r\n").collect();
        assert_eq!(lines[0].len(), 76);
        assert_eq!(lines.last(), Some(&""));
    }

    #[test]
    fn non_ascii_file_names_use_rfc2231() {
        assert_eq!(filename_param("a.pdf"), "filename=\"a.pdf\"");
        assert_eq!(filename_param("Ü 1.pdf"), "filename*=UTF-8''%C3%9C%201.pdf");
    }
}
