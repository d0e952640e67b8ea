//! A ManageSieve session (RFC 5804): capabilities, STARTTLS, AUTHENTICATE PLAIN, LISTSCRIPTS,
//! GETSCRIPT, PUTSCRIPT, SETACTIVE, LOGOUT. One short session per call.

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{COMMAND_TIMEOUT, CONNECT_TIMEOUT, SieveEndpoint, SieveError, tls_error};
use crate::imap::TlsMode;

/// Longest line outside literals.
const MAX_LINE: usize = 64 * 1024;

/// Largest literal accepted from the server (a script).
const MAX_LITERAL: usize = 1 << 20;

/// Most data lines before the final response (scripts listed, capabilities).
const MAX_DATA_LINES: usize = 10_000;

/// One token of a response line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Atom(String),
    /// A quoted string or a literal.
    Text(String),
    /// A response code in parentheses, as sent.
    Code(String),
}

/// `OK`, `NO` or `BYE`, with the code and the human-readable text.
#[derive(Debug)]
struct Completion {
    status: Status,
    code: Option<String>,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    No,
    Bye,
}

impl Completion {
    fn ensure_ok(self, command: &str) -> Result<(), SieveError> {
        match self.status {
            Status::Ok => Ok(()),
            Status::No => Err(SieveError::Refused(self.describe(command))),
            Status::Bye => Err(SieveError::Unavailable(self.describe(command))),
        }
    }

    fn describe(&self, command: &str) -> String {
        match &self.code {
            Some(code) => format!("{command}: ({code}) {}", self.text),
            None => format!("{command}: {}", self.text),
        }
    }
}

pub(super) struct Script {
    pub name: String,
    pub active: bool,
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// While STARTTLS has the stream.
    Gone,
}

pub(super) struct Session {
    transport: Transport,
    buffer: Vec<u8>,
    /// (name, value) as announced, names upper-cased.
    capabilities: Vec<(String, Option<String>)>,
}

impl Session {
    /// Connects, starts TLS as configured and authenticates as the user (SASL PLAIN).
    pub async fn open(
        endpoint: &SieveEndpoint,
        login: &str,
        password: &[u8],
    ) -> Result<Session, SieveError> {
        let address = endpoint.address();
        let connect = async {
            let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await.map_err(
                |error| SieveError::Unavailable(format!("connecting to {address}: {error}")),
            )?;
            Ok(match endpoint.tls_mode {
                TlsMode::Implicit => Transport::Tls(Box::new(handshake(endpoint, tcp).await?)),
                TlsMode::None | TlsMode::StartTls => Transport::Plain(tcp),
            })
        };
        let transport =
            within(CONNECT_TIMEOUT, &format!("connecting to {address}"), connect).await?;
        let mut session = Session { transport, buffer: Vec::new(), capabilities: Vec::new() };
        session.read_capabilities().await?;
        if endpoint.tls_mode == TlsMode::StartTls {
            if !session.has_capability("STARTTLS") {
                return Err(SieveError::Tls(format!("{address} does not offer STARTTLS")));
            }
            let (_, done) = session.command(b"STARTTLS\r\n", "STARTTLS").await?;
            if done.status != Status::Ok {
                return Err(SieveError::Tls(done.describe("STARTTLS")));
            }
            // bytes before the handshake could have been injected by anyone on the path
            if !session.buffer.is_empty() {
                return Err(SieveError::Unavailable("data after the STARTTLS answer".into()));
            }
            let Transport::Plain(tcp) = std::mem::replace(&mut session.transport, Transport::Gone)
            else {
                return Err(SieveError::Tls("TLS started twice".to_string()));
            };
            let tls =
                within(COMMAND_TIMEOUT, "the TLS handshake", handshake(endpoint, tcp)).await?;
            session.transport = Transport::Tls(Box::new(tls));
            // RFC 5804 §2.2: the server announces its capabilities again, now trustworthy
            session.read_capabilities().await?;
        }
        session.authenticate(login, password).await?;
        Ok(session)
    }

    /// Whether the SIEVE capability lists the extension (case-insensitive).
    pub fn has_extension(&self, name: &str) -> bool {
        self.capability("SIEVE").is_some_and(|list| {
            list.split_ascii_whitespace().any(|extension| extension.eq_ignore_ascii_case(name))
        })
    }

