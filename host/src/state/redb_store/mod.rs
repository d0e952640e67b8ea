//! The embedded backend: one redb file, opened at start.
//!
//! redb is synchronous and lets one write transaction run at a time, so:
//! - reads run on tokio's blocking pool, each in its own read transaction (a snapshot: readers
//!   never wait for the writer nor see half of a write). A plugin request's reads (through
//!   [`StateStore::deferred`]) run on its own guest thread instead: that thread is held while
//!   the guest computes anyway, and redb answers a read from its cache in microseconds, where
//!   the hand-off to the blocking pool and back cost ~50 µs, three times per Sync page;
//! - writes go to one dedicated writer thread that commits them in groups (`writer.rs`): under
//!   load many requests share one commit, i.e. one fsync, instead of queueing for the lock one
//!   fsync each. A caller's future completes only after its group is committed.

mod open;
mod read;
mod recover;
#[cfg(test)]
mod tests;
mod writer;

use super::error::{StateError, StateResult};
use super::limits::StoreLimits;
use super::listing::{ListPage, ListScope, PageRequest};
use super::namespace::{self, Namespace};
use super::transaction::{Condition, Write};
use super::{StateFuture, StateStore};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use writer::{Command, KeyRange, KeyState, Writer};

pub use recover::OnCorruption;

/// When a write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Synced before the write is acknowledged: survives `kill -9` and power loss.
    #[default]
    Immediate,
    /// Synced every `flush_interval_ms`: a crash or power loss may lose the writes of the last
    /// interval (never part of a transaction), for much higher write throughput.
    Eventual,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedbOptions {
    pub durability: Durability,
    /// With `durability = "eventual"`: how long a write may wait to be synced.
    pub flush_interval_ms: u64,
    /// Page cache size; the hot state of active devices should fit.
    pub cache_bytes: usize,
    /// Verify the checksum of every page at open, so a damaged file is refused instead of
    /// served. Reads the whole file once per start; turn off only for very large files (a
    /// file damaged after a clean shutdown is then read as it is, garbage included).
    pub verify_on_open: bool,
    /// What `eas-edge serve` does when the file is found damaged at open (see [`recover`]).
    pub on_corruption: OnCorruption,
    pub limits: StoreLimits,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            durability: Durability::Immediate,
            flush_interval_ms: 1000,
            cache_bytes: 128 * 1024 * 1024,
            verify_on_open: true,
            on_corruption: OnCorruption::default(),
            limits: StoreLimits::default(),
        }
    }
}

/// The state store in one redb file. Cheap to share behind an `Arc`; see the module docs for
/// how it uses threads.
pub struct RedbStore {
    db: Arc<redb::Database>,
    writer: Writer,
    limits: StoreLimits,
}

impl RedbStore {
    /// Opens (or creates) the store at `path`. Fails, with the reason, if the file is in use by
    /// another process, damaged, or written by an incompatible version.
    pub async fn open(path: impl AsRef<Path>, options: RedbOptions) -> StateResult<RedbStore> {
        let path = path.as_ref().to_path_buf();
        let opening = path.clone();
        let verify = options.verify_on_open;
        let cache = options.cache_bytes;
        let db = tokio::task::spawn_blocking(move || open::open_database(&opening, cache, verify))
            .await
            .map_err(|failure| open::open_task_failed(&path, failure))??;
        let db = Arc::new(db);
        let flush_interval = match options.durability {
            Durability::Immediate => None,
            Durability::Eventual => Some(Duration::from_millis(options.flush_interval_ms)),
        };
        let writer = Writer::start(db.clone(), flush_interval)?;
        Ok(RedbStore { db, writer, limits: options.limits })
    }

