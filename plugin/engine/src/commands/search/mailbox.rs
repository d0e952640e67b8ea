//! The mailbox query behind Search (Store "Mailbox") and Find: which folders a query covers,
//! the mailbox capability's `search` in each of them, and the matches merged newest first.
//!
//! IMAP SEARCH compares dates by day only, so date bounds are widened to whole days for the
//! server and then applied exactly to each match's INTERNALDATE, which one `fetch_summaries`
//! per folder (no body bytes) brings along with the flags (`\Deleted` messages are left out,
//! as Sync leaves them out).
//!
//! Bounds (the answer is the newest matches within them; Total counts what was kept):
//! * at most [`MAX_SCOPE_FOLDERS`] folders, the Inbox first, then the map's order;
//! * at most [`MAX_UIDS_PER_FOLDER`] matches per folder (the highest UIDs, i.e. the newest);
//! * at most [`MAX_DATED`] matches dated in total, folder by folder in scope order.

use super::conversation;
use super::criteria::TextQuery;
use crate::capabilities::{Capabilities, Level};
use crate::folders::{self, FolderEntry};
use crate::mailbox::{MailboxError, MessageSummary, SearchQuery};
use std::collections::HashSet;

pub const MAX_SCOPE_FOLDERS: usize = 100;
pub const MAX_UIDS_PER_FOLDER: usize = 1000;
pub const MAX_DATED: usize = 2000;
/// UIDs per `fetch_summaries` call.
pub const FETCH_CHUNK: usize = 250;

/// EAS folder type code of the Inbox (FolderSync Type 2).
const INBOX_TYPE: u8 = 2;

/// Which folders a query covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every folder that holds messages.
    All,
    /// These CollectionIds, with their subfolders when `deep`.
    Collections { ids: Vec<String>, deep: bool },
}

/// What the messages must satisfy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Criteria {
    pub text: TextQuery,
    /// email:DateReceived strictly after this (unix seconds).
    pub after: Option<i64>,
    /// email:DateReceived strictly before this.
    pub before: Option<i64>,
    /// Only the messages of this conversation (email2:ConversationId).
    pub conversation: Option<[u8; 16]>,
}

impl Criteria {
    /// The mailbox capability's query: date bounds widened to whole days (see the module
    /// docs), text and header as given.
    pub fn search_query(&self) -> SearchQuery {
        SearchQuery {
            text: self.text.text(),
            since: self.after,
            // BEFORE excludes its whole day: the day after the bound keeps everything earlier.
            before: self.before.map(|before| before.saturating_add(86_400)),
            header: self.text.header.clone(),
        }
    }

    /// Whether a message received at `date` (unix seconds) is inside the date bounds.
    pub fn accepts_date(&self, date: i64) -> bool {
        self.after.is_none_or(|after| date > after)
            && self.before.is_none_or(|before| date < before)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A CollectionId the folder map does not know (the client needs a FolderSync).
    UnknownCollection(String),
    /// The mailbox or the state store failed.
    Unavailable(String),
}

/// One matching message: an index into [`Matches::folders`], its UID and INTERNALDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub folder: usize,
    pub uid: u32,
    pub date: i64,
}

/// The folders searched and the matches, newest first.
#[derive(Debug, Clone, Default)]
pub struct Matches {
    pub folders: Vec<FolderEntry>,
    pub hits: Vec<Hit>,
}

impl Matches {
    /// ServerId (and LongId) of a hit: `"{collection}:{uid}"`, as Sync hands them out.
    pub fn server_id(&self, hit: &Hit) -> String {
        format!("{}:{}", self.folders[hit.folder].server_id, hit.uid)
    }

    pub fn collection_id(&self, hit: &Hit) -> &str {
        &self.folders[hit.folder].server_id
    }
}

/// The folders `scope` names, selectable ones only, Inbox first, at most
/// [`MAX_SCOPE_FOLDERS`].
pub async fn scope_folders(
    caps: &impl Capabilities,
    scope: &Scope,
) -> Result<Vec<FolderEntry>, Failure> {
    let unavailable = |error: folders::FolderMapError| Failure::Unavailable(error.to_string());
    let mut chosen: Vec<FolderEntry> = match scope {
        Scope::All => {
            let map = folders::refresh(caps).await.map_err(unavailable)?;
            let mut entries = map.entries().to_vec();
            // A stable sort: the Inbox first, everything else in the map's order.
            entries.sort_by_key(|entry| entry.folder_type.code() != INBOX_TYPE);
            entries
        }
        Scope::Collections { ids, deep } => {
            let mut named = Vec::new();
            for id in ids {
                match folders::resolve(caps, id).await.map_err(unavailable)? {
                    Some(entry) => named.push(entry),
                    None => return Err(Failure::UnknownCollection(id.clone())),
                }
            }
            if *deep {
                let map = folders::stored(caps).await.map_err(unavailable)?;
                named = with_descendants(named, map.entries());
            }
            named
        }
    };
    let mut seen = HashSet::new();
    chosen.retain(|entry| entry.selectable && seen.insert(entry.server_id.clone()));
    chosen.truncate(MAX_SCOPE_FOLDERS);
    Ok(chosen)
}

/// `roots` followed by every folder below them (breadth first, each once).
fn with_descendants(roots: Vec<FolderEntry>, all: &[FolderEntry]) -> Vec<FolderEntry> {
    let mut result = roots;
    let mut known: HashSet<String> = result.iter().map(|e| e.server_id.clone()).collect();
    let mut next = 0;
    while next < result.len() && result.len() < MAX_SCOPE_FOLDERS * 4 {
        let parent = result[next].server_id.clone();
        for entry in all.iter().filter(|entry| entry.parent_id == parent) {
            if known.insert(entry.server_id.clone()) {
                result.push(entry.clone());
            }
        }
        next += 1;
    }
    result
}

