//! Push across gateway nodes: the hub's side of the cluster link (`crate::cluster` implements
//! it on PostgreSQL LISTEN/NOTIFY).
//!
//! - One watcher per account in the whole cluster: a node whose devices park requests for an
//!   account runs its watcher only while it holds the account's [`Lease`]; the others ask
//!   ([`ClusterEvent::Interest`]) the holder to watch their folders and retry the lease every
//!   [`ClusterLink::retry_interval`], which is how a dead holder is replaced.
//! - The holder publishes every folder it checked ([`ClusterEvent::Checked`]); each node wakes
//!   its own parked requests whose token differs, as with a local watcher.
//! - A device's request on one node ends its parked request on any other
//!   ([`ClusterEvent::Supersede`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::AccountKey;
use super::registry::HubInner;
use super::watcher::{self, Checked};

/// What nodes tell each other. Folder names are registry keys (INBOX in one spelling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// End this device's parked request, if it has one on your node.
    Supersede { account: AccountKey, device: String },
    /// Holder of the account's lease: watch these folders (a requester renews them while its
    /// requests are parked) and check the `check` ones now (newly parked requests).
    Interest { account: AccountKey, folders: Vec<String>, check: Vec<String> },
    /// The holder checked these folders: `None` is a folder that is gone.
    Checked { account: AccountKey, tokens: Vec<(String, Option<String>)> },
    /// A node took the account's lease: send it your interest now (it is new, or took over
    /// from a holder that died).
    Watching { account: AccountKey },
}

/// The right to run an account's watcher; dropping it gives the right up.
pub struct Lease {
    /// Completes when the lease is lost without being given up (the node lost its database
    /// connection, so another node may hold it now): the watcher must stop.
    pub lost: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Released when dropped (e.g. a guard that unlocks).
    pub guard: Box<dyn Send + Sync>,
}

/// What [`ClusterLink::acquire`] returns.
pub type LeaseFuture = Pin<Box<dyn Future<Output = Option<Lease>> + Send>>;

/// How the hub reaches the other nodes.
pub trait ClusterLink: Send + Sync {
    /// Sends to every other node, in order; best effort (a lost message costs a wake-up's
    /// latency, see the retry and renewal below, never correctness of the state).
    fn publish(&self, event: ClusterEvent);

    /// The account's lease if no node holds it; `None` if another node does (or the database
    /// cannot be reached).
    fn acquire(&self, account: &AccountKey) -> LeaseFuture;

    /// How often a node without the lease tries again: the takeover time after a holder died.
    fn retry_interval(&self) -> Duration;
}

/// The account's watcher in a cluster: holds the lease and watches, or asks the holder to.
/// Ends (like a local watcher) when the registry has nothing left to watch for the account.
pub(super) async fn run(
    hub: Weak<HubInner>,
    account: AccountKey,
    wakeup: Arc<Notify>,
    link: Arc<dyn ClusterLink>,
) {
    let mut renewed: Option<Instant> = None;
    loop {
        if let Some(lease) = link.acquire(&account).await {
            let Some(strong) = hub.upgrade() else { return };
            strong.set_holder(&account, true);
            drop(strong);
            link.publish(ClusterEvent::Watching { account: account.clone() });
            tracing::debug!(tenant = %account.tenant, login = %account.login, "cluster: watching");
            let watching = watcher::watch(hub.clone(), account.clone(), wakeup.clone());
            tokio::select! {
                () = watching => return,
                () = lease.lost => {
                    tracing::warn!(
                        tenant = %account.tenant, login = %account.login,
                        "cluster: watcher lease lost; retrying"
                    );
                }
            }
            drop(lease.guard);
            let Some(strong) = hub.upgrade() else { return };
            strong.set_holder(&account, false);
            renewed = None;
        }
        let Some(strong) = hub.upgrade() else { return };
        let Some(snapshot) = strong.snapshot(&account) else { return };
        // Interest must outlive the renewal period at the holder, which drops folders after
        // `linger` without renewal.
        let renewal = strong.settings.linger / 2;
        let asked = strong.take_interest_asked(&account);
        drop(strong);
        let due = asked || renewed.is_none_or(|at| at.elapsed() >= renewal);
        if due || !snapshot.pending.is_empty() {
            link.publish(ClusterEvent::Interest {
                account: account.clone(),
                folders: snapshot.folders.iter().map(|folder| folder.to_string()).collect(),
                check: snapshot.pending.iter().map(|folder| folder.to_string()).collect(),
            });
            if due {
                renewed = Some(Instant::now());
            }
        }
        tokio::select! {
            () = wakeup.notified() => {}
            () = tokio::time::sleep(link.retry_interval()) => {}
        }
    }
}

