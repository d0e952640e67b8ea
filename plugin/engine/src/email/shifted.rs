//! Three 7-bit charsets that mail still holds and that mail-parser's decoders get wrong:
//! ISO-2022-KR (RFC 1557: Korean mail of the 1990s) and HZ-GB-2312 (RFC 1843: Chinese mail
//! and Usenet), which the WHATWG tables it uses decode on purpose as a single U+FFFD, browsers
//! having no use for them, and UTF-7 (RFC 2152), whose decoder there drops the character that
//! ends a base64 run ("+Jjo!" lost its "!").
//!
//! The first two shift into a double-byte set written with the high bits cleared; setting
//! them again gives EUC-KR and GB2312 bytes, which the ordinary decoders take. Lenient as mail
//! needs: a line end always returns to ASCII (RFC 1557 lines start in ASCII; RFC 1843 never
//! lets a GB run cross one), and a byte the scheme does not expect is kept as it is rather
//! than dropped.

use super::transfer::base64_sextet;

/// ISO-2022-KR (`ESC $ ) C` once, then SO ... SI around KS X 1001 text) to EUC-KR.
pub fn iso_2022_kr_to_euc_kr(bytes: &[u8]) -> Vec<u8> {
    const DESIGNATE_KS_X_1001: &[u8] = b"\x1b$)C";
    const SHIFT_OUT: u8 = 0x0e;
    const SHIFT_IN: u8 = 0x0f;
    let mut euc = Vec::with_capacity(bytes.len());
    let mut shifted = false;
    let mut rest = bytes;
    while let Some((&byte, after)) = rest.split_first() {
        if rest.starts_with(DESIGNATE_KS_X_1001) {
            rest = &rest[DESIGNATE_KS_X_1001.len()..];
            continue;
        }
        match byte {
            SHIFT_OUT => shifted = true,
            SHIFT_IN => shifted = false,
            b'\r' | b'\n' => {
                shifted = false;
                euc.push(byte);
            }
            0x21..=0x7e if shifted => euc.push(byte | 0x80),
            _ => euc.push(byte),
        }
        rest = after;
    }
    euc
}

/// HZ (`~{` ... `~}` around GB2312 text, `~~` for a tilde, `~` before a line end to join
/// lines) to GB2312.
pub fn hz_to_gb2312(bytes: &[u8]) -> Vec<u8> {
    let mut gb = Vec::with_capacity(bytes.len());
    let mut in_gb = false;
    let mut rest = bytes;
    while let Some((&byte, after)) = rest.split_first() {
        let next = after.first().copied();
        let taken = match (in_gb, byte, next) {
            (true, b'~', Some(b'}')) => {
                in_gb = false;
                2
            }
            // pairs are taken whole: a tilde inside one ("6~") is a GB byte, not an escape
            (true, 0x21..=0x7e, Some(second @ 0x21..=0x7e)) => {
                gb.extend([byte | 0x80, second | 0x80]);
                2
            }
            (true, b'\r' | b'\n', _) => {
                in_gb = false;
                gb.push(byte);
                1
            }
            (false, b'~', Some(b'~')) => {
                gb.push(b'~');
                2
            }
            (false, b'~', Some(b'{')) => {
                in_gb = true;
                2
            }
            (false, b'~', Some(b'\n')) => 2,
            (false, b'~', Some(b'\r')) if after.get(1) == Some(&b'\n') => 3,
            _ => {
                gb.push(byte);
                1
            }
        };
        rest = &rest[taken..];
    }
    gb
}

/// UTF-7 (RFC 2152): ASCII, with runs of UTF-16 in base64 after a `+`; a run ends at the
/// first byte outside base64, which is text unless it is the `-` that only closes the run.
pub fn utf7_to_string(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&byte, after)) = rest.split_first() {
        if byte != b'+' {
            // not UTF-7 at all (8-bit): read as latin-1 rather than lost
            text.push(char::from(byte));
            rest = after;
            continue;
        }
        if let Some(after_minus) = after.strip_prefix(b"-") {
            text.push('+');
            rest = after_minus;
            continue;
        }
        let run = after.iter().position(|&b| base64_sextet(b).is_none()).unwrap_or(after.len());
        decode_utf16_run(&after[..run], &mut text);
        let tail = &after[run..];
        rest = tail.strip_prefix(b"-").unwrap_or(tail);
    }
    text
}

