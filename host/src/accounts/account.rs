//! One IMAP account of a tenant: the password the server last accepted, and a few logged-in
//! sessions that mailbox calls borrow one at a time.

use super::Backend;
use super::ahead::{InFlight, JobGuard};
use super::credentials::VerifiedPassword;
use super::prefetched::{FetchedUnder, Held, Prefetched, RenderedAhead};
use crate::imap::{Changes, ImapError, Session, Summary, SyncPoint};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::Semaphore;

pub struct Account {
    login: String,
    backend: Arc<Backend>,
    /// One permit per session in use: callers beyond the cap wait here.
    in_use: Semaphore,
    state: Mutex<State>,
    /// Summaries fetched ahead of the request that wants them.
    prefetched: Mutex<Prefetched>,
    /// Held while a prefetch's FETCH runs: one at a time per account (each takes a session).
    prefetching: Arc<tokio::sync::Mutex<()>>,
    /// Pages being fetched and rendered ahead: a request that wants their summaries waits for
    /// them rather than fetching the same messages alongside.
    ahead: InFlight,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("login", &self.login).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    password: Option<VerifiedPassword>,
    /// Logged-in sessions nobody uses, the most recently used last.
    idle: Vec<IdleSession>,
}

struct IdleSession {
    session: Session,
    since: Instant,
}

impl Account {
    pub(super) fn new(login: &str, backend: Arc<Backend>) -> Self {
        let prefetched = Prefetched::new(Arc::clone(&backend.prefetch_budget));
        Account {
            login: login.to_string(),
            in_use: Semaphore::new(backend.limits.max_sessions),
            backend,
            state: Mutex::new(State::default()),
            prefetched: Mutex::new(prefetched),
            prefetching: Arc::new(tokio::sync::Mutex::new(())),
            ahead: InFlight::default(),
        }
    }

    /// Keeps summaries fetched ahead (see [`Prefetched::put`]).
    pub fn store_prefetched(
        &self,
        folder: &str,
        under: FetchedUnder,
        prefix_bytes: u32,
        summaries: Vec<Summary>,
    ) {
        let kept = self.prefetched().put(folder, under, prefix_bytes, summaries, Instant::now());
        self.backend.prefetch.stored.fetch_add(kept as u64, Ordering::Relaxed);
    }

    /// Keeps what the plugin made of summaries fetched ahead (see
    /// [`Prefetched::attach_rendered`]).
    pub fn attach_rendered(&self, folder: &str, rendered: Vec<(u32, RenderedAhead)>) {
        let kept = self.prefetched().attach_rendered(folder, rendered);
        self.backend.prefetch.rendered.fetch_add(kept as u64, Ordering::Relaxed);
    }

    /// Counts renderings made ahead that a request got.
    pub fn count_rendered_used(&self, summaries: usize) {
        self.backend.prefetch.rendered_used.fetch_add(summaries as u64, Ordering::Relaxed);
    }

    /// The flags of summaries fetched ahead that a `changes` answer vouches for (see
    /// [`Prefetched::flags_as_of`]).
    pub fn prefetched_flags_as_of(
        &self,
        folder: &str,
        since: Option<SyncPoint>,
        changes: &Changes,
    ) -> HashMap<u32, Vec<String>> {
        self.prefetched().flags_as_of(folder, since, changes)
    }

    /// Counts summaries fetched ahead that a request took with vouched flags (no round trip).
    pub fn count_flags_vouched(&self, summaries: usize) {
        self.backend.prefetch.flags_vouched.fetch_add(summaries as u64, Ordering::Relaxed);
    }

    /// Takes summaries fetched ahead (see [`Prefetched::take`]).
    pub fn take_prefetched(
        &self,
        folder: &str,
        uids: &[u32],
        prefix_bytes: u32,
    ) -> HashMap<u32, Held> {
        let taken = self.prefetched().take(folder, uids, prefix_bytes, Instant::now());
        self.backend.prefetch.taken.fetch_add(taken.len() as u64, Ordering::Relaxed);
        taken
    }

    /// Whether the tenant has room for another page fetched ahead.
    pub fn prefetch_has_room(&self) -> bool {
        self.backend.prefetch_budget.has_room()
    }

    /// Drops summaries fetched ahead that nobody took in time.
    pub(super) fn expire_prefetched(&self, now: Instant) {
        self.prefetched().drop_expired(now);
    }

