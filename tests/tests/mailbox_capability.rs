//! Authentication through the host with the account pool, counted where it counts: in the
//! real Dovecot's log, which lists every login and every failed one. Repeated requests are
//! authenticated from the pool's cache; failed logins are slowed down, then refused without
//! reaching IMAP at all.

use anyhow::{Context, Result, ensure};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::http::{Client, Reply};
use eas_edge_tests::mailstack::MailStack;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse";

fn user(name: &str) -> String {
    format!("{name}@{TEST_DOMAIN}")
}

/// Dovecot's log once a login of `control` (made by the caller after the attempts under test)
/// shows in it: the log process writes lines in order, so everything before is there too.
fn dovecot_log_after(stack: &MailStack, control: &str) -> Result<String> {
    let path = stack.dir().join("log/dovecot.log");
    let needle = format!("Login: user=<{control}>");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        if log.contains(&needle) || Instant::now() > deadline {
            return Ok(log);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn logins(log: &str, login: &str) -> usize {
    let needle = format!("Login: user=<{login}>");
    log.lines().filter(|line| line.contains(&needle)).count()
}

fn failures(log: &str, login: &str) -> usize {
    let needle = format!("user=<{login}>");
    log.lines().filter(|line| line.contains("auth failed") && line.contains(&needle)).count()
}

fn retry_after(reply: &Reply) -> Option<u64> {
    reply.header("Retry-After")?.parse().ok()
}

#[test]
fn repeated_requests_log_in_to_imap_once() -> Result<()> {
    let stack = MailStack::start()?;
    let (alice, control) = (user("alice"), user("control"));
    stack.add_user(&alice, PASSWORD)?;
    stack.add_user(&control, PASSWORD)?;
    let gateway = Gateway::start(&stack)?;
    let client = Client::default();
    for _ in 0..10 {
        let reply = client.options(&gateway.url(), Some((&alice, PASSWORD)))?;
        ensure!(reply.status == 200, "{reply:?}");
    }
    let wrong = client.options(&gateway.url(), Some((&alice, "wrong")))?;
    ensure!(wrong.status == 401, "a wrong password is never served from the cache: {wrong:?}");
    let again = client.options(&gateway.url(), Some((&alice, PASSWORD)))?;
    ensure!(again.status == 200, "the good cached password survives a wrong one: {again:?}");

    stack.imap_login(&control, PASSWORD)?;
    let log = dovecot_log_after(&stack, &control)?;
    ensure!(logins(&log, &alice) == 1, "11 good requests, {} IMAP logins", logins(&log, &alice));
    ensure!(failures(&log, &alice) == 1, "the wrong password was asked of the server");
    Ok(())
}

#[test]
fn failed_logins_are_slowed_then_refused_without_asking_imap() -> Result<()> {
    let stack = MailStack::start()?;
    let (alice, bob, control) = (user("alice"), user("bob"), user("control"));
    for login in [&alice, &bob, &control] {
        stack.add_user(login, PASSWORD)?;
    }
    let gateway = Gateway::start_with(
        &stack,
        GatewayOptions {
            tenant_extra: "[login_throttle]\nfree_failures = 1\nmax_delay_seconds = 1\n\
                           block_after = 3\n"
                .into(),
            ..GatewayOptions::default()
        },
    )?;
    let client = Client::default();
    for attempt in 1..=3 {
        let reply = client.options(&gateway.url(), Some((&alice, "guess")))?;
        ensure!(
            reply.status == 401 && retry_after(&reply).is_none(),
            "attempt {attempt}: {reply:?}"
        );
    }
    // the cap: refused like a wrong password, with the time to wait, and IMAP is not asked
    let blocked = client.options(&gateway.url(), Some((&alice, "guess")))?;
    ensure!(blocked.status == 401, "{blocked:?}");
    ensure!(blocked.header("WWW-Authenticate").is_some_and(|c| c.starts_with("Basic")));
    ensure!(retry_after(&blocked).is_some_and(|seconds| seconds > 0), "{blocked:?}");
    // even the right password now waits (else the block would be an oracle for guesses)
    let right = client.options(&gateway.url(), Some((&alice, PASSWORD)))?;
    ensure!(right.status == 401 && retry_after(&right).is_some(), "{right:?}");
    // and so does any login from the same address
    let other = client.options(&gateway.url(), Some((&bob, PASSWORD)))?;
    ensure!(other.status == 401 && retry_after(&other).is_some(), "{other:?}");
    ensure!(gateway.log().contains("too many failed logins"), "{}", gateway.log());

    stack.imap_login(&control, PASSWORD)?;
    let log = dovecot_log_after(&stack, &control)?;
    ensure!(failures(&log, &alice) == 3, "{} failed IMAP logins for alice", failures(&log, &alice));
    ensure!(logins(&log, &alice) == 0 && logins(&log, &bob) == 0);
    Ok(())
}
