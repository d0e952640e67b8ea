//! Building one command's bytes, with the points where a synchronising literal makes the client
//! wait for the server's `+` (RFC 9051 §4.3, §7.5).

use super::capabilities::Capabilities;
use super::wire::{Argument, argument};

#[derive(Debug)]
pub struct Command {
    pub tag: String,
    /// The command's name, for errors.
    pub name: &'static str,
    bytes: Vec<u8>,
    /// Offsets into `bytes` just after a `{n}\r\n`: send up to here, then wait for `+`.
    sync_points: Vec<usize>,
    literal_plus: bool,
    literal_minus: bool,
}

impl Command {
    /// `tag NAME`; `caps` decides whether literals need the server's go-ahead.
    pub fn new(tag: String, name: &'static str, caps: &Capabilities) -> Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(tag.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(name.as_bytes());
        Self {
            tag,
            name,
            bytes,
            sync_points: Vec::new(),
            literal_plus: caps.literal_plus,
            literal_minus: caps.literal_minus,
        }
    }

    /// Protocol text as is (atoms, numbers, parentheses): the caller vouches for its syntax.
    pub fn raw(mut self, text: &str) -> Self {
        self.bytes.extend_from_slice(text.as_bytes());
        self
    }

    /// A space and a string argument (mailbox name, user, password): quoted when it can be,
    /// else a literal.
    pub fn string(mut self, value: &[u8]) -> Self {
        self.bytes.push(b' ');
        self.string_unspaced(value)
    }

    /// A string argument without the space before it (first item of a list).
    pub fn string_unspaced(mut self, value: &[u8]) -> Self {
        match argument(value) {
            Argument::Quoted(quoted) => self.bytes.extend_from_slice(quoted.as_bytes()),
            Argument::Literal(bytes) => self.push_literal(bytes),
        }
        self
    }

    /// A space and a literal whatever the bytes: where the grammar wants nothing else (the
    /// message of APPEND, RFC 9051 §6.3.12).
    pub fn literal(mut self, value: &[u8]) -> Self {
        self.bytes.push(b' ');
        self.push_literal(value);
        self
    }

    fn push_literal(&mut self, bytes: &[u8]) {
        let non_sync = self.literal_plus || (self.literal_minus && bytes.len() <= 4096);
        let marker = if non_sync { "+" } else { "" };
        self.bytes.extend_from_slice(format!("{{{}{marker}}}\r\n", bytes.len()).as_bytes());
        if !non_sync {
            self.sync_points.push(self.bytes.len());
        }
        self.bytes.extend_from_slice(bytes);
    }

    /// The pieces to send: all but the last are each followed by a wait for `+`.
    pub fn pieces(&self) -> Vec<&[u8]> {
        let mut pieces = Vec::with_capacity(self.sync_points.len() + 1);
        let mut start = 0;
        for &point in &self.sync_points {
            pieces.push(&self.bytes[start..point]);
            start = point;
        }
        pieces.push(&self.bytes[start..]);
        pieces
    }

    /// Adds the final CRLF.
    pub fn end(mut self) -> Self {
        self.bytes.extend_from_slice(b"\r\n");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_split_the_command_unless_non_synchronising() {
        let plain = Capabilities::default();
        let command = Command::new("a1".into(), "LOGIN", &plain)
            .string(b"user")
            .string("pässword".as_bytes())
            .end();
        let pieces = command.pieces();
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0], b"a1 LOGIN \"user\" {9}\r\n");
        assert_eq!(pieces[1], "pässword\r\n".as_bytes());

        let plus = Capabilities { literal_plus: true, ..Capabilities::default() };
        let command = Command::new("a2".into(), "STATUS", &plus).string("ü".as_bytes()).end();
        assert_eq!(command.pieces(), vec!["a2 STATUS {2+}\r\nü\r\n".as_bytes()]);

        // APPEND's message is a literal even when it could be quoted
        let command = Command::new("a3".into(), "APPEND", &plain).literal(b"x").end();
        assert_eq!(command.pieces(), vec![&b"a3 APPEND {1}\r\n"[..], b"x\r\n"]);
        let command = Command::new("a4".into(), "APPEND", &plus).literal(b"x").end();
        assert_eq!(command.pieces(), vec![&b"a4 APPEND {1+}\r\nx\r\n"[..]]);
    }
}
