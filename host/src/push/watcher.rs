//! One watcher task per account with parked requests.
//!
//! ```text
//!            ┌──────────── backoff (doubling, jittered) ◄───────────┐
//!            ▼                                                      │ error
//! start ─► connect ─► serve: ┌► snapshot (stop when nothing is left to watch: LOGOUT, exit)
//!                            │  watch: NOTIFY SET (mailboxes …)  │  IDLE mode: EXAMINE one
//!                            │         folder here, IDLE helpers for more, poll the rest
//!                            │  STATUS the dirty folders → wake requests whose token differs
//!                            │  IDLE, then wait for: pushed data │ registry change │ helper
//!                            │         event │ poll │ linger expiry │ IDLE renewal
//!                            └──────────────────────────────────────┘
//! ```
//!
//! Every folder is "dirty" right after a (re)connect, so every watched folder's STATUS is
//! checked again: a change made while the server or the connection was down still wakes its
//! requests. A newly parked request's folders are dirty once the watch covers them (NOTIFY SET
//! first, then STATUS), so a change made before the park wakes it at once and one made after
//! is reported by the server: no lost wake-up.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::registry::{HubInner, Snapshot};
use super::{
    AccountKey, Connector, HIERARCHY, PushSettings, folder_key, folder_token, hierarchy_token,
};
use crate::imap::{ImapError, NotifyEvent, NotifyTarget, Session, Unsolicited};

/// What a STATUS check found for a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Checked {
    Token(String),
    /// The folder does not exist (any more): its requests wake.
    Gone,
    /// Some other per-folder failure, e.g. STATUS refused for a folder LIST still shows (a
    /// server whose storage is unavailable answers `NO [SERVERBUG]` or `[UNAVAILABLE]`): wake
    /// nobody. Waking would make the plugin answer a Ping 8 (or Sync 111) at once for a folder
    /// that is still there, and the next check would wake it again.
    Unknown,
}

/// MailboxName: a watched folder deleted or renamed away wakes its requests too.
const EVENTS: [NotifyEvent; 4] = [
    NotifyEvent::MessageNew,
    NotifyEvent::MessageExpunge,
    NotifyEvent::FlagChange,
    NotifyEvent::MailboxName,
];

pub(super) fn spawn(hub: &Arc<HubInner>, account: AccountKey, wakeup: Arc<Notify>) -> AbortHandle {
    tokio::spawn(watch(Arc::downgrade(hub), account, wakeup)).abort_handle()
}

/// The watcher's work: ends when nothing is left to watch (or the hub is gone). In a cluster
/// it runs only while the node holds the account's lease (`cluster.rs`).
pub(super) async fn watch(hub: Weak<HubInner>, account: AccountKey, wakeup: Arc<Notify>) {
    let Some(strong) = hub.upgrade() else { return };
    let watcher = Watcher {
        hub,
        account,
        wakeup,
        settings: strong.settings,
        connections: strong.connections.clone(),
        backoff: Backoff::new(&strong.settings),
    };
    drop(strong);
    watcher.run().await
}

struct Watcher {
    /// Weak: the hub's drop aborts its watchers.
    hub: Weak<HubInner>,
    account: AccountKey,
    wakeup: Arc<Notify>,
    settings: PushSettings,
    connections: Arc<AtomicUsize>,
    backoff: Backoff,
}

impl Watcher {
    async fn run(mut self) {
        loop {
            let Some(snapshot) = self.snapshot() else { return };
            let failure = match snapshot.connector.connect().await {
                Ok(session) => {
                    let _count = ConnectionCount::new(&self.connections);
                    match self.serve(session).await {
                        Ok(()) => return,
                        Err(error) => error,
                    }
                }
                Err(error) => error,
            };
            let delay = self.backoff.next();
            if self.backoff.failures == 1 {
                tracing::warn!(
                    tenant = %self.account.tenant, login = %self.account.login,
                    "push watcher: {failure}; reconnecting in {delay:?}"
                );
            } else {
                tracing::debug!(
                    tenant = %self.account.tenant, login = %self.account.login,
                    "push watcher: {failure}; reconnecting in {delay:?}"
                );
            }
            tokio::time::sleep(delay).await;
        }
    }

    fn snapshot(&self) -> Option<Snapshot> {
        self.hub.upgrade()?.snapshot(&self.account)
    }

