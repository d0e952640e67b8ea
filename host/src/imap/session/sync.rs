//! What changed in a folder since a known state: QRESYNC (RFC 7162 §3.2.5), CONDSTORE
//! (RFC 7162 §3.1) or, without either, a full (UID, flags) list for the caller to diff.

use super::{MailboxOpening, SelectInfo, Session, ensure_ok};
use crate::imap::error::ImapError;
use crate::imap::response::{FetchData, Untagged};
use crate::imap::uidset::{self, UidRange};

/// A folder state the caller saw earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPoint {
    pub uid_validity: u32,
    pub highest_modseq: u64,
}

/// One message's flags, with its mod-sequence when the server has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFlags {
    pub uid: u32,
    /// System flags and keywords as sent (`\Seen`, `$Forwarded`).
    pub flags: Vec<String>,
    pub modseq: Option<u64>,
}

/// How the changes were learnt; decides what `vanished` and `current_uids` mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeMethod {
    /// Expunged UIDs are in `vanished`.
    Qresync,
    /// The server cannot list expunged UIDs: `current_uids` holds every UID in the folder and
    /// the caller finds the expunged ones by difference.
    Condstore,
    /// A full listing: `changed` holds every message with its flags and `current_uids` every
    /// UID (no sync point, no CONDSTORE, or a recreated folder); the caller diffs.
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub method: ChangeMethod,
    /// The folder's UIDVALIDITY now.
    pub uid_validity: u32,
    /// The folder was recreated: every UID the caller holds is void, resynchronise fully. From
    /// `changes_since` the other fields are then empty; from `changes` they are a full listing.
    pub uid_validity_changed: bool,
    pub new_highest_modseq: u64,
    pub uid_next: Option<u32>,
    pub exists: u32,
    /// Messages whose flags changed, or that are new, since the sync point (UID order).
    pub changed: Vec<MessageFlags>,
    /// UIDs expunged since the sync point (QRESYNC). May include UIDs the caller never saw.
    pub vanished: Vec<UidRange>,
    /// Every UID in the folder (CONDSTORE and full listings).
    pub current_uids: Option<Vec<UidRange>>,
}

impl Session {
    /// Which method `changes_since` will use, or `None` when it is unavailable (no CONDSTORE,
    /// or turned off): then diff [`uid_flags`](Self::uid_flags) snapshots.
    pub fn change_method(&self) -> Option<ChangeMethod> {
        if self.qresync_enabled && self.capabilities.qresync {
            Some(ChangeMethod::Qresync)
        } else if self.capabilities.condstore {
            Some(ChangeMethod::Condstore)
        } else {
            None
        }
    }

    /// Changes in `raw_name` since `since`, in one round trip.
    pub async fn changes_since(
        &mut self,
        raw_name: &str,
        since: SyncPoint,
    ) -> Result<Changes, ImapError> {
        let result = async {
            self.begin().await?;
            let changes = match self.change_method() {
                Some(ChangeMethod::Qresync) => self.changes_by_qresync(raw_name, since).await,
                Some(ChangeMethod::Condstore) => self.changes_by_condstore(raw_name, since).await,
                Some(ChangeMethod::Full) | None => Err(ImapError::Unsupported("CONDSTORE")),
            };
            self.explain_refusal(raw_name, changes).await
        }
        .await;
        self.end(result)
    }

    /// What changed in `raw_name` since `since`, whatever the server offers: QRESYNC or
    /// CONDSTORE from a sync point (one round trip), else a full listing for the caller to
    /// diff. A folder recreated since the point (new UIDVALIDITY) comes as a full listing with
    /// `uid_validity_changed` set, so that the caller can start over without asking again.
    pub async fn changes(
        &mut self,
        raw_name: &str,
        since: Option<SyncPoint>,
    ) -> Result<Changes, ImapError> {
        let result = async {
            self.begin().await?;
            let changes = self.changes_inner(raw_name, since).await;
            self.explain_refusal(raw_name, changes).await
        }
        .await;
        self.end(result)
    }

    async fn changes_inner(
        &mut self,
        raw_name: &str,
        since: Option<SyncPoint>,
    ) -> Result<Changes, ImapError> {
        let incremental = match (since, self.change_method()) {
            (Some(since), Some(ChangeMethod::Qresync)) => {
                Some(self.changes_by_qresync(raw_name, since).await?)
            }
            (Some(since), Some(ChangeMethod::Condstore)) => {
                Some(self.changes_by_condstore(raw_name, since).await?)
            }
            _ => None,
        };
        if let Some(changes) = incremental
            && !changes.uid_validity_changed
        {
            return Ok(changes);
        }
        let mut listing = self.full_listing(raw_name).await?;
        listing.uid_validity_changed =
            since.is_some_and(|since| since.uid_validity != listing.uid_validity);
        Ok(listing)
    }

