//! IMAP wire details shared by the client code: how arguments are quoted.

/// How an argument must travel: as a quoted string, or as a literal when quoting cannot
/// carry it (CR, LF, NUL or 8-bit bytes; RFC 3501 §4.3).
pub enum Argument<'a> {
    Quoted(String),
    Literal(&'a [u8]),
}

pub fn argument(value: &[u8]) -> Argument<'_> {
    if value.iter().all(|&b| (0x01..0x80).contains(&b) && b != b'\r' && b != b'\n') {
        let mut quoted = String::with_capacity(value.len() + 2);
        quoted.push('"');
        for &byte in value {
            if byte == b'"' || byte == b'\\' {
                quoted.push('\\');
            }
            quoted.push(char::from(byte));
        }
        quoted.push('"');
        Argument::Quoted(quoted)
    } else {
        Argument::Literal(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_quoted_with_escapes() {
        match argument(br#"pa"ss\word"#) {
            Argument::Quoted(q) => assert_eq!(q, r#""pa\"ss\\word""#),
            Argument::Literal(_) => panic!("expected quoted"),
        }
    }

    #[test]
    fn eight_bit_and_line_breaks_need_literals() {
        assert!(matches!(argument("pässword".as_bytes()), Argument::Literal(_)));
        assert!(matches!(argument(b"a\r\nb"), Argument::Literal(_)));
        assert!(matches!(argument(b""), Argument::Quoted(_)));
    }
}
