//! SendMail, SmartReply and SmartForward (MS-ASCMD §2.2.1.17, §2.2.1.20, §2.2.1.19;
//! EAS-NOTES §4.9, §4.10).
//!
//! Two request forms, told apart by Content-Type (sniffed when absent):
//! * 12.1: the body is the RFC 822 message; `SaveInSent=T`, `ItemId`, `CollectionId` and
//!   `LongId` come from the query (either form).
//! * 14.0+: WBXML on the ComposeMail page: `ClientId`, `SaveInSentItems` (an empty element
//!   means yes), `ReplaceMime`, `Source > FolderId, ItemId | LongId, InstanceId`, `Mime`;
//!   16.x SmartForward may add `Forwardees` (extra recipients, added to To) and an
//!   `airsyncbase:Body` that stands for the new text when there is no `Mime`.
//!
//! A 12.1 request with a WBXML body is refused as InvalidContent (the spec's own example);
//! a 14.0+ request with a raw MIME body is tolerated and read like the 12.1 form.
//!
//! Success is an empty 200 in every version. Failures are `<Command><Status>N</Status>` for
//! 14.0+ and the HTTP code of that status for 12.1 ([`answer_common_status`]); every failure
//! means nothing was sent and nothing was saved to Sent. Resubmissions are caught by
//! [`compose::dedupe`].

#[cfg(test)]
mod tests;

use super::{answer_common_status, decode_body};
use crate::ashttp::{Command, CommonStatus, ContentType, EasRequest, HttpReply};
use crate::capabilities::{Capabilities, Level};
use crate::compose::dedupe::{self, Claim, SubmissionKey};
use crate::compose::smart::{self, SmartKind};
use crate::compose::{self, SentCopy};
use crate::folders::{self, FolderMapError, FolderType};
use crate::http::Response;
use crate::mailbox::MailboxError;
use crate::submission::SendClaim;
use eas_wbxml::tags::{air_sync_base as base, compose_mail as cm};
use eas_wbxml::{Content, Element};
use std::borrow::Cow;

/// Largest original fetched for a reply or forward. The message, its decoded parts and the
/// composed answer are all in memory at once.
const MAX_ORIGINAL_BYTES: u32 = 24 << 20;

/// What the phone asked for, from either form.
#[derive(Debug, Default, PartialEq, Eq)]
struct ComposeRequest<'b> {
    client_id: Option<String>,
    save_in_sent: bool,
    replace_mime: bool,
    /// `None` only for a 16.x SmartForward that sends Forwardees and/or a Body instead.
    /// Borrowed from a 12.1 body, taken out of the decoded WBXML otherwise: never copied
    /// (messages can be tens of megabytes in a 64 MiB instance).
    mime: Option<Cow<'b, [u8]>>,
    source: Option<Source>,
    /// (display name, address)
    forwardees: Vec<(Option<String>, String)>,
    /// 16.x `airsyncbase:Body`: (is HTML, text).
    body: Option<(bool, String)>,
}

/// The message a SmartReply or SmartForward answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Item { folder_id: Option<String>, item_id: String },
    LongId(String),
}

