//! One submission, start to end: connect, TLS (implicit or STARTTLS), EHLO, AUTH PLAIN or
//! LOGIN (RFC 4954), MAIL FROM, RCPT TO per recipient collecting refusals, DATA with
//! dot-stuffing, QUIT (RFC 5321). One connection per message: submissions are rare next to
//! mailbox calls, and a fresh connection has no state to get wrong.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::reply::{Extensions, Reply, ReplyLine};
use super::{
    BeforeFinalDot, Credentials, FinalDot, Offer, Refusal, SmtpError, Submitter, tls_error,
};
use crate::imap::{TlsClient, TlsMode};

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 allows 512 bytes; servers exceed it).
const MAX_LINE: usize = 8 * 1024;

/// Most lines of one reply (an EHLO lists a dozen keywords).
const MAX_LINES: usize = 256;

/// The line that ends DATA, after the message's own last line end.
const FINAL_DOT: &[u8] = b".\r\n";

/// How long QUIT may take: the message is sent, this is courtesy only.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Submits `message`; `before_final_dot` and `final_dot` as for [`Submitter::send`].
pub(super) async fn submit(
    submitter: &Submitter,
    sender: &str,
    credentials: Option<&Credentials<'_>>,
    recipients: &[String],
    message: &[u8],
    before_final_dot: BeforeFinalDot<'_>,
    final_dot: &FinalDot,
) -> Result<Vec<Refusal>, SmtpError> {
    if !is_address(sender) {
        return Err(SmtpError::Rejected(format!("{sender:?} is not a mail address")));
    }
    let mut connection = Connection::open(submitter).await?;
    let extensions = connection.hello(submitter).await?;
    if let Some(credentials) = credentials {
        connection.authenticate(&extensions, credentials).await?;
    }
    let outcome = connection
        .transaction(&extensions, sender, recipients, message, before_final_dot, final_dot)
        .await;
    // after a lost or timed-out connection there is nobody to say goodbye to (and in the middle
    // of DATA, a QUIT would be read as part of the message)
    if !matches!(outcome, Err(SmtpError::Unavailable(_) | SmtpError::OutcomeUnknown(_))) {
        connection.quit().await;
    }
    outcome
}

/// Connects, says EHLO (with STARTTLS as configured) and QUITs: what the server offers,
/// without authenticating or sending anything (the browser test page).
pub(super) async fn probe(submitter: &Submitter) -> Result<Offer, SmtpError> {
    let mut connection = Connection::open(submitter).await?;
    let extensions = connection.hello(submitter).await?;
    connection.quit().await;
    Ok(Offer {
        tls: submitter.tls_mode != TlsMode::None,
        auth_mechanisms: extensions.auth_mechanisms,
        usable_auth: extensions.auth_plain || extensions.auth_login,
        size: extensions.size,
    })
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// While STARTTLS has the stream, and after a failed handshake.
    Gone,
}

struct Connection {
    transport: Transport,
    /// Received and not yet read.
    buffer: Vec<u8>,
    /// Our address on the connection, for EHLO.
    local: SocketAddr,
    command_timeout: Duration,
    data_timeout: Duration,
}

impl Connection {
    /// Connects (and starts implicit TLS) within the connect timeout, and reads the greeting
    /// within the connect timeout again: a server that accepts and never greets (hung, or a
    /// firewall's tarpit) must not hold the phone's request for a command timeout.
    async fn open(submitter: &Submitter) -> Result<Connection, SmtpError> {
        let address = submitter.address();
        let timeouts = submitter.timeouts;
        let connect = async {
            let tcp = TcpStream::connect((submitter.host.as_str(), submitter.port)).await.map_err(
                |error| SmtpError::Unavailable(format!("connecting to {address}: {error}")),
            )?;
            tcp.set_nodelay(true)
                .map_err(|error| SmtpError::Unavailable(format!("setting TCP_NODELAY: {error}")))?;
            let local = tcp
                .local_addr()
                .map_err(|error| SmtpError::Unavailable(format!("local address: {error}")))?;
            let transport = match submitter.tls_mode {
                TlsMode::Implicit => Transport::Tls(Box::new(handshake(submitter, tcp).await?)),
                TlsMode::None | TlsMode::StartTls => Transport::Plain(tcp),
            };
            Ok::<_, SmtpError>((transport, local))
        };
        let (transport, local) =
            within(timeouts.connect, &format!("connecting to {address}"), connect).await?;
        let mut connection = Connection {
            transport,
            buffer: Vec::new(),
            local,
            command_timeout: timeouts.command,
            data_timeout: timeouts.data,
        };
        let greeting = within(timeouts.connect, "the greeting", connection.read_reply()).await?;
        if greeting.code != 220 {
            return Err(SmtpError::Unavailable(format!("{address} greeted with {greeting}")));
        }
        Ok(connection)
    }

