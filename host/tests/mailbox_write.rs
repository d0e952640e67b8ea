//! The `mailbox-write` capability against a real Dovecot (the `eas-edge-tests` mail stack):
//! every change as the plugin makes it, without wasm, each checked with a separate IMAP
//! session; the COPY fallback and the refusals without UIDPLUS on a session told to ignore
//! MOVE and UIDPLUS; and, against a scripted server, the UID of an APPEND found by its
//! Message-ID when the server has no APPENDUID.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use eas_edge::accounts::{Accounts, PoolSettings};
use eas_edge::imap::{Endpoint, ImapError, SearchCriteria, Session, TlsMode, TlsSettings};
use eas_edge::plugin_host::MailboxCapability;
use eas_edge::plugin_host::eas_edge::gateway::mailbox::Error;
use eas_edge::plugin_host::eas_edge::gateway::mailbox_write::{Host as _, SearchQuery};
use eas_edge_tests::imap::{ImapClient, Value};
use eas_edge_tests::messages::imap_date_time;

mod common;
use common::{MEMORY, PASSWORD, READ_TIME, USER, capability, endpoint, seed, stack};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedReadHalf;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_string()).collect()
}

/// UIDs in a folder, as another client sees them.
fn uids_in(imap: &mut ImapClient, folder: &str) -> Result<Vec<u32>> {
    imap.examine(folder)?;
    let mut uids = imap.uid_search("ALL")?;
    uids.sort_unstable();
    Ok(uids)
}

fn flags_of(imap: &mut ImapClient, folder: &str, uid: u32) -> Result<Vec<String>> {
    imap.examine(folder)?;
    let flags = imap.uid_fetch_flags(&uid.to_string())?;
    let (_, mut flags) = flags.into_iter().find(|(u, _)| *u == uid).context("no such uid")?;
    // \Recent is the server's, whoever looked first
    flags.retain(|flag| !flag.eq_ignore_ascii_case("\\Recent"));
    flags.sort();
    Ok(flags)
}

fn folder_names(imap: &mut ImapClient) -> Result<Vec<String>> {
    Ok(imap.list("", "*")?.into_iter().map(|entry| entry.name).collect())
}

/// A message with a word nobody else has, a non-ASCII word and an old date.
fn special_message() -> Vec<u8> {
    "From: Sam <sam@example.test>\r\nTo: pat@example.test\r\nSubject: zebrafish4711\r\n\
     Date: Mon, 1 Jan 2001 10:00:00 +0000\r\nMessage-ID: <special.4711@example.test>\r\n\
     MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
     Content-Transfer-Encoding: 8bit\r\n\r\nViele Grüße vom Meer\r\n.a line with a dot\r\n"
        .as_bytes()
        .to_vec()
}

