//! Reading the lexical pieces of one response (RFC 9051 §4, RFC 3501 §4 and §9) straight out of
//! the receive buffer: atoms, numbers, quoted strings, literals, NIL and parenthesised lists.
//!
//! A frame holds a whole response with its literals inline (`{5}\r\nhello`), so every piece is a
//! slice of the frame; only quoted strings with escapes are copied.

use std::borrow::Cow;
use std::fmt;

/// Where and why a response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub position: usize,
    pub expected: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} at byte {}", self.expected, self.position)
    }
}

impl std::error::Error for ParseError {}

pub type ParseResult<T> = Result<T, ParseError>;

/// Which brackets an atom may contain. RFC 9051 allows `[` in atoms and `]` in astrings, but a
/// FETCH item name (`BODY[1]`) or a response code (`[UIDNEXT 5]`) must stop at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Brackets {
    /// Stop at `[` and `]`: item names and code names.
    Neither,
    /// ATOM-CHAR: `[` allowed, `]` stops (flags, generic atoms).
    Open,
    /// ASTRING-CHAR: both allowed (mailbox names sent as atoms, e.g. `[Gmail]/Sent`).
    Both,
}

#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn error<T>(&self, expected: &'static str) -> ParseResult<T> {
        Err(ParseError { position: self.pos, expected })
    }

    pub fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    pub fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, byte: u8, expected: &'static str) -> ParseResult<()> {
        if self.eat(byte) { Ok(()) } else { self.error(expected) }
    }

    /// One or more spaces: servers are known to double them (RFC 9051 Appendix E quirks).
    pub fn space(&mut self) -> ParseResult<()> {
        if !self.eat(b' ') {
            return self.error("a space");
        }
        self.skip_spaces();
        Ok(())
    }

    pub fn skip_spaces(&mut self) {
        while self.eat(b' ') {}
    }

    /// The rest of the input (the human-readable text of a status response).
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.input[self.pos.min(self.input.len())..];
        self.pos = self.input.len();
        rest
    }

    /// Whether the next bytes are `word`, case-insensitively, followed by a non-atom byte.
    pub fn peek_keyword(&self, word: &[u8]) -> bool {
        let end = self.pos + word.len();
        self.input.get(self.pos..end).is_some_and(|found| found.eq_ignore_ascii_case(word))
            && self.input.get(end).is_none_or(|&next| !is_atom_char(next, Brackets::Neither))
    }

    pub fn atom(&mut self, brackets: Brackets) -> ParseResult<&'a [u8]> {
        let start = self.pos;
        while let Some(byte) = self.peek() {
            if !is_atom_char(byte, brackets) {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start { self.error("an atom") } else { Ok(&self.input[start..self.pos]) }
    }

    pub fn number(&mut self) -> ParseResult<u64> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(byte @ b'0'..=b'9') = self.peek() {
            value = match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(byte - b'0')))
            {
                Some(value) => value,
                None => return self.error("a number that fits in 64 bits"),
            };
            self.pos += 1;
        }
        if self.pos == start { self.error("a number") } else { Ok(value) }
    }

    pub fn number_u32(&mut self) -> ParseResult<u32> {
        let start = self.pos;
        let value = self.number()?;
        u32::try_from(value)
            .map_err(|_| ParseError { position: start, expected: "a 32-bit number" })
    }

    /// `NIL`, case-insensitively.
    pub fn eat_nil(&mut self) -> bool {
        if self.peek_keyword(b"NIL") {
            self.pos += 3;
            true
        } else {
            false
        }
    }

    /// A quoted string or a literal.
    pub fn string(&mut self) -> ParseResult<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{' | b'~') => self.literal().map(Cow::Borrowed),
            _ => self.error("a string"),
        }
    }

    /// `NIL` or a string.
    pub fn nstring(&mut self) -> ParseResult<Option<Cow<'a, [u8]>>> {
        if self.eat_nil() { Ok(None) } else { self.string().map(Some) }
    }

    /// An atom (with `[` and `]` allowed) or a string.
    pub fn astring(&mut self) -> ParseResult<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"' | b'{' | b'~') => self.string(),
            _ => self.atom(Brackets::Both).map(Cow::Borrowed),
        }
    }

    /// `"..."` with `\"` and `\\` escapes; copies only when there are escapes.
    fn quoted(&mut self) -> ParseResult<Cow<'a, [u8]>> {
        self.expect(b'"', "a quoted string")?;
        let start = self.pos;
        let mut unescaped: Option<Vec<u8>> = None;
        loop {
            let Some(byte) = self.peek() else { return self.error("a closing quote") };
            match byte {
                b'"' => {
                    let text = &self.input[start..self.pos];
                    self.pos += 1;
                    return Ok(match unescaped {
                        Some(bytes) => Cow::Owned(bytes),
                        None => Cow::Borrowed(text),
                    });
                }
                b'\\' => {
                    let copy =
                        unescaped.get_or_insert_with(|| self.input[start..self.pos].to_vec());
                    self.pos += 1;
                    let Some(escaped) = self.peek() else { return self.error("an escaped byte") };
                    copy.push(escaped);
                }
                b'\r' | b'\n' => return self.error("a closing quote before the line end"),
                _ => {
                    if let Some(copy) = unescaped.as_mut() {
                        copy.push(byte);
                    }
                }
            }
            self.pos += 1;
        }
    }

    /// `{n}\r\n` followed by n bytes (`~{n}` is RFC 3516's literal8).
    fn literal(&mut self) -> ParseResult<&'a [u8]> {
        self.eat(b'~');
        self.expect(b'{', "a literal")?;
        let length = self.number()?;
        self.eat(b'+');
        self.expect(b'}', "the end of a literal length")?;
        if !self.eat(b'\r') {
            // a bare LF is tolerated, as the framing does
        }
        self.expect(b'\n', "a line end after the literal length")?;
        let start = self.pos;
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| start.checked_add(length))
            .filter(|&end| end <= self.input.len());
        let Some(end) = end else { return self.error("the literal's bytes") };
        self.pos = end;
        Ok(&self.input[start..end])
    }

    /// Skips one value of any shape (atom, number, string, NIL, list, `BODY[...]`-like atoms),
    /// without recursion, so hostile nesting cannot overflow the stack.
    pub fn skip_value(&mut self) -> ParseResult<()> {
        let mut depth: usize = 0;
        loop {
            match self.peek() {
                Some(b'(') => {
                    self.pos += 1;
                    depth += 1;
                    self.skip_spaces();
                    continue;
                }
                Some(b')') if depth > 0 => {
                    // an empty list `()`
                    self.pos += 1;
                    depth -= 1;
                }
                Some(b'"' | b'{' | b'~') => {
                    self.string()?;
                }
                Some(b'[') => {
                    self.skip_bracketed()?;
                }
                Some(_) => {
                    self.atom(Brackets::Neither)?;
                    if self.peek() == Some(b'[') {
                        self.skip_bracketed()?;
                        if self.peek() == Some(b'<') {
                            self.skip_until(b'>')?;
                        }
                    }
                }
                None => return self.error("a value"),
            }
            // after a complete value: close any lists that end here, then stop at depth 0
            // (without eating the spaces that follow the whole value)
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.skip_spaces();
                if self.eat(b')') {
                    depth -= 1;
                } else {
                    break;
                }
            }
            if self.at_end() {
                return self.error("a closing parenthesis");
            }
        }
    }

    /// `[...]`, allowing quoted strings, literals and parentheses inside (a section spec such as
    /// `HEADER.FIELDS ("X-A" B)` or a response code's arguments); returns the inside.
    pub fn bracketed(&mut self) -> ParseResult<&'a [u8]> {
        self.expect(b'[', "an opening bracket")?;
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b']') => {
                    let inside = &self.input[start..self.pos];
                    self.pos += 1;
                    return Ok(inside);
                }
                Some(b'"' | b'{') => {
                    self.string()?;
                }
                Some(_) => self.pos += 1,
                None => return self.error("a closing bracket"),
            }
        }
    }

    fn skip_bracketed(&mut self) -> ParseResult<()> {
        self.bracketed().map(drop)
    }

    fn skip_until(&mut self, end: u8) -> ParseResult<()> {
        match self.input[self.pos..].iter().position(|&b| b == end) {
            Some(offset) => {
                self.pos += offset + 1;
                Ok(())
            }
            None => self.error("the end of a partial-fetch origin"),
        }
    }
}

