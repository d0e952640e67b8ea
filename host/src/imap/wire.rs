//! IMAP wire details shared by the client code: string quoting and bounded line reading.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest response line accepted; a server sending more is broken or hostile.
pub const MAX_LINE: usize = 64 * 1024;

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

/// Reads one CRLF-terminated line (without the CRLF), refusing lines over [`MAX_LINE`].
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        line.extend_from_slice(chunk);
        let used = chunk.len();
        reader.consume(used);
        if line.len() > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "IMAP response line too long",
            ));
        }
        if found {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(line);
        }
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

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        let mut input: &[u8] = b"* OK ready\r\na1 OK done\r\n";
        assert_eq!(read_line(&mut input).await.expect("line"), b"* OK ready");
        assert_eq!(read_line(&mut input).await.expect("line"), b"a1 OK done");
        assert!(read_line(&mut input).await.is_err());
        let long = vec![b'x'; MAX_LINE + 10];
        let mut input: &[u8] = &long;
        assert!(read_line(&mut input).await.is_err());
    }
}
