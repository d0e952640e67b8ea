//! Changing the mailbox: flags, moves, expunges, appends and folders; and searching.
//!
//! Every change runs in two steps. First a round trip that changes nothing: SELECT of the folder
//! (read-write), or LIST of the folders involved. It proves the session alive, finds missing
//! folders before anything is sent, and makes sure the change lands in the folder meant: a
//! server that kept the previous mailbox after a failed SELECT cannot receive a STORE or
//! EXPUNGE meant for another folder. Then the change itself, pipelined.
//!
//! The two steps show in the result, a [`WriteResult`]: a failure of the first step may be
//! repeated on another session (the account pool does so when the session broke, typically a
//! pooled connection the server closed); once the change was sent, its outcome is final, since
//! repeating an APPEND or a COPY would duplicate messages.

use super::{MailboxOpening, SelectInfo, Session, ensure_ok, single};
use crate::imap::capabilities::Capabilities;
use crate::imap::command::Command;
use crate::imap::error::{ImapError, RefusalStatus};
use crate::imap::folder::Folder;
use crate::imap::mutf7;
use crate::imap::response::{Code, ListEntry, Status, Tagged, Untagged};
use crate::imap::uidset::{self, UidRange};

/// UID sets per command stay below this many bytes (servers cap command lines; Dovecot at
/// 64 KB); the commands for the rest are pipelined behind.
const MAX_SET_LEN: usize = 8 * 1024;

/// The last second IMAP's four-digit years can name (9999-12-31 23:59:59 UTC).
const LAST_IMAP_SECOND: i64 = 253_402_300_799;

/// The outcome of a change. The outer error: nothing that changes the mailbox was sent, so the
/// operation may be repeated (on another session when this one broke). The inner result is
/// final: an error there may come after the server carried the change out.
pub type WriteResult<T> = Result<Result<T, ImapError>, ImapError>;

/// What [`Session::search`] looks for; every given criterion must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchCriteria {
    /// Every whitespace-separated word occurs in the headers or the body (TEXT).
    pub text: Option<String>,
    /// Internal date on or after this day (unix seconds; SEARCH compares days).
    pub since: Option<i64>,
    /// Internal date before this day (unix seconds).
    pub before: Option<i64>,
    /// A header field (name, value) containing the value.
    pub header: Option<(String, String)>,
}

impl Session {
    /// Turns extensions off as if the server lacked them: for servers whose implementation is
    /// broken, and to exercise the fallbacks against a server that has them all.
    pub fn mask_capabilities(&mut self, mask: impl FnOnce(&mut Capabilities)) {
        mask(&mut self.capabilities);
    }

    /// Adds and removes flags (system flags and keywords) on these messages:
    /// `UID STORE set +FLAGS.SILENT (...)` and `-FLAGS.SILENT`. UIDs that no longer exist are
    /// skipped by the server.
    pub async fn store_flags(
        &mut self,
        raw_name: &str,
        uids: &[u32],
        add: &[String],
        remove: &[String],
    ) -> WriteResult<()> {
        let add = flag_list(add, "UID STORE")?;
        let remove = flag_list(remove, "UID STORE")?;
        let ranges = uidset::ranges_of(uids);
        if ranges.is_empty() || (add.is_none() && remove.is_none()) {
            return Ok(Ok(()));
        }
        let result = async {
            self.begin().await?;
            self.select_for_write(raw_name).await?;
            let mut commands = Vec::new();
            for set in uidset::format_sets(&ranges, MAX_SET_LEN) {
                for (operation, flags) in [("+", &add), ("-", &remove)] {
                    if let Some(flags) = flags {
                        let items = format!(" {set} {operation}FLAGS.SILENT {flags}");
                        commands.push(self.command("UID STORE").raw(&items).end());
                    }
                }
            }
            Ok(self.run_all(&commands, raw_name).await)
        }
        .await;
        self.finish(result)
    }

