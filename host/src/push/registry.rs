//! The registry of parked requests, and the hub that owns it and the watchers.
//!
//! Layout: one map, account → [`Account`], under one mutex (every operation is a few hash
//! look-ups; nothing awaits while holding it). An account has
//!
//! - `records`: parked requests by id (device, waker, the folders and tokens it watches);
//! - `devices`: device id → the id of its parked request (at most one per device);
//! - `folders`: folder → ids of the requests watching it, plus when it last had one (folders
//!   linger, so that a Ping answered and parked again does not make the watcher drop and add
//!   the folder);
//! - `pending`: folders of newly parked requests that the watcher has not yet checked.
//!
//! A parked request's own future holds the deadline (a timer) and a guard that removes its
//! record when the future is dropped (client gone) or finishes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::cluster::{self, ClusterEvent, ClusterLink};
use super::watcher::{self, Checked};
use super::{AccountKey, Connector, Hold, PushSettings, PushStats, WakeReason, folder_key};

/// The push hub: the registry of parked requests and one watcher per account. Cheap to clone
/// (an `Arc`); watchers stop when the last clone is dropped.
#[derive(Clone)]
pub struct PushHub {
    inner: Arc<HubInner>,
}

pub(super) struct HubInner {
    pub(super) settings: PushSettings,
    accounts: Mutex<HashMap<AccountKey, Account>>,
    next_id: AtomicU64,
    parked: AtomicUsize,
    watchers: AtomicUsize,
    /// Logged-in IMAP connections of all watchers (see [`watcher::ConnectionCount`]).
    pub(super) connections: Arc<AtomicUsize>,
    /// The other gateway nodes, when this one is part of a cluster (`cluster.rs`).
    cluster: OnceLock<Arc<dyn ClusterLink>>,
}

/// A handle that does not keep the hub alive (the cluster link's receiving side holds one,
/// since the hub holds the link).
#[derive(Clone)]
pub struct WeakPushHub {
    inner: Weak<HubInner>,
}

impl WeakPushHub {
    pub fn upgrade(&self) -> Option<PushHub> {
        self.inner.upgrade().map(|inner| PushHub { inner })
    }
}

struct Account {
    records: HashMap<u64, Record>,
    devices: HashMap<Arc<str>, u64>,
    folders: HashMap<Arc<str>, FolderEntry>,
    pending: Vec<Arc<str>>,
    /// The latest one a park brought: a reconnect uses it.
    connector: Arc<dyn Connector>,
    /// Tells the watcher that the registry changed (new park, folder without parks).
    wakeup: Arc<Notify>,
    watcher: Option<AbortHandle>,
    /// In a cluster: this node holds the account's watcher lease (so it takes other nodes'
    /// interest in folders).
    holder: bool,
    /// In a cluster: a new lease holder asked for this node's interest.
    interest_asked: bool,
}

struct Record {
    device: Arc<str>,
    waker: oneshot::Sender<WakeReason>,
    /// (folder, prev-id); the folder `Arc` is shared with the account's folder map.
    channels: Box<[(Arc<str>, Box<str>)]>,
}

struct FolderEntry {
    parked: Vec<u64>,
    /// When its last parked request ended; `None` while it has some.
    unwatched_since: Option<Instant>,
}

/// What a watcher needs to know at the top of its loop.
pub(super) struct Snapshot {
    /// The folders to watch: INBOX first, then by name.
    pub(super) folders: Vec<Arc<str>>,
    /// Folders of requests parked since the last snapshot: check their STATUS.
    pub(super) pending: Vec<Arc<str>>,
    /// When the next lingering folder expires.
    pub(super) next_expiry: Option<Instant>,
    pub(super) connector: Arc<dyn Connector>,
}

