//! The cluster backend: the state in one PostgreSQL database that every gateway node shares.
//!
//! - Rows are keyed by the same storage keys as the embedded store (`namespace.rs`), so the
//!   isolation and listing order proofs carry over unchanged.
//! - Every write is one call of a server-side function (`migrations/0001_state.sql`): one round
//!   trip, one transaction, conditions checked under a per-namespace advisory lock, so a
//!   SyncKey advance is atomic across nodes.
//! - The deferred handle (one per plugin request) commits its writes asynchronously
//!   (`synchronous_commit = off` for that transaction only): visible to every node at once,
//!   durable at the request's `flush`, which is one synchronous commit. PostgreSQL's WAL is one
//!   sequence, so that flush also makes durable every earlier asynchronous commit, including
//!   other nodes' writes this request read.
//! - Connections come from a `deadpool-postgres` pool; statements are prepared once per
//!   connection.

mod listing;
mod migrations;
#[cfg(test)]
mod tests;

use super::error::{StateError, StateResult};
use super::limits::StoreLimits;
use super::listing::{ListPage, ListScope, PageRequest};
use super::namespace::{self, Namespace};
use super::transaction::{Condition, Write};
use super::{StateFuture, StateStore};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use migrations::SCHEMA_VERSION;

/// `[state.postgres]`: where the shared database is and how many connections a node keeps.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresOptions {
    /// A libpq-style URL or key=value string, e.g. `postgresql://eas@db.internal/eas_edge`.
    /// Connections are not encrypted: keep the database on a private network or loopback.
    pub url: String,
    /// Connections this node opens at most (plus one for cluster wake-ups).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long a request waits for a connection (to open, or from a busy pool).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// How often a node whose devices wait for push retries to become the account's watcher:
    /// the longest a dead node's accounts go unwatched (docs/cluster.md).
    #[serde(default = "default_takeover")]
    pub watcher_takeover_seconds: u64,
    #[serde(default)]
    pub limits: StoreLimits,
}

fn default_takeover() -> u64 {
    5
}

fn default_pool_size() -> usize {
    16
}

fn default_connect_timeout() -> u64 {
    10
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            pool_size: default_pool_size(),
            connect_timeout_seconds: default_connect_timeout(),
            watcher_takeover_seconds: default_takeover(),
            limits: StoreLimits::default(),
        }
    }

    pub fn watcher_takeover(&self) -> Duration {
        Duration::from_secs(self.watcher_takeover_seconds.max(1))
    }

    /// The parsed connection settings (also used for the cluster's LISTEN connection).
    pub fn connection_config(&self) -> StateResult<tokio_postgres::Config> {
        let mut config = tokio_postgres::Config::from_str(&self.url).map_err(backend)?;
        config.connect_timeout(Duration::from_secs(self.connect_timeout_seconds.max(1)));
        if config.get_application_name().is_none() {
            config.application_name("eas-edge");
        }
        Ok(config)
    }
}

/// The URL may hold a password: never print it.
impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &"(hidden)")
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_seconds", &self.connect_timeout_seconds)
            .field("watcher_takeover_seconds", &self.watcher_takeover_seconds)
            .field("limits", &self.limits)
            .finish()
    }
}

pub(super) fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StateError {
    StateError::Backend(Box::new(error))
}

const GET: &str = "SELECT v FROM eas_edge_state WHERE k = $1";
const TRANSACT: &str = "SELECT eas_edge_transact($1, $2, $3, $4, $5, $6)";
const DELETE_RANGE: &str = "SELECT eas_edge_delete_range($1, $2, $3, $4)";
const FLUSH: &str = "SELECT eas_edge_flush()";

/// The state store in a shared PostgreSQL database. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    pool: Pool,
    limits: StoreLimits,
}