/// The checked folders as published: `Unknown` results wake nobody, so they are not sent.
pub(super) fn published_tokens(checked: &[(Arc<str>, Checked)]) -> Vec<(String, Option<String>)> {
    checked
        .iter()
        .filter_map(|(folder, outcome)| match outcome {
            Checked::Token(token) => Some((folder.to_string(), Some(token.clone()))),
            Checked::Gone => Some((folder.to_string(), None)),
            Checked::Unknown => None,
        })
        .collect()
}

/// The published tokens as the registry applies them.
pub(super) fn received_tokens(tokens: &[(String, Option<String>)]) -> Vec<(Arc<str>, Checked)> {
    tokens
        .iter()
        .map(|(folder, token)| {
            let outcome = match token {
                Some(token) => Checked::Token(token.clone()),
                None => Checked::Gone,
            };
            (Arc::from(folder.as_str()), outcome)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use bytes::Bytes;
    use http::StatusCode;

    use super::*;
    use crate::imap::ImapError;
    use crate::push::{
        ConnectFuture, Connector, Hold, PushHub, PushSettings, WakeReason, WeakPushHub,
    };

    /// Nodes in one process: a message reaches every other hub (from a task, as over the
    /// database); leases are entries of a shared map.
    #[derive(Default)]
    struct Bus {
        hubs: Mutex<Vec<(usize, WeakPushHub)>>,
        leases: Mutex<HashMap<AccountKey, usize>>,
    }

    struct LocalLink {
        node: usize,
        bus: Arc<Bus>,
    }

    struct Release {
        bus: Arc<Bus>,
        account: AccountKey,
        node: usize,
    }

    impl Drop for Release {
        fn drop(&mut self) {
            let mut leases = self.bus.leases.lock().expect("leases");
            if leases.get(&self.account) == Some(&self.node) {
                leases.remove(&self.account);
            }
        }
    }

    impl ClusterLink for LocalLink {
        fn publish(&self, event: ClusterEvent) {
            let hubs = self.bus.hubs.lock().expect("hubs").clone();
            for (node, hub) in hubs {
                if node != self.node {
                    let event = event.clone();
                    tokio::spawn(async move {
                        if let Some(hub) = hub.upgrade() {
                            hub.receive(event);
                        }
                    });
                }
            }
        }

        fn acquire(&self, account: &AccountKey) -> LeaseFuture {
            let mut leases = self.bus.leases.lock().expect("leases");
            let granted = match leases.get(account) {
                Some(holder) if *holder != self.node => None,
                _ => {
                    leases.insert(account.clone(), self.node);
                    let release = Release {
                        bus: self.bus.clone(),
                        account: account.clone(),
                        node: self.node,
                    };
                    Some(Lease { lost: Box::pin(std::future::pending()), guard: Box::new(release) })
                }
            };
            Box::pin(std::future::ready(granted))
        }

        fn retry_interval(&self) -> Duration {
            Duration::from_secs(1)
        }
    }

    fn node(bus: &Arc<Bus>, node: usize) -> PushHub {
        let hub = PushHub::new(PushSettings {
            linger: Duration::from_secs(30),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(4),
            ..PushSettings::default()
        });
        assert!(hub.join_cluster(Arc::new(LocalLink { node, bus: bus.clone() })));
        bus.hubs.lock().expect("hubs").push((node, hub.downgrade()));
        hub
    }

    /// No IMAP server: the holder's watcher keeps failing to connect and backs off.
    fn unreachable() -> Arc<dyn Connector> {
        Arc::new(|| -> ConnectFuture {
            Box::pin(async { Err(ImapError::Unavailable("no server in unit tests".into())) })
        })
    }

    fn account() -> AccountKey {
        AccountKey::new("t", "tom@example.test")
    }

    fn park(hub: &PushHub, device: &str, folder: &str) -> tokio::task::JoinHandle<WakeReason> {
        let hub = hub.clone();
        let device = device.to_string();
        let hold = Hold {
            channels: vec![(folder.to_string(), "1.1.0.0".to_string())],
            timeout: Duration::from_secs(600),
            timeout_response: (StatusCode::OK, Default::default(), Bytes::new()),
        };
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(600);
            hub.park(account(), &device, &hold, deadline, unreachable()).await
        })
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn holder(bus: &Bus) -> Option<usize> {
        bus.leases.lock().expect("leases").get(&account()).copied()
    }

    #[tokio::test(start_paused = true)]
    async fn one_watcher_wakes_requests_parked_on_every_node() {
        let bus = Arc::new(Bus::default());
        let (a, b) = (node(&bus, 0), node(&bus, 1));
        let phone = park(&a, "phone", "INBOX");
        settle().await;
        assert_eq!(holder(&bus), Some(0));
        let tablet = park(&b, "tablet", "Sent");
        settle().await;
        assert_eq!(holder(&bus), Some(0), "the lease stays with the first node");

        // the holder took the other node's folder into its watch, to be checked at once
        let snapshot = a.inner().snapshot(&account()).expect("watched");
        assert!(
            snapshot.folders.iter().any(|folder| &**folder == "Sent"),
            "{:?}",
            snapshot.folders
        );
        assert!(snapshot.pending.iter().any(|folder| &**folder == "Sent"));
        assert!(b.inner().snapshot(&account()).is_some_and(|s| s.folders.len() == 1));

        // the holder's check of Sent wakes the tablet on the other node, not the phone
        let checked = [(Arc::from("Sent"), Checked::Token("1.2.0.1".into()))];
        assert_eq!(a.inner().apply(&account(), &checked), 0, "nothing parked on Sent here");
        assert_eq!(tablet.await.ok(), Some(WakeReason::Changed));
        settle().await;
        assert!(!phone.is_finished());
        phone.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_on_one_node_ends_the_device_park_on_another() {
        let bus = Arc::new(Bus::default());
        let (a, b) = (node(&bus, 0), node(&bus, 1));
        let older = park(&a, "phone", "INBOX");
        settle().await;
        b.supersede(&account(), "phone");
        assert_eq!(older.await.ok(), Some(WakeReason::Superseded));

        // a park on the other node supersedes too, and only that device's
        let older = park(&a, "phone", "INBOX");
        let other = park(&a, "tablet", "INBOX");
        settle().await;
        let newer = park(&b, "phone", "INBOX");
        assert_eq!(older.await.ok(), Some(WakeReason::Superseded));
        settle().await;
        assert!(!newer.is_finished() && !other.is_finished());
        newer.abort();
        other.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn another_node_takes_the_lease_over_when_the_holder_is_gone() {
        let bus = Arc::new(Bus::default());
        let (a, b) = (node(&bus, 0), node(&bus, 1));
        let phone = park(&a, "phone", "INBOX");
        settle().await;
        let tablet = park(&b, "tablet", "INBOX");
        settle().await;
        assert_eq!(holder(&bus), Some(0));

        // node 0 goes away: its watcher task ends, its lease with it
        phone.abort();
        drop(a);
        settle().await;
        assert_eq!(holder(&bus), None);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(holder(&bus), Some(1), "taken over within the retry interval");
        // the new holder's own checks wake its requests
        let checked = [(Arc::from("INBOX"), Checked::Token("1.2.0.1".into()))];
        assert_eq!(b.inner().apply(&account(), &checked), 1);
        assert_eq!(tablet.await.ok(), Some(WakeReason::Changed));
    }
}
