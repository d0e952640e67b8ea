//! Fills a mailbox with many messages quickly: MULTIAPPEND with LITERAL+, in batches.
//!
//! Measured against the stack: about 1 ms per 10 KB message (10,000 in ~11 s), where one
//! `doveadm save` per message costs ~35 ms.  It also works against any IMAP server and needs
//! no root.

use std::borrow::Borrow;

use anyhow::{Context, Result};

use crate::imap::{AppendOptions, ImapClient};
use crate::messages::TestMessage;

/// Messages per APPEND command: big enough to amortise the round trip, small enough that one
/// command's transaction stays modest.
const BATCH: usize = 500;

/// APPENDs the messages to `mailbox` with their flags and dates (see
/// [`TestMessage::append_options`]); returns how many were appended.
pub fn seed_mailbox<I>(imap: &mut ImapClient, mailbox: &str, messages: I) -> Result<usize>
where
    I: IntoIterator,
    I::Item: Borrow<TestMessage>,
{
    let mut appended = 0;
    let mut batch = Vec::with_capacity(BATCH);
    for message in messages {
        batch.push(message);
        if batch.len() == BATCH {
            appended += append_batch(imap, mailbox, &batch, appended)?;
            batch.clear();
        }
    }
    appended += append_batch(imap, mailbox, &batch, appended)?;
    Ok(appended)
}

fn append_batch<M: Borrow<TestMessage>>(
    imap: &mut ImapClient,
    mailbox: &str,
    batch: &[M],
    done: usize,
) -> Result<usize> {
    if batch.is_empty() {
        return Ok(0);
    }
    let options: Vec<AppendOptions> = batch.iter().map(|m| m.borrow().append_options()).collect();
    let items: Vec<(&[u8], &AppendOptions)> = batch
        .iter()
        .zip(&options)
        .map(|(message, options)| (message.borrow().raw.as_slice(), options))
        .collect();
    imap.multi_append(mailbox, &items)
        .with_context(|| format!("seeding {mailbox}: messages {}..{}", done, done + batch.len()))?;
    Ok(batch.len())
}