pub async fn run(
    caps: &impl Capabilities,
    identity: &str,
    request: &EasRequest,
    body: &[u8],
) -> Response {
    let parsed = match parse(caps, request, body) {
        Ok(parsed) => parsed,
        Err(status) => return answer_common_status(request, status),
    };
    let device = request.device_id.as_str();
    let command = request.command.name();
    let key = match &parsed.client_id {
        Some(id) => SubmissionKey::ClientId(id.clone()),
        None => SubmissionKey::for_mime(body),
    };
    let message_id_seed = key.message_id_seed(identity, device);
    // Claimed, then sent: a claim lost to a concurrent request for the same message (nothing
    // sent) reads the ledger again, which then says what that request is doing.
    let mut attempts = 0;
    let (outcome, claim) = loop {
        let claim = match dedupe::claim(caps, device, &key).await {
            Ok(Claim::Claimed(claim)) => claim,
            Ok(claim) => {
                let answer =
                    answer_resubmission(caps, identity, request, &parsed, message_id_seed, &claim);
                return answer.await;
            }
            Err(error) => {
                caps.log(Level::Error, &format!("{command}: send ledger: {error}"));
                return answer_common_status(request, CommonStatus::ServerErrorRetryLater);
            }
        };
        attempts += 1;
        match send(caps, identity, request, &parsed, message_id_seed, &claim.record).await {
            Err(not_sent) if not_sent.claim_lost && attempts < CLAIM_ATTEMPTS => continue,
            outcome => break (outcome, claim),
        }
    };
    // A message that may have gone out keeps its claim in flight: the phone's retries are told
    // "retry later" and then, once the claim is stale, "sent"; it is never sent a second time.
    // A claim lost to another request is that request's to settle.
    let settled = match &outcome {
        Ok(_) => Some(true),
        Err(not_sent) if not_sent.keeps_claim_in_flight => None,
        Err(_) => Some(false),
    };
    let mut recorded = true;
    if let Some(sent) = settled
        && let Err(error) = dedupe::settle(caps, device, &claim, sent).await
    {
        // A claim left in flight turns into "presumed sent" later: never a second send.
        caps.log(Level::Error, &format!("{command}: recording the outcome: {error}"));
        recorded = false;
    }
    match outcome {
        // Neither the Sent copy nor the outcome could be written: the gateway is most likely
        // gone (Envoy's filter outlives it). The claim is still in flight, so "retry later"
        // brings the phone back with the same ClientId, and that retry, once the claim is
        // presumed sent (at the gateway's restart, from its send journal), makes the copy and
        // is told "sent". Answering "sent" now would leave Sent without it for good.
        Ok(Sent { copy_missing: true }) if !recorded => {
            caps.log(
                Level::Warn,
                &format!(
                    "{identity} device {device}: {command} sent, but its Sent copy and outcome \
                     were not recorded: told to retry, which makes the copy"
                ),
            );
            answer_common_status(request, CommonStatus::ServerErrorRetryLater)
        }
        Ok(_) => success(),
        Err(not_sent) => answer_common_status(request, not_sent.status),
    }
}

/// A message that left.
struct Sent {
    /// Its Sent copy was asked for and failed; a retry of the request can make it
    /// ([`answer_resubmission`]).
    copy_missing: bool,
}

/// How often a claim lost to a concurrent request is tried again before "retry later".
const CLAIM_ATTEMPTS: u32 = 3;

/// The answer to a message the ledger knows: sent, presumed sent, or being sent.
async fn answer_resubmission(
    caps: &impl Capabilities,
    identity: &str,
    request: &EasRequest,
    parsed: &ComposeRequest<'_>,
    message_id_seed: Option<u64>,
    claim: &Claim,
) -> Response {
    let device = request.device_id.as_str();
    let command = request.command.name();
    if *claim == Claim::InFlight {
        caps.log(
            Level::Info,
            &format!("{identity} device {device}: {command} resubmitted while still sending"),
        );
        return answer_common_status(request, CommonStatus::ServerErrorRetryLater);
    }
    caps.log(
        Level::Info,
        &format!("{identity} device {device}: {command} resubmitted ({claim:?}): not sent again"),
    );
    // The request that sent it died; it may not have saved the Sent copy yet.
    if *claim == Claim::PresumedSent && parsed.save_in_sent {
        let copy = restore_sent_copy(caps, identity, request, parsed, message_id_seed).await;
        caps.log(Level::Info, &format!("{command} presumed sent: Sent copy {copy:?}"));
    }
    if compose::DUPLICATE_IS_SUCCESS {
        success()
    } else {
        answer_common_status(request, CommonStatus::MessagePreviouslySent)
    }
}

/// The Sent copy of a message presumed sent, made again from the resubmitted request: the
/// phone's message, or the reply or forward rebuilt from its original (which also gets its
/// Answered or Forwarded flag, in case the request that sent it died before setting it). The
/// rebuilt message differs from the one sent only in its MIME boundaries and Date.
async fn restore_sent_copy(
    caps: &impl Capabilities,
    identity: &str,
    request: &EasRequest,
    parsed: &ComposeRequest<'_>,
    message_id_seed: Option<u64>,
) -> SentCopy {
    let (message, original) = match message_to_send(caps, request, parsed).await {
        Ok(built) => built,
        Err(status) => return SentCopy::Failed(format!("the message: {status:?}")),
    };
    // a SmartForward's Forwardees are added to the message's own recipients, as when sent
    let extra: &[_] = if original.is_some() { &parsed.forwardees } else { &[] };
    let copy = compose::restore_sent_copy(caps, Some(identity), &message, extra, message_id_seed);
    let copy = copy.await;
    if let Some(original) = original {
        mark_original(caps, request, &original).await;
    }
    copy
}

/// The original a reply or forward answers, where it is: marked once the answer is sent.
struct Answered {
    kind: SmartKind,
    folder: String,
    uid: u32,
}

