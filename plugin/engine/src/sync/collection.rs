//! One collection of a Sync request: key check, replay, the mailbox round trips, the batch,
//! and the compare-and-swap that makes the new key count.

use super::batch;
use super::client::Writer;
use super::draft_alias;
use super::held::{UidList, without_sorted};
use super::items::{self, ItemContext};
use super::key::{ClientKey, SyncKey};
use super::limits::COLLECTION_BYTES;
use super::reconcile::{self, Reconciled, Window};
use super::render;
use super::request::{ClientCommand, CollectionRequest, status};
use super::state::{
    self, CollectionState, Fingerprint, ReplayRef, WindowCheck, replay_key, state_key,
};
use super::uidset::UidSet;
use super::{Context, Fatal};
use crate::capabilities::{Capabilities, Level, StateWrite};
use crate::folders::{self, FolderEntry, FolderMapError};
use crate::mailbox::{Changes, MailboxError};
use eas_wbxml::tags::air_sync;
use eas_wbxml::{Element, Limits};

/// What is left of the request's window and byte budget.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub commands: usize,
    pub bytes: usize,
}

/// The answer for one collection; `None` when it has nothing to report (omitted).
pub type Outcome = Result<Option<Element>, Fatal>;

/// The folder behind a collection id, or the status to answer.
pub enum Folder {
    Found(FolderEntry),
    Unknown,
}

pub async fn resolve<C: Capabilities>(caps: &C, collection_id: &str) -> Result<Folder, Fatal> {
    match folders::resolve(caps, collection_id).await {
        Ok(Some(entry)) if entry.selectable => Ok(Folder::Found(entry)),
        Ok(_) => Ok(Folder::Unknown),
        Err(FolderMapError::Mailbox(MailboxError::NoSuchFolder(_))) => Ok(Folder::Unknown),
        Err(error) => Err(Fatal(format!("folder map: {error}"))),
    }
}

pub async fn sync_collection<C: Capabilities>(
    context: &Context<'_, C>,
    request: &CollectionRequest,
    budget: &mut Budget,
) -> Outcome {
    let mut outcome = answer_collection(context, request, budget).await?;
    // 12.x clients name the class in the Collection; the answer names it too, first.
    if request.class_given
        && let Some(element) = outcome.as_mut()
        && element.child(air_sync::CLASS).is_none()
    {
        element.child_elements_mut().insert(0, Element::with_text(air_sync::CLASS, "Email"));
    }
    Ok(outcome)
}

async fn answer_collection<C: Capabilities>(
    context: &Context<'_, C>,
    request: &CollectionRequest,
    budget: &mut Budget,
) -> Outcome {
    let id = request.collection_id.as_str();
    let echo = request.sync_key.as_deref().unwrap_or("0");
    let answer = |code: u8| Ok(Some(render::collection_status(echo, id, code)));
    let folder = match resolve(context.caps, id).await? {
        Folder::Found(entry) => entry,
        Folder::Unknown => {
            context.log(Level::Info, &format!("Sync of unknown collection {id}: status 12"));
            return answer(status::HIERARCHY_CHANGED);
        }
    };
    if let Some(problem) = request.invalid {
        context.log(Level::Info, &format!("Sync of collection {id} refused: {problem}"));
        return answer(status::PROTOCOL_ERROR);
    }
    let raw = context.state_get(&state_key(id)).await?;
    let stored = raw.as_deref().and_then(CollectionState::decode);
    let key_text = match (&request.sync_key, &stored) {
        (Some(key), _) => key.clone(),
        (None, Some(state)) => state.current_key().to_string(),
        // A cached collection that was never synced: nothing to say about it.
        (None, None) => return Ok(None),
    };
    match ClientKey::parse(&key_text) {
        // GetChanges asked for with SyncKey 0 is a protocol error (MS-ASCMD §2.2.3.84: key 0
        // has nothing to send yet). Exchange answers it with Status 4, which is why AOSP's
        // Exchange client leaves GetChanges out for key 0 ("EAS doesn't like GetChanges if
        // the syncKey is 0"); phones that follow Exchange never hit this. Absent or
        // GetChanges 0 is the normal bootstrap. The relationship is left as it was.
        ClientKey::Initial if request.get_changes == Some(true) => {
            context.log(Level::Info, &format!("collection {id}: GetChanges with SyncKey 0"));
            answer(status::PROTOCOL_ERROR)
        }
        ClientKey::Initial => bootstrap(context, request, &folder, raw).await,
        ClientKey::Malformed => invalid_key(context, id, &key_text),
        ClientKey::Issued(key) => {
            let Some(state) = stored else { return invalid_key(context, id, &key_text) };
            let current = state.current_key();
            if key == current {
                let mut session = Session { context, request, folder: &folder, budget };
                session.run(state, raw).await
            } else if key.generation == current.generation
                && let Some(replay) = state.replay.filter(|r| r.counter == key.counter)
            {
                replay_answer(context, request, &folder, &state, replay, budget).await
            } else {
                invalid_key(context, id, &key_text)
            }
        }
    }
}