/// Runs the query over the scope.
pub async fn find(
    caps: &impl Capabilities,
    scope: &Scope,
    criteria: &Criteria,
) -> Result<Matches, Failure> {
    let folders = scope_folders(caps, scope).await?;
    let mut hits = match criteria.conversation {
        Some(conversation_id) => {
            conversation::find(caps, &folders, conversation_id, criteria).await?
        }
        None => plain_search(caps, &folders, criteria).await?,
    };
    hits.sort_by(|a, b| b.date.cmp(&a.date).then(a.folder.cmp(&b.folder)).then(b.uid.cmp(&a.uid)));
    hits.dedup_by(|a, b| a.folder == b.folder && a.uid == b.uid);
    Ok(Matches { folders, hits })
}

async fn plain_search(
    caps: &impl Capabilities,
    folders: &[FolderEntry],
    criteria: &Criteria,
) -> Result<Vec<Hit>, Failure> {
    let query = criteria.search_query();
    let mut hits = Vec::new();
    let mut dated = 0;
    for (index, folder) in folders.iter().enumerate() {
        if dated >= MAX_DATED {
            caps.log(Level::Info, "search: match limit reached; older folders left out");
            break;
        }
        let Some(uids) = search_folder(caps, folder, &query).await? else { continue };
        let room = MAX_DATED - dated;
        let newest: Vec<u32> = uids.iter().rev().take(room).copied().collect();
        dated += newest.len();
        let summaries = summaries(caps, folder, &newest, 0).await?;
        hits.extend(
            summaries
                .iter()
                .filter(|s| !is_deleted(&s.flags) && criteria.accepts_date(s.internal_date))
                .map(|s| Hit { folder: index, uid: s.uid, date: s.internal_date }),
        );
    }
    Ok(hits)
}

/// The folder's matching UIDs, ascending, at most [`MAX_UIDS_PER_FOLDER`] (the newest);
/// `None` for a folder that disappeared meanwhile.
pub async fn search_folder(
    caps: &impl Capabilities,
    folder: &FolderEntry,
    query: &SearchQuery,
) -> Result<Option<Vec<u32>>, Failure> {
    match caps.search(&folder.imap_name, query).await {
        Ok(mut uids) => {
            // Untrusted: sorted, unique, no UID 0, bounded.
            uids.retain(|&uid| uid != 0);
            uids.sort_unstable();
            uids.dedup();
            let excess = uids.len().saturating_sub(MAX_UIDS_PER_FOLDER);
            uids.drain(..excess);
            Ok(Some(uids))
        }
        Err(MailboxError::NoSuchFolder(_)) => Ok(None),
        Err(error) => Err(mailbox_failure(caps, folder, error)),
    }
}

/// Summaries of `uids` (any order) with `prefix_bytes` of each body, fetched in chunks;
/// vanished messages and anything the host adds are left out. A folder that disappeared gives
/// none.
pub async fn summaries(
    caps: &impl Capabilities,
    folder: &FolderEntry,
    uids: &[u32],
    prefix_bytes: u32,
) -> Result<Vec<MessageSummary>, Failure> {
    let mut result = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(FETCH_CHUNK) {
        let mut wanted = chunk.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        match caps.fetch_summaries(&folder.imap_name, &wanted, prefix_bytes, None).await {
            Ok(mut fetched) => {
                fetched.retain(|s| wanted.binary_search(&s.uid).is_ok());
                fetched.sort_by_key(|s| s.uid);
                fetched.dedup_by_key(|s| s.uid);
                result.extend(fetched);
            }
            Err(MailboxError::NoSuchFolder(_)) => return Ok(Vec::new()),
            Err(error) => return Err(mailbox_failure(caps, folder, error)),
        }
    }
    Ok(result)
}

/// Summaries for `hits` (in their order) with `prefix_bytes` each: one fetch per folder.
/// `None` where a message vanished since it matched.
pub async fn page_summaries(
    caps: &impl Capabilities,
    matches: &Matches,
    hits: &[Hit],
    prefix_bytes: u32,
) -> Result<Vec<Option<MessageSummary>>, Failure> {
    let mut result: Vec<Option<MessageSummary>> = vec![None; hits.len()];
    let mut folders_done = HashSet::new();
    for hit in hits {
        if !folders_done.insert(hit.folder) {
            continue;
        }
        let uids: Vec<u32> =
            hits.iter().filter(|h| h.folder == hit.folder).map(|h| h.uid).collect();
        let fetched = summaries(caps, &matches.folders[hit.folder], &uids, prefix_bytes).await?;
        for summary in fetched {
            let position = hits.iter().position(|h| h.folder == hit.folder && h.uid == summary.uid);
            if let Some(position) = position
                && !is_deleted(&summary.flags)
            {
                result[position] = Some(summary);
            }
        }
    }
    Ok(result)
}

pub fn is_deleted(flags: &[String]) -> bool {
    flags.iter().any(|flag| flag.eq_ignore_ascii_case("\\Deleted"))
}

pub fn mailbox_failure(
    caps: &impl Capabilities,
    folder: &FolderEntry,
    error: MailboxError,
) -> Failure {
    caps.log(Level::Warn, &format!("search in folder {}: {error}", folder.server_id));
    Failure::Unavailable(error.to_string())
}
