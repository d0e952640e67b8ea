//! The IMAP session against a real Dovecot (the `eas-edge-tests` mail stack).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use eas_edge::imap::{
    BodyPart, ChangeMethod, ChangeTracking, Endpoint, FolderRole, ImapError, MAX_HEADER_BYTES,
    NotifyEvent, NotifyTarget, Session, SyncPoint, TlsMode, TlsSettings, UidRange, Unsolicited,
    mutf7, uidset,
};
use eas_edge_tests::imap::AppendOptions;
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::messages::{BodyForm, MessageGenerator, TestMessage};
use eas_edge_tests::seed::seed_mailbox;

const USER: &str = "tom@example.test";
const PASSWORD: &str = "pa\"ss wörd";

fn stack() -> Result<MailStack> {
    let stack = MailStack::start()?;
    stack.add_user(USER, PASSWORD)?;
    Ok(stack)
}

fn plain_endpoint(addr: SocketAddr) -> Result<Endpoint> {
    let tls = TlsSettings { mode: TlsMode::None, ..TlsSettings::default() };
    Ok(Endpoint::new(&addr.ip().to_string(), addr.port(), &tls)?)
}

async fn session(stack: &MailStack, tracking: ChangeTracking) -> Result<Session> {
    let endpoint = plain_endpoint(stack.imap_addr()?)?.with_change_tracking(tracking);
    Ok(Session::connect(&endpoint, USER, PASSWORD.as_bytes()).await?)
}