    /// Every message with its flags: EXAMINE and `UID FETCH 1:* (UID FLAGS)`, pipelined. The
    /// UID list comes from the same FETCH (a `UID SEARCH ALL` would list the same UIDs again).
    async fn full_listing(&mut self, raw_name: &str) -> Result<Changes, ImapError> {
        let (info, changed) = self.examine_and_fetch_flags(raw_name, "1:*").await?;
        let uids: Vec<u32> = changed.iter().map(|message| message.uid).collect();
        Ok(Changes {
            method: ChangeMethod::Full,
            uid_validity: info.uid_validity,
            uid_validity_changed: false,
            new_highest_modseq: info.highest_modseq.unwrap_or(0),
            uid_next: info.uid_next,
            exists: info.exists,
            changed,
            vanished: Vec::new(),
            current_uids: Some(uidset::ranges_of(&uids)),
        })
    }

    /// `EXAMINE mailbox (QRESYNC (uidvalidity modseq))`: the server answers with VANISHED
    /// (EARLIER) and FETCH (UID FLAGS MODSEQ) for everything after `modseq` (RFC 7162 §3.2.5.1),
    /// unless the UIDVALIDITY differs.
    async fn changes_by_qresync(
        &mut self,
        raw_name: &str,
        since: SyncPoint,
    ) -> Result<Changes, ImapError> {
        let command = self.examine_command(raw_name, Some(since));
        let mut opening = MailboxOpening::new(raw_name);
        let mut changed = Vec::new();
        let mut vanished = Vec::new();
        let done = self
            .execute(&[command], &mut |data| match data {
                Untagged::Vanished { earlier: true, uids } => {
                    vanished.extend(uids);
                    None
                }
                Untagged::Fetch { data, .. } if data.uid.is_some() && data.flags.is_some() => {
                    merge_flags(&mut changed, *data);
                    None
                }
                other => opening.take(other),
            })
            .await?;
        let tagged = super::single(done)?;
        let info = self.finish_open(opening, &tagged)?;
        let mut changes = Changes {
            method: ChangeMethod::Qresync,
            uid_validity: info.uid_validity,
            uid_validity_changed: info.uid_validity != since.uid_validity,
            new_highest_modseq: info.highest_modseq.unwrap_or(since.highest_modseq),
            uid_next: info.uid_next,
            exists: info.exists,
            changed,
            vanished,
            current_uids: None,
        };
        if changes.uid_validity_changed {
            changes.changed.clear();
            changes.vanished.clear();
        }
        changes.changed.sort_unstable_by_key(|message| message.uid);
        Ok(changes)
    }

    /// EXAMINE, `UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE m)` (RFC 7162 §3.1.4.1) and a UID
    /// SEARCH ALL (as ESEARCH ranges when offered, RFC 4731), pipelined.
    async fn changes_by_condstore(
        &mut self,
        raw_name: &str,
        since: SyncPoint,
    ) -> Result<Changes, ImapError> {
        let examine = self.examine_command(raw_name, None);
        let fetch = self
            .command("UID FETCH")
            .raw(&format!(" 1:* (UID FLAGS) (CHANGEDSINCE {})", since.highest_modseq))
            .end();
        let search = if self.capabilities.esearch {
            self.command("UID SEARCH").raw(" RETURN (ALL) ALL").end()
        } else {
            self.command("UID SEARCH").raw(" ALL").end()
        };
        let commands = [examine, fetch, search];
        let mut opening = MailboxOpening::new(raw_name);
        let mut changed = Vec::new();
        let mut current: Vec<UidRange> = Vec::new();
        let mut plain_search: Vec<u32> = Vec::new();
        let search_tag = commands[2].tag.clone();
        let done = self
            .execute(&commands, &mut |data| match data {
                Untagged::Fetch { data, .. } if data.uid.is_some() && data.flags.is_some() => {
                    merge_flags(&mut changed, *data);
                    None
                }
                Untagged::ESearch(result) if result.tag.as_deref() == Some(search_tag.as_str()) => {
                    current.extend(result.all.unwrap_or_default());
                    None
                }
                Untagged::Search { numbers, .. } => {
                    plain_search.extend(numbers);
                    None
                }
                other => opening.take(other),
            })
            .await?;
        let [examined, fetched, searched] = <[_; 3]>::try_from(done)
            .map_err(|_| ImapError::Protocol("missing completions".to_string()))?;
        let info = self.finish_open(opening, &examined)?;
        ensure_ok(&fetched, "UID FETCH")?;
        ensure_ok(&searched, "UID SEARCH")?;
        if !plain_search.is_empty() {
            current.extend(uidset::ranges_of(&plain_search));
        }
        current.sort_unstable();
        let uid_validity_changed = info.uid_validity != since.uid_validity;
        changed.sort_unstable_by_key(|message| message.uid);
        // only changes after the sync point (a server may send more)
        changed.retain(|message| message.modseq.is_none_or(|modseq| modseq > since.highest_modseq));
        Ok(Changes {
            method: ChangeMethod::Condstore,
            uid_validity: info.uid_validity,
            uid_validity_changed,
            new_highest_modseq: info.highest_modseq.unwrap_or(since.highest_modseq),
            uid_next: info.uid_next,
            exists: info.exists,
            changed: if uid_validity_changed { Vec::new() } else { changed },
            vanished: Vec::new(),
            current_uids: if uid_validity_changed { None } else { Some(current) },
        })
    }

