//! Sending the users' mail through the tenant's submission server (RFC 6409).
//!
//! A small client of our own (see [`client`]) rather than lettre: lettre gives up on the first
//! refused RCPT, while the plugin must learn which recipients were refused when the others
//! were accepted; and this way TLS is the host's rustls on ring with the same CA handling as
//! IMAP ([`crate::imap::TlsClient`]), with no second TLS stack in the tree.
//!
//! The password is only ever written to the server (AUTH), never logged; neither is the
//! message.

mod client;
mod reply;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::imap::{ImapError, TlsClient, TlsMode, TlsSettings};

pub use reply::Reply;

/// `smtp = { host, port, tls, ca_file, auth }` of a tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `none` (the default: loopback or a trusted network only), `starttls` or `implicit`.
    #[serde(default)]
    pub tls: crate::config::TlsMode,
    /// PEM file of a private CA, or of the server's own self-signed certificate (pinned);
    /// without it the public web roots are trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `user` (the default): AUTH as the user with the password the IMAP server accepted;
    /// `none`: no AUTH, for a relay that trusts the gateway by its address.
    #[serde(default)]
    pub auth: SmtpAuth,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpAuth {
    #[default]
    User,
    None,
}

/// How long each step may take; a step that takes longer fails the submission as unavailable.
/// A submission made for a phone's request is also bounded as a whole (the `deadline` of
/// [`Submitter::send`]: a share of the plugin call's budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect, the TLS handshake of implicit TLS, and the server's greeting: a server
    /// that accepts and never greets is as good as down, and is found out as quickly.
    pub connect: Duration,
    /// One command and its reply: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA.
    pub command: Duration,
    /// Sending the message and the server's reply to its final dot.
    pub data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            command: Duration::from_secs(60),
            data: Duration::from_secs(300),
        }
    }
}

/// Why a message was not sent. In every case nothing was sent, except for `OutcomeUnknown`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// The message's final dot was sent, and then the connection was lost or the reply did not
    /// come in time: the server may have accepted the message (RFC 1047). Sending it again
    /// could deliver it twice.
    #[error("the SMTP server did not confirm the message, and may have accepted it: {0}")]
    OutcomeUnknown(String),
    /// Unreachable, timed out, closed, or a transient (4xx) refusal: worth retrying.
    #[error("SMTP server unavailable: {0}")]
    Unavailable(String),
    /// A permanent (5xx) refusal of the sender, the message or every recipient.
    #[error("SMTP server refused the message: {0}")]
    Rejected(String),
    /// Over the server's size limit (SIZE, RFC 1870; 552 or x.3.4).
    #[error("message too large: {0}")]
    TooLarge(String),
    /// The server refused the credentials, or offers no mechanism we speak.
    #[error("SMTP authentication failed: {0}")]
    AuthFailed(String),
    /// TLS could not be set up, or the server offers no STARTTLS.
    #[error("SMTP TLS: {0}")]
    Tls(String),
}

/// A recipient the server refused while it accepted others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub address: String,
    /// The server's reply, or why the address was not offered to it.
    pub reply: String,
}

/// What a submission server offers, as a probe found it (no mail sent, no AUTH tried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The session ran over TLS (implicit or STARTTLS, as configured).
    pub tls: bool,
    /// The AUTH mechanisms announced (after STARTTLS when used), upper-cased.
    pub auth_mechanisms: Vec<String>,
    /// Whether one of them is a mechanism this client speaks (PLAIN, LOGIN).
    pub usable_auth: bool,
    /// RFC 1870 SIZE (0: no fixed limit), when announced.
    pub size: Option<u64>,
}

/// The login and password for AUTH; the password has no `Debug`.
pub struct Credentials<'a> {
    pub login: &'a str,
    pub password: &'a [u8],
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("login", &self.login).finish_non_exhaustive()
    }
}

/// A tenant's submission server, ready to connect (TLS roots loaded once, here).
#[derive(Debug, Clone)]
pub struct Submitter {
    host: String,
    port: u16,
    tls_mode: TlsMode,
    tls: Option<TlsClient>,
    auth: SmtpAuth,
    timeouts: Timeouts,
}