    /// Moves messages to `destination`: `UID MOVE` (RFC 6851), else `UID COPY`, then
    /// `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE` (RFC 4315) of the copied
    /// messages, each step only after the previous one succeeded. Returns (old UID, new UID)
    /// pairs from COPYUID, in old-UID order; empty when the server does not tell. Without MOVE
    /// and UIDPLUS the move is refused: a plain EXPUNGE would also remove other messages marked
    /// `\Deleted`.
    pub async fn move_messages(
        &mut self,
        source: &str,
        uids: &[u32],
        destination: &str,
    ) -> WriteResult<Vec<(u32, u32)>> {
        if !self.capabilities.move_command && !self.capabilities.uidplus {
            return Err(ImapError::Unsupported("MOVE or UIDPLUS (moving messages)"));
        }
        let ranges = uidset::ranges_of(uids);
        if ranges.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let result = async {
            self.begin().await?;
            self.select_for_write(source).await?;
            Ok(if self.capabilities.move_command {
                self.move_inner(&ranges, destination).await
            } else {
                self.copy_and_expunge(&ranges, destination).await
            })
        }
        .await;
        self.finish(result)
    }

    async fn move_inner(
        &mut self,
        ranges: &[UidRange],
        destination: &str,
    ) -> Result<Vec<(u32, u32)>, ImapError> {
        let commands: Vec<Command> = uidset::format_sets(ranges, MAX_SET_LEN)
            .iter()
            .map(|set| {
                self.command("UID MOVE").raw(" ").raw(set).string(destination.as_bytes()).end()
            })
            .collect();
        let mut copied = Vec::new();
        let done = self
            .execute(&commands, &mut |data| match data {
                // RFC 6851 §4.3: COPYUID comes in an untagged OK before the expunges
                Untagged::Condition {
                    status: Status::Ok,
                    code: Some(code @ Code::CopyUid { .. }),
                    ..
                } => {
                    copied.push(code);
                    None
                }
                other => Some(other),
            })
            .await?;
        for tagged in &done {
            check(tagged, "UID MOVE", destination)?;
            copied.extend(tagged.code.clone());
        }
        Ok(uid_pairs(&copied))
    }

    async fn copy_and_expunge(
        &mut self,
        ranges: &[UidRange],
        destination: &str,
    ) -> Result<Vec<(u32, u32)>, ImapError> {
        let commands: Vec<Command> = uidset::format_sets(ranges, MAX_SET_LEN)
            .iter()
            .map(|set| {
                self.command("UID COPY").raw(" ").raw(set).string(destination.as_bytes()).end()
            })
            .collect();
        let done = self.execute(&commands, &mut Some).await?;
        let mut copied = Vec::new();
        let mut all_told = true;
        for tagged in &done {
            check(tagged, "UID COPY", destination)?;
            match &tagged.code {
                Some(code @ Code::CopyUid { .. }) => copied.push(code.clone()),
                _ => all_told = false,
            }
        }
        // the originals of what was copied: as COPYUID lists them, else the UIDs asked for
        // (those that did not exist were not copied and cannot be expunged either)
        let originals: Vec<UidRange> = if all_told {
            let uids: Vec<u32> = copied
                .iter()
                .filter_map(|code| match code {
                    Code::CopyUid { source, .. } => {
                        Some(uidset::expand(source).collect::<Vec<_>>())
                    }
                    _ => None,
                })
                .flatten()
                .collect();
            uidset::ranges_of(&uids)
        } else {
            ranges.to_vec()
        };
        self.expunge_uids(&originals).await?;
        Ok(uid_pairs(&copied))
    }

