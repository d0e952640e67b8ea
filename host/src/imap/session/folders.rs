//! Folder listing and STATUS.

use super::{Session, ensure_ok};
use crate::imap::error::ImapError;
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
    /// (`RETURN (SUBSCRIBED SPECIAL-USE)`, RFC 5258 and RFC 6154 §2); without it LIST and LSUB
    /// are pipelined.
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
            let returns = if caps.special_use {
                " RETURN (SUBSCRIBED SPECIAL-USE)"
            } else {
                " RETURN (SUBSCRIBED)"
            };
            vec![self.command("LIST").raw(" \"\" \"*\"").raw(returns).end()]
        } else {
            vec![
                self.command("LIST").raw(" \"\" \"*\"").end(),
                self.command("LSUB").raw(" \"\" \"*\"").end(),
            ]
        };
        let mut entries = Vec::new();
        let done = self
            .execute(&commands, &mut |data| match data {
                Untagged::List(entry) => {
                    entries.push(entry);
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
        Ok(folders_from_list(&entries, subscriptions_known))
    }

    /// STATUS of one folder (by its raw name).
    pub async fn status(&mut self, raw_name: &str) -> Result<FolderStatus, ImapError> {
        let mut all = self.status_many(&[raw_name]).await?;
        all.pop().unwrap_or_else(|| Err(ImapError::Protocol("no STATUS answer".to_string())))
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
        Ok(raw_names
            .iter()
            .zip(done.iter().zip(answers))
            .map(|(name, (tagged, answer))| {
                ensure_ok(tagged, "STATUS")?;
                let items = answer.ok_or_else(|| {
                    ImapError::Protocol(format!("STATUS {name}: OK without data"))
                })?;
                FolderStatus::from_items(name, &items)
            })
            .collect())
    }
}
