//! Push: parked Pings and Syncs-with-Wait, and the IMAP watchers that wake them.
//!
//! The plugin answers a Ping or a Sync with Wait that has nothing to report with a **hold**
//! (GRIP headers, see [`parse_hold`] and `docs/architecture.md`, "Push: the hold contract").
//! The server code then:
//!
//! 1. strips the `Grip-*` headers ([`strip_grip_headers`]) and keeps the [`Hold`];
//! 2. calls [`PushHub::park`] with the account, the device and a deadline; the future resolves
//!    with a [`WakeReason`];
//! 3. on [`WakeReason::Changed`] calls the plugin again with the original request plus
//!    `x-eas-edge-wake: changed` and sends its answer (parking again, with the remaining time
//!    of the first deadline, when the answer is another hold); on [`WakeReason::Timeout`] and
//!    [`WakeReason::Superseded`] sends the hold's stored response.
//!
//! Every other request of a device calls [`PushHub::supersede`] so that its parked request
//! ends at once, as Exchange does.
//!
//! A parked request is a small record in the hub's registry (account → device, folders); it
//! holds no wasm instance and no IMAP connection. One watcher task per account with parked
//! requests watches the union of their folders with NOTIFY (RFC 5465) when the server offers
//! it, else IDLE on up to [`PushSettings::max_idle_connections`] folders and STATUS polling for
//! the rest, and compares each changed folder's [`folder_token`] with the tokens the parked
//! requests were based on.
//!
//! In a cluster (gateways sharing a PostgreSQL state store, `crate::cluster`) the hub is told
//! of the other nodes ([`PushHub::join_cluster`]): one watcher per account in the whole
//! cluster, wake-ups and supersedes reach every node (`cluster.rs`).

mod cluster;
mod grip;
mod registry;
mod watcher;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::imap::{FolderStatus, ImapError, Session};

pub use cluster::{ClusterEvent, ClusterLink, Lease, LeaseFuture};
pub use grip::{
    GripError, Hold, MAX_GRIP_TIMEOUT, decode_channel, encode_channel, format_channel, parse_hold,
    strip_grip_headers,
};
pub use registry::{PushHub, WeakPushHub};

/// The header the host adds to the original request when it calls the plugin again.
pub const WAKE_HEADER: &str = "x-eas-edge-wake";

/// The longest time between two IDLE commands on one connection: RFC 2177 lets servers end
/// an IDLE after 30 minutes of client silence.
pub const MAX_IDLE_RENEWAL: Duration = Duration::from_secs(28 * 60);

/// The state token of a folder, as used in `Grip-Channel: <folder>; prev-id=<token>`:
/// `{uidvalidity}.{uidnext}.{highestmodseq or 0}.{messages}`, all decimal, from STATUS. The
/// engine builds the same string (`plugin/engine/src/push/token.rs`) from the mailbox
/// capability's folder status; a parked request wakes when any of its folders' current token
/// differs from the one it was parked with. Without CONDSTORE flag changes do not move it.
pub fn folder_token(status: &FolderStatus) -> String {
    format!(
        "{}.{}.{}.{}",
        status.uid_validity,
        status.uid_next,
        status.highest_modseq.unwrap_or(0),
        status.messages
    )
}

/// The reserved folder name of the hierarchy watch (channel `%00hierarchy`): NUL never occurs
/// in an IMAP mailbox name. Its token is [`hierarchy_token`] of the account's folder list; a
/// parked Ping carries it so that a folder created, deleted or renamed by another client wakes
/// it (the plugin then answers Status 7). The engine defines the same (`push/token.rs`).
pub const HIERARCHY: &str = "\0hierarchy";

/// `{count}.{fnv1a-64 hex}` over the raw names of `LIST "" "*"`, sorted by bytes, duplicates
/// dropped, each followed by a newline, INBOX in any case as `INBOX`: the same string as the
/// engine's `push::hierarchy_token` from the same server.
pub fn hierarchy_token<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.into_iter().map(folder_key).collect();
    names.sort_unstable();
    names.dedup();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in names.iter().flat_map(|name| name.bytes().chain([b'\n'])) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}.{hash:016x}", names.len())
}

/// Whose mailbox: the tenant and the login the watcher signs in as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey {
    pub tenant: Arc<str>,
    pub login: Arc<str>,
}

impl AccountKey {
    pub fn new(tenant: &str, login: &str) -> Self {
        Self { tenant: tenant.into(), login: login.into() }
    }
}

