//! The client's own Add, Change and Delete in a Sync collection (MS-ASCMD §2.2.3.7.2,
//! §2.2.3.24.2, §2.2.3.42.2; EAS-NOTES §4.4), written to the mailbox.
//!
//! * **Change** of mail: Read, Flag and Categories (`change.rs` has the flag mapping), one
//!   STORE per distinct edit. If the item also changed on the server since the device last
//!   got it (its flags no longer hash to what the device holds), the collection's Conflict
//!   option decides: absent or 1, the server wins (item Status 7 and the server's version is
//!   sent); 0, the client's change is applied.
//! * **Delete**: moved to the Deleted Items folder, or expunged when DeletesAsMoves is 0, in
//!   Deleted Items itself, or when the account has no Deleted Items folder. A Delete always
//!   wins over changes on the server.
//! * **Drafts** (16.0+, the Drafts collection only): an Add stores a new IMAP draft (`\Draft`)
//!   and answers its ServerId (and the FileReferences of its attachments). A Change replaces
//!   the draft: IMAP cannot rewrite a message, so the new version is appended and the old one
//!   expunged; the device keeps its ServerId, which now stands for the new UID
//!   (`draft_alias`). `Send` submits the draft through `compose::submit_draft` (a copy goes
//!   to Sent), claimed in the resend ledger like a SendMail so that a retried Sync never
//!   sends it twice, and removes it from Drafts.
//! * Any other Add is refused with Status 6.
//!
//! Afterwards the collection state says what the device now holds (new flag hashes, deleted
//! UIDs gone, new drafts known), so none of this comes back to the device as a server change.
//! Successful Changes and Deletes get no Responses entry; failures and every Add do.

use super::change::{self, FlagEdit, FlagPlan};
use super::draft::{self, Draft, DraftEdit, Envelope};
use super::draft_alias::Aliases;
use super::held::{UidList, flags_hash, is_deleted};
use super::render;
use super::request::{ClientCommand, CollectionRequest, status};
use super::state::CollectionState;
use super::{Context, held::STALE_HASH};
use crate::ashttp::ProtocolVersion;
use crate::capabilities::{Capabilities, Level};
use crate::compose::dedupe::{self, Claim, SubmissionKey};
use crate::compose::{self, SendError};
use crate::email::{self, MessageSummary};
use crate::folders::{self, FolderEntry, FolderType};
use crate::mailbox::{MailboxError, SearchQuery};
use eas_wbxml::Element;
use eas_wbxml::tags::air_sync;
use std::collections::BTreeMap;

/// A draft is fetched whole to be changed; larger ones are refused (item Status 6).
const MAX_DRAFT_BYTES: u32 = 32 << 20;

/// The flags a draft is stored with.
const DRAFT_FLAGS: [&str; 2] = ["\\Draft", "\\Seen"];

/// What stops the client's commands altogether: the collection's folder is gone (Sync
/// Status 12) or the mailbox is down (a retryable server error).
pub type Stop = MailboxError;

pub struct Writer<'s, 'a, C> {
    pub context: &'s Context<'a, C>,
    pub folder: &'s FolderEntry,
    pub request: &'s CollectionRequest,
}

/// One Change of flags, checked and planned.
struct FlagChange<'r> {
    index: usize,
    server_id: &'r str,
    uid: u32,
    current: Vec<String>,
    plan: FlagPlan,
}

impl<C: Capabilities> Writer<'_, '_, C> {
    fn id(&self) -> &str {
        &self.request.collection_id
    }

    fn imap(&self) -> &str {
        &self.folder.imap_name
    }

    fn log(&self, level: Level, message: &str) {
        self.context.log(level, &format!("collection {}: {message}", self.id()));
    }

    /// Whether Add and draft Changes are allowed: the Drafts collection in 16.0+.
    fn drafts(&self) -> bool {
        self.folder.folder_type == FolderType::Drafts
            && self.context.version >= ProtocolVersion::V16_0
    }

