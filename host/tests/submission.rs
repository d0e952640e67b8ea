//! The `submission` capability against the real Postfix of the `eas-edge-tests` mail stack:
//! delivery to another local user (checked over IMAP), refused recipients, AUTH with the
//! password the IMAP server accepted, STARTTLS and implicit TLS, and the failures the phone
//! must tell apart (server down, every recipient refused, too large, a connection lost after
//! the message's end).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use eas_edge::accounts::{Account, Accounts, PoolSettings};
use eas_edge::config::TlsMode as ConfigTls;
use eas_edge::imap::{Endpoint, TlsMode, TlsSettings};
use eas_edge::plugin_host::SubmissionCapability;
use eas_edge::plugin_host::eas_edge::gateway::state::Scope;
use eas_edge::plugin_host::eas_edge::gateway::submission::{Claim, Error, Host as _};
use eas_edge::smtp::{AfterFinalDot, Credentials, SmtpAuth, SmtpConfig, SmtpError, Submitter};
use eas_edge::state::{Namespace, RedbOptions, RedbStore, StateStore};
use eas_edge_tests::faults::{Fault, FaultProxy};
use eas_edge_tests::mailstack::MailStack;

const USER: &str = "pat@example.test";
const PASSWORD: &str = "s3cret pässword";
const FRIEND: &str = "sam@example.test";
const FRIEND_PASSWORD: &str = "another secret";

/// How long Postfix may take to hand a message to Dovecot (a bound, not a measurement).
const DELIVERY: Duration = Duration::from_secs(60);

/// How long a submission may take (a plugin call's share of its budget; generous here).
const SUBMISSION_DEADLINE: Duration = Duration::from_secs(120);

struct Fixture {
    stack: MailStack,
    account: Arc<Account>,
    _accounts: Accounts,
    /// What a request's state store would be (the capability flushes it after a send).
    store: Arc<dyn StateStore>,
    _state_dir: tempfile::TempDir,
}

async fn fixture() -> Result<Fixture> {
    let stack = MailStack::start()?;
    stack.add_user(USER, PASSWORD)?;
    stack.add_user(FRIEND, FRIEND_PASSWORD)?;
    let imap = stack.imap_addr()?;
    let tls = TlsSettings { mode: TlsMode::None, ..TlsSettings::default() };
    let endpoint = Endpoint::new(&imap.ip().to_string(), imap.port(), &tls)?;
    let accounts = Accounts::new(endpoint, &PoolSettings::default());
    let account = accounts.authenticate(USER, PASSWORD.as_bytes()).await?;
    let state_dir = tempfile::tempdir()?;
    let redb = RedbStore::open(state_dir.path().join("state.redb"), RedbOptions::default()).await?;
    let store: Arc<dyn StateStore> = Arc::new(redb);
    let store = store.deferred();
    Ok(Fixture { stack, account, _accounts: accounts, store, _state_dir: state_dir })
}

fn config(addr: SocketAddr, tls: ConfigTls, auth: SmtpAuth) -> SmtpConfig {
    SmtpConfig { host: addr.ip().to_string(), port: addr.port(), tls, ca_file: None, auth }
}

fn capability(fixture: &Fixture, config: &SmtpConfig) -> Result<SubmissionCapability> {
    let submitter = Submitter::new(config)?;
    let account = Some(fixture.account.clone());
    Ok(SubmissionCapability::new(
        "test".into(),
        account,
        Arc::new(submitter),
        fixture.store.clone(),
        Instant::now() + SUBMISSION_DEADLINE,
    ))
}

/// SMTP over TLS from the first byte (Postfix's `smtps` service of the stack).
fn smtps_addr(stack: &MailStack) -> Result<SocketAddr> {
    let port = stack.setting("SMTPS_PORT")?.parse().context("SMTPS_PORT")?;
    Ok(SocketAddr::new(stack.smtp_addr()?.ip(), port))
}

/// A message with a unique subject, lines that need dot-stuffing, and 8-bit text.
fn message(token: &str) -> Vec<u8> {
    format!(
        "From: Pat <{USER}>\r\nTo: Sam <{FRIEND}>\r\nSubject: {token}\r\n\
         Date: Sat, 07 Mar 2026 10:00:00 +0000\r\nMessage-ID: <{token}@example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\nHallo Sam, schöne Grüße.\r\n.\r\n..two dots\r\n\
         .one dot\r\n-- \r\nPat\r\n"
    )
    .into_bytes()
}