    /// Runs one connection until the watcher has nothing left to watch (`Ok`) or the
    /// connection fails.
    async fn serve(&mut self, mut session: Session) -> Result<(), ImapError> {
        let can_idle = session.capabilities().idle;
        let mut serve = Serve {
            notify: self.settings.use_notify && session.capabilities().notify,
            max_idle: if can_idle { self.settings.max_idle_connections } else { 0 },
            desired: Vec::new(),
            dirty: HashSet::new(),
            notified: Vec::new(),
            primary: None,
            helpers: HashMap::new(),
            unopenable: HashSet::new(),
            polled: Vec::new(),
            next_poll: Instant::now() + self.settings.poll_interval,
            helper_retry_at: None,
            helper_backoff: self.settings.reconnect_min,
            next_helper_id: 0,
        };
        let (events, mut helper_events) = mpsc::unbounded_channel();
        let mut first = true;
        let mut keepalive_at = Instant::now() + self.settings.idle_renewal;
        loop {
            let Some(snapshot) = self.snapshot() else {
                session.logout().await;
                return Ok(());
            };
            serve.desired = snapshot.folders;
            if first {
                serve.dirty.extend(serve.desired.iter().cloned());
            }
            serve.dirty.extend(snapshot.pending);

            if serve.notify {
                self.watch_with_notify(&mut session, &mut serve).await?;
            }
            if !serve.notify {
                serve.reconcile_idle(&mut session, &snapshot.connector, &events, self).await?;
            }

            let now = Instant::now();
            if !serve.polled.is_empty() && now >= serve.next_poll {
                serve.dirty.extend(serve.polled.iter().cloned());
                serve.next_poll = now + self.settings.poll_interval;
            } else if serve.polled.is_empty() {
                serve.next_poll = now + self.settings.poll_interval;
            }
            let dirty: Vec<Arc<str>> =
                serve.dirty.drain().filter(|folder| serve.desired.contains(folder)).collect();
            if !dirty.is_empty() {
                self.check(&mut session, &dirty).await?;
            }
            if first {
                // logged in, watching, checked: the server works again
                self.backoff.reset();
                first = false;
            }

            let watching =
                if serve.notify { !serve.notified.is_empty() } else { serve.primary.is_some() };
            if can_idle && watching && !session.is_idle() {
                session.idle_start().await?;
                keepalive_at = Instant::now() + self.settings.idle_renewal;
            }

            let mut until = keepalive_at;
            if let Some(expiry) = snapshot.next_expiry {
                until = until.min(expiry);
            }
            if !serve.polled.is_empty() {
                until = until.min(serve.next_poll);
            }
            if let Some(retry) = serve.helper_retry_at {
                until = until.min(retry);
            }
            let wait = until.saturating_duration_since(Instant::now());
            tokio::select! {
                biased;
                Some(event) = helper_events.recv() => serve.helper_event(event, &self.settings),
                () = self.wakeup.notified() => {}
                pushed = session.read_unsolicited(wait) => {
                    for data in pushed? {
                        serve.classify(&data);
                    }
                }
            }

            if Instant::now() >= keepalive_at {
                // RFC 2177: re-issue IDLE within 29 minutes; also proves the connection alive
                if session.is_idle() {
                    session.idle_done().await?;
                } else {
                    session.noop().await?;
                }
                keepalive_at = Instant::now() + self.settings.idle_renewal;
            }
        }
    }