    /// Stops the writer (after the writes already submitted), syncs, marks the file as cleanly
    /// shut down and closes it. Dropping the store instead does the same in the background; this
    /// waits for it and reports errors, and the file can be reopened as soon as it returns.
    pub async fn close(self) -> StateResult<()> {
        let RedbStore { db, writer, .. } = self;
        tokio::task::spawn_blocking(move || {
            writer.stop()?;
            match Arc::try_unwrap(db) {
                Ok(db) => db.close().map_err(open::storage_error),
                // A read whose caller gave up still holds the database; it closes when that read
                // ends.
                Err(_still_shared) => Ok(()),
            }
        })
        .await
        .map_err(|failure| StateError::Backend(failure.into()))?
    }

    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&read::EntriesTable) -> StateResult<T> + Send + 'static,
    ) -> StateResult<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || read::in_snapshot(&db, read))
            .await
            .map_err(|failure| StateError::Backend(failure.into()))?
    }

    /// The storage key of `key` in `ns`, both checked against the limits.
    fn checked_key(&self, ns: &Namespace, key: &str) -> StateResult<Vec<u8>> {
        self.limits.check_namespace(ns)?;
        self.limits.check_key(key)?;
        Ok(namespace::storage_key(ns, key))
    }

    /// [`StateStore::get`] on the calling thread, for a caller that may block it (module docs).
    fn get_on_this_thread(&self, ns: &Namespace, key: &str) -> StateResult<Option<Vec<u8>>> {
        let storage_key = self.checked_key(ns, key)?;
        read::in_snapshot(&self.db, |table| read::get(table, &storage_key))
    }

    /// Checks and submits a transaction; `durable: false` defers its fsync (module docs).
    async fn write(
        &self,
        ns: &Namespace,
        conditions: &[Condition],
        writes: Vec<Write>,
        durable: bool,
    ) -> StateResult<bool> {
        self.limits.check_namespace(ns)?;
        self.limits.check_transaction(conditions, &writes)?;
        let (conditions, writes) = encode_transaction(ns, conditions, writes);
        let (command, outcome) = Command::transact(conditions, writes, durable);
        self.writer.submit(command)?;
        outcome.await.map_err(|_| StateError::Closed)?
    }

    async fn compare_and_swap_with(
        &self,
        ns: &Namespace,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
        durable: bool,
    ) -> StateResult<bool> {
        let condition = Condition { key: key.to_owned(), expected: expected.map(<[u8]>::to_vec) };
        let write = Write { key: key.to_owned(), value: new };
        self.write(ns, std::slice::from_ref(&condition), vec![write], durable).await
    }

    async fn delete_namespace_with(&self, ns: &Namespace, durable: bool) -> StateResult<u64> {
        self.limits.check_namespace(ns)?;
        let range = KeyRange::with_prefix(namespace::namespace_prefix(ns));
        let (command, outcome) = Command::delete_range(range, durable);
        self.writer.submit(command)?;
        outcome.await.map_err(|_| StateError::Closed)?
    }

    async fn sync(&self) -> StateResult<()> {
        let (command, outcome) = Command::sync();
        self.writer.submit(command)?;
        outcome.await.map_err(|_| StateError::Closed)?
    }
}

/// Encodes a transaction's keys into storage keys of `ns`.
fn encode_transaction(
    ns: &Namespace,
    conditions: &[Condition],
    writes: Vec<Write>,
) -> (Vec<KeyState>, Vec<KeyState>) {
    let conditions = conditions
        .iter()
        .map(|c| KeyState { key: namespace::storage_key(ns, &c.key), value: c.expected.clone() })
        .collect();
    let writes = writes
        .into_iter()
        .map(|w| KeyState { key: namespace::storage_key(ns, &w.key), value: w.value })
        .collect();
    (conditions, writes)
}