/// Every operation of the interface through the pool, as the plugin gets the results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_operation_through_the_pool() -> Result<()> {
    let stack = stack()?;
    let messages = seed(&stack, "INBOX", 31, 12)?;
    let accounts = Accounts::new(endpoint(stack.imap_addr()?)?, &PoolSettings::default());
    let account = accounts.authenticate(USER, PASSWORD.as_bytes()).await?;
    let mut mailbox = capability(&account);
    let mut other = stack.imap_login(USER, PASSWORD)?;

    // flags: added and removed, missing UIDs skipped
    mailbox
        .store_flags("INBOX".into(), vec![1, 2, 999], strings(&["\\Flagged", "$Forwarded"]), vec![])
        .await
        .map_err(anyhow::Error::msg)?;
    mailbox
        .store_flags("INBOX".into(), vec![1], strings(&["\\Seen"]), strings(&["$Forwarded"]))
        .await
        .map_err(anyhow::Error::msg)?;
    let one = flags_of(&mut other, "INBOX", 1)?;
    ensure!(one.contains(&"\\Flagged".to_string()) && one.contains(&"\\Seen".to_string()));
    ensure!(!one.contains(&"$Forwarded".to_string()), "{one:?}");
    ensure!(flags_of(&mut other, "INBOX", 2)?.contains(&"$Forwarded".to_string()));
    let injected = mailbox
        .store_flags("INBOX".into(), vec![3], strings(&["x) \r\na1 DELETE INBOX"]), vec![])
        .await;
    ensure!(matches!(injected, Err(Error::Refused(_))), "{injected:?}");
    ensure!(matches!(
        mailbox.store_flags("Nope".into(), vec![1], strings(&["\\Seen"]), vec![]).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));

    // move: pairs from COPYUID, the messages arrive whole, missing UIDs are absent
    let moved = mailbox
        .move_messages("INBOX".into(), vec![4, 3, 999], "Archive".into())
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(moved == vec![(3, 1), (4, 2)], "{moved:?}");
    ensure!(uids_in(&mut other, "Archive")? == vec![1, 2]);
    ensure!(other.uid_fetch_rfc822(1)? == messages[2].raw);
    ensure!(!uids_in(&mut other, "INBOX")?.contains(&3));
    ensure!(matches!(
        mailbox.move_messages("INBOX".into(), vec![5], "Nope".into()).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));
    ensure!(matches!(
        mailbox.move_messages("Nope".into(), vec![5], "Archive".into()).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));
    ensure!(uids_in(&mut other, "INBOX")?.contains(&5), "a failed move moved nothing");

    // expunge: exactly these messages; another one marked \Deleted stays
    other.select("INBOX")?;
    other.uid_store("6", "+FLAGS", &["\\Deleted"])?;
    mailbox.expunge("INBOX".into(), vec![5, 999]).await.map_err(anyhow::Error::msg)?;
    let inbox = uids_in(&mut other, "INBOX")?;
    ensure!(!inbox.contains(&5) && inbox.contains(&6), "{inbox:?}");

    // append: the UID from APPENDUID, flags and internal date as given
    let special = special_message();
    let date = 978_343_200; // 2001-01-01 10:00:00 UTC
    let uid = mailbox
        .append("Drafts".into(), special.clone(), strings(&["\\Seen", "$Draft"]), Some(date))
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(uid == Some(1), "{uid:?}");
    other.examine("Drafts")?;
    ensure!(other.uid_fetch_rfc822(1)? == special);
    let fetched = other.uid_fetch("1", "(UID INTERNALDATE)")?;
    let internal = fetched.first().and_then(|f| f.item("INTERNALDATE")).context("date")?;
    ensure!(
        matches!(internal, Value::Bytes(text) if text == imap_date_time(date).as_bytes()),
        "{internal:?}"
    );
    ensure!(flags_of(&mut other, "Drafts", 1)? == strings(&["$Draft", "\\Seen"]));
    let plain = mailbox
        .append("Drafts".into(), messages[0].raw.clone(), vec![], None)
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(plain == Some(2));
    ensure!(matches!(
        mailbox.append("Nope".into(), special.clone(), vec![], None).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));

    // search: words (one of them not ASCII), header, dates; every criterion must match
    let query = |text: Option<&str>, header: Option<(&str, &str)>, since, before| SearchQuery {
        text: text.map(str::to_string),
        since,
        before,
        header: header.map(|(field, value)| (field.to_string(), value.to_string())),
    };
    let search = async |mailbox: &mut MailboxCapability, folder: &str, q: SearchQuery| {
        mailbox.search(folder.into(), q).await.map_err(anyhow::Error::msg)
    };
    ensure!(
        search(&mut mailbox, "Drafts", query(Some("zebrafish4711"), None, None, None)).await?
            == vec![1]
    );
    ensure!(
        search(&mut mailbox, "Drafts", query(Some("grüße MEER"), None, None, None)).await?
            == vec![1]
    );
    ensure!(
        search(&mut mailbox, "Drafts", query(Some("grüße nowhere"), None, None, None))
            .await?
            .is_empty()
    );
    let by_id = query(None, Some(("Message-ID", "<special.4711@example.test>")), None, None);
    ensure!(search(&mut mailbox, "Drafts", by_id).await? == vec![1]);
    let old = query(None, None, Some(date - 86_400), Some(date + 86_400));
    ensure!(search(&mut mailbox, "Drafts", old).await? == vec![1]);
    let recent = query(None, None, Some(date + 86_400), None);
    ensure!(search(&mut mailbox, "Drafts", recent).await? == vec![2]);
    let everything = search(&mut mailbox, "INBOX", query(None, None, None, None)).await?;
    ensure!(everything == uids_in(&mut other, "INBOX")?);
    let subject = &messages[7].message_id;
    let found =
        search(&mut mailbox, "INBOX", query(None, Some(("message-id", subject)), None, None));
    ensure!(found.await? == vec![8]);
    ensure!(matches!(
        mailbox.search("Drafts".into(), query(None, Some(("a b", "x")), None, None)).await,
        Err(Error::Refused(_))
    ));
    ensure!(matches!(
        mailbox.search("Nope".into(), query(None, None, None, None)).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));

    // folders: a non-ASCII name in modified UTF-7, a subfolder, rename, delete
    let created =
        mailbox.create_folder(None, "Projekte Ü&Co".into()).await.map_err(anyhow::Error::msg)?;
    ensure!(created.name == "Projekte &ANw-&-Co", "{created:?}");
    ensure!(created.display_name == "Projekte Ü&Co" && created.selectable);
    ensure!(created.delimiter == Some('/'));
    ensure!(folder_names(&mut other)?.contains(&created.name));
    let sub = mailbox
        .create_folder(Some(created.name.clone()), "Sub".into())
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(sub.name == "Projekte &ANw-&-Co/Sub" && sub.display_name == "Projekte Ü&Co/Sub");
    ensure!(matches!(
        mailbox.create_folder(Some("Nope".into()), "Sub".into()).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));
    ensure!(!folder_names(&mut other)?.iter().any(|name| name.starts_with("Nope")));
    match mailbox.create_folder(None, "Projekte Ü&Co".into()).await {
        Err(Error::Refused(text)) if text.contains("exists") => {}
        other => bail!("creating an existing folder gave {other:?}"),
    }
    ensure!(matches!(mailbox.create_folder(None, "a/b".into()).await, Err(Error::Refused(_))));
    ensure!(matches!(mailbox.create_folder(None, String::new()).await, Err(Error::Refused(_))));

    let renamed = mailbox
        .rename_folder(sub.name.clone(), None, "Täglich".into())
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(renamed.name == "T&AOQ-glich" && renamed.display_name == "Täglich", "{renamed:?}");
    let names = folder_names(&mut other)?;
    ensure!(names.contains(&renamed.name) && !names.contains(&sub.name), "{names:?}");
    let under = mailbox
        .rename_folder(renamed.name.clone(), Some(created.name.clone()), "Wöchentlich".into())
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(under.display_name == "Projekte Ü&Co/Wöchentlich");
    match mailbox.rename_folder(under.name.clone(), None, "Archive".into()).await {
        Err(Error::Refused(text)) if text.contains("exists") => {}
        other => bail!("renaming onto an existing folder gave {other:?}"),
    }
    ensure!(matches!(
        mailbox.rename_folder("Nope".into(), None, "Other".into()).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));
    ensure!(matches!(
        mailbox.rename_folder("INBOX".into(), None, "Other".into()).await,
        Err(Error::Refused(_))
    ));
    // a folder with a subfolder: refused, or deleted with the subfolder kept (RFC 9051
    // §6.3.4; Dovecot keeps the name as \Noselect while it has children)
    match mailbox.delete_folder(created.name.clone()).await {
        Ok(()) | Err(Error::Refused(_)) => {}
        other => bail!("deleting a folder with a subfolder gave {other:?}"),
    }
    ensure!(folder_names(&mut other)?.contains(&under.name), "the subfolder stays");
    mailbox.delete_folder(under.name.clone()).await.map_err(anyhow::Error::msg)?;
    match mailbox.delete_folder(created.name.clone()).await {
        Ok(()) | Err(Error::NoSuchFolder(_)) => {}
        other => bail!("deleting the emptied parent gave {other:?}"),
    }
    let names = folder_names(&mut other)?;
    ensure!(!names.iter().any(|name| name.starts_with("Projekte")), "{names:?}");
    ensure!(matches!(
        mailbox.delete_folder("Nope".into()).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));

    // empty: every message of that folder, and nothing of the others (INBOX keeps its
    // \Deleted message)
    mailbox.empty_folder("Archive".into()).await.map_err(anyhow::Error::msg)?;
    ensure!(uids_in(&mut other, "Archive")?.is_empty());
    ensure!(uids_in(&mut other, "INBOX")?.contains(&6));
    mailbox.empty_folder("Archive".into()).await.map_err(anyhow::Error::msg)?;
    ensure!(matches!(
        mailbox.empty_folder("Nope".into()).await,
        Err(Error::NoSuchFolder(name)) if name == "Nope"
    ));

    // all of it on the session the login left in the pool
    ensure!(accounts.logins() == 1, "{} LOGINs", accounts.logins());
    let mut anonymous =
        MailboxCapability::new("test".into(), None, MEMORY, Instant::now() + READ_TIME, None);
    ensure!(matches!(
        anonymous.expunge("INBOX".into(), vec![1]).await,
        Err(Error::Unauthenticated)
    ));
    Ok(())
}