    /// EHLO, and STARTTLS with a second EHLO when configured. The extensions announced over
    /// TLS replace those announced before it, which an attacker could have forged.
    async fn hello(&mut self, submitter: &Submitter) -> Result<Extensions, SmtpError> {
        let extensions = self.ehlo().await?;
        if submitter.tls_mode != TlsMode::StartTls {
            return Ok(extensions);
        }
        if !extensions.starttls {
            return Err(SmtpError::Tls(format!("{} does not offer STARTTLS", submitter.address())));
        }
        let reply = self.command(b"STARTTLS\r\n", "STARTTLS").await?;
        if reply.code != 220 {
            return Err(SmtpError::Tls(format!("STARTTLS refused: {reply}")));
        }
        // Bytes received before the handshake were sent in plain text and could have been
        // injected by anyone on the path (the STARTTLS command injection class of bugs).
        if !self.buffer.is_empty() {
            return Err(SmtpError::Unavailable("data after the STARTTLS reply".to_string()));
        }
        let Transport::Plain(tcp) = std::mem::replace(&mut self.transport, Transport::Gone) else {
            return Err(SmtpError::Tls("TLS started twice".to_string()));
        };
        let tls =
            within(self.command_timeout, "the TLS handshake", handshake(submitter, tcp)).await?;
        self.transport = Transport::Tls(Box::new(tls));
        self.ehlo().await
    }

    async fn ehlo(&mut self) -> Result<Extensions, SmtpError> {
        // an address literal (RFC 5321 §4.1.4) is always a valid EHLO argument
        let name = match self.local.ip() {
            std::net::IpAddr::V4(ip) => format!("[{ip}]"),
            std::net::IpAddr::V6(ip) => format!("[IPv6:{ip}]"),
        };
        let reply = self.command(format!("EHLO {name}\r\n").as_bytes(), "EHLO").await?;
        if reply.code != 250 {
            return Err(SmtpError::Unavailable(format!("EHLO refused: {reply}")));
        }
        Ok(Extensions::from_ehlo(&reply))
    }

    /// AUTH PLAIN with an initial response, else AUTH LOGIN (RFC 4954). Nothing of the
    /// credentials appears in errors or logs.
    async fn authenticate(
        &mut self,
        extensions: &Extensions,
        credentials: &Credentials<'_>,
    ) -> Result<(), SmtpError> {
        let reply = if extensions.auth_plain {
            let mut token =
                Vec::with_capacity(credentials.login.len() * 2 + credentials.password.len() + 2);
            token.push(0);
            token.extend_from_slice(credentials.login.as_bytes());
            token.push(0);
            token.extend_from_slice(credentials.password);
            let encoded = STANDARD.encode(&token);
            token.fill(0);
            let reply =
                self.command(format!("AUTH PLAIN {encoded}\r\n").as_bytes(), "AUTH").await?;
            if reply.code == 334 {
                // a server that ignores initial responses asks for it again
                self.command(format!("{encoded}\r\n").as_bytes(), "AUTH").await?
            } else {
                reply
            }
        } else if extensions.auth_login {
            let reply = self.command(b"AUTH LOGIN\r\n", "AUTH").await?;
            if reply.code != 334 {
                return Err(auth_failure(&reply));
            }
            let login = STANDARD.encode(credentials.login.as_bytes());
            let reply = self.command(format!("{login}\r\n").as_bytes(), "AUTH").await?;
            if reply.code != 334 {
                return Err(auth_failure(&reply));
            }
            let password = STANDARD.encode(credentials.password);
            self.command(format!("{password}\r\n").as_bytes(), "AUTH").await?
        } else {
            return Err(SmtpError::AuthFailed(
                "the server offers neither AUTH PLAIN nor AUTH LOGIN (auth = \"none\" is for \
                 relays that need no AUTH)"
                    .to_string(),
            ));
        };
        if reply.code == 235 { Ok(()) } else { Err(auth_failure(&reply)) }
    }

