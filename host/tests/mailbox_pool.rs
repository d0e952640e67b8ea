//! The account pool and the `mailbox` capability against a real Dovecot (the `eas-edge-tests`
//! mail stack): every operation as the plugin sees it, without wasm; cached authentication;
//! the pool's cap, idle closing and recovery from dropped connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use eas_edge::accounts::{Accounts, PoolSettings};
use eas_edge::imap::{ImapError, Session};
use eas_edge::plugin_host::MailboxCapability;
use eas_edge::plugin_host::eas_edge::gateway::mailbox::{
    self as wit, ChangeMethod, Error, FolderRole, Host as _, SyncPoint,
};
use eas_edge_tests::imap::AppendOptions;
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::messages::MessageGenerator;

mod common;
use common::{MEMORY, PASSWORD, READ_TIME, USER, capability, endpoint, seed, stack};

fn accounts(stack: &MailStack, settings: &PoolSettings) -> Result<Accounts> {
    Ok(Accounts::new(endpoint(stack.imap_addr()?)?, settings))
}

fn uids(ranges: &[wit::UidRange]) -> Vec<u32> {
    ranges.iter().flat_map(|range| range.first..=range.last).collect()
}

fn sorted(flags: &[String]) -> Vec<String> {
    let mut flags = flags.to_vec();
    flags.sort();
    flags
}

