//! Push watchers against a real Dovecot (the `eas-edge-tests` mail stack): parked requests
//! wake on changes seen through NOTIFY, IDLE and STATUS polling, survive a Dovecot restart,
//! and watchers stop when nothing is parked any more.
//!
//! Waits are bounded (a failing test fails within seconds); no assertion depends on how fast
//! the machine is beyond "within this generous bound".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use eas_edge::imap::{Endpoint, ImapError, Session, TlsMode, TlsSettings};
use eas_edge::push::{
    AccountKey, ConnectFuture, Connector, HIERARCHY, Hold, PushHub, PushSettings, PushStats,
    WakeReason, folder_token, hierarchy_token,
};
use eas_edge_tests::imap::{AppendOptions, ImapClient};
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::messages::MessageGenerator;
use eas_edge_tests::seed::seed_mailbox;
use http::StatusCode;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const USER: &str = "pia@example.test";
const PASSWORD: &str = "push secret";
/// How long a wake-up may take at most before the test fails (Dovecot notifies after ~0.5 s).
const WAKE_BOUND: Duration = Duration::from_secs(15);

fn account() -> AccountKey {
    AccountKey::new("test", USER)
}

fn endpoint(stack: &MailStack) -> Result<Endpoint> {
    let addr = stack.imap_addr()?;
    let tls = TlsSettings { mode: TlsMode::None, ..TlsSettings::default() };
    Ok(Endpoint::new(&addr.ip().to_string(), addr.port(), &tls)?)
}

/// Logs in with the password; `offline` makes every login fail (a server "down" for the
/// watcher only).
struct PasswordConnector {
    endpoint: Endpoint,
    offline: AtomicBool,
}

impl Connector for PasswordConnector {
    fn connect(&self) -> ConnectFuture {
        let endpoint = self.endpoint.clone();
        let offline = self.offline.load(Ordering::SeqCst);
        Box::pin(async move {
            if offline {
                return Err(ImapError::Unavailable("offline for the test".into()));
            }
            Session::connect(&endpoint, USER, PASSWORD.as_bytes()).await
        })
    }
}

struct Fixture {
    stack: MailStack,
    hub: PushHub,
    connector: Arc<PasswordConnector>,
    /// For the tokens a plugin would have based its answer on.
    probe: Session,
    /// Another client changing the mailbox.
    other: ImapClient,
    messages: MessageGenerator,
}

impl Fixture {
    async fn start(settings: PushSettings) -> Result<Self> {
        let stack = MailStack::start()?;
        stack.add_user(USER, PASSWORD)?;
        {
            let mut imap = stack.imap_login(USER, PASSWORD)?;
            let seeded: Vec<_> = MessageGenerator::new(1, USER).take(3).collect();
            seed_mailbox(&mut imap, "INBOX", &seeded)?;
            imap.run("CREATE \"Projects\"")?;
        }
        let endpoint = endpoint(&stack)?;
        let probe = Session::connect(&endpoint, USER, PASSWORD.as_bytes()).await?;
        let other = stack.imap_login(USER, PASSWORD)?;
        let connector = Arc::new(PasswordConnector { endpoint, offline: AtomicBool::new(false) });
        Ok(Self {
            stack,
            hub: PushHub::new(settings),
            connector,
            probe,
            other,
            messages: MessageGenerator::new(2, USER),
        })
    }

    /// The folders' current tokens, as the plugin would put them in its hold.
    async fn hold(&mut self, folders: &[&str], timeout: Duration) -> Result<Hold> {
        let mut channels = Vec::new();
        for folder in folders {
            // a fresh probe session each time would be slower; STATUS is never cached
            let status = self.probe.status(folder).await?;
            channels.push((folder.to_string(), folder_token(&status)));
        }
        Ok(Hold {
            channels,
            timeout,
            timeout_response: (StatusCode::OK, Default::default(), Bytes::from_static(b"ping 1")),
        })
    }

    /// `hold` plus the hierarchy watch, with the folder list's current token.
    async fn with_hierarchy(&mut self, mut hold: Hold) -> Result<Hold> {
        let folders = self.probe.list_folders().await?;
        let token = hierarchy_token(folders.iter().map(|folder| folder.raw_name.as_str()));
        hold.channels.push((HIERARCHY.to_owned(), token));
        Ok(hold)
    }