    /// The collection's draft aliases (only Drafts has any).
    async fn aliases(&self, state: &CollectionState) -> Aliases {
        let generation = state.key.generation;
        if !self.drafts() {
            return Aliases::new(generation);
        }
        let caps = self.context.caps;
        match Aliases::load(caps, &self.context.scope, self.id(), generation).await {
            Ok(aliases) => aliases,
            Err(error) => {
                self.log(Level::Warn, &format!("reading draft ids: {error}"));
                Aliases::new(generation)
            }
        }
    }

    /// A failure of our own folder (or the connection) stops everything; others are the
    /// item's.
    fn stop_or(&self, error: MailboxError, item_status: u8) -> Result<u8, Stop> {
        match error {
            MailboxError::NoSuchFolder(_)
            | MailboxError::Unavailable(_)
            | MailboxError::Unauthenticated => Err(error),
            MailboxError::TooLarge(_) | MailboxError::Refused(_) => {
                self.log(Level::Warn, &format!("{error}"));
                Ok(item_status)
            }
        }
    }

    /// Applies the request's Add, Change and Delete commands to the mailbox and to `state`;
    /// returns the Responses entries, in the order of the commands.
    pub async fn apply(&self, state: &mut CollectionState) -> Result<Vec<Element>, Stop> {
        let commands = &self.request.commands;
        let mut answers: Vec<Option<Element>> = vec![None; commands.len()];
        let mut aliases = self.aliases(state).await;
        // The device's id of an edited draft stands for its current UID (`draft_alias`). If
        // the state that learnt the new UID was lost to a concurrent Sync, the device's own
        // UID is still the one held.
        let held = |server_id: &str| {
            let device = render::uid_of(self.id(), server_id)?;
            let imap = aliases.imap_uid(device);
            (state.held.contains(imap) || state.held.contains(device)).then_some(imap)
        };
        let mut deletes: Vec<(usize, &str, u32)> = Vec::new();
        let mut flag_edits: Vec<(usize, &str, u32, FlagEdit)> = Vec::new();
        let mut draft_edits: Vec<(usize, &str, u32, &Element)> = Vec::new();
        let mut draft_adds: Vec<(usize, &str, &Element)> = Vec::new();
        for (index, command) in commands.iter().enumerate() {
            match command {
                ClientCommand::Add { client_id, data } => match data {
                    Some(data) if self.drafts() => draft_adds.push((index, client_id, data)),
                    _ => {
                        answers[index] =
                            Some(render::add_response(client_id, status::CONVERSION_ERROR));
                    }
                },
                ClientCommand::Change { server_id, data } => {
                    let Some(uid) = held(server_id) else {
                        answers[index] = Some(not_found(air_sync::CHANGE, server_id));
                        continue;
                    };
                    let Some(data) = data else { continue };
                    if self.drafts() && draft::is_draft_edit(data) {
                        draft_edits.push((index, server_id, uid, data));
                        continue;
                    }
                    match FlagEdit::parse(data) {
                        Some(edit) if edit.is_empty() => {}
                        Some(edit) => match flag_edits.iter_mut().find(|e| e.2 == uid) {
                            // Two Changes of one item: one edit, the later values winning.
                            Some(earlier) => {
                                earlier.0 = index;
                                earlier.3 = earlier.3.clone().then(edit);
                            }
                            None => flag_edits.push((index, server_id, uid, edit)),
                        },
                        None => {
                            answers[index] = Some(render::item_response(
                                air_sync::CHANGE,
                                server_id,
                                status::CONVERSION_ERROR,
                            ));
                        }
                    }
                }
                ClientCommand::Delete { server_id } => match held(server_id) {
                    Some(uid) => deletes.push((index, server_id, uid)),
                    None => answers[index] = Some(not_found(air_sync::DELETE, server_id)),
                },
                ClientCommand::Fetch { .. } => {}
            }
        }
        // A Delete wins over a Change of the same item in the same request.
        flag_edits.retain(|edit| !deletes.iter().any(|delete| delete.2 == edit.2));
        draft_edits.retain(|edit| !deletes.iter().any(|delete| delete.2 == edit.2));

        self.change_flags(flag_edits, state, &mut answers).await?;
        self.delete(&deletes, state, &mut answers).await?;
        for (index, server_id, uid, data) in draft_edits {
            answers[index] = self.change_draft(server_id, uid, data, state, &mut aliases).await?;
        }
        for (index, client_id, data) in draft_adds {
            answers[index] = Some(self.add_draft(client_id, data, state).await?);
        }
        if self.drafts() {
            aliases.retain_held(&state.held);
            let caps = self.context.caps;
            if let Err(error) = aliases.save(caps, &self.context.scope, self.id()).await {
                // The device's ids of edited drafts stop working: it gets them again.
                self.log(Level::Warn, &format!("saving draft ids: {error}"));
            }
        }
        let answered = answers.iter().flatten().count();
        if !commands.is_empty() {
            self.log(
                Level::Debug,
                &format!("{} client commands, {answered} with a Responses entry", commands.len()),
            );
        }
        Ok(answers.into_iter().flatten().collect())
    }