/// Every operation of the interface, on one pooled account: results as the plugin gets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mailbox_operation_through_the_pool() -> Result<()> {
    let stack = stack()?;
    let messages = seed(&stack, "INBOX", 21, 30)?;
    let accounts = accounts(&stack, &PoolSettings::default())?;
    let account = accounts.authenticate(USER, PASSWORD.as_bytes()).await?;
    let mut mailbox = capability(&account);

    let folders = mailbox.list_folders().await.map_err(anyhow::Error::msg)?;
    let inbox = folders.iter().find(|f| f.name == "INBOX").context("no INBOX")?;
    ensure!(inbox.role == Some(FolderRole::Inbox) && inbox.selectable, "{inbox:?}");
    let sent = folders.iter().find(|f| f.role == Some(FolderRole::Sent)).context("no Sent")?;
    ensure!(sent.display_name == "Sent" && sent.delimiter == Some('/'));
    // Dovecot 2.3 does not announce OBJECTID (checked against the real server)
    ensure!(folders.iter().all(|f| f.mailbox_id.is_none()));

    let names = vec!["INBOX".to_string(), "Sent".to_string(), "Nope".to_string()];
    let statuses = mailbox.status(names).await.map_err(anyhow::Error::msg)?;
    let inbox_status = statuses[0].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(inbox_status.messages == 30 && inbox_status.uid_next == 31);
    ensure!(inbox_status.highest_modseq.is_some());
    ensure!(statuses[1].as_ref().is_ok_and(|s| s.messages == 0));
    ensure!(matches!(&statuses[2], Err(Error::NoSuchFolder(name)) if name == "Nope"));

    // no sync point: a full listing, with every message's flags
    let full = mailbox.changes("INBOX".into(), None).await.map_err(anyhow::Error::msg)?;
    ensure!(full.method == ChangeMethod::Full && !full.uid_validity_changed);
    ensure!(full.messages == 30 && full.uid_next == 31 && full.highest_modseq > 0);
    ensure!(full.changed.len() == 30 && full.vanished.is_empty());
    ensure!(uids(full.current_uids.as_deref().unwrap_or_default()) == (1..=30).collect::<Vec<_>>());
    for (listed, message) in full.changed.iter().zip(&messages) {
        ensure!(sorted(&listed.flags) == sorted(&message.flags), "flags of uid {}", listed.uid);
    }
    let point = SyncPoint { uid_validity: full.uid_validity, highest_modseq: full.highest_modseq };
    let unchanged =
        mailbox.changes("INBOX".into(), Some(point)).await.map_err(anyhow::Error::msg)?;
    ensure!(unchanged.method == ChangeMethod::Qresync && unchanged.changed.is_empty());

    // another client: a flag, an expunge, a new message
    let mut other = stack.imap_login(USER, PASSWORD)?;
    other.select("INBOX")?;
    other.uid_store("4", "+FLAGS", &["\\Flagged"])?;
    other.uid_store("5", "+FLAGS", &["\\Deleted"])?;
    other.uid_expunge("5")?;
    let newest = MessageGenerator::new(77, USER).next().context("generator")?;
    other.append("INBOX", &newest.raw, &newest.append_options())?;

    let changes = mailbox.changes("INBOX".into(), Some(point)).await.map_err(anyhow::Error::msg)?;
    ensure!(changes.method == ChangeMethod::Qresync && !changes.uid_validity_changed);
    ensure!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>() == vec![4, 31],
        "{changes:?}"
    );
    ensure!(uids(&changes.vanished).contains(&5) && changes.messages == 30);
    // a folder recreated since the point: the full listing right away
    let stale = SyncPoint { uid_validity: point.uid_validity.wrapping_sub(1), ..point };
    let recreated =
        mailbox.changes("INBOX".into(), Some(stale)).await.map_err(anyhow::Error::msg)?;
    ensure!(recreated.uid_validity_changed && recreated.method == ChangeMethod::Full);
    ensure!(
        recreated.changed.len() == 30
            && !uids(recreated.current_uids.as_deref().unwrap_or_default()).contains(&5)
    );
    ensure!(matches!(
        mailbox.changes("Nope".into(), None).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));

    // date window: one message dated a month before all the others
    let oldest = messages.iter().map(|m| m.date).min().context("no messages")?;
    let old = MessageGenerator::new(78, USER).newest_at(oldest - 30 * 86_400).next();
    let old = old.context("generator")?;
    other.append("INBOX", &old.raw, &old.append_options())?;
    let current: Vec<u32> = (1..=4).chain(6..=31).collect();
    let all = mailbox.uids_since("INBOX".into(), 0).await.map_err(anyhow::Error::msg)?;
    ensure!(uids(&all) == [current.clone(), vec![32]].concat(), "{all:?}");
    let recent = mailbox.uids_since("INBOX".into(), oldest - 86_400).await;
    ensure!(uids(&recent.map_err(anyhow::Error::msg)?) == current);
    let future = mailbox.uids_since("INBOX".into(), newest.date + 2 * 86_400).await;
    ensure!(future.map_err(anyhow::Error::msg)?.is_empty());

    let summaries = mailbox
        .fetch_summaries("INBOX".into(), vec![3, 1, 5, 31, 999], 512, None)
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(summaries.iter().map(|s| s.uid).collect::<Vec<_>>() == vec![1, 3, 31]);
    let third = &summaries[1];
    let raw = &messages[2].raw;
    let header_len = raw.windows(4).position(|w| w == b"\r\n\r\n").context("header block")? + 4;
    ensure!(third.prefix == raw[..raw.len().min(header_len + 512)], "header block and 512 bytes");
    ensure!(
        third.size as usize == messages[2].raw.len() && third.internal_date == messages[2].date
    );
    ensure!(!third.body_structure.is_empty());
    // an answer over the host's limit (half the plugin's memory: 16 KiB here)
    let mut small = MailboxCapability::new(
        "test".into(),
        Some(account.clone()),
        32 << 10,
        Instant::now() + READ_TIME,
        None,
    );
    match small.fetch_summaries("INBOX".into(), (1..=30).collect(), 4096, None).await {
        Err(Error::TooLarge(_)) => {}
        other => bail!("an oversized answer gave {:?}", other.map(|s| s.len())),
    }
    let fits = small.fetch_summaries("INBOX".into(), vec![1, 2], 4096, None).await;
    ensure!(fits.map_err(anyhow::Error::msg)?.len() == 2);

    let message = mailbox
        .fetch_message("INBOX".into(), 3, 1 << 20)
        .await
        .map_err(anyhow::Error::msg)?
        .context("uid 3")?;
    ensure!(message.uid == 3 && message.raw == messages[2].raw);
    ensure!(message.internal_date == messages[2].date);
    ensure!(sorted(&message.flags) == sorted(&messages[2].flags));
    let four =
        mailbox.fetch_message("INBOX".into(), 4, 1 << 20).await.map_err(anyhow::Error::msg)?;
    ensure!(four.is_some_and(|m| m.flags.iter().any(|f| f == "\\Flagged")));
    ensure!(matches!(mailbox.fetch_message("INBOX".into(), 3, 10).await, Err(Error::TooLarge(_))));
    ensure!(
        mailbox
            .fetch_message("INBOX".into(), 5, 1 << 20)
            .await
            .map_err(anyhow::Error::msg)?
            .is_none()
    );
    let part = mailbox
        .fetch_part("INBOX".into(), 3, "1".into(), 1 << 20)
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(part.is_some_and(|p| !p.is_empty()));
    ensure!(matches!(
        mailbox.fetch_part("INBOX".into(), 3, "1 BODY[]".into(), 100).await,
        Err(Error::Refused(_))
    ));
    ensure!(matches!(
        mailbox.fetch_message("Nope".into(), 1, 100).await,
        Err(Error::NoSuchFolder(_))
    ));

    // all of it on the one session the login left in the pool
    ensure!(accounts.logins() == 1, "{} LOGINs", accounts.logins());
    ensure!(account.idle_sessions() == 1);

    let mut anonymous =
        MailboxCapability::new("test".into(), None, MEMORY, Instant::now() + READ_TIME, None);
    ensure!(matches!(anonymous.list_folders().await, Err(Error::Unauthenticated)));
    Ok(())
}