/// One base64 run of UTF-16 code units; leftover bits (fewer than 16) are padding.
fn decode_utf16_run(run: &[u8], text: &mut String) {
    let (mut bits, mut count) = (0u32, 0u32);
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    for sextet in run.iter().filter_map(|&byte| base64_sextet(byte)) {
        bits = (bits << 6) | u32::from(sextet);
        count += 6;
        if count >= 16 {
            count -= 16;
            units.push((bits >> count) as u16);
            bits &= (1 << count) - 1;
        }
    }
    text.extend(char::decode_utf16(units).map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes: no panic, nothing invented (escapes only ever shrink the text), and
        /// text without escape bytes passes unchanged.
        #[test]
        fn any_bytes_shrink_or_pass(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            prop_assert!(iso_2022_kr_to_euc_kr(&bytes).len() <= bytes.len());
            prop_assert!(hz_to_gb2312(&bytes).len() <= bytes.len());
            if !bytes.iter().any(|&b| matches!(b, 0x0e | 0x0f | 0x1b)) {
                prop_assert_eq!(iso_2022_kr_to_euc_kr(&bytes), bytes.clone());
            }
            if !bytes.contains(&b'~') {
                prop_assert_eq!(hz_to_gb2312(&bytes), bytes.clone());
            }
            // UTF-7 never panics, and text without `+` is read as it is
            let text = utf7_to_string(&bytes);
            if !bytes.contains(&b'+') {
                prop_assert_eq!(text.chars().count(), bytes.len());
            }
        }
    }

    // Expected bytes made with Python's codecs ("iso-2022-kr", "euc-kr", "hz", "gb2312").

    #[test]
    fn utf7_runs_end_where_base64_ends() {
        let cases: &[(&[u8], &str)] = &[
            (b"Hi Mom +Jjo!", "Hi Mom \u{263a}!"),
            (b"Hi Mom -+Jjo--!", "Hi Mom -\u{263a}-!"),
            (b"A+ImIDkQ.", "A\u{2262}\u{391}."),
            (b"1 +- 1", "1 + 1"),
            (b"+2D3eAA ok", "\u{1f600} ok"),
            (b"+ZeVnLIqe-", "\u{65e5}\u{672c}\u{8a9e}"),
            (b"+AGEAYgBj", "abc"),
            (b"caf\xe9 +", "caf\u{e9} "),
        ];
        for &(raw, text) in cases {
            assert_eq!(utf7_to_string(raw), text, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn iso_2022_kr_becomes_euc_kr() {
        let raw = b"\x1b$)C\x0e>H3g\x0f \x0eGO<<?d\x0f\r\nline2 abc \x0eGQ\x0f";
        let euc = b"\xbe\xc8\xb3\xe7 \xc7\xcf\xbc\xbc\xbf\xe4\r\nline2 abc \xc7\xd1";
        assert_eq!(iso_2022_kr_to_euc_kr(raw), euc);
        // a line end returns to ASCII even without SI
        assert_eq!(iso_2022_kr_to_euc_kr(b"\x0e>H\nab"), b"\xbe\xc8\nab");
    }

    #[test]
    fn hz_becomes_gb2312() {
        let raw = b"~{VPNDSJ<~~} ~~ ok\n~{5Z6~PP~}";
        let gb = b"\xd6\xd0\xce\xc4\xd3\xca\xbc\xfe ~ ok\n\xb5\xda\xb6\xfe\xd0\xd0";
        assert_eq!(hz_to_gb2312(raw), gb);
        // "~" before a line end joins the lines; an unknown escape is kept
        assert_eq!(hz_to_gb2312(b"one ~\ntwo ~\r\nthree ~x"), b"one two three ~x");
    }
}
