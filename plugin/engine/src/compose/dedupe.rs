//! Sending each message once although phones resend (MS-ASCMD §2.2.3.28.1, EAS-NOTES §4.9).
//!
//! A phone that loses the answer to a SendMail (network drop, timeout) sends the same request
//! again. 14.0+ requests carry a ClientId, unique per message; 12.1 requests have none, so the
//! message bytes stand in for it during a short window; a 16.x draft sent from the Drafts
//! folder (`Send` in a Sync) is known by its folder and IMAP UID, which the retried Sync names
//! again. Per device, one state record (the "ledger") remembers the last [`CAPACITY`]
//! submissions:
//!
//! 1. Before sending, the submission is *claimed*: the ledger with the submission in flight
//!    is handed to the submission capability as its `claim`, which the host writes with a
//!    compare-and-swap, durably, as the last step before the message can leave (just before
//!    DATA's final dot). Of two concurrent requests for one message only one gets past that
//!    point; the other sends nothing (`ClaimLost`) and reads the ledger again. A crash before
//!    that point leaves no claim and no message, and the retry sends it; a crash after leaves
//!    the claim, and the retry is not sent twice. (Written by the plugin itself before
//!    sending, the claim would be durable at once where every state call is, behind Envoy,
//!    and a crash during the SMTP conversation would leave it although nothing left.)
//! 2. After the SMTP server accepted it, it is marked sent; after a failure it is forgotten,
//!    so the phone's retry sends it afresh. A failure after which the server may have the
//!    message all the same (the connection lost between DATA's final dot and the reply,
//!    RFC 1047) leaves the claim in flight.
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
//!   then lost, which we prefer to delivering it twice, which cannot be undone;
//! * in flight and marked abandoned → presumed sent at once: a host that keeps a send journal
//!   knows, when it starts again, which of its claims were made and reached their final dot
//!   before it died, and sets those to the claim's `presumed` form (the entry stamped
//!   [`ABANDONED_AT_MS`]), so the phone's resend is not told "retry later" for ten minutes.

use serde::{Deserialize, Serialize};

use crate::capabilities::{Capabilities, StateError, StateResult, StateScope};
use crate::submission::SendClaim;

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
/// The time of an in-flight entry whose request died after its final dot, as the host knew
/// when it started again: no real claim has it (clocks are not at the end of time).
const ABANDONED_AT_MS: u64 = u64::MAX;
/// Compare-and-swap attempts before giving up on a contended ledger.
const ATTEMPTS: usize = 5;

/// What identifies a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmissionKey {
    /// The 14.0+ ClientId.
    ClientId(String),
    /// A hash of the message bytes (12.1, or a client that sent no ClientId).
    Mime(u64),
    /// A draft the device asked to send (16.x `email2:Send` in Sync): its folder and IMAP UID,
    /// which the retry of the same Sync names again, and which no other message ever gets.
    Draft { collection: String, uid: u32 },
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
            SubmissionKey::Draft { collection, uid } => format!("d:{collection}:{uid}"),
        }
    }

    /// What makes the Message-ID given to a message without one the same at every attempt
    /// (`compose::submit`): a ClientId names one message of one device. Messages without
    /// one get a random Message-ID: identical bytes sent again later are a new message.
    pub fn message_id_seed(&self, identity: &str, device: &str) -> Option<u64> {
        match self {
            SubmissionKey::ClientId(id) => {
                Some(fnv1a(format!("{identity}\n{device}\n{id}").as_bytes()))
            }
            // a draft carries its own Message-ID
            SubmissionKey::Mime(_) | SubmissionKey::Draft { .. } => None,
        }
    }

    fn expires(&self) -> bool {
        matches!(self, SubmissionKey::Mime(_))
    }
}

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send.
    Claimed(Claimed),
    /// Sent before.
    AlreadySent,
    /// Another request is sending it right now.
    InFlight,
    /// Claimed long ago and never settled: presumed sent (see the module docs).
    PresumedSent,
}

/// A submission that is ours to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The ledger with the submission in flight, written by the host just before the message
    /// leaves.
    pub record: SendClaim,
    /// The entry it adds, which [`settle`] looks for.
    entry: Entry,
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

/// What the ledger says of a submission, decided without I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Free,
    AlreadySent,
    InFlight,
    PresumedSent,
}