/// Status 3: the client starts the collection over with SyncKey 0 (MS-ASCMD §2.2.3.177.17).
fn invalid_key<C: Capabilities>(context: &Context<'_, C>, id: &str, key: &str) -> Outcome {
    context.log(Level::Info, &format!("collection {id}: unknown SyncKey {key:?}: status 3"));
    Ok(Some(render::collection_status("0", id, status::INVALID_SYNC_KEY)))
}

/// SyncKey 0: a new relationship with a new random generation, and no items yet
/// (MS-ASCMD §2.2.1.21: the folder is listed at the next Sync).
async fn bootstrap<C: Capabilities>(
    context: &Context<'_, C>,
    request: &CollectionRequest,
    folder: &FolderEntry,
    raw: Option<Vec<u8>>,
) -> Outcome {
    let id = request.collection_id.as_str();
    let generation = context.caps.random_u64().ok_or_else(|| Fatal("no randomness".into()))?;
    let key = SyncKey { generation, counter: 1 };
    let state = CollectionState::new(key, request.options.clone().unwrap_or_default());
    if !context.swap(&state_key(id), raw, state.encode()).await? {
        return Ok(Some(render::collection_status("0", id, status::RETRY)));
    }
    context.log(
        Level::Info,
        &format!("collection {id} ({}) starts over with key {key}", folder.imap_name),
    );
    Ok(Some(render::collection(&key.to_string(), id, false, Vec::new(), Vec::new())))
}

/// The previous key again: the answer that was lost, as it was (MS-ASCMD §3.1.5.9). Fetch
/// results are not stored; they are fetched again.
async fn replay_answer<C: Capabilities>(
    context: &Context<'_, C>,
    request: &CollectionRequest,
    folder: &FolderEntry,
    state: &CollectionState,
    replay: ReplayRef,
    budget: &mut Budget,
) -> Outcome {
    let id = request.collection_id.as_str();
    let blob = context.state_get(&replay_key(id, replay.counter)).await?;
    let element = blob
        .as_deref()
        .and_then(|bytes| state::decode_replay(bytes, replay.nonce))
        .and_then(|bytes| eas_wbxml::decode(bytes, &Limits::default()).ok())
        .map(|document| document.root)
        .filter(|root| root.tag == air_sync::COLLECTION);
    let Some(mut element) = element else {
        context.log(Level::Warn, &format!("collection {id}: the answer to retry is lost"));
        return invalid_key(context, id, "previous");
    };
    let sent = element.child(air_sync::COMMANDS).map_or(0, |c| c.child_elements().len());
    budget.commands = budget.commands.saturating_sub(sent);
    let items = item_context(context, folder, id, state);
    let fetches = fetch_commands(&items, request).await;
    render::attach_fetches(&mut element, fetches);
    context
        .log(Level::Info, &format!("collection {id}: retry of the previous key, answer replayed"));
    Ok(Some(element))
}

fn item_context<'a, C>(
    context: &Context<'a, C>,
    folder: &'a FolderEntry,
    id: &'a str,
    state: &'a CollectionState,
) -> ItemContext<'a, C> {
    ItemContext {
        caps: context.caps,
        imap_name: &folder.imap_name,
        collection_id: id,
        version: context.version,
        options: &state.options,
        window_start: state.options.window_start(context.now_secs),
    }
}