    async fn change_flags(
        &self,
        edits: Vec<(usize, &str, u32, FlagEdit)>,
        state: &mut CollectionState,
        answers: &mut [Option<Element>],
    ) -> Result<(), Stop> {
        if edits.is_empty() {
            return Ok(());
        }
        let mut uids: Vec<u32> = edits.iter().map(|edit| edit.2).collect();
        uids.sort_unstable();
        uids.dedup();
        let caps = self.context.caps;
        let summaries = caps.fetch_summaries(self.imap(), &uids, 0, None).await?;
        let current_flags = |uid: u32| {
            summaries.iter().find(|s| s.uid == uid && !is_deleted(&s.flags)).map(|s| &s.flags)
        };
        let client_wins = state.options.client_wins();
        let mut planned: Vec<FlagChange<'_>> = Vec::new();
        for (index, server_id, uid, edit) in edits {
            let Some(current) = current_flags(uid) else {
                // Gone on the server: the device gets its Delete.
                answers[index] = Some(not_found(air_sync::CHANGE, server_id));
                continue;
            };
            let held = state.held.get(uid).unwrap_or(STALE_HASH);
            let changed_on_server = held != STALE_HASH && held != flags_hash(current);
            if changed_on_server && !client_wins {
                answers[index] =
                    Some(render::item_response(air_sync::CHANGE, server_id, status::CONFLICT));
                insert_sorted(&mut state.resend, uid);
                continue;
            }
            let current = current.clone();
            let plan = change::plan(&current, &edit);
            planned.push(FlagChange { index, server_id, uid, current, plan });
        }

        // One STORE per distinct plan (marking fifty messages read is one command).
        let mut groups: BTreeMap<(Vec<String>, Vec<String>), Vec<usize>> = BTreeMap::new();
        for (position, change) in planned.iter().enumerate() {
            if !change.plan.is_empty() {
                groups
                    .entry((change.plan.add.clone(), change.plan.remove.clone()))
                    .or_default()
                    .push(position);
            }
        }
        let mut failed: Vec<(usize, u8)> = Vec::new();
        let mut reduced: Vec<usize> = Vec::new();
        for ((add, remove), members) in groups {
            let group_uids: Vec<u32> = members.iter().map(|&p| planned[p].uid).collect();
            let outcome = caps.store_flags(self.imap(), &group_uids, &add, &remove).await;
            let Err(error) = outcome else { continue };
            let optional = members.iter().any(|&p| !planned[p].plan.optional.is_empty());
            if optional && matches!(error, MailboxError::Refused(_)) {
                // No room for more keywords: keep the flag's status without its dates.
                self.log(Level::Info, &format!("flag dates refused ({error}); storing without"));
                let retry = planned[members[0]].plan.without_optional();
                match caps.store_flags(self.imap(), &group_uids, &retry.add, &retry.remove).await {
                    Ok(()) => {
                        reduced.extend(&members);
                        continue;
                    }
                    Err(error) => {
                        let code = self.stop_or(error, status::CONVERSION_ERROR)?;
                        failed.extend(members.iter().map(|&p| (p, code)));
                        continue;
                    }
                }
            }
            let code = self.stop_or(error, status::CONVERSION_ERROR)?;
            failed.extend(members.iter().map(|&p| (p, code)));
        }

        let mut now_held: Vec<(u32, u32)> = Vec::new();
        for (position, change) in planned.iter().enumerate() {
            if let Some(&(_, code)) = failed.iter().find(|(p, _)| *p == position) {
                answers[change.index] =
                    Some(render::item_response(air_sync::CHANGE, change.server_id, code));
                // The device shows what it asked for; the server's flags go back to it.
                insert_sorted(&mut state.resend, change.uid);
                continue;
            }
            let plan = if reduced.contains(&position) {
                change.plan.without_optional()
            } else {
                change.plan.clone()
            };
            now_held.push((change.uid, flags_hash(&plan.apply(&change.current))));
        }
        let mut settled: Vec<u32> = now_held.iter().map(|&(uid, _)| uid).collect();
        settled.sort_unstable();
        state.resend.0.retain(|uid| settled.binary_search(uid).is_err());
        state.held.set_all(now_held);
        Ok(())
    }

