//! SMTP replies (RFC 5321 §4.2): a three-digit code and one or more lines of text, and the
//! EHLO keywords this client uses.

use std::fmt;

/// One reply, all of its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Vec<String>,
}

/// What one reply line says: its code, whether more lines follow, its text.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ReplyLine {
    pub code: u16,
    pub last: bool,
    pub text: String,
}

impl ReplyLine {
    /// `ddd-text` (more to come), `ddd text` or `ddd` (the last line); CRLF already removed.
    pub fn parse(line: &[u8]) -> Option<ReplyLine> {
        let digits = line.get(..3)?;
        if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
            return None;
        }
        let code = digits.iter().fold(0u16, |code, digit| code * 10 + u16::from(digit - b'0'));
        let (last, text) = match line.get(3) {
            None => (true, &[][..]),
            Some(b' ') => (true, &line[4..]),
            Some(b'-') => (false, &line[4..]),
            Some(_) => return None,
        };
        Some(ReplyLine { code, last, text: String::from_utf8_lossy(text).into_owned() })
    }
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx: the server may accept later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// RFC 3463 enhanced status code at the start of the first line, e.g. `(5, 3, 4)`.
    pub fn enhanced(&self) -> Option<(u16, u16, u16)> {
        let first = self.lines.first()?.split(' ').next()?;
        let mut parts = first.split('.').map(|part| part.parse::<u16>().ok());
        let class = parts.next()??;
        let subject = parts.next()??;
        let detail = parts.next()??;
        (parts.next().is_none() && matches!(class, 2 | 4 | 5)).then_some((class, subject, detail))
    }

    /// The message is over the server's size limit: 552 (RFC 5321 §4.2.3, RFC 1870) or an
    /// enhanced x.3.4 "message too big for system" (RFC 3463).
    pub fn is_size_refusal(&self) -> bool {
        self.code == 552
            || self.enhanced().is_some_and(|(_, subject, detail)| (subject, detail) == (3, 4))
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for line in &self.lines {
            write!(f, " {line}")?;
        }
        Ok(())
    }
}

/// The EHLO keywords (RFC 5321 §4.1.1.1) this client acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Extensions {
    pub starttls: bool,
    pub auth_plain: bool,
    pub auth_login: bool,
    /// Every AUTH mechanism announced, upper-cased (the browser test page lists them).
    pub auth_mechanisms: Vec<String>,
    /// RFC 1870: the largest message the server takes (0: no fixed limit).
    pub size: Option<u64>,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
}

impl Extensions {
    /// From an EHLO reply: the first line greets, each further line is a keyword and its
    /// parameters.
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut extensions = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else { continue };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => extensions.starttls = true,
                "AUTH" => {
                    for mechanism in words {
                        let mechanism = mechanism.to_ascii_uppercase();
                        if !extensions.auth_mechanisms.contains(&mechanism) {
                            extensions.auth_mechanisms.push(mechanism.clone());
                        }
                        match mechanism.as_str() {
                            "PLAIN" => extensions.auth_plain = true,
                            "LOGIN" => extensions.auth_login = true,
                            _ => {}
                        }
                    }
                }
                "SIZE" => {
                    extensions.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0))
                }
                "8BITMIME" => extensions.eight_bit_mime = true,
                "SMTPUTF8" => extensions.smtputf8 = true,
                _ => {}
            }
        }
        extensions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply { code, lines: lines.iter().map(|line| (*line).to_string()).collect() }
    }

    #[test]
    fn reply_lines() {
        let line = |text: &[u8]| ReplyLine::parse(text);
        assert_eq!(
            line(b"250-PIPELINING"),
            Some(ReplyLine { code: 250, last: false, text: "PIPELINING".into() })
        );
        assert_eq!(
            line(b"354 go ahead"),
            Some(ReplyLine { code: 354, last: true, text: "go ahead".into() })
        );
        assert_eq!(line(b"221"), Some(ReplyLine { code: 221, last: true, text: String::new() }));
        for bad in [&b"25"[..], b"2500 x", b"abc def", b"650 x", b"250+x", b""] {
            assert_eq!(line(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn postfix_ehlo() {
        let ehlo = reply(
            250,
            &[
                "mailstack.test",
                "PIPELINING",
                "SIZE 52428800",
                "ETRN",
                "STARTTLS",
                "AUTH PLAIN LOGIN",
                "ENHANCEDSTATUSCODES",
                "8BITMIME",
                "DSN",
                "CHUNKING",
            ],
        );
        let extensions = Extensions::from_ehlo(&ehlo);
        assert!(extensions.starttls && extensions.auth_plain && extensions.auth_login);
        assert_eq!(extensions.auth_mechanisms, ["PLAIN", "LOGIN"]);
        assert!(extensions.eight_bit_mime && !extensions.smtputf8);
        assert_eq!(extensions.size, Some(52_428_800));
        // the greeting line is not a keyword
        let greeting_only = Extensions::from_ehlo(&reply(250, &["STARTTLS"]));
        assert_eq!(greeting_only, Extensions::default());
        assert_eq!(Extensions::from_ehlo(&reply(250, &["x", "SIZE"])).size, Some(0));
    }

    #[test]
    fn enhanced_codes_and_size_refusals() {
        let too_big = reply(552, &["5.3.4 Error: message file too big"]);
        assert_eq!(too_big.enhanced(), Some((5, 3, 4)));
        assert!(too_big.is_size_refusal() && !too_big.is_transient());
        assert!(reply(554, &["5.3.4 Message too big for system"]).is_size_refusal());
        let unknown = reply(550, &["5.1.1 <x@y>: Recipient address rejected"]);
        assert!(!unknown.is_size_refusal() && unknown.enhanced() == Some((5, 1, 1)));
        assert_eq!(reply(250, &["Ok"]).enhanced(), None);
        assert!(reply(451, &["4.3.0 try later"]).is_transient());
        assert_eq!(
            reply(250, &["2.0.0 Ok: queued", "as X"]).to_string(),
            "250 2.0.0 Ok: queued as X"
        );
    }
}
