//! What push needs from a session: IDLE (RFC 2177), NOTIFY (RFC 5465) and handing over the
//! data the server sends on its own. Watchers are built on top of this elsewhere.

use std::time::Duration;

use tokio::time::Instant;

use super::{MAX_QUEUED_UNSOLICITED, Session, ensure_ok, single};
use crate::imap::error::ImapError;
use crate::imap::response::{ListEntry, Response, Status, StatusItems, Untagged};
use crate::imap::uidset::UidRange;

/// Data the server sent without being asked for it (or as a side effect of another command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsolicited {
    /// The selected mailbox now has this many messages.
    Exists(u32),
    /// A message was expunged (by sequence number; servers without QRESYNC).
    Expunge(u32),
    /// UIDs expunged from the selected mailbox (with QRESYNC enabled, instead of EXPUNGE).
    Vanished(Vec<UidRange>),
    /// A message's flags changed; `uid` and `modseq` are there with CONDSTORE/QRESYNC enabled.
    FlagsChanged { seq: u32, uid: Option<u32>, flags: Vec<String>, modseq: Option<u64> },
    /// A folder's counters changed (NOTIFY with STATUS, RFC 5465 §5.1).
    Status { raw_name: String, items: StatusItems },
    /// A folder was created, renamed or its attributes changed (NOTIFY MailboxName).
    FolderListed(ListEntry),
    /// Too much arrived before it was read: some data was dropped, resynchronise.
    Overflow,
}

/// Which mailboxes a NOTIFY event group covers (RFC 5465 §6, filter-mailboxes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    /// These folders and everything below them (raw names).
    Subtree(Vec<String>),
    /// These folders (raw names).
    Mailboxes(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEvent {
    MessageNew,
    MessageExpunge,
    FlagChange,
    MailboxName,
    SubscriptionChange,
}

impl NotifyEvent {
    fn keyword(self) -> &'static str {
        match self {
            NotifyEvent::MessageNew => "MessageNew",
            NotifyEvent::MessageExpunge => "MessageExpunge",
            NotifyEvent::FlagChange => "FlagChange",
            NotifyEvent::MailboxName => "MailboxName",
            NotifyEvent::SubscriptionChange => "SubscriptionChange",
        }
    }
}

impl Session {
    /// Starts IDLE on the selected mailbox (or, after NOTIFY SET, for the NOTIFY events). Read
    /// what arrives with [`read_unsolicited`](Self::read_unsolicited); any other operation
    /// ends the IDLE first (DONE).
    pub async fn idle_start(&mut self) -> Result<(), ImapError> {
        let result = async {
            self.begin().await?;
            if !self.capabilities.idle {
                return Err(ImapError::Unsupported("IDLE"));
            }
            let command = self.command("IDLE").end();
            let tag = command.tag.clone();
            self.connection.write_all(&command.pieces().concat()).await?;
            loop {
                match self.read().await? {
                    Response::Continuation(_) => break,
                    Response::Untagged(data) => self.queue_unsolicited(data),
                    Response::Tagged(tagged) if tagged.tag == tag => {
                        return ensure_ok(&tagged, "IDLE");
                    }
                    Response::Tagged(tagged) => {
                        return Err(ImapError::Protocol(format!("unknown tag {}", tagged.tag)));
                    }
                }
            }
            self.idle_tag = Some(tag);
            Ok(())
        }
        .await;
        self.end(result)
    }

    /// Whether an IDLE is running: started, and ended neither by us nor by the server.
    pub fn is_idle(&self) -> bool {
        self.idle_tag.is_some()
    }

    /// Ends IDLE (DONE) and waits for its completion; nothing happens when not idling.
    pub async fn idle_done(&mut self) -> Result<(), ImapError> {
        let result = self.begin().await;
        self.end(result)
    }

    /// Sends DONE and reads up to IDLE's completion, queueing what arrives meanwhile.
    pub(super) async fn finish_idle(&mut self) -> Result<(), ImapError> {
        let Some(tag) = self.idle_tag.take() else { return Ok(()) };
        self.connection.write_all(b"DONE\r\n").await?;
        loop {
            match self.read().await? {
                Response::Tagged(tagged) if tagged.tag == tag => {
                    return ensure_ok(&tagged, "IDLE");
                }
                Response::Untagged(Untagged::Condition { status: Status::Bye, text, .. }) => {
                    self.bye = Some(text);
                }
                Response::Untagged(data) => self.queue_unsolicited(data),
                other => {
                    return Err(ImapError::Protocol(format!("answer to DONE: {other:?}")));
                }
            }
        }
    }

