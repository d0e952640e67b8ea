//! Outgoing mail: what SendMail, SmartReply, SmartForward (and the 16.x send of a draft) hand
//! to the submission capability, and the copy kept in Sent.
//!
//! [`submit`] takes a complete RFC 5322 message as a phone wrote it and:
//! * makes every line end in CRLF;
//! * takes the envelope recipients from To, Cc and Bcc (plus any extra ones, e.g. 16.x
//!   Forwardees, which are also added to To);
//! * makes From the user's address (below);
//! * adds Date and Message-ID when missing (from the capabilities' clock and random source:
//!   nothing here reads the system clock, which wasm32-unknown-unknown does not have; the
//!   Message-ID of a message with a ClientId comes from that ClientId instead, the same at
//!   every attempt);
//! * sends it without its Bcc field, and, when asked, appends it *with* Bcc (as Exchange keeps
//!   it in the sender's copy) to the Sent folder, marked `\Seen`. The copy is appended only
//!   after the SMTP server accepted the message: nothing lands in Sent that was not sent.
//!
//! From: MS-ASCMD §2.2.1.17 has the server set From to the user's primary address. When the
//! authenticated login is an address, a From naming that address (any case) is kept as
//! written, display name and all; any other From, or none, is replaced by the user's address
//! under the display name the client gave. A Sender field naming someone else is dropped. A
//! login that is not an address gives us nothing to compare with: From is then left to the
//! SMTP server, which authenticates the same login and enforces its own sender rules.
//!
//! A Sent copy that cannot be stored (no Sent folder, IMAP failing) is logged and the send
//! still succeeds: the message went out, and failing the command would make the phone send
//! it again. For the same reason a recipient the SMTP server refused while it accepted the
//! others does not fail the command; the user gets a non-delivery notice in the Inbox instead,
//! as from Exchange. Every recipient refused is a submission failure (nothing was sent).

mod build;
pub mod dedupe;
mod header_block;
pub mod smart;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use mail_parser::MessageParser;

use crate::ashttp::CommonStatus;
use crate::capabilities::{Capabilities, Level};
use crate::folders::{self, FolderEntry};
use crate::mailbox::SearchQuery;
use crate::submission::{RefusedRecipient, SendClaim, SubmissionError};
use build::Boundaries;
use header_block::{HeaderBlock, normalize_line_endings};

/// How a resubmission of a message that was already sent is answered. The spec's answer is
/// Status 118 MessagePreviouslySent (§2.2.3.28.1); we answer success (an empty 200) instead:
/// the message did go out, a phone that lost the first answer only wants to clear its
/// Outbox, and an empty 200 does that on every client, where 118 is shown as a send failure
/// by some.
pub const DUPLICATE_IS_SUCCESS: bool = true;

/// Recipients one message may name (To, Cc, Bcc and extras together). Generous for people,
/// small enough that a hostile message cannot make the SMTP conversation endless.
const MAX_RECIPIENTS: usize = 500;

/// Why a message was not sent. Nothing was stored in Sent, and nothing was sent unless
/// [`SendError::maybe_sent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The bytes are not a message we can send.
    InvalidMime(String),
    /// No To, Cc, Bcc or extra recipient.
    NoRecipients,
    /// A recipient that is not a usable address.
    InvalidRecipient(String),
    TooManyRecipients(usize),
    /// The submission capability refused or failed.
    Submission(SubmissionError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::InvalidMime(why) => write!(f, "not a message: {why}"),
            SendError::NoRecipients => f.write_str("no recipients"),
            SendError::InvalidRecipient(address) => write!(f, "invalid recipient {address:?}"),
            SendError::TooManyRecipients(count) => write!(f, "{count} recipients"),
            SendError::Submission(error) => error.fmt(f),
        }
    }
}

impl SendError {
    /// Whether the message may have gone out although the send failed.
    pub fn maybe_sent(&self) -> bool {
        matches!(self, SendError::Submission(error) if error.maybe_sent())
    }

    /// Nothing was sent: another request claimed the same message first.
    pub fn claim_lost(&self) -> bool {
        matches!(self, SendError::Submission(SubmissionError::ClaimLost))
    }

    /// Whether the submission's claim is left in flight rather than settled: the message may
    /// have gone out (never sent again), or another request claimed it and settles it.
    pub fn keeps_claim_in_flight(&self) -> bool {
        self.maybe_sent() || self.claim_lost()
    }

