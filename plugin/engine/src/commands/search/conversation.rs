//! Search by email2:ConversationId.
//!
//! A ConversationId is a hash of the thread's root (see `email::conversation`): it cannot be
//! turned back into something IMAP can search for. So the search runs in two phases:
//!
//! 1. Scan the newest messages of the scope (at most [`SCAN_TOTAL`], spread over the folders
//!    in scope order, [`SCAN_CHUNK`] per fetch with [`HEADER_BLOCK_PREFIX`] of each) and
//!    compute their ConversationIds until one matches. That message tells the thread's root:
//!    a Message-ID (or, for mail without any, the subject).
//! 2. Ask the mailbox for the messages that carry the root: `References` or `Message-ID`
//!    containing it (`Subject` for subject threads), in the first [`ROOT_SEARCH_FOLDERS`]
//!    folders of the scope, and keep the candidates whose computed ConversationId matches
//!    (at most [`MAX_CANDIDATES`] newest).
//!
//! So a conversation is found when one of its messages is among the newest scanned, and then
//! completely within the searched folders, except for replies from clients that set only
//! In-Reply-To (found when they are among the scanned messages).

use super::criteria::TextQuery;
use super::headers::{self, ThreadRoot};
use super::mailbox::{self, Criteria, Failure, Hit};
use crate::capabilities::{Capabilities, HEADER_BLOCK_PREFIX};
use crate::email;
use crate::folders::FolderEntry;
use crate::mailbox::{MessageSummary, SearchQuery};
use std::collections::BTreeSet;

/// Messages whose ConversationId is computed in phase 1, at most.
pub const SCAN_TOTAL: u32 = 600;
/// Per folder in phase 1: between these bounds, `SCAN_TOTAL` shared among the folders.
const SCAN_PER_FOLDER: (u32, u32) = (10, 200);
const SCAN_CHUNK: usize = 50;
/// Folders searched for the thread's root in phase 2.
pub const ROOT_SEARCH_FOLDERS: usize = 20;
/// Candidates of phase 2 whose ConversationId is computed, at most.
pub const MAX_CANDIDATES: usize = 300;

pub async fn find(
    caps: &impl Capabilities,
    folders: &[FolderEntry],
    conversation_id: [u8; 16],
    criteria: &Criteria,
) -> Result<Vec<Hit>, Failure> {
    let mut hits = Vec::new();
    let Some(root) = scan(caps, folders, conversation_id, criteria, &mut hits).await? else {
        return Ok(hits);
    };
    let mut budget = MAX_CANDIDATES;
    for (index, folder) in folders.iter().enumerate().take(ROOT_SEARCH_FOLDERS) {
        let mut candidates = BTreeSet::new();
        for query in root_queries(&root) {
            if let Some(uids) = mailbox::search_folder(caps, folder, &query).await? {
                candidates.extend(uids);
            }
        }
        for hit in hits.iter().filter(|hit| hit.folder == index) {
            candidates.remove(&hit.uid);
        }
        let newest: Vec<u32> = candidates.into_iter().rev().take(budget).collect();
        budget -= newest.len();
        let summaries = mailbox::summaries(caps, folder, &newest, HEADER_BLOCK_PREFIX).await?;
        collect(index, &summaries, conversation_id, criteria, &mut hits);
        if budget == 0 {
            break;
        }
    }
    apply_text(caps, folders, &criteria.text, &mut hits).await?;
    Ok(hits)
}

/// Phase 1: the newest messages, folder by folder, until one belongs to the conversation;
/// its thread root.
async fn scan(
    caps: &impl Capabilities,
    folders: &[FolderEntry],
    conversation_id: [u8; 16],
    criteria: &Criteria,
    hits: &mut Vec<Hit>,
) -> Result<Option<ThreadRoot>, Failure> {
    let names: Vec<String> = folders.iter().map(|f| f.imap_name.clone()).collect();
    let statuses = caps
        .folder_status(&names)
        .await
        .map_err(|error| Failure::Unavailable(error.to_string()))?;
    let share = SCAN_TOTAL / u32::try_from(folders.len().max(1)).unwrap_or(u32::MAX);
    let per_folder = share.clamp(SCAN_PER_FOLDER.0, SCAN_PER_FOLDER.1);
    let mut scanned = 0;
    for (index, folder) in folders.iter().enumerate() {
        let Some(Ok(status)) = statuses.get(index) else { continue };
        if scanned >= SCAN_TOTAL {
            break;
        }
        let window = per_folder.min(SCAN_TOTAL - scanned);
        scanned += window;
        let top = status.uid_next.saturating_sub(1);
        let newest: Vec<u32> =
            (top.saturating_sub(window - 1).max(1)..=top).rev().filter(|&uid| uid != 0).collect();
        for chunk in newest.chunks(SCAN_CHUNK) {
            let summaries = mailbox::summaries(caps, folder, chunk, HEADER_BLOCK_PREFIX).await?;
            let first = collect(index, &summaries, conversation_id, criteria, hits);
            let root = first
                .and_then(|summary| headers::parse(&summary.prefix))
                .and_then(|message| headers::thread_root(&message));
            if root.is_some() {
                return Ok(root);
            }
        }
    }
    Ok(None)
}

/// The searches that find a thread's messages by its root.
fn root_queries(root: &ThreadRoot) -> Vec<SearchQuery> {
    let header = |field: &str, value: &str| SearchQuery {
        header: Some((field.to_owned(), value.to_owned())),
        ..SearchQuery::default()
    };
    match root {
        ThreadRoot::MessageId(id) => vec![header("References", id), header("Message-ID", id)],
        ThreadRoot::Subject(topic) => vec![header("Subject", topic)],
    }
}

fn conversation_of(summary: &MessageSummary) -> [u8; 16] {
    email::convert(summary, "").item.conversation_id
}

/// Adds the summaries that belong to the conversation (and pass the date bounds) to `hits`;
/// the first one that belongs to it, whatever its date.
fn collect<'s>(
    folder: usize,
    summaries: &'s [MessageSummary],
    conversation_id: [u8; 16],
    criteria: &Criteria,
    hits: &mut Vec<Hit>,
) -> Option<&'s MessageSummary> {
    let mut first = None;
    for summary in summaries {
        if mailbox::is_deleted(&summary.flags) || conversation_of(summary) != conversation_id {
            continue;
        }
        first = first.or(Some(summary));
        let known = hits.iter().any(|hit| hit.folder == folder && hit.uid == summary.uid);
        // Date bounds apply here so that Total counts what can be shown.
        if !known && criteria.accepts_date(summary.internal_date) {
            hits.push(Hit { folder, uid: summary.uid, date: summary.internal_date });
        }
    }
    first
}

/// FreeText together with a ConversationId: keep the members that also match the text.
async fn apply_text(
    caps: &impl Capabilities,
    folders: &[FolderEntry],
    text: &TextQuery,
    hits: &mut Vec<Hit>,
) -> Result<(), Failure> {
    if text.is_empty() || hits.is_empty() {
        return Ok(());
    }
    let query =
        SearchQuery { text: text.text(), header: text.header.clone(), ..SearchQuery::default() };
    let in_use: BTreeSet<usize> = hits.iter().map(|hit| hit.folder).collect();
    for index in in_use {
        let matching =
            mailbox::search_folder(caps, &folders[index], &query).await?.unwrap_or_default();
        hits.retain(|hit| hit.folder != index || matching.binary_search(&hit.uid).is_ok());
    }
    Ok(())
}
