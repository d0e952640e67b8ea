//! Sync of mail collections (MS-ASCMD §2.2.1.21, EAS-NOTES §4.4): server changes to the
//! device, the device's own Add/Change/Delete written to the mailbox (`client.rs`: flags,
//! deletes, 16.x drafts), and what GetItemEstimate, Ping and MoveItems need from it.
//!
//! Per device and collection the server stores a `CollectionState` (`state.rs`): the SyncKey in
//! force (`{generation:x}-{counter}`, a random generation per SyncKey-0 relationship), the IMAP
//! sync point (UIDVALIDITY, HIGHESTMODSEQ), what the device holds (UID → flag hash), the UIDs
//! still to send, the Options in force and the folder's STATUS counters as of the last answer
//! (for Ping). The previous key's answer is kept encoded and replayed byte for byte when the
//! client retries with that key.
//!
//! Layout, quinn-proto style (pure parts apart from I/O):
//! * `request.rs` parses the request and caches it for empty and Partial requests;
//! * `client.rs` applies the client's commands (`change.rs` (pure) maps Read/Flag/Categories
//!   to IMAP flags, `draft.rs` (pure) builds drafts) and records in the state what the device
//!   now holds, so its own changes never come back to it; `moved.rs` does the same for
//!   MoveItems;
//! * `reconcile.rs` (pure) turns state + one `changes` answer into deletes, changes and
//!   pending adds; `batch.rs` (pure) picks what fits the window;
//! * `items.rs` fetches and renders items; `render.rs` builds the elements;
//! * `collection.rs` runs one collection (key check, replay, compare-and-swap);
//! * `estimate.rs` (GetItemEstimate) and `watch.rs` (Ping) reuse the same reconciliation;
//! * `wait.rs`: what an empty Sync with Wait/HeartbeatInterval asks the host to watch.

mod batch;
mod change;
mod client;
mod collection;
mod draft;
mod draft_alias;
mod estimate;
mod held;
mod items;
mod key;
mod limits;
mod moved;
mod options;
mod reconcile;
mod render;
pub mod render_ahead;
mod request;
mod state;
mod uidset;
mod wait;
mod watch;

#[cfg(test)]
mod tests;

pub use draft_alias::resolve as resolve_draft_alias;
pub use estimate::{Estimate, estimate};
pub use held::{flags_hash, is_deleted};
pub use moved::{Moved, recent_move, record_moves};
pub use options::prefix_bytes_for;
pub use state::Fingerprint;
pub use watch::{SyncError, WatchState, pending_changes, watch_state};

use crate::ashttp::{EasRequest, ProtocolVersion};
use crate::capabilities::{Capabilities, Level, StateCondition, StateScope, StateWrite};
use collection::Budget;
use eas_wbxml::{Document, Limits};
use request::{GlobalStatus, SyncRequest, status};

/// What the Sync command answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAnswer {
    Document(Document),
    /// Nothing to report in any collection: HTTP 200 with an empty body
    /// (MS-ASCMD §2.2.1.21.2). `hold_seconds` is the Wait/HeartbeatInterval the client asked
    /// for; it is only set here when no collection could be watched (none listed yet).
    Empty {
        hold_seconds: Option<u32>,
    },
    /// Nothing to report and the client asked to wait: the host parks the request until one
    /// of `folders` (IMAP name, token) moves, then runs it again; after `seconds` it answers
    /// the empty response (`wait.rs`).
    Wait {
        folders: Vec<(String, String)>,
        seconds: u32,
    },
    /// The body is not WBXML.
    NotWbxml,
    /// The mailbox or the state store failed: a transient server error.
    Unavailable,
}

/// A failure that ends the whole request (the state store or the mailbox is down). Every
/// collection answered before it is safe: its client retries with the old key and gets the
/// stored answer again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal(pub String);

/// What every collection of one request shares.
pub(crate) struct Context<'a, C> {
    pub caps: &'a C,
    pub device: &'a str,
    /// The user's address (the login when it is one), From of drafts.
    pub user: Option<String>,
    pub version: ProtocolVersion,
    pub scope: StateScope,
    pub now_secs: i64,
}

impl<C: Capabilities> Context<'_, C> {
    fn log(&self, level: Level, message: &str) {
        self.caps.log(level, &format!("device {}: {message}", self.device));
    }

    async fn state_get(&self, key: &str) -> Result<Option<Vec<u8>>, Fatal> {
        self.caps.state_get(&self.scope, key).await.map_err(|e| Fatal(format!("state {key}: {e}")))
    }

    /// `key` set to `new` if it still holds `expected`.
    async fn swap(
        &self,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, Fatal> {
        self.swap_with(key, expected, new, None).await
    }

    /// [`swap`](Self::swap), writing `also` (if any) in the same transaction.
    async fn swap_with(
        &self,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        also: Option<StateWrite>,
    ) -> Result<bool, Fatal> {
        let condition = StateCondition { key: key.to_owned(), expected };
        let write = StateWrite { key: key.to_owned(), value: Some(new) };
        let writes = also.into_iter().chain([write]).collect();
        self.caps
            .state_transact(&self.scope, vec![condition], writes)
            .await
            .map_err(|e| Fatal(format!("state {key}: {e}")))
    }
}

