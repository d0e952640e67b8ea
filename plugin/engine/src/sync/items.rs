//! Items for a batch: one `fetch_summaries` for the new items (and flag resends), conversion
//! to Email, body selection, and a whole-message fetch where the prefix fell short and the
//! batch budget allows. Flag changes need no fetch: their Change carries only flag fields.

use super::held::{flags_hash, is_deleted};
use super::limits::{
    BATCH_FULL_FETCH_BYTES, MAX_FETCH_COMMAND_BYTES, MAX_FULL_FETCH_BYTES, MAX_PREFIX_BYTES,
    MAX_SYNC_BODY_BYTES,
};
use super::options::CollectionOptions;
use super::render;
use super::render_ahead;
use super::request::status;
use crate::ashttp::ProtocolVersion;
use crate::capabilities::{Capabilities, Level};
use crate::email::{self, BodyNeeds, BodyPreference, MessageSummary, MimeSupport, wbxml};
use crate::mailbox::{MailboxError, MailboxResult};
use eas_wbxml::Element;

/// Everything item rendering needs to know about the collection.
pub struct ItemContext<'a, C> {
    pub caps: &'a C,
    pub imap_name: &'a str,
    pub collection_id: &'a str,
    pub version: ProtocolVersion,
    pub options: &'a CollectionOptions,
    /// Messages older than this (INTERNALDATE, unix seconds) are outside the date window.
    pub window_start: Option<i64>,
}

/// One rendered command and what the device will hold afterwards.
#[derive(Debug)]
pub struct Rendered {
    pub uid: u32,
    pub hash: u32,
    pub element: Element,
}

#[derive(Debug, Default)]
pub struct Fetched {
    /// Add commands, newest first.
    pub adds: Vec<Rendered>,
    /// Change commands for flag resends.
    pub resends: Vec<Rendered>,
    /// Planned adds that did not fit the byte budget: they stay pending.
    pub unsent: Vec<u32>,
    /// Encoded size of `adds` and `resends`, roughly.
    pub bytes: usize,
}

/// A Change with the message's current flags (Read, Flag, Categories, LastVerbExecuted).
pub fn flag_change<C>(context: &ItemContext<'_, C>, uid: u32, flags: &[String]) -> Rendered {
    let server_id = render::server_id(context.collection_id, uid);
    let summary = MessageSummary { uid, flags: flags.to_vec(), ..MessageSummary::default() };
    let item = email::convert(&summary, &server_id).item;
    Rendered {
        uid,
        hash: flags_hash(flags),
        element: render::change(server_id, wbxml::flag_change(&item, context.version)),
    }
}