    /// The account's Deleted Items folder, unless deletes are permanent here.
    async fn trash(&self) -> Option<FolderEntry> {
        let deletes_as_moves = self.request.deletes_as_moves.unwrap_or(true);
        if !deletes_as_moves || self.folder.folder_type == FolderType::DeletedItems {
            return None;
        }
        let map = match folders::stored(self.context.caps).await {
            Ok(map) => map,
            Err(error) => {
                self.log(Level::Warn, &format!("no folder map for Deleted Items: {error}"));
                return None;
            }
        };
        let trash = map
            .entries()
            .iter()
            .find(|entry| entry.folder_type == FolderType::DeletedItems && entry.selectable)
            .filter(|entry| entry.imap_name != self.folder.imap_name)
            .cloned();
        if trash.is_none() {
            self.log(Level::Info, "the account has no Deleted Items folder: deletes are final");
        }
        trash
    }

    async fn delete(
        &self,
        deletes: &[(usize, &str, u32)],
        state: &mut CollectionState,
        answers: &mut [Option<Element>],
    ) -> Result<(), Stop> {
        if deletes.is_empty() {
            return Ok(());
        }
        let caps = self.context.caps;
        let mut uids: Vec<u32> = deletes.iter().map(|d| d.2).collect();
        uids.sort_unstable();
        uids.dedup();
        let outcome = match self.trash().await {
            Some(trash) => match caps.move_messages(self.imap(), &uids, &trash.imap_name).await {
                Err(MailboxError::NoSuchFolder(name)) if name == trash.imap_name => {
                    // Deleted Items went away: the map learns it, the delete is final.
                    self.log(Level::Warn, "Deleted Items is gone; deleting for good");
                    if let Err(error) = folders::refresh(caps).await {
                        self.log(Level::Warn, &format!("refreshing the folder map: {error}"));
                    }
                    caps.expunge(self.imap(), &uids).await
                }
                other => other.map(|_| ()),
            },
            None => caps.expunge(self.imap(), &uids).await,
        };
        if let Err(error) = outcome {
            let code = self.stop_or(error, status::SERVER_ERROR)?;
            for &(index, server_id, _) in deletes {
                answers[index] = Some(render::item_response(air_sync::DELETE, server_id, code));
            }
            return Ok(());
        }
        forget(state, &uids);
        Ok(())
    }

    /// Unique ids and boundaries for a new message.
    fn envelope(&self) -> Envelope {
        let caps = self.context.caps;
        let seed = caps.random_u64().unwrap_or_else(|| caps.now_ms());
        let from = self.context.user.clone();
        let domain = from
            .as_deref()
            .and_then(|address| address.rsplit_once('@'))
            .map_or("eas-edge.invalid", |(_, domain)| domain)
            .to_owned();
        Envelope {
            message_id: format!("{seed:016x}.{}@{domain}", self.context.now_secs),
            date: self.context.now_secs,
            boundary_seed: caps.random_u64().unwrap_or(seed.rotate_left(17)),
            from,
        }
    }

    /// Appends a draft to this folder; its UID (found by Message-ID where the server does not
    /// say), `None` when it cannot be found.
    async fn append_draft(
        &self,
        mime: &[u8],
        flags: &[String],
        message_id: &str,
    ) -> Result<Option<u32>, MailboxError> {
        let caps = self.context.caps;
        let date = Some(self.context.now_secs);
        if let Some(uid) = caps.append(self.imap(), mime, flags, date).await? {
            return Ok(Some(uid));
        }
        let query = SearchQuery {
            header: Some(("Message-ID".to_owned(), message_id.to_owned())),
            ..SearchQuery::default()
        };
        Ok(caps.search(self.imap(), &query).await?.into_iter().max())
    }