/// ATOM-CHAR (RFC 9051 §9): not a special, a control or a space. Tolerated although the
/// grammar excludes them: `\` and `*` (flags are `\Seen` and `\*`), `%` (list wildcards) and
/// 8-bit bytes (some servers send raw UTF-8 in atoms).
fn is_atom_char(byte: u8, brackets: Brackets) -> bool {
    match byte {
        b'(' | b')' | b'{' | b' ' | b'"' => false,
        b'[' => brackets != Brackets::Neither,
        b']' => brackets == Brackets::Both,
        0..=0x1F | 0x7F => false,
        _ => true,
    }
}

/// Bytes as text, replacing invalid UTF-8 (header and file names travel RFC 2047 / 2231 encoded,
/// so this only touches broken servers' output).
pub fn text(bytes: Cow<'_, [u8]>) -> String {
    match bytes {
        Cow::Borrowed(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()),
    }
}

pub fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_in_all_forms() -> ParseResult<()> {
        let mut cursor = Cursor::new(
            br#""a \"q\" \\ b" {3}
xyz NIL atom"#,
        );
        assert_eq!(cursor.string()?.as_ref(), br#"a "q" \ b"#);
        cursor.space()?;
        assert_eq!(cursor.nstring()?.as_deref(), Some(&b"xyz"[..]));
        cursor.space()?;
        assert_eq!(cursor.nstring()?, None);
        cursor.space()?;
        assert_eq!(cursor.astring()?.as_ref(), b"atom");
        assert!(cursor.at_end());
        Ok(())
    }

    #[test]
    fn literals_may_hold_line_ends_and_parens() -> ParseResult<()> {
        let mut cursor = Cursor::new(b"{6}\r\n(a\r\n)\") rest");
        assert_eq!(cursor.string()?.as_ref(), b"(a\r\n)\"");
        assert_eq!(cursor.rest(), b") rest");
        Ok(())
    }

    #[test]
    fn short_literals_are_errors() {
        let mut cursor = Cursor::new(b"{10}\r\nabc");
        assert!(cursor.string().is_err());
        let mut cursor = Cursor::new(b"{99999999999999999999}\r\n");
        assert!(cursor.string().is_err());
    }

    #[test]
    fn skipping_nested_values() -> ParseResult<()> {
        let mut cursor =
            Cursor::new(b"((a \"b\" {1}\r\nx)) (NIL 1 ()) BODY[HEADER.FIELDS (X)]<0> Z");
        cursor.skip_value()?;
        assert_eq!(cursor.peek(), Some(b' '), "spaces after the value are left alone");
        cursor.skip_spaces();
        cursor.skip_value()?;
        cursor.skip_spaces();
        cursor.skip_value()?;
        cursor.skip_spaces();
        assert_eq!(cursor.rest(), b"Z");
        Ok(())
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let mut deep = vec![b'('; 100_000];
        deep.extend(vec![b')'; 100_000]);
        assert_eq!(Cursor::new(&deep).skip_value(), Ok(()));
        assert!(Cursor::new(&vec![b'('; 100_000]).skip_value().is_err());
        let mut deep = vec![b'('; 100_000];
        deep.push(b'a');
        deep.extend(vec![b')'; 100_000]);
        assert_eq!(Cursor::new(&deep).skip_value(), Ok(()));
    }

    #[test]
    fn numbers_are_bounded() {
        assert_eq!(Cursor::new(b"4294967295").number_u32(), Ok(u32::MAX));
        assert!(Cursor::new(b"4294967296").number_u32().is_err());
        assert!(Cursor::new(b"99999999999999999999").number().is_err());
        assert!(Cursor::new(b"x").number().is_err());
    }
}