async fn fetch_commands<C: Capabilities>(
    items: &ItemContext<'_, C>,
    request: &CollectionRequest,
) -> Vec<Element> {
    let mut fetches = Vec::new();
    for command in &request.commands {
        if let ClientCommand::Fetch { server_id } = command {
            fetches.push(items::fetch_command(items, server_id).await);
        }
    }
    fetches
}

/// The mailbox's changes for a collection, reconciled with its state.
pub struct Reconciliation {
    pub changes: Changes,
    pub reconciled: Reconciled,
    pub window_start: Option<i64>,
}

/// Why the mailbox could not be asked.
pub enum ReconcileError {
    /// UIDVALIDITY changed: everything the device holds is void.
    FolderRecreated,
    Mailbox(MailboxError),
}

/// One `changes` call (and `uids_since` when a date window needs it), reconciled.
pub async fn reconcile_with_mailbox<C: Capabilities>(
    caps: &C,
    imap_name: &str,
    state: &CollectionState,
    now_secs: i64,
) -> Result<Reconciliation, ReconcileError> {
    let changes =
        caps.changes(imap_name, state.sync_point()).await.map_err(ReconcileError::Mailbox)?;
    if changes.uid_validity_changed || (state.primed && changes.uid_validity != state.uid_validity)
    {
        return Err(ReconcileError::FolderRecreated);
    }
    let window_start = state.options.window_start(now_secs);
    let start_day = window_start.map(|start| start.div_euclid(86_400));
    let window_due = start_day.is_some() && state.window.map(|w| w.start_day) != start_day;
    let uids = match window_start {
        Some(start) if reconcile::needs_window(state, &changes, true, window_due) => {
            Some(UidSet::from_ranges(
                &caps.uids_since(imap_name, start).await.map_err(ReconcileError::Mailbox)?,
            ))
        }
        _ => None,
    };
    let full_check = window_due || !state.primed || state.relist;
    let window = uids.as_ref().map(|uids| Window { uids, full_check });
    let reconciled = reconcile::reconcile(state, &changes, window, window_start.is_some());
    Ok(Reconciliation { changes, reconciled, window_start })
}

/// A Sync with the current key.
struct Session<'s, 'a, C> {
    context: &'s Context<'a, C>,
    request: &'s CollectionRequest,
    folder: &'s FolderEntry,
    budget: &'s mut Budget,
}