    pub async fn list_scripts(&mut self) -> Result<Vec<Script>, SieveError> {
        let (data, done) = self.command(b"LISTSCRIPTS\r\n", "LISTSCRIPTS").await?;
        done.ensure_ok("LISTSCRIPTS")?;
        Ok(data
            .into_iter()
            .filter_map(|line| {
                let mut items = line.into_iter();
                let Some(Item::Text(name)) = items.next() else { return None };
                let active = matches!(items.next(), Some(Item::Atom(word)) if word.eq_ignore_ascii_case("ACTIVE"));
                Some(Script { name, active })
            })
            .collect())
    }

    pub async fn get_script(&mut self, name: &str) -> Result<String, SieveError> {
        let command = format!("GETSCRIPT {}\r\n", quoted(name)?);
        let (data, done) = self.command(command.as_bytes(), "GETSCRIPT").await?;
        done.ensure_ok("GETSCRIPT")?;
        data.into_iter()
            .flatten()
            .find_map(|item| match item {
                Item::Text(text) => Some(text),
                _ => None,
            })
            .ok_or_else(|| SieveError::Unavailable("GETSCRIPT answered without the script".into()))
    }

    /// PUTSCRIPT with the script as a literal (clients always send `{n+}`, RFC 5804 §4); the
    /// server checks the script and refuses it with its reason.
    pub async fn put_script(&mut self, name: &str, script: &str) -> Result<(), SieveError> {
        let mut command =
            format!("PUTSCRIPT {} {{{}+}}\r\n", quoted(name)?, script.len()).into_bytes();
        command.extend_from_slice(script.as_bytes());
        command.extend_from_slice(b"\r\n");
        let (_, done) = self.command(&command, "PUTSCRIPT").await?;
        done.ensure_ok("PUTSCRIPT")
    }

    /// SETACTIVE; `""` deactivates every script.
    pub async fn set_active(&mut self, name: &str) -> Result<(), SieveError> {
        let command = format!("SETACTIVE {}\r\n", quoted(name)?);
        let (_, done) = self.command(command.as_bytes(), "SETACTIVE").await?;
        done.ensure_ok("SETACTIVE")
    }

    /// LOGOUT, best effort.
    pub async fn logout(mut self) {
        if let Err(error) = self.command(b"LOGOUT\r\n", "LOGOUT").await {
            tracing::debug!(%error, "ManageSieve LOGOUT");
        }
    }

    /// AUTHENTICATE "PLAIN" with the initial response (RFC 5804 §2.1). Nothing of the
    /// credentials appears in errors or logs.
    async fn authenticate(&mut self, login: &str, password: &[u8]) -> Result<(), SieveError> {
        let plain = self.capability("SASL").is_some_and(|mechanisms| {
            mechanisms.split_ascii_whitespace().any(|m| m.eq_ignore_ascii_case("PLAIN"))
        });
        if !plain {
            return Err(SieveError::AuthFailed("the server does not offer SASL PLAIN".into()));
        }
        let mut token = Vec::with_capacity(login.len() * 2 + password.len() + 2);
        token.push(0);
        token.extend_from_slice(login.as_bytes());
        token.push(0);
        token.extend_from_slice(password);
        let command = format!("AUTHENTICATE \"PLAIN\" \"{}\"\r\n", STANDARD.encode(&token));
        token.fill(0);
        let (_, done) = self.command(command.as_bytes(), "AUTHENTICATE").await?;
        match done.status {
            Status::Ok => Ok(()),
            Status::No => Err(SieveError::AuthFailed(done.describe("AUTHENTICATE"))),
            Status::Bye => Err(SieveError::Unavailable(done.describe("AUTHENTICATE"))),
        }
    }

    async fn read_capabilities(&mut self) -> Result<(), SieveError> {
        let (data, done) = within(COMMAND_TIMEOUT, "the capabilities", self.response()).await?;
        done.ensure_ok("greeting")?;
        self.capabilities = data
            .into_iter()
            .filter_map(|line| {
                let mut items = line.into_iter();
                let Some(Item::Text(name)) = items.next() else { return None };
                let value = match items.next() {
                    Some(Item::Text(value)) => Some(value),
                    _ => None,
                };
                Some((name.to_ascii_uppercase(), value))
            })
            .collect();
        Ok(())
    }

    fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|(announced, _)| announced == name)
    }

    fn capability(&self, name: &str) -> Option<&str> {
        self.capabilities.iter().find(|(announced, _)| announced == name)?.1.as_deref()
    }

    /// Writes a command and reads its data lines and completion within the command timeout.
    /// `what` names it in errors (the command may hold credentials).
    async fn command(
        &mut self,
        bytes: &[u8],
        what: &str,
    ) -> Result<(Vec<Vec<Item>>, Completion), SieveError> {
        within(COMMAND_TIMEOUT, what, async {
            self.write(bytes).await?;
            self.response().await
        })
        .await
    }

    /// Data lines until the completion (`OK`, `NO` or `BYE`).
    async fn response(&mut self) -> Result<(Vec<Vec<Item>>, Completion), SieveError> {
        let mut data = Vec::new();
        loop {
            let items = self.read_items().await?;
            let status = match items.first() {
                Some(Item::Atom(word)) => match word.to_ascii_uppercase().as_str() {
                    "OK" => Some(Status::Ok),
                    "NO" => Some(Status::No),
                    "BYE" => Some(Status::Bye),
                    _ => None,
                },
                _ => None,
            };
            let Some(status) = status else {
                if data.len() >= MAX_DATA_LINES {
                    return Err(SieveError::Unavailable("an answer of too many lines".into()));
                }
                data.push(items);
                continue;
            };
            let mut code = None;
            let mut text = String::new();
            for item in items.into_iter().skip(1) {
                match item {
                    Item::Code(value) => code = Some(value),
                    Item::Text(value) | Item::Atom(value) => text = value,
                }
            }
            return Ok((data, Completion { status, code, text }));
        }
    }

    /// The items of one response line, literals included.
    async fn read_items(&mut self) -> Result<Vec<Item>, SieveError> {
        let mut items = Vec::new();
        let mut line = self.read_line().await?;
        let mut position = 0;
        loop {
            while line.get(position) == Some(&b' ') {
                position += 1;
            }
            let Some(&first) = line.get(position) else { return Ok(items) };
            match first {
                b'"' => {
                    let (text, next) = quoted_at(&line, position)?;
                    items.push(Item::Text(text));
                    position = next;
                }
                b'{' => {
                    let length = literal_length(&line[position..])?;
                    let bytes = self.read_exact(length).await?;
                    items.push(Item::Text(String::from_utf8_lossy(&bytes).into_owned()));
                    // the line goes on after the literal
                    line = self.read_line().await?;
                    position = 0;
                }
                b'(' => {
                    let end = code_end(&line, position)?;
                    let code = String::from_utf8_lossy(&line[position + 1..end]).into_owned();
                    items.push(Item::Code(code));
                    position = end + 1;
                }
                _ => {
                    let end = line[position..]
                        .iter()
                        .position(|&byte| byte == b' ' || byte == b'(' || byte == b'"')
                        .map_or(line.len(), |offset| position + offset);
                    let atom = String::from_utf8_lossy(&line[position..end]).into_owned();
                    items.push(Item::Atom(atom));
                    position = end.max(position + 1);
                }
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), SieveError> {
        let written = match &mut self.transport {
            Transport::Plain(stream) => stream.write_all(bytes).await,
            Transport::Tls(stream) => match stream.write_all(bytes).await {
                Ok(()) => stream.flush().await,
                Err(error) => Err(error),
            },
            Transport::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        };
        written.map_err(|error| SieveError::Unavailable(format!("sending: {error}")))
    }

    /// One line without its line end.
    async fn read_line(&mut self) -> Result<Vec<u8>, SieveError> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buffer) {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buffer.len() > MAX_LINE {
                return Err(SieveError::Unavailable("an answer line too long".into()));
            }
            self.fill().await?;
        }
    }

    async fn read_exact(&mut self, length: usize) -> Result<Vec<u8>, SieveError> {
        while self.buffer.len() < length {
            self.fill().await?;
        }
        Ok(self.buffer.drain(..length).collect())
    }

    async fn fill(&mut self) -> Result<(), SieveError> {
        self.buffer.reserve(4096);
        let read = match &mut self.transport {
            Transport::Plain(stream) => stream.read_buf(&mut self.buffer).await,
            Transport::Tls(stream) => stream.read_buf(&mut self.buffer).await,
            Transport::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        };
        match read {
            Ok(0) => Err(SieveError::Unavailable("the server closed the connection".into())),
            Ok(_) => Ok(()),
            Err(error) => Err(SieveError::Unavailable(format!("receiving: {error}"))),
        }
    }
}