/// A server without MOVE: UID COPY, then the originals are expunged; without UIDPLUS as well,
/// moves and expunges are refused rather than removing other `\Deleted` messages. Without
/// LITERAL+ and ESEARCH, appends and non-ASCII searches wait for the server's `+`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallbacks_without_move_uidplus_and_literal_plus() -> Result<()> {
    let stack = stack()?;
    let messages = seed(&stack, "INBOX", 41, 6)?;
    let mut session =
        Session::connect(&endpoint(stack.imap_addr()?)?, USER, PASSWORD.as_bytes()).await?;
    session.mask_capabilities(|caps| {
        caps.move_command = false;
        caps.literal_plus = false;
        caps.literal_minus = false;
        caps.esearch = false;
    });
    let mut other = stack.imap_login(USER, PASSWORD)?;
    other.select("INBOX")?;
    other.uid_store("6", "+FLAGS", &["\\Deleted"])?;

    let moved = session.move_messages("INBOX", &[2, 3, 99], "Trash").await??;
    ensure!(moved == vec![(2, 1), (3, 2)], "{moved:?}");
    ensure!(uids_in(&mut other, "Trash")? == vec![1, 2]);
    other.examine("Trash")?;
    ensure!(other.uid_fetch_rfc822(2)? == messages[2].raw);
    let inbox = uids_in(&mut other, "INBOX")?;
    ensure!(inbox == vec![1, 4, 5, 6], "only the moved messages left INBOX: {inbox:?}");
    match session.move_messages("INBOX", &[4], "Nope").await {
        Ok(Err(ImapError::NoSuchMailbox(name))) if name == "Nope" => {}
        other => bail!("a COPY to a missing folder gave {other:?}"),
    }
    ensure!(uids_in(&mut other, "INBOX")?.contains(&4), "a failed COPY expunges nothing");

    let special = special_message();
    let uid = session.append("Drafts", &special, &[], Some(978_343_200)).await??;
    ensure!(uid == Some(1));
    other.examine("Drafts")?;
    ensure!(other.uid_fetch_rfc822(1)? == special);
    let words = SearchCriteria { text: Some("Grüße".into()), ..SearchCriteria::default() };
    ensure!(session.search("Drafts", &words).await? == vec![1]);

    session.mask_capabilities(|caps| caps.uidplus = false);
    ensure!(matches!(
        session.move_messages("INBOX", &[4], "Trash").await,
        Err(ImapError::Unsupported(_))
    ));
    ensure!(matches!(session.expunge("INBOX", &[4]).await, Err(ImapError::Unsupported(_))));
    ensure!(uids_in(&mut other, "INBOX")? == vec![1, 4, 5, 6]);
    ensure!(session.is_usable());
    Ok(())
}

