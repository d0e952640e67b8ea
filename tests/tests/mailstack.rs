//! The mail stack itself, and the test clients against it: what the gateway's tests rely on.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use eas_edge_tests::imap::{AppendOptions, ImapClient, Status, quote};
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::messages::{BodyForm, Charset, MessageGenerator, TestMessage, header_value};
use eas_edge_tests::seed::seed_mailbox;
use eas_edge_tests::smtp::{self, SmtpLogin};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

fn started_with_user(user: &str, password: &str) -> Result<MailStack> {
    let stack = MailStack::start()?;
    stack.add_user(user, password)?;
    Ok(stack)
}

/// A generated message with a non-ASCII subject, HTML alternative and quoted-printable body.
fn rich_message(seed: u64, to: &str) -> TestMessage {
    MessageGenerator::new(seed, to)
        .find(|m| {
            m.charset == Charset::Utf8 && m.form == BodyForm::Alternative && !m.subject.is_ascii()
        })
        .expect("the generator is endless")
}

/// `delivered` ends with `sent`; else shows where they first differ (from the end).
fn assert_ends_with(delivered: &[u8], sent: &[u8]) {
    let common = delivered.iter().rev().zip(sent.iter().rev()).take_while(|(a, b)| a == b).count();
    if common < sent.len() {
        let show = |bytes: &[u8], end: usize| {
            String::from_utf8_lossy(&bytes[end.saturating_sub(200)..(end + 40).min(bytes.len())])
                .into_owned()
        };
        panic!(
            "delivered copy differs {} bytes before the end\n--- delivered:\n{}\n--- sent:\n{}",
            common,
            show(delivered, delivered.len() - common),
            show(sent, sent.len() - common)
        );
    }
}

#[test]
fn mail_sent_over_smtp_arrives_in_the_inbox() -> Result<()> {
    let user = "alice@example.test";
    let stack = started_with_user(user, "alice-pw")?;
    let message = rich_message(11, user);

    smtp::send(stack.smtp_addr()?, None, &message.from, &[user], &message.raw)?;

    let mut imap = stack.imap_login(user, "alice-pw")?;
    imap.wait_for_messages("INBOX", 1, DELIVERY_TIMEOUT)?;
    let uids = imap.uid_search("ALL")?;
    ensure!(uids.len() == 1, "expected one message, found uids {uids:?}");
    let delivered = imap.uid_fetch_rfc822(uids[0])?;
    let subject = header_value(&delivered, "Subject").context("delivered mail has no Subject")?;
    assert_eq!(header_value(&message.raw, "Subject").as_ref(), Some(&subject));
    assert!(subject.contains("=?UTF-8?B?"), "subject should be RFC 2047 encoded: {subject}");
    // Postfix and Dovecot only prepend trace headers: what was sent ends the delivered copy
    assert_ends_with(&delivered, &message.raw);
    Ok(())
}

#[test]
fn submission_requires_auth_and_accepts_it() -> Result<()> {
    let (alice, bob) = ("alice@example.test", "bob@example.test");
    let stack = started_with_user(alice, "alice-pw")?;
    stack.add_user(bob, "bob-pw")?;
    let message = rich_message(12, alice);
    let submission = stack.submission_addr()?;

    let anonymous = smtp::send(submission, None, bob, &[alice], &message.raw);
    assert!(anonymous.is_err(), "submission accepted mail without AUTH");
    let wrong = SmtpLogin { user: bob, password: "nope" };
    assert!(smtp::send(submission, Some(wrong), bob, &[alice], &message.raw).is_err());

    let login = SmtpLogin { user: bob, password: "bob-pw" };
    smtp::send(submission, Some(login), bob, &[alice], &message.raw)?;
    let mut imap = stack.imap_login(alice, "alice-pw")?;
    let status = imap.wait_for_messages("INBOX", 1, DELIVERY_TIMEOUT)?;
    assert_eq!(status.exists, 1);
    Ok(())
}

#[test]
fn two_stacks_run_at_once() -> Result<()> {
    let user = "same@example.test";
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| started_with_user(user, "first-pw"));
        let second = scope.spawn(|| started_with_user(user, "second-pw"));
        (first.join(), second.join())
    });
    let first = first.expect("first start panicked")?;
    let second = second.expect("second start panicked")?;

    let ports = |stack: &MailStack| -> Result<Vec<SocketAddr>> {
        Ok(vec![
            stack.imap_addr()?,
            stack.imaps_addr()?,
            stack.smtp_addr()?,
            stack.submission_addr()?,
        ])
    };
    let all: HashSet<SocketAddr> = ports(&first)?.into_iter().chain(ports(&second)?).collect();
    assert_eq!(all.len(), 8, "the stacks share ports: {all:?}");

    // separate users, separate mail
    let mut imap_first = first.imap_login(user, "first-pw")?;
    imap_first.append(
        "INBOX",
        b"Subject: only in the first\r\n\r\nhi\r\n",
        &AppendOptions::default(),
    )?;
    assert_eq!(imap_first.select("INBOX")?.exists, 1);
    let mut imap_second = ImapClient::connect(second.imap_addr()?)?;
    assert_eq!(imap_second.try_login(user, "first-pw")?.status, Status::No);
    imap_second.login(user, "second-pw")?;
    assert_eq!(imap_second.select("INBOX")?.exists, 0);
    Ok(())
}