    /// MAIL FROM, RCPT TO for each recipient, DATA and the message.
    async fn transaction(
        &mut self,
        extensions: &Extensions,
        sender: &str,
        recipients: &[String],
        message: &[u8],
        before_final_dot: BeforeFinalDot<'_>,
        final_dot: &FinalDot,
    ) -> Result<Vec<Refusal>, SmtpError> {
        let size = message.len();
        if let Some(limit) = extensions.size.filter(|&limit| limit > 0)
            && u64::try_from(size).unwrap_or(u64::MAX) > limit
        {
            return Err(SmtpError::TooLarge(format!(
                "the message has {size} bytes, the server takes at most {limit}"
            )));
        }
        let mut refused = Vec::new();
        let mut offered: Vec<&str> = Vec::new();
        for recipient in recipients {
            let recipient = recipient.trim();
            if offered.iter().any(|known| known.eq_ignore_ascii_case(recipient)) {
                continue;
            }
            if !is_address(recipient) {
                refused.push(Refusal {
                    address: recipient.to_string(),
                    reply: "not a valid mail address (not offered to the server)".to_string(),
                });
            } else if !recipient.is_ascii() && !extensions.smtputf8 {
                refused.push(Refusal {
                    address: recipient.to_string(),
                    reply: "the server does not accept internationalized addresses (SMTPUTF8)"
                        .to_string(),
                });
            } else {
                offered.push(recipient);
            }
        }
        if !sender.is_ascii() && !extensions.smtputf8 {
            return Err(SmtpError::Rejected(
                "the server does not accept an internationalized sender (SMTPUTF8)".to_string(),
            ));
        }
        if offered.is_empty() {
            return Err(all_refused(&refused));
        }

        let mut mail = format!("MAIL FROM:<{sender}>");
        if extensions.size.is_some() {
            mail.push_str(&format!(" SIZE={size}"));
        }
        if extensions.eight_bit_mime && message.iter().any(|byte| !byte.is_ascii()) {
            mail.push_str(" BODY=8BITMIME");
        }
        if extensions.smtputf8 && (!sender.is_ascii() || offered.iter().any(|r| !r.is_ascii())) {
            mail.push_str(" SMTPUTF8");
        }
        mail.push_str("\r\n");
        let reply = self.command(mail.as_bytes(), "MAIL FROM").await?;
        if !reply.is_positive() {
            return Err(refusal("the sender", &reply));
        }

        let mut accepted = 0;
        for recipient in offered {
            let reply =
                self.command(format!("RCPT TO:<{recipient}>\r\n").as_bytes(), "RCPT TO").await?;
            // RFC 5321 §4.5.3.1.10: a 552 to RCPT means "too many recipients", a temporary
            // condition, whatever its first digit says
            if reply.is_transient() || reply.code == 552 {
                self.reset().await;
                return Err(SmtpError::Unavailable(format!(
                    "{recipient} refused for now: {reply}"
                )));
            }
            if reply.is_positive() {
                accepted += 1;
            } else {
                refused.push(Refusal { address: recipient.to_string(), reply: reply.to_string() });
            }
        }
        if accepted == 0 {
            self.reset().await;
            return Err(all_refused(&refused));
        }

        let reply = self.command(b"DATA\r\n", "DATA").await?;
        if reply.code != 354 {
            return Err(refusal("DATA", &reply));
        }
        let data = data_bytes(message);
        let (body, dot) = data.split_at(data.len() - FINAL_DOT.len());
        let timeout = self.data_timeout;
        within(timeout, "the message", self.write(body)).await?;
        // Up to here the server discards the message if the connection ends; from the dot on,
        // it may deliver it whatever happens to us. What the caller records now (durably)
        // tells a retry after a crash that the message may have gone out.
        let after_final_dot = before_final_dot.await.map_err(|why| {
            SmtpError::Unavailable(format!("not sent: the submission could not be recorded: {why}"))
        })?;
        final_dot.mark_sent();
        let reply = within(timeout, "the message", async {
            self.write(dot).await?;
            after_final_dot();
            self.read_reply().await
        })
        .await
        .map_err(|error| match error {
            SmtpError::Unavailable(why) => SmtpError::OutcomeUnknown(why),
            other => SmtpError::OutcomeUnknown(other.to_string()),
        })?;
        if !reply.is_positive() {
            return Err(refusal("the message", &reply));
        }
        Ok(refused)
    }

