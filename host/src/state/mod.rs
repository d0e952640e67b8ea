//! The state store behind the plugin's `state` capability: a small key-value store with
//! compare-and-swap and multi-key transactions, namespaced by tenant / user / device.
//!
//! [`StateStore`] is the interface every backend implements; the embedded default is
//! [`RedbStore`] (one file); [`PostgresStore`] keeps the state in a PostgreSQL database that
//! several gateway nodes share. Both pass the same conformance suite (`conformance.rs`).

#[cfg(test)]
mod conformance;
mod error;
mod limits;
mod listing;
mod namespace;
mod postgres;
mod redb_store;
mod transaction;

pub use error::{StateError, StateResult};
pub use limits::StoreLimits;
pub use listing::{ListPage, ListScope, MAX_PAGE_ITEMS, PageRequest};
pub use namespace::Namespace;
pub use postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION};
pub use redb_store::{Durability, OnCorruption, RedbOptions, RedbStore};
pub use transaction::{Condition, Write};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future every store operation returns: boxed so that `dyn StateStore` works (the backend
/// is chosen by the config file at run time) and `Send` so it can be awaited on any tokio worker.
pub type StateFuture<'a, T> = Pin<Box<dyn Future<Output = StateResult<T>> + Send + 'a>>;

/// A key-value store partitioned into [`Namespace`]s. Every operation addresses exactly one
/// namespace (or, for listing, one tenant or user), so a caller that is handed a namespace cannot
/// reach another one's entries.
///
/// Writes are durable when their future completes (unless the backend is configured otherwise)
/// and atomic: a crash leaves each of them either fully applied or not at all. A write whose
/// future is dropped before completing may or may not be applied, like one cut by a crash.
pub trait StateStore: Send + Sync {
    /// The limits this store enforces; requests over them fail with a typed error.
    fn limits(&self) -> &StoreLimits;

    fn get<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>>;

    fn put<'a>(&'a self, ns: &'a Namespace, key: &'a str, value: Vec<u8>) -> StateFuture<'a, ()>;

    /// Removes `key`; removing an absent key is not an error.
    fn delete<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, ()>;

    /// Atomically: if `key` holds `expected` (`None`: is absent), set it to `new` (`None`:
    /// delete it) and return `true`; otherwise change nothing and return `false`.
    fn compare_and_swap<'a>(
        &'a self,
        ns: &'a Namespace,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: Option<Vec<u8>>,
    ) -> StateFuture<'a, bool>;

    /// Atomically: if every condition holds, apply every write in order (a later write to the
    /// same key wins) and return `true`; otherwise change nothing and return `false`.
    fn transact<'a>(
        &'a self,
        ns: &'a Namespace,
        conditions: &'a [Condition],
        writes: Vec<Write>,
    ) -> StateFuture<'a, bool>;

    /// One page of the names one level below `scope`; see [`ListScope`].
    fn list<'a>(&'a self, scope: &'a ListScope, page: &'a PageRequest)
    -> StateFuture<'a, ListPage>;

    /// Removes every key of exactly `ns` (resetting a device) and returns how many there were.
    /// An account-wide namespace (`device: None`) does not include the user's devices.
    fn delete_namespace<'a>(&'a self, ns: &'a Namespace) -> StateFuture<'a, u64>;

    /// A handle on the same data whose writes are atomic and visible at once but durable only
    /// once [`flush`](Self::flush) completes: a plugin request writes through one and flushes
    /// before its response leaves, so the request costs one sync instead of one per write.
    /// A crash before the flush loses those writes as a whole, like a crash before the request
    /// ended. The default (every write durable) is always correct.
    fn deferred(self: Arc<Self>) -> Arc<dyn StateStore>;

    /// Makes every write acknowledged so far durable.
    fn flush(&self) -> StateFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}
