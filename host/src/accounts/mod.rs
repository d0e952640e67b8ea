//! A tenant's IMAP accounts, as the users log in: verified passwords, so that not every
//! request costs an IMAP LOGIN, and a small pool of logged-in sessions per account, which
//! the mailbox capability borrows call by call.
//!
//! An account appears with its first successful login (failed logins leave nothing behind,
//! so guessing cannot fill the table) and goes once it has no idle session, no request
//! holding it and no password fresh enough to authenticate with.

mod account;
pub mod ahead;
mod credentials;
pub mod prefetched;

pub use account::Account;

use crate::imap::{Endpoint, ImapError, Session};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// `[tenant.imap_pool]`: how many sessions an account may keep, for how long, and how long a
/// verified password spares a LOGIN.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSettings {
    /// A session nobody used for this long is logged out.
    pub idle_seconds: u64,
    /// Sessions per account, busy and idle together; further callers wait for one.
    pub max_sessions_per_account: u32,
    /// A request with the password the server accepted less than this long ago is
    /// authenticated without asking the server again (0: every request logs in).
    pub auth_cache_seconds: u64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { idle_seconds: 60, max_sessions_per_account: 4, auth_cache_seconds: 300 }
    }
}

/// [`PoolSettings`] in the units the code uses.
#[derive(Debug, Clone, Copy)]
struct Limits {
    idle: Duration,
    max_sessions: usize,
    auth_cache: Duration,
}

/// What every account of a tenant shares: where to log in, the limits, a LOGIN counter and
/// what became of summaries fetched ahead.
struct Backend {
    endpoint: Endpoint,
    limits: Limits,
    logins: AtomicU64,
    prefetch: PrefetchCounts,
    prefetch_budget: Arc<prefetched::TenantBudget>,
}

/// Summaries fetched ahead (`mailbox.prefetch-summaries`), and how many of them a request
/// took: for `/metrics`, where a low ratio says the hints miss.
#[derive(Debug, Default)]
pub struct PrefetchCounts {
    pub stored: AtomicU64,
    pub taken: AtomicU64,
    /// Of those taken, the ones whose flags the request's `changes` answer vouched for, so
    /// that no IMAP round trip was needed for them.
    pub flags_vouched: AtomicU64,
    /// Summaries fetched ahead that the plugin also rendered ahead (`render-ahead`).
    pub rendered: AtomicU64,
    /// Of those, the ones a request got: its plugin did not convert them again.
    pub rendered_used: AtomicU64,
}

impl Backend {
    async fn login(&self, login: &str, password: &[u8]) -> Result<Session, ImapError> {
        self.logins.fetch_add(1, Ordering::Relaxed);
        Session::connect(&self.endpoint, login, password).await
    }
}

/// How many accounts and IMAP sessions a tenant's pool holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub accounts: usize,
    /// Logged in and waiting for a caller.
    pub idle_sessions: usize,
    /// In use by a request right now.
    pub busy_sessions: usize,
}

/// One tenant's accounts, by login.
pub struct Accounts {
    backend: Arc<Backend>,
    entries: Mutex<HashMap<String, Arc<Account>>>,
}

impl Accounts {
    pub fn new(endpoint: Endpoint, settings: &PoolSettings) -> Self {
        let limits = Limits {
            idle: Duration::from_secs(settings.idle_seconds),
            max_sessions: usize::try_from(settings.max_sessions_per_account)
                .unwrap_or(usize::MAX)
                .max(1),
            auth_cache: Duration::from_secs(settings.auth_cache_seconds),
        };
        Accounts {
            backend: Arc::new(Backend {
                endpoint,
                limits,
                logins: AtomicU64::new(0),
                prefetch: PrefetchCounts::default(),
                prefetch_budget: Arc::default(),
            }),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Checks a login's password: against the password the server accepted recently (no
    /// IMAP traffic), else with a LOGIN, whose session then joins the account's pool.
    ///
    /// A wrong password is never served from the cache, and leaves a good cached password
    /// alone: the rightful user is not logged out by someone guessing.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &[u8],
    ) -> Result<Arc<Account>, ImapError> {
        if let Some(account) = self.get(login)
            && account.accepts(password, Instant::now())
        {
            return Ok(account);
        }
        let session = self.backend.login(login, password).await?;
        let account = self
            .entries()
            .entry(login.to_string())
            .or_insert_with(|| Arc::new(Account::new(login, self.backend.clone())))
            .clone();
        account.remember(password, Instant::now());
        account.keep_spare(session);
        Ok(account)
    }

    /// Accounts in the table (logged in recently, or with sessions or requests).
    pub fn known_accounts(&self) -> usize {
        self.entries().len()
    }

    /// The pool right now, for `/metrics`.
    pub fn pool_stats(&self) -> PoolStats {
        let entries = self.entries();
        PoolStats {
            accounts: entries.len(),
            idle_sessions: entries.values().map(|account| account.idle_sessions()).sum(),
            busy_sessions: entries.values().map(|account| account.busy_sessions()).sum(),
        }
    }

    /// IMAP LOGINs made so far, for checks and metrics.
    pub fn logins(&self) -> u64 {
        self.backend.logins.load(Ordering::Relaxed)
    }

    /// Summaries fetched ahead and taken so far, for metrics.
    pub fn prefetch_counts(&self) -> &PrefetchCounts {
        &self.backend.prefetch
    }

    /// Logs out the sessions idle for the idle time at `now` and forgets the accounts that
    /// are spent (see the module docs). Returns when the LOGOUTs are done.
    pub async fn close_idle(&self, now: Instant) {
        let mut expired = Vec::new();
        {
            let mut entries = self.entries();
            for account in entries.values() {
                expired.extend(account.take_expired(now));
                account.expire_prefetched(now);
            }
            // a count of one: only this table holds the account, no request does
            entries.retain(|_, account| Arc::strong_count(account) > 1 || !account.is_spent(now));
        }
        let logouts: Vec<_> = expired.into_iter().map(|s| tokio::spawn(s.logout())).collect();
        for logout in logouts {
            // a LOGOUT that panicked or was cancelled needs no further care
            let _ = logout.await;
        }
    }

    /// Closes idle sessions in the background until the `Accounts` are dropped.
    pub fn spawn_reaper(self: &Arc<Self>) {
        let accounts: Weak<Self> = Arc::downgrade(self);
        let period =
            (self.backend.limits.idle / 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(accounts) = accounts.upgrade() else { break };
                accounts.close_idle(Instant::now()).await;
            }
        });
    }

    fn get(&self, login: &str) -> Option<Arc<Account>> {
        self.entries().get(login).cloned()
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Arc<Account>>> {
        // no code panics while holding the lock; if one did, the map is still consistent
        crate::unpoisoned::lock(&self.entries)
    }
}
