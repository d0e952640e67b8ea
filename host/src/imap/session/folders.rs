//! Folder listing and STATUS.

use super::{Session, ensure_ok};
use crate::imap::error::{ImapError, RefusalStatus};
use crate::imap::folder::{Folder, folders_from_list};
use crate::imap::response::{StatusItems, Untagged};

/// A folder's counters without opening it (RFC 9051 §6.3.11, RFC 7162 §3.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderStatus {
    pub uid_validity: u32,
    pub uid_next: u32,
    /// `None` without CONDSTORE.
    pub highest_modseq: Option<u64>,
    pub messages: u32,
    pub unseen: u32,
}

impl FolderStatus {
    fn from_items(raw_name: &str, items: &StatusItems) -> Result<Self, ImapError> {
        let missing = |item: &str| ImapError::Protocol(format!("STATUS {raw_name}: no {item}"));
        Ok(Self {
            uid_validity: items.uid_validity.ok_or_else(|| missing("UIDVALIDITY"))?,
            uid_next: items.uid_next.ok_or_else(|| missing("UIDNEXT"))?,
            highest_modseq: items.highest_modseq,
            messages: items.messages.ok_or_else(|| missing("MESSAGES"))?,
            unseen: items.unseen.ok_or_else(|| missing("UNSEEN"))?,
        })
    }
}

/// Mailbox names as the server echoes them: INBOX in any case is INBOX (RFC 9051 §5.1).
fn same_mailbox(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
}

impl Session {
    /// All folders with decoded names and roles. With LIST-EXTENDED this is one command
    /// (`RETURN (SUBSCRIBED SPECIAL-USE)`, RFC 5258 and RFC 6154 §2), which also asks for
    /// each folder's MAILBOXID when the server has OBJECTID and LIST-STATUS (RFC 8474 §4,
    /// RFC 5819); without LIST-EXTENDED, LIST and LSUB are pipelined.
    pub async fn list_folders(&mut self) -> Result<Vec<Folder>, ImapError> {
        let result = async {
            self.begin().await?;
            self.list_folders_inner().await
        }
        .await;
        self.end(result)
    }

    async fn list_folders_inner(&mut self) -> Result<Vec<Folder>, ImapError> {
        let caps = self.capabilities.clone();
        let commands = if caps.list_extended {
            let returns = list_return_options(&caps);
            vec![self.command("LIST").raw(" \"\" \"*\"").raw(&returns).end()]
        } else {
            vec![
                self.command("LIST").raw(" \"\" \"*\"").end(),
                self.command("LSUB").raw(" \"\" \"*\"").end(),
            ]
        };
        let mut entries = Vec::new();
        let mut mailbox_ids: Vec<(String, String)> = Vec::new();
        let done = self
            .execute(&commands, &mut |data| match data {
                Untagged::List(entry) => {
                    entries.push(entry);
                    None
                }
                // LIST-STATUS answers (RFC 5819 §2); only the MAILBOXID was asked for
                Untagged::Status { raw_name, items: StatusItems { mailbox_id: Some(id), .. } } => {
                    mailbox_ids.push((raw_name, id));
                    None
                }
                other => Some(other),
            })
            .await?;
        let mut subscriptions_known = true;
        for (tagged, command) in done.iter().zip(&commands) {
            if command.name == "LSUB" && tagged.status != crate::imap::response::Status::Ok {
                // LSUB is deprecated (RFC 9051 §6.3.9); a server without it just has no answer
                subscriptions_known = false;
                entries.retain(|entry| !entry.from_lsub);
                continue;
            }
            ensure_ok(tagged, command.name)?;
        }
        let mut folders = folders_from_list(&entries, subscriptions_known);
        for folder in &mut folders {
            folder.mailbox_id = mailbox_ids
                .iter()
                .find(|(name, _)| same_mailbox(name, &folder.raw_name))
                .map(|(_, id)| id.clone());
        }
        Ok(folders)
    }

