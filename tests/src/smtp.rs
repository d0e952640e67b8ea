//! Sends a ready-made message over SMTP (no TLS), e.g. into the mail stack's Postfix.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use lettre::Transport;
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};

const TIMEOUT: Duration = Duration::from_secs(15);

/// User name and password for AUTH PLAIN (the stack's submission port requires it).
#[derive(Debug, Clone, Copy)]
pub struct SmtpLogin<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

/// Sends `message` (a complete RFC 5322 message, CRLF line ends) from `from` to `to`.
/// The envelope is given separately, as in real SMTP: the headers are not looked at.
pub fn send(
    addr: SocketAddr,
    login: Option<SmtpLogin<'_>>,
    from: &str,
    to: &[&str],
    message: &[u8],
) -> Result<()> {
    let envelope = envelope(from, to)?;
    let mut transport = SmtpTransport::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .timeout(Some(TIMEOUT));
    if let Some(login) = login {
        transport = transport
            .credentials(Credentials::new(login.user.to_string(), login.password.to_string()))
            .authentication(vec![Mechanism::Plain]);
    }
    // lettre always writes CRLF before the final ".": without this, a message that ends in a line
    // break (as RFC 5322 messages do) would arrive with an extra empty line
    let message = message.strip_suffix(b"\r\n").unwrap_or(message);
    transport
        .build()
        .send_raw(&envelope, message)
        .with_context(|| format!("sending mail from {from} to {to:?} via SMTP {addr}"))?;
    Ok(())
}

fn envelope(from: &str, to: &[&str]) -> Result<Envelope> {
    let parse = |address: &str| {
        address.parse::<Address>().with_context(|| format!("bad mail address {address:?}"))
    };
    let recipients = to.iter().map(|address| parse(address)).collect::<Result<Vec<_>>>()?;
    Envelope::new(Some(parse(from)?), recipients).context("building the SMTP envelope")
}