fn seed(stack: &MailStack, mailbox: &str, seed: u64, count: usize) -> Result<Vec<TestMessage>> {
    let messages: Vec<TestMessage> = MessageGenerator::new(seed, USER).take(count).collect();
    let mut imap = stack.imap_login(USER, PASSWORD)?;
    seed_mailbox(&mut imap, mailbox, &messages)?;
    Ok(messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_outcomes_and_tls_modes() -> Result<()> {
    let stack = stack()?;
    let mut session = session(&stack, ChangeTracking::Best).await?;
    let caps = session.capabilities().clone();
    ensure!(caps.imap4rev1 && caps.qresync && caps.condstore && caps.idle && caps.notify);
    ensure!(caps.special_use && caps.list_extended && caps.literal_plus && caps.esearch);
    ensure!(session.change_method() == Some(ChangeMethod::Qresync));
    session.noop().await?;
    session.logout().await;

    let endpoint = plain_endpoint(stack.imap_addr()?)?;
    match Session::connect(&endpoint, USER, b"wrong").await {
        Err(ImapError::AuthFailed(_)) => {}
        other => bail!("wrong password gave {other:?}"),
    }
    match Session::connect(&endpoint, "nobody@example.test", "pässword".as_bytes()).await {
        Err(ImapError::AuthFailed(_)) => {}
        other => bail!("unknown user with a literal password gave {other:?}"),
    }

    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    match Session::connect(&plain_endpoint(dead_port)?, USER, PASSWORD.as_bytes()).await {
        Err(ImapError::Unavailable(_)) => {}
        other => bail!("dead port gave {other:?}"),
    }

    let ca_file = Some(stack.tls_cert()?);
    let trusted = |mode| TlsSettings { mode, ca_file: ca_file.clone(), server_name: None };
    let implicit = stack.imaps_addr()?;
    let endpoint = Endpoint::new("127.0.0.1", implicit.port(), &trusted(TlsMode::Implicit))?;
    Session::connect(&endpoint, USER, PASSWORD.as_bytes()).await?.logout().await;
    let starttls = stack.imap_addr()?;
    let endpoint = Endpoint::new("localhost", starttls.port(), &trusted(TlsMode::StartTls))?;
    let mut session = Session::connect(&endpoint, USER, PASSWORD.as_bytes()).await?;
    ensure!(session.capabilities().qresync, "capabilities are learnt again after STARTTLS");
    session.status("INBOX").await?;

    // the self-signed certificate is not trusted by the public roots
    let public = TlsSettings { mode: TlsMode::Implicit, ..TlsSettings::default() };
    let endpoint = Endpoint::new("127.0.0.1", implicit.port(), &public)?;
    match Session::connect(&endpoint, USER, PASSWORD.as_bytes()).await {
        Err(ImapError::Tls(_)) => {}
        other => bail!("untrusted certificate gave {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_with_roles_and_pipelined_status() -> Result<()> {
    let stack = stack()?;
    let utf8_name = "Entwürfe & Pläne";
    let raw_utf8_name = mutf7::encode(utf8_name);
    {
        let mut imap = stack.imap_login(USER, PASSWORD)?;
        imap.run(&format!("CREATE \"{raw_utf8_name}\""))?;
        imap.run("CREATE \"Projects/2025\"")?;
    }
    seed(&stack, "INBOX", 1, 7)?;
    seed(&stack, &raw_utf8_name, 2, 3)?;

    let mut session = session(&stack, ChangeTracking::Best).await?;
    let folders = session.list_folders().await?;
    let role_of = |role| folders.iter().find(|f| f.role == Some(role)).map(|f| f.name.as_str());
    ensure!(role_of(FolderRole::Inbox) == Some("INBOX"), "{folders:#?}");
    ensure!(role_of(FolderRole::Drafts) == Some("Drafts"));
    ensure!(role_of(FolderRole::Sent) == Some("Sent"));
    ensure!(role_of(FolderRole::Trash) == Some("Trash"));
    ensure!(role_of(FolderRole::Junk) == Some("Junk"));
    ensure!(role_of(FolderRole::Archive) == Some("Archive"));
    let utf8 = folders.iter().find(|f| f.name == utf8_name).context("UTF-8 folder missing")?;
    ensure!(utf8.raw_name == raw_utf8_name && utf8.selectable && utf8.role.is_none());
    ensure!(utf8.delimiter == Some('/'));
    ensure!(folders.iter().any(|f| f.name == "Projects/2025"));
    ensure!(
        folders
            .iter()
            .filter(|f| f.role == Some(FolderRole::Sent))
            .all(|f| f.subscribed == Some(true))
    );

    let names = ["INBOX", raw_utf8_name.as_str(), "Sent", "No such folder", "Trash"];
    let statuses = session.status_many(&names).await?;
    ensure!(statuses.len() == names.len());
    let inbox = statuses[0].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(inbox.messages == 7 && inbox.uid_next == 8 && inbox.highest_modseq.is_some());
    let unseen_expected = 7 - MessageGenerator::new(1, USER)
        .take(7)
        .filter(|m| m.flags.iter().any(|f| f == "\\Seen"))
        .count() as u32;
    ensure!(inbox.unseen == unseen_expected, "unseen {} != {unseen_expected}", inbox.unseen);
    ensure!(statuses[1].as_ref().is_ok_and(|s| s.messages == 3));
    ensure!(statuses[2].as_ref().is_ok_and(|s| s.messages == 0));
    ensure!(matches!(statuses[3], Err(ImapError::NoSuchMailbox(_))), "{:?}", statuses[3]);
    ensure!(statuses[4].is_ok());
    ensure!(session.is_usable(), "a refused STATUS leaves the session usable");
    match session.examine("No such folder").await {
        Err(ImapError::NoSuchMailbox(name)) => ensure!(name == "No such folder"),
        other => bail!("EXAMINE of a missing folder gave {other:?}"),
    }
    ensure!(folders.iter().all(|f| f.mailbox_id.is_none()), "Dovecot 2.3 has no OBJECTID");
    Ok(())
}

/// The sections the generator's messages must have.
fn expected_structure(message: &TestMessage) -> Vec<(&'static str, &'static str)> {
    match message.form {
        BodyForm::Plain => vec![("1", "text/plain")],
        BodyForm::Alternative => {
            vec![("", "multipart/alternative"), ("1", "text/plain"), ("2", "text/html")]
        }
        BodyForm::WithAttachments => {
            let mut parts = vec![
                ("", "multipart/mixed"),
                ("1", "multipart/alternative"),
                ("1.1", "text/plain"),
                ("1.2", "text/html"),
            ];
            for index in 0..message.attachment_names.len() {
                parts.push((["2", "3"][index], "attachment"));
            }
            parts
        }
    }
}

fn check_structure(message: &TestMessage, parts: &[BodyPart]) -> Result<()> {
    let expected = expected_structure(message);
    ensure!(parts.len() == expected.len(), "message {}: {parts:#?}", message.index);
    for (part, (section, kind)) in parts.iter().zip(&expected) {
        ensure!(part.section == *section, "message {}: {parts:#?}", message.index);
        if *kind == "attachment" {
            ensure!(part.disposition.as_deref() == Some("attachment"));
            ensure!(part.encoding.as_deref() == Some("base64"));
            let name = part.disposition_params.iter().find(|(n, _)| n.starts_with("filename"));
            ensure!(name.is_some(), "no file name in {part:#?}");
        } else {
            ensure!(format!("{}/{}", part.media_type, part.media_subtype) == *kind);
        }
    }
    if message.attachment_names.iter().any(|name| !name.is_ascii()) {
        let encoded = parts
            .iter()
            .flat_map(|p| &p.disposition_params)
            .any(|(name, value)| name == "filename*" && value.starts_with("UTF-8''"));
        ensure!(encoded, "RFC 2231 name expected in {parts:#?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_messages_and_parts() -> Result<()> {
    let stack = stack()?;
    let messages = seed(&stack, "INBOX", 7, 40)?;
    ensure!(messages.iter().any(|m| m.form == BodyForm::WithAttachments));
    let mut session = session(&stack, ChangeTracking::Best).await?;

    let uids: Vec<u32> = (1..=40).chain([77, 1000]).collect();
    let summaries = session.fetch_summaries("INBOX", &uids, 2048).await?;
    ensure!(summaries.len() == 40, "missing UIDs are left out");
    for (summary, message) in summaries.iter().zip(&messages) {
        ensure!(summary.uid == message.index as u32 + 1);
        check_structure(message, &summary.body_structure)?;
        let mut flags = summary.flags.clone();
        flags.sort();
        let mut expected = message.flags.clone();
        expected.sort();
        ensure!(flags == expected, "uid {}: {flags:?} != {expected:?}", summary.uid);
        ensure!(summary.internal_date == message.date);
        ensure!(summary.size == message.raw.len() as u64);
        let header_len = header_block_len(&message.raw);
        let prefix_len = message.raw.len().min(header_len + 2048);
        ensure!(summary.prefix == message.raw[..prefix_len], "prefix of uid {}", summary.uid);
        ensure!(summary.header_len == header_len, "header block of uid {}", summary.uid);
        ensure!(summary.prefix.starts_with(b"Date: "));
    }

    // a sparse set, and no prefix
    let sparse = session.fetch_summaries("INBOX", &[40, 2, 17, 2], 0).await?;
    ensure!(sparse.iter().map(|s| s.uid).collect::<Vec<_>>() == vec![2, 17, 40]);
    ensure!(sparse.iter().all(|s| s.prefix.is_empty() && !s.body_structure.is_empty()));

    let whole = session.fetch_message("INBOX", 3, 1 << 20).await?.context("uid 3")?;
    ensure!(whole.raw == messages[2].raw, "fetch_message of uid 3");
    ensure!(whole.uid == 3 && whole.internal_date == messages[2].date);
    let mut flags = whole.flags.clone();
    flags.sort();
    let mut expected = messages[2].flags.clone();
    expected.sort();
    ensure!(flags == expected, "flags of uid 3: {flags:?} != {expected:?}");
    match session.fetch_message("INBOX", 3, 100).await {
        Err(ImapError::TooLarge { size, limit: 100 }) => {
            ensure!(size == messages[2].raw.len() as u64)
        }
        other => bail!("small limit gave {:?}", other.map(|m| m.map(|m| m.raw.len()))),
    }
    ensure!(session.is_usable(), "TooLarge leaves the session usable");
    ensure!(session.fetch_message("INBOX", 999, 1 << 20).await?.is_none());

    let (index, mixed) = messages
        .iter()
        .enumerate()
        .find(|(_, m)| m.form == BodyForm::WithAttachments)
        .context("no message with attachments")?;
    let uid = index as u32 + 1;
    let text = session.fetch_part("INBOX", uid, "1.1", 1 << 20).await?.context("part 1.1")?;
    ensure!(
        !text.is_empty() && contains(&mixed.raw, &text),
        "part 1.1 is a slice of the raw message"
    );
    let attachment = session.fetch_part("INBOX", uid, "2", 1 << 20).await?.context("part 2")?;
    ensure!(contains(&mixed.raw, &attachment) && attachment.len() > 1000);
    match session.fetch_part("INBOX", uid, "2", 10).await {
        Err(ImapError::TooLarge { limit: 10, .. }) => {}
        other => bail!("small part limit gave {:?}", other.map(|p| p.map(|p| p.len()))),
    }
    ensure!(session.fetch_part("INBOX", 999, "1", 100).await?.is_none());
    ensure!(
        session.fetch_part("INBOX", uid, "1 BODY[]", 100).await.is_err(),
        "sections are checked"
    );
    Ok(())
}

/// Bytes up to and including the blank line after the header block.
fn header_block_len(raw: &[u8]) -> usize {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |at| at + 4)
}

/// A summary's prefix is the header block whole, however long, then the body's first bytes;
/// a header block over the limit is cut there and no body follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_prefixes_hold_the_whole_header_block() -> Result<()> {
    let stack = stack()?;
    let received: String = (0..400)
        .map(|n| format!("Received: from relay{n}.example.net by mx.example.org; hop {n:04}\r\n"))
        .collect();
    let body = "body line\r\n".repeat(500);
    let long = format!("{received}Subject: many hops\r\n\r\n{body}");
    let huge_received = received.repeat(4);
    let huge = format!("{huge_received}Subject: too many hops\r\n\r\n{body}");
    let mut other = stack.imap_login(USER, PASSWORD)?;
    other.append("INBOX", long.as_bytes(), &AppendOptions::default())?;
    other.append("INBOX", huge.as_bytes(), &AppendOptions::default())?;
    let mut session = session(&stack, ChangeTracking::Best).await?;

    let summaries = session.fetch_summaries("INBOX", &[1, 2], 100).await?;
    ensure!(summaries.len() == 2, "{} summaries", summaries.len());
    let header_len = header_block_len(long.as_bytes());
    ensure!(header_len > 20_000, "the test's header block is long: {header_len}");
    ensure!(summaries[0].header_len == header_len);
    ensure!(summaries[0].prefix == long.as_bytes()[..header_len + 100], "header and 100 bytes");
    let limit = MAX_HEADER_BYTES as usize;
    ensure!(huge.len() > limit && summaries[1].header_len == limit);
    ensure!(summaries[1].prefix == huge.as_bytes()[..limit], "cut header, nothing after it");
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_qresync_condstore_and_snapshot_fallback() -> Result<()> {
    let stack = stack()?;
    seed(&stack, "INBOX", 3, 20)?;
    let mut qresync = session(&stack, ChangeTracking::Best).await?;
    let mut condstore = session(&stack, ChangeTracking::CondstoreOnly).await?;
    let mut plain = session(&stack, ChangeTracking::Off).await?;
    ensure!(condstore.change_method() == Some(ChangeMethod::Condstore));
    ensure!(plain.change_method().is_none());

    let before = qresync.status("INBOX").await?;
    let since = SyncPoint {
        uid_validity: before.uid_validity,
        highest_modseq: before.highest_modseq.context("no HIGHESTMODSEQ")?,
    };
    let snapshot = plain.uid_flags("INBOX", UidRange::new(1, u32::MAX)).await?;
    ensure!(snapshot.len() == 20 && snapshot.iter().all(|m| m.modseq.is_none()));
    // nothing changed yet
    let unchanged = qresync.changes_since("INBOX", since).await?;
    ensure!(unchanged.changed.is_empty() && unchanged.vanished.is_empty(), "{unchanged:?}");

    // another client: a flag, two expunges, a new message
    let mut other = stack.imap_login(USER, PASSWORD)?;
    other.select("INBOX")?;
    other.uid_store("4", "+FLAGS", &["\\Flagged", "$Important"])?;
    other.uid_store("5,9", "+FLAGS", &["\\Deleted"])?;
    other.uid_expunge("5,9")?;
    let new_message = MessageGenerator::new(99, USER).next().context("generator")?;
    other.append("INBOX", &new_message.raw, &AppendOptions::default())?;

    let changes = qresync.changes_since("INBOX", since).await?;
    ensure!(changes.method == ChangeMethod::Qresync && !changes.uid_validity_changed);
    let changed_uids: Vec<u32> = changes.changed.iter().map(|m| m.uid).collect();
    ensure!(changed_uids == vec![4, 21], "changed {changed_uids:?}");
    let four = &changes.changed[0];
    ensure!(
        four.flags.iter().any(|f| f == "\\Flagged") && four.flags.iter().any(|f| f == "$Important")
    );
    ensure!(four.modseq.is_some_and(|m| m > since.highest_modseq));
    let vanished: Vec<u32> = uidset::expand(&changes.vanished).collect();
    ensure!(vanished.contains(&5) && vanished.contains(&9), "vanished {vanished:?}");
    ensure!(!vanished.contains(&4) && !vanished.contains(&21));
    ensure!(changes.new_highest_modseq > since.highest_modseq && changes.exists == 19);

    let changes = condstore.changes_since("INBOX", since).await?;
    ensure!(changes.method == ChangeMethod::Condstore);
    ensure!(changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>() == vec![4, 21]);
    let current: Vec<u32> =
        uidset::expand(changes.current_uids.as_deref().unwrap_or_default()).collect();
    ensure!(
        current.len() == 19
            && !current.contains(&5)
            && !current.contains(&9)
            && current.contains(&21)
    );

    match plain.changes_since("INBOX", since).await {
        Err(ImapError::Unsupported(_)) => {}
        other => bail!("changes_since without CONDSTORE gave {other:?}"),
    }
    // the fallback: a new snapshot, diffed by the caller
    let now = plain.uid_flags("INBOX", UidRange::new(1, u32::MAX)).await?;
    let now_uids: Vec<u32> = now.iter().map(|m| m.uid).collect();
    ensure!(
        now_uids.len() == 19 && !now_uids.contains(&5) && now_uids.contains(&21),
        "{now_uids:?}"
    );
    let old_four = snapshot.iter().find(|m| m.uid == 4).map(|m| m.flags.clone());
    let new_four = now.iter().find(|m| m.uid == 4).map(|m| m.flags.clone());
    ensure!(old_four != new_four);
    // `n:*` past the last UID must not return the last message
    ensure!(plain.uid_flags("INBOX", UidRange::new(500, u32::MAX)).await?.is_empty());

    // a recreated folder
    let stale = SyncPoint { uid_validity: since.uid_validity.wrapping_sub(1), ..since };
    let changes = qresync.changes_since("INBOX", stale).await?;
    ensure!(
        changes.uid_validity_changed && changes.changed.is_empty() && changes.vanished.is_empty()
    );
    let changes = condstore.changes_since("INBOX", stale).await?;
    ensure!(changes.uid_validity_changed && changes.current_uids.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_notify_hand_over_pushed_data() -> Result<()> {
    let stack = stack()?;
    seed(&stack, "INBOX", 5, 3)?;
    let mut session = session(&stack, ChangeTracking::Best).await?;
    session.examine("INBOX").await?;
    session.idle_start().await?;
    ensure!(session.read_unsolicited(Duration::from_millis(200)).await?.is_empty());

    let mut other = stack.imap_login(USER, PASSWORD)?;
    let message = MessageGenerator::new(6, USER).next().context("generator")?;
    other.append("INBOX", &message.raw, &AppendOptions::default())?;
    let pushed = wait_for(&mut session, |u| matches!(u, Unsolicited::Exists(4))).await?;
    ensure!(pushed, "no EXISTS during IDLE");
    // any operation ends IDLE by itself
    ensure!(session.status("Sent").await?.messages == 0);
    session.idle_done().await?;

    let groups = [
        (
            NotifyTarget::Selected,
            vec![NotifyEvent::MessageNew, NotifyEvent::MessageExpunge, NotifyEvent::FlagChange],
        ),
        (
            NotifyTarget::Personal,
            vec![NotifyEvent::MessageNew, NotifyEvent::MessageExpunge, NotifyEvent::FlagChange],
        ),
    ];
    session.notify_set(&groups, false).await?;
    // Dovecot sends the selected mailbox's changes only while idling (other folders' STATUS
    // at any time)
    session.idle_start().await?;
    other.append("Sent", &message.raw, &AppendOptions::default())?;
    other.select("INBOX")?;
    other.uid_store("2", "+FLAGS", &["$Pushed"])?;
    let mut seen = Vec::new();
    let both = collect_until(&mut session, &mut seen, |pushed| {
        let status = pushed
            .iter()
            .any(|u| matches!(u, Unsolicited::Status { raw_name, .. } if raw_name == "Sent"));
        let flags =
            pushed.iter().any(|u| matches!(u, Unsolicited::FlagsChanged { uid: Some(2), .. }));
        status && flags
    })
    .await?;
    ensure!(both, "expected STATUS for Sent and a flag change in INBOX after NOTIFY: {seen:?}");
    session.notify_none().await?;
    Ok(())
}

async fn wait_for(session: &mut Session, wanted: impl Fn(&Unsolicited) -> bool) -> Result<bool> {
    let mut seen = Vec::new();
    collect_until(session, &mut seen, |pushed| pushed.iter().any(&wanted)).await
}

/// Reads pushed data into `seen` until `done(seen)` holds (true) or 10 s pass (false).
async fn collect_until(
    session: &mut Session,
    seen: &mut Vec<Unsolicited>,
    done: impl Fn(&[Unsolicited]) -> bool,
) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        seen.extend(session.read_unsolicited(Duration::from_millis(500)).await?);
        if done(seen) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A large batch in one call: every summary comes back, in UID order, with its prefix. (How
/// fast, next to a raw client, is a benchmark's question, not a test's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_summaries_in_one_call() -> Result<()> {
    let stack = stack()?;
    seed(&stack, "INBOX", 11, 1000)?;
    let uids: Vec<u32> = (1..=1000).collect();
    let mut session = session(&stack, ChangeTracking::Best).await?;
    session.examine("INBOX").await?;
    let summaries = session.fetch_summaries("INBOX", &uids, 4096).await?;
    ensure!(summaries.len() == 1000, "got {} summaries", summaries.len());
    ensure!(summaries.iter().map(|s| s.uid).eq(uids.iter().copied()), "not in UID order");
    ensure!(summaries.iter().all(|s| !s.prefix.is_empty() && !s.body_structure.is_empty()));
    Ok(())
}