    /// Removes exactly these messages: `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE`
    /// (RFC 4315). Without UIDPLUS it is refused: a plain EXPUNGE would also remove the other
    /// messages marked `\Deleted`.
    pub async fn expunge(&mut self, raw_name: &str, uids: &[u32]) -> WriteResult<()> {
        if !self.capabilities.uidplus {
            return Err(ImapError::Unsupported("UIDPLUS (UID EXPUNGE)"));
        }
        let ranges = uidset::ranges_of(uids);
        if ranges.is_empty() {
            return Ok(Ok(()));
        }
        let result = async {
            self.begin().await?;
            self.select_for_write(raw_name).await?;
            Ok(self.expunge_uids(&ranges).await)
        }
        .await;
        self.finish(result)
    }

    /// `UID STORE set +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE set` for every set, pipelined,
    /// on the selected folder.
    async fn expunge_uids(&mut self, ranges: &[UidRange]) -> Result<(), ImapError> {
        let mut commands = Vec::new();
        for set in uidset::format_sets(ranges, MAX_SET_LEN) {
            let store = format!(" {set} +FLAGS.SILENT (\\Deleted)");
            commands.push(self.command("UID STORE").raw(&store).end());
            commands.push(self.command("UID EXPUNGE").raw(" ").raw(&set).end());
        }
        let done = self.execute(&commands, &mut Some).await?;
        for (tagged, command) in done.iter().zip(&commands) {
            ensure_ok(tagged, command.name)?;
        }
        Ok(())
    }

    /// Removes every message of the folder: `UID STORE 1:* +FLAGS.SILENT (\Deleted)` and
    /// `EXPUNGE` on it, and on nothing else: the folder is selected (in its own round trip)
    /// before the commands are sent.
    pub async fn empty_folder(&mut self, raw_name: &str) -> WriteResult<()> {
        let result = async {
            self.begin().await?;
            let info = self.select_for_write(raw_name).await?;
            if info.exists == 0 {
                return Ok(Ok(()));
            }
            let commands = [
                self.command("UID STORE").raw(" 1:* +FLAGS.SILENT (\\Deleted)").end(),
                self.command("EXPUNGE").end(),
            ];
            Ok(self.run_all(&commands, raw_name).await)
        }
        .await;
        self.finish(result)
    }

    /// Stores a message (APPEND, RFC 9051 §6.3.12) with these flags and internal date (unix
    /// seconds; the server's clock without one). The message goes as a literal, non-synchronising
    /// when the server allows (RFC 7888). Returns its UID: from APPENDUID (RFC 4315), else by
    /// searching its Message-ID; `None` when neither tells.
    pub async fn append(
        &mut self,
        raw_name: &str,
        message: &[u8],
        flags: &[String],
        internal_date: Option<i64>,
    ) -> WriteResult<Option<u32>> {
        let flags = flag_list(flags, "APPEND")?;
        let result = async {
            self.begin().await?;
            // the folder must exist; the LIST is also the round trip before the change
            if self.list_exact(&[raw_name]).await?.first().is_none_or(Option::is_none) {
                return Err(ImapError::NoSuchMailbox(raw_name.to_string()));
            }
            Ok(self.append_inner(raw_name, message, flags.as_deref(), internal_date).await)
        }
        .await;
        self.finish(result)
    }

    async fn append_inner(
        &mut self,
        raw_name: &str,
        message: &[u8],
        flags: Option<&str>,
        internal_date: Option<i64>,
    ) -> Result<Option<u32>, ImapError> {
        let mut command = self.command("APPEND").string(raw_name.as_bytes());
        if let Some(flags) = flags {
            command = command.raw(" ").raw(flags);
        }
        if let Some(date) = internal_date {
            command = command.raw(" ").raw(&imap_date_time(date));
        }
        let command = command.literal(message).end();
        let tagged = single(self.execute(&[command], &mut Some).await?)?;
        check(&tagged, "APPEND", raw_name)?;
        if let Some(Code::AppendUid { uids, .. }) = &tagged.code
            && let Some(range) = uids.first()
        {
            return Ok(Some(range.first));
        }
        let Some(message_id) = header_value(message, "Message-ID") else { return Ok(None) };
        // the message is stored: a failure to find it only loses its UID
        let criteria = SearchCriteria {
            header: Some(("Message-ID".to_string(), message_id)),
            ..SearchCriteria::default()
        };
        match self.search_inner(raw_name, &criteria).await {
            Ok(uids) => Ok(uids.last().copied()),
            Err(error) => {
                tracing::debug!(%error, "finding an appended message by its Message-ID");
                if error.breaks_session() {
                    self.broken = Some(error.to_string());
                }
                Ok(None)
            }
        }
    }