/// Runs a Sync request of the user `identity`.
pub async fn run<C: Capabilities>(
    caps: &C,
    identity: &str,
    request: &EasRequest,
    body: &[u8],
) -> SyncAnswer {
    let device = request.device_id.as_str();
    let identity = identity.trim();
    let context = Context {
        caps,
        device,
        user: (identity.contains('@') && !identity.contains(char::is_whitespace))
            .then(|| identity.to_owned()),
        version: request.version,
        scope: StateScope::Device(device.to_owned()),
        now_secs: i64::try_from(caps.now_ms() / 1000).unwrap_or(i64::MAX),
    };
    let parsed = match read_request(&context, body).await {
        Ok(parsed) => parsed,
        Err(answer) => return answer,
    };
    let mut budget = Budget {
        commands: parsed.window_size.unwrap_or(usize::MAX),
        bytes: limits::RESPONSE_BYTES,
    };
    let mut collections = Vec::new();
    for collection in &parsed.collections {
        match collection::sync_collection(&context, collection, &mut budget).await {
            Ok(Some(element)) => collections.push(element),
            Ok(None) => {}
            Err(Fatal(why)) => {
                context.log(Level::Error, &format!("Sync failed: {why}"));
                return SyncAnswer::Unavailable;
            }
        }
    }
    context.log(
        Level::Debug,
        &format!(
            "Sync: {} collections asked, {} answered",
            parsed.collections.len(),
            collections.len()
        ),
    );
    if collections.is_empty() {
        let Some(seconds) = parsed.hold_seconds else {
            return SyncAnswer::Empty { hold_seconds: None };
        };
        return match wait::watched_folders(&context, &parsed).await {
            Ok(folders) if folders.is_empty() => SyncAnswer::Empty { hold_seconds: Some(seconds) },
            Ok(folders) => SyncAnswer::Wait { folders, seconds },
            Err(Fatal(why)) => {
                context.log(Level::Error, &format!("Sync wait failed: {why}"));
                SyncAnswer::Unavailable
            }
        };
    }
    SyncAnswer::Document(Document::new(render::sync_document(collections)))
}

/// The request to run: the body parsed, or the cached request for an empty body, merged with
/// the cache for Partial (or collection-less) requests. A non-empty request becomes the cache.
async fn read_request<C: Capabilities>(
    context: &Context<'_, C>,
    body: &[u8],
) -> Result<SyncRequest, SyncAnswer> {
    let global =
        |status: GlobalStatus| SyncAnswer::Document(Document::new(render::global_status(status)));
    let no_cache = GlobalStatus { status: status::NO_CACHED_REQUEST, limit: None };
    // The cached request as stored, for the requests that cannot run without it.
    let stored_cache = || async {
        context.caps.state_get(&context.scope, request::CACHE_KEY).await.map_err(|error| {
            context.log(Level::Error, &format!("reading the cached Sync request: {error}"));
            SyncAnswer::Unavailable
        })
    };
    if body.is_empty() {
        let stored = stored_cache().await?;
        return stored.as_deref().and_then(request::decode_cache).ok_or_else(|| global(no_cache));
    }
    let document = eas_wbxml::decode(body, &Limits::default()).map_err(|error| {
        context.log(Level::Info, &format!("Sync body is not WBXML: {error}"));
        SyncAnswer::NotWbxml
    })?;
    let settings = context.caps.settings();
    let heartbeat = settings.heartbeat_min_seconds..=settings.heartbeat_max_seconds;
    let mut parsed = request::parse(&document.root, heartbeat).map_err(|status| {
        context.log(Level::Info, &format!("Sync refused with status {}", status.status));
        global(status)
    })?;
    let stored = if parsed.partial || parsed.collections.is_empty() {
        let stored = stored_cache().await?;
        let Some(previous) = stored.as_deref().and_then(request::decode_cache) else {
            return Err(global(no_cache));
        };
        parsed = request::merge_partial(parsed, previous);
        stored
    } else {
        // unreadable, it is simply written again
        context.caps.state_get(&context.scope, request::CACHE_KEY).await.ok().flatten()
    };
    let cache = request::encode_cache(&parsed);
    // A phone paging through a folder sends the same request again and again: comparing with
    // the cache costs less than writing it (a commit) each time.
    if stored.as_ref() == Some(&cache) {
        return Ok(parsed);
    }
    if let Err(error) = context.caps.state_put(&context.scope, request::CACHE_KEY, cache).await {
        context.log(Level::Warn, &format!("caching the Sync request: {error}"));
    }
    Ok(parsed)
}
