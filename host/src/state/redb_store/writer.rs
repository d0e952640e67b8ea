//! The writer thread: the only place that opens redb write transactions.
//!
//! It takes the commands waiting in its queue (up to a bound) and applies them, in arrival order,
//! inside one write transaction, then commits once: group commit. Each command still sees the
//! effects of the ones before it, so the outcome is the same as running them one by one; only
//! the number of fsyncs changes. Replies are sent after the commit returns, so an acknowledged
//! write is a committed write. If anything in the group fails, the transaction is dropped
//! (nothing of the group is applied) and every command of the group gets the error.
//!
//! Deferred writes (`durable: false`, see `DeferredRedbStore`) are committed without an fsync:
//! visible to every later read at once, but durable only with the next synced commit, which a
//! `Sync` command forces. A plugin request's writes all go out deferred and the host sends one
//! `Sync` before the response: one fsync per request instead of one per write.

use super::open::{self, ENTRIES};
use crate::state::error::{StateError, StateResult};
use crate::state::namespace::prefix_end;
use redb::{Database, ReadableTable, Table};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Bounds on one group, so a burst cannot build a transaction that holds up every other writer
/// for long or pins a lot of memory.
const MAX_GROUP_COMMANDS: usize = 256;
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;

/// A storage key and what it holds: a value, or `None` for absent.
#[derive(Debug)]
pub(super) struct KeyState {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

impl KeyState {
    fn bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Vec::len)
    }
}

/// The storage keys from `start` (inclusive) to `end` (exclusive; `None`: to the last key).
#[derive(Debug)]
pub(super) struct KeyRange {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl KeyRange {
    pub fn with_prefix(prefix: Vec<u8>) -> Self {
        let end = prefix_end(&prefix);
        KeyRange { start: prefix, end }
    }
}

pub(super) type Outcome<T> = oneshot::Receiver<StateResult<T>>;

/// One caller's write, with where to send its result.
pub(super) enum Command {
    Transact {
        conditions: Vec<KeyState>,
        writes: Vec<KeyState>,
        /// Synced before the reply (else deferred to the next synced commit).
        durable: bool,
        applied: bool,
        reply: oneshot::Sender<StateResult<bool>>,
    },
    DeleteRange {
        range: KeyRange,
        durable: bool,
        deleted: u64,
        reply: oneshot::Sender<StateResult<u64>>,
    },
    /// Every write acknowledged before it becomes durable (an fsync when any is not yet).
    Sync { reply: oneshot::Sender<StateResult<()>> },
}

impl Command {
    pub fn transact(
        conditions: Vec<KeyState>,
        writes: Vec<KeyState>,
        durable: bool,
    ) -> (Command, Outcome<bool>) {
        let (reply, outcome) = oneshot::channel();
        (Command::Transact { conditions, writes, durable, applied: false, reply }, outcome)
    }

    pub fn delete_range(range: KeyRange, durable: bool) -> (Command, Outcome<u64>) {
        let (reply, outcome) = oneshot::channel();
        (Command::DeleteRange { range, durable, deleted: 0, reply }, outcome)
    }

    pub fn sync() -> (Command, Outcome<()>) {
        let (reply, outcome) = oneshot::channel();
        (Command::Sync { reply }, outcome)
    }

    fn is_write(&self) -> bool {
        !matches!(self, Command::Sync { .. })
    }

    fn is_durable_write(&self) -> bool {
        match self {
            Command::Transact { durable, .. } | Command::DeleteRange { durable, .. } => *durable,
            Command::Sync { .. } => false,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Command::Transact { conditions, writes, .. } => {
                conditions.iter().chain(writes).map(KeyState::bytes).sum()
            }
            Command::DeleteRange { range, .. } => {
                range.start.len() + range.end.as_ref().map_or(0, Vec::len)
            }
            Command::Sync { .. } => 0,
        }
    }

    /// Applies the command inside the group's transaction and remembers its outcome.
    fn apply(&mut self, table: &mut Table<&[u8], &[u8]>) -> Result<(), redb::Error> {
        match self {
            Command::Transact { conditions, writes, applied, .. } => {
                for condition in conditions.iter() {
                    let current = table.get(condition.key.as_slice())?;
                    let holds = match (&current, &condition.value) {
                        (None, None) => true,
                        (Some(current), Some(expected)) => current.value() == expected.as_slice(),
                        _ => false,
                    };
                    if !holds {
                        *applied = false;
                        return Ok(());
                    }
                }
                for write in writes.iter() {
                    match &write.value {
                        Some(value) => table.insert(write.key.as_slice(), value.as_slice())?,
                        None => table.remove(write.key.as_slice())?,
                    };
                }
                *applied = true;
            }
            Command::DeleteRange { range, deleted, .. } => {
                let end = match &range.end {
                    Some(end) => Bound::Excluded(end.as_slice()),
                    None => Bound::Unbounded,
                };
                let bounds = (Bound::Included(range.start.as_slice()), end);
                *deleted = 0;
                for removed in table.extract_from_if::<&[u8], _>(bounds, |_, _| true)? {
                    removed?;
                    *deleted += 1;
                }
            }
            Command::Sync { .. } => {}
        }
        Ok(())
    }