    /// The common status that tells the phone (MS-ASCMD §2.2.2, EAS-NOTES §4.9, §5); the
    /// request's version turns it into an HTTP code for 12.1.
    pub fn status(&self) -> CommonStatus {
        match self {
            SendError::InvalidMime(_) => CommonStatus::InvalidMime,
            SendError::NoRecipients => CommonStatus::MessageHasNoRecipient,
            SendError::InvalidRecipient(_) | SendError::TooManyRecipients(_) => {
                CommonStatus::MessageRecipientUnresolved
            }
            // Down, timing out or answering 4xx: the phone keeps the message and retries. (Its
            // retry of a message that may have gone out is not sent again: compose::dedupe.)
            // (ClaimLost: another request is sending the same message; the phone's retry is
            // answered from its outcome)
            SendError::Submission(
                SubmissionError::Unavailable(_)
                | SubmissionError::OutcomeUnknown(_)
                | SubmissionError::ClaimLost,
            ) => CommonStatus::ServerErrorRetryLater,
            SendError::Submission(SubmissionError::TooLarge(_)) => {
                CommonStatus::AttachmentIsTooLarge
            }
            SendError::Submission(
                SubmissionError::Rejected(_) | SubmissionError::Unauthenticated,
            ) => CommonStatus::MailSubmissionFailed,
        }
    }
}

/// What happened to the Sent copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentCopy {
    NotAsked,
    /// Appended; the UID when the server told.
    Saved {
        folder: String,
        uid: Option<u32>,
    },
    /// Not stored (no Sent folder, or the mailbox failed); logged.
    Failed(String),
}

/// A sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOutcome {
    /// Without angle brackets.
    pub message_id: String,
    pub recipients: Vec<String>,
    /// Recipients the SMTP server refused while it accepted the others (logged and reported
    /// in a non-delivery notice in the Inbox; the message went to the rest).
    pub refused: Vec<RefusedRecipient>,
    pub sent_copy: SentCopy,
}

/// Sends a message as `identity` (the authenticated login), making `claim` just before it
/// can leave (`dedupe`). See the module docs. `message_id_seed`, when the submission has one
/// (`dedupe::SubmissionKey::message_id_seed`), makes the Message-ID given to a message that
/// has none the same at every attempt, so that [`restore_sent_copy`] can find the copy.
pub async fn submit(
    caps: &impl Capabilities,
    identity: &str,
    message: &[u8],
    save_in_sent: bool,
    claim: Option<&SendClaim>,
    message_id_seed: Option<u64>,
) -> Result<SubmitOutcome, SendError> {
    submit_with(caps, Some(identity), message, &[], save_in_sent, claim, message_id_seed).await
}

/// Sends a draft the device asked to send (16.x `email2:Send`). The draft's From is kept as
/// stored (no identity is at hand in Sync; the SMTP server enforces the sender); everything
/// else is as [`submit`].
pub async fn submit_draft(
    caps: &impl Capabilities,
    mime: &[u8],
    save_in_sent: bool,
    claim: Option<&SendClaim>,
) -> Result<SubmitOutcome, SendError> {
    submit_with(caps, None, mime, &[], save_in_sent, claim, None).await
}

/// [`submit`] with extra recipients, (display name, address), added to the envelope and to
/// To (16.x SmartForward Forwardees), and an optional identity.
pub async fn submit_with(
    caps: &impl Capabilities,
    identity: Option<&str>,
    message: &[u8],
    extra_recipients: &[(Option<String>, String)],
    save_in_sent: bool,
    claim: Option<&SendClaim>,
    message_id_seed: Option<u64>,
) -> Result<SubmitOutcome, SendError> {
    let stamp = Stamp { now_ms: caps.now_ms(), random: caps.random_u64(), message_id_seed };
    let prepared = prepare(message, identity, extra_recipients, &stamp)?;
    let wire = prepared.wire();
    let refused =
        caps.send_mail(&wire, &prepared.recipients, claim).await.map_err(SendError::Submission)?;
    drop(wire);
    for refusal in &refused {
        caps.log(
            Level::Warn,
            &format!(
                "message <{}>: recipient {} refused: {}",
                prepared.message_id, refusal.address, refusal.reply
            ),
        );
    }
    if !refused.is_empty() {
        notify_refusals(caps, &prepared, &refused, &stamp).await;
    }
    let sent_copy = if save_in_sent {
        save_to_sent(caps, &prepared.sent_copy(), stamp.now_ms).await
    } else {
        SentCopy::NotAsked
    };
    Ok(SubmitOutcome {
        message_id: prepared.message_id,
        recipients: prepared.recipients,
        refused,
        sent_copy,
    })
}

