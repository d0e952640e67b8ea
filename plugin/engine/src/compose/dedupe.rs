//! Sending each message once although phones resend (MS-ASCMD §2.2.3.28.1, EAS-NOTES §4.9).
//!
//! A phone that loses the answer to a SendMail (network drop, timeout) sends the same request
//! again. 14.0+ requests carry a ClientId, unique per message; 12.1 requests have none, so the
//! message bytes stand in for it during a short window. Per device, one state record (the
//! "ledger") remembers the last [`CAPACITY`] submissions:
//!
//! 1. Before sending, the submission is *claimed*: written as in flight with a
//!    compare-and-swap, so of two concurrent requests for one message only one sends.
//! 2. After the SMTP server accepted it, it is marked sent; after a failure it is forgotten,
//!    so the phone's retry sends it afresh. A failure after which the server may have the
//!    message all the same (the connection lost between DATA's final dot and the reply,
//!    RFC 1047) leaves the claim in flight. (The host makes the claim durable just before it
//!    sends the final dot, not only at the request's end: a crash after that point leaves the
//!    claim, and the retry is not sent twice; a crash before it leaves none, and the retry
//!    sends the message that never left.)
//!
//! A repeated submission is answered without sending:
//! * marked sent → success (the message did go out; see [`super::DUPLICATE_IS_SUCCESS`]);
//! * in flight for less than [`IN_FLIGHT_STALE_MS`] → "retry later": the first request is
//!   still sending, and only its outcome tells whether a resend is needed;
//! * in flight for longer → the request that claimed it died after the final dot and before
//!   recording the outcome, or its connection was lost there. The server probably has the
//!   message; it is *presumed sent* and not sent again (its Sent copy is made then). What is
//!   left is a crash in the microseconds between the claim reaching disk and the dot being
//!   written (or a server that refused the message after its end, unheard): the message is
//!   then lost, which we prefer to delivering it twice, which cannot be undone.

use serde::{Deserialize, Serialize};

use crate::capabilities::{Capabilities, StateError, StateResult, StateScope};

/// State key in the device's scope.
const KEY: &str = "compose/ledger";
/// Leading byte of the stored form; bump when the layout changes.
const FORMAT: u8 = 1;
/// Submissions remembered per device. Phones retry within minutes; 100 messages is days of
/// typical sending and keeps the record a few kilobytes.
const CAPACITY: usize = 100;
/// An in-flight claim older than this belongs to a request that is no longer running: hosts
/// end requests well before (SMTP and request timeouts are a few minutes at most).
pub const IN_FLIGHT_STALE_MS: u64 = 10 * 60 * 1000;
/// How long identical 12.1 message bytes count as a resend. Short: without a ClientId, a user
/// may mean to send the same text twice.
pub const MIME_WINDOW_MS: u64 = 10 * 60 * 1000;
/// Compare-and-swap attempts before giving up on a contended ledger.
const ATTEMPTS: usize = 5;

/// What identifies a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmissionKey {
    /// The 14.0+ ClientId.
    ClientId(String),
    /// A hash of the message bytes (12.1, or a client that sent no ClientId).
    Mime(u64),
}

impl SubmissionKey {
    pub fn for_mime(message: &[u8]) -> Self {
        SubmissionKey::Mime(fnv1a(message))
    }

    fn stored(&self) -> String {
        match self {
            // ClientIds are at most 40 characters (§2.2.3.28.1); a longer one is hashed.
            SubmissionKey::ClientId(id) if id.len() <= 64 => format!("c:{id}"),
            SubmissionKey::ClientId(id) => format!("h:{:016x}", fnv1a(id.as_bytes())),
            SubmissionKey::Mime(hash) => format!("m:{hash:016x}"),
        }
    }

    fn expires(&self) -> bool {
        matches!(self, SubmissionKey::Mime(_))
    }
}

/// The outcome of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send.
    Claimed,
    /// Sent before.
    AlreadySent,
    /// Another request is sending it right now.
    InFlight,
    /// Claimed long ago and never settled: presumed sent (see the module docs).
    PresumedSent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    key: String,
    sent: bool,
    at_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Ledger {
    /// Oldest first.
    entries: Vec<Entry>,
}

impl Ledger {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Ledger> {
        let (&format, rest) = bytes.split_first()?;
        (format == FORMAT).then(|| postcard::from_bytes(rest).ok()).flatten()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|entry| entry.key == key)
    }
}

/// What a claim finds in the ledger, decided without I/O.
fn decide(entry: Option<&Entry>, key: &SubmissionKey, now_ms: u64) -> Claim {
    let Some(entry) = entry else { return Claim::Claimed };
    let age = now_ms.saturating_sub(entry.at_ms);
    match (entry.sent, key.expires()) {
        (true, true) if age > MIME_WINDOW_MS => Claim::Claimed,
        (true, _) => Claim::AlreadySent,
        (false, _) if age > IN_FLIGHT_STALE_MS => Claim::PresumedSent,
        (false, _) => Claim::InFlight,
    }
}