    /// (UID, flags) of every message in `range` (the fallback without CONDSTORE: the caller
    /// diffs this against its snapshot). `range.last == u32::MAX` means "to the end".
    pub async fn uid_flags(
        &mut self,
        raw_name: &str,
        range: UidRange,
    ) -> Result<Vec<MessageFlags>, ImapError> {
        let result = async {
            self.begin().await?;
            let end = if range.last == u32::MAX { "*".to_string() } else { range.last.to_string() };
            let set = format!("{}:{end}", range.first);
            let fetched = self.examine_and_fetch_flags(raw_name, &set).await;
            let (_, mut messages) = self.explain_refusal(raw_name, fetched).await?;
            // `n:*` includes the last message even when its UID is below n (RFC 9051 §6.4.9)
            messages.retain(|message| range.contains(message.uid));
            Ok(messages)
        }
        .await;
        self.end(result)
    }

    /// EXAMINE and `UID FETCH <set> (UID FLAGS [MODSEQ])`, pipelined; the messages in UID
    /// order. A fresh EXAMINE even when the folder is open: expunges by other sessions are
    /// only reported outside FETCH (RFC 9051 §7.5.1), and Dovecot runs a pipelined NOOP +
    /// FETCH in parallel, so the FETCH would still see them.
    async fn examine_and_fetch_flags(
        &mut self,
        raw_name: &str,
        set: &str,
    ) -> Result<(SelectInfo, Vec<MessageFlags>), ImapError> {
        let items = if self.capabilities.condstore { "(UID FLAGS MODSEQ)" } else { "(UID FLAGS)" };
        let examine = self.examine_command(raw_name, None);
        let fetch = self.command("UID FETCH").raw(&format!(" {set} {items}")).end();
        let mut opening = MailboxOpening::new(raw_name);
        let mut messages = Vec::new();
        let done = self
            .execute(&[examine, fetch], &mut |data| match data {
                Untagged::Fetch { data, .. } if data.uid.is_some() && data.flags.is_some() => {
                    merge_flags(&mut messages, *data);
                    None
                }
                other => opening.take(other),
            })
            .await?;
        let [examined, fetched] = <[_; 2]>::try_from(done)
            .map_err(|_| ImapError::Protocol("missing completions".to_string()))?;
        let info = self.finish_open(opening, &examined)?;
        // some servers refuse `1:*` in an empty folder; nothing was missed then
        if info.exists > 0 {
            ensure_ok(&fetched, "UID FETCH")?;
        }
        messages.sort_unstable_by_key(|message| message.uid);
        Ok((info, messages))
    }
}

/// Adds or updates a message's flags; a later FETCH for the same UID wins.
fn merge_flags(messages: &mut Vec<MessageFlags>, data: FetchData) {
    let (Some(uid), Some(flags)) = (data.uid, data.flags) else { return };
    match messages.iter_mut().rev().take(4).find(|message| message.uid == uid) {
        Some(existing) => {
            existing.flags = flags;
            existing.modseq = data.modseq.or(existing.modseq);
        }
        None => messages.push(MessageFlags { uid, flags, modseq: data.modseq }),
    }
}