    /// UIDs of the messages matching every criterion, ascending: EXAMINE and
    /// `UID SEARCH [RETURN (ALL)] [CHARSET UTF-8] ...` pipelined (RFC 9051 §6.4.4, ESEARCH
    /// RFC 4731 when offered). Words of `text` are TEXT keys each; non-ASCII text goes as
    /// literals with CHARSET UTF-8. No criterion matches every message.
    pub async fn search(
        &mut self,
        raw_name: &str,
        criteria: &SearchCriteria,
    ) -> Result<Vec<u32>, ImapError> {
        let result = async {
            self.begin().await?;
            let found = self.search_inner(raw_name, criteria).await;
            self.explain_refusal(raw_name, found).await
        }
        .await;
        self.end(result)
    }

    async fn search_inner(
        &mut self,
        raw_name: &str,
        criteria: &SearchCriteria,
    ) -> Result<Vec<u32>, ImapError> {
        let search = self.search_command(criteria)?;
        let ranges = self.examine_and_search(raw_name, search).await?;
        let mut uids: Vec<u32> = uidset::expand(&ranges).collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    fn search_command(&mut self, criteria: &SearchCriteria) -> Result<Command, ImapError> {
        let words: Vec<&str> = criteria
            .text
            .as_deref()
            .map(|text| text.split_whitespace().collect())
            .unwrap_or_default();
        let header = criteria.header.as_ref();
        if let Some((field, _)) = header
            && !is_field_name(field)
        {
            return Err(ImapError::Refused {
                command: "UID SEARCH",
                status: RefusalStatus::Bad,
                text: format!("{field:?} is not a header field name"),
            });
        }
        let non_ascii = words.iter().any(|word| !word.is_ascii())
            || header.is_some_and(|(_, value)| !value.is_ascii());
        let mut command = self.command("UID SEARCH");
        if self.capabilities.esearch {
            command = command.raw(" RETURN (ALL)");
        }
        if non_ascii {
            command = command.raw(" CHARSET UTF-8");
        }
        let mut any = false;
        for word in words {
            command = command.raw(" TEXT").string(word.as_bytes());
            any = true;
        }
        if let Some(since) = criteria.since {
            command = command.raw(" SINCE ").raw(&super::search::imap_date(since));
            any = true;
        }
        if let Some(before) = criteria.before {
            command = command.raw(" BEFORE ").raw(&super::search::imap_date(before));
            any = true;
        }
        if let Some((field, value)) = header {
            command = command.raw(" HEADER").string(field.as_bytes()).string(value.as_bytes());
            any = true;
        }
        if !any {
            command = command.raw(" ALL");
        }
        Ok(command.end())
    }

    /// Creates the folder `name` (UTF-8, one level) under `parent` (server spelling; `None`:
    /// at the top): its full name is the parent's, the hierarchy delimiter and the name in
    /// modified UTF-7. A LIST of the parent (or of the root, `LIST "" ""`) first tells the
    /// delimiter and that the parent exists: CREATE would make missing parents on the way.
    /// The new folder is subscribed, and returned as a full listing shows it.
    pub async fn create_folder(&mut self, parent: Option<&str>, name: &str) -> WriteResult<Folder> {
        let result = async {
            self.begin().await?;
            let full = self.new_name(parent, name, None).await?;
            Ok(self.create_inner(&full).await.map(|()| full))
        }
        .await;
        self.finish_with_folder(result).await
    }

    async fn create_inner(&mut self, full: &str) -> Result<(), ImapError> {
        let create = self.command("CREATE").string(full.as_bytes()).end();
        let tagged = single(self.execute(&[create], &mut Some).await?)?;
        check(&tagged, "CREATE", full)?;
        // other clients show subscribed folders only; a refusal changes nothing that matters
        let subscribe = self.command("SUBSCRIBE").string(full.as_bytes()).end();
        let tagged = single(self.execute(&[subscribe], &mut Some).await?)?;
        if tagged.status != Status::Ok {
            tracing::debug!(folder = full, "SUBSCRIBE refused: {}", tagged.text);
        }
        Ok(())
    }

    /// Renames a folder (RENAME, RFC 9051 §6.3.6), also to another parent (`None`: the top);
    /// returns it under its new name as a full listing shows it. INBOX is refused: renaming
    /// it moves its messages and leaves it empty (§6.3.6), which no client means.
    pub async fn rename_folder(
        &mut self,
        raw_name: &str,
        new_parent: Option<&str>,
        new_name: &str,
    ) -> WriteResult<Folder> {
        if raw_name.eq_ignore_ascii_case("INBOX") {
            return Err(refused("RENAME", "INBOX cannot be renamed"));
        }
        let result = async {
            self.begin().await?;
            let full = self.new_name(new_parent, new_name, Some(raw_name)).await?;
            let rename =
                self.command("RENAME").string(raw_name.as_bytes()).string(full.as_bytes()).end();
            let renamed = async {
                let tagged = single(self.execute(&[rename], &mut Some).await?)?;
                check(&tagged, "RENAME", raw_name)
            }
            .await;
            self.forget_selected(raw_name);
            Ok(renamed.map(|()| full))
        }
        .await;
        self.finish_with_folder(result).await
    }

    /// Deletes a folder (DELETE, RFC 9051 §6.3.5); servers refuse folders with subfolders.
    pub async fn delete_folder(&mut self, raw_name: &str) -> WriteResult<()> {
        let result = async {
            self.begin().await?;
            if self.list_exact(&[raw_name]).await?.first().is_none_or(Option::is_none) {
                return Err(ImapError::NoSuchMailbox(raw_name.to_string()));
            }
            let delete = self.command("DELETE").string(raw_name.as_bytes()).end();
            let deleted = async {
                let tagged = single(self.execute(&[delete], &mut Some).await?)?;
                check(&tagged, "DELETE", raw_name)
            }
            .await;
            self.forget_selected(raw_name);
            Ok(deleted)
        }
        .await;
        self.finish(result)
    }

    /// The full server name of `leaf` under `parent`, after a LIST that checks the parent (and
    /// `existing`, for a rename) and tells the hierarchy delimiter.
    async fn new_name(
        &mut self,
        parent: Option<&str>,
        leaf: &str,
        existing: Option<&str>,
    ) -> Result<String, ImapError> {
        let command = if existing.is_some() { "RENAME" } else { "CREATE" };
        if leaf.is_empty() {
            return Err(refused(command, "the folder name is empty"));
        }
        let mut names = vec![parent.unwrap_or("")];
        names.extend(existing);
        let found = self.list_exact(&names).await?;
        if let Some(existing) = existing
            && found.get(1).is_none_or(Option::is_none)
        {
            return Err(ImapError::NoSuchMailbox(existing.to_string()));
        }
        let delimiter = match found.first() {
            Some(Some(entry)) => entry.delimiter,
            // LIST "" "" always answers (RFC 9051 §6.3.9); a server that does not has no
            // hierarchy worth guessing at
            _ if parent.is_none() => None,
            _ => return Err(ImapError::NoSuchMailbox(parent.unwrap_or_default().to_string())),
        };
        if let Some(delimiter) = delimiter
            && leaf.contains(delimiter)
        {
            return Err(refused(
                command,
                &format!("the folder name must not contain the hierarchy delimiter {delimiter:?}"),
            ));
        }
        let encoded = mutf7::encode(leaf);
        Ok(match (parent, delimiter) {
            (None, _) => encoded,
            (Some(parent), Some(delimiter)) => format!("{parent}{delimiter}{encoded}"),
            (Some(_), None) => {
                return Err(refused(command, "the server has no folder hierarchy"));
            }
        })
    }

    /// SELECT (read-write) of `raw_name`, alone in its round trip (see the module docs). A NO is
    /// `NoSuchMailbox` when LIST does not show the folder; read-only access is refused.
    async fn select_for_write(&mut self, raw_name: &str) -> Result<SelectInfo, ImapError> {
        let command = self.command("SELECT").string(raw_name.as_bytes()).end();
        let mut opening = MailboxOpening::new(raw_name);
        let done = self.execute(&[command], &mut |data| opening.take(data)).await?;
        let tagged = single(done)?;
        self.selected = None;
        let opened = match ensure_ok(&tagged, "SELECT") {
            Ok(()) => opening.into_info(&tagged, self.capabilities.condstore),
            Err(ImapError::NoSuchMailbox(_)) => Err(ImapError::NoSuchMailbox(raw_name.to_string())),
            Err(error @ ImapError::Refused { status: RefusalStatus::No, .. }) => {
                let listed = self.list_exact(&[raw_name]).await?;
                Err(if listed.first().is_some_and(Option::is_some) {
                    error
                } else {
                    ImapError::NoSuchMailbox(raw_name.to_string())
                })
            }
            Err(error) => Err(error),
        };
        let info = opened?;
        if info.read_only {
            return Err(refused("SELECT", &format!("{raw_name} is read-only")));
        }
        self.selected = Some(info.clone());
        Ok(info)
    }

    /// `LIST "" name` for each name, pipelined: the entry of each that exists (`""` asks for
    /// the hierarchy delimiter and always answers, RFC 9051 §6.3.9).
    async fn list_exact(
        &mut self,
        raw_names: &[&str],
    ) -> Result<Vec<Option<ListEntry>>, ImapError> {
        let commands: Vec<Command> = raw_names
            .iter()
            .map(|name| self.command("LIST").raw(" \"\"").string(name.as_bytes()).end())
            .collect();
        let mut found: Vec<Option<ListEntry>> = vec![None; raw_names.len()];
        let done = self
            .execute(&commands, &mut |data| match data {
                Untagged::List(entry) if !entry.from_lsub => {
                    let mut asked = false;
                    for (name, slot) in raw_names.iter().zip(found.iter_mut()) {
                        if same_name(name, &entry.raw_name) {
                            asked = true;
                            if !entry.has_attribute("\\NonExistent") {
                                *slot = Some(entry.clone());
                            }
                        }
                    }
                    // anything else is NOTIFY's news about another folder
                    (!asked).then_some(Untagged::List(entry))
                }
                other => Some(other),
            })
            .await?;
        for tagged in &done {
            ensure_ok(tagged, "LIST")?;
        }
        Ok(found)
    }

    /// Runs the commands (on the selected `raw_name`) and checks every completion.
    async fn run_all(&mut self, commands: &[Command], raw_name: &str) -> Result<(), ImapError> {
        let done = self.execute(commands, &mut Some).await?;
        for (tagged, command) in done.iter().zip(commands) {
            check(tagged, command.name, raw_name)?;
        }
        Ok(())
    }

    /// A deleted or renamed folder is no longer open (servers close it, RFC 9051 §6.3.5).
    fn forget_selected(&mut self, raw_name: &str) {
        if self.selected.as_ref().is_some_and(|info| same_name(&info.raw_name, raw_name)) {
            self.selected = None;
        }
    }

    /// Ends a write operation (see [`end`](Self::end)), whichever step failed.
    fn finish<T>(&mut self, result: WriteResult<T>) -> WriteResult<T> {
        match result {
            Ok(inner) => Ok(self.end(inner)),
            Err(error) => self.end(Err(error)),
        }
    }

    /// Ends a folder change that returns the folder's new full name, and lists the folders to
    /// return it as [`list_folders`](Self::list_folders) shows it.
    async fn finish_with_folder(&mut self, result: WriteResult<String>) -> WriteResult<Folder> {
        let full = match self.finish(result)? {
            Ok(full) => full,
            Err(error) => return Ok(Err(error)),
        };
        let folders = match self.list_folders().await {
            Ok(folders) => folders,
            Err(error) => return Ok(Err(error)),
        };
        let listed = folders.into_iter().find(|folder| same_name(&folder.raw_name, &full));
        Ok(Ok(listed.unwrap_or_else(|| Folder {
            name: mutf7::decode_or_raw(&full),
            raw_name: full,
            delimiter: None,
            role: None,
            selectable: true,
            subscribed: None,
            mailbox_id: None,
        })))
    }
}

/// NO and BAD as [`ensure_ok`] sees them, with the codes of a change: `[TRYCREATE]` and
/// `[NONEXISTENT]` (RFC 5530) mean `folder` is missing; `[ALREADYEXISTS]` says so in the text.
fn check(tagged: &Tagged, command: &'static str, folder: &str) -> Result<(), ImapError> {
    match (&tagged.status, &tagged.code) {
        (Status::Ok, _) => Ok(()),
        (Status::No, Some(Code::TryCreate | Code::NonExistent)) => {
            Err(ImapError::NoSuchMailbox(folder.to_string()))
        }
        (Status::No, Some(Code::Other { name, .. })) if name == "ALREADYEXISTS" => {
            Err(refused(command, &format!("{folder} already exists ({})", tagged.text)))
        }
        _ => ensure_ok(tagged, command),
    }
}

fn refused(command: &'static str, text: &str) -> ImapError {
    ImapError::Refused { command, status: RefusalStatus::No, text: text.to_string() }
}

/// `(flag flag ...)` for STORE and APPEND, `None` for no flags. Flags are atoms, system flags
/// with a backslash (RFC 9051 §9 `flag`): anything else is refused here, so that the rest of
/// the command stays ours.
fn flag_list(flags: &[String], command: &'static str) -> Result<Option<String>, ImapError> {
    if flags.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = flags.iter().find(|flag| !is_flag(flag)) {
        return Err(ImapError::Refused {
            command,
            status: RefusalStatus::Bad,
            text: format!("{bad:?} is not a flag or keyword"),
        });
    }
    Ok(Some(format!("({})", flags.join(" "))))
}

fn is_flag(flag: &str) -> bool {
    let atom = flag.strip_prefix('\\').unwrap_or(flag);
    !atom.is_empty()
        && atom.bytes().all(|byte| byte.is_ascii_graphic() && !b"(){%*\"\\]".contains(&byte))
}

/// RFC 5322 §3.6.8 `field-name`: printable ASCII but the colon.
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_graphic() && byte != b':')
}