/// The message with subject `token` in `user`'s INBOX, once delivered.
fn delivered(stack: &MailStack, user: &str, password: &str, token: &str) -> Result<Vec<u8>> {
    let mut imap = stack.imap_login(user, password)?;
    let deadline = std::time::Instant::now() + DELIVERY;
    loop {
        imap.examine("INBOX")?;
        let found = imap.uid_search(&format!("HEADER Subject {token}"))?;
        if let Some(&uid) = found.first() {
            return imap.uid_fetch_rfc822(uid);
        }
        if std::time::Instant::now() > deadline {
            bail!("{token} did not reach {user} within {DELIVERY:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn refused_addresses(
    refused: &[eas_edge::plugin_host::eas_edge::gateway::submission::RefusedRecipient],
) -> Vec<&str> {
    refused.iter().map(|r| r.address.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_reaches_a_local_user_and_refused_recipients_are_named() -> Result<()> {
    let fixture = fixture().await?;
    let stack = &fixture.stack;
    let smtp = config(stack.submission_addr()?, ConfigTls::None, SmtpAuth::User);
    let mut submission = capability(&fixture, &smtp)?;

    let sent = message("first-8c1f");
    let recipients = vec![
        FRIEND.to_string(),
        "nobody@example.test".to_string(),
        "not an address".to_string(),
        FRIEND.to_uppercase(),
    ];
    let refused =
        submission.send(sent.clone(), recipients, None).await.map_err(anyhow::Error::msg)?;
    ensure!(
        refused_addresses(&refused) == vec!["not an address", "nobody@example.test"],
        "{refused:?}"
    );
    ensure!(refused[1].reply.starts_with("550"), "{:?}", refused[1].reply);

    let received = delivered(stack, FRIEND, FRIEND_PASSWORD, "first-8c1f")?;
    // Postfix and Dovecot add trace headers on top; the message itself arrives unchanged (the
    // dot-stuffed lines unstuffed again)
    ensure!(received.ends_with(&sent), "{}", String::from_utf8_lossy(&received));
    let text = String::from_utf8_lossy(&received);
    ensure!(text.contains(&format!("Return-Path: <{USER}>")), "envelope sender: {text}");

    // every recipient refused: nothing sent
    match submission.send(message("second"), vec!["nobody@example.test".into()], None).await {
        Err(Error::Rejected(text)) if text.contains("nobody@example.test") => {}
        other => bail!("every recipient refused gave {other:?}"),
    }
    match submission.send(message("third"), vec![], None).await {
        Err(Error::Rejected(_)) => {}
        other => bail!("no recipients gave {other:?}"),
    }
    // over the size the server announces: refused before anything is sent
    let huge = vec![b'x'; 52_428_801];
    match submission.send(huge, vec![FRIEND.into()], None).await {
        Err(Error::TooLarge(_)) => {}
        other => bail!("an oversized message gave {:?}", other.map(|r| r.len())),
    }

    let mut anonymous = SubmissionCapability::new(
        "test".into(),
        None,
        Arc::new(Submitter::new(&smtp)?),
        fixture.store.clone(),
        Instant::now() + SUBMISSION_DEADLINE,
    );
    ensure!(matches!(
        anonymous.send(message("anon"), vec![FRIEND.into()], None).await,
        Err(Error::Unauthenticated)
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_implicit_tls_and_a_trusted_relay() -> Result<()> {
    let fixture = fixture().await?;
    let stack = &fixture.stack;
    let pinned = Some(stack.tls_cert()?);

    let starttls = SmtpConfig {
        ca_file: pinned.clone(),
        ..config(stack.submission_addr()?, ConfigTls::Starttls, SmtpAuth::User)
    };
    let refused = capability(&fixture, &starttls)?
        .send(message("starttls-5d2e"), vec![FRIEND.into()], None)
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(refused.is_empty());
    delivered(stack, FRIEND, FRIEND_PASSWORD, "starttls-5d2e")?;

    let implicit = SmtpConfig {
        ca_file: pinned.clone(),
        ..config(smtps_addr(stack)?, ConfigTls::Implicit, SmtpAuth::User)
    };
    let refused = capability(&fixture, &implicit)?
        .send(message("implicit-77aa"), vec![FRIEND.into()], None)
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(refused.is_empty());
    delivered(stack, FRIEND, FRIEND_PASSWORD, "implicit-77aa")?;

    // a certificate nobody vouches for: the public roots do not know the stack's
    let untrusted = config(stack.submission_addr()?, ConfigTls::Starttls, SmtpAuth::User);
    match capability(&fixture, &untrusted)?.send(message("x"), vec![FRIEND.into()], None).await {
        Err(Error::Unavailable(text)) if text.contains("TLS") => {}
        other => bail!("an untrusted certificate gave {other:?}"),
    }

    // the plain SMTP port lets loopback clients relay without AUTH
    let relay = config(stack.smtp_addr()?, ConfigTls::None, SmtpAuth::None);
    let refused = capability(&fixture, &relay)?
        .send(message("relay-0b9d"), vec![FRIEND.into()], None)
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(refused.is_empty());
    delivered(stack, FRIEND, FRIEND_PASSWORD, "relay-0b9d")?;
    // the submission port does not: without AUTH every recipient is refused
    let unauthenticated = config(stack.submission_addr()?, ConfigTls::None, SmtpAuth::None);
    match capability(&fixture, &unauthenticated)?
        .send(message("noauth"), vec![FRIEND.into()], None)
        .await
    {
        Err(Error::Rejected(_)) => {}
        other => bail!("submission without AUTH gave {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_or_refuses_the_password_is_unavailable() -> Result<()> {
    let mut fixture = fixture().await?;
    let submission_addr = fixture.stack.submission_addr()?;

    // the password changed on the server since the IMAP login: SMTP refuses the cached one
    fixture.stack.add_user(USER, "changed password")?;
    let smtp = config(submission_addr, ConfigTls::None, SmtpAuth::User);
    match capability(&fixture, &smtp)?.send(message("x"), vec![FRIEND.into()], None).await {
        Err(Error::Unavailable(text)) if text.contains("535") => {}
        other => bail!("a refused password gave {other:?}"),
    }

    // nobody listens
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?
    };
    let down = config(closed, ConfigTls::None, SmtpAuth::User);
    match capability(&fixture, &down)?.send(message("x"), vec![FRIEND.into()], None).await {
        Err(Error::Unavailable(_)) => {}
        other => bail!("a closed port gave {other:?}"),
    }
    // the stack stopped
    fixture.stack.stop().context("stopping the stack")?;
    match capability(&fixture, &smtp)?.send(message("x"), vec![FRIEND.into()], None).await {
        Err(Error::Unavailable(_)) => {}
        other => bail!("a stopped server gave {other:?}"),
    }
    Ok(())
}

/// Whether `user`'s INBOX holds a message with subject `token` right now.
fn in_inbox(stack: &MailStack, user: &str, password: &str, token: &str) -> Result<bool> {
    let mut imap = stack.imap_login(user, password)?;
    imap.examine("INBOX")?;
    Ok(!imap.uid_search(&format!("HEADER Subject {token}"))?.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_is_recorded_before_the_final_dot_and_a_failed_record_sends_nothing() -> Result<()>
{
    let fixture = fixture().await?;
    let smtp = config(fixture.stack.submission_addr()?, ConfigTls::None, SmtpAuth::User);
    let submitter = Submitter::new(&smtp)?;
    let credentials = Credentials { login: USER, password: PASSWORD.as_bytes() };
    let recipients = vec![FRIEND.to_owned()];

    // the record fails: the connection ends without the final dot, the server drops the message
    let outcome = submitter
        .send(
            None,
            USER,
            Some(&credentials),
            &recipients,
            &message("unrecorded-41c7"),
            Box::pin(async { Err("the state store is full".to_owned()) }),
        )
        .await;
    match outcome {
        Err(SmtpError::Unavailable(text)) if text.contains("could not be recorded") => {}
        other => bail!("a failed record gave {other:?}"),
    }

    // the record succeeds: it runs once, before the server has the message, and what it
    // returns runs once the dot is written
    let recorded = std::sync::atomic::AtomicUsize::new(0);
    let dot_written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let written = dot_written.clone();
    let refused = submitter
        .send(
            None,
            USER,
            Some(&credentials),
            &recipients,
            &message("recorded-8e02"),
            Box::pin(async {
                recorded.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let after_final_dot: AfterFinalDot = Box::new(move || {
                    written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
                Ok(after_final_dot)
            }),
        )
        .await?;
    ensure!(refused.is_empty(), "refused: {refused:?}");
    ensure!(recorded.load(std::sync::atomic::Ordering::SeqCst) == 1, "recorded {recorded:?}");
    ensure!(dot_written.load(std::sync::atomic::Ordering::SeqCst) == 1, "{dot_written:?}");
    delivered(&fixture.stack, FRIEND, FRIEND_PASSWORD, "recorded-8e02")?;
    // Postfix delivers in order: the dropped one would be there by now
    ensure!(
        !in_inbox(&fixture.stack, FRIEND, FRIEND_PASSWORD, "unrecorded-41c7")?,
        "a message whose submission could not be recorded was delivered"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sends_claim_is_made_with_the_message_and_a_lost_claim_sends_nothing() -> Result<()> {
    let fixture = fixture().await?;
    let smtp = config(fixture.stack.submission_addr()?, ConfigTls::None, SmtpAuth::User);
    let claim = |expected: Option<&[u8]>, value: &[u8]| Claim {
        scope: Scope::Device("PHONE1".into()),
        key: "compose/ledger".into(),
        expected: expected.map(<[u8]>::to_vec),
        value: value.to_vec(),
        presumed: [value, b" presumed"].concat(),
    };
    let ledger = Namespace::device("test", USER, "PHONE1");
    let recorded = || fixture.store.get(&ledger, "compose/ledger");

    // the record still holds what the plugin read: the claim is made and the message sent
    let mut submission = capability(&fixture, &smtp)?;
    let first =
        submission.send(message("claimed-1c3d"), vec![FRIEND.into()], Some(claim(None, b"one")));
    ensure!(first.await.map_err(anyhow::Error::msg)?.is_empty());
    ensure!(recorded().await? == Some(b"one".to_vec()), "the claim was not made");

    // another request changed the record meanwhile: nothing is sent, the record is theirs
    let lost =
        submission.send(message("lost-6b0e"), vec![FRIEND.into()], Some(claim(None, b"two")));
    match lost.await {
        Err(Error::ClaimLost) => {}
        other => bail!("a claim whose record changed gave {other:?}"),
    }
    ensure!(recorded().await? == Some(b"one".to_vec()), "a lost claim overwrote the record");

    let third = submission.send(
        message("claimed-9f4a"),
        vec![FRIEND.into()],
        Some(claim(Some(b"one"), b"3")),
    );
    ensure!(third.await.map_err(anyhow::Error::msg)?.is_empty());
    delivered(&fixture.stack, FRIEND, FRIEND_PASSWORD, "claimed-1c3d")?;
    delivered(&fixture.stack, FRIEND, FRIEND_PASSWORD, "claimed-9f4a")?;
    // Postfix delivers in order: the unsent one would be there by now
    ensure!(
        !in_inbox(&fixture.stack, FRIEND, FRIEND_PASSWORD, "lost-6b0e")?,
        "a message whose claim was lost was delivered"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_after_the_final_dot_is_possibly_sent() -> Result<()> {
    let fixture = fixture().await?;
    let proxy = FaultProxy::start(fixture.stack.submission_addr()?)?;
    proxy.set(Fault::CutAfterDataEnd)?;
    let smtp = config(proxy.address(), ConfigTls::None, SmtpAuth::User);
    let outcome = capability(&fixture, &smtp)?
        .send(message("cut-after-dot-5a1f"), vec![FRIEND.into()], None)
        .await;
    match outcome {
        Err(Error::OutcomeUnknown(_)) => {}
        other => bail!("a connection cut after the final dot gave {other:?}"),
    }
    ensure!(proxy.counters().cut.load(std::sync::atomic::Ordering::Relaxed) == 1, "not cut");
    // RFC 1047: the server had the whole message, and delivers it
    delivered(&fixture.stack, FRIEND, FRIEND_PASSWORD, "cut-after-dot-5a1f")?;
    Ok(())
}