    /// `NOTIFY SET [STATUS] (target (events)) ...` (RFC 5465 §3.1). With `status`, the server
    /// first sends STATUS for every covered folder. RFC 5465 §5 wants MessageNew and
    /// MessageExpunge together, and FlagChange only with both.
    pub async fn notify_set(
        &mut self,
        groups: &[(NotifyTarget, Vec<NotifyEvent>)],
        status: bool,
    ) -> Result<(), ImapError> {
        let result = async {
            self.begin().await?;
            if !self.capabilities.notify {
                return Err(ImapError::Unsupported("NOTIFY"));
            }
            let mut command = self.command("NOTIFY").raw(" SET");
            if status {
                command = command.raw(" STATUS");
            }
            for (target, events) in groups {
                command = command.raw(" (");
                command = match target {
                    NotifyTarget::Selected => command.raw("selected"),
                    NotifyTarget::SelectedDelayed => command.raw("selected-delayed"),
                    NotifyTarget::Inboxes => command.raw("inboxes"),
                    NotifyTarget::Personal => command.raw("personal"),
                    NotifyTarget::Subscribed => command.raw("subscribed"),
                    NotifyTarget::Subtree(names) => mailbox_list(command.raw("subtree "), names),
                    NotifyTarget::Mailboxes(names) => {
                        mailbox_list(command.raw("mailboxes "), names)
                    }
                };
                let keywords: Vec<&str> = events.iter().map(|event| event.keyword()).collect();
                command = command.raw(&format!(" ({}))", keywords.join(" ")));
            }
            let command = command.end();
            let done = self.execute(&[command], &mut Some).await?;
            ensure_ok(&single(done)?, "NOTIFY")
        }
        .await;
        self.end(result)
    }

    /// `NOTIFY NONE`: back to plain IMAP behaviour.
    pub async fn notify_none(&mut self) -> Result<(), ImapError> {
        let result = async {
            self.begin().await?;
            let command = self.command("NOTIFY").raw(" NONE").end();
            let done = self.execute(&[command], &mut Some).await?;
            ensure_ok(&single(done)?, "NOTIFY")
        }
        .await;
        self.end(result)
    }

    /// The unsolicited data queued so far, or else what arrives within `wait` (an empty list
    /// when nothing does). Use it during IDLE, after NOTIFY SET, or between operations.
    pub async fn read_unsolicited(
        &mut self,
        wait: Duration,
    ) -> Result<Vec<Unsolicited>, ImapError> {
        if let Some(reason) = &self.broken {
            return Err(ImapError::Unavailable(format!("session unusable: {reason}")));
        }
        if self.busy {
            return Err(ImapError::Unavailable("an operation was cancelled midway".to_string()));
        }
        if self.unsolicited.is_empty() {
            // reading is cancel-safe (bytes stay buffered until a response is whole), so no
            // busy marker: a caller may drop this future at any time
            self.connection.set_deadline(Instant::now() + wait + self.timeouts.io);
            let result = self.receive_pushed(wait).await;
            if let Err(error) = &result
                && error.breaks_session()
            {
                self.broken = Some(error.to_string());
            }
            result?;
        }
        self.unsolicited_overflowed = false;
        Ok(self.unsolicited.drain(..).collect())
    }

    async fn receive_pushed(&mut self, wait: Duration) -> Result<(), ImapError> {
        let Some(first) = self.connection.wait_for_response(wait).await? else { return Ok(()) };
        self.take_pushed(first)?;
        // and whatever else is already complete in the buffer
        while let Some(response) = self.connection.take_buffered()? {
            self.take_pushed(response)?;
        }
        Ok(())
    }

    fn take_pushed(&mut self, response: Response) -> Result<(), ImapError> {
        match response {
            Response::Untagged(Untagged::Condition { status: Status::Bye, text, .. }) => {
                Err(ImapError::Unavailable(format!("the server ended the session: {text}")))
            }
            Response::Untagged(data) => {
                self.queue_unsolicited(data);
                Ok(())
            }
            // the server ended IDLE by itself
            Response::Tagged(tagged) if self.idle_tag.as_deref() == Some(tagged.tag.as_str()) => {
                self.idle_tag = None;
                ensure_ok(&tagged, "IDLE")
            }
            Response::Tagged(tagged) => {
                Err(ImapError::Protocol(format!("completion for unknown tag {}", tagged.tag)))
            }
            Response::Continuation(_) => Ok(()),
        }
    }

    /// Keeps what push cares about, bounded.
    pub(super) fn queue_unsolicited(&mut self, data: Untagged) {
        let event = match data {
            Untagged::Exists(count) => Unsolicited::Exists(count),
            Untagged::Expunge(seq) => Unsolicited::Expunge(seq),
            Untagged::Vanished { earlier: false, uids } => Unsolicited::Vanished(uids),
            Untagged::Fetch { seq, data } => match data.flags {
                Some(flags) => {
                    Unsolicited::FlagsChanged { seq, uid: data.uid, flags, modseq: data.modseq }
                }
                None => return,
            },
            Untagged::Status { raw_name, items } => Unsolicited::Status { raw_name, items },
            Untagged::List(entry) => Unsolicited::FolderListed(entry),
            _ => return,
        };
        if self.unsolicited_overflowed {
            return;
        }
        if self.unsolicited.len() >= MAX_QUEUED_UNSOLICITED {
            self.unsolicited_overflowed = true;
            self.unsolicited.push_back(Unsolicited::Overflow);
            return;
        }
        self.unsolicited.push_back(event);
    }
}

/// `(name name ...)`
fn mailbox_list(
    mut command: crate::imap::command::Command,
    names: &[String],
) -> crate::imap::command::Command {
    command = command.raw("(");
    for (index, name) in names.iter().enumerate() {
        command = if index == 0 {
            command.string_unspaced(name.as_bytes())
        } else {
            command.string(name.as_bytes())
        };
    }
    command.raw(")")
}