/// A pooled session the server dropped: the change is made once, on a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_after_a_server_restart_is_made_once() -> Result<()> {
    let stack = stack()?;
    let accounts = Accounts::new(endpoint(stack.imap_addr()?)?, &PoolSettings::default());
    let account = accounts.authenticate(USER, PASSWORD.as_bytes()).await?;
    let mut mailbox = capability(&account);
    stack.imap_restart()?;
    let uid = mailbox
        .append("INBOX".into(), special_message(), vec![], None)
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(uid == Some(1));
    let mut other = stack.imap_login(USER, PASSWORD)?;
    ensure!(uids_in(&mut other, "INBOX")? == vec![1], "appended exactly once");
    ensure!(accounts.logins() == 2);
    Ok(())
}

/// Serves one connection of a server without UIDPLUS: LOGIN, then an APPEND (checked whole)
/// whose OK has no APPENDUID, then the search for the Message-ID.
async fn server_without_uidplus(
    message: Vec<u8>,
) -> Result<(u16, tokio::task::JoinHandle<Result<()>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let caps = "IMAP4rev1 LITERAL+";
        write.write_all(format!("* OK [CAPABILITY {caps}] ready\r\n").as_bytes()).await?;
        let expect = async |reader: &mut BufReader<OwnedReadHalf>,
                            prefix: &str|
               -> Result<(String, String)> {
            let mut line = String::new();
            tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line)).await??;
            let line = line.trim_end().to_string();
            let (tag, command) = line.split_once(' ').context("no tag")?;
            ensure!(command.starts_with(prefix), "expected {prefix:?}, got {line:?}");
            Ok((tag.to_string(), command.to_string()))
        };
        let (tag, _) = expect(&mut reader, "LOGIN").await?;
        write.write_all(format!("{tag} OK [CAPABILITY {caps}] in\r\n").as_bytes()).await?;
        let (tag, _) = expect(&mut reader, "LIST \"\" \"Sent\"").await?;
        write.write_all(format!("* LIST () \"/\" Sent\r\n{tag} OK done\r\n").as_bytes()).await?;
        let (tag, command) = expect(&mut reader, "APPEND \"Sent\" (\\Seen) ").await?;
        let expected = format!("{{{}+}}", message.len());
        ensure!(command.ends_with(&expected), "{command:?}");
        let mut literal = vec![0; message.len() + 2];
        reader.read_exact(&mut literal).await?;
        ensure!(literal[..message.len()] == message[..] && &literal[message.len()..] == b"\r\n");
        write.write_all(format!("{tag} OK appended\r\n").as_bytes()).await?;
        let (examine, _) = expect(&mut reader, "EXAMINE \"Sent\"").await?;
        let (search, command) = expect(&mut reader, "UID SEARCH HEADER ").await?;
        ensure!(command == "UID SEARCH HEADER \"Message-ID\" \"<special.4711@example.test>\"");
        write
            .write_all(
                format!(
                    "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 10] n\r\n\
                     {examine} OK [READ-ONLY] done\r\n* SEARCH 4 9\r\n{search} OK done\r\n"
                )
                .as_bytes(),
            )
            .await?;
        Ok(())
    });
    Ok((port, server))
}

#[tokio::test]
async fn an_append_without_appenduid_is_found_by_its_message_id() -> Result<()> {
    let message = special_message();
    let (port, server) = server_without_uidplus(message.clone()).await?;
    let tls = TlsSettings { mode: TlsMode::None, ..TlsSettings::default() };
    let endpoint = Endpoint::new("127.0.0.1", port, &tls)?;
    let mut session = Session::connect(&endpoint, "u@example.test", b"pw").await?;
    let uid = session.append("Sent", &message, &strings(&["\\Seen"]), None).await??;
    server.await??;
    ensure!(uid == Some(9), "{uid:?}");
    Ok(())
}