    fn prefetched(&self) -> MutexGuard<'_, Prefetched> {
        // no code panics while holding the lock; if one did, the cache is still consistent
        crate::unpoisoned::lock(&self.prefetched)
    }

    /// The turn of a prefetch's FETCH: one at a time per account, held as long as the guard.
    pub async fn prefetch_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.prefetching).lock_owned().await
    }

    /// Starts fetching ahead the UIDs of `folder` that are neither held for a request of
    /// `prefix_bytes` nor on their way already (see [`InFlight::begin`]): the job and those
    /// UIDs, or `None` if there are none or the account has enough under way.
    pub fn begin_ahead(
        &self,
        folder: &str,
        uids: Vec<u32>,
        prefix_bytes: u32,
    ) -> Option<(JobGuard, Vec<u32>)> {
        let prefetched = self.prefetched();
        self.ahead.begin(folder, uids, |uid| prefetched.holds(folder, uid, prefix_bytes))
    }

    /// Waits until no page holding any of `uids` of `folder` is on its way, or `deadline`.
    pub async fn wait_ahead(&self, folder: &str, uids: &[u32], deadline: tokio::time::Instant) {
        for ending in self.ahead.holding(folder, uids) {
            if tokio::time::timeout_at(deadline, ending.wait()).await.is_err() {
                return;
            }
        }
    }

    /// The login as the client sent it: the identity the plugin sees.
    pub fn login(&self) -> &str {
        &self.login
    }

    /// Logged-in sessions waiting for a caller.
    pub fn idle_sessions(&self) -> usize {
        self.state().idle.len()
    }

    /// Sessions a caller is using right now (for `/metrics`).
    pub fn busy_sessions(&self) -> usize {
        self.backend.limits.max_sessions.saturating_sub(self.in_use.available_permits())
    }

    /// The password the IMAP server last accepted, for the account's other services (SMTP
    /// AUTH); `None` once the server refused it. Only ever written to a server, never logged.
    pub(crate) fn verified_password(&self) -> Option<Vec<u8>> {
        self.state().password.as_ref().map(|known| known.bytes().to_vec())
    }

    /// Runs `op` on one of the account's sessions: an idle one, or a new LOGIN with the
    /// verified password when none is idle. Callers beyond the cap wait for a session.
    ///
    /// `op` may run twice: when it fails in a way that breaks the session (typically a pooled
    /// connection the server closed meanwhile), it runs once more on a new session. Reads are
    /// safe to repeat; a change may only fail that way before anything that changes the
    /// mailbox was sent, and reports later failures inside its result
    /// ([`WriteResult`](crate::imap::WriteResult)).
    pub async fn run<T, F>(&self, mut op: F) -> Result<T, ImapError>
    where
        F: AsyncFnMut(&mut Session) -> Result<T, ImapError>,
    {
        let _permit = self
            .in_use
            .acquire()
            .await
            .map_err(|_| ImapError::Unavailable("the account's pool is closed".to_string()))?;
        let mut session = match self.take_idle() {
            Some(session) => session,
            None => self.connect().await?,
        };
        let mut result = op(&mut session).await;
        if let Err(error) = &result
            && error.breaks_session()
        {
            tracing::debug!(login = %self.login, "IMAP session failed, retrying once: {error}");
            session = self.connect().await?;
            result = op(&mut session).await;
        }
        // the other callers' sessions: ours still holds its permit
        let others = self.busy().saturating_sub(1);
        self.check_in(session, others);
        result
    }

    /// Whether `password` is the one verified less than the cache time ago.
    pub(super) fn accepts(&self, password: &[u8], now: Instant) -> bool {
        let state = self.state();
        state
            .password
            .as_ref()
            .is_some_and(|known| known.accepts(password, now, self.backend.limits.auth_cache))
    }

    /// The server accepted `password` at `now`: it is the one to log in with from now on.
    pub(super) fn remember(&self, password: &[u8], now: Instant) {
        self.state().password = Some(VerifiedPassword::new(password, now));
    }

    /// A session from a credentials check: kept for later calls if the account has room.
    pub(super) fn keep_spare(&self, session: Session) {
        self.check_in(session, self.busy());
    }

    /// Takes the sessions idle since `now - idle time` or longer, to be logged out.
    pub(super) fn take_expired(&self, now: Instant) -> Vec<Session> {
        let idle_time = self.backend.limits.idle;
        let mut state = self.state();
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.idle)
            .into_iter()
            .partition(|idle| now.saturating_duration_since(idle.since) >= idle_time);
        state.idle = kept;
        expired.into_iter().map(|idle| idle.session).collect()
    }

    /// No idle session and no password fresh enough to authenticate with: the entry can go
    /// (when no request holds it).
    pub(super) fn is_spent(&self, now: Instant) -> bool {
        let state = self.state();
        let fresh = state
            .password
            .as_ref()
            .is_some_and(|known| known.is_fresh(now, self.backend.limits.auth_cache));
        state.idle.is_empty() && !fresh
    }

    fn take_idle(&self) -> Option<Session> {
        self.state().idle.pop().map(|idle| idle.session)
    }

    /// A new session, logged in with the verified password.
    /// A new session outside the pool, for a long-lived user (the account's push watcher).
    pub async fn fresh_session(&self) -> Result<Session, ImapError> {
        self.connect().await
    }

    async fn connect(&self) -> Result<Session, ImapError> {
        let password = self
            .verified_password()
            .ok_or_else(|| ImapError::AuthFailed("no verified password".to_string()))?;
        let result = self.backend.login(&self.login, &password).await;
        let mut state = self.state();
        let current = state.password.as_ref().is_some_and(|known| known.bytes() == password);
        match &result {
            // verified again, unless a newer password replaced it meanwhile
            Ok(_) if current => {
                state.password = Some(VerifiedPassword::new(&password, Instant::now()))
            }
            // changed on the server: the next request must log in with the new one
            Err(ImapError::AuthFailed(_)) if current => state.password = None,
            _ => {}
        }
        result
    }

    /// Back to the idle list, unless the session is broken or the account is at its cap with
    /// `others` sessions busy.
    fn check_in(&self, mut session: Session, others: usize) {
        if !session.is_usable() {
            // the stream is in an unknown state: not even a LOGOUT can be sent
            return;
        }
        // pushed news from the last operation concerns nobody: pool sessions do not watch
        session.discard_unsolicited();
        session.release_buffer();
        let mut state = self.state();
        if state.idle.len() + others < self.backend.limits.max_sessions {
            state.idle.push(IdleSession { session, since: Instant::now() });
            return;
        }
        drop(state);
        tokio::spawn(session.logout());
    }

    /// Sessions in use right now (permits taken).
    fn busy(&self) -> usize {
        self.backend.limits.max_sessions.saturating_sub(self.in_use.available_permits())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // no code panics while holding the lock; if one did, the state is still consistent
        crate::unpoisoned::lock(&self.state)
    }
}