impl Submitter {
    pub fn new(config: &SmtpConfig) -> Result<Self, SmtpError> {
        let tls_mode = match config.tls {
            crate::config::TlsMode::None => TlsMode::None,
            crate::config::TlsMode::Starttls => TlsMode::StartTls,
            crate::config::TlsMode::Implicit => TlsMode::Implicit,
        };
        let tls = match tls_mode {
            TlsMode::None => None,
            TlsMode::StartTls | TlsMode::Implicit => {
                let settings = TlsSettings {
                    mode: tls_mode,
                    ca_file: config.ca_file.clone(),
                    server_name: None,
                };
                Some(TlsClient::new(&settings, &config.host).map_err(tls_error)?)
            }
        };
        Ok(Submitter {
            host: config.host.clone(),
            port: config.port,
            tls_mode,
            tls,
            auth: config.auth,
            timeouts: Timeouts::default(),
        })
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Whether sending needs the user's credentials (`auth = "user"`).
    pub fn authenticates(&self) -> bool {
        self.auth == SmtpAuth::User
    }

    /// `host:port`, for logs.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Sends `message` (complete RFC 5322; line ends are made CRLF, lines starting with a dot
    /// are dot-stuffed) from the envelope sender `sender` to `recipients`, authenticating with
    /// `credentials` when the tenant asks for AUTH. Ok: the message was accepted for the
    /// recipients not in the returned list. A transient refusal of any recipient (4xx) fails
    /// the whole submission as unavailable, so that a retry reaches everyone.
    ///
    /// `before_final_dot` is awaited when everything but DATA's final dot has been sent, the
    /// last moment at which the message has certainly not left: it must make durable whatever
    /// tells a later retry that the message may have gone out (see [`FinalDot`]). If it fails,
    /// the connection is dropped without the dot, so the server discards the message. What it
    /// returns is called as soon as the dot has been handed to the connection.
    pub async fn send(
        &self,
        deadline: Option<Instant>,
        sender: &str,
        credentials: Option<&Credentials<'_>>,
        recipients: &[String],
        message: &[u8],
        before_final_dot: BeforeFinalDot<'_>,
    ) -> Result<Vec<Refusal>, SmtpError> {
        let credentials = match (self.auth, credentials) {
            (SmtpAuth::None, _) => None,
            (SmtpAuth::User, Some(credentials)) => Some(credentials),
            (SmtpAuth::User, None) => {
                return Err(SmtpError::AuthFailed("no credentials to authenticate with".into()));
            }
        };
        let final_dot = FinalDot::default();
        let submission = client::submit(
            self,
            sender,
            credentials,
            recipients,
            message,
            before_final_dot,
            &final_dot,
        );
        let Some(deadline) = deadline else { return submission.await };
        // Dropped at the deadline, the connection closes without QUIT: before DATA's final dot
        // nothing was sent; after it the outcome is unknown, as with any connection lost then.
        match tokio::time::timeout_at(deadline.into(), submission).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let why = format!(
                    "{} did not complete the submission within the request's time budget",
                    self.address()
                );
                Err(if final_dot.sent() {
                    SmtpError::OutcomeUnknown(why)
                } else {
                    SmtpError::Unavailable(why)
                })
            }
        }
    }

    /// Connects and greets the server as a submission would (TLS as configured), then QUITs:
    /// whether the server is reachable and what it offers. Sends no mail.
    pub async fn probe(&self) -> Result<Offer, SmtpError> {
        client::probe(self).await
    }
}

/// What a submission awaits just before DATA's final dot (see [`Submitter::send`]); an `async`
/// block, which does nothing until then.
pub type BeforeFinalDot<'a> =
    Pin<Box<dyn Future<Output = Result<AfterFinalDot, String>> + Send + 'a>>;

/// What a submission calls as soon as DATA's final dot has been written to the connection.
pub type AfterFinalDot = Box<dyn FnOnce() + Send>;

/// Whether a submission got as far as sending DATA's final dot, the point after which the server
/// may have the message whatever becomes of the connection. Set just before the dot is written,
/// so that a submission cut while writing it counts as possibly sent.
#[derive(Debug, Default)]
pub(crate) struct FinalDot(AtomicBool);

impl FinalDot {
    fn mark_sent(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn sent(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// TLS setup failures as SMTP errors: configuration problems are `Tls`, a connection lost
/// during the handshake is the server being unavailable.
fn tls_error(error: ImapError) -> SmtpError {
    match error {
        ImapError::Unavailable(text) => SmtpError::Unavailable(text),
        ImapError::Tls(text) => SmtpError::Tls(text),
        other => SmtpError::Tls(other.to_string()),
    }
}