/// A pooled session saw INBOX before new mail arrived; fetching the new message must still
/// work (servers answer FETCH from the session's last view of the folder).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_sessions_see_mail_that_arrived_meanwhile() -> Result<()> {
    let stack = stack()?;
    seed(&stack, "INBOX", 4, 3)?;
    let accounts = accounts(&stack, &PoolSettings::default())?;
    let account = accounts.authenticate(USER, PASSWORD.as_bytes()).await?;
    let mut mailbox = capability(&account);
    let before = mailbox.fetch_summaries("INBOX".into(), vec![1, 2, 3], 0, None).await;
    ensure!(before.map_err(anyhow::Error::msg)?.len() == 3);

    let arriving = MessageGenerator::new(5, USER).next().context("generator")?;
    stack.imap_login(USER, PASSWORD)?.append("INBOX", &arriving.raw, &AppendOptions::default())?;

    let summaries = mailbox.fetch_summaries("INBOX".into(), vec![4], 100, None).await;
    ensure!(summaries.map_err(anyhow::Error::msg)?.len() == 1, "new message not seen");
    let message = mailbox.fetch_message("INBOX".into(), 4, 1 << 20).await;
    ensure!(message.map_err(anyhow::Error::msg)?.is_some_and(|m| m.raw == arriving.raw));
    let since = mailbox.uids_since("INBOX".into(), 0).await.map_err(anyhow::Error::msg)?;
    ensure!(uids(&since) == vec![1, 2, 3, 4]);
    ensure!(accounts.logins() == 1);
    Ok(())
}