/// The Sent copy of a submission presumed sent (see [`dedupe`]): its request died after the
/// SMTP server took the message, possibly before the APPEND to Sent. Appended now unless Sent
/// already holds the message's Message-ID. A message without a Message-ID of its own is left
/// alone unless its submission has a `message_id_seed` (as given to [`submit`]): otherwise the
/// one made up for the first attempt is unknown, and a second copy is worse than none.
/// `extra_recipients` are as given to [`submit_with`].
pub async fn restore_sent_copy(
    caps: &impl Capabilities,
    identity: Option<&str>,
    message: &[u8],
    extra_recipients: &[(Option<String>, String)],
    message_id_seed: Option<u64>,
) -> SentCopy {
    let stamp = Stamp { now_ms: caps.now_ms(), random: caps.random_u64(), message_id_seed };
    let prepared = match prepare(message, identity, extra_recipients, &stamp) {
        Ok(prepared) if prepared.kept_message_id || message_id_seed.is_some() => prepared,
        Ok(_) => return SentCopy::NotAsked,
        Err(error) => return SentCopy::Failed(error.to_string()),
    };
    let folder = match folder_of_type(caps, SENT_ITEMS_TYPE).await {
        Ok(folder) => folder,
        Err(why) => return SentCopy::Failed(why),
    };
    let query = SearchQuery {
        header: Some(("Message-ID".to_owned(), format!("<{}>", prepared.message_id))),
        ..SearchQuery::default()
    };
    match caps.search(&folder.imap_name, &query).await {
        Ok(found) if !found.is_empty() => {
            SentCopy::Saved { folder: folder.imap_name, uid: found.last().copied() }
        }
        Ok(_) => save_to_sent(caps, &prepared.sent_copy(), stamp.now_ms).await,
        Err(error) => SentCopy::Failed(error.to_string()),
    }
}

/// A seed for boundaries and Message-IDs: the capabilities' random source, else the clock
/// mixed with the message (an adapter without randomness still gets distinct values).
fn seed(random: Option<u64>, now_ms: u64, material: &[u8]) -> u64 {
    random.unwrap_or_else(|| dedupe::fnv1a(material) ^ now_ms.rotate_left(29))
}

/// New multipart boundaries for one message.
pub(crate) fn boundaries(caps: &impl Capabilities, material: &[u8]) -> Boundaries {
    Boundaries::new(seed(caps.random_u64(), caps.now_ms(), material))
}

/// The time and randomness a message is stamped with.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    now_ms: u64,
    random: Option<u64>,
    /// Makes a made-up Message-ID reproducible (see [`submit`]).
    message_id_seed: Option<u64>,
}

/// A message ready for the submission capability: the edited header block and the body,
/// put together only when needed, one copy at a time (messages can be tens of megabytes in a
/// 64 MiB instance).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prepared<'m> {
    block: HeaderBlock,
    /// The message with CRLF line endings; the body starts at `body_start`.
    normalized: Cow<'m, [u8]>,
    body_start: usize,
    recipients: Vec<String>,
    message_id: String,
    /// The Message-ID is the message's own, not one made up here.
    kept_message_id: bool,
    /// Decoded, for the non-delivery notice.
    subject: String,
    /// Whom a non-delivery notice goes to: the user, else the message's From.
    sender: Option<String>,
}

impl Prepared<'_> {
    fn body(&self) -> &[u8] {
        &self.normalized[self.body_start..]
    }

    /// What SMTP gets: Bcc removed.
    fn wire(&self) -> Vec<u8> {
        let mut wire = self.block.without(&["Bcc", "Resent-Bcc"]).to_bytes();
        wire.extend_from_slice(self.body());
        wire
    }

    /// What Sent gets: Bcc kept.
    fn sent_copy(&self) -> Vec<u8> {
        let mut copy = self.block.to_bytes();
        copy.extend_from_slice(self.body());
        copy
    }
}