/// Fetches and renders the planned adds (newest first) and resends, within `byte_budget`
/// (the first add always goes, so a batch always makes progress). The host is told of
/// `next_adds` once this batch's summaries are in: it can fetch them while this batch is
/// converted and the phone reads it.
pub async fn fetch_batch<C: Capabilities>(
    context: &ItemContext<'_, C>,
    adds: &[u32],
    resend: &[u32],
    next_adds: &[u32],
    byte_budget: usize,
) -> MailboxResult<Fetched> {
    let mut fetched = Fetched::default();
    if adds.is_empty() && resend.is_empty() {
        return Ok(fetched);
    }
    let mut wanted: Vec<u32> = adds.iter().chain(resend).copied().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let prefix_bytes = context.options.prefix_bytes();
    let render = render_ahead::request(context.collection_id, context.version, context.options);
    let mut summaries = context
        .caps
        .fetch_summaries(context.imap_name, &wanted, prefix_bytes, render.as_deref())
        .await?;
    if !next_adds.is_empty() {
        let mut next = next_adds.to_vec();
        next.sort_unstable();
        context
            .caps
            .prefetch_summaries(context.imap_name, &next, prefix_bytes, render.as_deref())
            .await;
    }
    // Untrusted: keep one summary per requested UID.
    summaries.retain(|s| wanted.binary_search(&s.uid).is_ok());
    summaries.sort_by_key(|s| s.uid);
    summaries.dedup_by_key(|s| s.uid);
    let mut rendered_ahead = take_rendered_ahead(context, &mut summaries, prefix_bytes).await?;
    let summary_of = |uid: u32| {
        summaries.binary_search_by_key(&uid, |s| s.uid).ok().map(|index| &summaries[index])
    };

    for &uid in resend {
        if let Some(summary) = summary_of(uid).filter(|s| !is_deleted(&s.flags)) {
            let rendered = flag_change(context, uid, &summary.flags);
            fetched.bytes += render::approximate_size(&rendered.element);
            fetched.resends.push(rendered);
        }
    }

    let preferences = context.options.preferences(Some(MAX_SYNC_BODY_BYTES));
    let mut full_fetch_budget = BATCH_FULL_FETCH_BYTES;
    for (index, &uid) in adds.iter().enumerate() {
        let Some(summary) = summary_of(uid) else { continue };
        if is_deleted(&summary.flags)
            || context.window_start.is_some_and(|start| summary.internal_date < start)
        {
            continue;
        }
        // The first add always goes; later ones only within the budget.
        let room = (!fetched.adds.is_empty()).then(|| byte_budget.saturating_sub(fetched.bytes));
        let ahead = rendered_ahead
            .binary_search_by_key(&uid, |(uid, _)| *uid)
            .ok()
            .and_then(|index| rendered_ahead[index].1.take());
        let outcome = match ahead {
            Some(element) => {
                AddOutcome::Rendered(Rendered { uid, hash: flags_hash(&summary.flags), element })
            }
            None => render_add(context, summary, &preferences, &mut full_fetch_budget, room).await,
        };
        let rendered = match outcome {
            AddOutcome::Rendered(rendered) => rendered,
            AddOutcome::Gone => continue,
            AddOutcome::DoesNotFit => {
                fetched.unsent.extend_from_slice(&adds[index..]);
                break;
            }
        };
        let size = render::approximate_size(&rendered.element);
        if room.is_some_and(|room| size > room) {
            fetched.unsent.extend_from_slice(&adds[index..]);
            break;
        }
        fetched.bytes += size;
        fetched.adds.push(rendered);
    }
    Ok(fetched)
}

enum AddOutcome {
    Rendered(Rendered),
    /// The message vanished while being fetched whole.
    Gone,
    /// Fetched whole it would not fit `room`: it waits for the next batch.
    DoesNotFit,
}

/// The Adds rendered ahead that came with `summaries` (see `render_ahead`), in UID order. A
/// message whose rendering is unusable came without its prefix: it is fetched again, plainly.
async fn take_rendered_ahead<C: Capabilities>(
    context: &ItemContext<'_, C>,
    summaries: &mut Vec<MessageSummary>,
    prefix_bytes: u32,
) -> MailboxResult<Vec<(u32, Option<Element>)>> {
    let mut ahead = Vec::new();
    let mut unusable = Vec::new();
    for summary in summaries.iter_mut() {
        match render_ahead::take(summary) {
            Ok(Some(element)) => ahead.push((summary.uid, Some(element))),
            Ok(None) => {}
            Err(render_ahead::NotAnAdd) => unusable.push(summary.uid),
        }
    }
    if !unusable.is_empty() {
        context.caps.log(
            Level::Warn,
            &format!("{} Adds rendered ahead are unusable; fetching them again", unusable.len()),
        );
        let again =
            context.caps.fetch_summaries(context.imap_name, &unusable, prefix_bytes, None).await?;
        summaries.retain(|s| unusable.binary_search(&s.uid).is_err());
        summaries.extend(again.into_iter().filter(|s| unusable.binary_search(&s.uid).is_ok()));
        summaries.sort_by_key(|s| s.uid);
        summaries.dedup_by_key(|s| s.uid);
    }
    Ok(ahead)
}

/// The Add of `summary` from what it holds, and whether fetching the whole message would
/// give the phone a body it asked for that the summary's prefix cannot (see `render_add`).
pub(super) fn add_from_summary(
    summary: &MessageSummary,
    collection_id: &str,
    version: ProtocolVersion,
    preferences: &[BodyPreference],
    mime_support: MimeSupport,
) -> (Element, bool) {
    let server_id = render::server_id(collection_id, summary.uid);
    let needs = BodyNeeds::for_preferences(preferences);
    let converted = email::convert_for(summary, &server_id, needs);
    let selection = converted.body.select_body(preferences, mime_support);
    let data = wbxml::application_data(&converted.item, Some(&selection.body), version);
    (render::add(server_id, data), selection.needs_full_fetch)
}