impl PostgresStore {
    /// Connects, brings the schema up to date (`migrations.rs`) and returns the store. Fails
    /// with the reason if the database is unreachable or has a newer schema than this build.
    pub async fn open(options: PostgresOptions) -> StateResult<PostgresStore> {
        let config = options.connection_config()?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let timeout = Some(Duration::from_secs(options.connect_timeout_seconds.max(1)));
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .build()
            .map_err(backend)?;
        let store = PostgresStore { pool, limits: options.limits };
        let mut client = store.client().await?;
        migrations::apply(&mut client).await?;
        // The flush rows of server processes that have ended (one row per process ever used):
        // a tidy-up, harmless if two nodes do it at once.
        client
            .execute(
                "DELETE FROM eas_edge_flush \
                 WHERE backend NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)",
                &[],
            )
            .await
            .map_err(backend)?;
        Ok(store)
    }

    async fn client(&self) -> StateResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(backend)
    }

    async fn transact_with(
        &self,
        ns: &Namespace,
        conditions: &[Condition],
        writes: Vec<Write>,
        durable: bool,
    ) -> StateResult<bool> {
        self.limits.check_namespace(ns)?;
        self.limits.check_transaction(conditions, &writes)?;
        let prefix = namespace::namespace_prefix(ns);
        let condition_keys: Vec<Vec<u8>> =
            conditions.iter().map(|c| namespace::storage_key(ns, &c.key)).collect();
        let condition_values: Vec<Option<&[u8]>> =
            conditions.iter().map(|c| c.expected.as_deref()).collect();
        let write_keys: Vec<Vec<u8>> =
            writes.iter().map(|w| namespace::storage_key(ns, &w.key)).collect();
        let write_values: Vec<Option<&[u8]>> = writes.iter().map(|w| w.value.as_deref()).collect();
        let client = self.client().await?;
        let statement = client.prepare_cached(TRANSACT).await.map_err(backend)?;
        let row = client
            .query_one(
                &statement,
                &[
                    &prefix,
                    &durable,
                    &condition_keys,
                    &condition_values,
                    &write_keys,
                    &write_values,
                ],
            )
            .await
            .map_err(backend)?;
        row.try_get(0).map_err(backend)
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
        self.transact_with(ns, std::slice::from_ref(&condition), vec![write], durable).await
    }

    async fn delete_namespace_with(&self, ns: &Namespace, durable: bool) -> StateResult<u64> {
        self.limits.check_namespace(ns)?;
        let prefix = namespace::namespace_prefix(ns);
        let end = namespace::prefix_end(&prefix);
        let client = self.client().await?;
        let statement = client.prepare_cached(DELETE_RANGE).await.map_err(backend)?;
        let row = client
            .query_one(&statement, &[&prefix, &durable, &prefix, &end])
            .await
            .map_err(backend)?;
        let deleted: i64 = row.try_get(0).map_err(backend)?;
        Ok(u64::try_from(deleted).unwrap_or_default())
    }

    async fn get_value(&self, ns: &Namespace, key: &str) -> StateResult<Option<Vec<u8>>> {
        self.limits.check_namespace(ns)?;
        self.limits.check_key(key)?;
        let storage_key = namespace::storage_key(ns, key);
        let client = self.client().await?;
        let statement = client.prepare_cached(GET).await.map_err(backend)?;
        let row = client.query_opt(&statement, &[&storage_key]).await.map_err(backend)?;
        row.map(|row| row.try_get(0)).transpose().map_err(backend)
    }

    async fn list_page(&self, scope: &ListScope, page: &PageRequest) -> StateResult<ListPage> {
        let client = self.client().await?;
        listing::list(&client, scope, page).await
    }

    /// One synchronous commit: every earlier asynchronous commit is durable when it returns.
    async fn sync(&self) -> StateResult<()> {
        let client = self.client().await?;
        let statement = client.prepare_cached(FLUSH).await.map_err(backend)?;
        client.execute(&statement, &[]).await.map_err(backend)?;
        Ok(())
    }
}

impl StateStore for PostgresStore {
    fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    fn get<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>> {
        Box::pin(self.get_value(ns, key))
    }