    /// The Message-ID of a draft Add: the same for the same ClientId in one relationship
    /// (ClientIds are unique per device and collection until it starts over with SyncKey 0).
    /// A Change's new version gets one the same way, from the UID it replaces.
    fn draft_message_id(&self, client_id: &str, generation: u64) -> String {
        let user = self.context.user.as_deref().unwrap_or_default();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
        for part in [user, self.context.device, self.id(), client_id] {
            for byte in part.bytes().chain([0]) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let domain = user.rsplit_once('@').map_or("eas-edge.invalid", |(_, domain)| domain);
        format!("{hash:016x}.{generation:016x}.draft@{domain}")
    }

    /// The draft of this folder with `message_id`, if stored (and not being deleted).
    async fn find_draft(&self, message_id: &str) -> Result<Option<u32>, MailboxError> {
        let caps = self.context.caps;
        let query = SearchQuery {
            header: Some(("Message-ID".to_owned(), message_id.to_owned())),
            ..SearchQuery::default()
        };
        let Some(uid) = caps.search(self.imap(), &query).await?.into_iter().max() else {
            return Ok(None);
        };
        let summaries = caps.fetch_summaries(self.imap(), &[uid], 0, None).await?;
        Ok(summaries.iter().any(|s| s.uid == uid && !is_deleted(&s.flags)).then_some(uid))
    }

    async fn add_draft(
        &self,
        client_id: &str,
        data: &Element,
        state: &mut CollectionState,
    ) -> Result<Element, Stop> {
        let refused = |code| Ok(render::add_response(client_id, code));
        let Some(edit) = DraftEdit::parse(data) else {
            return refused(status::CONVERSION_ERROR);
        };
        let mut draft = Draft::default();
        draft.apply(&edit);
        let mut envelope = self.envelope();
        envelope.message_id = self.draft_message_id(client_id, state.key.generation);
        let mime = draft::build(&draft, &envelope);
        let flags: Vec<String> = DRAFT_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        // An Add whose answer was lost to a concurrent Sync (its state not saved) comes again
        // with the same key and ClientId: the draft it stored is found, not stored twice.
        let stored = match self.find_draft(&envelope.message_id).await {
            Ok(stored) => stored,
            Err(error) => return refused(self.stop_or(error, status::SERVER_ERROR)?),
        };
        if stored.is_some() {
            self.log(Level::Info, &format!("draft Add {client_id} retried: already stored"));
        }
        let appended = match stored {
            Some(uid) => Ok(Some(uid)),
            None => self.append_draft(&mime, &flags, &envelope.message_id).await,
        };
        let uid = match appended {
            Ok(Some(uid)) => uid,
            Ok(None) => {
                self.log(Level::Warn, "a new draft was stored but cannot be found");
                return refused(status::SERVER_ERROR);
            }
            Err(error) => return refused(self.stop_or(error, status::SERVER_ERROR)?),
        };
        let server_id = render::server_id(self.id(), uid);
        let references = attachment_references(&draft, &mime, &server_id);
        if edit.send {
            match self.submit(uid, &mime).await {
                DraftSend::Sent => {}
                // Kept in Drafts: the device gets it as a server Add and can try again.
                DraftSend::NotSent(why) => {
                    self.log(Level::Warn, &format!("sending draft {server_id} failed: {why}"));
                    return refused(status::CONVERSION_ERROR);
                }
                // Its retry (this Add again, or a Send of the draft) is not sent twice.
                DraftSend::MaybeSent(why) => {
                    self.log(Level::Warn, &format!("draft {server_id} may have been sent: {why}"));
                    return refused(status::SERVER_ERROR);
                }
            }
            // Sent: the device holds it until the Delete that follows its removal.
            state.held.set_all([(uid, flags_hash(&flags))]);
            self.remove_sent_draft(uid).await;
        } else {
            state.held.set_all([(uid, flags_hash(&flags))]);
        }
        self.log(
            Level::Info,
            &format!("draft {server_id} stored{}", if edit.send { " and sent" } else { "" }),
        );
        Ok(render::add_success(client_id, &server_id, &references))
    }

    async fn change_draft(
        &self,
        server_id: &str,
        uid: u32,
        data: &Element,
        state: &mut CollectionState,
        aliases: &mut Aliases,
    ) -> Result<Option<Element>, Stop> {
        let answer = |code| Ok(Some(render::item_response(air_sync::CHANGE, server_id, code)));
        let Some(edit) = DraftEdit::parse(data) else {
            return answer(status::CONVERSION_ERROR);
        };
        let caps = self.context.caps;
        let message = match caps.fetch_message(self.imap(), uid, MAX_DRAFT_BYTES).await {
            Ok(Some(message)) if !is_deleted(&message.flags) => message,
            Ok(_) => return answer(status::OBJECT_NOT_FOUND),
            Err(error) => return answer(self.stop_or(error, status::CONVERSION_ERROR)?),
        };
        let only_send = edit == DraftEdit { send: true, ..DraftEdit::default() };
        let mut envelope = self.envelope();
        // The same for a retry of this Sync: the version it stored, or the Sent copy of the
        // draft it sent, is found by it.
        envelope.message_id =
            self.draft_message_id(&format!("change of UID {uid}"), state.key.generation);
        let mime = if only_send {
            message.raw.clone()
        } else {
            let mut draft = Draft::from_message(&message.raw, message.internal_date, server_id);
            draft.apply(&edit);
            draft::build(&draft, &envelope)
        };
        if edit.send {
            match self.submit(uid, &mime).await {
                DraftSend::Sent => {
                    // The old ServerId stays held: the device gets its Delete.
                    self.remove_sent_draft(uid).await;
                    self.log(Level::Info, &format!("draft {server_id} sent"));
                    return Ok(None);
                }
                DraftSend::NotSent(why) => {
                    self.log(Level::Warn, &format!("sending draft {server_id} failed: {why}"));
                    if only_send {
                        return answer(status::CONVERSION_ERROR);
                    }
                    // The edit is still saved below; the Change reports the failed send.
                }
                // The draft is left as it is: saved under a new UID, the retry's Send would
                // be another message to the ledger, and go out a second time.
                DraftSend::MaybeSent(why) => {
                    self.log(Level::Warn, &format!("draft {server_id} may have been sent: {why}"));
                    return answer(status::SERVER_ERROR);
                }
            }
        }
        let mut flags = message.flags.clone();
        flags.retain(|f| !f.trim().eq_ignore_ascii_case("\\Recent"));
        if !flags.iter().any(|f| f.trim().eq_ignore_ascii_case("\\Draft")) {
            flags.push("\\Draft".to_owned());
        }
        // A retry of this Change (its answer lost, the old version not yet expunged) finds
        // the new version it stored, by its Message-ID, instead of storing a second one.
        let stored = match self.find_draft(&envelope.message_id).await {
            Ok(stored) => stored,
            Err(error) => return answer(self.stop_or(error, status::SERVER_ERROR)?),
        };
        let appended = match stored {
            Some(new_uid) => Ok(Some(new_uid)),
            None => self.append_draft(&mime, &flags, &envelope.message_id).await,
        };
        let new_uid = match appended {
            Ok(new_uid) => new_uid,
            Err(error) => return answer(self.stop_or(error, status::SERVER_ERROR)?),
        };
        if let Err(error) = caps.expunge(self.imap(), &[uid]).await {
            let code = self.stop_or(error, status::SERVER_ERROR)?;
            self.log(Level::Warn, &format!("draft {server_id}: the old version stays"));
            return answer(code);
        }
        match new_uid {
            // The device keeps its ServerId: it now stands for the new UID, which it holds.
            Some(new_uid) => {
                let device_uid = render::uid_of(self.id(), server_id).unwrap_or(uid);
                aliases.set(device_uid, new_uid);
                state.held.remove_all(&[uid, device_uid]);
                state.held.set_all([(new_uid, flags_hash(&flags))]);
                self.log(Level::Info, &format!("draft {server_id} replaced (now UID {new_uid})"));
            }
            // Not found again: the old UID stays held, so the device gets its Delete, and the
            // new version comes as an Add.
            None => self.log(Level::Warn, &format!("draft {server_id} replaced, new UID unknown")),
        }
        if edit.send { answer(status::CONVERSION_ERROR) } else { Ok(None) }
    }

    /// Expunges a draft that was sent; failing that it stays in Drafts (logged, not fatal:
    /// the message went out).
    async fn remove_sent_draft(&self, uid: u32) {
        if let Err(error) = self.context.caps.expunge(self.imap(), &[uid]).await {
            self.log(Level::Warn, &format!("a sent draft stays in Drafts: {error}"));
        }
    }

    /// Sends draft `uid` (as `mime`) once, however often the device retries its Sync: the send
    /// is claimed in the device's resend ledger, as a SendMail's is (`compose::dedupe`).
    async fn submit(&self, uid: u32, mime: &[u8]) -> DraftSend {
        let (caps, device) = (self.context.caps, self.context.device);
        let key = SubmissionKey::Draft { collection: self.id().to_owned(), uid };
        let claimed = match dedupe::claim(caps, device, &key).await {
            Ok(Claim::Claimed(claimed)) => claimed,
            Ok(Claim::AlreadySent) => return DraftSend::Sent,
            Ok(Claim::PresumedSent) => {
                // the request that sent it died, maybe before its Sent copy
                let copy = compose::restore_sent_copy(caps, None, mime, &[], None).await;
                self.log(
                    Level::Info,
                    &format!("draft UID {uid} presumed sent: Sent copy {copy:?}"),
                );
                return DraftSend::Sent;
            }
            Ok(Claim::InFlight) => {
                return DraftSend::MaybeSent("another request is sending it".into());
            }
            Err(error) => return DraftSend::NotSent(format!("send ledger: {error}")),
        };
        let outcome = compose::submit_draft(caps, mime, true, Some(&claimed.record)).await;
        let maybe_sent = outcome.as_ref().err().is_some_and(SendError::keeps_claim_in_flight);
        // A message that may have gone out keeps its claim in flight (see SendMail).
        if !maybe_sent
            && let Err(error) = dedupe::settle(caps, device, &claimed, outcome.is_ok()).await
        {
            self.log(Level::Error, &format!("draft UID {uid}: recording the outcome: {error}"));
        }
        match outcome {
            Ok(_) => DraftSend::Sent,
            Err(error) if maybe_sent => DraftSend::MaybeSent(format!("{error:?}")),
            Err(error) => DraftSend::NotSent(format!("{error:?}")),
        }
    }
}

/// What became of a draft the device asked to send.
enum DraftSend {
    Sent,
    /// Not sent; the device may try again.
    NotSent(String),
    /// It may have left: it must not be sent again, nor changed (see `submit`).
    MaybeSent(String),
}

/// Responses entry of a command naming an item the device cannot hold.
fn not_found(tag: eas_wbxml::Tag, server_id: &str) -> Element {
    render::item_response(tag, server_id, status::OBJECT_NOT_FOUND)
}

/// (ClientId, FileReference) of the attachments a client added, as Sync will name them.
fn attachment_references(draft: &Draft, mime: &[u8], server_id: &str) -> Vec<(String, String)> {
    let summary = MessageSummary::from_full_message(0, Vec::new(), 0, mime.to_vec());
    let converted = email::convert(&summary, server_id);
    if converted.item.attachments.len() != draft.attachments.len() {
        return Vec::new();
    }
    draft
        .attachments
        .iter()
        .zip(&converted.item.attachments)
        .filter_map(|(ours, rendered)| {
            Some((ours.client_id.clone()?, rendered.file_reference.clone()))
        })
        .collect()
}

/// The device no longer holds `uids` (it deleted or moved them itself).
pub fn forget(state: &mut CollectionState, uids: &[u32]) {
    state.held.remove_all(uids);
    let mut gone = uids.to_vec();
    gone.sort_unstable();
    let keep = |list: &mut UidList| list.0.retain(|uid| gone.binary_search(uid).is_err());
    keep(&mut state.pending);
    keep(&mut state.resend);
}

pub fn insert_sorted(list: &mut UidList, uid: u32) {
    if let Err(index) = list.0.binary_search(&uid) {
        list.0.insert(index, uid);
    }
}