impl std::fmt::Debug for PushHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushHub").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl PushHub {
    pub fn new(settings: PushSettings) -> Self {
        Self {
            inner: Arc::new(HubInner {
                settings: settings.sanitized(),
                accounts: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                parked: AtomicUsize::new(0),
                watchers: AtomicUsize::new(0),
                connections: Arc::new(AtomicUsize::new(0)),
                cluster: OnceLock::new(),
            }),
        }
    }

    /// Makes this hub one node of a cluster: watchers run where the account's lease is,
    /// wake-ups and supersedes reach every node. Set once, before requests park; `false` if a
    /// link was set already.
    pub fn join_cluster(&self, link: Arc<dyn ClusterLink>) -> bool {
        self.inner.cluster.set(link).is_ok()
    }

    #[cfg(test)]
    pub(super) fn inner(&self) -> &Arc<HubInner> {
        &self.inner
    }

    pub fn downgrade(&self) -> WeakPushHub {
        WeakPushHub { inner: Arc::downgrade(&self.inner) }
    }

    /// An event another node published (never re-published).
    pub fn receive(&self, event: ClusterEvent) {
        match event {
            ClusterEvent::Supersede { account, device } => self.supersede_here(&account, &device),
            ClusterEvent::Interest { account, folders, check } => {
                self.inner.take_interest(&account, &folders, &check);
            }
            ClusterEvent::Checked { account, tokens } => {
                self.inner.apply_here(&account, &cluster::received_tokens(&tokens));
            }
            ClusterEvent::Watching { account } => self.inner.ask_interest(&account),
        }
    }

    pub fn settings(&self) -> &PushSettings {
        &self.inner.settings
    }

    /// Parks until a watched folder's token differs from the hold's (`Changed`, also at once
    /// when it differs already), the deadline passes (`Timeout`), or the device parks again
    /// or calls [`supersede`](Self::supersede) (`Superseded`). Dropping the future (client
    /// gone) removes the record. Starts the account's watcher when it has none, with
    /// `connector` to log in (a running watcher takes it for its next reconnect).
    pub async fn park(
        &self,
        account: AccountKey,
        device: &str,
        hold: &Hold,
        deadline: Instant,
        connector: Arc<dyn Connector>,
    ) -> WakeReason {
        let (waker, woken) = oneshot::channel();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.register(&account, device, hold, id, waker, connector);
        let _guard = ParkGuard { hub: &self.inner, account: &account, id };
        tokio::select! {
            biased;
            reason = woken => reason.unwrap_or(WakeReason::Superseded),
            () = tokio::time::sleep_until(deadline) => WakeReason::Timeout,
        }
    }

    /// Another request of this device arrived: its parked request (if any) ends with
    /// `Superseded`.
    pub fn supersede(&self, account: &AccountKey, device: &str) {
        self.supersede_here(account, device);
        if let Some(link) = self.inner.cluster.get() {
            link.publish(ClusterEvent::Supersede {
                account: account.clone(),
                device: device.to_string(),
            });
        }
    }

    fn supersede_here(&self, account: &AccountKey, device: &str) {
        let mut accounts = self.inner.lock();
        if let Some(entry) = accounts.get_mut(account)
            && let Some(id) = entry.devices.get(device).copied()
        {
            self.inner.wake(entry, id, WakeReason::Superseded);
        }
    }

    pub fn stats(&self) -> PushStats {
        PushStats {
            parked: self.inner.parked.load(Ordering::Relaxed),
            watchers: self.inner.watchers.load(Ordering::Relaxed),
            imap_connections: self.inner.connections.load(Ordering::Relaxed),
        }
    }
}