impl<C: Capabilities> Session<'_, '_, C> {
    async fn run(&mut self, mut state: CollectionState, raw: Option<Vec<u8>>) -> Outcome {
        let id = self.request.collection_id.as_str();
        let before = state.clone();
        if let Some(options) = &self.request.options {
            apply_options(&mut state, options.clone(), self.context.now_secs);
        }
        let writer = Writer { context: self.context, folder: self.folder, request: self.request };
        let responses = match writer.apply(&mut state).await {
            Ok(responses) => responses,
            Err(error) => return self.mailbox_failure(error),
        };
        let mut commands = Vec::new();
        let mut more = false;
        let get_changes = self.request.get_changes.unwrap_or(true);
        if get_changes && self.budget.commands > 0 && self.budget.bytes > 0 {
            match self.server_changes(&mut state).await {
                Ok((sent, more_available)) => {
                    commands = sent;
                    more = more_available;
                    self.rename_drafts(&state, &mut commands).await;
                }
                Err(ReconcileError::FolderRecreated) => {
                    self.context.log(
                        Level::Warn,
                        &format!("collection {id}: UIDVALIDITY changed, the device resyncs"),
                    );
                    return Ok(Some(render::collection_status("0", id, status::INVALID_SYNC_KEY)));
                }
                Err(ReconcileError::Mailbox(error)) => return self.mailbox_failure(error),
            }
        }
        let fetches = {
            let items = item_context(self.context, self.folder, id, &state);
            fetch_commands(&items, self.request).await
        };

        // Client changes always get a new key (even with nothing to say about them): a
        // client that lost this answer retries with the old key and gets it replayed rather
        // than its changes applied twice.
        let wrote = self.request.commands.iter().any(|c| !matches!(c, ClientCommand::Fetch { .. }));
        if commands.is_empty() && responses.is_empty() && fetches.is_empty() && !more && !wrote {
            // Nothing to report: the key stays, but what was learnt (options, the folder's
            // counters for Ping) is kept. Losing this write to a concurrent request is harmless.
            if state != before {
                self.context.swap(&state_key(id), raw, state.encode()).await?;
            }
            return Ok(None);
        }

        let old_key = state.current_key();
        let new_key = old_key.next();
        let nonce = self.context.caps.random_u64().unwrap_or_else(|| self.context.caps.now_ms());
        state.key = new_key.into();
        state.replay = Some(ReplayRef { counter: old_key.counter, nonce });
        let mut element = render::collection(&new_key.to_string(), id, more, commands, responses);
        // The answer is stored with the new key, in one transaction: a client that never saw
        // this answer (the gateway killed, or Envoy's callout lost the reply to a commit that
        // happened) finds it for its retry, and a request that loses the race for the key
        // leaves the winner's stored answer alone (a key without its answer costs a full
        // resync).
        let replay = match eas_wbxml::encode_root(&element) {
            Ok(bytes) => Some(StateWrite {
                key: replay_key(id, old_key.counter),
                value: Some(state::encode_replay(nonce, &bytes)),
            }),
            Err(error) => {
                state.replay = None;
                self.context.log(
                    Level::Error,
                    &format!("collection {id}: the answer does not encode: {error}"),
                );
                None
            }
        };
        if !self.context.swap_with(&state_key(id), raw, state.encode(), replay).await? {
            self.context.log(
                Level::Info,
                &format!("collection {id}: a concurrent Sync advanced the key; asking to retry"),
            );
            return Ok(Some(render::collection_status(&old_key.to_string(), id, status::RETRY)));
        }
        render::attach_fetches(&mut element, fetches);
        Ok(Some(element))
    }

    /// Server changes of edited drafts go out under the ids the device knows
    /// (`draft_alias`).
    async fn rename_drafts(&self, state: &CollectionState, commands: &mut [Element]) {
        if self.folder.folder_type != folders::FolderType::Drafts || commands.is_empty() {
            return;
        }
        let (caps, scope, id) =
            (self.context.caps, &self.context.scope, self.request.collection_id.as_str());
        let generation = state.key.generation;
        if let Err(error) =
            draft_alias::rename_server_changes(caps, scope, id, generation, &state.held, commands)
                .await
        {
            self.context.log(Level::Warn, &format!("collection {id}: draft ids: {error}"));
        }
    }