fn decide(entry: Option<&Entry>, key: &SubmissionKey, now_ms: u64) -> Verdict {
    let Some(entry) = entry else { return Verdict::Free };
    let age = now_ms.saturating_sub(entry.at_ms);
    match (entry.sent, key.expires()) {
        (true, true) if age > MIME_WINDOW_MS => Verdict::Free,
        (true, _) => Verdict::AlreadySent,
        (false, _) if entry.at_ms == ABANDONED_AT_MS || age > IN_FLIGHT_STALE_MS => {
            Verdict::PresumedSent
        }
        (false, _) => Verdict::InFlight,
    }
}

/// Claims `key` for sending (see the module docs): reads the ledger and, if the submission
/// is ours to send, prepares the claim the host makes when the message is about to leave.
pub async fn claim(
    caps: &impl Capabilities,
    device: &str,
    key: &SubmissionKey,
) -> StateResult<Claim> {
    let stored_key = key.stored();
    let now_ms = caps.now_ms();
    let scope = StateScope::Device(device.to_owned());
    let raw = caps.state_get(&scope, KEY).await?;
    let mut ledger = read(raw.as_deref());
    let found = ledger.position(&stored_key);
    match decide(found.map(|index| &ledger.entries[index]), key, now_ms) {
        Verdict::AlreadySent => return Ok(Claim::AlreadySent),
        Verdict::InFlight => return Ok(Claim::InFlight),
        Verdict::PresumedSent => return Ok(Claim::PresumedSent),
        Verdict::Free => {}
    }
    if let Some(index) = found {
        ledger.entries.remove(index);
    }
    let entry = Entry { key: stored_key, sent: false, at_ms: now_ms };
    ledger.entries.push(entry.clone());
    let excess = ledger.entries.len().saturating_sub(CAPACITY);
    ledger.entries.drain(..excess);
    let value = ledger.encode();
    if let Some(last) = ledger.entries.last_mut() {
        last.at_ms = ABANDONED_AT_MS;
    }
    let presumed = ledger.encode();
    let record = SendClaim { scope, key: KEY.to_owned(), expected: raw, value, presumed };
    Ok(Claim::Claimed(Claimed { record, entry }))
}

/// The stored ledger. An unreadable one (older format) starts empty: at worst one resend goes
/// out twice.
fn read(raw: Option<&[u8]>) -> Ledger {
    raw.and_then(Ledger::decode).unwrap_or_default()
}