impl HubInner {
    fn lock(&self) -> MutexGuard<'_, HashMap<AccountKey, Account>> {
        // a panic while holding the lock leaves consistent data (no await, few steps)
        self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(
        self: &Arc<Self>,
        account: &AccountKey,
        device: &str,
        hold: &Hold,
        id: u64,
        waker: oneshot::Sender<WakeReason>,
        connector: Arc<dyn Connector>,
    ) {
        let mut accounts = self.lock();
        let entry = accounts.entry(account.clone()).or_insert_with(|| Account {
            records: HashMap::new(),
            devices: HashMap::new(),
            folders: HashMap::new(),
            pending: Vec::new(),
            connector: connector.clone(),
            wakeup: Arc::new(Notify::new()),
            watcher: None,
            holder: false,
            interest_asked: false,
        });
        entry.connector = connector;
        if let Some(older) = entry.devices.get(device).copied() {
            self.wake(entry, older, WakeReason::Superseded);
        }
        let link = self.cluster.get();
        if let Some(link) = link {
            // the device's parked request on another node ends too
            link.publish(ClusterEvent::Supersede {
                account: account.clone(),
                device: device.to_string(),
            });
        }
        let device: Arc<str> = device.into();
        let mut channels = Vec::with_capacity(hold.channels.len());
        for (folder, token) in &hold.channels {
            let name = folder_key(folder);
            let folder = match entry.folders.get_key_value(name) {
                Some((shared, _)) => shared.clone(),
                None => Arc::from(name),
            };
            let watching = entry
                .folders
                .entry(folder.clone())
                .or_insert_with(|| FolderEntry { parked: Vec::new(), unwatched_since: None });
            if !watching.parked.contains(&id) {
                watching.parked.push(id);
            }
            watching.unwatched_since = None;
            if !entry.pending.contains(&folder) {
                entry.pending.push(folder.clone());
            }
            channels.push((folder, token.as_str().into()));
        }
        entry.devices.insert(device.clone(), id);
        entry.records.insert(id, Record { device, waker, channels: channels.into() });
        self.parked.fetch_add(1, Ordering::Relaxed);
        if entry.watcher.as_ref().is_none_or(AbortHandle::is_finished) {
            if entry.watcher.is_some() {
                tracing::error!(login = %account.login, "push watcher died; starting another");
                self.watchers.fetch_sub(1, Ordering::Relaxed);
            }
            let handle = match link {
                Some(link) => {
                    let run = cluster::run(
                        Arc::downgrade(self),
                        account.clone(),
                        entry.wakeup.clone(),
                        link.clone(),
                    );
                    tokio::spawn(run).abort_handle()
                }
                None => watcher::spawn(self, account.clone(), entry.wakeup.clone()),
            };
            entry.holder = false;
            entry.watcher = Some(handle);
            self.watchers.fetch_add(1, Ordering::Relaxed);
        }
        entry.wakeup.notify_one();
    }

    /// Ends a parked request with `reason` (nothing if it ended already).
    fn wake(&self, entry: &mut Account, id: u64, reason: WakeReason) {
        if let Some(record) = self.remove(entry, id) {
            // the receiver is gone only when its future was dropped: nothing to tell
            let _ = record.waker.send(reason);
        }
    }

    fn remove(&self, entry: &mut Account, id: u64) -> Option<Record> {
        let record = entry.records.remove(&id)?;
        if entry.devices.get(&record.device) == Some(&id) {
            entry.devices.remove(&record.device);
        }
        let mut emptied = false;
        for (folder, _) in &record.channels {
            if let Some(watching) = entry.folders.get_mut(folder) {
                watching.parked.retain(|other| *other != id);
                if watching.parked.is_empty() && watching.unwatched_since.is_none() {
                    watching.unwatched_since = Some(Instant::now());
                    emptied = true;
                }
            }
        }
        self.parked.fetch_sub(1, Ordering::Relaxed);
        if emptied {
            // the watcher's next wake-up must include this folder's expiry
            entry.wakeup.notify_one();
        }
        Some(record)
    }