    /// Turns a NO to EXAMINE or STATUS of `raw_name` into `NoSuchMailbox` when LIST does not
    /// show the folder: servers without RFC 5530 codes (Dovecot 2.3 says only "Mailbox doesn't
    /// exist") leave no other way to tell a missing folder from, say, a permission problem.
    /// The extra round trip is only paid on that error path.
    pub(super) async fn explain_refusal<T>(
        &mut self,
        raw_name: &str,
        result: Result<T, ImapError>,
    ) -> Result<T, ImapError> {
        match result {
            Err(error) if is_open_refusal(&error) => {
                let listed = self.listed(&[raw_name]).await?;
                Err(if listed.first() == Some(&false) { missing(raw_name) } else { error })
            }
            other => other,
        }
    }

    /// Whether each folder shows in `LIST "" name` (not as `\NonExistent`), pipelined; a
    /// refused LIST counts as shown, so that the original refusal stands.
    async fn listed(&mut self, raw_names: &[&str]) -> Result<Vec<bool>, ImapError> {
        let commands: Vec<_> = raw_names
            .iter()
            .map(|name| self.command("LIST").raw(" \"\"").string(name.as_bytes()).end())
            .collect();
        let mut found = vec![false; raw_names.len()];
        let done = self
            .execute(&commands, &mut |data| match data {
                Untagged::List(entry) => {
                    let exists = !entry.has_attribute("\\NonExistent");
                    let mut asked = false;
                    for (name, seen) in raw_names.iter().zip(found.iter_mut()) {
                        if same_mailbox(name, &entry.raw_name) {
                            asked = true;
                            *seen |= exists;
                        }
                    }
                    // anything else is NOTIFY's news about another folder
                    (!asked).then_some(Untagged::List(entry))
                }
                other => Some(other),
            })
            .await?;
        for (tagged, seen) in done.iter().zip(found.iter_mut()) {
            *seen |= ensure_ok(tagged, "LIST").is_err();
        }
        Ok(found)
    }

    /// STATUS of one folder (by its raw name).
    pub async fn status(&mut self, raw_name: &str) -> Result<FolderStatus, ImapError> {
        let mut all = self.status_many(&[raw_name]).await?;
        all.pop().unwrap_or_else(|| Err(ImapError::Protocol("no STATUS answer".to_string())))
    }

    /// [`status_many`](Self::status_many) for callers that need the current counters even
    /// of the mailbox this session has open: STATUS of the selected mailbox reports the
    /// session's own, possibly stale view (RFC 9051 §6.3.11; Dovecot does so), which made
    /// parked Pings wake and re-park in a loop. The mailbox is left first (UNSELECT never
    /// expunges, unlike CLOSE). Not for a watcher that IDLEs on its selected mailbox.
    pub async fn status_many_current(
        &mut self,
        raw_names: &[&str],
    ) -> Result<Vec<Result<FolderStatus, ImapError>>, ImapError> {
        let result = async {
            self.begin().await?;
            self.leave_if_asked(raw_names).await?;
            self.status_many_inner(raw_names).await
        }
        .await;
        self.end(result)
    }

    async fn leave_if_asked(&mut self, raw_names: &[&str]) -> Result<(), ImapError> {
        let selected_is_asked = self
            .selected
            .as_ref()
            .is_some_and(|open| raw_names.iter().any(|name| same_mailbox(name, &open.raw_name)));
        if selected_is_asked {
            if self.capabilities.has("UNSELECT") {
                let unselect = self.command("UNSELECT").end();
                let done = self.execute(&[unselect], &mut Some).await?;
                for tagged in &done {
                    ensure_ok(tagged, "UNSELECT")?;
                }
                self.selected = None;
            } else {
                // without UNSELECT, a NOOP at least brings the session's view up to date
                let noop = self.command("NOOP").end();
                self.execute(&[noop], &mut Some).await?;
            }
        }
        Ok(())
    }

    /// STATUS of many folders in one round trip: every command is written before the first
    /// answer is read. A folder that fails (e.g. deleted meanwhile) fails alone.
    pub async fn status_many(
        &mut self,
        raw_names: &[&str],
    ) -> Result<Vec<Result<FolderStatus, ImapError>>, ImapError> {
        let result = async {
            self.begin().await?;
            self.status_many_inner(raw_names).await
        }
        .await;
        self.end(result)
    }