    /// `NOTIFY SET` for the wanted folders when they changed. A refused NOTIFY falls back to
    /// IDLE and polling for this connection.
    ///
    /// Dovecot 2.3 sends nothing at all after a NOTIFY SET that replaces another one, so an
    /// active set is first cleared with NOTIFY NONE. Changes in that gap are not notified:
    /// every watched folder is checked again afterwards.
    async fn watch_with_notify(
        &self,
        session: &mut Session,
        serve: &mut Serve,
    ) -> Result<(), ImapError> {
        if serve.desired == serve.notified {
            return Ok(());
        }
        let result = async {
            if !serve.notified.is_empty() {
                serve.notified.clear();
                session.notify_none().await?;
                serve.dirty.extend(serve.desired.iter().cloned());
            }
            if serve.desired.is_empty() {
                return Ok(());
            }
            let names: Vec<String> = serve
                .desired
                .iter()
                .filter(|folder| !is_hierarchy(folder))
                .map(|folder| folder.to_string())
                .collect();
            let mut targets = Vec::with_capacity(2);
            if !names.is_empty() {
                targets.push((NotifyTarget::Mailboxes(names), EVENTS.to_vec()));
            }
            // The hierarchy watch: a folder created, deleted or renamed anywhere is pushed as
            // a LIST. Listed after the folders: RFC 5465 §6 applies the first matching filter.
            if serve.desired.iter().any(|folder| is_hierarchy(folder)) {
                targets.push((NotifyTarget::Personal, vec![NotifyEvent::MailboxName]));
            }
            session.notify_set(&targets, false).await
        }
        .await;
        match result {
            Ok(()) => serve.notified.clone_from(&serve.desired),
            Err(error) if !error.breaks_session() => {
                tracing::warn!(
                    tenant = %self.account.tenant, login = %self.account.login,
                    "push watcher: {error}; using IDLE and STATUS polling on this connection"
                );
                serve.notify = false;
                serve.notified.clear();
                serve.dirty.extend(serve.desired.iter().cloned());
                if let Err(error) = session.notify_none().await
                    && error.breaks_session()
                {
                    return Err(error);
                }
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// STATUS of `folders` (pipelined), then wake the requests whose token differs.
    async fn check(&self, session: &mut Session, folders: &[Arc<str>]) -> Result<(), ImapError> {
        let (hierarchy, folders): (Vec<Arc<str>>, Vec<Arc<str>>) =
            folders.iter().cloned().partition(|folder| is_hierarchy(folder));
        let names: Vec<&str> = folders.iter().map(|folder| &**folder).collect();
        let results =
            if names.is_empty() { Vec::new() } else { session.status_many(&names).await? };
        let mut checked: Vec<(Arc<str>, Checked)> = Vec::with_capacity(folders.len() + 1);
        if let Some(pseudo) = hierarchy.into_iter().next() {
            checked.push((pseudo, self.list_token(session).await?));
        }
        checked.extend(folders.iter().cloned().zip(results).map(|(folder, result)| {
            let outcome = match result {
                Ok(status) => Checked::Token(folder_token(&status)),
                // `status_many` reports a refused STATUS of a folder LIST no longer shows as
                // `NoSuchMailbox`; a refusal of a listed folder stays `Refused`: Unknown below
                Err(ImapError::NoSuchMailbox(_)) => Checked::Gone,
                Err(error) => {
                    tracing::warn!(
                        tenant = %self.account.tenant, login = %self.account.login,
                        folder = %folder, "push watcher: STATUS failed: {error}"
                    );
                    Checked::Unknown
                }
            };
            (folder, outcome)
        }));
        let woken = self.hub.upgrade().map_or(0, |hub| hub.apply(&self.account, &checked));
        tracing::debug!(
            tenant = %self.account.tenant, login = %self.account.login,
            folders = folders.len(), woken, "push watcher: checked"
        );
        Ok(())
    }
}

impl Watcher {
    /// The hierarchy token from a fresh LIST; a refused LIST wakes nobody.
    async fn list_token(&self, session: &mut Session) -> Result<Checked, ImapError> {
        match session.list_folders().await {
            Ok(folders) => Ok(Checked::Token(hierarchy_token(
                folders.iter().map(|folder| folder.raw_name.as_str()),
            ))),
            Err(error) if error.breaks_session() => Err(error),
            Err(error) => {
                tracing::warn!(
                    tenant = %self.account.tenant, login = %self.account.login,
                    "push watcher: LIST failed: {error}"
                );
                Ok(Checked::Unknown)
            }
        }
    }
}

/// The registry's pseudo-folder for the hierarchy watch: never EXAMINEd, IDLEd or STATUSed,
/// but LISTed (NOTIFY pushes folder list changes; IDLE mode polls it with the other folders).
fn is_hierarchy(folder: &str) -> bool {
    folder == HIERARCHY
}

/// The state of one connection's watch.
struct Serve {
    /// NOTIFY in use (else IDLE + polling).
    notify: bool,
    max_idle: usize,
    /// The folders to watch now (from the registry).
    desired: Vec<Arc<str>>,
    /// Folders to STATUS before waiting again.
    dirty: HashSet<Arc<str>>,
    /// The folders of the last NOTIFY SET.
    notified: Vec<Arc<str>>,
    /// IDLE mode: the folder this connection has open and IDLEs on.
    primary: Option<Arc<str>>,
    /// IDLE mode: further folders, each with its own connection.
    helpers: HashMap<Arc<str>, Helper>,
    /// Folders EXAMINE refused: polled only.
    unopenable: HashSet<Arc<str>>,
    /// IDLE mode: folders without IDLE, polled with STATUS.
    polled: Vec<Arc<str>>,
    next_poll: Instant,
    /// After a helper failed: no new helper before this.
    helper_retry_at: Option<Instant>,
    helper_backoff: Duration,
    next_helper_id: u64,
}

impl Serve {
    /// IDLE mode: this connection on the first folder, helpers on the next ones up to the
    /// cap, polling for the rest.
    async fn reconcile_idle(
        &mut self,
        session: &mut Session,
        connector: &Arc<dyn Connector>,
        events: &mpsc::UnboundedSender<HelperEvent>,
        watcher: &Watcher,
    ) -> Result<(), ImapError> {
        let desired = &self.desired;
        self.helpers.retain(|folder, _| desired.contains(folder));
        self.unopenable.retain(|folder| desired.contains(folder));
        if self.primary.as_ref().is_some_and(|folder| !self.desired.contains(folder)) {
            self.primary = None;
        }
        if self.max_idle >= 1 && self.primary.is_none() {
            let candidate = self
                .desired
                .iter()
                .find(|folder| {
                    !is_hierarchy(folder)
                        && !self.helpers.contains_key(*folder)
                        && !self.unopenable.contains(*folder)
                })
                .cloned();
            if let Some(folder) = candidate {
                match session.examine(&folder).await {
                    Ok(_) => self.primary = Some(folder.clone()),
                    Err(error) if !error.breaks_session() => {
                        self.unopenable.insert(folder.clone());
                    }
                    Err(error) => return Err(error),
                }
                // changes before the EXAMINE are only seen by STATUS
                self.dirty.insert(folder);
            }
        }
        let now = Instant::now();
        if self.helper_retry_at.is_some_and(|at| now >= at) {
            self.helper_retry_at = None;
        }
        if self.helper_retry_at.is_none() {
            for folder in &self.desired {
                if self.helpers.len() + 1 >= self.max_idle {
                    break;
                }
                if is_hierarchy(folder)
                    || self.primary.as_ref() == Some(folder)
                    || self.helpers.contains_key(folder)
                    || self.unopenable.contains(folder)
                {
                    continue;
                }
                self.next_helper_id += 1;
                let helper = Helper::spawn(
                    self.next_helper_id,
                    folder.clone(),
                    connector.clone(),
                    events.clone(),
                    watcher.settings.idle_renewal,
                    watcher.connections.clone(),
                );
                self.helpers.insert(folder.clone(), helper);
            }
        }
        self.polled = self
            .desired
            .iter()
            .filter(|folder| {
                self.primary.as_ref() != Some(*folder) && !self.helpers.contains_key(*folder)
            })
            .cloned()
            .collect();
        Ok(())
    }

    fn mark(&mut self, raw_name: &str) {
        let name = folder_key(raw_name);
        if let Some(folder) = self.desired.iter().find(|folder| &***folder == name) {
            self.dirty.insert(folder.clone());
        }
    }

    /// What the server pushed on the watcher's connection.
    fn classify(&mut self, data: &Unsolicited) {
        match data {
            Unsolicited::Status { raw_name, .. } => self.mark(raw_name),
            Unsolicited::Exists(_)
            | Unsolicited::Expunge(_)
            | Unsolicited::Vanished(_)
            | Unsolicited::FlagsChanged { .. } => {
                if !self.notify
                    && let Some(folder) = self.primary.clone()
                {
                    self.dirty.insert(folder);
                }
            }
            Unsolicited::Overflow => self.dirty.extend(self.desired.iter().cloned()),
            // deleted, renamed or created: STATUS tells which, LIST whether the hierarchy
            // moved
            Unsolicited::FolderListed(entry) => {
                self.mark(&entry.raw_name);
                self.mark(HIERARCHY);
            }
        }
    }

    fn helper_event(&mut self, event: HelperEvent, settings: &PushSettings) {
        match event {
            HelperEvent::Ready { folder, .. } => {
                self.helper_backoff = settings.reconnect_min;
                // changes between the watcher's STATUS and the helper's IDLE
                self.mark(&folder);
            }
            HelperEvent::Touched { folder } => self.mark(&folder),
            HelperEvent::Lost { id, folder, error } => {
                if self.helpers.get(&folder).is_none_or(|helper| helper.id != id) {
                    return;
                }
                self.helpers.remove(&folder);
                self.mark(&folder);
                if error.breaks_session() {
                    tracing::debug!(folder = %folder, "push watcher: IDLE helper lost: {error}");
                    self.helper_retry_at = Some(Instant::now() + self.helper_backoff);
                    self.helper_backoff = (self.helper_backoff * 2).min(settings.reconnect_max);
                } else if let Some(shared) =
                    self.desired.iter().find(|wanted| **wanted == folder).cloned()
                {
                    // e.g. EXAMINE refused: poll it
                    self.unopenable.insert(shared);
                }
            }
        }
    }
}

enum HelperEvent {
    /// The helper IDLEs on its folder now.
    Ready { folder: Arc<str> },
    /// The server reported a change in the folder.
    Touched { folder: Arc<str> },
    /// The helper's connection ended.
    Lost { id: u64, folder: Arc<str>, error: ImapError },
}

/// An extra connection IDLEing on one folder; aborted (connection closed) on drop.
struct Helper {
    id: u64,
    task: AbortHandle,
}

impl Helper {
    fn spawn(
        id: u64,
        folder: Arc<str>,
        connector: Arc<dyn Connector>,
        events: mpsc::UnboundedSender<HelperEvent>,
        renewal: Duration,
        connections: Arc<AtomicUsize>,
    ) -> Self {
        let task = tokio::spawn(async move {
            let Err(error) = idle_on(&folder, &*connector, &events, renewal, &connections).await;
            let _ = events.send(HelperEvent::Lost { id, folder, error });
        });
        Self { id, task: task.abort_handle() }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn idle_on(
    folder: &Arc<str>,
    connector: &dyn Connector,
    events: &mpsc::UnboundedSender<HelperEvent>,
    renewal: Duration,
    connections: &Arc<AtomicUsize>,
) -> Result<Infallible, ImapError> {
    let mut session = connector.connect().await?;
    let _count = ConnectionCount::new(connections);
    session.examine(folder).await?;
    session.idle_start().await?;
    let _ = events.send(HelperEvent::Ready { folder: folder.clone() });
    let mut renew_at = Instant::now() + renewal;
    loop {
        let wait = renew_at.saturating_duration_since(Instant::now());
        let pushed = session.read_unsolicited(wait).await?;
        if pushed.iter().any(|data| !matches!(data, Unsolicited::FolderListed(_))) {
            let _ = events.send(HelperEvent::Touched { folder: folder.clone() });
        }
        if !session.is_idle() || Instant::now() >= renew_at {
            // what arrives between DONE and the new IDLE is queued for the next read
            session.idle_done().await?;
            session.idle_start().await?;
            renew_at = Instant::now() + renewal;
        }
    }
}

/// Counts a logged-in connection while alive.
struct ConnectionCount(Arc<AtomicUsize>);

impl ConnectionCount {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reconnect delays: doubling from `reconnect_min` to `reconnect_max`, each taken at 50–100%
/// at random so that accounts do not reconnect in lockstep after a server restart.
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    failures: u32,
}

impl Backoff {
    fn new(settings: &PushSettings) -> Self {
        Self {
            min: settings.reconnect_min,
            max: settings.reconnect_max,
            next: settings.reconnect_min,
            failures: 0,
        }
    }

    fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let random = std::hash::RandomState::new().hash_one(self.failures);
        let fraction = (random % 1000) as u32;
        base / 2 + base / 2 * fraction / 1000
    }

    fn reset(&mut self) {
        self.next = self.min;
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds_and_resets() {
        let settings = PushSettings {
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(8),
            ..PushSettings::default()
        };
        let mut backoff = Backoff::new(&settings);
        let bases = [1, 2, 4, 8, 8, 8];
        for base in bases {
            let delay = backoff.next();
            let base = Duration::from_secs(base);
            assert!(delay >= base / 2 && delay <= base, "{delay:?} for {base:?}");
        }
        assert_eq!(backoff.failures, 6);
        backoff.reset();
        assert!(backoff.next() <= Duration::from_secs(1));
    }
}