/// Mailbox names as the server echoes them: INBOX in any case is INBOX (RFC 9051 §5.1).
fn same_name(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
}

/// (old, new) UID pairs from COPYUID codes (RFC 4315 §3: the sets correspond in order), sorted
/// by old UID. A code whose sets differ in size tells nothing reliable and is left out.
fn uid_pairs(codes: &[Code]) -> Vec<(u32, u32)> {
    let mut pairs = Vec::new();
    for code in codes {
        if let Code::CopyUid { source, destination, .. } = code {
            let old: Vec<u32> = uidset::expand(source).collect();
            let new: Vec<u32> = uidset::expand(destination).collect();
            if old.len() == new.len() {
                pairs.extend(old.into_iter().zip(new));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// `"dd-Mon-yyyy hh:mm:ss +0000"` (RFC 9051 §9 `date-time`, day padded with a space), UTC.
fn imap_date_time(unix_seconds: i64) -> String {
    let seconds = unix_seconds.clamp(0, LAST_IMAP_SECOND);
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "\"{:>11} {:02}:{:02}:{:02} +0000\"",
        super::search::imap_date(seconds),
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The unfolded value of the first header field `name` (case-insensitive), trimmed; `None`
/// when the header has no such field or it is empty.
fn header_value(message: &[u8], name: &str) -> Option<String> {
    let end = memchr::memmem::find(message, b"\r\n\r\n")
        .or_else(|| memchr::memmem::find(message, b"\n\n"))
        .unwrap_or(message.len());
    let header = String::from_utf8_lossy(&message[..end]);
    let mut value: Option<String> = None;
    for line in header.lines() {
        let continued = line.starts_with([' ', '\t']);
        match (&mut value, continued) {
            (Some(value), true) => value.push_str(line.trim()),
            (Some(_), false) => break,
            (None, false) => {
                if let Some((field, rest)) = line.split_once(':')
                    && field.trim_end().eq_ignore_ascii_case(name)
                {
                    value = Some(rest.trim().to_string());
                }
            }
            (None, true) => {}
        }
    }
    value.filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_atoms_or_system_flags() {
        let flags = |list: &[&str]| list.iter().map(|f| (*f).to_string()).collect::<Vec<_>>();
        assert_eq!(flag_list(&[], "STORE").expect("empty"), None);
        assert_eq!(
            flag_list(&flags(&["\\Seen", "$Forwarded", "Junk"]), "STORE").expect("valid"),
            Some("(\\Seen $Forwarded Junk)".to_string())
        );
        for bad in ["", "\\", "two words", "a)b", "x\r\ny", "\"q\"", "ü", "\\\\Seen", "a]"] {
            assert!(flag_list(&flags(&[bad]), "STORE").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn copyuid_sets_pair_up_in_order() {
        let code = Code::CopyUid {
            uid_validity: 1,
            source: vec![UidRange::new(4, 6), UidRange::single(9)],
            destination: vec![UidRange::new(20, 23)],
        };
        assert_eq!(uid_pairs(&[code]), vec![(4, 20), (5, 21), (6, 22), (9, 23)]);
        let uneven = Code::CopyUid {
            uid_validity: 1,
            source: vec![UidRange::new(1, 2)],
            destination: vec![UidRange::single(5)],
        };
        assert!(uid_pairs(&[uneven]).is_empty());
    }

    #[test]
    fn internal_dates_are_fixed_width_utc() {
        assert_eq!(imap_date_time(0), "\" 1-Jan-1970 00:00:00 +0000\"");
        assert_eq!(imap_date_time(1_772_841_600 + 3_723), "\" 7-Mar-2026 01:02:03 +0000\"");
        assert_eq!(imap_date_time(951_868_799), "\"29-Feb-2000 23:59:59 +0000\"");
        assert_eq!(imap_date_time(i64::MAX), "\"31-Dec-9999 23:59:59 +0000\"");
        assert_eq!(imap_date_time(-1), "\" 1-Jan-1970 00:00:00 +0000\"");
    }

    #[test]
    fn header_values_are_unfolded_and_end_at_the_body() {
        let message =
            b"From: a@b\r\nMessage-ID:\r\n <x@y>\r\nSubject: s\r\n\r\nMessage-ID: <body>\r\n";
        assert_eq!(header_value(message, "message-id").as_deref(), Some("<x@y>"));
        assert_eq!(header_value(message, "Subject").as_deref(), Some("s"));
        assert_eq!(header_value(b"Subject: s\n\nMessage-ID: <no>\n", "Message-ID"), None);
        assert_eq!(header_value(b"Message-ID: \r\n\r\n", "Message-ID"), None);
    }

    #[test]
    fn header_field_names_are_printable_without_colons() {
        assert!(is_field_name("Message-ID") && is_field_name("X-Spam-Flag"));
        assert!(!is_field_name("") && !is_field_name("a:b") && !is_field_name("a b"));
    }
}