/// Successful logins lines in Dovecot's log, which lags a little behind.
fn dovecot_logins(stack: &MailStack, expected: usize) -> Result<usize> {
    let log = stack.dir().join("log/dovecot.log");
    let needle = format!("Login: user=<{USER}>");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).with_context(|| log.display().to_string())?;
        let count = text.lines().filter(|line| line.contains(&needle)).count();
        if count >= expected || Instant::now() > deadline {
            return Ok(count);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_is_cached_but_never_for_a_wrong_password() -> Result<()> {
    let stack = stack()?;
    let accounts = accounts(&stack, &PoolSettings::default())?;
    for _ in 0..5 {
        accounts.authenticate(USER, PASSWORD.as_bytes()).await?;
    }
    ensure!(accounts.logins() == 1, "{} LOGINs for five checks", accounts.logins());
    ensure!(dovecot_logins(&stack, 1)? == 1, "Dovecot saw more than one login");

    match accounts.authenticate(USER, b"wrong").await {
        Err(ImapError::AuthFailed(_)) => {}
        other => bail!("a wrong password gave {other:?}"),
    }
    match accounts.authenticate(USER, b"").await {
        Err(ImapError::AuthFailed(_)) => {}
        other => bail!("an empty password gave {other:?}"),
    }
    ensure!(accounts.logins() == 3, "wrong passwords are always asked of the server");
    // ... and leave the good cached password alone
    let account = accounts.authenticate(USER, PASSWORD.as_bytes()).await?;
    ensure!(accounts.logins() == 3 && account.login() == USER);
    match accounts.authenticate("nobody@example.test", PASSWORD.as_bytes()).await {
        Err(ImapError::AuthFailed(_)) => {}
        other => bail!("an unknown user gave {other:?}"),
    }

    // the password changes on the server: the old one keeps working from the cache until it
    // expires, the new one logs in and replaces it
    stack.add_user(USER, "new password")?;
    accounts.authenticate(USER, b"new password").await?;
    ensure!(accounts.logins() == 5);
    ensure!(accounts.authenticate(USER, b"new password").await.is_ok() && accounts.logins() == 5);

    // without a cache every check logs in
    let uncached = accounts_without_cache(&stack)?;
    uncached.authenticate(USER, b"new password").await?;
    uncached.authenticate(USER, b"new password").await?;
    ensure!(uncached.logins() == 2);
    Ok(())
}

fn accounts_without_cache(stack: &MailStack) -> Result<Accounts> {
    accounts(stack, &PoolSettings { auth_cache_seconds: 0, ..PoolSettings::default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_caps_sessions_closes_idle_ones_and_survives_a_server_restart() -> Result<()> {
    let stack = stack()?;
    seed(&stack, "INBOX", 9, 2)?;
    let settings = PoolSettings { max_sessions_per_account: 2, ..PoolSettings::default() };
    let accounts = Arc::new(accounts(&stack, &settings)?);
    let account = accounts.authenticate(USER, PASSWORD.as_bytes()).await?;

    // six callers at once: at most two sessions, the rest wait their turn
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut callers = Vec::new();
    for _ in 0..6 {
        let (account, running, most) = (account.clone(), running.clone(), most.clone());
        callers.push(tokio::spawn(async move {
            account
                .run(async move |session: &mut Session| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let status = session.status("INBOX").await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    status
                })
                .await
        }));
    }
    for caller in callers {
        ensure!(caller.await?.is_ok_and(|status| status.messages == 2));
    }
    ensure!(most.load(Ordering::SeqCst) == 2, "{} sessions at once", most.load(Ordering::SeqCst));
    ensure!(accounts.logins() == 2, "the login's session was reused: {}", accounts.logins());
    ensure!(account.idle_sessions() == 2);

    // idle sessions are logged out after the idle time
    accounts.close_idle(Instant::now()).await;
    ensure!(account.idle_sessions() == 2, "closed too early");
    accounts.close_idle(Instant::now() + Duration::from_secs(61)).await;
    ensure!(account.idle_sessions() == 0);

    // a pooled connection the server dropped: the call is retried on a new session
    let mut mailbox = capability(&account);
    mailbox.list_folders().await.map_err(anyhow::Error::msg)?;
    ensure!(account.idle_sessions() == 1 && accounts.logins() == 3);
    stack.imap_restart()?;
    let folders = mailbox.list_folders().await.map_err(anyhow::Error::msg)?;
    ensure!(folders.iter().any(|f| f.name == "INBOX"));
    ensure!(accounts.logins() == 4 && account.idle_sessions() == 1);

    // a spent account (no session, no fresh password) is forgotten once nobody holds it
    drop((mailbox, account));
    let spent = accounts_without_cache(&stack)?;
    spent.authenticate(USER, PASSWORD.as_bytes()).await?;
    ensure!(spent.known_accounts() == 1);
    spent.close_idle(Instant::now() + Duration::from_secs(61)).await;
    ensure!(spent.known_accounts() == 0);
    // an account with a session and a fresh password stays
    accounts.close_idle(Instant::now()).await;
    ensure!(accounts.known_accounts() == 1);
    Ok(())
}

/// A server that stops answering: `unavailable`, not a hang or a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_makes_calls_unavailable() -> Result<()> {
    let mut stack = stack()?;
    let accounts = accounts(&stack, &PoolSettings::default())?;
    let account = accounts.authenticate(USER, PASSWORD.as_bytes()).await?;
    let mut mailbox = capability(&account);
    stack.stop()?;
    match mailbox.status(vec!["INBOX".into()]).await {
        Err(Error::Unavailable(_)) => {}
        other => bail!("a stopped server gave {other:?}"),
    }
    ensure!(account.idle_sessions() == 0, "broken sessions are not pooled");
    // the password is still cached: authentication does not need the server
    ensure!(accounts.authenticate(USER, PASSWORD.as_bytes()).await.is_ok());
    Ok(())
}