/// What a request sends: the phone's own message, or the reply or forward composed from its
/// original (fetched for it).
async fn message_to_send<'p>(
    caps: &impl Capabilities,
    request: &EasRequest,
    parsed: &'p ComposeRequest<'_>,
) -> Result<(Cow<'p, [u8]>, Option<Answered>), CommonStatus> {
    let Some(kind) = smart_kind(request) else {
        let mime = parsed.mime.as_deref().ok_or(CommonStatus::InvalidXml)?;
        return Ok((Cow::Borrowed(mime), None));
    };
    let source = parsed.source.as_ref().ok_or(CommonStatus::InvalidXml)?;
    let found = find_original(caps, request.device_id.as_str(), source, kind).await?;
    let answered = Answered { kind, folder: found.folder, uid: found.uid };
    Ok((Cow::Owned(answer_message(caps, kind, parsed, found.raw)), Some(answered)))
}

/// Sets the original's Answered or Forwarded flag; a failure is logged (the answer is sent).
async fn mark_original(caps: &impl Capabilities, request: &EasRequest, original: &Answered) {
    let flags = [original.kind.flag().to_owned()];
    if let Err(error) = caps.store_flags(&original.folder, &[original.uid], &flags, &[]).await {
        let command = request.command.name();
        caps.log(Level::Warn, &format!("{command}: marking the original: {error}"));
    }
}

/// Why [`send`] failed: what the phone is told, and what becomes of the claim
/// ([`SendError::keeps_claim_in_flight`]).
struct NotSent {
    status: CommonStatus,
    keeps_claim_in_flight: bool,
    /// Nothing was sent because a concurrent request claimed the message first.
    claim_lost: bool,
}

impl From<CommonStatus> for NotSent {
    fn from(status: CommonStatus) -> Self {
        NotSent { status, keeps_claim_in_flight: false, claim_lost: false }
    }
}

/// Empty 200: the message was sent (MS-ASCMD §2.2.1.17.2).
fn success() -> Response {
    HttpReply::new(200).into_response()
}

/// Builds and sends the message; marks the original of a reply or forward.
async fn send(
    caps: &impl Capabilities,
    identity: &str,
    request: &EasRequest,
    parsed: &ComposeRequest<'_>,
    message_id_seed: Option<u64>,
    claim: &SendClaim,
) -> Result<Sent, NotSent> {
    let device = request.device_id.as_str();
    let command = request.command.name();
    let (message, original) = message_to_send(caps, request, parsed).await?;
    let save = parsed.save_in_sent;
    let outcome = match original {
        None => compose::submit(caps, identity, &message, save, Some(claim), message_id_seed).await,
        Some(_) => {
            let forwardees = &parsed.forwardees;
            compose::submit_with(
                caps,
                Some(identity),
                &message,
                forwardees,
                save,
                Some(claim),
                message_id_seed,
            )
            .await
        }
    };
    let outcome = outcome.map_err(|error| {
        caps.log(Level::Info, &format!("{identity} device {device}: {command} not sent: {error}"));
        NotSent {
            status: error.status(),
            keeps_claim_in_flight: error.keeps_claim_in_flight(),
            claim_lost: error.claim_lost(),
        }
    })?;
    let sent_copy = match &outcome.sent_copy {
        SentCopy::NotAsked => "no copy asked".to_owned(),
        SentCopy::Saved { folder, .. } => format!("copy in {folder}"),
        SentCopy::Failed(why) => format!("copy NOT saved: {why}"),
    };
    caps.log(
        Level::Info,
        &format!(
            "{identity} device {device}: {command} <{}> sent to {} recipient(s), {} refused, {sent_copy}",
            outcome.message_id,
            outcome.recipients.len(),
            outcome.refused.len()
        ),
    );
    if let Some(original) = original {
        mark_original(caps, request, &original).await;
    }
    Ok(Sent { copy_missing: matches!(outcome.sent_copy, SentCopy::Failed(_)) })
}

/// Which answer a SmartReply or SmartForward is; `None` for SendMail.
fn smart_kind(request: &EasRequest) -> Option<SmartKind> {
    match request.command {
        Command::SmartReply => Some(SmartKind::Reply),
        Command::SmartForward => Some(SmartKind::Forward),
        _ => None,
    }
}

/// The original of a reply or forward, fetched whole.
struct Original {
    folder: String,
    uid: u32,
    raw: Vec<u8>,
}