impl StateStore for RedbStore {
    fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    fn get<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let storage_key = self.checked_key(ns, key)?;
            self.read(move |table| read::get(table, &storage_key)).await
        })
    }

    fn put<'a>(&'a self, ns: &'a Namespace, key: &'a str, value: Vec<u8>) -> StateFuture<'a, ()> {
        Box::pin(async move {
            self.write(ns, &[], vec![Write::put(key, value)], true).await.map(|_always| ())
        })
    }

    fn delete<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, ()> {
        Box::pin(
            async move { self.write(ns, &[], vec![Write::delete(key)], true).await.map(|_| ()) },
        )
    }

    fn compare_and_swap<'a>(
        &'a self,
        ns: &'a Namespace,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: Option<Vec<u8>>,
    ) -> StateFuture<'a, bool> {
        Box::pin(self.compare_and_swap_with(ns, key, expected, new, true))
    }

    fn transact<'a>(
        &'a self,
        ns: &'a Namespace,
        conditions: &'a [Condition],
        writes: Vec<Write>,
    ) -> StateFuture<'a, bool> {
        Box::pin(self.write(ns, conditions, writes, true))
    }

    fn list<'a>(
        &'a self,
        scope: &'a ListScope,
        page: &'a PageRequest,
    ) -> StateFuture<'a, ListPage> {
        Box::pin(async move {
            let prefix = match scope {
                ListScope::Users { tenant } => namespace::tenant_prefix(tenant),
                ListScope::Devices { tenant, user } => namespace::devices_prefix(tenant, user),
                ListScope::Keys(ns) => namespace::namespace_prefix(ns),
            };
            let after = page.after.clone();
            let limit = page.effective_limit();
            self.read(move |table| read::list_children(table, &prefix, after.as_deref(), limit))
                .await
        })
    }

    fn delete_namespace<'a>(&'a self, ns: &'a Namespace) -> StateFuture<'a, u64> {
        Box::pin(self.delete_namespace_with(ns, true))
    }

    fn deferred(self: Arc<Self>) -> Arc<dyn StateStore> {
        Arc::new(DeferredRedbStore { store: self })
    }

    fn flush(&self) -> StateFuture<'_, ()> {
        Box::pin(self.sync())
    }
}

/// The same store, with every write's fsync deferred to the next `flush` (or any synced
/// commit): what one plugin request writes costs one fsync (`writer.rs`). Reads see the
/// deferred writes at once, like any committed write.
struct DeferredRedbStore {
    store: Arc<RedbStore>,
}

impl StateStore for DeferredRedbStore {
    fn limits(&self) -> &StoreLimits {
        &self.store.limits
    }

    /// On the guest thread that asks (module docs).
    fn get<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>> {
        Box::pin(std::future::ready(self.store.get_on_this_thread(ns, key)))
    }

    fn put<'a>(&'a self, ns: &'a Namespace, key: &'a str, value: Vec<u8>) -> StateFuture<'a, ()> {
        Box::pin(async move {
            self.store.write(ns, &[], vec![Write::put(key, value)], false).await.map(|_| ())
        })
    }

    fn delete<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, ()> {
        Box::pin(async move {
            self.store.write(ns, &[], vec![Write::delete(key)], false).await.map(|_| ())
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        ns: &'a Namespace,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: Option<Vec<u8>>,
    ) -> StateFuture<'a, bool> {
        Box::pin(self.store.compare_and_swap_with(ns, key, expected, new, false))
    }

    fn transact<'a>(
        &'a self,
        ns: &'a Namespace,
        conditions: &'a [Condition],
        writes: Vec<Write>,
    ) -> StateFuture<'a, bool> {
        Box::pin(self.store.write(ns, conditions, writes, false))
    }

    fn list<'a>(
        &'a self,
        scope: &'a ListScope,
        page: &'a PageRequest,
    ) -> StateFuture<'a, ListPage> {
        self.store.list(scope, page)
    }

    fn delete_namespace<'a>(&'a self, ns: &'a Namespace) -> StateFuture<'a, u64> {
        Box::pin(self.store.delete_namespace_with(ns, false))
    }

    fn deferred(self: Arc<Self>) -> Arc<dyn StateStore> {
        self
    }

    fn flush(&self) -> StateFuture<'_, ()> {
        Box::pin(self.store.sync())
    }
}
