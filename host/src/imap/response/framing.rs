//! Finding the end of one response in the receive buffer without parsing it: a response is a
//! line, unless the line ends in a literal announcement `{n}` (RFC 9051 §4.3), in which case n
//! raw bytes and another line follow. Literal bytes are jumped over, never scanned, so a 20 MB
//! attachment costs no per-byte work here.

/// What one response may cost in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Longest line outside literals.
    pub max_line: usize,
    /// Largest single literal.
    pub max_literal: usize,
    /// Largest whole response, literals included.
    pub max_response: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// The response is the first `n` bytes of the buffer (CRLF included).
    Complete(usize),
    /// More bytes are needed. Scanning can resume at `resume_at`; `wanted` is a lower bound of
    /// the buffer length that could complete the response (to size the next read).
    Incomplete { resume_at: usize, wanted: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    LineTooLong { limit: usize },
    LiteralTooLarge { size: u64, limit: usize },
    ResponseTooLarge { limit: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::LineTooLong { limit } => {
                write!(f, "response line longer than {limit} bytes")
            }
            FrameError::LiteralTooLarge { size, limit } => {
                write!(f, "literal of {size} bytes exceeds the limit of {limit}")
            }
            FrameError::ResponseTooLarge { limit } => {
                write!(f, "response larger than {limit} bytes")
            }
        }
    }
}

/// Looks for the end of the response that starts at `buffer[0]`, resuming at `resume_at` (the
/// start of a line, as returned by an earlier `Incomplete`).
pub fn find_frame(
    buffer: &[u8],
    resume_at: usize,
    limits: &FrameLimits,
) -> Result<Frame, FrameError> {
    let mut line_start = resume_at.min(buffer.len());
    loop {
        let rest = &buffer[line_start..];
        let Some(newline) = memchr::memchr(b'\n', rest) else {
            if rest.len() > limits.max_line {
                return Err(FrameError::LineTooLong { limit: limits.max_line });
            }
            return Ok(Frame::Incomplete { resume_at: line_start, wanted: buffer.len() + 1 });
        };
        if newline > limits.max_line {
            return Err(FrameError::LineTooLong { limit: limits.max_line });
        }
        let line_end = line_start + newline + 1;
        let Some(size) = literal_size(&rest[..newline]) else {
            return Ok(Frame::Complete(line_end));
        };
        if size > limits.max_literal as u64 {
            return Err(FrameError::LiteralTooLarge { size, limit: limits.max_literal });
        }
        // both fit in usize: size <= max_literal
        let after_literal = line_end.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
        if after_literal > limits.max_response {
            return Err(FrameError::ResponseTooLarge { limit: limits.max_response });
        }
        if after_literal >= buffer.len() {
            // the literal, or the line after it, has not fully arrived
            return Ok(Frame::Incomplete { resume_at: line_start, wanted: after_literal + 1 });
        }
        line_start = after_literal;
    }
}

/// The n of a line ending in `{n}` or `{n+}` (CR optional), else `None`.
fn literal_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inside = line.strip_suffix(b"}")?;
    let open = memchr::memrchr(b'{', inside)?;
    let digits = &inside[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |value, &digit| value * 10 + u64::from(digit - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FrameLimits = FrameLimits { max_line: 100, max_literal: 50, max_response: 200 };

    #[test]
    fn plain_lines() {
        assert_eq!(find_frame(b"* OK hi\r\nA1 OK", 0, &LIMITS), Ok(Frame::Complete(9)));
        assert!(matches!(find_frame(b"* OK hi", 0, &LIMITS), Ok(Frame::Incomplete { .. })));
    }

    #[test]
    fn literals_are_jumped_over_even_with_line_ends_inside() {
        let response = b"* 1 FETCH (BODY[] {6}\r\na\r\n{2} UID 1)\r\n";
        assert_eq!(find_frame(response, 0, &LIMITS), Ok(Frame::Complete(response.len())));
        // cut anywhere, it is incomplete and resumes at a line start
        for cut in 1..response.len() {
            match find_frame(&response[..cut], 0, &LIMITS) {
                Ok(Frame::Incomplete { resume_at, wanted }) => {
                    assert!(resume_at == 0 || resume_at == 29);
                    assert!(wanted > cut);
                    assert_eq!(
                        find_frame(response, resume_at, &LIMITS),
                        Ok(Frame::Complete(response.len()))
                    );
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(
            find_frame(b"* 1 FETCH (BODY[] {51}\r\n", 0, &LIMITS),
            Err(FrameError::LiteralTooLarge { size: 51, limit: 50 })
        );
        assert_eq!(
            find_frame(&[b'x'; 101], 0, &LIMITS),
            Err(FrameError::LineTooLong { limit: 100 })
        );
        let mut many = Vec::new();
        for _ in 0..5 {
            many.extend_from_slice(b"X {50}\r\n");
            many.extend_from_slice(&[b'a'; 50]);
        }
        assert_eq!(find_frame(&many, 0, &LIMITS), Err(FrameError::ResponseTooLarge { limit: 200 }));
    }

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_size(b"A {12}"), Some(12));
        assert_eq!(literal_size(b"A {12+}\r"), Some(12));
        assert_eq!(literal_size(b"A ~{0}"), Some(0));
        assert_eq!(literal_size(b"A {}"), None);
        assert_eq!(literal_size(b"A {x}"), None);
        assert_eq!(literal_size(b"A {99999999999999999999}"), None);
        assert_eq!(literal_size(b"* OK done"), None);
    }
}