    fn park(&self, device: &str, hold: Hold) -> JoinHandle<WakeReason> {
        let hub = self.hub.clone();
        let device = device.to_string();
        let connector: Arc<dyn Connector> = self.connector.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + hold.timeout;
            hub.park(account(), &device, &hold, deadline, connector).await
        })
    }

    fn append(&mut self, folder: &str) -> Result<()> {
        let message = self.messages.next().context("generator")?;
        self.other.append(folder, &message.raw, &AppendOptions::default())?;
        Ok(())
    }

    /// Waits (bounded) until the stats satisfy `wanted`.
    async fn stats_until(&self, what: &str, wanted: impl Fn(PushStats) -> bool) -> Result<()> {
        let end = Instant::now() + WAKE_BOUND;
        while Instant::now() < end {
            if wanted(self.hub.stats()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{what}: stats stayed {:?}", self.hub.stats())
    }
}

/// Short reconnect delays and linger, for bounded tests.
fn quick(settings: PushSettings) -> PushSettings {
    PushSettings {
        linger: Duration::from_secs(30),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(800),
        ..settings
    }
}

async fn woke(parked: JoinHandle<WakeReason>, what: &str) -> Result<WakeReason> {
    match tokio::time::timeout(WAKE_BOUND, parked).await {
        Ok(joined) => Ok(joined?),
        Err(_) => bail!("{what}: no wake-up within {WAKE_BOUND:?}"),
    }
}

async fn expect(parked: JoinHandle<WakeReason>, wanted: WakeReason, what: &str) -> Result<()> {
    let reason = woke(parked, what).await?;
    ensure!(reason == wanted, "{what}: {reason:?}, expected {wanted:?}");
    Ok(())
}

/// Nothing wakes the request for a while (it is still parked).
async fn still_parked(parked: &JoinHandle<WakeReason>, what: &str) -> Result<()> {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(!parked.is_finished(), "{what}: woke without a change");
    Ok(())
}

const LONG: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_on_new_mail_flags_and_stale_tokens() -> Result<()> {
    // IDLE renewed often: notices are not lost around DONE / IDLE
    let settings =
        PushSettings { idle_renewal: Duration::from_millis(700), ..PushSettings::default() };
    let mut fx = Fixture::start(quick(settings)).await?;

    // new mail in INBOX, with Sent watched too: one NOTIFY connection for both
    let hold = fx.hold(&["INBOX", "Sent"], LONG).await?;
    let parked = fx.park("dev1", hold);
    fx.stats_until("watcher connected", |s| s.imap_connections == 1 && s.parked == 1).await?;
    still_parked(&parked, "unchanged INBOX").await?;
    fx.append("INBOX")?;
    expect(parked, WakeReason::Changed, "APPEND to INBOX").await?;

    // a flag change (HIGHESTMODSEQ moves)
    let hold = fx.hold(&["INBOX"], LONG).await?;
    let stale = hold.clone();
    let parked = fx.park("dev1", hold);
    fx.other.select("INBOX")?;
    fx.other.uid_store("1", "+FLAGS", &["$Watched"])?;
    expect(parked, WakeReason::Changed, "flag change").await?;

    // a token that is already out of date when parked: at once, nothing else happens
    let parked = fx.park("dev1", stale);
    expect(parked, WakeReason::Changed, "stale token").await?;

    // another folder than INBOX, with a name that needs quoting
    let hold = fx.hold(&["Projects", "INBOX"], LONG).await?;
    let parked = fx.park("dev2", hold);
    still_parked(&parked, "unchanged Projects").await?;
    fx.append("Projects")?;
    expect(parked, WakeReason::Changed, "APPEND to Projects").await?;

    // unchanged: the deadline
    let hold = fx.hold(&["INBOX"], Duration::from_secs(2)).await?;
    expect(fx.park("dev1", hold), WakeReason::Timeout, "timeout").await?;

    // a deleted folder wakes its requests
    fx.other.run("CREATE \"Doomed\"")?;
    let hold = fx.hold(&["Doomed"], LONG).await?;
    let parked = fx.park("dev3", hold);
    still_parked(&parked, "unchanged Doomed").await?;
    fx.other.run("DELETE \"Doomed\"")?;
    expect(parked, WakeReason::Changed, "folder deleted").await?;

    ensure!(fx.hub.stats().imap_connections == 1, "NOTIFY needs one connection");
    ensure!(fx.hub.stats().parked == 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_polling_beyond_the_cap() -> Result<()> {
    let settings = PushSettings {
        use_notify: false,
        max_idle_connections: 2,
        poll_interval: Duration::from_secs(1),
        idle_renewal: Duration::from_millis(700),
        ..quick(PushSettings::default())
    };
    let mut fx = Fixture::start(settings).await?;
    let folders = ["INBOX", "Sent", "Drafts", "Projects"];

    // INBOX on the watcher's connection, Sent on a helper, Drafts and Projects polled
    let hold = fx.hold(&folders, LONG).await?;
    let parked = fx.park("dev1", hold);
    fx.stats_until("two IDLE connections", |s| s.imap_connections == 2).await?;
    still_parked(&parked, "nothing changed").await?;
    fx.append("INBOX")?;
    expect(parked, WakeReason::Changed, "APPEND to INBOX (IDLE)").await?;

    let hold = fx.hold(&folders, LONG).await?;
    let parked = fx.park("dev1", hold);
    still_parked(&parked, "nothing changed").await?;
    fx.append("Sent")?;
    expect(parked, WakeReason::Changed, "APPEND to Sent (IDLE helper)").await?;

    let hold = fx.hold(&folders, LONG).await?;
    let parked = fx.park("dev1", hold);
    still_parked(&parked, "nothing changed").await?;
    fx.append("Projects")?;
    expect(parked, WakeReason::Changed, "APPEND to Projects (polled)").await?;

    let hold = fx.hold(&folders, LONG).await?;
    let stale = hold.clone();
    let parked = fx.park("dev1", hold);
    fx.other.select("INBOX")?;
    fx.other.uid_store("2", "+FLAGS", &["$Pushed"])?;
    expect(parked, WakeReason::Changed, "flag change in INBOX (IDLE)").await?;
    expect(fx.park("dev1", stale), WakeReason::Changed, "stale token").await?;

    // a second device shares the watcher and its connections
    let hold = fx.hold(&folders, LONG).await?;
    let first = fx.park("dev1", hold.clone());
    let second = fx.park("dev2", hold);
    fx.stats_until("two parked", |s| s.parked == 2).await?;
    ensure!(fx.hub.stats().watchers == 1 && fx.hub.stats().imap_connections == 2);
    fx.append("Drafts")?;
    expect(first, WakeReason::Changed, "dev1, APPEND to Drafts (polled)").await?;
    expect(second, WakeReason::Changed, "dev2, APPEND to Drafts (polled)").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_only_without_idle_connections() -> Result<()> {
    let settings = PushSettings {
        use_notify: false,
        max_idle_connections: 0,
        poll_interval: Duration::from_millis(500),
        ..quick(PushSettings::default())
    };
    let mut fx = Fixture::start(settings).await?;
    let hold = fx.hold(&["INBOX"], LONG).await?;
    let parked = fx.park("dev1", hold);
    fx.stats_until("watcher connected", |s| s.imap_connections == 1).await?;
    still_parked(&parked, "nothing changed").await?;
    fx.other.select("INBOX")?;
    fx.other.uid_store("3", "+FLAGS", &["$Label1"])?;
    expect(parked, WakeReason::Changed, "keyword change, seen by HIGHESTMODSEQ").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_restart_while_parked() -> Result<()> {
    for use_notify in [true, false] {
        let mode = if use_notify { "NOTIFY" } else { "IDLE" };
        let settings = PushSettings { use_notify, ..quick(PushSettings::default()) };
        let mut fx = Fixture::start(settings).await?;

        let hold = fx.hold(&["INBOX", "Sent"], LONG).await?;
        let parked = fx.park("dev1", hold);
        let connections = if use_notify { 1 } else { 2 };
        fx.stats_until("watching", |s| s.imap_connections == connections).await?;
        let timed = fx.hold(&["INBOX"], Duration::from_secs(6)).await?;
        let timed = fx.park("dev2", timed);

        restart(&fx.stack).await?;
        fx.other = fx.stack.imap_login(USER, PASSWORD)?;
        fx.probe = Session::connect(&endpoint(&fx.stack)?, USER, PASSWORD.as_bytes()).await?;
        // the watcher comes back on its own
        fx.stats_until("reconnected", |s| s.imap_connections == connections).await?;
        still_parked(&parked, &format!("{mode}: restart alone")).await?;
        fx.append("Sent")?;
        expect(parked, WakeReason::Changed, &format!("{mode}: APPEND after restart")).await?;
        expect(timed, WakeReason::Timeout, &format!("{mode}: timeout across the restart")).await?;

        // a change while the watcher is away is found by the recheck on reconnect
        let hold = fx.hold(&["INBOX"], LONG).await?;
        let parked = fx.park("dev1", hold);
        fx.connector.offline.store(true, Ordering::SeqCst);
        restart(&fx.stack).await?;
        fx.stats_until("disconnected", |s| s.imap_connections == 0).await?;
        fx.other = fx.stack.imap_login(USER, PASSWORD)?;
        fx.append("INBOX")?;
        still_parked(&parked, &format!("{mode}: while the watcher is away")).await?;
        fx.connector.offline.store(false, Ordering::SeqCst);
        expect(parked, WakeReason::Changed, &format!("{mode}: recheck on reconnect")).await?;
    }
    Ok(())
}

async fn restart(stack: &MailStack) -> Result<()> {
    // the script blocks for a few seconds: keep it off the runtime's workers
    tokio::task::block_in_place(|| stack.imap_restart())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_linger_then_stop() -> Result<()> {
    let settings = PushSettings {
        linger: Duration::from_secs(1),
        use_notify: false,
        max_idle_connections: 3,
        ..quick(PushSettings::default())
    };
    let mut fx = Fixture::start(settings).await?;
    let hold = fx.hold(&["INBOX", "Sent"], Duration::from_secs(2)).await?;
    let parked = fx.park("dev1", hold);
    fx.stats_until("watching", |s| s.watchers == 1 && s.imap_connections == 2).await?;
    expect(parked, WakeReason::Timeout, "timeout").await?;
    fx.stats_until("stopped", |s| s == PushStats::default()).await?;

    // a client that goes away frees its record; the watcher then stops too
    let hold = fx.hold(&["INBOX"], LONG).await?;
    let parked = fx.park("dev1", hold);
    fx.stats_until("watching again", |s| s.watchers == 1 && s.imap_connections == 1).await?;
    parked.abort();
    fx.stats_until("record freed", |s| s.parked == 0).await?;
    fx.stats_until("stopped again", |s| s == PushStats::default()).await?;
    Ok(())
}

/// A folder created, renamed or deleted by another client wakes a request that watches the
/// hierarchy; a subscription change does not (the token counts names only).
async fn hierarchy_changes_wake(settings: PushSettings) -> Result<()> {
    let mut fx = Fixture::start(quick(settings)).await?;
    for (what, command) in [
        ("folder created", "CREATE \"Fresh\""),
        ("folder renamed", "RENAME \"Fresh\" \"Renamed\""),
        ("folder deleted", "DELETE \"Renamed\""),
    ] {
        let hold = fx.hold(&["INBOX"], LONG).await?;
        let hold = fx.with_hierarchy(hold).await?;
        let parked = fx.park("dev1", hold);
        still_parked(&parked, &format!("before: {what}")).await?;
        if what == "folder created" {
            fx.other.run("SUBSCRIBE \"Projects\"")?;
            still_parked(&parked, "subscription change").await?;
        }
        fx.other.run(command)?;
        expect(parked, WakeReason::Changed, what).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hierarchy_changes_wake_with_notify() -> Result<()> {
    hierarchy_changes_wake(PushSettings::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hierarchy_changes_wake_with_idle_and_polling() -> Result<()> {
    hierarchy_changes_wake(PushSettings {
        use_notify: false,
        poll_interval: Duration::from_millis(500),
        ..PushSettings::default()
    })
    .await
}