/// Why a parked request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeReason {
    /// A watched folder's token differs from the one the request was parked with (possibly
    /// already when it was parked): call the plugin again with `x-eas-edge-wake: changed`.
    Changed,
    /// The deadline passed: send the hold's stored response.
    Timeout,
    /// The device sent another request (or parked another one): send the stored response now.
    Superseded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushStats {
    /// Requests parked right now.
    pub parked: usize,
    /// Accounts with a running watcher.
    pub watchers: usize,
    /// IMAP connections the watchers hold (logged in).
    pub imap_connections: usize,
}

/// How watchers behave; the defaults suit production, tests shorten the times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushSettings {
    /// Use NOTIFY when the server announces it (one connection per account); off: IDLE and
    /// STATUS polling even then.
    pub use_notify: bool,
    /// Without NOTIFY: at most this many IDLE connections per account, each on one folder
    /// (the watcher's own connection included). Further folders are polled with STATUS on the
    /// watcher's connection. 0: poll everything.
    pub max_idle_connections: usize,
    /// How often folders without IDLE are polled with STATUS (with CONDSTORE the token carries
    /// HIGHESTMODSEQ, so flag changes show; without it only new and expunged messages).
    pub poll_interval: Duration,
    /// An IDLE is ended and started again after this long (capped at [`MAX_IDLE_RENEWAL`]);
    /// this also finds dead connections.
    pub idle_renewal: Duration,
    /// A folder stays watched this long after its last parked request ended, and a watcher
    /// stops when its account has had no parked request for this long.
    pub linger: Duration,
    /// Reconnect backoff: first delay, doubled per failure up to `reconnect_max` (with jitter).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            use_notify: true,
            max_idle_connections: 4,
            poll_interval: Duration::from_secs(60),
            idle_renewal: Duration::from_secs(25 * 60),
            linger: Duration::from_secs(60),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(120),
        }
    }
}

impl PushSettings {
    /// Keeps the times in a range where watchers neither spin nor break RFC 2177.
    fn sanitized(mut self) -> Self {
        let floor = Duration::from_millis(50);
        self.poll_interval = self.poll_interval.max(floor);
        self.idle_renewal = self.idle_renewal.clamp(floor, MAX_IDLE_RENEWAL);
        self.reconnect_min = self.reconnect_min.max(Duration::from_millis(10));
        self.reconnect_max = self.reconnect_max.max(self.reconnect_min);
        self
    }
}

/// The future a [`Connector`] returns.
pub type ConnectFuture = Pin<Box<dyn Future<Output = Result<Session, ImapError>> + Send>>;

/// How a watcher logs in as the account (with whatever credentials the host holds for it).
/// Called again after every disconnect, so it may pick up changed credentials.
pub trait Connector: Send + Sync {
    fn connect(&self) -> ConnectFuture;
}

impl<F> Connector for F
where
    F: Fn() -> ConnectFuture + Send + Sync,
{
    fn connect(&self) -> ConnectFuture {
        self()
    }
}

/// INBOX is case-insensitive (RFC 9051 §5.1): one spelling for the registry.
fn folder_key(raw_name: &str) -> &str {
    if raw_name.eq_ignore_ascii_case("INBOX") { "INBOX" } else { raw_name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_has_the_documented_form() {
        let mut status = FolderStatus {
            uid_validity: 1_700_000_001,
            uid_next: 42,
            highest_modseq: Some(9_000_000_000),
            messages: 40,
            unseen: 3,
        };
        assert_eq!(folder_token(&status), "1700000001.42.9000000000.40");
        status.highest_modseq = None;
        assert_eq!(folder_token(&status), "1700000001.42.0.40");
    }

    #[test]
    fn settings_are_kept_in_a_sane_range() {
        let settings = PushSettings {
            poll_interval: Duration::ZERO,
            idle_renewal: Duration::from_secs(3600),
            reconnect_min: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(1),
            ..PushSettings::default()
        }
        .sanitized();
        assert!(settings.poll_interval > Duration::ZERO);
        assert_eq!(settings.idle_renewal, MAX_IDLE_RENEWAL);
        assert_eq!(settings.reconnect_max, Duration::from_secs(5));
    }

    #[test]
    fn hierarchy_token_matches_the_engine() {
        // the same vector as plugin/engine/src/push/token.rs
        assert_eq!(hierarchy_token(["INBOX", "Sent"]), "2.6ab431195cfb145d");
        assert_eq!(hierarchy_token(["Sent", "inbox", "Sent"]), "2.6ab431195cfb145d");
        assert_eq!(decode_channel("%00hierarchy").as_deref(), Ok(HIERARCHY));
    }

    #[test]
    fn inbox_has_one_spelling() {
        assert_eq!(folder_key("inbox"), "INBOX");
        assert_eq!(folder_key("Inbox"), "INBOX");
        assert_eq!(folder_key("INBOX/Sub"), "INBOX/Sub");
    }
}
