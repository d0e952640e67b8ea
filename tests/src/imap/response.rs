//! Server responses: one logical line (with its literals) at a time, and a command's result.

use std::io::{self, BufRead, BufReader, Read};
use std::net::TcpStream;

use anyhow::{Result, bail};

use super::syntax::{Value, parse_values, trailing_literal_len};

/// Literals bigger than this are a protocol error for tests (our messages are far smaller).
const MAX_LITERAL: usize = 256 * 1024 * 1024;

/// One logical response line: `* ...`, `+ ...` or `TAG ...`, with the literals it carried taken
/// out of the text (the `{n}` markers stay in the text where they were).
#[derive(Debug, Clone)]
pub struct ResponseLine {
    pub text: String,
    pub literals: Vec<Vec<u8>>,
}

impl ResponseLine {
    pub fn is_untagged(&self) -> bool {
        self.text.starts_with("* ")
    }

    pub fn is_continuation(&self) -> bool {
        self.text.starts_with('+')
    }

    /// The line split into values (see [`Value`]).
    pub fn values(&self) -> Result<Vec<Value>> {
        parse_values(&self.text, &self.literals)
    }

    /// For `* <n> <KEYWORD> ...` lines (EXISTS, EXPUNGE, FETCH, RECENT): `n` if the keyword matches.
    pub fn numbered(&self, keyword: &str) -> Option<u32> {
        let mut words = self.text.strip_prefix("* ")?.split(' ');
        let number = words.next()?.parse().ok()?;
        let word = words.next()?;
        word.eq_ignore_ascii_case(keyword).then_some(number)
    }

    /// The value of a response code such as `[UIDNEXT 12]` in this line.
    pub fn code_value(&self, code: &str) -> Option<&str> {
        response_code_value(&self.text, code)
    }
}

pub(crate) fn response_code_value<'a>(text: &'a str, code: &str) -> Option<&'a str> {
    let open = text.find('[')?;
    let close = open + text[open..].find(']')?;
    let inner = &text[open + 1..close];
    let (name, value) = inner.split_once(' ').unwrap_or((inner, ""));
    name.eq_ignore_ascii_case(code).then_some(value)
}

/// How the server completed a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// The result of one tagged command.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: Status,
    /// The tagged line after the status word, e.g. `[APPENDUID 1 5] Append completed.`.
    pub text: String,
    /// The untagged lines that arrived while the command ran.
    pub untagged: Vec<ResponseLine>,
}

impl Response {
    /// The untagged lines starting with `* <keyword>` (e.g. `SEARCH`, `LIST`, `CAPABILITY`).
    pub fn lines_of<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a ResponseLine> {
        self.untagged.iter().filter(move |line| {
            line.text
                .strip_prefix("* ")
                .and_then(|rest| rest.split(' ').next())
                .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
        })
    }

    pub fn code_value(&self, code: &str) -> Option<&str> {
        response_code_value(&self.text, code)
    }

    pub(crate) fn from_tagged(
        line: ResponseLine,
        tag: &str,
        untagged: Vec<ResponseLine>,
    ) -> Result<Self> {
        let rest = line.text.strip_prefix(tag).and_then(|r| r.strip_prefix(' '));
        let Some(rest) = rest else {
            bail!("not the completion of {tag}: {:?}", line.text);
        };
        let (word, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let status = match word.to_ascii_uppercase().as_str() {
            "OK" => Status::Ok,
            "NO" => Status::No,
            "BAD" => Status::Bad,
            _ => bail!("unknown completion status in {:?}", line.text),
        };
        Ok(Self { status, text: text.to_string(), untagged })
    }
}

/// Reads response lines; keeps a partly received line across read timeouts (IDLE polling).
#[derive(Debug)]
pub(crate) struct LineReader {
    pub(crate) stream: BufReader<TcpStream>,
    partial: Vec<u8>,
}

impl LineReader {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self { stream: BufReader::new(stream), partial: Vec::new() }
    }

    /// One logical line including its literals.  Errors keep their io kind, so that callers can
    /// tell a timeout (`WouldBlock`/`TimedOut`) from a closed connection (`UnexpectedEof`).
    pub(crate) fn read_line(&mut self) -> io::Result<ResponseLine> {
        let mut text = Vec::new();
        let mut literals = Vec::new();
        loop {
            let segment = self.read_crlf_line()?;
            match trailing_literal_len(&segment) {
                Some(len) if len > MAX_LITERAL => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("literal of {len} bytes is too big"),
                    ));
                }
                Some(len) => {
                    text.extend_from_slice(&segment);
                    let mut literal = vec![0; len];
                    self.stream.read_exact(&mut literal)?;
                    literals.push(literal);
                }
                None => {
                    text.extend_from_slice(&segment);
                    return Ok(ResponseLine {
                        text: String::from_utf8_lossy(&text).into_owned(),
                        literals,
                    });
                }
            }
        }
    }

    fn read_crlf_line(&mut self) -> io::Result<Vec<u8>> {
        let read = self.stream.read_until(b'\n', &mut self.partial)?;
        if read == 0 || self.partial.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        let mut line = std::mem::take(&mut self.partial);
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }
}

pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> ResponseLine {
        ResponseLine { text: text.to_string(), literals: Vec::new() }
    }

    #[test]
    fn numbered_and_code_values() {
        assert_eq!(line("* 200 EXISTS").numbered("EXISTS"), Some(200));
        assert_eq!(line("* 200 EXISTS").numbered("RECENT"), None);
        assert_eq!(line("* OK [UIDNEXT 12] Predicted").code_value("UIDNEXT"), Some("12"));
        assert_eq!(line("* OK [UIDNEXT 12] Predicted").code_value("UIDVALIDITY"), None);
    }

    #[test]
    fn tagged_completion_is_split() -> Result<()> {
        let response = Response::from_tagged(
            line("A0003 OK [APPENDUID 7 3:4] Append completed."),
            "A0003",
            Vec::new(),
        )?;
        assert_eq!(response.status, Status::Ok);
        assert_eq!(response.code_value("APPENDUID"), Some("7 3:4"));
        assert!(Response::from_tagged(line("A0004 OK x"), "A0003", Vec::new()).is_err());
        Ok(())
    }
}