    /// RSET after a failed transaction, best effort (QUIT follows).
    async fn reset(&mut self) {
        if let Err(error) = self.command(b"RSET\r\n", "RSET").await {
            tracing::debug!(%error, "SMTP RSET");
        }
    }

    /// QUIT, best effort: the outcome is settled.
    async fn quit(&mut self) {
        let quit = async {
            self.write(b"QUIT\r\n").await?;
            self.read_reply().await
        };
        if let Err(error) = within(QUIT_TIMEOUT, "QUIT", quit).await {
            tracing::debug!(%error, "SMTP QUIT");
        }
    }

    /// Writes one command and reads its reply within the command timeout. `what` names the
    /// command in errors (the line itself may hold credentials).
    async fn command(&mut self, line: &[u8], what: &str) -> Result<Reply, SmtpError> {
        let timeout = self.command_timeout;
        within(timeout, what, async {
            self.write(line).await?;
            self.read_reply().await
        })
        .await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), SmtpError> {
        let written = match &mut self.transport {
            Transport::Plain(stream) => stream.write_all(bytes).await,
            Transport::Tls(stream) => match stream.write_all(bytes).await {
                Ok(()) => stream.flush().await,
                Err(error) => Err(error),
            },
            Transport::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        };
        written.map_err(|error| SmtpError::Unavailable(format!("sending: {error}")))
    }

    async fn read_reply(&mut self) -> Result<Reply, SmtpError> {
        let mut lines = Vec::new();
        loop {
            let raw = self.read_line().await?;
            let line = ReplyLine::parse(&raw).ok_or_else(|| {
                SmtpError::Unavailable(format!(
                    "not an SMTP reply: {:?}",
                    String::from_utf8_lossy(&raw[..raw.len().min(80)])
                ))
            })?;
            let code = line.code;
            lines.push(line.text);
            if line.last {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(SmtpError::Unavailable("a reply of too many lines".to_string()));
            }
        }
    }

    /// One line without its line end.
    async fn read_line(&mut self) -> Result<Vec<u8>, SmtpError> {
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
                return Err(SmtpError::Unavailable("a reply line too long".to_string()));
            }
            self.buffer.reserve(4096);
            let read = match &mut self.transport {
                Transport::Plain(stream) => stream.read_buf(&mut self.buffer).await,
                Transport::Tls(stream) => stream.read_buf(&mut self.buffer).await,
                Transport::Gone => Err(std::io::ErrorKind::NotConnected.into()),
            };
            match read {
                Ok(0) => {
                    return Err(SmtpError::Unavailable("the server closed the connection".into()));
                }
                Ok(_) => {}
                Err(error) => return Err(SmtpError::Unavailable(format!("receiving: {error}"))),
            }
        }
    }
}

async fn handshake(
    submitter: &Submitter,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, SmtpError> {
    let tls: &TlsClient = submitter
        .tls
        .as_ref()
        .ok_or_else(|| SmtpError::Tls("no TLS client configured".to_string()))?;
    tls.handshake(tcp).await.map_err(tls_error)
}

/// `future` within `timeout`; a timeout is `Unavailable` naming `what`.
async fn within<T>(
    timeout: Duration,
    what: &str,
    future: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, SmtpError> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| SmtpError::Unavailable(format!("no answer to {what} within {timeout:?}")))?
}