async fn handshake(
    endpoint: &SieveEndpoint,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, SieveError> {
    let tls = endpoint.tls.as_ref().ok_or_else(|| SieveError::Tls("no TLS client".into()))?;
    tls.handshake(tcp).await.map_err(tls_error)
}

async fn within<T>(
    timeout: Duration,
    what: &str,
    future: impl Future<Output = Result<T, SieveError>>,
) -> Result<T, SieveError> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| SieveError::Unavailable(format!("no answer to {what} within {timeout:?}")))?
}

/// A quoted string for a command (RFC 5804 §4: no CR, LF or NUL; `"` and `\` escaped).
fn quoted(text: &str) -> Result<String, SieveError> {
    if text.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(SieveError::Refused(format!("{text:?} cannot be sent as a quoted string")));
    }
    Ok(format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// The quoted string starting at `start` (its `"`): the text and the position after it.
fn quoted_at(line: &[u8], start: usize) -> Result<(String, usize), SieveError> {
    let mut text = Vec::new();
    let mut position = start + 1;
    while let Some(&byte) = line.get(position) {
        match byte {
            b'"' => return Ok((String::from_utf8_lossy(&text).into_owned(), position + 1)),
            b'\\' => {
                position += 1;
                text.extend(line.get(position));
            }
            _ => text.push(byte),
        }
        position += 1;
    }
    Err(SieveError::Unavailable("an unterminated quoted string".into()))
}

/// `{n}` or `{n+}` at the end of a line: n, within the literal limit.
fn literal_length(rest: &[u8]) -> Result<usize, SieveError> {
    let bad = || SieveError::Unavailable("a malformed literal".to_string());
    let inside = rest.strip_prefix(b"{").and_then(|r| r.strip_suffix(b"}")).ok_or_else(bad)?;
    let digits = inside.strip_suffix(b"+").unwrap_or(inside);
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let length: usize =
        std::str::from_utf8(digits).map_err(|_| bad())?.parse().map_err(|_| bad())?;
    if length > MAX_LITERAL {
        return Err(SieveError::Unavailable(format!("a literal of {length} bytes")));
    }
    Ok(length)
}

/// The position of the `)` that closes the code opened at `start`, skipping quoted strings.
fn code_end(line: &[u8], start: usize) -> Result<usize, SieveError> {
    let mut depth = 0usize;
    let mut position = start;
    while let Some(&byte) = line.get(position) {
        match byte {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(position);
                }
            }
            b'"' => position = quoted_at(line, position)?.1 - 1,
            _ => {}
        }
        position += 1;
    }
    Err(SieveError::Unavailable("an unterminated response code".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(quoted_at(br#""a\"b\\c" x"#, 0).expect("quoted"), ("a\"b\\c".to_string(), 9));
        assert!(quoted_at(b"\"open", 0).is_err());
        assert_eq!(literal_length(b"{12}").expect("sync"), 12);
        assert_eq!(literal_length(b"{0+}").expect("non-sync"), 0);
        assert!(literal_length(b"{x}").is_err() && literal_length(b"{99999999}").is_err());
        let line = br#"NO (NONEXISTENT "a)b") "gone""#;
        assert_eq!(code_end(line, 3).expect("code"), 21);
        assert_eq!(quoted("eas-edge-oof").expect("name"), "\"eas-edge-oof\"");
        assert_eq!(quoted(r#"a"b\"#).expect("escapes"), r#""a\"b\\""#);
        assert!(quoted("a\r\nb").is_err());
    }
}