fn prepare<'m>(
    message: &'m [u8],
    identity: Option<&str>,
    extra_recipients: &[(Option<String>, String)],
    stamp: &Stamp,
) -> Result<Prepared<'m>, SendError> {
    let normalized = normalize_line_endings(message);
    let (mut block, body) = HeaderBlock::split(&normalized);
    let body_start = normalized.len() - body.len();
    let header_bytes = block.to_bytes();
    let parsed = MessageParser::new()
        .parse_headers(&header_bytes)
        .filter(|parsed| !parsed.headers().is_empty())
        .ok_or_else(|| SendError::InvalidMime("no header fields".to_owned()))?;

    let mut recipients: Vec<String> = Vec::new();
    for field in [parsed.to(), parsed.cc(), parsed.bcc()] {
        for addr in field.into_iter().flat_map(|address| address.iter()) {
            match (addr.address(), addr.name()) {
                (Some(address), _) => add_recipient(&mut recipients, address)?,
                // "To: bob": a name the phone could not resolve to an address.
                (None, Some(name)) if !name.trim().is_empty() => {
                    return Err(SendError::InvalidRecipient(name.trim().to_owned()));
                }
                (None, _) => {}
            }
        }
    }
    let mut added_to_header = Vec::new();
    for (name, address) in extra_recipients {
        let address = address.trim();
        if !recipients.iter().any(|known| known.eq_ignore_ascii_case(address)) {
            add_recipient(&mut recipients, address)?;
            added_to_header.push((name.as_deref(), address));
        }
    }
    if recipients.is_empty() {
        return Err(SendError::NoRecipients);
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(SendError::TooManyRecipients(recipients.len()));
    }
    if !added_to_header.is_empty() {
        let mut to = block.value("To").unwrap_or_default();
        for (name, address) in added_to_header {
            if !to.is_empty() {
                to.push_str(", ");
            }
            to.push_str(&String::from_utf8_lossy(&build::mailbox(name, address)));
        }
        block.set("To", to.as_bytes());
    }

    let user = identity.map(str::trim).filter(|id| is_valid_address(id));
    if let Some(user) = user {
        let from = parsed.from().and_then(|from| from.first());
        let from_is_user = parsed.from().is_some_and(|from| from.iter().count() == 1)
            && from
                .and_then(|addr| addr.address())
                .is_some_and(|a| a.trim().eq_ignore_ascii_case(user));
        if !from_is_user {
            let name = from.and_then(|addr| addr.name());
            block.set("From", &build::mailbox(name, user));
        }
        let sender_is_other = parsed
            .sender()
            .and_then(|sender| sender.first())
            .and_then(|addr| addr.address())
            .is_some_and(|address| !address.trim().eq_ignore_ascii_case(user));
        if sender_is_other {
            block.remove("Sender");
        }
    }
    if !block.has("Date") {
        let seconds = i64::try_from(stamp.now_ms / 1000).unwrap_or(i64::MAX);
        block.push("Date", build::rfc822_date(seconds).as_bytes());
    }
    let existing_id = parsed
        .message_id()
        .map(|id| id.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
        .filter(|id| !id.is_empty() && id.is_ascii() && !id.contains(char::is_whitespace));
    let kept_message_id = existing_id.is_some();
    let message_id = match existing_id {
        Some(id) => id,
        None => {
            let from = parsed.from().and_then(|from| from.first()).and_then(|addr| addr.address());
            let domain = user
                .or(from)
                .and_then(|address| address.rsplit_once('@'))
                .filter(|(_, domain)| is_valid_address(&format!("x@{domain}")))
                .map_or("eas-edge.invalid", |(_, domain)| domain);
            let id = match stamp.message_id_seed {
                Some(seed) => format!("eas.{seed:016x}@{domain}"),
                None => {
                    let random = seed(stamp.random, stamp.now_ms, message);
                    format!("eas.{random:016x}.{}@{domain}", stamp.now_ms)
                }
            };
            block.set("Message-ID", &build::message_ids("Message-ID", std::slice::from_ref(&id)));
            id
        }
    };
    if !block.has("MIME-Version") {
        block.push("MIME-Version", b"1.0");
    }

    let subject = parsed.subject().unwrap_or_default().trim().to_owned();
    let sender = user
        .or_else(|| parsed.from().and_then(|from| from.first()).and_then(|addr| addr.address()))
        .map(str::to_owned);
    Ok(Prepared {
        block,
        normalized,
        body_start,
        recipients,
        message_id,
        kept_message_id,
        subject,
        sender,
    })
}

fn add_recipient(recipients: &mut Vec<String>, address: &str) -> Result<(), SendError> {
    let address = address.trim();
    if !is_valid_address(address) {
        return Err(SendError::InvalidRecipient(address.to_owned()));
    }
    if !recipients.iter().any(|known| known.eq_ignore_ascii_case(address)) {
        recipients.push(address.to_owned());
    }
    Ok(())
}

/// An address we can hand to SMTP: `local@domain`, nothing that could break out of an SMTP
/// command or a header (whitespace, controls, angle brackets, separators).
pub(crate) fn is_valid_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && address.len() <= 320
        && !address.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"' | '\\')
        })
}

/// EAS folder types (MS-ASCMD §2.2.3.186.3).
const INBOX_TYPE: u8 = 2;
const SENT_ITEMS_TYPE: u8 = 5;