    async fn status_many_inner(
        &mut self,
        raw_names: &[&str],
    ) -> Result<Vec<Result<FolderStatus, ImapError>>, ImapError> {
        let items = if self.capabilities.condstore {
            " (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"
        } else {
            " (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"
        };
        let commands: Vec<_> = raw_names
            .iter()
            .map(|name| self.command("STATUS").string(name.as_bytes()).raw(items).end())
            .collect();
        let mut answers: Vec<Option<StatusItems>> = vec![None; raw_names.len()];
        let done = self
            .execute(&commands, &mut |data| match data {
                Untagged::Status { raw_name, items } => {
                    // first unanswered request for that name (the same name may be asked twice)
                    let slot = raw_names.iter().zip(answers.iter()).position(|(name, answer)| {
                        answer.is_none() && same_mailbox(name, &raw_name)
                    });
                    match slot.and_then(|index| answers.get_mut(index)) {
                        Some(answer) => {
                            *answer = Some(items);
                            None
                        }
                        // NOTIFY's STATUS for some other folder
                        None => Some(Untagged::Status { raw_name, items }),
                    }
                }
                other => Some(other),
            })
            .await?;
        let mut results: Vec<_> = raw_names
            .iter()
            .zip(done.iter().zip(answers))
            .map(|(name, (tagged, answer))| {
                ensure_ok(tagged, "STATUS")?;
                let items = answer.ok_or_else(|| {
                    ImapError::Protocol(format!("STATUS {name}: OK without data"))
                })?;
                FolderStatus::from_items(name, &items)
            })
            .collect();
        // refusals: missing folders or something else? (see `explain_refusal`)
        let refused: Vec<usize> = (0..results.len())
            .filter(|&index| results[index].as_ref().is_err_and(is_open_refusal))
            .collect();
        if !refused.is_empty() {
            let names: Vec<&str> = refused.iter().map(|&index| raw_names[index]).collect();
            let listed = self.listed(&names).await?;
            for (&index, listed) in refused.iter().zip(listed) {
                if !listed {
                    results[index] = Err(missing(raw_names[index]));
                }
            }
        }
        Ok(results)
    }
}

/// `RETURN (...)` for LIST-EXTENDED: subscriptions always, roles and mailbox ids when offered.
fn list_return_options(caps: &crate::imap::Capabilities) -> String {
    let mut options = vec!["SUBSCRIBED"];
    if caps.special_use {
        options.push("SPECIAL-USE");
    }
    if caps.objectid && caps.list_status {
        options.push("STATUS (MAILBOXID)");
    }
    format!(" RETURN ({})", options.join(" "))
}

/// A NO to opening or STATUS of a folder: possibly a missing folder.
fn is_open_refusal(error: &ImapError) -> bool {
    matches!(
        error,
        ImapError::Refused { command: "EXAMINE" | "STATUS", status: RefusalStatus::No, .. }
    )
}

fn missing(raw_name: &str) -> ImapError {
    ImapError::NoSuchMailbox(raw_name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::Capabilities;

    #[test]
    fn mailbox_ids_are_asked_for_only_with_objectid_and_list_status() {
        let atoms =
            |line: &'static str| Capabilities::from_atoms(line.split(' ').map(str::as_bytes));
        let dovecot = atoms("IMAP4rev1 LIST-EXTENDED LIST-STATUS SPECIAL-USE");
        assert_eq!(list_return_options(&dovecot), " RETURN (SUBSCRIBED SPECIAL-USE)");
        let objectid = atoms("IMAP4rev1 LIST-EXTENDED LIST-STATUS SPECIAL-USE OBJECTID");
        assert_eq!(
            list_return_options(&objectid),
            " RETURN (SUBSCRIBED SPECIAL-USE STATUS (MAILBOXID))"
        );
        let no_list_status = atoms("IMAP4rev1 LIST-EXTENDED OBJECTID");
        assert_eq!(list_return_options(&no_list_status), " RETURN (SUBSCRIBED)");
    }
}