    /// Sends the caller its outcome once the group is committed, or the group's error.
    /// A caller that stopped waiting is no longer interested: a failed send is fine.
    fn finish(self, group_result: &Result<(), redb::Error>) {
        match self {
            Command::Transact { applied, reply, .. } => {
                let _ = reply.send(group_result.as_ref().map(|()| applied).map_err(group_error));
            }
            Command::DeleteRange { deleted, reply, .. } => {
                let _ = reply.send(group_result.as_ref().map(|()| deleted).map_err(group_error));
            }
            Command::Sync { reply } => {
                let _ = reply.send(group_result.as_ref().copied().map_err(group_error));
            }
        }
    }
}

/// One error per caller: the redb error itself cannot be shared between them.
fn group_error(error: &redb::Error) -> StateError {
    match error {
        redb::Error::Corrupted(detail) => StateError::Corrupt(detail.clone()),
        other => StateError::Backend(other.to_string().into()),
    }
}

/// Handle to the writer thread.
pub(super) struct Writer {
    commands: Sender<Command>,
    thread: JoinHandle<StateResult<()>>,
}

impl Writer {
    /// Starts the thread. With a `flush_interval`, commits are not synced one by one (redb
    /// `Durability::None`); the thread syncs when the oldest unsynced commit is that old.
    pub fn start(db: Arc<Database>, flush_interval: Option<Duration>) -> StateResult<Writer> {
        let (commands, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || run(&db, &queue, flush_interval))
            .map_err(|error| StateError::Backend(error.into()))?;
        Ok(Writer { commands, thread })
    }

    pub fn submit(&self, command: Command) -> StateResult<()> {
        self.commands.send(command).map_err(|_| StateError::Closed)
    }

    /// Lets the thread finish the queued commands, sync and mark the file cleanly shut down,
    /// and waits for that. Blocks: call it from a blocking context.
    pub fn stop(self) -> StateResult<()> {
        drop(self.commands);
        self.thread
            .join()
            .map_err(|_| StateError::Backend("the state writer thread panicked".into()))?
    }
}

fn run(
    db: &Database,
    queue: &Receiver<Command>,
    flush_interval: Option<Duration>,
) -> StateResult<()> {
    // When the oldest commit not yet synced was made (only with a flush interval).
    let mut unsynced_since: Option<Instant> = None;
    // Without a flush interval: deferred writes were committed since the last synced commit.
    let mut unsynced = false;
    loop {
        let first = match (unsynced_since, flush_interval) {
            (Some(since), Some(interval)) => {
                let wait = (since + interval).saturating_duration_since(Instant::now());
                match queue.recv_timeout(wait) {
                    Ok(command) => command,
                    Err(RecvTimeoutError::Timeout) => {
                        match open::sync(db) {
                            Ok(()) => unsynced_since = None,
                            // Retried at the next interval; the commits stay valid in memory.
                            Err(error) => tracing::error!(%error, "syncing the state store"),
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            _ => match queue.recv() {
                Ok(command) => command,
                Err(_) => break,
            },
        };
        let group = gather_group(first, queue);
        let has_writes = group.iter().any(Command::is_write);
        if flush_interval.is_some() {
            // Eventual durability: nothing is synced per write, and a `Sync` does not force
            // one either (the operator chose the interval).
            if !has_writes {
                group.into_iter().for_each(|command| command.finish(&Ok(())));
                continue;
            }
            commit_group(db, redb::Durability::None, group);
            if unsynced_since.is_none() {
                unsynced_since = Some(Instant::now());
            }
            continue;
        }
        let wants_sync = group.iter().any(|command| !command.is_write());
        let sync =
            group.iter().any(Command::is_durable_write) || (wants_sync && (unsynced || has_writes));
        if !has_writes && !sync {
            // Only `Sync`s, and everything is durable already: no commit at all.
            for command in group {
                command.finish(&Ok(()));
            }
            continue;
        }
        let durability = if sync { redb::Durability::Immediate } else { redb::Durability::None };
        if commit_group(db, durability, group) {
            unsynced = !sync;
        }
    }
    open::mark_clean_shutdown(db)
}

/// `first` plus whatever else is already waiting, within the group bounds.
fn gather_group(first: Command, queue: &Receiver<Command>) -> Vec<Command> {
    let mut bytes = first.bytes();
    let mut group = vec![first];
    while group.len() < MAX_GROUP_COMMANDS && bytes < MAX_GROUP_BYTES {
        match queue.try_recv() {
            Ok(command) => {
                bytes += command.bytes();
                group.push(command);
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
    group
}

/// Applies and commits `group`, then answers each command; true when the commit succeeded.
fn commit_group(db: &Database, durability: redb::Durability, mut group: Vec<Command>) -> bool {
    let result = apply_and_commit(db, durability, &mut group);
    if let Err(error) = &result {
        tracing::error!(%error, commands = group.len(), "state store write failed");
    }
    let committed = result.is_ok();
    for command in group {
        command.finish(&result);
    }
    committed
}

fn apply_and_commit(
    db: &Database,
    durability: redb::Durability,
    group: &mut [Command],
) -> Result<(), redb::Error> {
    let mut transaction = db.begin_write()?;
    transaction.set_durability(durability)?;
    {
        let mut table = transaction.open_table(ENTRIES)?;
        for command in group.iter_mut() {
            command.apply(&mut table)?;
        }
    }
    transaction.commit()?;
    Ok(())
}