/// An Add for `summary`. `room` is the byte budget left (`None`: send it whatever its size).
async fn render_add<C: Capabilities>(
    context: &ItemContext<'_, C>,
    summary: &MessageSummary,
    preferences: &[BodyPreference],
    full_fetch_budget: &mut u64,
    room: Option<usize>,
) -> AddOutcome {
    let mime_support = context.options.mime_support();
    let add = |summary: &MessageSummary| {
        add_from_summary(summary, context.collection_id, context.version, preferences, mime_support)
    };
    let (element, needs_full_fetch) = add(summary);
    let size = u64::from(summary.size);
    if needs_full_fetch && summary.size <= MAX_FULL_FETCH_BYTES && size <= *full_fetch_budget {
        // Do not fetch what would then not be sent.
        let predicted = summary.size.min(MAX_SYNC_BODY_BYTES) as usize;
        if room.is_some_and(|room| predicted > room) {
            return AddOutcome::DoesNotFit;
        }
        *full_fetch_budget -= size;
        match whole(context, summary.uid, MAX_FULL_FETCH_BYTES).await {
            Ok(Some(full)) => {
                return AddOutcome::Rendered(Rendered {
                    uid: summary.uid,
                    hash: flags_hash(&full.flags),
                    element: add(&full).0,
                });
            }
            Ok(None) => return AddOutcome::Gone,
            Err(error) => context.caps.log(
                Level::Info,
                &format!("fetching UID {} whole: {error}; sending it truncated", summary.uid),
            ),
        }
    }
    AddOutcome::Rendered(Rendered { uid: summary.uid, hash: flags_hash(&summary.flags), element })
}

async fn whole<C: Capabilities>(
    context: &ItemContext<'_, C>,
    uid: u32,
    max_bytes: u32,
) -> MailboxResult<Option<MessageSummary>> {
    let message = context.caps.fetch_message(context.imap_name, uid, max_bytes).await?;
    Ok(message.map(|m| MessageSummary::from_full_message(uid, m.flags, m.internal_date, m.raw)))
}

/// Responses > Fetch for a client's Fetch inside Sync: the item with the collection's body
/// preferences (no server cap on the body; the message is fetched whole up to a bound).
pub async fn fetch_command<C: Capabilities>(
    context: &ItemContext<'_, C>,
    server_id: &str,
) -> Element {
    let Some(uid) = render::uid_of(context.collection_id, server_id) else {
        return render::fetch_response(server_id, status::OBJECT_NOT_FOUND, None);
    };
    let summaries =
        match context.caps.fetch_summaries(context.imap_name, &[uid], MAX_PREFIX_BYTES, None).await
        {
            Ok(summaries) => summaries,
            Err(error) => return fetch_failed(context, server_id, &error),
        };
    let Some(summary) = summaries.into_iter().find(|s| s.uid == uid && !is_deleted(&s.flags))
    else {
        return render::fetch_response(server_id, status::OBJECT_NOT_FOUND, None);
    };
    let preferences = context.options.preferences(None);
    let mime_support = context.options.mime_support();
    let converted = email::convert(&summary, server_id);
    let selection = converted.body.select_body(&preferences, mime_support);
    if selection.needs_full_fetch && summary.size <= MAX_FETCH_COMMAND_BYTES {
        match whole(context, uid, MAX_FETCH_COMMAND_BYTES).await {
            Ok(Some(full)) => {
                let converted = email::convert(&full, server_id);
                let selection = converted.body.select_body(&preferences, mime_support);
                let data = wbxml::application_data(
                    &converted.item,
                    Some(&selection.body),
                    context.version,
                );
                return render::fetch_response(server_id, status::SUCCESS, Some(data));
            }
            Ok(None) => return render::fetch_response(server_id, status::OBJECT_NOT_FOUND, None),
            Err(error) => context.caps.log(
                Level::Info,
                &format!("Fetch of {server_id}: {error}; sending what the prefix holds"),
            ),
        }
    }
    let data = wbxml::application_data(&converted.item, Some(&selection.body), context.version);
    render::fetch_response(server_id, status::SUCCESS, Some(data))
}

fn fetch_failed<C: Capabilities>(
    context: &ItemContext<'_, C>,
    server_id: &str,
    error: &MailboxError,
) -> Element {
    context.caps.log(Level::Warn, &format!("Fetch of {server_id}: {error}"));
    let code = match error {
        MailboxError::NoSuchFolder(_) => status::OBJECT_NOT_FOUND,
        _ => status::SERVER_ERROR,
    };
    render::fetch_response(server_id, code, None)
}