#[test]
fn seeding_200_messages_gives_exists_200() -> Result<()> {
    let user = "seeded@example.test";
    let stack = started_with_user(user, "pw")?;
    let messages: Vec<TestMessage> = MessageGenerator::new(7, user).take(200).collect();
    let mut imap = stack.imap_login(user, "pw")?;

    assert_eq!(seed_mailbox(&mut imap, "INBOX", &messages)?, 200);

    assert_eq!(imap.select("INBOX")?.exists, 200);
    assert_eq!(imap.uid_search("ALL")?.len(), 200);
    let seen = messages.iter().filter(|m| m.flags.iter().any(|f| f == r"\Seen")).count();
    assert_eq!(imap.uid_search("SEEN")?.len(), seen);
    // stored verbatim, findable by Message-ID
    let sample = &messages[123];
    let found = imap.uid_search(&format!("HEADER Message-ID {}", quote(&sample.message_id)?))?;
    ensure!(found.len() == 1, "Message-ID search found {found:?}");
    assert_eq!(imap.uid_fetch_rfc822(found[0])?, sample.raw);
    Ok(())
}

#[test]
fn wrong_password_is_refused_by_imap_login() -> Result<()> {
    let user = "carol@example.test";
    let stack = started_with_user(user, "right-pw")?;
    let mut imap = ImapClient::connect(stack.imap_addr()?)?;

    let refused = imap.try_login(user, "wrong-pw")?;
    assert_eq!(refused.status, Status::No, "wrong password: {}", refused.text);
    let unknown = imap.try_login("nobody@example.test", "right-pw")?;
    assert_eq!(unknown.status, Status::No, "unknown user: {}", unknown.text);
    // the same connection still logs in with the right password: the refusal was about the password
    imap.login(user, "right-pw")?;
    imap.logout()
}

#[test]
fn imap_offers_notify_idle_and_special_use_folders() -> Result<()> {
    let user = "dave@example.test";
    let stack = started_with_user(user, "pw")?;
    let mut imap = stack.imap_login(user, "pw")?;

    let capabilities = imap.capabilities()?;
    for wanted in ["NOTIFY", "IDLE", "MOVE", "UIDPLUS", "CONDSTORE", "LITERAL+", "SPECIAL-USE"] {
        assert!(capabilities.iter().any(|c| c == wanted), "no {wanted} in {capabilities:?}");
    }
    let folders = imap.list("", "*")?;
    for (name, use_attribute) in [
        ("Drafts", r"\Drafts"),
        ("Sent", r"\Sent"),
        ("Trash", r"\Trash"),
        ("Junk", r"\Junk"),
        ("Archive", r"\Archive"),
    ] {
        let folder = folders.iter().find(|f| f.name == name);
        let folder = folder.with_context(|| format!("no {name} in {folders:?}"))?;
        assert!(folder.has_attribute(use_attribute), "{name}: {:?}", folder.attributes);
    }
    assert!(folders.iter().any(|f| f.name == "INBOX"));
    Ok(())
}

#[test]
fn flags_move_and_expunge_change_the_mailbox() -> Result<()> {
    let user = "erin@example.test";
    let stack = started_with_user(user, "pw")?;
    let mut imap = stack.imap_login(user, "pw")?;
    let unseen = AppendOptions::default();
    let mut uids = Vec::new();
    for message in MessageGenerator::new(3, user).take(3) {
        uids.push(imap.append("INBOX", &message.raw, &unseen)?.context("no APPENDUID")?);
    }
    imap.select("INBOX")?;
    let (first, second, third) = (uids[0], uids[1], uids[2]);

    imap.uid_store(&first.to_string(), "+FLAGS", &[r"\Seen", r"\Flagged"])?;
    let flags = imap.uid_fetch_flags(&first.to_string())?;
    assert_eq!(flags.len(), 1);
    assert!(flags[0].1.iter().any(|f| f == r"\Flagged"), "{flags:?}");
    assert_eq!(imap.uid_search("UNSEEN")?, vec![second, third]);

    imap.uid_move(&second.to_string(), "Archive")?;
    imap.uid_store(&third.to_string(), "+FLAGS.SILENT", &[r"\Deleted"])?;
    imap.uid_expunge(&third.to_string())?;
    assert_eq!(imap.uid_search("ALL")?, vec![first]);
    assert_eq!(imap.examine("Archive")?.exists, 1);
    Ok(())
}

#[test]
fn idle_reports_new_mail_and_dovecot_restarts() -> Result<()> {
    let user = "frank@example.test";
    let stack = started_with_user(user, "pw")?;
    let mut imap = stack.imap_login(user, "pw")?;
    imap.select("INBOX")?;
    imap.idle()?;

    let message = rich_message(13, user);
    smtp::send(stack.smtp_addr()?, None, &message.from, &[user], &message.raw)?;
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let mut pushed = false;
    while !pushed && Instant::now() < deadline {
        if let Some(line) = imap.read_line(Duration::from_millis(500))? {
            pushed = line.numbered("EXISTS") == Some(1);
        }
    }
    assert!(pushed, "no * 1 EXISTS during IDLE within {DELIVERY_TIMEOUT:?}");
    imap.done()?;

    // a Dovecot restart drops the connection but keeps the mail and the port
    stack.imap_restart()?;
    let closed = (0..10).any(|_| imap.read_line(Duration::from_millis(500)).is_err());
    assert!(closed, "the old connection is still open after the restart");
    let mut again = stack.imap_login(user, "pw")?;
    assert_eq!(again.select("INBOX")?.exists, 1);
    Ok(())
}