    /// Drops lingered-out folders; `None` (and the account is gone) when nothing is left to
    /// watch: the watcher stops.
    pub(super) fn snapshot(&self, account: &AccountKey) -> Option<Snapshot> {
        let mut accounts = self.lock();
        let entry = accounts.get_mut(account)?;
        let now = Instant::now();
        let linger = self.settings.linger;
        entry.folders.retain(|_, watching| {
            watching.unwatched_since.is_none_or(|since| since + linger > now)
        });
        if entry.records.is_empty() && entry.folders.is_empty() {
            accounts.remove(account);
            self.watchers.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let mut folders: Vec<Arc<str>> = entry.folders.keys().cloned().collect();
        folders.sort_by(|a, b| (&**a != "INBOX", a).cmp(&(&**b != "INBOX", b)));
        let next_expiry =
            entry.folders.values().filter_map(|watching| watching.unwatched_since).min();
        Some(Snapshot {
            folders,
            pending: std::mem::take(&mut entry.pending),
            next_expiry: next_expiry.map(|since| since + linger),
            connector: entry.connector.clone(),
        })
    }

    /// The watcher's STATUS results: wakes every request whose token for a checked folder
    /// differs (or whose folder is gone), here and, in a cluster, on the other nodes. Returns
    /// how many woke here.
    pub(super) fn apply(&self, account: &AccountKey, checked: &[(Arc<str>, Checked)]) -> usize {
        if let Some(link) = self.cluster.get() {
            let tokens = cluster::published_tokens(checked);
            if !tokens.is_empty() {
                link.publish(ClusterEvent::Checked { account: account.clone(), tokens });
            }
        }
        self.apply_here(account, checked)
    }

    fn ask_interest(&self, account: &AccountKey) {
        if let Some(entry) = self.lock().get_mut(account).filter(|entry| !entry.holder) {
            entry.interest_asked = true;
            entry.wakeup.notify_one();
        }
    }

    pub(super) fn take_interest_asked(&self, account: &AccountKey) -> bool {
        self.lock().get_mut(account).is_some_and(|entry| std::mem::take(&mut entry.interest_asked))
    }

    pub(super) fn set_holder(&self, account: &AccountKey, holder: bool) {
        if let Some(entry) = self.lock().get_mut(account) {
            entry.holder = holder;
        }
    }

    /// Another node's parked requests need `folders` watched: as the lease holder, watch them
    /// (they linger like folders of ended requests, until the next renewal) and check `check`
    /// and folders not watched yet now. Nodes without the lease ignore it.
    fn take_interest(&self, account: &AccountKey, folders: &[String], check: &[String]) {
        let mut accounts = self.lock();
        let Some(entry) = accounts.get_mut(account).filter(|entry| entry.holder) else { return };
        let now = Instant::now();
        for name in folders.iter().chain(check) {
            let name = folder_key(name);
            let folder = match entry.folders.get_key_value(name) {
                Some((shared, _)) => shared.clone(),
                None => Arc::from(name),
            };
            let is_new = !entry.folders.contains_key(&folder);
            let watching = entry
                .folders
                .entry(folder.clone())
                .or_insert_with(|| FolderEntry { parked: Vec::new(), unwatched_since: None });
            if watching.parked.is_empty() {
                watching.unwatched_since = Some(now);
            }
            let must_check = is_new || check.iter().any(|c| folder_key(c) == name);
            if must_check && !entry.pending.contains(&folder) {
                entry.pending.push(folder);
            }
        }
        entry.wakeup.notify_one();
    }

    /// Wakes the requests parked here whose token differs (see [`apply`](Self::apply)).
    fn apply_here(&self, account: &AccountKey, checked: &[(Arc<str>, Checked)]) -> usize {
        let mut accounts = self.lock();
        let Some(entry) = accounts.get_mut(account) else { return 0 };
        let mut changed = Vec::new();
        for (folder, outcome) in checked {
            let Some(watching) = entry.folders.get(folder) else { continue };
            for id in &watching.parked {
                let Some(record) = entry.records.get(id) else { continue };
                let differs = match outcome {
                    Checked::Token(token) => record
                        .channels
                        .iter()
                        .any(|(name, prev)| name == folder && **prev != **token),
                    Checked::Gone => true,
                    Checked::Unknown => false,
                };
                if differs && !changed.contains(id) {
                    changed.push(*id);
                }
            }
        }
        for id in &changed {
            self.wake(entry, *id, WakeReason::Changed);
        }
        changed.len()
    }
}

impl Drop for HubInner {
    fn drop(&mut self) {
        let accounts = self.accounts.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        for entry in accounts.values() {
            if let Some(watcher) = &entry.watcher {
                watcher.abort();
            }
        }
    }
}

/// Removes the record when the parked future ends or is dropped.
struct ParkGuard<'a> {
    hub: &'a HubInner,
    account: &'a AccountKey,
    id: u64,
}