    /// Reconciles with the mailbox, renders a batch and applies it to `state`. Returns the
    /// commands and whether more remain.
    async fn server_changes(
        &mut self,
        state: &mut CollectionState,
    ) -> Result<(Vec<Element>, bool), ReconcileError> {
        let id = self.request.collection_id.as_str();
        let Reconciliation { changes, reconciled, window_start } = reconcile_with_mailbox(
            self.context.caps,
            &self.folder.imap_name,
            state,
            self.context.now_secs,
        )
        .await?;
        if reconciled.dropped_over_limit > 0 {
            self.context.log(
                Level::Warn,
                &format!(
                    "collection {id}: {} older messages not synced (over the tracking limit)",
                    reconciled.dropped_over_limit
                ),
            );
        }
        let plan = batch::plan(&reconciled, self.request.window().min(self.budget.commands));
        let mut commands = Vec::with_capacity(plan.len());
        let mut bytes = 0usize;
        let mut now_held: Vec<(u32, u32)> = Vec::new();
        let fetched = {
            let items = item_context(self.context, self.folder, id, state);
            for &uid in &plan.deletes {
                commands.push(render::delete(render::server_id(id, uid)));
            }
            for &uid in &plan.soft_deletes {
                commands.push(render::soft_delete(render::server_id(id, uid)));
            }
            for (uid, flags) in &plan.changes {
                let change = items::flag_change(&items, *uid, flags);
                bytes += render::approximate_size(&change.element);
                now_held.push((change.uid, change.hash));
                commands.push(change.element);
            }
            let byte_budget = COLLECTION_BYTES.min(self.budget.bytes).saturating_sub(bytes);
            items::fetch_batch(&items, &plan.adds, &plan.resend, &plan.next_adds, byte_budget)
                .await
                .map_err(ReconcileError::Mailbox)?
        };
        bytes += fetched.bytes;
        let mut added = 0usize;
        for rendered in fetched.resends.into_iter().chain(fetched.adds) {
            added += 1;
            now_held.push((rendered.uid, rendered.hash));
            commands.push(rendered.element);
        }

        // What the device holds once it applies this batch.
        state.held.remove_all(&plan.deletes);
        state.held.remove_all(&plan.soft_deletes);
        state.held.set_all(now_held);
        let mut consumed: Vec<u32> =
            plan.adds.iter().copied().filter(|uid| !fetched.unsent.contains(uid)).collect();
        consumed.sort_unstable();
        state.pending = UidList(without_sorted(reconciled.pending, &consumed));
        state.resend = UidList(
            reconciled.resend.into_iter().filter(|uid| !plan.resend.contains(uid)).collect(),
        );
        state.deferred = plan.deferred;
        state.uid_validity = changes.uid_validity;
        if !plan.deferred {
            state.highest_modseq = changes.highest_modseq;
        }
        state.uid_next_seen = changes.uid_next;
        state.primed = true;
        state.relist = false;
        let start_day = window_start.map(|start| start.div_euclid(86_400));
        if start_day.is_none() {
            state.window = None;
        } else if reconciled.window_checked
            && plan.soft_deletes.len() == reconciled.soft_deletes.len()
        {
            state.window = start_day.map(|start_day| WindowCheck { start_day });
        }
        state.fingerprint = Some(Fingerprint::of_changes(&changes));
        let more = !state.pending.0.is_empty() || state.deferred || !state.resend.0.is_empty();

        self.budget.commands = self.budget.commands.saturating_sub(commands.len());
        self.budget.bytes = self.budget.bytes.saturating_sub(bytes);
        self.context.log(
            Level::Debug,
            &format!(
                "collection {id}: {} deletes, {} soft deletes, {} changes, {added} adds/resends \
                 ({} KiB), {} pending{}",
                plan.deletes.len(),
                plan.soft_deletes.len(),
                plan.changes.len(),
                bytes / 1024,
                state.pending.0.len(),
                if more { ", more available" } else { "" }
            ),
        );
        Ok((commands, more))
    }

    fn mailbox_failure(&self, error: MailboxError) -> Outcome {
        let id = self.request.collection_id.as_str();
        let echo = self.request.sync_key.as_deref().unwrap_or("0");
        match error {
            MailboxError::NoSuchFolder(_) => {
                self.context.log(Level::Info, &format!("collection {id}: folder gone: status 12"));
                Ok(Some(render::collection_status(echo, id, status::HIERARCHY_CHANGED)))
            }
            MailboxError::TooLarge(_) | MailboxError::Refused(_) => {
                self.context.log(Level::Warn, &format!("collection {id}: {error}: status 5"));
                Ok(Some(render::collection_status(echo, id, status::SERVER_ERROR)))
            }
            MailboxError::Unavailable(_) | MailboxError::Unauthenticated => {
                Err(Fatal(format!("collection {id}: {error}")))
            }
        }
    }
}

/// New Options replace the stored ones. A changed date window is checked again at once; a
/// window removed altogether needs a full listing (the device lacks the older mail).
pub fn apply_options(
    state: &mut CollectionState,
    options: super::options::CollectionOptions,
    now_secs: i64,
) {
    if options == state.options {
        return;
    }
    if options.filter_type != state.options.filter_type {
        let had_window = state.options.window_start(now_secs).is_some();
        if had_window && options.window_start(now_secs).is_none() {
            state.relist = true;
        }
        state.window = None;
    }
    state.options = options;
}