/// The account's folder of an EAS type (Sent Items, Inbox): the folder map's entry
/// (refreshed once when the stored map has none).
async fn folder_of_type(caps: &impl Capabilities, folder_type: u8) -> Result<FolderEntry, String> {
    let find = |map: &folders::FolderMap| {
        map.entries()
            .iter()
            .find(|entry| entry.folder_type.code() == folder_type && entry.selectable)
            .cloned()
    };
    if let Some(entry) = folders::stored(caps).await.ok().as_ref().and_then(find) {
        return Ok(entry);
    }
    let map = folders::refresh(caps).await.map_err(|error| error.to_string())?;
    find(&map).ok_or_else(|| format!("the account has no folder of type {folder_type}"))
}

async fn save_to_sent(caps: &impl Capabilities, message: &[u8], now_ms: u64) -> SentCopy {
    let folder = match folder_of_type(caps, SENT_ITEMS_TYPE).await {
        Ok(folder) => folder,
        Err(why) => {
            caps.log(Level::Warn, &format!("sent message not saved: {why}"));
            return SentCopy::Failed(why);
        }
    };
    let internal_date = i64::try_from(now_ms / 1000).ok();
    match caps.append(&folder.imap_name, message, &["\\Seen".to_owned()], internal_date).await {
        Ok(uid) => SentCopy::Saved { folder: folder.imap_name, uid },
        Err(error) => {
            caps.log(
                Level::Error,
                &format!("sent message not saved to {}: {error}", folder.imap_name),
            );
            SentCopy::Failed(error.to_string())
        }
    }
}

/// A recipient the SMTP server refused while it took the message for the others: the
/// command succeeds (the message went out, and a retry would deliver it twice), so the user
/// learns of it the way Exchange tells: a non-delivery notice in the Inbox, listing the
/// refused addresses with the server's replies. Best effort: failures are logged.
async fn notify_refusals(
    caps: &impl Capabilities,
    prepared: &Prepared<'_>,
    refused: &[RefusedRecipient],
    stamp: &Stamp,
) {
    let Some(user) = prepared.sender.as_deref() else { return };
    let inbox = match folder_of_type(caps, INBOX_TYPE).await {
        Ok(inbox) => inbox,
        Err(why) => {
            caps.log(Level::Warn, &format!("non-delivery notice not stored: {why}"));
            return;
        }
    };
    let notice = refusal_notice(prepared, user, refused, stamp);
    let internal_date = i64::try_from(stamp.now_ms / 1000).ok();
    if let Err(error) = caps.append(&inbox.imap_name, &notice, &[], internal_date).await {
        caps.log(Level::Warn, &format!("non-delivery notice not stored: {error}"));
    }
}

fn refusal_notice(
    prepared: &Prepared<'_>,
    user: &str,
    refused: &[RefusedRecipient],
    stamp: &Stamp,
) -> Vec<u8> {
    let domain = user.rsplit_once('@').map_or("eas-edge.invalid", |(_, domain)| domain);
    let subject = if prepared.subject.is_empty() { "(no subject)" } else { &prepared.subject };
    let mut text =
        format!("Your message \"{subject}\" could not be delivered to these recipients:\n\n");
    for refusal in refused {
        text.push_str(&format!("    {}\n        {}\n", refusal.address, refusal.reply.trim()));
    }
    text.push_str("\nIt was delivered to everyone else it was addressed to.\n");
    let mut block = HeaderBlock::default();
    let daemon = format!("MAILER-DAEMON@{domain}");
    block.push("From", &build::mailbox(Some("Mail Delivery System"), &daemon));
    block.push("To", &build::mailbox(None, user));
    block.push("Subject", &build::unstructured("Subject", &format!("Undeliverable: {subject}")));
    let seconds = i64::try_from(stamp.now_ms / 1000).unwrap_or(i64::MAX);
    block.push("Date", build::rfc822_date(seconds).as_bytes());
    let id = format!(
        "eas.ndr.{:016x}.{}@{domain}",
        seed(stamp.random, stamp.now_ms, text.as_bytes()),
        stamp.now_ms
    );
    block.push("Message-ID", &build::message_ids("Message-ID", &[id]));
    block.push(
        "In-Reply-To",
        &build::message_ids("In-Reply-To", std::slice::from_ref(&prepared.message_id)),
    );
    block.push("Auto-Submitted", b"auto-replied");
    block.push("MIME-Version", b"1.0");
    let mut notice = block.to_bytes();
    notice.truncate(notice.len() - 2);
    notice.extend_from_slice(&build::write_part(build::text_part("plain", &text)));
    notice
}
