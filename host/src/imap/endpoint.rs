//! Where and how to reach a tenant's IMAP server: address, TLS, time and size limits, and which
//! change-tracking extensions to use. Built once per tenant, shared by its sessions.

use std::time::Duration;

use super::error::ImapError;
use super::response::framing::FrameLimits;
use super::tls::{TlsClient, TlsMode, TlsSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Greeting, TLS, LOGIN and ENABLE together.
    pub login: Duration,
    /// Silence allowed between two reads or writes of an operation.
    pub io: Duration,
    /// One whole operation (e.g. fetching 10,000 summaries).
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            login: Duration::from_secs(30),
            io: Duration::from_secs(30),
            operation: Duration::from_secs(300),
        }
    }
}

/// Memory one response may cost; beyond these the session is dropped as broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest response line outside literals: a `SEARCH ALL` without ESEARCH lists every UID
    /// on one line (100,000 messages: ~700 KB).
    pub max_line: usize,
    /// Largest literal in general; fetch_message/fetch_part raise it to their `max_bytes`.
    pub max_literal: usize,
    /// Largest response with its literals.
    pub max_response: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_line: 4 << 20, max_literal: 32 << 20, max_response: 48 << 20 }
    }
}

impl Limits {
    pub(crate) fn frame_limits(&self) -> FrameLimits {
        FrameLimits {
            max_line: self.max_line,
            max_literal: self.max_literal,
            max_response: self.max_response.max(self.max_literal),
        }
    }
}

/// Which change-tracking extensions the session may use; the lesser ones exist for servers
/// with broken implementations and to test the fallbacks against a server that has them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChangeTracking {
    /// QRESYNC when offered, else CONDSTORE, else none.
    #[default]
    Best,
    /// CONDSTORE even when QRESYNC is offered.
    CondstoreOnly,
    /// Neither: `changes_since` is unsupported and callers diff `uid_flags` snapshots.
    Off,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls_mode: TlsMode,
    pub(crate) tls: Option<TlsClient>,
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub change_tracking: ChangeTracking,
}

impl Endpoint {
    /// Loads the TLS roots when TLS is used, so a bad CA file shows at configuration time.
    pub fn new(host: &str, port: u16, tls: &TlsSettings) -> Result<Self, ImapError> {
        let client = match tls.mode {
            TlsMode::None => None,
            TlsMode::StartTls | TlsMode::Implicit => Some(TlsClient::new(tls, host)?),
        };
        Ok(Self {
            host: host.to_string(),
            port,
            tls_mode: tls.mode,
            tls: client,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            change_tracking: ChangeTracking::default(),
        })
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_change_tracking(mut self, change_tracking: ChangeTracking) -> Self {
        self.change_tracking = change_tracking;
        self
    }
}
