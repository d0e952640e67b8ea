//! The node's cluster connection: a task keeps one PostgreSQL session up, listens on the
//! channel, publishes in order and hands out watcher leases (session advisory locks).
//! Every reconnect is a new generation: the leases of the old one are gone with its session.

use super::wire;
use crate::push::{AccountKey, ClusterEvent, ClusterLink, Lease, LeaseFuture, WeakPushHub};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, Client, NoTls};

const CHANNEL: &str = "eas_edge_push";
/// The lease of an account: a bigint advisory lock from the MD5 of "tenant\nlogin" (the state
/// store's namespace locks use the two-int4 key space, which never meets this one).
const TRY_LOCK: &str =
    "SELECT pg_try_advisory_lock(('x' || left(md5($1::bytea), 16))::bit(64)::bigint)";
const UNLOCK: &str =
    "SELECT pg_advisory_unlock(('x' || left(md5($1::bytea), 16))::bit(64)::bigint)";
/// A host that vanishes without closing its socket loses its session (and leases) after about
/// idle + interval × count seconds, instead of the operating system's two hours.
const SESSION_SETUP: &str = "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; \
     SET tcp_keepalives_count = 3; SET application_name = 'eas-edge cluster'; LISTEN eas_edge_push";

/// The connection in use; `None` while reconnecting.
#[derive(Clone)]
struct Session {
    client: Arc<Client>,
    generation: u64,
}

/// This node's link to the cluster (see the module docs); implements the push hub's
/// [`ClusterLink`].
pub struct PgLink {
    session: watch::Receiver<Option<Session>>,
    outbox: mpsc::UnboundedSender<String>,
    takeover: Duration,
}

impl PgLink {
    /// Starts the connection task; returns once the first connection attempt finished (a
    /// failed one is retried in the background: the node serves meanwhile, without cluster
    /// wake-ups).
    pub(super) async fn start(
        config: tokio_postgres::Config,
        hub: WeakPushHub,
        takeover: Duration,
    ) -> Arc<PgLink> {
        let (sessions, session) = watch::channel(None);
        let (outbox, outgoing) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(maintain(config, hub, sessions, outgoing, first_tx));
        let _ = first_rx.await;
        Arc::new(PgLink { session, outbox, takeover: takeover.max(Duration::from_millis(100)) })
    }

    /// Whether the cluster connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.session.borrow().is_some()
    }
}

impl ClusterLink for PgLink {
    fn publish(&self, event: ClusterEvent) {
        for payload in wire::encode(&event) {
            // the task is gone only at shutdown
            let _ = self.outbox.send(payload);
        }
    }

    fn acquire(&self, account: &AccountKey) -> LeaseFuture {
        let session = self.session.borrow().clone();
        let mut changes = self.session.clone();
        let key = lease_key(account);
        Box::pin(async move {
            let session = session?;
            let row = session.client.query_one(TRY_LOCK, &[&key]).await.ok()?;
            if !row.try_get::<_, bool>(0).ok()? {
                return None;
            }
            let generation = session.generation;
            let lost = async move {
                loop {
                    let current = changes.borrow_and_update().as_ref().map(|s| s.generation);
                    if current != Some(generation) || changes.changed().await.is_err() {
                        return;
                    }
                }
            };
            Some(Lease { lost: Box::pin(lost), guard: Box::new(Unlock { session, key }) })
        })
    }

    fn retry_interval(&self) -> Duration {
        self.takeover
    }
}

fn lease_key(account: &AccountKey) -> Vec<u8> {
    format!("{}\n{}", account.tenant, account.login).into_bytes()
}

/// Gives a lease up when the watcher stops (the session may be gone already: so is the lock).
struct Unlock {
    session: Session,
    key: Vec<u8>,
}

impl Drop for Unlock {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let client = self.session.client.clone();
        let key = std::mem::take(&mut self.key);
        runtime.spawn(async move {
            if let Err(error) = client.query_one(UNLOCK, &[&key]).await {
                tracing::debug!("cluster: releasing a watcher lease: {error}");
            }
        });
    }
}

/// Keeps a session up for ever (until the hub is gone): connect, LISTEN, then relay messages
/// both ways until the connection fails; back off and reconnect.
async fn maintain(
    config: tokio_postgres::Config,
    hub: WeakPushHub,
    sessions: watch::Sender<Option<Session>>,
    mut outgoing: mpsc::UnboundedReceiver<String>,
    first: tokio::sync::oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut generation = 0u64;
    let mut delay = Duration::from_millis(200);
    loop {
        generation += 1;
        match serve(&config, &hub, &sessions, &mut outgoing, generation, &mut first).await {
            Ok(Ended::HubGone) => return,
            Ok(Ended::Disconnected) => {
                tracing::warn!("cluster: connection to PostgreSQL lost; reconnecting");
                delay = Duration::from_millis(200);
            }
            Err(error) => {
                tracing::warn!(
                    "cluster: cannot connect to PostgreSQL: {error}; retrying in {delay:?}"
                );
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
        sessions.send_replace(None);
        if let Some(first) = first.take() {
            let _ = first.send(());
        }
        if hub.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

enum Ended {
    Disconnected,
    HubGone,
}

async fn serve(
    config: &tokio_postgres::Config,
    hub: &WeakPushHub,
    sessions: &watch::Sender<Option<Session>>,
    outgoing: &mut mpsc::UnboundedReceiver<String>,
    generation: u64,
    first: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<Ended, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    // The connection object does the I/O; notifications arrive through it.
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(note)) => {
                    if notes_tx.send(note).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!("cluster: connection error: {error}");
                    return;
                }
            }
        }
    });
    let _driver = AbortOnDrop(driver);
    client.batch_execute(SESSION_SETUP).await?;
    let own_pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await?.try_get(0)?;
    let client = Arc::new(client);
    sessions.send_replace(Some(Session { client: client.clone(), generation }));
    if let Some(first) = first.take() {
        let _ = first.send(());
    }
    tracing::info!(generation, "cluster: connected to PostgreSQL, listening on {CHANNEL}");
    loop {
        tokio::select! {
            note = notes.recv() => {
                let Some(note) = note else { return Ok(Ended::Disconnected) };
                if note.process_id() == own_pid {
                    continue;
                }
                let Some(hub) = hub.upgrade() else { return Ok(Ended::HubGone) };
                match wire::decode(note.payload()) {
                    Some(event) => hub.receive(event),
                    None => tracing::warn!("cluster: ignoring a message this build does not know"),
                }
            }
            payload = outgoing.recv() => {
                let Some(payload) = payload else { return Ok(Ended::HubGone) };
                if let Err(error) = client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await {
                    tracing::warn!("cluster: publishing failed: {error}");
                    if client.is_closed() {
                        return Ok(Ended::Disconnected);
                    }
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