    fn put<'a>(&'a self, ns: &'a Namespace, key: &'a str, value: Vec<u8>) -> StateFuture<'a, ()> {
        Box::pin(async move {
            self.transact_with(ns, &[], vec![Write::put(key, value)], true).await.map(|_| ())
        })
    }

    fn delete<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, ()> {
        Box::pin(async move {
            self.transact_with(ns, &[], vec![Write::delete(key)], true).await.map(|_| ())
        })
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
        Box::pin(self.transact_with(ns, conditions, writes, true))
    }

    fn list<'a>(
        &'a self,
        scope: &'a ListScope,
        page: &'a PageRequest,
    ) -> StateFuture<'a, ListPage> {
        Box::pin(self.list_page(scope, page))
    }

    fn delete_namespace<'a>(&'a self, ns: &'a Namespace) -> StateFuture<'a, u64> {
        Box::pin(self.delete_namespace_with(ns, true))
    }

    fn deferred(self: Arc<Self>) -> Arc<dyn StateStore> {
        Arc::new(DeferredPostgresStore { store: self, dirty: AtomicBool::new(false) })
    }

    fn flush(&self) -> StateFuture<'_, ()> {
        // every write of this handle is already durable
        Box::pin(std::future::ready(Ok(())))
    }
}

/// One plugin request's view: writes commit asynchronously; `flush` makes them durable with
/// one synchronous commit, skipped when the request wrote nothing.
struct DeferredPostgresStore {
    store: Arc<PostgresStore>,
    dirty: AtomicBool,
}

impl DeferredPostgresStore {
    fn wrote(&self) {
        // Set before the write is sent: a write whose outcome is unknown is flushed too.
        self.dirty.store(true, Ordering::Release);
    }
}

impl StateStore for DeferredPostgresStore {
    fn limits(&self) -> &StoreLimits {
        &self.store.limits
    }

    fn get<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, Option<Vec<u8>>> {
        self.store.get(ns, key)
    }

    fn put<'a>(&'a self, ns: &'a Namespace, key: &'a str, value: Vec<u8>) -> StateFuture<'a, ()> {
        Box::pin(async move {
            self.wrote();
            self.store.transact_with(ns, &[], vec![Write::put(key, value)], false).await.map(|_| ())
        })
    }

    fn delete<'a>(&'a self, ns: &'a Namespace, key: &'a str) -> StateFuture<'a, ()> {
        Box::pin(async move {
            self.wrote();
            self.store.transact_with(ns, &[], vec![Write::delete(key)], false).await.map(|_| ())
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        ns: &'a Namespace,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: Option<Vec<u8>>,
    ) -> StateFuture<'a, bool> {
        Box::pin(async move {
            self.wrote();
            self.store.compare_and_swap_with(ns, key, expected, new, false).await
        })
    }

    fn transact<'a>(
        &'a self,
        ns: &'a Namespace,
        conditions: &'a [Condition],
        writes: Vec<Write>,
    ) -> StateFuture<'a, bool> {
        Box::pin(async move {
            self.wrote();
            self.store.transact_with(ns, conditions, writes, false).await
        })
    }

    fn list<'a>(
        &'a self,
        scope: &'a ListScope,
        page: &'a PageRequest,
    ) -> StateFuture<'a, ListPage> {
        self.store.list(scope, page)
    }

    fn delete_namespace<'a>(&'a self, ns: &'a Namespace) -> StateFuture<'a, u64> {
        Box::pin(async move {
            self.wrote();
            self.store.delete_namespace_with(ns, false).await
        })
    }

    fn deferred(self: Arc<Self>) -> Arc<dyn StateStore> {
        self
    }

    fn flush(&self) -> StateFuture<'_, ()> {
        Box::pin(async move {
            if self.dirty.swap(false, Ordering::AcqRel)
                && let Err(error) = self.store.sync().await
            {
                self.dirty.store(true, Ordering::Release);
                return Err(error);
            }
            Ok(())
        })
    }
}