async fn find_original(
    caps: &impl Capabilities,
    device: &str,
    source: &Source,
    kind: SmartKind,
) -> Result<Original, CommonStatus> {
    let item_id = match source {
        Source::Item { item_id, .. } => item_id.as_str(),
        // Search hands out LongIds; one in our ServerId form is read as one, any other is not
        // an item we can find.
        Source::LongId(long_id) => long_id.as_str(),
    };
    let (collection, uid) = parse_item_id(item_id).ok_or(CommonStatus::ItemNotFound)?;
    if let Source::Item { folder_id: Some(folder_id), .. } = source
        && folder_id != collection
    {
        caps.log(
            Level::Debug,
            &format!("Source FolderId {folder_id} differs from ItemId {item_id}: using the ItemId"),
        );
    }
    let folder = match folders::resolve(caps, collection).await {
        Ok(Some(entry)) if entry.selectable => entry,
        Ok(_) => return Err(CommonStatus::ItemNotFound),
        Err(error) => {
            caps.log(Level::Error, &format!("original {item_id}: {error}"));
            return Err(match error {
                FolderMapError::Mailbox(MailboxError::Unavailable(_))
                | FolderMapError::Contended => CommonStatus::ServerErrorRetryLater,
                _ => CommonStatus::ServerError,
            });
        }
    };
    // A draft edited on the device keeps its id, which stands for its current UID.
    let uid = if folder.folder_type == FolderType::Drafts {
        crate::sync::resolve_draft_alias(caps, device, collection, uid).await
    } else {
        uid
    };
    match caps.fetch_message(&folder.imap_name, uid, MAX_ORIGINAL_BYTES).await {
        Ok(Some(message)) => Ok(Original { folder: folder.imap_name, uid, raw: message.raw }),
        Ok(None) | Err(MailboxError::NoSuchFolder(_)) => Err(CommonStatus::ItemNotFound),
        Err(MailboxError::TooLarge(_)) => Err(match kind {
            SmartKind::Forward => CommonStatus::AttachmentIsTooLarge,
            SmartKind::Reply => CommonStatus::MessageReplyFailed,
        }),
        Err(MailboxError::Unavailable(why)) => {
            caps.log(Level::Warn, &format!("original {item_id}: mailbox unavailable: {why}"));
            Err(CommonStatus::ServerErrorRetryLater)
        }
        Err(error) => {
            caps.log(Level::Error, &format!("original {item_id}: {error}"));
            Err(CommonStatus::ServerError)
        }
    }
}

/// A ServerId as Sync hands them out: `"{collection}:{uid}"`.
fn parse_item_id(item_id: &str) -> Option<(&str, u32)> {
    let (collection, uid) = item_id.trim().split_once(':')?;
    let valid =
        !collection.is_empty() && !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit());
    let uid: u32 = if valid { uid.parse().ok()? } else { return None };
    (uid != 0).then_some((collection, uid))
}

/// The message a reply or forward sends: the client's own with threading headers when it
/// built the whole thing (ReplaceMime, or signed/encrypted, which must not be rebuilt), else
/// the client's text combined with the original.
fn answer_message(
    caps: &impl Capabilities,
    kind: SmartKind,
    parsed: &ComposeRequest<'_>,
    original: Vec<u8>,
) -> Vec<u8> {
    let client_mime: Cow<'_, [u8]> = match &parsed.mime {
        Some(mime) => Cow::Borrowed(mime),
        None => Cow::Owned(forward_without_mime(parsed.body.as_ref(), &original)),
    };
    if parsed.replace_mime || smart::is_protected(&client_mime) {
        return smart::with_threading(&client_mime, &original);
    }
    let mut boundaries = compose::boundaries(caps, &client_mime);
    smart::compose(kind, &client_mime, original, &mut boundaries)
}

/// The new part of a 16.x SmartForward that came as Forwardees and Body without Mime: a
/// message with the original's subject (prefixed "Fw: ") and the Body's text, if any.
fn forward_without_mime(body: Option<&(bool, String)>, original: &[u8]) -> Vec<u8> {
    let subject = mail_parser::MessageParser::new()
        .parse_headers(original)
        .and_then(|parsed| parsed.subject().map(str::to_owned))
        .unwrap_or_default();
    let (is_html, text) = body.cloned().unwrap_or((false, String::new()));
    smart::new_message(&format!("Fw: {subject}"), is_html, &text)
}

fn parse<'b>(
    caps: &impl Capabilities,
    request: &EasRequest,
    body: &'b [u8],
) -> Result<ComposeRequest<'b>, CommonStatus> {
    let is_wbxml = match &request.content_type {
        ContentType::Wbxml => true,
        ContentType::Mime => false,
        // No or another Content-Type: WBXML starts with version 1.3 and public id 1.
        ContentType::Missing | ContentType::Other(_) => body.starts_with(&[0x03, 0x01]),
    };
    if !is_wbxml {
        return parse_mime_form(request, body);
    }
    if !request.version.uses_status_in_body() {
        caps.log(Level::Info, &format!("12.1 {} with a WBXML body", request.command.name()));
        return Err(CommonStatus::InvalidContent);
    }
    let document = decode_body(caps, request, body).ok_or(CommonStatus::InvalidWbxml)?;
    parse_wbxml_form(request, document.root)
}

