//! The few pieces of IMAP syntax the test client needs: turning a response line into values
//! (atoms, strings, literals, parenthesised lists), quoting arguments, and uid sets.

use anyhow::{Context, Result, bail};

/// One value of a response line, as far as the tests need to tell values apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An atom or number, including flags (`\Seen`) and section names (`BODY[HEADER]`).
    Atom(String),
    /// A quoted string or a literal, unescaped.
    Bytes(Vec<u8>),
    /// `NIL`.
    Nil,
    /// A parenthesised list.
    List(Vec<Value>),
}

impl Value {
    /// The text of an atom or string (lossy for non-UTF-8 strings); `None` for NIL and lists.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Atom(atom) => Some(atom.clone()),
            Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Value::Nil | Value::List(_) => None,
        }
    }

    pub fn as_number(&self) -> Option<u32> {
        match self {
            Value::Atom(atom) => atom.parse().ok(),
            _ => None,
        }
    }
}

/// Splits a response line into values.  `text` still holds the `{n}` markers where the reader
/// took literals out; `literals` are those literals in order.
pub(crate) fn parse_values(text: &str, literals: &[Vec<u8>]) -> Result<Vec<Value>> {
    let mut parser = Parser { bytes: text.as_bytes(), pos: 0, literals: literals.iter() };
    let values = parser.values_until(None)?;
    Ok(values)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    literals: std::slice::Iter<'a, Vec<u8>>,
}

impl Parser<'_> {
    fn values_until(&mut self, close: Option<u8>) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        loop {
            while self.peek() == Some(b' ') {
                self.pos += 1;
            }
            match self.peek() {
                None if close.is_none() => return Ok(values),
                None => bail!("unbalanced parenthesis in {:?}", self.text()),
                Some(b')') if close == Some(b')') => {
                    self.pos += 1;
                    return Ok(values);
                }
                Some(b')') => bail!("unexpected ')' in {:?}", self.text()),
                Some(b'(') => {
                    self.pos += 1;
                    values.push(Value::List(self.values_until(Some(b')'))?));
                }
                Some(b'"') => values.push(self.quoted()?),
                Some(b'{') => values.push(self.literal()?),
                Some(_) => values.push(self.atom()),
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(self.bytes).into_owned()
    }

    fn quoted(&mut self) -> Result<Value> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => bail!("unterminated quoted string in {:?}", self.text()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Value::Bytes(out));
                }
                Some(b'\\') => {
                    let escaped = self.bytes.get(self.pos + 1).copied();
                    out.push(escaped.context("quoted string ends in a backslash")?);
                    self.pos += 2;
                }
                Some(byte) => {
                    out.push(byte);
                    self.pos += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Value> {
        let close = self.bytes[self.pos..]
            .iter()
            .position(|&b| b == b'}')
            .with_context(|| format!("unterminated literal marker in {:?}", self.text()))?;
        self.pos += close + 1;
        let literal = self
            .literals
            .next()
            .with_context(|| format!("literal marker without literal in {:?}", self.text()))?;
        Ok(Value::Bytes(literal.clone()))
    }

    /// An atom runs to the next space or parenthesis, except inside `[...]`: a section like
    /// `BODY[HEADER.FIELDS (SUBJECT)]` is one atom.
    fn atom(&mut self) -> Value {
        let start = self.pos;
        let mut brackets = 0u32;
        while let Some(byte) = self.peek() {
            match byte {
                b'[' => brackets += 1,
                b']' => brackets = brackets.saturating_sub(1),
                b' ' | b'(' | b')' if brackets == 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        let atom = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        if atom.eq_ignore_ascii_case("NIL") { Value::Nil } else { Value::Atom(atom) }
    }
}

/// If a response line (without CRLF) ends in a literal marker `{n}`, the literal's length.
pub(crate) fn trailing_literal_len(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A quoted IMAP string; fails for text that only a literal can carry (CR, LF, NUL, 8-bit).
pub fn quote(text: &str) -> Result<String> {
    if !can_quote(text) {
        bail!("{text:?} cannot be sent as a quoted string");
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    Ok(out)
}

pub(crate) fn can_quote(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii() && b != b'\r' && b != b'\n' && b != 0)
}

/// Expands a uid set such as `4:6,9` (as in APPENDUID / COPYUID) into its numbers.
pub fn parse_uid_set(set: &str) -> Result<Vec<u32>> {
    let mut uids = Vec::new();
    for range in set.split(',') {
        let (first, last) = range.split_once(':').unwrap_or((range, range));
        let parse =
            |n: &str| n.parse::<u32>().with_context(|| format!("bad uid {n:?} in set {set:?}"));
        let (first, last) = (parse(first)?, parse(last)?);
        uids.extend(first.min(last)..=first.max(last));
    }
    Ok(uids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(text: &str) -> Value {
        Value::Atom(text.to_string())
    }

    #[test]
    fn fetch_line_with_literal_and_section() -> Result<()> {
        let literals = vec![b"Subject: x\r\n\r\n".to_vec()];
        let values = parse_values(
            r#"* 3 FETCH (UID 17 FLAGS (\Seen $Junk) BODY[HEADER.FIELDS (SUBJECT)] {14} X "a\"b")"#,
            &literals,
        )?;
        assert_eq!(
            values,
            vec![
                atom("*"),
                atom("3"),
                atom("FETCH"),
                Value::List(vec![
                    atom("UID"),
                    atom("17"),
                    atom("FLAGS"),
                    Value::List(vec![atom(r"\Seen"), atom("$Junk")]),
                    atom("BODY[HEADER.FIELDS (SUBJECT)]"),
                    Value::Bytes(literals[0].clone()),
                    atom("X"),
                    Value::Bytes(b"a\"b".to_vec()),
                ]),
            ]
        );
        Ok(())
    }

    #[test]
    fn list_line_with_nil_delimiter() -> Result<()> {
        let values = parse_values(r#"* LIST (\Noselect) NIL """#, &[])?;
        assert_eq!(
            values,
            vec![
                atom("*"),
                atom("LIST"),
                Value::List(vec![atom(r"\Noselect")]),
                Value::Nil,
                Value::Bytes(Vec::new()),
            ]
        );
        Ok(())
    }

    #[test]
    fn unbalanced_lists_are_errors() {
        assert!(parse_values("* 1 FETCH (UID 1", &[]).is_err());
        assert!(parse_values("* 1 FETCH UID 1)", &[]).is_err());
        assert!(parse_values("* 1 FETCH (BODY[] {3})", &[]).is_err());
    }

    #[test]
    fn literal_markers_are_found_only_at_the_end() {
        assert_eq!(trailing_literal_len(b"* 1 FETCH (BODY[] {42}"), Some(42));
        assert_eq!(trailing_literal_len(b"* OK {42} done"), None);
        assert_eq!(trailing_literal_len(b"* OK {}"), None);
        assert_eq!(trailing_literal_len(b"* OK {4x}"), None);
    }

    #[test]
    fn quoting_escapes_and_refuses_what_needs_a_literal() -> Result<()> {
        assert_eq!(quote(r#"pa"ss\word"#)?, r#""pa\"ss\\word""#);
        assert!(quote("line\r\nbreak").is_err());
        assert!(quote("Gäste").is_err());
        Ok(())
    }

    #[test]
    fn uid_sets_expand() -> Result<()> {
        assert_eq!(parse_uid_set("4:6,9")?, vec![4, 5, 6, 9]);
        assert_eq!(parse_uid_set("7")?, vec![7]);
        assert!(parse_uid_set("x").is_err());
        Ok(())
    }
}