impl Drop for ParkGuard<'_> {
    fn drop(&mut self) {
        let mut accounts = self.hub.lock();
        if let Some(entry) = accounts.get_mut(self.account) {
            self.hub.remove(entry, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use http::StatusCode;

    use super::*;
    use crate::imap::ImapError;
    use crate::push::ConnectFuture;

    fn settings() -> PushSettings {
        PushSettings {
            linger: Duration::from_secs(30),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(4),
            ..PushSettings::default()
        }
    }

    /// No IMAP server: the watcher keeps failing to connect and backs off.
    fn unreachable() -> Arc<dyn Connector> {
        Arc::new(|| -> ConnectFuture {
            Box::pin(async { Err(ImapError::Unavailable("no server in unit tests".into())) })
        })
    }

    fn hold(folders: &[&str]) -> Hold {
        Hold {
            channels: folders.iter().map(|f| (f.to_string(), "1.1.0.0.0".to_string())).collect(),
            timeout: Duration::from_secs(60),
            timeout_response: (StatusCode::OK, Default::default(), Bytes::new()),
        }
    }

    fn account() -> AccountKey {
        AccountKey::new("t", "tom@example.test")
    }

    fn park_in_task(
        hub: &PushHub,
        device: &str,
        folders: &[&str],
        after: Duration,
    ) -> tokio::task::JoinHandle<WakeReason> {
        let hub = hub.clone();
        let device = device.to_string();
        let hold = hold(folders);
        tokio::spawn(async move {
            let deadline = Instant::now() + after;
            hub.park(account(), &device, &hold, deadline, unreachable()).await
        })
    }

    /// Lets spawned tasks run until they wait on something.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn records(hub: &PushHub) -> Option<(usize, usize, usize)> {
        let accounts = hub.inner.lock();
        let entry = accounts.get(&account())?;
        let folder_ids: usize = entry.folders.values().map(|f| f.parked.len()).sum();
        Some((entry.records.len(), entry.devices.len(), folder_ids))
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_at_the_deadline() {
        let hub = PushHub::new(settings());
        let start = Instant::now();
        let deadline = start + Duration::from_secs(480);
        let reason = hub.park(account(), "dev1", &hold(&["INBOX"]), deadline, unreachable()).await;
        assert_eq!(reason, WakeReason::Timeout);
        assert!(Instant::now() >= deadline);
        assert_eq!(hub.stats().parked, 0);
        assert_eq!(records(&hub).map(|r| (r.0, r.1, r.2)), Some((0, 0, 0)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_park_of_the_same_device_supersedes() {
        let hub = PushHub::new(settings());
        let first = park_in_task(&hub, "dev1", &["INBOX", "Sent"], Duration::from_secs(600));
        let other = park_in_task(&hub, "dev2", &["INBOX"], Duration::from_secs(600));
        settle().await;
        assert_eq!(hub.stats().parked, 2);
        let second = park_in_task(&hub, "dev1", &["INBOX"], Duration::from_secs(600));
        assert_eq!(first.await.ok(), Some(WakeReason::Superseded));
        settle().await;
        assert_eq!(hub.stats().parked, 2);
        assert_eq!(records(&hub), Some((2, 2, 2)));

        // any other request of the device ends its parked one; other devices stay
        hub.supersede(&account(), "dev1");
        assert_eq!(second.await.ok(), Some(WakeReason::Superseded));
        hub.supersede(&account(), "dev-unknown");
        hub.supersede(&AccountKey::new("t", "nobody"), "dev2");
        settle().await;
        assert!(!other.is_finished());
        assert_eq!(records(&hub), Some((1, 1, 1)));
        other.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_park_future_frees_the_record() {
        let hub = PushHub::new(settings());
        let parked =
            park_in_task(&hub, "dev1", &["INBOX", "Sent", "Trash"], Duration::from_secs(900));
        settle().await;
        assert_eq!(records(&hub), Some((1, 1, 3)));
        assert_eq!(hub.stats().parked, 1);
        parked.abort();
        assert!(parked.await.is_err_and(|error| error.is_cancelled()));
        assert_eq!(records(&hub), Some((0, 0, 0)));
        assert_eq!(hub.stats().parked, 0);

        // also when dropped by a timeout around it
        let hold = hold(&["INBOX"]);
        let deadline = Instant::now() + Duration::from_secs(900);
        let cut = tokio::time::timeout(
            Duration::from_secs(5),
            hub.park(account(), "dev2", &hold, deadline, unreachable()),
        )
        .await;
        assert!(cut.is_err());
        assert_eq!(records(&hub), Some((0, 0, 0)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_watcher_lingers_then_stops() {
        let settings = settings();
        let hub = PushHub::new(settings);
        let parked = park_in_task(&hub, "dev1", &["INBOX"], Duration::from_secs(10));
        settle().await;
        assert_eq!(hub.stats().watchers, 1);
        assert_eq!(parked.await.ok(), Some(WakeReason::Timeout));
        // within the linger the folder stays watched
        tokio::time::sleep(settings.linger / 2).await;
        assert_eq!(hub.stats().watchers, 1);
        assert!(records(&hub).is_some());
        // after it (and at most one reconnect delay) the watcher is gone with the account
        tokio::time::sleep(settings.linger + settings.reconnect_max * 2).await;
        assert_eq!(hub.stats(), PushStats { parked: 0, watchers: 0, imap_connections: 0 });
        assert!(records(&hub).is_none());

        // a later park starts a new one
        let parked = park_in_task(&hub, "dev1", &["INBOX"], Duration::from_secs(10));
        settle().await;
        assert_eq!(hub.stats().watchers, 1);
        assert_eq!(parked.await.ok(), Some(WakeReason::Timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn apply_wakes_only_requests_whose_token_differs() {
        let hub = PushHub::new(settings());
        let mut same = hold(&["INBOX"]);
        same.channels[0].1 = "5.5.0.5.5".into();
        let hub2 = hub.clone();
        let unchanged = tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(100);
            hub2.park(account(), "dev1", &same, deadline, unreachable()).await
        });
        let stale = park_in_task(&hub, "dev2", &["inbox", "Sent"], Duration::from_secs(100));
        let gone = park_in_task(&hub, "dev3", &["Old"], Duration::from_secs(100));
        let unknown = park_in_task(&hub, "dev4", &["Odd"], Duration::from_secs(100));
        settle().await;
        let inbox: Arc<str> = "INBOX".into();
        let checked = [
            (inbox, Checked::Token("5.5.0.5.5".into())),
            ("Old".into(), Checked::Gone),
            ("Odd".into(), Checked::Unknown),
        ];
        assert_eq!(hub.inner.apply(&account(), &checked), 2);
        assert_eq!(stale.await.ok(), Some(WakeReason::Changed));
        assert_eq!(gone.await.ok(), Some(WakeReason::Changed));
        settle().await;
        assert!(!unchanged.is_finished() && !unknown.is_finished());
        assert_eq!(unchanged.await.ok(), Some(WakeReason::Timeout));
        assert_eq!(unknown.await.ok(), Some(WakeReason::Timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn records_are_small() {
        // the record plus its folder ids; the waker's shared state is one small allocation
        assert!(std::mem::size_of::<Record>() <= 64, "{}", std::mem::size_of::<Record>());
    }
}