/// The 12.1 form: the body is the message, the rest is in the query.
fn parse_mime_form<'b>(
    request: &EasRequest,
    body: &'b [u8],
) -> Result<ComposeRequest<'b>, CommonStatus> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(CommonStatus::InvalidMime);
    }
    let params = &request.params;
    let source = match (&params.item_id, &params.long_id) {
        (Some(item_id), _) => {
            Some(Source::Item { folder_id: params.collection_id.clone(), item_id: item_id.clone() })
        }
        (None, Some(long_id)) => Some(Source::LongId(long_id.clone())),
        (None, None) => None,
    };
    if request.command != Command::SendMail && source.is_none() {
        return Err(CommonStatus::InvalidIds);
    }
    Ok(ComposeRequest {
        save_in_sent: params.save_in_sent,
        mime: Some(Cow::Borrowed(body)),
        source,
        ..ComposeRequest::default()
    })
}

/// The 14.0+ form (ComposeMail code page).
fn parse_wbxml_form(
    request: &EasRequest,
    mut root: Element,
) -> Result<ComposeRequest<'static>, CommonStatus> {
    let expected = match request.command {
        Command::SmartReply => cm::SMART_REPLY,
        Command::SmartForward => cm::SMART_FORWARD,
        _ => cm::SEND_MAIL,
    };
    if root.tag != expected {
        return Err(CommonStatus::InvalidXml);
    }
    let mime: Option<Cow<'static, [u8]>> =
        root.child_mut(cm::MIME).map(|mime| match std::mem::take(&mut mime.content) {
            Content::Text(bytes) | Content::Opaque(bytes) => Cow::Owned(bytes),
            Content::Empty | Content::Children(_) | Content::Encoded(_) => Cow::Owned(Vec::new()),
        });
    // An empty boolean element means true (MS-ASDTYPE §2.1).
    let flag = |tag| root.child(tag).is_some_and(|e| e.text().is_none_or(|t| t.trim() != "0"));
    let client_id =
        root.text_of(cm::CLIENT_ID).map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned);
    if mime.as_ref().is_some_and(|mime| mime.iter().all(u8::is_ascii_whitespace)) {
        return Err(CommonStatus::InvalidMime);
    }
    let source = match root.child(cm::SOURCE) {
        None => None,
        Some(source) => {
            let text = |tag| source.text_of(tag).map(str::trim).filter(|t| !t.is_empty());
            match (text(cm::ITEM_ID), text(cm::LONG_ID)) {
                (Some(item_id), _) => Some(Source::Item {
                    folder_id: text(cm::FOLDER_ID).map(str::to_owned),
                    item_id: item_id.to_owned(),
                }),
                (None, Some(long_id)) => Some(Source::LongId(long_id.to_owned())),
                (None, None) => return Err(CommonStatus::InvalidIds),
            }
        }
    };
    let forwardees = root
        .child(cm::FORWARDEES)
        .map(|list| {
            list.children(cm::FORWARDEE)
                .filter_map(|forwardee| {
                    let email = forwardee.text_of(cm::EMAIL)?.trim();
                    let name = forwardee.text_of(cm::NAME).map(str::trim).filter(|n| !n.is_empty());
                    (!email.is_empty()).then(|| (name.map(str::to_owned), email.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let body = root.child(base::BODY).and_then(|body| {
        let is_html = body.text_of(base::TYPE).map(str::trim) == Some("2");
        Some((is_html, body.text_of(base::DATA)?.to_owned()))
    });
    let parsed = ComposeRequest {
        client_id,
        save_in_sent: flag(cm::SAVE_IN_SENT_ITEMS),
        replace_mime: flag(cm::REPLACE_MIME),
        mime,
        source,
        forwardees,
        body,
    };
    let is_smart = request.command != Command::SendMail;
    if is_smart && parsed.source.is_none() {
        return Err(CommonStatus::InvalidXml);
    }
    let forward_without_mime = request.command == Command::SmartForward
        && (!parsed.forwardees.is_empty() || parsed.body.is_some());
    if parsed.mime.is_none() && !forward_without_mime {
        return Err(CommonStatus::InvalidXml);
    }
    Ok(parsed)
}
