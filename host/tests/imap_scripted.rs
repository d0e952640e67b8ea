//! Session behaviour that the test Dovecot cannot show, against a scripted server: MAILBOXID
//! (RFC 8474; Dovecot 2.3 has no OBJECTID) and `[NONEXISTENT]` (RFC 5530; Dovecot 2.3 sends a
//! bare NO for a missing folder).

use anyhow::{Context, Result, bail, ensure};
use eas_edge::imap::{Endpoint, ImapError, Session, TlsMode, TlsSettings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const CAPABILITIES: &str = "IMAP4rev1 LIST-EXTENDED LIST-STATUS SPECIAL-USE OBJECTID";

/// One exchange: the command the client must send (after its tag), and the lines to answer
/// with; `TAG` in them stands for the command's tag.
struct Step {
    command: &'static str,
    answer: &'static [&'static str],
}

/// Serves one connection by the script, then reports what went wrong, if anything.
async fn scripted_server(steps: Vec<Step>) -> Result<(u16, tokio::task::JoinHandle<Result<()>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(format!("* OK [CAPABILITY {CAPABILITIES}] ready\r\n").as_bytes()).await?;
        for step in steps {
            let line = lines.next_line().await?.context("client hung up")?;
            let (tag, command) = line.split_once(' ').context("no tag")?;
            ensure!(command.starts_with(step.command), "expected {:?}, got {line:?}", step.command);
            for answer in step.answer {
                write.write_all(answer.replace("TAG", tag).as_bytes()).await?;
                write.write_all(b"\r\n").await?;
            }
        }
        Ok(())
    });
    Ok((port, server))
}

async fn connect(port: u16) -> Result<Session> {
    let tls = TlsSettings { mode: TlsMode::None, ..TlsSettings::default() };
    let endpoint = Endpoint::new("127.0.0.1", port, &tls)?;
    Ok(Session::connect(&endpoint, "u@example.test", b"pw").await?)
}

const LOGIN: Step = Step {
    command: "LOGIN",
    answer: &["TAG OK [CAPABILITY IMAP4rev1 LIST-EXTENDED LIST-STATUS SPECIAL-USE OBJECTID] in"],
};

#[tokio::test]
async fn mailbox_ids_come_from_list_status_with_objectid() -> Result<()> {
    let (port, server) = scripted_server(vec![
        LOGIN,
        Step {
            command: "LIST \"\" \"*\" RETURN (SUBSCRIBED SPECIAL-USE STATUS (MAILBOXID))",
            answer: &[
                r#"* LIST (\Subscribed) "/" INBOX"#,
                "* STATUS INBOX (MAILBOXID (F2212ea87-6097))",
                r#"* LIST (\Subscribed \Sent) "/" "Sent Items""#,
                r#"* STATUS "Sent Items" (MAILBOXID (Fd4b6-77))"#,
                r#"* LIST (\Noselect) "/" Archive"#,
                "TAG OK done",
            ],
        },
    ])
    .await?;
    let mut session = connect(port).await?;
    let folders = session.list_folders().await?;
    server.await??;
    let id = |name: &str| folders.iter().find(|f| f.name == name).map(|f| f.mailbox_id.clone());
    ensure!(id("INBOX") == Some(Some("F2212ea87-6097".to_string())), "{folders:#?}");
    ensure!(id("Sent Items") == Some(Some("Fd4b6-77".to_string())));
    ensure!(id("Archive") == Some(None), "a \\Noselect folder has no STATUS");
    Ok(())
}

#[tokio::test]
async fn missing_folders_by_code_or_by_list() -> Result<()> {
    let (port, server) = scripted_server(vec![
        LOGIN,
        // RFC 5530: the code says it
        Step { command: "EXAMINE \"Gone\"", answer: &["TAG NO [NONEXISTENT] No such mailbox"] },
        // a bare NO: LIST decides
        Step { command: "EXAMINE \"Old\"", answer: &["TAG NO Mailbox doesn't exist: Old"] },
        Step { command: "LIST \"\" \"Old\"", answer: &["TAG OK nothing"] },
        Step { command: "EXAMINE \"Locked\"", answer: &["TAG NO Permission denied"] },
        Step {
            command: "LIST \"\" \"Locked\"",
            answer: &[r#"* LIST () "/" Locked"#, "TAG OK listed"],
        },
    ])
    .await?;
    let mut session = connect(port).await?;
    match session.examine("Gone").await {
        Err(ImapError::NoSuchMailbox(_)) => {}
        other => bail!("[NONEXISTENT] gave {other:?}"),
    }
    match session.examine("Old").await {
        Err(ImapError::NoSuchMailbox(name)) => ensure!(name == "Old"),
        other => bail!("an unlisted folder gave {other:?}"),
    }
    match session.examine("Locked").await {
        Err(ImapError::Refused { text, .. }) => ensure!(text == "Permission denied"),
        other => bail!("a listed folder gave {other:?}"),
    }
    ensure!(session.is_usable());
    server.await??;
    Ok(())
}