/// Records the outcome of a claimed submission: marked sent, or forgotten so that a retry
/// sends it. Only our own claim is forgotten: a request that failed before its message's end
/// (its claim never made) must not erase the claim of another request sending the same
/// message.
pub async fn settle(
    caps: &impl Capabilities,
    device: &str,
    claimed: &Claimed,
    sent: bool,
) -> StateResult<()> {
    let ours = &claimed.entry;
    let now_ms = caps.now_ms();
    update(caps, device, |ledger| match ledger.position(&ours.key) {
        Some(index) if sent => {
            ledger.entries[index] = Entry { key: ours.key.clone(), sent: true, at_ms: now_ms };
            ((), true)
        }
        Some(index) if ledger.entries[index] == *ours => {
            ledger.entries.remove(index);
            ((), true)
        }
        _ => ((), false),
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
        let mut ledger = read(raw.as_deref());
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

    /// What the host does with a claim just before the message leaves: true if made.
    fn make(host: &FakeHost, claimed: &Claimed) -> bool {
        let record = &claimed.record;
        let swap = host.state_compare_and_swap(
            &record.scope,
            &record.key,
            record.expected.clone(),
            Some(record.value.clone()),
        );
        run(swap).expect("state store up")
    }

    fn claimed(host: &FakeHost, device: &str, key: &SubmissionKey) -> Claimed {
        match run(claim(host, device, key)) {
            Ok(Claim::Claimed(claimed)) => claimed,
            other => panic!("not ours to send: {other:?}"),
        }
    }

    #[test]
    fn decisions() {
        let client = SubmissionKey::ClientId("c1".into());
        let mime = SubmissionKey::Mime(7);
        let later = |ms: u64| 1_000_000 + ms;
        assert_eq!(decide(None, &client, 0), Verdict::Free);
        assert_eq!(
            decide(Some(&entry(true, 1_000_000)), &client, later(86_400_000)),
            Verdict::AlreadySent
        );
        assert_eq!(
            decide(Some(&entry(true, 1_000_000)), &mime, later(60_000)),
            Verdict::AlreadySent
        );
        assert_eq!(
            decide(Some(&entry(true, 1_000_000)), &mime, later(MIME_WINDOW_MS + 1)),
            Verdict::Free
        );
        assert_eq!(
            decide(Some(&entry(false, 1_000_000)), &client, later(1_000)),
            Verdict::InFlight
        );
        assert_eq!(
            decide(Some(&entry(false, 1_000_000)), &client, later(IN_FLIGHT_STALE_MS + 1)),
            Verdict::PresumedSent
        );
    }

    #[test]
    fn claim_settle_and_forget() {
        let host = FakeHost::default();
        let key = SubmissionKey::ClientId("abc".into());
        // Claiming writes nothing: until the host makes the claim, nothing may have left.
        let first = claimed(&host, "d", &key);
        assert!(host.stored(&StateScope::Device("d".into()), KEY).is_none());
        assert!(make(&host, &first));
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::InFlight));
        // Another device's ClientIds are its own.
        claimed(&host, "other", &key);
        run(settle(&host, "d", &first, false)).expect("forgets");
        let second = claimed(&host, "d", &key);
        assert!(make(&host, &second));
        run(settle(&host, "d", &second, true)).expect("records");
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::AlreadySent));
    }

    #[test]
    fn a_claim_the_host_found_abandoned_after_its_dot_is_presumed_sent_at_once() {
        let host = FakeHost::default();
        let key = SubmissionKey::ClientId("killed".into());
        let ours = claimed(&host, "d", &key);
        assert!(make(&host, &ours));
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::InFlight));
        // the host, starting again, sets the record to the claim's presumed form
        let scope = StateScope::Device("d".into());
        host.store(&scope, KEY, &ours.record.presumed);
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::PresumedSent));
        // only that entry: another message claimed before is still in flight
        let other = SubmissionKey::ClientId("other".into());
        let before = claimed(&host, "e", &other);
        assert!(make(&host, &before));
        let next = claimed(&host, "e", &key);
        assert!(make(&host, &next));
        host.store(&StateScope::Device("e".into()), KEY, &next.record.presumed);
        assert_eq!(run(claim(&host, "e", &other)), Ok(Claim::InFlight));
        assert_eq!(run(claim(&host, "e", &key)), Ok(Claim::PresumedSent));
    }

    #[test]
    fn a_request_that_failed_before_the_end_leaves_another_requests_claim_alone() {
        let host = FakeHost::default();
        let key = SubmissionKey::ClientId("twice".into());
        let failed = claimed(&host, "d", &key);
        host.now_ms.set(host.now_ms.get() + 1);
        let sending = claimed(&host, "d", &key);
        assert!(make(&host, &sending));
        // the first request's SMTP server went away before its message's end: no claim made
        run(settle(&host, "d", &failed, false)).expect("settles");
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::InFlight));
        run(settle(&host, "d", &sending, true)).expect("records");
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::AlreadySent));
    }

    #[test]
    fn of_two_requests_for_one_message_one_claim_is_made_and_the_ledger_is_bounded() {
        let host = FakeHost::default();
        let key = SubmissionKey::Mime(1);
        let ours = claimed(&host, "d", &key);
        let theirs = claimed(&host, "d", &key);
        // The other request reaches the message's end first: ours is not made (nothing sent)
        // and, read again, the message is in flight.
        assert!(make(&host, &theirs));
        assert!(!make(&host, &ours));
        assert_eq!(run(claim(&host, "d", &key)), Ok(Claim::InFlight));
        for id in 0..(CAPACITY + 10) {
            let key = SubmissionKey::ClientId(format!("id{id}"));
            assert!(make(&host, &claimed(&host, "d", &key)));
        }
        let raw = host.stored(&StateScope::Device("d".into()), KEY).expect("stored");
        let ledger = Ledger::decode(&raw).expect("decodes");
        assert_eq!(ledger.entries.len(), CAPACITY);
        assert_eq!(ledger.entries[0].key, "c:id10");
        let long = SubmissionKey::ClientId("x".repeat(100));
        assert!(long.stored().starts_with("h:"));
    }
}