/// The error for a refusal of the sender, DATA or the message: by size, 4xx or 5xx.
fn refusal(what: &str, reply: &Reply) -> SmtpError {
    if reply.is_size_refusal() {
        SmtpError::TooLarge(reply.to_string())
    } else if reply.is_transient() {
        SmtpError::Unavailable(format!("{what} refused for now: {reply}"))
    } else {
        SmtpError::Rejected(format!("{what} refused: {reply}"))
    }
}

fn auth_failure(reply: &Reply) -> SmtpError {
    if reply.is_transient() {
        SmtpError::Unavailable(format!("AUTH failed for now: {reply}"))
    } else {
        SmtpError::AuthFailed(reply.to_string())
    }
}

fn all_refused(refused: &[Refusal]) -> SmtpError {
    if refused.is_empty() {
        return SmtpError::Rejected("no recipients".to_string());
    }
    let each: Vec<String> = refused.iter().map(|r| format!("{}: {}", r.address, r.reply)).collect();
    SmtpError::Rejected(format!("every recipient was refused ({})", each.join("; ")))
}

/// Whether `address` can go between `<` and `>` in MAIL FROM and RCPT TO as it is: a local
/// part and a domain, with nothing that would end the path or the command (space, angle
/// brackets, controls). The server judges the rest.
fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && address.len() <= 512
        && !address.chars().any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
}

/// The message as DATA sends it (RFC 5321 §4.5.2): every line end CRLF (bare LF and CR
/// too, which servers refuse or misread), a dot doubled at the start of a line, and the
/// final `.` line.
fn data_bytes(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let mut line_start = true;
    let mut bytes = message.iter().peekable();
    while let Some(&byte) = bytes.next() {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        match byte {
            b'\r' => {
                bytes.next_if_eq(&&b'\n');
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            _ => {
                out.push(byte);
                line_start = false;
            }
        }
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(FINAL_DOT);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_dot_stuffed_with_crlf_line_ends() {
        assert_eq!(data_bytes(b""), b".\r\n");
        assert_eq!(data_bytes(b"a\r\n"), b"a\r\n.\r\n");
        assert_eq!(data_bytes(b"a"), b"a\r\n.\r\n");
        assert_eq!(data_bytes(b".\r\n..x\r\n.y"), b"..\r\n...x\r\n..y\r\n.\r\n");
        assert_eq!(data_bytes(b"a\nb\rc\r\n.d\n"), b"a\r\nb\r\nc\r\n..d\r\n.\r\n");
        assert_eq!(data_bytes(b"x.y\r\n"), b"x.y\r\n.\r\n");
        assert_eq!(data_bytes(b"\r\n.\r\n"), b"\r\n..\r\n.\r\n");
    }

    #[test]
    fn addresses_cannot_break_the_command() {
        assert!(is_address("pat@example.test") && is_address("a+tag@b") && is_address("ü@ä.de"));
        for bad in [
            "",
            "nobody",
            "@example.test",
            "pat@",
            "a b@c",
            "a@b>\r\nRCPT TO:<x@y",
            "<a@b>",
            "a@b\n",
            "a\u{0}@b",
        ] {
            assert!(!is_address(bad), "{bad:?}");
        }
    }

    #[test]
    fn refusals_by_kind() {
        let reply = |code, text: &str| Reply { code, lines: vec![text.to_string()] };
        assert!(matches!(refusal("x", &reply(552, "5.3.4 too big")), SmtpError::TooLarge(_)));
        assert!(matches!(refusal("x", &reply(451, "4.3.0 later")), SmtpError::Unavailable(_)));
        assert!(matches!(refusal("x", &reply(554, "5.7.1 no")), SmtpError::Rejected(_)));
        assert!(matches!(auth_failure(&reply(535, "5.7.8 bad")), SmtpError::AuthFailed(_)));
        assert!(matches!(auth_failure(&reply(454, "4.7.0 later")), SmtpError::Unavailable(_)));
        assert!(matches!(all_refused(&[]), SmtpError::Rejected(_)));
    }
}