/// Claims `key` for sending (see the module docs).
pub async fn claim(
    caps: &impl Capabilities,
    device: &str,
    key: &SubmissionKey,
) -> StateResult<Claim> {
    let stored_key = key.stored();
    let now_ms = caps.now_ms();
    update(caps, device, |ledger| {
        let found = ledger.position(&stored_key);
        let claim = decide(found.map(|index| &ledger.entries[index]), key, now_ms);
        if claim != Claim::Claimed {
            return (claim, false);
        }
        if let Some(index) = found {
            ledger.entries.remove(index);
        }
        ledger.entries.push(Entry { key: stored_key.clone(), sent: false, at_ms: now_ms });
        let excess = ledger.entries.len().saturating_sub(CAPACITY);
        ledger.entries.drain(..excess);
        (Claim::Claimed, true)
    })
    .await
}

/// Records the outcome of a claimed submission: marked sent, or forgotten so that a retry
/// sends it.
pub async fn settle(
    caps: &impl Capabilities,
    device: &str,
    key: &SubmissionKey,
    sent: bool,
) -> StateResult<()> {
    let stored_key = key.stored();
    let now_ms = caps.now_ms();
    update(caps, device, |ledger| match ledger.position(&stored_key) {
        Some(index) if sent => {
            ledger.entries[index] = Entry { key: stored_key.clone(), sent: true, at_ms: now_ms };
            ((), true)
        }
        Some(index) => {
            ledger.entries.remove(index);
            ((), true)
        }
        None => ((), false),
    })
    .await
}

/// Read, change, compare-and-swap; again when another request changed the ledger meanwhile.
async fn update<T>(
    caps: &impl Capabilities,
    device: &str,
    mut change: impl FnMut(&mut Ledger) -> (T, bool),
) -> StateResult<T> {
    let scope = StateScope::Device(device.to_owned());
    for _ in 0..ATTEMPTS {
        let raw = caps.state_get(&scope, KEY).await?;
        // An unreadable ledger (older format) starts empty: at worst one resend goes out twice.
        let mut ledger = raw.as_deref().and_then(Ledger::decode).unwrap_or_default();
        let (result, changed) = change(&mut ledger);
        if !changed {
            return Ok(result);
        }
        if caps.state_compare_and_swap(&scope, KEY, raw, Some(ledger.encode())).await? {
            return Ok(result);
        }
    }
    Err(StateError::Unavailable("the send ledger kept changing".to_owned()))
}

/// FNV-1a, 64 bits: stable across builds (unlike std's hasher), which stored keys need.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::run_to_completion;
    use crate::testing::FakeHost;

    fn run<F: std::future::Future>(future: F) -> F::Output {
        run_to_completion(future).expect("completes")
    }

    fn entry(sent: bool, at_ms: u64) -> Entry {
        Entry { key: "k".into(), sent, at_ms }
    }

    #[test]
    fn decisions() {
        let client = SubmissionKey::ClientId("c1".into());
        let mime = SubmissionKey::Mime(7);
        let later = |ms: u64| 1_000_000 + ms;
        assert_eq!(decide(None, &client, 0), Claim::Claimed);
        assert_eq!(
            decide(Some(&entry(true, 1_000_000)), &client, later(86_400_000)),
            Claim::AlreadySent
        );
        assert_eq!(decide(Some(&entry(true, 1_000_000)), &mime, later(60_000)), Claim::AlreadySent);
        assert_eq!(
            decide(Some(&entry(true, 1_000_000)), &mime, later(MIME_WINDOW_MS + 1)),
            Claim::Claimed
        );
        assert_eq!(decide(Some(&entry(false, 1_000_000)), &client, later(1_000)), Claim::InFlight);
        assert_eq!(
            decide(Some(&entry(false, 1_000_000)), &client, later(IN_FLIGHT_STALE_MS + 1)),
            Claim::PresumedSent
        );
    }

    #[test]
    fn claim_settle_and_forget() {
        let host = FakeHost::default();
        let key = SubmissionKey::ClientId("abc".into());
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::Claimed));
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::InFlight));
        // Another device's ClientIds are its own.
        assert_eq!(run(claim(&host, "other", &key)), Ok(Claim::Claimed));
        run(settle(&host, "d", &key, false)).expect("forgets");
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::Claimed));
        run(settle(&host, "d", &key, true)).expect("records");
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::AlreadySent));
    }

    #[test]
    fn a_lost_race_is_retried_and_the_ledger_is_bounded() {
        let host = FakeHost::default();
        *host.race_next_swap.borrow_mut() = Some("compose/".into());
        // A concurrent request claims the same message first: the claim reads again, finds it
        // in flight and leaves the sending to the other request.
        assert_eq!(run(claim(&host, "d", &SubmissionKey::Mime(1))), Ok(Claim::InFlight));
        for id in 0..(CAPACITY + 10) {
            let key = SubmissionKey::ClientId(format!("id{id}"));
            assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::Claimed));
        }
        let raw = host.stored(&StateScope::Device("d".into()), KEY).expect("stored");
        let ledger = Ledger::decode(&raw).expect("decodes");
        assert_eq!(ledger.entries.len(), CAPACITY);
        assert_eq!(ledger.entries[0].key, "c:id10");
        let long = SubmissionKey::ClientId("x".repeat(100));
        assert!(long.stored().starts_with("h:"));
    }
}
